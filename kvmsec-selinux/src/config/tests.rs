use super::*;
use crate::testutil::FakeHost;
use std::os::unix::fs::PermissionsExt;

const FEDORA: &str = "\
# This file controls the state of SELinux on the system.
# SELINUX= can take one of these three values:
#     enforcing - SELinux security policy is enforced.
#     permissive - SELinux prints warnings instead of enforcing.
#     disabled - No SELinux policy is loaded.
SELINUX=enforcing

# SELINUXTYPE= can take one of these three values:
#     targeted - Targeted processes are protected,
#     mls - Multi Level Security protection.
SELINUXTYPE=targeted
SETLOCALDEFS=0
";

#[test]
fn reads_like_libselinux() {
    let cfg = parse_config(FEDORA);
    assert_eq!(cfg.mode, Some(Mode::Enforcing));
    assert_eq!(cfg.policy_type, "targeted");
    assert!(cfg.policy_type_set);
    assert_eq!(cfg.get("SETLOCALDEFS"), Some("0"));
    assert!(cfg.warnings.is_empty(), "{:?}", cfg.warnings);

    let table: &[(&str, Option<Mode>, &str)] = &[
        ("", None, "targeted"),
        ("SELINUX=Enforcing\n", Some(Mode::Enforcing), "targeted"),
        ("SELINUX=PERMISSIVE", Some(Mode::Permissive), "targeted"),
        // Prefix match, as libselinux's strncasecmp.
        ("SELINUX=disabledXYZ\n", Some(Mode::Disabled), "targeted"),
        // Blanks after '=' are skipped.
        ("SELINUX=  permissive\n", Some(Mode::Permissive), "targeted"),
        // First valid wins; an unknown value is skipped.
        (
            "SELINUX=bogus\nSELINUX=permissive\nSELINUX=enforcing\n",
            Some(Mode::Permissive),
            "targeted",
        ),
        // Leading blanks or lowercase key: libselinux ignores the line.
        ("  SELINUX=enforcing\n", None, "targeted"),
        ("selinux=enforcing\n", None, "targeted"),
        // SELINUXTYPE: case-insensitive key, leading blanks ok, last wins, trailing trimmed.
        (
            "SELINUXTYPE=mls\n selinuxtype= minimum \t\n",
            None,
            "minimum",
        ),
        // Quotes are kept (libselinux does not strip them).
        ("SELINUXTYPE=\"targeted\"\n", None, "\"targeted\""),
        // Comments and blank lines are skipped.
        (
            "#SELINUX=enforcing\n\n   # SELINUXTYPE=mls\nSELINUX=disabled\n",
            Some(Mode::Disabled),
            "targeted",
        ),
        (
            "SELINUX=enforcing\r\nSELINUXTYPE=mls\r\n",
            Some(Mode::Enforcing),
            "mls",
        ),
    ];
    for (text, mode, policy) in table {
        let cfg = parse_config(text);
        assert_eq!(cfg.mode, *mode, "{text:?}");
        assert_eq!(cfg.policy_type, *policy, "{text:?}");
    }
}

#[test]
fn warnings_for_surprises() {
    let cfg = parse_config(
        "SELINUX=bogus\n selinux=enforcing\nSELINUXTYPE=\"mls\"\nSELINUXTYPE=targeted # comment\n",
    );
    assert_eq!(
        cfg.warnings,
        vec![
            ConfigWarning::UnknownMode {
                line: 1,
                value: "bogus".into()
            },
            ConfigWarning::IgnoredModeLine { line: 2 },
            ConfigWarning::QuotedValue {
                line: 3,
                key: "SELINUXTYPE".into()
            },
            ConfigWarning::InlineComment {
                line: 4,
                key: "SELINUXTYPE".into()
            },
        ]
    );
    assert_eq!(cfg.policy_type, "targeted # comment");
}

#[test]
fn require_seusers() {
    assert_eq!(parse_config("REQUIRESEUSERS=1").require_seusers, Some(true));
    assert_eq!(
        parse_config("REQUIRESEUSERS=0").require_seusers,
        Some(false)
    );
    assert_eq!(
        parse_config("REQUIRESEUSERS=TRUE").require_seusers,
        Some(true)
    );
    assert_eq!(
        parse_config("REQUIRESEUSERS=false").require_seusers,
        Some(false)
    );
    assert_eq!(parse_config("REQUIRESEUSERS=maybe").require_seusers, None);
}

#[test]
fn edits_keep_everything_else() {
    let mut f = ConfigFile::new(FEDORA);
    f.set_mode(Mode::Permissive);
    assert_eq!(
        f.text(),
        FEDORA.replace("SELINUX=enforcing", "SELINUX=permissive")
    );
    f.set_policy_type("mls").unwrap();
    assert_eq!(
        f.text(),
        FEDORA
            .replace("SELINUX=enforcing", "SELINUX=permissive")
            .replace("SELINUXTYPE=targeted", "SELINUXTYPE=mls")
    );
    assert_eq!(f.parse().mode, Some(Mode::Permissive));
    assert_eq!(f.parse().policy_type, "mls");

    // The effective line is the one changed: first valid SELINUX, last SELINUXTYPE.
    let mut f =
        ConfigFile::new("SELINUX=bogus\nSELINUX=enforcing\nSELINUXTYPE=a\nSELINUXTYPE=b\nX=1");
    f.set_mode(Mode::Disabled);
    f.set_policy_type("c").unwrap();
    assert_eq!(
        f.text(),
        "SELINUX=bogus\nSELINUX=disabled\nSELINUXTYPE=a\nSELINUXTYPE=c\nX=1"
    );
    // Only invalid lines: the first one is rewritten.
    let mut f = ConfigFile::new("SELINUX=bogus\r\n");
    f.set_mode(Mode::Enforcing);
    assert_eq!(f.text(), "SELINUX=enforcing\r\n");
    // Absent keys are appended, after a newline if needed.
    let mut f = ConfigFile::new("# only a comment");
    f.set_mode(Mode::Enforcing);
    assert_eq!(f.text(), "# only a comment\nSELINUX=enforcing\n");
    let mut f = ConfigFile::new("");
    f.set_policy_type("targeted").unwrap();
    assert_eq!(f.text(), "SELINUXTYPE=targeted\n");
}

#[test]
fn bad_policy_type_is_refused() {
    let mut f = ConfigFile::new(FEDORA);
    for bad in [
        "",
        "a b",
        "x\nSELINUX=disabled",
        "\"t\"",
        "../x",
        ".hidden",
        "a#b",
    ] {
        assert!(
            matches!(
                f.set_policy_type(bad),
                Err(Error::InvalidConfigValue { .. })
            ),
            "{bad:?}"
        );
    }
    assert_eq!(f.text(), FEDORA);
}

#[test]
fn read_config_at_root() {
    let h = FakeHost::new();
    assert_eq!(read_config_at(h.root()).unwrap(), None);
    h.write("etc/selinux/config", FEDORA);
    let cfg = read_config_at(h.root()).unwrap().unwrap();
    assert_eq!(cfg.mode, Some(Mode::Enforcing));
}

#[test]
fn atomic_write_keeps_permissions_and_leaves_no_temp_file() {
    let h = FakeHost::new();
    let path = h.write("etc/selinux/config", FEDORA);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    let change = set_config_mode_at(h.root(), Mode::Permissive).unwrap();
    assert_eq!(change.path, path);
    assert_eq!(change.previous, Some(Mode::Enforcing));
    assert_eq!(change.autorelabel, None);
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o7777,
        0o600
    );
    let names: Vec<_> = std::fs::read_dir(h.path("etc/selinux"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("config")]);
    assert_eq!(
        String::from_utf8(h.read("etc/selinux/config")).unwrap(),
        FEDORA.replace("SELINUX=enforcing", "SELINUX=permissive")
    );
    let p = set_config_policy_type_at(h.root(), "mls").unwrap();
    assert_eq!(p, path);
    assert_eq!(
        read_config_at(h.root()).unwrap().unwrap().policy_type,
        "mls"
    );
}

#[test]
fn sysconfig_symlink_is_followed_not_replaced() {
    for target in ["../selinux/config", "/etc/selinux/config"] {
        let h = FakeHost::new();
        let real = h.write("etc/selinux/config", FEDORA);
        std::fs::create_dir_all(h.path("etc/sysconfig")).unwrap();
        let link = h.path("etc/sysconfig/selinux");
        std::os::unix::fs::symlink(target, &link).unwrap();

        let written = edit_config_file_at(h.root(), Path::new(SYSCONFIG_PATH), |f| {
            f.set_mode(Mode::Disabled);
            Ok(())
        })
        .unwrap();
        assert_eq!(written, real, "{target}");
        assert!(
            std::fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(
            read_config_file_at(h.root(), Path::new(SYSCONFIG_PATH))
                .unwrap()
                .unwrap()
                .mode,
            Some(Mode::Disabled)
        );
        assert_eq!(
            read_config_at(h.root()).unwrap().unwrap().mode,
            Some(Mode::Disabled)
        );
    }
}

#[test]
fn symlinks_stay_inside_the_root() {
    let h = FakeHost::new();
    std::fs::create_dir_all(h.path("etc/sysconfig")).unwrap();
    std::os::unix::fs::symlink(
        "../../../../../../etc/shadow",
        h.path("etc/sysconfig/selinux"),
    )
    .unwrap();
    let resolved = resolve_symlinks_under(h.root(), Path::new(SYSCONFIG_PATH)).unwrap();
    assert_eq!(resolved, h.path("etc/shadow"));
    // A loop is an error, not a hang.
    std::os::unix::fs::symlink("b", h.path("etc/a")).unwrap();
    std::os::unix::fs::symlink("a", h.path("etc/b")).unwrap();
    assert!(matches!(
        resolve_symlinks_under(h.root(), Path::new("/etc/a")),
        Err(Error::InvalidValue { .. })
    ));
}

/// A directory symlink in the middle of the path (`<root>/a -> /outside`) is re-rooted too:
/// reading and editing never reach the host's `/outside`.
#[test]
fn intermediate_symlinks_stay_inside_the_root() {
    let h = FakeHost::new();
    let outside = tempfile::tempdir().unwrap();
    let host_file = outside.path().join("config");
    std::fs::write(&host_file, "SELINUX=enforcing\n").unwrap();
    std::os::unix::fs::symlink(outside.path(), h.path("a")).unwrap();
    let rel = outside.path().strip_prefix("/").unwrap().join("config");
    let inside = h.write(rel.to_str().unwrap(), "SELINUX=disabled\n");

    let resolved = resolve_symlinks_under(h.root(), Path::new("/a/config")).unwrap();
    assert_eq!(resolved, inside);
    let cfg = read_config_file_at(h.root(), Path::new("/a/config")).unwrap();
    assert_eq!(cfg.unwrap().mode, Some(Mode::Disabled));
    let written = edit_config_file_at(h.root(), Path::new("/a/config"), |f| {
        f.set_mode(Mode::Permissive);
        Ok(())
    })
    .unwrap();
    assert_eq!(written, inside);
    assert_eq!(
        std::fs::read_to_string(&host_file).unwrap(),
        "SELINUX=enforcing\n"
    );

    // `..` after a directory link climbs from where the link leads, and stops at the root.
    std::fs::create_dir_all(h.path("etc/selinux")).unwrap();
    std::os::unix::fs::symlink("/etc/selinux", h.path("b")).unwrap();
    std::os::unix::fs::symlink("../../../../..", h.path("etc/selinux/up")).unwrap();
    assert_eq!(
        resolve_symlinks_under(h.root(), Path::new("/b/up/etc/shadow")).unwrap(),
        h.path("etc/shadow")
    );
    // As the kernel does: `/b/..` is the parent of where `/b` leads (`/etc`).
    assert_eq!(
        resolve_symlinks_under(h.root(), Path::new("/b/../x")).unwrap(),
        h.path("etc/x")
    );
    // A loop through a directory link is an error, not a hang.
    std::os::unix::fs::symlink("d/x", h.path("d")).unwrap();
    assert!(matches!(
        resolve_symlinks_under(h.root(), Path::new("/d/config")),
        Err(Error::InvalidValue { .. })
    ));
}

/// A FIFO planted as the config file is refused at once instead of blocking the reader.
#[test]
fn fifo_config_is_an_error_not_a_hang() {
    let h = FakeHost::new();
    std::fs::create_dir_all(h.path("etc/selinux")).unwrap();
    let fifo = h.path("etc/selinux/config");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: `c` is a valid NUL-terminated path that outlives the call.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    assert!(matches!(
        read_config_at(h.root()),
        Err(Error::InvalidValue {
            expected: "a regular file",
            ..
        })
    ));
    assert!(set_config_mode_at(h.root(), Mode::Permissive).is_err());
    // A directory in its place is refused the same way.
    let h = FakeHost::new();
    std::fs::create_dir_all(h.path("etc/selinux/config")).unwrap();
    assert!(matches!(
        read_config_at(h.root()),
        Err(Error::InvalidValue { .. })
    ));
}

#[test]
fn autorelabel_when_enabling_from_disabled() {
    let h = FakeHost::new();
    h.write(
        "etc/selinux/config",
        "SELINUX=disabled\nSELINUXTYPE=targeted\n",
    );
    let change = set_config_mode_at(h.root(), Mode::Enforcing).unwrap();
    assert_eq!(change.previous, Some(Mode::Disabled));
    assert_eq!(change.autorelabel, Some(h.path(".autorelabel")));
    assert!(h.path(".autorelabel").exists());

    // Permissive -> Enforcing needs no relabel.
    let h = FakeHost::new();
    h.write("etc/selinux/config", "SELINUX=permissive\n");
    let change = set_config_mode_at(h.root(), Mode::Enforcing).unwrap();
    assert_eq!(change.autorelabel, None);
    assert!(!h.path(".autorelabel").exists());

    // Going to Disabled never asks for one.
    let change = set_config_mode_at(h.root(), Mode::Disabled).unwrap();
    assert_eq!(change.autorelabel, None);

    // A missing file is created (0644) and counts as disabled before.
    let h = FakeHost::new();
    std::fs::create_dir_all(h.path("etc/selinux")).unwrap();
    let change = set_config_mode_at(h.root(), Mode::Permissive).unwrap();
    assert_eq!(change.previous, None);
    assert!(change.autorelabel.is_some());
    assert_eq!(h.read("etc/selinux/config"), b"SELINUX=permissive\n");
    assert_eq!(
        std::fs::metadata(h.path("etc/selinux/config"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o644
    );
}

#[test]
fn label_of_the_config_file_is_kept() {
    let h = FakeHost::new();
    let path = h.write("etc/selinux/config", FEDORA);
    let label = b"system_u:object_r:selinux_config_t:s0\0";
    crate::xattr::set_file_label_raw(&path, crate::Symlink::Follow, label).unwrap();
    set_config_mode_at(h.root(), Mode::Permissive).unwrap();
    assert_eq!(
        crate::xattr::file_label_exact(&path, crate::Symlink::Follow)
            .unwrap()
            .unwrap(),
        label
    );
}

#[test]
fn missing_directory_is_an_io_error() {
    let h = FakeHost::new();
    match set_config_mode_at(h.root(), Mode::Enforcing) {
        Err(Error::Io { op, .. }) => assert_eq!(op, "create"),
        other => panic!("{other:?}"),
    }
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    fn line() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("SELINUX=enforcing".to_owned()),
            Just("SELINUX=bogus".to_owned()),
            Just(" SELINUX=permissive".to_owned()),
            Just("selinuxtype=mls".to_owned()),
            Just("SELINUXTYPE=\"targeted\"".to_owned()),
            Just("# SELINUX=disabled".to_owned()),
            Just(String::new()),
            "[A-Za-z_=# \t\"]{0,20}",
        ]
    }

    fn text() -> impl Strategy<Value = String> {
        (
            proptest::collection::vec(line(), 0..8),
            prop_oneof![Just("\n"), Just("\r\n")],
            any::<bool>(),
        )
            .prop_map(|(lines, eol, final_eol)| {
                let mut t = lines.join(eol);
                if final_eol && !t.is_empty() {
                    t.push_str(eol);
                }
                t
            })
    }

    fn mode() -> impl Strategy<Value = Mode> {
        prop_oneof![
            Just(Mode::Enforcing),
            Just(Mode::Permissive),
            Just(Mode::Disabled)
        ]
    }

    proptest! {
        /// An edit makes the new value the one libselinux reads, and keeps every line it
        /// did not rewrite (the line count grows by at most one).
        #[test]
        fn edits_take_effect_and_keep_the_rest(text in text(), mode in mode()) {
            let before = parse_config(&text);
            let mut f = ConfigFile::new(text.clone());
            f.set_mode(mode);
            f.set_policy_type("mls").unwrap();
            let after = f.parse();
            prop_assert_eq!(after.mode, Some(mode));
            prop_assert_eq!(after.policy_type.as_str(), "mls");
            let old: Vec<&str> = text.lines().collect();
            let new: Vec<&str> = f.text().lines().collect();
            prop_assert!(new.len() <= old.len() + 2);
            let changed = old.iter().zip(new.iter()).filter(|(a, b)| a != b).count();
            prop_assert!(changed <= 2, "{} lines changed", changed);
            // Unknown keys survive.
            for e in before.entries.iter().filter(|e| !e.key.trim().eq_ignore_ascii_case("SELINUX") && !e.key.trim().eq_ignore_ascii_case("SELINUXTYPE")) {
                prop_assert!(after.entries.iter().any(|a| a.key == e.key && a.value == e.value));
            }
        }
    }
}

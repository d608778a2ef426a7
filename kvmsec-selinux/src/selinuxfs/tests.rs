use super::*;
use crate::testutil::{FakeHost, Immutable};

#[test]
fn enforcing_host() {
    let h = FakeHost::with_selinuxfs("1", false);
    assert_eq!(getenforce_at(h.root()).unwrap(), SelinuxState::Enforcing);
    let SelinuxfsLookup::Mounted(fs) = find_selinuxfs_at(h.root()).unwrap() else {
        panic!("not found");
    };
    assert_eq!(fs.path(), h.path("sys/fs/selinux"));
    assert!(!fs.is_read_only());
    assert_eq!(fs.policy_version().unwrap(), 33);
    assert!(fs.mls_enabled().unwrap());
    assert!(!fs.deny_unknown().unwrap());
    assert!(!fs.reject_unknown().unwrap());
}

#[test]
fn permissive_host() {
    let h = FakeHost::with_selinuxfs("0", false);
    assert_eq!(getenforce_at(h.root()).unwrap(), SelinuxState::Permissive);
    // Like sscanf("%d"): leading blanks and trailing text are fine.
    h.write("sys/fs/selinux/enforce", " 0\n");
    assert_eq!(getenforce_at(h.root()).unwrap(), SelinuxState::Permissive);
    h.write("sys/fs/selinux/enforce", "7");
    assert_eq!(getenforce_at(h.root()).unwrap(), SelinuxState::Enforcing);
}

#[test]
fn disabled_host_no_policy_loaded() {
    let h = FakeHost::with_selinuxfs("0", false);
    h.write("proc/self/attr/current", "kernel\0");
    assert_eq!(
        getenforce_at(h.root()).unwrap(),
        SelinuxState::Disabled {
            reason: DisabledReason::NoPolicyLoaded
        }
    );
    assert!(matches!(
        setenforce_at(h.root(), Mode::Enforcing),
        Err(Error::SelinuxDisabled {
            reason: DisabledReason::NoPolicyLoaded
        })
    ));
}

#[test]
fn absent_selinuxfs_not_in_kernel_and_not_mounted() {
    let h = FakeHost::without_selinuxfs(false);
    assert_eq!(
        getenforce_at(h.root()).unwrap(),
        SelinuxState::Disabled {
            reason: DisabledReason::NotInKernel
        }
    );
    assert_eq!(
        find_selinuxfs_at(h.root()).unwrap(),
        SelinuxfsLookup::NotInKernel
    );
    let h = FakeHost::without_selinuxfs(true);
    assert_eq!(
        getenforce_at(h.root()).unwrap(),
        SelinuxState::Disabled {
            reason: DisabledReason::NotMounted
        }
    );
    assert!(matches!(
        setenforce_at(h.root(), Mode::Permissive),
        Err(Error::SelinuxDisabled {
            reason: DisabledReason::NotMounted
        })
    ));
    // An empty root: nothing readable at all.
    let empty = FakeHost::new();
    assert_eq!(
        getenforce_at(empty.root()).unwrap(),
        SelinuxState::Disabled {
            reason: DisabledReason::NotMounted
        }
    );
}

/// Issue 9, case 21: a read-only selinuxfs is its own state, neither Enforcing nor absent.
#[test]
fn case21_read_only_selinuxfs_is_its_own_state() {
    let h = FakeHost::with_selinuxfs("1", true);
    let state = getenforce_at(h.root()).unwrap();
    assert_eq!(
        state,
        SelinuxState::ReadOnly {
            mode: EnforceMode::Enforcing
        }
    );
    assert_ne!(state, SelinuxState::Enforcing);
    assert_eq!(state.to_string(), "Enforcing (selinuxfs read-only)");
    match setenforce_at(h.root(), Mode::Permissive) {
        Err(Error::ReadOnlySelinuxfs { path }) => assert_eq!(path, h.path("sys/fs/selinux")),
        other => panic!("{other:?}"),
    }
    assert_eq!(h.read("sys/fs/selinux/enforce"), b"1");
    // Read-only in the superblock options only.
    let h = FakeHost::with_selinuxfs("0", false);
    h.write(
        "proc/self/mountinfo",
        "22 26 0:21 / /sys/fs/selinux rw,relatime - selinuxfs selinuxfs ro\n",
    );
    assert_eq!(
        getenforce_at(h.root()).unwrap(),
        SelinuxState::ReadOnly {
            mode: EnforceMode::Permissive
        }
    );
}

#[test]
fn setenforce_changes_the_file() {
    let h = FakeHost::with_selinuxfs("1", false);
    setenforce_at(h.root(), Mode::Permissive).unwrap();
    assert_eq!(h.read("sys/fs/selinux/enforce"), b"0");
    assert_eq!(getenforce_at(h.root()).unwrap(), SelinuxState::Permissive);
    setenforce_at(h.root(), Mode::Enforcing).unwrap();
    assert_eq!(h.read("sys/fs/selinux/enforce"), b"1");
    assert_eq!(getenforce_at(h.root()).unwrap(), SelinuxState::Enforcing);
}

#[test]
fn setenforce_disabled_is_refused() {
    let h = FakeHost::with_selinuxfs("1", false);
    assert!(matches!(
        setenforce_at(h.root(), Mode::Disabled),
        Err(Error::CannotDisableAtRuntime)
    ));
    assert_eq!(h.read("sys/fs/selinux/enforce"), b"1");
}

#[test]
fn setenforce_permission_denied() {
    let h = FakeHost::with_selinuxfs("1", false);
    let enforce = h.path("sys/fs/selinux/enforce");
    let Some(_guard) = Immutable::new(&enforce) else {
        return;
    };
    match setenforce_at(h.root(), Mode::Permissive) {
        Err(Error::PermissionDenied { path, .. }) => assert_eq!(path, enforce),
        other => panic!("{other:?}"),
    }
}

#[test]
fn bad_values_are_typed_errors() {
    let h = FakeHost::with_selinuxfs("abc", false);
    match getenforce_at(h.root()) {
        Err(Error::InvalidValue { path, value, .. }) => {
            assert_eq!(path, h.path("sys/fs/selinux/enforce"));
            assert_eq!(value, "abc");
        }
        other => panic!("{other:?}"),
    }
    h.write("sys/fs/selinux/policyvers", "-3");
    let fs = Selinuxfs::at(h.path("sys/fs/selinux"), false);
    assert!(matches!(
        fs.policy_version(),
        Err(Error::InvalidValue { .. })
    ));
    std::fs::remove_file(h.path("sys/fs/selinux/mls")).unwrap();
    assert!(matches!(fs.mls_enabled(), Err(Error::Io { .. })));
}

#[test]
fn historic_mount_point_and_missing_mountinfo() {
    let h = FakeHost::new();
    h.write(
        "proc/self/mountinfo",
        "22 26 0:21 / /selinux rw,relatime - selinuxfs none rw\n",
    );
    h.write("selinux/enforce", "1");
    let SelinuxfsLookup::Mounted(fs) = find_selinuxfs_at(h.root()).unwrap() else {
        panic!()
    };
    assert_eq!(fs.path(), h.path("selinux"));
    assert_eq!(getenforce_at(h.root()).unwrap(), SelinuxState::Enforcing);

    let h = FakeHost::new();
    h.write("sys/fs/selinux/enforce", "0");
    assert_eq!(getenforce_at(h.root()).unwrap(), SelinuxState::Permissive);
}

#[test]
fn canonicalize_writes_context_with_nul() {
    let h = FakeHost::with_selinuxfs("1", false);
    let fs = Selinuxfs::at(h.path("sys/fs/selinux"), false);
    let ctx: SecurityContext = "u:r:t:s0:c1,c2".parse().unwrap();
    // A plain file answers nothing: the context comes back as given.
    assert_eq!(fs.canonicalize_context(&ctx).unwrap(), ctx);
    assert_eq!(h.read("sys/fs/selinux/context"), b"u:r:t:s0:c1,c2\0");
    fs.check_context(&ctx).unwrap();
}

/// On this machine (and CI) the kernel has no selinuxfs: the live state says Disabled.
#[test]
fn live_host_without_selinuxfs_is_disabled() {
    if Path::new("/sys/fs/selinux/enforce").exists() {
        eprintln!("skipping: this host has selinuxfs mounted");
        return;
    }
    match getenforce().unwrap() {
        SelinuxState::Disabled { reason } => {
            assert!(
                reason.to_string().contains("no selinuxfs mounted"),
                "{reason}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        setenforce(Mode::Enforcing),
        Err(Error::SelinuxDisabled { .. })
    ));
}

#[test]
fn config_disabled_explains_why() {
    // selinuxfs mounted, no policy loaded, config says disabled.
    let h = FakeHost::with_selinuxfs("0", false);
    h.write("proc/self/attr/current", "kernel\0");
    h.write("etc/selinux/config", "SELINUX=disabled\n");
    assert_eq!(
        getenforce_at(h.root()).unwrap(),
        SelinuxState::Disabled {
            reason: DisabledReason::ConfigDisabled
        }
    );
    // Not mounted although the kernel offers it, config says disabled.
    let h = FakeHost::without_selinuxfs(true);
    h.write("etc/selinux/config", "SELINUX=disabled\n");
    assert_eq!(
        getenforce_at(h.root()).unwrap(),
        SelinuxState::Disabled {
            reason: DisabledReason::ConfigDisabled
        }
    );
    // The kernel has no selinuxfs at all: that is the reason, whatever the config says.
    let h = FakeHost::without_selinuxfs(false);
    h.write("etc/selinux/config", "SELINUX=disabled\n");
    assert_eq!(
        getenforce_at(h.root()).unwrap(),
        SelinuxState::Disabled {
            reason: DisabledReason::NotInKernel
        }
    );
    // A config saying enforcing never turns a mounted, policy-loaded selinuxfs off or on.
    let h = FakeHost::with_selinuxfs("0", false);
    h.write("etc/selinux/config", "SELINUX=disabled\n");
    assert_eq!(getenforce_at(h.root()).unwrap(), SelinuxState::Permissive);
}

#[test]
fn canonicalize_at_root() {
    let ctx: SecurityContext = "u:r:t:s0".parse().unwrap();
    let h = FakeHost::with_selinuxfs("1", false);
    assert_eq!(canonicalize_context_at(h.root(), &ctx).unwrap(), ctx);
    let h = FakeHost::without_selinuxfs(false);
    assert!(matches!(
        canonicalize_context_at(h.root(), &ctx),
        Err(Error::SelinuxDisabled {
            reason: DisabledReason::NotInKernel
        })
    ));
}

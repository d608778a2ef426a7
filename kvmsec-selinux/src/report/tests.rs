use super::*;
use crate::testutil::FakeHost;

fn find<'a>(checks: &'a [Check], id: &str) -> &'a Check {
    checks
        .iter()
        .find(|c| c.id == id)
        .unwrap_or_else(|| panic!("no {id} in {checks:?}"))
}

const IDS: [&str; 5] = [
    "selinux.mode",
    "selinux.config",
    "selinux.policy_type",
    "selinux.agreement",
    "selinux.policy",
];

#[test]
fn enforcing_host_with_matching_config() {
    let h = FakeHost::with_selinuxfs("1", false);
    h.write(
        "etc/selinux/config",
        "SELINUX=enforcing\nSELINUXTYPE=targeted\n",
    );
    let checks = host_checks_at(h.root());
    let ids: Vec<_> = checks.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, IDS);
    assert_eq!(find(&checks, "selinux.mode").status, Status::Pass);
    assert_eq!(find(&checks, "selinux.mode").reason, "Enforcing");
    assert_eq!(find(&checks, "selinux.config").status, Status::Pass);
    assert_eq!(
        find(&checks, "selinux.policy_type").reason,
        "SELINUXTYPE=targeted"
    );
    assert_eq!(find(&checks, "selinux.agreement").status, Status::Pass);
    assert_eq!(
        find(&checks, "selinux.policy").reason,
        "policy version 33, MLS on, unknown permissions: allow"
    );
}

#[test]
fn permissive_host_disagreeing_with_config() {
    let h = FakeHost::with_selinuxfs("0", false);
    h.write("etc/selinux/config", "SELINUX=enforcing\n");
    let checks = host_checks_at(h.root());
    assert_eq!(find(&checks, "selinux.mode").status, Status::Warn);
    let agree = find(&checks, "selinux.agreement");
    assert_eq!(agree.status, Status::Warn);
    assert_eq!(
        agree.reason,
        "live Permissive, config says enforcing (boot-time intent, applies at next boot)"
    );
    assert_eq!(
        find(&checks, "selinux.policy_type").reason,
        "targeted (default, SELINUXTYPE not set)"
    );
}

/// Issue 9, case 22: config says enforcing but no selinuxfs is mounted. The live state is
/// what selinuxfs says (Disabled); the report shows both and flags the disagreement.
#[test]
fn case22_config_enforcing_but_no_selinuxfs() {
    let h = FakeHost::without_selinuxfs(false);
    h.write(
        "etc/selinux/config",
        "SELINUX=enforcing\nSELINUXTYPE=targeted\n",
    );
    // The live state comes from selinuxfs alone; the config is read as the boot-time intent.
    assert_eq!(
        crate::getenforce_at(h.root()).unwrap(),
        crate::SelinuxState::Disabled {
            reason: crate::DisabledReason::NotInKernel
        }
    );
    assert_eq!(
        read_config_at(h.root()).unwrap().unwrap().mode,
        Some(Mode::Enforcing)
    );
    let checks = host_checks_at(h.root());
    let mode = find(&checks, "selinux.mode");
    assert_eq!(mode.status, Status::Warn);
    assert_eq!(
        mode.reason,
        "Disabled: no selinuxfs mounted: the kernel does not provide it, SELinux is not \
         enabled at boot; no sVirt isolation of guests"
    );
    let config = find(&checks, "selinux.config");
    assert_eq!(
        (config.status, config.reason.as_str()),
        (Status::Pass, "SELINUX=enforcing")
    );
    let agree = find(&checks, "selinux.agreement");
    assert_eq!(agree.status, Status::Warn);
    assert_eq!(
        agree.reason,
        "live Disabled (no selinuxfs mounted: the kernel does not provide it, SELinux is not \
         enabled at boot), config says enforcing (boot-time intent, applies at next boot)"
    );
    assert_eq!(find(&checks, "selinux.policy").status, Status::Info);
}

#[test]
fn no_config_file() {
    let h = FakeHost::without_selinuxfs(true);
    let checks = host_checks_at(h.root());
    let config = find(&checks, "selinux.config");
    assert_eq!(config.status, Status::Info);
    assert_eq!(config.reason, "no config file /etc/selinux/config");
    assert_eq!(find(&checks, "selinux.policy_type").reason, config.reason);
    let agree = find(&checks, "selinux.agreement");
    assert_eq!(agree.status, Status::Info);
    assert!(agree.reason.starts_with("not checked: "));
    assert_eq!(
        find(&checks, "selinux.mode").reason,
        "Disabled: no selinuxfs mounted; no sVirt isolation of guests"
    );
}

#[test]
fn read_only_selinuxfs_and_disabled_config() {
    let h = FakeHost::with_selinuxfs("1", true);
    h.write("etc/selinux/config", "SELINUX=disabled\n");
    let checks = host_checks_at(h.root());
    let mode = find(&checks, "selinux.mode");
    assert_eq!(mode.status, Status::Pass);
    assert!(mode.reason.contains("read-only"), "{}", mode.reason);
    assert_eq!(find(&checks, "selinux.config").status, Status::Warn);
    assert_eq!(find(&checks, "selinux.agreement").status, Status::Warn);
}

#[test]
fn unreadable_inputs_become_not_checked() {
    let h = FakeHost::with_selinuxfs("garbage", false);
    // A directory where the config file should be: reading it fails.
    std::fs::create_dir_all(h.path("etc/selinux/config")).unwrap();
    let checks = host_checks_at(h.root());
    assert_eq!(checks.len(), 5);
    for id in [
        "selinux.mode",
        "selinux.config",
        "selinux.policy_type",
        "selinux.agreement",
    ] {
        let c = find(&checks, id);
        assert_eq!(c.status, Status::Info, "{id}");
        assert!(c.reason.starts_with("not checked: "), "{id}: {}", c.reason);
    }
    // A nonexistent root never panics either.
    let checks = host_checks_at(Path::new("/nonexistent/kvmsec-root"));
    assert_eq!(checks.len(), 5);
}

/// On this machine the report must say Disabled because no selinuxfs is mounted.
#[test]
fn live_report_on_this_host() {
    let checks = host_checks();
    assert_eq!(checks.len(), 5);
    if Path::new("/sys/fs/selinux/enforce").exists() {
        eprintln!("this host has selinuxfs; not asserting Disabled");
        return;
    }
    let mode = find(&checks, "selinux.mode");
    assert_eq!(mode.status, Status::Warn);
    assert!(
        mode.reason.starts_with("Disabled: no selinuxfs mounted"),
        "{}",
        mode.reason
    );
}

#[test]
fn status_display() {
    let s: Vec<String> = [Status::Pass, Status::Warn, Status::Fail, Status::Info]
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(s, ["PASS", "WARN", "FAIL", "INFO"]);
    assert_eq!(format!("[{:<6}]", Status::Pass), "[PASS  ]");
}

#[cfg(feature = "serde")]
#[test]
fn serde_uppercase_status() {
    let c = check("selinux.mode", "SELinux mode", Status::Pass, "Enforcing");
    let json = serde_json::to_string(&c).unwrap();
    assert_eq!(
        json,
        r#"{"id":"selinux.mode","title":"SELinux mode","status":"PASS","reason":"Enforcing"}"#
    );
    let back: Check = serde_json::from_str(&json).unwrap();
    assert_eq!(back, c);
}

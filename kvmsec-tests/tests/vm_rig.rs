//! The VM rig itself: a failing guest test, a guest that dies without a
//! verdict, and a guest that outlives the timeout must all fail the run, so
//! that no VM test can pass by accident.

use std::time::Duration;

use kvmsec_tests::vmrig::{self, GuestTests};

const SUITE: &str = "rig";

#[test]
fn vm_rig_passes_a_passing_guest() {
    let Some(assets) = vmrig::assets_or_skip("vm_rig_passes_a_passing_guest") else {
        return;
    };
    let report = GuestTests::new(SUITE)
        .unwrap()
        .filter("rig_guest_passes")
        .exact()
        .run(&assets)
        .unwrap();
    report.assert_passed();
    assert_eq!((report.verdict.passed, report.verdict.failed), (1, 0));
    assert!(
        report.outcome.elapsed < Duration::from_secs(60),
        "boot took {:?}",
        report.outcome.elapsed
    );
}

#[test]
fn vm_rig_fails_a_failing_guest() {
    let Some(assets) = vmrig::assets_or_skip("vm_rig_fails_a_failing_guest") else {
        return;
    };
    let report = GuestTests::new(SUITE)
        .unwrap()
        .filter("rig_guest_fails")
        .exact()
        .run(&assets)
        .unwrap();
    let why = report
        .failure()
        .expect("a failing guest test must fail the run");
    assert!(why.contains("exit status 101"), "{why}");
    assert_eq!(report.verdict.failed, 1);
}

#[test]
fn vm_rig_fails_without_a_verdict() {
    let Some(assets) = vmrig::assets_or_skip("vm_rig_fails_without_a_verdict") else {
        return;
    };
    let report = GuestTests::new(SUITE)
        .unwrap()
        .filter("rig_guest_powers_off")
        .exact()
        .run(&assets)
        .unwrap();
    assert!(!report.outcome.timed_out, "{}", report.transcript());
    let why = report.failure().expect("a guest without verdict must fail");
    assert!(why.contains("no verdict"), "{why}");
}

#[test]
fn vm_rig_kills_a_guest_at_the_timeout() {
    let Some(assets) = vmrig::assets_or_skip("vm_rig_kills_a_guest_at_the_timeout") else {
        return;
    };
    // Shorter than any boot: the emulator is killed and the run fails.
    let report = GuestTests::new(SUITE)
        .unwrap()
        .filter("rig_guest_passes")
        .exact()
        .timeout(Duration::from_secs(1))
        .run(&assets)
        .unwrap();
    assert!(report.outcome.timed_out);
    assert!(report.outcome.status.is_none());
    assert!(report.outcome.elapsed < Duration::from_secs(10));
    let why = report.failure().expect("a timeout must fail");
    assert!(why.contains("timeout"), "{why}");
}

// -------------------------------------------------------------- guest tests

#[test]
fn rig_guest_passes() {
    if !vmrig::in_guest(SUITE) {
        return;
    }
    assert_eq!(
        std::fs::read_to_string("/proc/self/cgroup").unwrap(),
        "0::/\n"
    );
}

#[test]
fn rig_guest_fails() {
    if !vmrig::in_guest(SUITE) {
        return;
    }
    panic!("this guest test fails on purpose (vm_rig_fails_a_failing_guest)");
}

#[test]
fn rig_guest_powers_off() {
    if !vmrig::in_guest(SUITE) {
        return;
    }
    // SAFETY: reboot(2) with a valid command; the VM ends here, before /init
    // can print its verdict.
    unsafe {
        libc::sync();
        libc::reboot(libc::RB_POWER_OFF);
    }
    panic!("still running after power-off");
}

//! The VM rig itself: a failing guest test, a guest that dies without a
//! verdict, and a guest that outlives the timeout must all fail the run, so
//! that no VM test can pass by accident.

use std::time::Duration;

use kvmsec_tests::vmrig::{self, GuestReport, GuestTests};

const SUITE: &str = "rig";

/// Boots the VM for the one guest test `guest_test` (with the default hard
/// timeout, or `timeout`), or `None` when the host-side `test` skips.
fn run_one(test: &str, guest_test: &str, timeout: Option<Duration>) -> Option<GuestReport> {
    let assets = vmrig::assets_or_skip(test)?;
    let mut tests = GuestTests::new(SUITE).unwrap().filter(guest_test).exact();
    if let Some(timeout) = timeout {
        tests = tests.timeout(timeout);
    }
    Some(tests.run(&assets).unwrap())
}

#[test]
fn vm_rig_passes_a_passing_guest() {
    let Some(report) = run_one("vm_rig_passes_a_passing_guest", "rig_guest_passes", None) else {
        return;
    };
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
    let Some(report) = run_one("vm_rig_fails_a_failing_guest", "rig_guest_fails", None) else {
        return;
    };
    let why = report
        .failure()
        .expect("a failing guest test must fail the run");
    assert!(why.contains("exit status 101"), "{why}");
    assert_eq!(report.verdict.failed, 1);
}

#[test]
fn vm_rig_fails_without_a_verdict() {
    let Some(report) = run_one(
        "vm_rig_fails_without_a_verdict",
        "rig_guest_powers_off",
        None,
    ) else {
        return;
    };
    assert!(!report.outcome.timed_out, "{}", report.transcript());
    let why = report.failure().expect("a guest without verdict must fail");
    assert!(why.contains("no verdict"), "{why}");
}

#[test]
fn vm_rig_kills_a_guest_at_the_timeout() {
    // Shorter than any boot: the emulator is killed and the run fails.
    let Some(report) = run_one(
        "vm_rig_kills_a_guest_at_the_timeout",
        "rig_guest_passes",
        Some(Duration::from_secs(1)),
    ) else {
        return;
    };
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

//! Helpers for code that runs inside the test VM.

/// Environment variable that tells a test binary it runs inside the VM, and
/// for which suite.
pub const GUEST_ENV: &str = "KVMSEC_IN_GUEST";

/// The SELinux context the guest's `/init` switches to before it starts the
/// tests (an unconfined user session, as on a Fedora host).
pub const GUEST_CONTEXT: &str = "unconfined_u:unconfined_r:unconfined_t:s0-s0:c0.c1023";

/// The suite this process runs as a guest, if it runs inside the test VM.
pub fn guest_suite() -> Option<String> {
    std::env::var(GUEST_ENV).ok().filter(|s| !s.is_empty())
}

/// Whether this process runs inside the test VM for `suite`.
///
/// A guest test starts with `if !in_guest("selinux") { return; }`: on the
/// host it returns (after printing why), inside the VM it runs. The
/// host-side test of the same file boots the VM and runs these tests there.
pub fn in_guest(suite: &str) -> bool {
    match guest_suite() {
        Some(s) if s == suite => true,
        Some(_) => false,
        None => {
            eprintln!(
                "skipped on the host: this test runs inside the test VM (suite `{suite}`), \
                 booted by the host-side vm_* test; see kvmsec-tests/vmrig/README.md"
            );
            false
        }
    }
}

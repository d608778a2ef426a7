//! A throw-away VM for integration tests that need a kernel this host does not
//! have: SELinux enforcing with a real policy, and a pure cgroup v2 hierarchy
//! with every controller and the BFQ I/O scheduler.
//!
//! A host-side `#[test]` boots Debian's cloud kernel under QEMU's software
//! emulator (TCG) with an initramfs built here: busybox, a generated `/init`,
//! our SELinux test policy, a few kernel modules, and a copy of the running
//! test executable with its shared libraries. The guest runs the executable's
//! guest tests (plain `#[test]` functions that start with
//! [`in_guest`]) and prints a verdict line on the serial console, which the
//! host reads back. A missing verdict (crash, hang, timeout) is a failure.
//!
//! The assets come from `scripts/vmrig-fetch` (see
//! `kvmsec-tests/vmrig/README.md`); without them the host-side test prints why
//! and returns, or fails when [`REQUIRED_ENV`] (`KVMSEC_VM_REQUIRED`) is set.
//!
//! ```no_run
//! use kvmsec_tests::vmrig::{self, GuestTests};
//!
//! #[test]
//! fn vm_example() {
//!     let Some(assets) = vmrig::assets_or_skip("vm_example") else { return };
//!     let report = GuestTests::new("example").unwrap().filter("guest_").run(&assets).unwrap();
//!     report.assert_passed();
//! }
//!
//! #[test]
//! fn guest_sees_selinux() {
//!     if !vmrig::in_guest("example") {
//!         return;
//!     }
//!     assert!(std::path::Path::new("/sys/fs/selinux/enforce").exists());
//! }
//! ```

pub mod assets;
pub mod cpio;
pub mod guest;
pub mod initramfs;
pub mod libs;
pub mod qemu;
mod run;
pub mod verdict;

pub use assets::Assets;
pub use guest::{GUEST_CONTEXT, GUEST_ENV, guest_suite, in_guest};
pub use initramfs::Initramfs;
pub use qemu::{BootConfig, BootOutcome};
pub use run::{GuestReport, GuestTests};
pub use verdict::Verdict;

/// Errors of the VM harness.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An I/O operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done, with the path.
        what: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Input or an asset was not usable.
    #[error("{0}")]
    Invalid(String),
}

impl Error {
    /// Wraps an I/O error with what was being done: `.map_err(Error::io("reading x"))`.
    pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
        let what = what.into();
        move |source| Error::Io { what, source }
    }
}

/// Environment variable that turns missing VM assets from a skip into a
/// failure (any value but empty or `0`); CI sets it after fetching them.
pub const REQUIRED_ENV: &str = "KVMSEC_VM_REQUIRED";

/// The assets for a host-side VM test, or `None` (after printing why) when
/// the test should skip: inside the VM itself, or when no assets were fetched.
///
/// # Panics
/// When an asset directory exists but is incomplete or inconsistent (a broken
/// setup, not a reason to skip), and when assets are missing while
/// `KVMSEC_VM_REQUIRED` is set.
pub fn assets_or_skip(test: &str) -> Option<Assets> {
    if guest_suite().is_some() {
        return None;
    }
    match Assets::find() {
        Ok(Some(assets)) => Some(assets),
        Ok(None) => {
            let why = format!(
                "no VM assets in {} (set {} or run scripts/vmrig-fetch; \
                 see kvmsec-tests/vmrig/README.md)",
                Assets::default_dir().display(),
                assets::ASSETS_ENV
            );
            let required = std::env::var(REQUIRED_ENV).is_ok_and(|v| !v.is_empty() && v != "0");
            if required {
                panic!("{test}: {why}, and {REQUIRED_ENV} is set");
            }
            eprintln!("{test}: skipped: {why}");
            None
        }
        Err(e) => panic!("{test}: VM assets unusable: {e}"),
    }
}

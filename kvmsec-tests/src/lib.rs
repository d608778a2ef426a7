//! Integration tests, examples and shared test machinery for the kvmsec crates.
//!
//! - [`report`]: the host security report behind the `host-report` example.
//! - [`vmrig`]: boots a throw-away VM (real SELinux, pure cgroup v2) and runs tests inside it.

pub mod report;
pub mod vmrig;

/// The code in the workspace README, run as doc tests so it cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;

/// The code in each library crate's README, run as doc tests too.
#[cfg(doctest)]
pub mod crate_readmes {
    #[doc = include_str!("../../kvmsec-cpu/README.md")]
    pub struct Cpu;
    #[doc = include_str!("../../kvmsec-cgroup/README.md")]
    pub struct Cgroup;
    #[doc = include_str!("../../kvmsec-selinux/README.md")]
    pub struct Selinux;
    #[doc = include_str!("../../kvmsec-qcow2/README.md")]
    pub struct Qcow2;
}

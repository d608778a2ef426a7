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

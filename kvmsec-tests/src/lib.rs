//! Integration tests, examples and shared test machinery for the kvmsec crates.
//!
//! - [`report`]: the host security report behind the `host-report` example.
//! - [`vmrig`]: boots a throw-away VM (real SELinux, pure cgroup v2) and runs tests inside it.

pub mod report;
pub mod vmrig;

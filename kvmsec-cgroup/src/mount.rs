//! Host access: mounting and unmounting cgroup hierarchies.
//!
//! Mounting a v1 controller set that is already mounted elsewhere gives a second view of the
//! same hierarchy (the kernel shares it); asking for a set that overlaps a different mounted
//! set fails with EBUSY.

use std::io;
use std::path::Path;

use nix::mount::{MntFlags, MsFlags};

use crate::error::{Error, Result};
use crate::hierarchy::Controller;

fn mount_err(op: &'static str, target: &Path, e: nix::Error) -> Error {
    Error::Mount {
        op,
        target: target.to_path_buf(),
        source: io::Error::from_raw_os_error(e as i32),
    }
}

/// Mount a v1 hierarchy for `controllers` (and optionally a `name=`) at `target`, as
/// `mount -t cgroup -o blkio blkio /cgroup/blkio` does. Needs `CAP_SYS_ADMIN`.
pub fn mount_v1(controllers: &[Controller], name: Option<&str>, target: &Path) -> Result<()> {
    let mut opts: Vec<String> = controllers
        .iter()
        .map(|c| c.v1_name().to_string())
        .collect();
    if let Some(n) = name {
        opts.push(format!("name={n}"));
    }
    if opts.is_empty() {
        opts.push("none".into());
    }
    let data = opts.join(",");
    let source = controllers
        .first()
        .map(|c| c.v1_name().to_string())
        .unwrap_or_else(|| "cgroup".into());
    nix::mount::mount(
        Some(source.as_str()),
        target,
        Some("cgroup"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        Some(data.as_str()),
    )
    .map_err(|e| mount_err("mount", target, e))
}

/// Mount the v2 hierarchy at `target`. Needs `CAP_SYS_ADMIN`.
pub fn mount_v2(target: &Path) -> Result<()> {
    nix::mount::mount(
        Some("cgroup2"),
        target,
        Some("cgroup2"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        None::<&str>,
    )
    .map_err(|e| mount_err("mount", target, e))
}

/// Unmount whatever is mounted at `target`.
pub fn unmount(target: &Path) -> Result<()> {
    nix::mount::umount2(target, MntFlags::empty()).map_err(|e| mount_err("umount", target, e))
}

//! Operations: the cgroup section of the host security report.

use std::fmt;
use std::io;
use std::path::Path;

use crate::error::Error;
use crate::fsio;
use crate::group::Group;
use crate::hierarchy::{CgroupVersion, Cgroups, Controller, Layout};
use crate::membership::parse_proc_pid_cgroup;
use crate::mountinfo::parse_mountinfo;
use crate::subsys::{ProcCgroupsEntry, parse_proc_cgroups};

/// Outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Status {
    /// As it should be.
    #[cfg_attr(feature = "serde", serde(rename = "PASS"))]
    Pass,
    /// Works, but weaker than it should be.
    #[cfg_attr(feature = "serde", serde(rename = "WARN"))]
    Warn,
    /// Broken or insecure.
    #[cfg_attr(feature = "serde", serde(rename = "FAIL"))]
    Fail,
    /// For information, or not checked.
    #[cfg_attr(feature = "serde", serde(rename = "INFO"))]
    Info,
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `pad` so that width and alignment flags (`{:<6}`) apply.
        f.pad(match self {
            Status::Pass => "PASS",
            Status::Warn => "WARN",
            Status::Fail => "FAIL",
            Status::Info => "INFO",
        })
    }
}

/// One line of the report.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Check {
    /// Stable machine id (`cgroup.layout`, `cgroup.cpu`, ...).
    pub id: String,
    /// Short human name.
    pub title: String,
    /// Outcome.
    pub status: Status,
    /// Short reason, one line.
    pub reason: String,
}

fn check(id: &str, title: &str, status: Status, reason: impl Into<String>) -> Check {
    Check {
        id: format!("cgroup.{id}"),
        title: title.to_string(),
        status,
        reason: reason.into().replace('\n', " "),
    }
}

fn why(e: &Error) -> String {
    match e {
        Error::Io { source, path, .. } if source.kind() == io::ErrorKind::PermissionDenied => {
            format!("permission denied reading {}", path.display())
        }
        other => other.to_string(),
    }
}

/// The cgroup checks for the live host.
pub fn host_checks() -> Vec<Check> {
    host_checks_at(Path::new("/"))
}

/// The cgroup checks for the host whose filesystem root is `root`: reads
/// `root/proc/self/mountinfo`, `root/proc/cgroups`, `root/proc/self/cgroup` and the
/// hierarchies' root directories under `root`. Never panics, never fails as a whole.
pub fn host_checks_at(root: &Path) -> Vec<Check> {
    let mut out = Vec::new();
    let mounts =
        fsio::read_string(&root.join("proc/self/mountinfo")).and_then(|t| parse_mountinfo(&t));
    let cgroups = match mounts {
        Ok(m) => Cgroups::from_mounts(root, &m, None),
        Err(e) => {
            out.push(check(
                "layout",
                "cgroup layout",
                Status::Info,
                format!("not checked: {}", why(&e)),
            ));
            return out;
        }
    };
    let proc_cgroups: Option<Vec<ProcCgroupsEntry>> = fsio::read_string(&root.join("proc/cgroups"))
        .and_then(|t| parse_proc_cgroups(&t))
        .ok();

    let v2_at = cgroups
        .v2()
        .map(|h| h.mount_point.display().to_string())
        .unwrap_or_default();
    let layout = cgroups.layout();
    out.push(match layout {
        Layout::Hybrid => check(
            "layout",
            "cgroup layout",
            Status::Info,
            format!("hybrid: v1 controllers + cgroup2 at {v2_at}"),
        ),
        Layout::V2 => check(
            "layout",
            "cgroup layout",
            Status::Info,
            format!("v2: unified hierarchy at {v2_at}"),
        ),
        Layout::V1 => check(
            "layout",
            "cgroup layout",
            Status::Info,
            "v1: legacy hierarchies only, no cgroup2 mount",
        ),
        Layout::None => check(
            "layout",
            "cgroup layout",
            Status::Warn,
            "no cgroup filesystem mounted: guests cannot be confined",
        ),
    });

    for c in Controller::HYPERVISOR_SET {
        out.push(controller_check(&cgroups, proc_cgroups.as_deref(), &c));
    }

    out.push(
        match fsio::read_string(&root.join("proc/self/cgroup"))
            .and_then(|t| parse_proc_pid_cgroup(&t))
        {
            Ok(ms) => {
                let parts: Vec<String> = ms
                    .iter()
                    .filter(|m| m.path != "/")
                    .map(|m| {
                        let label = if m.is_v2() {
                            "v2".to_string()
                        } else {
                            m.controllers.join(",")
                        };
                        let del = if m.deleted { " (deleted)" } else { "" };
                        format!("{label}:{}{del}", m.path)
                    })
                    .collect();
                let all_root = ms.iter().all(|m| m.path == "/");
                let reason = if all_root {
                    "root group in every hierarchy".to_string()
                } else {
                    format!("{} (others /)", parts.join("; "))
                };
                check("self", "own cgroup", Status::Info, reason)
            }
            Err(e) => check(
                "self",
                "own cgroup",
                Status::Info,
                format!("not checked: {}", why(&e)),
            ),
        },
    );
    out
}

fn controller_check(
    cgroups: &Cgroups,
    proc_cgroups: Option<&[ProcCgroupsEntry]>,
    c: &Controller,
) -> Check {
    let (id, title) = match c {
        Controller::Io => ("io", "blkio/io controller".to_string()),
        other => (other.v1_name(), format!("{other} controller")),
    };
    let known = proc_cgroups.and_then(|pc| {
        pc.iter()
            .find(|e| e.name == c.v1_name() || e.name == c.v2_name())
    });
    if let Some(e) = known
        && !e.enabled
    {
        return check(
            id,
            &title,
            Status::Warn,
            format!("{} is disabled on the kernel command line", e.name),
        );
    }
    match cgroups.hierarchy_for(c) {
        Some(h) => {
            let at = h.mount_point.display();
            let mut reason = match (h.version, c) {
                (CgroupVersion::V2, Controller::Freezer) => {
                    format!("v2 core (cgroup.freeze) at {at}")
                }
                _ => format!("{} at {at}", h.version),
            };
            if *c == Controller::Io {
                let root = Group::root(h);
                let s = root.io_weight_support();
                let has_child_weight = h.version == CgroupVersion::V2
                    && (root.has_file("io.cost.qos") || root.has_file("io.bfq.weight"));
                if s.none() && !has_child_weight {
                    reason.push_str(" (throttling only: no weight files)");
                }
            }
            check(id, &title, Status::Pass, reason)
        }
        None if *c == Controller::Devices && cgroups.v2().is_some() => check(
            id,
            &title,
            Status::Pass,
            "v2: device access via eBPF (BPF_PROG_TYPE_CGROUP_DEVICE), no devices.* files",
        ),
        None => {
            let detail = match known {
                Some(_) => "compiled in but not mounted",
                None if proc_cgroups.is_some() => "not in /proc/cgroups (not compiled in)",
                None => "not mounted",
            };
            check(id, &title, Status::Warn, format!("missing: {detail}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(feature = "serde")]
    #[test]
    fn serializes_status_as_upper_case() {
        let c = check("layout", "cgroup layout", Status::Pass, "x");
        let j = serde_json::to_string(&c).unwrap();
        assert_eq!(
            j,
            r#"{"id":"cgroup.layout","title":"cgroup layout","status":"PASS","reason":"x"}"#
        );
        let back: Check = serde_json::from_str(&j).unwrap();
        assert_eq!(back, c);
    }

    #[test]
    fn status_display_honours_width() {
        assert_eq!(format!("[{:<6}]", Status::Warn), "[WARN  ]");
        assert_eq!(Status::Info.to_string(), "INFO");
    }

    #[test]
    fn unreadable_root_is_not_checked() {
        let tmp = tempfile::tempdir().unwrap();
        let r = host_checks_at(tmp.path());
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].id, "cgroup.layout");
        assert_eq!(r[0].status, Status::Info);
        assert!(r[0].reason.starts_with("not checked: "));
    }
}

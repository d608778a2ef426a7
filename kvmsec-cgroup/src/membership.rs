//! Format: `/proc/<pid>/cgroup`, the groups a process belongs to.
//!
//! # References
//! - Linux `Documentation/admin-guide/cgroup-v2.rst`, "Processes" and "Namespace".
//! - `man 7 cgroups`, "/proc files".

use std::collections::BTreeSet;
use std::path::Path;

use crate::error::{Result, parse_err};
use crate::fsio;
use crate::group::Group;
use crate::hierarchy::{CgroupVersion, Cgroups, Controller, Hierarchy};
use crate::path::GroupPath;

/// One line of `/proc/<pid>/cgroup`: `hierarchy-id:controller-list:path`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Membership {
    /// Hierarchy id (0 for the v2 line).
    pub hierarchy_id: u32,
    /// Controllers of the hierarchy (`cpu`, `cpuacct`) or its `name=...`; empty for v2.
    pub controllers: Vec<String>,
    /// Path of the group, relative to the reader's cgroup namespace root, without a
    /// ` (deleted)` suffix.
    pub path: String,
    /// The kernel marked the group as removed (` (deleted)`).
    pub deleted: bool,
}

impl Membership {
    /// Is this the v2 line (`0::/path`)?
    pub fn is_v2(&self) -> bool {
        self.hierarchy_id == 0 && self.controllers.is_empty()
    }

    /// The named hierarchy of the line (`systemd` for `name=systemd`).
    pub fn name(&self) -> Option<&str> {
        self.controllers
            .iter()
            .find_map(|c| c.strip_prefix("name="))
    }
}

/// Parse `/proc/<pid>/cgroup`.
///
/// Each line is split into at most three fields, so paths containing `:` survive. Blank lines
/// are ignored; the `0::` line may come anywhere. A trailing ` (deleted)` is removed from the
/// path and reported in [`Membership::deleted`].
///
/// ```
/// use kvmsec_cgroup::membership::parse_proc_pid_cgroup;
/// let m = parse_proc_pid_cgroup("4:memory:/a:b\n0::/machine.slice/vm1.scope (deleted)\n\n")?;
/// assert_eq!(m[0].path, "/a:b");
/// assert!(m[1].is_v2() && m[1].deleted);
/// assert_eq!(m[1].path, "/machine.slice/vm1.scope");
/// # Ok::<(), kvmsec_cgroup::Error>(())
/// ```
pub fn parse_proc_pid_cgroup(text: &str) -> Result<Vec<Membership>> {
    const WHAT: &str = "/proc/<pid>/cgroup line";
    let mut out = Vec::new();
    for line in text.lines() {
        if line.trim().is_empty() {
            continue;
        }
        let mut parts = line.splitn(3, ':');
        let (Some(id), Some(ctrls), Some(path)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(parse_err(WHAT, line, "expected id:controllers:path"));
        };
        let hierarchy_id = id
            .parse()
            .map_err(|_| parse_err(WHAT, line, "hierarchy id is not a number"))?;
        if !path.starts_with('/') {
            return Err(parse_err(WHAT, line, "path does not start with '/'"));
        }
        let (path, deleted) = match path.strip_suffix(" (deleted)") {
            Some(p) => (p, true),
            None => (path, false),
        };
        out.push(Membership {
            hierarchy_id,
            controllers: ctrls
                .split(',')
                .filter(|c| !c.is_empty())
                .map(str::to_string)
                .collect(),
            path: path.to_string(),
            deleted,
        });
    }
    Ok(out)
}

/// Read `root/proc/<pid>/cgroup` (`pid` `None`: `self`).
pub fn read_proc_pid_cgroup_at(root: &Path, pid: Option<u32>) -> Result<Vec<Membership>> {
    let p = match pid {
        Some(pid) => root.join(format!("proc/{pid}/cgroup")),
        None => root.join("proc/self/cgroup"),
    };
    parse_proc_pid_cgroup(&fsio::read_string(&p)?)
}

/// A membership line resolved to a group handle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    /// The line.
    pub membership: Membership,
    /// The group, when its hierarchy is mounted here and the path lies under the mount's
    /// root (a process outside the reader's cgroup namespace shows `/..` paths: `None`).
    pub group: Option<Group>,
}

fn matches(h: &Hierarchy, m: &Membership) -> bool {
    if m.is_v2() {
        return h.version == CgroupVersion::V2;
    }
    if h.version != CgroupVersion::V1 {
        return false;
    }
    if let Some(n) = m.name() {
        return h.name.as_deref() == Some(n);
    }
    let set: BTreeSet<Controller> = m
        .controllers
        .iter()
        .map(|c| Controller::from_name(c))
        .collect();
    h.name.is_none() && !set.is_empty() && set == h.controllers
}

/// Resolve membership lines to group handles on the host `cgroups` describes.
pub fn resolve(cgroups: &Cgroups, memberships: &[Membership]) -> Vec<Placement> {
    memberships
        .iter()
        .map(|m| {
            let group = cgroups
                .hierarchies()
                .iter()
                .find(|h| matches(h, m))
                .and_then(|h| {
                    let rel = h.relative_path(&m.path)?;
                    let p = GroupPath::from_relative(&rel).ok()?;
                    Some(Group::handle(h, &p))
                });
            Placement {
                membership: m.clone(),
                group,
            }
        })
        .collect()
}

/// The groups of process `pid` (`None`: the caller) on the host under `root`.
pub fn groups_of_process_at(root: &Path, pid: Option<u32>) -> Result<Vec<Placement>> {
    let cg = Cgroups::discover_at(root)?;
    Ok(resolve(&cg, &read_proc_pid_cgroup_at(root, pid)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 9 case 6: paths containing ':' split into at most three fields.
    #[test]
    fn case06_path_with_colons() {
        let m = parse_proc_pid_cgroup(
            "0::/kubepods.slice/kubepods-pod1.slice:cri-containerd:278a0a\n\
             1:name=systemd:/a:b:c\n",
        )
        .unwrap();
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].hierarchy_id, 0);
        assert!(m[0].controllers.is_empty());
        assert_eq!(
            m[0].path,
            "/kubepods.slice/kubepods-pod1.slice:cri-containerd:278a0a"
        );
        assert_eq!(m[1].controllers, ["name=systemd"]);
        assert_eq!(m[1].name(), Some("systemd"));
        assert_eq!(m[1].path, "/a:b:c");
    }

    /// Issue 9 case 7: a trailing empty line is ignored.
    #[test]
    fn case07_trailing_empty_line() {
        let text = "9:name=systemd:/\n8:pids:/\n1:cpu,cpuacct:/x\n0::/\n\n";
        let m = parse_proc_pid_cgroup(text).unwrap();
        assert_eq!(m.len(), 4);
        assert_eq!(m[2].controllers, ["cpu", "cpuacct"]);
        assert_eq!(m[3].path, "/");
        assert!(m[3].is_v2());
        assert_eq!(parse_proc_pid_cgroup("\n").unwrap(), vec![]);
    }

    /// Issue 9 case 12: a removed group, path without the suffix, flagged.
    #[test]
    fn case12_deleted_group() {
        let m = parse_proc_pid_cgroup("0::/machine.slice/vm1.scope (deleted)\n").unwrap();
        assert_eq!(
            m,
            vec![Membership {
                hierarchy_id: 0,
                controllers: vec![],
                path: "/machine.slice/vm1.scope".into(),
                deleted: true,
            }]
        );
        let live = parse_proc_pid_cgroup("0::/machine.slice/vm1.scope\n").unwrap();
        assert!(!live[0].deleted);
    }

    #[test]
    fn malformed_lines_are_errors() {
        assert!(parse_proc_pid_cgroup("x::/\n").is_err());
        assert!(parse_proc_pid_cgroup("0:/\n").is_err());
        assert!(parse_proc_pid_cgroup("0::relative\n").is_err());
    }

    #[test]
    fn resolve_to_groups_on_hybrid_host() {
        let mounts = crate::mountinfo::parse_mountinfo(
            "32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpuacct,cpu\n\
             35 31 0:32 /machine /mnt/mem rw - cgroup cgroup rw,memory\n\
             40 31 0:37 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,name=systemd\n\
             41 31 0:38 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n",
        )
        .unwrap();
        let cg = Cgroups::from_mounts(Path::new("/"), &mounts, Some(""));
        let ms = parse_proc_pid_cgroup(
            "9:name=systemd:/user.slice\n4:memory:/machine/vm1\n3:pids:/\n\
             1:cpu,cpuacct:/vm:1\n0::/../outside\n",
        )
        .unwrap();
        let r = resolve(&cg, &ms);
        let dirs: Vec<Option<String>> = r
            .iter()
            .map(|p| p.group.as_ref().map(|g| g.dir().display().to_string()))
            .collect();
        assert_eq!(
            dirs,
            [
                Some("/sys/fs/cgroup/systemd/user.slice".to_string()),
                Some("/mnt/mem/vm1".to_string()),
                None,
                Some("/sys/fs/cgroup/cpu,cpuacct/vm:1".to_string()),
                None,
            ]
        );
    }

    proptest::proptest! {
        #[test]
        fn never_panics(s in "\\PC*") {
            let _ = parse_proc_pid_cgroup(&s);
        }

        #[test]
        fn round_trip(id in 0u32..100, ctrls in proptest::collection::vec("[a-z_=]{1,8}", 0..3),
                      path in "/[a-z0-9:. _-]{0,30}", deleted in proptest::bool::ANY) {
            let suffix = if deleted { " (deleted)" } else { "" };
            let line = format!("{id}:{}:{path}{suffix}\n", ctrls.join(","));
            let m = parse_proc_pid_cgroup(&line).unwrap();
            proptest::prop_assert_eq!(m.len(), 1);
            proptest::prop_assert_eq!(&m[0].path, &path);
            proptest::prop_assert_eq!(m[0].hierarchy_id, id);
            proptest::prop_assert_eq!(m[0].deleted, deleted || path.ends_with(" (deleted)"));
        }
    }
}

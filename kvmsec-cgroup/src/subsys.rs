//! Format and host access: `/proc/cgroups`, and a listing like `lssubsys -am`.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::error::{Result, parse_err};
use crate::fsio;
use crate::hierarchy::{CgroupVersion, Cgroups, Controller};

/// One line of `/proc/cgroups`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct ProcCgroupsEntry {
    /// Subsystem name as the kernel spells it (`blkio`, `cpu`, ...).
    pub name: String,
    /// v1 hierarchy id; 0 when not bound to a v1 hierarchy (unmounted or in v2).
    pub hierarchy: u32,
    /// Number of groups.
    pub num_cgroups: u64,
    /// Enabled (not disabled with `cgroup_disable=`).
    pub enabled: bool,
}

/// Parse `/proc/cgroups`. The header (`#subsys_name hierarchy num_cgroups enabled`) names the
/// columns; lines with an unexpected shape are an error naming the line.
///
/// ```
/// use kvmsec_cgroup::subsys::parse_proc_cgroups;
/// let e = parse_proc_cgroups(
///     "#subsys_name\thierarchy\tnum_cgroups\tenabled\ncpu\t1\t3\t1\nhugetlb\t0\t1\t1\n",
/// )?;
/// assert_eq!(e[0].name, "cpu");
/// assert_eq!(e[1].hierarchy, 0);
/// # Ok::<(), kvmsec_cgroup::Error>(())
/// ```
pub fn parse_proc_cgroups(text: &str) -> Result<Vec<ProcCgroupsEntry>> {
    const WHAT: &str = "/proc/cgroups line";
    let mut cols: Vec<String> = vec![
        "subsys_name".into(),
        "hierarchy".into(),
        "num_cgroups".into(),
        "enabled".into(),
    ];
    let mut out = Vec::new();
    for line in text.lines() {
        if line.trim().is_empty() {
            continue;
        }
        if let Some(h) = line.strip_prefix('#') {
            cols = h.split_whitespace().map(str::to_string).collect();
            continue;
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() != cols.len() {
            return Err(parse_err(
                WHAT,
                line,
                format!("expected {} fields", cols.len()),
            ));
        }
        let mut e = ProcCgroupsEntry {
            name: String::new(),
            hierarchy: 0,
            num_cgroups: 0,
            enabled: true,
        };
        for (col, val) in cols.iter().zip(&fields) {
            let num = || {
                val.parse::<u64>()
                    .map_err(|_| parse_err(WHAT, line, format!("{col} is not a number")))
            };
            match col.as_str() {
                "subsys_name" => e.name = (*val).to_string(),
                "hierarchy" => {
                    e.hierarchy = val
                        .parse()
                        .map_err(|_| parse_err(WHAT, line, "hierarchy is not a number"))?
                }
                "num_cgroups" => e.num_cgroups = num()?,
                "enabled" => e.enabled = num()? != 0,
                _ => {}
            }
        }
        if e.name.is_empty() {
            return Err(parse_err(WHAT, line, "no subsystem name"));
        }
        out.push(e);
    }
    Ok(out)
}

/// Where one subsystem (or group of co-mounted subsystems) lives, as `lssubsys -am` shows.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct SubsystemPlacement {
    /// Subsystem names sharing the hierarchy, in `/proc/cgroups` order.
    pub names: Vec<String>,
    /// v1 hierarchy id (0: not in a v1 hierarchy).
    pub hierarchy: u32,
    /// All enabled.
    pub enabled: bool,
    /// Where mounted: the v1 mount point, or the v2 mount point when the v2 root lists the
    /// controller; `None` when nowhere.
    pub mount_point: Option<PathBuf>,
    /// v1 or v2 (when mounted).
    pub version: Option<CgroupVersion>,
}

/// The `lssubsys -am` view of a host: every subsystem, enabled or not, with its hierarchy and
/// mount point.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct SubsystemListing {
    /// One entry per hierarchy (co-mounted subsystems together), then one per unbound
    /// subsystem.
    pub entries: Vec<SubsystemPlacement>,
}

impl SubsystemListing {
    /// Combine `/proc/cgroups` with the mounted hierarchies.
    pub fn build(proc_cgroups: &[ProcCgroupsEntry], cgroups: &Cgroups) -> Self {
        let mut entries: Vec<SubsystemPlacement> = Vec::new();
        for e in proc_cgroups {
            if e.hierarchy != 0
                && let Some(p) = entries.iter_mut().find(|p| p.hierarchy == e.hierarchy)
            {
                p.names.push(e.name.clone());
                p.enabled &= e.enabled;
                continue;
            }
            let ctrl = Controller::from_name(&e.name);
            let (mount_point, version) = if e.hierarchy != 0 {
                match cgroups
                    .hierarchies()
                    .iter()
                    .find(|h| h.version == CgroupVersion::V1 && h.has(&ctrl))
                {
                    Some(h) => (Some(h.mount_point.clone()), Some(CgroupVersion::V1)),
                    None => (None, None),
                }
            } else {
                match cgroups.v2().filter(|h| h.has(&ctrl)) {
                    Some(h) => (Some(h.mount_point.clone()), Some(CgroupVersion::V2)),
                    None => (None, None),
                }
            };
            entries.push(SubsystemPlacement {
                names: vec![e.name.clone()],
                hierarchy: e.hierarchy,
                enabled: e.enabled,
                mount_point,
                version,
            });
        }
        SubsystemListing { entries }
    }

    /// Read `root/proc/cgroups` and the mount table under `root`.
    pub fn read_at(root: &Path) -> Result<Self> {
        let pc = parse_proc_cgroups(&fsio::read_string(&root.join("proc/cgroups"))?)?;
        let cg = Cgroups::discover_at(root)?;
        Ok(Self::build(&pc, &cg))
    }

    /// The entry holding subsystem `name`.
    pub fn find(&self, name: &str) -> Option<&SubsystemPlacement> {
        self.entries
            .iter()
            .find(|e| e.names.iter().any(|n| n == name))
    }
}

impl fmt::Display for SubsystemListing {
    /// One line per entry: `cpu,cpuacct /sys/fs/cgroup/cpu,cpuacct`, or the bare name when
    /// not mounted, as `lssubsys -am` prints.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for e in &self.entries {
            write!(f, "{}", e.names.join(","))?;
            if let Some(m) = &e.mount_point {
                write!(f, " {}", m.display())?;
            }
            writeln!(f)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mountinfo::parse_mountinfo;

    #[test]
    fn lssubsys_like_listing_on_hybrid_host() {
        let pc = parse_proc_cgroups(
            "#subsys_name\thierarchy\tnum_cgroups\tenabled\n\
             cpuset\t3\t1\t1\ncpu\t1\t1\t1\ncpuacct\t2\t1\t1\nblkio\t7\t1\t1\n\
             memory\t4\t20\t1\nnet_cls\t0\t1\t1\nhugetlb\t0\t1\t1\nrdma\t0\t1\t0\n",
        )
        .unwrap();
        let cg = Cgroups::from_mounts(
            Path::new("/"),
            &parse_mountinfo(
                "32 31 0:29 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n\
                 33 31 0:30 / /sys/fs/cgroup/cpuacct rw - cgroup cgroup rw,cpuacct\n\
                 34 31 0:31 / /sys/fs/cgroup/cpuset rw - cgroup cgroup rw,cpuset\n\
                 35 31 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n\
                 38 31 0:35 / /sys/fs/cgroup/blkio rw - cgroup cgroup rw,blkio\n\
                 41 31 0:38 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n",
            )
            .unwrap(),
            Some("hugetlb"),
        );
        let l = SubsystemListing::build(&pc, &cg);
        assert_eq!(
            l.to_string(),
            "cpuset /sys/fs/cgroup/cpuset\ncpu /sys/fs/cgroup/cpu\n\
             cpuacct /sys/fs/cgroup/cpuacct\nblkio /sys/fs/cgroup/blkio\n\
             memory /sys/fs/cgroup/memory\nnet_cls\nhugetlb /sys/fs/cgroup/unified\nrdma\n"
        );
        assert_eq!(l.find("hugetlb").unwrap().version, Some(CgroupVersion::V2));
        assert!(!l.find("rdma").unwrap().enabled);
    }

    #[test]
    fn comounted_share_an_entry() {
        let pc = parse_proc_cgroups(
            "#subsys_name hierarchy num_cgroups enabled\ncpu 2 5 1\ncpuacct 2 5 1\n",
        )
        .unwrap();
        let l = SubsystemListing::build(&pc, &Cgroups::from_mounts(Path::new("/"), &[], None));
        assert_eq!(l.entries.len(), 1);
        assert_eq!(l.entries[0].names, ["cpu", "cpuacct"]);
        assert_eq!(l.entries[0].mount_point, None);
    }

    #[test]
    fn bad_lines() {
        assert!(parse_proc_cgroups("cpu 1 x 1\n").is_err());
        assert!(parse_proc_cgroups("cpu 1 1\n").is_err());
        assert_eq!(parse_proc_cgroups("\n\n").unwrap(), vec![]);
    }

    proptest::proptest! {
        #[test]
        fn never_panics(s in "\\PC*") {
            let _ = parse_proc_cgroups(&s);
        }
    }
}

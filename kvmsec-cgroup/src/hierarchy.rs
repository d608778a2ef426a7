//! Host access: the cgroup hierarchies mounted on a host, found from mountinfo.

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Component, Path, PathBuf};

use crate::devnum::DeviceNumber;
use crate::error::Result;
use crate::fsio;
use crate::mountinfo::{Mount, parse_mountinfo};

/// cgroup version of a hierarchy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum CgroupVersion {
    /// Legacy hierarchy (`cgroup` filesystem), one or more controllers per hierarchy.
    V1,
    /// Unified hierarchy (`cgroup2` filesystem).
    V2,
}

impl CgroupVersion {
    /// `"v1"` or `"v2"`.
    pub fn as_str(self) -> &'static str {
        match self {
            CgroupVersion::V1 => "v1",
            CgroupVersion::V2 => "v2",
        }
    }
}

impl fmt::Display for CgroupVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A cgroup controller (subsystem).
///
/// The block I/O controller is one value, [`Controller::Io`], named `blkio` in v1 and `io` in
/// v2. Parsing accepts both names.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Controller {
    /// `cpu`: CPU bandwidth and weight.
    Cpu,
    /// `cpuacct` (v1 only; v2 accounts CPU time in every group's `cpu.stat`).
    Cpuacct,
    /// `cpuset`: CPUs and memory nodes.
    Cpuset,
    /// `memory`.
    Memory,
    /// `blkio` (v1) / `io` (v2).
    Io,
    /// `pids`: process number limit.
    Pids,
    /// `freezer` (v1; v2 freezes with the core file `cgroup.freeze`).
    Freezer,
    /// `devices` (v1; v2 needs an eBPF program).
    Devices,
    /// `hugetlb`.
    Hugetlb,
    /// `net_cls` (v1 only).
    NetCls,
    /// `net_prio` (v1 only).
    NetPrio,
    /// `perf_event`.
    PerfEvent,
    /// `rdma`.
    Rdma,
    /// `misc`.
    Misc,
    /// `debug`.
    Debug,
    /// A controller this crate does not know by name.
    Other(String),
}

impl Controller {
    /// Every controller a hypervisor manager typically needs, in report order.
    pub const HYPERVISOR_SET: [Controller; 7] = [
        Controller::Cpu,
        Controller::Cpuset,
        Controller::Memory,
        Controller::Io,
        Controller::Pids,
        Controller::Freezer,
        Controller::Devices,
    ];

    /// Controller from a kernel name (`blkio` and `io` both give [`Controller::Io`]).
    pub fn from_name(name: &str) -> Controller {
        match name {
            "cpu" => Controller::Cpu,
            "cpuacct" => Controller::Cpuacct,
            "cpuset" => Controller::Cpuset,
            "memory" => Controller::Memory,
            "blkio" | "io" => Controller::Io,
            "pids" => Controller::Pids,
            "freezer" => Controller::Freezer,
            "devices" => Controller::Devices,
            "hugetlb" => Controller::Hugetlb,
            "net_cls" => Controller::NetCls,
            "net_prio" => Controller::NetPrio,
            "perf_event" => Controller::PerfEvent,
            "rdma" => Controller::Rdma,
            "misc" => Controller::Misc,
            "debug" => Controller::Debug,
            other => Controller::Other(other.to_string()),
        }
    }

    /// Name in a v1 hierarchy (`blkio` for [`Controller::Io`]).
    pub fn v1_name(&self) -> &str {
        match self {
            Controller::Cpu => "cpu",
            Controller::Cpuacct => "cpuacct",
            Controller::Cpuset => "cpuset",
            Controller::Memory => "memory",
            Controller::Io => "blkio",
            Controller::Pids => "pids",
            Controller::Freezer => "freezer",
            Controller::Devices => "devices",
            Controller::Hugetlb => "hugetlb",
            Controller::NetCls => "net_cls",
            Controller::NetPrio => "net_prio",
            Controller::PerfEvent => "perf_event",
            Controller::Rdma => "rdma",
            Controller::Misc => "misc",
            Controller::Debug => "debug",
            Controller::Other(s) => s,
        }
    }

    /// Name in the v2 hierarchy (`io` for [`Controller::Io`]).
    pub fn v2_name(&self) -> &str {
        match self {
            Controller::Io => "io",
            other => other.v1_name(),
        }
    }

    /// In v2, is this a core feature of every group rather than a controller listed in
    /// `cgroup.controllers`? True for freezer (`cgroup.freeze`) and cpuacct (`cpu.stat`).
    pub fn is_v2_core(&self) -> bool {
        matches!(self, Controller::Freezer | Controller::Cpuacct)
    }
}

impl fmt::Display for Controller {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.v1_name())
    }
}

/// Mount options of v1 cgroupfs that are not controllers.
const V1_FLAGS: &[&str] = &[
    "rw",
    "ro",
    "noprefix",
    "clone_children",
    "xattr",
    "cpuset_v2_mode",
    "favordynmods",
    "none",
    "all",
];

/// One mounted cgroup hierarchy.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Hierarchy {
    /// v1 or v2.
    pub version: CgroupVersion,
    /// Controllers bound to it: from the mount options for v1, from the root's
    /// `cgroup.controllers` for v2 (empty when that could not be read).
    pub controllers: BTreeSet<Controller>,
    /// The `name=` of a named v1 hierarchy (`systemd`, `openrc`).
    pub name: Option<String>,
    /// Where it is mounted (as the mount table says, not prefixed with the host root).
    pub mount_point: PathBuf,
    /// The group that is the root of this mount (`/` unless bind-mounted or seen from a cgroup
    /// namespace).
    pub mount_root: PathBuf,
    /// Further mount points of the same hierarchy, in mount-table order.
    pub other_mount_points: Vec<PathBuf>,
    /// Superblock options that are not controllers (`clone_children`, `nsdelegate`, ...).
    pub flags: Vec<String>,
    /// Device number shared by all mounts of the hierarchy.
    pub device: Option<DeviceNumber>,
    /// The filesystem root the mount point is under (`/` on the live host, a fixture
    /// directory in tests).
    pub host_root: PathBuf,
}

impl Hierarchy {
    /// The directory of the mount's root group on this machine (host root + mount point).
    pub fn dir(&self) -> PathBuf {
        fsio::under_root(&self.host_root, &self.mount_point)
    }

    /// Is `controller` bound to this hierarchy?
    pub fn has(&self, controller: &Controller) -> bool {
        self.controllers.contains(controller)
    }

    /// The directory of a group given by its path as `/proc/<pid>/cgroup` shows it, or `None`
    /// when that group lies outside this mount (above its root, or written with `..` as a
    /// process outside the reader's cgroup namespace appears).
    pub fn dir_for_cgroup_path(&self, cgroup_path: &str) -> Option<PathBuf> {
        let rel = self.relative_path(cgroup_path)?;
        if rel.as_os_str().is_empty() {
            Some(self.dir())
        } else {
            Some(self.dir().join(rel))
        }
    }

    /// A `/proc/<pid>/cgroup` path made relative to this mount's root, if it lies under it.
    pub(crate) fn relative_path(&self, cgroup_path: &str) -> Option<PathBuf> {
        let p = Path::new(cgroup_path);
        if p.components().any(|c| matches!(c, Component::ParentDir)) {
            return None;
        }
        if self
            .mount_root
            .components()
            .any(|c| matches!(c, Component::ParentDir))
        {
            return None;
        }
        let rel = p.strip_prefix(&self.mount_root).ok()?;
        Some(rel.to_path_buf())
    }

    /// A short description: `cpu,cpuacct at /sys/fs/cgroup/cpu,cpuacct (v1)`.
    pub fn describe(&self) -> String {
        let what = if let Some(n) = &self.name {
            format!("name={n}")
        } else if self.controllers.is_empty() {
            "no controllers".to_string()
        } else {
            self.controllers
                .iter()
                .map(|c| match self.version {
                    CgroupVersion::V1 => c.v1_name().to_string(),
                    CgroupVersion::V2 => c.v2_name().to_string(),
                })
                .collect::<Vec<_>>()
                .join(",")
        };
        format!(
            "{what} at {} ({})",
            self.mount_point.display(),
            self.version
        )
    }
}

/// How a host arranges its hierarchies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Layout {
    /// No cgroup filesystem is mounted.
    None,
    /// Only v1 hierarchies (legacy).
    V1,
    /// Only the v2 hierarchy holds controllers (named v1 hierarchies such as `name=systemd`
    /// may exist beside it; they carry no controllers).
    V2,
    /// v1 controller hierarchies plus a cgroup2 mount (usually `/sys/fs/cgroup/unified`)
    /// holding the controllers not bound to v1.
    Hybrid,
}

impl fmt::Display for Layout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Layout::None => "none",
            Layout::V1 => "v1",
            Layout::V2 => "v2",
            Layout::Hybrid => "hybrid",
        })
    }
}

/// The cgroup hierarchies of a host.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Cgroups {
    host_root: PathBuf,
    hierarchies: Vec<Hierarchy>,
}

fn v1_key(m: &Mount) -> (Option<DeviceNumber>, Vec<String>) {
    let mut opts: Vec<String> = m
        .super_options
        .iter()
        .filter(|o| *o != "rw" && *o != "ro")
        .cloned()
        .collect();
    opts.sort();
    (m.device, opts)
}

impl Cgroups {
    /// Build the host view from a mount table. `v2_controllers` is the content of the v2
    /// root's `cgroup.controllers` (`None`: read it from `host_root` + mount point, and use an
    /// empty set when that fails).
    ///
    /// Mounts are recognised by filesystem type (`cgroup`, `cgroup2`), never by source. Mounts
    /// of one hierarchy (same device number, or for `/proc/mounts` input the same options) are
    /// merged; the first mount whose root is `/` becomes [`Hierarchy::mount_point`], the
    /// others are listed in [`Hierarchy::other_mount_points`].
    pub fn from_mounts(host_root: &Path, mounts: &[Mount], v2_controllers: Option<&str>) -> Self {
        let mut groups: Vec<(CgroupVersion, Vec<&Mount>)> = Vec::new();
        for m in mounts {
            let version = match m.fs_type.as_str() {
                "cgroup" => CgroupVersion::V1,
                "cgroup2" => CgroupVersion::V2,
                _ => continue,
            };
            let found = groups.iter_mut().find(|(v, ms)| {
                *v == version
                    && ms
                        .first()
                        .is_some_and(|first| match (first.device, m.device) {
                            (Some(a), Some(b)) => a == b,
                            _ => version == CgroupVersion::V2 || v1_key(first) == v1_key(m),
                        })
            });
            match found {
                Some((_, ms)) => ms.push(m),
                None => groups.push((version, vec![m])),
            }
        }

        let mut hierarchies = Vec::new();
        for (version, ms) in groups {
            let primary_idx = ms
                .iter()
                .position(|m| m.root == Path::new("/"))
                .unwrap_or(0);
            let Some(primary) = ms.get(primary_idx) else {
                continue;
            };
            let others = ms
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != primary_idx)
                .map(|(_, m)| m.mount_point.clone())
                .collect();
            let mut controllers = BTreeSet::new();
            let mut flags = Vec::new();
            let mut name = None;
            match version {
                CgroupVersion::V1 => {
                    for o in &primary.super_options {
                        if let Some(n) = o.strip_prefix("name=") {
                            name = Some(n.to_string());
                        } else if o.contains('=') || V1_FLAGS.contains(&o.as_str()) {
                            if o != "rw" && o != "ro" {
                                flags.push(o.clone());
                            }
                        } else {
                            controllers.insert(Controller::from_name(o));
                        }
                    }
                }
                CgroupVersion::V2 => {
                    flags = primary
                        .super_options
                        .iter()
                        .filter(|o| *o != "rw" && *o != "ro")
                        .cloned()
                        .collect();
                    let text = match v2_controllers {
                        Some(t) => Some(t.to_string()),
                        None => fsio::read_string(
                            &fsio::under_root(host_root, &primary.mount_point)
                                .join("cgroup.controllers"),
                        )
                        .ok(),
                    };
                    if let Some(t) = text {
                        controllers = t.split_whitespace().map(Controller::from_name).collect();
                    }
                }
            }
            hierarchies.push(Hierarchy {
                version,
                controllers,
                name,
                mount_point: primary.mount_point.clone(),
                mount_root: primary.root.clone(),
                other_mount_points: others,
                flags,
                device: primary.device,
                host_root: host_root.to_path_buf(),
            });
        }
        Cgroups {
            host_root: host_root.to_path_buf(),
            hierarchies,
        }
    }

    /// Discover the hierarchies of the host whose filesystem root is `root`, from
    /// `root/proc/self/mountinfo`.
    pub fn discover_at(root: &Path) -> Result<Self> {
        let text = fsio::read_string(&root.join("proc/self/mountinfo"))?;
        let mounts = parse_mountinfo(&text)?;
        Ok(Self::from_mounts(root, &mounts, None))
    }

    /// Discover the hierarchies of the live host.
    pub fn discover() -> Result<Self> {
        Self::discover_at(Path::new("/"))
    }

    /// The filesystem root this view was read under.
    pub fn host_root(&self) -> &Path {
        &self.host_root
    }

    /// All hierarchies, in mount-table order.
    pub fn hierarchies(&self) -> &[Hierarchy] {
        &self.hierarchies
    }

    /// The v2 (unified) hierarchy, if mounted.
    pub fn v2(&self) -> Option<&Hierarchy> {
        self.hierarchies
            .iter()
            .find(|h| h.version == CgroupVersion::V2)
    }

    /// A named v1 hierarchy (`systemd`).
    pub fn named(&self, name: &str) -> Option<&Hierarchy> {
        self.hierarchies
            .iter()
            .find(|h| h.name.as_deref() == Some(name))
    }

    /// Where `controller` is available: its v1 hierarchy if one is mounted, else the v2
    /// hierarchy if it lists the controller (for freezer and cpuacct, which are core
    /// features in v2, any v2 hierarchy).
    pub fn hierarchy_for(&self, controller: &Controller) -> Option<&Hierarchy> {
        self.hierarchies
            .iter()
            .find(|h| h.version == CgroupVersion::V1 && h.has(controller))
            .or_else(|| {
                self.v2()
                    .filter(|h| h.has(controller) || controller.is_v2_core())
            })
    }

    /// v1, v2 or hybrid (see [`Layout`]).
    pub fn layout(&self) -> Layout {
        let v1_ctrl = self
            .hierarchies
            .iter()
            .any(|h| h.version == CgroupVersion::V1 && !h.controllers.is_empty());
        let v1_any = self
            .hierarchies
            .iter()
            .any(|h| h.version == CgroupVersion::V1);
        match (v1_ctrl, self.v2().is_some()) {
            (true, true) => Layout::Hybrid,
            (false, true) => Layout::V2,
            (true, false) => Layout::V1,
            (false, false) if v1_any => Layout::V1,
            (false, false) => Layout::None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cg(text: &str, v2: Option<&str>) -> Cgroups {
        Cgroups::from_mounts(Path::new("/"), &parse_mountinfo(text).unwrap(), v2)
    }

    /// Issue 9 case 4: `name=systemd` is a named hierarchy; with cgroup2 at /sys/fs/cgroup
    /// the host is v2.
    #[test]
    fn case04_named_systemd_plus_cgroup2_is_v2() {
        let c = cg(
            "25 24 0:22 / /sys/fs/cgroup rw,nosuid shared:4 - cgroup2 cgroup2 rw,nsdelegate\n\
             40 25 0:37 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,name=systemd\n",
            Some("cpuset cpu io memory pids"),
        );
        assert_eq!(c.layout(), Layout::V2);
        let sd = c.named("systemd").unwrap();
        assert!(sd.controllers.is_empty());
        assert_eq!(sd.version, CgroupVersion::V1);
        let v2 = c.v2().unwrap();
        assert_eq!(v2.mount_point, Path::new("/sys/fs/cgroup"));
        assert_eq!(v2.flags, ["nsdelegate"]);
        assert_eq!(
            c.hierarchy_for(&Controller::Io).unwrap().mount_point,
            Path::new("/sys/fs/cgroup")
        );
        assert_eq!(
            c.hierarchy_for(&Controller::Freezer).unwrap().version,
            CgroupVersion::V2
        );
        assert!(c.hierarchy_for(&Controller::NetCls).is_none());
    }

    /// Issue 9 case 5: co-mounted controllers in any option order, with clone_children.
    #[test]
    fn case05_comount_any_order_clone_children() {
        let c = cg(
            "33 25 0:29 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpuacct,cpu\n\
             34 25 0:30 / /sys/fs/cgroup/net_cls,net_prio rw - cgroup cgroup rw,net_prio,clone_children,net_cls\n\
             35 25 0:31 / /sys/fs/cgroup/blkio rw - cgroup blkio rw,blkio,release_agent=/x\n",
            None,
        );
        assert_eq!(c.layout(), Layout::V1);
        let h = c.hierarchy_for(&Controller::Cpu).unwrap();
        assert_eq!(
            h.controllers,
            BTreeSet::from([Controller::Cpu, Controller::Cpuacct])
        );
        assert_eq!(h.mount_point, Path::new("/sys/fs/cgroup/cpu,cpuacct"));
        assert_eq!(c.hierarchy_for(&Controller::Cpuacct), Some(h));
        let n = c.hierarchy_for(&Controller::NetPrio).unwrap();
        assert_eq!(
            n.controllers,
            BTreeSet::from([Controller::NetCls, Controller::NetPrio])
        );
        assert_eq!(n.flags, ["clone_children"]);
        let b = c.hierarchy_for(&Controller::Io).unwrap();
        assert_eq!(b.controllers, BTreeSet::from([Controller::Io]));
        assert_eq!(b.flags, ["release_agent=/x"]);
    }

    #[test]
    fn same_hierarchy_twice_and_bind_root() {
        let c = cg(
            "50 25 0:33 /machine /mnt/bound rw - cgroup cgroup rw,memory\n\
             35 25 0:33 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n\
             36 25 0:33 / /tmp/second rw - cgroup cgroup rw,memory\n",
            None,
        );
        assert_eq!(c.hierarchies().len(), 1);
        let h = &c.hierarchies()[0];
        assert_eq!(h.mount_point, Path::new("/sys/fs/cgroup/memory"));
        assert_eq!(
            h.other_mount_points,
            [PathBuf::from("/mnt/bound"), PathBuf::from("/tmp/second")]
        );

        // Only the bind mount: the group root is /machine.
        let b = cg(
            "50 25 0:33 /machine /mnt/bound rw - cgroup cgroup rw,memory\n",
            None,
        );
        let h = &b.hierarchies()[0];
        assert_eq!(h.mount_root, Path::new("/machine"));
        assert_eq!(
            h.dir_for_cgroup_path("/machine/vm1"),
            Some(PathBuf::from("/mnt/bound/vm1"))
        );
        assert_eq!(
            h.dir_for_cgroup_path("/machine"),
            Some(PathBuf::from("/mnt/bound"))
        );
        assert_eq!(h.dir_for_cgroup_path("/user.slice"), None);
        assert_eq!(h.dir_for_cgroup_path("/../outside"), None);
    }

    #[test]
    fn layouts() {
        let hybrid = cg(
            "32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n\
             40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd\n\
             41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n",
            Some("hugetlb\n"),
        );
        assert_eq!(hybrid.layout(), Layout::Hybrid);
        assert_eq!(
            hybrid.v2().unwrap().controllers,
            BTreeSet::from([Controller::Hugetlb])
        );
        assert_eq!(
            hybrid.hierarchy_for(&Controller::Cpu).unwrap().version,
            CgroupVersion::V1
        );
        assert_eq!(cg("", None).layout(), Layout::None);
        assert_eq!(
            cg(
                "40 31 0:37 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,name=systemd\n",
                None
            )
            .layout(),
            Layout::V1
        );
    }
}

//! A typed cgroup v1 / v2 / hybrid API for putting qemu-kvm guests in their place.
//!
//! A hypervisor manager controls how much CPU, memory and disk I/O each guest gets by placing
//! its QEMU process into control groups. This crate makes every step typed and checked, on
//! legacy v1, pure v2 and hybrid hosts alike: discover the hierarchies (mountinfo,
//! `/proc/cgroups`, `/proc/<pid>/cgroup`), create and remove groups, find guests by `-name`,
//! move their processes and threads, set and read every controller, take usage snapshots.
//!
//! ```
//! use kvmsec_cgroup::{mountinfo::parse_mountinfo_line, RangeList};
//!
//! let m = parse_mountinfo_line(
//!     r"38 31 0:35 / /sys/fs/cgroup/blk\040io rw,relatime shared:9 - cgroup none rw,blkio",
//! )?;
//! assert_eq!(m.fs_type, "cgroup");
//! assert_eq!(m.mount_point.to_str(), Some("/sys/fs/cgroup/blk io"));
//!
//! let cpus: RangeList = "0-3,8,10-11".parse()?;
//! assert_eq!(cpus.len(), 7);
//! assert_eq!(cpus.to_string(), "0-3,8,10-11");
//! # Ok::<(), kvmsec_cgroup::Error>(())
//! ```
//!
//! Placing two guests 10:1 (needs root; `no_run`):
//!
//! ```no_run
//! use kvmsec_cgroup::{qemu, Cgroups, Controller, CpuWeight, GroupPath, GroupSet};
//! let host = Cgroups::discover()?;
//! for (name, weight) in [("high_prio", 1000), ("low_prio", 100)] {
//!     let set = GroupSet::create(&host, &GroupPath::new(name)?, &[Controller::Cpu])?;
//!     set.group(&Controller::Cpu).unwrap().set_cpu_weight(CpuWeight::new(weight)?)?;
//!     for guest in qemu::find_qemu_guests(name)? {
//!         set.move_process(guest.pid)?;
//!     }
//! }
//! # Ok::<(), kvmsec_cgroup::Error>(())
//! ```
//!
//! # Layers
//! - Formats (pure): [`mountinfo`], [`membership`] (`/proc/<pid>/cgroup`), [`subsys`]
//!   (`/proc/cgroups`), [`RangeList`], [`stat`] (`io.stat`, flat keyed files), [`convert`]
//!   (shares ↔ weight formulas), [`IoMaxLine`], [`DeviceRule`].
//! - Host access, each with an `_at(root)` form: [`Cgroups::discover_at`],
//!   [`qemu::find_qemu_guests_at`], [`namespaces::namespaces_at`], [`mount`].
//! - Operations: [`Group`] (one hierarchy) and [`GroupSet`] (one path across hierarchies),
//!   controller methods on [`Group`] (cpu, cpuset, memory, io, pids, freezer, devices),
//!   [`Usage`] snapshots, [`report`].
//!
//! # Crate features
//! - `serde`: `Serialize`/`Deserialize` for the public data types (report checks serialize
//!   their status as `"PASS"`, `"WARN"`, ...).
//!
//! # Platform support
//! Linux only (cgroupfs). Tested on a hybrid host (each v1 controller mounted separately,
//! `name=systemd`, cgroup2 at `/sys/fs/cgroup/unified`) and on fixture trees shaped like pure
//! v1, pure v2 and hybrid hosts. Writing needs root or a delegated subtree.
//!
//! # Limitations
//! - cgroup v2 device control needs an eBPF program; this crate does not load one and says so
//!   with [`Error::DevicesNeedEbpf`].
//! - Block I/O weights need CFQ, BFQ or iocost; on kernels without them only throttling is
//!   available ([`Error::IoWeightUnsupported`], [`Group::io_weight_support`]).
//! - No systemd D-Bus integration: on systemd-managed v2 hosts, work inside a delegated
//!   subtree (`Delegate=yes`).
//! - v2 threaded subtrees: [`Group::make_threaded`] and [`Group::move_thread`] place single
//!   threads; there is no higher-level per-vCPU layout helper.
//! - The old v1 `ns` subsystem no longer exists; see [`namespaces`].
//!
//! # References
//! - Linux `Documentation/admin-guide/cgroup-v1/` (cgroups.rst, cpusets.rst, memory.rst,
//!   blkio-controller.rst, freezer-subsystem.rst, devices.rst, pids.rst).
//! - Linux `Documentation/admin-guide/cgroup-v2.rst`.
//! - `man 7 cgroups`, `man 7 cgroup_namespaces`, `man 5 proc` (mountinfo).
#![deny(missing_docs)]
#![warn(missing_debug_implementations)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod accounting;
pub mod convert;
pub mod cpu;
pub mod devices;
mod devnum;
mod error;
pub mod freezer;
mod fsio;
pub mod group;
pub mod groupset;
pub mod hierarchy;
pub mod io;
pub mod membership;
pub mod memory;
pub mod mount;
pub mod mountinfo;
pub mod namespaces;
mod path;
mod pids;
pub mod qemu;
pub mod ranges;
pub mod report;
pub mod stat;
pub mod subsys;

pub use accounting::{Usage, UsageDelta};
pub use convert::{
    BfqWeight, BlkioWeight, CpuShares, CpuWeight, IoWeight, IoWeightFormula, SharesFormula,
};
pub use cpu::{CpuMax, CpuUsage};
pub use devices::{DeviceAccess, DeviceRule, DeviceType};
pub use devnum::DeviceNumber;
pub use error::{Error, Result};
pub use freezer::FreezerState;
pub use group::{Group, RemoveOptions};
pub use groupset::GroupSet;
pub use hierarchy::{CgroupVersion, Cgroups, Controller, Hierarchy, Layout};
pub use io::{BlockDevice, IoLimits, IoMaxLine, IoWeightSupport, IoWeights};
pub use membership::Membership;
pub use memory::MemoryEvents;
pub use path::{GroupPath, NAME_MAX, PATH_MAX};
pub use ranges::RangeList;
pub use stat::{IoCounters, IoStat};

//! Operations: usage snapshots of a group for billing, and their differences.

use std::collections::BTreeMap;

use crate::cpu::CpuUsage;
use crate::devnum::DeviceNumber;
use crate::error::Result;
use crate::group::Group;
use crate::hierarchy::{CgroupVersion, Controller};
use crate::stat::{IoCounters, IoStat};

/// What a group has used so far. Parts whose controller is not available are `None`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Usage {
    /// CPU time (v1 `cpuacct`, v2 `cpu.stat`).
    pub cpu: Option<CpuUsage>,
    /// Memory in use, bytes.
    pub memory_current: Option<u64>,
    /// Peak memory, bytes.
    pub memory_peak: Option<u64>,
    /// Per-device I/O (bad rows are recorded inside, never fatal).
    pub io: Option<IoStat>,
}

/// The difference of two [`Usage`] snapshots (counters only grow; a counter that went down,
/// as after `blkio.reset_stats`, counts as 0).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct UsageDelta {
    /// CPU time used in between, nanoseconds.
    pub cpu_ns: Option<u64>,
    /// Change of memory in use, bytes (may be negative).
    pub memory_change: Option<i128>,
    /// I/O per device in between.
    pub io: BTreeMap<DeviceNumber, IoCounters>,
}

fn io_diff(now: &IoCounters, then: &IoCounters) -> IoCounters {
    IoCounters {
        rbytes: now.rbytes.saturating_sub(then.rbytes),
        wbytes: now.wbytes.saturating_sub(then.wbytes),
        rios: now.rios.saturating_sub(then.rios),
        wios: now.wios.saturating_sub(then.wios),
        dbytes: now.dbytes.saturating_sub(then.dbytes),
        dios: now.dios.saturating_sub(then.dios),
        extra: BTreeMap::new(),
    }
}

impl Usage {
    /// Snapshot whatever the group's hierarchy accounts (for a v1 host, call it on each
    /// controller's group and [`Usage::merge`], or use [`crate::GroupSet::usage`]).
    pub fn of_group(g: &Group) -> Result<Usage> {
        let v2 = g.version() == CgroupVersion::V2;
        let h = g.hierarchy();
        let mut u = Usage::default();
        if (v2 && g.has_file("cpu.stat")) || h.has(&Controller::Cpuacct) {
            u.cpu = Some(g.cpu_usage()?);
        }
        let mem_file = if v2 {
            "memory.current"
        } else {
            "memory.usage_in_bytes"
        };
        if (v2 || h.has(&Controller::Memory)) && g.has_file(mem_file) {
            u.memory_current = Some(g.memory_usage()?);
            u.memory_peak = g.memory_peak()?;
        }
        let io_file = if v2 {
            "io.stat"
        } else {
            "blkio.throttle.io_service_bytes"
        };
        if (v2 || h.has(&Controller::Io)) && g.has_file(io_file) {
            u.io = Some(g.io_stat()?);
        }
        Ok(u)
    }

    /// Fill the parts this snapshot lacks from `other`.
    pub fn merge(mut self, other: Usage) -> Usage {
        if self.cpu.is_none() {
            self.cpu = other.cpu;
        }
        if self.memory_current.is_none() {
            self.memory_current = other.memory_current;
            self.memory_peak = other.memory_peak;
        }
        if self.io.is_none() {
            self.io = other.io;
        }
        self
    }

    /// What was used between `earlier` and this snapshot.
    pub fn since(&self, earlier: &Usage) -> UsageDelta {
        let cpu_ns = match (&self.cpu, &earlier.cpu) {
            (Some(a), Some(b)) => Some(a.total_ns.saturating_sub(b.total_ns)),
            _ => None,
        };
        let memory_change = match (self.memory_current, earlier.memory_current) {
            (Some(a), Some(b)) => Some(i128::from(a) - i128::from(b)),
            _ => None,
        };
        let mut io = BTreeMap::new();
        if let Some(now) = &self.io {
            let empty = IoCounters::default();
            for (d, c) in &now.devices {
                let then = earlier
                    .io
                    .as_ref()
                    .and_then(|e| e.devices.get(d))
                    .unwrap_or(&empty);
                io.insert(*d, io_diff(c, then));
            }
        }
        UsageDelta {
            cpu_ns,
            memory_change,
            io,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn difference_of_snapshots() {
        let d = DeviceNumber::new(7, 3);
        let mk = |cpu, mem, wb| Usage {
            cpu: Some(CpuUsage {
                total_ns: cpu,
                user_ns: None,
                system_ns: None,
            }),
            memory_current: Some(mem),
            memory_peak: None,
            io: Some(IoStat {
                devices: BTreeMap::from([(
                    d,
                    IoCounters {
                        wbytes: wb,
                        wios: wb / 4096,
                        ..Default::default()
                    },
                )]),
                bad_rows: vec![],
            }),
        };
        let a = mk(1_000, 4096, 8192);
        let b = mk(5_000, 0, 16384);
        let delta = b.since(&a);
        assert_eq!(delta.cpu_ns, Some(4_000));
        assert_eq!(delta.memory_change, Some(-4096));
        assert_eq!(delta.io[&d].wbytes, 8192);
        assert_eq!(delta.io[&d].wios, 2);
        // A reset counter does not underflow.
        assert_eq!(a.since(&b).io[&d].wbytes, 0);
        let merged = Usage::default().merge(a.clone());
        assert_eq!(merged, a);
    }
}

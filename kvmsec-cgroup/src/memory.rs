//! Operations: the `memory` controller, typed, in v1 and v2.
//!
//! v1 and v2 agree on the hard limit, usage and peak. They differ elsewhere, and this module
//! does not pretend otherwise: v1's soft limit only acts under global pressure and has no v2
//! twin (v2 offers `memory.low` protection and `memory.high` throttling instead); v1 limits
//! memory *plus* swap together, v2 limits swap alone.
//!
//! # References
//! - Linux `Documentation/admin-guide/cgroup-v1/memory.rst`.
//! - Linux `Documentation/admin-guide/cgroup-v2.rst`, "Memory".

use std::collections::BTreeMap;

use crate::error::{Error, Result};
use crate::group::Group;
use crate::hierarchy::{CgroupVersion, Controller};
use crate::stat::{format_max, parse_flat_keyed};

/// v1 reports "no limit" as `PAGE_COUNTER_MAX * PAGE_SIZE` (9223372036854771712 with 4 KiB
/// pages); any value at or above this threshold is read as unlimited.
pub const V1_UNLIMITED_THRESHOLD: u64 = 0x7FFF_FFFF_FFFF_0000;

/// Out-of-memory and limit events of a group.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct MemoryEvents {
    /// Times the OOM killer killed a process in the group (v1 `oom_kill` in
    /// `memory.oom_control`, v2 `oom_kill` in `memory.events`).
    pub oom_kill: u64,
    /// v2: times the group hit `memory.max` and an OOM was invoked (`oom`).
    pub oom: Option<u64>,
    /// Times usage hit the hard limit (v2 `max`; v1 `memory.failcnt`).
    pub max: u64,
    /// v2: times usage exceeded `memory.high`.
    pub high: Option<u64>,
    /// v1: the group is under OOM right now (`under_oom`).
    pub under_oom: Option<bool>,
    /// Every key as the kernel wrote it.
    pub raw: BTreeMap<String, u64>,
}

fn v1_limit(v: u64) -> Option<u64> {
    if v >= V1_UNLIMITED_THRESHOLD {
        None
    } else {
        Some(v)
    }
}

impl Group {
    fn read_v1_limit(&self, name: &str) -> Result<Option<u64>> {
        let text = self.read(name)?;
        let t = text.trim();
        if t == "-1" {
            return Ok(None);
        }
        Ok(v1_limit(t.parse().map_err(|_| {
            crate::error::parse_err("memory limit", t, format!("in {name}"))
        })?))
    }

    fn write_limit(&self, name: &str, v: Option<u64>) -> Result<()> {
        let text = match (self.version(), v) {
            (CgroupVersion::V1, None) => "-1".to_string(),
            (_, v) => format_max(v),
        };
        self.write(name, &text)
    }

    /// Hard limit in bytes (`memory.max`, v1 `memory.limit_in_bytes`); `None` = unlimited.
    pub fn memory_max(&self) -> Result<Option<u64>> {
        match self.version() {
            CgroupVersion::V2 => {
                self.need(Controller::Memory, "memory.max")?;
                self.read_max("memory.max")
            }
            CgroupVersion::V1 => {
                self.need(Controller::Memory, "memory.limit_in_bytes")?;
                self.read_v1_limit("memory.limit_in_bytes")
            }
        }
    }

    /// Set the hard limit (the kernel rounds down to whole pages).
    pub fn set_memory_max(&self, bytes: Option<u64>) -> Result<()> {
        check_bytes("memory limit", bytes)?;
        match self.version() {
            CgroupVersion::V2 => {
                self.need(Controller::Memory, "memory.max")?;
                self.write_limit("memory.max", bytes)
            }
            CgroupVersion::V1 => {
                self.need(Controller::Memory, "memory.limit_in_bytes")?;
                self.write_limit("memory.limit_in_bytes", bytes)
            }
        }
    }

    fn v2_only(&self, setting: &'static str, hint: &'static str) -> Result<()> {
        if self.version() == CgroupVersion::V1 {
            return Err(Error::Unsupported {
                setting,
                version: "v1",
                hint,
            });
        }
        self.need(Controller::Memory, setting)
    }

    /// v2 `memory.high` (throttle above this). v1 has no equivalent.
    pub fn memory_high(&self) -> Result<Option<u64>> {
        self.v2_only("memory.high", HIGH_HINT)?;
        self.read_max("memory.high")
    }

    /// Set v2 `memory.high`.
    pub fn set_memory_high(&self, bytes: Option<u64>) -> Result<()> {
        check_bytes("memory.high", bytes)?;
        self.v2_only("memory.high", HIGH_HINT)?;
        self.write_limit("memory.high", bytes)
    }

    /// v2 `memory.low` (best-effort protection). v1 has no equivalent.
    pub fn memory_low(&self) -> Result<u64> {
        self.v2_only("memory.low", HIGH_HINT)?;
        self.read_u64("memory.low")
    }

    /// Set v2 `memory.low`.
    pub fn set_memory_low(&self, bytes: u64) -> Result<()> {
        check_bytes("memory.low", Some(bytes))?;
        self.v2_only("memory.low", HIGH_HINT)?;
        self.write("memory.low", &bytes.to_string())
    }

    /// v1 `memory.soft_limit_in_bytes`; `None` = unlimited.
    pub fn memory_soft_limit(&self) -> Result<Option<u64>> {
        self.v1_only("memory.soft_limit_in_bytes")?;
        self.read_v1_limit("memory.soft_limit_in_bytes")
    }

    /// Set v1 `memory.soft_limit_in_bytes`.
    pub fn set_memory_soft_limit(&self, bytes: Option<u64>) -> Result<()> {
        check_bytes("memory soft limit", bytes)?;
        self.v1_only("memory.soft_limit_in_bytes")?;
        self.write_limit("memory.soft_limit_in_bytes", bytes)
    }

    fn v1_only(&self, setting: &'static str) -> Result<()> {
        if self.version() == CgroupVersion::V2 {
            return Err(Error::Unsupported {
                setting,
                version: "v2",
                hint: "use memory.low (protection) or memory.high (throttling)",
            });
        }
        self.need(Controller::Memory, setting)
    }

    /// Swap limit in bytes, swap alone: v2 `memory.swap.max`. On v1, where the kernel
    /// limits memory plus swap together (`memory.memsw.limit_in_bytes`), this reads
    /// `memsw - limit` and needs both limits set.
    pub fn swap_max(&self) -> Result<Option<u64>> {
        match self.version() {
            CgroupVersion::V2 => {
                self.need(Controller::Memory, "memory.swap.max")?;
                self.read_max("memory.swap.max")
            }
            CgroupVersion::V1 => {
                self.need(Controller::Memory, "memory.memsw.limit_in_bytes")?;
                let memsw = self.read_v1_limit("memory.memsw.limit_in_bytes")?;
                let mem = self.read_v1_limit("memory.limit_in_bytes")?;
                Ok(match (memsw, mem) {
                    (Some(s), Some(m)) => Some(s.saturating_sub(m)),
                    _ => None,
                })
            }
        }
    }

    /// Set the swap limit (swap alone). On v1 this writes `memory.memsw.limit_in_bytes =
    /// memory limit + swap`, so it needs a memory limit set first; `None` lifts it.
    pub fn set_swap_max(&self, bytes: Option<u64>) -> Result<()> {
        check_bytes("swap limit", bytes)?;
        match self.version() {
            CgroupVersion::V2 => {
                self.need(Controller::Memory, "memory.swap.max")?;
                self.write_limit("memory.swap.max", bytes)
            }
            CgroupVersion::V1 => {
                self.need(Controller::Memory, "memory.memsw.limit_in_bytes")?;
                match (bytes, self.memory_max()?) {
                    (None, _) => self.write("memory.memsw.limit_in_bytes", "-1"),
                    (Some(s), Some(m)) => self.write(
                        "memory.memsw.limit_in_bytes",
                        &m.saturating_add(s).to_string(),
                    ),
                    (Some(_), None) => Err(Error::Unsupported {
                        setting: "memory.memsw.limit_in_bytes",
                        version: "v1",
                        hint: "v1 limits memory+swap together; set a memory limit first",
                    }),
                }
            }
        }
    }

    /// v1 `memory.memsw.limit_in_bytes` (memory + swap) as the kernel holds it.
    pub fn memsw_limit(&self) -> Result<Option<u64>> {
        self.v1_only("memory.memsw.limit_in_bytes")?;
        self.read_v1_limit("memory.memsw.limit_in_bytes")
    }

    /// Current usage in bytes (`memory.current`, v1 `memory.usage_in_bytes`).
    pub fn memory_usage(&self) -> Result<u64> {
        let f = match self.version() {
            CgroupVersion::V2 => "memory.current",
            CgroupVersion::V1 => "memory.usage_in_bytes",
        };
        self.need(Controller::Memory, f)?;
        self.read_u64(f)
    }

    /// Peak usage in bytes (`memory.peak`, Linux 5.19+; v1 `memory.max_usage_in_bytes`);
    /// `None` when the kernel has no such file.
    pub fn memory_peak(&self) -> Result<Option<u64>> {
        let f = match self.version() {
            CgroupVersion::V2 => "memory.peak",
            CgroupVersion::V1 => "memory.max_usage_in_bytes",
        };
        if !self.has_file(f) {
            return Ok(None);
        }
        self.read_u64(f).map(Some)
    }

    /// `memory.stat`, every key (v1 also has the `total_*` hierarchical keys).
    pub fn memory_stat(&self) -> Result<BTreeMap<String, u64>> {
        self.need(Controller::Memory, "memory.stat")?;
        Ok(parse_flat_keyed(&self.read("memory.stat")?))
    }

    /// OOM and limit events.
    pub fn memory_events(&self) -> Result<MemoryEvents> {
        match self.version() {
            CgroupVersion::V2 => {
                self.need(Controller::Memory, "memory.events")?;
                let raw = parse_flat_keyed(&self.read("memory.events")?);
                Ok(MemoryEvents {
                    oom_kill: raw.get("oom_kill").copied().unwrap_or(0),
                    oom: raw.get("oom").copied(),
                    max: raw.get("max").copied().unwrap_or(0),
                    high: raw.get("high").copied(),
                    under_oom: None,
                    raw,
                })
            }
            CgroupVersion::V1 => {
                self.need(Controller::Memory, "memory.oom_control")?;
                let raw = parse_flat_keyed(&self.read("memory.oom_control")?);
                Ok(MemoryEvents {
                    oom_kill: raw.get("oom_kill").copied().unwrap_or(0),
                    oom: None,
                    max: self.read_u64("memory.failcnt")?,
                    high: None,
                    under_oom: raw.get("under_oom").map(|v| *v != 0),
                    raw,
                })
            }
        }
    }
}

const HIGH_HINT: &str =
    "v1 has only memory.soft_limit_in_bytes, which acts under global pressure alone";

fn check_bytes(setting: &'static str, v: Option<u64>) -> Result<()> {
    match v {
        Some(b) if b > i64::MAX as u64 => Err(Error::OutOfRange {
            setting,
            value: i128::from(b),
            min: 0,
            max: i128::from(i64::MAX),
        }),
        _ => Ok(()),
    }
}

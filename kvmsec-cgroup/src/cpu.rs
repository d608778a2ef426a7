//! Operations: the `cpu` and `cpuset` controllers, typed, in v1 and v2.
//!
//! # References
//! - Linux `Documentation/scheduler/sched-design-CFS.rst`, `sched-bwc.rst` (CFS bandwidth).
//! - Linux `Documentation/admin-guide/cgroup-v2.rst`, "CPU" and "Cpuset".
//! - Linux `Documentation/admin-guide/cgroup-v1/cpusets.rst`.

use std::time::Duration;

use crate::convert::{CpuShares, CpuWeight, SharesFormula};
use crate::error::{Error, Result, parse_err};
use crate::group::Group;
use crate::hierarchy::{CgroupVersion, Controller};
use crate::ranges::RangeList;
use crate::stat::parse_flat_keyed;

/// CPU bandwidth limit: at most `quota` of CPU time in each `period` (`cpu.max` in v2,
/// `cpu.cfs_quota_us`/`cpu.cfs_period_us` in v1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct CpuMax {
    /// Microseconds per period; `None` is unlimited (`max`, v1 `-1`).
    pub quota_us: Option<u64>,
    /// Period length in microseconds, 1000..=1000000.
    pub period_us: u64,
}

impl CpuMax {
    /// The kernel's default: unlimited, 100 ms period.
    pub const UNLIMITED: CpuMax = CpuMax {
        quota_us: None,
        period_us: 100_000,
    };

    /// A limit of `cpus` whole CPUs' worth of time over a 100 ms period (`0.5` = half a CPU).
    pub fn cpus(cpus: f64) -> Result<CpuMax> {
        let quota = (cpus * 100_000.0).round();
        if !(1000.0..=1e15).contains(&quota) {
            return Err(Error::OutOfRange {
                setting: "cpu.max quota",
                value: quota as i128,
                min: 1000,
                max: 1_000_000_000_000_000,
            });
        }
        Ok(CpuMax {
            quota_us: Some(quota as u64),
            period_us: 100_000,
        })
    }

    fn check(&self) -> Result<()> {
        if !(1000..=1_000_000).contains(&self.period_us) {
            return Err(Error::OutOfRange {
                setting: "cpu period (us)",
                value: i128::from(self.period_us),
                min: 1000,
                max: 1_000_000,
            });
        }
        if let Some(q) = self.quota_us
            && !(1000..=i64::MAX as u64 / 1000).contains(&q)
        {
            return Err(Error::OutOfRange {
                setting: "cpu quota (us)",
                value: i128::from(q),
                min: 1000,
                max: i128::from(i64::MAX / 1000),
            });
        }
        Ok(())
    }

    /// Parse a v2 `cpu.max` line (`max 100000`, `50000 100000`).
    pub fn parse_v2(text: &str) -> Result<CpuMax> {
        let mut it = text.split_whitespace();
        let (Some(q), Some(p), None) = (it.next(), it.next(), it.next()) else {
            return Err(parse_err("cpu.max", text, "expected QUOTA PERIOD"));
        };
        Ok(CpuMax {
            quota_us: crate::stat::parse_max(q)?,
            period_us: p
                .parse()
                .map_err(|_| parse_err("cpu.max", text, "period is not a number"))?,
        })
    }

    /// The v2 `cpu.max` line.
    pub fn format_v2(&self) -> String {
        format!(
            "{} {}",
            crate::stat::format_max(self.quota_us),
            self.period_us
        )
    }
}

/// CPU time used by a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct CpuUsage {
    /// Total CPU time, nanoseconds (v2 has microsecond resolution).
    pub total_ns: u64,
    /// User time, nanoseconds, when the kernel reports it.
    pub user_ns: Option<u64>,
    /// System time, nanoseconds, when the kernel reports it.
    pub system_ns: Option<u64>,
}

impl CpuUsage {
    /// Total as a [`Duration`].
    pub fn total(&self) -> Duration {
        Duration::from_nanos(self.total_ns)
    }
}

impl Group {
    /// Fail unless `controller` can be used in this group: bound to the v1 hierarchy, or (v2)
    /// its interface file `probe` exists, which means the parent enables it.
    pub(crate) fn need(&self, controller: Controller, probe: &str) -> Result<()> {
        match self.version() {
            CgroupVersion::V1 if self.hierarchy().has(&controller) => Ok(()),
            CgroupVersion::V1 => Err(Error::ControllerUnavailable {
                controller: controller.v1_name().to_string(),
                detail: format!(
                    "not bound to the v1 hierarchy at {}",
                    self.hierarchy().mount_point.display()
                ),
            }),
            CgroupVersion::V2 if self.has_file(probe) => Ok(()),
            CgroupVersion::V2 => Err(Error::ControllerUnavailable {
                controller: controller.v2_name().to_string(),
                detail: format!(
                    "{} is missing: enable +{} in the parent's cgroup.subtree_control",
                    self.file(probe).display(),
                    controller.v2_name()
                ),
            }),
        }
    }

    /// The group's CPU weight. v2 reads `cpu.weight`; v1 reads `cpu.shares` and converts
    /// with [`SharesFormula::KernelRoundClosest`].
    pub fn cpu_weight(&self) -> Result<CpuWeight> {
        match self.version() {
            CgroupVersion::V2 => {
                self.need(Controller::Cpu, "cpu.weight")?;
                CpuWeight::new(self.read_u64("cpu.weight")?)
            }
            CgroupVersion::V1 => {
                Ok(SharesFormula::KernelRoundClosest.shares_to_weight(self.cpu_shares()?))
            }
        }
    }

    /// Set the CPU weight. v2 writes `cpu.weight`; v1 writes `cpu.shares` converted with
    /// [`SharesFormula::KernelRoundClosest`], the conversion the scheduler itself applies,
    /// so the effect is the same in both versions.
    pub fn set_cpu_weight(&self, w: CpuWeight) -> Result<()> {
        match self.version() {
            CgroupVersion::V2 => {
                self.need(Controller::Cpu, "cpu.weight")?;
                self.write("cpu.weight", &w.to_string())
            }
            CgroupVersion::V1 => {
                self.set_cpu_shares(SharesFormula::KernelRoundClosest.weight_to_shares(w))
            }
        }
    }

    /// The group's `cpu.shares` (v1). On v2 the weight is converted with the default
    /// formula.
    pub fn cpu_shares(&self) -> Result<CpuShares> {
        match self.version() {
            CgroupVersion::V1 => {
                self.need(Controller::Cpu, "cpu.shares")?;
                CpuShares::new(self.read_u64("cpu.shares")?)
            }
            CgroupVersion::V2 => Ok(SharesFormula::default().weight_to_shares(self.cpu_weight()?)),
        }
    }

    /// Set `cpu.shares` (v1); on v2 converted with the default formula
    /// ([`Group::set_cpu_shares_with`] picks another).
    pub fn set_cpu_shares(&self, s: CpuShares) -> Result<()> {
        self.set_cpu_shares_with(s, SharesFormula::default())
    }

    /// Set `cpu.shares`; on v2 write `cpu.weight` converted with `formula`.
    pub fn set_cpu_shares_with(&self, s: CpuShares, formula: SharesFormula) -> Result<()> {
        match self.version() {
            CgroupVersion::V1 => {
                self.need(Controller::Cpu, "cpu.shares")?;
                self.write("cpu.shares", &s.to_string())
            }
            CgroupVersion::V2 => self.set_cpu_weight(formula.shares_to_weight(s)),
        }
    }

    /// The bandwidth limit (`cpu.max`, or `cpu.cfs_quota_us` + `cpu.cfs_period_us`).
    pub fn cpu_max(&self) -> Result<CpuMax> {
        match self.version() {
            CgroupVersion::V2 => {
                self.need(Controller::Cpu, "cpu.max")?;
                CpuMax::parse_v2(&self.read("cpu.max")?)
            }
            CgroupVersion::V1 => {
                self.need(Controller::Cpu, "cpu.cfs_quota_us")?;
                let q = self.read("cpu.cfs_quota_us")?;
                let q: i64 = q
                    .trim()
                    .parse()
                    .map_err(|_| parse_err("cpu.cfs_quota_us", &q, "not a number"))?;
                Ok(CpuMax {
                    quota_us: u64::try_from(q).ok(),
                    period_us: self.read_u64("cpu.cfs_period_us")?,
                })
            }
        }
    }

    /// Set the bandwidth limit. Values are checked (period 1 ms..1 s, quota ≥ 1 ms) before
    /// anything is written.
    pub fn set_cpu_max(&self, m: CpuMax) -> Result<()> {
        m.check()?;
        match self.version() {
            CgroupVersion::V2 => {
                self.need(Controller::Cpu, "cpu.max")?;
                self.write("cpu.max", &m.format_v2())
            }
            CgroupVersion::V1 => {
                self.need(Controller::Cpu, "cpu.cfs_quota_us")?;
                // Lift the quota first so a shorter period never conflicts with it.
                self.write("cpu.cfs_quota_us", "-1")?;
                self.write("cpu.cfs_period_us", &m.period_us.to_string())?;
                let q = match m.quota_us {
                    Some(q) => q.to_string(),
                    None => "-1".to_string(),
                };
                self.write("cpu.cfs_quota_us", &q)
            }
        }
    }

    /// CPU time used (v1 `cpuacct.usage`, `cpuacct.usage_user`/`_sys`; v2 `cpu.stat`, a
    /// core file present in every non-root group even without the cpu controller).
    pub fn cpu_usage(&self) -> Result<CpuUsage> {
        match self.version() {
            CgroupVersion::V1 => {
                self.need(Controller::Cpuacct, "cpuacct.usage")?;
                let opt = |name| -> Result<Option<u64>> {
                    match self.read_optional(name)? {
                        Some(t) => Ok(t.trim().parse().ok()),
                        None => Ok(None),
                    }
                };
                Ok(CpuUsage {
                    total_ns: self.read_u64("cpuacct.usage")?,
                    user_ns: opt("cpuacct.usage_user")?,
                    system_ns: opt("cpuacct.usage_sys")?,
                })
            }
            CgroupVersion::V2 => {
                let st = parse_flat_keyed(&self.read("cpu.stat")?);
                let us = |k: &str| st.get(k).map(|v| v.saturating_mul(1000));
                Ok(CpuUsage {
                    total_ns: us("usage_usec")
                        .ok_or_else(|| parse_err("cpu.stat", "", "no usage_usec key"))?,
                    user_ns: us("user_usec"),
                    system_ns: us("system_usec"),
                })
            }
        }
    }

    fn cpuset_file(&self, v1: &'static str, v2: &'static str) -> Result<&'static str> {
        let name = match self.version() {
            CgroupVersion::V1 => v1,
            CgroupVersion::V2 => v2,
        };
        self.need(Controller::Cpuset, name)?;
        Ok(name)
    }

    fn read_ranges(&self, name: &str) -> Result<RangeList> {
        self.read(name)?.parse()
    }

    /// CPUs the group may run on (`cpuset.cpus`).
    pub fn cpuset_cpus(&self) -> Result<RangeList> {
        self.read_ranges(self.cpuset_file("cpuset.cpus", "cpuset.cpus")?)
    }

    /// Set `cpuset.cpus`.
    pub fn set_cpuset_cpus(&self, cpus: &RangeList) -> Result<()> {
        self.write(
            self.cpuset_file("cpuset.cpus", "cpuset.cpus")?,
            &cpus.to_string(),
        )
    }

    /// Memory nodes the group may allocate from (`cpuset.mems`).
    pub fn cpuset_mems(&self) -> Result<RangeList> {
        self.read_ranges(self.cpuset_file("cpuset.mems", "cpuset.mems")?)
    }

    /// Set `cpuset.mems`.
    pub fn set_cpuset_mems(&self, mems: &RangeList) -> Result<()> {
        self.write(
            self.cpuset_file("cpuset.mems", "cpuset.mems")?,
            &mems.to_string(),
        )
    }

    /// CPUs actually granted (`cpuset.effective_cpus` in v1, `cpuset.cpus.effective` in
    /// v2).
    pub fn cpuset_effective_cpus(&self) -> Result<RangeList> {
        self.read_ranges(self.cpuset_file("cpuset.effective_cpus", "cpuset.cpus.effective")?)
    }
}

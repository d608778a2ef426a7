//! Operations: freezing and thawing a group (v1 `freezer` controller, v2 core
//! `cgroup.freeze`).
//!
//! # References
//! - Linux `Documentation/admin-guide/cgroup-v1/freezer-subsystem.rst`.
//! - Linux `Documentation/admin-guide/cgroup-v2.rst`, `cgroup.freeze`, `cgroup.events`.

use std::fmt;
use std::time::{Duration, Instant};

use crate::error::{Error, Result, parse_err};
use crate::group::Group;
use crate::hierarchy::{CgroupVersion, Controller};
use crate::stat::parse_flat_keyed;

/// Freezer state (v1 `freezer.state`; v2 derived from `cgroup.freeze` and `cgroup.events`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum FreezerState {
    /// Running.
    Thawed,
    /// Freeze requested, not all tasks stopped yet.
    Freezing,
    /// All tasks stopped.
    Frozen,
}

impl FreezerState {
    /// Parse `THAWED`, `FREEZING` or `FROZEN`.
    pub fn parse(s: &str) -> Result<Self> {
        match s.trim() {
            "THAWED" => Ok(FreezerState::Thawed),
            "FREEZING" => Ok(FreezerState::Freezing),
            "FROZEN" => Ok(FreezerState::Frozen),
            _ => Err(parse_err(
                "freezer.state",
                s,
                "expected THAWED, FREEZING or FROZEN",
            )),
        }
    }
}

impl fmt::Display for FreezerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FreezerState::Thawed => "THAWED",
            FreezerState::Freezing => "FREEZING",
            FreezerState::Frozen => "FROZEN",
        })
    }
}

impl Group {
    fn need_freezer(&self) -> Result<()> {
        if self.version() == CgroupVersion::V2 && self.path().is_root() {
            return Err(Error::ControllerUnavailable {
                controller: "freezer".into(),
                detail: "the v2 root group cannot be frozen".into(),
            });
        }
        self.need(Controller::Freezer, "cgroup.freeze")?;
        if self.version() == CgroupVersion::V1 && !self.has_file("freezer.state") {
            return Err(Error::ControllerUnavailable {
                controller: "freezer".into(),
                detail: "the root group of a v1 freezer hierarchy cannot be frozen".into(),
            });
        }
        Ok(())
    }

    /// The freezer state.
    pub fn freezer_state(&self) -> Result<FreezerState> {
        self.need_freezer()?;
        match self.version() {
            CgroupVersion::V1 => FreezerState::parse(&self.read("freezer.state")?),
            CgroupVersion::V2 => {
                let want = self.read("cgroup.freeze")?.trim() == "1";
                let ev = parse_flat_keyed(&self.read("cgroup.events")?);
                let frozen = ev.get("frozen").is_some_and(|v| *v != 0);
                Ok(match (want, frozen) {
                    (true, true) => FreezerState::Frozen,
                    (true, false) => FreezerState::Freezing,
                    (false, _) => FreezerState::Thawed,
                })
            }
        }
    }

    /// Freeze the group and wait until the kernel reports it frozen, at most `timeout`.
    /// On timeout the freeze request stays in place ([`Group::thaw`] undoes it).
    pub fn freeze(&self, timeout: Duration) -> Result<()> {
        self.need_freezer()?;
        match self.version() {
            CgroupVersion::V1 => self.write("freezer.state", "FROZEN")?,
            CgroupVersion::V2 => self.write("cgroup.freeze", "1")?,
        }
        let start = Instant::now();
        let mut pause = Duration::from_millis(1);
        loop {
            if self.freezer_state()? == FreezerState::Frozen {
                return Ok(());
            }
            if start.elapsed() >= timeout {
                return Err(Error::FreezeTimeout {
                    path: self.dir(),
                    timeout,
                });
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(50));
        }
    }

    /// Thaw the group.
    pub fn thaw(&self) -> Result<()> {
        self.need_freezer()?;
        match self.version() {
            CgroupVersion::V1 => self.write("freezer.state", "THAWED"),
            CgroupVersion::V2 => self.write("cgroup.freeze", "0"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states() {
        assert_eq!(
            FreezerState::parse("FROZEN\n").unwrap(),
            FreezerState::Frozen
        );
        assert_eq!(FreezerState::Freezing.to_string(), "FREEZING");
        assert!(FreezerState::parse("frozen").is_err());
    }
}

//! Operations: the `pids` controller (same files in v1 and v2).
//!
//! # References
//! - Linux `Documentation/admin-guide/cgroup-v1/pids.rst`.

use crate::error::{Error, Result};
use crate::group::Group;
use crate::hierarchy::Controller;

impl Group {
    /// `pids.max`; `None` is unlimited (`max`).
    pub fn pids_max(&self) -> Result<Option<u64>> {
        self.need(Controller::Pids, "pids.max")?;
        self.read_max("pids.max")
    }

    /// Set `pids.max` (`None` writes `max`). Values above `i32::MAX` are refused.
    pub fn set_pids_max(&self, max: Option<u64>) -> Result<()> {
        if let Some(v) = max
            && v > i32::MAX as u64
        {
            return Err(Error::OutOfRange {
                setting: "pids.max",
                value: i128::from(v),
                min: 0,
                max: i128::from(i32::MAX),
            });
        }
        self.need(Controller::Pids, "pids.max")?;
        self.write("pids.max", &crate::stat::format_max(max))
    }

    /// `pids.current`: tasks in the group and its descendants.
    pub fn pids_current(&self) -> Result<u64> {
        self.need(Controller::Pids, "pids.current")?;
        self.read_u64("pids.current")
    }
}

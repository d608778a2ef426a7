//! Device numbers (`MAJ:MIN`) as the kernel prints them in mountinfo, `io.max`, `io.stat` and
//! `blkio.throttle.*`.

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use crate::error::{Error, Result, parse_err};

/// A device number, `major:minor`.
///
/// ```
/// use kvmsec_cgroup::DeviceNumber;
/// let d: DeviceNumber = "8:16".parse()?;
/// assert_eq!((d.major, d.minor), (8, 16));
/// assert_eq!(d.to_string(), "8:16");
/// # Ok::<(), kvmsec_cgroup::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct DeviceNumber {
    /// Major number.
    pub major: u32,
    /// Minor number.
    pub minor: u32,
}

impl DeviceNumber {
    /// A device number from its parts.
    pub const fn new(major: u32, minor: u32) -> Self {
        Self { major, minor }
    }

    /// The device number of the block device at `path` (for example `/dev/loop3`), from its
    /// `st_rdev`.
    pub fn of_block_device(path: &Path) -> Result<Self> {
        use std::os::unix::fs::{FileTypeExt, MetadataExt};
        let md = std::fs::metadata(path).map_err(|e| crate::fsio::io_err("stat", path, e))?;
        if !md.file_type().is_block_device() {
            return Err(Error::NotABlockDevice {
                path: path.to_path_buf(),
            });
        }
        let rdev = md.rdev();
        Ok(Self {
            major: libc::major(rdev),
            minor: libc::minor(rdev),
        })
    }
}

impl fmt::Display for DeviceNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.major, self.minor)
    }
}

impl FromStr for DeviceNumber {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let (maj, min) = s
            .split_once(':')
            .ok_or_else(|| parse_err("device number", s, "expected MAJOR:MINOR"))?;
        let major = maj
            .parse()
            .map_err(|_| parse_err("device number", s, "major is not a number"))?;
        let minor = min
            .parse()
            .map_err(|_| parse_err("device number", s, "minor is not a number"))?;
        Ok(Self { major, minor })
    }
}

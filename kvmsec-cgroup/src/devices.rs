//! Formats and operations: the v1 `devices` controller's allow/deny lists.
//!
//! On cgroup v2 there are no `devices.*` files: device access is controlled by an eBPF
//! program of type `BPF_PROG_TYPE_CGROUP_DEVICE` attached to the group, which this crate does
//! not load. Every call here on a v2 group returns [`Error::DevicesNeedEbpf`].
//!
//! # References
//! - Linux `Documentation/admin-guide/cgroup-v1/devices.rst`.
//! - Linux `Documentation/admin-guide/cgroup-v2.rst`, "Device controller".

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result, parse_err};
use crate::group::Group;
use crate::hierarchy::{CgroupVersion, Controller};

/// Device type of a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum DeviceType {
    /// `a`: all devices.
    All,
    /// `b`: block devices.
    Block,
    /// `c`: character devices.
    Char,
}

/// Access bits of a rule: read, write, mknod.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct DeviceAccess {
    /// `r`.
    pub read: bool,
    /// `w`.
    pub write: bool,
    /// `m`.
    pub mknod: bool,
}

impl DeviceAccess {
    /// `rwm`.
    pub const ALL: DeviceAccess = DeviceAccess {
        read: true,
        write: true,
        mknod: true,
    };
}

/// One rule: `c 1:3 rwm`, `b 8:* r`, `a *:* rwm`. A `None` major/minor is `*`.
///
/// ```
/// use kvmsec_cgroup::DeviceRule;
/// let r: DeviceRule = "c 10:232 rw".parse()?; // /dev/kvm
/// assert_eq!(r.major, Some(10));
/// assert_eq!(r.to_string(), "c 10:232 rw");
/// assert_eq!("a".parse::<DeviceRule>()?.to_string(), "a *:* rwm");
/// # Ok::<(), kvmsec_cgroup::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct DeviceRule {
    /// Device type.
    pub kind: DeviceType,
    /// Major number, `None` = any.
    pub major: Option<u32>,
    /// Minor number, `None` = any.
    pub minor: Option<u32>,
    /// Access.
    pub access: DeviceAccess,
}

impl FromStr for DeviceRule {
    type Err = Error;
    /// Parses rule text; a lone `a` means `a *:* rwm`, as the kernel accepts it.
    fn from_str(s: &str) -> Result<Self> {
        const WHAT: &str = "device rule";
        let f: Vec<&str> = s.split_whitespace().collect();
        let kind = match f.first().copied() {
            Some("a") => DeviceType::All,
            Some("b") => DeviceType::Block,
            Some("c") => DeviceType::Char,
            _ => return Err(parse_err(WHAT, s, "type must be a, b or c")),
        };
        if f.len() == 1 && kind == DeviceType::All {
            return Ok(DeviceRule {
                kind,
                major: None,
                minor: None,
                access: DeviceAccess::ALL,
            });
        }
        let [_, numbers, acc] = f.as_slice() else {
            return Err(parse_err(WHAT, s, "expected TYPE MAJOR:MINOR ACCESS"));
        };
        let (ma, mi) = numbers
            .split_once(':')
            .ok_or_else(|| parse_err(WHAT, s, "expected MAJOR:MINOR"))?;
        let num = |x: &str| -> Result<Option<u32>> {
            if x == "*" {
                Ok(None)
            } else {
                x.parse()
                    .map(Some)
                    .map_err(|_| parse_err(WHAT, s, "major/minor must be a number or *"))
            }
        };
        let mut access = DeviceAccess::default();
        for c in acc.chars() {
            let slot = match c {
                'r' => &mut access.read,
                'w' => &mut access.write,
                'm' => &mut access.mknod,
                _ => return Err(parse_err(WHAT, s, "access letters are r, w, m")),
            };
            if *slot {
                return Err(parse_err(WHAT, s, "access letter repeated"));
            }
            *slot = true;
        }
        if acc.is_empty() {
            return Err(parse_err(WHAT, s, "no access letters"));
        }
        Ok(DeviceRule {
            kind,
            major: num(ma)?,
            minor: num(mi)?,
            access,
        })
    }
}

impl fmt::Display for DeviceRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let k = match self.kind {
            DeviceType::All => 'a',
            DeviceType::Block => 'b',
            DeviceType::Char => 'c',
        };
        let n = |v: Option<u32>| v.map_or_else(|| "*".to_string(), |v| v.to_string());
        write!(f, "{k} {}:{} ", n(self.major), n(self.minor))?;
        if self.access.read {
            f.write_str("r")?;
        }
        if self.access.write {
            f.write_str("w")?;
        }
        if self.access.mknod {
            f.write_str("m")?;
        }
        Ok(())
    }
}

impl Group {
    fn need_devices(&self) -> Result<()> {
        if self.version() == CgroupVersion::V2 {
            return Err(Error::DevicesNeedEbpf { path: self.dir() });
        }
        self.need(Controller::Devices, "devices.list")
    }

    /// The rules in force (`devices.list`).
    pub fn device_rules(&self) -> Result<Vec<DeviceRule>> {
        self.need_devices()?;
        self.read("devices.list")?
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(str::parse)
            .collect()
    }

    /// Allow access (`devices.allow`).
    pub fn allow_device(&self, rule: &DeviceRule) -> Result<()> {
        self.need_devices()?;
        self.write("devices.allow", &rule.to_string())
    }

    /// Deny access (`devices.deny`); `a *:* rwm` clears the list.
    pub fn deny_device(&self, rule: &DeviceRule) -> Result<()> {
        self.need_devices()?;
        self.write("devices.deny", &rule.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules() {
        let r: DeviceRule = "b 8:* r".parse().unwrap();
        assert_eq!(r.kind, DeviceType::Block);
        assert_eq!((r.major, r.minor), (Some(8), None));
        assert!(r.access.read && !r.access.write);
        for bad in [
            "", "x 1:2 r", "c 1:2", "c 1-2 r", "c 1:2 rx", "c 1:2 rr", "c a:2 r",
        ] {
            assert!(bad.parse::<DeviceRule>().is_err(), "{bad}");
        }
    }

    proptest::proptest! {
        #[test]
        fn never_panics(s in "\\PC*") {
            let _ = s.parse::<DeviceRule>();
        }

        #[test]
        fn round_trip(k in 0u8..3, ma in proptest::option::of(0u32..5000),
                      mi in proptest::option::of(0u32..5000), r: bool, w: bool, m: bool) {
            proptest::prop_assume!(r || w || m);
            let rule = DeviceRule {
                kind: [DeviceType::All, DeviceType::Block, DeviceType::Char][usize::from(k)],
                major: ma, minor: mi,
                access: DeviceAccess { read: r, write: w, mknod: m },
            };
            let back: DeviceRule = rule.to_string().parse().unwrap();
            proptest::prop_assert_eq!(back, rule);
        }
    }
}

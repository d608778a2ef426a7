//! Operations and formats: the block I/O controller (`blkio` in v1, `io` in v2): weights,
//! per-device weights and throttling.
//!
//! Weights need a proportional I/O policy in the kernel: CFQ (`blkio.weight`, v1, gone
//! since Linux 5.0), BFQ (`blkio.bfq.weight` / `io.bfq.weight`) or iocost (`io.weight`). A
//! kernel with none of them offers throttling only; [`Group::io_weight_support`] says which
//! files exist, and setting a weight where none does is [`Error::IoWeightUnsupported`].
//!
//! # References
//! - Linux `Documentation/admin-guide/cgroup-v1/blkio-controller.rst`.
//! - Linux `Documentation/admin-guide/cgroup-v2.rst`, "IO" (`io.max`, `io.weight`, `io.stat`).
//! - Linux `Documentation/block/bfq-iosched.rst` (`io.bfq.weight`).

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::str::FromStr;

use crate::convert::{BfqWeight, BlkioWeight, IoWeight, IoWeightFormula};
use crate::devnum::DeviceNumber;
use crate::error::{Error, Result, parse_err};
use crate::group::Group;
use crate::hierarchy::{CgroupVersion, Controller};
use crate::stat::{IoStat, format_max, parse_blkio_throttle, parse_io_stat, parse_max};

/// Per-device throttle limits; `None` is unlimited. A v2 `io.max` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct IoLimits {
    /// Read bytes per second.
    pub rbps: Option<u64>,
    /// Write bytes per second.
    pub wbps: Option<u64>,
    /// Read operations per second.
    pub riops: Option<u64>,
    /// Write operations per second.
    pub wiops: Option<u64>,
}

impl IoLimits {
    fn check(&self) -> Result<()> {
        for (name, v) in [
            ("rbps", self.rbps),
            ("wbps", self.wbps),
            ("riops", self.riops),
            ("wiops", self.wiops),
        ] {
            if let Some(v) = v
                && (v == 0 || v == u64::MAX)
            {
                return Err(Error::OutOfRange {
                    setting: name,
                    value: i128::from(v),
                    min: 1,
                    max: i128::from(u64::MAX - 1),
                });
            }
        }
        Ok(())
    }
}

/// One `io.max` line: a device and its limits.
///
/// ```
/// use kvmsec_cgroup::IoMaxLine;
/// let l: IoMaxLine = "8:16 rbps=2097152 wbps=max riops=max wiops=120".parse()?;
/// assert_eq!(l.limits.rbps, Some(2097152));
/// assert_eq!(l.limits.wbps, None);
/// assert_eq!(l.to_string(), "8:16 rbps=2097152 wbps=max riops=max wiops=120");
/// # Ok::<(), kvmsec_cgroup::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct IoMaxLine {
    /// The device.
    pub device: DeviceNumber,
    /// Its limits.
    pub limits: IoLimits,
}

impl FromStr for IoMaxLine {
    type Err = Error;
    /// Keys not written stay unlimited; unknown keys are refused.
    fn from_str(s: &str) -> Result<Self> {
        let mut it = s.split_whitespace();
        let device: DeviceNumber = it
            .next()
            .ok_or_else(|| parse_err("io.max line", s, "empty"))?
            .parse()?;
        let mut limits = IoLimits::default();
        for kv in it {
            let (k, v) = kv
                .split_once('=')
                .ok_or_else(|| parse_err("io.max line", s, format!("{kv:?} is not key=value")))?;
            let v = parse_max(v)?;
            match k {
                "rbps" => limits.rbps = v,
                "wbps" => limits.wbps = v,
                "riops" => limits.riops = v,
                "wiops" => limits.wiops = v,
                _ => return Err(parse_err("io.max line", s, format!("unknown key {k:?}"))),
            }
        }
        Ok(IoMaxLine { device, limits })
    }
}

impl fmt::Display for IoMaxLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let l = &self.limits;
        write!(
            f,
            "{} rbps={} wbps={} riops={} wiops={}",
            self.device,
            format_max(l.rbps),
            format_max(l.wbps),
            format_max(l.riops),
            format_max(l.wiops)
        )
    }
}

/// Parse a whole `io.max` file.
pub fn parse_io_max(text: &str) -> Result<Vec<IoMaxLine>> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::parse)
        .collect()
}

/// A weight file's content: `default N` plus `MAJ:MIN N` per device (v2 `io.weight`,
/// `io.bfq.weight`; v1 `blkio.weight` + `blkio.weight_device`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct IoWeights {
    /// The group's default weight.
    pub default: Option<u32>,
    /// Per-device weights.
    pub devices: BTreeMap<DeviceNumber, u32>,
}

/// Parse a weight file (`default 100\n8:16 200\n`, or a bare `500`).
pub fn parse_io_weights(text: &str) -> Result<IoWeights> {
    let mut w = IoWeights::default();
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let num = |s: &str| {
            s.parse::<u32>()
                .map_err(|_| parse_err("weight file line", line, "weight is not a number"))
        };
        match f.as_slice() {
            [] => {}
            [n] => w.default = Some(num(n)?),
            ["default", n] => w.default = Some(num(n)?),
            [dev, n] => {
                w.devices.insert(dev.parse()?, num(n)?);
            }
            _ => return Err(parse_err("weight file line", line, "expected KEY WEIGHT")),
        }
    }
    Ok(w)
}

/// Which proportional-weight files a group offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct IoWeightSupport {
    /// v1 CFQ `blkio.weight` (10..1000).
    pub blkio_weight: bool,
    /// BFQ `blkio.bfq.weight` (v1) or `io.bfq.weight` (v2) (1..1000).
    pub bfq_weight: bool,
    /// v2 iocost `io.weight` (1..10000).
    pub io_weight: bool,
}

impl IoWeightSupport {
    /// No weight file at all: throttling only.
    pub fn none(&self) -> bool {
        !self.blkio_weight && !self.bfq_weight && !self.io_weight
    }
}

/// A block device named by path or by number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlockDevice<'a> {
    /// `/dev/sda`, `/dev/loop3`: resolved from `st_rdev`.
    Path(&'a Path),
    /// `8:0`.
    Number(DeviceNumber),
}

impl BlockDevice<'_> {
    /// The device number.
    pub fn number(&self) -> Result<DeviceNumber> {
        match self {
            BlockDevice::Path(p) => DeviceNumber::of_block_device(p),
            BlockDevice::Number(n) => Ok(*n),
        }
    }
}

impl From<DeviceNumber> for BlockDevice<'static> {
    fn from(d: DeviceNumber) -> Self {
        BlockDevice::Number(d)
    }
}

impl<'a> From<&'a Path> for BlockDevice<'a> {
    fn from(p: &'a Path) -> Self {
        BlockDevice::Path(p)
    }
}

const V1_THROTTLE: [(&str, usize); 4] = [
    ("blkio.throttle.read_bps_device", 0),
    ("blkio.throttle.write_bps_device", 1),
    ("blkio.throttle.read_iops_device", 2),
    ("blkio.throttle.write_iops_device", 3),
];

impl Group {
    fn need_io(&self) -> Result<()> {
        let probe = match self.version() {
            CgroupVersion::V1 => "blkio.throttle.read_bps_device",
            CgroupVersion::V2 => "io.max",
        };
        self.need(Controller::Io, probe)
    }

    /// Which weight files this group has (none on kernels without CFQ, BFQ or iocost).
    pub fn io_weight_support(&self) -> IoWeightSupport {
        match self.version() {
            CgroupVersion::V1 => IoWeightSupport {
                blkio_weight: self.has_file("blkio.weight"),
                bfq_weight: self.has_file("blkio.bfq.weight"),
                io_weight: false,
            },
            CgroupVersion::V2 => IoWeightSupport {
                blkio_weight: false,
                bfq_weight: self.has_file("io.bfq.weight"),
                io_weight: self.has_file("io.weight"),
            },
        }
    }

    fn weight_unsupported(&self) -> Error {
        Error::IoWeightUnsupported { path: self.dir() }
    }

    /// Set the v1-style block I/O weight (10..1000).
    ///
    /// v1: `blkio.weight`, else `blkio.bfq.weight` (same number; BFQ accepts 1..1000).
    /// v2: `io.weight` converted with [`IoWeightFormula::default`], else `io.bfq.weight`
    /// (same number). No weight file: [`Error::IoWeightUnsupported`].
    pub fn set_blkio_weight(&self, w: BlkioWeight) -> Result<()> {
        self.need_io()?;
        let s = self.io_weight_support();
        match self.version() {
            CgroupVersion::V1 if s.blkio_weight => self.write("blkio.weight", &w.to_string()),
            CgroupVersion::V1 if s.bfq_weight => self.write("blkio.bfq.weight", &w.to_string()),
            CgroupVersion::V2 if s.io_weight => {
                self.set_io_weight(IoWeightFormula::default().blkio_to_io(w))
            }
            CgroupVersion::V2 if s.bfq_weight => self.write("io.bfq.weight", &w.to_string()),
            _ => Err(self.weight_unsupported()),
        }
    }

    /// The v1-style weight (10..1000): `blkio.weight` or BFQ's file (v1); `io.weight`
    /// converted back, or `io.bfq.weight` (v2).
    pub fn blkio_weight(&self) -> Result<BlkioWeight> {
        self.need_io()?;
        let s = self.io_weight_support();
        let read = |f: &str| -> Result<u64> {
            parse_io_weights(&self.read(f)?)?
                .default
                .map(u64::from)
                .ok_or_else(|| parse_err("weight file", f, "no default weight"))
        };
        match self.version() {
            CgroupVersion::V1 if s.blkio_weight => BlkioWeight::new(read("blkio.weight")?),
            CgroupVersion::V1 if s.bfq_weight => {
                BlkioWeight::new(read("blkio.bfq.weight")?.max(10))
            }
            CgroupVersion::V2 if s.io_weight => {
                Ok(IoWeightFormula::default().io_to_blkio(self.io_weight()?))
            }
            CgroupVersion::V2 if s.bfq_weight => BlkioWeight::new(read("io.bfq.weight")?.max(10)),
            _ => Err(self.weight_unsupported()),
        }
    }

    /// Set the v2 iocost weight (`io.weight`, 1..10000). On v1 it is converted to a
    /// `blkio.weight` with [`IoWeightFormula::default`].
    pub fn set_io_weight(&self, w: IoWeight) -> Result<()> {
        self.need_io()?;
        match self.version() {
            CgroupVersion::V2 if self.io_weight_support().io_weight => {
                self.write("io.weight", &format!("default {w}"))
            }
            CgroupVersion::V1 => self.set_blkio_weight(IoWeightFormula::default().io_to_blkio(w)),
            CgroupVersion::V2 => Err(self.weight_unsupported()),
        }
    }

    /// The v2 `io.weight` default.
    pub fn io_weight(&self) -> Result<IoWeight> {
        self.need_io()?;
        if self.version() == CgroupVersion::V1 {
            return Ok(IoWeightFormula::default().blkio_to_io(self.blkio_weight()?));
        }
        if !self.io_weight_support().io_weight {
            return Err(self.weight_unsupported());
        }
        let w = parse_io_weights(&self.read("io.weight")?)?;
        IoWeight::new(u64::from(w.default.unwrap_or(100)))
    }

    fn bfq_file(&self) -> &'static str {
        match self.version() {
            CgroupVersion::V1 => "blkio.bfq.weight",
            CgroupVersion::V2 => "io.bfq.weight",
        }
    }

    /// Set BFQ's weight (`io.bfq.weight` / `blkio.bfq.weight`, 1..1000), never converted.
    pub fn set_bfq_weight(&self, w: BfqWeight) -> Result<()> {
        self.need_io()?;
        if !self.io_weight_support().bfq_weight {
            return Err(self.weight_unsupported());
        }
        self.write(self.bfq_file(), &w.to_string())
    }

    /// BFQ's default weight.
    pub fn bfq_weight(&self) -> Result<BfqWeight> {
        self.need_io()?;
        if !self.io_weight_support().bfq_weight {
            return Err(self.weight_unsupported());
        }
        let w = parse_io_weights(&self.read(self.bfq_file())?)?;
        BfqWeight::new(u64::from(w.default.unwrap_or(100)))
    }

    /// Set a per-device v1-style weight (`blkio.weight_device` in v1; on v2 `io.weight`
    /// converted, or `io.bfq.weight` as is).
    pub fn set_blkio_device_weight(&self, dev: &BlockDevice<'_>, w: BlkioWeight) -> Result<()> {
        self.need_io()?;
        let d = dev.number()?;
        let s = self.io_weight_support();
        match self.version() {
            CgroupVersion::V1 if s.blkio_weight => {
                self.write("blkio.weight_device", &format!("{d} {w}"))
            }
            CgroupVersion::V1 if s.bfq_weight => {
                self.write("blkio.bfq.weight", &format!("{d} {w}"))
            }
            CgroupVersion::V2 if s.io_weight => self.write(
                "io.weight",
                &format!("{d} {}", IoWeightFormula::default().blkio_to_io(w)),
            ),
            CgroupVersion::V2 if s.bfq_weight => self.write("io.bfq.weight", &format!("{d} {w}")),
            _ => Err(self.weight_unsupported()),
        }
    }

    /// Set a per-device v2 `io.weight`.
    pub fn set_io_device_weight(&self, dev: &BlockDevice<'_>, w: IoWeight) -> Result<()> {
        self.need_io()?;
        let d = dev.number()?;
        match self.version() {
            CgroupVersion::V2 if self.io_weight_support().io_weight => {
                self.write("io.weight", &format!("{d} {w}"))
            }
            CgroupVersion::V1 => self.set_blkio_device_weight(
                &BlockDevice::Number(d),
                IoWeightFormula::default().io_to_blkio(w),
            ),
            CgroupVersion::V2 => Err(self.weight_unsupported()),
        }
    }

    /// Per-device weights in the group's native unit (v1 `blkio.weight_device` or BFQ;
    /// v2 `io.weight` or BFQ), with the default.
    pub fn io_device_weights(&self) -> Result<IoWeights> {
        self.need_io()?;
        let s = self.io_weight_support();
        match self.version() {
            CgroupVersion::V1 if s.blkio_weight => {
                let mut w = parse_io_weights(&self.read("blkio.weight")?)?;
                if let Some(t) = self.read_optional("blkio.weight_device")? {
                    w.devices = parse_io_weights(&t)?.devices;
                }
                Ok(w)
            }
            CgroupVersion::V1 if s.bfq_weight => parse_io_weights(&self.read("blkio.bfq.weight")?),
            CgroupVersion::V2 if s.io_weight => parse_io_weights(&self.read("io.weight")?),
            CgroupVersion::V2 if s.bfq_weight => parse_io_weights(&self.read("io.bfq.weight")?),
            _ => Err(self.weight_unsupported()),
        }
    }

    /// Set throttle limits for one device. v2 writes one `io.max` line with all four keys;
    /// v1 writes the four `blkio.throttle.*_device` files (`None` removes that rule).
    /// A limit of 0 is refused before writing.
    pub fn set_io_limits(&self, dev: &BlockDevice<'_>, limits: IoLimits) -> Result<()> {
        limits.check()?;
        self.need_io()?;
        let device = dev.number()?;
        match self.version() {
            CgroupVersion::V2 => self.write("io.max", &IoMaxLine { device, limits }.to_string()),
            CgroupVersion::V1 => {
                let vals = [limits.rbps, limits.wbps, limits.riops, limits.wiops];
                for (file, i) in V1_THROTTLE {
                    let v = vals.get(i).copied().flatten().unwrap_or(0);
                    self.write(file, &format!("{device} {v}"))?;
                }
                Ok(())
            }
        }
    }

    /// Throttle limits of every device that has one.
    pub fn io_limits(&self) -> Result<Vec<IoMaxLine>> {
        self.need_io()?;
        match self.version() {
            CgroupVersion::V2 => parse_io_max(&self.read("io.max")?),
            CgroupVersion::V1 => {
                let mut by_dev: BTreeMap<DeviceNumber, IoLimits> = BTreeMap::new();
                for (file, i) in V1_THROTTLE {
                    let text = self.read(file)?;
                    for line in text.lines() {
                        let mut f = line.split_whitespace();
                        let (Some(d), Some(v)) = (f.next(), f.next()) else {
                            continue;
                        };
                        let d: DeviceNumber = d.parse()?;
                        let v: u64 = v
                            .parse()
                            .map_err(|_| parse_err("throttle rule", line, "not a number"))?;
                        let l = by_dev.entry(d).or_default();
                        let slot = match i {
                            0 => &mut l.rbps,
                            1 => &mut l.wbps,
                            2 => &mut l.riops,
                            _ => &mut l.wiops,
                        };
                        *slot = Some(v);
                    }
                }
                Ok(by_dev
                    .into_iter()
                    .map(|(device, limits)| IoMaxLine { device, limits })
                    .collect())
            }
        }
    }

    /// Bytes and operations per device (v2 `io.stat`; v1
    /// `blkio.throttle.io_service_bytes` + `blkio.throttle.io_serviced`). Never fails on a
    /// bad row: see [`IoStat::bad_rows`].
    pub fn io_stat(&self) -> Result<IoStat> {
        match self.version() {
            CgroupVersion::V2 => {
                self.need(Controller::Io, "io.stat")?;
                Ok(parse_io_stat(&self.read("io.stat")?))
            }
            CgroupVersion::V1 => {
                self.need(Controller::Io, "blkio.throttle.io_service_bytes")?;
                Ok(parse_blkio_throttle(
                    &self.read("blkio.throttle.io_service_bytes")?,
                    &self.read("blkio.throttle.io_serviced")?,
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_max_lines() {
        let l: IoMaxLine = "8:16 wbps=1048576".parse().unwrap();
        assert_eq!(l.limits.wbps, Some(1_048_576));
        assert_eq!(l.limits.rbps, None);
        assert!("8:16 foo=1".parse::<IoMaxLine>().is_err());
        assert!("8:16 rbps".parse::<IoMaxLine>().is_err());
        assert!("".parse::<IoMaxLine>().is_err());
        assert_eq!(
            parse_io_max("8:0 rbps=1 wbps=max riops=max wiops=max\n\n")
                .unwrap()
                .len(),
            1
        );
    }

    #[test]
    fn weight_files() {
        let w = parse_io_weights("default 100\n8:16 200\n").unwrap();
        assert_eq!(w.default, Some(100));
        assert_eq!(w.devices[&DeviceNumber::new(8, 16)], 200);
        assert_eq!(parse_io_weights("500\n").unwrap().default, Some(500));
        assert!(parse_io_weights("default x\n").is_err());
        assert!(parse_io_weights("a b c\n").is_err());
    }

    proptest::proptest! {
        #[test]
        fn io_max_round_trip(ma in 0u32..4096, mi in 0u32..4096,
                             v in proptest::collection::vec(proptest::option::of(1u64..u64::MAX), 4)) {
            let l = IoMaxLine {
                device: DeviceNumber::new(ma, mi),
                limits: IoLimits { rbps: v[0], wbps: v[1], riops: v[2], wiops: v[3] },
            };
            let back: IoMaxLine = l.to_string().parse().unwrap();
            proptest::prop_assert_eq!(back, l);
        }

        #[test]
        fn weights_round_trip(d in 1u32..10_000, devs in proptest::collection::btree_map(
            (0u32..300, 0u32..300), 1u32..10_000, 0..5)) {
            let mut text = format!("default {d}\n");
            for ((a, b), w) in &devs {
                text.push_str(&format!("{a}:{b} {w}\n"));
            }
            let w = parse_io_weights(&text).unwrap();
            proptest::prop_assert_eq!(w.default, Some(d));
            proptest::prop_assert_eq!(w.devices.len(), devs.len());
        }

        #[test]
        fn parsers_never_panic(s in "\\PC*") {
            let _ = parse_io_max(&s);
            let _ = parse_io_weights(&s);
        }
    }
}

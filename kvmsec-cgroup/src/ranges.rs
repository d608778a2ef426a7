//! Format: the kernel's range-list syntax (`0-3,8,10-11`) for `cpuset.cpus` and
//! `cpuset.mems`.
//!
//! # References
//! - Linux `Documentation/admin-guide/cgroup-v1/cpusets.rst` ("List format").

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result, parse_err};

/// Largest CPU or node number accepted (the kernel's `NR_CPUS` tops out at 8192 today; a
/// bound keeps a hostile input from describing billions of entries).
pub const MAX_ID: u32 = 1 << 20;

/// A set of CPU or memory-node numbers, kept as sorted, merged, inclusive ranges.
///
/// ```
/// use kvmsec_cgroup::RangeList;
/// let r: RangeList = "0-3,8,10-11".parse()?;
/// assert!(r.contains(2) && !r.contains(9));
/// assert_eq!(r.len(), 7);
/// assert_eq!(r.to_string(), "0-3,8,10-11");
/// let merged: RangeList = "3,0-2,4".parse()?;
/// assert_eq!(merged.to_string(), "0-4");
/// # Ok::<(), kvmsec_cgroup::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct RangeList {
    ranges: Vec<(u32, u32)>,
}

impl RangeList {
    /// The empty set (what a new v1 cpuset group holds).
    pub fn new() -> Self {
        Self::default()
    }

    /// From individual ids.
    pub fn from_ids(ids: impl IntoIterator<Item = u32>) -> Result<Self> {
        let mut r = RangeList::new();
        for id in ids {
            r.insert_range(id, id)?;
        }
        Ok(r)
    }

    fn insert_range(&mut self, lo: u32, hi: u32) -> Result<()> {
        if hi > MAX_ID {
            return Err(Error::OutOfRange {
                setting: "range list id",
                value: i128::from(hi),
                min: 0,
                max: i128::from(MAX_ID),
            });
        }
        self.ranges.push((lo, hi));
        self.ranges.sort_unstable();
        let mut merged: Vec<(u32, u32)> = Vec::with_capacity(self.ranges.len());
        for &(a, b) in &self.ranges {
            match merged.last_mut() {
                Some(last) if a <= last.1.saturating_add(1) => last.1 = last.1.max(b),
                _ => merged.push((a, b)),
            }
        }
        self.ranges = merged;
        Ok(())
    }

    /// The merged inclusive ranges, ascending.
    pub fn ranges(&self) -> &[(u32, u32)] {
        &self.ranges
    }

    /// Is `id` in the set?
    pub fn contains(&self, id: u32) -> bool {
        self.ranges.iter().any(|&(a, b)| a <= id && id <= b)
    }

    /// Number of ids.
    pub fn len(&self) -> u64 {
        self.ranges.iter().map(|&(a, b)| u64::from(b - a) + 1).sum()
    }

    /// Is the set empty?
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// Every id, ascending.
    pub fn ids(&self) -> impl Iterator<Item = u32> + '_ {
        self.ranges.iter().flat_map(|&(a, b)| a..=b)
    }
}

impl FromStr for RangeList {
    type Err = Error;

    /// Parse `0-3,8,10-11`; the empty string (or only whitespace) is the empty set. A stride
    /// (`0-7:2`, accepted by some kernel bitmap parsers) is refused as unsupported.
    fn from_str(s: &str) -> Result<Self> {
        const WHAT: &str = "range list";
        let t = s.trim();
        let mut r = RangeList::new();
        if t.is_empty() {
            return Ok(r);
        }
        let num = |x: &str| {
            x.trim()
                .parse::<u32>()
                .map_err(|_| parse_err(WHAT, s, format!("{x:?} is not a number")))
        };
        for part in t.split(',') {
            let (lo, hi) = match part.split_once('-') {
                Some((a, b)) => (num(a)?, num(b)?),
                None => {
                    let n = num(part)?;
                    (n, n)
                }
            };
            if lo > hi {
                return Err(parse_err(WHAT, s, format!("range {part:?} runs backwards")));
            }
            r.insert_range(lo, hi)?;
        }
        Ok(r)
    }
}

impl fmt::Display for RangeList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, &(a, b)) in self.ranges.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            if a == b {
                write!(f, "{a}")?;
            } else {
                write!(f, "{a}-{b}")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_format() {
        let r: RangeList = "0-3,8,10-11\n".parse().unwrap();
        assert_eq!(r.ranges(), [(0, 3), (8, 8), (10, 11)]);
        assert_eq!(r.ids().collect::<Vec<_>>(), [0, 1, 2, 3, 8, 10, 11]);
        assert_eq!("".parse::<RangeList>().unwrap(), RangeList::new());
        assert_eq!("\n".parse::<RangeList>().unwrap().to_string(), "");
        for bad in ["3-1", "a", "1,", "-1", "1-", "0-7:2", "99999999999"] {
            assert!(bad.parse::<RangeList>().is_err(), "{bad}");
        }
        assert!(format!("0-{}", MAX_ID + 1).parse::<RangeList>().is_err());
        assert_eq!(
            RangeList::from_ids([5, 1, 2, 3]).unwrap().to_string(),
            "1-3,5"
        );
    }

    proptest::proptest! {
        #[test]
        fn never_panics(s in "\\PC*") {
            let _ = s.parse::<RangeList>();
        }

        #[test]
        fn format_parse_round_trip(ids in proptest::collection::btree_set(0u32..2000, 0..64)) {
            let r = RangeList::from_ids(ids.iter().copied()).unwrap();
            let back: RangeList = r.to_string().parse().unwrap();
            proptest::prop_assert_eq!(&back, &r);
            proptest::prop_assert_eq!(back.ids().collect::<std::collections::BTreeSet<_>>(), ids);
        }
    }
}

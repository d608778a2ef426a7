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

    /// From individual ids (any order, duplicates allowed). O(n log n) time; memory stays
    /// bounded by [`MAX_ID`] however many ids (or duplicates) the iterator yields.
    pub fn from_ids(ids: impl IntoIterator<Item = u32>) -> Result<Self> {
        let mut b = Builder::default();
        for id in ids {
            b.push(id, id)?;
        }
        Ok(b.finish())
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

/// Longest range-list text accepted by [`RangeList::from_str`], in bytes. The longest list
/// the [`MAX_ID`] bound allows without duplicates (`0,2,4,...,1048576`) is about 3.6 MB.
pub const MAX_TEXT_LEN: usize = 8 << 20;

/// Collects ranges unsorted, then sorts and merges once (O(n log n) overall). When the
/// buffer grows past a bound it is merged in place, so duplicates cannot make it grow
/// without limit: after a merge at most `MAX_ID / 2 + 1` disjoint ranges remain.
#[derive(Default)]
struct Builder {
    ranges: Vec<(u32, u32)>,
}

impl Builder {
    const COMPACT_AT: usize = (MAX_ID as usize + 2) * 2;

    fn push(&mut self, lo: u32, hi: u32) -> Result<()> {
        if hi > MAX_ID {
            return Err(Error::OutOfRange {
                setting: "range list id",
                value: i128::from(hi),
                min: 0,
                max: i128::from(MAX_ID),
            });
        }
        self.ranges.push((lo, hi));
        if self.ranges.len() >= Self::COMPACT_AT {
            self.compact();
        }
        Ok(())
    }

    fn compact(&mut self) {
        self.ranges.sort_unstable();
        let mut out = 0usize;
        for i in 0..self.ranges.len() {
            let (a, b) = self.ranges[i];
            if out > 0 && a <= self.ranges[out - 1].1.saturating_add(1) {
                let last = &mut self.ranges[out - 1];
                last.1 = last.1.max(b);
            } else {
                self.ranges[out] = (a, b);
                out += 1;
            }
        }
        self.ranges.truncate(out);
    }

    fn finish(mut self) -> RangeList {
        self.compact();
        self.ranges.shrink_to_fit();
        RangeList {
            ranges: self.ranges,
        }
    }
}

impl FromStr for RangeList {
    type Err = Error;

    /// Parse `0-3,8,10-11`; the empty string (or only whitespace) is the empty set. A stride
    /// (`0-7:2`, accepted by some kernel bitmap parsers) is refused as unsupported.
    fn from_str(s: &str) -> Result<Self> {
        const WHAT: &str = "range list";
        if s.len() > MAX_TEXT_LEN {
            return Err(parse_err(
                WHAT,
                s,
                format!("longer than {MAX_TEXT_LEN} bytes"),
            ));
        }
        let t = s.trim();
        let mut r = Builder::default();
        if t.is_empty() {
            return Ok(RangeList::new());
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
            r.push(lo, hi)?;
        }
        Ok(r.finish())
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

    /// Finding F5: long lists parse in O(n log n) with the exact result, and the limits
    /// still apply.
    #[test]
    fn f5_hundred_thousand_items_parse_fast_and_exactly() {
        const N: u32 = 100_000;
        // Descending even ids: the worst order for the old insert-and-resort code.
        let text = (0..N)
            .rev()
            .map(|i| (2 * i).to_string())
            .collect::<Vec<_>>()
            .join(",");
        let start = std::time::Instant::now();
        let r: RangeList = text.parse().unwrap();
        let ids = RangeList::from_ids((0..N).rev().map(|i| 2 * i)).unwrap();
        // Loose bound: the quadratic version took minutes here; this takes milliseconds.
        assert!(start.elapsed() < std::time::Duration::from_secs(20));
        assert_eq!(r.ranges().len(), N as usize);
        assert_eq!(r.ranges().first(), Some(&(0, 0)));
        assert_eq!(r.ranges().last(), Some(&(2 * (N - 1), 2 * (N - 1))));
        assert_eq!(r.len(), u64::from(N));
        assert_eq!(ids, r);

        // Odd ids fill the gaps: everything merges into one range.
        let odd = (0..N).map(|i| (2 * i + 1).to_string()).collect::<Vec<_>>();
        let both: RangeList = format!("{text},{}", odd.join(",")).parse().unwrap();
        assert_eq!(both.ranges(), [(0, 2 * N - 1)]);

        // Many duplicates (more than the compaction bound) stay exact.
        let dup = RangeList::from_ids(std::iter::repeat_n(7, Builder::COMPACT_AT * 2 + 3)).unwrap();
        assert_eq!(dup.ranges(), [(7, 7)]);

        // Limits: an id above MAX_ID late in a long list, and text over MAX_TEXT_LEN.
        let over = format!("{text},{}", MAX_ID + 1);
        assert!(matches!(
            over.parse::<RangeList>(),
            Err(Error::OutOfRange { value, .. }) if value == i128::from(MAX_ID + 1)
        ));
        assert!(matches!(
            RangeList::from_ids([1, MAX_ID + 1]),
            Err(Error::OutOfRange { .. })
        ));
        assert_eq!(
            RangeList::from_ids([MAX_ID]).unwrap().ranges(),
            [(MAX_ID, MAX_ID)]
        );
        let long = "0,".repeat(MAX_TEXT_LEN / 2) + "0";
        assert!(matches!(
            long.parse::<RangeList>(),
            Err(Error::Parse { reason, .. }) if reason.contains("longer than")
        ));
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

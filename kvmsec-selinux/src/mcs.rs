//! The sVirt MCS allocator: unique category pairs for guests (operations layer).
//!
//! Each guest gets a level `sN:cA,cB` with `A < B` drawn at random from a category range.
//! Two guests with different pairs cannot access each other's files, because neither
//! level dominates the other.
//!
//! # References
//! - libvirt `src/security/security_selinux.c` (`virSecuritySELinuxMCSFind`): random pairs
//!   from the daemon's category range, default `c0.c1023`.
//! - SELinux Notebook, "MLS / MCS" chapter.

use std::collections::HashSet;
use std::fs;
use std::io;
use std::path::Path;

use crate::context::{CategorySet, Level, MAX_CATEGORY, MlsRange};
use crate::error::{Error, Result};
use crate::hostfs::{read_optional, under};
use crate::procattr::{ProcAttr, process_label_at};

/// Random draws tried before switching to an exact pick among the free pairs.
const RANDOM_TRIES: u32 = 32;

/// Hands out distinct MCS category pairs and tracks which are in use.
///
/// ```
/// use kvmsec_selinux::McsAllocator;
/// let mut mcs = McsAllocator::with_range(0, 0, 3)?; // c0..c3: 6 pairs
/// let mut seen = std::collections::HashSet::new();
/// for _ in 0..6 {
///     let level = mcs.allocate()?;
///     assert_eq!(level.categories.len(), 2);
///     assert!(seen.insert(level));
/// }
/// assert!(mcs.allocate().is_err()); // exhausted, at once
/// # Ok::<(), kvmsec_selinux::Error>(())
/// ```
///
/// # Limitations
/// Reservations live in memory. Several managers on one host (libvirt, podman and this
/// crate) do not see each other's reservations except through
/// [`McsAllocator::seed_from_processes_at`] at start.
#[derive(Debug, Clone)]
pub struct McsAllocator {
    sensitivity: u16,
    first: u16,
    last: u16,
    reserved: HashSet<Level>,
    pairs_in_range: u64,
}

impl Default for McsAllocator {
    fn default() -> Self {
        McsAllocator {
            sensitivity: 0,
            first: 0,
            last: MAX_CATEGORY,
            reserved: HashSet::new(),
            pairs_in_range: 0,
        }
    }
}

/// What [`McsAllocator::seed_from_processes_at`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct SeedReport {
    /// Guest processes whose level was reserved.
    pub reserved: Vec<(u32, Level)>,
    /// Guest processes whose level was already reserved (another process of the same guest,
    /// or a level reserved before).
    pub duplicates: Vec<(u32, Level)>,
    /// Guest processes whose label could not be read or had no categories, with why.
    pub skipped: Vec<(u32, String)>,
}

impl McsAllocator {
    /// An allocator over `s0:c0.c1023`.
    pub fn new() -> Self {
        Self::default()
    }

    /// An allocator over `s<sensitivity>:c<first>.c<last>`; needs at least two categories.
    pub fn with_range(sensitivity: u16, first: u16, last: u16) -> Result<Self> {
        if last > MAX_CATEGORY {
            return Err(Error::CategoryOutOfRange {
                category: u32::from(last),
            });
        }
        if first >= last {
            return Err(Error::McsRangeTooSmall {
                range: format!("s{sensitivity}:c{first}.c{last}"),
            });
        }
        Ok(McsAllocator {
            sensitivity,
            first,
            last,
            ..Self::default()
        })
    }

    /// An allocator over a manager's own range, as libvirt derives it from its process
    /// context: the sensitivity of the low level and the high level's categories, which
    /// must form one contiguous run (`s0-s0:c0.c1023` gives `s0:c0.c1023`). A range without
    /// categories gives the default `c0.c1023`.
    pub fn for_range(range: &MlsRange) -> Result<Self> {
        let sensitivity = range.low().sensitivity;
        let cats = &range.high().categories;
        let (Some(first), Some(last)) = (cats.iter().next(), cats.iter().last()) else {
            return Self::with_range(sensitivity, 0, MAX_CATEGORY);
        };
        if usize::from(last - first) + 1 != cats.len() {
            return Err(Error::McsRangeTooSmall {
                range: format!("{range} (categories are not one contiguous run)"),
            });
        }
        Self::with_range(sensitivity, first, last)
    }

    /// The range handed out from, as text (`s0:c0.c1023`).
    pub fn range_text(&self) -> String {
        format!("s{}:c{}.c{}", self.sensitivity, self.first, self.last)
    }

    fn categories(&self) -> u64 {
        u64::from(self.last - self.first) + 1
    }

    /// How many pairs the range holds: n·(n−1)/2.
    pub fn total_pairs(&self) -> u64 {
        let n = self.categories();
        n * (n - 1) / 2
    }

    /// How many pairs of the range are still free.
    pub fn available_pairs(&self) -> u64 {
        self.total_pairs().saturating_sub(self.pairs_in_range)
    }

    /// Whether `level` is reserved.
    pub fn is_reserved(&self, level: &Level) -> bool {
        self.reserved.contains(level)
    }

    /// All reserved levels (in no particular order).
    pub fn reserved(&self) -> impl Iterator<Item = &Level> {
        self.reserved.iter()
    }

    fn pair_in_range(&self, level: &Level) -> bool {
        level.sensitivity == self.sensitivity
            && level.categories.len() == 2
            && level
                .categories
                .iter()
                .all(|c| (self.first..=self.last).contains(&c))
    }

    /// Reserve a level (any shape: pairs of the range count against it, other levels are
    /// only remembered). Fails with [`Error::McsAlreadyReserved`] if it is taken.
    pub fn reserve(&mut self, level: Level) -> Result<()> {
        if self.reserved.contains(&level) {
            return Err(Error::McsAlreadyReserved {
                level: level.to_string(),
            });
        }
        if self.pair_in_range(&level) {
            self.pairs_in_range += 1;
        }
        self.reserved.insert(level);
        Ok(())
    }

    /// Release a level; returns whether it was reserved.
    pub fn release(&mut self, level: &Level) -> bool {
        let was = self.reserved.remove(level);
        if was && self.pair_in_range(level) {
            self.pairs_in_range -= 1;
        }
        was
    }

    /// Reserve and return a random free pair, using the operating system's random source.
    pub fn allocate(&mut self) -> Result<Level> {
        let mut rng_error = None;
        let mut rng = || match getrandom::u64() {
            Ok(v) => v,
            Err(e) => {
                rng_error = Some(e);
                0
            }
        };
        let level = self.allocate_with(&mut rng);
        if let Some(e) = rng_error {
            if let Ok(l) = &level {
                self.release(l);
            }
            return Err(Error::io_plain(
                "getrandom",
                "getrandom(2)",
                io::Error::other(e.to_string()),
            ));
        }
        level
    }

    /// Reserve and return a free pair using `random` as the source of randomness.
    ///
    /// Never loops unboundedly: an exhausted range fails at once with
    /// [`Error::McsExhausted`]; after a few random draws hit reserved pairs, one free pair
    /// is picked exactly by counting.
    pub fn allocate_with(&mut self, random: &mut dyn FnMut() -> u64) -> Result<Level> {
        let free = self.available_pairs();
        if free == 0 {
            return Err(Error::McsExhausted {
                range: self.range_text(),
                total: self.total_pairs(),
            });
        }
        let n = self.categories();
        for _ in 0..RANDOM_TRIES {
            let a = self.first + (random() % n) as u16;
            let b = self.first + (random() % n) as u16;
            if a == b {
                continue;
            }
            let level = self.pair(a.min(b), a.max(b))?;
            if !self.reserved.contains(&level) {
                self.reserve(level)?;
                return Ok(level);
            }
        }

        // Pick the k-th free pair in order: bounded by the size of the range.
        let mut k = random() % free;
        for a in self.first..self.last {
            for b in a + 1..=self.last {
                let level = self.pair(a, b)?;
                if self.reserved.contains(&level) {
                    continue;
                }
                if k == 0 {
                    self.reserve(level)?;
                    return Ok(level);
                }
                k -= 1;
            }
        }
        Err(Error::McsExhausted {
            range: self.range_text(),
            total: self.total_pairs(),
        })
    }

    fn pair(&self, a: u16, b: u16) -> Result<Level> {
        let mut cats = CategorySet::new();
        cats.insert(a)?;
        cats.insert(b)?;
        Ok(Level::new(self.sensitivity, cats))
    }

    /// Reserve the levels of running guests on the live host (see
    /// [`McsAllocator::seed_from_processes_at`]).
    pub fn seed_from_processes(&mut self) -> Result<SeedReport> {
        self.seed_from_processes_at(Path::new("/"))
    }

    /// Reserve the levels of running qemu processes under `<root>/proc`, so a restarted
    /// manager does not hand out a pair in use.
    ///
    /// A process is a guest when its `comm` starts with `qemu` or its `argv[0]` file name
    /// starts with `qemu-system-` or is `qemu-kvm`. Its low level (from `attr/current`) is
    /// reserved if it has categories. Unreadable processes (gone, no LSM) are listed in
    /// [`SeedReport::skipped`], not errors.
    pub fn seed_from_processes_at(&mut self, root: &Path) -> Result<SeedReport> {
        let proc_dir = under(root, "/proc");
        let entries = fs::read_dir(&proc_dir).map_err(|e| Error::io("read_dir", &proc_dir, e))?;
        let mut pids: Vec<u32> = entries
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse().ok()))
            .filter(|pid: &u32| *pid > 0)
            .collect();
        pids.sort_unstable();

        let mut report = SeedReport::default();
        for pid in pids {
            if !is_qemu(&proc_dir.join(pid.to_string())) {
                continue;
            }
            match process_label_at(root, pid, ProcAttr::Current) {
                Ok(Some(ctx)) => match ctx.range() {
                    Some(range) if !range.low().categories.is_empty() => {
                        let level = *range.low();
                        if self.reserve(level).is_ok() {
                            report.reserved.push((pid, level));
                        } else {
                            report.duplicates.push((pid, level));
                        }
                    }
                    _ => report
                        .skipped
                        .push((pid, format!("label {ctx} has no categories"))),
                },
                Ok(None) => report.skipped.push((pid, "no label".into())),
                Err(e) => report.skipped.push((pid, e.to_string())),
            }
        }
        Ok(report)
    }
}

fn is_qemu(pid_dir: &Path) -> bool {
    let comm = read_optional(&pid_dir.join("comm"), 256)
        .ok()
        .flatten()
        .unwrap_or_default();
    if comm.starts_with(b"qemu") {
        return true;
    }
    let cmdline = read_optional(&pid_dir.join("cmdline"), 4096)
        .ok()
        .flatten()
        .unwrap_or_default();
    let argv0 = cmdline.split(|b| *b == 0).next().unwrap_or_default();
    let name = argv0.rsplit(|b| *b == b'/').next().unwrap_or_default();
    name.starts_with(b"qemu-system-") || name == b"qemu-kvm"
}

#[cfg(test)]
mod tests;

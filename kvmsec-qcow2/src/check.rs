//! Consistency check of refcounts against references, counted the way `qemu-img check`
//! counts them (operations layer).
//!
//! # References
//! - QEMU `block/qcow2-refcount.c` (`qcow2_check_refcounts`): a cluster whose stored refcount
//!   is lower than its references is a corruption, one whose refcount is higher is a leak.

use std::fs::File;
use std::path::Path;

use crate::header::{CryptMethod, EXT_BITMAPS, Header};
use crate::image::{Limits, parse_header_of};
use crate::info::read_snapshots;
use crate::io::pread_zero_fill;
use crate::table::{
    ClusterMapping, L1E_OFFSET_MASK, OFLAG_COPIED, REFT_OFFSET_MASK, decode_l2, get_refcount,
};
use crate::{Error, Result};

/// Result of [`check`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct CheckReport {
    /// Clusters referenced more often than their refcount says, references to clusters
    /// outside the file, misaligned entries and wrong COPIED flags (as `qemu-img check`).
    pub corruptions: u64,
    /// Clusters whose refcount is higher than their references (wasted space, harmless).
    pub leaks: u64,
    /// Parts of the image that could not be checked.
    pub check_errors: u64,
    /// One line per problem found (bounded to the first 1000).
    pub problems: Vec<String>,
    /// Clusters in use.
    pub allocated_clusters: u64,
    /// Clusters in the file.
    pub total_clusters: u64,
}

impl CheckReport {
    /// No corruptions and no leaks.
    pub fn is_clean(&self) -> bool {
        self.corruptions == 0 && self.leaks == 0 && self.check_errors == 0
    }

    fn problem(&mut self, s: String) {
        if self.problems.len() < 1000 {
            self.problems.push(s);
        }
    }
}

struct Walker<'a> {
    file: &'a File,
    path: &'a Path,
    cs: u64,
    len: u64,
    refs: Vec<u32>,
    report: CheckReport,
}

impl Walker<'_> {
    /// Counts one reference to each cluster in `off..off+len`.
    fn inc(&mut self, off: u64, len: u64, what: &str) {
        self.inc_n(off, len, what, 1);
    }

    fn read_table(&self, off: u64, entries: u64) -> Result<Vec<u64>> {
        let mut raw = vec![0u8; (entries * 8) as usize];
        pread_zero_fill(self.file, self.path, &mut raw, off)?;
        Ok(raw
            .chunks_exact(8)
            .map(|c| u64::from_be_bytes(c.try_into().unwrap_or([0; 8])))
            .collect())
    }

    /// Counts `n` references to each cluster in `off..off+len`. A range reaching outside the
    /// file (or past the end of the address space) is one corruption, counted once.
    fn inc_n(&mut self, off: u64, len: u64, what: &str, n: u32) {
        if n == 0 || len == 0 {
            return;
        }
        let Some(end) = off.checked_add(len) else {
            self.report.corruptions += 1;
            self.report.problem(format!(
                "{what} at {off:#x} runs past the end of the address space"
            ));
            return;
        };
        let first = off / self.cs;
        let last = (end - 1) / self.cs;
        let inside_last = last.min((self.refs.len() as u64).saturating_sub(1));
        if first < self.refs.len() as u64 {
            for c in first..=inside_last {
                if let Some(r) = self.refs.get_mut(c as usize) {
                    *r = r.saturating_add(n);
                }
            }
        }
        if last >= self.refs.len() as u64 {
            self.report.corruptions += 1;
            self.report
                .problem(format!("{what} at {off:#x} is outside the image file"));
        }
    }

    /// Reads an L1 table and counts, per L2 table, how many L1 entries reference it.
    fn collect_l1(
        &mut self,
        l1_off: u64,
        l1_size: u64,
        times: u32,
        l2s: &mut std::collections::BTreeMap<u64, u32>,
        active: Option<&mut Vec<(u64, bool, &'static str)>>,
    ) -> Result<()> {
        let cs = self.cs;
        if l1_size * 8 > 32 << 20 {
            self.report.check_errors += 1;
            self.report.problem(format!(
                "L1 table of {l1_size} entries is too large to check"
            ));
            return Ok(());
        }
        if !l1_off.is_multiple_of(cs) {
            self.report.corruptions += 1;
            self.report.problem(format!(
                "L1 table offset {l1_off:#x} is not cluster aligned"
            ));
            return Ok(());
        }
        if l1_off
            .checked_add(l1_size * 8)
            .is_none_or(|end| end > self.len)
        {
            self.report.corruptions += 1;
            self.report.problem(format!(
                "L1 table at {l1_off:#x} of {l1_size} entries runs past the end of the file"
            ));
            return Ok(());
        }
        self.inc_n(l1_off, l1_size * 8, "L1 table", times);
        let l1 = self.read_table(l1_off, l1_size)?;
        let mut copied = active;
        for e in l1 {
            let l2_off = e & L1E_OFFSET_MASK;
            if l2_off == 0 {
                continue;
            }
            if !l2_off.is_multiple_of(cs) {
                self.report.corruptions += 1;
                self.report.problem(format!(
                    "L2 table offset {l2_off:#x} is not cluster aligned"
                ));
                continue;
            }
            *l2s.entry(l2_off).or_insert(0) += times;
            if let Some(c) = copied.as_deref_mut() {
                c.push((l2_off, e & OFLAG_COPIED != 0, "L2 table"));
            }
        }
        Ok(())
    }

    /// Walks one L2 table referenced `times` times; records COPIED flags if `active`.
    fn walk_l2(
        &mut self,
        h: &Header,
        l2_off: u64,
        times: u32,
        copied: Option<&mut Vec<(u64, bool, &'static str)>>,
    ) -> Result<()> {
        let cs = self.cs;
        self.inc_n(l2_off, cs, "L2 table", times);
        if l2_off >= self.len {
            return Ok(());
        }
        let per_entry = (h.l2_entry_size() / 8) as usize;
        let l2 = self.read_table(l2_off, cs / 8)?;
        let mut copied = copied;
        for entry in l2.iter().step_by(per_entry) {
            match decode_l2(*entry, h.cluster_bits, h.version) {
                Ok(ClusterMapping::Data { host, copied: c }) => {
                    self.inc_n(host, cs, "data cluster", times);
                    if let Some(v) = copied.as_deref_mut() {
                        v.push((host, c, "data cluster"));
                    }
                }
                Ok(ClusterMapping::Zero { host }) if host != 0 => {
                    self.inc_n(host, cs, "preallocated zero cluster", times);
                    if let Some(v) = copied.as_deref_mut() {
                        v.push((host, entry & OFLAG_COPIED != 0, "zero cluster"));
                    }
                }
                Ok(ClusterMapping::Compressed { host, len }) => {
                    self.inc_n(host & !511, (host & 511) + len, "compressed cluster", times)
                }
                Ok(_) => {}
                Err(_) => {
                    self.report.corruptions += 1;
                    self.report.problem(format!(
                        "L2 entry {entry:#x} in table {l2_off:#x} is not cluster aligned"
                    ));
                }
            }
        }
        Ok(())
    }
}

/// Checks the image at `path`: counts every reference to every cluster (header, tables,
/// data, snapshots, LUKS header) and compares with the stored refcounts. No passphrase is
/// needed. A malformed header is an error; damaged tables are counted in the report.
///
/// ```
/// let dir = tempfile::tempdir()?;
/// let p = dir.path().join("c.qcow2");
/// let mut img = kvmsec_qcow2::create(&p, &kvmsec_qcow2::CreateOptions::new(4 << 20))?;
/// img.write_at(&[1; 70000], 10)?;
/// drop(img);
/// let report = kvmsec_qcow2::check(&p)?;
/// assert!(report.is_clean(), "{:?}", report.problems);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn check(path: impl AsRef<Path>) -> Result<CheckReport> {
    check_with(path, &Limits::default())
}

/// [`check`] with explicit limits: the refcount table is bounded by
/// [`Limits::max_refcount_table_bytes`], as [`Image::open`](crate::Image::open) bounds it.
pub fn check_with(path: impl AsRef<Path>, limits: &Limits) -> Result<CheckReport> {
    let path = path.as_ref();
    let file = crate::io::open_image(path, false)?;
    let (h, len) = parse_header_of(&file, path)?;
    let cs = h.cluster_size();
    let nb = len.div_ceil(cs);
    if nb > (1 << 32) {
        return Err(Error::LimitExceeded {
            what: "clusters to check",
            value: nb,
            limit: 1 << 32,
        });
    }
    let mut w = Walker {
        file: &file,
        path,
        cs,
        len,
        refs: vec![0u32; nb as usize],
        report: CheckReport {
            total_clusters: nb,
            ..CheckReport::default()
        },
    };
    w.inc(0, cs, "header");
    // Every distinct L1 and L2 table is read once, however often it is referenced (a hostile
    // image cannot make the walk quadratic); references are counted with multiplicity.
    let mut copied = Vec::new();
    let mut l2s = std::collections::BTreeMap::new();
    let mut active_l2s = std::collections::BTreeMap::new();
    w.collect_l1(
        h.l1_table_offset,
        h.l1_size.into(),
        1,
        &mut active_l2s,
        Some(&mut copied),
    )?;
    let snapshots = read_snapshots(&file, path, &h, len)?;
    if h.nb_snapshots > 0 {
        let avail = len.saturating_sub(h.snapshots_offset).min(64 << 20);
        let mut buf = vec![0u8; avail as usize];
        pread_zero_fill(&file, path, &mut buf, h.snapshots_offset)?;
        let table_len = crate::table::parse_snapshots(&buf, h.nb_snapshots)
            .map(|(_, used)| used as u64)
            .unwrap_or(0);
        w.inc(h.snapshots_offset, table_len, "snapshot table");
        let mut l1s: std::collections::BTreeMap<(u64, u32), u32> = Default::default();
        for s in &snapshots {
            *l1s.entry((s.l1_table_offset, s.l1_size)).or_insert(0) += 1;
        }
        for ((off, size), times) in l1s {
            w.collect_l1(off, size.into(), times, &mut l2s, None)?;
        }
    }
    for (&off, &times) in &active_l2s {
        let extra = l2s.remove(&off).unwrap_or(0);
        w.walk_l2(&h, off, times + extra, Some(&mut copied))?;
    }
    for (off, times) in l2s {
        w.walk_l2(&h, off, times, None)?;
    }
    if let (CryptMethod::Luks, Some((off, length))) = (h.crypt_method, h.crypto_header()) {
        w.inc(off, length.div_ceil(cs).saturating_mul(cs), "LUKS header");
    }
    if h.extension(EXT_BITMAPS).is_some() {
        w.report.check_errors += 1;
        w.report
            .problem("persistent dirty bitmaps are not checked".to_string());
    }
    let rt_clusters = u64::from(h.refcount_table_clusters);
    let rt_bytes = rt_clusters * cs;
    if rt_bytes > limits.max_refcount_table_bytes {
        return Err(Error::LimitExceeded {
            what: "refcount table bytes",
            value: rt_bytes,
            limit: limits.max_refcount_table_bytes,
        });
    }
    match h.refcount_table_offset.checked_add(rt_bytes) {
        Some(end) if end <= len => {}
        _ => {
            return Err(Error::Truncated {
                what: "refcount table",
                needed: h.refcount_table_offset.saturating_add(rt_bytes),
                file_len: len,
            });
        }
    }
    w.inc(h.refcount_table_offset, rt_clusters * cs, "refcount table");
    let table = w.read_table(h.refcount_table_offset, rt_clusters * cs / 8)?;
    let epb = (cs * 8) >> h.refcount_order;
    let mut stored = vec![0u64; nb as usize];
    for (bi, e) in table.iter().enumerate() {
        let off = e & REFT_OFFSET_MASK;
        if off == 0 {
            continue;
        }
        if !off.is_multiple_of(cs) || off >= len {
            w.report.corruptions += 1;
            w.report.problem(format!(
                "refcount block {bi} at {off:#x} is misaligned or outside the file"
            ));
            continue;
        }
        w.inc(off, cs, "refcount block");
        let first = bi as u64 * epb;
        if first >= nb {
            continue;
        }
        let mut block = vec![0u8; cs as usize];
        pread_zero_fill(&file, path, &mut block, off)?;
        for i in 0..epb.min(nb - first) {
            stored[(first + i) as usize] = get_refcount(&block, h.refcount_order, i as usize);
        }
    }

    for (c, (&r, &s)) in w.refs.iter().zip(stored.iter()).enumerate() {
        let r = u64::from(r);
        if r > 0 || s > 0 {
            w.report.allocated_clusters += 1;
        }
        if s < r {
            w.report.corruptions += 1;
            w.report
                .problem(format!("cluster {c} refcount={s} reference={r}"));
        } else if s > r {
            w.report.leaks += 1;
            w.report
                .problem(format!("leaked cluster {c} refcount={s} reference={r}"));
        }
    }
    for (off, flag, what) in copied {
        let c = (off / cs) as usize;
        let s = stored.get(c).copied().unwrap_or(0);
        if (s == 1) != flag {
            w.report.corruptions += 1;
            w.report.problem(format!(
                "{what} at {off:#x}: COPIED flag {flag} but refcount {s}"
            ));
        }
    }
    Ok(w.report)
}

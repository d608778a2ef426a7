//! `/proc/cpuinfo`: every processor record, with flags kept per architecture.
//!
//! This is the *formats* layer ([`CpuInfo::parse`]) plus one reader ([`CpuInfo::read_at`]).
//! Parsing never fails: lines without a `:` are skipped and unknown keys are kept in
//! [`ProcessorRecord::fields`].
//!
//! What parsing keeps is bounded, so a hostile or corrupt file cannot make it (or
//! [`CpuInfo::flag_differences`]) use memory beyond a fixed limit: at most
//! [`MAX_PROCESSORS`] records, [`MAX_FLAGS_PER_RECORD`] words per flag list and
//! [`MAX_KEPT_BYTES`] of kept text. Whatever is past a bound is dropped and
//! [`CpuInfo::truncated`] is set.
//!
//! # References
//! - Linux `arch/x86/kernel/cpu/proc.c` (x86 layout, `flags`, `vmx flags`, `bugs`).
//! - Linux `arch/arm64/kernel/cpuinfo.c` (arm64 layout, `Features`).
//! - Linux `Documentation/arch/x86/cpuinfo.rst` (how flags relate to CPUID).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use crate::error::{Result, read_text, under};

/// Most processor records [`CpuInfo::parse`] keeps; later records are dropped and
/// [`CpuInfo::truncated`] is set. The kernel's `NR_CPUS` is at most 8192.
pub const MAX_PROCESSORS: usize = 8192;

/// Most words kept in each of a record's `flags`, `vmx flags` and `bugs` sets (a real x86
/// record has a few hundred); later words are dropped and [`CpuInfo::truncated`] is set.
pub const MAX_FLAGS_PER_RECORD: usize = 4096;

/// Most bytes of `key : value` text [`CpuInfo::parse`] keeps in all (counting the copies
/// old arm64 layouts share between records). A real 8192-CPU x86 file is about 25 MB.
pub const MAX_KEPT_BYTES: usize = 64 << 20;

/// Most processor numbers [`CpuInfo::flag_differences`] returns in all; flags past it are
/// left out of the result.
pub const MAX_FLAG_DIFFERENCE_ENTRIES: usize = 1 << 20;

/// The architecture whose flag names a record uses. The same word means different things on
/// different architectures (arm64 `aes` is not x86 `aes`), so flags are only compared within
/// one architecture.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub enum CpuArch {
    /// x86 or x86_64 (`flags :` lines, `vendor_id`).
    X86,
    /// arm64 (`Features :` lines, `CPU implementer`).
    Arm64,
    /// Any other layout; flags, if any, are kept but match no x86 or arm64 query.
    #[default]
    Other,
}

/// One `processor : N` record.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct ProcessorRecord {
    /// The `processor` number, if it was a number.
    pub processor: Option<u32>,
    /// `vendor_id` (x86).
    pub vendor_id: Option<String>,
    /// `model name` (x86; some arm64 kernels too).
    pub model_name: Option<String>,
    /// `microcode` revision as written (`0x1000065`).
    pub microcode: Option<String>,
    /// CPU flags: x86 `flags`, arm64 `Features` (other layouts: `flags` or `features`).
    pub flags: BTreeSet<String>,
    /// x86 `vmx flags`: VMX capabilities of the CPU, *not* CPU flags.
    pub vmx_flags: BTreeSet<String>,
    /// x86 `bugs`: the CPU bugs the kernel knows this CPU has.
    pub bugs: BTreeSet<String>,
    /// Every `key : value` line of the record, in order, as written (trimmed).
    pub fields: Vec<(String, String)>,
}

impl ProcessorRecord {
    /// The value of the first `key` line.
    pub fn field(&self, key: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// A parsed `/proc/cpuinfo`.
///
/// ```
/// use kvmsec_cpu::{CpuArch, CpuInfo};
/// let info = CpuInfo::parse(
///     "processor\t: 0\nvendor_id\t: GenuineIntel\nflags\t\t: fpu smep smap vmx\n\
///      vmx flags\t: vnmi preemption_timer ept\n",
/// );
/// assert_eq!(info.arch, CpuArch::X86);
/// assert!(info.has_x86_flag("smep"));
/// assert!(!info.has_x86_flag("ept")); // a VMX capability, not a CPU flag
/// assert!(info.processors[0].vmx_flags.contains("ept"));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct CpuInfo {
    /// Which architecture's layout this is.
    pub arch: CpuArch,
    /// The processor records, in file order.
    pub processors: Vec<ProcessorRecord>,
    /// `key : value` lines outside any processor record (old arm64 and arm32 headers,
    /// trailing `Hardware :` blocks).
    pub other_fields: Vec<(String, String)>,
    /// Whether parsing dropped records, flags or text past [`MAX_PROCESSORS`],
    /// [`MAX_FLAGS_PER_RECORD`] or [`MAX_KEPT_BYTES`].
    #[cfg_attr(feature = "serde", serde(default))]
    pub truncated: bool,
}

impl CpuInfo {
    /// Parses the text of `/proc/cpuinfo`. Never fails; an empty or unrecognised text gives
    /// no processors and [`CpuArch::Other`]. Input past [`MAX_PROCESSORS`] records,
    /// [`MAX_FLAGS_PER_RECORD`] words per flag list or [`MAX_KEPT_BYTES`] of kept text is
    /// dropped and [`CpuInfo::truncated`] set.
    pub fn parse(text: &str) -> Self {
        let mut processors: Vec<ProcessorRecord> = Vec::new();
        let mut other_fields = Vec::new();
        let mut current: Option<ProcessorRecord> = None;
        let mut saw_x86 = false;
        let mut saw_arm64 = false;
        let mut budget = Budget::default();
        // Set once MAX_PROCESSORS records exist: the lines of later records are skipped.
        let mut skipping = false;

        let mut block_start = 0;
        for line in text.lines() {
            if line.trim().is_empty() {
                if let Some(rec) = current.take() {
                    processors.push(rec);
                }
                share_block_fields(
                    processors.get_mut(block_start..).unwrap_or_default(),
                    &mut budget,
                );
                block_start = processors.len();
                continue;
            }
            let Some((key, value)) = line.split_once(':') else {
                continue;
            };
            let key = key.trim();
            let value = value.trim();
            if key == "processor" {
                if let Some(rec) = current.take() {
                    processors.push(rec);
                }
                if processors.len() >= MAX_PROCESSORS {
                    skipping = true;
                    budget.truncated = true;
                } else {
                    current = Some(ProcessorRecord {
                        processor: value.parse().ok(),
                        ..ProcessorRecord::default()
                    });
                }
            }
            if skipping {
                continue;
            }
            if !budget.take(key.len() + value.len()) {
                continue;
            }
            match key {
                "vendor_id" | "cpu family" => saw_x86 = true,
                "Features" | "CPU implementer" | "CPU architecture" => saw_arm64 = true,
                _ => {}
            }
            let Some(rec) = current.as_mut() else {
                other_fields.push((key.to_string(), value.to_string()));
                continue;
            };
            rec.fields.push((key.to_string(), value.to_string()));
            let words = || value.split_whitespace().map(str::to_string);
            let mut add = |set: &mut BTreeSet<String>| {
                for w in words() {
                    if set.len() >= MAX_FLAGS_PER_RECORD && !set.contains(&w) {
                        budget.truncated = true;
                        break;
                    }
                    set.insert(w);
                }
            };
            match key {
                "flags" | "Features" | "features" => add(&mut rec.flags),
                "vmx flags" => add(&mut rec.vmx_flags),
                "bugs" => add(&mut rec.bugs),
                "vendor_id" => rec.vendor_id = Some(value.to_string()),
                "model name" => rec.model_name = Some(value.to_string()),
                "microcode" => rec.microcode = Some(value.to_string()),
                _ => {}
            }
        }
        if let Some(rec) = current.take() {
            processors.push(rec);
        }
        share_block_fields(
            processors.get_mut(block_start..).unwrap_or_default(),
            &mut budget,
        );

        // Old arm64 kernels print one shared `Features` line outside the per-CPU records.
        let shared_features = other_fields
            .iter()
            .find(|(k, _)| k == "Features")
            .map(|(_, v)| v);
        if let Some(v) = shared_features
            && saw_arm64
            && processors.iter().all(|p| p.flags.is_empty())
        {
            let shared: BTreeSet<String> = v
                .split_whitespace()
                .take(MAX_FLAGS_PER_RECORD)
                .map(str::to_string)
                .collect();
            let cost = v.len();
            for p in &mut processors {
                if !budget.take(cost) {
                    break;
                }
                p.flags = shared.clone();
            }
        }

        let arch = if saw_x86 && !saw_arm64 {
            CpuArch::X86
        } else if saw_arm64 && !saw_x86 {
            CpuArch::Arm64
        } else {
            // An x86 record always has `flags` and no `Features`; a lone `flags` line with
            // neither vendor key is still the x86 layout.
            let has_flags = processors
                .iter()
                .any(|p| p.fields.iter().any(|(k, _)| k == "flags"));
            if has_flags && !saw_arm64 {
                CpuArch::X86
            } else {
                CpuArch::Other
            }
        };
        CpuInfo {
            arch,
            processors,
            other_fields,
            truncated: budget.truncated,
        }
    }

    /// Reads and parses `<root>/proc/cpuinfo`.
    ///
    /// # Errors
    /// [`Error::Read`](crate::Error::Read) if the file cannot be read.
    pub fn read_at(root: &Path) -> Result<Self> {
        read_text(&under(root, "/proc/cpuinfo")).map(|t| Self::parse(&t))
    }

    /// Reads the live host's `/proc/cpuinfo`.
    ///
    /// # Errors
    /// [`Error::Read`](crate::Error::Read) if the file cannot be read.
    pub fn read() -> Result<Self> {
        Self::read_at(Path::new("/"))
    }

    /// Whether every processor of architecture `arch` lists `flag` (false when there are no
    /// processors or the layout is another architecture's).
    pub fn has_flag(&self, arch: CpuArch, flag: &str) -> bool {
        self.arch == arch
            && !self.processors.is_empty()
            && self.processors.iter().all(|p| p.flags.contains(flag))
    }

    /// Whether every processor lists the x86 flag `flag`.
    pub fn has_x86_flag(&self, flag: &str) -> bool {
        self.has_flag(CpuArch::X86, flag)
    }

    /// The flags every processor lists (the intersection).
    pub fn common_flags(&self) -> BTreeSet<String> {
        let mut iter = self.processors.iter();
        let Some(first) = iter.next() else {
            return BTreeSet::new();
        };
        let mut common = first.flags.clone();
        for p in iter {
            common.retain(|f| p.flags.contains(f));
        }
        common
    }

    /// The flags some processors list and others do not, each with the processors that lack
    /// it (by `processor` number, or position when the number was unreadable). Empty on hosts
    /// whose cores agree.
    ///
    /// The result holds at most [`MAX_FLAG_DIFFERENCE_ENTRIES`] processor numbers in all: a
    /// flag whose list would pass that bound, and every later flag (in name order), is left
    /// out. Memory stays linear in the parsed input.
    pub fn flag_differences(&self) -> BTreeMap<String, Vec<u32>> {
        let total = self.processors.len();
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for p in &self.processors {
            for f in &p.flags {
                *counts.entry(f.as_str()).or_default() += 1;
            }
        }
        let mut out = BTreeMap::new();
        let mut entries = 0usize;
        for (flag, have) in counts {
            let missing = total.saturating_sub(have);
            if missing == 0 {
                continue;
            }
            if entries.saturating_add(missing) > MAX_FLAG_DIFFERENCE_ENTRIES {
                break;
            }
            entries += missing;
            out.insert(flag.to_string(), self.processors_lacking(flag));
        }
        out
    }

    /// The processors that do not list `flag`.
    pub fn processors_lacking(&self, flag: &str) -> Vec<u32> {
        self.processors
            .iter()
            .enumerate()
            .filter(|(_, p)| !p.flags.contains(flag))
            .map(|(i, p)| {
                p.processor
                    .unwrap_or_else(|| u32::try_from(i).unwrap_or(u32::MAX))
            })
            .collect()
    }

    /// Whether any x86 processor lists `vmx` or `svm` (hardware virtualisation visible to
    /// this kernel). A `false` does not mean KVM is unusable: software and nested KVM
    /// flavours (for example PVM) serve `/dev/kvm` without either flag.
    pub fn has_hardware_virtualization_flag(&self) -> bool {
        self.arch == CpuArch::X86
            && self
                .processors
                .iter()
                .any(|p| p.flags.contains("vmx") || p.flags.contains("svm"))
    }

    /// The first processor's record, where vendor and model are read from.
    pub fn first(&self) -> Option<&ProcessorRecord> {
        self.processors.first()
    }
}

/// Old arm64 kernels list `processor : 0`, `processor : 1`, … one after another and then the
/// fields all of them share. Records of one block that hold nothing but their `processor`
/// line take the fields of the block's last record.
fn share_block_fields(block: &mut [ProcessorRecord], budget: &mut Budget) {
    let Some((last, earlier)) = block.split_last_mut() else {
        return;
    };
    let cost: usize = last.fields.iter().map(|(k, v)| k.len() + v.len()).sum();
    for rec in earlier.iter_mut().filter(|r| r.fields.len() == 1) {
        if !budget.take(cost) {
            return;
        }
        rec.fields.extend(
            last.fields
                .iter()
                .filter(|(k, _)| k != "processor")
                .cloned(),
        );
        rec.flags = last.flags.clone();
        rec.vmx_flags = last.vmx_flags.clone();
        rec.bugs = last.bugs.clone();
        rec.vendor_id = last.vendor_id.clone();
        rec.model_name = last.model_name.clone();
        rec.microcode = last.microcode.clone();
    }
}

/// Bytes of text kept so far against [`MAX_KEPT_BYTES`].
#[derive(Default)]
struct Budget {
    kept: usize,
    truncated: bool,
}

impl Budget {
    /// Count `bytes` more kept text; false (and `truncated` set) when that would pass the
    /// bound, in which case the caller drops it.
    fn take(&mut self, bytes: usize) -> bool {
        match self.kept.checked_add(bytes) {
            Some(n) if n <= MAX_KEPT_BYTES => {
                self.kept = n;
                true
            }
            _ => {
                self.truncated = true;
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn vmx_flags_are_not_cpu_flags() {
        let text = "processor\t: 0\nvendor_id\t: GenuineIntel\nflags\t\t: fpu vme vmx smep\n\
                    vmx flags\t: vnmi preemption_timer posted_intr invvpid ept_x_only ept_ad\n\
                    bugs\t\t: spectre_v1 spectre_v2\n\n";
        let info = CpuInfo::parse(text);
        let p = &info.processors[0];
        assert_eq!(
            p.flags,
            ["fpu", "smep", "vme", "vmx"].map(String::from).into()
        );
        assert_eq!(p.vmx_flags.len(), 6);
        assert!(!info.has_x86_flag("vnmi"));
        assert!(!info.has_x86_flag("preemption_timer"));
        assert_eq!(p.bugs.len(), 2);
    }

    #[test]
    fn empty_and_garbage_input_gives_no_processors() {
        for t in ["", "\n\n", "no colon here\nnor here", ":::\n: :\n"] {
            let i = CpuInfo::parse(t);
            assert!(i.processors.is_empty(), "{t:?}");
            assert!(!i.has_x86_flag("smep"));
        }
    }

    /// Finding F8: records and flags are bounded (documented truncation) and
    /// `flag_differences` stays linear.
    #[test]
    fn f8_records_and_flags_are_bounded() {
        // The attack input: 200 000 records, each with its own flag and a shared one.
        let text: String = (0..200_000)
            .map(|i| format!("processor : {i}\nflags : a{i} b\n\n"))
            .collect();
        let info = CpuInfo::parse(&text);
        assert!(info.truncated);
        assert_eq!(info.processors.len(), MAX_PROCESSORS);
        assert_eq!(info.processors.last().unwrap().processor, Some(8191));
        let diff = info.flag_differences();
        let entries: usize = diff.values().map(Vec::len).sum();
        assert!(entries <= MAX_FLAG_DIFFERENCE_ENTRIES);
        // Each unique flag lacks on 8191 CPUs: 128 of them fit the bound.
        assert_eq!(
            diff.len(),
            MAX_FLAG_DIFFERENCE_ENTRIES / (MAX_PROCESSORS - 1)
        );
        assert!(!diff.contains_key("b"));
        // Name order: a0, a1, a10, a100, ...
        assert_eq!(diff["a0"].len(), MAX_PROCESSORS - 1);
        assert_eq!(diff["a0"][0], 1);
        assert_eq!(info.common_flags(), ["b"].map(String::from).into());

        // Flags per record: the first MAX_FLAGS_PER_RECORD distinct words are kept.
        let words: Vec<String> = (0..MAX_FLAGS_PER_RECORD + 10)
            .map(|i| format!("f{i}"))
            .collect();
        let one = CpuInfo::parse(&format!("processor : 0\nflags : {}\n", words.join(" ")));
        assert!(one.truncated);
        assert_eq!(one.processors[0].flags.len(), MAX_FLAGS_PER_RECORD);
        assert!(one.processors[0].flags.contains("f0"));
        assert!(
            !one.processors[0]
                .flags
                .contains(&words[MAX_FLAGS_PER_RECORD])
        );

        // Within the bounds nothing is marked truncated and the differences are exact.
        let small = CpuInfo::parse("processor : 0\nflags : a b\n\nprocessor : 1\nflags : a\n\n");
        assert!(!small.truncated);
        assert_eq!(
            small.flag_differences(),
            [("b".to_string(), vec![1])].into_iter().collect()
        );
    }

    /// Old arm64 blocks share the last record's fields: the copies count against
    /// MAX_KEPT_BYTES, so many empty records plus a huge last record stay bounded.
    #[test]
    fn f8_shared_block_copies_are_bounded() {
        let mut text: String = (0..MAX_PROCESSORS - 1)
            .map(|i| format!("processor : {i}\n"))
            .collect();
        text.push_str(&format!("processor : {}\n", MAX_PROCESSORS - 1));
        text.push_str(&format!("Features : {}\n", "x".repeat(1 << 20)));
        let info = CpuInfo::parse(&text);
        assert!(info.truncated);
        let kept: usize = info
            .processors
            .iter()
            .flat_map(|p| &p.fields)
            .map(|(k, v)| k.len() + v.len())
            .sum();
        assert!(kept <= MAX_KEPT_BYTES, "{kept}");
        assert_eq!(info.processors.len(), MAX_PROCESSORS);
    }

    proptest! {
        #[test]
        fn parse_never_panics(text in "\\PC{0,400}") {
            let info = CpuInfo::parse(&text);
            let _ = info.flag_differences();
            let _ = info.common_flags();
        }

        #[test]
        fn cpuinfo_like_text_never_panics(
            text in "((processor|flags|Features|vmx flags|bugs|vendor_id|model name)[ \t]*:[ a-z0-9_]{0,30}\n{1,2}){0,20}"
        ) {
            let info = CpuInfo::parse(&text);
            for p in &info.processors {
                prop_assert!(p.flags.iter().all(|f| !f.is_empty()));
            }
            let _ = info.flag_differences();
        }
    }
}

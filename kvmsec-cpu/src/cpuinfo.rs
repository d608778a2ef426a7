//! `/proc/cpuinfo`: every processor record, with flags kept per architecture.
//!
//! This is the *formats* layer ([`CpuInfo::parse`]) plus one reader ([`CpuInfo::read_at`]).
//! Parsing never fails: lines without a `:` are skipped and unknown keys are kept in
//! [`ProcessorRecord::fields`].
//!
//! # References
//! - Linux `arch/x86/kernel/cpu/proc.c` (x86 layout, `flags`, `vmx flags`, `bugs`).
//! - Linux `arch/arm64/kernel/cpuinfo.c` (arm64 layout, `Features`).
//! - Linux `Documentation/arch/x86/cpuinfo.rst` (how flags relate to CPUID).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use crate::error::{Result, read_text, under};

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
}

impl CpuInfo {
    /// Parses the text of `/proc/cpuinfo`. Never fails; an empty or unrecognised text gives
    /// no processors and [`CpuArch::Other`].
    pub fn parse(text: &str) -> Self {
        let mut processors: Vec<ProcessorRecord> = Vec::new();
        let mut other_fields = Vec::new();
        let mut current: Option<ProcessorRecord> = None;
        let mut saw_x86 = false;
        let mut saw_arm64 = false;

        let mut block_start = 0;
        for line in text.lines() {
            if line.trim().is_empty() {
                if let Some(rec) = current.take() {
                    processors.push(rec);
                }
                share_block_fields(processors.get_mut(block_start..).unwrap_or_default());
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
                current = Some(ProcessorRecord {
                    processor: value.parse().ok(),
                    ..ProcessorRecord::default()
                });
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
            match key {
                "flags" | "Features" | "features" => rec.flags.extend(words()),
                "vmx flags" => rec.vmx_flags.extend(words()),
                "bugs" => rec.bugs.extend(words()),
                "vendor_id" => rec.vendor_id = Some(value.to_string()),
                "model name" => rec.model_name = Some(value.to_string()),
                "microcode" => rec.microcode = Some(value.to_string()),
                _ => {}
            }
        }
        if let Some(rec) = current.take() {
            processors.push(rec);
        }
        share_block_fields(processors.get_mut(block_start..).unwrap_or_default());

        // Old arm64 kernels print one shared `Features` line outside the per-CPU records.
        let shared_features = other_fields
            .iter()
            .find(|(k, _)| k == "Features")
            .map(|(_, v)| v);
        if let Some(v) = shared_features
            && saw_arm64
            && processors.iter().all(|p| p.flags.is_empty())
        {
            let shared: BTreeSet<String> = v.split_whitespace().map(str::to_string).collect();
            for p in &mut processors {
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
    pub fn flag_differences(&self) -> BTreeMap<String, Vec<u32>> {
        let all: BTreeSet<&String> = self.processors.iter().flat_map(|p| &p.flags).collect();
        let mut out = BTreeMap::new();
        for flag in all {
            let lacking = self.processors_lacking(flag);
            if !lacking.is_empty() {
                out.insert(flag.clone(), lacking);
            }
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
fn share_block_fields(block: &mut [ProcessorRecord]) {
    let Some((last, earlier)) = block.split_last_mut() else {
        return;
    };
    for rec in earlier.iter_mut().filter(|r| r.fields.len() == 1) {
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

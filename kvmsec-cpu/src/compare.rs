//! Comparing what CPUID reports with what the kernel shows in `/proc/cpuinfo`.
//!
//! A feature CPUID reports but `/proc/cpuinfo` lacks was turned off by the kernel: by a boot
//! parameter (`nosmep`, `clearcpuid=`), which [`KernelCmdline`] finds, or by the kernel's
//! build configuration, which user space cannot see.

use crate::cmdline::KernelCmdline;
use crate::cpuid::{CpuidReport, Feature};
use crate::cpuinfo::{CpuArch, CpuInfo};

/// What the two views together say about one feature.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub enum FeatureVerdict {
    /// The kernel uses it (listed in `/proc/cpuinfo`; CPUID agrees or was not read).
    Enabled,
    /// The CPU has it but the kernel turned it off, or (CPUID not read) the command line
    /// shows a parameter that turns it off.
    DisabledByKernel {
        /// The boot parameter responsible, as written (`nosmep`, `clearcpuid=smap`), if any.
        parameter: Option<String>,
    },
    /// The CPU does not have it (CPUID says so, or CPUID was not read and cpuinfo lacks it
    /// with no parameter to explain it).
    Absent,
    /// Some processors list it and others do not.
    CoresDiffer {
        /// The processors lacking it.
        lacking: Vec<u32>,
    },
    /// `/proc/cpuinfo` lists it but CPUID does not report it (CPUID read on another CPU, or
    /// changed since boot).
    ListedWithoutCpuid,
    /// The `/proc/cpuinfo` layout is not x86, so an x86 feature does not apply.
    NotX86,
    /// Neither view was available.
    Unknown,
}

/// One feature seen through CPUID and through `/proc/cpuinfo`.
///
/// ```
/// use kvmsec_cpu::{CpuInfo, Feature, FeatureComparison, FeatureVerdict, KernelCmdline};
/// let info = CpuInfo::parse("processor : 0\nvendor_id : GenuineIntel\nflags : fpu smap\n");
/// let cmd = KernelCmdline::parse("ro nosmep");
/// let smep = FeatureComparison::new(Feature::Smep, None, Some(&info), Some(&cmd));
/// assert_eq!(smep.verdict, FeatureVerdict::DisabledByKernel { parameter: Some("nosmep".into()) });
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct FeatureComparison {
    /// The feature.
    pub feature: Feature,
    /// Whether CPUID reports it (`None`: CPUID not read).
    pub cpuid: Option<bool>,
    /// Whether every processor lists its flag (`None`: no x86 cpuinfo, or Linux shows no flag
    /// for this feature).
    pub cpuinfo: Option<bool>,
    /// The conclusion.
    pub verdict: FeatureVerdict,
}

impl FeatureComparison {
    /// Compares the views that are available.
    pub fn new(
        feature: Feature,
        cpuid: Option<&CpuidReport>,
        cpuinfo: Option<&CpuInfo>,
        cmdline: Option<&KernelCmdline>,
    ) -> Self {
        let by_cpuid = cpuid.map(|c| c.has(feature));
        let parameter = cmdline.and_then(|c| c.disables(feature));
        let x86 = cpuinfo.filter(|c| c.arch == CpuArch::X86 && !c.processors.is_empty());
        let flag = feature.cpuinfo_flag();
        let by_cpuinfo = match (x86, flag) {
            (Some(c), Some(f)) => Some(c.has_x86_flag(f)),
            _ => None,
        };
        let lacking = match (x86, flag) {
            (Some(c), Some(f)) => c.processors_lacking(f),
            _ => Vec::new(),
        };
        let some_cores =
            x86.is_some_and(|c| !lacking.is_empty() && lacking.len() < c.processors.len());
        let not_x86 = cpuinfo.is_some_and(|c| c.arch != CpuArch::X86 && !c.processors.is_empty());

        let verdict = match (by_cpuid, by_cpuinfo) {
            (None, None) if not_x86 => FeatureVerdict::NotX86,
            (None, None) => FeatureVerdict::Unknown,
            (_, Some(false)) if some_cores => FeatureVerdict::CoresDiffer { lacking },
            (Some(true), Some(true)) | (None, Some(true)) => FeatureVerdict::Enabled,
            (Some(true), None) => FeatureVerdict::Enabled,
            (Some(true), Some(false)) => FeatureVerdict::DisabledByKernel { parameter },
            (None, Some(false)) if parameter.is_some() => {
                FeatureVerdict::DisabledByKernel { parameter }
            }
            (Some(false), Some(true)) => FeatureVerdict::ListedWithoutCpuid,
            (Some(false), _) | (None, Some(false)) => FeatureVerdict::Absent,
        };
        FeatureComparison {
            feature,
            cpuid: by_cpuid,
            cpuinfo: by_cpuinfo,
            verdict,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpuid::CpuidSnapshot;

    fn intel_with(ebx7: u32) -> CpuidReport {
        CpuidSnapshot::parse_dump(&format!(
            "0 0: eax=0xd ebx=0x756e6547 ecx=0x6c65746e edx=0x49656e69\n\
             7 0: eax=0 ebx={ebx7:#x} ecx=0 edx=0\n"
        ))
        .unwrap()
        .decode()
    }

    #[test]
    fn every_combination() {
        let with = CpuInfo::parse("processor : 0\nvendor_id : GenuineIntel\nflags : smep\n");
        let without = CpuInfo::parse("processor : 0\nvendor_id : GenuineIntel\nflags : fpu\n");
        let arm = CpuInfo::parse("processor : 0\nFeatures : fp aes\nCPU implementer : 0x41\n");
        let has = intel_with(1 << 7);
        let lacks = intel_with(0);
        let nosmep = KernelCmdline::parse("nosmep");
        let v = |c: Option<&CpuidReport>, i: Option<&CpuInfo>, k: Option<&KernelCmdline>| {
            FeatureComparison::new(Feature::Smep, c, i, k).verdict
        };
        assert_eq!(v(Some(&has), Some(&with), None), FeatureVerdict::Enabled);
        assert_eq!(v(None, Some(&with), None), FeatureVerdict::Enabled);
        assert_eq!(v(Some(&has), None, None), FeatureVerdict::Enabled);
        assert_eq!(
            v(Some(&has), Some(&without), Some(&nosmep)),
            FeatureVerdict::DisabledByKernel {
                parameter: Some("nosmep".into())
            }
        );
        assert_eq!(
            v(Some(&has), Some(&without), None),
            FeatureVerdict::DisabledByKernel { parameter: None }
        );
        assert_eq!(
            v(Some(&lacks), Some(&without), None),
            FeatureVerdict::Absent
        );
        assert_eq!(v(None, Some(&without), None), FeatureVerdict::Absent);
        assert_eq!(
            v(Some(&lacks), Some(&with), None),
            FeatureVerdict::ListedWithoutCpuid
        );
        assert_eq!(v(None, Some(&arm), None), FeatureVerdict::NotX86);
        assert_eq!(v(None, None, None), FeatureVerdict::Unknown);
        let hybrid = CpuInfo::parse(
            "processor : 0\nvendor_id : GenuineIntel\nflags : smep\n\n\
             processor : 1\nvendor_id : GenuineIntel\nflags : fpu\n",
        );
        assert_eq!(
            v(Some(&has), Some(&hybrid), None),
            FeatureVerdict::CoresDiffer { lacking: vec![1] }
        );
    }
}

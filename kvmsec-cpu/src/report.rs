//! The CPU section of the host security report.
//!
//! [`host_checks`] examines the live host; [`host_checks_at`] reads `/proc` and `/sys` under
//! another root (CPUID and `/dev/kvm` ioctls are then skipped, and the checks say so).
//! Both gather a [`HostFacts`] and turn it into [`Check`]s with [`HostFacts::checks`], which a
//! caller can also do with facts of its own (for example a saved CPUID dump).
//!
//! # Severities
//! | check | PASS | WARN | FAIL | INFO |
//! |---|---|---|---|---|
//! | `cpu.vendor`, `cpu.model` | | | | always |
//! | `cpu.nx` | present and enabled | CPU has it, kernel turned it off; cores differ | absent | not applicable / not checked |
//! | `cpu.smep`, `cpu.smap`, `cpu.umip` | present and enabled | kernel turned it off; absent (older CPU); cores differ | | not applicable / not checked |
//! | `cpu.pku` | present and enabled | kernel turned it off; cores differ | | absent (user-space feature) |
//! | `cpu.vuln.<file>` | not affected, mitigated | mitigated with a residual risk (`SMT vulnerable`) | vulnerable | unknown wording |
//! | `cpu.kvm.device` | usable | not a device, or opening failed | absent | not checked (e.g. permission denied) |
//! | `cpu.kvm.api_version` | | | | the version |
//! | `cpu.kvm.module`, `cpu.kvm.nested` | | | | the module / nested state |
//! | `cpu.hw_virt` | `vmx`/`svm` flag | no flag and no `/dev/kvm` | | no flag but `/dev/kvm` works; not checked |
//! | `cpu.kvm.sev*` | enabled and in CPUID | | enabled but CPUID lacks it (conflict) | disabled |
//! | `cpu.guest_smep`, `cpu.guest_smap`, `cpu.guest_umip` | KVM offers it | KVM does not offer it | | not checked |
//!
//! A `-cpu host` guest's features come from `KVM_GET_SUPPORTED_CPUID`, never from the host's
//! flags. The CR4 probe result is quoted in the guest checks, but a probe that accepts CR4.SMEP
//! does not turn a missing CPUID bit into a PASS.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::cmdline::KernelCmdline;
use crate::compare::{FeatureComparison, FeatureVerdict};
use crate::cpuid::{CpuidReport, CpuidSnapshot, Feature};
use crate::cpuinfo::{CpuArch, CpuInfo};
use crate::kvm::{
    Cr4Probe, GuestCpuid, GuestOffer, KvmAccess, KvmDevice, KvmModuleKind, KvmModules,
    ProbeOutcome, SevSupport, sev_support,
};
use crate::regs::Cr4;
use crate::vuln::{VulnState, Vulnerability, read_vulnerabilities_at};

/// Outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "UPPERCASE"))]
pub enum Status {
    /// Good.
    Pass,
    /// Worth a look.
    Warn,
    /// A security problem.
    Fail,
    /// For information, or not checked (the reason then starts with `not checked: `).
    Info,
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Status::Pass => "PASS",
            Status::Warn => "WARN",
            Status::Fail => "FAIL",
            Status::Info => "INFO",
        })
    }
}

/// One line of the report.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Check {
    /// Stable machine id, e.g. `cpu.smep`.
    pub id: String,
    /// Short human name, e.g. `SMEP`.
    pub title: String,
    /// The outcome.
    pub status: Status,
    /// A short, one-line reason.
    pub reason: String,
}

fn check(id: impl Into<String>, title: impl Into<String>, status: Status, reason: String) -> Check {
    Check {
        id: id.into(),
        title: title.into(),
        status,
        reason,
    }
}

/// Everything the CPU report is made from. Each field is either the value or why it could
/// not be obtained (that text becomes a `not checked: …` reason).
#[derive(Debug, Clone)]
pub struct HostFacts {
    /// The root the files were read under.
    pub root: PathBuf,
    /// This CPU's CPUID, decoded.
    pub cpuid: Result<CpuidReport, String>,
    /// `/proc/cpuinfo`.
    pub cpuinfo: Result<CpuInfo, String>,
    /// `/proc/cmdline`.
    pub cmdline: Result<KernelCmdline, String>,
    /// The vulnerability files.
    pub vulnerabilities: Result<Vec<Vulnerability>, String>,
    /// `/dev/kvm`.
    pub kvm_device: Result<KvmDevice, String>,
    /// The KVM modules under `/sys/module`.
    pub kvm_modules: KvmModules,
    /// What KVM offers guests.
    pub guest_cpuid: Result<GuestCpuid, String>,
    /// The CR4 write probe.
    pub cr4_probe: Result<Cr4Probe, String>,
}

impl HostFacts {
    /// Gathers the facts of the live host, including CPUID, `/dev/kvm` ioctls and the CR4
    /// probe (which creates and destroys a VM when `/dev/kvm` is usable).
    pub fn gather() -> Self {
        let root = Path::new("/");
        let mut facts = Self::gather_files(root);
        facts.cpuid = CpuidSnapshot::live()
            .map(|s| s.decode())
            .map_err(|e| e.to_string());
        let device = KvmDevice::probe_at(root);
        let usable = device.access == KvmAccess::Usable;
        let not_usable = format!("/dev/kvm is not usable: {}", access_text(&device.access));
        facts.guest_cpuid = if usable {
            GuestCpuid::query(&device.path).map_err(|e| e.to_string())
        } else {
            Err(not_usable.clone())
        };
        facts.cr4_probe = if usable {
            Cr4Probe::run(&device.path).map_err(|e| e.to_string())
        } else {
            Err(not_usable)
        };
        facts.kvm_device = Ok(device);
        facts
    }

    /// Gathers what can be read from files under `root` (cpuinfo, cmdline, vulnerabilities,
    /// module parameters). CPUID and `/dev/kvm` are left as "not checked".
    pub fn gather_files(root: &Path) -> Self {
        let skipped = format!("root is {}, not the live host's /", root.display());
        HostFacts {
            root: root.to_path_buf(),
            cpuid: Err(skipped.clone()),
            cpuinfo: CpuInfo::read_at(root).map_err(|e| e.to_string()),
            cmdline: KernelCmdline::read_at(root).map_err(|e| e.to_string()),
            vulnerabilities: read_vulnerabilities_at(root).map_err(|e| e.to_string()),
            kvm_device: Err(skipped.clone()),
            kvm_modules: KvmModules::read_at(root),
            guest_cpuid: Err(skipped.clone()),
            cr4_probe: Err(skipped),
        }
    }

    /// Turns the facts into checks (see the module docs for severities). Never panics.
    pub fn checks(&self) -> Vec<Check> {
        let mut out = Vec::new();
        self.identity_checks(&mut out);
        for (feature, absent) in [
            (Feature::Nx, Status::Fail),
            (Feature::Smep, Status::Warn),
            (Feature::Smap, Status::Warn),
            (Feature::Umip, Status::Warn),
            (Feature::Pku, Status::Info),
        ] {
            out.push(self.feature_check(feature, absent));
        }
        self.vulnerability_checks(&mut out);
        self.kvm_checks(&mut out);
        for feature in [Feature::Smep, Feature::Smap, Feature::Umip] {
            out.push(self.guest_check(feature));
        }
        out
    }

    fn x86_cpuinfo(&self) -> Option<&CpuInfo> {
        self.cpuinfo
            .as_ref()
            .ok()
            .filter(|c| c.arch == CpuArch::X86)
    }

    fn identity_checks(&self, out: &mut Vec<Check>) {
        let first = self.cpuinfo.as_ref().ok().and_then(CpuInfo::first);
        let (vendor, model) = match (&self.cpuid, first) {
            (Ok(c), _) if !c.vendor.is_empty() => {
                let mut v = c.vendor.clone();
                if let Some(h) = &c.hypervisor {
                    v.push_str(&format!(", running under {}", h.name));
                }
                let mut m = format!(
                    "{} (family {} model {} stepping {})",
                    c.brand.as_deref().unwrap_or("unnamed"),
                    c.family,
                    c.model,
                    c.stepping
                );
                if let Some(mc) = first.and_then(|p| p.microcode.as_deref()) {
                    m.push_str(&format!(", microcode {mc}"));
                }
                (v, m)
            }
            (_, Some(p)) => {
                let vendor = p
                    .vendor_id
                    .clone()
                    .or_else(|| {
                        p.field("CPU implementer")
                            .map(|i| format!("implementer {i}"))
                    })
                    .unwrap_or_else(|| "unknown".into());
                let mut model = p
                    .model_name
                    .clone()
                    .or_else(|| p.field("CPU part").map(|i| format!("part {i}")))
                    .unwrap_or_else(|| "unknown".into());
                if let Some(mc) = &p.microcode {
                    model.push_str(&format!(", microcode {mc}"));
                }
                (format!("{vendor} (from /proc/cpuinfo)"), model)
            }
            (cpuid, None) => {
                let why = match (cpuid, &self.cpuinfo) {
                    (Err(a), Err(b)) => format!("not checked: {a}; {b}"),
                    _ => "not checked: neither CPUID nor /proc/cpuinfo named the CPU".into(),
                };
                (why.clone(), why)
            }
        };
        out.push(check("cpu.vendor", "CPU vendor", Status::Info, vendor));
        out.push(check("cpu.model", "CPU model", Status::Info, model));
    }

    fn feature_check(&self, feature: Feature, absent: Status) -> Check {
        let id = format!("cpu.{}", feature.id());
        let title = feature.label();
        let flag = feature.cpuinfo_flag().unwrap_or(feature.id());
        let cmp = FeatureComparison::new(
            feature,
            self.cpuid.as_ref().ok(),
            self.cpuinfo.as_ref().ok(),
            self.cmdline.as_ref().ok(),
        );
        let cpuid_note = match &self.cpuid {
            Ok(_) => String::new(),
            Err(e) => format!("; CPUID not checked: {e}"),
        };
        let (status, reason) = match cmp.verdict {
            FeatureVerdict::NotX86 => (
                Status::Info,
                format!("not applicable: {title} is an x86 feature and this CPU is not x86"),
            ),
            FeatureVerdict::Unknown => {
                let why = match (&self.cpuid, &self.cpuinfo) {
                    (Err(a), Err(b)) => format!("not checked: {a}; {b}"),
                    (Err(a), Ok(_)) => format!("not checked: {a}"),
                    _ => "not checked: neither CPUID nor /proc/cpuinfo answered".into(),
                };
                (Status::Info, why)
            }
            FeatureVerdict::CoresDiffer { lacking } => (
                Status::Warn,
                format!(
                    "cores differ: processors {} lack the `{flag}` flag",
                    join_numbers(&lacking)
                ),
            ),
            FeatureVerdict::Enabled => match (cmp.cpuid, cmp.cpuinfo) {
                (Some(true), Some(true)) => (
                    Status::Pass,
                    format!(
                        "CPUID reports {title} and the kernel enabled it (`{flag}` in /proc/cpuinfo)"
                    ),
                ),
                (_, Some(true)) => (
                    Status::Pass,
                    format!("the kernel enabled {title} (`{flag}` in /proc/cpuinfo){cpuid_note}"),
                ),
                _ => (
                    Status::Pass,
                    format!(
                        "CPUID reports {title}; /proc/cpuinfo not checked: {}",
                        self.cpuinfo_problem()
                    ),
                ),
            },
            FeatureVerdict::DisabledByKernel { parameter } => match (cmp.cpuid, parameter) {
                (Some(true), Some(p)) => (
                    Status::Warn,
                    format!(
                        "the CPU has {title} (CPUID) but the kernel disabled it: the kernel \
                         command line turned it off (`{p}`)"
                    ),
                ),
                (Some(true), None) => (
                    Status::Warn,
                    format!(
                        "the CPU has {title} (CPUID) but the kernel disabled it: no \
                         command-line parameter explains it (kernel built without support?)"
                    ),
                ),
                (_, p) => (
                    Status::Warn,
                    format!(
                        "the kernel command line turned {title} off (`{}`){cpuid_note}",
                        p.unwrap_or_default()
                    ),
                ),
            },
            FeatureVerdict::ListedWithoutCpuid => (
                Status::Warn,
                format!("/proc/cpuinfo lists `{flag}` but CPUID does not report {title} now"),
            ),
            FeatureVerdict::Absent => match cmp.cpuid {
                Some(_) => (absent, format!("the CPU does not report {title} (CPUID)")),
                None => (
                    absent,
                    format!(
                        "/proc/cpuinfo lacks `{flag}` and no boot parameter turned it off{cpuid_note}"
                    ),
                ),
            },
        };
        check(id, title, status, reason)
    }

    fn cpuinfo_problem(&self) -> String {
        match &self.cpuinfo {
            Err(e) => e.clone(),
            Ok(c) if c.processors.is_empty() => "no processor records".into(),
            Ok(_) => "not an x86 layout".into(),
        }
    }

    fn vulnerability_checks(&self, out: &mut Vec<Check>) {
        let list = match &self.vulnerabilities {
            Err(e) => {
                out.push(check(
                    "cpu.vulnerabilities",
                    "CPU vulnerabilities",
                    Status::Info,
                    format!("not checked: {e}"),
                ));
                return;
            }
            Ok(l) if l.is_empty() => {
                out.push(check(
                    "cpu.vulnerabilities",
                    "CPU vulnerabilities",
                    Status::Info,
                    "not checked: no files in /sys/devices/system/cpu/vulnerabilities".into(),
                ));
                return;
            }
            Ok(l) => l,
        };
        for v in list {
            let status = match &v.status.state {
                VulnState::NotAffected => Status::Pass,
                VulnState::Mitigated { .. } if v.status.residual_risk() => Status::Warn,
                VulnState::Mitigated { .. } => Status::Pass,
                VulnState::Vulnerable { .. } => Status::Fail,
                VulnState::Unknown { .. } => Status::Info,
            };
            out.push(check(
                format!("cpu.vuln.{}", v.name),
                v.name.clone(),
                status,
                one_line(&v.status.raw),
            ));
        }
    }

    fn kvm_checks(&self, out: &mut Vec<Check>) {
        let module = self.kvm_modules.in_use();
        let usable = matches!(&self.kvm_device, Ok(d) if d.access == KvmAccess::Usable);

        let (status, reason) = match &self.kvm_device {
            Ok(d) => match &d.access {
                KvmAccess::Usable => (
                    Status::Pass,
                    format!(
                        "{} is present and this process can open it",
                        d.path.display()
                    ),
                ),
                KvmAccess::Absent => (
                    Status::Fail,
                    format!("{} does not exist: KVM is not available", d.path.display()),
                ),
                KvmAccess::PermissionDenied => (
                    Status::Info,
                    format!(
                        "not checked: {} exists but {}",
                        d.path.display(),
                        access_text(&d.access)
                    ),
                ),
                other => (
                    Status::Warn,
                    format!("{} is present but {}", d.path.display(), access_text(other)),
                ),
            },
            Err(e) => {
                let dev = self.root.join("dev/kvm");
                let seen = if dev.exists() {
                    format!(" ({} exists)", dev.display())
                } else {
                    String::new()
                };
                (Status::Info, format!("not checked: {e}{seen}"))
            }
        };
        out.push(check("cpu.kvm.device", "/dev/kvm", status, reason));

        let api = match &self.kvm_device {
            Ok(KvmDevice {
                api_version: Some(v),
                ..
            }) => format!("KVM API version {v}"),
            Ok(d) => format!("not checked: {}", access_text(&d.access)),
            Err(e) => format!("not checked: {e}"),
        };
        out.push(check(
            "cpu.kvm.api_version",
            "KVM API version",
            Status::Info,
            api,
        ));

        let module_reason = match module {
            Some(m) => {
                let kind = match m.kind() {
                    KvmModuleKind::Intel => "Intel VT-x".to_string(),
                    KvmModuleKind::Amd => "AMD-V".to_string(),
                    _ => "neither kvm_intel nor kvm_amd".to_string(),
                };
                format!("{} ({kind}), {} parameters", m.name, m.parameters.len())
            }
            None if self.kvm_modules.core.is_some() => {
                "kvm is present but no kvm_* vendor module shows in /sys/module".into()
            }
            None => "no KVM module in /sys/module".into(),
        };
        out.push(check(
            "cpu.kvm.module",
            "KVM module",
            Status::Info,
            module_reason,
        ));

        let nested = match module {
            Some(m) => match (m.param("nested"), m.nested()) {
                (Some(v), Some(true)) => format!("enabled ({} nested={v})", m.name),
                (Some(v), Some(false)) => format!("disabled ({} nested={v})", m.name),
                (Some(v), None) => format!("{} nested={v}", m.name),
                (None, _) => format!("{} has no `nested` parameter", m.name),
            },
            None => "not checked: no KVM vendor module".into(),
        };
        out.push(check(
            "cpu.kvm.nested",
            "Nested virtualisation",
            Status::Info,
            nested,
        ));

        // Hardware virtualisation: cpuinfo flags are not the ground truth; /dev/kvm is.
        let hw = self
            .x86_cpuinfo()
            .map(CpuInfo::has_hardware_virtualization_flag);
        let (status, reason) = match (hw, usable) {
            (Some(true), _) => (Status::Pass, "cpuinfo lists vmx or svm".to_string()),
            (Some(false), true) => (
                Status::Info,
                format!(
                    "cpuinfo lists neither vmx nor svm, but /dev/kvm works ({}): a software or \
                     nested KVM",
                    module.map_or("unknown module", |m| m.name.as_str())
                ),
            ),
            (Some(false), false)
                if self.kvm_device.is_err()
                    || matches!(&self.kvm_device, Ok(d) if d.access == KvmAccess::PermissionDenied) =>
            {
                (
                    Status::Info,
                    "not checked: cpuinfo lists neither vmx nor svm, and whether /dev/kvm works \
                     could not be checked (software or nested KVM needs neither flag)"
                        .to_string(),
                )
            }
            (Some(false), false) => (
                Status::Warn,
                "cpuinfo lists neither vmx nor svm and /dev/kvm is not usable".to_string(),
            ),
            (None, _) => (
                Status::Info,
                format!("not checked: /proc/cpuinfo: {}", self.cpuinfo_problem()),
            ),
        };
        out.push(check(
            "cpu.hw_virt",
            "Hardware virtualisation",
            status,
            reason,
        ));

        if let Some(m) = self
            .kvm_modules
            .vendor
            .iter()
            .find(|m| m.kind() == KvmModuleKind::Amd)
        {
            for (feature, state) in sev_support(m, self.cpuid.as_ref().ok()) {
                let (status, reason) = match state {
                    SevSupport::Enabled => (
                        Status::Pass,
                        "enabled in kvm_amd and reported by CPUID 0x8000001F".to_string(),
                    ),
                    SevSupport::Conflict => (
                        Status::Fail,
                        "kvm_amd parameter is enabled but CPUID 0x8000001F does not report it: \
                         a conflict, not support"
                            .to_string(),
                    ),
                    SevSupport::EnabledUnverified => (
                        Status::Info,
                        "enabled in kvm_amd; CPUID not checked".to_string(),
                    ),
                    _ => (Status::Info, "disabled in kvm_amd".to_string()),
                };
                out.push(check(
                    format!("cpu.kvm.{}", feature.id()),
                    feature.label(),
                    status,
                    reason,
                ));
            }
        }
    }

    fn guest_check(&self, feature: Feature) -> Check {
        let id = format!("cpu.guest_{}", feature.id());
        let title = format!("{} for -cpu host guests", feature.label());
        let guest = match &self.guest_cpuid {
            Ok(g) => g,
            Err(e) => return check(id, title, Status::Info, format!("not checked: {e}")),
        };
        let host_has = self.cpuid.as_ref().ok().map(|c| c.has(feature));
        let probe = self.probe_text(feature);
        match guest.offer(feature) {
            GuestOffer::Supported => check(
                id,
                title,
                Status::Pass,
                format!("KVM_GET_SUPPORTED_CPUID offers {}{probe}", feature.label()),
            ),
            offer => {
                let host = match host_has {
                    Some(true) => " although the host CPU has it",
                    Some(false) => "; the host CPU lacks it too",
                    None => "",
                };
                let emulated = if offer == GuestOffer::EmulatedOnly {
                    " (only in KVM_GET_EMULATED_CPUID)"
                } else {
                    ""
                };
                check(
                    id,
                    title,
                    Status::Warn,
                    format!(
                        "KVM does not offer {label} to guests in CPUID{emulated}{host}, so a \
                         guest kernel will not enable it{probe}{why}",
                        label = feature.label(),
                        // An accepted probe only shows KVM would keep the bit; guest kernels
                        // set it when CPUID advertises the feature.
                        why = if probe.contains(" accepted") {
                            " (KVM would keep the bit, but guests set it only when CPUID \
                             advertises the feature)"
                        } else {
                            ""
                        },
                    ),
                )
            }
        }
    }

    fn probe_text(&self, feature: Feature) -> String {
        let bit = match feature {
            Feature::Smep => Cr4::SMEP,
            Feature::Smap => Cr4::SMAP,
            Feature::Umip => Cr4::UMIP,
            _ => return String::new(),
        };
        match &self.cr4_probe {
            Ok(p) => match p.outcome(bit) {
                Some(b) => {
                    let outcome = b.with_supported_cpuid.unwrap_or(b.before_cpuid);
                    let text = match outcome {
                        ProbeOutcome::Accepted => "accepted".to_string(),
                        ProbeOutcome::NotRetained => "not retained".to_string(),
                        ProbeOutcome::Rejected { errno } => {
                            format!("rejected ({})", std::io::Error::from_raw_os_error(errno))
                        }
                    };
                    format!("; CR4 probe: KVM_SET_SREGS with CR4.{bit} {text}")
                }
                None => String::new(),
            },
            Err(e) => format!("; CR4 probe not run: {e}"),
        }
    }
}

fn access_text(access: &KvmAccess) -> String {
    match access {
        KvmAccess::Absent => "it does not exist".into(),
        KvmAccess::NotADevice => "it is not a character device".into(),
        KvmAccess::PermissionDenied => {
            "this user may not open it: permission denied (run as root or in the kvm group)".into()
        }
        KvmAccess::OpenFailed(e) => format!("opening it failed: {e}"),
        KvmAccess::Usable => "it is usable".into(),
    }
}

fn join_numbers(n: &[u32]) -> String {
    n.iter().map(u32::to_string).collect::<Vec<_>>().join(",")
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The CPU checks for the live host: CPUID, `/proc/cpuinfo`, `/proc/cmdline`, the
/// vulnerability files, `/dev/kvm` (including a CR4 probe on a throw-away VM when usable).
/// Never panics; what could not be checked is an `INFO` check whose reason starts with
/// `not checked: `.
pub fn host_checks() -> Vec<Check> {
    HostFacts::gather().checks()
}

/// The CPU checks for the host whose files are under `root`. When `root` is `/` this is
/// [`host_checks`]; otherwise CPUID and `/dev/kvm` ioctls are skipped (they can only describe
/// the machine this runs on) and the checks say so.
pub fn host_checks_at(root: &Path) -> Vec<Check> {
    if root == Path::new("/") {
        host_checks()
    } else {
        HostFacts::gather_files(root).checks()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_displays_upper_case() {
        let all = [Status::Pass, Status::Warn, Status::Fail, Status::Info];
        let shown: Vec<String> = all.iter().map(Status::to_string).collect();
        assert_eq!(shown, ["PASS", "WARN", "FAIL", "INFO"]);
    }

    #[cfg(feature = "serde")]
    #[test]
    fn serde_forms() {
        let c = Check {
            id: "cpu.smep".into(),
            title: "SMEP".into(),
            status: Status::Pass,
            reason: "ok".into(),
        };
        let json = serde_json::to_string(&c).unwrap();
        assert_eq!(
            json,
            r#"{"id":"cpu.smep","title":"SMEP","status":"PASS","reason":"ok"}"#
        );
        assert_eq!(serde_json::from_str::<Check>(&json).unwrap(), c);

        let cr4 = Cr4::from_raw(0x3706f0 | (1 << 26));
        let back: Cr4 = serde_json::from_str(&serde_json::to_string(&cr4).unwrap()).unwrap();
        assert_eq!(back, cr4);

        let snap = CpuidSnapshot::parse_dump(
            "0 0: eax=0xd ebx=0x756e6547 ecx=0x6c65746e edx=0x49656e69\n\
             7 0: eax=0 ebx=0x80 ecx=0 edx=0\n",
        )
        .unwrap();
        let report = snap.decode();
        let back: CpuidReport =
            serde_json::from_str(&serde_json::to_string(&report).unwrap()).unwrap();
        assert_eq!(back, report);
    }
}

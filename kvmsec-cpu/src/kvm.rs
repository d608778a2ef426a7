//! What KVM can give a guest: `/dev/kvm`, the KVM module and its parameters, the CPUID KVM
//! supports for guests, and a CR4 write probe on a throw-away vCPU.
//!
//! Host flags are not guest features. A `-cpu host` guest sees what
//! `KVM_GET_SUPPORTED_CPUID` returns, which can lack features the host has (a software or
//! nested KVM may not offer SMEP) and include ones it lacks (KVM can emulate UMIP).
//!
//! # References
//! - Linux `Documentation/virt/kvm/api.rst` (`KVM_GET_API_VERSION`,
//!   `KVM_GET_SUPPORTED_CPUID`, `KVM_GET_EMULATED_CPUID`, `KVM_SET_SREGS`, `KVM_GET_SREGS`).
//! - Linux `Documentation/virt/kvm/x86/amd-memory-encryption.rst` (the `sev` parameters).

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use crate::cpuid::{CpuidReport, CpuidSnapshot, Feature};
#[cfg(not(all(feature = "kvm", target_os = "linux", target_arch = "x86_64")))]
use crate::error::Error;
use crate::error::{Result, read_text, under};
use crate::regs::Cr4;

/// A module parameter's value from `/sys/module/<module>/parameters/<name>`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum ParamValue {
    /// `Y` or `N` (a kernel `bool` parameter).
    Bool(bool),
    /// A decimal integer (older kernels print some booleans as `1`/`0`).
    Int(i64),
    /// Anything else, trimmed (`auto`, `cond`, `never`).
    Text(String),
}

impl ParamValue {
    /// Parses a parameter file's text.
    pub fn parse(text: &str) -> Self {
        let t = text.trim();
        match t {
            "Y" | "y" => ParamValue::Bool(true),
            "N" | "n" => ParamValue::Bool(false),
            _ => t
                .parse::<i64>()
                .map(ParamValue::Int)
                .unwrap_or_else(|_| ParamValue::Text(t.to_string())),
        }
    }

    /// Whether the value means "enabled": `Y` and `1` are, `N` and `0` are not; other values
    /// (`-1` for "auto", text) are `None`.
    ///
    /// ```
    /// use kvmsec_cpu::ParamValue;
    /// assert_eq!(ParamValue::parse("Y\n").enabled(), Some(true));
    /// assert_eq!(ParamValue::parse("1\n").enabled(), Some(true));
    /// assert_eq!(ParamValue::parse("0").enabled(), Some(false));
    /// assert_eq!(ParamValue::parse("auto").enabled(), None);
    /// ```
    pub fn enabled(&self) -> Option<bool> {
        match self {
            ParamValue::Bool(b) => Some(*b),
            ParamValue::Int(0) => Some(false),
            ParamValue::Int(1) => Some(true),
            _ => None,
        }
    }
}

impl fmt::Display for ParamValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParamValue::Bool(true) => f.write_str("Y"),
            ParamValue::Bool(false) => f.write_str("N"),
            ParamValue::Int(i) => write!(f, "{i}"),
            ParamValue::Text(t) => f.write_str(t),
        }
    }
}

/// Which KVM vendor module a host uses.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub enum KvmModuleKind {
    /// `kvm_intel` (VT-x).
    Intel,
    /// `kvm_amd` (AMD-V).
    Amd,
    /// Another flavour (`kvm_pvm`, `kvm_hv`, …), by module name.
    Other(String),
}

/// A KVM module with its parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct KvmModule {
    /// The module name (`kvm`, `kvm_intel`, `kvm_pvm`).
    pub name: String,
    /// Its parameters; unreadable ones (write-only) are absent.
    pub parameters: BTreeMap<String, ParamValue>,
}

impl KvmModule {
    /// Reads `<root>/sys/module/<name>/parameters/*`. `None` if the module directory does
    /// not exist (not loaded, or built in without parameters).
    pub fn read_at(root: &Path, name: &str) -> Option<Self> {
        let dir = under(root, "/sys/module").join(name);
        if !dir.is_dir() {
            return None;
        }
        let mut parameters = BTreeMap::new();
        if let Ok(entries) = std::fs::read_dir(dir.join("parameters")) {
            for e in entries.flatten() {
                if let Ok(text) = read_text(&e.path()) {
                    parameters.insert(
                        e.file_name().to_string_lossy().into_owned(),
                        ParamValue::parse(&text),
                    );
                }
            }
        }
        Some(KvmModule {
            name: name.to_string(),
            parameters,
        })
    }

    /// The kind, from the name.
    pub fn kind(&self) -> KvmModuleKind {
        match self.name.as_str() {
            "kvm_intel" => KvmModuleKind::Intel,
            "kvm_amd" => KvmModuleKind::Amd,
            other => KvmModuleKind::Other(other.to_string()),
        }
    }

    /// A parameter's value.
    pub fn param(&self, name: &str) -> Option<&ParamValue> {
        self.parameters.get(name)
    }

    /// Whether nested virtualisation is enabled (`nested` parameter), `None` if the module
    /// has no such parameter.
    pub fn nested(&self) -> Option<bool> {
        self.param("nested").and_then(ParamValue::enabled)
    }
}

/// The KVM modules present on a host.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct KvmModules {
    /// The core `kvm` module, if it shows in `/sys/module`.
    pub core: Option<KvmModule>,
    /// Vendor modules (`kvm_intel`, `kvm_amd`, `kvm_pvm`, …), sorted by name.
    pub vendor: Vec<KvmModule>,
}

impl KvmModules {
    /// Finds `<root>/sys/module/kvm` and every `<root>/sys/module/kvm_*`.
    pub fn read_at(root: &Path) -> Self {
        let core = KvmModule::read_at(root, "kvm");
        let mut names: Vec<String> = std::fs::read_dir(under(root, "/sys/module"))
            .map(|entries| {
                entries
                    .flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n.starts_with("kvm_"))
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        let vendor = names
            .iter()
            .filter_map(|n| KvmModule::read_at(root, n))
            .collect();
        KvmModules { core, vendor }
    }

    /// Finds the live host's KVM modules.
    pub fn read() -> Self {
        Self::read_at(Path::new("/"))
    }

    /// The vendor module in use: `kvm_intel` or `kvm_amd` if present, else the first other.
    pub fn in_use(&self) -> Option<&KvmModule> {
        self.vendor
            .iter()
            .find(|m| matches!(m.kind(), KvmModuleKind::Intel | KvmModuleKind::Amd))
            .or_else(|| self.vendor.first())
    }
}

/// What a `kvm_amd` SEV parameter means once checked against CPUID.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub enum SevSupport {
    /// The parameter is off.
    Disabled,
    /// The parameter is on and CPUID leaf 0x8000_001F reports the feature.
    Enabled,
    /// The parameter is on but CPUID lacks the feature: a conflict, not support.
    Conflict,
    /// The parameter is on; CPUID was not available to confirm it.
    EnabledUnverified,
}

/// Checks `kvm_amd`'s `sev`, `sev_es` and `sev_snp` parameters (`Y` on newer kernels, `1`
/// on older ones) against CPUID. Parameters the module does not have are left out.
///
/// ```
/// use kvmsec_cpu::{KvmModule, ParamValue, SevSupport, sev_support};
/// let m = KvmModule {
///     name: "kvm_amd".into(),
///     parameters: [("sev".to_string(), ParamValue::parse("1"))].into(),
/// };
/// assert_eq!(sev_support(&m, None), vec![(kvmsec_cpu::Feature::Sev, SevSupport::EnabledUnverified)]);
/// ```
pub fn sev_support(module: &KvmModule, cpuid: Option<&CpuidReport>) -> Vec<(Feature, SevSupport)> {
    let mut out = Vec::new();
    for (param, feature) in [
        ("sev", Feature::Sev),
        ("sev_es", Feature::SevEs),
        ("sev_snp", Feature::SevSnp),
    ] {
        let Some(value) = module.param(param) else {
            continue;
        };
        let state = match (value.enabled(), cpuid) {
            (Some(true), Some(c)) if c.has(feature) => SevSupport::Enabled,
            (Some(true), Some(_)) => SevSupport::Conflict,
            (Some(true), None) => SevSupport::EnabledUnverified,
            _ => SevSupport::Disabled,
        };
        out.push((feature, state));
    }
    out
}

/// Whether this process can use `/dev/kvm`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub enum KvmAccess {
    /// The device does not exist.
    Absent,
    /// The path exists but is not a character device.
    NotADevice,
    /// Opening it read-write was refused (not in the `kvm` group, not root).
    PermissionDenied,
    /// Opening it failed otherwise (the message).
    OpenFailed(String),
    /// Opened read-write.
    Usable,
}

/// `/dev/kvm` as this process sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct KvmDevice {
    /// The device path.
    pub path: PathBuf,
    /// Whether and how it can be used.
    pub access: KvmAccess,
    /// `KVM_GET_API_VERSION` (12 on every kernel since 2.6.22), when it could be asked.
    pub api_version: Option<i32>,
}

impl KvmDevice {
    /// Checks `<root>/dev/kvm`: present, a character device, openable read-write, and (with
    /// the `kvm` feature, when it is a device) its API version.
    pub fn probe_at(root: &Path) -> Self {
        let path = under(root, "/dev/kvm");
        let access = match std::fs::metadata(&path) {
            Err(_) => KvmAccess::Absent,
            Ok(m) if !is_char_device(&m) => KvmAccess::NotADevice,
            Ok(_) => match std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(&path)
            {
                Ok(_) => KvmAccess::Usable,
                Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                    KvmAccess::PermissionDenied
                }
                Err(e) => KvmAccess::OpenFailed(e.to_string()),
            },
        };
        let api_version = if access == KvmAccess::Usable {
            api_version(&path).ok()
        } else {
            None
        };
        KvmDevice {
            path,
            access,
            api_version,
        }
    }

    /// Checks the live host's `/dev/kvm`.
    pub fn probe() -> Self {
        Self::probe_at(Path::new("/"))
    }
}

#[cfg(unix)]
fn is_char_device(m: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::FileTypeExt;
    m.file_type().is_char_device()
}

#[cfg(not(unix))]
fn is_char_device(_: &std::fs::Metadata) -> bool {
    false
}

/// Asks `path` (a KVM device) for `KVM_GET_API_VERSION`.
///
/// # Errors
/// [`Error::Kvm`](crate::Error::Kvm) if the device cannot be opened; [`Error::KvmFeatureDisabled`](crate::Error::KvmFeatureDisabled) without the
/// `kvm` feature.
pub fn api_version(path: &Path) -> Result<i32> {
    #[cfg(all(feature = "kvm", target_os = "linux"))]
    {
        sys::open(path, "KVM_GET_API_VERSION").map(|k| k.get_api_version())
    }
    #[cfg(not(all(feature = "kvm", target_os = "linux")))]
    {
        let _ = path;
        Err(Error::KvmFeatureDisabled {
            what: "KVM_GET_API_VERSION",
        })
    }
}

/// What KVM offers a guest: `KVM_GET_SUPPORTED_CPUID` and `KVM_GET_EMULATED_CPUID`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct GuestCpuid {
    /// The CPUID KVM supports for guests; what `-cpu host` starts from.
    pub supported: CpuidSnapshot,
    /// The CPUID KVM can emulate in software (slow paths such as MOVBE, RDPID); empty if the
    /// kernel does not offer the ioctl.
    pub emulated: CpuidSnapshot,
}

/// Whether KVM can give a guest a feature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub enum GuestOffer {
    /// In `KVM_GET_SUPPORTED_CPUID`.
    Supported,
    /// Only in `KVM_GET_EMULATED_CPUID`.
    EmulatedOnly,
    /// In neither.
    NotOffered,
}

impl GuestCpuid {
    /// Whether `feature` can be given to a guest.
    pub fn offer(&self, feature: Feature) -> GuestOffer {
        let bit = feature.cpuid_bit();
        if bit.is_set(&self.supported) {
            GuestOffer::Supported
        } else if bit.is_set(&self.emulated) {
            GuestOffer::EmulatedOnly
        } else {
            GuestOffer::NotOffered
        }
    }

    /// Asks the KVM device at `path`.
    ///
    /// Whether a `-cpu host` guest can be given SMEP (this needs access to `/dev/kvm`):
    ///
    /// ```no_run
    /// use kvmsec_cpu::{Cr4, GuestCpuid, GuestOffer};
    /// let guest = GuestCpuid::query(std::path::Path::new("/dev/kvm"))?;
    /// let smep = Cr4::SMEP.support_feature().expect("SMEP has a CPUID bit");
    /// if guest.offer(smep) != GuestOffer::Supported {
    ///     println!("a -cpu host guest will run without SMEP");
    /// }
    /// # Ok::<(), kvmsec_cpu::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Kvm`](crate::Error::Kvm) if the device or the supported-CPUID ioctl fails;
    /// [`Error::KvmFeatureDisabled`](crate::Error::KvmFeatureDisabled) without the `kvm` feature;
    /// [`Error::UnsupportedArchitecture`](crate::Error::UnsupportedArchitecture) outside x86_64.
    pub fn query(path: &Path) -> Result<Self> {
        #[cfg(all(feature = "kvm", target_os = "linux", target_arch = "x86_64"))]
        {
            sys::guest_cpuid(path)
        }
        #[cfg(not(all(feature = "kvm", target_os = "linux", target_arch = "x86_64")))]
        {
            let _ = path;
            not_available("KVM_GET_SUPPORTED_CPUID")
        }
    }
}

/// How KVM answered one CR4 bit in the probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub enum ProbeOutcome {
    /// `KVM_SET_SREGS` succeeded and `KVM_GET_SREGS` shows the bit set.
    Accepted,
    /// `KVM_SET_SREGS` failed with this errno (usually `EINVAL`: KVM refuses the bit).
    Rejected {
        /// The errno.
        errno: i32,
    },
    /// `KVM_SET_SREGS` succeeded but the bit reads back clear.
    NotRetained,
}

/// The probe's answer for one CR4 bit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Cr4BitProbe {
    /// The bit.
    pub bit: Cr4,
    /// On a fresh vCPU, before any `KVM_SET_CPUID2`.
    pub before_cpuid: ProbeOutcome,
    /// After `KVM_SET_CPUID2` with exactly the supported CPUID (as a `-cpu host` guest);
    /// `None` if that ioctl failed.
    pub with_supported_cpuid: Option<ProbeOutcome>,
}

/// The result of [`Cr4Probe::run`].
///
/// A bit that is `Accepted` here does **not** mean a guest gets the feature: a guest kernel
/// enables SMEP only when its CPUID says so, and that CPUID comes from
/// [`GuestCpuid::supported`]. Read both.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Cr4Probe {
    /// CR4 of the fresh vCPU.
    pub initial_cr4: Cr4,
    /// One entry per probed bit (SMEP, SMAP, UMIP).
    pub bits: Vec<Cr4BitProbe>,
}

impl Cr4Probe {
    /// The bits probed.
    pub const BITS: [Cr4; 3] = [Cr4::SMEP, Cr4::SMAP, Cr4::UMIP];

    /// Creates a throw-away VM and vCPU on the KVM device at `path`, sets each of
    /// [`Cr4Probe::BITS`] in turn with `KVM_SET_SREGS`, reads it back with `KVM_GET_SREGS`,
    /// then repeats after `KVM_SET_CPUID2` with the supported CPUID. The vCPU and VM are
    /// closed before this returns. The vCPU never runs. Needs read-write access to
    /// `/dev/kvm`.
    ///
    /// ```no_run
    /// use kvmsec_cpu::{Cr4, Cr4Probe, ProbeOutcome};
    /// let probe = Cr4Probe::run(std::path::Path::new("/dev/kvm"))?;
    /// let smep = probe.outcome(Cr4::SMEP).unwrap();
    /// println!("KVM_SET_SREGS with CR4.SMEP: {:?}", smep.before_cpuid);
    /// # Ok::<(), kvmsec_cpu::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Kvm`](crate::Error::Kvm) if the VM or vCPU cannot be created or the registers cannot be read;
    /// [`Error::KvmFeatureDisabled`](crate::Error::KvmFeatureDisabled) without the `kvm` feature;
    /// [`Error::UnsupportedArchitecture`](crate::Error::UnsupportedArchitecture) outside x86_64.
    pub fn run(path: &Path) -> Result<Self> {
        #[cfg(all(feature = "kvm", target_os = "linux", target_arch = "x86_64"))]
        {
            sys::probe_cr4(path)
        }
        #[cfg(not(all(feature = "kvm", target_os = "linux", target_arch = "x86_64")))]
        {
            let _ = path;
            not_available("the CR4 probe")
        }
    }

    /// The answer for `bit`.
    pub fn outcome(&self, bit: Cr4) -> Option<&Cr4BitProbe> {
        self.bits.iter().find(|b| b.bit == bit)
    }
}

#[cfg(not(all(feature = "kvm", target_os = "linux", target_arch = "x86_64")))]
fn not_available<T>(what: &'static str) -> Result<T> {
    if cfg!(all(feature = "kvm", target_os = "linux")) {
        Err(Error::UnsupportedArchitecture {
            arch: std::env::consts::ARCH,
            what,
        })
    } else {
        Err(Error::KvmFeatureDisabled { what })
    }
}

#[cfg(all(feature = "kvm", target_os = "linux"))]
mod sys {
    //! The ioctls, through rust-vmm's `kvm-ioctls`.

    use std::ffi::CString;
    use std::path::Path;

    use kvm_ioctls::Kvm;

    use crate::error::{Error, Result};

    pub(super) fn kvm_err(ioctl: &'static str, path: &Path, e: kvm_ioctls::Error) -> Error {
        Error::Kvm {
            ioctl,
            path: path.to_path_buf(),
            source: std::io::Error::from_raw_os_error(e.errno()),
        }
    }

    pub(super) fn open(path: &Path, ioctl: &'static str) -> Result<Kvm> {
        use std::os::unix::ffi::OsStrExt;
        let c = CString::new(path.as_os_str().as_bytes()).map_err(|_| Error::Kvm {
            ioctl,
            path: path.to_path_buf(),
            source: std::io::Error::from(std::io::ErrorKind::InvalidInput),
        })?;
        Kvm::new_with_path(c).map_err(|e| kvm_err(ioctl, path, e))
    }

    #[cfg(target_arch = "x86_64")]
    pub(super) use x86::{guest_cpuid, probe_cr4};

    #[cfg(target_arch = "x86_64")]
    mod x86 {
        use std::path::Path;

        use kvm_bindings::{CpuId, KVM_CPUID_FLAG_SIGNIFCANT_INDEX, KVM_MAX_CPUID_ENTRIES};
        use kvm_ioctls::VcpuFd;

        use super::{kvm_err, open};
        use crate::cpuid::{CpuidEntry, CpuidRegs, CpuidSnapshot};
        use crate::error::Result;
        use crate::kvm::{Cr4BitProbe, Cr4Probe, GuestCpuid, ProbeOutcome};
        use crate::regs::Cr4;

        fn snapshot(cpuid: &CpuId) -> CpuidSnapshot {
            CpuidSnapshot::from_entries(cpuid.as_slice().iter().map(|e| CpuidEntry {
                leaf: e.function,
                subleaf: e.index,
                subleaf_significant: e.flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX != 0,
                regs: CpuidRegs {
                    eax: e.eax,
                    ebx: e.ebx,
                    ecx: e.ecx,
                    edx: e.edx,
                },
            }))
        }

        pub(in crate::kvm) fn guest_cpuid(path: &Path) -> Result<GuestCpuid> {
            let kvm = open(path, "KVM_GET_SUPPORTED_CPUID")?;
            let supported = kvm
                .get_supported_cpuid(KVM_MAX_CPUID_ENTRIES)
                .map_err(|e| kvm_err("KVM_GET_SUPPORTED_CPUID", path, e))?;
            let emulated = kvm
                .get_emulated_cpuid(KVM_MAX_CPUID_ENTRIES)
                .map(|c| snapshot(&c))
                .unwrap_or_default();
            Ok(GuestCpuid {
                supported: snapshot(&supported),
                emulated,
            })
        }

        fn try_bit(vcpu: &VcpuFd, bit: Cr4, path: &Path) -> Result<ProbeOutcome> {
            let mut sregs = vcpu
                .get_sregs()
                .map_err(|e| kvm_err("KVM_GET_SREGS", path, e))?;
            let original = sregs;
            sregs.cr4 |= bit.bits();
            if let Err(e) = vcpu.set_sregs(&sregs) {
                return Ok(ProbeOutcome::Rejected { errno: e.errno() });
            }
            let back = vcpu
                .get_sregs()
                .map_err(|e| kvm_err("KVM_GET_SREGS", path, e))?;
            let outcome = if back.cr4 & bit.bits() == bit.bits() {
                ProbeOutcome::Accepted
            } else {
                ProbeOutcome::NotRetained
            };
            vcpu.set_sregs(&original)
                .map_err(|e| kvm_err("KVM_SET_SREGS", path, e))?;
            Ok(outcome)
        }

        pub(in crate::kvm) fn probe_cr4(path: &Path) -> Result<Cr4Probe> {
            let kvm = open(path, "KVM_CREATE_VM")?;
            let supported = kvm.get_supported_cpuid(KVM_MAX_CPUID_ENTRIES).ok();
            // The VM and vCPU file descriptors close when they drop at the end of this
            // function, on every path; KVM frees the VM with its last descriptor.
            let vm = kvm
                .create_vm()
                .map_err(|e| kvm_err("KVM_CREATE_VM", path, e))?;
            let vcpu = vm
                .create_vcpu(0)
                .map_err(|e| kvm_err("KVM_CREATE_VCPU", path, e))?;
            let initial = vcpu
                .get_sregs()
                .map_err(|e| kvm_err("KVM_GET_SREGS", path, e))?;
            let mut bits = Vec::new();
            for bit in Cr4Probe::BITS {
                bits.push(Cr4BitProbe {
                    bit,
                    before_cpuid: try_bit(&vcpu, bit, path)?,
                    with_supported_cpuid: None,
                });
            }
            let cpuid_set = match &supported {
                Some(c) => vcpu.set_cpuid2(c).is_ok(),
                None => false,
            };
            if cpuid_set {
                for b in &mut bits {
                    b.with_supported_cpuid = Some(try_bit(&vcpu, b.bit, path)?);
                }
            }
            drop(vcpu);
            drop(vm);
            Ok(Cr4Probe {
                initial_cr4: Cr4::from_raw(initial.cr4),
                bits,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn param_values() {
        assert_eq!(ParamValue::parse("Y\n"), ParamValue::Bool(true));
        assert_eq!(ParamValue::parse("N"), ParamValue::Bool(false));
        assert_eq!(ParamValue::parse("200000\n"), ParamValue::Int(200000));
        assert_eq!(ParamValue::parse("-1").enabled(), None);
        assert_eq!(ParamValue::parse("never").to_string(), "never");
        assert_eq!(ParamValue::parse("cond"), ParamValue::Text("cond".into()));
    }

    #[test]
    fn absent_device_and_modules() {
        let dir = tempfile::tempdir().unwrap();
        let d = KvmDevice::probe_at(dir.path());
        assert_eq!(d.access, KvmAccess::Absent);
        assert_eq!(d.api_version, None);
        let m = KvmModules::read_at(dir.path());
        assert_eq!(m, KvmModules::default());
        assert!(m.in_use().is_none());
        std::fs::create_dir_all(dir.path().join("dev")).unwrap();
        std::fs::write(dir.path().join("dev/kvm"), "").unwrap();
        assert_eq!(
            KvmDevice::probe_at(dir.path()).access,
            KvmAccess::NotADevice
        );
    }
}

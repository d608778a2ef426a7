//! CPU security features of a KVM host, and what KVM can give a guest.
//!
//! Before starting a guest, a hypervisor manager wants to know: does this CPU have SMEP,
//! SMAP, UMIP, PKU and NX; did the kernel turn any of them off; is the host exposed to known
//! CPU vulnerabilities; and can a guest started with `-cpu host` actually get SMEP? This
//! crate answers each of those, typed:
//!
//! - [`Cr0`], [`Cr4`], [`Efer`], [`Xcr0`] name every architectural bit and decode the text
//!   people paste (Linux oops dumps, QEMU `info registers`, bare hex) via [`RegisterDump`].
//! - [`CpuidSnapshot`] holds CPUID answers from any source (this CPU, KVM, a saved dump) and
//!   [`CpuidReport`] decodes them, so the host and guest views go through one decoder.
//! - [`CpuInfo`] parses `/proc/cpuinfo` (x86, arm64, hybrid cores), [`KernelCmdline`] says
//!   which boot parameter turned a feature off, [`FeatureComparison`] sets CPUID against
//!   cpuinfo, and [`VulnStatus`] parses the vulnerability files.
//! - [`KvmDevice`], [`KvmModules`], [`GuestCpuid`] and [`Cr4Probe`] ask `/dev/kvm`.
//! - [`report`] turns all of it into the CPU section of a host report.
//!
//! ```
//! use kvmsec_cpu::{Cr4, RegisterDump};
//!
//! // A line from a Linux oops, timestamp and all.
//! let dump = RegisterDump::parse("[ 71.3] CR2: 0000000000000000 CR3: 000000010d2e6000 CR4: 00000000003706f0")?;
//! let cr4 = dump.cr4.unwrap();
//! assert!(cr4.contains(Cr4::SMEP | Cr4::SMAP));
//! assert!(!cr4.contains(Cr4::UMIP));
//! assert_eq!(cr4.to_string(), "PSE|PAE|MCE|PGE|OSFXSR|OSXMMEXCPT|FSGSBASE|PCIDE|OSXSAVE|SMEP|SMAP");
//!
//! // Where CPUID reports support for a CR4 bit.
//! assert_eq!(Cr4::SMAP.cpuid_support().unwrap().to_string(), "CPUID.(EAX=07H,ECX=0):EBX[20]");
//! # Ok::<(), kvmsec_cpu::Error>(())
//! ```
//!
//! Checking the live host (needs `/dev/kvm` access for the KVM parts):
//!
//! ```no_run
//! for c in kvmsec_cpu::report::host_checks() {
//!     println!("{:4} {:<28} {}", c.status, c.title, c.reason);
//! }
//! ```
//!
//! # Crate features
//! - `kvm` (default): ask `/dev/kvm` through rust-vmm's `kvm-ioctls` (API version,
//!   `KVM_GET_SUPPORTED_CPUID`/`KVM_GET_EMULATED_CPUID`, the CR4 probe). Without it those
//!   functions return [`Error::KvmFeatureDisabled`] and the report says "not checked".
//! - `serde`: `Serialize`/`Deserialize` for the public data types; [`report::Status`]
//!   serialises as `"PASS"`, `"WARN"`, `"FAIL"`, `"INFO"`.
//!
//! # Platform support
//! Linux on x86_64 is the full target. The parsers and decoders are plain Rust and build
//! everywhere. [`CpuidSnapshot::live`] needs x86/x86_64 and returns
//! [`Error::UnsupportedArchitecture`] elsewhere; the KVM supported-CPUID query and CR4 probe
//! need x86_64 Linux. `/proc/cpuinfo` of arm64 hosts is parsed with its flags kept apart
//! from x86 flags.
//!
//! # Limitations
//! - CR4 itself cannot be read from user space. "The kernel enabled SMEP" is inferred from
//!   the `/proc/cpuinfo` flag: Linux sets CR4.SMEP/SMAP/UMIP whenever the flag is present and
//!   pins them.
//! - No MSRs are read (BIOS VT-x lock, SPEC_CTRL): that needs the `msr` module and root.
//! - `/proc/cmdline` explains a disabled feature only for parameters the crate knows
//!   (`nosmep`, `nosmap`, `nopku`, `clearcpuid=`, `noexec=off`, …).
//! - The CR4 probe tells whether KVM accepts the bit in `KVM_SET_SREGS`; it never runs guest
//!   code, and a guest kernel enables SMEP only when its CPUID says so.
//! - The live CPUID is the CPU this thread runs on; hybrid differences are seen through
//!   `/proc/cpuinfo` only.
#![deny(missing_docs)]
#![warn(missing_debug_implementations)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod cmdline;
mod compare;
mod cpuid;
mod cpuinfo;
mod error;
mod kvm;
mod regs;
pub mod report;
mod vuln;

pub use cmdline::KernelCmdline;
pub use compare::{FeatureComparison, FeatureVerdict};
pub use cpuid::{
    CpuidBit, CpuidEntry, CpuidRegister, CpuidRegs, CpuidReport, CpuidSnapshot, Feature,
    HypervisorInfo,
};
pub use cpuinfo::{
    CpuArch, CpuInfo, MAX_FLAG_DIFFERENCE_ENTRIES, MAX_FLAGS_PER_RECORD, MAX_KEPT_BYTES,
    MAX_PROCESSORS, ProcessorRecord,
};
pub use error::{Error, Result};
pub use kvm::{
    Cr4BitProbe, Cr4Probe, GuestCpuid, GuestOffer, KvmAccess, KvmDevice, KvmModule, KvmModuleKind,
    KvmModules, ParamValue, ProbeOutcome, SevSupport, api_version, sev_support,
};
pub use regs::{Cr0, Cr4, Efer, Register, RegisterDump, Xcr0};
pub use vuln::{
    SubReport, VulnState, VulnStatus, Vulnerability, read_vulnerabilities, read_vulnerabilities_at,
};

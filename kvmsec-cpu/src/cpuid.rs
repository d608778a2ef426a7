//! CPUID: where each security feature is reported, a snapshot type that holds CPUID answers
//! from any source (this CPU, KVM's supported CPUID, a saved dump), and the decoder that turns
//! a snapshot into [`CpuidReport`].
//!
//! Decoding never executes `cpuid`: it reads a [`CpuidSnapshot`], so the host view and the
//! guest view (what KVM offers) go through the same code. Only [`CpuidSnapshot::live`] runs
//! the instruction, and it exists only on x86 and x86_64.
//!
//! # References
//! - Intel SDM Vol. 2A, "CPUID—CPU Identification" (leaves 1, 7, 0x21).
//! - AMD APM Vol. 3, Appendix E "Obtaining Processor Information Via the CPUID Instruction"
//!   (leaves 0x8000_0001, 0x8000_0008, 0x8000_001F, 0x8000_0021).
//! - Linux `Documentation/virt/kvm/x86/cpuid.rst` (hypervisor leaves 0x4000_0000+).

use std::collections::BTreeMap;
use std::fmt;

use raw_cpuid::{CpuId, CpuIdResult};

use crate::error::{Error, Result};

/// One of the four registers CPUID returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum CpuidRegister {
    /// EAX.
    Eax,
    /// EBX.
    Ebx,
    /// ECX.
    Ecx,
    /// EDX.
    Edx,
}

impl fmt::Display for CpuidRegister {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CpuidRegister::Eax => "EAX",
            CpuidRegister::Ebx => "EBX",
            CpuidRegister::Ecx => "ECX",
            CpuidRegister::Edx => "EDX",
        })
    }
}

/// The location of one feature bit: leaf (EAX input), subleaf (ECX input), output register
/// and bit number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct CpuidBit {
    /// The leaf (value of EAX on input).
    pub leaf: u32,
    /// The subleaf (value of ECX on input); 0 for leaves without subleaves.
    pub subleaf: u32,
    /// The output register holding the bit.
    pub register: CpuidRegister,
    /// The bit number, 0–31.
    pub bit: u8,
}

impl CpuidBit {
    const fn new(leaf: u32, subleaf: u32, register: CpuidRegister, bit: u8) -> Self {
        CpuidBit {
            leaf,
            subleaf,
            register,
            bit,
        }
    }

    /// Whether the bit is set in `snapshot` (an absent leaf reads as zero).
    pub fn is_set(&self, snapshot: &CpuidSnapshot) -> bool {
        let regs = snapshot.get(self.leaf, self.subleaf);
        let word = match self.register {
            CpuidRegister::Eax => regs.eax,
            CpuidRegister::Ebx => regs.ebx,
            CpuidRegister::Ecx => regs.ecx,
            CpuidRegister::Edx => regs.edx,
        };
        word.checked_shr(u32::from(self.bit)).unwrap_or(0) & 1 == 1
    }
}

/// Formats in the SDM's notation, e.g. `CPUID.(EAX=07H,ECX=0):EBX[7]`.
impl fmt::Display for CpuidBit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "CPUID.(EAX={:02X}H,ECX={}):{}[{}]",
            self.leaf, self.subleaf, self.register, self.bit
        )
    }
}

macro_rules! features {
    ($( $(#[$doc:meta])* $var:ident => $id:literal, $label:literal, ($leaf:expr, $sub:expr, $reg:ident, $bit:expr), $flag:expr; )*) => {
        /// A CPU feature this crate decodes from CPUID.
        ///
        /// Every feature has one CPUID bit ([`Feature::cpuid_bit`]) and, where Linux shows
        /// it, the `/proc/cpuinfo` flag ([`Feature::cpuinfo_flag`]).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
        #[non_exhaustive]
        pub enum Feature {
            $( $(#[$doc])* $var, )*
        }

        impl Feature {
            /// Every feature, in declaration order.
            pub const ALL: &'static [Feature] = &[ $( Feature::$var, )* ];

            /// A short lower-case identifier (`smep`, `cet_ibt`), stable across releases.
            pub const fn id(self) -> &'static str {
                match self { $( Feature::$var => $id, )* }
            }

            /// The human name (`SMEP`, `CET indirect-branch tracking`).
            pub const fn label(self) -> &'static str {
                match self { $( Feature::$var => $label, )* }
            }

            /// Where CPUID reports the feature.
            pub const fn cpuid_bit(self) -> CpuidBit {
                match self {
                    $( Feature::$var => CpuidBit::new($leaf, $sub, CpuidRegister::$reg, $bit), )*
                }
            }

            /// The x86 `/proc/cpuinfo` flag Linux prints for it, if Linux prints one.
            pub const fn cpuinfo_flag(self) -> Option<&'static str> {
                match self { $( Feature::$var => $flag, )* }
            }
        }
    };
}

features! {
    /// Virtual-8086 mode enhancements (CR4.VME/PVI).
    Vme => "vme", "VME", (1, 0, Edx, 1), Some("vme");
    /// Debugging extensions (CR4.DE).
    De => "de", "DE", (1, 0, Edx, 2), Some("de");
    /// Page size extensions (CR4.PSE).
    Pse => "pse", "PSE", (1, 0, Edx, 3), Some("pse");
    /// Time stamp counter (CR4.TSD).
    Tsc => "tsc", "TSC", (1, 0, Edx, 4), Some("tsc");
    /// Physical address extension (CR4.PAE).
    Pae => "pae", "PAE", (1, 0, Edx, 6), Some("pae");
    /// Machine-check exception (CR4.MCE).
    Mce => "mce", "MCE", (1, 0, Edx, 7), Some("mce");
    /// Page global enable (CR4.PGE).
    Pge => "pge", "PGE", (1, 0, Edx, 13), Some("pge");
    /// FXSAVE/FXRSTOR (CR4.OSFXSR).
    Fxsr => "fxsr", "FXSR", (1, 0, Edx, 24), Some("fxsr");
    /// SSE (CR4.OSXMMEXCPT).
    Sse => "sse", "SSE", (1, 0, Edx, 25), Some("sse");
    /// Intel VT-x (CR4.VMXE).
    Vmx => "vmx", "VMX (Intel VT-x)", (1, 0, Ecx, 5), Some("vmx");
    /// Safer mode extensions (CR4.SMXE).
    Smx => "smx", "SMX", (1, 0, Ecx, 6), Some("smx");
    /// Process-context identifiers (CR4.PCIDE).
    Pcid => "pcid", "PCID", (1, 0, Ecx, 17), Some("pcid");
    /// XSAVE (CR4.OSXSAVE).
    Xsave => "xsave", "XSAVE", (1, 0, Ecx, 26), Some("xsave");
    /// The OS has set CR4.OSXSAVE (mirrors the running kernel's CR4; Linux hides the flag).
    Osxsave => "osxsave", "OSXSAVE", (1, 0, Ecx, 27), None;
    /// Running under a hypervisor.
    Hypervisor => "hypervisor", "Hypervisor present", (1, 0, Ecx, 31), Some("hypervisor");
    /// RDFSBASE and friends (CR4.FSGSBASE).
    Fsgsbase => "fsgsbase", "FSGSBASE", (7, 0, Ebx, 0), Some("fsgsbase");
    /// Supervisor-mode execution prevention (CR4.SMEP).
    Smep => "smep", "SMEP", (7, 0, Ebx, 7), Some("smep");
    /// INVPCID instruction.
    Invpcid => "invpcid", "INVPCID", (7, 0, Ebx, 10), Some("invpcid");
    /// Supervisor-mode access prevention (CR4.SMAP).
    Smap => "smap", "SMAP", (7, 0, Ebx, 20), Some("smap");
    /// User-mode instruction prevention (CR4.UMIP).
    Umip => "umip", "UMIP", (7, 0, Ecx, 2), Some("umip");
    /// Protection keys for user pages (CR4.PKE).
    Pku => "pku", "PKU", (7, 0, Ecx, 3), Some("pku");
    /// The OS has set CR4.PKE.
    Ospke => "ospke", "OSPKE", (7, 0, Ecx, 4), Some("ospke");
    /// CET shadow stack (CR4.CET).
    CetSs => "cet_ss", "CET shadow stack", (7, 0, Ecx, 7), Some("user_shstk");
    /// 5-level paging (CR4.LA57).
    La57 => "la57", "LA57", (7, 0, Ecx, 16), Some("la57");
    /// Key Locker (CR4.KL).
    KeyLocker => "key_locker", "Key Locker", (7, 0, Ecx, 23), None;
    /// Protection keys for supervisor pages (CR4.PKS).
    Pks => "pks", "PKS", (7, 0, Ecx, 31), None;
    /// User interrupts (CR4.UINTR).
    Uintr => "uintr", "UINTR", (7, 0, Edx, 5), None;
    /// MD_CLEAR: VERW clears CPU buffers (MDS mitigation).
    MdClear => "md_clear", "MD_CLEAR", (7, 0, Edx, 10), Some("md_clear");
    /// CET indirect-branch tracking.
    CetIbt => "cet_ibt", "CET indirect-branch tracking", (7, 0, Edx, 20), Some("ibt");
    /// Intel IBRS and IBPB (the SPEC_CTRL MSR).
    IbrsIbpb => "ibrs_ibpb", "IBRS/IBPB (Intel SPEC_CTRL)", (7, 0, Edx, 26), None;
    /// Intel single-thread indirect branch predictors.
    Stibp => "stibp", "STIBP (Intel)", (7, 0, Edx, 27), None;
    /// L1D_FLUSH command (L1TF mitigation).
    L1dFlush => "l1d_flush", "L1D_FLUSH", (7, 0, Edx, 28), Some("flush_l1d");
    /// The IA32_ARCH_CAPABILITIES MSR.
    ArchCapabilities => "arch_capabilities", "ARCH_CAPABILITIES", (7, 0, Edx, 29), Some("arch_capabilities");
    /// Intel speculative store bypass disable.
    Ssbd => "ssbd", "SSBD (Intel)", (7, 0, Edx, 31), None;
    /// Linear address space separation (CR4.LASS).
    Lass => "lass", "LASS", (7, 1, Eax, 6), Some("lass");
    /// Flexible return and event delivery (CR4.FRED).
    Fred => "fred", "FRED", (7, 1, Eax, 17), Some("fred");
    /// Linear address masking (CR4.LAM_SUP).
    Lam => "lam", "LAM", (7, 1, Eax, 26), Some("lam");
    /// AMD-V (EFER.SVME).
    Svm => "svm", "SVM (AMD-V)", (0x8000_0001, 0, Ecx, 2), Some("svm");
    /// No-execute pages (EFER.NXE).
    Nx => "nx", "NX", (0x8000_0001, 0, Edx, 20), Some("nx");
    /// 64-bit long mode (EFER.LME).
    LongMode => "lm", "Long mode", (0x8000_0001, 0, Edx, 29), Some("lm");
    /// AMD indirect branch prediction barrier.
    AmdIbpb => "amd_ibpb", "IBPB (AMD)", (0x8000_0008, 0, Ebx, 12), None;
    /// AMD indirect branch restricted speculation.
    AmdIbrs => "amd_ibrs", "IBRS (AMD)", (0x8000_0008, 0, Ebx, 14), None;
    /// AMD single-thread indirect branch predictors.
    AmdStibp => "amd_stibp", "STIBP (AMD)", (0x8000_0008, 0, Ebx, 15), None;
    /// AMD speculative store bypass disable.
    AmdSsbd => "amd_ssbd", "SSBD (AMD)", (0x8000_0008, 0, Ebx, 24), None;
    /// SSBD through the VIRT_SPEC_CTRL MSR (offered by hypervisors).
    VirtSsbd => "virt_ssbd", "VIRT_SSBD", (0x8000_0008, 0, Ebx, 25), Some("virt_ssbd");
    /// AMD secure memory encryption.
    Sme => "sme", "SME", (0x8000_001F, 0, Eax, 0), Some("sme");
    /// AMD secure encrypted virtualization.
    Sev => "sev", "SEV", (0x8000_001F, 0, Eax, 1), Some("sev");
    /// SEV with encrypted state.
    SevEs => "sev_es", "SEV-ES", (0x8000_001F, 0, Eax, 3), Some("sev_es");
    /// SEV secure nested paging.
    SevSnp => "sev_snp", "SEV-SNP", (0x8000_001F, 0, Eax, 4), Some("sev_snp");
    /// AMD automatic IBRS (EFER.AUTOIBRS).
    AutoIbrs => "autoibrs", "Automatic IBRS", (0x8000_0021, 0, Eax, 8), Some("autoibrs");
}

impl fmt::Display for Feature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// The four output registers of one CPUID query.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct CpuidRegs {
    /// EAX.
    pub eax: u32,
    /// EBX.
    pub ebx: u32,
    /// ECX.
    pub ecx: u32,
    /// EDX.
    pub edx: u32,
}

/// One stored CPUID answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct CpuidEntry {
    /// The leaf.
    pub leaf: u32,
    /// The subleaf.
    pub subleaf: u32,
    /// Whether the subleaf matters for this leaf (KVM's `KVM_CPUID_FLAG_SIGNIFCANT_INDEX`).
    /// When `false`, the entry answers every subleaf.
    pub subleaf_significant: bool,
    /// The output registers.
    pub regs: CpuidRegs,
}

/// CPUID answers from any source: this CPU, `KVM_GET_SUPPORTED_CPUID`, a saved dump.
///
/// Leaves that are not stored read as zero, as CPUID does for leaves above the maximum.
///
/// ```
/// use kvmsec_cpu::{CpuidSnapshot, Feature};
/// let snap = CpuidSnapshot::parse_dump(
///     "0x00000000 0x00: eax=0x00000010 ebx=0x756e6547 ecx=0x6c65746e edx=0x49656e69\n\
///      0x00000007 0x00: eax=0x00000000 ebx=0x00100080 ecx=0x00000004 edx=0x00000000\n",
/// )?;
/// let report = snap.decode();
/// assert_eq!(report.vendor, "GenuineIntel");
/// assert!(report.has(Feature::Smep) && report.has(Feature::Smap) && report.has(Feature::Umip));
/// assert!(!report.has(Feature::Pku));
/// # Ok::<(), kvmsec_cpu::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct CpuidSnapshot {
    entries: BTreeMap<(u32, u32), CpuidEntry>,
}

impl CpuidSnapshot {
    /// An empty snapshot (every leaf reads as zero).
    pub fn new() -> Self {
        Self::default()
    }

    /// Stores one answer, replacing any earlier one for the same leaf and subleaf.
    pub fn insert(&mut self, entry: CpuidEntry) {
        let subleaf = if entry.subleaf_significant {
            entry.subleaf
        } else {
            0
        };
        self.entries.insert((entry.leaf, subleaf), entry);
    }

    /// Builds a snapshot from entries (for example those of `KVM_GET_SUPPORTED_CPUID`).
    pub fn from_entries(entries: impl IntoIterator<Item = CpuidEntry>) -> Self {
        let mut s = Self::new();
        for e in entries {
            s.insert(e);
        }
        s
    }

    /// The stored entries, ordered by leaf and subleaf.
    pub fn entries(&self) -> impl Iterator<Item = &CpuidEntry> {
        self.entries.values()
    }

    /// Number of stored entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The answer for `leaf`/`subleaf` (zero when not stored).
    pub fn get(&self, leaf: u32, subleaf: u32) -> CpuidRegs {
        if let Some(e) = self.entries.get(&(leaf, subleaf)) {
            return e.regs;
        }
        match self.entries.get(&(leaf, 0)) {
            Some(e) if !e.subleaf_significant => e.regs,
            _ => CpuidRegs::default(),
        }
    }

    /// Parses a text dump: one entry per line, `LEAF SUBLEAF: eax=.. ebx=.. ecx=.. edx=..`
    /// with hexadecimal numbers (the `cpuid -r` layout, e.g.
    /// `0x00000007 0x00: eax=0x00000000 ebx=0xf1bf07ab ecx=0x00405fc6 edx=0x00000010`).
    /// Blank lines, lines starting with `#`, and lines such as `CPU 0:` are skipped; the
    /// first CPU's block wins if several are present.
    ///
    /// # Errors
    /// [`Error::CpuidDump`] naming the line and what was wrong.
    pub fn parse_dump(text: &str) -> Result<Self> {
        let mut snap = Self::new();
        let mut cpus_seen = 0usize;
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            let lineno = i + 1;
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if line.to_ascii_uppercase().starts_with("CPU") {
                cpus_seen += 1;
                if cpus_seen > 1 {
                    break;
                }
                continue;
            }
            let err = |what| Error::CpuidDump { line: lineno, what };
            let (head, regs) = line.split_once(':').ok_or(err("missing `:`"))?;
            let mut head = head.split_whitespace();
            let leaf = head.next().ok_or(err("missing leaf"))?;
            let sub = head.next().ok_or(err("missing subleaf"))?;
            if head.next().is_some() {
                return Err(err("more than a leaf and a subleaf before `:`"));
            }
            let leaf = hex_u32(leaf).ok_or(err("leaf is not a 32-bit hex number"))?;
            let subleaf = hex_u32(sub).ok_or(err("subleaf is not a 32-bit hex number"))?;
            let mut out = [None::<u32>; 4];
            for word in regs.split_whitespace() {
                let (name, value) = word
                    .split_once('=')
                    .ok_or(err("register not written as name=value"))?;
                let slot = match name.to_ascii_lowercase().as_str() {
                    "eax" => 0,
                    "ebx" => 1,
                    "ecx" => 2,
                    "edx" => 3,
                    _ => return Err(err("unknown register name")),
                };
                let v = hex_u32(value).ok_or(err("register value is not a 32-bit hex number"))?;
                if let Some(s) = out.get_mut(slot) {
                    *s = Some(v);
                }
            }
            let [Some(eax), Some(ebx), Some(ecx), Some(edx)] = out else {
                return Err(err("needs eax, ebx, ecx and edx"));
            };
            snap.insert(CpuidEntry {
                leaf,
                subleaf,
                subleaf_significant: true,
                regs: CpuidRegs { eax, ebx, ecx, edx },
            });
        }
        Ok(snap)
    }

    /// Writes the snapshot in the layout [`parse_dump`](Self::parse_dump) reads.
    pub fn to_dump(&self) -> String {
        let mut out = String::new();
        for e in self.entries.values() {
            out.push_str(&format!(
                "{:#010x} {:#04x}: eax={:#010x} ebx={:#010x} ecx={:#010x} edx={:#010x}\n",
                e.leaf, e.subleaf, e.regs.eax, e.regs.ebx, e.regs.ecx, e.regs.edx
            ));
        }
        out
    }

    /// Reads the CPUID leaves this crate decodes from the CPU this code runs on.
    ///
    /// Inside a virtual machine this is the hypervisor's view, as for any program.
    ///
    /// # Errors
    /// [`Error::UnsupportedArchitecture`] on anything but x86 and x86_64.
    pub fn live() -> Result<Self> {
        #[cfg(any(
            all(target_arch = "x86", target_feature = "sse", not(target_env = "sgx")),
            all(target_arch = "x86_64", not(target_env = "sgx"))
        ))]
        {
            Ok(Self::capture(raw_cpuid::native_cpuid::cpuid_count))
        }
        #[cfg(not(any(
            all(target_arch = "x86", target_feature = "sse", not(target_env = "sgx")),
            all(target_arch = "x86_64", not(target_env = "sgx"))
        )))]
        {
            Err(Error::UnsupportedArchitecture {
                arch: std::env::consts::ARCH,
                what: "reading CPUID",
            })
        }
    }

    /// Captures the leaves this crate decodes through `query(leaf, subleaf)`, respecting the
    /// maximum leaf of each range: 0, 1, 7 (subleaves 0 and 1), 0x21, 0x4000_0000 (only when
    /// the hypervisor bit is set), 0x8000_0000–0x8000_0004, 0x8000_0008, 0x8000_001F and
    /// 0x8000_0021. Usable with any CPUID source that answers queries.
    ///
    /// Only these leaves are read because inside a virtual machine every `CPUID` traps to
    /// the hypervisor (tens of microseconds each on some hosts). A guest's view from KVM
    /// (`GuestCpuid`, feature `kvm`) holds every leaf KVM reports instead.
    pub fn capture(query: impl Fn(u32, u32) -> CpuIdResult) -> Self {
        let mut snap = Self::new();
        let put = |snap: &mut Self, leaf: u32, subleaf: u32| {
            let r = query(leaf, subleaf);
            snap.insert(CpuidEntry {
                leaf,
                subleaf,
                subleaf_significant: true,
                regs: CpuidRegs {
                    eax: r.eax,
                    ebx: r.ebx,
                    ecx: r.ecx,
                    edx: r.edx,
                },
            });
        };
        put(&mut snap, 0, 0);
        let max_basic = snap.get(0, 0).eax;
        for leaf in [1, 7, 0x21] {
            if leaf <= max_basic {
                put(&mut snap, leaf, 0);
            }
        }
        if max_basic >= 7 && snap.get(7, 0).eax >= 1 {
            put(&mut snap, 7, 1);
        }
        if CpuidBit::new(1, 0, CpuidRegister::Ecx, 31).is_set(&snap) {
            put(&mut snap, 0x4000_0000, 0);
        }
        put(&mut snap, 0x8000_0000, 0);
        let max_ext = snap.get(0x8000_0000, 0).eax;
        if (0x8000_0001..=0x8000_00FF).contains(&max_ext) {
            for leaf in [
                0x8000_0001,
                0x8000_0002,
                0x8000_0003,
                0x8000_0004,
                0x8000_0008,
                0x8000_001F,
                0x8000_0021,
            ] {
                if leaf <= max_ext {
                    put(&mut snap, leaf, 0);
                }
            }
        }
        snap
    }

    /// Decodes the snapshot.
    pub fn decode(&self) -> CpuidReport {
        CpuidReport::decode(self)
    }
}

fn hex_u32(text: &str) -> Option<u32> {
    let t = text.trim().trim_end_matches(',');
    let digits = t
        .strip_prefix("0x")
        .or_else(|| t.strip_prefix("0X"))
        .unwrap_or(t);
    if digits.is_empty() || digits.len() > 8 {
        return None;
    }
    u32::from_str_radix(digits, 16).ok()
}

/// A [`CpuidSnapshot`] as a `raw-cpuid` reader, so raw-cpuid's decoders run on any source.
#[derive(Clone, Copy)]
struct SnapshotReader<'a>(&'a CpuidSnapshot);

impl raw_cpuid::CpuIdReader for SnapshotReader<'_> {
    fn cpuid2(&self, eax: u32, ecx: u32) -> CpuIdResult {
        let r = self.0.get(eax, ecx);
        CpuIdResult {
            eax: r.eax,
            ebx: r.ebx,
            ecx: r.ecx,
            edx: r.edx,
        }
    }
}

/// The hypervisor that answers CPUID leaf 0x4000_0000, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct HypervisorInfo {
    /// The 12-byte vendor signature with trailing NULs removed (`KVMKVMKVM`,
    /// `Microsoft Hv`, `VMwareVMware`, `XenVMMXenVMM`, `TCGTCGTCGTCG`).
    pub signature: String,
    /// A readable name for well-known signatures (`KVM`, `Hyper-V`, …), else the signature.
    pub name: String,
    /// The highest hypervisor leaf (EAX of 0x4000_0000).
    pub max_leaf: u32,
}

/// Everything this crate decodes from one CPUID snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct CpuidReport {
    /// The 12-character vendor string (`GenuineIntel`, `AuthenticAMD`, `HygonGenuine`), empty
    /// if leaf 0 is missing.
    pub vendor: String,
    /// The processor brand string (leaves 0x8000_0002–4), if present.
    pub brand: Option<String>,
    /// Display family (base plus extended family where the vendor's rules say so).
    pub family: u8,
    /// Display model.
    pub model: u8,
    /// Stepping.
    pub stepping: u8,
    /// The hypervisor, when the hypervisor bit is set and leaf 0x4000_0000 answers.
    pub hypervisor: Option<HypervisorInfo>,
    /// The C-bit position for AMD memory encryption, when SME or SEV is reported.
    pub c_bit: Option<u8>,
    /// Whether leaf 0x21 carries the `IntelTDX    ` signature (this is a TDX guest).
    pub tdx_guest: bool,
    /// The features whose bit is set.
    pub features: Vec<Feature>,
}

impl CpuidReport {
    /// Decodes `snapshot`.
    pub fn decode(snapshot: &CpuidSnapshot) -> Self {
        let cpuid = CpuId::with_cpuid_reader(SnapshotReader(snapshot));
        let vendor = cpuid
            .get_vendor_info()
            .map(|v| v.as_str().trim_end_matches('\0').to_string())
            .unwrap_or_default();
        let brand = cpuid
            .get_processor_brand_string()
            .map(|b| b.as_str().trim().to_string())
            .filter(|b| !b.is_empty());
        let (family, model, stepping) = cpuid
            .get_feature_info()
            .map(|f| (f.family_id(), f.model_id(), f.stepping_id()))
            .unwrap_or((0, 0, 0));
        let features: Vec<Feature> = Feature::ALL
            .iter()
            .copied()
            .filter(|f| f.cpuid_bit().is_set(snapshot))
            .collect();
        let hypervisor = if features.contains(&Feature::Hypervisor) {
            let r = snapshot.get(0x4000_0000, 0);
            if r.eax >= 0x4000_0000 {
                let signature = signature_string([r.ebx, r.ecx, r.edx]);
                let name = match signature.as_str() {
                    "KVMKVMKVM" => "KVM",
                    "Microsoft Hv" => "Hyper-V",
                    "VMwareVMware" => "VMware",
                    "XenVMMXenVMM" => "Xen",
                    "TCGTCGTCGTCG" => "QEMU TCG",
                    "bhyve bhyve" => "bhyve",
                    "ACRNACRNACRN" => "ACRN",
                    " lrpepyh  vr" => "Parallels",
                    "QNXQVMBSQG" => "QNX",
                    other => other,
                }
                .to_string();
                Some(HypervisorInfo {
                    signature,
                    name,
                    max_leaf: r.eax,
                })
            } else {
                None
            }
        } else {
            None
        };
        let c_bit = cpuid
            .get_memory_encryption_info()
            .filter(|m| m.has_sme() || m.has_sev())
            .map(|m| m.c_bit_position());
        let tdx_guest = {
            let max_basic = snapshot.get(0, 0).eax;
            let r = snapshot.get(0x21, 0);
            max_basic >= 0x21 && signature_string([r.ebx, r.edx, r.ecx]) == "IntelTDX"
        };
        CpuidReport {
            vendor,
            brand,
            family,
            model,
            stepping,
            hypervisor,
            c_bit,
            tdx_guest,
            features,
        }
    }

    /// Whether `feature` is reported.
    pub fn has(&self, feature: Feature) -> bool {
        self.features.contains(&feature)
    }

    /// Whether CPUID reports any IBRS, on either vendor's bit.
    pub fn has_ibrs(&self) -> bool {
        self.has(Feature::IbrsIbpb) || self.has(Feature::AmdIbrs)
    }

    /// Whether CPUID reports any IBPB, on either vendor's bit.
    pub fn has_ibpb(&self) -> bool {
        self.has(Feature::IbrsIbpb) || self.has(Feature::AmdIbpb)
    }

    /// Whether CPUID reports any STIBP, on either vendor's bit.
    pub fn has_stibp(&self) -> bool {
        self.has(Feature::Stibp) || self.has(Feature::AmdStibp)
    }

    /// Whether CPUID reports any SSBD (Intel, AMD, or the virtualised form).
    pub fn has_ssbd(&self) -> bool {
        self.has(Feature::Ssbd) || self.has(Feature::AmdSsbd) || self.has(Feature::VirtSsbd)
    }
}

/// Reads 12 bytes of register text, dropping NULs and trailing spaces.
fn signature_string(words: [u32; 3]) -> String {
    let bytes: Vec<u8> = words
        .iter()
        .flat_map(|w| w.to_le_bytes())
        .filter(|b| *b != 0)
        .collect();
    String::from_utf8_lossy(&bytes).trim_end().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// This development machine's CPUID (AMD EPYC Genoa under KVM), as recorded in the
    /// reference notes.
    pub(crate) const EPYC_GUEST: &str = "\
0x00000000 0x00: eax=0x0000001c ebx=0x68747541 ecx=0x444d4163 edx=0x69746e65
0x00000001 0x00: eax=0x00a10f11 ebx=0x00020800 ecx=0xfffa3203 edx=0x178bfbff
0x00000007 0x00: eax=0x00000001 ebx=0xf1bf07ab ecx=0x00405fc6 edx=0x00000010
0x00000007 0x01: eax=0x00000020 ebx=0x00000000 ecx=0x00000000 edx=0x00000000
0x40000000 0x00: eax=0x40000001 ebx=0x4b4d564b ecx=0x564b4d56 edx=0x0000004d
0x40000001 0x00: eax=0x01007efb ebx=0x00000000 ecx=0x00000000 edx=0x00000000
0x80000000 0x00: eax=0x80000021 ebx=0x68747541 ecx=0x444d4163 edx=0x69746e65
0x80000001 0x00: eax=0x00a10f11 ebx=0x40000000 ecx=0x004003f3 edx=0x2fd3fbff
0x8000001f 0x00: eax=0x00000000 ebx=0x00000000 ecx=0x00000000 edx=0x00000000
";

    #[test]
    fn decodes_this_machines_recorded_cpuid() {
        let snap = CpuidSnapshot::parse_dump(EPYC_GUEST).unwrap();
        let r = snap.decode();
        assert_eq!(r.vendor, "AuthenticAMD");
        assert_eq!((r.family, r.model, r.stepping), (25, 17, 1));
        for f in [
            Feature::Smep,
            Feature::Smap,
            Feature::Umip,
            Feature::Fsgsbase,
            Feature::Nx,
            Feature::CetSs,
            Feature::Pcid,
            Feature::Hypervisor,
        ] {
            assert!(r.has(f), "{f}");
        }
        for f in [
            Feature::Pku,
            Feature::Ospke,
            Feature::Vmx,
            Feature::Svm,
            Feature::La57,
            Feature::CetIbt,
            Feature::Sev,
            Feature::Sme,
        ] {
            assert!(!r.has(f), "{f}");
        }
        let hv = r.hypervisor.unwrap();
        assert_eq!(
            (hv.signature.as_str(), hv.name.as_str()),
            ("KVMKVMKVM", "KVM")
        );
        assert_eq!(r.c_bit, None);
        assert!(!r.tdx_guest);
    }

    #[test]
    fn our_table_agrees_with_raw_cpuid_where_it_has_the_bit() {
        let snap = CpuidSnapshot::parse_dump(EPYC_GUEST).unwrap();
        let ours = snap.decode();
        let theirs = CpuId::with_cpuid_reader(SnapshotReader(&snap));
        let ext = theirs.get_extended_feature_info().unwrap();
        assert_eq!(ours.has(Feature::Smep), ext.has_smep());
        assert_eq!(ours.has(Feature::Smap), ext.has_smap());
        assert_eq!(ours.has(Feature::Umip), ext.has_umip());
        assert_eq!(ours.has(Feature::Pku), ext.has_pku());
        assert_eq!(ours.has(Feature::Fsgsbase), ext.has_fsgsbase());
        assert_eq!(ours.has(Feature::CetSs), ext.has_cet_ss());
        let e1 = theirs
            .get_extended_processor_and_feature_identifiers()
            .unwrap();
        assert_eq!(ours.has(Feature::Nx), e1.has_execute_disable());
        assert_eq!(ours.has(Feature::Svm), e1.has_svm());
    }

    #[test]
    fn decodes_bits_raw_cpuid_lacks() {
        let mut snap = CpuidSnapshot::new();
        snap.insert(CpuidEntry {
            leaf: 0,
            subleaf: 0,
            subleaf_significant: false,
            regs: CpuidRegs {
                eax: 0x21,
                ebx: u32::from_le_bytes(*b"Genu"),
                ecx: u32::from_le_bytes(*b"ntel"),
                edx: u32::from_le_bytes(*b"ineI"),
            },
        });
        snap.insert(CpuidEntry {
            leaf: 7,
            subleaf: 0,
            subleaf_significant: true,
            regs: CpuidRegs {
                eax: 1,
                ebx: 0,
                ecx: 1 << 31,
                edx: (1 << 10) | (1 << 20) | (1 << 26) | (1 << 27) | (1 << 29) | (1 << 31),
            },
        });
        snap.insert(CpuidEntry {
            leaf: 7,
            subleaf: 1,
            subleaf_significant: true,
            regs: CpuidRegs {
                eax: (1 << 6) | (1 << 17),
                ..CpuidRegs::default()
            },
        });
        snap.insert(CpuidEntry {
            leaf: 0x21,
            subleaf: 0,
            subleaf_significant: false,
            regs: CpuidRegs {
                eax: 0,
                ebx: u32::from_le_bytes(*b"Inte"),
                edx: u32::from_le_bytes(*b"lTDX"),
                ecx: u32::from_le_bytes(*b"    "),
            },
        });
        let r = snap.decode();
        for f in [
            Feature::Pks,
            Feature::MdClear,
            Feature::CetIbt,
            Feature::IbrsIbpb,
            Feature::Stibp,
            Feature::ArchCapabilities,
            Feature::Ssbd,
            Feature::Lass,
            Feature::Fred,
        ] {
            assert!(r.has(f), "{f}");
        }
        assert!(r.has_ibrs() && r.has_ibpb() && r.has_stibp() && r.has_ssbd());
        assert!(r.tdx_guest);
        // Subleaf 0 without significance answers every subleaf.
        assert_eq!(snap.get(0, 5).eax, 0x21);
        // Leaf 7 subleaf 3 is significant-indexed elsewhere: absent reads as zero.
        assert_eq!(snap.get(7, 3), CpuidRegs::default());
    }

    #[test]
    fn amd_memory_encryption_and_speculation_bits() {
        let text = "\
0x00000000 0x00: eax=0x00000010 ebx=0x68747541 ecx=0x444d4163 edx=0x69746e65
0x80000000 0x00: eax=0x80000021 ebx=0x68747541 ecx=0x444d4163 edx=0x69746e65
0x80000008 0x00: eax=0x00003030 ebx=0x0300d000 ecx=0x00000000 edx=0x00000000
0x8000001f 0x00: eax=0x0001781b ebx=0x00000173 ecx=0x00000000 edx=0x00000000
0x80000021 0x00: eax=0x00000100 ebx=0x00000000 ecx=0x00000000 edx=0x00000000
";
        let r = CpuidSnapshot::parse_dump(text).unwrap().decode();
        for f in [
            Feature::Sme,
            Feature::Sev,
            Feature::SevEs,
            Feature::SevSnp,
            Feature::AmdIbpb,
            Feature::AmdIbrs,
            Feature::AmdStibp,
            Feature::AmdSsbd,
            Feature::VirtSsbd,
            Feature::AutoIbrs,
        ] {
            assert!(r.has(f), "{f}");
        }
        assert_eq!(r.c_bit, Some(51));
    }

    #[test]
    fn dump_errors_name_the_line() {
        let e = CpuidSnapshot::parse_dump("# c\n\n0x7 0x0: eax=1 ebx=2 ecx=3\n").unwrap_err();
        assert!(matches!(
            e,
            Error::CpuidDump {
                line: 3,
                what: "needs eax, ebx, ecx and edx"
            }
        ));
        assert!(CpuidSnapshot::parse_dump("0x7 0x0 eax=1").is_err());
        assert!(CpuidSnapshot::parse_dump("0x7 0x0: eax=0x123456789 ebx=0 ecx=0 edx=0").is_err());
    }

    /// `capture` asks exactly the decoded leaves, within each range's maximum, and the
    /// snapshot decodes the same as one holding every leaf of the same CPU.
    #[test]
    fn capture_reads_only_decoded_leaves() {
        use std::cell::RefCell;
        let full = "\
0x00000000 0x00: eax=0x00000023 ebx=0x756e6547 ecx=0x6c65746e edx=0x49656e69
0x00000001 0x00: eax=0x000c06f2 ebx=0x00010800 ecx=0xfffa3223 edx=0x1f8bfbff
0x00000004 0x00: eax=0x00000121 ebx=0x02c0003f ecx=0x0000003f edx=0x00000000
0x00000007 0x00: eax=0x00000002 ebx=0xf1bf2fab ecx=0x1b415f6e edx=0xbc814410
0x00000007 0x01: eax=0x00201c30 ebx=0x00000000 ecx=0x00000000 edx=0x00000000
0x00000007 0x02: eax=0x00000000 ebx=0x00000000 ecx=0x00000000 edx=0x0000003f
0x0000000d 0x01: eax=0x0000001f ebx=0x00000000 ecx=0x00000000 edx=0x00000000
0x00000021 0x00: eax=0x00000000 ebx=0x00000000 ecx=0x00000000 edx=0x00000000
0x40000000 0x00: eax=0x40000001 ebx=0x4b4d564b ecx=0x564b4d56 edx=0x0000004d
0x40000001 0x00: eax=0x01007afb ebx=0x00000000 ecx=0x00000000 edx=0x00000000
0x80000000 0x00: eax=0x80000008 ebx=0x00000000 ecx=0x00000000 edx=0x00000000
0x80000001 0x00: eax=0x00000000 ebx=0x00000000 ecx=0x00000121 edx=0x2c100800
0x80000002 0x00: eax=0x65746e49 ebx=0x2952286c ecx=0x6f655820 edx=0x2952286e
0x80000003 0x00: eax=0x6f725020 ebx=0x73736563 ecx=0x0000726f edx=0x00000000
0x80000004 0x00: eax=0x00000000 ebx=0x00000000 ecx=0x00000000 edx=0x00000000
0x80000008 0x00: eax=0x00003934 ebx=0x00000200 ecx=0x00000000 edx=0x00000000
";
        let source = CpuidSnapshot::parse_dump(full).unwrap();
        let asked = RefCell::new(Vec::new());
        let snap = CpuidSnapshot::capture(|leaf, sub| {
            asked.borrow_mut().push((leaf, sub));
            let r = source.get(leaf, sub);
            CpuIdResult {
                eax: r.eax,
                ebx: r.ebx,
                ecx: r.ecx,
                edx: r.edx,
            }
        });
        assert_eq!(
            asked.into_inner(),
            [
                (0, 0),
                (1, 0),
                (7, 0),
                (0x21, 0),
                (7, 1),
                (0x4000_0000, 0),
                (0x8000_0000, 0),
                (0x8000_0001, 0),
                (0x8000_0002, 0),
                (0x8000_0003, 0),
                (0x8000_0004, 0),
                (0x8000_0008, 0),
            ]
        );
        assert_eq!(snap.decode(), source.decode());
        assert_eq!(
            snap.decode().brand.as_deref(),
            Some("Intel(R) Xeon(R) Processor")
        );
    }

    #[test]
    fn live_snapshot_matches_capture_rules() {
        match CpuidSnapshot::live() {
            Ok(snap) => {
                assert!(!snap.is_empty());
                assert!(!snap.decode().vendor.is_empty());
            }
            Err(e) => assert!(matches!(e, Error::UnsupportedArchitecture { .. })),
        }
    }

    proptest! {
        #[test]
        fn dump_round_trips(entries in proptest::collection::vec((any::<u32>(), 0u32..256, any::<[u32; 4]>()), 0..20)) {
            let snap = CpuidSnapshot::from_entries(entries.iter().map(|(l, s, r)| CpuidEntry {
                leaf: *l, subleaf: *s, subleaf_significant: true,
                regs: CpuidRegs { eax: r[0], ebx: r[1], ecx: r[2], edx: r[3] },
            }));
            let back = CpuidSnapshot::parse_dump(&snap.to_dump()).unwrap();
            prop_assert_eq!(back, snap.clone());
            let _ = snap.decode();
        }

        #[test]
        fn dump_parser_never_panics(text in "\\PC{0,300}") {
            if let Ok(s) = CpuidSnapshot::parse_dump(&text) {
                let _ = s.decode();
            }
        }
    }
}

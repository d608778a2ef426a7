//! Control registers and EFER/XCR0: named bits, formatting, and parsing of the text forms
//! people paste (Linux oops dumps, QEMU `info registers`, bare hex).
//!
//! This is the *formats* layer: pure functions, no I/O.

use std::fmt;
use std::str::FromStr;

use crate::cpuid::{CpuidBit, CpuidReport, Feature};
use crate::error::{Error, Result, excerpt};

/// Implements `Display`, `FromStr` and a few helpers shared by all register flag types.
macro_rules! register_flags_common {
    ($ty:ident, $label:literal) => {
        impl $ty {
            /// The register's name as used in dumps, e.g. `CR4`.
            pub const REGISTER: &'static str = $label;

            /// Builds the value from raw bits, keeping bits this crate has no name for.
            pub const fn from_raw(bits: u64) -> Self {
                Self::from_bits_retain(bits)
            }

            /// The set bits that have no architectural name in this crate.
            pub const fn unknown_bits(self) -> u64 {
                self.bits() & !Self::all().bits()
            }

            /// The names of the set, named bits, lowest bit first.
            pub fn names(self) -> Vec<&'static str> {
                self.iter_names().map(|(name, _)| name).collect()
            }

            /// Looks up one bit by its name (case-insensitive, `-` accepted for `_`).
            pub fn from_bit_name(name: &str) -> Option<Self> {
                let wanted = name.trim().to_ascii_uppercase().replace('-', "_");
                Self::all()
                    .iter_names()
                    .find(|(n, _)| *n == wanted)
                    .map(|(_, flag)| flag)
            }

            /// Parses a bare hexadecimal value (`3706f0`, `0x3706F0`, `00000000003706f0`).
            ///
            /// # Errors
            /// [`Error::RegisterText`] if the text is not a hexadecimal number of at most
            /// 64 bits.
            pub fn parse_hex(text: &str) -> Result<Self> {
                parse_hex_u64(text).map(Self::from_bits_retain)
            }
        }

        /// Lists the set bits by name, separated by `|`, followed by any unnamed bits as one
        /// hexadecimal number (`SMEP|SMAP|0x4000000`). An empty value prints as `0`.
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let mut first = true;
                for (name, _) in self.iter_names() {
                    if !first {
                        f.write_str("|")?;
                    }
                    f.write_str(name)?;
                    first = false;
                }
                let unknown = self.unknown_bits();
                if unknown != 0 {
                    if !first {
                        f.write_str("|")?;
                    }
                    write!(f, "{unknown:#x}")?;
                    first = false;
                }
                if first {
                    f.write_str("0")?;
                }
                Ok(())
            }
        }

        /// Parses what `Display` prints: bit names and hexadecimal numbers joined by `|`,
        /// `,` or whitespace (`SMEP|SMAP|0x4000000`, `pse pae`, `0x3706f0`).
        impl FromStr for $ty {
            type Err = Error;

            fn from_str(text: &str) -> Result<Self> {
                let mut value = Self::empty();
                let mut any = false;
                for part in text
                    .split(|c: char| c == '|' || c == ',' || c.is_whitespace())
                    .filter(|p| !p.is_empty())
                {
                    any = true;
                    if let Some(flag) = Self::from_bit_name(part) {
                        value |= flag;
                    } else if part.starts_with(|c: char| c.is_ascii_digit()) {
                        value = Self::from_bits_retain(value.bits() | parse_hex_u64(part)?);
                    } else {
                        return Err(Error::UnknownBit {
                            register: $label,
                            name: excerpt(part),
                        });
                    }
                }
                if any {
                    Ok(value)
                } else {
                    Err(Error::RegisterText {
                        input: excerpt(text),
                        what: "empty register value",
                    })
                }
            }
        }
    };
}

bitflags::bitflags! {
    /// Control register 0.
    ///
    /// `WP` (bit 16) is the security-relevant bit: with it set, the kernel cannot write to
    /// read-only pages. Linux runs with `PE|MP|ET|NE|WP|AM|PG` (`0x80050033`).
    ///
    /// # References
    /// - Intel SDM Vol. 3A §2.5 "Control Registers".
    /// - AMD APM Vol. 2 §3.1.1 "CR0 Register".
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
    #[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
    pub struct Cr0: u64 {
        /// Protection enable.
        const PE = 1 << 0;
        /// Monitor coprocessor.
        const MP = 1 << 1;
        /// x87 emulation.
        const EM = 1 << 2;
        /// Task switched.
        const TS = 1 << 3;
        /// Extension type (always 1 on modern CPUs).
        const ET = 1 << 4;
        /// Numeric error reporting.
        const NE = 1 << 5;
        /// Write protect: supervisor writes honour read-only pages.
        const WP = 1 << 16;
        /// Alignment mask.
        const AM = 1 << 18;
        /// Not write-through.
        const NW = 1 << 29;
        /// Cache disable.
        const CD = 1 << 30;
        /// Paging.
        const PG = 1 << 31;
    }
}
register_flags_common!(Cr0, "CR0");

bitflags::bitflags! {
    /// Control register 4.
    ///
    /// ```
    /// use kvmsec_cpu::Cr4;
    /// let cr4 = Cr4::parse_hex("00000000003706f0")?;
    /// assert!(cr4.contains(Cr4::SMEP | Cr4::SMAP));
    /// assert!(!cr4.contains(Cr4::UMIP));
    /// assert_eq!(Cr4::from_raw(0x30_0000 | 1 << 26).to_string(), "SMEP|SMAP|0x4000000");
    /// # Ok::<(), kvmsec_cpu::Error>(())
    /// ```
    ///
    /// Bit 32 (`FRED`) is above what QEMU's `info registers` prints (it shows CR4 as 32 bits).
    ///
    /// # References
    /// - Intel SDM Vol. 3A §2.5 "Control Registers", and the FRED
    ///   and LASS/LAM specifications for bits 27, 28 and 32.
    /// - AMD APM Vol. 2 §3.1.3 "CR4 Register".
    /// - Linux `arch/x86/include/uapi/asm/processor-flags.h`.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
    #[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
    pub struct Cr4: u64 {
        /// Virtual-8086 mode extensions.
        const VME = 1 << 0;
        /// Protected-mode virtual interrupts.
        const PVI = 1 << 1;
        /// Time stamp disable (RDTSC only in ring 0).
        const TSD = 1 << 2;
        /// Debugging extensions.
        const DE = 1 << 3;
        /// Page size extensions.
        const PSE = 1 << 4;
        /// Physical address extension.
        const PAE = 1 << 5;
        /// Machine-check enable.
        const MCE = 1 << 6;
        /// Page global enable.
        const PGE = 1 << 7;
        /// Performance-monitoring counter enable.
        const PCE = 1 << 8;
        /// OS supports FXSAVE/FXRSTOR.
        const OSFXSR = 1 << 9;
        /// OS supports unmasked SIMD floating-point exceptions.
        const OSXMMEXCPT = 1 << 10;
        /// User-mode instruction prevention (SGDT, SIDT, SLDT, SMSW, STR fault in ring 3).
        const UMIP = 1 << 11;
        /// 57-bit linear addresses (5-level paging).
        const LA57 = 1 << 12;
        /// VMX enable.
        const VMXE = 1 << 13;
        /// SMX enable.
        const SMXE = 1 << 14;
        /// RDFSBASE/WRFSBASE/RDGSBASE/WRGSBASE enable.
        const FSGSBASE = 1 << 16;
        /// Process-context identifiers.
        const PCIDE = 1 << 17;
        /// XSAVE and processor extended states enable.
        const OSXSAVE = 1 << 18;
        /// Key Locker enable.
        const KL = 1 << 19;
        /// Supervisor-mode execution prevention.
        const SMEP = 1 << 20;
        /// Supervisor-mode access prevention.
        const SMAP = 1 << 21;
        /// Protection keys for user-mode pages.
        const PKE = 1 << 22;
        /// Control-flow enforcement technology.
        const CET = 1 << 23;
        /// Protection keys for supervisor-mode pages.
        const PKS = 1 << 24;
        /// User interrupts enable.
        const UINTR = 1 << 25;
        /// Linear address space separation.
        const LASS = 1 << 27;
        /// Linear address masking for supervisor pointers.
        const LAM_SUP = 1 << 28;
        /// Flexible return and event delivery.
        const FRED = 1 << 32;
    }
}
register_flags_common!(Cr4, "CR4");

impl Cr4 {
    /// The bits that harden the kernel against its own exploitation (the ones a host report
    /// cares about).
    pub const SECURITY: Self = Self::UMIP
        .union(Self::SMEP)
        .union(Self::SMAP)
        .union(Self::PKE)
        .union(Self::CET)
        .union(Self::PKS)
        .union(Self::LASS);

    /// The bits Linux pins after boot (`cr4_pinned_mask`, with FRED since 6.9): a dump of a
    /// running kernel that shows one of these clear on a CPU that has it deserves a look.
    pub const PINNED_BY_LINUX: Self = Self::SMEP
        .union(Self::SMAP)
        .union(Self::UMIP)
        .union(Self::FSGSBASE)
        .union(Self::CET)
        .union(Self::FRED);

    /// The CPU feature whose presence says this single bit may be set, if there is one
    /// (`PCE` is architectural; combined values return `None`).
    ///
    /// `CET` returns the shadow-stack feature; indirect-branch tracking
    /// ([`Feature::CetIbt`]) also needs it.
    pub fn support_feature(self) -> Option<Feature> {
        let f = match self {
            Self::VME | Self::PVI => Feature::Vme,
            Self::TSD => Feature::Tsc,
            Self::DE => Feature::De,
            Self::PSE => Feature::Pse,
            Self::PAE => Feature::Pae,
            Self::MCE => Feature::Mce,
            Self::PGE => Feature::Pge,
            Self::OSFXSR => Feature::Fxsr,
            Self::OSXMMEXCPT => Feature::Sse,
            Self::UMIP => Feature::Umip,
            Self::LA57 => Feature::La57,
            Self::VMXE => Feature::Vmx,
            Self::SMXE => Feature::Smx,
            Self::FSGSBASE => Feature::Fsgsbase,
            Self::PCIDE => Feature::Pcid,
            Self::OSXSAVE => Feature::Xsave,
            Self::KL => Feature::KeyLocker,
            Self::SMEP => Feature::Smep,
            Self::SMAP => Feature::Smap,
            Self::PKE => Feature::Pku,
            Self::CET => Feature::CetSs,
            Self::PKS => Feature::Pks,
            Self::UINTR => Feature::Uintr,
            Self::LASS => Feature::Lass,
            Self::LAM_SUP => Feature::Lam,
            Self::FRED => Feature::Fred,
            _ => return None,
        };
        Some(f)
    }

    /// The CPUID leaf, subleaf, register and bit that report support for this single bit.
    ///
    /// ```
    /// use kvmsec_cpu::Cr4;
    /// let smep = Cr4::SMEP.cpuid_support().unwrap();
    /// assert_eq!((smep.leaf, smep.subleaf, smep.bit), (7, 0, 7));
    /// assert_eq!(smep.to_string(), "CPUID.(EAX=07H,ECX=0):EBX[7]");
    /// ```
    pub fn cpuid_support(self) -> Option<CpuidBit> {
        self.support_feature().map(Feature::cpuid_bit)
    }

    /// The bits of [`Cr4::PINNED_BY_LINUX`] that are clear in this value although `cpu`
    /// reports support for them. On a dump taken from a running Linux kernel, a non-empty
    /// answer means the kernel was booted without them (`nosmep`, …) or CR4 was tampered
    /// with.
    ///
    /// ```
    /// use kvmsec_cpu::{Cr4, CpuidSnapshot};
    /// let cpu = CpuidSnapshot::parse_dump(
    ///     "0 0: eax=0xd ebx=0x756e6547 ecx=0x6c65746e edx=0x49656e69\n\
    ///      7 0: eax=0 ebx=0x00100081 ecx=0x4 edx=0\n",
    /// )?
    /// .decode();
    /// let cr4 = Cr4::parse_hex("3706f0")?; // SMEP and SMAP set, UMIP clear
    /// assert_eq!(cr4.pinned_bits_missing(&cpu), Cr4::UMIP);
    /// # Ok::<(), kvmsec_cpu::Error>(())
    /// ```
    pub fn pinned_bits_missing(self, cpu: &CpuidReport) -> Self {
        Self::PINNED_BY_LINUX
            .iter()
            .filter(|bit| !self.contains(*bit))
            .filter(|bit| bit.support_feature().is_some_and(|f| cpu.has(f)))
            .fold(Self::empty(), |acc, bit| acc | bit)
    }
}

bitflags::bitflags! {
    /// The extended feature enable register (MSR `0xC000_0080`).
    ///
    /// `NXE` (bit 11) turns on no-execute pages; a 64-bit Linux kernel runs with
    /// `SCE|LME|LMA|NXE` (`0xd01`), plus `SVME` while AMD-V is in use.
    ///
    /// # References
    /// - AMD APM Vol. 2 §3.1.7 "Extended Feature Enable Register (EFER)".
    /// - Intel SDM Vol. 3A §2.2.1 "Extended Feature Enable Register".
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
    #[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
    pub struct Efer: u64 {
        /// System call extensions (SYSCALL/SYSRET).
        const SCE = 1 << 0;
        /// Long mode enable.
        const LME = 1 << 8;
        /// Long mode active.
        const LMA = 1 << 10;
        /// No-execute enable.
        const NXE = 1 << 11;
        /// Secure virtual machine enable (AMD-V).
        const SVME = 1 << 12;
        /// Long mode segment limit enable (AMD).
        const LMSLE = 1 << 13;
        /// Fast FXSAVE/FXRSTOR (AMD).
        const FFXSR = 1 << 14;
        /// Translation cache extension (AMD).
        const TCE = 1 << 15;
        /// MCOMMIT instruction enable (AMD).
        const MCOMMIT = 1 << 17;
        /// Interruptible WBINVD/WBNOINVD (AMD).
        const INTWB = 1 << 18;
        /// Upper address ignore enable (AMD).
        const UAIE = 1 << 20;
        /// Automatic IBRS enable (AMD Zen 4 and later).
        const AUTOIBRS = 1 << 21;
    }
}
register_flags_common!(Efer, "EFER");

bitflags::bitflags! {
    /// The extended control register XCR0 (user state components enabled for XSAVE).
    ///
    /// `PKRU` (bit 9) must be set for user-space protection keys to work.
    ///
    /// # References
    /// - Intel SDM Vol. 1 §13.3 "Enabling the XSAVE Feature Set and XSAVE-Enabled Features".
    /// - AMD APM Vol. 2 §11.5 "XSAVE/XRSTOR Instructions".
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
    #[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
    pub struct Xcr0: u64 {
        /// x87 state.
        const X87 = 1 << 0;
        /// SSE state.
        const SSE = 1 << 1;
        /// AVX (upper halves of YMM registers).
        const AVX = 1 << 2;
        /// MPX bound registers.
        const BNDREG = 1 << 3;
        /// MPX configuration and status.
        const BNDCSR = 1 << 4;
        /// AVX-512 opmask registers.
        const OPMASK = 1 << 5;
        /// Upper halves of ZMM0–15.
        const ZMM_HI256 = 1 << 6;
        /// ZMM16–31.
        const HI16_ZMM = 1 << 7;
        /// Protection-key rights register for user pages.
        const PKRU = 1 << 9;
        /// AMX tile configuration.
        const TILECFG = 1 << 17;
        /// AMX tile data.
        const TILEDATA = 1 << 18;
        /// APX extended general-purpose registers.
        const APX = 1 << 19;
    }
}
register_flags_common!(Xcr0, "XCR0");

/// The registers this crate finds in pasted text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub enum Register {
    /// CR0.
    Cr0,
    /// CR2 (page-fault linear address).
    Cr2,
    /// CR3 (page-table base).
    Cr3,
    /// CR4.
    Cr4,
    /// CR8 (task priority).
    Cr8,
    /// The EFER MSR.
    Efer,
    /// XCR0.
    Xcr0,
    /// The PKRU register (printed by Linux oops dumps when PKU is on).
    Pkru,
}

impl Register {
    /// Every register this crate recognises.
    pub const ALL: [Register; 8] = [
        Register::Cr0,
        Register::Cr2,
        Register::Cr3,
        Register::Cr4,
        Register::Cr8,
        Register::Efer,
        Register::Xcr0,
        Register::Pkru,
    ];

    /// The name as printed in dumps (`CR4`, `EFER`).
    pub const fn name(self) -> &'static str {
        match self {
            Register::Cr0 => "CR0",
            Register::Cr2 => "CR2",
            Register::Cr3 => "CR3",
            Register::Cr4 => "CR4",
            Register::Cr8 => "CR8",
            Register::Efer => "EFER",
            Register::Xcr0 => "XCR0",
            Register::Pkru => "PKRU",
        }
    }

    fn from_dump_name(name: &str) -> Option<Register> {
        Register::ALL
            .into_iter()
            .find(|r| r.name().eq_ignore_ascii_case(name))
    }
}

impl fmt::Display for Register {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Register {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Register::from_dump_name(s.trim())
            .ok_or_else(|| Error::UnknownRegister { name: excerpt(s) })
    }
}

/// The register values found in a pasted dump.
///
/// ```
/// use kvmsec_cpu::{Cr4, RegisterDump};
/// let oops = "[  42.000000] CR2: 00007ffd1c2e3ff8 CR3: 000000010a6b2000 CR4: 00000000003706f0";
/// let regs = RegisterDump::parse(oops)?;
/// assert_eq!(regs.cr4, Some(Cr4::from_raw(0x3706f0)));
/// assert_eq!(regs.cr3, Some(0x10a6b2000));
/// assert_eq!(regs.cr0, None);
/// # Ok::<(), kvmsec_cpu::Error>(())
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct RegisterDump {
    /// CR0, if the text had it.
    pub cr0: Option<Cr0>,
    /// CR2, if the text had it.
    pub cr2: Option<u64>,
    /// CR3, if the text had it.
    pub cr3: Option<u64>,
    /// CR4, if the text had it.
    pub cr4: Option<Cr4>,
    /// CR8, if the text had it.
    pub cr8: Option<u64>,
    /// EFER, if the text had it.
    pub efer: Option<Efer>,
    /// XCR0, if the text had it.
    pub xcr0: Option<Xcr0>,
    /// PKRU, if the text had it.
    pub pkru: Option<u64>,
}

impl RegisterDump {
    /// Finds the named registers in a Linux oops/panic dump (`CR2: … CR3: … CR4: …`, with or
    /// without log-level and timestamp prefixes) or in QEMU monitor `info registers` output
    /// (`CR0=80050033 … CR4=00350ef0`, `EFER=…`). Other words are ignored. When a register
    /// appears more than once (several oopses pasted together), the first value is kept.
    ///
    /// For a bare number use [`Cr4::parse_hex`] (and friends) or
    /// [`RegisterDump::parse_bare`].
    ///
    /// # Errors
    /// [`Error::RegisterText`] when a known register name is followed by something that is
    /// not a hexadecimal value of at most 64 bits, or when no known register is found.
    pub fn parse(text: &str) -> Result<Self> {
        let mut dump = RegisterDump::default();
        let mut found = false;
        let mut tokens = text.split_whitespace().peekable();
        while let Some(token) = tokens.next() {
            let (name, value) = if let Some((name, value)) = token.split_once('=') {
                (name, Some(value))
            } else if let Some(name) = token.strip_suffix(':') {
                (name, None)
            } else {
                continue;
            };
            let Some(register) = Register::from_dump_name(name) else {
                continue;
            };
            let value = match value {
                Some(v) => v,
                None => tokens.next().ok_or_else(|| Error::RegisterText {
                    input: excerpt(text),
                    what: "register name at the end of the text without a value",
                })?,
            };
            let value = parse_hex_u64(value)?;
            dump.set_if_absent(register, value);
            found = true;
        }
        if found {
            Ok(dump)
        } else {
            Err(Error::RegisterText {
                input: excerpt(text),
                what: "no CR0, CR2, CR3, CR4, CR8, EFER, XCR0 or PKRU value found",
            })
        }
    }

    /// Parses a bare hexadecimal number (with or without `0x`) as the value of `register`.
    ///
    /// # Errors
    /// [`Error::RegisterText`] if the text is not such a number.
    pub fn parse_bare(text: &str, register: Register) -> Result<Self> {
        let mut dump = RegisterDump::default();
        dump.set_if_absent(register, parse_hex_u64(text)?);
        Ok(dump)
    }

    /// The raw value of `register`, if present.
    pub fn get(&self, register: Register) -> Option<u64> {
        match register {
            Register::Cr0 => self.cr0.map(|v| v.bits()),
            Register::Cr2 => self.cr2,
            Register::Cr3 => self.cr3,
            Register::Cr4 => self.cr4.map(|v| v.bits()),
            Register::Cr8 => self.cr8,
            Register::Efer => self.efer.map(|v| v.bits()),
            Register::Xcr0 => self.xcr0.map(|v| v.bits()),
            Register::Pkru => self.pkru,
        }
    }

    /// The registers present, in [`Register::ALL`] order.
    pub fn present(&self) -> Vec<Register> {
        Register::ALL
            .into_iter()
            .filter(|r| self.get(*r).is_some())
            .collect()
    }

    fn set_if_absent(&mut self, register: Register, v: u64) {
        match register {
            Register::Cr0 => {
                self.cr0.get_or_insert(Cr0::from_raw(v));
            }
            Register::Cr2 => {
                self.cr2.get_or_insert(v);
            }
            Register::Cr3 => {
                self.cr3.get_or_insert(v);
            }
            Register::Cr4 => {
                self.cr4.get_or_insert(Cr4::from_raw(v));
            }
            Register::Cr8 => {
                self.cr8.get_or_insert(v);
            }
            Register::Efer => {
                self.efer.get_or_insert(Efer::from_raw(v));
            }
            Register::Xcr0 => {
                self.xcr0.get_or_insert(Xcr0::from_raw(v));
            }
            Register::Pkru => {
                self.pkru.get_or_insert(v);
            }
        }
    }
}

/// Parses a hexadecimal number of at most 64 bits, with or without `0x`/`0X`, allowing leading
/// zeros (Linux prints 16 digits) and surrounding punctuation such as a trailing `,`.
fn parse_hex_u64(text: &str) -> Result<u64> {
    let t = text
        .trim()
        .trim_end_matches([',', ';', ')', ']'])
        .trim_start_matches(['(', '[']);
    let digits = t
        .strip_prefix("0x")
        .or_else(|| t.strip_prefix("0X"))
        .unwrap_or(t);
    let err = |what| Error::RegisterText {
        input: excerpt(text),
        what,
    };
    if digits.is_empty() {
        return Err(err("empty value"));
    }
    if !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(err("value is not hexadecimal"));
    }
    let significant = digits.trim_start_matches('0');
    if significant.len() > 16 {
        return Err(err("value has more than 64 bits"));
    }
    if significant.is_empty() {
        return Ok(0);
    }
    u64::from_str_radix(significant, 16).map_err(|_| err("value is not hexadecimal"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn oops_cr4_decodes_to_the_documented_bits() {
        let text =
            "<4>[ 1234.567890] CR2: 00007f3a1c000000 CR3: 0000000109e0a004 CR4: 00000000003706f0\n";
        let dump = RegisterDump::parse(text).unwrap();
        let cr4 = dump.cr4.unwrap();
        assert_eq!(
            cr4.names(),
            [
                "PSE",
                "PAE",
                "MCE",
                "PGE",
                "OSFXSR",
                "OSXMMEXCPT",
                "FSGSBASE",
                "PCIDE",
                "OSXSAVE",
                "SMEP",
                "SMAP"
            ]
        );
        assert_eq!(cr4.unknown_bits(), 0);
        assert_eq!(dump.cr2, Some(0x7f3a_1c00_0000));
        assert_eq!(dump.cr3, Some(0x1_09e0_a004));
        assert_eq!(
            dump.present(),
            [Register::Cr2, Register::Cr3, Register::Cr4]
        );
    }

    #[test]
    fn full_oops_block_with_syslog_prefix() {
        let text = "Dec  4 10:00:00 host kernel: CS:  0010 DS: 0000 ES: 0000 CR0: 0000000080050033\n\
                    Dec  4 10:00:00 host kernel: CR2: 0000000000000000 CR3: 000000000260a000 CR4: 0000000000350ef0\n\
                    Dec  4 10:00:00 host kernel: PKRU: 55555554\n";
        let dump = RegisterDump::parse(text).unwrap();
        assert_eq!(
            dump.cr0.unwrap(),
            Cr0::PE | Cr0::MP | Cr0::ET | Cr0::NE | Cr0::WP | Cr0::AM | Cr0::PG
        );
        assert_eq!(dump.cr4.unwrap().bits(), 0x350ef0);
        assert_eq!(dump.pkru, Some(0x5555_5554));
    }

    #[test]
    fn qemu_info_registers_decodes() {
        let text = "RAX=0000000000000000 RBX=ffffffff82a13940 RCX=0000000000000001\n\
            ES =0000 0000000000000000 ffffffff 00c00000\n\
            GDT=     fffffe0000001000 0000007f\n\
            CR0=80050033 CR2=00007f5e8c0b7000 CR3=0000000004d8c000 CR4=00350ef0\n\
            DR0=0000000000000000 DR1=0000000000000000\n\
            EFER=0000000000000d01\n";
        let dump = RegisterDump::parse(text).unwrap();
        assert_eq!(dump.cr0.unwrap().bits(), 0x8005_0033);
        assert!(dump.cr0.unwrap().contains(Cr0::WP | Cr0::PG));
        let cr4 = dump.cr4.unwrap();
        assert_eq!(
            cr4.to_string(),
            "PSE|PAE|MCE|PGE|OSFXSR|OSXMMEXCPT|UMIP|FSGSBASE|OSXSAVE|SMEP|SMAP"
        );
        assert_eq!(
            dump.efer.unwrap(),
            Efer::SCE | Efer::LME | Efer::LMA | Efer::NXE
        );
        assert_eq!(dump.cr2, Some(0x7f5e_8c0b_7000));
    }

    #[test]
    fn bare_hex_with_and_without_prefix() {
        assert_eq!(Cr4::parse_hex("0x3706f0").unwrap().bits(), 0x3706f0);
        assert_eq!(Cr4::parse_hex("3706F0").unwrap().bits(), 0x3706f0);
        assert_eq!(Cr4::parse_hex("00000000003706f0").unwrap().bits(), 0x3706f0);
        let d = RegisterDump::parse_bare("0x80050033", Register::Cr0).unwrap();
        assert_eq!(d.cr0.unwrap().bits(), 0x8005_0033);
    }

    #[test]
    fn malformed_text_is_a_typed_error() {
        for bad in [
            "",
            "hello world",
            "CR4: zzzz",
            "CR4:",
            "CR4=",
            "CR4=0x",
            "CR4: 1234567890abcdef0",
        ] {
            assert!(
                matches!(RegisterDump::parse(bad), Err(Error::RegisterText { .. })),
                "{bad:?}"
            );
        }
        assert!(matches!(
            Cr4::parse_hex("0xfg"),
            Err(Error::RegisterText { .. })
        ));
        assert!(matches!(
            "SMEP|BOGUS".parse::<Cr4>(),
            Err(Error::UnknownBit {
                register: "CR4",
                ..
            })
        ));
    }

    #[test]
    fn unknown_bits_are_kept_in_display_and_parse() {
        let v = Cr4::from_raw((1 << 20) | (1 << 21) | (1 << 26));
        assert_eq!(v.to_string(), "SMEP|SMAP|0x4000000");
        assert_eq!("SMEP|SMAP|0x4000000".parse::<Cr4>().unwrap(), v);
        assert_eq!(Cr4::empty().to_string(), "0");
        assert_eq!("0".parse::<Cr4>().unwrap(), Cr4::empty());
        assert_eq!(Cr4::from_raw(1 << 15).to_string(), "0x8000");
    }

    #[test]
    fn cr4_security_bits_name_their_cpuid_leaf() {
        let expect = [
            (Cr4::UMIP, "CPUID.(EAX=07H,ECX=0):ECX[2]"),
            (Cr4::SMEP, "CPUID.(EAX=07H,ECX=0):EBX[7]"),
            (Cr4::SMAP, "CPUID.(EAX=07H,ECX=0):EBX[20]"),
            (Cr4::PKE, "CPUID.(EAX=07H,ECX=0):ECX[3]"),
            (Cr4::CET, "CPUID.(EAX=07H,ECX=0):ECX[7]"),
            (Cr4::PKS, "CPUID.(EAX=07H,ECX=0):ECX[31]"),
            (Cr4::LASS, "CPUID.(EAX=07H,ECX=1):EAX[6]"),
            (Cr4::FSGSBASE, "CPUID.(EAX=07H,ECX=0):EBX[0]"),
            (Cr4::LA57, "CPUID.(EAX=07H,ECX=0):ECX[16]"),
            (Cr4::FRED, "CPUID.(EAX=07H,ECX=1):EAX[17]"),
        ];
        for (bit, text) in expect {
            assert_eq!(bit.cpuid_support().unwrap().to_string(), text, "{bit}");
        }
        for (name, bit) in Cr4::SECURITY.iter_names() {
            assert!(bit.cpuid_support().is_some(), "{name}");
        }
        assert_eq!(Cr4::PCE.cpuid_support(), None);
    }

    #[test]
    fn every_named_bit_of_every_register_round_trips() {
        for (name, flag) in Cr4::all().iter_names() {
            assert_eq!(flag.to_string(), name);
            assert_eq!(name.parse::<Cr4>().unwrap(), flag);
            assert_eq!(name.to_ascii_lowercase().parse::<Cr4>().unwrap(), flag);
        }
        for (name, flag) in Cr0::all().iter_names() {
            assert_eq!(name.parse::<Cr0>().unwrap(), flag);
        }
        for (name, flag) in Efer::all().iter_names() {
            assert_eq!(name.parse::<Efer>().unwrap(), flag);
        }
        for (name, flag) in Xcr0::all().iter_names() {
            assert_eq!(name.parse::<Xcr0>().unwrap(), flag);
        }
        assert_eq!(Cr4::all().iter_names().count(), 28);
    }

    fn any_named_cr4() -> impl Strategy<Value = Cr4> {
        let flags: Vec<Cr4> = Cr4::all().iter().collect();
        proptest::sample::select(flags)
    }

    proptest! {
        #[test]
        fn any_cr4_value_formats_and_parses_back(bits in any::<u64>()) {
            let v = Cr4::from_raw(bits);
            prop_assert_eq!(v.to_string().parse::<Cr4>().unwrap(), v);
            let dump = RegisterDump::parse(&format!("CR4: {bits:016x}")).unwrap();
            prop_assert_eq!(dump.cr4, Some(v));
            let dump = RegisterDump::parse(&format!("CR4={bits:08x}")).unwrap();
            prop_assert_eq!(dump.cr4, Some(v));
        }

        #[test]
        fn each_named_cr4_bit_round_trips(flag in any_named_cr4()) {
            prop_assert_eq!(flag.to_string().parse::<Cr4>().unwrap(), flag);
            prop_assert_eq!(Cr4::parse_hex(&format!("{:#x}", flag.bits())).unwrap(), flag);
        }

        #[test]
        fn other_registers_round_trip(bits in any::<u64>()) {
            prop_assert_eq!(Cr0::from_raw(bits).to_string().parse::<Cr0>().unwrap().bits(), bits);
            prop_assert_eq!(Efer::from_raw(bits).to_string().parse::<Efer>().unwrap().bits(), bits);
            prop_assert_eq!(Xcr0::from_raw(bits).to_string().parse::<Xcr0>().unwrap().bits(), bits);
        }

        #[test]
        fn register_text_never_panics(text in "\\PC{0,200}") {
            let _ = RegisterDump::parse(&text);
            let _ = text.parse::<Cr4>();
            let _ = Cr4::parse_hex(&text);
        }

        #[test]
        fn register_like_text_never_panics(text in "((CR[0-48]|EFER|XCR0|PKRU)[:=] ?[0-9a-fA-Fx]{0,20} ?){0,6}") {
            let _ = RegisterDump::parse(&text);
        }
    }
}

//! `/proc/cmdline`: the boot parameters that turn CPU features off.
//!
//! # References
//! - Linux `Documentation/admin-guide/kernel-parameters.txt` (`nosmep`, `nosmap`, `nopku`,
//!   `clearcpuid=`, `noexec=`, …).
//! - Linux `arch/x86/include/asm/cpufeatures.h` (the numbers `clearcpuid=` accepts).

use std::path::Path;

use crate::cpuid::Feature;
use crate::error::{Result, read_text, under};

/// The kernel command line, split into parameters.
///
/// ```
/// use kvmsec_cpu::{Feature, KernelCmdline};
/// let cmd = KernelCmdline::parse("ro quiet nosmep clearcpuid=umip,515 -- init-arg nosmap");
/// assert_eq!(cmd.disables(Feature::Smep).as_deref(), Some("nosmep"));
/// assert_eq!(cmd.disables(Feature::Umip).as_deref(), Some("clearcpuid=umip"));
/// assert_eq!(cmd.disables(Feature::Pku).as_deref(), Some("clearcpuid=515"));
/// assert_eq!(cmd.disables(Feature::Smap), None); // after `--`: init's, not the kernel's
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct KernelCmdline {
    /// The kernel's parameters as `(name, value)`, in order. Words after a lone `--` belong
    /// to init and are not included.
    pub params: Vec<(String, Option<String>)>,
}

impl KernelCmdline {
    /// Splits a command line (double quotes group words, as the kernel does).
    pub fn parse(text: &str) -> Self {
        let mut params = Vec::new();
        let mut word = String::new();
        let mut in_quotes = false;
        let mut words = Vec::new();
        for c in text.chars() {
            match c {
                '"' => in_quotes = !in_quotes,
                c if c.is_whitespace() && !in_quotes => {
                    if !word.is_empty() {
                        words.push(std::mem::take(&mut word));
                    }
                }
                c => word.push(c),
            }
        }
        if !word.is_empty() {
            words.push(word);
        }
        for w in words {
            if w == "--" {
                break;
            }
            match w.split_once('=') {
                Some((k, v)) => params.push((k.to_string(), Some(v.to_string()))),
                None => params.push((w, None)),
            }
        }
        KernelCmdline { params }
    }

    /// Reads `<root>/proc/cmdline`.
    ///
    /// # Errors
    /// [`Error::Read`](crate::Error::Read) if the file cannot be read.
    pub fn read_at(root: &Path) -> Result<Self> {
        read_text(&under(root, "/proc/cmdline")).map(|t| Self::parse(&t))
    }

    /// Reads the live host's `/proc/cmdline`.
    ///
    /// # Errors
    /// [`Error::Read`](crate::Error::Read) if the file cannot be read.
    pub fn read() -> Result<Self> {
        Self::read_at(Path::new("/"))
    }

    /// The value of the last `name=` parameter (the kernel uses the last one).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .and_then(|(_, v)| v.as_deref())
    }

    /// Whether the bare word `name` (or `name=...`) is present.
    pub fn has(&self, name: &str) -> bool {
        self.params.iter().any(|(k, _)| k == name)
    }

    /// The parameter that turns `feature` off, written as on the command line (`nosmep`,
    /// `clearcpuid=smap`, `clearcpuid=295`), or `None` if none does.
    pub fn disables(&self, feature: Feature) -> Option<String> {
        let dedicated: &[&str] = match feature {
            Feature::Smep => &["nosmep"],
            Feature::Smap => &["nosmap"],
            Feature::Pku | Feature::Ospke => &["nopku"],
            Feature::Fsgsbase => &["nofsgsbase"],
            Feature::Pcid => &["nopcid"],
            Feature::Invpcid => &["noinvpcid"],
            Feature::Xsave => &["noxsave"],
            Feature::La57 => &["no5lvl"],
            Feature::CetSs => &["nousershstk"],
            _ => &[],
        };
        for name in dedicated {
            if self.has(name) {
                return Some((*name).to_string());
            }
        }
        if feature == Feature::Nx && self.get("noexec") == Some("off") {
            return Some("noexec=off".to_string());
        }
        if feature == Feature::CetIbt && self.get("ibt") == Some("off") {
            return Some("ibt=off".to_string());
        }
        let flag = feature.cpuinfo_flag();
        let number = clearcpuid_number(feature);
        for (k, v) in &self.params {
            if k != "clearcpuid" {
                continue;
            }
            for item in v.as_deref().unwrap_or("").split(',') {
                let item = item.trim();
                let by_name = flag.is_some_and(|f| f == item);
                let by_number = number.is_some_and(|n| item.parse::<u32>() == Ok(n));
                if by_name || by_number {
                    return Some(format!("clearcpuid={item}"));
                }
            }
        }
        None
    }
}

/// The `X86_FEATURE_*` number (`word * 32 + bit`) Linux gives a feature, for
/// `clearcpuid=<number>`.
fn clearcpuid_number(feature: Feature) -> Option<u32> {
    let (word, bit) = match feature {
        Feature::Nx => (1, 20),
        Feature::Vmx => (4, 5),
        Feature::Pcid => (4, 17),
        Feature::Xsave => (4, 26),
        Feature::Svm => (6, 2),
        Feature::Fsgsbase => (9, 0),
        Feature::Smep => (9, 7),
        Feature::Invpcid => (9, 10),
        Feature::Smap => (9, 20),
        Feature::Umip => (16, 2),
        Feature::Pku => (16, 3),
        Feature::Ospke => (16, 4),
        Feature::CetSs => (16, 7),
        Feature::La57 => (16, 16),
        Feature::MdClear => (18, 10),
        Feature::CetIbt => (18, 20),
        Feature::Sme => (19, 0),
        Feature::Sev => (19, 1),
        _ => return None,
    };
    Some(word * 32 + bit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_words_and_numbers() {
        let c = KernelCmdline::parse("a=\"x y\" clearcpuid=295,308 noexec=off\n");
        assert_eq!(c.get("a"), Some("x y"));
        assert_eq!(c.disables(Feature::Smep).as_deref(), Some("clearcpuid=295"));
        assert_eq!(c.disables(Feature::Smap).as_deref(), Some("clearcpuid=308"));
        assert_eq!(c.disables(Feature::Nx).as_deref(), Some("noexec=off"));
        assert_eq!(c.disables(Feature::Umip), None);
    }

    #[test]
    fn this_machines_cmdline_disables_nothing() {
        let c = KernelCmdline::parse(
            "mitigations=auto,no_guest_host,no_guest_guest console=ttyS0 quiet nested_pvm=1 \
             rdinit=/process_api -- --firecracker-init --addr 0.0.0.0:2024",
        );
        for f in Feature::ALL {
            assert_eq!(c.disables(*f), None, "{f}");
        }
        assert_eq!(
            c.get("mitigations"),
            Some("auto,no_guest_host,no_guest_guest")
        );
    }
}

#[cfg(test)]
mod proptests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn parse_never_panics(text in "\\PC{0,300}") {
            let c = KernelCmdline::parse(&text);
            for f in Feature::ALL {
                let _ = c.disables(*f);
            }
        }

        #[test]
        fn clearcpuid_lists_never_panic(items in "clearcpuid=([a-z0-9_]{0,8},){0,6}[0-9]{0,12}") {
            let c = KernelCmdline::parse(&items);
            let _ = c.disables(Feature::Smep);
        }
    }
}

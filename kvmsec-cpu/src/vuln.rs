//! `/sys/devices/system/cpu/vulnerabilities/*`: what the kernel says about each known CPU
//! vulnerability.
//!
//! The set of files grows with kernel releases (`tsa`, `vmscape`, `old_microcode`, … are
//! recent), so every file in the directory is read and any wording this crate does not
//! recognise is kept verbatim as [`VulnState::Unknown`].
//!
//! # References
//! - Linux `Documentation/admin-guide/hw-vuln/` and
//!   `Documentation/ABI/testing/sysfs-devices-system-cpu` ("vulnerabilities").

use std::path::Path;

use crate::error::{Error, Result, read_text, under};

/// The state a vulnerability file reports, from its first clause.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub enum VulnState {
    /// `Not affected`.
    NotAffected,
    /// `Vulnerable` with the details after `Vulnerable:` and any further `;` clauses
    /// (`["Clear CPU buffers attempted, no microcode", "SMT vulnerable"]`).
    Vulnerable {
        /// The details, in order; empty for a bare `Vulnerable`.
        details: Vec<String>,
    },
    /// `Mitigation: …` with the mitigations named (the first clause and any further clause
    /// that is not a `KEY: value` sub-report).
    Mitigated {
        /// The mitigations, in order (`["Retpolines", "RSB filling"]`).
        mitigations: Vec<String>,
    },
    /// `Unknown: …` or wording this crate does not recognise, kept as written (without a
    /// leading `Unknown: `).
    Unknown {
        /// The text.
        text: String,
    },
}

/// A `KEY: value` sub-clause after the first `;` (`STIBP: disabled`, `BHI: Not affected`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct SubReport {
    /// The key (`STIBP`, `PBRSB-eIBRS`, `VMX`).
    pub key: String,
    /// The value as written (`disabled`, `Not affected`).
    pub value: String,
}

/// One vulnerability file's content, parsed.
///
/// ```
/// use kvmsec_cpu::{VulnState, VulnStatus};
/// let s = VulnStatus::parse("KVM: Mitigation: VMX unsupported\n");
/// assert!(s.kvm);
/// assert_eq!(s.state, VulnState::Mitigated { mitigations: vec!["VMX unsupported".into()] });
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct VulnStatus {
    /// The text began with `KVM: `: the status is about KVM guests (`itlb_multihit`).
    pub kvm: bool,
    /// The state.
    pub state: VulnState,
    /// The `KEY: value` sub-clauses after the first `;`.
    pub sub_reports: Vec<SubReport>,
    /// The file's text, trimmed.
    pub raw: String,
}

impl VulnStatus {
    /// Parses one file's text. Never fails: unrecognised wording is [`VulnState::Unknown`].
    pub fn parse(text: &str) -> Self {
        let raw = text.trim().to_string();
        let (kvm, body) = match raw.strip_prefix("KVM:") {
            Some(rest) => (true, rest.trim_start()),
            None => (false, raw.as_str()),
        };
        let mut clauses = body.split(';').map(str::trim).filter(|c| !c.is_empty());
        let first = clauses.next().unwrap_or("");
        let mut extra = Vec::new();
        let mut sub_reports = Vec::new();
        for c in clauses {
            match split_key_value(c) {
                Some((key, value)) => sub_reports.push(SubReport {
                    key: key.to_string(),
                    value: value.to_string(),
                }),
                None => extra.push(c.to_string()),
            }
        }

        let lower = first.to_ascii_lowercase();
        let after_colon = |prefix_len: usize| {
            first
                .get(prefix_len..)
                .unwrap_or("")
                .trim_start_matches(':')
                .trim()
                .to_string()
        };
        let state = if lower == "not affected" {
            VulnState::NotAffected
        } else if lower.starts_with("vulnerable") && is_word_end(first, 10) {
            let mut details = Vec::new();
            let d = after_colon(10);
            if !d.is_empty() {
                details.push(d);
            }
            details.append(&mut extra);
            // Sub-reports of a vulnerable state are details too.
            details.extend(
                sub_reports
                    .iter()
                    .map(|s| format!("{}: {}", s.key, s.value)),
            );
            VulnState::Vulnerable { details }
        } else if lower.starts_with("mitigation") && is_word_end(first, 10) {
            let mut mitigations = Vec::new();
            let m = after_colon(10);
            if !m.is_empty() {
                mitigations.push(m);
            }
            mitigations.append(&mut extra);
            VulnState::Mitigated { mitigations }
        } else if lower.starts_with("unknown") && is_word_end(first, 7) {
            let rest = body.get(7..).unwrap_or("").trim_start_matches(':').trim();
            VulnState::Unknown {
                text: rest.to_string(),
            }
        } else {
            VulnState::Unknown { text: raw.clone() }
        };
        VulnStatus {
            kvm,
            state,
            sub_reports,
            raw,
        }
    }

    /// Whether any part says the host is still exposed: the state is `Vulnerable`, or a
    /// clause or sub-report of a mitigated state says `vulnerable` (`SMT vulnerable`,
    /// `VMX: conditional cache flushes, SMT vulnerable`, `STIBP: disabled` does not count).
    pub fn residual_risk(&self) -> bool {
        match &self.state {
            VulnState::Vulnerable { .. } => true,
            VulnState::Mitigated { mitigations } => {
                mitigations
                    .iter()
                    .any(|m| m.to_ascii_lowercase().contains("vulnerable"))
                    || self
                        .sub_reports
                        .iter()
                        .any(|s| s.value.to_ascii_lowercase().contains("vulnerable"))
            }
            _ => false,
        }
    }
}

/// Whether `text` ends at byte `at` or continues with `:` or a space there.
fn is_word_end(text: &str, at: usize) -> bool {
    matches!(text.as_bytes().get(at), None | Some(b':') | Some(b' '))
}

/// Splits `KEY: value` when KEY is one token (no spaces), as the kernel writes sub-reports.
fn split_key_value(clause: &str) -> Option<(&str, &str)> {
    let (k, v) = clause.split_once(':')?;
    let k = k.trim();
    if k.is_empty() || k.contains(' ') {
        return None;
    }
    Some((k, v.trim()))
}

/// One vulnerability file: its name and parsed status.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Vulnerability {
    /// The file name (`spectre_v2`, `tsa`, …).
    pub name: String,
    /// What it says.
    pub status: VulnStatus,
}

/// Reads every file in `<root>/sys/devices/system/cpu/vulnerabilities/`, sorted by name.
/// Files that cannot be read are skipped; a missing directory (old kernel, not Linux) is an
/// empty list.
///
/// # Errors
/// [`Error::Read`] if the directory exists but cannot be listed.
pub fn read_vulnerabilities_at(root: &Path) -> Result<Vec<Vulnerability>> {
    let dir = under(root, "/sys/devices/system/cpu/vulnerabilities");
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => return Err(Error::Read { path: dir, source }),
    };
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Ok(text) = read_text(&entry.path()) {
            out.push(Vulnerability {
                name,
                status: VulnStatus::parse(&text),
            });
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// Reads the live host's vulnerability files (see [`read_vulnerabilities_at`]).
///
/// # Errors
/// [`Error::Read`] if the directory exists but cannot be listed.
pub fn read_vulnerabilities() -> Result<Vec<Vulnerability>> {
    read_vulnerabilities_at(Path::new("/"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn this_machines_files() {
        let s = VulnStatus::parse(
            "Mitigation: Retpolines; STIBP: disabled; RSB filling; PBRSB-eIBRS: Not affected; BHI: Not affected\n",
        );
        assert_eq!(
            s.state,
            VulnState::Mitigated {
                mitigations: vec!["Retpolines".into(), "RSB filling".into()]
            }
        );
        assert_eq!(s.sub_reports.len(), 3);
        assert_eq!(s.sub_reports[0].key, "STIBP");
        assert_eq!(s.sub_reports[0].value, "disabled");
        assert!(!s.residual_risk());

        assert_eq!(
            VulnStatus::parse("Vulnerable: Safe RET, no microcode").state,
            VulnState::Vulnerable {
                details: vec!["Safe RET, no microcode".into()]
            }
        );
        assert_eq!(
            VulnStatus::parse("Vulnerable\n").state,
            VulnState::Vulnerable { details: vec![] }
        );
        assert_eq!(
            VulnStatus::parse("Not affected\n").state,
            VulnState::NotAffected
        );
        assert_eq!(
            VulnStatus::parse(
                "Mitigation: usercopy/swapgs barriers and __user pointer sanitization"
            )
            .state,
            VulnState::Mitigated {
                mitigations: vec![
                    "usercopy/swapgs barriers and __user pointer sanitization".into()
                ]
            }
        );
    }

    #[test]
    fn l1tf_with_vmx_sub_report_is_residual_risk() {
        let s = VulnStatus::parse(
            "Mitigation: PTE Inversion; VMX: conditional cache flushes, SMT vulnerable",
        );
        assert_eq!(
            s.state,
            VulnState::Mitigated {
                mitigations: vec!["PTE Inversion".into()]
            }
        );
        assert_eq!(s.sub_reports[0].key, "VMX");
        assert!(s.residual_risk());
    }

    #[test]
    fn unrecognised_words_are_kept() {
        let s = VulnStatus::parse("Processor vulnerable, see dmesg");
        assert_eq!(
            s.state,
            VulnState::Unknown {
                text: "Processor vulnerable, see dmesg".into()
            }
        );
        // "Vulnerabler" is not "Vulnerable".
        assert!(matches!(
            VulnStatus::parse("Vulnerabler").state,
            VulnState::Unknown { .. }
        ));
        assert!(matches!(
            VulnStatus::parse("").state,
            VulnState::Unknown { .. }
        ));
    }

    proptest! {
        #[test]
        fn parse_never_panics(text in "\\PC{0,200}") {
            let s = VulnStatus::parse(&text);
            prop_assert_eq!(s.raw, text.trim());
        }

        #[test]
        fn sysfs_like_text_never_panics(
            text in "(KVM: )?(Not affected|Vulnerable|Mitigation|Unknown)(: [A-Za-z ,]{0,20})?(; [A-Za-z-]{0,8}(: [A-Za-z ]{0,10})?){0,4}"
        ) {
            let s = VulnStatus::parse(&text);
            let _ = s.residual_risk();
        }
    }
}

//! The "Disk images" section of the kvmsec host security report (operations layer).
//!
//! [`image_checks`] needs no passphrase: it reads headers (the LUKS header is public) and walks
//! the backing chain.
//!
//! Verdicts:
//! - `image.format`: INFO, the format and version.
//! - `image.encryption`: PASS for LUKS (cipher and active key slots named); FAIL for the legacy
//!   AES method (broken); WARN for an unencrypted image (guest data sits in clear on the host
//!   storage — not an error for every deployment, but worth knowing).
//! - `image.backing-chain`: WARN when an encrypted image sits above an unencrypted backing
//!   file (guest data can be in clear in the backing file); INFO with the chain otherwise.
//! - An unreadable or malformed image: FAIL with the error's message (or INFO "not checked"
//!   when the file could not be opened for lack of permission).

use std::fmt;
use std::path::Path;

use crate::Error;
use crate::info::{EncryptionInfo, ImageInfo, info, info_chain};

/// Outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "UPPERCASE"))]
pub enum Status {
    /// The property holds.
    Pass,
    /// Worth attention.
    Warn,
    /// A security problem.
    Fail,
    /// Information only (or not checked).
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
    /// Stable machine id, e.g. `image.encryption`.
    pub id: String,
    /// Short human name.
    pub title: String,
    /// The verdict.
    pub status: Status,
    /// One-line reason.
    pub reason: String,
}

fn check(id: &str, title: String, status: Status, reason: String) -> Check {
    Check {
        id: id.into(),
        title,
        status,
        reason,
    }
}

fn encryption_reason(i: &ImageInfo) -> (Status, String) {
    match &i.encryption {
        Some(EncryptionInfo::Luks(l)) => {
            let slots: Vec<String> = l
                .slots
                .iter()
                .enumerate()
                .filter(|(_, s)| s.active)
                .map(|(n, _)| n.to_string())
                .collect();
            (
                Status::Pass,
                format!(
                    "LUKS {}-{}-{}, hash {}, active key slots: {}",
                    l.cipher_alg,
                    l.cipher_mode,
                    l.ivgen_alg,
                    l.hash_alg,
                    if slots.is_empty() {
                        "none".to_string()
                    } else {
                        slots.join(",")
                    }
                ),
            )
        }
        Some(EncryptionInfo::LegacyAes) => (
            Status::Fail,
            "broken: legacy qcow2 AES-128-CBC (no key check, guest-sector IVs leak patterns); convert to LUKS".into(),
        ),
        None => (
            Status::Warn,
            "not encrypted: guest data is stored in clear on the host".into(),
        ),
    }
}

fn error_check(path: &Path, e: &Error) -> Check {
    let denied = matches!(e, Error::Io { source, .. }
        if source.kind() == std::io::ErrorKind::PermissionDenied);
    check(
        "image.format",
        format!("Image {}", path.display()),
        if denied { Status::Info } else { Status::Fail },
        if denied {
            format!("not checked: {e}")
        } else {
            format!("unreadable or malformed image: {e}")
        },
    )
}

/// The report lines for the image at `path` (see the module docs for the verdicts).
///
/// ```
/// use kvmsec_qcow2::report::{image_checks, Status};
/// let dir = tempfile::tempdir()?;
/// let p = dir.path().join("plain.qcow2");
/// kvmsec_qcow2::create(&p, &kvmsec_qcow2::CreateOptions::new(1 << 20))?;
/// let checks = image_checks(&p);
/// let enc = checks.iter().find(|c| c.id == "image.encryption").unwrap();
/// assert_eq!(enc.status, Status::Warn);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn image_checks(path: &Path) -> Vec<Check> {
    let top = match info(path) {
        Ok(i) => i,
        Err(e) => return vec![error_check(path, &e)],
    };
    let name = path.display();
    let mut out = vec![check(
        "image.format",
        format!("Image {name}"),
        Status::Info,
        match top.version {
            Some(v) => format!(
                "qcow2 version {v} (compat {}), {} bytes virtual, {}-byte clusters",
                top.compat.as_deref().unwrap_or("?"),
                top.virtual_size,
                top.cluster_size.unwrap_or(0)
            ),
            None => format!("raw image, {} bytes", top.virtual_size),
        },
    )];
    let (status, reason) = encryption_reason(&top);
    out.push(check(
        "image.encryption",
        format!("Encryption of {name}"),
        status,
        reason,
    ));
    if top.backing_file.is_some() {
        match info_chain(path) {
            Ok(chain) => {
                let mut clear_below_encrypted = Vec::new();
                let mut encrypted_above = false;
                for i in &chain {
                    if i.encryption.is_some() {
                        encrypted_above = true;
                    } else if encrypted_above {
                        clear_below_encrypted.push(i.path.display().to_string());
                    }
                    if matches!(i.encryption, Some(EncryptionInfo::LegacyAes)) && i.path != top.path
                    {
                        out.push(check(
                            "image.encryption",
                            format!("Encryption of {}", i.path.display()),
                            Status::Fail,
                            "broken: legacy qcow2 AES in the backing chain; convert to LUKS".into(),
                        ));
                    }
                }
                let names: Vec<String> =
                    chain.iter().map(|i| i.path.display().to_string()).collect();
                out.push(if clear_below_encrypted.is_empty() {
                    check(
                        "image.backing-chain",
                        format!("Backing chain of {name}"),
                        Status::Info,
                        format!("{} images: {}", chain.len(), names.join(" -> ")),
                    )
                } else {
                    check(
                        "image.backing-chain",
                        format!("Backing chain of {name}"),
                        Status::Warn,
                        format!(
                            "unencrypted backing file beneath an encrypted overlay (guest data can sit in clear): {}",
                            clear_below_encrypted.join(", ")
                        ),
                    )
                });
            }
            Err(e) => out.push(check(
                "image.backing-chain",
                format!("Backing chain of {name}"),
                Status::Fail,
                format!("backing chain unreadable or malformed: {e}"),
            )),
        }
    }
    out
}

//! The SELinux section of the host security report.
//!
//! Checks (ids and severities):
//!
//! | id | PASS | WARN | INFO |
//! |---|---|---|---|
//! | `selinux.mode` | Enforcing (also on a read-only selinuxfs) | Permissive; Disabled, with why | not checked |
//! | `selinux.config` | `SELINUX=enforcing` | permissive, disabled, no valid `SELINUX=` line | no config file, not checked |
//! | `selinux.policy_type` | — | — | `SELINUXTYPE` (or the default) |
//! | `selinux.agreement` | live state and config agree | they disagree (both shown) | no config file, not checked |
//! | `selinux.policy` | — | — | policy version, MLS, deny_unknown (when selinuxfs is mounted) |
//!
//! Disabled is a WARN, not a FAIL: a KVM host may confine guests another way (AppArmor),
//! but without SELinux there is no sVirt isolation. Nothing here is a FAIL. The live state
//! is what selinuxfs says; the config is only the boot-time intent.

use std::fmt;
use std::path::Path;

use crate::config::{CONFIG_PATH, read_config_at};
use crate::error::Error;
use crate::selinuxfs::{
    EnforceMode, Mode, SelinuxState, SelinuxfsLookup, find_selinuxfs_at, getenforce_at,
};

/// Outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "UPPERCASE"))]
pub enum Status {
    /// As it should be.
    Pass,
    /// Weaker than it should be.
    Warn,
    /// Broken or dangerous.
    Fail,
    /// A fact, or a check that could not be made.
    Info,
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(match self {
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
    /// Stable machine id (`selinux.mode`).
    pub id: String,
    /// Short human name.
    pub title: String,
    /// The outcome.
    pub status: Status,
    /// One-line reason.
    pub reason: String,
}

fn check(id: &str, title: &str, status: Status, reason: impl Into<String>) -> Check {
    Check {
        id: id.into(),
        title: title.into(),
        status,
        reason: reason.into(),
    }
}

fn not_checked(e: &Error) -> String {
    format!("not checked: {e}")
}

fn config_word(mode: Mode) -> &'static str {
    match mode {
        Mode::Enforcing => "enforcing",
        Mode::Permissive => "permissive",
        Mode::Disabled => "disabled",
    }
}

/// The SELinux checks for the live host.
///
/// ```no_run
/// for c in kvmsec_selinux::report::host_checks() {
///     println!("{} {}: {}", c.status, c.title, c.reason);
/// }
/// ```
pub fn host_checks() -> Vec<Check> {
    host_checks_at(Path::new("/"))
}

/// The SELinux checks for the host whose root directory is `root`. Never panics and never
/// fails: a check that cannot be made is INFO with a reason starting `not checked: `.
pub fn host_checks_at(root: &Path) -> Vec<Check> {
    let mut out = Vec::new();

    let live = getenforce_at(root);
    out.push(match &live {
        Ok(SelinuxState::Enforcing) => {
            check("selinux.mode", "SELinux mode", Status::Pass, "Enforcing")
        }
        Ok(SelinuxState::Permissive) => check(
            "selinux.mode",
            "SELinux mode",
            Status::Warn,
            "Permissive: denials are logged but not enforced",
        ),
        Ok(SelinuxState::ReadOnly { mode }) => check(
            "selinux.mode",
            "SELinux mode",
            if *mode == EnforceMode::Enforcing {
                Status::Pass
            } else {
                Status::Warn
            },
            format!("{mode} (selinuxfs is mounted read-only here, as in a container)"),
        ),
        Ok(SelinuxState::Disabled { reason }) => check(
            "selinux.mode",
            "SELinux mode",
            Status::Warn,
            format!("Disabled: {reason}; no sVirt isolation of guests"),
        ),
        Err(e) => check("selinux.mode", "SELinux mode", Status::Info, not_checked(e)),
    });

    let config = read_config_at(root);
    match &config {
        Ok(Some(cfg)) => {
            let (status, reason) = match cfg.mode {
                Some(Mode::Enforcing) => (Status::Pass, "SELINUX=enforcing".to_owned()),
                Some(m) => (Status::Warn, format!("SELINUX={}", config_word(m))),
                None => (
                    Status::Warn,
                    format!("{CONFIG_PATH} has no valid SELINUX= line (read as disabled)"),
                ),
            };
            out.push(check("selinux.config", "Configured mode", status, reason));
            let reason = if cfg.policy_type_set {
                format!("SELINUXTYPE={}", cfg.policy_type)
            } else {
                format!("{} (default, SELINUXTYPE not set)", cfg.policy_type)
            };
            out.push(check(
                "selinux.policy_type",
                "Configured policy type",
                Status::Info,
                reason,
            ));
        }
        Ok(None) => {
            let reason = format!("no config file {CONFIG_PATH}");
            out.push(check(
                "selinux.config",
                "Configured mode",
                Status::Info,
                &reason,
            ));
            out.push(check(
                "selinux.policy_type",
                "Configured policy type",
                Status::Info,
                reason,
            ));
        }
        Err(e) => {
            out.push(check(
                "selinux.config",
                "Configured mode",
                Status::Info,
                not_checked(e),
            ));
            out.push(check(
                "selinux.policy_type",
                "Configured policy type",
                Status::Info,
                not_checked(e),
            ));
        }
    }

    out.push(agreement(&live, &config));
    out.push(policy(root, &live));
    out
}

fn agreement(
    live: &crate::Result<SelinuxState>,
    config: &crate::Result<Option<crate::SelinuxConfig>>,
) -> Check {
    let title = "Live mode vs config";
    let id = "selinux.agreement";
    let (live, cfg) = match (live, config) {
        (Err(e), _) | (_, Err(e)) => return check(id, title, Status::Info, not_checked(e)),
        (_, Ok(None)) => {
            return check(
                id,
                title,
                Status::Info,
                format!("not checked: no config file {CONFIG_PATH}"),
            );
        }
        (Ok(l), Ok(Some(c))) => (l, c),
    };
    let live_mode = match live {
        SelinuxState::Enforcing
        | SelinuxState::ReadOnly {
            mode: EnforceMode::Enforcing,
        } => Mode::Enforcing,
        SelinuxState::Permissive
        | SelinuxState::ReadOnly {
            mode: EnforceMode::Permissive,
        } => Mode::Permissive,
        SelinuxState::Disabled { .. } => Mode::Disabled,
    };
    let config_mode = cfg.mode.unwrap_or(Mode::Disabled);
    let config_text = cfg.mode.map_or("no valid SELINUX= line", config_word);
    if live_mode == config_mode {
        check(
            id,
            title,
            Status::Pass,
            format!("live {live} matches config ({config_text})"),
        )
    } else {
        check(
            id,
            title,
            Status::Warn,
            format!(
                "live {live}, config says {config_text} (boot-time intent, applies at next boot)"
            ),
        )
    }
}

fn policy(root: &Path, live: &crate::Result<SelinuxState>) -> Check {
    let id = "selinux.policy";
    let title = "Loaded policy";
    if let Ok(SelinuxState::Disabled { reason }) = live {
        return check(id, title, Status::Info, format!("none: {reason}"));
    }
    let fs = match find_selinuxfs_at(root) {
        Ok(SelinuxfsLookup::Mounted(fs)) => fs,
        Ok(_) => return check(id, title, Status::Info, "none: no selinuxfs mounted"),
        Err(e) => return check(id, title, Status::Info, not_checked(&e)),
    };
    let version = fs
        .policy_version()
        .map_or_else(|e| format!("unknown ({e})"), |v| v.to_string());
    let mls = fs.mls_enabled().map_or_else(
        |_| "unknown".to_owned(),
        |m| if m { "on" } else { "off" }.to_owned(),
    );
    let deny = fs.deny_unknown().map_or_else(
        |_| "unknown".to_owned(),
        |d| if d { "deny" } else { "allow" }.to_owned(),
    );
    check(
        id,
        title,
        Status::Info,
        format!("policy version {version}, MLS {mls}, unknown permissions: {deny}"),
    )
}

#[cfg(test)]
mod tests;

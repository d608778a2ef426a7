//! selinuxfs: discovery, enforcement mode, policy facts and context canonicalisation
//! (host access layer).
//!
//! # References
//! - Linux `security/selinux/selinuxfs.c` (`enforce`, `policyvers`, `mls`, `deny_unknown`,
//!   `reject_unknown`, `context`).
//! - libselinux `getenforce.c`, `setenforce.c`, `canonicalize_context.c` for the user-space
//!   conventions (write `"0"`/`"1"`, write a context with its NUL and read the answer on the
//!   same descriptor).

use std::fmt;
use std::fs::OpenOptions;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use crate::context::{MAX_CONTEXT_LEN, SecurityContext};
use crate::error::{DisabledReason, Error, Result, clip};
use crate::hostfs::{MAX_READ, read_limited, read_optional, scan_int, under, write_kernel_file};
use crate::mountinfo::parse_mountinfo_line;

/// Where selinuxfs is mounted today.
pub const SELINUXFS_MOUNT: &str = "/sys/fs/selinux";
/// Where selinuxfs was mounted before Linux 3.0-era distributions moved it.
pub const OLD_SELINUXFS_MOUNT: &str = "/selinux";

/// A mode SELinux can be asked to run in (by `setenforce` or `/etc/selinux/config`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Mode {
    /// The policy is enforced.
    Enforcing,
    /// Denials are logged, not enforced.
    Permissive,
    /// SELinux is off (only at boot: config or `selinux=0`).
    Disabled,
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(match self {
            Mode::Enforcing => "Enforcing",
            Mode::Permissive => "Permissive",
            Mode::Disabled => "Disabled",
        })
    }
}

/// The run-time enforcement mode of an enabled SELinux.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum EnforceMode {
    /// `enforce` reads 1 (any non-zero value).
    Enforcing,
    /// `enforce` reads 0.
    Permissive,
}

impl fmt::Display for EnforceMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(match self {
            EnforceMode::Enforcing => "Enforcing",
            EnforceMode::Permissive => "Permissive",
        })
    }
}

/// What `getenforce` finds on a host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum SelinuxState {
    /// selinuxfs is writable and `enforce` reads 1.
    Enforcing,
    /// selinuxfs is writable and `enforce` reads 0.
    Permissive,
    /// selinuxfs is mounted read-only (what container runtimes do): the kernel's mode is
    /// readable but cannot be changed from here. libselinux calls this "disabled"; this crate
    /// keeps it apart.
    ReadOnly {
        /// The mode the kernel reports.
        mode: EnforceMode,
    },
    /// SELinux is not active.
    Disabled {
        /// Why.
        reason: DisabledReason,
    },
}

impl fmt::Display for SelinuxState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SelinuxState::Enforcing => f.write_str("Enforcing"),
            SelinuxState::Permissive => f.write_str("Permissive"),
            SelinuxState::ReadOnly { mode } => write!(f, "{mode} (selinuxfs read-only)"),
            SelinuxState::Disabled { reason } => write!(f, "Disabled ({reason})"),
        }
    }
}

/// Result of looking for selinuxfs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SelinuxfsLookup {
    /// selinuxfs is mounted here.
    Mounted(Selinuxfs),
    /// Not mounted although the kernel offers it (or `/proc/filesystems` was unreadable).
    NotMounted,
    /// The kernel does not offer selinuxfs at all.
    NotInKernel,
}

/// A mounted selinuxfs.
///
/// ```no_run
/// use kvmsec_selinux::{SelinuxfsLookup, find_selinuxfs};
/// if let SelinuxfsLookup::Mounted(fs) = find_selinuxfs()? {
///     println!("policy version {}, MLS {}", fs.policy_version()?, fs.mls_enabled()?);
/// }
/// # Ok::<(), kvmsec_selinux::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selinuxfs {
    path: PathBuf,
    read_only: bool,
}

/// Find selinuxfs on the live host.
pub fn find_selinuxfs() -> Result<SelinuxfsLookup> {
    find_selinuxfs_at(Path::new("/"))
}

/// Find selinuxfs on the host whose root directory is `root`.
///
/// Reads `<root>/proc/self/mountinfo` (the last `selinuxfs` mount wins, preferring
/// `/sys/fs/selinux`); without a mountinfo file, looks for `enforce` in
/// `<root>/sys/fs/selinux` and `<root>/selinux`. When nothing is mounted,
/// `<root>/proc/filesystems` tells "not mounted" from "not in the kernel".
pub fn find_selinuxfs_at(root: &Path) -> Result<SelinuxfsLookup> {
    let mountinfo_path = under(root, "/proc/self/mountinfo");
    match read_optional(&mountinfo_path, MAX_READ)? {
        Some(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let mounts: Vec<_> = text
                .lines()
                .filter_map(parse_mountinfo_line)
                .filter(|m| m.fs_type == "selinuxfs")
                .collect();
            let chosen = mounts
                .iter()
                .rev()
                .find(|m| m.mount_point == SELINUXFS_MOUNT)
                .or_else(|| mounts.last());
            if let Some(m) = chosen {
                return Ok(SelinuxfsLookup::Mounted(Selinuxfs {
                    path: under(root, &m.mount_point),
                    read_only: m.is_read_only(),
                }));
            }
        }
        None => {
            for mnt in [SELINUXFS_MOUNT, OLD_SELINUXFS_MOUNT] {
                let path = under(root, mnt);
                if path.join("enforce").exists() {
                    return Ok(SelinuxfsLookup::Mounted(Selinuxfs {
                        path,
                        read_only: false,
                    }));
                }
            }
        }
    }

    let filesystems = under(root, "/proc/filesystems");
    match read_optional(&filesystems, MAX_READ) {
        Ok(Some(bytes)) => {
            let text = String::from_utf8_lossy(&bytes);
            let offered = text
                .lines()
                .any(|l| l.split_whitespace().last() == Some("selinuxfs"));
            Ok(if offered {
                SelinuxfsLookup::NotMounted
            } else {
                SelinuxfsLookup::NotInKernel
            })
        }
        _ => Ok(SelinuxfsLookup::NotMounted),
    }
}

impl Selinuxfs {
    /// A selinuxfs known to be mounted at `path` (for callers that found it themselves).
    pub fn at(path: impl Into<PathBuf>, read_only: bool) -> Self {
        Selinuxfs {
            path: path.into(),
            read_only,
        }
    }

    /// The directory (including any root prefix).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether it is mounted read-only.
    pub fn is_read_only(&self) -> bool {
        self.read_only
    }

    fn read_int(&self, node: &str, expected: &'static str) -> Result<i64> {
        let path = self.path.join(node);
        let bytes = read_limited(&path, 64)?;
        scan_int(&bytes).ok_or_else(|| Error::InvalidValue {
            value: clip(&String::from_utf8_lossy(&bytes), 64),
            path,
            expected,
        })
    }

    /// The kernel's enforcement mode (`enforce`: 0 permissive, anything else enforcing).
    pub fn enforce_mode(&self) -> Result<EnforceMode> {
        Ok(match self.read_int("enforce", "an integer")? {
            0 => EnforceMode::Permissive,
            _ => EnforceMode::Enforcing,
        })
    }

    /// Switch between enforcing and permissive by writing `1` or `0` to `enforce`.
    ///
    /// Errors: [`Error::ReadOnlySelinuxfs`] for a read-only mount,
    /// [`Error::PermissionDenied`] when not root or the policy denies `setenforce`.
    pub fn set_enforce_mode(&self, mode: EnforceMode) -> Result<()> {
        if self.read_only {
            return Err(Error::ReadOnlySelinuxfs {
                path: self.path.clone(),
            });
        }
        let value: &[u8] = match mode {
            EnforceMode::Enforcing => b"1",
            EnforceMode::Permissive => b"0",
        };
        write_kernel_file(&self.path.join("enforce"), value).map_err(|e| match e {
            Error::ReadOnlyFilesystem { .. } => Error::ReadOnlySelinuxfs {
                path: self.path.clone(),
            },
            other => other,
        })
    }

    /// The policy version the kernel supports (`policyvers`).
    pub fn policy_version(&self) -> Result<u32> {
        let v = self.read_int("policyvers", "a policy version")?;
        u32::try_from(v).map_err(|_| Error::InvalidValue {
            path: self.path.join("policyvers"),
            value: v.to_string(),
            expected: "a non-negative policy version",
        })
    }

    /// Whether the loaded policy is MLS (`mls` reads exactly `1`).
    pub fn mls_enabled(&self) -> Result<bool> {
        Ok(self.read_int("mls", "0 or 1")? == 1)
    }

    /// Whether permissions unknown to the policy are denied (`deny_unknown`).
    pub fn deny_unknown(&self) -> Result<bool> {
        Ok(self.read_int("deny_unknown", "0 or 1")? != 0)
    }

    /// Whether a policy lacking kernel classes is refused at load (`reject_unknown`).
    pub fn reject_unknown(&self) -> Result<bool> {
        Ok(self.read_int("reject_unknown", "0 or 1")? != 0)
    }

    /// Ask the kernel for the canonical form of `context` under the loaded policy: write it
    /// with its NUL to `context` and read the answer back on the same descriptor.
    ///
    /// The policy rejecting the context gives [`Error::ContextRejected`]. When the kernel
    /// answers nothing (kernels before 2.6.25 only validate), `context` is returned as
    /// given.
    pub fn canonicalize_context(&self, context: &SecurityContext) -> Result<SecurityContext> {
        let path = self.path.join("context");
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|e| Error::io("open", &path, e))?;
        let bytes = context.to_kernel_bytes();
        match file.write(&bytes) {
            Ok(n) if n == bytes.len() => {}
            Ok(_) => {
                return Err(Error::io_plain(
                    "write",
                    &path,
                    io::Error::new(io::ErrorKind::WriteZero, "short write"),
                ));
            }
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                return Err(Error::ContextRejected {
                    context: context.to_string(),
                });
            }
            Err(e) => return Err(Error::io("write", &path, e)),
        }
        let mut answer = Vec::new();
        match (&mut file)
            .take(MAX_CONTEXT_LEN as u64 + 2)
            .read_to_end(&mut answer)
        {
            Ok(_) => {}
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => return Ok(context.clone()),
            Err(e) => return Err(Error::io("read", &path, e)),
        }
        if answer.is_empty() {
            return Ok(context.clone());
        }
        SecurityContext::from_bytes(&answer)
    }

    /// Check that the loaded policy accepts `context` (ok, or [`Error::ContextRejected`]).
    pub fn check_context(&self, context: &SecurityContext) -> Result<()> {
        self.canonicalize_context(context).map(|_| ())
    }
}

/// Canonicalise `context` through the live host's selinuxfs (see
/// [`Selinuxfs::canonicalize_context`]).
///
/// ```no_run
/// use kvmsec_selinux::{SecurityContext, canonicalize_context};
/// let ctx: SecurityContext = "system_u:object_r:etc_t:s0:c0,c1,c2".parse()?;
/// println!("{}", canonicalize_context(&ctx)?);
/// # Ok::<(), kvmsec_selinux::Error>(())
/// ```
pub fn canonicalize_context(context: &SecurityContext) -> Result<SecurityContext> {
    canonicalize_context_at(Path::new("/"), context)
}

/// Canonicalise `context` through the selinuxfs of the host under `root`; without one,
/// [`Error::SelinuxDisabled`].
pub fn canonicalize_context_at(root: &Path, context: &SecurityContext) -> Result<SecurityContext> {
    match find_selinuxfs_at(root)? {
        SelinuxfsLookup::Mounted(fs) => fs.canonicalize_context(context),
        SelinuxfsLookup::NotMounted => Err(Error::SelinuxDisabled {
            reason: DisabledReason::NotMounted,
        }),
        SelinuxfsLookup::NotInKernel => Err(Error::SelinuxDisabled {
            reason: DisabledReason::NotInKernel,
        }),
    }
}

/// `getenforce` on the live host.
pub fn getenforce() -> Result<SelinuxState> {
    getenforce_at(Path::new("/"))
}

/// `getenforce` on the host whose root directory is `root`.
///
/// The live state is what selinuxfs says; `/etc/selinux/config` is only the boot-time
/// intent (see [`crate::read_config_at`]) and is read only to explain a Disabled state
/// ([`DisabledReason::ConfigDisabled`] when selinuxfs is unmounted or has no policy). A
/// mounted selinuxfs whose `<root>/proc/self/attr/current` reads `kernel` has no policy
/// loaded and counts as disabled.
pub fn getenforce_at(root: &Path) -> Result<SelinuxState> {
    // Only used to explain why SELinux is off, never to decide whether it is on.
    let config_disabled = || {
        matches!(
            crate::config::read_config_at(root),
            Ok(Some(crate::SelinuxConfig {
                mode: Some(Mode::Disabled),
                ..
            }))
        )
    };
    let fs = match find_selinuxfs_at(root)? {
        SelinuxfsLookup::Mounted(fs) => fs,
        SelinuxfsLookup::NotMounted => {
            let reason = if config_disabled() {
                DisabledReason::ConfigDisabled
            } else {
                DisabledReason::NotMounted
            };
            return Ok(SelinuxState::Disabled { reason });
        }
        SelinuxfsLookup::NotInKernel => {
            return Ok(SelinuxState::Disabled {
                reason: DisabledReason::NotInKernel,
            });
        }
    };

    if let Ok(Some(current)) = read_optional(&under(root, "/proc/self/attr/current"), 4096)
        && crate::context::strip_kernel_suffix(&current) == b"kernel"
    {
        let reason = if config_disabled() {
            DisabledReason::ConfigDisabled
        } else {
            DisabledReason::NoPolicyLoaded
        };
        return Ok(SelinuxState::Disabled { reason });
    }

    let mode = fs.enforce_mode()?;
    Ok(match (fs.is_read_only(), mode) {
        (true, mode) => SelinuxState::ReadOnly { mode },
        (false, EnforceMode::Enforcing) => SelinuxState::Enforcing,
        (false, EnforceMode::Permissive) => SelinuxState::Permissive,
    })
}

/// `setenforce` on the live host.
pub fn setenforce(mode: Mode) -> Result<()> {
    setenforce_at(Path::new("/"), mode)
}

/// `setenforce` on the host whose root directory is `root`.
///
/// Errors: [`Error::CannotDisableAtRuntime`] for [`Mode::Disabled`],
/// [`Error::SelinuxDisabled`] when no selinuxfs is mounted or no policy is loaded,
/// [`Error::ReadOnlySelinuxfs`], [`Error::PermissionDenied`].
pub fn setenforce_at(root: &Path, mode: Mode) -> Result<()> {
    let mode = match mode {
        Mode::Enforcing => EnforceMode::Enforcing,
        Mode::Permissive => EnforceMode::Permissive,
        Mode::Disabled => return Err(Error::CannotDisableAtRuntime),
    };
    if let SelinuxState::Disabled { reason } = getenforce_at(root)? {
        return Err(Error::SelinuxDisabled { reason });
    }
    match find_selinuxfs_at(root)? {
        SelinuxfsLookup::Mounted(fs) => fs.set_enforce_mode(mode),
        SelinuxfsLookup::NotMounted => Err(Error::SelinuxDisabled {
            reason: DisabledReason::NotMounted,
        }),
        SelinuxfsLookup::NotInKernel => Err(Error::SelinuxDisabled {
            reason: DisabledReason::NotInKernel,
        }),
    }
}

#[cfg(test)]
mod tests;

//! The crate's error type.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// Result type of this crate.
pub type Result<T> = std::result::Result<T, Error>;

/// Which part of a security context a parse error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub enum ContextPart {
    /// The context as a whole (length, encoding, NUL bytes).
    Whole,
    /// The SELinux user (first field).
    User,
    /// The role (second field).
    Role,
    /// The type or domain (third field).
    Type,
    /// The MLS/MCS range (fourth field, may contain `:`).
    Range,
    /// The low (or only) level of the range.
    LowLevel,
    /// The high level of the range.
    HighLevel,
    /// A category list or category item.
    Category,
}

impl fmt::Display for ContextPart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ContextPart::Whole => "context",
            ContextPart::User => "user",
            ContextPart::Role => "role",
            ContextPart::Type => "type",
            ContextPart::Range => "MLS range",
            ContextPart::LowLevel => "low level",
            ContextPart::HighLevel => "high level",
            ContextPart::Category => "category set",
        })
    }
}

/// What is wrong with a security context.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub enum ContextProblem {
    /// The part is present but empty.
    Empty,
    /// The part is missing (too few `:`-separated fields).
    MissingField,
    /// A character that is not allowed in this part.
    InvalidChar {
        /// The offending character.
        ch: char,
    },
    /// A NUL byte before the end (only one trailing NUL is tolerated).
    InteriorNul,
    /// The bytes are not UTF-8.
    NotUtf8,
    /// Longer than [`crate::MAX_CONTEXT_LEN`] bytes.
    TooLong {
        /// Length of the input in bytes.
        len: usize,
    },
    /// A sensitivity that is not `s` followed by a decimal number (at most 65535).
    BadSensitivity {
        /// The token (truncated to 64 characters).
        token: String,
    },
    /// A category item that is not `cN` or `cA.cB`.
    BadCategory {
        /// The token (truncated to 64 characters).
        token: String,
    },
    /// A number written with a leading zero (`c01`, `s00`): the kernel looks names up
    /// literally, so such a name does not exist in any reference policy.
    LeadingZero {
        /// The token (truncated to 64 characters).
        token: String,
    },
    /// A category above `c1023`.
    CategoryOutOfRange {
        /// The category number (saturated at `u64::MAX`).
        category: u64,
    },
    /// A category range `cA.cB` with `A >= B` (the kernel requires `A < B`).
    CategoryRangeNotAscending {
        /// First category of the range.
        first: u16,
        /// Last category of the range.
        last: u16,
    },
    /// The high level of a range does not dominate its low level.
    HighDoesNotDominateLow,
}

impl fmt::Display for ContextProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ContextProblem::Empty => f.write_str("is empty"),
            ContextProblem::MissingField => f.write_str("is missing"),
            ContextProblem::InvalidChar { ch } => write!(f, "contains the character {ch:?}"),
            ContextProblem::InteriorNul => f.write_str("contains a NUL byte before the end"),
            ContextProblem::NotUtf8 => f.write_str("is not UTF-8"),
            ContextProblem::TooLong { len } => {
                write!(
                    f,
                    "is {len} bytes long (at most {} allowed)",
                    crate::MAX_CONTEXT_LEN
                )
            }
            ContextProblem::BadSensitivity { token } => {
                write!(f, "{token:?} is not a sensitivity (expected sN)")
            }
            ContextProblem::BadCategory { token } => {
                write!(f, "{token:?} is not a category (expected cN or cA.cB)")
            }
            ContextProblem::LeadingZero { token } => {
                write!(f, "{token:?} has a leading zero")
            }
            ContextProblem::CategoryOutOfRange { category } => {
                write!(f, "category c{category} is above c{}", crate::MAX_CATEGORY)
            }
            ContextProblem::CategoryRangeNotAscending { first, last } => {
                write!(
                    f,
                    "category range c{first}.c{last} is not ascending (needs c{first} < c{last})"
                )
            }
            ContextProblem::HighDoesNotDominateLow => {
                f.write_str("high level does not dominate the low level")
            }
        }
    }
}

/// Why SELinux is disabled on a host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub enum DisabledReason {
    /// No selinuxfs is mounted, and the kernel does not offer selinuxfs at all
    /// (`/proc/filesystems` lacks it: SELinux is not built in or not enabled at boot).
    NotInKernel,
    /// The kernel offers selinuxfs (or `/proc/filesystems` could not be read) but it is not
    /// mounted.
    NotMounted,
    /// selinuxfs is mounted but no policy is loaded (the process context reads `kernel`),
    /// typically because `/etc/selinux/config` says `SELINUX=disabled`.
    NoPolicyLoaded,
    /// selinuxfs is not mounted or has no policy loaded, and `/etc/selinux/config` says
    /// `SELINUX=disabled`.
    ConfigDisabled,
}

impl fmt::Display for DisabledReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DisabledReason::NotInKernel => {
                "no selinuxfs mounted: the kernel does not provide it, SELinux is not enabled at boot"
            }
            DisabledReason::NotMounted => "no selinuxfs mounted",
            DisabledReason::NoPolicyLoaded => "selinuxfs is mounted but no policy is loaded",
            DisabledReason::ConfigDisabled => "/etc/selinux/config says SELINUX=disabled",
        })
    }
}

/// The error type of every fallible function in this crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A security context (or part of one) is malformed.
    #[error("invalid security context {input:?}: {part} {problem}")]
    InvalidContext {
        /// The input (truncated to 256 characters, lossily decoded).
        input: String,
        /// The part that is wrong.
        part: ContextPart,
        /// What is wrong with it.
        problem: ContextProblem,
    },

    /// The context uses a translated (mcstrans) range such as `SystemLow-SystemHigh`; this
    /// crate only parses raw ranges (`s0-s0:c0.c1023`).
    #[error(
        "security context {input:?} has a translated (mcstrans) MLS range {range:?}, not a raw one"
    )]
    TranslatedContext {
        /// The input (truncated to 256 characters).
        input: String,
        /// The translated range text.
        range: String,
    },

    /// A category number outside `c0..c1023` was given to a [`crate::CategorySet`].
    #[error("category c{category} is out of range (c0..c{max} supported)", max = crate::MAX_CATEGORY)]
    CategoryOutOfRange {
        /// The category number.
        category: u32,
    },

    /// An I/O operation failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done (`read`, `write`, `open`, `getxattr`, ...).
        op: &'static str,
        /// The file it was done to.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },

    /// The filesystem does not support (security) extended attributes
    /// (`ENOTSUP`/`EOPNOTSUPP`).
    #[error("{path}: the filesystem does not support security.selinux extended attributes")]
    NoXattrSupport {
        /// The file.
        path: PathBuf,
    },

    /// The file lives on a read-only filesystem (`EROFS`).
    #[error("{path}: read-only filesystem")]
    ReadOnlyFilesystem {
        /// The file.
        path: PathBuf,
    },

    /// The caller lacks permission (`EACCES`/`EPERM`): not root, or the policy denies it.
    #[error("{op} {path}: permission denied")]
    PermissionDenied {
        /// What was being done.
        op: &'static str,
        /// The file.
        path: PathBuf,
    },

    /// SELinux is disabled, so the operation is impossible.
    #[error("SELinux is disabled: {reason}")]
    SelinuxDisabled {
        /// Why it is disabled.
        reason: DisabledReason,
    },

    /// selinuxfs is mounted read-only (as container runtimes do), so it cannot be changed.
    #[error("selinuxfs at {path} is mounted read-only")]
    ReadOnlySelinuxfs {
        /// The selinuxfs mount point.
        path: PathBuf,
    },

    /// Switching to Disabled at run time is impossible (Linux 6.4 removed runtime disable):
    /// set `SELINUX=disabled` in the config or boot with `selinux=0`.
    #[error(
        "SELinux cannot be disabled at run time; change /etc/selinux/config or boot with selinux=0"
    )]
    CannotDisableAtRuntime,

    /// No LSM answers `/proc/<pid>/attr/*` (reads and writes give `EINVAL`).
    #[error("{path}: no active LSM provides process attributes (EINVAL)")]
    LsmNotActive {
        /// The attribute file.
        path: PathBuf,
    },

    /// The loaded policy rejected a context (selinuxfs `context` answered `EINVAL`).
    #[error("the loaded policy rejects the security context {context:?}")]
    ContextRejected {
        /// The context, as written.
        context: String,
    },

    /// A kernel or config file held a value of the wrong shape.
    #[error("{path}: unexpected value {value:?} (expected {expected})")]
    InvalidValue {
        /// The file.
        path: PathBuf,
        /// The value (truncated to 64 characters).
        value: String,
        /// What was expected.
        expected: &'static str,
    },

    /// A value to be written into `/etc/selinux/config` would corrupt it.
    #[error("invalid value {value:?} for {key} in the SELinux config: {why}")]
    InvalidConfigValue {
        /// The key (`SELINUXTYPE`, ...).
        key: String,
        /// The refused value (truncated to 64 characters).
        value: String,
        /// Why it is refused.
        why: &'static str,
    },

    /// Every MCS category pair of the range is reserved.
    #[error("all {total} MCS category pairs of {range} are in use")]
    McsExhausted {
        /// The allocator's range.
        range: String,
        /// Number of pairs the range holds.
        total: u64,
    },

    /// The category range given to the MCS allocator holds fewer than two categories.
    #[error("MCS range {range} holds fewer than two categories")]
    McsRangeTooSmall {
        /// The refused range.
        range: String,
    },

    /// An MCS level is already reserved by another guest.
    #[error("MCS level {level} is already reserved")]
    McsAlreadyReserved {
        /// The level.
        level: String,
    },

    /// Labelling a guest's images failed on one file; every file changed before it was
    /// restored (see `restore_failures` for any that could not be).
    #[error("labelling {path} failed: {source}; {restored} earlier file(s) restored, {} restore failure(s)", restore_failures.len())]
    RelabelFailed {
        /// The file that could not be labelled.
        path: PathBuf,
        /// Why.
        #[source]
        source: Box<Error>,
        /// How many already-relabelled files were restored.
        restored: usize,
        /// Files whose original label could not be put back, with the reason.
        restore_failures: Vec<(PathBuf, String)>,
    },
}

impl Error {
    /// Attach a path to an I/O error, mapping the errno values this crate gives meaning to.
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Error {
        let path = path.into();
        match source.raw_os_error() {
            Some(libc::EOPNOTSUPP) if op.ends_with("xattr") => Error::NoXattrSupport { path },
            Some(libc::EROFS) => Error::ReadOnlyFilesystem { path },
            Some(libc::EACCES) | Some(libc::EPERM) => Error::PermissionDenied { op, path },
            _ => Error::Io { op, path, source },
        }
    }

    /// Plain I/O error with no errno mapping.
    pub(crate) fn io_plain(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Error {
        Error::Io {
            op,
            path: path.into(),
            source,
        }
    }

    /// True when the error means "this file cannot carry a label here" (`ENOTSUP` or
    /// `EROFS`): an outcome a caller may accept per file.
    pub fn is_unlabellable(&self) -> bool {
        matches!(
            self,
            Error::NoXattrSupport { .. } | Error::ReadOnlyFilesystem { .. }
        )
    }
}

/// Truncate text for inclusion in an error.
pub(crate) fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        let mut out: String = s.chars().take(max).collect();
        out.push('…');
        out
    }
}

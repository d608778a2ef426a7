//! The crate's one error type.

use std::io;
use std::path::PathBuf;
use std::time::Duration;

/// Everything that can go wrong in this crate.
///
/// I/O failures keep the [`io::Error`] as their source and name the path and the operation.
/// Kernel refusals with a well-known cause (empty cpuset, the v2 "no internal processes" rule,
/// a populated group) get their own variant with the explanation in the message.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Reading, writing or listing a file or directory failed.
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// What was being done (`read`, `write`, `mkdir`, ...).
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },

    /// Text in a kernel format could not be parsed.
    #[error("cannot parse {what}: {reason} (input: {input:?})")]
    Parse {
        /// Which format (`mountinfo line`, `range list`, ...).
        what: &'static str,
        /// The offending input, shortened to at most 200 characters.
        input: String,
        /// What was expected.
        reason: String,
    },

    /// A group path was refused because it could leave the hierarchy or is malformed.
    #[error("invalid group path {path:?}: {reason}")]
    InvalidGroupPath {
        /// The refused path.
        path: String,
        /// Why it was refused.
        reason: &'static str,
    },

    /// A value was outside the range the kernel accepts; nothing was written.
    #[error("{setting} value {value} is out of range {min}..={max}")]
    OutOfRange {
        /// The setting (`cpu.weight`, `blkio.weight`, ...).
        setting: &'static str,
        /// The refused value.
        value: i128,
        /// Smallest accepted value.
        min: i128,
        /// Largest accepted value.
        max: i128,
    },

    /// The kernel refused a value written to a control file.
    #[error("kernel refused writing {value:?} to {}: {source}", path.display())]
    KernelRefused {
        /// The control file.
        path: PathBuf,
        /// What was written.
        value: String,
        /// The kernel's answer.
        #[source]
        source: io::Error,
    },

    /// v1 cpuset: a task cannot join a group whose `cpuset.cpus` or `cpuset.mems` is empty
    /// (ENOSPC).
    #[error(
        "cannot attach {pid} to {}: its cpuset.cpus or cpuset.mems is empty (ENOSPC); \
         fill both (for example from the parent group) before moving tasks in",
        path.display()
    )]
    CpusetEmpty {
        /// The `tasks`/`cgroup.procs` file written.
        path: PathBuf,
        /// The process or thread id.
        pid: u32,
    },

    /// cgroup v2 "no internal processes" rule (EBUSY): a non-root group cannot both hold
    /// processes and distribute domain controllers to its children.
    #[error(
        "{} refused with EBUSY: cgroup v2 \"no internal processes\" rule - a non-root group \
         with controllers enabled in cgroup.subtree_control cannot hold processes (and a group \
         holding processes cannot enable them); put the processes in a leaf child group",
        path.display()
    )]
    NoInternalProcesses {
        /// The file whose write was refused.
        path: PathBuf,
    },

    /// A process or thread does not exist (any more).
    #[error("no such process or thread {pid} (writing {})", path.display())]
    NoSuchProcess {
        /// The file written.
        path: PathBuf,
        /// The id.
        pid: u32,
    },

    /// A group still holds processes and was not asked to move them out.
    #[error("group {} still has {count} process(es); move or kill them first", path.display())]
    GroupPopulated {
        /// The group directory.
        path: PathBuf,
        /// How many processes were found.
        count: usize,
    },

    /// A group still has child groups and removal was not recursive.
    #[error("group {} still has child groups: {children:?}", path.display())]
    GroupHasChildren {
        /// The group directory.
        path: PathBuf,
        /// Names of the children.
        children: Vec<String>,
    },

    /// `rmdir` kept failing with EBUSY for longer than the allowed wait.
    #[error("group {} stayed busy (EBUSY) for {waited:?}", path.display())]
    RemoveBusy {
        /// The group directory.
        path: PathBuf,
        /// How long removal was retried.
        waited: Duration,
    },

    /// The controller is not available where it was needed.
    #[error("controller {controller} is not available: {detail}")]
    ControllerUnavailable {
        /// Controller name.
        controller: String,
        /// Where it was looked for, and what to do.
        detail: String,
    },

    /// The setting exists only in the other cgroup version and has no faithful equivalent.
    #[error("{setting} is not available on cgroup {version}: {hint}")]
    Unsupported {
        /// The setting.
        setting: &'static str,
        /// `v1` or `v2`.
        version: &'static str,
        /// What the caller can use instead.
        hint: &'static str,
    },

    /// The block I/O controller of this group offers no proportional weight file (no CFQ/BFQ
    /// weight, no iocost `io.weight`): only throttling is available.
    #[error(
        "block I/O weights are not supported for {}: no weight file (blkio.weight, \
         blkio.bfq.weight, io.weight or io.bfq.weight) exists; use throttling instead",
        path.display()
    )]
    IoWeightUnsupported {
        /// The group directory.
        path: PathBuf,
    },

    /// cgroup v2 device control needs an eBPF program (`BPF_PROG_TYPE_CGROUP_DEVICE`), which
    /// this crate does not load.
    #[error(
        "device access control for {} needs an eBPF program on cgroup v2 \
         (BPF_PROG_TYPE_CGROUP_DEVICE); there are no devices.* files",
        path.display()
    )]
    DevicesNeedEbpf {
        /// The group directory.
        path: PathBuf,
    },

    /// Freezing did not complete in time.
    #[error("group {} did not reach the frozen state within {timeout:?}", path.display())]
    FreezeTimeout {
        /// The group directory.
        path: PathBuf,
        /// The allowed wait.
        timeout: Duration,
    },

    /// Mounting or unmounting failed.
    #[error("{op} {}: {source}", target.display())]
    Mount {
        /// `mount` or `umount`.
        op: &'static str,
        /// The mount point.
        target: PathBuf,
        /// The kernel's answer.
        #[source]
        source: io::Error,
    },

    /// The named block device is not a block device.
    #[error("{} is not a block device", path.display())]
    NotABlockDevice {
        /// The path given.
        path: PathBuf,
    },
}

/// Result type of this crate.
pub type Result<T> = std::result::Result<T, Error>;

/// Shorten input quoted in an error so a huge input cannot make a huge message.
pub(crate) fn clip(input: &str) -> String {
    const MAX: usize = 200;
    if input.len() <= MAX {
        return input.to_string();
    }
    let mut end = MAX;
    while !input.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &input[..end])
}

/// Build a [`Error::Parse`].
pub(crate) fn parse_err(what: &'static str, input: &str, reason: impl Into<String>) -> Error {
    Error::Parse {
        what,
        input: clip(input),
        reason: reason.into(),
    }
}

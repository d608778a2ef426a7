//! Process labels from `/proc/<pid>/attr/*` (host access layer).
//!
//! # References
//! - Linux `fs/proc/base.c` (`attr` directory) and `security/selinux/hooks.c`
//!   (`selinux_getprocattr`, `selinux_setprocattr`: values carry a trailing NUL; one
//!   trailing newline is stripped on write).
//! - libselinux `procattr.c` (per-thread attributes through `/proc/thread-self`).

use std::fmt;

use std::path::{Path, PathBuf};

use crate::context::{MAX_CONTEXT_LEN, SecurityContext};
use crate::error::{Error, Result};
use crate::hostfs::{read_limited, under, write_kernel_file};

/// One of the SELinux attributes of a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum ProcAttr {
    /// The context the process runs in.
    Current,
    /// The context for its next `execve` (empty: the policy decides).
    Exec,
    /// The context for files it creates.
    FsCreate,
    /// The context for keys it creates.
    KeyCreate,
    /// The context for sockets it creates.
    SockCreate,
    /// The context before its last `execve`.
    Prev,
}

impl ProcAttr {
    /// The file name under `attr/`.
    pub fn file_name(self) -> &'static str {
        match self {
            ProcAttr::Current => "current",
            ProcAttr::Exec => "exec",
            ProcAttr::FsCreate => "fscreate",
            ProcAttr::KeyCreate => "keycreate",
            ProcAttr::SockCreate => "sockcreate",
            ProcAttr::Prev => "prev",
        }
    }
}

impl fmt::Display for ProcAttr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.file_name())
    }
}

/// The SELinux attributes of one process (`None`: unset).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct ProcessLabels {
    /// `attr/current`.
    pub current: Option<SecurityContext>,
    /// `attr/exec`.
    pub exec: Option<SecurityContext>,
    /// `attr/fscreate`.
    pub fscreate: Option<SecurityContext>,
    /// `attr/prev`.
    pub prev: Option<SecurityContext>,
}

/// Read one attribute of process `pid` on the live host.
pub fn process_label(pid: u32, attr: ProcAttr) -> Result<Option<SecurityContext>> {
    process_label_at(Path::new("/"), pid, attr)
}

/// Read one attribute of process `pid` under `root`.
///
/// An empty attribute is `None`. Exactly one trailing NUL (and/or newline) is dropped.
/// `EINVAL` from the kernel (no LSM answers) is [`Error::LsmNotActive`].
pub fn process_label_at(root: &Path, pid: u32, attr: ProcAttr) -> Result<Option<SecurityContext>> {
    if pid == 0 {
        return Err(Error::InvalidValue {
            path: under(root, "/proc/0"),
            value: "0".into(),
            expected: "a process id above 0",
        });
    }
    let path = under(root, format!("/proc/{pid}/attr/{}", attr.file_name()));
    read_attr(&path)
}

/// Read all four commonly used attributes of process `pid` under `root`.
pub fn process_labels_at(root: &Path, pid: u32) -> Result<ProcessLabels> {
    Ok(ProcessLabels {
        current: process_label_at(root, pid, ProcAttr::Current)?,
        exec: process_label_at(root, pid, ProcAttr::Exec)?,
        fscreate: process_label_at(root, pid, ProcAttr::FsCreate)?,
        prev: process_label_at(root, pid, ProcAttr::Prev)?,
    })
}

/// Read all four commonly used attributes of process `pid` on the live host.
pub fn process_labels(pid: u32) -> Result<ProcessLabels> {
    process_labels_at(Path::new("/"), pid)
}

/// The calling thread's current context (`/proc/thread-self/attr/current`).
pub fn current_label() -> Result<Option<SecurityContext>> {
    read_attr(&thread_attr_path(Path::new("/"), ProcAttr::Current))
}

/// Set (or with `None`, clear) the context the calling thread's next `execve` runs in.
///
/// Attributes are per thread: call this in the thread that will `exec` (for example
/// between `fork` and `exec`).
///
/// ```no_run
/// use kvmsec_selinux::{SecurityContext, set_exec_label};
/// let ctx: SecurityContext = "system_u:system_r:svirt_t:s0:c14,c721".parse()?;
/// set_exec_label(Some(&ctx))?;
/// # Ok::<(), kvmsec_selinux::Error>(())
/// ```
pub fn set_exec_label(context: Option<&SecurityContext>) -> Result<()> {
    set_exec_label_at(Path::new("/"), context)
}

/// [`set_exec_label`] with `/proc` under `root`.
pub fn set_exec_label_at(root: &Path, context: Option<&SecurityContext>) -> Result<()> {
    let path = thread_attr_path(root, ProcAttr::Exec);
    let bytes = context
        .map(SecurityContext::to_kernel_bytes)
        .unwrap_or_default();
    write_kernel_file(&path, &bytes).map_err(|e| lsm_error(e, &path))
}

/// `<root>/proc/thread-self/attr/<attr>`, or `<root>/proc/self/task/<tid>/attr/<attr>` when
/// `thread-self` is missing (kernels before 3.17).
fn thread_attr_path(root: &Path, attr: ProcAttr) -> PathBuf {
    let thread_self = under(root, "/proc/thread-self");
    if thread_self.exists() {
        thread_self.join("attr").join(attr.file_name())
    } else {
        // SAFETY: gettid has no preconditions and cannot fail.
        let tid = unsafe { libc::gettid() };
        under(
            root,
            format!("/proc/self/task/{tid}/attr/{}", attr.file_name()),
        )
    }
}

fn read_attr(path: &Path) -> Result<Option<SecurityContext>> {
    let bytes = read_limited(path, MAX_CONTEXT_LEN as u64 + 2).map_err(|e| lsm_error(e, path))?;
    if crate::context::strip_kernel_suffix(&bytes).is_empty() {
        return Ok(None);
    }
    SecurityContext::from_bytes(&bytes).map(Some)
}

fn lsm_error(e: Error, path: &Path) -> Error {
    match e {
        Error::Io { ref source, .. } if source.raw_os_error() == Some(libc::EINVAL) => {
            Error::LsmNotActive {
                path: path.to_owned(),
            }
        }
        other => other,
    }
}

#[cfg(test)]
mod tests;

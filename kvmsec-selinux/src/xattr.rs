//! File labels through the `security.selinux` extended attribute (host access layer).
//!
//! Labels are written with a trailing NUL (as libselinux does) and read with exactly one
//! trailing NUL dropped. A missing attribute (`ENODATA`) is `None`; a filesystem without
//! xattr support (`ENOTSUP`/`EOPNOTSUPP`) is [`Error::NoXattrSupport`].
//!
//! # References
//! - `getxattr(2)`, `setxattr(2)`; libselinux `getfilecon.c`, `setfilecon.c`.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use crate::context::SecurityContext;
use crate::error::{Error, Result};

/// The extended attribute holding a file's SELinux label.
pub const XATTR_NAME: &str = "security.selinux";
const XATTR_CNAME: &[u8] = b"security.selinux\0";
/// Largest xattr value Linux allows.
const XATTR_SIZE_MAX: usize = 65536;

/// Whether path-based calls follow a final symlink.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Symlink {
    /// Act on the file the link points to (`getfilecon`).
    Follow,
    /// Act on the link itself (`lgetfilecon`).
    NoFollow,
}

enum Target<'a> {
    Path(&'a Path, Symlink),
    Fd(i32, &'a Path),
}

impl Target<'_> {
    fn path(&self) -> &Path {
        match self {
            Target::Path(p, _) | Target::Fd(_, p) => p,
        }
    }
}

fn cpath(path: &Path) -> Result<CString> {
    CString::new(path.as_os_str().as_bytes()).map_err(|_| Error::InvalidValue {
        path: path.to_owned(),
        value: path.display().to_string(),
        expected: "a path without NUL bytes",
    })
}

fn name_ptr() -> *const libc::c_char {
    XATTR_CNAME.as_ptr().cast()
}

/// getxattr into `buf`, returning the value length.
fn get_raw_into(target: &Target<'_>, buf: &mut [u8]) -> io::Result<usize> {
    let (ptr, len) = (buf.as_mut_ptr().cast::<libc::c_void>(), buf.len());
    let rc = match target {
        Target::Path(p, follow) => {
            let c = cpath(p).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
            match follow {
                // SAFETY: `c` and the name are NUL-terminated; `ptr` is valid for `len` bytes.
                Symlink::Follow => unsafe { libc::getxattr(c.as_ptr(), name_ptr(), ptr, len) },
                // SAFETY: as above.
                Symlink::NoFollow => unsafe { libc::lgetxattr(c.as_ptr(), name_ptr(), ptr, len) },
            }
        }
        // SAFETY: the fd is borrowed from a live `AsFd`; the buffer is valid for `len` bytes.
        Target::Fd(fd, _) => unsafe { libc::fgetxattr(*fd, name_ptr(), ptr, len) },
    };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc as usize)
    }
}

fn get_raw(target: &Target<'_>) -> Result<Option<Vec<u8>>> {
    let path = target.path();
    // Start with a buffer that fits any usual context; grow once on ERANGE, bounded.
    let mut size = 256;
    loop {
        let mut buf = vec![0u8; size];
        match get_raw_into(target, &mut buf) {
            Ok(n) => {
                buf.truncate(n);
                if buf.last() == Some(&0) {
                    buf.pop();
                }
                return Ok(Some(buf));
            }
            Err(e) if e.raw_os_error() == Some(libc::ERANGE) && size < XATTR_SIZE_MAX => {
                size = XATTR_SIZE_MAX;
            }
            Err(e) if e.raw_os_error() == Some(libc::ENODATA) => return Ok(None),
            Err(e) => return Err(Error::io("getxattr", path, e)),
        }
    }
}

fn set_raw(target: &Target<'_>, value: &[u8]) -> Result<()> {
    let (ptr, len) = (value.as_ptr().cast::<libc::c_void>(), value.len());
    let rc = match target {
        Target::Path(p, follow) => {
            let c = cpath(p)?;
            match follow {
                // SAFETY: `c` and the name are NUL-terminated; `ptr` is valid for `len` bytes.
                Symlink::Follow => unsafe { libc::setxattr(c.as_ptr(), name_ptr(), ptr, len, 0) },
                // SAFETY: as above.
                Symlink::NoFollow => unsafe {
                    libc::lsetxattr(c.as_ptr(), name_ptr(), ptr, len, 0)
                },
            }
        }
        // SAFETY: the fd is borrowed from a live `AsFd`; the value is valid for `len` bytes.
        Target::Fd(fd, _) => unsafe { libc::fsetxattr(*fd, name_ptr(), ptr, len, 0) },
    };
    if rc >= 0 {
        return Ok(());
    }
    let err = io::Error::last_os_error();
    match err.raw_os_error() {
        // The loaded policy does not know this context.
        Some(libc::EINVAL) => Err(Error::ContextRejected {
            context: String::from_utf8_lossy(strip_label_nul(value)).into_owned(),
        }),
        // As libselinux: no xattr support, but the file already shows the wanted label
        // (NFS, `context=` mounts), is success.
        Some(libc::EOPNOTSUPP)
            if get_raw(target).ok().flatten().as_deref() == Some(strip_label_nul(value)) =>
        {
            Ok(())
        }
        _ => Err(Error::io("setxattr", target.path(), err)),
    }
}

fn parse_label(raw: Option<Vec<u8>>) -> Result<Option<SecurityContext>> {
    raw.map(|b| SecurityContext::from_bytes(&b)).transpose()
}

/// A file's label; `None` when it has none.
///
/// ```no_run
/// use kvmsec_selinux::{Symlink, file_label};
/// let label = file_label("/var/lib/libvirt/images/guest.qcow2".as_ref(), Symlink::Follow)?;
/// println!("{label:?}");
/// # Ok::<(), kvmsec_selinux::Error>(())
/// ```
pub fn file_label(path: &Path, symlink: Symlink) -> Result<Option<SecurityContext>> {
    parse_label(file_label_raw(path, symlink)?)
}

/// A file's label as bytes with one trailing NUL dropped (for labels that may not parse,
/// such as an original label to restore verbatim).
pub fn file_label_raw(path: &Path, symlink: Symlink) -> Result<Option<Vec<u8>>> {
    get_raw(&Target::Path(path, symlink))
}

/// Set a file's label (written with a trailing NUL).
pub fn set_file_label(path: &Path, symlink: Symlink, context: &SecurityContext) -> Result<()> {
    set_raw(&Target::Path(path, symlink), &context.to_kernel_bytes())
}

/// Set a file's label to `value` exactly as given (no NUL added).
pub fn set_file_label_raw(path: &Path, symlink: Symlink, value: &[u8]) -> Result<()> {
    set_raw(&Target::Path(path, symlink), value)
}

/// Remove a file's label attribute (an SELinux kernel refuses this with `EACCES`).
pub fn remove_file_label(path: &Path, symlink: Symlink) -> Result<()> {
    let c = cpath(path)?;
    let rc = match symlink {
        // SAFETY: `c` and the name are NUL-terminated.
        Symlink::Follow => unsafe { libc::removexattr(c.as_ptr(), name_ptr()) },
        // SAFETY: as above.
        Symlink::NoFollow => unsafe { libc::lremovexattr(c.as_ptr(), name_ptr()) },
    };
    if rc < 0 {
        let e = io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::ENODATA) {
            return Ok(());
        }
        return Err(Error::io("removexattr", path, e));
    }
    Ok(())
}

/// The label of an open file; `None` when it has none. `path` only names it in errors.
pub fn fd_label(fd: impl AsFd, path: &Path) -> Result<Option<SecurityContext>> {
    parse_label(fd_label_raw(fd, path)?)
}

/// The raw label of an open file (one trailing NUL dropped).
pub fn fd_label_raw(fd: impl AsFd, path: &Path) -> Result<Option<Vec<u8>>> {
    get_raw(&Target::Fd(fd.as_fd().as_raw_fd(), path))
}

/// Set the label of an open file. `path` only names it in errors.
pub fn set_fd_label(fd: impl AsFd, path: &Path, context: &SecurityContext) -> Result<()> {
    set_raw(
        &Target::Fd(fd.as_fd().as_raw_fd(), path),
        &context.to_kernel_bytes(),
    )
}

/// Strip one NUL: exposed for callers that read the attribute themselves.
pub fn strip_label_nul(value: &[u8]) -> &[u8] {
    value.strip_suffix(b"\0").unwrap_or(value)
}

/// Set the label of an open file to `value` exactly as given (no NUL added).
pub fn set_fd_label_raw(fd: impl AsFd, path: &Path, value: &[u8]) -> Result<()> {
    set_raw(&Target::Fd(fd.as_fd().as_raw_fd(), path), value)
}

/// The attribute value exactly as stored (no NUL stripped), for byte-exact restores.
pub(crate) fn file_label_exact(path: &Path, symlink: Symlink) -> Result<Option<Vec<u8>>> {
    let target = Target::Path(path, symlink);
    let mut size = 256;
    loop {
        let mut buf = vec![0u8; size];
        match get_raw_into(&target, &mut buf) {
            Ok(n) => {
                buf.truncate(n);
                return Ok(Some(buf));
            }
            Err(e) if e.raw_os_error() == Some(libc::ERANGE) && size < XATTR_SIZE_MAX => {
                size = XATTR_SIZE_MAX;
            }
            Err(e) if e.raw_os_error() == Some(libc::ENODATA) => return Ok(None),
            Err(e) => return Err(Error::io("getxattr", path, e)),
        }
    }
}

#[cfg(test)]
mod tests;

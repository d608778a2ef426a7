//! Small helpers for reading and writing kernel files under a root directory; every error
//! names the path and the operation.

use std::fs::OpenOptions;
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The largest kernel file this crate reads (selinuxfs and procattr files are at most a
/// page; mountinfo can be long on busy hosts).
pub(crate) const MAX_READ: u64 = 4 * 1024 * 1024;

/// Join an absolute host path (`/sys/fs/selinux`) under `root`.
pub(crate) fn under(root: &Path, abs: impl AsRef<Path>) -> PathBuf {
    let abs = abs.as_ref();
    let rel = abs.strip_prefix("/").unwrap_or(abs);
    root.join(rel)
}

/// Read a whole regular file, at most `limit` bytes.
///
/// The file is opened with `O_NONBLOCK | O_NOCTTY` and anything but a regular file is
/// refused ([`Error::InvalidValue`]) before it is read, so a FIFO or a terminal planted where
/// a config or kernel file is expected cannot block the caller forever.
pub(crate) fn read_limited(path: &Path, limit: u64) -> Result<Vec<u8>> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(|e| Error::io("open", path, e))?;
    let kind = file
        .metadata()
        .map_err(|e| Error::io("stat", path, e))?
        .file_type();
    if !kind.is_file() {
        return Err(Error::InvalidValue {
            path: path.to_path_buf(),
            value: file_kind_name(kind).to_owned(),
            expected: "a regular file",
        });
    }
    let mut buf = Vec::new();
    file.take(limit)
        .read_to_end(&mut buf)
        .map_err(|e| Error::io("read", path, e))?;
    Ok(buf)
}

/// What a non-regular file is, for error messages.
fn file_kind_name(kind: std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if kind.is_dir() {
        "a directory"
    } else if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_socket() {
        "a socket"
    } else if kind.is_char_device() {
        "a character device"
    } else if kind.is_block_device() {
        "a block device"
    } else {
        "not a regular file"
    }
}

/// Read a file; `None` when it does not exist.
pub(crate) fn read_optional(path: &Path, limit: u64) -> Result<Option<Vec<u8>>> {
    match read_limited(path, limit) {
        Ok(b) => Ok(Some(b)),
        Err(Error::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Write `data` to an existing kernel file in one `write` call (open write-only, truncate).
pub(crate) fn write_kernel_file(path: &Path, data: &[u8]) -> Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(path)
        .map_err(|e| Error::io("open", path, e))?;
    let n = file.write(data).map_err(|e| Error::io("write", path, e))?;
    if n != data.len() {
        return Err(Error::io_plain(
            "write",
            path,
            io::Error::new(io::ErrorKind::WriteZero, "short write to a kernel file"),
        ));
    }
    Ok(())
}

/// Interpret text like C's `sscanf("%d")`: optional leading whitespace, optional sign,
/// decimal digits; anything after them is ignored.
pub(crate) fn scan_int(text: &[u8]) -> Option<i64> {
    let s = std::str::from_utf8(text).ok()?.trim_start();
    let (neg, rest) = match s.as_bytes().first() {
        Some(b'-') => (true, s.get(1..)?),
        Some(b'+') => (false, s.get(1..)?),
        _ => (false, s),
    };
    let digits = rest.get(..rest.bytes().take_while(u8::is_ascii_digit).count())?;
    if digits.is_empty() {
        return None;
    }
    let v: i64 = digits.parse().ok()?;
    Some(if neg { -v } else { v })
}

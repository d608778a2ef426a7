//! Host access helpers: every read and write of procfs and cgroupfs goes through these, so
//! every error names its path and operation.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Largest control or proc file this crate reads (cgroupfs files are at most a page or a few;
/// `memory.stat`, `io.stat` and `/proc/*/mountinfo` on big hosts stay well below this).
const MAX_READ: u64 = 16 * 1024 * 1024;

pub(crate) fn io_err(op: &'static str, path: &Path, source: io::Error) -> Error {
    Error::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// Read a whole text file (lossily decoded: kernel files are ASCII, paths may not be).
pub(crate) fn read_string(path: &Path) -> Result<String> {
    use std::io::Read;
    let file = fs::File::open(path).map_err(|e| io_err("open", path, e))?;
    let mut buf = Vec::new();
    file.take(MAX_READ)
        .read_to_end(&mut buf)
        .map_err(|e| io_err("read", path, e))?;
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

/// Read a file that may be absent: `Ok(None)` when it does not exist.
pub(crate) fn read_optional(path: &Path) -> Result<Option<String>> {
    match read_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(Error::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Raw bytes of a file (for NUL-separated `/proc/<pid>/cmdline`).
pub(crate) fn read_bytes(path: &Path) -> io::Result<Vec<u8>> {
    use std::io::Read;
    let file = fs::File::open(path)?;
    let mut buf = Vec::new();
    file.take(MAX_READ).read_to_end(&mut buf)?;
    Ok(buf)
}

/// Write `value` to a control file in one `write(2)`; returns the raw `io::Error` so callers can
/// map well-known errno values to explanations.
pub(crate) fn write_raw(path: &Path, value: &str) -> io::Result<()> {
    let mut file = fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(path)?;
    let n = file.write(value.as_bytes())?;
    if n != value.len() {
        return Err(io::Error::new(
            io::ErrorKind::WriteZero,
            format!("short write: {n} of {} bytes", value.len()),
        ));
    }
    Ok(())
}

/// Write a value; a failure of the write itself is a [`Error::KernelRefused`], a failure to
/// open the file an [`Error::Io`].
pub(crate) fn write_value(path: &Path, value: &str) -> Result<()> {
    let mut file = fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(path)
        .map_err(|e| io_err("open for writing", path, e))?;
    match file.write(value.as_bytes()) {
        Ok(n) if n == value.len() => Ok(()),
        Ok(n) => Err(Error::KernelRefused {
            path: path.to_path_buf(),
            value: value.to_string(),
            source: io::Error::new(io::ErrorKind::WriteZero, format!("short write: {n}")),
        }),
        Err(source) => Err(Error::KernelRefused {
            path: path.to_path_buf(),
            value: value.to_string(),
            source,
        }),
    }
}

/// Names of the subdirectories of `dir`, sorted.
pub(crate) fn subdirs(dir: &Path) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let rd = fs::read_dir(dir).map_err(|e| io_err("list", dir, e))?;
    for entry in rd {
        let entry = entry.map_err(|e| io_err("list", dir, e))?;
        let ft = entry
            .file_type()
            .map_err(|e| io_err("stat", &entry.path(), e))?;
        if ft.is_dir() {
            out.push(entry.file_name().to_string_lossy().into_owned());
        }
    }
    out.sort();
    Ok(out)
}

/// `root` joined with an absolute host path (`/proc/self/mountinfo` under `/tmp/fixture`).
pub(crate) fn under_root(root: &Path, abs: &Path) -> PathBuf {
    let rel = abs.strip_prefix("/").unwrap_or(abs);
    if rel.as_os_str().is_empty() {
        root.to_path_buf()
    } else {
        root.join(rel)
    }
}

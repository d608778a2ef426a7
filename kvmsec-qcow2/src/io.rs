//! File access helpers that attach the path and operation to every error (host access layer).

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

use crate::{Error, Result};

pub(crate) fn io_err(op: &'static str, path: &Path, source: std::io::Error) -> Error {
    Error::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// Reads `buf.len()` bytes at `offset`; bytes past the end of the file read as zeros.
pub(crate) fn pread_zero_fill(file: &File, path: &Path, buf: &mut [u8], offset: u64) -> Result<()> {
    let mut done = 0;
    while done < buf.len() {
        match file.read_at(&mut buf[done..], offset + done as u64) {
            Ok(0) => {
                buf[done..].fill(0);
                return Ok(());
            }
            Ok(n) => done += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(io_err("read", path, e)),
        }
    }
    Ok(())
}

/// Reads exactly `buf.len()` bytes at `offset`; a short file is [`Error::Truncated`].
pub(crate) fn pread_exact(
    file: &File,
    path: &Path,
    buf: &mut [u8],
    offset: u64,
    what: &'static str,
) -> Result<()> {
    file.read_exact_at(buf, offset).map_err(|e| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            Error::Truncated {
                what,
                needed: offset + buf.len() as u64,
                file_len: file.metadata().map(|m| m.len()).unwrap_or(0),
            }
        } else {
            io_err("read", path, e)
        }
    })
}

pub(crate) fn pwrite(file: &File, path: &Path, buf: &[u8], offset: u64) -> Result<()> {
    file.write_all_at(buf, offset)
        .map_err(|e| io_err("write", path, e))
}

pub(crate) fn file_len(file: &File, path: &Path) -> Result<u64> {
    file.metadata()
        .map(|m| m.len())
        .map_err(|e| io_err("stat", path, e))
}

pub(crate) fn datasync(file: &File, path: &Path) -> Result<()> {
    file.sync_data().map_err(|e| io_err("sync", path, e))
}

/// Opens an image file (or a backing file named by an image) without blocking: a FIFO or a
/// terminal named by a hostile image must not hang `open(2)`. Only regular files and block
/// devices are accepted; anything else is [`Error::Unsupported`].
pub(crate) fn open_image(path: &Path, write: bool) -> Result<File> {
    use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
    use std::os::unix::io::AsRawFd;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(write)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(|e| io_err("open", path, e))?;
    let ft = file
        .metadata()
        .map_err(|e| io_err("stat", path, e))?
        .file_type();
    if !(ft.is_file() || ft.is_block_device()) {
        let kind = if ft.is_fifo() {
            "a FIFO"
        } else if ft.is_char_device() {
            "a character device"
        } else if ft.is_dir() {
            "a directory"
        } else if ft.is_socket() {
            "a socket"
        } else {
            "not a regular file"
        };
        return Err(Error::Unsupported {
            what: format!(
                "{} is {kind} (only regular files and block devices)",
                path.display()
            ),
        });
    }
    let fd = file.as_raw_fd();
    // SAFETY: `fd` is a valid open descriptor owned by `file` for the duration of both calls;
    // F_GETFL/F_SETFL take no pointers.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 {
        return Err(io_err("fcntl", path, std::io::Error::last_os_error()));
    }
    // SAFETY: as above.
    if unsafe { libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK) } < 0 {
        return Err(io_err("fcntl", path, std::io::Error::last_os_error()));
    }
    Ok(file)
}

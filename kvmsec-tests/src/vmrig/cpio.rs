//! A writer for the "newc" cpio archive format, the format of a Linux initramfs.
//!
//! Every member is a 110-byte ASCII header (the magic `070701` and thirteen
//! 8-digit hexadecimal fields), the member's name with a terminating NUL, padding
//! to a multiple of four bytes, the member's data and again padding to four
//! bytes. The archive ends with a member named `TRAILER!!!`. The kernel unpacks
//! such an archive uncompressed, which saves the guest the time of decompressing
//! it under emulation.
//!
//! # References
//! - Linux `Documentation/driver-api/early-userspace/buffer-format.rst`
//! - Linux `init/initramfs.c` (the unpacker)

use std::io::{self, Write};

/// File type bits of `st_mode` (octal, as in `<sys/stat.h>`).
pub const S_IFDIR: u32 = 0o040_000;
/// Regular file type bits.
pub const S_IFREG: u32 = 0o100_000;
/// Symbolic link type bits.
pub const S_IFLNK: u32 = 0o120_000;
/// Character device type bits.
pub const S_IFCHR: u32 = 0o020_000;

const MAGIC: &[u8; 6] = b"070701";
const TRAILER: &str = "TRAILER!!!";

/// One member's metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// `st_mode`: file type bits and permission bits.
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Modification time, seconds since the epoch.
    pub mtime: u32,
    /// Device number (major, minor) for character and block devices.
    pub rdev: (u32, u32),
}

impl Header {
    /// A root-owned member of the given mode with time 0 and no device number.
    pub fn new(mode: u32) -> Self {
        Header {
            mode,
            uid: 0,
            gid: 0,
            mtime: 0,
            rdev: (0, 0),
        }
    }
}

/// Streams a newc archive to `W`.
///
/// Members are written in the order given; a directory must come before its
/// contents. Call [`Writer::finish`] to write the trailer.
#[derive(Debug)]
pub struct Writer<W: Write> {
    out: W,
    written: u64,
    next_ino: u32,
}

impl<W: Write> Writer<W> {
    /// Starts an archive.
    pub fn new(out: W) -> Self {
        Writer {
            out,
            written: 0,
            next_ino: 1,
        }
    }

    /// Appends one member. `name` is the path inside the archive without a
    /// leading `/`; `data` is the file content or, for a symbolic link, the
    /// link target.
    ///
    /// Fails with [`io::ErrorKind::InvalidInput`] when the name is empty or
    /// contains a NUL byte, or the data does not fit the format's 32-bit size
    /// field.
    pub fn append(&mut self, name: &str, header: Header, data: &[u8]) -> io::Result<()> {
        if name.is_empty() || name.contains('\0') || name.starts_with('/') {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("cpio member name {name:?} must be relative, non-empty and NUL-free"),
            ));
        }
        let ino = self.next_ino;
        self.next_ino = self.next_ino.wrapping_add(1);
        let nlink = if header.mode & 0o170_000 == S_IFDIR {
            2
        } else {
            1
        };
        self.member(name, ino, nlink, header, data)
    }

    /// Writes the trailer and returns the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.member(TRAILER, 0, 1, Header::new(0), &[])?;
        self.out.flush()?;
        Ok(self.out)
    }

    fn member(
        &mut self,
        name: &str,
        ino: u32,
        nlink: u32,
        header: Header,
        data: &[u8],
    ) -> io::Result<()> {
        let size = u32::try_from(data.len()).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("cpio member {name:?} is larger than 4 GiB"),
            )
        })?;
        let name_size = u32::try_from(name.len() + 1).map_err(|_| {
            io::Error::new(io::ErrorKind::InvalidInput, "cpio member name too long")
        })?;
        let fields = [
            ino,
            header.mode,
            header.uid,
            header.gid,
            nlink,
            header.mtime,
            size,
            0, // devmajor of the file system: irrelevant for an initramfs
            0, // devminor
            header.rdev.0,
            header.rdev.1,
            name_size,
            0, // checksum: only used by the "070702" variant
        ];
        let mut head = Vec::with_capacity(110 + name.len() + 4);
        head.extend_from_slice(MAGIC);
        for field in fields {
            head.extend_from_slice(format!("{field:08x}").as_bytes());
        }
        head.extend_from_slice(name.as_bytes());
        head.push(0);
        self.put(&head)?;
        self.pad()?;
        self.put(data)?;
        self.pad()
    }

    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.out.write_all(bytes)?;
        self.written += bytes.len() as u64;
        Ok(())
    }

    fn pad(&mut self) -> io::Result<()> {
        let rem = (self.written % 4) as usize;
        if rem != 0 {
            self.put(&[0u8; 3][..4 - rem])?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A member read back by [`parse`].
    #[derive(Debug, PartialEq)]
    struct Member {
        name: String,
        mode: u32,
        nlink: u32,
        rdev: (u32, u32),
        data: Vec<u8>,
    }

    fn hex(field: &[u8]) -> u32 {
        u32::from_str_radix(std::str::from_utf8(field).unwrap(), 16).unwrap()
    }

    fn align(n: usize) -> usize {
        (n + 3) & !3
    }

    /// A strict reader of the same format, independent of the writer.
    fn parse(mut buf: &[u8]) -> Vec<Member> {
        let mut members = Vec::new();
        let total = buf.len();
        loop {
            let offset = total - buf.len();
            assert_eq!(offset % 4, 0, "header at unaligned offset {offset}");
            assert_eq!(&buf[..6], b"070701");
            let field = |i: usize| hex(&buf[6 + 8 * i..14 + 8 * i]);
            let (mode, nlink, size) = (field(1), field(4), field(6) as usize);
            let rdev = (field(9), field(10));
            let name_size = field(11) as usize;
            assert_eq!(field(12), 0, "checksum field");
            let name_end = 110 + name_size;
            assert_eq!(buf[name_end - 1], 0, "name must end with NUL");
            let name = String::from_utf8(buf[110..name_end - 1].to_vec()).unwrap();
            let data_start = align(offset + name_end) - offset;
            let data = buf[data_start..data_start + size].to_vec();
            let next = align(offset + data_start + size) - offset;
            assert!(buf[data_start + size..next].iter().all(|&b| b == 0));
            buf = &buf[next..];
            if name == TRAILER {
                assert!(buf.is_empty(), "bytes after the trailer");
                return members;
            }
            members.push(Member {
                name,
                mode,
                nlink,
                rdev,
                data,
            });
        }
    }

    #[test]
    fn members_round_trip_with_alignment() {
        let mut w = Writer::new(Vec::new());
        w.append("bin", Header::new(S_IFDIR | 0o755), &[]).unwrap();
        w.append("bin/x", Header::new(S_IFREG | 0o755), b"abcde")
            .unwrap();
        w.append("bin/sh", Header::new(S_IFLNK | 0o777), b"x")
            .unwrap();
        let mut console = Header::new(S_IFCHR | 0o600);
        console.rdev = (5, 1);
        w.append("dev-console", console, &[]).unwrap();
        // Name lengths 1..=4 exercise every padding amount.
        for name in ["a", "ab", "abc", "abcd"] {
            w.append(name, Header::new(S_IFREG | 0o644), name.as_bytes())
                .unwrap();
        }
        let bytes = w.finish().unwrap();
        assert_eq!(bytes.len() % 4, 0);

        let members = parse(&bytes);
        assert_eq!(members.len(), 8);
        assert_eq!(members[0].name, "bin");
        assert_eq!(members[0].mode, S_IFDIR | 0o755);
        assert_eq!(members[0].nlink, 2);
        assert_eq!(members[1].data, b"abcde");
        assert_eq!(members[1].nlink, 1);
        assert_eq!(members[2].mode & 0o170_000, S_IFLNK);
        assert_eq!(members[2].data, b"x");
        assert_eq!(members[3].rdev, (5, 1));
        for (m, name) in members[4..].iter().zip(["a", "ab", "abc", "abcd"]) {
            assert_eq!(m.name, name);
            assert_eq!(m.data, name.as_bytes());
        }
    }

    #[test]
    fn header_is_110_bytes_of_ascii_hex() {
        let mut w = Writer::new(Vec::new());
        w.append("f", Header::new(S_IFREG | 0o644), b"").unwrap();
        let bytes = w.finish().unwrap();
        assert!(bytes[..110].iter().all(u8::is_ascii_hexdigit));
        assert_eq!(&bytes[110..112], b"f\0");
        // ino 1, mode 0100644, name size 2
        assert_eq!(&bytes[6..14], b"00000001");
        assert_eq!(&bytes[14..22], b"000081a4");
        assert_eq!(&bytes[94..102], b"00000002");
    }

    #[test]
    fn bad_names_are_rejected() {
        let mut w = Writer::new(Vec::new());
        for name in ["", "/abs", "a\0b"] {
            let err = w.append(name, Header::new(S_IFREG), b"").unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{name:?}");
        }
    }
}

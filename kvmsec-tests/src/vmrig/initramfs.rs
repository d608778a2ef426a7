//! An in-memory initramfs tree, written out as an uncompressed newc archive.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Write};
use std::path::{Component, Path, PathBuf};

use super::Error;
use super::cpio::{self, Header};

/// What one path of the tree is.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Node {
    Dir { mode: u32 },
    File { data: FileData, mode: u32 },
    Symlink { target: String },
    CharDevice { major: u32, minor: u32, mode: u32 },
}

/// Contents of a regular file: bytes we have, or a host file read on write.
#[derive(Debug, Clone, PartialEq, Eq)]
enum FileData {
    Bytes(Vec<u8>),
    Host(PathBuf),
}

/// A file tree for the guest's root file system.
///
/// Paths are absolute guest paths (`/bin/busybox`); missing parent
/// directories are created with mode 0755. Adding a path twice replaces the
/// first entry. [`Initramfs::write`] emits directories before their contents.
#[derive(Debug, Clone, Default)]
pub struct Initramfs {
    nodes: BTreeMap<PathBuf, Node>,
}

impl Initramfs {
    /// An empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a directory (and its parents).
    pub fn dir(&mut self, path: impl AsRef<Path>, mode: u32) -> Result<&mut Self, Error> {
        let path = self.prepare(path.as_ref())?;
        self.nodes.insert(path, Node::Dir { mode });
        Ok(self)
    }

    /// Adds a regular file with the given contents.
    pub fn bytes(
        &mut self,
        path: impl AsRef<Path>,
        data: impl Into<Vec<u8>>,
        mode: u32,
    ) -> Result<&mut Self, Error> {
        let path = self.prepare(path.as_ref())?;
        let data = FileData::Bytes(data.into());
        self.nodes.insert(path, Node::File { data, mode });
        Ok(self)
    }

    /// Adds a regular file whose contents are read from `host` (following
    /// symbolic links) when the archive is written.
    pub fn host_file(
        &mut self,
        path: impl AsRef<Path>,
        host: impl AsRef<Path>,
        mode: u32,
    ) -> Result<&mut Self, Error> {
        let host = host.as_ref();
        if !host.is_file() {
            return Err(Error::Io {
                what: format!("initramfs source {}", host.display()),
                source: io::Error::from(io::ErrorKind::NotFound),
            });
        }
        let path = self.prepare(path.as_ref())?;
        let data = FileData::Host(host.to_path_buf());
        self.nodes.insert(path, Node::File { data, mode });
        Ok(self)
    }

    /// Adds a symbolic link.
    pub fn symlink(
        &mut self,
        path: impl AsRef<Path>,
        target: impl Into<String>,
    ) -> Result<&mut Self, Error> {
        let path = self.prepare(path.as_ref())?;
        let target = target.into();
        self.nodes.insert(path, Node::Symlink { target });
        Ok(self)
    }

    /// Adds a character device node (for example `/dev/console`, 5:1, which
    /// the kernel opens for `/init` before any `devtmpfs` is mounted).
    pub fn char_device(
        &mut self,
        path: impl AsRef<Path>,
        major: u32,
        minor: u32,
        mode: u32,
    ) -> Result<&mut Self, Error> {
        let path = self.prepare(path.as_ref())?;
        let node = Node::CharDevice { major, minor, mode };
        self.nodes.insert(path, node);
        Ok(self)
    }

    /// Whether a path is present.
    pub fn contains(&self, path: impl AsRef<Path>) -> bool {
        self.nodes.contains_key(path.as_ref())
    }

    /// Writes the tree as an uncompressed newc archive.
    pub fn write<W: Write>(&self, out: W) -> Result<W, Error> {
        let mut w = cpio::Writer::new(out);
        for (path, node) in &self.nodes {
            // The tree holds only absolute, normalised paths (see `prepare`).
            let name = path.to_string_lossy();
            let name = name.trim_start_matches('/');
            let what = || format!("writing initramfs member /{name}");
            match node {
                Node::Dir { mode } => w.append(name, Header::new(cpio::S_IFDIR | mode), &[]),
                Node::File { data, mode } => {
                    let header = Header::new(cpio::S_IFREG | mode);
                    match data {
                        FileData::Bytes(bytes) => w.append(name, header, bytes),
                        FileData::Host(host) => {
                            let bytes = fs::read(host).map_err(Error::io(format!(
                                "reading {} for the initramfs",
                                host.display()
                            )))?;
                            w.append(name, header, &bytes)
                        }
                    }
                }
                Node::Symlink { target } => {
                    w.append(name, Header::new(cpio::S_IFLNK | 0o777), target.as_bytes())
                }
                Node::CharDevice { major, minor, mode } => {
                    let mut header = Header::new(cpio::S_IFCHR | mode);
                    header.rdev = (*major, *minor);
                    w.append(name, header, &[])
                }
            }
            .map_err(Error::io(what()))?;
        }
        w.finish().map_err(Error::io("finishing the initramfs"))
    }

    /// Checks that `path` is absolute and plain, and adds its missing parents.
    fn prepare(&mut self, path: &Path) -> Result<PathBuf, Error> {
        let mut clean = PathBuf::from("/");
        let mut plain = path.is_absolute();
        for component in path.components() {
            match component {
                Component::RootDir => {}
                Component::Normal(part) => clean.push(part),
                _ => plain = false,
            }
        }
        if !plain || clean == Path::new("/") {
            return Err(Error::Invalid(format!(
                "initramfs path {} must be absolute, without `.`/`..`, and not `/`",
                path.display()
            )));
        }
        let mut parent = clean.parent();
        while let Some(dir) = parent {
            if dir == Path::new("/") {
                break;
            }
            self.nodes
                .entry(dir.to_path_buf())
                .or_insert(Node::Dir { mode: 0o755 });
            parent = dir.parent();
        }
        Ok(clean)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parents_come_first_and_paths_are_checked() {
        let mut fs = Initramfs::new();
        fs.bytes("/a/b/c", "x", 0o644).unwrap();
        fs.symlink("/a/l", "b/c").unwrap();
        assert!(fs.contains("/a") && fs.contains("/a/b"));
        let bytes = fs.write(Vec::new()).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        let a = text.find("a\0").unwrap();
        let ab = text.find("a/b\0").unwrap();
        let abc = text.find("a/b/c\0").unwrap();
        assert!(a < ab && ab < abc);
        for bad in ["relative", "/a/../b", "/", "./a"] {
            assert!(
                matches!(fs.bytes(bad, "", 0o644), Err(Error::Invalid(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn missing_host_file_is_an_error() {
        let mut fs = Initramfs::new();
        let err = fs
            .host_file("/x", "/nonexistent/kvmsec-vmrig", 0o644)
            .unwrap_err();
        assert!(err.to_string().contains("/nonexistent/kvmsec-vmrig"));
    }
}

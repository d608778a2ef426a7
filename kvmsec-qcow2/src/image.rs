//! An open qcow2 image: guest reads and writes, allocation, refcounts, backing chains
//! (host access layer).
//!
//! # References
//! - QEMU, `docs/interop/qcow2.rst` (cluster mapping, refcounts, backing files, encryption).

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::compress::{Codec, decompress};
use crate::crypto::{Passphrase, SectorCipher};
use crate::header::{
    CryptMethod, EXT_BACKING_FORMAT, Header, INCOMPAT_CORRUPT, INCOMPAT_DIRTY, MAGIC,
};
use crate::io::{datasync, file_len, io_err, pread_exact, pread_zero_fill, pwrite};
use crate::table::{
    ClusterMapping, L1E_OFFSET_MASK, OFLAG_COPIED, REFT_OFFSET_MASK, Snapshot, data_entry,
    decode_l2, get_refcount, parse_snapshots, set_refcount16,
};
use crate::{Error, Result};

/// Limits applied when opening images, so that a hostile image cannot make the crate allocate
/// or compute without bound. The defaults accept everything `qemu-img` creates.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Limits {
    /// Largest L1 table in bytes (QEMU: 32 MiB).
    pub max_l1_bytes: u64,
    /// Largest refcount table in bytes (QEMU: 8 MiB).
    pub max_refcount_table_bytes: u64,
    /// Most images in a backing chain, the top image included.
    pub max_chain_depth: u32,
    /// Memory for cached L2 tables, in bytes.
    pub l2_cache_bytes: u64,
    /// Most PBKDF2 iterations a LUKS key slot or digest may ask for.
    pub max_pbkdf2_iterations: u32,
    /// Largest LUKS header region in bytes (key material included).
    pub max_luks_header_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_l1_bytes: 32 << 20,
            max_refcount_table_bytes: 8 << 20,
            max_chain_depth: 32,
            l2_cache_bytes: 32 << 20,
            max_pbkdf2_iterations: 20_000_000,
            max_luks_header_bytes: 64 << 20,
        }
    }
}

/// The format of a backing file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub enum BackingFormat {
    /// A raw disk image.
    Raw,
    /// A qcow2 image.
    Qcow2,
}

impl BackingFormat {
    /// The name QEMU uses (`"raw"`, `"qcow2"`).
    pub fn name(self) -> &'static str {
        match self {
            BackingFormat::Raw => "raw",
            BackingFormat::Qcow2 => "qcow2",
        }
    }
}

/// A source of passphrases for the images of a chain, asked once per encrypted image with that
/// image's path.
pub type PassphraseSource<'a> = Box<dyn FnMut(&Path) -> Option<Passphrase> + 'a>;

/// How to open an image (builder).
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// # let path = dir.path().join("a.qcow2");
/// # kvmsec_qcow2::create(&path, &kvmsec_qcow2::CreateOptions::new(1 << 20))?;
/// use kvmsec_qcow2::{Limits, OpenOptions};
///
/// let img = OpenOptions::new()
///     .write(true)
///     .limits(Limits { max_chain_depth: 4, ..Limits::default() })
///     .open(&path)?;
/// assert_eq!(img.virtual_size(), 1 << 20);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct OpenOptions<'a> {
    write: bool,
    limits: Limits,
    passphrases: Option<PassphraseSource<'a>>,
    legacy_aes_write: bool,
    /// An already unlocked cipher for the top image (set by `create`).
    pub(crate) top_crypt: Option<Crypt>,
}

impl std::fmt::Debug for OpenOptions<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenOptions")
            .field("write", &self.write)
            .field("limits", &self.limits)
            .field(
                "passphrases",
                &self.passphrases.as_ref().map(|_| "<callback>"),
            )
            .field("legacy_aes_write", &self.legacy_aes_write)
            .finish()
    }
}

impl Default for OpenOptions<'_> {
    fn default() -> Self {
        Self::new()
    }
}

impl<'a> OpenOptions<'a> {
    /// Read-only, default limits, no passphrases.
    pub fn new() -> Self {
        OpenOptions {
            write: false,
            limits: Limits::default(),
            passphrases: None,
            legacy_aes_write: false,
            top_crypt: None,
        }
    }

    /// Open the top image for writing (backing files are always read-only).
    pub fn write(mut self, write: bool) -> Self {
        self.write = write;
        self
    }

    /// Limits for hostile images.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// One passphrase for every encrypted image in the chain.
    pub fn passphrase(mut self, passphrase: Passphrase) -> Self {
        self.passphrases = Some(Box::new(move |_: &Path| Some(passphrase.clone())));
        self
    }

    /// A callback asked for the passphrase of each encrypted image in the chain, by path
    /// (an overlay and its backing file may have different passphrases).
    pub fn passphrases(mut self, source: impl FnMut(&Path) -> Option<Passphrase> + 'a) -> Self {
        self.passphrases = Some(Box::new(source));
        self
    }

    /// Allows writing to a legacy AES image. The legacy method is broken (see
    /// [`crypto::legacy_aes_cipher`](crate::crypto::legacy_aes_cipher)); without this opt-in a
    /// writable open of such an image is refused. Convert it to LUKS instead.
    pub fn allow_legacy_aes_write(mut self, allow: bool) -> Self {
        self.legacy_aes_write = allow;
        self
    }

    /// Opens the image at `path` and its backing chain.
    pub fn open(mut self, path: impl AsRef<Path>) -> Result<Image> {
        let mut seen = HashSet::new();
        let write = self.write;
        Image::open_chain(path.as_ref(), &mut self, &mut seen, 1, write)
    }
}

/// The cipher of an encrypted image and how it numbers sectors.
pub(crate) struct Crypt {
    pub(crate) cipher: SectorCipher,
    /// LUKS numbers sectors by host offset; legacy AES by guest offset.
    pub(crate) physical: bool,
}

impl Crypt {
    pub(crate) fn sector(&self, host: u64, guest: u64) -> u64 {
        if self.physical {
            host / 512
        } else {
            guest / 512
        }
    }
}

/// A backing file.
enum Backing {
    Raw {
        file: File,
        path: PathBuf,
        size: u64,
    },
    Qcow2(Box<Image>),
}

impl Backing {
    fn read_at(&mut self, buf: &mut [u8], off: u64) -> Result<()> {
        let size = match self {
            Backing::Raw { size, .. } => *size,
            Backing::Qcow2(img) => img.virtual_size(),
        };
        let avail = size.saturating_sub(off).min(buf.len() as u64) as usize;
        let (head, tail) = buf.split_at_mut(avail);
        tail.fill(0);
        if head.is_empty() {
            return Ok(());
        }
        match self {
            Backing::Raw { file, path, .. } => pread_zero_fill(file, path, head, off),
            Backing::Qcow2(img) => img.read_at(head, off),
        }
    }
}

/// Host ranges holding metadata, for overlap checks before every data write.
#[derive(Default)]
struct Metadata {
    fixed: Vec<(u64, u64, &'static str)>,
    l2: HashSet<u64>,
    refblocks: HashSet<u64>,
}

impl Metadata {
    fn overlap(&self, host: u64, len: u64, cluster_size: u64) -> Option<&'static str> {
        let end = host.saturating_add(len);
        for &(s, e, what) in &self.fixed {
            if host < e && s < end {
                return Some(what);
            }
        }
        let mut c = host & !(cluster_size - 1);
        while c < end {
            if self.l2.contains(&c) {
                return Some("an L2 table");
            }
            if self.refblocks.contains(&c) {
                return Some("a refcount block");
            }
            c += cluster_size;
        }
        None
    }
}

/// Refcount state used by allocation.
struct Refcounts {
    table: Vec<u64>,
    blocks: HashMap<u64, Vec<u8>>,
    /// Next cluster index to hand out (allocation is append-only).
    next_free: u64,
    /// While the refcount table is being replaced, new entries are kept in memory only.
    table_pending: bool,
}

/// An open qcow2 image (and its backing chain).
///
/// Guest data is read and written with [`read_at`](Image::read_at) /
/// [`write_at`](Image::write_at) or through [`Read`], [`Write`] and [`Seek`]. Every write is
/// ordered so the file stays consistent if the process dies at any point: refcounts are raised
/// before a new cluster is referenced, data is written before the L2 entry that points to it,
/// an L2 table before the L1 entry. A crash can leak clusters (as in QEMU) but never corrupts.
/// [`flush`](Image::flush) makes everything durable (`fdatasync`).
///
/// The ordering above holds for the file as the kernel sees it, so it protects against the
/// process dying (crash, SIGKILL). Between two `flush` calls no barrier is issued, so after a
/// power failure the disk may have kept a later metadata write without an earlier one; what
/// was written before the last completed `flush` is always intact. Call `flush` as often as
/// the guest flushes its own cache.
///
/// ```
/// use kvmsec_qcow2::{create, CreateOptions, Image};
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("disk.qcow2");
/// let mut img = create(&path, &CreateOptions::new(64 << 20))?;
/// img.write_at(b"hello", 1 << 20)?;
/// img.flush()?;
/// let mut buf = [0u8; 5];
/// Image::open(&path)?.read_at(&mut buf, 1 << 20)?;
/// assert_eq!(&buf, b"hello");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Image {
    path: PathBuf,
    file: File,
    file_len: u64,
    header: Header,
    cluster_size: u64,
    l2_entries: u64,
    l1: Vec<u64>,
    l2_cache: HashMap<u64, Vec<u64>>,
    l2_cache_max: usize,
    rc: Refcounts,
    meta: Metadata,
    backing: Option<Box<Backing>>,
    pub(crate) crypt: Option<Crypt>,
    writable: bool,
    pos: u64,
    snapshots: Vec<Snapshot>,
    zcache: Option<(u64, Vec<u8>)>,
    scratch: Vec<u8>,
}

impl std::fmt::Debug for Image {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Image")
            .field("path", &self.path)
            .field("virtual_size", &self.header.size)
            .field("cluster_size", &self.cluster_size)
            .field("crypt_method", &self.header.crypt_method)
            .field("writable", &self.writable)
            .finish_non_exhaustive()
    }
}

/// Reads the start of a file (up to 2 MiB, the largest cluster) for header parsing.
pub(crate) fn read_header_bytes(file: &File, path: &Path, len: u64) -> Result<Vec<u8>> {
    let n = len.min(1 << 21) as usize;
    let mut buf = vec![0u8; n];
    pread_exact(file, path, &mut buf, 0, "qcow2 header")?;
    // Only the first cluster matters; trim once the cluster size is known.
    if n >= 24 {
        let bits = u32::from_be_bytes([buf[20], buf[21], buf[22], buf[23]]);
        if (9..=21).contains(&bits) {
            buf.truncate(n.min(1 << bits));
        }
    }
    Ok(buf)
}

/// Parses the header of the file at `path`, labelling errors with the path.
pub(crate) fn parse_header_of(file: &File, path: &Path) -> Result<(Header, u64)> {
    let len = file_len(file, path)?;
    let bytes = read_header_bytes(file, path, len)?;
    let h = Header::parse(&bytes).map_err(|e| match e {
        Error::NotQcow2 { .. } => Error::NotQcow2 {
            path: path.to_path_buf(),
        },
        other => other,
    })?;
    Ok((h, len))
}

/// Whether the file at `path` starts with the qcow2 magic.
pub(crate) fn is_qcow2(file: &File, path: &Path) -> Result<bool> {
    let mut m = [0u8; 4];
    pread_zero_fill(file, path, &mut m, 0)?;
    Ok(m == MAGIC)
}

/// Resolves a backing file name against the directory of the image naming it.
pub(crate) fn resolve_backing(overlay: &Path, name: &str) -> Result<PathBuf> {
    if name.starts_with("json:") || (name.contains("://") && !name.starts_with('/')) {
        return Err(Error::Unsupported {
            what: format!("backing file specification {name:?} (only file paths)"),
        });
    }
    let p = Path::new(name);
    if p.is_absolute() {
        return Ok(p.to_path_buf());
    }
    Ok(overlay.parent().unwrap_or(Path::new(".")).join(p))
}

impl Image {
    /// Device and inode numbers of this image's file and of every file in its backing chain.
    pub(crate) fn chain_file_ids(&self) -> Result<Vec<(u64, u64)>> {
        use std::os::unix::fs::MetadataExt;
        let mut ids = Vec::new();
        let mut cur = Some(self);
        while let Some(img) = cur {
            let m = img
                .file
                .metadata()
                .map_err(|e| io_err("stat", &img.path, e))?;
            ids.push((m.dev(), m.ino()));
            cur = match img.backing.as_deref() {
                Some(Backing::Qcow2(b)) => Some(b),
                Some(Backing::Raw { file, path, .. }) => {
                    let m = file.metadata().map_err(|e| io_err("stat", path, e))?;
                    ids.push((m.dev(), m.ino()));
                    None
                }
                None => None,
            };
        }
        Ok(ids)
    }

    /// Opens an unencrypted image (and its chain) read-only with default limits.
    pub fn open(path: impl AsRef<Path>) -> Result<Image> {
        OpenOptions::new().open(path)
    }

    /// Opens a file this crate just built, for writing, without backing chain or cipher.
    pub(crate) fn open_fresh(path: &Path) -> Result<Image> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(|e| io_err("open", path, e))?;
        let (header, len) = parse_header_of(&file, path)?;
        let mut img = Image::from_parts(path, file, header, len, &Limits::default())?;
        img.writable = true;
        Ok(img)
    }

    fn open_chain(
        path: &Path,
        opts: &mut OpenOptions<'_>,
        seen: &mut HashSet<PathBuf>,
        depth: u32,
        write: bool,
    ) -> Result<Image> {
        if depth > opts.limits.max_chain_depth {
            return Err(Error::BackingTooDeep {
                path: path.to_path_buf(),
                limit: opts.limits.max_chain_depth,
            });
        }
        let canon = std::fs::canonicalize(path).map_err(|e| io_err("open", path, e))?;
        if !seen.insert(canon) {
            return Err(Error::BackingLoop {
                path: path.to_path_buf(),
            });
        }
        let file = crate::io::open_image(path, write)?;
        let (header, len) = parse_header_of(&file, path)?;
        let mut img = Image::from_parts(path, file, header, len, &opts.limits)?;

        if write {
            img.check_writable(opts.legacy_aes_write)?;
        }

        match img.header.crypt_method {
            CryptMethod::None => {}
            _ if depth == 1 && opts.top_crypt.is_some() => img.crypt = opts.top_crypt.take(),
            method => {
                let pw = opts
                    .passphrases
                    .as_mut()
                    .and_then(|f| f(path))
                    .ok_or_else(|| Error::PassphraseRequired {
                        path: path.to_path_buf(),
                    })?;
                img.crypt = Some(crate::encryption::unlock(
                    &mut img,
                    method,
                    &pw,
                    &opts.limits,
                )?);
            }
        }

        if let Some(name) = img.header.backing_file.clone() {
            let bpath = resolve_backing(path, &name)?;
            let fmt = match img.header.backing_format().as_deref() {
                Some("raw") => BackingFormat::Raw,
                Some("qcow2") => BackingFormat::Qcow2,
                Some(other) => {
                    return Err(Error::Unsupported {
                        what: format!("backing file format {other:?}"),
                    });
                }
                None => {
                    // No format recorded: probe, as older QEMU did.
                    let f = crate::io::open_image(&bpath, false)?;
                    if is_qcow2(&f, &bpath)? {
                        BackingFormat::Qcow2
                    } else {
                        BackingFormat::Raw
                    }
                }
            };
            let backing = match fmt {
                BackingFormat::Raw => {
                    let f = crate::io::open_image(&bpath, false)?;
                    let size = file_len(&f, &bpath)?;
                    Backing::Raw {
                        file: f,
                        path: bpath,
                        size,
                    }
                }
                BackingFormat::Qcow2 => Backing::Qcow2(Box::new(Image::open_chain(
                    &bpath,
                    opts,
                    seen,
                    depth + 1,
                    false,
                )?)),
            };
            img.backing = Some(Box::new(backing));
        }

        if write {
            img.prepare_for_write()?;
        }
        Ok(img)
    }

    /// Validates the header against the file and loads L1, refcount table, snapshot table.
    fn from_parts(
        path: &Path,
        file: File,
        header: Header,
        len: u64,
        limits: &Limits,
    ) -> Result<Image> {
        let cs = header.cluster_size();
        let mut meta = Metadata::default();
        meta.fixed.push((0, cs, "the header cluster"));

        // L1 table.
        let l1_bytes = u64::from(header.l1_size) * 8;
        if l1_bytes > limits.max_l1_bytes {
            return Err(Error::LimitExceeded {
                what: "L1 table bytes",
                value: l1_bytes,
                limit: limits.max_l1_bytes,
            });
        }
        let l1_end = header.l1_table_offset.saturating_add(l1_bytes);
        if l1_bytes > 0 && l1_end > len {
            return Err(Error::Truncated {
                what: "L1 table",
                needed: l1_end,
                file_len: len,
            });
        }
        // Refcount table.
        let rt_bytes = u64::from(header.refcount_table_clusters) * cs;
        if rt_bytes > limits.max_refcount_table_bytes {
            return Err(Error::LimitExceeded {
                what: "refcount table bytes",
                value: rt_bytes,
                limit: limits.max_refcount_table_bytes,
            });
        }
        let rt_end = header.refcount_table_offset.saturating_add(rt_bytes);
        if rt_end > len {
            return Err(Error::Truncated {
                what: "refcount table",
                needed: rt_end,
                file_len: len,
            });
        }
        let mut ranges: Vec<(u64, u64, &'static str)> =
            vec![(header.refcount_table_offset, rt_end, "the refcount table")];
        if l1_bytes > 0 {
            ranges.push((
                header.l1_table_offset,
                header.l1_table_offset + l1_bytes.div_ceil(cs) * cs,
                "the L1 table",
            ));
        }
        if let (Some((off, length)), CryptMethod::Luks) =
            (header.crypto_header(), header.crypt_method)
        {
            if length > limits.max_luks_header_bytes {
                return Err(Error::LimitExceeded {
                    what: "LUKS header bytes",
                    value: length,
                    limit: limits.max_luks_header_bytes,
                });
            }
            ranges.push((
                off,
                off.saturating_add(length.div_ceil(cs) * cs),
                "the LUKS header",
            ));
        }
        // Snapshot table.
        let mut snapshots = Vec::new();
        if header.nb_snapshots > 0 {
            let avail = len.saturating_sub(header.snapshots_offset).min(64 << 20);
            let mut buf = vec![0u8; avail as usize];
            pread_exact(
                &file,
                path,
                &mut buf,
                header.snapshots_offset,
                "snapshot table",
            )?;
            let (s, used) = parse_snapshots(&buf, header.nb_snapshots)?;
            ranges.push((
                header.snapshots_offset,
                header.snapshots_offset + (used as u64).div_ceil(cs) * cs,
                "the snapshot table",
            ));
            snapshots = s;
        }
        for (i, a) in ranges.iter().enumerate() {
            if a.0 < cs {
                return Err(Error::Corrupt {
                    what: format!("{} overlaps the header cluster", a.2),
                    offset: a.0,
                });
            }
            for b in &ranges[i + 1..] {
                if a.0 < b.1 && b.0 < a.1 {
                    return Err(Error::Corrupt {
                        what: format!("{} overlaps {}", a.2, b.2),
                        offset: a.0.max(b.0),
                    });
                }
            }
        }
        meta.fixed.extend(ranges);

        let mut l1 = vec![0u64; header.l1_size as usize];
        if !l1.is_empty() {
            let mut raw = vec![0u8; l1_bytes as usize];
            pread_exact(&file, path, &mut raw, header.l1_table_offset, "L1 table")?;
            for (e, c) in l1.iter_mut().zip(raw.chunks_exact(8)) {
                *e = u64::from_be_bytes(c.try_into().unwrap_or([0; 8]));
            }
        }
        let mut raw = vec![0u8; rt_bytes as usize];
        pread_exact(
            &file,
            path,
            &mut raw,
            header.refcount_table_offset,
            "refcount table",
        )?;
        let table: Vec<u64> = raw
            .chunks_exact(8)
            .map(|c| u64::from_be_bytes(c.try_into().unwrap_or([0; 8])))
            .collect();

        for &e in &table {
            let off = e & REFT_OFFSET_MASK;
            if off != 0 {
                if !off.is_multiple_of(cs) || off.saturating_add(cs) > len.div_ceil(cs) * cs {
                    return Err(Error::Corrupt {
                        what: "refcount table entry is misaligned or past the end of the file"
                            .into(),
                        offset: off,
                    });
                }
                if let Some(what) = meta.overlap(off, cs, cs) {
                    return Err(Error::Corrupt {
                        what: format!("refcount block overlaps {what}"),
                        offset: off,
                    });
                }
                meta.refblocks.insert(off);
            }
        }
        for &e in &l1 {
            let off = e & L1E_OFFSET_MASK;
            if off != 0 {
                if !off.is_multiple_of(cs) || off >= len {
                    return Err(Error::Corrupt {
                        what: "L1 entry is misaligned or points past the end of the file".into(),
                        offset: off,
                    });
                }
                if let Some(what) = meta.overlap(off, cs, cs) {
                    return Err(Error::Corrupt {
                        what: format!("L2 table overlaps {what}"),
                        offset: off,
                    });
                }
                meta.l2.insert(off);
            }
        }

        let l2_entries = header.l2_entries();
        let l2_cache_max = (limits.l2_cache_bytes / cs).max(4) as usize;
        Ok(Image {
            path: path.to_path_buf(),
            file,
            file_len: len,
            cluster_size: cs,
            l2_entries,
            l1,
            l2_cache: HashMap::new(),
            l2_cache_max,
            rc: Refcounts {
                table,
                blocks: HashMap::new(),
                next_free: len.div_ceil(cs),
                table_pending: false,
            },
            meta,
            backing: None,
            crypt: None,
            writable: false,
            pos: 0,
            snapshots,
            zcache: None,
            scratch: Vec::new(),
            header,
        })
    }

    fn check_writable(&self, legacy_aes_write: bool) -> Result<()> {
        let h = &self.header;
        let unsupported = |what: &str| {
            Err(Error::Unsupported {
                what: format!("writing to {}: {what}", self.path.display()),
            })
        };
        if h.nb_snapshots > 0 {
            return unsupported("images with internal snapshots are read-only here");
        }
        if h.extended_l2() {
            return unsupported("extended L2 entries (subclusters) are read-only here");
        }
        if h.refcount_order != 4 {
            return unsupported("only 16-bit refcounts are written");
        }
        if h.incompatible_features & INCOMPAT_CORRUPT != 0 {
            return unsupported("the image is marked corrupt");
        }
        if h.incompatible_features & INCOMPAT_DIRTY != 0 {
            return unsupported(
                "the image is dirty (lazy refcounts need a repair by qemu-img check -r all)",
            );
        }
        if h.crypt_method == CryptMethod::LegacyAes && !legacy_aes_write {
            return unsupported(
                "legacy AES encryption is broken; enable OpenOptions::allow_legacy_aes_write or convert to LUKS",
            );
        }
        Ok(())
    }

    /// Clears autoclear bits (their metadata is not maintained here) before the first write.
    fn prepare_for_write(&mut self) -> Result<()> {
        self.writable = true;
        if self.header.autoclear_features != 0 {
            self.header.autoclear_features = 0;
            self.rewrite_header()?;
        }
        Ok(())
    }

    /// Rewrites the header cluster from `self.header` and syncs it.
    pub(crate) fn rewrite_header(&mut self) -> Result<()> {
        let bytes = self.header.to_bytes()?;
        pwrite(&self.file, &self.path, &bytes, 0)?;
        datasync(&self.file, &self.path)
    }

    /// The image's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn set_path(&mut self, path: &Path) {
        self.path = path.to_path_buf();
    }

    /// Looks for a partition table in the first two guest sectors.
    ///
    /// For legacy AES images a wrong passphrase cannot be detected by the format (there is no
    /// key check: decryption just yields garbage), so opening always succeeds. This probe is
    /// the sanity check: an MBR or GPT signature means the passphrase is almost certainly
    /// right; [`PlaintextProbe::Unknown`](crate::crypto::PlaintextProbe::Unknown) means it is
    /// wrong or the disk has no partition table.
    pub fn probe_plaintext(&mut self) -> Result<crate::crypto::PlaintextProbe> {
        let n = self.header.size.min(1024) as usize;
        let mut buf = vec![0u8; n];
        self.read_at(&mut buf, 0)?;
        Ok(crate::crypto::probe_plaintext(&buf))
    }

    /// The parsed header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The virtual disk size in bytes.
    pub fn virtual_size(&self) -> u64 {
        self.header.size
    }

    /// The cluster size in bytes.
    pub fn cluster_size(&self) -> u64 {
        self.cluster_size
    }

    /// Whether the image was opened for writing.
    pub fn is_writable(&self) -> bool {
        self.writable
    }

    /// The internal snapshots (their data is kept intact; only the active layer is read).
    pub fn snapshots(&self) -> &[Snapshot] {
        &self.snapshots
    }

    pub(crate) fn file(&self) -> &File {
        &self.file
    }

    // ---------------------------------------------------------------- lookups

    fn l2_table(&mut self, off: u64) -> Result<&mut Vec<u64>> {
        if !self.l2_cache.contains_key(&off) {
            if self.l2_cache.len() >= self.l2_cache_max {
                self.l2_cache.clear();
            }
            let cs = self.cluster_size;
            let mut raw = vec![0u8; cs as usize];
            pread_zero_fill(&self.file, &self.path, &mut raw, off)?;
            let t: Vec<u64> = raw
                .chunks_exact(8)
                .map(|c| u64::from_be_bytes(c.try_into().unwrap_or([0; 8])))
                .collect();
            self.l2_cache.insert(off, t);
        }
        self.l2_cache.get_mut(&off).ok_or(Error::Corrupt {
            what: "L2 cache".into(),
            offset: off,
        })
    }

    /// The raw L2 entry (and the subcluster bitmap for extended L2) of guest cluster `gi`.
    fn l2_entry(&mut self, gi: u64) -> Result<(u64, u64)> {
        let l1i = (gi / self.l2_entries) as usize;
        let l2i = (gi % self.l2_entries) as usize;
        let l2_off = self.l1.get(l1i).copied().unwrap_or(0) & L1E_OFFSET_MASK;
        if l2_off == 0 {
            return Ok((0, 0));
        }
        let ext = self.header.extended_l2();
        let t = self.l2_table(l2_off)?;
        Ok(if ext {
            (
                t.get(2 * l2i).copied().unwrap_or(0),
                t.get(2 * l2i + 1).copied().unwrap_or(0),
            )
        } else {
            (t.get(l2i).copied().unwrap_or(0), 0)
        })
    }

    /// Decoded mapping of guest cluster `gi`, with host offsets validated.
    pub(crate) fn mapping(&mut self, gi: u64) -> Result<(ClusterMapping, u64)> {
        let (entry, bitmap) = self.l2_entry(gi)?;
        let m = decode_l2(entry, self.header.cluster_bits, self.header.version)?;
        match m {
            ClusterMapping::Data { host, .. } => self.validate_data(host, self.cluster_size)?,
            ClusterMapping::Compressed { host, len } => {
                if host >= self.file_len
                    || host < self.cluster_size
                    || host.checked_add(len).is_none()
                {
                    return Err(Error::Corrupt {
                        what: "compressed cluster outside the file".into(),
                        offset: host,
                    });
                }
                if let Some(what) = self.meta.overlap(host, len, self.cluster_size) {
                    return Err(Error::Corrupt {
                        what: format!("compressed L2 entry points into {what}"),
                        offset: host,
                    });
                }
            }
            ClusterMapping::Zero { host } if host != 0 => {
                if host % self.cluster_size != 0 {
                    return Err(Error::Corrupt {
                        what: "preallocated zero cluster is not cluster-aligned".into(),
                        offset: host,
                    });
                }
                self.validate_data(host, self.cluster_size)?;
            }
            _ => {}
        }
        Ok((m, bitmap))
    }

    fn validate_data(&self, host: u64, len: u64) -> Result<()> {
        if host >= self.file_len.max(self.rc.next_free * self.cluster_size) {
            return Err(Error::Corrupt {
                what: "L2 entry points past the end of the file".into(),
                offset: host,
            });
        }
        if let Some(what) = self.meta.overlap(host, len, self.cluster_size) {
            return Err(Error::Corrupt {
                what: format!("L2 entry points into {what}"),
                offset: host,
            });
        }
        Ok(())
    }

    // ---------------------------------------------------------------- reads

    fn check_range(&self, off: u64, len: usize) -> Result<()> {
        match off.checked_add(len as u64) {
            Some(end) if end <= self.header.size => Ok(()),
            _ => Err(Error::OutOfRange {
                offset: off,
                len: len as u64,
                size: self.header.size,
            }),
        }
    }

    /// Reads guest data at `off` into `buf`. The whole range must lie inside the virtual disk.
    /// Unallocated clusters come from the backing file (or read as zeros), zero clusters read as
    /// zeros; neither passes through the cipher.
    ///
    /// Host-contiguous clusters are read with one `pread`. For large sequential reads, pass a
    /// page-aligned buffer of a few MiB: the kernel copies into aligned memory faster (a
    /// `Vec` of that size usually starts 16 bytes past a page boundary, which made 4 MiB reads
    /// from the page cache take 1.45 times as long on an AMD EPYC host).
    pub fn read_at(&mut self, buf: &mut [u8], off: u64) -> Result<()> {
        self.check_range(off, buf.len())?;
        let cs = self.cluster_size;
        let mut done = 0usize;
        while done < buf.len() {
            let pos = off + done as u64;
            let gi = pos / cs;
            let co = pos % cs;
            let n = ((cs - co) as usize).min(buf.len() - done);
            let (m, bitmap) = self.mapping(gi)?;
            if self.header.extended_l2() && !matches!(m, ClusterMapping::Compressed { .. }) {
                self.read_subclusters(&mut buf[done..done + n], pos, m, bitmap)?;
                done += n;
                continue;
            }
            match m {
                ClusterMapping::Unallocated => {
                    self.read_unallocated(&mut buf[done..done + n], pos)?
                }
                ClusterMapping::Zero { .. } => buf[done..done + n].fill(0),
                ClusterMapping::Data { host, .. } => {
                    // Coalesce host-contiguous clusters into one read.
                    let mut len = n;
                    let mut next_host = host + cs;
                    while done + len < buf.len() {
                        let g = gi + (co as usize + len) as u64 / cs;
                        match self.mapping(g)? {
                            (ClusterMapping::Data { host: h, .. }, _) if h == next_host => {
                                let more = (cs as usize).min(buf.len() - done - len);
                                len += more;
                                next_host += cs;
                            }
                            _ => break,
                        }
                    }
                    self.read_data(&mut buf[done..done + len], host + co, pos)?;
                    done += len;
                    continue;
                }
                ClusterMapping::Compressed { host, len } => {
                    self.read_compressed(gi, host, len)?;
                    if let Some((_, z)) = &self.zcache {
                        buf[done..done + n].copy_from_slice(&z[co as usize..co as usize + n]);
                    }
                }
            }
            done += n;
        }
        Ok(())
    }

    fn read_unallocated(&mut self, buf: &mut [u8], guest: u64) -> Result<()> {
        match self.backing.as_mut() {
            Some(b) => b.read_at(buf, guest),
            None => {
                buf.fill(0);
                Ok(())
            }
        }
    }

    /// Reads (and decrypts) allocated data at `host` for guest offset `guest`.
    fn read_data(&mut self, buf: &mut [u8], host: u64, guest: u64) -> Result<()> {
        let Some(crypt) = &self.crypt else {
            return pread_zero_fill(&self.file, &self.path, buf, host);
        };
        let head = host % 512;
        if head == 0 && buf.len().is_multiple_of(512) {
            pread_zero_fill(&self.file, &self.path, buf, host)?;
            return crypt.cipher.decrypt(crypt.sector(host, guest), buf);
        }
        let start = host - head;
        let span = (head as usize + buf.len()).div_ceil(512) * 512;
        let mut tmp = std::mem::take(&mut self.scratch);
        tmp.resize(span, 0);
        let r = pread_zero_fill(&self.file, &self.path, &mut tmp[..span], start).and_then(|_| {
            crypt
                .cipher
                .decrypt(crypt.sector(start, guest - head), &mut tmp[..span])
        });
        if r.is_ok() {
            buf.copy_from_slice(&tmp[head as usize..head as usize + buf.len()]);
        }
        self.scratch = tmp;
        r
    }

    fn read_compressed(&mut self, gi: u64, host: u64, len: u64) -> Result<()> {
        if matches!(&self.zcache, Some((g, _)) if *g == gi) {
            return Ok(());
        }
        if self.crypt.is_some() {
            return Err(Error::Corrupt {
                what: "compressed cluster in an encrypted image".into(),
                offset: host,
            });
        }
        let cs = self.cluster_size as usize;
        // A compressed cluster never needs more than cluster size + one sector of input.
        let in_len = (len as usize).min(cs + 512);
        let mut input = vec![0u8; in_len];
        pread_zero_fill(&self.file, &self.path, &mut input, host)?;
        let mut out = match self.zcache.take() {
            Some((_, v)) if v.len() == cs => v,
            _ => vec![0u8; cs],
        };
        let codec = if self.header.compression_type == 1 {
            Codec::Zstd
        } else {
            Codec::Deflate
        };
        decompress(codec, &input, &mut out, host)?;
        self.zcache = Some((gi, out));
        Ok(())
    }

    fn read_subclusters(
        &mut self,
        buf: &mut [u8],
        guest: u64,
        m: ClusterMapping,
        bitmap: u64,
    ) -> Result<()> {
        let cs = self.cluster_size;
        let scs = cs / 32;
        let host = match m {
            ClusterMapping::Data { host, .. } | ClusterMapping::Zero { host } => host,
            _ => 0,
        };
        // With extended L2 the entry's zero bit is reserved; the bitmap decides.
        let mut done = 0usize;
        while done < buf.len() {
            let pos = guest + done as u64;
            let co = pos % cs;
            let sc = co / scs;
            let n = ((scs - co % scs) as usize).min(buf.len() - done);
            let alloc = bitmap & (1 << sc) != 0;
            let zero = bitmap & (1 << (32 + sc)) != 0;
            if alloc && zero {
                return Err(Error::Corrupt {
                    what: "subcluster both allocated and zero".into(),
                    offset: host,
                });
            }
            if alloc {
                if host == 0 {
                    return Err(Error::Corrupt {
                        what: "allocated subcluster without a host cluster".into(),
                        offset: 0,
                    });
                }
                self.read_data(&mut buf[done..done + n], host + co, pos)?;
            } else if zero {
                buf[done..done + n].fill(0);
            } else {
                self.read_unallocated(&mut buf[done..done + n], pos)?;
            }
            done += n;
        }
        Ok(())
    }

    // ---------------------------------------------------------------- refcounts

    fn refcount_entries_per_block(&self) -> u64 {
        (self.cluster_size * 8) >> self.header.refcount_order
    }

    /// Loads the refcount block at `off` into the cache.
    fn refblock(&mut self, off: u64) -> Result<&mut Vec<u8>> {
        if !self.rc.blocks.contains_key(&off) {
            let mut b = vec![0u8; self.cluster_size as usize];
            pread_zero_fill(&self.file, &self.path, &mut b, off)?;
            if self.rc.blocks.len() > 256 {
                self.rc.blocks.clear();
            }
            self.rc.blocks.insert(off, b);
        }
        self.rc.blocks.get_mut(&off).ok_or(Error::Corrupt {
            what: "refcount cache".into(),
            offset: off,
        })
    }

    /// The refcount of host cluster index `ci` (0 when no block covers it).
    pub(crate) fn refcount(&mut self, ci: u64) -> Result<u64> {
        let epb = self.refcount_entries_per_block();
        let bi = (ci / epb) as usize;
        let off = self.rc.table.get(bi).copied().unwrap_or(0) & REFT_OFFSET_MASK;
        if off == 0 {
            return Ok(0);
        }
        let order = self.header.refcount_order;
        let b = self.refblock(off)?;
        Ok(get_refcount(b, order, (ci % epb) as usize))
    }

    /// Makes sure refcount block `bi` exists, allocating it if needed; returns its offset.
    fn ensure_refblock(&mut self, bi: u64) -> Result<u64> {
        if bi >= self.rc.table.len() as u64 {
            self.grow_refcount_table(bi)?;
        }
        let cur = self.rc.table[bi as usize] & REFT_OFFSET_MASK;
        if cur != 0 {
            return Ok(cur);
        }
        let cs = self.cluster_size;
        let epb = self.refcount_entries_per_block();
        let c = self.rc.next_free;
        self.rc.next_free += 1;
        let off = c * cs;
        let mut block = vec![0u8; cs as usize];
        let self_covered = c / epb == bi;
        if self_covered {
            set_refcount16(&mut block, (c % epb) as usize, 1);
        } else {
            // The new block lives in another block's range: count it there first.
            self.set_refcounts(c, 1, 1)?;
        }
        self.check_overlap(off, cs)?;
        pwrite(&self.file, &self.path, &block, off)?;
        self.file_len = self.file_len.max(off + cs);
        self.rc.blocks.insert(off, block);
        self.meta.refblocks.insert(off);
        self.rc.table[bi as usize] = off;
        if !self.rc.table_pending {
            pwrite(
                &self.file,
                &self.path,
                &off.to_be_bytes(),
                self.header.refcount_table_offset + bi * 8,
            )?;
        }
        Ok(off)
    }

    /// Sets the refcount of clusters `start..start+n` to `value` (16-bit refcounts only),
    /// writing each touched block range once.
    fn set_refcounts(&mut self, start: u64, n: u64, value: u16) -> Result<()> {
        let epb = self.refcount_entries_per_block();
        let mut ci = start;
        let end = start + n;
        while ci < end {
            let bi = ci / epb;
            let block_end = ((bi + 1) * epb).min(end);
            let off = self.ensure_refblock(bi)?;
            let first = (ci % epb) as usize;
            let count = (block_end - ci) as usize;
            let b = self.refblock(off)?;
            for i in first..first + count {
                set_refcount16(b, i, value);
            }
            let bytes = b[first * 2..(first + count) * 2].to_vec();
            pwrite(&self.file, &self.path, &bytes, off + first as u64 * 2)?;
            ci = block_end;
        }
        Ok(())
    }

    /// Replaces the refcount table by a larger one covering block index `bi`.
    ///
    /// Crash safety: the new table and its blocks are written in new clusters, then the header
    /// is switched in one sector write; the old table is freed afterwards (a crash leaks it).
    fn grow_refcount_table(&mut self, bi: u64) -> Result<()> {
        let cs = self.cluster_size;
        let epb = self.refcount_entries_per_block();
        let per_cluster = cs / 8;
        let old_clusters = u64::from(self.header.refcount_table_clusters);
        let mut new_clusters = (old_clusters * 2).max((bi + 1).div_ceil(per_cluster));
        // Cover the new table itself and the blocks it may need, with margin.
        loop {
            let last = self.rc.next_free + new_clusters + new_clusters + 8;
            if last.div_ceil(epb) <= new_clusters * per_cluster && bi < new_clusters * per_cluster {
                break;
            }
            new_clusters *= 2;
        }
        if new_clusters * cs > (8 << 20) {
            return Err(Error::LimitExceeded {
                what: "refcount table bytes",
                value: new_clusters * cs,
                limit: 8 << 20,
            });
        }
        let start = self.rc.next_free;
        self.rc.next_free += new_clusters;
        self.rc
            .table
            .resize((new_clusters * per_cluster) as usize, 0);
        self.rc.table_pending = true;
        let r = self.set_refcounts(start, new_clusters, 1);
        self.rc.table_pending = false;
        r?;

        let new_off = start * cs;
        let mut raw = Vec::with_capacity((new_clusters * cs) as usize);
        for e in &self.rc.table {
            raw.extend_from_slice(&e.to_be_bytes());
        }
        self.check_overlap(new_off, new_clusters * cs)?;
        pwrite(&self.file, &self.path, &raw, new_off)?;
        self.file_len = self.file_len.max(new_off + raw.len() as u64);
        datasync(&self.file, &self.path)?;

        let old_off = self.header.refcount_table_offset;
        let mut hdr = [0u8; 12];
        hdr[..8].copy_from_slice(&new_off.to_be_bytes());
        hdr[8..].copy_from_slice(&(new_clusters as u32).to_be_bytes());
        pwrite(&self.file, &self.path, &hdr, 48)?;
        datasync(&self.file, &self.path)?;
        self.header.refcount_table_offset = new_off;
        self.header.refcount_table_clusters = new_clusters as u32;
        for r in self.meta.fixed.iter_mut() {
            if r.0 == old_off && r.2 == "the refcount table" {
                *r = (new_off, new_off + new_clusters * cs, "the refcount table");
            }
        }
        self.set_refcounts(old_off / cs, old_clusters, 0)
    }

    /// Allocates `n` contiguous new clusters (refcount 1, written before any use) and returns
    /// the host offset of the first. The clusters are not written.
    pub(crate) fn alloc_clusters(&mut self, n: u64) -> Result<u64> {
        let offset = self.reserve_clusters(n)?;
        self.set_refcounts(offset / self.cluster_size, n, 1)?;
        Ok(offset)
    }

    /// For conversion into a fresh image: reserves `n` contiguous new clusters and returns the
    /// host offset of the first, without writing their refcounts (one small metadata write
    /// per batch would contend with the data writes for the file's inode lock).
    /// [`Image::count_reserved`] must count them before the image is handed out; until then
    /// the file is not a valid image (conversion builds it in a temporary file).
    pub(crate) fn reserve_clusters(&mut self, n: u64) -> Result<u64> {
        if !self.writable {
            return Err(Error::ReadOnly {
                path: self.path.clone(),
            });
        }
        let start = self.rc.next_free;
        self.rc.next_free += n;
        Ok(start * self.cluster_size)
    }

    /// Writes refcount 1 for the `n` clusters at `host` taken by [`Image::reserve_clusters`].
    pub(crate) fn count_reserved(&mut self, host: u64, n: u64) -> Result<()> {
        self.set_refcounts(host / self.cluster_size, n, 1)
    }

    /// Allocates `n` clusters and writes zeros into them.
    pub(crate) fn alloc_zeroed(&mut self, n: u64) -> Result<u64> {
        let off = self.alloc_clusters(n)?;
        let cs = self.cluster_size;
        let zeros = vec![0u8; (cs * n).min(1 << 20) as usize];
        let mut done = 0;
        while done < n * cs {
            let k = (zeros.len() as u64).min(n * cs - done);
            pwrite(&self.file, &self.path, &zeros[..k as usize], off + done)?;
            done += k;
        }
        self.file_len = self.file_len.max(off + n * cs);
        Ok(off)
    }

    fn decref(&mut self, ci: u64) -> Result<()> {
        let cur = self.releasable(ci)?;
        self.set_refcounts(ci, 1, (cur - 1) as u16)
    }

    /// Refcount of host cluster `ci`, which an overwritten L2 entry is about to release;
    /// refuses (typed error) metadata clusters and clusters whose refcount is already 0.
    fn releasable(&mut self, ci: u64) -> Result<u64> {
        let cs = self.cluster_size;
        let off = ci.checked_mul(cs).ok_or_else(|| Error::Corrupt {
            what: "released cluster index overflows".into(),
            offset: u64::MAX,
        })?;
        self.check_overlap(off, cs)?;
        let cur = self.refcount(ci)?;
        if cur == 0 {
            return Err(Error::Corrupt {
                what: "cluster released by an overwritten L2 entry has refcount 0".into(),
                offset: off,
            });
        }
        Ok(cur)
    }

    /// Host clusters an old L2 mapping holds references on (to release after overwriting it).
    fn held_clusters(&self, m: &ClusterMapping) -> std::ops::Range<u64> {
        let cs = self.cluster_size;
        match *m {
            ClusterMapping::Compressed { host, len } => {
                // The length field may run past the end of the file for the last cluster.
                let end = host.saturating_add(len).min(self.file_len.max(host + 1));
                host / cs..end.div_ceil(cs)
            }
            ClusterMapping::Zero { host } if host != 0 => host / cs..host / cs + 1,
            _ => 0..0,
        }
    }

    /// Refuses a write at `host..host+len` if it overlaps metadata (QEMU's overlap check).
    pub(crate) fn check_overlap(&self, host: u64, len: u64) -> Result<()> {
        match self.meta.overlap(host, len, self.cluster_size) {
            Some(what) => Err(Error::MetadataOverlap {
                offset: host,
                len,
                what,
            }),
            None => Ok(()),
        }
    }

    pub(crate) fn add_fixed_metadata(&mut self, start: u64, end: u64, what: &'static str) {
        self.meta.fixed.push((start, end, what));
    }

    // ---------------------------------------------------------------- writes

    /// The L2 table offset for guest cluster `gi`, allocating the table if needed.
    fn l2_for_write(&mut self, gi: u64) -> Result<u64> {
        let l1i = (gi / self.l2_entries) as usize;
        let cur = self.l1.get(l1i).copied().ok_or(Error::OutOfRange {
            offset: gi * self.cluster_size,
            len: 0,
            size: self.header.size,
        })?;
        let off = cur & L1E_OFFSET_MASK;
        if off != 0 {
            if cur & OFLAG_COPIED == 0 {
                return Err(Error::Unsupported {
                    what: "writing through a shared L2 table (refcount > 1)".into(),
                });
            }
            return Ok(off);
        }
        // New, zeroed L2 table; the L1 entry is written only after the table is on disk.
        let off = self.alloc_zeroed(1)?;
        self.meta.l2.insert(off);
        self.l2_cache
            .insert(off, vec![0u64; (self.cluster_size / 8) as usize]);
        let entry = off | OFLAG_COPIED;
        pwrite(
            &self.file,
            &self.path,
            &entry.to_be_bytes(),
            self.header.l1_table_offset + l1i as u64 * 8,
        )?;
        self.l1[l1i] = entry;
        Ok(off)
    }

    fn set_l2_entry(&mut self, l2_off: u64, l2i: u64, entry: u64) -> Result<()> {
        pwrite(
            &self.file,
            &self.path,
            &entry.to_be_bytes(),
            l2_off + l2i * 8,
        )?;
        let t = self.l2_table(l2_off)?;
        if let Some(e) = t.get_mut(l2i as usize) {
            *e = entry;
        }
        Ok(())
    }

    fn encrypt_for_write(&self, buf: &mut [u8], host: u64, guest: u64) -> Result<()> {
        match &self.crypt {
            Some(c) => c.cipher.encrypt(c.sector(host, guest), buf),
            None => Ok(()),
        }
    }

    /// Writes guest data at `off`. The range must lie inside the virtual disk.
    pub fn write_at(&mut self, buf: &[u8], off: u64) -> Result<()> {
        if !self.writable {
            return Err(Error::ReadOnly {
                path: self.path.clone(),
            });
        }
        self.check_range(off, buf.len())?;
        let cs = self.cluster_size;
        let mut done = 0usize;
        while done < buf.len() {
            let pos = off + done as u64;
            let gi = pos / cs;
            let co = pos % cs;
            let n = ((cs - co) as usize).min(buf.len() - done);
            self.write_cluster(gi, co, &buf[done..done + n])?;
            done += n;
        }
        Ok(())
    }

    fn write_cluster(&mut self, gi: u64, co: u64, data: &[u8]) -> Result<()> {
        let cs = self.cluster_size;
        let guest = gi * cs;
        let l2_off = self.l2_for_write(gi)?;
        let l2i = gi % self.l2_entries;
        let (m, _) = self.mapping(gi)?;
        if let ClusterMapping::Data { host, copied: true } = m {
            // In place.
            self.check_overlap(host, cs)?;
            if self.crypt.is_none() {
                return pwrite(&self.file, &self.path, data, host + co);
            }
            let head = co % 512;
            let start = co - head;
            let span = (head as usize + data.len()).div_ceil(512) * 512;
            let mut tmp = vec![0u8; span];
            if head != 0 || span != data.len() {
                self.read_data(&mut tmp, host + start, guest + start)?;
            }
            tmp[head as usize..head as usize + data.len()].copy_from_slice(data);
            self.encrypt_for_write(&mut tmp, host + start, guest + start)?;
            return pwrite(&self.file, &self.path, &tmp, host + start);
        }
        if let ClusterMapping::Data { copied: false, .. } = m {
            return Err(Error::Unsupported {
                what: "writing to a shared cluster (refcount > 1)".into(),
            });
        }

        // Before writing anything: the clusters the old entry holds must be releasable, and a
        // compressed entry must really be one (not, say, a pointer into a live data cluster).
        if let ClusterMapping::Compressed { host, len } = m {
            self.read_compressed(gi, host, len)?;
        }
        for ci in self.held_clusters(&m) {
            self.releasable(ci)?;
        }

        // Copy on write into a new cluster: old contents (backing, zeros, compressed) merged.
        let mut cbuf = vec![0u8; cs as usize];
        if data.len() as u64 != cs {
            let vs = self.header.size;
            let valid = (vs - guest).min(cs) as usize;
            self.read_at(&mut cbuf[..valid], guest)?;
        }
        cbuf[co as usize..co as usize + data.len()].copy_from_slice(data);
        let host = self.alloc_clusters(1)?;
        self.check_overlap(host, cs)?;
        self.encrypt_for_write(&mut cbuf, host, guest)?;
        pwrite(&self.file, &self.path, &cbuf, host)?;
        self.file_len = self.file_len.max(host + cs);
        self.set_l2_entry(l2_off, l2i, data_entry(host))?;
        if self.zcache.as_ref().is_some_and(|(g, _)| *g == gi) {
            self.zcache = None;
        }

        // Release what the old entry held (a crash before this only leaks).
        for ci in self.held_clusters(&m) {
            self.decref(ci)?;
        }
        Ok(())
    }

    /// Makes all writes durable (`fdatasync`).
    pub fn flush(&mut self) -> Result<()> {
        datasync(&self.file, &self.path)
    }

    // ---------------------------------------------------------------- bulk (convert)

    /// Sets the mappings of many guest clusters at once (for conversion into a fresh image):
    /// allocates the L2 tables, writes each table whole, then the L1 entries.
    pub(crate) fn set_mappings(&mut self, mappings: &[(u64, u64)]) -> Result<()> {
        let mut by_l1: std::collections::BTreeMap<u64, Vec<(u64, u64)>> = Default::default();
        for &(gi, host) in mappings {
            by_l1
                .entry(gi / self.l2_entries)
                .or_default()
                .push((gi % self.l2_entries, host));
        }
        let cs = self.cluster_size;
        for (l1i, entries) in by_l1 {
            let l2_off = self.l2_for_write(l1i * self.l2_entries)?;
            let mut table = self.l2_table(l2_off)?.clone();
            for (l2i, host) in entries {
                if let Some(e) = table.get_mut(l2i as usize) {
                    *e = data_entry(host);
                }
            }
            let mut raw = Vec::with_capacity(cs as usize);
            for e in &table {
                raw.extend_from_slice(&e.to_be_bytes());
            }
            pwrite(&self.file, &self.path, &raw, l2_off)?;
            self.l2_cache.insert(l2_off, table);
        }
        Ok(())
    }

    /// For conversion: reads guest clusters `off..off+buf.len()` (cluster aligned). Allocated
    /// data clusters of an encrypted image are left as ciphertext and reported in `states`
    /// with their sector number, so the caller can decrypt them in parallel.
    pub(crate) fn read_for_convert(
        &mut self,
        buf: &mut [u8],
        off: u64,
        states: &mut Vec<ClusterState>,
    ) -> Result<()> {
        let cs = self.cluster_size;
        states.clear();
        let size = self.header.size;
        let n = buf.len().div_ceil(cs as usize);
        let mut k = 0usize;
        while k < n {
            let guest = off + k as u64 * cs;
            let start = k * cs as usize;
            let chunk_len = (cs as usize).min(buf.len() - start);
            let valid = (size.saturating_sub(guest)).min(chunk_len as u64) as usize;
            let chunk = &mut buf[start..start + chunk_len];
            chunk[valid..].fill(0);
            let (m, _) = self.mapping(guest / cs)?;
            let state = match m {
                ClusterMapping::Unallocated if self.backing.is_none() => {
                    chunk.fill(0);
                    ClusterState::Zero
                }
                ClusterMapping::Zero { .. } if !self.header.extended_l2() => {
                    chunk.fill(0);
                    ClusterState::Zero
                }
                ClusterMapping::Data { host, .. }
                    if !self.header.extended_l2() && valid == chunk.len() =>
                {
                    // Coalesce the following clusters whose data lies right after this
                    // one's in the file into one read (one syscall per run, not per cluster).
                    let mut run = 1usize;
                    while k + run < n {
                        let g = guest + run as u64 * cs;
                        let s = start + run * cs as usize;
                        let len = (cs as usize).min(buf.len() - s);
                        if size.saturating_sub(g) < len as u64 {
                            break;
                        }
                        match self.mapping(g / cs)? {
                            (ClusterMapping::Data { host: h, .. }, _)
                                if h == host + run as u64 * cs =>
                            {
                                run += 1
                            }
                            _ => break,
                        }
                    }
                    let end = (start + run * cs as usize).min(buf.len());
                    pread_zero_fill(&self.file, &self.path, &mut buf[start..end], host)?;
                    for r in 0..run as u64 {
                        states.push(match &self.crypt {
                            Some(c) => ClusterState::Cipher {
                                sector: c.sector(host + r * cs, guest + r * cs),
                            },
                            None => ClusterState::Plain,
                        });
                    }
                    k += run;
                    continue;
                }
                _ => {
                    self.read_at(&mut chunk[..valid], guest)?;
                    ClusterState::Plain
                }
            };
            states.push(state);
            k += 1;
        }
        Ok(())
    }
}

/// What [`Image::read_for_convert`] left in one cluster of the buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ClusterState {
    /// Known zero (unallocated without backing, or a zero cluster).
    Zero,
    /// Plaintext.
    Plain,
    /// Ciphertext of the source image, to be decrypted with this first sector number.
    Cipher { sector: u64 },
}

impl Read for Image {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = (self.header.size.saturating_sub(self.pos)).min(buf.len() as u64) as usize;
        self.read_at(&mut buf[..n], self.pos)
            .map_err(std::io::Error::other)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl Write for Image {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = (self.header.size.saturating_sub(self.pos)).min(buf.len() as u64) as usize;
        if n == 0 && !buf.is_empty() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::WriteZero,
                "write past the end of the virtual disk",
            ));
        }
        self.write_at(&buf[..n], self.pos)
            .map_err(std::io::Error::other)?;
        self.pos += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Image::flush(self).map_err(std::io::Error::other)
    }
}

impl Seek for Image {
    fn seek(&mut self, pos: SeekFrom) -> std::io::Result<u64> {
        let new = match pos {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::End(d) => self.header.size.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        match new {
            Some(p) => {
                self.pos = p;
                Ok(p)
            }
            None => Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "seek to a negative or overflowing position",
            )),
        }
    }
}

/// Checks that the backing format extension names a format this crate reads.
pub(crate) fn backing_format_ext(fmt: BackingFormat) -> (u32, Vec<u8>) {
    (EXT_BACKING_FORMAT, fmt.name().as_bytes().to_vec())
}

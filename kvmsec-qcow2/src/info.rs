//! `qemu-img info`-style facts about an image and its backing chain, without a passphrase
//! (operations layer).

use std::collections::HashSet;
use std::fs::File;
use std::path::{Path, PathBuf};

use crate::header::{COMPAT_LAZY_REFCOUNTS, CryptMethod, Header, INCOMPAT_CORRUPT, INCOMPAT_DIRTY};
use crate::image::{Limits, is_qcow2, parse_header_of, resolve_backing};
use crate::io::{file_len, io_err, pread_exact};
use crate::table::{Snapshot, parse_snapshots};
use crate::{Error, Result};

/// How an image is encrypted.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub enum EncryptionInfo {
    /// The legacy AES-128-CBC method (`crypt_method` 1): broken, convert it to LUKS.
    LegacyAes,
    /// LUKS1 inside the image.
    Luks(LuksInfo),
}

/// The public facts of a LUKS header (what `qemu-img info` shows under `encrypt`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct LuksInfo {
    /// Cipher algorithm, e.g. `aes-256`.
    pub cipher_alg: String,
    /// Cipher mode, e.g. `xts`.
    pub cipher_mode: String,
    /// IV generator, e.g. `plain64`.
    pub ivgen_alg: String,
    /// Hash used for the IV generator (ESSIV), if any.
    pub ivgen_hash_alg: Option<String>,
    /// PBKDF2 hash, e.g. `sha256`.
    pub hash_alg: String,
    /// UUID string of the LUKS header.
    pub uuid: String,
    /// Payload offset in bytes (length of the LUKS region).
    pub payload_offset: u64,
    /// PBKDF2 iterations of the master key digest.
    pub master_key_iters: u32,
    /// Key slots 0..8.
    pub slots: Vec<KeySlotInfo>,
}

/// One LUKS key slot as `qemu-img info` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct KeySlotInfo {
    /// Whether the slot holds a passphrase.
    pub active: bool,
    /// PBKDF2 iterations (active slots).
    pub iters: u32,
    /// Stripes of the anti-forensic split.
    pub stripes: u32,
    /// Key material offset in bytes from the LUKS header start.
    pub key_offset: u64,
}

/// The facts `qemu-img info --output=json` gives about one image.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct ImageInfo {
    /// The image's path.
    pub path: PathBuf,
    /// `"qcow2"` or `"raw"`.
    pub format: String,
    /// Virtual size in bytes.
    pub virtual_size: u64,
    /// Bytes allocated on the host file system.
    pub actual_size: u64,
    /// Cluster size (qcow2).
    pub cluster_size: Option<u64>,
    /// qcow2 version (2 or 3).
    pub version: Option<u32>,
    /// QEMU's name for the version: `"0.10"` or `"1.1"`.
    pub compat: Option<String>,
    /// Encryption, if any.
    pub encryption: Option<EncryptionInfo>,
    /// The backing file name as stored.
    pub backing_file: Option<String>,
    /// The backing file resolved against this image's directory.
    pub full_backing_filename: Option<PathBuf>,
    /// The backing format named in the header.
    pub backing_format: Option<String>,
    /// Refcount width in bits.
    pub refcount_bits: Option<u32>,
    /// `"zlib"` or `"zstd"` (qcow2; version 2 images are always zlib).
    pub compression_type: Option<String>,
    /// Extended L2 entries.
    pub extended_l2: bool,
    /// Lazy refcounts.
    pub lazy_refcounts: bool,
    /// The corrupt bit.
    pub corrupt: bool,
    /// The dirty bit.
    pub dirty: bool,
    /// Internal snapshots.
    pub snapshots: Vec<Snapshot>,
}

fn actual_size(file: &File) -> u64 {
    use std::os::unix::fs::MetadataExt;
    file.metadata().map(|m| m.blocks() * 512).unwrap_or(0)
}

/// Facts about the image at `path` (raw or qcow2). No passphrase is needed: the LUKS header
/// is public.
///
/// ```
/// let dir = tempfile::tempdir()?;
/// let p = dir.path().join("i.qcow2");
/// kvmsec_qcow2::create(&p, &kvmsec_qcow2::CreateOptions::new(1 << 30))?;
/// let info = kvmsec_qcow2::info(&p)?;
/// assert_eq!((info.virtual_size, info.cluster_size), (1 << 30, Some(65536)));
/// assert_eq!(info.compat.as_deref(), Some("1.1"));
/// assert!(info.encryption.is_none());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn info(path: impl AsRef<Path>) -> Result<ImageInfo> {
    let path = path.as_ref();
    let file = crate::io::open_image(path, false)?;
    if !is_qcow2(&file, path)? {
        return Ok(ImageInfo {
            path: path.to_path_buf(),
            format: "raw".into(),
            virtual_size: file_len(&file, path)?,
            actual_size: actual_size(&file),
            cluster_size: None,
            version: None,
            compat: None,
            encryption: None,
            backing_file: None,
            full_backing_filename: None,
            backing_format: None,
            refcount_bits: None,
            compression_type: None,
            extended_l2: false,
            lazy_refcounts: false,
            corrupt: false,
            dirty: false,
            snapshots: Vec::new(),
        });
    }
    let (h, len) = parse_header_of(&file, path)?;
    let encryption = match h.crypt_method {
        CryptMethod::None => None,
        CryptMethod::LegacyAes => Some(EncryptionInfo::LegacyAes),
        CryptMethod::Luks => Some(EncryptionInfo::Luks(crate::encryption::luks_info(
            &file, path, &h,
        )?)),
    };
    let snapshots = read_snapshots(&file, path, &h, len)?;
    let full_backing_filename = match &h.backing_file {
        Some(name) => Some(resolve_backing(path, name)?),
        None => None,
    };
    Ok(ImageInfo {
        path: path.to_path_buf(),
        format: "qcow2".into(),
        virtual_size: h.size,
        actual_size: actual_size(&file),
        cluster_size: Some(h.cluster_size()),
        version: Some(h.version),
        compat: Some(if h.version == 2 { "0.10" } else { "1.1" }.into()),
        encryption,
        backing_file: h.backing_file.clone(),
        full_backing_filename,
        backing_format: h.backing_format(),
        refcount_bits: Some(1 << h.refcount_order),
        compression_type: Some(
            if h.compression_type == 1 {
                "zstd"
            } else {
                "zlib"
            }
            .to_string(),
        ),
        extended_l2: h.extended_l2(),
        lazy_refcounts: h.compatible_features & COMPAT_LAZY_REFCOUNTS != 0,
        corrupt: h.incompatible_features & INCOMPAT_CORRUPT != 0,
        dirty: h.incompatible_features & INCOMPAT_DIRTY != 0,
        snapshots,
    })
}

pub(crate) fn read_snapshots(
    file: &File,
    path: &Path,
    h: &Header,
    len: u64,
) -> Result<Vec<Snapshot>> {
    if h.nb_snapshots == 0 {
        return Ok(Vec::new());
    }
    let avail = len.saturating_sub(h.snapshots_offset).min(64 << 20);
    let mut buf = vec![0u8; avail as usize];
    pread_exact(file, path, &mut buf, h.snapshots_offset, "snapshot table")?;
    Ok(parse_snapshots(&buf, h.nb_snapshots)?.0)
}

/// [`info`] for the image and every image below it in its backing chain, top first.
/// Loops and chains deeper than [`Limits::max_chain_depth`] are errors.
pub fn info_chain(path: impl AsRef<Path>) -> Result<Vec<ImageInfo>> {
    let limits = Limits::default();
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    let mut cur = path.as_ref().to_path_buf();
    loop {
        if out.len() as u32 >= limits.max_chain_depth {
            return Err(Error::BackingTooDeep {
                path: cur,
                limit: limits.max_chain_depth,
            });
        }
        let canon = std::fs::canonicalize(&cur).map_err(|e| io_err("open", &cur, e))?;
        if !seen.insert(canon) {
            return Err(Error::BackingLoop { path: cur });
        }
        let i = info(&cur)?;
        let next = i.full_backing_filename.clone();
        out.push(i);
        match next {
            Some(n) => cur = n,
            None => return Ok(out),
        }
    }
}

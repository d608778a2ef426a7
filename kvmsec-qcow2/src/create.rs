//! Creating images (operations layer).

use std::path::{Path, PathBuf};

use crate::crypto::Passphrase;
use crate::header::{
    CryptMethod, EXT_FEATURE_TABLE, Extension, Header, V2_HEADER_LEN, V3_HEADER_LEN,
    feature_name_table,
};
use crate::image::{BackingFormat, Image, Limits, OpenOptions, backing_format_ext};
use crate::io::{datasync, io_err, pwrite};
use crate::{Error, Result};

/// A backing file for a new overlay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackingFile {
    /// The name stored in the header: absolute, or relative to the new image's directory.
    pub name: String,
    /// Its format (stored in the backing-format header extension).
    pub format: BackingFormat,
}

/// Encryption for a new image.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Encryption {
    /// LUKS1 inside the image, as `qemu-img create -o encrypt.format=luks` writes it.
    Luks {
        /// The passphrase for key slot 0.
        passphrase: Passphrase,
        /// Cipher, mode, IV generator, hash and PBKDF2 iterations.
        options: crate::crypto::LuksOptions,
    },
    /// The legacy AES-128-CBC method. **Broken** (see
    /// [`crypto::legacy_aes_cipher`](crate::crypto::legacy_aes_cipher)): only for tests and
    /// for producing images that old tools need. `acknowledge_broken` must be `true`.
    LegacyAes {
        /// The passphrase (its first 16 bytes are the key).
        passphrase: Passphrase,
        /// Must be `true`: the caller accepts that this encryption is weak.
        acknowledge_broken: bool,
    },
}

impl Encryption {
    /// LUKS with QEMU's defaults (AES-256-XTS, plain64, SHA-256, 2 s PBKDF2 calibration).
    pub fn luks(passphrase: Passphrase) -> Self {
        Encryption::Luks {
            passphrase,
            options: crate::crypto::LuksOptions::default(),
        }
    }

    pub(crate) fn passphrase(&self) -> &Passphrase {
        match self {
            Encryption::Luks { passphrase, .. } | Encryption::LegacyAes { passphrase, .. } => {
                passphrase
            }
        }
    }
}

/// What to create.
///
/// ```
/// use kvmsec_qcow2::{create, CreateOptions};
/// let dir = tempfile::tempdir()?;
/// let img = create(
///     dir.path().join("small.qcow2"),
///     &CreateOptions::new(16 << 20).cluster_size(4096).version(2),
/// )?;
/// assert_eq!(img.cluster_size(), 4096);
/// assert_eq!(img.header().version, 2);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct CreateOptions {
    /// Virtual size in bytes.
    pub size: u64,
    /// Cluster size in bytes: a power of two from 512 to 2 MiB (default 64 KiB).
    pub cluster_size: u64,
    /// Format version, 2 (QEMU's compat=0.10) or 3 (compat=1.1, the default).
    pub version: u32,
    /// Backing file of the new overlay.
    pub backing: Option<BackingFile>,
    /// Encryption of the new image.
    pub encryption: Option<Encryption>,
}

impl CreateOptions {
    /// A plain version 3 image with 64 KiB clusters.
    pub fn new(size: u64) -> Self {
        CreateOptions {
            size,
            cluster_size: 65536,
            version: 3,
            backing: None,
            encryption: None,
        }
    }

    /// Sets the cluster size.
    pub fn cluster_size(mut self, bytes: u64) -> Self {
        self.cluster_size = bytes;
        self
    }

    /// Sets the format version (2 or 3).
    pub fn version(mut self, version: u32) -> Self {
        self.version = version;
        self
    }

    /// Sets the backing file.
    pub fn backing(mut self, name: impl Into<String>, format: BackingFormat) -> Self {
        self.backing = Some(BackingFile {
            name: name.into(),
            format,
        });
        self
    }

    /// Sets the encryption.
    pub fn encryption(mut self, encryption: Encryption) -> Self {
        self.encryption = Some(encryption);
        self
    }
}

/// A temporary file next to the target that is removed unless [`TempFile::persist`] is called.
pub(crate) struct TempFile {
    pub(crate) path: PathBuf,
    target: PathBuf,
    done: bool,
}

impl TempFile {
    pub(crate) fn new(target: &Path) -> Result<TempFile> {
        let dir = target.parent().filter(|p| !p.as_os_str().is_empty());
        let name = target.file_name().ok_or_else(|| {
            Error::InvalidArgument(format!("{} has no file name", target.display()))
        })?;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let tmp_name = format!(
            ".{}.tmp-{}-{nanos}",
            name.to_string_lossy(),
            std::process::id()
        );
        let path = match dir {
            Some(d) => d.join(tmp_name),
            None => PathBuf::from(tmp_name),
        };
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| io_err("create", &path, e))?;
        Ok(TempFile {
            path,
            target: target.to_path_buf(),
            done: false,
        })
    }

    /// Renames the temporary file over the target.
    pub(crate) fn persist(mut self) -> Result<()> {
        std::fs::rename(&self.path, &self.target).map_err(|e| io_err("rename", &self.path, e))?;
        self.done = true;
        if let Some(d) = self
            .target
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .and_then(|dir| std::fs::File::open(dir).ok())
        {
            let _ = d.sync_all();
        }
        Ok(())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.done {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Creates an image at `path` and returns it opened for writing.
///
/// The image is built in a temporary file in the same directory and renamed into place, so a
/// failure leaves nothing behind. Layout (as QEMU): header, refcount table, refcount block, L1
/// table, then the LUKS region if encrypted; data clusters follow. The new image is returned
/// open for writing with its backing chain; an encrypted backing file is opened with the new
/// image's passphrase (use [`create_with`] when it has another one).
///
/// ```
/// use kvmsec_qcow2::{create, CreateOptions, BackingFormat};
/// let dir = tempfile::tempdir()?;
/// create(dir.path().join("base.qcow2"), &CreateOptions::new(8 << 20))?;
/// let overlay = create(
///     dir.path().join("overlay.qcow2"),
///     &CreateOptions::new(8 << 20).backing("base.qcow2", BackingFormat::Qcow2),
/// )?;
/// assert_eq!(overlay.header().backing_file.as_deref(), Some("base.qcow2"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn create(path: impl AsRef<Path>, opts: &CreateOptions) -> Result<Image> {
    let mut open = OpenOptions::new();
    if let Some(e) = &opts.encryption {
        open = open.passphrase(e.passphrase().clone());
    }
    create_with(path, opts, open)
}

/// [`create`], opening the new image's backing chain with `open` (for backing files that need
/// their own passphrases, or other limits). The new image itself is not unlocked again: the
/// cipher from formatting is reused, so PBKDF2 runs once. If the chain cannot be opened,
/// nothing is created.
pub fn create_with(
    path: impl AsRef<Path>,
    opts: &CreateOptions,
    open: OpenOptions<'_>,
) -> Result<Image> {
    let path = path.as_ref();
    let tmp = TempFile::new(path)?;
    let mut built = build(&tmp.path, opts)?;
    let mut o = open.write(true);
    o.top_crypt = built.crypt.take();
    if let Some(Encryption::LegacyAes { .. }) = &opts.encryption {
        o = o.allow_legacy_aes_write(true);
    }
    drop(built);
    let mut img = o.open(&tmp.path)?;
    tmp.persist()?;
    img.set_path(path);
    Ok(img)
}

/// Writes a new image into the (empty) file at `path`; returns it opened for writing without
/// its backing chain (for conversion into it).
pub(crate) fn build(path: &Path, opts: &CreateOptions) -> Result<Image> {
    let cs = opts.cluster_size;
    if !cs.is_power_of_two() || !(512..=(2 << 20)).contains(&cs) {
        return Err(Error::InvalidArgument(format!(
            "cluster size {cs} is not a power of two between 512 and 2 MiB"
        )));
    }
    if opts.version != 2 && opts.version != 3 {
        return Err(Error::InvalidArgument(format!(
            "version {} (must be 2 or 3)",
            opts.version
        )));
    }
    if opts.size > (1u64 << 62) {
        return Err(Error::InvalidArgument("virtual size too large".into()));
    }
    let crypt_method = match &opts.encryption {
        None => CryptMethod::None,
        Some(Encryption::Luks { .. }) => CryptMethod::Luks,
        Some(Encryption::LegacyAes {
            acknowledge_broken, ..
        }) => {
            if !acknowledge_broken {
                return Err(Error::InvalidArgument(
                    "legacy AES encryption is broken; set acknowledge_broken to create it anyway"
                        .into(),
                ));
            }
            CryptMethod::LegacyAes
        }
    };

    let mut header = Header {
        version: opts.version,
        cluster_bits: cs.trailing_zeros(),
        size: 0,
        crypt_method: CryptMethod::None,
        l1_size: 0,
        l1_table_offset: 0,
        refcount_table_offset: cs,
        refcount_table_clusters: 1,
        nb_snapshots: 0,
        snapshots_offset: 0,
        incompatible_features: 0,
        compatible_features: 0,
        autoclear_features: 0,
        refcount_order: 4,
        header_length: if opts.version == 3 {
            V3_HEADER_LEN
        } else {
            V2_HEADER_LEN
        },
        compression_type: 0,
        unknown_header_bytes: Vec::new(),
        extensions: Vec::new(),
        backing_file: None,
    };
    let l1_entries = header.l1_entries_for(opts.size);
    if l1_entries * 8 > Limits::default().max_l1_bytes {
        return Err(Error::InvalidArgument(format!(
            "virtual size {} needs an L1 table larger than 32 MiB with {cs}-byte clusters",
            opts.size
        )));
    }

    // Header, refcount table (1 cluster) and the first refcount block (covering clusters 0-2).
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(|e| io_err("open", path, e))?;
    let mut first = header.to_bytes()?;
    first.resize(3 * cs as usize, 0);
    first[cs as usize..cs as usize + 8].copy_from_slice(&(2 * cs).to_be_bytes());
    for i in 0..3 {
        let o = 2 * cs as usize + 2 * i;
        first[o..o + 2].copy_from_slice(&1u16.to_be_bytes());
    }
    pwrite(&file, path, &first, 0)?;
    drop(file);

    let mut img = Image::open_fresh(path)?;
    // L1 table.
    let l1_clusters = (l1_entries * 8).div_ceil(cs);
    if l1_clusters > 0 {
        let off = img.alloc_zeroed(l1_clusters)?;
        img.add_fixed_metadata(off, off + l1_clusters * cs, "the L1 table");
        header.l1_table_offset = off;
    }
    header.l1_size = l1_entries as u32;
    header.size = opts.size;
    header.crypt_method = crypt_method;

    // LUKS region, then its header extension first (as QEMU orders them).
    if let Some(Encryption::Luks {
        passphrase,
        options,
    }) = &opts.encryption
    {
        let (off, len) = crate::encryption::format_luks(&mut img, options, passphrase)?;
        header.extensions.push(Extension {
            kind: crate::header::EXT_CRYPTO,
            data: crate::header::crypto_extension(off, len),
        });
    }
    if let Some(b) = &opts.backing {
        let (kind, data) = backing_format_ext(b.format);
        header.extensions.push(Extension { kind, data });
        header.backing_file = Some(b.name.clone());
    }
    if opts.version == 3 {
        header.extensions.push(Extension {
            kind: EXT_FEATURE_TABLE,
            data: feature_name_table(),
        });
    }
    // Keep the refcount table as allocation may have moved it.
    header.refcount_table_offset = img.header().refcount_table_offset;
    header.refcount_table_clusters = img.header().refcount_table_clusters;
    let bytes = header.to_bytes()?;
    pwrite(img.file(), path, &bytes, 0)?;
    datasync(img.file(), path)?;
    let mut fresh = Image::open_fresh(path)?;
    fresh.crypt = img.crypt.take();
    Ok(fresh)
}

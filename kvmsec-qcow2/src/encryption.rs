//! Glue between the container and the crypto module: unlocking an image's cipher, giving the
//! crypto code access to the LUKS region of the file, and key-slot changes in place
//! (host access and operations layers).

use std::fs::File;
use std::path::Path;

use crate::crypto::{
    Iterations, KeySlotSelector, LuksOptions, LuksRegion, OpenLimits, Passphrase,
    legacy_aes_cipher, luks_add_key, luks_change_key, luks_format, luks_open, luks_read_header,
    luks_region_len, luks_remove_key,
};
use crate::header::{CryptMethod, Header};
use crate::image::{Crypt, Image, Limits, parse_header_of};
use crate::info::{KeySlotInfo, LuksInfo};
use crate::io::{datasync, io_err, pread_zero_fill, pwrite};
use crate::{Error, Result};

/// The LUKS region of an image file: `len` bytes at `offset`. Accesses outside it are errors;
/// reads past the end of the file return zeros (as QEMU).
pub(crate) struct FileRegion<'a> {
    file: &'a File,
    path: &'a Path,
    offset: u64,
    len: u64,
}

impl FileRegion<'_> {
    fn bounds(&self, offset: u64, n: usize) -> Result<u64> {
        match offset.checked_add(n as u64) {
            Some(end) if end <= self.len => Ok(self.offset + offset),
            _ => Err(Error::LuksRegionBounds {
                offset,
                len: n as u64,
                size: self.len,
            }),
        }
    }
}

impl LuksRegion for FileRegion<'_> {
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<()> {
        let at = self.bounds(offset, buf.len())?;
        pread_zero_fill(self.file, self.path, buf, at)
    }

    fn write_at(&mut self, offset: u64, buf: &[u8]) -> Result<()> {
        let at = self.bounds(offset, buf.len())?;
        pwrite(self.file, self.path, buf, at)
    }

    fn sync(&mut self) -> Result<()> {
        datasync(self.file, self.path)
    }
}

fn region<'a>(file: &'a File, path: &'a Path, h: &Header) -> Result<FileRegion<'a>> {
    let (offset, len) = h.crypto_header().ok_or(Error::InvalidExtension {
        kind: crate::header::EXT_CRYPTO,
        reason: "missing crypto header extension for LUKS (crypt_method 2)",
    })?;
    Ok(FileRegion {
        file,
        path,
        offset,
        len,
    })
}

pub(crate) fn open_limits(limits: &Limits) -> OpenLimits {
    OpenLimits {
        max_iterations: limits.max_pbkdf2_iterations,
        ..OpenLimits::default()
    }
}

/// Builds the data cipher of `img` from `passphrase` (PBKDF2 runs here, once per open).
pub(crate) fn unlock(
    img: &mut Image,
    method: CryptMethod,
    passphrase: &Passphrase,
    limits: &Limits,
) -> Result<Crypt> {
    match method {
        CryptMethod::LegacyAes => Ok(Crypt {
            cipher: legacy_aes_cipher(passphrase),
            physical: false,
        }),
        CryptMethod::Luks => {
            let (file, path, h) = (img.file(), img.path(), img.header());
            let mut r = region(file, path, h)?;
            let (lh, cipher) = luks_open(&mut r, passphrase, &open_limits(limits))?;
            let cs = h.cluster_size();
            let (off, len) = (r.offset, r.len);
            if lh.payload_offset_bytes() > len.div_ceil(cs) * cs {
                return Err(Error::Corrupt {
                    what: "LUKS payload offset is past the LUKS region".into(),
                    offset: off,
                });
            }
            Ok(Crypt {
                cipher,
                physical: true,
            })
        }
        CryptMethod::None => Err(Error::InvalidArgument("image is not encrypted".into())),
    }
}

/// Allocates the LUKS region in a new image, formats it and sets the image's cipher.
/// Returns the region's offset and length (for the crypto header extension).
pub(crate) fn format_luks(
    img: &mut Image,
    options: &LuksOptions,
    passphrase: &Passphrase,
) -> Result<(u64, u64)> {
    let len = luks_region_len(options);
    let cs = img.cluster_size();
    let clusters = len.div_ceil(cs);
    let off = img.alloc_zeroed(clusters)?;
    img.add_fixed_metadata(off, off + clusters * cs, "the LUKS header");
    let mut r = FileRegion {
        file: img.file(),
        path: img.path(),
        offset: off,
        len,
    };
    let (_, cipher) = luks_format(&mut r, options, passphrase)?;
    img.crypt = Some(Crypt {
        cipher,
        physical: true,
    });
    Ok((off, len))
}

/// The public facts of the LUKS header of an image (no passphrase needed).
pub(crate) fn luks_info(file: &File, path: &Path, header: &Header) -> Result<LuksInfo> {
    let mut r = region(file, path, header)?;
    let h = luks_read_header(&mut r)?;
    let (cipher_alg, cipher_mode, ivgen_alg, ivgen_hash_alg) = match h.cipher() {
        Ok((alg, mode, ivgen)) => {
            let iv = ivgen.name();
            let (iv, hash) = match iv.split_once(':') {
                Some((a, b)) => (a.to_string(), Some(b.to_string())),
                None => (iv, None),
            };
            (alg.name().to_string(), mode.name().to_string(), iv, hash)
        }
        Err(_) => {
            let spec = h.cipher_mode_spec().to_string();
            let (mode, iv) = spec.split_once('-').unwrap_or((&spec, ""));
            (
                h.cipher_name().to_string(),
                mode.to_string(),
                iv.to_string(),
                None,
            )
        }
    };
    Ok(LuksInfo {
        cipher_alg,
        cipher_mode,
        ivgen_alg,
        ivgen_hash_alg,
        hash_alg: h.hash_spec().to_string(),
        uuid: h.uuid().to_string(),
        payload_offset: h.payload_offset_bytes(),
        master_key_iters: h.mk_iterations(),
        slots: h
            .slots()
            .iter()
            .map(|s| KeySlotInfo {
                active: s.is_active(),
                iters: s.iterations(),
                stripes: s.stripes(),
                key_offset: u64::from(s.key_offset_sectors()) * 512,
            })
            .collect(),
    })
}

fn with_region<T>(
    path: &Path,
    f: impl FnOnce(&mut FileRegion<'_>, &OpenLimits) -> Result<T>,
) -> Result<T> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(|e| io_err("open", path, e))?;
    let (h, _) = parse_header_of(&file, path)?;
    if h.crypt_method != CryptMethod::Luks {
        return Err(Error::InvalidArgument(format!(
            "{} is not LUKS-encrypted",
            path.display()
        )));
    }
    let mut r = region(&file, path, &h)?;
    f(&mut r, &OpenLimits::default())
}

/// Adds passphrase `new` to the LUKS image at `path`, unlocking with `existing` (as
/// `qemu-img amend -o encrypt.state=active,encrypt.new-secret=...`). `slot`: a given free slot,
/// or the first free one. Returns the slot used.
///
/// Crash-safe: the new key material is written and synced before the slot is enabled; the
/// old passphrases keep working throughout.
///
/// ```
/// use kvmsec_qcow2::crypto::{Iterations, LuksOptions, Passphrase};
/// use kvmsec_qcow2::{add_passphrase, create, CreateOptions, Encryption, OpenOptions};
/// let dir = tempfile::tempdir()?;
/// let p = dir.path().join("l.qcow2");
/// let luks = LuksOptions { iterations: Iterations::Fixed(1000), ..LuksOptions::default() };
/// let enc = Encryption::Luks { passphrase: "old".into(), options: luks };
/// drop(create(&p, &CreateOptions::new(1 << 20).encryption(enc))?);
/// // In production pass `Iterations::default()` (calibrated to 2 s per slot, as QEMU does);
/// // `Fixed(1000)` only keeps this example fast and is easy to brute-force.
/// let slot = add_passphrase(&p, &"old".into(), &"new".into(), None, Iterations::Fixed(1000))?;
/// assert_eq!(slot, 1);
/// OpenOptions::new().passphrase(Passphrase::from("new")).open(&p)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn add_passphrase(
    path: impl AsRef<Path>,
    existing: &Passphrase,
    new: &Passphrase,
    slot: Option<usize>,
    iterations: Iterations,
) -> Result<usize> {
    with_region(path.as_ref(), |r, l| {
        luks_add_key(r, existing, new, slot, iterations, l)
    })
}

/// Removes passphrases from the LUKS image at `path`: every slot `which` selects (as
/// `qemu-img amend -o encrypt.state=inactive,encrypt.old-secret=...|encrypt.keyslot=N`).
/// Removing the last active slot needs `force_last` (the image can then never be opened).
/// Returns the slots disabled.
///
/// ```
/// use kvmsec_qcow2::crypto::{Iterations, KeySlotSelector, LuksOptions};
/// use kvmsec_qcow2::{add_passphrase, create, remove_passphrase, CreateOptions, Encryption};
/// let dir = tempfile::tempdir()?;
/// let p = dir.path().join("l.qcow2");
/// let luks = LuksOptions { iterations: Iterations::Fixed(1000), ..LuksOptions::default() };
/// let enc = Encryption::Luks { passphrase: "a".into(), options: luks };
/// drop(create(&p, &CreateOptions::new(1 << 20).encryption(enc))?);
/// add_passphrase(&p, &"a".into(), &"b".into(), None, Iterations::Fixed(1000))?;
/// assert_eq!(remove_passphrase(&p, KeySlotSelector::Passphrase(&"a".into()), false)?, [0]);
/// // The last passphrase is only removed with force_last.
/// assert!(remove_passphrase(&p, KeySlotSelector::Slot(1), false).is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn remove_passphrase(
    path: impl AsRef<Path>,
    which: KeySlotSelector<'_>,
    force_last: bool,
) -> Result<Vec<usize>> {
    with_region(path.as_ref(), |r, l| {
        luks_remove_key(r, which, force_last, l)
    })
}

/// Replaces passphrase `old` by `new` in the LUKS image at `path` (new slot written and synced
/// first, then the old slots erased; one of the two opens the image at every moment).
/// Returns the new slot.
///
/// ```
/// use kvmsec_qcow2::crypto::{Iterations, LuksOptions};
/// use kvmsec_qcow2::{change_passphrase, create, CreateOptions, Encryption, Error, OpenOptions};
/// let dir = tempfile::tempdir()?;
/// let p = dir.path().join("l.qcow2");
/// let luks = LuksOptions { iterations: Iterations::Fixed(1000), ..LuksOptions::default() };
/// let enc = Encryption::Luks { passphrase: "old".into(), options: luks };
/// drop(create(&p, &CreateOptions::new(1 << 20).encryption(enc))?);
/// // `Iterations::default()` in production; `Fixed(1000)` keeps the example fast.
/// change_passphrase(&p, &"old".into(), &"new".into(), Iterations::Fixed(1000))?;
/// let old = OpenOptions::new().passphrase("old".into()).open(&p);
/// assert!(matches!(old, Err(Error::WrongPassphrase)));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn change_passphrase(
    path: impl AsRef<Path>,
    old: &Passphrase,
    new: &Passphrase,
    iterations: Iterations,
) -> Result<usize> {
    with_region(path.as_ref(), |r, l| {
        luks_change_key(r, old, new, iterations, l)
    })
}

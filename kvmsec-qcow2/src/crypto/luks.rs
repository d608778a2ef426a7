//! LUKS1 header, key slots, unlocking and formatting, as QEMU does it for LUKS inside qcow2.
//!
//! # References
//! - LUKS1 On-Disk Format Specification 1.2.3 (header layout, key slots, AF splitting).
//! - QEMU `crypto/block-luks.c` (create layout, open-time checks, iteration calibration,
//!   key-slot amend) and `docs/interop/qcow2.rst` (full disk encryption header pointer).

use std::fmt;
use std::time::Instant;

use zeroize::Zeroizing;

use super::af::{af_merge, af_split, ct_eq, pbkdf2};
use super::cipher::{CipherAlg, CipherMode, HashAlg, IvGen, SECTOR_SIZE, SectorCipher};
use super::secret::{MasterKey, Passphrase};
use crate::{Error, Result};

/// Size of the LUKS1 partition header in bytes.
pub const LUKS_HEADER_LEN: usize = 592;
/// Number of key slots in a LUKS1 header.
pub const LUKS_KEY_SLOTS: usize = 8;
/// Anti-forensic stripes per key slot; QEMU writes and accepts only this value.
pub const LUKS_STRIPES: u32 = 4000;

const MAGIC: [u8; 6] = *b"LUKS\xba\xbe";
const SLOT_ENABLED: u32 = 0x00AC_71F3;
const SLOT_DISABLED: u32 = 0x0000_DEAD;
const DIGEST_LEN: usize = 20;
const SALT_LEN: usize = 32;
const SLOT_TABLE: usize = 208;
const SLOT_RECORD: usize = 48;
/// First key-material sector in QEMU's layout (4 KiB after the header start).
const FIRST_MATERIAL_SECTOR: u64 = 8;
/// Key material is aligned to 4 KiB (8 sectors), as cryptsetup and QEMU do.
const MATERIAL_ALIGN_SECTORS: u64 = 8;
/// Our own sanity bound on `key_bytes` for any cipher, checked before anything is sized by it.
const MAX_HEADER_KEY_BYTES: u32 = 512;
/// Smallest iteration count QEMU writes after calibration.
const MIN_CALIBRATED_ITERATIONS: u64 = 1000;
/// Random-data passes used to erase a disabled slot's key material.
const ERASE_PASSES: usize = 1;

/// Byte access to the LUKS region of an image. Offsets are relative to the start of the LUKS
/// header (the offset stored in the qcow2 full disk encryption header extension).
///
/// The qcow2 image code implements it over the image file; `Vec<u8>` implements it in memory
/// (reads and writes must stay inside the vector; it never grows, so a hostile header cannot
/// make it allocate).
pub trait LuksRegion {
    /// Reads exactly `buf.len()` bytes at `offset`.
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<()>;
    /// Writes all of `buf` at `offset`.
    fn write_at(&mut self, offset: u64, buf: &[u8]) -> Result<()>;
    /// Makes everything written so far durable (fdatasync); called between the crash-safe
    /// steps of key-slot changes.
    fn sync(&mut self) -> Result<()>;
}

fn vec_range(len: usize, offset: u64, n: usize) -> Result<std::ops::Range<usize>> {
    let oob = || Error::LuksRegionBounds {
        offset,
        len: n as u64,
        size: len as u64,
    };
    let start = usize::try_from(offset).map_err(|_| oob())?;
    let end = start.checked_add(n).ok_or_else(oob)?;
    if end > len {
        return Err(oob());
    }
    Ok(start..end)
}

impl LuksRegion for Vec<u8> {
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<()> {
        let r = vec_range(self.len(), offset, buf.len())?;
        buf.copy_from_slice(&self[r]);
        Ok(())
    }

    fn write_at(&mut self, offset: u64, buf: &[u8]) -> Result<()> {
        let r = vec_range(self.len(), offset, buf.len())?;
        self[r].copy_from_slice(buf);
        Ok(())
    }

    fn sync(&mut self) -> Result<()> {
        Ok(())
    }
}

/// How many PBKDF2 iterations new key slots (and the master-key digest) get.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Iterations {
    /// Measure this machine's PBKDF2 speed and use as many iterations as take `millis`
    /// milliseconds (QEMU's `encrypt.iter-time`, default 2000): slot iterations =
    /// max(1000, rate·ms/1000), master-key digest iterations = max(1000, rate·ms/1000/8).
    /// Measuring takes about 0.1 s.
    Calibrate {
        /// Target unlock time per key slot, in milliseconds.
        millis: u32,
    },
    /// Exactly this many iterations for key slots and the master-key digest (≥ 1). For tests,
    /// benchmarks and reproducible images; low values make passphrases easy to brute-force.
    Fixed(u32),
}

impl Default for Iterations {
    /// QEMU's default: calibrate to 2000 ms per key slot (`encrypt.iter-time=2000`).
    fn default() -> Self {
        Iterations::Calibrate { millis: 2000 }
    }
}

/// Parameters of a new LUKS volume. `Default` is QEMU's: AES-256, XTS, plain64, SHA-256,
/// calibrated to 2000 ms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct LuksOptions {
    /// Block cipher and key size.
    pub cipher: CipherAlg,
    /// Mode of operation.
    pub mode: CipherMode,
    /// IV generator.
    pub ivgen: IvGen,
    /// Hash for PBKDF2 and the anti-forensic splitter.
    pub hash: HashAlg,
    /// PBKDF2 iteration policy.
    pub iterations: Iterations,
}

impl Default for LuksOptions {
    fn default() -> Self {
        LuksOptions {
            cipher: CipherAlg::Aes256,
            mode: CipherMode::Xts,
            ivgen: IvGen::Plain64,
            hash: HashAlg::Sha256,
            iterations: Iterations::default(),
        }
    }
}

/// Bounds applied when opening a LUKS header that may come from an untrusted image.
///
/// Every value is checked before any work or allocation depends on it. A wrong passphrase
/// costs at most `8 × max_iterations` PBKDF2 iterations (one run per active slot).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct OpenLimits {
    /// Largest PBKDF2 iteration count accepted for a key slot or the master-key digest.
    /// Default 20 000 000 (roughly 10 s per slot here; QEMU's default 2 s calibration stays
    /// far below it). Raise it for images made with a very long `iter-time`.
    pub max_iterations: u32,
    /// Largest anti-forensic stripe count. Default 4000 (the only value QEMU accepts).
    pub max_stripes: u32,
    /// Largest master key in bytes. Default 64 (AES-256-XTS).
    pub max_key_bytes: u32,
}

impl Default for OpenLimits {
    fn default() -> Self {
        OpenLimits {
            max_iterations: 20_000_000,
            max_stripes: LUKS_STRIPES,
            max_key_bytes: 64,
        }
    }
}

/// One of the eight key slots of a [`LuksHeader`].
#[derive(Clone, PartialEq, Eq)]
pub struct KeySlot {
    active: bool,
    iterations: u32,
    salt: [u8; SALT_LEN],
    key_offset: u32,
    stripes: u32,
}

impl fmt::Debug for KeySlot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeySlot")
            .field("active", &self.active)
            .field("iterations", &self.iterations)
            .field("key_offset_sectors", &self.key_offset)
            .field("stripes", &self.stripes)
            .finish_non_exhaustive()
    }
}

impl KeySlot {
    /// `true` if the slot holds a passphrase (state 0x00AC71F3).
    pub fn is_active(&self) -> bool {
        self.active
    }

    /// PBKDF2 iterations of this slot (0 for an inactive slot written by QEMU).
    pub fn iterations(&self) -> u32 {
        self.iterations
    }

    /// Start of the slot's key material, in 512-byte sectors from the LUKS header start.
    pub fn key_offset_sectors(&self) -> u32 {
        self.key_offset
    }

    /// Anti-forensic stripe count (4000).
    pub fn stripes(&self) -> u32 {
        self.stripes
    }

    fn material_len(&self, key_bytes: u32) -> u64 {
        u64::from(key_bytes) * u64::from(self.stripes)
    }

    fn to_bytes(&self) -> [u8; SLOT_RECORD] {
        let mut b = [0u8; SLOT_RECORD];
        let state = if self.active {
            SLOT_ENABLED
        } else {
            SLOT_DISABLED
        };
        b[0..4].copy_from_slice(&state.to_be_bytes());
        b[4..8].copy_from_slice(&self.iterations.to_be_bytes());
        b[8..40].copy_from_slice(&self.salt);
        b[40..44].copy_from_slice(&self.key_offset.to_be_bytes());
        b[44..48].copy_from_slice(&self.stripes.to_be_bytes());
        b
    }
}

/// A parsed, validated LUKS1 header (the 592 bytes at the start of the LUKS region).
///
/// [`parse`](Self::parse) applies QEMU 10's open-time checks plus this crate's bounds, so a
/// `LuksHeader` never describes key material outside the region or overlapping slots. The
/// getters give the facts `qemu-img info` shows; no secret is stored here (the master-key
/// digest and salts are public by design).
///
/// # References
/// LUKS1 On-Disk Format Specification 1.2.3 §2; QEMU `crypto/block-luks.c`
/// (`qcrypto_block_luks_check_header`).
#[derive(Clone, PartialEq, Eq)]
pub struct LuksHeader {
    cipher_name: String,
    cipher_mode: String,
    hash_spec: String,
    payload_offset: u32,
    key_bytes: u32,
    mk_digest: [u8; DIGEST_LEN],
    mk_salt: [u8; SALT_LEN],
    mk_iterations: u32,
    uuid: String,
    slots: [KeySlot; LUKS_KEY_SLOTS],
}

impl fmt::Debug for LuksHeader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LuksHeader")
            .field("cipher_name", &self.cipher_name)
            .field("cipher_mode", &self.cipher_mode)
            .field("hash_spec", &self.hash_spec)
            .field("payload_offset_sectors", &self.payload_offset)
            .field("key_bytes", &self.key_bytes)
            .field("mk_iterations", &self.mk_iterations)
            .field("uuid", &self.uuid)
            .field("slots", &self.slots)
            .finish_non_exhaustive()
    }
}

fn bad(field: impl Into<String>, reason: impl Into<String>) -> Error {
    Error::InvalidLuksHeader {
        field: field.into(),
        reason: reason.into(),
    }
}

fn be32(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    if let Some(s) = b.get(at..at + 4) {
        a.copy_from_slice(s);
    }
    u32::from_be_bytes(a)
}

fn text_field(b: &[u8], name: &str) -> Result<String> {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    let s = &b[..end];
    if !s.iter().all(|c| c.is_ascii_graphic()) {
        return Err(bad(name, "not printable ASCII"));
    }
    Ok(String::from_utf8_lossy(s).into_owned())
}

/// Writes `s` NUL padded; a string filling the whole field (no NUL) is kept whole, as parsed.
fn put_text(dst: &mut [u8], s: &str) {
    let n = s.len().min(dst.len());
    dst[..n].copy_from_slice(&s.as_bytes()[..n]);
}

/// Sectors of key material for `key_bytes` with 4000 stripes, rounded to 4 KiB.
fn slot_stride_sectors(key_bytes: u64) -> u64 {
    let sectors = (key_bytes * u64::from(LUKS_STRIPES)).div_ceil(SECTOR_SIZE as u64);
    sectors.div_ceil(MATERIAL_ALIGN_SECTORS) * MATERIAL_ALIGN_SECTORS
}

impl LuksHeader {
    /// Parses and validates a LUKS1 header; `bytes` must hold at least 592 bytes.
    ///
    /// Checks, each a typed [`Error::InvalidLuksHeader`] naming the field: magic, version 1,
    /// printable text fields, `key_bytes` in 1..=512, master-key iterations ≠ 0, every slot's
    /// state is enabled or disabled, stripes == 4000, key material lies after the header and
    /// inside the payload offset, and no two slots' material overlaps. The cipher strings are
    /// not required to name a supported cipher here (so `info` works on any image); see
    /// [`cipher`](Self::cipher).
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        let b = bytes
            .get(..LUKS_HEADER_LEN)
            .ok_or_else(|| bad("header", format!("only {} bytes, need 592", bytes.len())))?;
        if b[0..6] != MAGIC {
            return Err(bad("magic", "not a LUKS header"));
        }
        let version = u16::from_be_bytes([b[6], b[7]]);
        if version != 1 {
            return Err(bad(
                "version",
                format!("{version} (only LUKS1 is supported)"),
            ));
        }
        let cipher_name = text_field(&b[8..40], "cipher_name")?;
        let cipher_mode = text_field(&b[40..72], "cipher_mode")?;
        let hash_spec = text_field(&b[72..104], "hash_spec")?;
        let payload_offset = be32(b, 104);
        let key_bytes = be32(b, 108);
        if key_bytes == 0 || key_bytes > MAX_HEADER_KEY_BYTES {
            return Err(bad("key_bytes", format!("{key_bytes} is not in 1..=512")));
        }
        let mut mk_digest = [0u8; DIGEST_LEN];
        mk_digest.copy_from_slice(&b[112..132]);
        let mut mk_salt = [0u8; SALT_LEN];
        mk_salt.copy_from_slice(&b[132..164]);
        let mk_iterations = be32(b, 164);
        if mk_iterations == 0 {
            return Err(bad("mk_digest_iter", "iteration count is zero"));
        }
        let uuid = text_field(&b[168..208], "uuid")?;

        let mut slots: [KeySlot; LUKS_KEY_SLOTS] = std::array::from_fn(|_| KeySlot {
            active: false,
            iterations: 0,
            salt: [0; SALT_LEN],
            key_offset: 0,
            stripes: 0,
        });
        for (i, slot) in slots.iter_mut().enumerate() {
            let r = &b[SLOT_TABLE + i * SLOT_RECORD..SLOT_TABLE + (i + 1) * SLOT_RECORD];
            let state = be32(r, 0);
            slot.active = match state {
                SLOT_ENABLED => true,
                SLOT_DISABLED => false,
                _ => {
                    return Err(bad(
                        format!("key slot {i} state"),
                        format!("{state:#010x} is neither enabled nor disabled"),
                    ));
                }
            };
            slot.iterations = be32(r, 4);
            slot.salt.copy_from_slice(&r[8..40]);
            slot.key_offset = be32(r, 40);
            slot.stripes = be32(r, 44);
            if slot.stripes != LUKS_STRIPES {
                return Err(bad(
                    format!("key slot {i} stripes"),
                    format!("{} != 4000", slot.stripes),
                ));
            }
            if slot.active && slot.iterations == 0 {
                return Err(bad(
                    format!("key slot {i} iterations"),
                    "zero in an active slot",
                ));
            }
            let start = u64::from(slot.key_offset) * SECTOR_SIZE as u64;
            if start < LUKS_HEADER_LEN as u64 {
                return Err(bad(
                    format!("key slot {i} key_material_offset"),
                    "overlaps the LUKS header",
                ));
            }
            let end = start + slot.material_len(key_bytes);
            if end > u64::from(payload_offset) * SECTOR_SIZE as u64 {
                return Err(bad(
                    format!("key slot {i} key_material_offset"),
                    "key material overlaps the encrypted payload",
                ));
            }
        }
        for i in 0..LUKS_KEY_SLOTS {
            for j in i + 1..LUKS_KEY_SLOTS {
                let (a, c) = (&slots[i], &slots[j]);
                let a0 = u64::from(a.key_offset) * SECTOR_SIZE as u64;
                let c0 = u64::from(c.key_offset) * SECTOR_SIZE as u64;
                let a1 = a0 + a.material_len(key_bytes);
                let c1 = c0 + c.material_len(key_bytes);
                if a0 < c1 && c0 < a1 {
                    return Err(bad(
                        format!("key slots {i} and {j}"),
                        "key material overlaps",
                    ));
                }
            }
        }
        Ok(LuksHeader {
            cipher_name,
            cipher_mode,
            hash_spec,
            payload_offset,
            key_bytes,
            mk_digest,
            mk_salt,
            mk_iterations,
            uuid,
            slots,
        })
    }

    /// The 592-byte on-disk form.
    pub fn to_bytes(&self) -> [u8; LUKS_HEADER_LEN] {
        let mut b = [0u8; LUKS_HEADER_LEN];
        b[0..6].copy_from_slice(&MAGIC);
        b[6..8].copy_from_slice(&1u16.to_be_bytes());
        put_text(&mut b[8..40], &self.cipher_name);
        put_text(&mut b[40..72], &self.cipher_mode);
        put_text(&mut b[72..104], &self.hash_spec);
        b[104..108].copy_from_slice(&self.payload_offset.to_be_bytes());
        b[108..112].copy_from_slice(&self.key_bytes.to_be_bytes());
        b[112..132].copy_from_slice(&self.mk_digest);
        b[132..164].copy_from_slice(&self.mk_salt);
        b[164..168].copy_from_slice(&self.mk_iterations.to_be_bytes());
        put_text(&mut b[168..208], &self.uuid);
        for (i, s) in self.slots.iter().enumerate() {
            let at = SLOT_TABLE + i * SLOT_RECORD;
            b[at..at + SLOT_RECORD].copy_from_slice(&s.to_bytes());
        }
        b
    }

    /// Length of the LUKS region in bytes (payload offset × 512). The first data cluster of
    /// the qcow2 image follows this region, rounded up to a cluster.
    pub fn payload_offset_bytes(&self) -> u64 {
        u64::from(self.payload_offset) * SECTOR_SIZE as u64
    }

    /// Payload offset in 512-byte sectors, as stored.
    pub fn payload_offset_sectors(&self) -> u32 {
        self.payload_offset
    }

    /// Indices of the active key slots, in order.
    pub fn active_slots(&self) -> impl Iterator<Item = usize> + '_ {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.active)
            .map(|(i, _)| i)
    }

    /// All eight key slots.
    pub fn slots(&self) -> &[KeySlot; LUKS_KEY_SLOTS] {
        &self.slots
    }

    /// Cipher name as stored (`aes`).
    pub fn cipher_name(&self) -> &str {
        &self.cipher_name
    }

    /// Cipher mode string as stored (`xts-plain64`, `cbc-essiv:sha256`).
    pub fn cipher_mode_spec(&self) -> &str {
        &self.cipher_mode
    }

    /// Hash name as stored (`sha256`).
    pub fn hash_spec(&self) -> &str {
        &self.hash_spec
    }

    /// Master key length in bytes (64 for AES-256-XTS).
    pub fn key_bytes(&self) -> u32 {
        self.key_bytes
    }

    /// PBKDF2 iterations of the master-key digest.
    pub fn mk_iterations(&self) -> u32 {
        self.mk_iterations
    }

    /// The volume UUID string.
    pub fn uuid(&self) -> &str {
        &self.uuid
    }

    /// The cipher, mode and IV generator the strings and `key_bytes` describe, or
    /// [`Error::UnsupportedCipher`] for ciphers this crate does not implement (cast5, serpent,
    /// twofish, ctr mode, ...).
    pub fn cipher(&self) -> Result<(CipherAlg, CipherMode, IvGen)> {
        let unsupported = |what: String| Error::UnsupportedCipher { what };
        if self.cipher_name != "aes" {
            return Err(unsupported(format!("cipher {:?}", self.cipher_name)));
        }
        let (mode_s, iv_s) = match self.cipher_mode.split_once('-') {
            Some((m, iv)) => (m, Some(iv)),
            None => (self.cipher_mode.as_str(), None),
        };
        let mode = match mode_s {
            "xts" => CipherMode::Xts,
            "cbc" => CipherMode::Cbc,
            "ecb" => CipherMode::Ecb,
            _ => return Err(unsupported(format!("cipher mode {:?}", self.cipher_mode))),
        };
        let ivgen = match iv_s.map(|s| s.split_once(':').unwrap_or((s, ""))) {
            None => IvGen::Plain64,
            // A hash given with plain/plain64 is accepted and ignored (dm-crypt compatible).
            Some(("plain", _)) => IvGen::Plain,
            Some(("plain64", _)) => IvGen::Plain64,
            Some(("essiv", h)) => IvGen::Essiv(
                HashAlg::from_name(h).ok_or_else(|| unsupported(format!("ESSIV hash {h:?}")))?,
            ),
            _ => {
                return Err(unsupported(format!(
                    "IV generator in {:?}",
                    self.cipher_mode
                )));
            }
        };
        if ivgen == IvGen::Plain64 && iv_s.is_none() && mode != CipherMode::Ecb {
            return Err(unsupported(format!(
                "cipher mode {:?} without IV generator",
                self.cipher_mode
            )));
        }
        let per_key = match mode {
            CipherMode::Xts if self.key_bytes.is_multiple_of(2) => self.key_bytes / 2,
            CipherMode::Xts => 0,
            _ => self.key_bytes,
        };
        let alg = match per_key {
            16 => CipherAlg::Aes128,
            24 => CipherAlg::Aes192,
            32 => CipherAlg::Aes256,
            _ => {
                return Err(unsupported(format!(
                    "aes-{mode_s} with a {}-byte key",
                    self.key_bytes
                )));
            }
        };
        Ok((alg, mode, ivgen))
    }

    /// The PBKDF2/AF hash, or [`Error::UnsupportedCipher`] (e.g. ripemd160).
    pub fn hash_alg(&self) -> Result<HashAlg> {
        HashAlg::from_name(&self.hash_spec).ok_or_else(|| Error::UnsupportedCipher {
            what: format!("hash {:?}", self.hash_spec),
        })
    }

    fn slot(&self, i: usize) -> Result<&KeySlot> {
        self.slots.get(i).ok_or(Error::KeySlot {
            slot: i,
            reason: "there are only 8 key slots (0..=7)",
        })
    }
}

/// Reads and parses the header at the start of `region`.
pub fn luks_read_header(region: &mut dyn LuksRegion) -> Result<LuksHeader> {
    let mut b = [0u8; LUKS_HEADER_LEN];
    region.read_at(0, &mut b)?;
    LuksHeader::parse(&b)
}

/// Bytes the LUKS region needs for these options (payload offset × 512), before rounding up to
/// clusters: 2 068 480 for AES-256-XTS, 528 384 for AES-128-CBC.
pub fn luks_region_len(opts: &LuksOptions) -> u64 {
    let key_bytes = opts.mode.key_bytes(opts.cipher) as u64;
    (FIRST_MATERIAL_SECTOR + LUKS_KEY_SLOTS as u64 * slot_stride_sectors(key_bytes))
        * SECTOR_SIZE as u64
}

/// PBKDF2 iterations per second for `hash` on this machine (about 0.1 s of measuring).
fn pbkdf2_rate(hash: HashAlg, key_len: usize) -> u64 {
    let mut out = Zeroizing::new(vec![0u8; key_len]);
    let salt = [0u8; SALT_LEN];
    let mut iters: u32 = 1 << 10;
    loop {
        let t = Instant::now();
        pbkdf2(hash, b"calibration passphrase", &salt, iters, &mut out);
        let ms = t.elapsed().as_secs_f64() * 1000.0;
        if ms >= 100.0 || iters >= 1 << 28 {
            return ((f64::from(iters) * 1000.0 / ms.max(0.001)) as u64).max(1);
        }
        iters = iters.saturating_mul(2);
    }
}

/// (slot iterations, master-key digest iterations) for a policy.
fn iteration_counts(policy: Iterations, hash: HashAlg, key_len: usize) -> Result<(u32, u32)> {
    match policy {
        Iterations::Fixed(0) => Err(Error::InvalidCryptoParameter(
            "Iterations::Fixed(0): PBKDF2 needs at least one iteration",
        )),
        Iterations::Fixed(n) => Ok((n, n)),
        Iterations::Calibrate { millis } => {
            let per_ms = pbkdf2_rate(hash, key_len) as u128;
            let slot = (per_ms * u128::from(millis) / 1000).max(MIN_CALIBRATED_ITERATIONS.into());
            let mk = (per_ms * u128::from(millis) / 1000 / 8).max(MIN_CALIBRATED_ITERATIONS.into());
            let fit = |v: u128| {
                u32::try_from(v).map_err(|_| {
                    Error::InvalidCryptoParameter("calibrated iteration count exceeds u32")
                })
            };
            Ok((fit(slot)?, fit(mk)?))
        }
    }
}

fn slot_iterations(policy: Iterations, hash: HashAlg, key_len: usize) -> Result<u32> {
    iteration_counts(policy, hash, key_len).map(|(s, _)| s)
}

fn random_uuid() -> Result<String> {
    let mut r = [0u8; 16];
    super::fill_random(&mut r)?;
    r[6] = (r[6] & 0x0f) | 0x40; // version 4
    r[8] = (r[8] & 0x3f) | 0x80; // RFC 4122 variant
    let h: Vec<String> = r.iter().map(|b| format!("{b:02x}")).collect();
    Ok(format!(
        "{}-{}-{}-{}-{}",
        h[0..4].concat(),
        h[4..6].concat(),
        h[6..8].concat(),
        h[8..10].concat(),
        h[10..16].concat()
    ))
}

/// Cipher, hash and master-key digest check shared by every unlocking path.
struct Unlocker {
    alg: CipherAlg,
    mode: CipherMode,
    ivgen: IvGen,
    hash: HashAlg,
    key_bytes: usize,
    material: Zeroizing<Vec<u8>>,
}

impl Unlocker {
    /// Validates the header against `limits` and the supported ciphers, and allocates the
    /// key-material buffer (bounded by the limits).
    fn new(h: &LuksHeader, limits: &OpenLimits) -> Result<Self> {
        let (alg, mode, ivgen) = h.cipher()?;
        let hash = h.hash_alg()?;
        let limit = |what: String, value: u32, limit: u32| -> Result<()> {
            if value > limit {
                return Err(Error::LuksLimit {
                    what,
                    value: value.into(),
                    limit: limit.into(),
                });
            }
            Ok(())
        };
        limit("key_bytes".into(), h.key_bytes, limits.max_key_bytes)?;
        limit(
            "mk_digest_iter".into(),
            h.mk_iterations,
            limits.max_iterations,
        )?;
        for (i, s) in h.slots.iter().enumerate() {
            if s.active {
                limit(
                    format!("key slot {i} stripes"),
                    s.stripes,
                    limits.max_stripes,
                )?;
                limit(
                    format!("key slot {i} iterations"),
                    s.iterations,
                    limits.max_iterations,
                )?;
            }
        }
        // Validated above: key_bytes <= max_key_bytes, stripes <= max_stripes.
        let len = h.key_bytes as usize * LUKS_STRIPES.min(limits.max_stripes) as usize;
        Ok(Unlocker {
            alg,
            mode,
            ivgen,
            hash,
            key_bytes: h.key_bytes as usize,
            material: Zeroizing::new(vec![0u8; len]),
        })
    }

    /// Tries one slot; `Ok(None)` when the passphrase does not open it.
    fn try_slot(
        &mut self,
        region: &mut dyn LuksRegion,
        h: &LuksHeader,
        i: usize,
        passphrase: &Passphrase,
    ) -> Result<Option<MasterKey>> {
        let slot = h.slot(i)?;
        if !slot.active {
            return Ok(None);
        }
        let stripes = slot.stripes as usize;
        let len = self.key_bytes * stripes;
        let material = self.material.get_mut(..len).ok_or(Error::LuksLimit {
            what: format!("key slot {i} stripes"),
            value: slot.stripes.into(),
            limit: LUKS_STRIPES.into(),
        })?;
        region.read_at(u64::from(slot.key_offset) * SECTOR_SIZE as u64, material)?;

        let mut slot_key = Zeroizing::new(vec![0u8; self.key_bytes]);
        pbkdf2(
            self.hash,
            passphrase.as_bytes(),
            &slot.salt,
            slot.iterations,
            &mut slot_key,
        );
        let cipher = SectorCipher::new(self.alg, self.mode, self.ivgen, &slot_key)?;
        cipher.crypt_partial(0, material, false)?;
        let candidate = af_merge(self.hash, material, self.key_bytes, stripes);

        let mut digest = [0u8; DIGEST_LEN];
        pbkdf2(
            self.hash,
            &candidate,
            &h.mk_salt,
            h.mk_iterations,
            &mut digest,
        );
        if ct_eq(&digest, &h.mk_digest) {
            Ok(Some(MasterKey::new(candidate.to_vec())))
        } else {
            Ok(None)
        }
    }
}

/// Unlocks the volume and returns the raw master key and the slot that matched.
///
/// Like [`luks_open`], for callers that need the key itself (re-encryption, key escrow).
pub fn luks_open_master_key(
    region: &mut dyn LuksRegion,
    passphrase: &Passphrase,
    limits: &OpenLimits,
) -> Result<(LuksHeader, MasterKey, usize)> {
    let h = luks_read_header(region)?;
    let mut u = Unlocker::new(&h, limits)?;
    let active: Vec<usize> = h.active_slots().collect();
    for i in active {
        if let Some(mk) = u.try_slot(region, &h, i, passphrase)? {
            return Ok((h, mk, i));
        }
    }
    Err(Error::WrongPassphrase)
}

/// Unlocks a LUKS volume: PBKDF2 runs for each active slot in order (with the iteration count
/// stored in that slot) until the master-key digest matches.
///
/// A wrong passphrase is [`Error::WrongPassphrase`], never garbage. The header is checked
/// against `limits` before any PBKDF2 run or allocation depends on it.
///
/// ```
/// use kvmsec_qcow2::crypto::*;
///
/// let opts = LuksOptions { iterations: Iterations::Fixed(1000), ..LuksOptions::default() };
/// let mut region = vec![0u8; luks_region_len(&opts) as usize];
/// let pw = Passphrase::from("secret");
/// luks_format(&mut region, &opts, &pw)?;
///
/// let (header, cipher) = luks_open(&mut region, &pw, &OpenLimits::default())?;
/// assert_eq!(header.cipher_mode_spec(), "xts-plain64");
/// assert_eq!(cipher.alg(), CipherAlg::Aes256);
/// let wrong = luks_open(&mut region, &Passphrase::from("nope"), &OpenLimits::default());
/// assert!(matches!(wrong, Err(kvmsec_qcow2::Error::WrongPassphrase)));
/// # Ok::<(), kvmsec_qcow2::Error>(())
/// ```
pub fn luks_open(
    region: &mut dyn LuksRegion,
    passphrase: &Passphrase,
    limits: &OpenLimits,
) -> Result<(LuksHeader, SectorCipher)> {
    let (h, mk, _) = luks_open_master_key(region, passphrase, limits)?;
    let (alg, mode, ivgen) = h.cipher()?;
    let c = SectorCipher::new(alg, mode, ivgen, mk.as_bytes())?;
    Ok((h, c))
}

/// Writes `mk` split, encrypted with a key derived from `passphrase`, into slot `i`'s
/// material area, and returns the slot record to enable it (not yet written).
fn store_key(
    region: &mut dyn LuksRegion,
    h: &LuksHeader,
    spec: (CipherAlg, CipherMode, IvGen, HashAlg),
    i: usize,
    mk: &MasterKey,
    passphrase: &Passphrase,
    iterations: u32,
) -> Result<KeySlot> {
    let (alg, mode, ivgen, hash) = spec;
    let old = h.slot(i)?;
    let mut salt = [0u8; SALT_LEN];
    super::fill_random(&mut salt)?;
    let mut slot_key = Zeroizing::new(vec![0u8; mk.len()]);
    pbkdf2(
        hash,
        passphrase.as_bytes(),
        &salt,
        iterations,
        &mut slot_key,
    );
    let mut material = af_split(hash, mk.as_bytes(), old.stripes as usize)?;
    SectorCipher::new(alg, mode, ivgen, &slot_key)?.crypt_partial(0, &mut material, true)?;
    region.write_at(u64::from(old.key_offset) * SECTOR_SIZE as u64, &material)?;
    Ok(KeySlot {
        active: true,
        iterations,
        salt,
        key_offset: old.key_offset,
        stripes: old.stripes,
    })
}

fn write_slot_record(region: &mut dyn LuksRegion, i: usize, slot: &KeySlot) -> Result<()> {
    region.write_at((SLOT_TABLE + i * SLOT_RECORD) as u64, &slot.to_bytes())
}

/// Creates a fresh LUKS1 volume in `region` (QEMU's layout: key material of slot `i` at sector
/// 8 + i·S with S = the material size rounded up to 4 KiB, payload after slot 7), with
/// `passphrase` in slot 0, and returns the header and the data cipher.
///
/// `region` must be at least [`luks_region_len`] bytes long. Everything in the region is
/// overwritten (inactive slots' areas with zeros). AES-192 in CBC or ECB mode is refused
/// ([`Error::UnsupportedCipher`]): its key material is not a whole number of sectors and
/// qemu-img aborts on such images (they can still be opened).
///
/// # References
/// QEMU `crypto/block-luks.c` (`qcrypto_block_luks_create`): uuid, master-key digest with
/// iterations/8, 4000 stripes, 4 KiB-aligned slot areas.
pub fn luks_format(
    region: &mut dyn LuksRegion,
    opts: &LuksOptions,
    passphrase: &Passphrase,
) -> Result<(LuksHeader, SectorCipher)> {
    let key_len = opts.mode.key_bytes(opts.cipher);
    if !(key_len * LUKS_STRIPES as usize).is_multiple_of(SECTOR_SIZE) {
        return Err(Error::UnsupportedCipher {
            what: format!(
                "{}-{}: its key material is not a whole number of sectors, which qemu-img \
                 cannot process",
                opts.cipher, opts.mode
            ),
        });
    }
    let mk = MasterKey::random(key_len)?;
    // Validates the combination (e.g. ESSIV with sha1) before anything is written.
    let data_cipher = SectorCipher::new(opts.cipher, opts.mode, opts.ivgen, mk.as_bytes())?;
    let (slot_iters, mk_iters) = iteration_counts(opts.iterations, opts.hash, key_len)?;

    let stride = slot_stride_sectors(key_len as u64);
    let region_len = luks_region_len(opts);
    let payload_offset = u32::try_from(region_len / SECTOR_SIZE as u64)
        .map_err(|_| Error::InvalidCryptoParameter("LUKS region too large"))?;
    let mut mk_salt = [0u8; SALT_LEN];
    super::fill_random(&mut mk_salt)?;
    let mut mk_digest = [0u8; DIGEST_LEN];
    pbkdf2(opts.hash, mk.as_bytes(), &mk_salt, mk_iters, &mut mk_digest);
    let mode_spec = format!("{}-{}", opts.mode.name(), opts.ivgen.name());
    let mut h = LuksHeader {
        cipher_name: "aes".to_owned(),
        cipher_mode: mode_spec,
        hash_spec: opts.hash.name().to_owned(),
        payload_offset,
        key_bytes: key_len as u32,
        mk_digest,
        mk_salt,
        mk_iterations: mk_iters,
        uuid: random_uuid()?,
        slots: std::array::from_fn(|i| KeySlot {
            active: false,
            iterations: 0,
            salt: [0; SALT_LEN],
            key_offset: (FIRST_MATERIAL_SECTOR + i as u64 * stride) as u32,
            stripes: LUKS_STRIPES,
        }),
    };

    // Clear the whole region first so stale data never looks like key material.
    let zeros = vec![0u8; 64 * 1024];
    let mut at = 0u64;
    while at < region_len {
        let n = (region_len - at).min(zeros.len() as u64) as usize;
        region.write_at(at, &zeros[..n])?;
        at += n as u64;
    }
    let spec = (opts.cipher, opts.mode, opts.ivgen, opts.hash);
    h.slots[0] = store_key(region, &h, spec, 0, &mk, passphrase, slot_iters)?;
    region.write_at(0, &h.to_bytes())?;
    region.sync()?;
    Ok((h, data_cipher))
}

/// Which key slots [`luks_remove_key`] disables.
#[derive(Debug, Clone, Copy)]
pub enum KeySlotSelector<'a> {
    /// Every active slot this passphrase opens (like `qemu-img amend -o
    /// encrypt.state=inactive,encrypt.old-secret=...`).
    Passphrase(&'a Passphrase),
    /// One slot by index (like `encrypt.keyslot=N`); no passphrase needed.
    Slot(usize),
}

/// Adds `new` as a passphrase, unlocking with `existing`. `slot`: a given slot index, or the
/// first inactive slot. Returns the slot used.
///
/// Crash-safe: the new key material is written and synced into the (inactive) slot's area
/// before the slot record that enables it is written and synced; until then the old header is
/// untouched. Overwriting an *active* slot is refused ([`Error::KeySlot`]) — unlike `qemu-img
/// amend --force`, which cannot be done without a window where that slot opens nothing; remove
/// it first or use [`luks_change_key`].
pub fn luks_add_key(
    region: &mut dyn LuksRegion,
    existing: &Passphrase,
    new: &Passphrase,
    slot: Option<usize>,
    iterations: Iterations,
    limits: &OpenLimits,
) -> Result<usize> {
    let (h, mk, _) = luks_open_master_key(region, existing, limits)?;
    add_with_key(region, &h, &mk, new, slot, iterations)
}

fn add_with_key(
    region: &mut dyn LuksRegion,
    h: &LuksHeader,
    mk: &MasterKey,
    new: &Passphrase,
    slot: Option<usize>,
    iterations: Iterations,
) -> Result<usize> {
    let i = match slot {
        Some(i) => {
            if h.slot(i)?.active {
                return Err(Error::KeySlot {
                    slot: i,
                    reason: "slot is active; remove it first (overwriting in place is not crash-safe)",
                });
            }
            i
        }
        None => h
            .slots
            .iter()
            .position(|s| !s.active)
            .ok_or(Error::NoFreeKeySlot)?,
    };
    let (alg, mode, ivgen) = h.cipher()?;
    let hash = h.hash_alg()?;
    let iters = slot_iterations(iterations, hash, mk.len())?;
    let record = store_key(region, h, (alg, mode, ivgen, hash), i, mk, new, iters)?;
    region.sync()?;
    write_slot_record(region, i, &record)?;
    region.sync()?;
    Ok(i)
}

/// Disables key slot `i`: the slot record first (then sync), then the material is overwritten
/// with random data (then sync).
fn erase_slot(region: &mut dyn LuksRegion, h: &LuksHeader, i: usize) -> Result<()> {
    let old = h.slot(i)?;
    let record = KeySlot {
        active: false,
        iterations: 0,
        salt: [0; SALT_LEN],
        key_offset: old.key_offset,
        stripes: old.stripes,
    };
    write_slot_record(region, i, &record)?;
    region.sync()?;
    let len = old.material_len(h.key_bytes) as usize; // bounded by parse: key_bytes <= 512
    let mut junk = Zeroizing::new(vec![0u8; len]);
    for _ in 0..ERASE_PASSES {
        super::fill_random(&mut junk)?;
        region.write_at(u64::from(old.key_offset) * SECTOR_SIZE as u64, &junk)?;
        region.sync()?;
    }
    Ok(())
}

/// Removes passphrases: the slots a passphrase opens, or one slot by index. Returns the slots
/// disabled. Refuses ([`Error::KeySlot`]) to disable the last active slot unless `force_last`
/// (after which no passphrase opens the volume: the data is lost for good).
///
/// Erasing writes the disabled slot record and syncs first, then overwrites the slot's key
/// material with one pass of random data and syncs. QEMU makes 40 passes; on today's disks
/// one pass is as good, and neither helps on copy-on-write or SSD storage that keeps old
/// copies of the blocks — change passphrases before a key can leak, not after.
pub fn luks_remove_key(
    region: &mut dyn LuksRegion,
    which: KeySlotSelector<'_>,
    force_last: bool,
    limits: &OpenLimits,
) -> Result<Vec<usize>> {
    let h = luks_read_header(region)?;
    let targets: Vec<usize> = match which {
        KeySlotSelector::Slot(i) => {
            if !h.slot(i)?.active {
                return Err(Error::KeySlot {
                    slot: i,
                    reason: "slot is not active",
                });
            }
            vec![i]
        }
        KeySlotSelector::Passphrase(p) => {
            let mut u = Unlocker::new(&h, limits)?;
            let mut found = Vec::new();
            let active: Vec<usize> = h.active_slots().collect();
            for i in active {
                if u.try_slot(region, &h, i, p)?.is_some() {
                    found.push(i);
                }
            }
            if found.is_empty() {
                return Err(Error::WrongPassphrase);
            }
            found
        }
    };
    let remaining = h.active_slots().filter(|i| !targets.contains(i)).count();
    if remaining == 0 && !force_last {
        return Err(Error::KeySlot {
            slot: targets.first().copied().unwrap_or(0),
            reason: "refusing to remove the last active key slot: no passphrase would open the image afterwards",
        });
    }
    for &i in &targets {
        erase_slot(region, &h, i)?;
    }
    Ok(targets)
}

/// Replaces passphrase `old` by `new`: `new` is added to a free slot (written and synced, see
/// [`luks_add_key`]), then every slot `old` opens is removed (see [`luks_remove_key`]).
/// Returns the new slot. At every point either `old` or `new` opens the volume.
///
/// Needs a free slot ([`Error::NoFreeKeySlot`] when all eight are in use).
pub fn luks_change_key(
    region: &mut dyn LuksRegion,
    old: &Passphrase,
    new: &Passphrase,
    iterations: Iterations,
    limits: &OpenLimits,
) -> Result<usize> {
    let h = luks_read_header(region)?;
    let mut u = Unlocker::new(&h, limits)?;
    let mut mk = None;
    let mut old_slots = Vec::new();
    let active: Vec<usize> = h.active_slots().collect();
    for i in active {
        if let Some(k) = u.try_slot(region, &h, i, old)? {
            old_slots.push(i);
            mk = Some(k);
        }
    }
    let mk = mk.ok_or(Error::WrongPassphrase)?;
    let new_slot = add_with_key(region, &h, &mk, new, None, iterations)?;
    let h = luks_read_header(region)?;
    for i in old_slots {
        erase_slot(region, &h, i)?;
    }
    Ok(new_slot)
}

#[cfg(test)]
mod tests;

//! Sector ciphers: AES in XTS, CBC and ECB mode over 512-byte sectors, with the IV generators
//! QEMU and dm-crypt use (plain, plain64, ESSIV), plus the legacy qcow2 AES method.

use std::fmt;

use aes::{Aes128, Aes192, Aes256};
use cipher::array::Array;
use cipher::consts::U16;
use cipher::{BlockCipherDecrypt, BlockCipherEncrypt, BlockModeDecrypt, BlockModeEncrypt};
use cipher::{InnerIvInit, KeyInit};
use sha2::Digest;

use super::secret::Passphrase;
use crate::{Error, Result};

/// Sector size used by every qcow2 encryption method (and by LUKS key material).
pub const SECTOR_SIZE: usize = 512;

type Block = Array<u8, U16>;

/// The block cipher (and its key size) of an encrypted image.
///
/// Only AES is implemented; QEMU can also write cast5, serpent and twofish LUKS images, which
/// are reported as [`Error::UnsupportedCipher`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub enum CipherAlg {
    /// AES with a 128-bit key.
    Aes128,
    /// AES with a 192-bit key.
    Aes192,
    /// AES with a 256-bit key (QEMU's default).
    Aes256,
}

impl CipherAlg {
    /// Key size of one AES instance in bytes (16, 24 or 32).
    pub fn key_bytes(self) -> usize {
        match self {
            CipherAlg::Aes128 => 16,
            CipherAlg::Aes192 => 24,
            CipherAlg::Aes256 => 32,
        }
    }

    /// The name `qemu-img info` shows (`aes-128`, `aes-192`, `aes-256`).
    pub fn name(self) -> &'static str {
        match self {
            CipherAlg::Aes128 => "aes-128",
            CipherAlg::Aes192 => "aes-192",
            CipherAlg::Aes256 => "aes-256",
        }
    }

    fn from_aes_key_bytes(n: usize) -> Option<Self> {
        match n {
            16 => Some(CipherAlg::Aes128),
            24 => Some(CipherAlg::Aes192),
            32 => Some(CipherAlg::Aes256),
            _ => None,
        }
    }
}

impl fmt::Display for CipherAlg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Block cipher mode of operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub enum CipherMode {
    /// XTS (IEEE 1619): two keys, the IV is the tweak (QEMU's default).
    Xts,
    /// CBC with one IV per sector.
    Cbc,
    /// ECB (no IV; every equal 16-byte block encrypts the same). Read support for old images only.
    Ecb,
}

impl CipherMode {
    /// The name used in LUKS headers and by `qemu-img` (`xts`, `cbc`, `ecb`).
    pub fn name(self) -> &'static str {
        match self {
            CipherMode::Xts => "xts",
            CipherMode::Cbc => "cbc",
            CipherMode::Ecb => "ecb",
        }
    }

    /// Master-key length for `alg` in this mode (XTS needs two AES keys).
    pub fn key_bytes(self, alg: CipherAlg) -> usize {
        match self {
            CipherMode::Xts => 2 * alg.key_bytes(),
            CipherMode::Cbc | CipherMode::Ecb => alg.key_bytes(),
        }
    }
}

impl fmt::Display for CipherMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Hash algorithm (for PBKDF2, the anti-forensic diffuser and ESSIV).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub enum HashAlg {
    /// SHA-1 (20-byte digest).
    Sha1,
    /// SHA-224 (28-byte digest).
    Sha224,
    /// SHA-256 (32-byte digest; QEMU's default).
    Sha256,
    /// SHA-384 (48-byte digest).
    Sha384,
    /// SHA-512 (64-byte digest).
    Sha512,
}

impl HashAlg {
    /// The name used in LUKS headers (`sha1`, `sha256`, ...).
    pub fn name(self) -> &'static str {
        match self {
            HashAlg::Sha1 => "sha1",
            HashAlg::Sha224 => "sha224",
            HashAlg::Sha256 => "sha256",
            HashAlg::Sha384 => "sha384",
            HashAlg::Sha512 => "sha512",
        }
    }

    /// Parses a LUKS hash name; `None` for names this crate does not implement.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "sha1" => Some(HashAlg::Sha1),
            "sha224" => Some(HashAlg::Sha224),
            "sha256" => Some(HashAlg::Sha256),
            "sha384" => Some(HashAlg::Sha384),
            "sha512" => Some(HashAlg::Sha512),
            _ => None,
        }
    }

    /// Digest length in bytes.
    pub fn digest_len(self) -> usize {
        match self {
            HashAlg::Sha1 => 20,
            HashAlg::Sha224 => 28,
            HashAlg::Sha256 => 32,
            HashAlg::Sha384 => 48,
            HashAlg::Sha512 => 64,
        }
    }

    /// Hashes `parts` (concatenated) into `out`, which must hold at least
    /// [`digest_len`](Self::digest_len) bytes; returns the digest length.
    pub(crate) fn hash_into(self, parts: &[&[u8]], out: &mut [u8; 64]) -> usize {
        fn run<D: Digest>(parts: &[&[u8]], out: &mut [u8; 64]) -> usize {
            let mut h = D::new();
            for p in parts {
                h.update(p);
            }
            let d = h.finalize();
            let n = d.len().min(out.len());
            out[..n].copy_from_slice(&d[..n]);
            n
        }
        match self {
            HashAlg::Sha1 => run::<sha1::Sha1>(parts, out),
            HashAlg::Sha224 => run::<sha2::Sha224>(parts, out),
            HashAlg::Sha256 => run::<sha2::Sha256>(parts, out),
            HashAlg::Sha384 => run::<sha2::Sha384>(parts, out),
            HashAlg::Sha512 => run::<sha2::Sha512>(parts, out),
        }
    }
}

impl fmt::Display for HashAlg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How the per-sector IV (XTS: tweak input) is derived from the sector number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub enum IvGen {
    /// Sector number truncated to 32 bits, little-endian, zero padded (wraps at 2 TiB).
    Plain,
    /// Sector number as 64-bit little-endian, zero padded (QEMU's default).
    Plain64,
    /// ESSIV: the plain64 IV encrypted with AES keyed by `hash(key)`. As in QEMU and dm-crypt,
    /// the IV cipher's key size is the hash digest length, so only SHA-256 (→ AES-256) works
    /// with AES; other hashes are refused with [`Error::UnsupportedCipher`].
    Essiv(HashAlg),
}

impl IvGen {
    /// The name used in LUKS headers (`plain`, `plain64`, `essiv:sha256`).
    pub fn name(self) -> String {
        match self {
            IvGen::Plain => "plain".to_owned(),
            IvGen::Plain64 => "plain64".to_owned(),
            IvGen::Essiv(h) => format!("essiv:{}", h.name()),
        }
    }
}

/// The IV cipher of ESSIV; its size follows the hash digest length.
#[derive(Clone)]
enum EssivCipher {
    Aes128(Aes128),
    Aes192(Aes192),
    Aes256(Aes256),
}

#[derive(Clone)]
enum IvSource {
    Plain,
    Plain64,
    Essiv(Box<EssivCipher>),
}

impl IvSource {
    fn new(ivgen: IvGen, key: &[u8]) -> Result<Self> {
        Ok(match ivgen {
            IvGen::Plain => IvSource::Plain,
            IvGen::Plain64 => IvSource::Plain64,
            IvGen::Essiv(hash) => {
                let mut digest = zeroize::Zeroizing::new([0u8; 64]);
                let n = hash.hash_into(&[key], &mut digest);
                let d = &digest[..n];
                let unsupported = || Error::UnsupportedCipher {
                    what: format!(
                        "ESSIV with {} needs an AES key of {n} bytes, which does not exist",
                        hash.name()
                    ),
                };
                let c = match CipherAlg::from_aes_key_bytes(n).ok_or_else(unsupported)? {
                    CipherAlg::Aes128 => Aes128::new_from_slice(d).map(EssivCipher::Aes128),
                    CipherAlg::Aes192 => Aes192::new_from_slice(d).map(EssivCipher::Aes192),
                    CipherAlg::Aes256 => Aes256::new_from_slice(d).map(EssivCipher::Aes256),
                }
                .map_err(|_| unsupported())?;
                IvSource::Essiv(Box::new(c))
            }
        })
    }

    /// The IVs of `out.len()` consecutive sectors starting at `first` (wrapping), with the
    /// generator chosen once rather than per sector.
    #[inline]
    fn fill(&self, first: u64, out: &mut [Block]) {
        match self {
            IvSource::Plain64 => {
                for (i, iv) in out.iter_mut().enumerate() {
                    *iv = Block::default();
                    iv[..8].copy_from_slice(&first.wrapping_add(i as u64).to_le_bytes());
                }
            }
            _ => {
                for (i, iv) in out.iter_mut().enumerate() {
                    *iv = self.iv(first.wrapping_add(i as u64));
                }
            }
        }
    }

    #[inline]
    fn iv(&self, sector: u64) -> Block {
        let mut iv = Block::default();
        match self {
            IvSource::Plain => iv[..4].copy_from_slice(&(sector as u32).to_le_bytes()),
            IvSource::Plain64 => iv[..8].copy_from_slice(&sector.to_le_bytes()),
            IvSource::Essiv(c) => {
                iv[..8].copy_from_slice(&sector.to_le_bytes());
                match &**c {
                    EssivCipher::Aes128(c) => c.encrypt_block(&mut iv),
                    EssivCipher::Aes192(c) => c.encrypt_block(&mut iv),
                    EssivCipher::Aes256(c) => c.encrypt_block(&mut iv),
                }
            }
        }
        iv
    }
}

/// The data cipher, one variant per mode and key size so the hot loops are monomorphic.
#[derive(Clone)]
enum Engine {
    Xts128(Aes128, Aes128),
    Xts192(Aes192, Aes192),
    Xts256(Aes256, Aes256),
    Cbc128(Aes128),
    Cbc192(Aes192),
    Cbc256(Aes256),
    Ecb128(Aes128),
    Ecb192(Aes192),
    Ecb256(Aes256),
}

/// An expanded data-encryption key for 512-byte sectors.
///
/// Created from a LUKS master key, from a passphrase by [`legacy_aes_cipher`], or directly with
/// [`SectorCipher::new`]. The round keys are wiped on drop, `Debug` shows only
/// the algorithm, and the value is `Send + Sync` so worker threads can share one instance.
/// Encryption and decryption allocate nothing; XTS hands the AES implementation a whole
/// sector (32 blocks) at a time so AES-NI/VAES pipelines stay full.
///
/// The caller picks the sector number: LUKS-in-qcow2 uses the absolute host file offset / 512,
/// legacy AES the guest offset / 512.
///
/// # Speed
/// Hand it large buffers (a whole cluster): XTS batches 16 sectors per AES call, and on CPUs
/// with AVX-512F the tweak sequence and its XORs run four blocks per instruction. The AES
/// rounds use AES-NI or VAES through the `aes` crate. Build this crate as one codegen unit
/// (see the [crate docs](crate#speed-build-this-crate-with-one-codegen-unit)): with cargo's
/// default of 16 units the `aes` crate's VAES code is not inlined and AES-256-XTS runs at
/// about 60% of the speed. `BENCHMARKS.md` has this loop next to
/// `openssl speed -evp aes-256-xts`.
///
/// ```
/// use kvmsec_qcow2::crypto::{CipherAlg, CipherMode, IvGen, SectorCipher};
///
/// let key = [7u8; 64];
/// let c = SectorCipher::new(CipherAlg::Aes256, CipherMode::Xts, IvGen::Plain64, &key)?;
/// let mut buf = vec![0u8; 4096];
/// c.encrypt(0x250000 / 512, &mut buf)?;
/// assert_ne!(buf, vec![0u8; 4096]);
/// c.decrypt(0x250000 / 512, &mut buf)?;
/// assert_eq!(buf, vec![0u8; 4096]);
/// assert!(c.encrypt(0, &mut [0u8; 100]).is_err()); // not whole sectors
/// # Ok::<(), kvmsec_qcow2::Error>(())
/// ```
///
/// # References
/// - IEEE 1619-2007 (XTS-AES); dm-crypt IV generators (`plain`, `plain64`, `essiv`).
/// - QEMU `crypto/block-luks.c` and `crypto/ivgen*.c` (ESSIV key size follows the hash).
#[derive(Clone)]
pub struct SectorCipher {
    engine: Engine,
    iv: IvSource,
    alg: CipherAlg,
    mode: CipherMode,
    ivgen: IvGen,
}

impl fmt::Debug for SectorCipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SectorCipher")
            .field("alg", &self.alg)
            .field("mode", &self.mode)
            .field("ivgen", &self.ivgen)
            .field("key", &"<redacted>")
            .finish()
    }
}

fn key_err(alg: CipherAlg, mode: CipherMode, len: usize) -> Error {
    Error::UnsupportedCipher {
        what: format!(
            "{alg}-{mode} needs a {}-byte key, got {len} bytes",
            mode.key_bytes(alg)
        ),
    }
}

impl SectorCipher {
    /// Builds a cipher from raw key bytes. `key.len()` must be
    /// [`mode.key_bytes(alg)`](CipherMode::key_bytes) (for XTS: data key then tweak key).
    pub fn new(alg: CipherAlg, mode: CipherMode, ivgen: IvGen, key: &[u8]) -> Result<Self> {
        if key.len() != mode.key_bytes(alg) {
            return Err(key_err(alg, mode, key.len()));
        }
        let err = || key_err(alg, mode, key.len());
        let half = alg.key_bytes();
        let engine = match (mode, alg) {
            (CipherMode::Xts, CipherAlg::Aes128) => Engine::Xts128(
                Aes128::new_from_slice(&key[..half]).map_err(|_| err())?,
                Aes128::new_from_slice(&key[half..]).map_err(|_| err())?,
            ),
            (CipherMode::Xts, CipherAlg::Aes192) => Engine::Xts192(
                Aes192::new_from_slice(&key[..half]).map_err(|_| err())?,
                Aes192::new_from_slice(&key[half..]).map_err(|_| err())?,
            ),
            (CipherMode::Xts, CipherAlg::Aes256) => Engine::Xts256(
                Aes256::new_from_slice(&key[..half]).map_err(|_| err())?,
                Aes256::new_from_slice(&key[half..]).map_err(|_| err())?,
            ),
            (CipherMode::Cbc, CipherAlg::Aes128) => {
                Engine::Cbc128(Aes128::new_from_slice(key).map_err(|_| err())?)
            }
            (CipherMode::Cbc, CipherAlg::Aes192) => {
                Engine::Cbc192(Aes192::new_from_slice(key).map_err(|_| err())?)
            }
            (CipherMode::Cbc, CipherAlg::Aes256) => {
                Engine::Cbc256(Aes256::new_from_slice(key).map_err(|_| err())?)
            }
            (CipherMode::Ecb, CipherAlg::Aes128) => {
                Engine::Ecb128(Aes128::new_from_slice(key).map_err(|_| err())?)
            }
            (CipherMode::Ecb, CipherAlg::Aes192) => {
                Engine::Ecb192(Aes192::new_from_slice(key).map_err(|_| err())?)
            }
            (CipherMode::Ecb, CipherAlg::Aes256) => {
                Engine::Ecb256(Aes256::new_from_slice(key).map_err(|_| err())?)
            }
        };
        let iv = IvSource::new(ivgen, key)?;
        Ok(SectorCipher {
            engine,
            iv,
            alg,
            mode,
            ivgen,
        })
    }

    /// The block cipher.
    pub fn alg(&self) -> CipherAlg {
        self.alg
    }

    /// The mode of operation.
    pub fn mode(&self) -> CipherMode {
        self.mode
    }

    /// The IV generator.
    pub fn ivgen(&self) -> IvGen {
        self.ivgen
    }

    /// `true` when the AES implementation runs on CPU instructions (AES-NI, VAES, ARMv8 AES)
    /// rather than the constant-time software fallback, which is roughly 10–20× slower.
    pub fn hardware_accelerated() -> bool {
        aes::hardware_accelerated()
    }

    /// Encrypts `buf` in place. `buf.len()` must be a multiple of 512
    /// ([`Error::SectorAlignment`] otherwise); sector `i` of `buf` uses the IV/tweak of sector
    /// number `first_sector + i` (wrapping).
    pub fn encrypt(&self, first_sector: u64, buf: &mut [u8]) -> Result<()> {
        if !buf.len().is_multiple_of(SECTOR_SIZE) {
            return Err(Error::SectorAlignment { len: buf.len() });
        }
        self.run(first_sector, buf, true);
        Ok(())
    }

    /// Decrypts `buf` in place; the same rules as [`encrypt`](Self::encrypt).
    pub fn decrypt(&self, first_sector: u64, buf: &mut [u8]) -> Result<()> {
        if !buf.len().is_multiple_of(SECTOR_SIZE) {
            return Err(Error::SectorAlignment { len: buf.len() });
        }
        self.run(first_sector, buf, false);
        Ok(())
    }

    /// Like [`encrypt`](Self::encrypt)/[`decrypt`](Self::decrypt) but the last sector may be
    /// short, as long as it is a whole number of 16-byte blocks. QEMU processes LUKS key
    /// material that way (AES-192 CBC material is 96000 bytes = 187.5 sectors).
    pub(crate) fn crypt_partial(&self, first_sector: u64, buf: &mut [u8], enc: bool) -> Result<()> {
        if !buf.len().is_multiple_of(16) {
            return Err(Error::SectorAlignment { len: buf.len() });
        }
        self.run(first_sector, buf, enc);
        Ok(())
    }

    /// `buf.len()` is a multiple of 16 here.
    ///
    /// The mode code (tweak derivation, XORs, CBC chaining) is compiled a second time with
    /// AVX2 enabled and picked at run time: built for baseline x86-64 (SSE2) those loops
    /// cost as much as the AES itself, which runs on AES-NI/VAES either way.
    fn run(&self, first_sector: u64, buf: &mut [u8], enc: bool) {
        #[cfg(target_arch = "x86_64")]
        if buf.len().is_multiple_of(SECTOR_SIZE) && xts_x86::available() {
            let iv = &self.iv;
            // SAFETY (all three): `xts_x86::available()` confirmed AVX-512F just above, the
            // only CPU feature `xts_x86::xts` needs; whole sectors were checked too.
            match &self.engine {
                Engine::Xts128(d, t) => {
                    return unsafe { xts_avx512(d, t, iv, first_sector, buf, enc) };
                }
                Engine::Xts192(d, t) => {
                    return unsafe { xts_avx512(d, t, iv, first_sector, buf, enc) };
                }
                Engine::Xts256(d, t) => {
                    return unsafe { xts_avx512(d, t, iv, first_sector, buf, enc) };
                }
                _ => {}
            }
        }
        self.run_portable(first_sector, buf, enc);
    }

    /// The mode code without AVX-512 (still with AVX2 when the CPU has it).
    fn run_portable(&self, first_sector: u64, buf: &mut [u8], enc: bool) {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: `run_avx2` only requires the CPU to support AVX2, checked just above.
            unsafe { self.run_avx2(first_sector, buf, enc) };
            return;
        }
        self.run_generic(first_sector, buf, enc);
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn run_avx2(&self, first_sector: u64, buf: &mut [u8], enc: bool) {
        self.run_generic(first_sector, buf, enc);
    }

    #[inline(always)]
    fn run_generic(&self, first_sector: u64, buf: &mut [u8], enc: bool) {
        let iv = &self.iv;
        match &self.engine {
            Engine::Xts128(d, t) => xts(d, t, iv, first_sector, buf, enc),
            Engine::Xts192(d, t) => xts(d, t, iv, first_sector, buf, enc),
            Engine::Xts256(d, t) => xts(d, t, iv, first_sector, buf, enc),
            Engine::Cbc128(c) => cbc_run(c, iv, first_sector, buf, enc),
            Engine::Cbc192(c) => cbc_run(c, iv, first_sector, buf, enc),
            Engine::Cbc256(c) => cbc_run(c, iv, first_sector, buf, enc),
            Engine::Ecb128(c) => ecb_run(c, buf, enc),
            Engine::Ecb192(c) => ecb_run(c, buf, enc),
            Engine::Ecb256(c) => ecb_run(c, buf, enc),
        }
    }
}

/// Trait alias for the AES types used below.
trait Aes16: BlockCipherEncrypt<BlockSize = U16> + BlockCipherDecrypt<BlockSize = U16> {}
impl<T: BlockCipherEncrypt<BlockSize = U16> + BlockCipherDecrypt<BlockSize = U16>> Aes16 for T {}

#[inline(always)]
fn as_blocks(buf: &mut [u8]) -> &mut [Block] {
    // The caller guarantees a multiple of 16 bytes, so the remainder is empty.
    Block::slice_as_chunks_mut(buf).0
}

/// Multiplication by the primitive element α in GF(2^128) (IEEE 1619 §5.2), with the tweak
/// held as a little-endian integer.
#[inline(always)]
fn mul_alpha(t: u128) -> u128 {
    // All ones when the top bit is set (arithmetic shift), else zero: no branch, no multiply.
    let mask = ((t as i128) >> 127) as u128;
    (t << 1) ^ (mask & 0x87)
}

/// Sectors handed to the AES implementation per call. The VAES-512 backend of `aes` 0.9 works
/// on 64 blocks (two sectors) at a time and falls back to one block at a time for anything
/// shorter, so per-sector calls would waste most of its width.
const XTS_BATCH_SECTORS: usize = 16;
const BLOCKS_PER_SECTOR: usize = SECTOR_SIZE / 16;

#[inline(always)]
fn xts<C: Aes16>(data: &C, tweak: &C, iv: &IvSource, first: u64, buf: &mut [u8], enc: bool) {
    // Small requests get a small scratch array, so a one-sector call does not clear 8 KiB.
    if buf.len() <= SECTOR_SIZE {
        xts_batches::<C, 1>(data, tweak, iv, first, buf, enc);
    } else {
        xts_batches::<C, XTS_BATCH_SECTORS>(data, tweak, iv, first, buf, enc);
    }
}

/// [`xts_x86::xts`] with the same small-request rule as [`xts`].
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn xts_avx512<C: Aes16>(data: &C, tweak: &C, iv: &IvSource, first: u64, buf: &mut [u8], enc: bool) {
    if buf.len() <= SECTOR_SIZE {
        xts_x86::xts::<C, 1>(data, tweak, iv, first, buf, enc);
    } else {
        xts_x86::xts::<C, XTS_BATCH_SECTORS>(data, tweak, iv, first, buf, enc);
    }
}

/// XTS over up to `N` sectors per AES call: (1) the sectors' initial tweaks are encrypted in
/// one call, (2) the 32 tweaks of each sector are derived with the `N` α-multiplication chains
/// interleaved (independent, so the CPU overlaps them), (3) data ^= tweaks, (4) one
/// `encrypt_blocks`/`decrypt_blocks` over the whole batch, (5) data ^= tweaks.
#[inline(always)]
fn xts_batches<C: Aes16, const N: usize>(
    data: &C,
    tweak: &C,
    iv: &IvSource,
    first: u64,
    buf: &mut [u8],
    enc: bool,
) {
    let mut start = [Block::default(); N];
    let mut chains = [0u128; N];
    let mut tweaks = [[[0u8; 16]; BLOCKS_PER_SECTOR]; N];
    let mut sector = first;
    for batch in buf.chunks_mut(N * SECTOR_SIZE) {
        let sectors = batch.len().div_ceil(SECTOR_SIZE);
        iv.fill(sector, &mut start[..sectors]);
        sector = sector.wrapping_add(sectors as u64);
        tweak.encrypt_blocks(&mut start[..sectors]);
        for (c, s) in chains.iter_mut().zip(start.iter()) {
            *c = u128::from_le_bytes(s.0);
        }
        for j in 0..BLOCKS_PER_SECTOR {
            for (c, t) in chains.iter_mut().zip(tweaks.iter_mut()) {
                t[j] = c.to_le_bytes();
                *c = mul_alpha(*c);
            }
        }

        let tweak_bytes = tweaks.as_flattened().as_flattened();
        xor_bytes(batch, tweak_bytes);
        let blocks = as_blocks(batch);
        if enc {
            data.encrypt_blocks(blocks);
        } else {
            data.decrypt_blocks(blocks);
        }
        xor_bytes(batch, tweak_bytes);
    }
}

/// `dst ^= src` over the common length; written so the compiler vectorises it.
#[inline(always)]
fn xor_bytes(dst: &mut [u8], src: &[u8]) {
    for (d, s) in dst.iter_mut().zip(src) {
        *d ^= *s;
    }
}

#[inline(always)]
fn cbc_run<C: Aes16>(c: &C, iv: &IvSource, first: u64, buf: &mut [u8], enc: bool) {
    for (i, sector) in buf.chunks_mut(SECTOR_SIZE).enumerate() {
        let sector_iv = iv.iv(first.wrapping_add(i as u64));
        let blocks = as_blocks(sector);
        if enc {
            cbc::Encryptor::<&C>::inner_iv_init(c, &sector_iv).encrypt_blocks(blocks);
        } else {
            cbc::Decryptor::<&C>::inner_iv_init(c, &sector_iv).decrypt_blocks(blocks);
        }
    }
}

#[inline(always)]
fn ecb_run<C: Aes16>(c: &C, buf: &mut [u8], enc: bool) {
    let blocks = as_blocks(buf);
    if enc {
        c.encrypt_blocks(blocks);
    } else {
        c.decrypt_blocks(blocks);
    }
}

/// The cipher of the legacy qcow2 AES method (`crypt_method` 1, `encrypt.format=aes`).
///
/// AES-128-CBC, IV = plain64 of the **guest** sector number (guest offset / 512), key = the
/// passphrase bytes up to the first NUL, at most 16 of them, zero padded. Longer passphrases
/// are silently truncated, exactly as QEMU does.
///
/// # Why this method is broken
/// - There is **no key check**: the image stores nothing derived from the key, so a wrong
///   passphrase cannot be detected — it decrypts to garbage. Use
///   [`probe_plaintext`](super::probe_plaintext) on the first sector as a heuristic.
/// - The key is the raw passphrase (no salt, no key derivation), truncated to 128 bits: weak
///   passphrases are directly brute-forceable and bytes past the 16th add nothing.
/// - CBC with predictable IVs (the sector number): an attacker who can choose plaintext can
///   confirm guesses (watermarking), and equal sectors at equal positions leak equality.
/// - The IV is the guest sector, so rewriting a sector with new data under the same IV leaks
///   which leading blocks stayed the same; there is no integrity protection at all.
///
/// QEMU itself refuses to run guests from such images and only keeps them readable for data
/// liberation; convert them to LUKS.
///
/// # References
/// - qcow2 specification (`docs/interop/qcow2.rst`, "crypt_method"); QEMU `crypto/block-qcow.c`
///   (AES-128, not the 256 bits the spec text claims).
pub fn legacy_aes_cipher(passphrase: &Passphrase) -> SectorCipher {
    let pw = passphrase.as_bytes();
    let end = pw.iter().position(|&b| b == 0).unwrap_or(pw.len()).min(16);
    let mut key = zeroize::Zeroizing::new([0u8; 16]);
    key[..end].copy_from_slice(&pw[..end]);
    let cipher = Aes128::new(&Array::from(*key));
    SectorCipher {
        engine: Engine::Cbc128(cipher),
        iv: IvSource::Plain64,
        alg: CipherAlg::Aes128,
        mode: CipherMode::Cbc,
        ivgen: IvGen::Plain64,
    }
}

/// What [`probe_plaintext`] recognised in the first sectors of a decrypted disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub enum PlaintextProbe {
    /// A GUID partition table header (`EFI PART` at the start of LBA 1).
    Gpt,
    /// A DOS/MBR boot signature `55 AA` at bytes 510–511.
    Mbr,
    /// The bytes are all zero (an unwritten disk; says nothing about the passphrase).
    Zeroes,
    /// No known signature: either the passphrase is wrong or the disk has no partition table
    /// (for example a bare filesystem).
    Unknown,
}

/// Heuristic check of decrypted data for legacy AES images, where a wrong passphrase cannot be
/// detected by the format (see [`legacy_aes_cipher`]).
///
/// Pass the decrypted first 512 bytes (or more; LBA 1 is examined when 1024 bytes are given)
/// of the guest disk. A recognised partition table makes a wrong passphrase very unlikely
/// (random data has a 2⁻¹⁶ chance of ending in `55 AA`); [`PlaintextProbe::Unknown`] is a hint,
/// not proof, that the passphrase is wrong.
///
/// ```
/// use kvmsec_qcow2::crypto::{probe_plaintext, PlaintextProbe};
///
/// let mut sector = [0u8; 512];
/// assert_eq!(probe_plaintext(&sector), PlaintextProbe::Zeroes);
/// sector[510] = 0x55;
/// sector[511] = 0xAA;
/// assert_eq!(probe_plaintext(&sector), PlaintextProbe::Mbr);
/// ```
pub fn probe_plaintext(first_sectors: &[u8]) -> PlaintextProbe {
    if first_sectors.get(512..520) == Some(b"EFI PART".as_slice()) {
        return PlaintextProbe::Gpt;
    }
    if first_sectors.get(510..512) == Some([0x55u8, 0xAA].as_slice()) {
        return PlaintextProbe::Mbr;
    }
    if !first_sectors.is_empty() && first_sectors.iter().all(|&b| b == 0) {
        return PlaintextProbe::Zeroes;
    }
    PlaintextProbe::Unknown
}

#[cfg(target_arch = "x86_64")]
mod xts_x86;

#[cfg(test)]
mod tests;

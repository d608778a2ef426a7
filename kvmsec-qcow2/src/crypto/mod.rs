//! Encryption for qcow2 images: LUKS1 (`crypt_method` 2) and the legacy AES method
//! (`crypt_method` 1).
//!
//! This module is the cryptographic layer only; the qcow2 container code places the LUKS
//! region in the image and calls [`SectorCipher`] for every data cluster.
//!
//! - [`Passphrase`] and [`MasterKey`] hold secrets; they are wiped on drop and never printed.
//! - [`SectorCipher`] encrypts and decrypts whole 512-byte sectors in place with AES in XTS,
//!   CBC or ECB mode and a plain, plain64 or ESSIV IV generator.
//! - [`luks_format`], [`luks_open`], [`luks_add_key`], [`luks_remove_key`] and
//!   [`luks_change_key`] manage a LUKS1 header and its eight key slots through a
//!   [`LuksRegion`] (byte access to the LUKS area of the image); [`LuksHeader`] parses and
//!   validates the header with QEMU's checks plus [`OpenLimits`] for untrusted images.
//! - [`legacy_aes_cipher`] builds the (broken, read-for-migration) legacy AES cipher;
//!   [`probe_plaintext`] is the heuristic wrong-passphrase check it needs.
//!
//! All AES work is done by the RustCrypto `aes` crate, which detects AES-NI and VAES at run
//! time ([`SectorCipher::hardware_accelerated`] tells whether they are in use).
//!
//! # References
//! - LUKS1 On-Disk Format Specification, version 1.2.3 (Clemens Fruhwirth).
//! - qcow2 specification, QEMU `docs/interop/qcow2.rst` (`crypt_method`, full disk encryption
//!   header pointer extension).
//! - QEMU `crypto/block-luks.c`, `crypto/afsplit.c`, `crypto/block-qcow.c` (behaviour of
//!   `qemu-img`, which this module matches).

mod af;
mod cipher;
mod luks;
mod secret;

pub use cipher::{
    CipherAlg, CipherMode, HashAlg, IvGen, PlaintextProbe, SECTOR_SIZE, SectorCipher,
    legacy_aes_cipher, probe_plaintext,
};
pub use luks::{
    Iterations, KeySlot, KeySlotSelector, LUKS_HEADER_LEN, LUKS_KEY_SLOTS, LUKS_STRIPES,
    LuksHeader, LuksOptions, LuksRegion, OpenLimits, luks_add_key, luks_change_key, luks_format,
    luks_open, luks_open_master_key, luks_read_header, luks_region_len, luks_remove_key,
};
pub use secret::{MasterKey, Passphrase};

/// Fills `buf` from the operating system's random number generator.
pub(crate) fn fill_random(buf: &mut [u8]) -> crate::Result<()> {
    getrandom::fill(buf).map_err(|e| crate::Error::Random {
        reason: e.to_string(),
    })
}

//! The crate's error type.

/// Everything that can go wrong in this crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    // ---- container (qcow2 format) variants: owned by the format work ----
    /// An I/O operation on an image file failed.
    #[error("{operation} {path}: {source}")]
    Io {
        /// What was being done ("read", "write", "open", ...).
        operation: &'static str,
        /// The file it was done to.
        path: std::path::PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    // ---- end of container variants ----

    // ---- crypto variants (LUKS, legacy AES, ciphers): owned by the crypto work ----
    /// A buffer handed to a sector cipher is not a whole number of 512-byte sectors.
    #[error("encryption buffer of {len} bytes is not a multiple of the 512-byte sector size")]
    SectorAlignment {
        /// The length that was passed.
        len: usize,
    },
    /// A cipher, mode, IV generator or hash that this crate does not implement (or a combination
    /// of them, or a key size, that does not fit together).
    #[error("unsupported encryption: {what}")]
    UnsupportedCipher {
        /// What is unsupported, e.g. `cipher "serpent"` or `ESSIV with sha1 (20-byte digest)`.
        what: String,
    },
    /// A LUKS header field failed a validity check.
    #[error("invalid LUKS header: {field}: {reason}")]
    InvalidLuksHeader {
        /// The field (or slot field) that is wrong, e.g. `magic`, `key slot 3 stripes`.
        field: String,
        /// Why it is wrong.
        reason: String,
    },
    /// A value from an (untrusted) LUKS header exceeds a configured
    /// `OpenLimits` bound.
    #[error("LUKS header {what} is {value}, above the configured limit {limit}")]
    LuksLimit {
        /// Which value, e.g. `key slot 0 iterations`.
        what: String,
        /// The value found in the header.
        value: u64,
        /// The limit it exceeded.
        limit: u64,
    },
    /// No active key slot accepts the passphrase (checked through the master-key digest).
    #[error("invalid passphrase: no active LUKS key slot can be unlocked with it")]
    WrongPassphrase,
    /// A key-slot operation was refused (slot out of range, slot active, last active slot, ...).
    #[error("LUKS key slot {slot}: {reason}")]
    KeySlot {
        /// The slot concerned.
        slot: usize,
        /// Why the operation was refused.
        reason: &'static str,
    },
    /// All eight LUKS key slots are in use.
    #[error("no free LUKS key slot (all 8 are active)")]
    NoFreeKeySlot,
    /// Invalid encryption parameters given by the caller (not read from an image).
    #[error("invalid encryption parameter: {0}")]
    InvalidCryptoParameter(&'static str),
    /// The operating system's random number generator failed.
    #[error("random number generator failed: {reason}")]
    Random {
        /// The error reported by the generator.
        reason: String,
    },
    // ---- end of crypto variants ----
}

/// This crate's result type.
pub type Result<T> = std::result::Result<T, Error>;

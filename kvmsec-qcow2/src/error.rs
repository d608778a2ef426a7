//! The crate's error type.

/// Everything that can go wrong in this crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    // ---- container (qcow2 format) variants: owned by the format work ----
    /// An I/O operation on an image file failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done ("read", "write", "open", ...).
        op: &'static str,
        /// The file it was done to.
        path: std::path::PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The file does not start with the qcow2 magic `QFI\xfb`.
    #[error("{path}: not a qcow2 image (bad magic)")]
    NotQcow2 {
        /// The file.
        path: std::path::PathBuf,
    },
    /// The file ends before a structure the header points at.
    #[error("truncated image: {what} needs bytes up to {needed}, but the file has {file_len}")]
    Truncated {
        /// The structure that was cut off.
        what: &'static str,
        /// The end offset the structure needs.
        needed: u64,
        /// The file's length.
        file_len: u64,
    },
    /// A header field holds a value outside the range the format (or QEMU) allows.
    #[error("invalid qcow2 header field {field} = {value}: {reason}")]
    InvalidHeader {
        /// The field's name as in the qcow2 specification.
        field: &'static str,
        /// The value found.
        value: u64,
        /// What the value must be.
        reason: &'static str,
    },
    /// A header extension is malformed (runs past its cluster, appears twice, bad length).
    #[error("invalid qcow2 header extension 0x{kind:08x}: {reason}")]
    InvalidExtension {
        /// The extension type.
        kind: u32,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The image uses incompatible features this crate does not know.
    #[error("unknown incompatible qcow2 feature bits 0x{bits:x}")]
    UnknownIncompatibleFeatures {
        /// The unknown bits.
        bits: u64,
    },
    /// The image uses a feature this crate does not implement (named in `what`).
    #[error("unsupported: {what}")]
    Unsupported {
        /// The feature or operation.
        what: String,
    },
    /// Image metadata is inconsistent: a table entry points past the end of the file, into
    /// other metadata, is misaligned, or tables overlap.
    #[error("corrupt image: {what} (offset {offset:#x})")]
    Corrupt {
        /// What is wrong.
        what: String,
        /// The host file offset concerned.
        offset: u64,
    },
    /// A write would have put guest data (or a new table) on top of existing metadata. Nothing
    /// was written.
    #[error("refusing to write {len} bytes at host offset {offset:#x}: overlaps {what}")]
    MetadataOverlap {
        /// The host offset of the refused write.
        offset: u64,
        /// Its length.
        len: u64,
        /// The metadata it would have overwritten.
        what: &'static str,
    },
    /// A compressed cluster is malformed or inflates to more than one cluster.
    #[error("bad compressed cluster at host offset {offset:#x}: {reason}")]
    Decompress {
        /// The compressed data's host offset.
        offset: u64,
        /// What went wrong.
        reason: String,
    },
    /// A size or count in the image exceeds a limit set in [`crate::Limits`].
    #[error("{what} = {value} exceeds the limit {limit}")]
    LimitExceeded {
        /// What was too large.
        what: &'static str,
        /// The value found.
        value: u64,
        /// The configured limit.
        limit: u64,
    },
    /// A guest access falls outside the virtual disk.
    #[error("guest range {offset:#x}+{len} is outside the virtual disk of {size} bytes")]
    OutOfRange {
        /// Start of the access.
        offset: u64,
        /// Its length.
        len: u64,
        /// The virtual size.
        size: u64,
    },
    /// The image was opened read-only.
    #[error("{path}: image is open read-only")]
    ReadOnly {
        /// The image.
        path: std::path::PathBuf,
    },
    /// The backing chain refers back to an image already in it.
    #[error("backing chain loops at {path}")]
    BackingLoop {
        /// The image that appears twice.
        path: std::path::PathBuf,
    },
    /// The backing chain is deeper than [`crate::Limits::max_chain_depth`].
    #[error("backing chain deeper than {limit} images at {path}")]
    BackingTooDeep {
        /// The image where the limit was reached.
        path: std::path::PathBuf,
        /// The limit.
        limit: u32,
    },
    /// An encrypted image was opened without a passphrase for it.
    #[error("{path}: image is encrypted and no passphrase was given for it")]
    PassphraseRequired {
        /// The encrypted image.
        path: std::path::PathBuf,
    },
    /// A long operation was cancelled by its progress callback; the target was removed.
    #[error("operation cancelled")]
    Cancelled,
    /// An invalid argument to an operation (bad size, cluster size, option combination).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
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
    /// A read or write of the LUKS region falls outside it.
    #[error(
        "LUKS region access of {len} bytes at offset {offset} is outside the {size}-byte region"
    )]
    LuksRegionBounds {
        /// Offset from the start of the LUKS header.
        offset: u64,
        /// Length of the access.
        len: u64,
        /// Size of the region.
        size: u64,
    },
    // ---- end of crypto variants ----
}

/// This crate's result type.
pub type Result<T> = std::result::Result<T, Error>;

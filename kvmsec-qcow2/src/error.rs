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
    // ---- end of crypto variants ----
}

/// This crate's result type.
pub type Result<T> = std::result::Result<T, Error>;

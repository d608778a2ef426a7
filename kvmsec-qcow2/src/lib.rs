//! kvmsec-qcow2 (work in progress).
#![deny(missing_docs)]
#![warn(missing_debug_implementations)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod error;
pub use error::{Error, Result};

// Owned by the crypto work: LUKS1 header and key slots, legacy AES, sector ciphers, secrets.
pub mod crypto;

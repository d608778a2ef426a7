//! kvmsec-qcow2 (work in progress).
#![deny(missing_docs)]
#![warn(missing_debug_implementations)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod error;
pub use error::{Error, Result};

// Owned by the crypto work: LUKS1 header and key slots, legacy AES, sector ciphers, secrets.
pub mod crypto;

mod check;
pub mod compress;
mod convert;
mod create;
mod encryption;
pub mod header;
mod image;
mod info;
mod io;
pub mod report;
pub mod table;

pub use check::{CheckReport, check};
pub use convert::{ConvertOptions, Progress, Target, convert};
pub use create::{BackingFile, CreateOptions, Encryption, create, create_with};
pub use encryption::{add_passphrase, change_passphrase, remove_passphrase};
pub use image::{BackingFormat, Image, Limits, OpenOptions, PassphraseSource};
pub use info::{EncryptionInfo, ImageInfo, KeySlotInfo, LuksInfo, info, info_chain};

//! qcow2 disk images with LUKS encryption, in pure Rust, interchangeable with `qemu-img`.
//!
//! A guest's disk is a qcow2 file on the host; if the host's storage leaks, so does every
//! guest's data unless the image is encrypted. This crate creates, reads, writes, checks and
//! converts qcow2 images (versions 2 and 3), encrypts them with LUKS1 exactly as QEMU does,
//! manages their key slots in place, and reads the legacy AES method so images can be moved
//! off it. Images it writes pass `qemu-img check`; images `qemu-img` writes read back byte for
//! byte (both are tested against the real `qemu-img`).
//!
//! ```
//! use kvmsec_qcow2::{create, CreateOptions, Image};
//!
//! let dir = tempfile::tempdir()?;
//! let path = dir.path().join("guest.qcow2");
//!
//! // A sparse 1 GiB image: only written clusters take space.
//! let mut img = create(&path, &CreateOptions::new(1 << 30))?;
//! img.write_at(b"boot sector", 0)?;
//! img.flush()?;
//! drop(img);
//!
//! let mut img = Image::open(&path)?;
//! let mut buf = [0u8; 11];
//! img.read_at(&mut buf, 0)?;
//! assert_eq!(&buf, b"boot sector");
//! assert!(std::fs::metadata(&path)?.len() < 1 << 20);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Operations
//!
//! | task | function |
//! |---|---|
//! | create (plain, LUKS, over a backing file) | [`create`], [`create_with`], [`CreateOptions`] |
//! | open a chain (passphrase per image, limits) | [`Image::open`], [`OpenOptions`] |
//! | guest I/O | [`Image::read_at`], [`Image::write_at`], `std::io::{Read, Write, Seek}` |
//! | convert raw/qcow2/AES/LUKS → LUKS qcow2, plain qcow2 or raw | [`convert`] |
//! | add, remove, change a passphrase | [`add_passphrase`], [`remove_passphrase`], [`change_passphrase`] |
//! | `qemu-img info` facts (no passphrase) | [`info`], [`info_chain`] |
//! | `qemu-img check` counts | [`check`] |
//! | host security report lines | [`report::image_checks`] |
//!
//! Encrypting an existing image:
//!
//! ```
//! use std::ops::ControlFlow;
//! use kvmsec_qcow2::crypto::{Iterations, LuksOptions, Passphrase};
//! use kvmsec_qcow2::{convert, ConvertOptions, CreateOptions, Encryption, OpenOptions, Target};
//!
//! let dir = tempfile::tempdir()?;
//! let raw = dir.path().join("disk.raw");
//! std::fs::write(&raw, vec![7u8; 2 << 20])?;
//! let enc = dir.path().join("disk.qcow2");
//! // Iterations::Fixed keeps the example fast; the default calibrates PBKDF2 to 2 s like QEMU.
//! let luks = LuksOptions { iterations: Iterations::Fixed(1000), ..LuksOptions::default() };
//! let target = CreateOptions::new(0)
//!     .encryption(Encryption::Luks { passphrase: "secret".into(), options: luks });
//! convert(&raw, &enc, ConvertOptions::new(Target::Qcow2(target)), |p| {
//!     assert!(p.done <= p.total);
//!     ControlFlow::Continue(()) // Break(()) cancels and removes the partial target
//! })?;
//!
//! let mut img = OpenOptions::new().passphrase(Passphrase::from("secret")).open(&enc)?;
//! let mut buf = [0u8; 4];
//! img.read_at(&mut buf, 4096)?;
//! assert_eq!(buf, [7; 4]);
//! assert!(OpenOptions::new().passphrase("wrong".into()).open(&enc).is_err());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Layers
//! - Formats (no I/O): [`header`], [`table`], [`compress`], and the LUKS header in [`crypto`].
//! - Host access: [`Image`] (allocation, refcounts, backing chains, metadata-overlap checks).
//! - Operations: [`create`], [`convert`], [`check`], [`info`], key slots, [`report`].
//!
//! # Safety against crashes and hostile images
//! Writes are ordered as QEMU orders them (refcount before reference, data before the L2
//! entry, L2 table before the L1 entry), so a crash at any point leaks clusters at worst;
//! a SIGKILL test checks this with `qemu-img check`. Every write of guest data is checked
//! against the metadata clusters first. Header fields, table entries and LUKS parameters are
//! range-checked before use; sizes are bounded by [`Limits`] (L1 and refcount table size,
//! chain depth, cache memory, PBKDF2 iterations).
//!
//! # Speed: build this crate with one codegen unit
//! Encryption runs on AES-NI or VAES through the `aes` crate, picked at run time, with the
//! XTS tweak arithmetic on AVX-512 when the CPU has it. The `aes` crate's VAES code is only
//! fully inlined when the crate instantiating it (this one) is compiled as a single codegen
//! unit; with cargo's release default of 16 units, AES-256-XTS runs at about 60% of the speed.
//! Add this to the Cargo.toml of your workspace (it changes nothing else):
//!
//! ```toml
//! [profile.release.package.kvmsec-qcow2]
//! codegen-units = 1
//! ```
//!
//! `lto = true` with `codegen-units = 1` for the whole release profile (what many VMMs
//! ship with) has the same effect. `BENCHMARKS.md` in the repository has the figures.
//!
//! # Crate features
//! - `deflate` (default): read deflate-compressed clusters (`qemu-img convert -c`), via
//!   `flate2`.
//! - `zstd` (default): read zstd-compressed clusters (`compression_type=zstd`), via `ruzstd`.
//! - `serde`: `Serialize`/`Deserialize` for the public data types (never for secrets).
//!
//! # Limitations
//! - Compressed clusters, extended L2 entries (subclusters), internal snapshots and any
//!   `refcount_order` are read; writing is refused (typed error) to images with internal
//!   snapshots, extended L2 entries, refcounts other than 16 bits, or the dirty/corrupt bit.
//!   New images use 16-bit refcounts and standard L2 entries. Writes never compress.
//! - Allocation is append-only: clusters freed by rewriting compressed clusters are not reused
//!   (as with QEMU without discard, the file does not shrink).
//! - External data files and `json:` backing specifications are refused; persistent dirty
//!   bitmaps are kept but not maintained (their autoclear bit is cleared on a writable open,
//!   as QEMU does for unknown autoclear features) and not counted by [`check`].
//! - Writing the legacy AES method needs explicit opt-ins
//!   ([`OpenOptions::allow_legacy_aes_write`], `Encryption::LegacyAes { acknowledge_broken }`);
//!   a wrong legacy AES passphrase cannot be detected (see [`Image::probe_plaintext`]).
//! - Backing files without a format extension are probed (qcow2 magic or raw); name the
//!   format when creating overlays of raw images written by untrusted guests.
//! - Linux/Unix only (positional file I/O).
//!
//! # References
//! - QEMU, *qcow2 image file format*, `docs/interop/qcow2.rst`.
//! - Clemens Fruhwirth, *LUKS1 On-Disk Format Specification*, version 1.2.3.
//! - QEMU `block/qcow2*.c`, `crypto/block-luks.c`, `crypto/block-qcow.c` (behaviour matched).
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

pub use check::{CheckReport, check, check_with};
pub use convert::{ConvertOptions, Progress, Target, convert};
pub use create::{BackingFile, CreateOptions, Encryption, create, create_with};
pub use encryption::{add_passphrase, change_passphrase, remove_passphrase};
pub use image::{BackingFormat, Image, Limits, OpenOptions, PassphraseSource};
pub use info::{EncryptionInfo, ImageInfo, KeySlotInfo, LuksInfo, info, info_chain};

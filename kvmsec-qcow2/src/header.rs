//! The qcow2 header and its extensions (format layer: bytes in, values out, no I/O).
//!
//! # References
//! - QEMU, `docs/interop/qcow2.rst` ("qcow2 image file format"), sections "Header" and
//!   "Header extensions".

use crate::{Error, Result};

/// The magic at offset 0 of every qcow2 file: `QFI\xfb`.
pub const MAGIC: [u8; 4] = *b"QFI\xfb";

/// Smallest cluster_bits accepted (512-byte clusters).
pub const MIN_CLUSTER_BITS: u32 = 9;
/// Largest cluster_bits accepted (2 MiB clusters, as QEMU).
pub const MAX_CLUSTER_BITS: u32 = 21;

/// Length of a version 2 header.
pub const V2_HEADER_LEN: u32 = 72;
/// Length of the version 3 header without the compression type byte.
pub const V3_MIN_HEADER_LEN: u32 = 104;
/// Length of the version 3 header QEMU 5.1 and later write.
pub const V3_HEADER_LEN: u32 = 112;

/// Header extension type: backing file format name.
pub const EXT_BACKING_FORMAT: u32 = 0xe279_2aca;
/// Header extension type: feature name table.
pub const EXT_FEATURE_TABLE: u32 = 0x6803_f857;
/// Header extension type: persistent dirty bitmaps.
pub const EXT_BITMAPS: u32 = 0x2385_2875;
/// Header extension type: full disk encryption header pointer.
pub const EXT_CRYPTO: u32 = 0x0537_be77;
/// Header extension type: external data file name.
pub const EXT_DATA_FILE: u32 = 0x4441_5441;

/// Incompatible feature bit 0: refcounts may be out of date (lazy refcounts).
pub const INCOMPAT_DIRTY: u64 = 1 << 0;
/// Incompatible feature bit 1: the image is known to be corrupt.
pub const INCOMPAT_CORRUPT: u64 = 1 << 1;
/// Incompatible feature bit 2: guest data lives in an external data file.
pub const INCOMPAT_DATA_FILE: u64 = 1 << 2;
/// Incompatible feature bit 3: the compression type field is not deflate.
pub const INCOMPAT_COMPRESSION: u64 = 1 << 3;
/// Incompatible feature bit 4: extended L2 entries (subclusters).
pub const INCOMPAT_EXTENDED_L2: u64 = 1 << 4;
/// Every incompatible bit this crate knows.
pub const INCOMPAT_KNOWN: u64 = 0x1f;

/// Compatible feature bit 0: lazy refcounts.
pub const COMPAT_LAZY_REFCOUNTS: u64 = 1 << 0;

/// The encryption method in the header's `crypt_method` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub enum CryptMethod {
    /// Not encrypted (0).
    None,
    /// The legacy, broken AES-128-CBC method (1).
    LegacyAes,
    /// LUKS1 inside the image (2).
    Luks,
}

impl CryptMethod {
    /// The on-disk value.
    pub fn to_raw(self) -> u32 {
        match self {
            CryptMethod::None => 0,
            CryptMethod::LegacyAes => 1,
            CryptMethod::Luks => 2,
        }
    }
}

/// One header extension, kept as raw bytes so unknown ones survive a rewrite.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Extension {
    /// The extension type (one of the `EXT_*` constants or an unknown value).
    pub kind: u32,
    /// The extension's data, without padding.
    pub data: Vec<u8>,
}

/// A parsed and validated qcow2 header, with its extensions and backing file name.
///
/// [`Header::parse`] checks every field before it is used to shift, multiply or allocate;
/// [`Header::to_bytes`] writes it back, keeping unknown trailing header bytes and unknown
/// extensions.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Header {
    /// Format version, 2 or 3.
    pub version: u32,
    /// log2 of the cluster size, 9..=21.
    pub cluster_bits: u32,
    /// Virtual disk size in bytes.
    pub size: u64,
    /// Encryption method.
    pub crypt_method: CryptMethod,
    /// Number of L1 entries.
    pub l1_size: u32,
    /// Host offset of the active L1 table.
    pub l1_table_offset: u64,
    /// Host offset of the refcount table.
    pub refcount_table_offset: u64,
    /// Length of the refcount table in clusters.
    pub refcount_table_clusters: u32,
    /// Number of internal snapshots.
    pub nb_snapshots: u32,
    /// Host offset of the snapshot table.
    pub snapshots_offset: u64,
    /// Incompatible feature bits (version 3).
    pub incompatible_features: u64,
    /// Compatible feature bits (version 3).
    pub compatible_features: u64,
    /// Autoclear feature bits (version 3).
    pub autoclear_features: u64,
    /// log2 of the refcount width in bits (4 = 16-bit).
    pub refcount_order: u32,
    /// Header length in bytes (72 for version 2).
    pub header_length: u32,
    /// Compression type: 0 deflate, 1 zstd.
    pub compression_type: u8,
    /// Header bytes past the fields this crate knows (kept verbatim on rewrite).
    pub unknown_header_bytes: Vec<u8>,
    /// Header extensions in file order (without the end marker).
    pub extensions: Vec<Extension>,
    /// The backing file name, if any.
    pub backing_file: Option<String>,
}

fn be32(b: &[u8], off: usize) -> u32 {
    let mut a = [0u8; 4];
    if let Some(s) = b.get(off..off + 4) {
        a.copy_from_slice(s);
    }
    u32::from_be_bytes(a)
}

fn be64(b: &[u8], off: usize) -> u64 {
    let mut a = [0u8; 8];
    if let Some(s) = b.get(off..off + 8) {
        a.copy_from_slice(s);
    }
    u64::from_be_bytes(a)
}

fn invalid(field: &'static str, value: u64, reason: &'static str) -> Error {
    Error::InvalidHeader {
        field,
        value,
        reason,
    }
}

fn check_aligned(field: &'static str, value: u64, cluster_size: u64) -> Result<()> {
    if !value.is_multiple_of(cluster_size) {
        return Err(invalid(field, value, "not aligned to the cluster size"));
    }
    Ok(())
}

impl Header {
    /// The cluster size in bytes.
    pub fn cluster_size(&self) -> u64 {
        1u64 << self.cluster_bits
    }

    /// Whether L2 entries are 128-bit extended entries with subcluster bitmaps.
    pub fn extended_l2(&self) -> bool {
        self.incompatible_features & INCOMPAT_EXTENDED_L2 != 0
    }

    /// Bytes per L2 entry (8, or 16 with extended L2).
    pub fn l2_entry_size(&self) -> u64 {
        if self.extended_l2() { 16 } else { 8 }
    }

    /// L2 entries per L2 table (one cluster).
    pub fn l2_entries(&self) -> u64 {
        self.cluster_size() / self.l2_entry_size()
    }

    /// The L1 entries needed to map `size` bytes with these cluster settings.
    pub fn l1_entries_for(&self, size: u64) -> u64 {
        let per_l1 = self.l2_entries() * self.cluster_size();
        size.div_ceil(per_l1)
    }

    /// The raw data of the first extension of `kind`.
    pub fn extension(&self, kind: u32) -> Option<&[u8]> {
        self.extensions
            .iter()
            .find(|e| e.kind == kind)
            .map(|e| e.data.as_slice())
    }

    /// The backing file format named in the header (`"raw"`, `"qcow2"`), if any.
    pub fn backing_format(&self) -> Option<String> {
        self.extension(EXT_BACKING_FORMAT)
            .map(|d| String::from_utf8_lossy(d).into_owned())
    }

    /// The full-disk-encryption header location `(offset, length)` from the crypto extension.
    pub fn crypto_header(&self) -> Option<(u64, u64)> {
        self.extension(EXT_CRYPTO).map(|d| (be64(d, 0), be64(d, 8)))
    }

    /// Sets or replaces an extension (keeping its position if present, else appending).
    pub fn set_extension(&mut self, kind: u32, data: Vec<u8>) {
        if let Some(e) = self.extensions.iter_mut().find(|e| e.kind == kind) {
            e.data = data;
        } else {
            self.extensions.push(Extension { kind, data });
        }
    }

    /// Parses the header from the start of an image. `buf` holds the first bytes of the file
    /// (at least the first cluster, or the whole file if shorter).
    ///
    /// Every field is range-checked before use: `cluster_bits` outside 9..=21, a `header_length`
    /// too short, past the cluster or not a multiple of 8, unknown incompatible features,
    /// extensions running past the header cluster and a backing file name past the first
    /// cluster are all typed errors. Checks that need the file length (tables past EOF) are
    /// done when the image is opened.
    pub fn parse(buf: &[u8]) -> Result<Header> {
        if buf.len() < 4 || buf[..4] != MAGIC {
            return Err(Error::NotQcow2 {
                path: std::path::PathBuf::new(),
            });
        }
        if buf.len() < V2_HEADER_LEN as usize {
            return Err(Error::Truncated {
                what: "qcow2 header",
                needed: u64::from(V2_HEADER_LEN),
                file_len: buf.len() as u64,
            });
        }
        let version = be32(buf, 4);
        if version != 2 && version != 3 {
            return Err(invalid("version", version.into(), "must be 2 or 3"));
        }
        let cluster_bits = be32(buf, 20);
        if !(MIN_CLUSTER_BITS..=MAX_CLUSTER_BITS).contains(&cluster_bits) {
            return Err(invalid(
                "cluster_bits",
                cluster_bits.into(),
                "must be between 9 and 21",
            ));
        }
        let cluster_size = 1u64 << cluster_bits;
        // Only the first cluster is header territory.
        let first = &buf[..buf.len().min(cluster_size as usize)];

        let crypt_raw = be32(buf, 32);
        let crypt_method = match crypt_raw {
            0 => CryptMethod::None,
            1 => CryptMethod::LegacyAes,
            2 => CryptMethod::Luks,
            _ => {
                return Err(invalid(
                    "crypt_method",
                    crypt_raw.into(),
                    "must be 0, 1 or 2",
                ));
            }
        };

        let mut h = Header {
            version,
            cluster_bits,
            size: be64(buf, 24),
            crypt_method,
            l1_size: be32(buf, 36),
            l1_table_offset: be64(buf, 40),
            refcount_table_offset: be64(buf, 48),
            refcount_table_clusters: be32(buf, 56),
            nb_snapshots: be32(buf, 60),
            snapshots_offset: be64(buf, 64),
            incompatible_features: 0,
            compatible_features: 0,
            autoclear_features: 0,
            refcount_order: 4,
            header_length: V2_HEADER_LEN,
            compression_type: 0,
            unknown_header_bytes: Vec::new(),
            extensions: Vec::new(),
            backing_file: None,
        };
        let backing_file_offset = be64(buf, 8);
        let backing_file_size = be32(buf, 16);

        if version == 3 {
            if first.len() < V3_MIN_HEADER_LEN as usize {
                return Err(Error::Truncated {
                    what: "qcow2 v3 header",
                    needed: u64::from(V3_MIN_HEADER_LEN),
                    file_len: first.len() as u64,
                });
            }
            h.incompatible_features = be64(buf, 72);
            h.compatible_features = be64(buf, 80);
            h.autoclear_features = be64(buf, 88);
            h.refcount_order = be32(buf, 96);
            h.header_length = be32(buf, 100);
            if h.header_length < V3_MIN_HEADER_LEN {
                return Err(invalid(
                    "header_length",
                    h.header_length.into(),
                    "must be at least 104 for version 3",
                ));
            }
            if !h.header_length.is_multiple_of(8) {
                return Err(invalid(
                    "header_length",
                    h.header_length.into(),
                    "must be a multiple of 8",
                ));
            }
            if u64::from(h.header_length) > cluster_size {
                return Err(invalid(
                    "header_length",
                    h.header_length.into(),
                    "header does not fit in the first cluster",
                ));
            }
            if first.len() < h.header_length as usize {
                return Err(Error::Truncated {
                    what: "qcow2 header",
                    needed: u64::from(h.header_length),
                    file_len: first.len() as u64,
                });
            }
            if h.header_length > V3_MIN_HEADER_LEN {
                h.compression_type = buf[V3_MIN_HEADER_LEN as usize];
            }
            if h.header_length > V3_HEADER_LEN {
                h.unknown_header_bytes =
                    buf[V3_HEADER_LEN as usize..h.header_length as usize].to_vec();
            }
        }

        let unknown = h.incompatible_features & !INCOMPAT_KNOWN;
        if unknown != 0 {
            return Err(Error::UnknownIncompatibleFeatures { bits: unknown });
        }
        if h.incompatible_features & INCOMPAT_DATA_FILE != 0 {
            return Err(Error::Unsupported {
                what: "external data files (incompatible feature bit 2)".into(),
            });
        }
        if h.refcount_order > 6 {
            return Err(invalid(
                "refcount_order",
                h.refcount_order.into(),
                "must be at most 6",
            ));
        }
        match h.compression_type {
            0 => {}
            1 => {
                if h.incompatible_features & INCOMPAT_COMPRESSION == 0 {
                    return Err(invalid(
                        "compression_type",
                        1,
                        "non-deflate compression requires incompatible bit 3",
                    ));
                }
            }
            other => {
                return Err(invalid(
                    "compression_type",
                    other.into(),
                    "must be 0 (deflate) or 1 (zstd)",
                ));
            }
        }
        if h.compression_type == 0 && h.incompatible_features & INCOMPAT_COMPRESSION != 0 {
            return Err(invalid(
                "incompatible_features",
                h.incompatible_features,
                "compression type bit set with deflate compression",
            ));
        }
        if h.extended_l2() && cluster_bits < 14 {
            return Err(invalid(
                "cluster_bits",
                cluster_bits.into(),
                "extended L2 entries need clusters of at least 16 KiB",
            ));
        }

        // Sizes and offsets: checked here against the format's limits; against the file's
        // length when the image is opened.
        if h.size > (1u64 << 62) {
            return Err(invalid("size", h.size, "virtual size too large"));
        }
        check_aligned("l1_table_offset", h.l1_table_offset, cluster_size)?;
        check_aligned(
            "refcount_table_offset",
            h.refcount_table_offset,
            cluster_size,
        )?;
        if h.refcount_table_clusters == 0 {
            return Err(invalid("refcount_table_clusters", 0, "must not be zero"));
        }
        if h.refcount_table_offset == 0 {
            return Err(invalid(
                "refcount_table_offset",
                0,
                "refcount table overlaps the header",
            ));
        }
        let needed_l1 = h.l1_entries_for(h.size);
        if u64::from(h.l1_size) < needed_l1 {
            return Err(invalid(
                "l1_size",
                h.l1_size.into(),
                "too small for the virtual size",
            ));
        }
        if h.l1_size > 0 && h.l1_table_offset == 0 {
            return Err(invalid(
                "l1_table_offset",
                0,
                "L1 table overlaps the header",
            ));
        }
        if h.nb_snapshots > 0 {
            check_aligned("snapshots_offset", h.snapshots_offset, cluster_size)?;
            if h.nb_snapshots > 65536 {
                return Err(invalid(
                    "nb_snapshots",
                    h.nb_snapshots.into(),
                    "more than 65536 snapshots",
                ));
            }
        }

        // Extensions, up to the backing file name or the end of the first cluster.
        let ext_end = if backing_file_offset != 0 {
            backing_file_offset.min(cluster_size)
        } else {
            cluster_size
        } as usize;
        let mut pos = h.header_length as usize;
        loop {
            if pos + 8 > ext_end || pos + 8 > first.len() {
                // No room for an end marker: QEMU accepts a header without one.
                break;
            }
            let kind = be32(first, pos);
            let len = be32(first, pos + 4) as usize;
            if kind == 0 {
                break;
            }
            let data_start = pos + 8;
            let data_end = data_start
                .checked_add(len)
                .filter(|&e| e <= ext_end)
                .ok_or(Error::InvalidExtension {
                    kind,
                    reason: "length runs past the header cluster",
                })?;
            if data_end > first.len() {
                return Err(Error::Truncated {
                    what: "qcow2 header extension",
                    needed: data_end as u64,
                    file_len: first.len() as u64,
                });
            }
            if h.extensions.iter().any(|e| e.kind == kind) && kind != 0 {
                let known = matches!(
                    kind,
                    EXT_BACKING_FORMAT
                        | EXT_FEATURE_TABLE
                        | EXT_CRYPTO
                        | EXT_BITMAPS
                        | EXT_DATA_FILE
                );
                if known {
                    return Err(Error::InvalidExtension {
                        kind,
                        reason: "appears more than once",
                    });
                }
            }
            h.extensions.push(Extension {
                kind,
                data: first[data_start..data_end].to_vec(),
            });
            pos = data_end.div_ceil(8) * 8;
        }

        // Crypto extension consistency (QEMU's rules).
        let crypto = h.extension(EXT_CRYPTO).map(<[u8]>::len);
        match (h.crypt_method, crypto) {
            (CryptMethod::Luks, None) => {
                return Err(Error::InvalidExtension {
                    kind: EXT_CRYPTO,
                    reason: "missing crypto header extension for LUKS (crypt_method 2)",
                });
            }
            (CryptMethod::Luks, Some(len)) => {
                if len != 16 {
                    return Err(Error::InvalidExtension {
                        kind: EXT_CRYPTO,
                        reason: "must be 16 bytes long",
                    });
                }
                let (off, length) = h.crypto_header().unwrap_or((0, 0));
                if off == 0 || !off.is_multiple_of(cluster_size) {
                    return Err(Error::InvalidExtension {
                        kind: EXT_CRYPTO,
                        reason: "LUKS header offset is zero or not cluster aligned",
                    });
                }
                if length == 0 || length > (1 << 30) {
                    return Err(Error::InvalidExtension {
                        kind: EXT_CRYPTO,
                        reason: "LUKS header length is zero or larger than 1 GiB",
                    });
                }
            }
            (CryptMethod::LegacyAes, Some(_)) => {
                return Err(Error::InvalidExtension {
                    kind: EXT_CRYPTO,
                    reason: "crypto header extension only expected with LUKS",
                });
            }
            _ => {}
        }

        if backing_file_offset != 0 {
            if backing_file_size > 1023 {
                return Err(invalid(
                    "backing_file_size",
                    backing_file_size.into(),
                    "backing file name longer than 1023 bytes",
                ));
            }
            let end = backing_file_offset
                .checked_add(u64::from(backing_file_size))
                .filter(|&e| e <= cluster_size)
                .ok_or(invalid(
                    "backing_file_offset",
                    backing_file_offset,
                    "backing file name runs past the first cluster",
                ))?;
            if backing_file_offset < u64::from(h.header_length) {
                return Err(invalid(
                    "backing_file_offset",
                    backing_file_offset,
                    "backing file name overlaps the header",
                ));
            }
            let name = first
                .get(backing_file_offset as usize..end as usize)
                .ok_or(Error::Truncated {
                    what: "backing file name",
                    needed: end,
                    file_len: first.len() as u64,
                })?;
            let name = String::from_utf8(name.to_vec()).map_err(|_| {
                invalid(
                    "backing_file_offset",
                    backing_file_offset,
                    "name is not UTF-8",
                )
            })?;
            h.backing_file = Some(name);
        }
        Ok(h)
    }

    /// Serializes the header, its extensions and the backing file name into the bytes of the
    /// first cluster (padded with zeros to the cluster size).
    ///
    /// Writes the extensions in stored order (callers put the crypto extension first, as QEMU
    /// does) and keeps unknown trailing header bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let cs = self.cluster_size() as usize;
        let mut b = Vec::with_capacity(cs);
        b.extend_from_slice(&MAGIC);
        b.extend_from_slice(&self.version.to_be_bytes());
        b.extend_from_slice(&0u64.to_be_bytes()); // backing offset, patched below
        b.extend_from_slice(&0u32.to_be_bytes()); // backing size, patched below
        b.extend_from_slice(&self.cluster_bits.to_be_bytes());
        b.extend_from_slice(&self.size.to_be_bytes());
        b.extend_from_slice(&self.crypt_method.to_raw().to_be_bytes());
        b.extend_from_slice(&self.l1_size.to_be_bytes());
        b.extend_from_slice(&self.l1_table_offset.to_be_bytes());
        b.extend_from_slice(&self.refcount_table_offset.to_be_bytes());
        b.extend_from_slice(&self.refcount_table_clusters.to_be_bytes());
        b.extend_from_slice(&self.nb_snapshots.to_be_bytes());
        b.extend_from_slice(&self.snapshots_offset.to_be_bytes());
        if self.version >= 3 {
            let header_length =
                (V3_HEADER_LEN as usize + self.unknown_header_bytes.len()).div_ceil(8) * 8;
            b.extend_from_slice(&self.incompatible_features.to_be_bytes());
            b.extend_from_slice(&self.compatible_features.to_be_bytes());
            b.extend_from_slice(&self.autoclear_features.to_be_bytes());
            b.extend_from_slice(&self.refcount_order.to_be_bytes());
            b.extend_from_slice(&(header_length as u32).to_be_bytes());
            b.push(self.compression_type);
            b.resize(V3_HEADER_LEN as usize, 0);
            b.extend_from_slice(&self.unknown_header_bytes);
            b.resize(header_length, 0);
        }
        for e in &self.extensions {
            b.extend_from_slice(&e.kind.to_be_bytes());
            b.extend_from_slice(&(e.data.len() as u32).to_be_bytes());
            b.extend_from_slice(&e.data);
            b.resize(b.len().div_ceil(8) * 8, 0);
        }
        b.extend_from_slice(&[0u8; 8]);
        if let Some(name) = &self.backing_file {
            if name.len() > 1023 {
                return Err(Error::InvalidArgument(
                    "backing file name longer than 1023 bytes".into(),
                ));
            }
            let off = b.len() as u64;
            b[8..16].copy_from_slice(&off.to_be_bytes());
            b[16..20].copy_from_slice(&(name.len() as u32).to_be_bytes());
            b.extend_from_slice(name.as_bytes());
        }
        if b.len() > cs {
            return Err(Error::InvalidArgument(
                "header, extensions and backing file name do not fit in the first cluster".into(),
            ));
        }
        b.resize(cs, 0);
        Ok(b)
    }
}

/// The feature name table QEMU writes (so `qemu-img info` can name our feature bits).
pub fn feature_name_table() -> Vec<u8> {
    let names: [(u8, u8, &str); 8] = [
        (0, 0, "dirty bit"),
        (0, 1, "corrupt bit"),
        (0, 2, "external data file"),
        (0, 3, "compression type"),
        (0, 4, "extended L2 entries"),
        (1, 0, "lazy refcounts"),
        (2, 0, "bitmaps"),
        (2, 1, "raw external data"),
    ];
    let mut out = Vec::with_capacity(names.len() * 48);
    for (kind, bit, name) in names {
        let mut entry = [0u8; 48];
        entry[0] = kind;
        entry[1] = bit;
        entry[2..2 + name.len()].copy_from_slice(name.as_bytes());
        out.extend_from_slice(&entry);
    }
    out
}

/// The crypto header extension's data for a LUKS header at `offset` of `length` bytes.
pub fn crypto_extension(offset: u64, length: u64) -> Vec<u8> {
    let mut d = Vec::with_capacity(16);
    d.extend_from_slice(&offset.to_be_bytes());
    d.extend_from_slice(&length.to_be_bytes());
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Header {
        Header {
            version: 3,
            cluster_bits: 16,
            size: 1 << 30,
            crypt_method: CryptMethod::None,
            l1_size: 2,
            l1_table_offset: 0x30000,
            refcount_table_offset: 0x10000,
            refcount_table_clusters: 1,
            nb_snapshots: 0,
            snapshots_offset: 0,
            incompatible_features: 0,
            compatible_features: 0,
            autoclear_features: 0,
            refcount_order: 4,
            header_length: 112,
            compression_type: 0,
            unknown_header_bytes: Vec::new(),
            extensions: vec![Extension {
                kind: EXT_FEATURE_TABLE,
                data: feature_name_table(),
            }],
            backing_file: Some("base.qcow2".into()),
        }
    }

    #[test]
    fn roundtrip() {
        let h = sample();
        let b = h.to_bytes().unwrap();
        assert_eq!(Header::parse(&b).unwrap(), h);
    }

    #[test]
    fn case24_long_header_kept() {
        let mut h = sample();
        h.unknown_header_bytes = vec![1, 2, 3, 4, 5, 6, 7, 8];
        let b = h.to_bytes().unwrap();
        assert_eq!(be32(&b, 100), 120);
        let p = Header::parse(&b).unwrap();
        assert_eq!(p.header_length, 120);
        assert_eq!(p.unknown_header_bytes, vec![1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(p.to_bytes().unwrap(), b);
    }

    #[test]
    fn case24_header_length_104_accepted() {
        let h = sample();
        let mut b = h.to_bytes().unwrap();
        // Rebuild with header_length 104: move extensions 8 bytes earlier.
        let tail = b[112..].to_vec();
        b[104..104 + tail.len() - 8].copy_from_slice(&tail[..tail.len() - 8]);
        b[100..104].copy_from_slice(&104u32.to_be_bytes());
        let off = be64(&b, 8) - 8;
        b[8..16].copy_from_slice(&off.to_be_bytes());
        let p = Header::parse(&b).unwrap();
        assert_eq!(p.header_length, 104);
        assert_eq!(p.backing_file.as_deref(), Some("base.qcow2"));
    }

    #[test]
    fn case25_cluster_bits_out_of_range() {
        for bits in [0u32, 8, 22, 31, 32, 63, 64, u32::MAX] {
            let mut b = sample().to_bytes().unwrap();
            b[20..24].copy_from_slice(&bits.to_be_bytes());
            match Header::parse(&b) {
                Err(Error::InvalidHeader { field, .. }) => assert_eq!(field, "cluster_bits"),
                other => panic!("bits {bits}: {other:?}"),
            }
        }
    }

    #[test]
    fn case26_backing_name_past_first_cluster() {
        let mut b = sample().to_bytes().unwrap();
        b[8..16].copy_from_slice(&(65536u64 - 4).to_be_bytes());
        b[16..20].copy_from_slice(&10u32.to_be_bytes());
        match Header::parse(&b) {
            Err(Error::InvalidHeader { field, .. }) => assert_eq!(field, "backing_file_offset"),
            other => panic!("{other:?}"),
        }
        b[8..16].copy_from_slice(&u64::MAX.to_be_bytes());
        assert!(Header::parse(&b).is_err());
    }

    #[test]
    fn unknown_incompatible_refused_unknown_extension_kept() {
        let mut h = sample();
        h.extensions.push(Extension {
            kind: 0x1234_5678,
            data: vec![9; 13],
        });
        let b = h.to_bytes().unwrap();
        let p = Header::parse(&b).unwrap();
        assert_eq!(p.extension(0x1234_5678), Some(&[9u8; 13][..]));
        let mut b2 = b.clone();
        b2[72..80].copy_from_slice(&(1u64 << 40).to_be_bytes());
        assert!(matches!(
            Header::parse(&b2),
            Err(Error::UnknownIncompatibleFeatures { bits }) if bits == 1 << 40
        ));
    }

    #[test]
    fn extension_past_cluster() {
        let mut b = sample().to_bytes().unwrap();
        // first extension's length
        b[116..120].copy_from_slice(&0xffff_fff0u32.to_be_bytes());
        assert!(matches!(
            Header::parse(&b),
            Err(Error::InvalidExtension { .. })
        ));
    }
}

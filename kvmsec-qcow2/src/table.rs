//! L1/L2 entries, refcount entries and the snapshot table (format layer, no I/O).
//!
//! # References
//! - QEMU, `docs/interop/qcow2.rst`, sections "Cluster mapping", "Host cluster management",
//!   "Extended L2 Entries", "Compressed Clusters Descriptor" and "Snapshots".

use crate::{Error, Result};

/// Bits 9..=55 of an L1 entry: the L2 table's host offset.
pub const L1E_OFFSET_MASK: u64 = 0x00ff_ffff_ffff_fe00;
/// Bits 9..=55 of a standard L2 entry: the data cluster's host offset.
pub const L2E_OFFSET_MASK: u64 = 0x00ff_ffff_ffff_fe00;
/// Bits 9..=63 of a refcount table entry: the refcount block's host offset.
pub const REFT_OFFSET_MASK: u64 = 0xffff_ffff_ffff_fe00;
/// Bit 63 of L1/L2 entries: refcount is exactly one (writes may go in place).
pub const OFLAG_COPIED: u64 = 1 << 63;
/// Bit 62 of L2 entries: compressed cluster.
pub const OFLAG_COMPRESSED: u64 = 1 << 62;
/// Bit 0 of standard L2 entries (version 3): the cluster reads as zeros.
pub const OFLAG_ZERO: u64 = 1;

/// What one L2 entry says about a guest cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClusterMapping {
    /// Not allocated here: read from the backing file, or zeros.
    Unallocated,
    /// Reads as zeros. `host` is a preallocated cluster (0 if none).
    Zero {
        /// Preallocated host offset, or 0.
        host: u64,
    },
    /// Data at a host offset.
    Data {
        /// Host offset of the cluster.
        host: u64,
        /// The COPIED flag (refcount is one).
        copied: bool,
    },
    /// Compressed data.
    Compressed {
        /// Host offset of the compressed bytes (not cluster aligned).
        host: u64,
        /// Upper bound of the compressed length in bytes (whole 512-byte sectors).
        len: u64,
    },
}

/// Decodes a standard (64-bit) L2 entry.
///
/// `cluster_bits` outside 9..=21 (the range [`Header::parse`](crate::header::Header::parse)
/// accepts) is [`Error::InvalidHeader`].
pub fn decode_l2(entry: u64, cluster_bits: u32, version: u32) -> Result<ClusterMapping> {
    if !(crate::header::MIN_CLUSTER_BITS..=crate::header::MAX_CLUSTER_BITS).contains(&cluster_bits)
    {
        return Err(Error::InvalidHeader {
            field: "cluster_bits",
            value: cluster_bits.into(),
            reason: "must be between 9 and 21",
        });
    }
    if entry & OFLAG_COMPRESSED != 0 {
        // x = 62 - (cluster_bits - 8); bits 0..x-1 offset, x..61 additional sectors.
        let x = 62 - (cluster_bits - 8);
        let host = entry & ((1u64 << x) - 1);
        let sectors = (entry & ((1u64 << 62) - 1)) >> x;
        let len = (sectors + 1) * 512 - (host & 511);
        return Ok(ClusterMapping::Compressed { host, len });
    }
    let host = entry & L2E_OFFSET_MASK;
    if version >= 3 && entry & OFLAG_ZERO != 0 {
        return Ok(ClusterMapping::Zero { host });
    }
    if host == 0 {
        return Ok(ClusterMapping::Unallocated);
    }
    if host & ((1u64 << cluster_bits) - 1) != 0 {
        return Err(Error::Corrupt {
            what: "L2 entry points to a host offset that is not cluster aligned".into(),
            offset: host,
        });
    }
    Ok(ClusterMapping::Data {
        host,
        copied: entry & OFLAG_COPIED != 0,
    })
}

/// A standard L2 entry for a data cluster with refcount one.
pub fn data_entry(host: u64) -> u64 {
    host | OFLAG_COPIED
}

/// Reads refcount `index` from a refcount block with entries of `1 << order` bits.
pub fn get_refcount(block: &[u8], order: u32, index: usize) -> u64 {
    let byte = |i: usize| u64::from(block.get(i).copied().unwrap_or(0));
    match order {
        0 => (byte(index / 8) >> (index % 8)) & 1,
        1 => (byte(index / 4) >> (2 * (index % 4))) & 3,
        2 => (byte(index / 2) >> (4 * (index % 2))) & 0xf,
        3 => byte(index),
        4 => (byte(2 * index) << 8) | byte(2 * index + 1),
        5 => (0..4).fold(0, |a, k| (a << 8) | byte(4 * index + k)),
        _ => (0..8).fold(0, |a, k| (a << 8) | byte(8 * index + k)),
    }
}

/// Writes a 16-bit refcount (order 4), the only width this crate writes.
pub fn set_refcount16(block: &mut [u8], index: usize, value: u16) {
    if let Some(s) = block.get_mut(2 * index..2 * index + 2) {
        s.copy_from_slice(&value.to_be_bytes());
    }
}

/// One internal snapshot's table entry (the parts this crate uses).
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Snapshot {
    /// Host offset of the snapshot's L1 table.
    pub l1_table_offset: u64,
    /// Entries in that L1 table.
    pub l1_size: u32,
    /// The snapshot's ID string.
    pub id: String,
    /// The snapshot's name.
    pub name: String,
    /// Bytes of VM state saved with it.
    pub vm_state_size: u32,
}

/// Parses `count` snapshot table entries from `buf` (the bytes at `snapshots_offset`).
/// Returns the snapshots and the table's length in bytes.
pub fn parse_snapshots(buf: &[u8], count: u32) -> Result<(Vec<Snapshot>, usize)> {
    let mut out = Vec::new();
    let mut pos = 0usize;
    let short = |needed: usize| Error::Truncated {
        what: "snapshot table",
        needed: needed as u64,
        file_len: buf.len() as u64,
    };
    for _ in 0..count {
        let fixed = buf.get(pos..pos + 40).ok_or(short(pos + 40))?;
        let be64 = |o: usize| u64::from_be_bytes(fixed[o..o + 8].try_into().unwrap_or([0; 8]));
        let be32 = |o: usize| u32::from_be_bytes(fixed[o..o + 4].try_into().unwrap_or([0; 4]));
        let be16 = |o: usize| u16::from_be_bytes(fixed[o..o + 2].try_into().unwrap_or([0; 2]));
        let l1_table_offset = be64(0);
        let l1_size = be32(8);
        let id_len = usize::from(be16(12));
        let name_len = usize::from(be16(14));
        let vm_state_size = be32(32);
        let extra_len = be32(36) as usize;
        if extra_len > 1024 {
            return Err(Error::Corrupt {
                what: "snapshot extra data longer than 1024 bytes".into(),
                offset: pos as u64,
            });
        }
        let mut p = pos + 40 + extra_len;
        let id = buf.get(p..p + id_len).ok_or(short(p + id_len))?;
        p += id_len;
        let name = buf.get(p..p + name_len).ok_or(short(p + name_len))?;
        p += name_len;
        out.push(Snapshot {
            l1_table_offset,
            l1_size,
            id: String::from_utf8_lossy(id).into_owned(),
            name: String::from_utf8_lossy(name).into_owned(),
            vm_state_size,
        });
        pos = p.div_ceil(8) * 8;
    }
    Ok((out, pos))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_l2_refuses_out_of_range_cluster_bits() {
        for bits in [0u32, 8, 22, 64, 71, u32::MAX] {
            for entry in [1u64 << 62, OFLAG_COPIED | 0x10000, 0] {
                assert!(
                    matches!(
                        decode_l2(entry, bits, 3),
                        Err(Error::InvalidHeader {
                            field: "cluster_bits",
                            ..
                        })
                    ),
                    "bits {bits} entry {entry:#x}"
                );
            }
        }
        assert!(decode_l2(1 << 62, 9, 3).is_ok());
        assert!(decode_l2(1 << 62, 21, 3).is_ok());
    }

    #[test]
    fn refcount_orders() {
        let block = [0b1011_0110u8, 0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde];
        assert_eq!(get_refcount(&block, 0, 0), 0);
        assert_eq!(get_refcount(&block, 0, 1), 1);
        assert_eq!(get_refcount(&block, 1, 1), 1);
        assert_eq!(get_refcount(&block, 2, 1), 0b1011);
        assert_eq!(get_refcount(&block, 3, 1), 0x12);
        assert_eq!(get_refcount(&block, 4, 1), 0x3456);
        assert_eq!(get_refcount(&block, 5, 1), 0x789a_bcde);
        assert_eq!(get_refcount(&block, 6, 0), 0xb612_3456_789a_bcde);
        // Past the end reads as zero rather than panicking.
        assert_eq!(get_refcount(&block, 6, 5), 0);
        let mut b = [0u8; 4];
        set_refcount16(&mut b, 1, 0x0102);
        assert_eq!(b, [0, 0, 1, 2]);
    }

    #[test]
    fn compressed_descriptor() {
        // cluster_bits 16: x = 54; offset 0x12345, 3 additional sectors.
        let entry = OFLAG_COMPRESSED | (3u64 << 54) | 0x12345;
        assert_eq!(
            decode_l2(entry, 16, 3).unwrap(),
            ClusterMapping::Compressed {
                host: 0x12345,
                len: 4 * 512 - 0x145
            }
        );
    }

    #[test]
    fn standard_entries() {
        assert_eq!(decode_l2(0, 16, 3).unwrap(), ClusterMapping::Unallocated);
        assert_eq!(
            decode_l2(1, 16, 3).unwrap(),
            ClusterMapping::Zero { host: 0 }
        );
        assert_eq!(
            decode_l2(data_entry(0x50000), 16, 3).unwrap(),
            ClusterMapping::Data {
                host: 0x50000,
                copied: true
            }
        );
        assert!(decode_l2(0x50200, 16, 3).is_err());
    }
}

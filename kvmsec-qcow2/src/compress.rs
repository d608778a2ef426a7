//! Decompression of compressed clusters (format layer, no I/O).
//!
//! qcow2 stores a compressed cluster as a raw deflate stream (no zlib header) or, when the
//! header's compression type is 1, as a zstd frame. Output is bounded by the cluster size:
//! a stream that would inflate past one cluster is an error, and nothing is allocated beyond
//! the caller's output buffer (plus the zstd window, capped at 8 MiB).
//!
//! # References
//! - QEMU, `docs/interop/qcow2.rst`, "Compressed Clusters Descriptor" and "compression type".
//! - RFC 1951 (DEFLATE), RFC 8878 (Zstandard).

use crate::{Error, Result};

/// The codec named by the header's compression type field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    /// Raw deflate (compression type 0).
    Deflate,
    /// Zstandard (compression type 1).
    Zstd,
}

fn err(offset: u64, reason: impl Into<String>) -> Error {
    Error::Decompress {
        offset,
        reason: reason.into(),
    }
}

/// Inflates `input` into `out`, which must be exactly one cluster long. The compressed data
/// may carry trailing padding (qcow2 rounds to sectors); the stream must produce exactly
/// `out.len()` bytes. `offset` only labels errors.
pub fn decompress(codec: Codec, input: &[u8], out: &mut [u8], offset: u64) -> Result<()> {
    match codec {
        Codec::Deflate => inflate(input, out, offset),
        Codec::Zstd => unzstd(input, out, offset),
    }
}

#[cfg(feature = "deflate")]
fn inflate(input: &[u8], out: &mut [u8], offset: u64) -> Result<()> {
    use flate2::{Decompress, FlushDecompress, Status};
    let mut d = Decompress::new(false);
    let status = d
        .decompress(input, out, FlushDecompress::None)
        .map_err(|e| err(offset, format!("deflate: {e}")))?;
    let produced = d.total_out() as usize;
    if produced < out.len() {
        // QEMU accepts a stream that ends early only if it produced a whole cluster.
        return Err(err(
            offset,
            format!("inflates to {produced} bytes, less than a cluster"),
        ));
    }
    if status != Status::StreamEnd {
        // Output full but the stream wants more room: it inflates past one cluster, unless
        // what is left is only the end-of-stream marker.
        let mut extra = [0u8; 1];
        let consumed = d.total_in() as usize;
        let rest = input.get(consumed..).unwrap_or(&[]);
        let before = d.total_out();
        let _ = d.decompress(rest, &mut extra, FlushDecompress::None);
        if d.total_out() > before {
            return Err(err(offset, "inflates past one cluster"));
        }
    }
    Ok(())
}

#[cfg(not(feature = "deflate"))]
fn inflate(_input: &[u8], _out: &mut [u8], offset: u64) -> Result<()> {
    Err(err(
        offset,
        "deflate support not compiled in (feature `deflate`)",
    ))
}

#[cfg(feature = "zstd")]
fn unzstd(input: &[u8], out: &mut [u8], offset: u64) -> Result<()> {
    use ruzstd::decoding::FrameDecoder;
    use std::io::Read;
    let mut dec = FrameDecoder::new();
    dec.set_max_window_size(8 << 20);
    let mut stream = ruzstd::decoding::StreamingDecoder::new_with_decoder(input, dec)
        .map_err(|e| err(offset, format!("zstd: {e}")))?;
    let mut filled = 0;
    while filled < out.len() {
        let n = stream
            .read(&mut out[filled..])
            .map_err(|e| err(offset, format!("zstd: {e}")))?;
        if n == 0 {
            return Err(err(
                offset,
                format!("inflates to {filled} bytes, less than a cluster"),
            ));
        }
        filled += n;
    }
    let mut extra = [0u8; 1];
    match stream.read(&mut extra) {
        Ok(0) | Err(_) => Ok(()),
        Ok(_) => Err(err(offset, "inflates past one cluster")),
    }
}

#[cfg(not(feature = "zstd"))]
fn unzstd(_input: &[u8], _out: &mut [u8], offset: u64) -> Result<()> {
    Err(err(offset, "zstd support not compiled in (feature `zstd`)"))
}

#[cfg(all(test, feature = "deflate"))]
mod tests {
    use super::*;
    use flate2::{Compress, Compression, FlushCompress};

    fn deflate(data: &[u8]) -> Vec<u8> {
        let mut c = Compress::new(Compression::default(), false);
        let mut out = vec![0u8; data.len() + 1024];
        c.compress(data, &mut out, FlushCompress::Finish).unwrap();
        out.truncate(c.total_out() as usize);
        out
    }

    #[test]
    fn inflate_exact_cluster_with_padding() {
        let data: Vec<u8> = (0..4096u32).map(|i| (i % 7) as u8).collect();
        let mut z = deflate(&data);
        z.resize(z.len().div_ceil(512) * 512, 0);
        let mut out = vec![0u8; 4096];
        decompress(Codec::Deflate, &z, &mut out, 0).unwrap();
        assert_eq!(out, data);
    }

    #[test]
    fn inflate_past_cluster_is_error() {
        let data = vec![5u8; 8192];
        let z = deflate(&data);
        let mut out = vec![0u8; 4096];
        assert!(matches!(
            decompress(Codec::Deflate, &z, &mut out, 7),
            Err(Error::Decompress { offset: 7, .. })
        ));
    }

    #[test]
    fn short_and_garbage_are_errors() {
        let z = deflate(&[1u8; 100]);
        let mut out = vec![0u8; 4096];
        assert!(decompress(Codec::Deflate, &z, &mut out, 0).is_err());
        assert!(decompress(Codec::Deflate, &[0xff; 64], &mut out, 0).is_err());
        assert!(decompress(Codec::Zstd, &[0xff; 64], &mut out, 0).is_err());
    }
}

//! Fuzzes the compressed-cluster decoders (raw deflate and zstd) with a 64 KiB cluster.
//!
//! Properties: no panic, no hang; output never exceeds one cluster (an error otherwise).
#![no_main]

use kvmsec_qcow2::compress::{Codec, decompress};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&first, input)) = data.split_first() else {
        return;
    };
    let codec = if first & 1 == 0 { Codec::Deflate } else { Codec::Zstd };
    let mut out = vec![0u8; 65536];
    let _ = decompress(codec, input, &mut out, 0);
});

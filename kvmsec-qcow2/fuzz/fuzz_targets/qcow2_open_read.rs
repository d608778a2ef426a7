//! Fuzzes opening a whole (small) image and reading all of it: header, L1/L2 walk, refcount
//! table, compressed clusters, snapshots, `check` and `info`.
//!
//! Properties: every result is a typed error or data; no panic, no hang, bounded memory.
#![no_main]

use std::io::Write;

use kvmsec_qcow2::{Limits, OpenOptions, check, info};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(mut f) = tempfile::NamedTempFile::new() else {
        return;
    };
    if f.write_all(data).is_err() {
        return;
    }
    let path = f.path();
    let limits = Limits {
        max_chain_depth: 1,
        l2_cache_bytes: 1 << 20,
        ..Limits::default()
    };
    if let Ok(mut img) = OpenOptions::new().limits(limits).open(path) {
        let size = img.virtual_size().min(4 << 20) as usize;
        let mut buf = vec![0u8; size];
        let _ = img.read_at(&mut buf, 0);
    }
    let _ = check(path);
    let _ = info(path);
});

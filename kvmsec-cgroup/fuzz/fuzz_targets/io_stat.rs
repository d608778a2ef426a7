//! Fuzz io.stat, the v1 blkio throttle statistics, io.max and weight files.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let s = kvmsec_cgroup::stat::parse_io_stat(&text);
    let _ = s.total();
    let _ = kvmsec_cgroup::stat::parse_blkio_throttle(&text, &text);
    let _ = kvmsec_cgroup::io::parse_io_max(&text);
    let _ = kvmsec_cgroup::io::parse_io_weights(&text);
    let _ = kvmsec_cgroup::stat::parse_flat_keyed(&text);
});

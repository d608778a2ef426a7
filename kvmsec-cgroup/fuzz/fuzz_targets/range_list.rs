//! Fuzz the range-list parser; whatever parses must format and parse back to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(r) = text.parse::<kvmsec_cgroup::RangeList>() {
        let back: kvmsec_cgroup::RangeList = r.to_string().parse().expect("round trip");
        assert_eq!(back, r);
    }
    let _ = text.parse::<kvmsec_cgroup::DeviceRule>();
});

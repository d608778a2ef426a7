//! CPUID dump parsing never panics; a parsed dump decodes and round-trips.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(snap) = kvmsec_cpu::CpuidSnapshot::parse_dump(&text) {
        let _ = snap.decode();
        let again = kvmsec_cpu::CpuidSnapshot::parse_dump(&snap.to_dump()).ok();
        assert_eq!(again.as_ref(), Some(&snap));
    }
});

//! Register text parsing never panics; whatever parses formats and parses back.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(dump) = kvmsec_cpu::RegisterDump::parse(&text) {
        if let Some(cr4) = dump.cr4 {
            assert_eq!(cr4.to_string().parse::<kvmsec_cpu::Cr4>().ok(), Some(cr4));
        }
    }
    if let Ok(cr4) = text.parse::<kvmsec_cpu::Cr4>() {
        assert_eq!(cr4.to_string().parse::<kvmsec_cpu::Cr4>().ok(), Some(cr4));
    }
    let _ = kvmsec_cpu::Cr0::parse_hex(&text);
    let _ = kvmsec_cpu::Efer::parse_hex(&text);
});

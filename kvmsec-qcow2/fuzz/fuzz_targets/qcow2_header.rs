//! Fuzzes the qcow2 header and extension parser.
//!
//! Properties: no panic, no hang, no allocation sized by an unchecked field; a header that
//! parses serializes back to bytes that parse to the same header.
#![no_main]

use kvmsec_qcow2::header::Header;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(h) = Header::parse(data) {
        if let Ok(bytes) = h.to_bytes() {
            let again = Header::parse(&bytes).expect("a serialized header parses");
            assert_eq!(again.size, h.size);
            assert_eq!(again.extensions, h.extensions);
            assert_eq!(again.backing_file, h.backing_file);
        }
    }
});

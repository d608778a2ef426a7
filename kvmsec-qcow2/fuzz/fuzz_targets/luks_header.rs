//! Fuzzes the LUKS1 header parser and the unlock path with arbitrary region bytes.
//!
//! Properties: no panic, no hang, no allocation sized by an unchecked field; a header that
//! parses serializes back to bytes that parse to the same header.
#![no_main]

use kvmsec_qcow2::crypto::{LuksHeader, OpenLimits, Passphrase, luks_open};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(h) = LuksHeader::parse(data) {
        let again = LuksHeader::parse(&h.to_bytes()).expect("a serialized header parses");
        assert_eq!(again, h);
        let _ = h.cipher();
        let _ = h.hash_alg();
        let _ = h.active_slots().count();
    }
    // Tight limits keep each run short; everything past them must be a typed error.
    let limits = OpenLimits {
        max_iterations: 16,
        ..OpenLimits::default()
    };
    let mut region = data.to_vec();
    let _ = luks_open(&mut region, &Passphrase::from("fuzz"), &limits);
});

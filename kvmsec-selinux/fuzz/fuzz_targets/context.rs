//! Security context parsing: never panics; whatever parses re-parses from its canonical
//! form to the same value, and the canonical form is stable.
#![no_main]

use kvmsec_selinux::{MlsRange, SecurityContext};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(ctx) = SecurityContext::from_bytes(data) {
        let text = ctx.to_string();
        let again = SecurityContext::parse(&text).expect("canonical form must parse");
        assert_eq!(again, ctx);
        assert_eq!(again.to_string(), text);
        let kernel = SecurityContext::from_bytes(&ctx.to_kernel_bytes()).expect("kernel bytes");
        assert_eq!(kernel, ctx);
    }
    if let Ok(s) = std::str::from_utf8(data) {
        if let Ok(range) = s.parse::<MlsRange>() {
            assert_eq!(range.to_string().parse::<MlsRange>().expect("range"), range);
        }
    }
});

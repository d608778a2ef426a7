//! mountinfo line parsing: never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    for line in text.lines() {
        let _ = kvmsec_selinux::parse_mountinfo_line(line);
    }
});

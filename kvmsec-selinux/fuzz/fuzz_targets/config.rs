//! `/etc/selinux/config` parsing and editing: never panics, and an edit makes the new
//! value the one libselinux would read while keeping every other line.
#![no_main]

use kvmsec_selinux::{ConfigFile, Mode, parse_config};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = parse_config(&text);
    let mut file = ConfigFile::new(text.as_ref());
    let mode = match data.first().map(|b| b % 3) {
        Some(0) => Mode::Enforcing,
        Some(1) => Mode::Permissive,
        _ => Mode::Disabled,
    };
    file.set_mode(mode);
    assert_eq!(file.parse().mode, Some(mode));
    if file.set_policy_type("mls").is_ok() {
        assert_eq!(file.parse().policy_type, "mls");
        assert_eq!(file.parse().mode, Some(mode));
    }
});

//! Fuzz the /proc/<pid>/cgroup parser and group-path checks.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = kvmsec_cgroup::membership::parse_proc_pid_cgroup(&text);
    let _ = kvmsec_cgroup::GroupPath::new(&text);
});

//! Fuzz the mountinfo and /proc/mounts parsers and the host view built from them.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(mounts) = kvmsec_cgroup::mountinfo::parse_mountinfo(&text) {
        let host = kvmsec_cgroup::Cgroups::from_mounts(
            std::path::Path::new("/nonexistent"),
            &mounts,
            Some(""),
        );
        let _ = host.layout();
    }
    let _ = kvmsec_cgroup::mountinfo::parse_mounts(&text);
    let _ = kvmsec_cgroup::subsys::parse_proc_cgroups(&text);
});

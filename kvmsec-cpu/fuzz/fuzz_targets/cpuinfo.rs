//! `/proc/cpuinfo` parsing never panics, and its derived views stay consistent.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let info = kvmsec_cpu::CpuInfo::parse(&text);
    let common = info.common_flags();
    for (flag, lacking) in info.flag_differences() {
        assert!(!common.contains(&flag));
        assert!(!lacking.is_empty());
    }
    let _ = info.has_hardware_virtualization_flag();
});

//! The CR4 probe closes its VM and vCPU before it returns.
//!
//! Alone in its own test binary so that no other test opens descriptors meanwhile.
#![cfg(feature = "kvm")]

use kvmsec_cpu::{Cr4Probe, KvmAccess, KvmDevice};

/// The targets of this process's open descriptors.
fn open_fd_targets() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir("/proc/self/fd")
        .map(|d| {
            d.flatten()
                .filter_map(|e| std::fs::read_link(e.path()).ok())
                .map(|p| p.display().to_string())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn cr4_probe_leaves_no_vm_or_vcpu_open() {
    let dev = KvmDevice::probe();
    if dev.access != KvmAccess::Usable {
        eprintln!("skipping: /dev/kvm not usable here: {:?}", dev.access);
        return;
    }
    let before = open_fd_targets();
    let probe = Cr4Probe::run(&dev.path).unwrap();
    let after = open_fd_targets();
    assert_eq!(probe.bits.len(), 3);
    assert!(
        !after
            .iter()
            .any(|t| t.contains("kvm-vm") || t.contains("kvm-vcpu") || t == "/dev/kvm"),
        "{after:?}"
    );
    assert_eq!(before.len(), after.len(), "{before:?} vs {after:?}");
}

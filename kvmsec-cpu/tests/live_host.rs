//! Tests against the machine the suite runs on.
//!
//! They run everywhere and check what holds on any host; where a value is specific to the
//! development machine kind (KVM served by `kvm_pvm`, a software KVM without VMX/SVM), the
//! exact observed value is asserted only when `/sys/module/kvm_pvm` exists, so other hosts do
//! not fail falsely. Parts that need `/dev/kvm` say why on stderr when it is missing.

use std::path::Path;

use kvmsec_cpu::{CpuArch, CpuInfo, CpuidSnapshot, Feature, KernelCmdline, KvmModules};

/// This machine kind: KVM provided by the PVM module.
fn is_pvm_host() -> bool {
    Path::new("/sys/module/kvm_pvm").is_dir()
}

#[test]
fn cpuid_and_cpuinfo_agree_on_smep() {
    let Ok(snap) = CpuidSnapshot::live() else {
        eprintln!("skipping: not x86");
        return;
    };
    let cpuid = snap.decode();
    let info = CpuInfo::read().unwrap();
    assert_eq!(info.arch, CpuArch::X86);
    let cmdline = KernelCmdline::read_at(Path::new("/")).unwrap();
    // The kernel lists smep exactly when CPUID has it, unless a boot parameter removed it.
    let expected = cpuid.has(Feature::Smep) && cmdline.disables(Feature::Smep).is_none();
    assert_eq!(info.has_x86_flag("smep"), expected);
    if is_pvm_host() {
        // This machine: CPUID says SMEP and SMAP, /proc/cpuinfo agrees, no VMX/SVM.
        assert!(cpuid.has(Feature::Smep) && cpuid.has(Feature::Smap));
        assert!(info.has_x86_flag("smep") && info.has_x86_flag("smap"));
        assert!(!info.has_hardware_virtualization_flag());
        assert!(cpuid.has(Feature::Hypervisor));
        assert_eq!(cpuid.hypervisor.as_ref().unwrap().signature, "KVMKVMKVM");
    }
}

#[test]
fn kvm_module_and_parameters() {
    let modules = KvmModules::read_at(Path::new("/"));
    if is_pvm_host() {
        let m = modules.in_use().unwrap();
        assert_eq!(m.name, "kvm_pvm");
        assert_eq!(m.nested(), None);
        assert_eq!(m.param("pvm_native").and_then(|v| v.enabled()), Some(true));
        assert!(
            modules
                .core
                .as_ref()
                .unwrap()
                .param("halt_poll_ns")
                .is_some()
        );
    }
}

/// Tests that ask /dev/kvm (they need the `kvm` feature).
#[cfg(feature = "kvm")]
mod with_kvm {
    use super::is_pvm_host;
    use kvmsec_cpu::report::{Status, host_checks};
    use kvmsec_cpu::{
        Cr4, Cr4Probe, Feature, GuestCpuid, GuestOffer, KvmAccess, KvmDevice, ProbeOutcome,
    };

    fn usable_kvm() -> Option<KvmDevice> {
        let d = KvmDevice::probe();
        if d.access == KvmAccess::Usable {
            Some(d)
        } else {
            eprintln!("skipping: /dev/kvm not usable here: {:?}", d.access);
            None
        }
    }

    #[test]
    fn dev_kvm_answers_api_version_12() {
        let Some(dev) = usable_kvm() else { return };
        assert_eq!(dev.api_version, Some(12));
    }

    #[test]
    fn supported_cpuid_leaf7_on_this_machine() {
        let Some(dev) = usable_kvm() else { return };
        let guest = GuestCpuid::query(&dev.path).unwrap();
        assert!(!guest.supported.is_empty());
        if is_pvm_host() {
            // Observed on this machine kind: KVM (PVM) offers UMIP but neither SMEP nor SMAP.
            assert_eq!(guest.offer(Feature::Smep), GuestOffer::NotOffered);
            assert_eq!(guest.offer(Feature::Smap), GuestOffer::NotOffered);
            assert_eq!(guest.offer(Feature::Umip), GuestOffer::Supported);
            let leaf7 = guest.supported.get(7, 0);
            assert_eq!(leaf7.ebx >> 7 & 1, 0, "SMEP bit");
            assert_eq!(leaf7.ebx >> 20 & 1, 0, "SMAP bit");
            assert_eq!(leaf7.ecx >> 2 & 1, 1, "UMIP bit");
        }
    }

    #[test]
    fn cr4_probe_runs_and_its_answer_is_asserted() {
        let Some(dev) = usable_kvm() else { return };
        let probe = Cr4Probe::run(&dev.path).unwrap();
        assert_eq!(probe.bits.len(), 3);
        assert_eq!(probe.initial_cr4 & Cr4::SMEP, Cr4::empty());
        if is_pvm_host() {
            // Observed on this machine kind: KVM accepts all three bits, before and after
            // KVM_SET_CPUID2 with the supported CPUID (which lacks SMEP and SMAP).
            for b in &probe.bits {
                assert_eq!(b.before_cpuid, ProbeOutcome::Accepted, "{}", b.bit);
                assert_eq!(
                    b.with_supported_cpuid,
                    Some(ProbeOutcome::Accepted),
                    "{}",
                    b.bit
                );
            }
        }
    }

    #[test]
    fn live_report() {
        let checks = host_checks();
        let get = |id: &str| {
            checks
                .iter()
                .find(|c| c.id == id)
                .unwrap_or_else(|| panic!("no {id}"))
                .clone()
        };
        for c in &checks {
            assert!(!c.reason.is_empty() && !c.reason.contains('\n'), "{c:?}");
        }
        if usable_kvm().is_none() {
            return;
        }
        assert_eq!(get("cpu.kvm.device").status, Status::Pass);
        assert_eq!(get("cpu.kvm.api_version").reason, "KVM API version 12");
        if is_pvm_host() {
            assert_eq!(get("cpu.smep").status, Status::Pass);
            assert_eq!(get("cpu.smap").status, Status::Pass);
            assert_eq!(get("cpu.hw_virt").status, Status::Info);
            let smep = get("cpu.guest_smep");
            assert_eq!(smep.status, Status::Warn);
            assert_eq!(
                smep.reason,
                "KVM does not offer SMEP to guests in CPUID although the host CPU has it, so a \
                 guest kernel will not enable it; CR4 probe: KVM_SET_SREGS with CR4.SMEP accepted \
                 (KVM would keep the bit, but guests set it only when CPUID advertises the \
                 feature)"
            );
            assert_eq!(get("cpu.guest_smap").status, Status::Warn);
            assert_eq!(get("cpu.guest_umip").status, Status::Pass);
            assert!(get("cpu.kvm.module").reason.starts_with("kvm_pvm "));
        }
    }
}

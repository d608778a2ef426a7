//! Issue 9, cases 13–18: real-world inputs that broke other tools, each with its exact
//! expected result.

use std::path::Path;

use kvmsec_cpu::report::{Check, HostFacts, Status};
use kvmsec_cpu::{
    CpuArch, CpuInfo, CpuidEntry, CpuidRegs, CpuidSnapshot, Feature, GuestCpuid, GuestOffer,
    KvmAccess, KvmDevice, KvmModule, KvmModules, ParamValue, SevSupport, VulnState, VulnStatus,
    sev_support,
};

fn find<'a>(checks: &'a [Check], id: &str) -> &'a Check {
    checks
        .iter()
        .find(|c| c.id == id)
        .unwrap_or_else(|| panic!("no check {id} in {checks:#?}"))
}

fn fixture(host: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(host)
}

#[test]
fn case13_arm64_features_are_kept_per_architecture() {
    let text = "processor\t: 0\nBogoMIPS\t: 50.00\n\
                Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 cpuid\n\
                CPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x0\n\
                CPU part\t: 0xd08\nCPU revision\t: 3\n\n\
                processor\t: 1\nBogoMIPS\t: 50.00\n\
                Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 cpuid\n\
                CPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x0\n\
                CPU part\t: 0xd08\nCPU revision\t: 3\n";
    let info = CpuInfo::parse(text);
    assert_eq!(info.arch, CpuArch::Arm64);
    assert_eq!(info.processors.len(), 2);
    assert_eq!(info.processors[1].processor, Some(1));
    assert_eq!(info.processors[0].vendor_id, None);
    assert_eq!(
        info.processors[0].flags,
        [
            "aes", "cpuid", "crc32", "evtstrm", "fp", "pmull", "sha1", "sha2", "asimd"
        ]
        .map(String::from)
        .into()
    );
    assert!(info.has_flag(CpuArch::Arm64, "aes"));
    // An arm64 `aes` is not the x86 one.
    assert!(!info.has_x86_flag("aes"));
    assert!(!info.has_flag(CpuArch::X86, "aes"));
    assert_eq!(info.processors[0].field("CPU part"), Some("0xd08"));

    // Old arm64 kernels: one header and a shared Features line outside the records.
    let old = "Processor\t: AArch64 Processor rev 4 (aarch64)\nprocessor\t: 0\nprocessor\t: 1\n\
               Features\t: fp asimd aes\nCPU implementer\t: 0x41\n";
    let info = CpuInfo::parse(old);
    assert_eq!(info.arch, CpuArch::Arm64);
    assert_eq!(info.processors.len(), 2);
    assert!(info.has_flag(CpuArch::Arm64, "aes"));
    assert!(!info.has_x86_flag("aes"));
}

#[test]
fn case14_vmx_flags_line_is_not_cpu_flags() {
    let text = "processor\t: 0\nvendor_id\t: GenuineIntel\ncpu family\t: 6\n\
                flags\t\t: fpu vme de pse tsc msr pae mce vmx smep smap\n\
                vmx flags\t: vnmi preemption_timer posted_intr invvpid ept_x_only ept_ad \
                ept_1gb flexpriority apicv tsc_offset vtpr mtf vapic ept vpid \
                unrestricted_guest vapic_reg vid ple shadow_vmcs pml ept_mode_based_exec\n\
                bugs\t\t: spectre_v1 spectre_v2 spec_store_bypass swapgs\n";
    let info = CpuInfo::parse(text);
    assert_eq!(info.arch, CpuArch::X86);
    let p = &info.processors[0];
    assert_eq!(
        p.flags,
        [
            "de", "fpu", "mce", "msr", "pae", "pse", "smap", "smep", "tsc", "vme", "vmx"
        ]
        .map(String::from)
        .into()
    );
    assert_eq!(p.vmx_flags.len(), 22);
    for word in [
        "vnmi",
        "preemption_timer",
        "ept",
        "vpid",
        "pml",
        "flexpriority",
    ] {
        assert!(!info.has_x86_flag(word), "{word}");
        assert!(p.vmx_flags.contains(word), "{word}");
    }
    assert_eq!(p.bugs.len(), 4);
    // A `vmx flags` line alone does not make a CPU flag set.
    let only_vmx = CpuInfo::parse("processor : 0\nvendor_id : GenuineIntel\nvmx flags : ept\n");
    assert!(only_vmx.processors[0].flags.is_empty());
}

#[test]
fn case15_vulnerability_wordings_are_typed() {
    let s = VulnStatus::parse("KVM: Mitigation: VMX unsupported\n");
    assert!(s.kvm);
    assert_eq!(
        s.state,
        VulnState::Mitigated {
            mitigations: vec!["VMX unsupported".into()]
        }
    );

    let s = VulnStatus::parse("KVM: Mitigation: Split huge pages\n");
    assert!(s.kvm);
    assert_eq!(
        s.state,
        VulnState::Mitigated {
            mitigations: vec!["Split huge pages".into()]
        }
    );

    let s = VulnStatus::parse("KVM: Vulnerable\n");
    assert!(s.kvm);
    assert_eq!(s.state, VulnState::Vulnerable { details: vec![] });

    let s = VulnStatus::parse("Unknown: No mitigations\n");
    assert!(!s.kvm);
    assert_eq!(
        s.state,
        VulnState::Unknown {
            text: "No mitigations".into()
        }
    );

    let s = VulnStatus::parse(
        "Vulnerable: Clear CPU buffers attempted, no microcode; SMT vulnerable\n",
    );
    assert_eq!(
        s.state,
        VulnState::Vulnerable {
            details: vec![
                "Clear CPU buffers attempted, no microcode".into(),
                "SMT vulnerable".into()
            ]
        }
    );
    assert!(s.residual_risk());
    assert_eq!(
        s.raw,
        "Vulnerable: Clear CPU buffers attempted, no microcode; SMT vulnerable"
    );

    // The same kinds inside the report: no parse failure, a typed status each.
    let dir = tempfile::tempdir().unwrap();
    let vdir = dir.path().join("sys/devices/system/cpu/vulnerabilities");
    std::fs::create_dir_all(&vdir).unwrap();
    for (name, text) in [
        ("itlb_multihit", "KVM: Mitigation: VMX unsupported"),
        ("l1tf", "KVM: Vulnerable"),
        ("mmio_stale_data", "Unknown: No mitigations"),
        (
            "mds",
            "Vulnerable: Clear CPU buffers attempted, no microcode; SMT vulnerable",
        ),
        ("future_bug", "Partially mitigated by a new thing"),
    ] {
        std::fs::write(vdir.join(name), format!("{text}\n")).unwrap();
    }
    let checks = HostFacts::gather_files(dir.path()).checks();
    let status = |id: &str| find(&checks, id).status;
    assert_eq!(status("cpu.vuln.itlb_multihit"), Status::Pass);
    assert_eq!(status("cpu.vuln.l1tf"), Status::Fail);
    assert_eq!(status("cpu.vuln.mmio_stale_data"), Status::Info);
    assert_eq!(status("cpu.vuln.mds"), Status::Fail);
    assert_eq!(status("cpu.vuln.future_bug"), Status::Info);
    assert_eq!(
        find(&checks, "cpu.vuln.future_bug").reason,
        "Partially mitigated by a new thing"
    );
}

#[test]
fn case16_dev_kvm_without_vmx_or_svm_is_usable() {
    // A fixture host whose cpuinfo has neither vmx nor svm, with a usable /dev/kvm.
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("proc")).unwrap();
    std::fs::write(
        dir.path().join("proc/cpuinfo"),
        "processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 25\nmodel name\t: AMD EPYC\n\
         flags\t\t: fpu nx hypervisor smep smap umip\n\n",
    )
    .unwrap();
    let params = dir.path().join("sys/module/kvm_pvm/parameters");
    std::fs::create_dir_all(&params).unwrap();
    std::fs::write(params.join("pvm_native"), "Y\n").unwrap();

    let mut facts = HostFacts::gather_files(dir.path());
    facts.kvm_device = Ok(KvmDevice {
        path: "/dev/kvm".into(),
        access: KvmAccess::Usable,
        api_version: Some(12),
    });
    let checks = facts.checks();
    let dev = find(&checks, "cpu.kvm.device");
    assert_eq!(dev.status, Status::Pass);
    assert_eq!(
        dev.reason,
        "/dev/kvm is present and this process can open it"
    );
    let hw = find(&checks, "cpu.hw_virt");
    assert_eq!(hw.status, Status::Info);
    assert_eq!(
        hw.reason,
        "cpuinfo lists neither vmx nor svm, but /dev/kvm works (kvm_pvm): a software or nested KVM"
    );
    assert_eq!(
        find(&checks, "cpu.kvm.api_version").reason,
        "KVM API version 12"
    );
    assert!(
        checks
            .iter()
            .filter(|c| c.id.starts_with("cpu.kvm") || c.id == "cpu.hw_virt")
            .all(|c| c.status == Status::Pass || c.status == Status::Info),
        "{checks:#?}"
    );

    // An unprivileged user cannot open /dev/kvm: not checked, never "KVM unusable".
    facts.kvm_device = Ok(KvmDevice {
        path: "/dev/kvm".into(),
        access: KvmAccess::PermissionDenied,
        api_version: None,
    });
    let checks = facts.checks();
    for id in ["cpu.kvm.device", "cpu.hw_virt", "cpu.kvm.api_version"] {
        let c = find(&checks, id);
        assert_eq!(c.status, Status::Info, "{id}");
        assert!(c.reason.starts_with("not checked: "), "{c:?}");
    }

    // Without a device at all it is a warning, and only then.
    facts.kvm_device = Ok(KvmDevice {
        path: "/dev/kvm".into(),
        access: KvmAccess::Absent,
        api_version: None,
    });
    let checks = facts.checks();
    assert_eq!(find(&checks, "cpu.hw_virt").status, Status::Warn);
    assert_eq!(find(&checks, "cpu.kvm.device").status, Status::Fail);

    // And on this machine, live (no vmx/svm flag, /dev/kvm served by kvm_pvm).
    if Path::new("/sys/module/kvm_pvm").is_dir() && KvmDevice::probe().access == KvmAccess::Usable {
        let checks = kvmsec_cpu::report::host_checks();
        assert_eq!(find(&checks, "cpu.kvm.device").status, Status::Pass);
        assert_eq!(find(&checks, "cpu.hw_virt").status, Status::Info);
    } else {
        eprintln!("live part skipped: not a kvm_pvm host with a usable /dev/kvm");
    }
}

fn kvm_amd(params: &[(&str, &str)]) -> KvmModule {
    KvmModule {
        name: "kvm_amd".into(),
        parameters: params
            .iter()
            .map(|(k, v)| (k.to_string(), ParamValue::parse(v)))
            .collect(),
    }
}

#[test]
fn case17_sev_parameter_y_and_1_and_conflict() {
    let epyc = CpuidSnapshot::parse_dump(
        &std::fs::read_to_string(fixture("amd-epyc").join("cpuid.txt")).unwrap(),
    )
    .unwrap()
    .decode();
    let newer = kvm_amd(&[("sev", "Y\n"), ("sev_es", "N\n")]);
    let older = kvm_amd(&[("sev", "1\n"), ("sev_es", "0\n")]);
    for m in [&newer, &older] {
        assert_eq!(
            sev_support(m, Some(&epyc)),
            vec![
                (Feature::Sev, SevSupport::Enabled),
                (Feature::SevEs, SevSupport::Disabled)
            ],
            "{m:?}"
        );
    }

    // The parameter is on but CPUID 0x8000001F lacks SEV (this machine's recorded CPUID).
    let no_sev = CpuidSnapshot::parse_dump(
        "0x00000000 0x00: eax=0x0000001c ebx=0x68747541 ecx=0x444d4163 edx=0x69746e65\n\
         0x80000000 0x00: eax=0x80000021 ebx=0x68747541 ecx=0x444d4163 edx=0x69746e65\n\
         0x8000001f 0x00: eax=0x00000000 ebx=0x00000000 ecx=0x00000000 edx=0x00000000\n",
    )
    .unwrap()
    .decode();
    for m in [&newer, &older] {
        assert_eq!(
            sev_support(m, Some(&no_sev)),
            vec![
                (Feature::Sev, SevSupport::Conflict),
                (Feature::SevEs, SevSupport::Disabled)
            ]
        );
    }

    // In the report: a FAIL naming the conflict, not a PASS.
    let mut facts = HostFacts::gather_files(&fixture("amd-epyc"));
    facts.cpuid = Ok(no_sev);
    facts.kvm_modules = KvmModules {
        core: None,
        vendor: vec![older],
    };
    let checks = facts.checks();
    let sev = find(&checks, "cpu.kvm.sev");
    assert_eq!(sev.status, Status::Fail);
    assert_eq!(
        sev.reason,
        "kvm_amd parameter is enabled but CPUID 0x8000001F does not report it: a conflict, not \
         support"
    );
    assert_eq!(find(&checks, "cpu.kvm.sev_es").status, Status::Info);
}

/// KVM_GET_SUPPORTED_CPUID leaf 7.0 as this machine's KVM (PVM) returned it.
fn pvm_supported_cpuid() -> CpuidSnapshot {
    CpuidSnapshot::from_entries([
        CpuidEntry {
            leaf: 0,
            subleaf: 0,
            subleaf_significant: false,
            regs: CpuidRegs {
                eax: 0x1c,
                ebx: 0x6874_7541,
                ecx: 0x444d_4163,
                edx: 0x6974_6e65,
            },
        },
        CpuidEntry {
            leaf: 7,
            subleaf: 0,
            subleaf_significant: true,
            regs: CpuidRegs {
                eax: 0,
                ebx: 0x0180_0002,
                ecx: 0x0000_0104,
                edx: 0x2000_0000,
            },
        },
    ])
}

#[test]
fn case18_guest_features_come_from_kvm_not_host_flags() {
    let guest = GuestCpuid {
        supported: pvm_supported_cpuid(),
        emulated: CpuidSnapshot::new(),
    };
    // KVM lacks SMEP/SMAP the host has, and offers UMIP.
    assert_eq!(guest.offer(Feature::Smep), GuestOffer::NotOffered);
    assert_eq!(guest.offer(Feature::Smap), GuestOffer::NotOffered);
    assert_eq!(guest.offer(Feature::Umip), GuestOffer::Supported);
    assert_eq!(guest.offer(Feature::Pku), GuestOffer::NotOffered);

    // Host: a Skylake that has SMEP and SMAP but no UMIP.
    let mut facts = HostFacts::gather_files(&fixture("intel-nosmep"));
    let host = CpuidSnapshot::parse_dump(
        &std::fs::read_to_string(fixture("intel-nosmep").join("cpuid.txt")).unwrap(),
    )
    .unwrap()
    .decode();
    assert!(host.has(Feature::Smep) && !host.has(Feature::Umip));
    facts.cpuid = Ok(host);
    facts.guest_cpuid = Ok(guest);
    facts.cr4_probe = Err("not run in this test".into());
    let checks = facts.checks();
    let smep = find(&checks, "cpu.guest_smep");
    assert_eq!(smep.status, Status::Warn);
    assert_eq!(
        smep.reason,
        "KVM does not offer SMEP to guests in CPUID although the host CPU has it, so a guest \
         kernel will not enable it; CR4 probe not run: not run in this test"
    );
    assert_eq!(find(&checks, "cpu.guest_smap").status, Status::Warn);
    // UMIP: the host lacks it, KVM offers it (emulated) — the guest gets it.
    let umip = find(&checks, "cpu.guest_umip");
    assert_eq!(umip.status, Status::Pass);
    assert_eq!(
        umip.reason,
        "KVM_GET_SUPPORTED_CPUID offers UMIP; CR4 probe not run: not run in this test"
    );

    // A feature only in KVM_GET_EMULATED_CPUID is reported as such.
    let mut emulated = CpuidSnapshot::new();
    emulated.insert(CpuidEntry {
        leaf: 7,
        subleaf: 0,
        subleaf_significant: true,
        regs: CpuidRegs {
            ebx: 1 << 7,
            ..CpuidRegs::default()
        },
    });
    let guest = GuestCpuid {
        supported: pvm_supported_cpuid(),
        emulated,
    };
    assert_eq!(guest.offer(Feature::Smep), GuestOffer::EmulatedOnly);
}

//! The report and parsers on fixture trees of hosts this machine is not.
//!
//! Each tree under `tests/fixtures/<host>/` holds `proc/cpuinfo`, `proc/cmdline`, the
//! vulnerability files and KVM module parameters; some also hold `cpuid.txt`, a CPUID dump
//! that stands in for the live CPUID.

use std::path::{Path, PathBuf};

use kvmsec_cpu::report::{Check, HostFacts, Status, host_checks_at};
use kvmsec_cpu::{CpuArch, CpuInfo, CpuidSnapshot, Feature, KvmModules};

fn root(host: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(host)
}

fn find<'a>(checks: &'a [Check], id: &str) -> &'a Check {
    checks
        .iter()
        .find(|c| c.id == id)
        .unwrap_or_else(|| panic!("no check {id} in {checks:#?}"))
}

fn assert_check(checks: &[Check], id: &str, status: Status, reason: &str) {
    let c = find(checks, id);
    assert_eq!((c.status, c.reason.as_str()), (status, reason), "{id}");
}

fn cpuid_note(host: &str) -> String {
    format!(
        "; CPUID not checked: root is {}, not the live host's /",
        root(host).display()
    )
}

/// The facts of a fixture host with its `cpuid.txt` standing in for the live CPUID.
fn facts_with_cpuid(host: &str) -> HostFacts {
    let r = root(host);
    let mut facts = HostFacts::gather_files(&r);
    let dump = std::fs::read_to_string(r.join("cpuid.txt")).unwrap();
    facts.cpuid = Ok(CpuidSnapshot::parse_dump(&dump).unwrap().decode());
    facts
}

fn statuses(checks: &[Check], prefix: &str) -> Vec<(String, Status)> {
    checks
        .iter()
        .filter(|c| c.id.starts_with(prefix))
        .map(|c| (c.id.clone(), c.status))
        .collect()
}

#[test]
fn older_intel_without_smep() {
    let host = "intel-sandybridge";
    let checks = host_checks_at(&root(host));
    let note = cpuid_note(host);
    assert_check(
        &checks,
        "cpu.vendor",
        Status::Info,
        "GenuineIntel (from /proc/cpuinfo)",
    );
    assert_check(
        &checks,
        "cpu.model",
        Status::Info,
        "Intel(R) Xeon(R) CPU E5-2670 0 @ 2.60GHz, microcode 0x71a",
    );
    assert_check(
        &checks,
        "cpu.nx",
        Status::Pass,
        &format!("the kernel enabled NX (`nx` in /proc/cpuinfo){note}"),
    );
    for (id, flag, status) in [
        ("cpu.smep", "smep", Status::Warn),
        ("cpu.smap", "smap", Status::Warn),
        ("cpu.umip", "umip", Status::Warn),
        ("cpu.pku", "pku", Status::Info),
    ] {
        assert_check(
            &checks,
            id,
            status,
            &format!("/proc/cpuinfo lacks `{flag}` and no boot parameter turned it off{note}"),
        );
    }
    assert_eq!(
        statuses(&checks, "cpu.vuln."),
        [
            ("cpu.vuln.itlb_multihit".to_string(), Status::Pass),
            ("cpu.vuln.l1tf".to_string(), Status::Warn),
            ("cpu.vuln.mds".to_string(), Status::Warn),
            ("cpu.vuln.meltdown".to_string(), Status::Pass),
            ("cpu.vuln.mmio_stale_data".to_string(), Status::Info),
            ("cpu.vuln.spec_store_bypass".to_string(), Status::Pass),
            ("cpu.vuln.spectre_v1".to_string(), Status::Pass),
            ("cpu.vuln.spectre_v2".to_string(), Status::Pass),
            ("cpu.vuln.srbds".to_string(), Status::Pass),
            ("cpu.vuln.tsx_async_abort".to_string(), Status::Pass),
        ]
    );
    assert_check(
        &checks,
        "cpu.kvm.module",
        Status::Info,
        "kvm_intel (Intel VT-x), 4 parameters",
    );
    assert_check(
        &checks,
        "cpu.kvm.nested",
        Status::Info,
        "enabled (kvm_intel nested=Y)",
    );
    assert_check(
        &checks,
        "cpu.hw_virt",
        Status::Pass,
        "cpuinfo lists vmx or svm",
    );
    let skipped = format!(
        "not checked: root is {}, not the live host's /",
        root(host).display()
    );
    assert_check(&checks, "cpu.kvm.device", Status::Info, &skipped);
    assert_check(&checks, "cpu.guest_smep", Status::Info, &skipped);

    // With its CPUID: SMEP is absent from the CPU, not disabled.
    let checks = facts_with_cpuid(host).checks();
    assert_check(&checks, "cpu.vendor", Status::Info, "GenuineIntel");
    assert_check(
        &checks,
        "cpu.model",
        Status::Info,
        "unnamed (family 6 model 45 stepping 7), microcode 0x71a",
    );
    assert_check(
        &checks,
        "cpu.smep",
        Status::Warn,
        "the CPU does not report SMEP (CPUID)",
    );
    assert_check(
        &checks,
        "cpu.nx",
        Status::Pass,
        "CPUID reports NX and the kernel enabled it (`nx` in /proc/cpuinfo)",
    );
    let cpuid = facts_with_cpuid(host).cpuid.unwrap();
    assert_eq!(
        cpuid.features,
        [
            Feature::Vme,
            Feature::De,
            Feature::Pse,
            Feature::Tsc,
            Feature::Pae,
            Feature::Mce,
            Feature::Pge,
            Feature::Fxsr,
            Feature::Sse,
            Feature::Vmx,
            Feature::Smx,
            Feature::Pcid,
            Feature::Xsave,
            Feature::Osxsave,
            Feature::MdClear,
            Feature::IbrsIbpb,
            Feature::Stibp,
            Feature::L1dFlush,
            Feature::Ssbd,
            Feature::Nx,
            Feature::LongMode,
        ]
    );
}

#[test]
fn intel_with_smep_and_smap() {
    let host = "intel-skylake";
    let checks = host_checks_at(&root(host));
    let note = cpuid_note(host);
    for (id, name, flag) in [
        ("cpu.smep", "SMEP", "smep"),
        ("cpu.smap", "SMAP", "smap"),
        ("cpu.pku", "PKU", "pku"),
        ("cpu.nx", "NX", "nx"),
    ] {
        assert_check(
            &checks,
            id,
            Status::Pass,
            &format!("the kernel enabled {name} (`{flag}` in /proc/cpuinfo){note}"),
        );
    }
    assert_eq!(find(&checks, "cpu.umip").status, Status::Warn);
    assert_eq!(
        statuses(&checks, "cpu.vuln."),
        [
            ("cpu.vuln.gather_data_sampling".to_string(), Status::Fail),
            ("cpu.vuln.itlb_multihit".to_string(), Status::Fail),
            ("cpu.vuln.mds".to_string(), Status::Pass),
            ("cpu.vuln.meltdown".to_string(), Status::Pass),
            ("cpu.vuln.retbleed".to_string(), Status::Pass),
            ("cpu.vuln.spectre_v2".to_string(), Status::Pass),
            ("cpu.vuln.tsx_async_abort".to_string(), Status::Warn),
        ]
    );
    assert_check(
        &checks,
        "cpu.vuln.itlb_multihit",
        Status::Fail,
        "KVM: Vulnerable",
    );
    assert_check(
        &checks,
        "cpu.kvm.nested",
        Status::Info,
        "disabled (kvm_intel nested=N)",
    );
    let info = CpuInfo::read_at(&root(host)).unwrap();
    assert_eq!(info.processors.len(), 4);
    assert!(info.flag_differences().is_empty());
    assert!(info.processors.iter().all(|p| p.vmx_flags.contains("pml")));
    assert!(!info.has_x86_flag("pml"));
}

#[test]
fn amd_epyc() {
    let host = "amd-epyc";
    let checks = host_checks_at(&root(host));
    for id in ["cpu.nx", "cpu.smep", "cpu.smap", "cpu.umip", "cpu.pku"] {
        assert_eq!(find(&checks, id).status, Status::Pass, "{id}");
    }
    assert!(
        statuses(&checks, "cpu.vuln.")
            .iter()
            .all(|(_, s)| *s == Status::Pass)
    );
    assert_check(
        &checks,
        "cpu.kvm.module",
        Status::Info,
        "kvm_amd (AMD-V), 6 parameters",
    );
    assert_check(
        &checks,
        "cpu.kvm.nested",
        Status::Info,
        "enabled (kvm_amd nested=1)",
    );
    assert_check(
        &checks,
        "cpu.kvm.sev",
        Status::Info,
        "enabled in kvm_amd; CPUID not checked",
    );
    assert_check(
        &checks,
        "cpu.kvm.sev_snp",
        Status::Info,
        "disabled in kvm_amd",
    );

    let facts = facts_with_cpuid(host);
    let cpuid = facts.cpuid.as_ref().unwrap();
    assert_eq!(cpuid.vendor, "AuthenticAMD");
    assert_eq!((cpuid.family, cpuid.model, cpuid.stepping), (25, 17, 1));
    assert_eq!(cpuid.c_bit, Some(51));
    assert_eq!(cpuid.hypervisor, None);
    for f in [
        Feature::Smep,
        Feature::Smap,
        Feature::Umip,
        Feature::Pku,
        Feature::Ospke,
        Feature::La57,
        Feature::Svm,
        Feature::Sme,
        Feature::Sev,
        Feature::SevEs,
        Feature::SevSnp,
        Feature::AutoIbrs,
        Feature::AmdIbpb,
        Feature::AmdStibp,
    ] {
        assert!(cpuid.has(f), "{f}");
    }
    assert!(!cpuid.has(Feature::Vmx));
    let checks = facts.checks();
    assert_check(
        &checks,
        "cpu.kvm.sev",
        Status::Pass,
        "enabled in kvm_amd and reported by CPUID 0x8000001F",
    );
    assert_check(
        &checks,
        "cpu.kvm.sev_es",
        Status::Pass,
        "enabled in kvm_amd and reported by CPUID 0x8000001F",
    );
    assert_check(
        &checks,
        "cpu.smep",
        Status::Pass,
        "CPUID reports SMEP and the kernel enabled it (`smep` in /proc/cpuinfo)",
    );
}

#[test]
fn hybrid_cpu_with_differing_cores() {
    let host = "intel-hybrid";
    let info = CpuInfo::read_at(&root(host)).unwrap();
    assert_eq!(info.processors.len(), 6);
    let diff = info.flag_differences();
    assert_eq!(
        diff.into_iter().collect::<Vec<_>>(),
        [
            ("ospke".to_string(), vec![4, 5]),
            ("pku".to_string(), vec![4, 5])
        ]
    );
    let common = info.common_flags();
    assert!(common.contains("smep") && common.contains("umip"));
    assert!(!common.contains("pku"));
    assert!(!info.has_x86_flag("pku"));

    let checks = host_checks_at(&root(host));
    assert_check(
        &checks,
        "cpu.pku",
        Status::Warn,
        "cores differ: processors 4,5 lack the `pku` flag",
    );
    assert_eq!(find(&checks, "cpu.smep").status, Status::Pass);
    assert_eq!(find(&checks, "cpu.umip").status, Status::Pass);
    assert_check(
        &checks,
        "cpu.model",
        Status::Info,
        "12th Gen Intel(R) Core(TM) i7-12700, microcode 0x2e",
    );
}

#[test]
fn arm64_host() {
    let host = "arm64";
    let info = CpuInfo::read_at(&root(host)).unwrap();
    assert_eq!(info.arch, CpuArch::Arm64);
    assert_eq!(info.processors.len(), 2);
    assert!(info.has_flag(CpuArch::Arm64, "aes"));
    assert!(!info.has_x86_flag("aes"));
    assert!(!info.has_hardware_virtualization_flag());

    let checks = host_checks_at(&root(host));
    assert_check(
        &checks,
        "cpu.vendor",
        Status::Info,
        "implementer 0x41 (from /proc/cpuinfo)",
    );
    assert_check(&checks, "cpu.model", Status::Info, "part 0xd0c");
    for (id, name) in [("cpu.smep", "SMEP"), ("cpu.nx", "NX"), ("cpu.pku", "PKU")] {
        assert_check(
            &checks,
            id,
            Status::Info,
            &format!("not applicable: {name} is an x86 feature and this CPU is not x86"),
        );
    }
    assert_check(
        &checks,
        "cpu.hw_virt",
        Status::Info,
        "not checked: /proc/cpuinfo: not an x86 layout",
    );
    assert!(
        statuses(&checks, "cpu.vuln.")
            .iter()
            .all(|(_, s)| *s == Status::Pass)
    );
    assert_eq!(statuses(&checks, "cpu.vuln.").len(), 5);
    assert_check(
        &checks,
        "cpu.kvm.module",
        Status::Info,
        "kvm is present but no kvm_* vendor module shows in /sys/module",
    );
}

#[test]
fn host_booted_with_nosmep() {
    let host = "intel-nosmep";
    let checks = host_checks_at(&root(host));
    assert_check(
        &checks,
        "cpu.smep",
        Status::Warn,
        &format!(
            "the kernel command line turned SMEP off (`nosmep`){}",
            cpuid_note(host)
        ),
    );
    assert_eq!(find(&checks, "cpu.smap").status, Status::Pass);

    let checks = facts_with_cpuid(host).checks();
    assert_check(
        &checks,
        "cpu.smep",
        Status::Warn,
        "the CPU has SMEP (CPUID) but the kernel disabled it: the kernel command line turned \
         it off (`nosmep`)",
    );
    assert_check(
        &checks,
        "cpu.smap",
        Status::Pass,
        "CPUID reports SMAP and the kernel enabled it (`smap` in /proc/cpuinfo)",
    );
}

#[test]
fn cpu_feature_removed_without_a_known_parameter() {
    // CPUID has SMEP, cpuinfo lacks it, and the command line does not say why.
    let mut facts = facts_with_cpuid("intel-nosmep");
    facts.cmdline = Ok(kvmsec_cpu::KernelCmdline::parse("ro quiet"));
    assert_check(
        &facts.checks(),
        "cpu.smep",
        Status::Warn,
        "the CPU has SMEP (CPUID) but the kernel disabled it: no command-line parameter \
         explains it (kernel built without support?)",
    );
}

#[test]
fn empty_root_gives_only_not_checked_and_no_failures() {
    let dir = tempfile::tempdir().unwrap();
    let checks = host_checks_at(dir.path());
    assert!(!checks.is_empty());
    for c in &checks {
        assert!(
            c.status == Status::Info,
            "{c:?} should be INFO on an empty root"
        );
    }
    for id in [
        "cpu.smep",
        "cpu.vendor",
        "cpu.kvm.device",
        "cpu.guest_smep",
        "cpu.hw_virt",
    ] {
        assert!(
            find(&checks, id).reason.starts_with("not checked: "),
            "{id}"
        );
    }
    assert_eq!(KvmModules::read_at(dir.path()), KvmModules::default());
}

#[test]
fn check_ids_are_unique_and_prefixed() {
    for host in [
        "intel-sandybridge",
        "intel-skylake",
        "amd-epyc",
        "intel-hybrid",
        "arm64",
        "intel-nosmep",
    ] {
        let checks = host_checks_at(&root(host));
        let mut ids: Vec<&str> = checks.iter().map(|c| c.id.as_str()).collect();
        assert!(ids.iter().all(|i| i.starts_with("cpu.")), "{host}");
        let n = ids.len();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), n, "{host}: duplicate ids");
        assert!(checks.iter().all(|c| !c.reason.contains('\n')), "{host}");
    }
}

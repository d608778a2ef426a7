//! kvmsec-cpu next to what a user would otherwise write: `raw-cpuid` for the CPUID part,
//! a plain line scan of `/proc/cpuinfo` for the flags, a plain directory read for the
//! vulnerability files, and a hand-written bit table for CR4.
//!
//! Every group holds two functions, `kvmsec` and the anchor, measured on the same input in
//! the same run. Run with `cargo bench -p kvmsec-benches --bench cpu`.

use std::fs;
use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, criterion_group, criterion_main};
use kvmsec_cpu::{CpuInfo, CpuidSnapshot, Cr4, Feature, RegisterDump, read_vulnerabilities_at};

/// The security facts both sides extract from CPUID.
#[derive(Debug, Default)]
struct CpuidFacts {
    vendor: String,
    brand: Option<String>,
    family: u8,
    model: u8,
    hypervisor: bool,
    features: Vec<&'static str>,
}

/// kvmsec: snapshot the CPUID leaves and decode them.
fn ours_cpuid() -> CpuidFacts {
    let report = match CpuidSnapshot::live() {
        Ok(s) => s.decode(),
        Err(_) => return CpuidFacts::default(),
    };
    let wanted = [
        Feature::Nx,
        Feature::Smep,
        Feature::Smap,
        Feature::Umip,
        Feature::Pku,
        Feature::Ospke,
        Feature::Fsgsbase,
        Feature::Invpcid,
        Feature::La57,
        Feature::CetSs,
        Feature::Vmx,
        Feature::Svm,
        Feature::Pcid,
        Feature::MdClear,
        Feature::IbrsIbpb,
        Feature::Stibp,
        Feature::Ssbd,
        Feature::ArchCapabilities,
        Feature::L1dFlush,
    ];
    CpuidFacts {
        vendor: report.vendor.clone(),
        brand: report.brand.clone(),
        family: report.family,
        model: report.model,
        hypervisor: report.hypervisor.is_some(),
        features: wanted
            .iter()
            .filter(|f| report.has(**f))
            .map(|f| f.id())
            .collect(),
    }
}

/// Anchor: the same facts through `raw-cpuid`, querying only the leaves needed. The
/// speculation-control bits of leaf 7 EDX, which raw-cpuid 11 does not name, are read with
/// its `cpuid!` macro.
fn anchor_raw_cpuid() -> CpuidFacts {
    let cpuid = raw_cpuid::CpuId::new();
    let mut f = CpuidFacts {
        vendor: cpuid
            .get_vendor_info()
            .map(|v| v.as_str().to_string())
            .unwrap_or_default(),
        brand: cpuid
            .get_processor_brand_string()
            .map(|b| b.as_str().trim().to_string())
            .filter(|b| !b.is_empty()),
        ..CpuidFacts::default()
    };
    if let Some(fi) = cpuid.get_feature_info() {
        f.family = fi.family_id();
        f.model = fi.model_id();
        f.hypervisor = fi.has_hypervisor();
        if fi.has_vmx() {
            f.features.push("vmx");
        }
        if fi.has_pcid() {
            f.features.push("pcid");
        }
    }
    if let Some(e) = cpuid.get_extended_processor_and_feature_identifiers() {
        if e.has_execute_disable() {
            f.features.push("nx");
        }
        if e.has_svm() {
            f.features.push("svm");
        }
    }
    if let Some(e) = cpuid.get_extended_feature_info() {
        for (has, name) in [
            (e.has_smep(), "smep"),
            (e.has_smap(), "smap"),
            (e.has_umip(), "umip"),
            (e.has_pku(), "pku"),
            (e.has_ospke(), "ospke"),
            (e.has_fsgsbase(), "fsgsbase"),
            (e.has_invpcid(), "invpcid"),
            (e.has_la57(), "la57"),
            (e.has_cet_ss(), "cet_ss"),
        ] {
            if has {
                f.features.push(name);
            }
        }
        let edx = raw_cpuid::cpuid!(7, 0).edx;
        for (bit, name) in [
            (10, "md_clear"),
            (26, "ibrs_ibpb"),
            (27, "stibp"),
            (28, "l1d_flush"),
            (29, "arch_capabilities"),
            (31, "ssbd"),
        ] {
            if edx & (1 << bit) != 0 {
                f.features.push(name);
            }
        }
    }
    if f.hypervisor {
        // Touch the hypervisor leaf as kvmsec does, so both sides see the same leaves.
        black_box(cpuid.get_hypervisor_info().map(|h| h.identify()));
    }
    f
}

const SECURITY_FLAGS: [&str; 5] = ["nx", "smep", "smap", "umip", "pku"];

/// kvmsec: read and parse `/proc/cpuinfo`, then ask for the flags.
fn ours_cpuinfo_flags(root: &Path) -> [bool; 5] {
    let info = CpuInfo::read_at(root).ok();
    SECURITY_FLAGS.map(|f| info.as_ref().is_some_and(|i| i.has_x86_flag(f)))
}

/// Anchor: read the file and scan every `flags` line with `split_whitespace`.
fn anchor_cpuinfo_scan(root: &Path) -> [bool; 5] {
    let text = fs::read_to_string(root.join("proc/cpuinfo")).unwrap_or_default();
    let mut out = [true; 5];
    let mut any = false;
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        if key.trim() != "flags" {
            continue;
        }
        any = true;
        for (slot, flag) in out.iter_mut().zip(SECURITY_FLAGS) {
            *slot &= value.split_whitespace().any(|w| w == flag);
        }
    }
    if any { out } else { [false; 5] }
}

/// Anchor: list the vulnerability directory and classify each file by its first word.
fn anchor_vulnerabilities(root: &Path) -> Vec<(String, u8)> {
    let mut out = Vec::new();
    let Ok(dir) = fs::read_dir(root.join("sys/devices/system/cpu/vulnerabilities")) else {
        return out;
    };
    for entry in dir.flatten() {
        let Ok(text) = fs::read_to_string(entry.path()) else {
            continue;
        };
        let class = if text.starts_with("Not affected") {
            0
        } else if text.starts_with("Mitigation") {
            1
        } else {
            2
        };
        out.push((entry.file_name().to_string_lossy().into_owned(), class));
    }
    out.sort();
    out
}

const OOPS_LINE: &str =
    "[   71.304511] CR2: 0000000000000000 CR3: 000000010d2e6000 CR4: 00000000003706f0";

/// The architectural CR4 bits a hand-written decoder would list.
const CR4_NAMES: [(u32, &str); 25] = [
    (0, "VME"),
    (1, "PVI"),
    (2, "TSD"),
    (3, "DE"),
    (4, "PSE"),
    (5, "PAE"),
    (6, "MCE"),
    (7, "PGE"),
    (8, "PCE"),
    (9, "OSFXSR"),
    (10, "OSXMMEXCPT"),
    (11, "UMIP"),
    (12, "LA57"),
    (13, "VMXE"),
    (14, "SMXE"),
    (16, "FSGSBASE"),
    (17, "PCIDE"),
    (18, "OSXSAVE"),
    (19, "KL"),
    (20, "SMEP"),
    (21, "SMAP"),
    (22, "PKE"),
    (23, "CET"),
    (24, "PKS"),
    (25, "UINTR"),
];

/// kvmsec: find CR4 in the oops line, decode it and name the set bits.
fn ours_cr4(line: &str) -> String {
    RegisterDump::parse(line)
        .ok()
        .and_then(|d| d.cr4)
        .map(|c: Cr4| c.to_string())
        .unwrap_or_default()
}

/// Anchor: find `CR4:` by hand, parse the hex with `u64::from_str_radix`, walk a bit table.
fn anchor_cr4(line: &str) -> String {
    let Some(pos) = line.find("CR4:") else {
        return String::new();
    };
    let Some(word) = line[pos + 4..].split_whitespace().next() else {
        return String::new();
    };
    let Ok(value) = u64::from_str_radix(word.trim_start_matches("0x"), 16) else {
        return String::new();
    };
    let mut out = String::new();
    for (bit, name) in CR4_NAMES {
        if value & (1 << bit) != 0 {
            if !out.is_empty() {
                out.push('|');
            }
            out.push_str(name);
        }
    }
    out
}

fn configure<'a>(c: &'a mut Criterion, name: &str) -> BenchmarkGroup<'a, WallTime> {
    let mut g = c.benchmark_group(name);
    g.sample_size(30)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    g
}

fn benches(c: &mut Criterion) {
    let root = Path::new("/");

    // Same answers first, so the rows compare equal work.
    let (ours, theirs) = (ours_cpuid(), anchor_raw_cpuid());
    assert_eq!(
        ours.vendor.trim_end_matches('\0'),
        theirs.vendor.trim_end_matches('\0')
    );
    assert_eq!(ours.brand, theirs.brand);
    let mut a = ours.features.clone();
    let mut b = theirs.features.clone();
    a.sort_unstable();
    b.sort_unstable();
    assert_eq!(a, b, "kvmsec and raw-cpuid disagree on the feature set");
    assert_eq!(ours_cpuinfo_flags(root), anchor_cpuinfo_scan(root));
    assert_eq!(ours_cr4(OOPS_LINE), anchor_cr4(OOPS_LINE));

    let mut g = configure(c, "cpu/cpuid-security-features");
    g.bench_function("kvmsec", |b| b.iter(|| black_box(ours_cpuid())));
    g.bench_function("raw-cpuid", |b| b.iter(|| black_box(anchor_raw_cpuid())));
    g.finish();

    let mut g = configure(c, "cpu/proc-cpuinfo-flags");
    g.bench_function("kvmsec", |b| {
        b.iter(|| black_box(ours_cpuinfo_flags(black_box(root))))
    });
    g.bench_function("plain-line-scan", |b| {
        b.iter(|| black_box(anchor_cpuinfo_scan(black_box(root))))
    });
    g.finish();

    let mut g = configure(c, "cpu/full-detection");
    g.bench_function("kvmsec", |b| {
        b.iter(|| {
            black_box((
                ours_cpuid(),
                ours_cpuinfo_flags(root),
                read_vulnerabilities_at(root).map(|v| v.len()),
            ))
        })
    });
    g.bench_function("raw-cpuid+plain-scan", |b| {
        b.iter(|| {
            black_box((
                anchor_raw_cpuid(),
                anchor_cpuinfo_scan(root),
                anchor_vulnerabilities(root).len(),
            ))
        })
    });
    g.finish();

    let mut g = configure(c, "cpu/cr4-decode");
    g.bench_function("kvmsec", |b| {
        b.iter(|| black_box(ours_cr4(black_box(OOPS_LINE))))
    });
    g.bench_function("plain-bit-table", |b| {
        b.iter(|| black_box(anchor_cr4(black_box(OOPS_LINE))))
    });
    g.finish();
}

criterion_group!(cpu, benches);
criterion_main!(cpu);

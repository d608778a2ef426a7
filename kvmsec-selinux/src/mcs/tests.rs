use super::*;
use crate::testutil::FakeHost;
use std::time::{Duration, Instant};

fn level(s: &str) -> Level {
    s.parse().unwrap()
}

#[test]
fn allocates_distinct_ordered_pairs_in_range() {
    let mut mcs = McsAllocator::with_range(0, 10, 19).unwrap();
    assert_eq!(mcs.total_pairs(), 45);
    let mut seen = HashSet::new();
    for _ in 0..45 {
        let l = mcs.allocate().unwrap();
        let cats: Vec<u16> = l.categories.iter().collect();
        assert_eq!(cats.len(), 2);
        assert!(cats[0] < cats[1]);
        assert!(cats.iter().all(|c| (10..=19).contains(c)));
        assert_eq!(l.sensitivity, 0);
        assert!(seen.insert(l), "{l} handed out twice");
    }
    assert_eq!(mcs.available_pairs(), 0);
    assert!(matches!(
        mcs.allocate(),
        Err(Error::McsExhausted { total: 45, .. })
    ));
}

#[test]
fn default_range_is_c0_c1023() {
    let mcs = McsAllocator::new();
    assert_eq!(mcs.range_text(), "s0:c0.c1023");
    assert_eq!(mcs.total_pairs(), 523_776);
}

/// Never a reserved pair, even when only one is left and the random source keeps
/// pointing at reserved ones.
#[test]
fn never_returns_a_reserved_pair_when_few_are_left() {
    let mut mcs = McsAllocator::with_range(0, 0, 4).unwrap(); // 10 pairs
    let mut all = Vec::new();
    for a in 0..5u16 {
        for b in a + 1..5 {
            all.push(level(&format!("s0:c{a},c{b}")));
        }
    }
    let free = level("s0:c2,c4");
    for l in &all {
        if *l != free {
            mcs.reserve(*l).unwrap();
        }
    }
    assert_eq!(mcs.available_pairs(), 1);
    // A source that always yields 0 would draw c0,c0 forever: the exact pick still works.
    let mut zeros = || 0u64;
    assert_eq!(mcs.allocate_with(&mut zeros).unwrap(), free);
    assert!(mcs.is_reserved(&free));

    // Releasing one makes exactly that one available again, for any random source.
    for seed in 0..20u64 {
        let victim = all[(seed % 10) as usize];
        assert!(mcs.release(&victim));
        let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let mut rng = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        assert_eq!(mcs.allocate_with(&mut rng).unwrap(), victim);
    }
}

/// Issue 9, case 20: asking for more pairs than a tiny range holds ends in an exhaustion
/// error at once, never a loop.
#[test]
fn case20_exhaustion_is_an_error_at_once() {
    let mut mcs = McsAllocator::with_range(0, 0, 1).unwrap(); // exactly one pair: c0,c1
    assert_eq!(mcs.allocate().unwrap(), level("s0:c0,c1"));
    let start = Instant::now();
    for _ in 0..1000 {
        match mcs.allocate() {
            Err(Error::McsExhausted { range, total }) => {
                assert_eq!(range, "s0:c0.c1");
                assert_eq!(total, 1);
            }
            other => panic!("{other:?}"),
        }
    }
    assert!(start.elapsed() < Duration::from_secs(1));

    let mut mcs = McsAllocator::with_range(3, 100, 103).unwrap(); // 6 pairs
    let got: Vec<_> = (0..10).map(|_| mcs.allocate()).collect();
    assert_eq!(got.iter().filter(|r| r.is_ok()).count(), 6);
    assert!(
        got[6..]
            .iter()
            .all(|r| matches!(r, Err(Error::McsExhausted { .. })))
    );
}

#[test]
fn bad_ranges() {
    assert!(matches!(
        McsAllocator::with_range(0, 5, 5),
        Err(Error::McsRangeTooSmall { .. })
    ));
    assert!(matches!(
        McsAllocator::with_range(0, 9, 2),
        Err(Error::McsRangeTooSmall { .. })
    ));
    assert!(matches!(
        McsAllocator::with_range(0, 0, 1024),
        Err(Error::CategoryOutOfRange { category: 1024 })
    ));
}

#[test]
fn reserve_and_release() {
    let mut mcs = McsAllocator::with_range(0, 0, 9).unwrap();
    let l = level("s0:c1,c2");
    mcs.reserve(l).unwrap();
    assert_eq!(mcs.available_pairs(), 44);
    assert!(matches!(
        mcs.reserve(l),
        Err(Error::McsAlreadyReserved { level }) if level == "s0:c1,c2"
    ));
    // Levels outside the pool are remembered but do not use up pairs.
    mcs.reserve(level("s0:c500,c501")).unwrap();
    mcs.reserve(level("s1:c1,c2")).unwrap();
    mcs.reserve(level("s0:c3")).unwrap();
    assert_eq!(mcs.available_pairs(), 44);
    assert_eq!(mcs.reserved().count(), 4);
    assert!(mcs.release(&l));
    assert!(!mcs.release(&l));
    assert_eq!(mcs.available_pairs(), 45);
}

#[test]
fn seeds_from_running_qemu_processes() {
    let h = FakeHost::new();
    // qemu by comm.
    h.write("proc/100/comm", "qemu-kvm\n");
    h.write(
        "proc/100/attr/current",
        "system_u:system_r:svirt_t:s0:c14,c721\0",
    );
    // qemu by argv[0]; comm truncated to something else.
    h.write("proc/101/comm", "CPU 0/KVM\n");
    h.write(
        "proc/101/cmdline",
        "/usr/bin/qemu-system-x86_64\0-name\0vm2\0",
    );
    h.write(
        "proc/101/attr/current",
        "system_u:system_r:svirt_t:s0:c1,c2\0",
    );
    // Same guest label again (a helper process): a duplicate, not an error.
    h.write("proc/102/comm", "qemu-system-x86\n");
    h.write(
        "proc/102/attr/current",
        "system_u:system_r:svirt_t:s0:c1,c2\0",
    );
    // Not a guest.
    h.write("proc/200/comm", "bash\n");
    h.write("proc/200/cmdline", "bash\0");
    h.write(
        "proc/200/attr/current",
        "unconfined_u:unconfined_r:unconfined_t:s0:c5,c6\0",
    );
    // A guest without categories, one without attr (gone / no LSM), one unparsable.
    h.write("proc/300/comm", "qemu-kvm\n");
    h.write(
        "proc/300/attr/current",
        "system_u:system_r:svirt_tcg_t:s0\0",
    );
    h.write("proc/301/comm", "qemu-kvm\n");
    h.write("proc/302/comm", "qemu-kvm\n");
    h.write("proc/302/attr/current", "garbage\0");
    // Non-pid entries are ignored.
    h.write("proc/self/comm", "qemu-kvm\n");
    h.write("proc/sys/x", "");

    let mut mcs = McsAllocator::new();
    let report = mcs.seed_from_processes_at(h.root()).unwrap();
    assert_eq!(
        report.reserved,
        vec![(100, level("s0:c14,c721")), (101, level("s0:c1,c2"))]
    );
    assert_eq!(report.duplicates, vec![(102, level("s0:c1,c2"))]);
    let skipped: Vec<u32> = report.skipped.iter().map(|(p, _)| *p).collect();
    assert_eq!(skipped, vec![300, 301, 302]);
    assert!(mcs.is_reserved(&level("s0:c14,c721")));
    assert!(!mcs.is_reserved(&level("s0:c5,c6")));
    assert_eq!(mcs.available_pairs(), mcs.total_pairs() - 2);
}

#[test]
fn seeding_without_proc_is_an_io_error() {
    let h = FakeHost::new();
    assert!(matches!(
        McsAllocator::new().seed_from_processes_at(h.root()),
        Err(Error::Io { .. })
    ));
}

/// The live host has no LSM here: seeding works and skips nothing it cannot read.
#[test]
fn seeding_the_live_host_does_not_fail() {
    let mut mcs = McsAllocator::new();
    mcs.seed_from_processes().unwrap();
}

#[test]
fn allocator_from_a_managers_range() {
    let r: MlsRange = "s0-s0:c0.c1023".parse().unwrap();
    assert_eq!(
        McsAllocator::for_range(&r).unwrap().range_text(),
        "s0:c0.c1023"
    );
    let r: MlsRange = "s2-s3:c100.c199".parse().unwrap();
    assert_eq!(
        McsAllocator::for_range(&r).unwrap().range_text(),
        "s2:c100.c199"
    );
    let r: MlsRange = "s0".parse().unwrap();
    assert_eq!(
        McsAllocator::for_range(&r).unwrap().range_text(),
        "s0:c0.c1023"
    );
    let r: MlsRange = "s0-s0:c1,c5".parse().unwrap();
    assert!(matches!(
        McsAllocator::for_range(&r),
        Err(Error::McsRangeTooSmall { .. })
    ));
    let r: MlsRange = "s0-s0:c7".parse().unwrap();
    assert!(matches!(
        McsAllocator::for_range(&r),
        Err(Error::McsRangeTooSmall { .. })
    ));
}

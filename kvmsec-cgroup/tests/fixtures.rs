//! Fixture hosts: temporary directories shaped like the `/proc` files and cgroupfs of a pure
//! v1, a pure v2 and a hybrid host, with exact expected results. Control files are plain
//! files here, so every write can be checked byte for byte.

use std::fs;
use std::path::Path;
use std::time::Duration;

use kvmsec_cgroup::report::{Check, Status, host_checks_at};
use kvmsec_cgroup::subsys::SubsystemListing;
use kvmsec_cgroup::{
    BfqWeight, BlkioWeight, BlockDevice, CgroupVersion, Cgroups, Controller, CpuMax, CpuShares,
    CpuWeight, DeviceNumber, Error, FreezerState, Group, GroupPath, GroupSet, IoLimits, IoWeight,
    Layout, RangeList, membership,
};

fn tree(root: &Path, files: &[(&str, &str)]) {
    for (p, content) in files {
        let path = root.join(p);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, content).unwrap();
    }
}

fn read(root: &Path, p: &str) -> String {
    fs::read_to_string(root.join(p)).unwrap()
}

fn summary(checks: &[Check]) -> Vec<(String, Status, String)> {
    checks
        .iter()
        .map(|c| (c.id.clone(), c.status, c.reason.clone()))
        .collect()
}

fn c(id: &str, st: Status, reason: &str) -> (String, Status, String) {
    (id.to_string(), st, reason.to_string())
}

const V1_MOUNTINFO: &str = "\
25 18 0:22 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:8 - tmpfs tmpfs ro,mode=755
26 25 0:23 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:9 - cgroup cgroup rw,xattr,release_agent=/usr/lib/systemd/systemd-cgroups-agent,name=systemd
28 25 0:25 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:10 - cgroup cgroup rw,cpuacct,cpu
29 25 0:26 / /sys/fs/cgroup/blkio rw,nosuid,nodev,noexec,relatime shared:11 - cgroup cgroup rw,blkio
30 25 0:27 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:12 - cgroup cgroup rw,memory
31 25 0:28 / /sys/fs/cgroup/cpuset rw,nosuid,nodev,noexec,relatime shared:13 - cgroup cgroup rw,cpuset,clone_children
32 25 0:29 / /sys/fs/cgroup/freezer rw,nosuid,nodev,noexec,relatime shared:14 - cgroup cgroup rw,freezer
33 25 0:30 / /sys/fs/cgroup/devices rw,nosuid,nodev,noexec,relatime shared:15 - cgroup cgroup rw,devices
34 25 0:31 / /sys/fs/cgroup/net_cls,net_prio rw,nosuid,nodev,noexec,relatime shared:16 - cgroup cgroup rw,net_prio,net_cls
";

const V1_PROC_CGROUPS: &str = "#subsys_name\thierarchy\tnum_cgroups\tenabled
cpuset\t6\t1\t1
cpu\t3\t60\t1
cpuacct\t3\t60\t1
blkio\t4\t60\t1
memory\t5\t90\t1
devices\t8\t60\t1
freezer\t7\t1\t1
net_cls\t9\t1\t1
perf_event\t0\t1\t1
net_prio\t9\t1\t1
pids\t0\t1\t1
";

fn v1_group_files(dir: &str) -> Vec<(String, String)> {
    let mut v = Vec::new();
    for (f, c) in [
        ("cpu,cpuacct/{}/cpu.shares", "1024\n"),
        ("cpu,cpuacct/{}/cpu.cfs_quota_us", "-1\n"),
        ("cpu,cpuacct/{}/cpu.cfs_period_us", "100000\n"),
        ("cpu,cpuacct/{}/cpuacct.usage", "5000000000\n"),
        ("cpu,cpuacct/{}/cpuacct.usage_user", "4000000000\n"),
        ("cpu,cpuacct/{}/cpuacct.usage_sys", "1000000000\n"),
        ("cpu,cpuacct/{}/tasks", ""),
        ("cpu,cpuacct/{}/cgroup.procs", ""),
        ("blkio/{}/blkio.weight", "500\n"),
        ("blkio/{}/blkio.weight_device", ""),
        ("blkio/{}/blkio.throttle.read_bps_device", ""),
        ("blkio/{}/blkio.throttle.write_bps_device", ""),
        ("blkio/{}/blkio.throttle.read_iops_device", ""),
        ("blkio/{}/blkio.throttle.write_iops_device", ""),
        (
            "blkio/{}/blkio.throttle.io_service_bytes",
            "8:16 Read 4096\n8:16 Write 8192\n8:16 Total 12288\nTotal 12288\n",
        ),
        (
            "blkio/{}/blkio.throttle.io_serviced",
            "8:16 Read 1\n8:16 Write 2\n8:16 Total 3\nTotal 3\n",
        ),
        ("blkio/{}/tasks", ""),
        ("blkio/{}/cgroup.procs", ""),
        ("memory/{}/memory.limit_in_bytes", "9223372036854771712\n"),
        ("memory/{}/memory.usage_in_bytes", "1048576\n"),
        ("memory/{}/memory.max_usage_in_bytes", "2097152\n"),
        (
            "memory/{}/memory.stat",
            "cache 0\nrss 1048576\ntotal_rss 1048576\n",
        ),
        ("memory/{}/memory.cgroup.procs", ""),
        ("memory/{}/cgroup.procs", ""),
        ("memory/{}/tasks", ""),
    ] {
        v.push((
            format!("sys/fs/cgroup/{}", f.replace("{}", dir)),
            c.to_string(),
        ));
    }
    v
}

/// A pure v1 host (cpu,cpuacct co-mounted, blkio with CFQ weights): discovery, report,
/// blkio weights 1000/100, per-device weights, throttling, cpu, accounting.
#[test]
fn fixture_pure_v1_host() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    tree(
        root,
        &[
            ("proc/self/mountinfo", V1_MOUNTINFO),
            ("proc/cgroups", V1_PROC_CGROUPS),
            (
                "proc/self/cgroup",
                "10:net_cls,net_prio:/\n9:devices:/user.slice\n3:cpu,cpuacct:/user.slice\n1:name=systemd:/user.slice/session-1.scope\n",
            ),
            ("sys/fs/cgroup/blkio/blkio.weight", "500\n"),
            ("sys/fs/cgroup/cpuset/cpuset.cpus", "0-7\n"),
            ("sys/fs/cgroup/cpuset/cpuset.mems", "0\n"),
        ],
    );
    for name in ["high_prio", "low_prio"] {
        for (p, c) in v1_group_files(name) {
            tree(root, &[(&p, &c)]);
        }
    }

    let host = Cgroups::discover_at(root).unwrap();
    assert_eq!(host.layout(), Layout::V1);
    assert!(host.v2().is_none());
    assert_eq!(host.hierarchies().len(), 8);
    let cpu = host.hierarchy_for(&Controller::Cpu).unwrap();
    assert_eq!(cpu.mount_point, Path::new("/sys/fs/cgroup/cpu,cpuacct"));
    assert_eq!(host.hierarchy_for(&Controller::Cpuacct), Some(cpu));
    assert_eq!(
        host.hierarchy_for(&Controller::Cpuset).unwrap().flags,
        ["clone_children"]
    );
    assert_eq!(host.named("systemd").unwrap().flags.len(), 2);
    assert!(host.hierarchy_for(&Controller::Pids).is_none());

    assert_eq!(
        summary(&host_checks_at(root)),
        vec![
            c(
                "cgroup.layout",
                Status::Info,
                "v1: legacy hierarchies only, no cgroup2 mount"
            ),
            c(
                "cgroup.cpu",
                Status::Pass,
                "v1 at /sys/fs/cgroup/cpu,cpuacct"
            ),
            c("cgroup.cpuset", Status::Pass, "v1 at /sys/fs/cgroup/cpuset"),
            c("cgroup.memory", Status::Pass, "v1 at /sys/fs/cgroup/memory"),
            c("cgroup.io", Status::Pass, "v1 at /sys/fs/cgroup/blkio"),
            c(
                "cgroup.pids",
                Status::Warn,
                "missing: compiled in but not mounted"
            ),
            c(
                "cgroup.freezer",
                Status::Pass,
                "v1 at /sys/fs/cgroup/freezer"
            ),
            c(
                "cgroup.devices",
                Status::Pass,
                "v1 at /sys/fs/cgroup/devices"
            ),
            c(
                "cgroup.self",
                Status::Info,
                "devices:/user.slice; cpu,cpuacct:/user.slice; name=systemd:/user.slice/session-1.scope (others /)"
            ),
        ]
    );

    let listing = SubsystemListing::read_at(root).unwrap();
    assert_eq!(
        listing.to_string(),
        "cpuset /sys/fs/cgroup/cpuset\ncpu,cpuacct /sys/fs/cgroup/cpu,cpuacct\n\
         blkio /sys/fs/cgroup/blkio\nmemory /sys/fs/cgroup/memory\n\
         devices /sys/fs/cgroup/devices\nfreezer /sys/fs/cgroup/freezer\n\
         net_cls,net_prio /sys/fs/cgroup/net_cls,net_prio\nperf_event\npids\n"
    );

    let placed = membership::groups_of_process_at(root, None).unwrap();
    let dirs: Vec<String> = placed
        .iter()
        .map(|p| {
            p.group
                .as_ref()
                .unwrap()
                .dir()
                .strip_prefix(root)
                .unwrap()
                .display()
                .to_string()
        })
        .collect();
    assert_eq!(
        dirs,
        [
            "sys/fs/cgroup/net_cls,net_prio",
            "sys/fs/cgroup/devices/user.slice",
            "sys/fs/cgroup/cpu,cpuacct/user.slice",
            "sys/fs/cgroup/systemd/user.slice/session-1.scope"
        ]
    );

    // The classic recipe: blkio weights 1000 and 100, the guests' pids in `tasks`.
    let ctrls = [Controller::Cpu, Controller::Io, Controller::Memory];
    let high = GroupSet::open(&host, &GroupPath::new("high_prio").unwrap(), &ctrls).unwrap();
    let low = GroupSet::open(&host, &GroupPath::new("low_prio").unwrap(), &ctrls).unwrap();
    let hb = high.group(&Controller::Io).unwrap();
    let lb = low.group(&Controller::Io).unwrap();
    assert!(hb.io_weight_support().blkio_weight);
    hb.set_blkio_weight(BlkioWeight::new(1000).unwrap())
        .unwrap();
    lb.set_blkio_weight(BlkioWeight::new(100).unwrap()).unwrap();
    assert_eq!(
        read(root, "sys/fs/cgroup/blkio/high_prio/blkio.weight"),
        "1000"
    );
    assert_eq!(
        read(root, "sys/fs/cgroup/blkio/low_prio/blkio.weight"),
        "100"
    );
    assert_eq!(hb.blkio_weight().unwrap().get(), 1000);
    assert_eq!(lb.blkio_weight().unwrap().get(), 100);
    // io.weight view of the same (systemd mapping 500 <-> 100).
    assert_eq!(hb.io_weight().unwrap().get(), 200);
    lb.set_io_weight(IoWeight::new(20).unwrap()).unwrap();
    assert_eq!(
        read(root, "sys/fs/cgroup/blkio/low_prio/blkio.weight"),
        "100"
    );
    assert!(BlkioWeight::new(5).is_err());

    let sdb = BlockDevice::Number(DeviceNumber::new(8, 16));
    hb.set_blkio_device_weight(&sdb, BlkioWeight::new(800).unwrap())
        .unwrap();
    assert_eq!(
        read(root, "sys/fs/cgroup/blkio/high_prio/blkio.weight_device"),
        "8:16 800"
    );
    let w = hb.io_device_weights().unwrap();
    assert_eq!(w.default, Some(1000));
    assert_eq!(w.devices[&DeviceNumber::new(8, 16)], 800);

    hb.set_io_limits(
        &sdb,
        IoLimits {
            rbps: Some(20_000_000),
            wbps: Some(20_000_000),
            riops: None,
            wiops: Some(500),
        },
    )
    .unwrap();
    assert_eq!(
        read(
            root,
            "sys/fs/cgroup/blkio/high_prio/blkio.throttle.read_bps_device"
        ),
        "8:16 20000000"
    );
    assert_eq!(
        read(
            root,
            "sys/fs/cgroup/blkio/high_prio/blkio.throttle.read_iops_device"
        ),
        "8:16 0"
    );
    assert_eq!(
        read(
            root,
            "sys/fs/cgroup/blkio/high_prio/blkio.throttle.write_iops_device"
        ),
        "8:16 500"
    );

    // cpu: weight 1000 is written as shares 10240 (the kernel's own mapping).
    let hc = high.group(&Controller::Cpu).unwrap();
    hc.set_cpu_weight(CpuWeight::new(1000).unwrap()).unwrap();
    assert_eq!(
        read(root, "sys/fs/cgroup/cpu,cpuacct/high_prio/cpu.shares"),
        "10240"
    );
    hc.set_cpu_max(CpuMax::cpus(1.5).unwrap()).unwrap();
    assert_eq!(
        read(root, "sys/fs/cgroup/cpu,cpuacct/high_prio/cpu.cfs_quota_us"),
        "150000"
    );
    assert_eq!(
        read(
            root,
            "sys/fs/cgroup/cpu,cpuacct/high_prio/cpu.cfs_period_us"
        ),
        "100000"
    );

    // Moving a guest: the pid lands in cgroup.procs, a thread in tasks.
    high.move_process(4242).unwrap();
    hc.move_thread(4243).unwrap();
    assert_eq!(
        read(root, "sys/fs/cgroup/blkio/high_prio/cgroup.procs"),
        "4242"
    );
    assert_eq!(
        read(root, "sys/fs/cgroup/cpu,cpuacct/high_prio/tasks"),
        "4243"
    );
    assert_eq!(hc.threads().unwrap(), [4243]);

    // Accounting.
    let u = high.usage().unwrap();
    assert_eq!(u.cpu.unwrap().total_ns, 5_000_000_000);
    assert_eq!(u.cpu.unwrap().user_ns, Some(4_000_000_000));
    assert_eq!(u.memory_current, Some(1_048_576));
    assert_eq!(u.memory_peak, Some(2_097_152));
    let io = &u.io.unwrap().devices[&DeviceNumber::new(8, 16)];
    assert_eq!((io.rbytes, io.wbytes, io.rios, io.wios), (4096, 8192, 1, 2));
    let hm = high.group(&Controller::Memory).unwrap();
    assert_eq!(hm.memory_max().unwrap(), None);
    hm.set_memory_max(Some(1 << 30)).unwrap();
    assert_eq!(hm.memory_max().unwrap(), Some(1 << 30));
    hm.set_memory_max(None).unwrap();
    assert_eq!(
        read(root, "sys/fs/cgroup/memory/high_prio/memory.limit_in_bytes"),
        "-1"
    );
    assert_eq!(hm.memory_stat().unwrap()["total_rss"], 1_048_576);
}

const V2_ROOT: &str = "sys/fs/cgroup";

/// A pure v2 host (systemd-style): discovery, report, top-down controller enabling,
/// cpu.weight/cpu.max, io.weight vs io.bfq.weight, io.max, memory, freezer, devices.
#[test]
fn fixture_pure_v2_host() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let g = |f: &str| format!("{V2_ROOT}/machine/vm1/{f}");
    let files: Vec<(String, String)> = vec![
        (
            "proc/self/mountinfo".into(),
            "24 1 0:21 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot\n".into(),
        ),
        (
            "proc/cgroups".into(),
            "#subsys_name\thierarchy\tnum_cgroups\tenabled\ncpuset\t0\t80\t1\ncpu\t0\t80\t1\ncpuacct\t0\t80\t1\nblkio\t0\t80\t1\nmemory\t0\t80\t1\ndevices\t0\t80\t1\nfreezer\t0\t80\t1\npids\t0\t80\t1\n".into(),
        ),
        ("proc/self/cgroup".into(), "0::/user.slice/user-0.slice/session-1.scope\n".into()),
        (format!("{V2_ROOT}/cgroup.controllers"), "cpuset cpu io memory hugetlb pids rdma misc\n".into()),
        (format!("{V2_ROOT}/cgroup.subtree_control"), "cpu io memory pids\n".into()),
        (format!("{V2_ROOT}/io.cost.qos"), "".into()),
        (format!("{V2_ROOT}/machine/cgroup.subtree_control"), "".into()),
        (g("cgroup.procs"), "".into()),
        (g("cgroup.threads"), "".into()),
        (g("cgroup.type"), "domain\n".into()),
        (g("cgroup.subtree_control"), "".into()),
        (g("cgroup.freeze"), "0\n".into()),
        (g("cgroup.events"), "populated 1\nfrozen 0\n".into()),
        (g("cgroup.kill"), "".into()),
        (g("cpu.weight"), "100\n".into()),
        (g("cpu.max"), "max 100000\n".into()),
        (g("cpu.stat"), "usage_usec 2500\nuser_usec 2000\nsystem_usec 500\nnr_periods 0\n".into()),
        (g("cpuset.cpus"), "\n".into()),
        (g("cpuset.mems"), "\n".into()),
        (g("io.weight"), "default 100\n".into()),
        (g("io.bfq.weight"), "default 100\n".into()),
        (g("io.max"), "".into()),
        (g("io.stat"), "8:16 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\n252:0 \n".into()),
        (g("memory.max"), "max\n".into()),
        (g("memory.high"), "max\n".into()),
        (g("memory.low"), "0\n".into()),
        (g("memory.swap.max"), "max\n".into()),
        (g("memory.current"), "1234\n".into()),
        (g("memory.peak"), "5678\n".into()),
        (g("memory.stat"), "anon 1000\nfile 234\n".into()),
        (g("memory.events"), "low 0\nhigh 2\nmax 1\noom 0\noom_kill 0\noom_group_kill 0\n".into()),
        (g("pids.max"), "max\n".into()),
        (g("pids.current"), "3\n".into()),
    ];
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    tree(root, &refs);

    let host = Cgroups::discover_at(root).unwrap();
    assert_eq!(host.layout(), Layout::V2);
    let v2 = host.v2().unwrap();
    assert_eq!(v2.flags, ["nsdelegate", "memory_recursiveprot"]);
    assert!(v2.has(&Controller::Io) && !v2.has(&Controller::Freezer));
    assert_eq!(
        summary(&host_checks_at(root)),
        vec![
            c(
                "cgroup.layout",
                Status::Info,
                "v2: unified hierarchy at /sys/fs/cgroup"
            ),
            c("cgroup.cpu", Status::Pass, "v2 at /sys/fs/cgroup"),
            c("cgroup.cpuset", Status::Pass, "v2 at /sys/fs/cgroup"),
            c("cgroup.memory", Status::Pass, "v2 at /sys/fs/cgroup"),
            c("cgroup.io", Status::Pass, "v2 at /sys/fs/cgroup"),
            c("cgroup.pids", Status::Pass, "v2 at /sys/fs/cgroup"),
            c(
                "cgroup.freezer",
                Status::Pass,
                "v2 core (cgroup.freeze) at /sys/fs/cgroup"
            ),
            c(
                "cgroup.devices",
                Status::Pass,
                "v2: device access via eBPF (BPF_PROG_TYPE_CGROUP_DEVICE), no devices.* files"
            ),
            c(
                "cgroup.self",
                Status::Info,
                "v2:/user.slice/user-0.slice/session-1.scope (others /)"
            ),
        ]
    );

    // Top-down enabling: the root already enables cpu and io, so only `+cpuset` is written
    // there; `machine` gets all three; freezer is core in v2 and needs nothing.
    let path = GroupPath::new("machine/vm1").unwrap();
    let set = GroupSet::create(
        &host,
        &path,
        &[
            Controller::Cpu,
            Controller::Io,
            Controller::Freezer,
            Controller::Cpuset,
        ],
    )
    .unwrap();
    assert_eq!(
        read(root, &format!("{V2_ROOT}/cgroup.subtree_control")),
        "+cpuset"
    );
    assert_eq!(
        read(root, &format!("{V2_ROOT}/machine/cgroup.subtree_control")),
        "+cpu +io +cpuset"
    );
    assert_eq!(set.groups().count(), 1);
    let vm = set.group(&Controller::Cpu).unwrap();
    assert_eq!(vm.version(), CgroupVersion::V2);
    assert_eq!(set.group(&Controller::Freezer), Some(vm));

    vm.set_cpu_weight(CpuWeight::new(1000).unwrap()).unwrap();
    assert_eq!(read(root, &g("cpu.weight")), "1000");
    vm.set_cpu_shares(CpuShares::new(2048).unwrap()).unwrap();
    assert_eq!(read(root, &g("cpu.weight")), "200");
    vm.set_cpu_max(CpuMax {
        quota_us: Some(50_000),
        period_us: 100_000,
    })
    .unwrap();
    assert_eq!(read(root, &g("cpu.max")), "50000 100000");
    assert_eq!(vm.cpu_max().unwrap().quota_us, Some(50_000));
    vm.set_cpuset_cpus(&"0-1,3".parse::<RangeList>().unwrap())
        .unwrap();
    assert_eq!(read(root, &g("cpuset.cpus")), "0-1,3");

    // io.weight (iocost, 1..10000) and io.bfq.weight (BFQ, 1..1000) are distinct files.
    let s = vm.io_weight_support();
    assert!(s.io_weight && s.bfq_weight && !s.blkio_weight);
    vm.set_io_weight(IoWeight::new(10_000).unwrap()).unwrap();
    assert_eq!(read(root, &g("io.weight")), "default 10000");
    vm.set_bfq_weight(BfqWeight::new(1000).unwrap()).unwrap();
    assert_eq!(read(root, &g("io.bfq.weight")), "1000");
    vm.set_blkio_weight(BlkioWeight::new(1000).unwrap())
        .unwrap();
    assert_eq!(read(root, &g("io.weight")), "default 200");
    vm.set_io_device_weight(
        &BlockDevice::Number(DeviceNumber::new(8, 16)),
        IoWeight::new(50).unwrap(),
    )
    .unwrap();
    assert_eq!(read(root, &g("io.weight")), "8:16 50");
    vm.set_io_limits(
        &BlockDevice::Number(DeviceNumber::new(8, 16)),
        IoLimits {
            wbps: Some(20_000_000),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(
        read(root, &g("io.max")),
        "8:16 rbps=max wbps=20000000 riops=max wiops=max"
    );
    assert_eq!(vm.io_limits().unwrap()[0].limits.wbps, Some(20_000_000));
    let st = vm.io_stat().unwrap();
    assert_eq!(st.devices[&DeviceNumber::new(8, 16)].wbytes, 8192);
    assert_eq!(st.bad_rows.len(), 1);

    // Memory: v2 names, `max` is None, v1-only settings are a typed refusal.
    assert_eq!(vm.memory_max().unwrap(), None);
    vm.set_memory_max(Some(1 << 30)).unwrap();
    assert_eq!(read(root, &g("memory.max")), "1073741824");
    vm.set_memory_high(None).unwrap();
    assert_eq!(read(root, &g("memory.high")), "max");
    vm.set_memory_low(1 << 20).unwrap();
    vm.set_swap_max(Some(0)).unwrap();
    assert_eq!(read(root, &g("memory.swap.max")), "0");
    assert!(matches!(
        vm.set_memory_soft_limit(Some(1)),
        Err(Error::Unsupported { version: "v2", .. })
    ));
    let ev = vm.memory_events().unwrap();
    assert_eq!((ev.high, ev.max, ev.oom_kill), (Some(2), 1, 0));
    assert_eq!(vm.memory_stat().unwrap()["anon"], 1000);
    let u = set.usage().unwrap();
    assert_eq!(u.cpu.unwrap().total_ns, 2_500_000);
    assert_eq!(u.memory_current, Some(1234));
    assert_eq!(u.memory_peak, Some(5678));

    assert_eq!(vm.pids_max().unwrap(), None);
    vm.set_pids_max(Some(100)).unwrap();
    assert_eq!(read(root, &g("pids.max")), "100");
    assert!(vm.set_pids_max(Some(u64::MAX)).is_err());

    // Devices need eBPF on v2: a typed answer.
    assert!(matches!(
        vm.device_rules(),
        Err(Error::DevicesNeedEbpf { .. })
    ));

    // Freezer: waits for `frozen 1` and times out when it never comes.
    match vm.freeze(Duration::from_millis(50)) {
        Err(Error::FreezeTimeout { .. }) => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(read(root, &g("cgroup.freeze")), "1");
    assert_eq!(vm.freezer_state().unwrap(), FreezerState::Freezing);
    fs::write(root.join(g("cgroup.events")), "populated 1\nfrozen 1\n").unwrap();
    vm.freeze(Duration::from_millis(50)).unwrap();
    assert_eq!(vm.freezer_state().unwrap(), FreezerState::Frozen);
    vm.thaw().unwrap();
    assert_eq!(vm.freezer_state().unwrap(), FreezerState::Thawed);
    vm.kill().unwrap();
    assert_eq!(read(root, &g("cgroup.kill")), "1");

    // Threaded groups for vCPU threads.
    assert_eq!(vm.group_type().unwrap(), "domain");
    vm.make_threaded().unwrap();
    assert_eq!(vm.group_type().unwrap(), "threaded");

    // A v2 thread move writes cgroup.threads.
    vm.move_thread(77).unwrap();
    assert_eq!(read(root, &g("cgroup.threads")), "77");
    assert!(Group::root(v2).freeze(Duration::ZERO).is_err());
}

/// A hybrid host exactly like this machine: each v1 controller separately, name=systemd,
/// cgroup2 at /sys/fs/cgroup/unified with hugetlb only; blkio without weight files.
#[test]
fn fixture_hybrid_host() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    tree(
        root,
        &[
            (
                "proc/self/mountinfo",
                "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n\
                 32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n\
                 33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct\n\
                 34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset\n\
                 35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n\
                 36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices\n\
                 37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer\n\
                 38 31 0:35 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio\n\
                 39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids\n\
                 40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd\n\
                 41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n",
            ),
            (
                "proc/cgroups",
                "#subsys_name\thierarchy\tnum_cgroups\tenabled\ncpuset\t3\t1\t1\ncpu\t1\t1\t1\n\
                 cpuacct\t2\t1\t1\nblkio\t7\t1\t1\nmemory\t4\t20\t1\ndevices\t5\t1\t1\n\
                 freezer\t6\t1\t1\nnet_cls\t0\t1\t1\nperf_event\t0\t1\t1\nnet_prio\t0\t1\t1\n\
                 hugetlb\t0\t1\t1\npids\t8\t1\t1\n",
            ),
            (
                "proc/self/cgroup",
                "9:name=systemd:/\n8:pids:/\n7:blkio:/\n6:freezer:/\n5:devices:/\n\
                 4:memory:/process_api/f711c122\n3:cpuset:/\n2:cpuacct:/\n1:cpu:/\n0::/\n\n",
            ),
            ("sys/fs/cgroup/unified/cgroup.controllers", "hugetlb\n"),
            ("sys/fs/cgroup/blkio/blkio.throttle.read_bps_device", ""),
            ("sys/fs/cgroup/blkio/vm/blkio.throttle.read_bps_device", ""),
        ],
    );
    let host = Cgroups::discover_at(root).unwrap();
    assert_eq!(host.layout(), Layout::Hybrid);
    assert_eq!(host.hierarchies().len(), 10);
    assert_eq!(
        host.v2().unwrap().controllers.iter().collect::<Vec<_>>(),
        [&Controller::Hugetlb]
    );
    assert_ne!(
        host.hierarchy_for(&Controller::Cpu),
        host.hierarchy_for(&Controller::Cpuacct)
    );
    assert_eq!(
        summary(&host_checks_at(root)),
        vec![
            c(
                "cgroup.layout",
                Status::Info,
                "hybrid: v1 controllers + cgroup2 at /sys/fs/cgroup/unified"
            ),
            c("cgroup.cpu", Status::Pass, "v1 at /sys/fs/cgroup/cpu"),
            c("cgroup.cpuset", Status::Pass, "v1 at /sys/fs/cgroup/cpuset"),
            c("cgroup.memory", Status::Pass, "v1 at /sys/fs/cgroup/memory"),
            c(
                "cgroup.io",
                Status::Pass,
                "v1 at /sys/fs/cgroup/blkio (throttling only: no weight files)"
            ),
            c("cgroup.pids", Status::Pass, "v1 at /sys/fs/cgroup/pids"),
            c(
                "cgroup.freezer",
                Status::Pass,
                "v1 at /sys/fs/cgroup/freezer"
            ),
            c(
                "cgroup.devices",
                Status::Pass,
                "v1 at /sys/fs/cgroup/devices"
            ),
            c(
                "cgroup.self",
                Status::Info,
                "memory:/process_api/f711c122 (others /)"
            ),
        ]
    );
    let listing = SubsystemListing::read_at(root).unwrap();
    assert_eq!(
        listing.to_string(),
        "cpuset /sys/fs/cgroup/cpuset\ncpu /sys/fs/cgroup/cpu\ncpuacct /sys/fs/cgroup/cpuacct\n\
         blkio /sys/fs/cgroup/blkio\nmemory /sys/fs/cgroup/memory\n\
         devices /sys/fs/cgroup/devices\nfreezer /sys/fs/cgroup/freezer\nnet_cls\nperf_event\n\
         net_prio\nhugetlb /sys/fs/cgroup/unified\npids /sys/fs/cgroup/pids\n"
    );

    // No weight files: a typed answer before any write.
    let blkio = host.hierarchy_for(&Controller::Io).unwrap();
    let vm = Group::open(blkio, &GroupPath::new("vm").unwrap()).unwrap();
    assert!(vm.io_weight_support().none());
    match vm.set_blkio_weight(BlkioWeight::new(1000).unwrap()) {
        Err(e @ Error::IoWeightUnsupported { .. }) => {
            assert!(e.to_string().contains("use throttling instead"))
        }
        other => panic!("{other:?}"),
    }
    assert!(!root.join("sys/fs/cgroup/blkio/vm/blkio.weight").exists());

    // Controllers missing from the v2 side of a hybrid host are named as such.
    let uni = host.v2().unwrap();
    let g = Group::handle(uni, &GroupPath::new("vm").unwrap());
    match g.cpu_weight() {
        Err(Error::ControllerUnavailable { controller, detail }) => {
            assert_eq!(controller, "cpu");
            assert!(detail.contains("subtree_control"));
        }
        other => panic!("{other:?}"),
    }
}

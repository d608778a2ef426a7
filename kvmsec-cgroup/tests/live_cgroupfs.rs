//! Real cgroupfs on this machine, as root: groups, tasks, every mounted controller,
//! mounting, namespaces, the report. Each test creates uniquely named groups under the
//! hierarchy roots and removes them (and kills its children) even when it fails.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{Scratch, live_host, serial, unique_name};
use kvmsec_cgroup::report::{Status, host_checks};
use kvmsec_cgroup::{
    BlkioWeight, BlockDevice, CgroupVersion, Cgroups, Controller, CpuMax, CpuShares, CpuWeight,
    DeviceNumber, DeviceRule, Error, FreezerState, Group, GroupPath, IoLimits, Layout, RangeList,
    RemoveOptions, Usage, membership, mount, namespaces, subsys::SubsystemListing,
};

fn available(host: &Cgroups, wanted: &[Controller]) -> Vec<Controller> {
    wanted
        .iter()
        .filter(|c| host.hierarchy_for(c).is_some())
        .cloned()
        .collect()
}

#[test]
fn live_discovery_report_and_own_groups() {
    let Some(host) = live_host() else { return };
    let layout = host.layout();
    assert_ne!(layout, Layout::None);

    let mine = membership::groups_of_process_at(Path::new("/"), None).unwrap();
    assert!(!mine.is_empty());
    for p in &mine {
        if let Some(g) = &p.group {
            assert!(g.dir().is_dir(), "{}", g.dir().display());
        }
    }
    let listing = SubsystemListing::read_at(Path::new("/")).unwrap();
    if let Some(h) = host.hierarchy_for(&Controller::Cpu) {
        let e = listing.find("cpu").unwrap();
        assert_eq!(e.mount_point.as_deref(), Some(h.mount_point.as_path()));
    }

    let checks = host_checks();
    let ids: Vec<&str> = checks.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "cgroup.layout",
            "cgroup.cpu",
            "cgroup.cpuset",
            "cgroup.memory",
            "cgroup.io",
            "cgroup.pids",
            "cgroup.freezer",
            "cgroup.devices",
            "cgroup.self"
        ]
    );
    if layout == Layout::Hybrid
        && host.v2().unwrap().mount_point == Path::new("/sys/fs/cgroup/unified")
    {
        assert_eq!(checks[0].status, Status::Info);
        assert_eq!(
            checks[0].reason,
            "hybrid: v1 controllers + cgroup2 at /sys/fs/cgroup/unified"
        );
    }
    for c in &checks {
        eprintln!("{} {} {}", c.status, c.id, c.reason);
    }
}

/// Issue 9 cases 8 and 10 on the real kernel, plus moving and listing tasks.
#[test]
fn live_groups_tasks_cpuset_enospc_and_removal() {
    let Some(host) = live_host() else { return };
    let mut s = Scratch::default();
    let top = unique_name();
    let ctrls = available(
        &host,
        &[
            Controller::Cpu,
            Controller::Cpuacct,
            Controller::Cpuset,
            Controller::Memory,
            Controller::Io,
            Controller::Pids,
            Controller::Freezer,
            Controller::Devices,
        ],
    );
    let vm = s.create(&host, &top, Some("vm"), &ctrls);
    let pid = s.spawn_sleeper();
    vm.move_process(pid).unwrap();
    assert_eq!(vm.processes().unwrap(), [pid]);
    assert!(vm.threads().unwrap().contains(&pid));
    for g in vm.groups() {
        assert_eq!(g.processes().unwrap(), [pid], "{}", g.dir().display());
        assert!(g.is_populated().unwrap());
    }

    // Case 8: a v1 cpuset group made by plain mkdir is empty and refuses tasks (ENOSPC);
    // Group::create filled `vm` from its parent.
    if let Some(cs) = vm.group(&Controller::Cpuset)
        && cs.version() == CgroupVersion::V1
    {
        assert!(!cs.cpuset_cpus().unwrap().is_empty());
        assert!(!cs.cpuset_mems().unwrap().is_empty());
        let raw = cs.child("raw").unwrap();
        std::fs::create_dir(raw.dir()).unwrap();
        assert!(raw.cpuset_cpus().unwrap().is_empty());
        match raw.move_process(pid) {
            Err(Error::CpusetEmpty { pid: p, .. }) => assert_eq!(p, pid),
            other => panic!("expected CpusetEmpty, got {other:?}"),
        }
        raw.fill_cpuset_from_parent().unwrap();
        raw.move_process(pid).unwrap();
        cs.move_process(pid).unwrap();
        raw.remove(&RemoveOptions::default()).unwrap();
    }

    // Thread moves: the sleeper's only thread.
    let g0 = vm.groups().next().unwrap().clone();
    if g0.version() == CgroupVersion::V1 {
        g0.move_thread(pid).unwrap();
        assert_eq!(g0.threads().unwrap(), [pid]);
    }

    // Removal refuses a populated group and a group with children, clearly.
    let child = g0.child("inner").unwrap();
    Group::create(g0.hierarchy(), child.path()).unwrap();
    match g0.remove(&RemoveOptions::default()) {
        Err(Error::GroupHasChildren { children, .. }) => assert_eq!(children, ["inner"]),
        other => panic!("{other:?}"),
    }
    child.move_process(pid).unwrap();
    assert!(matches!(
        child.remove(&RemoveOptions::default()),
        Err(Error::GroupPopulated { count: 1, .. })
    ));
    // Moving the processes to the parent first (the parent is our own group).
    child
        .remove(&RemoveOptions {
            move_processes_to_parent: true,
            ..Default::default()
        })
        .unwrap();
    assert!(!child.dir().exists());
    assert_eq!(g0.processes().unwrap(), [pid]);

    // Case 10: right after the last process leaves, removal retries EBUSY within a bound;
    // a tree is removed leaf first.
    let deep = GroupPath::new(&format!("{top}/vm/a/b")).unwrap();
    for g in vm.groups() {
        Group::create(g.hierarchy(), &deep).unwrap();
    }
    s.kill_children();
    let opts = RemoveOptions {
        recursive: true,
        move_processes_to_parent: false,
        busy_timeout: Duration::from_secs(5),
    };
    vm.remove(&opts).unwrap();
    for g in vm.groups() {
        assert!(!g.dir().exists());
    }
}

#[test]
fn live_controllers_set_and_read_back() {
    let Some(host) = live_host() else { return };
    let _lock = serial();
    let mut s = Scratch::default();
    let top = unique_name();
    let ctrls = available(
        &host,
        &[
            Controller::Cpu,
            Controller::Cpuacct,
            Controller::Cpuset,
            Controller::Memory,
            Controller::Io,
            Controller::Pids,
            Controller::Devices,
        ],
    );
    let vm = s.create(&host, &top, Some("vm"), &ctrls);
    let pid = s.spawn_busy();
    vm.move_process(pid).unwrap();

    if let Some(g) = vm.group(&Controller::Cpu) {
        g.set_cpu_weight(CpuWeight::new(250).unwrap()).unwrap();
        assert_eq!(g.cpu_weight().unwrap().get(), 250);
        if g.version() == CgroupVersion::V1 {
            assert_eq!(g.cpu_shares().unwrap().get(), 2560);
            assert_eq!(g.read("cpu.shares").unwrap().trim(), "2560");
        }
        g.set_cpu_shares(CpuShares::new(512).unwrap()).unwrap();
        assert_eq!(g.cpu_shares().unwrap().get(), 512);
        let m = CpuMax {
            quota_us: Some(50_000),
            period_us: 100_000,
        };
        g.set_cpu_max(m).unwrap();
        assert_eq!(g.cpu_max().unwrap(), m);
        g.set_cpu_max(CpuMax::UNLIMITED).unwrap();
        assert_eq!(g.cpu_max().unwrap(), CpuMax::UNLIMITED);
        // Refused before writing.
        assert!(matches!(
            g.set_cpu_max(CpuMax {
                quota_us: Some(5),
                period_us: 100_000
            }),
            Err(Error::OutOfRange { .. })
        ));
    }

    if let Some(g) = vm.group(&Controller::Cpuset) {
        let root_cpus = Group::root(g.hierarchy()).cpuset_cpus().unwrap();
        let first: RangeList = RangeList::from_ids(root_cpus.ids().take(1)).unwrap();
        g.set_cpuset_cpus(&first).unwrap();
        assert_eq!(g.cpuset_cpus().unwrap(), first);
        assert_eq!(g.cpuset_effective_cpus().unwrap(), first);
        let mems = g.cpuset_mems().unwrap();
        g.set_cpuset_mems(&mems).unwrap();
        // A kernel refusal names the file and the value.
        let bad: RangeList = "4000".parse().unwrap();
        match g.set_cpuset_cpus(&bad) {
            Err(Error::KernelRefused { path, value, .. }) => {
                assert!(path.ends_with("cpuset.cpus"));
                assert_eq!(value, "4000");
            }
            other => panic!("{other:?}"),
        }
    }

    if let Some(g) = vm.group(&Controller::Memory) {
        g.set_memory_max(Some(256 << 20)).unwrap();
        assert_eq!(g.memory_max().unwrap(), Some(256 << 20));
        if g.version() == CgroupVersion::V1 {
            g.set_memory_soft_limit(Some(128 << 20)).unwrap();
            assert_eq!(g.memory_soft_limit().unwrap(), Some(128 << 20));
            g.set_memory_soft_limit(None).unwrap();
            assert_eq!(g.memory_soft_limit().unwrap(), None);
            if g.has_file("memory.memsw.limit_in_bytes") {
                g.set_swap_max(Some(64 << 20)).unwrap();
                assert_eq!(g.memsw_limit().unwrap(), Some(320 << 20));
                assert_eq!(g.swap_max().unwrap(), Some(64 << 20));
                g.set_swap_max(None).unwrap();
                assert_eq!(g.swap_max().unwrap(), None);
            }
            assert!(matches!(
                g.set_memory_high(Some(1 << 20)),
                Err(Error::Unsupported { version: "v1", .. })
            ));
            let ev = g.memory_events().unwrap();
            assert_eq!(ev.oom_kill, 0);
            assert_eq!(ev.under_oom, Some(false));
        }
        g.set_memory_max(None).unwrap();
        assert_eq!(g.memory_max().unwrap(), None);
        let _ = g.memory_usage().unwrap();
        assert!(g.memory_peak().unwrap().is_some());
        assert!(g.memory_stat().unwrap().contains_key("rss") || g.version() == CgroupVersion::V2);
    }

    if let Some(g) = vm.group(&Controller::Pids) {
        g.set_pids_max(Some(64)).unwrap();
        assert_eq!(g.pids_max().unwrap(), Some(64));
        assert_eq!(g.pids_current().unwrap(), 1);
        g.set_pids_max(None).unwrap();
        assert_eq!(g.pids_max().unwrap(), None);
        assert_eq!(g.read("pids.max").unwrap().trim(), "max");
    }

    if let Some(g) = vm.group(&Controller::Devices) {
        assert_eq!(g.device_rules().unwrap(), ["a *:* rwm".parse().unwrap()]);
        g.deny_device(&"a".parse().unwrap()).unwrap();
        let null: DeviceRule = "c 1:3 rwm".parse().unwrap();
        let kvm: DeviceRule = "c 10:232 rw".parse().unwrap();
        g.allow_device(&null).unwrap();
        g.allow_device(&kvm).unwrap();
        let rules = g.device_rules().unwrap();
        assert!(rules.contains(&null) && rules.contains(&kvm), "{rules:?}");
        assert_eq!(rules.len(), 2);
    }

    if let Some(g) = vm.group(&Controller::Io) {
        let support = g.io_weight_support();
        if support.none() {
            // This host: throttling only. A typed answer, not a failed write.
            assert!(matches!(
                g.set_blkio_weight(BlkioWeight::new(1000).unwrap()),
                Err(Error::IoWeightUnsupported { .. })
            ));
            assert!(matches!(
                g.blkio_weight(),
                Err(Error::IoWeightUnsupported { .. })
            ));
        }
        let tmp = tempfile::tempdir().unwrap();
        let dev = common::loop_device(&mut s, tmp.path(), 16 << 20);
        let num = DeviceNumber::of_block_device(Path::new(&dev)).unwrap();
        let lim = IoLimits {
            rbps: Some(4 << 20),
            wbps: Some(2 << 20),
            riops: None,
            wiops: Some(100),
        };
        g.set_io_limits(&BlockDevice::Path(Path::new(&dev)), lim)
            .unwrap();
        let read = g.io_limits().unwrap();
        assert_eq!(read.len(), 1);
        assert_eq!(read[0].device, num);
        assert_eq!(read[0].limits, lim);
        g.set_io_limits(&BlockDevice::Number(num), IoLimits::default())
            .unwrap();
        assert!(g.io_limits().unwrap().is_empty());
        assert!(matches!(
            g.set_io_limits(
                &BlockDevice::Number(num),
                IoLimits {
                    wbps: Some(0),
                    ..Default::default()
                }
            ),
            Err(Error::OutOfRange { .. })
        ));
        assert!(g.io_stat().unwrap().bad_rows.is_empty());
    }

    // Accounting: the busy child used CPU time in between two snapshots.
    let a = vm.usage().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let b = vm.usage().unwrap();
    let d = b.since(&a);
    if host.hierarchy_for(&Controller::Cpuacct).is_some() {
        assert!(d.cpu_ns.unwrap() > 0);
    }
    if vm.group(&Controller::Memory).is_some() {
        assert!(b.memory_current.is_some());
    }
    let _ = Usage::of_group(vm.groups().next().unwrap()).unwrap();
}

/// The v2 hierarchy here (hybrid) holds almost no controllers, but its core files work.
#[test]
fn live_v2_core_files_and_devices_need_ebpf() {
    let Some(host) = live_host() else { return };
    let Some(v2) = host.v2() else {
        eprintln!("skipping: no cgroup2 mount");
        return;
    };
    let top = unique_name();
    let g = Group::create(v2, &GroupPath::new(&top).unwrap()).unwrap();
    // Declared before the Scratch so that it drops after it: children are killed and reaped
    // first, then the group is removed.
    struct Rm(Group);
    impl Drop for Rm {
        fn drop(&mut self) {
            let _ = self.0.remove(&RemoveOptions {
                recursive: true,
                busy_timeout: Duration::from_secs(5),
                ..Default::default()
            });
        }
    }
    let _rm = Rm(g.clone());
    let mut s = Scratch::default();
    let pid = s.spawn_sleeper();
    g.move_process(pid).unwrap();
    assert_eq!(g.processes().unwrap(), [pid]);
    assert!(g.is_populated().unwrap());
    assert!(matches!(
        g.device_rules(),
        Err(Error::DevicesNeedEbpf { .. })
    ));
    assert_eq!(g.freezer_state().unwrap(), FreezerState::Thawed);
    g.freeze(Duration::from_secs(5)).unwrap();
    assert_eq!(g.freezer_state().unwrap(), FreezerState::Frozen);
    g.thaw().unwrap();
    assert_eq!(g.freezer_state().unwrap(), FreezerState::Thawed);
    assert!(g.cpu_usage().is_ok());
    // A threaded child (per-vCPU style): the sleeper's thread moves into it.
    let t = g.child("vcpu0").unwrap();
    Group::create(t.hierarchy(), t.path()).unwrap();
    t.make_threaded().unwrap();
    assert_eq!(t.group_type().unwrap(), "threaded");
    assert_eq!(g.group_type().unwrap(), "domain threaded");
    t.move_thread(pid).unwrap();
    assert_eq!(t.threads().unwrap(), [pid]);
    assert!(g.threads().unwrap().is_empty());
    g.kill().unwrap();
    // cgroup.kill: the child dies; reap it and wait for `populated 0`.
    let child = s.children.pop().unwrap();
    let mut child = child;
    let status = child.wait().unwrap();
    assert!(!status.success());
    for _ in 0..100 {
        if !g.is_populated().unwrap() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!g.is_populated().unwrap());
    // Nothing to enable here: enabling nothing writes nothing.
    g.enable_subtree_controllers(&[]).unwrap();
    // Removal handles the threaded child (whose cgroup.procs cannot be read).
    drop(s);
    g.remove(&RemoveOptions {
        recursive: true,
        busy_timeout: Duration::from_secs(5),
        ..Default::default()
    })
    .unwrap();
    assert!(!g.dir().exists());
}

/// Mount an already-mounted controller set a second time (the kernel shares the
/// hierarchy), and the v2 hierarchy, at temporary directories; then unmount.
#[test]
fn live_mount_same_hierarchy_twice() {
    let Some(host) = live_host() else { return };
    let _lock = serial();
    let Some(h) = host
        .hierarchies()
        .iter()
        .find(|h| h.version == CgroupVersion::V1 && !h.controllers.is_empty())
        .cloned()
    else {
        eprintln!("skipping: no v1 controller hierarchy");
        return;
    };
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = mount::unmount(&self.0);
        }
    }
    let tmp = tempfile::tempdir().unwrap();
    let target = tmp.path().join("second view");
    std::fs::create_dir(&target).unwrap();
    let ctrls: Vec<Controller> = h.controllers.iter().cloned().collect();
    mount::mount_v1(&ctrls, None, &target).unwrap();
    let _um = Unmount(target.clone());

    let again = Cgroups::discover().unwrap();
    let same = again
        .hierarchies()
        .iter()
        .find(|x| x.device == h.device)
        .unwrap();
    assert_eq!(same.mount_point, h.mount_point);
    assert!(same.other_mount_points.contains(&target), "{same:?}");

    // A group made in the primary view shows in the second.
    let name = unique_name();
    let g = Group::create(&h, &GroupPath::new(&name).unwrap()).unwrap();
    struct Rm(Group);
    impl Drop for Rm {
        fn drop(&mut self) {
            let _ = self.0.remove(&RemoveOptions::default());
        }
    }
    let _rm = Rm(g.clone());
    assert!(target.join(&name).is_dir());
    drop(_rm);
    assert!(!target.join(&name).exists());

    mount::unmount(&target).unwrap();
    std::mem::forget(_um);
    assert!(
        Cgroups::discover()
            .unwrap()
            .hierarchies()
            .iter()
            .all(|x| !x.other_mount_points.contains(&target))
    );

    if host.v2().is_some() {
        let t2 = tmp.path().join("v2");
        std::fs::create_dir(&t2).unwrap();
        mount::mount_v2(&t2).unwrap();
        let _um2 = Unmount(t2.clone());
        assert!(t2.join("cgroup.procs").exists());
        let again = Cgroups::discover().unwrap();
        assert!(again.v2().unwrap().other_mount_points.contains(&t2));
    }
}

#[test]
fn live_namespaces_of_a_child() {
    let Some(_host) = live_host() else { return };
    let mut s = Scratch::default();
    let mine = namespaces::namespaces(std::process::id()).unwrap();
    assert!(mine.entries.iter().any(|e| e.kind == "net"));
    let mut c = Command::new("unshare");
    c.args(["--net", "--uts", "sleep", "600"]);
    let pid = s.spawn(c);
    // Compare with pid 1 when this process may read its links (CAP_SYS_PTRACE), else with
    // this test process, which shares the host's namespaces.
    let me = std::process::id();
    let reference = if std::fs::read_link("/proc/1/ns/net").is_ok() {
        1
    } else {
        eprintln!("/proc/1/ns unreadable here: comparing with this process instead");
        let r = namespaces::namespaces(me).unwrap();
        assert!(r.entries.iter().all(|e| e.shared_with_host.is_none()));
        me
    };
    // Wait until unshare has exec'd sleep in its new namespaces.
    let mut report = namespaces::namespaces_relative(pid, reference).unwrap();
    for _ in 0..100 {
        if report.own().contains(&"net") {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
        report = namespaces::namespaces_relative(pid, reference).unwrap();
    }
    let own = report.own();
    assert!(own.contains(&"net") && own.contains(&"uts"), "{report:?}");
    assert!(report.shared().contains(&"mnt"));
}

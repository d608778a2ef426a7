//! cgroup v2, pure, in the throw-away test VM: every controller, BFQ on a
//! virtio disk, real processes.
//!
//! `vm_cgroup` (host) boots the VM with a 256 MiB virtio disk and runs this
//! binary's `guest_*` tests inside it; on the host those tests return at once.
//! The guest mounts only cgroup2 (`cgroup_no_v1=all`) at `/sys/fs/cgroup`.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use kvmsec_tests::vmrig::{self, GuestTests};

const SUITE: &str = "cgroup";
const ROOT: &str = "/sys/fs/cgroup";
const DISK: &str = "vda";

#[test]
fn vm_cgroup() {
    let Some(assets) = vmrig::assets_or_skip("vm_cgroup") else {
        return;
    };
    let report = GuestTests::new(SUITE)
        .expect("test executable")
        .filter("guest_")
        .min_passed(7)
        .disk(256)
        .run(&assets)
        .expect("booting the test VM");
    report.assert_passed();
}

// ------------------------------------------------------------ guest helpers

fn read(path: impl AsRef<Path>) -> String {
    let path = path.as_ref();
    fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

fn write(path: impl AsRef<Path>, value: &str) -> io::Result<()> {
    fs::write(path.as_ref(), value)
}

/// A cgroup made by a test; its processes are killed and it is removed
/// (children first) on drop.
struct Group {
    path: PathBuf,
    children: Vec<Group>,
}

impl Group {
    fn new(rel: &str) -> Group {
        let path = Path::new(ROOT).join(rel);
        fs::create_dir(&path).unwrap_or_else(|e| panic!("mkdir {}: {e}", path.display()));
        Group {
            path,
            children: Vec::new(),
        }
    }

    fn child(&mut self, name: &str) -> PathBuf {
        let path = self.path.join(name);
        fs::create_dir(&path).unwrap_or_else(|e| panic!("mkdir {}: {e}", path.display()));
        let child = Group {
            path: path.clone(),
            children: Vec::new(),
        };
        self.children.push(child);
        path
    }

    fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        self.children.clear();
        let _ = write(self.file("cgroup.kill"), "1");
        for _ in 0..200 {
            if fs::remove_dir(&self.path).is_ok() {
                return;
            }
            thread::sleep(Duration::from_millis(10));
        }
    }
}

/// A child process that is killed and reaped on drop.
struct Proc(Child);

impl Proc {
    fn shell(script: &str) -> Proc {
        let child = Command::new("/bin/busybox")
            .args(["sh", "-c", script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .expect("spawning busybox sh");
        Proc(child)
    }

    fn pid(&self) -> u32 {
        self.0.id()
    }

    fn move_to(&self, group: &Path) -> io::Result<()> {
        write(group.join("cgroup.procs"), &self.pid().to_string())
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Value of `key` in a flat-keyed file such as cpu.stat or cgroup.events.
fn keyed(path: impl AsRef<Path>, key: &str) -> Option<u64> {
    read(path).lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

/// Value of `key=` on the `dev` line of io.stat.
fn io_stat(group: &Path, dev: &str, key: &str) -> u64 {
    let text = read(group.join("io.stat"));
    text.lines()
        .filter(|l| l.starts_with(&format!("{dev} ")))
        .flat_map(|l| l.split_whitespace())
        .find_map(|kv| kv.strip_prefix(&format!("{key}="))?.parse().ok())
        .unwrap_or(0)
}

fn wait_for(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(10));
    }
}

fn enable_in_root(controllers: &str) {
    write(Path::new(ROOT).join("cgroup.subtree_control"), controllers)
        .expect("enabling controllers in the root cgroup");
}

fn disk_devnum() -> String {
    read(format!("/sys/block/{DISK}/dev")).trim().to_string()
}

// -------------------------------------------------------------- guest tests

#[test]
fn guest_host_is_pure_cgroup_v2() {
    if !vmrig::in_guest(SUITE) {
        return;
    }
    let mountinfo = read("/proc/self/mountinfo");
    let fstypes: Vec<&str> = mountinfo
        .lines()
        .filter_map(|l| l.split(" - ").nth(1)?.split_whitespace().next())
        .collect();
    assert!(!fstypes.contains(&"cgroup"), "a v1 hierarchy is mounted");
    assert_eq!(fstypes.iter().filter(|t| **t == "cgroup2").count(), 1);
    assert_eq!(read("/proc/self/cgroup"), "0::/\n");
    let controllers = read(Path::new(ROOT).join("cgroup.controllers"));
    for c in ["cpuset", "cpu", "io", "memory", "pids"] {
        assert!(
            controllers.split_whitespace().any(|x| x == c),
            "{c} missing from {controllers}"
        );
    }
}

#[test]
fn guest_controllers_are_enabled_top_down() {
    if !vmrig::in_guest(SUITE) {
        return;
    }
    let mut top = Group::new("kvmsec-topdown");
    let leaf = top.child("leaf");
    // The root has not delegated pids yet (or the test order left it on);
    // either way the grandchild sees only what its parent enabled.
    let err = write(top.file("cgroup.subtree_control"), "+rdma").unwrap_err();
    assert_eq!(
        err.raw_os_error(),
        Some(libc::ENOENT),
        "enabling a controller the parent does not offer"
    );
    enable_in_root("+cpu +memory +io +pids +cpuset");
    write(
        top.file("cgroup.subtree_control"),
        "+cpu +memory +io +pids +cpuset",
    )
    .unwrap();
    let offered = read(leaf.join("cgroup.controllers"));
    let mut offered: Vec<&str> = offered.split_whitespace().collect();
    offered.sort_unstable();
    assert_eq!(offered, ["cpu", "cpuset", "io", "memory", "pids"]);
    for f in [
        "cpu.weight",
        "memory.max",
        "io.weight",
        "pids.max",
        "cpuset.cpus",
    ] {
        assert!(leaf.join(f).exists(), "{f} missing in the leaf");
    }
}

#[test]
fn guest_settings_are_written_and_read_back() {
    if !vmrig::in_guest(SUITE) {
        return;
    }
    enable_in_root("+cpu +memory +io +pids +cpuset");
    let g = Group::new("kvmsec-settings");
    let set = |file: &str, value: &str, want: &str| {
        write(g.file(file), value).unwrap_or_else(|e| panic!("{file} <- {value}: {e}"));
        assert_eq!(read(g.file(file)).trim_end(), want, "{file}");
    };
    set("cpu.weight", "250", "250");
    set("cpu.max", "50000 100000", "50000 100000");
    set("cpu.max", "max", "max 100000");
    set("memory.max", "67108864", "67108864");
    set("memory.high", "50331648", "50331648");
    set("memory.low", "8388608", "8388608");
    set("memory.swap.max", "0", "0");
    set("pids.max", "20", "20");
    set("cpuset.cpus", "1", "1");
    set("cpuset.mems", "0", "0");
    assert_eq!(read(g.file("cpuset.cpus.effective")).trim(), "1");
    set("io.weight", "default 200", "default 200");
    let dev = disk_devnum();
    set(
        "io.max",
        &format!("{dev} rbps=1048576 wiops=100"),
        &format!("{dev} rbps=1048576 wbps=max riops=max wiops=100"),
    );
    // Out of range values are refused by the kernel.
    let err = write(g.file("cpu.weight"), "0").unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::ERANGE), "cpu.weight 0");
}

#[test]
fn guest_no_internal_processes_rule_gives_ebusy() {
    if !vmrig::in_guest(SUITE) {
        return;
    }
    enable_in_root("+cpu +memory");
    let mut g = Group::new("kvmsec-internal");
    let sleeper = Proc::shell("sleep 60");
    sleeper.move_to(&g.path).unwrap();
    // A populated group cannot hand controllers to children...
    let err = write(g.file("cgroup.subtree_control"), "+memory").unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EBUSY));
    // ...and a group that hands them out cannot take processes.
    let leaf = g.child("leaf");
    sleeper.move_to(&leaf).unwrap();
    write(g.file("cgroup.subtree_control"), "+memory").unwrap();
    let err = sleeper.move_to(&g.path).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EBUSY));
}

#[test]
fn guest_cpu_weight_ten_to_one() {
    if !vmrig::in_guest(SUITE) {
        return;
    }
    enable_in_root("+cpu +cpuset");
    let hi = Group::new("kvmsec-cpu-hi");
    let lo = Group::new("kvmsec-cpu-lo");
    for (g, weight) in [(&hi, "1000"), (&lo, "100")] {
        write(g.file("cpu.weight"), weight).unwrap();
        // Both on one CPU, so that they compete.
        write(g.file("cpuset.cpus"), "0").unwrap();
    }
    let a = Proc::shell("while :; do :; done");
    let b = Proc::shell("while :; do :; done");
    a.move_to(&hi.path).unwrap();
    b.move_to(&lo.path).unwrap();
    thread::sleep(Duration::from_millis(2500));
    let usage = |g: &Group| keyed(g.file("cpu.stat"), "usage_usec").unwrap_or(0);
    let (h, l) = (usage(&hi), usage(&lo));
    drop((a, b));
    let ratio = h as f64 / l.max(1) as f64;
    println!("cpu.weight 1000:100 -> usage {h} us : {l} us = {ratio:.2}:1");
    assert!(
        (6.0..=16.0).contains(&ratio),
        "expected about 10:1, got {ratio:.2}"
    );
}

#[test]
fn guest_bfq_weight_on_a_virtio_disk() {
    if !vmrig::in_guest(SUITE) {
        return;
    }
    let sched = format!("/sys/block/{DISK}/queue/scheduler");
    write(&sched, "bfq").unwrap();
    assert!(read(&sched).contains("[bfq]"), "{}", read(&sched));
    enable_in_root("+io");
    let hi = Group::new("kvmsec-io-hi");
    let lo = Group::new("kvmsec-io-lo");
    for (g, weight) in [(&hi, "1000"), (&lo, "100")] {
        write(g.file("io.bfq.weight"), weight).unwrap();
        assert_eq!(
            read(g.file("io.bfq.weight")).trim(),
            format!("default {weight}")
        );
    }
    let reader = |skip_mib: u32| {
        Proc::shell(&format!(
            "while :; do dd if=/dev/{DISK} of=/dev/null bs=64k iflag=direct \
             skip={} count=1024 2>/dev/null; done",
            skip_mib * 16
        ))
    };
    let a = reader(0);
    let b = reader(128);
    a.move_to(&hi.path).unwrap();
    b.move_to(&lo.path).unwrap();
    let dev = disk_devnum();
    let before = (
        io_stat(&hi.path, &dev, "rbytes"),
        io_stat(&lo.path, &dev, "rbytes"),
    );
    thread::sleep(Duration::from_secs(3));
    let after = (
        io_stat(&hi.path, &dev, "rbytes"),
        io_stat(&lo.path, &dev, "rbytes"),
    );
    drop((a, b));
    let (h, l) = (after.0 - before.0, after.1 - before.1);
    let ratio = h as f64 / l.max(1) as f64;
    println!("io.bfq.weight 1000:100 -> read {h} B : {l} B = {ratio:.2}:1");
    assert!(h > 0 && l > 0, "both readers must make progress");
    assert!(
        ratio >= 2.0,
        "expected the heavier group to get clearly more, got {ratio:.2}"
    );
}

#[test]
fn guest_freeze_thaw_and_kill() {
    if !vmrig::in_guest(SUITE) {
        return;
    }
    let g = Group::new("kvmsec-freezer");
    let p = Proc::shell("while :; do sleep 0.05; done");
    p.move_to(&g.path).unwrap();
    write(g.file("cgroup.freeze"), "1").unwrap();
    wait_for("frozen 1", Duration::from_secs(10), || {
        keyed(g.file("cgroup.events"), "frozen") == Some(1)
    });
    let state = read(format!("/proc/{}/stat", p.pid()));
    println!("frozen task stat: {}", state.trim());
    write(g.file("cgroup.freeze"), "0").unwrap();
    wait_for("frozen 0", Duration::from_secs(10), || {
        keyed(g.file("cgroup.events"), "frozen") == Some(0)
    });
    write(g.file("cgroup.kill"), "1").unwrap();
    wait_for("populated 0", Duration::from_secs(10), || {
        keyed(g.file("cgroup.events"), "populated") == Some(0)
    });
}

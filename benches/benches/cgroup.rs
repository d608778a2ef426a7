//! kvmsec-cgroup next to the `cgroups-rs` crate (and a plain `split` parser where cgroups-rs
//! keeps its parser private).
//!
//! The cycle rows run on this machine's cgroupfs: they create uniquely named groups
//! (`kvmsec-bench-<pid>-<n>`) in the v1 `cpu` and `cpuacct` hierarchies (or the v2 root on a
//! pure v2 host), move a `sleep` child this bench started into them and back, and remove
//! them. A guard moves the child back and removes every group of this process even when a
//! step fails. Needs root. Run with `cargo bench -p kvmsec-benches --bench cgroup`.

use std::fs;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use cgroups_rs::CgroupPid;
use cgroups_rs::fs::cgroup::get_cgroups_relative_paths_by_pid;
use cgroups_rs::fs::cpu::CpuController;
use cgroups_rs::fs::cpuacct::CpuAcctController;
use cgroups_rs::fs::hierarchies::{self, V1, mountinfo_self};
use cgroups_rs::fs::{Cgroup, Controller as _, Controllers};
use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, criterion_group, criterion_main};
use kvmsec_cgroup::membership::{parse_proc_pid_cgroup, read_proc_pid_cgroup_at};
use kvmsec_cgroup::mountinfo::parse_mountinfo;
use kvmsec_cgroup::{
    CgroupVersion, Cgroups, Controller, CpuShares, GroupPath, GroupSet, RemoveOptions,
};

static NEXT_GROUP: AtomicU64 = AtomicU64::new(0);

fn group_prefix() -> String {
    format!("kvmsec-bench-{}-", std::process::id())
}

fn next_group_name() -> String {
    format!(
        "{}{}",
        group_prefix(),
        NEXT_GROUP.fetch_add(1, Ordering::Relaxed)
    )
}

/// A plain parser of one mountinfo line, as a user without a crate would write it: split on
/// spaces, find the ` - ` separator, keep the mount point, fs type and super options.
fn plain_mountinfo(text: &str) -> Vec<(String, String, Vec<String>)> {
    let mut out = Vec::new();
    for line in text.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let left: Vec<&str> = left.split(' ').collect();
        let right: Vec<&str> = right.split(' ').collect();
        if left.len() < 6 || right.len() < 3 {
            continue;
        }
        out.push((
            left[4].to_string(),
            right[0].to_string(),
            right[2].split(',').map(str::to_string).collect(),
        ));
    }
    out
}

/// A plain parser of `/proc/<pid>/cgroup`: `id:controllers:path` with `splitn(3, ':')`.
fn plain_proc_cgroup(text: &str) -> Vec<(u32, Vec<String>, String)> {
    text.lines()
        .filter_map(|line| {
            let mut it = line.splitn(3, ':');
            let id = it.next()?.parse().ok()?;
            let ctrls = it.next()?.split(',').map(str::to_string).collect();
            Some((id, ctrls, it.next()?.to_string()))
        })
        .collect()
}

/// What the cycle needs to know about this host, found once.
struct Host {
    ours: Cgroups,
    v1: Option<V1>,
    /// Directories of the hierarchies the cycle creates groups in.
    dirs: Vec<PathBuf>,
}

impl Host {
    fn discover() -> Option<Host> {
        let ours = Cgroups::discover().ok()?;
        let mut dirs = Vec::new();
        for c in [Controller::Cpu, Controller::Cpuacct] {
            let h = ours.hierarchy_for(&c)?;
            if !dirs.contains(&h.dir()) {
                dirs.push(h.dir());
            }
        }
        let v1 = match ours.hierarchy_for(&Controller::Cpu)?.version {
            CgroupVersion::V1 => Some(V1::new()),
            CgroupVersion::V2 => None,
        };
        Some(Host { ours, v1, dirs })
    }
}

/// Owns the child process and removes, on drop, every group this process created.
struct Guard {
    child: Child,
    dirs: Vec<PathBuf>,
}

impl Guard {
    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let pid = self.child.id().to_string();
        let prefix = group_prefix();
        for dir in &self.dirs {
            let Ok(entries) = fs::read_dir(dir) else {
                continue;
            };
            for e in entries.flatten() {
                if !e.file_name().to_string_lossy().starts_with(&prefix) {
                    continue;
                }
                // Our child back to the hierarchy root (where it started), then rmdir.
                let _ = fs::write(dir.join("cgroup.procs"), &pid);
                let _ = fs::remove_dir(e.path());
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// kvmsec: create in cpu + cpuacct, set cpu.shares, move the child in, read CPU usage,
/// remove (moving the child to the parent first).
fn ours_cycle(host: &Host, pid: u32) -> u64 {
    let path = match GroupPath::new(&next_group_name()) {
        Ok(p) => p,
        Err(e) => panic!("group path: {e}"),
    };
    let set = GroupSet::create(&host.ours, &path, &[Controller::Cpu, Controller::Cpuacct])
        .unwrap_or_else(|e| panic!("create: {e}"));
    let shares = CpuShares::new(1024).unwrap_or_else(|e| panic!("{e}"));
    if let Some(g) = set.group(&Controller::Cpu) {
        g.set_cpu_shares(shares)
            .unwrap_or_else(|e| panic!("shares: {e}"));
    }
    set.move_process(pid)
        .unwrap_or_else(|e| panic!("move: {e}"));
    let usage = set.usage().unwrap_or_else(|e| panic!("usage: {e}"));
    set.remove(&RemoveOptions {
        move_processes_to_parent: true,
        ..RemoveOptions::default()
    })
    .unwrap_or_else(|e| panic!("remove: {e}"));
    usage.cpu.map_or(0, |c| c.total_ns)
}

/// The parents the cgroups-rs cycle moves the child back to: its controllers at the root of
/// the `cpu` and `cpuacct` hierarchies only. (`Cgroup::move_task_to_parent_by_tgid` would
/// write the child into the root of every v1 hierarchy, memory included, which is both more
/// work and outside what this bench may touch.)
struct RsParents {
    cpu: CpuController,
    cpuacct: CpuAcctController,
}

fn rs_parents(v1: &V1) -> Option<RsParents> {
    let (cpu_point, cpu_root) = v1.get_mount_point(Controllers::Cpu)?;
    let (acct_point, acct_root) = v1.get_mount_point(Controllers::CpuAcct)?;
    Some(RsParents {
        cpu: CpuController::new(cpu_point, cpu_root, false),
        cpuacct: CpuAcctController::new(acct_point, acct_root),
    })
}

/// cgroups-rs: the same cycle with its v1 API.
fn rs_cycle(v1: &V1, parents: &RsParents, pid: u32) -> u64 {
    let name = next_group_name();
    let cg = Cgroup::new_with_specified_controllers(
        Box::new(v1.clone()),
        &name,
        Some(vec!["cpu".to_string(), "cpuacct".to_string()]),
    )
    .unwrap_or_else(|e| panic!("create: {e}"));
    if let Some(cpu) = cg.controller_of::<CpuController>() {
        cpu.set_shares(1024)
            .unwrap_or_else(|e| panic!("shares: {e}"));
    }
    let tgid = CgroupPid::from(u64::from(pid));
    cg.add_task_by_tgid(tgid)
        .unwrap_or_else(|e| panic!("move: {e}"));
    let usage = cg
        .controller_of::<CpuAcctController>()
        .map_or(0, |a| a.cpuacct().usage);
    for p in cg.procs() {
        parents
            .cpu
            .add_task_by_tgid(&p)
            .unwrap_or_else(|e| panic!("back: {e}"));
        parents
            .cpuacct
            .add_task_by_tgid(&p)
            .unwrap_or_else(|e| panic!("back: {e}"));
    }
    cg.delete().unwrap_or_else(|e| panic!("delete: {e}"));
    usage
}

fn configure<'a>(c: &'a mut Criterion, name: &str, slow: bool) -> BenchmarkGroup<'a, WallTime> {
    let mut g = c.benchmark_group(name);
    g.warm_up_time(Duration::from_millis(500));
    if slow {
        g.sample_size(20).measurement_time(Duration::from_secs(4));
    } else {
        g.sample_size(30).measurement_time(Duration::from_secs(2));
    }
    g
}

fn benches(c: &mut Criterion) {
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let proc_cgroup = fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    let me = std::process::id();

    // Both parsers see the same lines.
    let ours_mounts = parse_mountinfo(&mountinfo).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(ours_mounts.len(), plain_mountinfo(&mountinfo).len());
    let ours_members = parse_proc_pid_cgroup(&proc_cgroup).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(ours_members.len(), plain_proc_cgroup(&proc_cgroup).len());

    let mut g = configure(c, "cgroup/mountinfo-parse", false);
    g.bench_function("kvmsec", |b| {
        b.iter(|| black_box(parse_mountinfo(black_box(&mountinfo))))
    });
    g.bench_function("plain-split", |b| {
        b.iter(|| black_box(plain_mountinfo(black_box(&mountinfo))))
    });
    g.finish();

    let mut g = configure(c, "cgroup/mountinfo-read-parse", false);
    g.bench_function("kvmsec", |b| {
        b.iter(|| {
            let text = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
            black_box(parse_mountinfo(&text).map(|m| m.len()))
        })
    });
    g.bench_function("cgroups-rs", |b| b.iter(|| black_box(mountinfo_self())));
    g.finish();

    let mut g = configure(c, "cgroup/proc-pid-cgroup-parse", false);
    g.bench_function("kvmsec", |b| {
        b.iter(|| black_box(parse_proc_pid_cgroup(black_box(&proc_cgroup))))
    });
    g.bench_function("plain-split", |b| {
        b.iter(|| black_box(plain_proc_cgroup(black_box(&proc_cgroup))))
    });
    g.finish();

    let mut g = configure(c, "cgroup/proc-pid-cgroup-read-parse", false);
    g.bench_function("kvmsec", |b| {
        b.iter(|| black_box(read_proc_pid_cgroup_at(Path::new("/"), Some(me))))
    });
    g.bench_function("cgroups-rs", |b| {
        b.iter(|| black_box(get_cgroups_relative_paths_by_pid(me)))
    });
    g.finish();

    let mut g = configure(c, "cgroup/discover-hierarchies", false);
    g.bench_function("kvmsec", |b| b.iter(|| black_box(Cgroups::discover())));
    g.bench_function("cgroups-rs", |b| {
        b.iter(|| black_box(hierarchies::auto().subsystems().len()))
    });
    g.finish();

    // The real cycle on cgroupfs.
    let Some(host) = Host::discover() else {
        eprintln!("cgroup cycle: skipped, no cpu/cpuacct hierarchy found");
        return;
    };
    let Some(v1) = host.v1.as_ref() else {
        // TODO: a v2 cycle for cgroups-rs once CI runs on a pure v2 host.
        eprintln!("cgroup cycle: skipped, the cpu controller is on cgroup v2 here");
        return;
    };
    let Some(parents) = rs_parents(v1) else {
        eprintln!("cgroup cycle: skipped, cgroups-rs finds no cpu/cpuacct mount");
        return;
    };
    let child = Command::new("sleep")
        .arg("600")
        .stdin(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("spawning sleep: {e}"));
    let guard = Guard {
        child,
        dirs: host.dirs.clone(),
    };
    let pid = guard.pid();
    if not_root() {
        eprintln!("cgroup cycle: skipped, creating groups here needs root");
        return;
    }

    // One cycle each outside the timing, so a failure shows before criterion starts.
    ours_cycle(&host, pid);
    rs_cycle(v1, &parents, pid);

    let mut g = configure(c, "cgroup/cycle-create-weight-move-stats-remove", true);
    g.bench_function("kvmsec", |b| b.iter(|| black_box(ours_cycle(&host, pid))));
    g.bench_function("cgroups-rs", |b| {
        b.iter(|| black_box(rs_cycle(v1, &parents, pid)))
    });
    g.finish();
    drop(guard);
}

/// Whether this process is not root (the cycle needs root on an undelegated hierarchy).
fn not_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() != 0 }
}

criterion_group!(cgroup, benches);
criterion_main!(cgroup);

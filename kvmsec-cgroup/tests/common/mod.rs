//! Shared helpers for the live-host tests: unique group names, a guard that kills the
//! children a test started and removes the groups it created (also when the test fails),
//! and a lock that keeps effect tests from disturbing each other.
#![allow(dead_code)] // each test binary uses a different subset

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use kvmsec_cgroup::{Cgroups, Controller, GroupPath, GroupSet, Layout, RemoveOptions};

static EFFECTS: Mutex<()> = Mutex::new(());
static NEXT: AtomicUsize = AtomicUsize::new(0);

/// Serialize tests that measure effects or share host resources.
pub fn serial() -> MutexGuard<'static, ()> {
    EFFECTS.lock().unwrap_or_else(|p| p.into_inner())
}

/// A unique top-level group name for this test process.
pub fn unique_name() -> String {
    format!(
        "kvmsec-test-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::SeqCst)
    )
}

/// The live host, when these tests can run on it (root and a cgroup filesystem). Prints why
/// not and returns `None` otherwise.
pub fn live_host() -> Option<Cgroups> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipping: live cgroup tests need root");
        return None;
    }
    match Cgroups::discover() {
        Ok(c) if c.layout() != Layout::None => Some(c),
        Ok(_) => {
            eprintln!("skipping: no cgroup filesystem mounted");
            None
        }
        Err(e) => {
            eprintln!("skipping: cannot read mountinfo: {e}");
            None
        }
    }
}

/// Children and groups a test created; dropping it kills and reaps the children, then
/// removes the groups leaf first (bounded EBUSY retry), then detaches loop devices.
#[derive(Default)]
pub struct Scratch {
    pub children: Vec<Child>,
    pub sets: Vec<GroupSet>,
    pub loops: Vec<String>,
}

impl Scratch {
    /// Create a group set under a fresh unique top-level name: `<unique>/<sub>`.
    pub fn create(
        &mut self,
        host: &Cgroups,
        top: &str,
        sub: Option<&str>,
        ctrls: &[Controller],
    ) -> GroupSet {
        let top_path = GroupPath::new(top).unwrap();
        if !self.sets.iter().any(|s| s.path() == &top_path) {
            // Register the top first so that Drop removes it (recursively) last.
            let t = GroupSet::create(host, &top_path, ctrls).unwrap();
            self.sets.push(t);
        }
        let path = match sub {
            Some(s) => top_path.join(s).unwrap(),
            None => top_path,
        };
        let set = GroupSet::create(host, &path, ctrls).unwrap();
        self.sets.push(set.clone());
        set
    }

    /// Start a child and keep it for cleanup; returns its pid.
    pub fn spawn(&mut self, mut cmd: Command) -> u32 {
        let child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let pid = child.id();
        self.children.push(child);
        pid
    }

    /// A CPU-bound child (`sh` busy loop).
    pub fn spawn_busy(&mut self) -> u32 {
        let mut c = Command::new("/bin/sh");
        c.args(["-c", "while :; do :; done"]);
        self.spawn(c)
    }

    /// An idle child.
    pub fn spawn_sleeper(&mut self) -> u32 {
        let mut c = Command::new("sleep");
        c.arg("600");
        self.spawn(c)
    }

    pub fn kill_children(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
        }
        for c in &mut self.children {
            let _ = c.wait();
        }
        self.children.clear();
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        // A v1-frozen task does not die of SIGKILL until thawed: thaw our groups first.
        for set in &self.sets {
            if let Some(g) = set.group(&Controller::Freezer) {
                let _ = g.thaw();
            }
        }
        self.kill_children();
        let opts = RemoveOptions {
            recursive: true,
            move_processes_to_parent: false,
            busy_timeout: Duration::from_secs(5),
        };
        // Children were registered after their parents: remove in reverse order.
        for s in self.sets.iter().rev() {
            if let Err(e) = s.remove(&opts) {
                eprintln!("cleanup of {} failed: {e}", s.path());
            }
        }
        for l in &self.loops {
            let _ = Command::new("losetup").args(["-d", l]).status();
        }
    }
}

/// CPU ticks (utime + stime) of a process from /proc/<pid>/stat.
pub fn cpu_ticks(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after = &s[s.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = after.split_whitespace().collect();
    // Fields 14 and 15 of stat; `after` starts at field 3.
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
}

/// Create a file of `size` bytes (sparse) and attach it to a free loop device.
pub fn loop_device(scratch: &mut Scratch, dir: &Path, size: u64) -> String {
    let img = dir.join("disk.img");
    let f = std::fs::File::create(&img).unwrap();
    f.set_len(size).unwrap();
    let out = Command::new("losetup")
        .args(["-f", "--show"])
        .arg(&img)
        .output()
        .unwrap();
    assert!(out.status.success(), "losetup: {out:?}");
    let dev = String::from_utf8(out.stdout).unwrap().trim().to_string();
    scratch.loops.push(dev.clone());
    dev
}

//! Operations: groups in one hierarchy — create, open, remove, walk, move tasks.
//!
//! # References
//! - Linux `Documentation/admin-guide/cgroup-v1/cgroups.rst` (tasks, cgroup.procs).
//! - Linux `Documentation/admin-guide/cgroup-v2.rst` ("No Internal Process Constraint",
//!   "Threads", `cgroup.subtree_control`, `cgroup.kill`).

use std::collections::BTreeSet;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::fsio;
use crate::hierarchy::{CgroupVersion, Controller, Hierarchy};
use crate::path::GroupPath;

/// A group (a directory) in one hierarchy.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Group {
    hierarchy: Hierarchy,
    path: GroupPath,
}

/// How [`Group::remove`] treats what is still inside a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoveOptions {
    /// Remove child groups first, leaf first. Without it, children make removal fail with
    /// [`Error::GroupHasChildren`].
    pub recursive: bool,
    /// Move remaining processes to the parent group first. Without it, processes make
    /// removal fail with [`Error::GroupPopulated`].
    pub move_processes_to_parent: bool,
    /// How long to keep retrying `rmdir` while the kernel answers EBUSY (it does so briefly
    /// after the last process left).
    pub busy_timeout: Duration,
}

impl Default for RemoveOptions {
    fn default() -> Self {
        RemoveOptions {
            recursive: false,
            move_processes_to_parent: false,
            busy_timeout: Duration::from_secs(2),
        }
    }
}

fn parse_ids(text: &str, path: &Path) -> Result<Vec<u32>> {
    text.split_whitespace()
        .map(|w| {
            w.parse::<u32>().map_err(|_| {
                crate::error::parse_err("task list", w, format!("in {}", path.display()))
            })
        })
        .collect()
}

/// Remove a directory, retrying EBUSY with a bounded exponential wait.
pub(crate) fn rmdir_with_retry(dir: &Path, timeout: Duration) -> Result<()> {
    let start = Instant::now();
    let mut pause = Duration::from_millis(5);
    loop {
        match fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                let waited = start.elapsed();
                if waited >= timeout {
                    return Err(Error::RemoveBusy {
                        path: dir.to_path_buf(),
                        waited,
                    });
                }
                std::thread::sleep(pause.min(timeout.saturating_sub(waited)));
                pause = (pause * 2).min(Duration::from_millis(100));
            }
            Err(e) => return Err(fsio::io_err("rmdir", dir, e)),
        }
    }
}

impl Group {
    /// The root group of a hierarchy.
    pub fn root(hierarchy: &Hierarchy) -> Group {
        Group {
            hierarchy: hierarchy.clone(),
            path: GroupPath::root(),
        }
    }

    /// Open an existing group.
    pub fn open(hierarchy: &Hierarchy, path: &GroupPath) -> Result<Group> {
        let g = Group {
            hierarchy: hierarchy.clone(),
            path: path.clone(),
        };
        let dir = g.dir();
        let md = fs::metadata(&dir).map_err(|e| fsio::io_err("open group", &dir, e))?;
        if !md.is_dir() {
            return Err(fsio::io_err(
                "open group",
                &dir,
                io::Error::from_raw_os_error(libc::ENOTDIR),
            ));
        }
        Ok(g)
    }

    /// A handle without checking that the directory exists.
    pub fn handle(hierarchy: &Hierarchy, path: &GroupPath) -> Group {
        Group {
            hierarchy: hierarchy.clone(),
            path: path.clone(),
        }
    }

    /// Create a group and any missing parents. Existing groups are left as they are.
    ///
    /// In a v1 hierarchy holding `cpuset`, every group created here gets the parent's
    /// `cpuset.cpus` and `cpuset.mems` (a new v1 cpuset group starts empty and refuses tasks
    /// with ENOSPC until both are set).
    pub fn create(hierarchy: &Hierarchy, path: &GroupPath) -> Result<Group> {
        for prefix in path.ancestor_prefixes().skip(1) {
            let g = Group::handle(hierarchy, &GroupPath::from_checked_prefix(prefix));
            let dir = g.dir();
            match fs::create_dir(&dir) {
                Ok(()) => g.after_mkdir()?,
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(fsio::io_err("mkdir", &dir, e)),
            }
        }
        Ok(Group::handle(hierarchy, path))
    }

    fn after_mkdir(&self) -> Result<()> {
        if self.hierarchy.version == CgroupVersion::V1 && self.hierarchy.has(&Controller::Cpuset) {
            self.fill_cpuset_from_parent()?;
        }
        Ok(())
    }

    /// v1 cpuset: copy the parent's `cpuset.cpus` and `cpuset.mems` into this group where
    /// they are empty (a new v1 cpuset group starts empty and refuses tasks with ENOSPC).
    /// [`Group::create`] does this for the groups it makes.
    pub fn fill_cpuset_from_parent(&self) -> Result<()> {
        let Some(parent) = self.parent() else {
            return Ok(());
        };
        for f in ["cpuset.cpus", "cpuset.mems"] {
            let Some(mine) = self.read_optional(f)? else {
                continue;
            };
            if mine.trim().is_empty()
                && let Some(theirs) = parent.read_optional(f)?
                && !theirs.trim().is_empty()
            {
                self.write(f, theirs.trim())?;
            }
        }
        Ok(())
    }

    /// The hierarchy of this group.
    pub fn hierarchy(&self) -> &Hierarchy {
        &self.hierarchy
    }

    /// v1 or v2.
    pub fn version(&self) -> CgroupVersion {
        self.hierarchy.version
    }

    /// The group's path relative to the hierarchy root.
    pub fn path(&self) -> &GroupPath {
        &self.path
    }

    /// The group's directory.
    pub fn dir(&self) -> PathBuf {
        self.path.dir_under(&self.hierarchy.dir())
    }

    /// Path of a file in the group's directory.
    pub fn file(&self, name: &str) -> PathBuf {
        self.dir().join(name)
    }

    /// Does the group's directory hold file `name`?
    pub fn has_file(&self, name: &str) -> bool {
        self.file(name).exists()
    }

    /// The parent group (`None` for the root).
    pub fn parent(&self) -> Option<Group> {
        self.path
            .parent()
            .map(|p| Group::handle(&self.hierarchy, &p))
    }

    /// A child handle (not checked for existence).
    pub fn child(&self, name: &str) -> Result<Group> {
        Ok(Group::handle(&self.hierarchy, &self.path.join(name)?))
    }

    /// Child groups, sorted by name.
    pub fn children(&self) -> Result<Vec<Group>> {
        fsio::subdirs(&self.dir())?
            .iter()
            .map(|n| self.child(n))
            .collect()
    }

    /// Every descendant, parents before children.
    pub fn walk(&self) -> Result<Vec<Group>> {
        let mut out = Vec::new();
        let mut stack = self.children()?;
        stack.reverse();
        while let Some(g) = stack.pop() {
            let mut kids = g.children()?;
            kids.reverse();
            out.push(g);
            stack.extend(kids);
        }
        Ok(out)
    }

    /// Read a control file of this group as text. `name` must be a plain file name.
    pub fn read(&self, name: &str) -> Result<String> {
        fsio::read_string(&self.checked_file(name)?)
    }

    /// Read a control file that may be absent.
    pub fn read_optional(&self, name: &str) -> Result<Option<String>> {
        fsio::read_optional(&self.checked_file(name)?)
    }

    /// Write raw text to a control file of this group (escape hatch for files this crate
    /// does not type). A kernel refusal is [`Error::KernelRefused`] naming file and value.
    pub fn write(&self, name: &str, value: &str) -> Result<()> {
        fsio::write_value(&self.checked_file(name)?, value)
    }

    fn checked_file(&self, name: &str) -> Result<PathBuf> {
        if name.is_empty() || name.contains('/') || name.contains('\0') || name == ".." {
            return Err(Error::InvalidGroupPath {
                path: crate::error::clip(name),
                reason: "a control file name must be one plain component",
            });
        }
        Ok(self.file(name))
    }

    pub(crate) fn read_u64(&self, name: &str) -> Result<u64> {
        let text = self.read(name)?;
        text.trim()
            .parse()
            .map_err(|_| crate::error::parse_err("number", &text, format!("in {name}")))
    }

    /// Read a number where `max` means unlimited.
    pub(crate) fn read_max(&self, name: &str) -> Result<Option<u64>> {
        let text = self.read(name)?;
        crate::stat::parse_max(text.trim())
            .map_err(|_| crate::error::parse_err("number or max", &text, format!("in {name}")))
    }

    /// The process ids in the group (`cgroup.procs`). A v2 threaded group refuses this
    /// (EOPNOTSUPP); use [`Group::threads`] there.
    pub fn processes(&self) -> Result<Vec<u32>> {
        let f = self.file("cgroup.procs");
        parse_ids(&fsio::read_string(&f)?, &f)
    }

    /// The thread ids in the group (`tasks` in v1, `cgroup.threads` in v2).
    pub fn threads(&self) -> Result<Vec<u32>> {
        let f = self.file(self.threads_file());
        parse_ids(&fsio::read_string(&f)?, &f)
    }

    fn threads_file(&self) -> &'static str {
        match self.version() {
            CgroupVersion::V1 => "tasks",
            CgroupVersion::V2 => "cgroup.threads",
        }
    }

    /// Move a whole process (all its threads) into this group (`cgroup.procs`).
    pub fn move_process(&self, pid: u32) -> Result<()> {
        self.attach("cgroup.procs", pid)
    }

    /// Move one thread (`tasks` in v1; `cgroup.threads` in v2, which works only inside a
    /// threaded subtree).
    pub fn move_thread(&self, tid: u32) -> Result<()> {
        self.attach(self.threads_file(), tid)
    }

    fn attach(&self, file: &str, id: u32) -> Result<()> {
        let path = self.file(file);
        match fsio::write_raw(&path, &id.to_string()) {
            Ok(()) => Ok(()),
            Err(e) => Err(self.explain_attach(path, id, e)),
        }
    }

    fn explain_attach(&self, path: PathBuf, id: u32, e: io::Error) -> Error {
        match e.raw_os_error() {
            Some(libc::ENOSPC) if self.version() == CgroupVersion::V1 => {
                Error::CpusetEmpty { path, pid: id }
            }
            Some(libc::EBUSY) if self.version() == CgroupVersion::V2 => {
                Error::NoInternalProcesses { path }
            }
            Some(libc::ESRCH) => Error::NoSuchProcess { path, pid: id },
            _ => Error::KernelRefused {
                path,
                value: id.to_string(),
                source: e,
            },
        }
    }

    /// v2: controllers available to this group (`cgroup.controllers`).
    pub fn available_controllers(&self) -> Result<BTreeSet<Controller>> {
        Ok(self
            .read("cgroup.controllers")?
            .split_whitespace()
            .map(Controller::from_name)
            .collect())
    }

    /// v2: controllers enabled for this group's children (`cgroup.subtree_control`).
    pub fn subtree_control(&self) -> Result<BTreeSet<Controller>> {
        Ok(self
            .read("cgroup.subtree_control")?
            .split_whitespace()
            .map(Controller::from_name)
            .collect())
    }

    /// v2: enable controllers for this group's children. Controllers already enabled are
    /// skipped (nothing is written when all are). EBUSY is explained as the "no internal
    /// processes" rule ([`Error::NoInternalProcesses`]).
    pub fn enable_subtree_controllers(&self, controllers: &[Controller]) -> Result<()> {
        if self.version() != CgroupVersion::V2 {
            return Err(Error::Unsupported {
                setting: "cgroup.subtree_control",
                version: "v1",
                hint: "v1 controllers are bound to a hierarchy at mount time",
            });
        }
        let enabled = self.subtree_control()?;
        let missing: Vec<String> = controllers
            .iter()
            .filter(|c| !c.is_v2_core() && !enabled.contains(c))
            .map(|c| format!("+{}", c.v2_name()))
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        let path = self.file("cgroup.subtree_control");
        let value = missing.join(" ");
        match fsio::write_raw(&path, &value) {
            Ok(()) => Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                Err(Error::NoInternalProcesses { path })
            }
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Err(Error::ControllerUnavailable {
                controller: value,
                detail: format!(
                    "not listed in {}",
                    self.file("cgroup.controllers").display()
                ),
            }),
            Err(source) => Err(Error::KernelRefused {
                path,
                value,
                source,
            }),
        }
    }

    /// v2: create a group and enable `controllers` top-down in the subtree_control of every
    /// ancestor, from the hierarchy root to the new group's parent (as the kernel requires).
    /// Ancestors that already enable them are not written to.
    pub fn create_with_controllers(
        hierarchy: &Hierarchy,
        path: &GroupPath,
        controllers: &[Controller],
    ) -> Result<Group> {
        let g = Group::create(hierarchy, path)?;
        if hierarchy.version == CgroupVersion::V2 && !controllers.is_empty() {
            for prefix in path.ancestor_prefixes() {
                if prefix == path.as_str() {
                    break;
                }
                Group::handle(hierarchy, &GroupPath::from_checked_prefix(prefix))
                    .enable_subtree_controllers(controllers)?;
            }
        }
        Ok(g)
    }

    /// v2: the group's type (`cgroup.type`: `domain`, `threaded`, `domain threaded`,
    /// `domain invalid`).
    pub fn group_type(&self) -> Result<String> {
        Ok(self.read("cgroup.type")?.trim().to_string())
    }

    /// v2: turn the group into a threaded group (`cgroup.type` = `threaded`), so single
    /// threads (vCPUs) can be placed in it and its siblings with [`Group::move_thread`]. Only
    /// threaded-capable controllers (cpu, cpuset, perf_event, pids) act inside a threaded
    /// subtree; memory and io do not.
    pub fn make_threaded(&self) -> Result<()> {
        if self.version() != CgroupVersion::V2 {
            return Err(Error::Unsupported {
                setting: "cgroup.type",
                version: "v1",
                hint: "v1 moves single threads with the tasks file in any group",
            });
        }
        self.write("cgroup.type", "threaded")
    }

    /// v2: does the group or a descendant hold processes (`populated` in `cgroup.events`)?
    /// v1: does the group or a descendant list any process?
    pub fn is_populated(&self) -> Result<bool> {
        match self.version() {
            CgroupVersion::V2 => {
                let ev = crate::stat::parse_flat_keyed(&self.read("cgroup.events")?);
                Ok(ev.get("populated").is_some_and(|v| *v != 0))
            }
            CgroupVersion::V1 => {
                if !self.processes()?.is_empty() {
                    return Ok(true);
                }
                for c in self.walk()? {
                    if !c.processes()?.is_empty() {
                        return Ok(true);
                    }
                }
                Ok(false)
            }
        }
    }

    /// v2: kill every process in the group and its descendants (`cgroup.kill`, Linux 5.14+).
    pub fn kill(&self) -> Result<()> {
        if self.version() != CgroupVersion::V2 || !self.has_file("cgroup.kill") {
            return Err(Error::Unsupported {
                setting: "cgroup.kill",
                version: self.version().as_str(),
                hint: "kill the processes listed in cgroup.procs one by one",
            });
        }
        self.write("cgroup.kill", "1")
    }

    /// Remove the group (see [`RemoveOptions`]). The root group cannot be removed.
    pub fn remove(&self, opts: &RemoveOptions) -> Result<()> {
        if self.path.is_root() {
            return Err(Error::InvalidGroupPath {
                path: String::new(),
                reason: "the root group cannot be removed",
            });
        }
        let dir = self.dir();
        if !dir.exists() {
            return Ok(());
        }
        let children = fsio::subdirs(&dir)?;
        if !children.is_empty() {
            if !opts.recursive {
                return Err(Error::GroupHasChildren {
                    path: dir,
                    children,
                });
            }
            for c in &children {
                self.child(c)?.remove(opts)?;
            }
        }
        // A v2 threaded group refuses to list cgroup.procs (EOPNOTSUPP): it holds threads.
        let (procs, threaded) = match self.processes() {
            Ok(p) => (p, false),
            Err(Error::Io { source, .. }) if source.raw_os_error() == Some(libc::EOPNOTSUPP) => {
                (self.threads()?, true)
            }
            Err(e) => return Err(e),
        };
        if !procs.is_empty() {
            if !opts.move_processes_to_parent {
                return Err(Error::GroupPopulated {
                    path: dir,
                    count: procs.len(),
                });
            }
            if let Some(parent) = self.parent() {
                for pid in procs {
                    let moved = if threaded {
                        parent.move_thread(pid)
                    } else {
                        parent.move_process(pid)
                    };
                    match moved {
                        Ok(()) | Err(Error::NoSuchProcess { .. }) => {}
                        Err(e) => return Err(e),
                    }
                }
            }
        }
        rmdir_with_retry(&dir, opts.busy_timeout)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hierarchy::Cgroups;
    use crate::mountinfo::parse_mountinfo;

    fn fixture_v1_cpuset(tmp: &Path) -> Hierarchy {
        let m = parse_mountinfo("34 31 0:31 / /cg/cpuset rw - cgroup cgroup rw,cpuset\n").unwrap();
        let cg = Cgroups::from_mounts(tmp, &m, None);
        let h = cg.hierarchies()[0].clone();
        fs::create_dir_all(h.dir()).unwrap();
        fs::write(h.dir().join("cpuset.cpus"), "0-3\n").unwrap();
        fs::write(h.dir().join("cpuset.mems"), "0\n").unwrap();
        h
    }

    /// Issue 9 case 8 (fixture half): a new v1 cpuset group is filled from its parent.
    #[test]
    fn case08_cpuset_filled_from_parent_on_fixture() {
        let tmp = tempfile::tempdir().unwrap();
        let h = fixture_v1_cpuset(tmp.path());
        // A fixture mkdir makes no control files; lay out what the kernel creates.
        let a = h.dir().join("a/b");
        fs::create_dir_all(&a).unwrap();
        for d in [h.dir().join("a"), a.clone()] {
            fs::write(d.join("cpuset.cpus"), "\n").unwrap();
            fs::write(d.join("cpuset.mems"), "").unwrap();
        }
        let ga = Group::open(&h, &GroupPath::new("a").unwrap()).unwrap();
        let gb = Group::open(&h, &GroupPath::new("a/b").unwrap()).unwrap();
        gb.fill_cpuset_from_parent().unwrap();
        // The parent is still empty, so nothing to copy yet.
        assert_eq!(gb.read("cpuset.cpus").unwrap(), "\n");
        ga.fill_cpuset_from_parent().unwrap();
        gb.fill_cpuset_from_parent().unwrap();
        assert_eq!(gb.read("cpuset.cpus").unwrap(), "0-3");
        assert_eq!(gb.read("cpuset.mems").unwrap(), "0");
        assert_eq!(ga.read("cpuset.mems").unwrap(), "0");
        // Existing values are kept.
        fs::write(a.join("cpuset.cpus"), "1").unwrap();
        gb.fill_cpuset_from_parent().unwrap();
        assert_eq!(gb.read("cpuset.cpus").unwrap(), "1");
        // Creation of a group without control files (fixture) does not fail.
        Group::create(&h, &GroupPath::new("c/d").unwrap()).unwrap();
    }

    /// Issue 9 case 8 (error half): ENOSPC maps to an explanation.
    #[test]
    fn case08_enospc_is_explained() {
        let tmp = tempfile::tempdir().unwrap();
        let h = fixture_v1_cpuset(tmp.path());
        let g = Group::handle(&h, &GroupPath::new("x").unwrap());
        let e = g.explain_attach(
            g.file("tasks"),
            42,
            io::Error::from_raw_os_error(libc::ENOSPC),
        );
        assert!(matches!(e, Error::CpusetEmpty { pid: 42, .. }));
        assert!(
            e.to_string()
                .contains("cpuset.cpus or cpuset.mems is empty")
        );
    }

    /// Issue 9 case 9: EBUSY on a v2 procs write names the "no internal processes" rule.
    #[test]
    fn case09_ebusy_names_no_internal_processes_rule() {
        let tmp = tempfile::tempdir().unwrap();
        let m = parse_mountinfo("1 2 0:3 / /cg rw - cgroup2 none rw\n").unwrap();
        let cg = Cgroups::from_mounts(tmp.path(), &m, Some("cpu io"));
        let g = Group::handle(cg.v2().unwrap(), &GroupPath::new("vm").unwrap());
        let e = g.explain_attach(
            g.file("cgroup.procs"),
            7,
            io::Error::from_raw_os_error(libc::EBUSY),
        );
        assert!(matches!(e, Error::NoInternalProcesses { .. }));
        assert!(e.to_string().contains("\"no internal processes\" rule"));
        // v1 EBUSY stays a plain refusal with file and value.
        let h1 = fixture_v1_cpuset(tmp.path());
        let g1 = Group::handle(&h1, &GroupPath::new("vm").unwrap());
        let e1 = g1.explain_attach(
            g1.file("tasks"),
            7,
            io::Error::from_raw_os_error(libc::EBUSY),
        );
        assert!(matches!(e1, Error::KernelRefused { ref value, .. } if value == "7"));
    }

    /// Issue 9 case 10 (fixture half): removing a tree removes children first; a busy
    /// directory is retried within the bound.
    #[test]
    fn case10_tree_removed_leaf_first_and_bounded_retry() {
        let tmp = tempfile::tempdir().unwrap();
        let h = fixture_v1_cpuset(tmp.path());
        for d in ["t/a/b", "t/c"] {
            fs::create_dir_all(h.dir().join(d)).unwrap();
        }
        for d in ["t", "t/a", "t/a/b", "t/c"] {
            fs::write(h.dir().join(d).join("cgroup.procs"), "").unwrap();
        }
        let t = Group::open(&h, &GroupPath::new("t").unwrap()).unwrap();
        assert_eq!(
            t.walk()
                .unwrap()
                .iter()
                .map(|g| g.path().as_str().to_string())
                .collect::<Vec<_>>(),
            ["t/a", "t/a/b", "t/c"]
        );
        // Not recursive: refused with the children named.
        match t.remove(&RemoveOptions::default()) {
            Err(Error::GroupHasChildren { children, .. }) => assert_eq!(children, ["a", "c"]),
            other => panic!("{other:?}"),
        }
        // Populated: refused with a count. (On a fixture the control files are plain files,
        // so rmdir of a non-empty directory fails with ENOTEMPTY rather than EBUSY; that is
        // reported as an I/O error, not retried.)
        fs::write(h.dir().join("t/c/cgroup.procs"), "12\n13\n").unwrap();
        let c = Group::open(&h, &GroupPath::new("t/c").unwrap()).unwrap();
        assert!(matches!(
            c.remove(&RemoveOptions::default()),
            Err(Error::GroupPopulated { count: 2, .. })
        ));
        // Bounded retry: a directory that cannot be removed (ENOTEMPTY) fails at once and a
        // missing one counts as removed.
        let start = Instant::now();
        assert!(rmdir_with_retry(&h.dir().join("t"), Duration::from_millis(200)).is_err());
        assert!(start.elapsed() < Duration::from_millis(150));
        assert!(rmdir_with_retry(&h.dir().join("nope"), Duration::from_millis(10)).is_ok());
    }

    /// Issue 9 case 10, the retry itself: a directory that answers EBUSY (here: a mount
    /// point, as root) is retried until it clears, and given up after the bound.
    #[test]
    fn case10_ebusy_retried_until_clear_then_bounded() {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("skipping: mounting a tmpfs to provoke EBUSY needs root");
            return;
        }
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("busy");
        fs::create_dir(&dir).unwrap();
        let mount = |d: &Path| {
            nix::mount::mount(
                Some("none"),
                d,
                Some("tmpfs"),
                nix::mount::MsFlags::empty(),
                None::<&str>,
            )
            .unwrap()
        };
        mount(&dir);
        let start = Instant::now();
        match rmdir_with_retry(&dir, Duration::from_millis(150)) {
            Err(Error::RemoveBusy { waited, .. }) => assert!(waited >= Duration::from_millis(150)),
            other => panic!("{other:?}"),
        }
        assert!(start.elapsed() < Duration::from_secs(1));

        // Busy for ~100 ms, then clear: removal succeeds within the bound.
        let d2 = dir.clone();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            nix::mount::umount2(&d2, nix::mount::MntFlags::MNT_DETACH).unwrap();
        });
        rmdir_with_retry(&dir, Duration::from_secs(5)).unwrap();
        t.join().unwrap();
        assert!(!dir.exists());
    }

    #[test]
    fn control_file_names_are_checked() {
        let tmp = tempfile::tempdir().unwrap();
        let h = fixture_v1_cpuset(tmp.path());
        let g = Group::root(&h);
        assert!(g.read("../x").is_err());
        assert!(g.write("a/b", "1").is_err());
        assert!(g.read("").is_err());
        assert!(g.remove(&RemoveOptions::default()).is_err());
    }
}

//! Operations: one logical group spread over every hierarchy that holds the controllers a
//! guest needs (on a v1 or hybrid host each controller may be its own hierarchy).

use crate::accounting::Usage;
use crate::error::{Error, Result};
use crate::group::{Group, RemoveOptions};
use crate::hierarchy::{CgroupVersion, Cgroups, Controller, Hierarchy};
use crate::path::GroupPath;

/// The same group path in every hierarchy that holds one of the requested controllers.
///
/// ```no_run
/// use kvmsec_cgroup::{Cgroups, Controller, CpuWeight, GroupPath, GroupSet, RemoveOptions};
/// let host = Cgroups::discover()?;
/// let vm = GroupSet::create(
///     &host,
///     &GroupPath::new("machine/high_prio")?,
///     &[Controller::Cpu, Controller::Io, Controller::Memory],
/// )?;
/// vm.group(&Controller::Cpu).unwrap().set_cpu_weight(CpuWeight::new(1000)?)?;
/// vm.move_process(4242)?;
/// vm.remove(&RemoveOptions { recursive: true, ..Default::default() })?;
/// # Ok::<(), kvmsec_cgroup::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupSet {
    path: GroupPath,
    groups: Vec<(Vec<Controller>, Group)>,
}

fn plan(
    cgroups: &Cgroups,
    controllers: &[Controller],
) -> Result<Vec<(Hierarchy, Vec<Controller>)>> {
    let mut out: Vec<(Hierarchy, Vec<Controller>)> = Vec::new();
    for c in controllers {
        let h = cgroups
            .hierarchy_for(c)
            .ok_or_else(|| Error::ControllerUnavailable {
                controller: c.to_string(),
                detail: "not mounted in any v1 hierarchy nor listed by the v2 root".into(),
            })?;
        match out.iter_mut().find(|(x, _)| x.mount_point == h.mount_point) {
            Some((_, cs)) => cs.push(c.clone()),
            None => out.push((h.clone(), vec![c.clone()])),
        }
    }
    Ok(out)
}

impl GroupSet {
    /// Create `path` (with parents) in each hierarchy holding one of `controllers`. In the
    /// v2 hierarchy the controllers are enabled top-down in each ancestor's
    /// `cgroup.subtree_control` (only where not yet enabled). Core v2 features (freezer,
    /// cpuacct) need no enabling.
    pub fn create(cgroups: &Cgroups, path: &GroupPath, controllers: &[Controller]) -> Result<Self> {
        let mut groups = Vec::new();
        for (h, cs) in plan(cgroups, controllers)? {
            let g = match h.version {
                CgroupVersion::V2 => Group::create_with_controllers(&h, path, &cs)?,
                CgroupVersion::V1 => Group::create(&h, path)?,
            };
            groups.push((cs, g));
        }
        Ok(GroupSet {
            path: path.clone(),
            groups,
        })
    }

    /// Open an existing group set.
    pub fn open(cgroups: &Cgroups, path: &GroupPath, controllers: &[Controller]) -> Result<Self> {
        let mut groups = Vec::new();
        for (h, cs) in plan(cgroups, controllers)? {
            groups.push((cs, Group::open(&h, path)?));
        }
        Ok(GroupSet {
            path: path.clone(),
            groups,
        })
    }

    /// The group path.
    pub fn path(&self) -> &GroupPath {
        &self.path
    }

    /// The groups, one per hierarchy.
    pub fn groups(&self) -> impl Iterator<Item = &Group> {
        self.groups.iter().map(|(_, g)| g)
    }

    /// The group that carries `controller`.
    pub fn group(&self, controller: &Controller) -> Option<&Group> {
        self.groups
            .iter()
            .find(|(cs, _)| cs.contains(controller))
            .map(|(_, g)| g)
    }

    /// Move a process (all its threads) into every group of the set.
    pub fn move_process(&self, pid: u32) -> Result<()> {
        self.groups().try_for_each(|g| g.move_process(pid))
    }

    /// Move one thread into every group of the set.
    pub fn move_thread(&self, tid: u32) -> Result<()> {
        self.groups().try_for_each(|g| g.move_thread(tid))
    }

    /// Processes in any group of the set, sorted, without duplicates.
    pub fn processes(&self) -> Result<Vec<u32>> {
        let mut all = Vec::new();
        for g in self.groups() {
            all.extend(g.processes()?);
        }
        all.sort_unstable();
        all.dedup();
        Ok(all)
    }

    /// Threads in any group of the set, sorted, without duplicates.
    pub fn threads(&self) -> Result<Vec<u32>> {
        let mut all = Vec::new();
        for g in self.groups() {
            all.extend(g.threads()?);
        }
        all.sort_unstable();
        all.dedup();
        Ok(all)
    }

    /// Remove the group from every hierarchy; every removal is attempted and the first
    /// error is returned.
    ///
    /// Only the group itself is removed: parents that [`create`](Self::create) made on the
    /// way (for `machine/vm1`, the `machine` group) stay, because other groups may live in
    /// them. Remove a parent you own the same way, by opening its [`GroupPath`], once its
    /// last child is gone.
    pub fn remove(&self, opts: &RemoveOptions) -> Result<()> {
        let mut first = None;
        for g in self.groups() {
            if let Err(e) = g.remove(opts) {
                first.get_or_insert(e);
            }
        }
        first.map_or(Ok(()), Err)
    }

    /// A usage snapshot: CPU time from the cpuacct (v1) or v2 group, memory and I/O from the
    /// groups carrying them.
    pub fn usage(&self) -> Result<Usage> {
        let mut u = Usage::default();
        for c in [
            Controller::Cpuacct,
            Controller::Cpu,
            Controller::Memory,
            Controller::Io,
        ] {
            if let Some(g) = self.group(&c) {
                u = u.merge(Usage::of_group(g)?);
            }
        }
        Ok(u)
    }
}

//! Host access: which namespaces a process shares with the host.
//!
//! cgroup v1 once had an `ns` subsystem that put a process into a new group whenever it
//! created namespaces. It was deprecated and removed from the kernel in 2011; namespaces
//! (`clone(2)`, `unshare(2)`, `setns(2)`, visible as `/proc/<pid>/ns/*`) carry isolation
//! now, and the cgroup namespace (Linux 4.6) gives a process its own view of the cgroup tree.
//! [`namespaces_at`] reports, for a guest process, which namespaces are its own.
//!
//! # References
//! - `man 7 namespaces`, `man 7 cgroup_namespaces`.

use std::path::Path;

use crate::error::Result;
use crate::fsio;

/// One namespace of a process.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct NamespaceEntry {
    /// Kind, as the file name in `/proc/<pid>/ns` (`net`, `mnt`, `pid_for_children`, ...).
    pub kind: String,
    /// Identity, as the link says (`net:[4026531840]`).
    pub id: String,
    /// Same namespace as the host's init (pid 1)? `None` when pid 1's link could not be
    /// read (not root, or another pid namespace).
    pub shared_with_host: Option<bool>,
}

/// The namespaces of one process.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct NamespaceReport {
    /// The process.
    pub pid: u32,
    /// One entry per namespace kind, sorted by kind.
    pub entries: Vec<NamespaceEntry>,
}

impl NamespaceReport {
    /// Kinds the process does not share with the host.
    pub fn own(&self) -> Vec<&str> {
        self.entries
            .iter()
            .filter(|e| e.shared_with_host == Some(false))
            .map(|e| e.kind.as_str())
            .collect()
    }

    /// Kinds shared with the host.
    pub fn shared(&self) -> Vec<&str> {
        self.entries
            .iter()
            .filter(|e| e.shared_with_host == Some(true))
            .map(|e| e.kind.as_str())
            .collect()
    }
}

/// Compare `root/proc/<pid>/ns/*` with the host's init, `root/proc/1/ns/*`.
///
/// Reading pid 1's links needs `CAP_SYS_PTRACE` over it; without it every entry's
/// [`NamespaceEntry::shared_with_host`] is `None`, and [`namespaces_relative_at`] with the
/// manager's own pid is the usable comparison.
pub fn namespaces_at(root: &Path, pid: u32) -> Result<NamespaceReport> {
    namespaces_relative_at(root, pid, 1)
}

/// Compare `root/proc/<pid>/ns/*` with the namespaces of `reference` (for example the
/// hypervisor manager's own pid); `shared_with_host` then means "shared with `reference`".
pub fn namespaces_relative_at(root: &Path, pid: u32, reference: u32) -> Result<NamespaceReport> {
    let dir = root.join(format!("proc/{pid}/ns"));
    let host = root.join(format!("proc/{reference}/ns"));
    let rd = std::fs::read_dir(&dir).map_err(|e| fsio::io_err("list", &dir, e))?;
    let mut entries = Vec::new();
    for e in rd {
        let e = e.map_err(|err| fsio::io_err("list", &dir, err))?;
        let kind = e.file_name().to_string_lossy().into_owned();
        let link = e.path();
        let id = std::fs::read_link(&link)
            .map_err(|err| fsio::io_err("readlink", &link, err))?
            .to_string_lossy()
            .into_owned();
        let shared_with_host = std::fs::read_link(host.join(&kind))
            .ok()
            .map(|h| h.to_string_lossy() == id);
        entries.push(NamespaceEntry {
            kind,
            id,
            shared_with_host,
        });
    }
    entries.sort_by(|a, b| a.kind.cmp(&b.kind));
    Ok(NamespaceReport { pid, entries })
}

/// [`namespaces_relative_at`] on the live host.
pub fn namespaces_relative(pid: u32, reference: u32) -> Result<NamespaceReport> {
    namespaces_relative_at(Path::new("/"), pid, reference)
}

/// [`namespaces_at`] on the live host.
pub fn namespaces(pid: u32) -> Result<NamespaceReport> {
    namespaces_at(Path::new("/"), pid)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn fixture_shared_and_own() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("proc");
        std::fs::create_dir_all(p.join("1/ns")).unwrap();
        std::fs::create_dir_all(p.join("42/ns")).unwrap();
        for (k, host, guest) in [
            ("net", "net:[1]", "net:[9]"),
            ("mnt", "mnt:[2]", "mnt:[2]"),
            ("cgroup", "cgroup:[3]", "cgroup:[8]"),
        ] {
            symlink(host, p.join("1/ns").join(k)).unwrap();
            symlink(guest, p.join("42/ns").join(k)).unwrap();
        }
        symlink("time:[5]", p.join("42/ns/time")).unwrap();
        let r = namespaces_at(tmp.path(), 42).unwrap();
        assert_eq!(r.own(), ["cgroup", "net"]);
        assert_eq!(r.shared(), ["mnt"]);
        assert_eq!(
            r.entries
                .iter()
                .find(|e| e.kind == "time")
                .unwrap()
                .shared_with_host,
            None
        );
    }
}

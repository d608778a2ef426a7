//! Test helpers: fake host trees under a temporary root, temporary mounts, immutable files.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use tempfile::TempDir;

/// A fake host root (`proc`, `sys`, `etc` ...) in a temporary directory.
pub struct FakeHost {
    dir: TempDir,
}

pub const SELINUXFS_LINE: &str =
    "22 26 0:21 / /sys/fs/selinux rw,nosuid,noexec,relatime shared:7 - selinuxfs selinuxfs rw\n";
pub const SELINUXFS_RO_LINE: &str =
    "22 26 0:21 / /sys/fs/selinux ro,nosuid,noexec,relatime shared:7 - selinuxfs selinuxfs rw\n";
pub const OTHER_MOUNTS: &str = "21 1 252:1 / / rw,relatime shared:1 - ext4 /dev/vda rw\n\
    23 21 0:22 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw\n";

impl FakeHost {
    pub fn new() -> Self {
        FakeHost {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel.trim_start_matches('/'))
    }

    pub fn write(&self, rel: &str, content: impl AsRef<[u8]>) -> PathBuf {
        let p = self.path(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, content).unwrap();
        p
    }

    pub fn read(&self, rel: &str) -> Vec<u8> {
        fs::read(self.path(rel)).unwrap()
    }

    /// A host whose selinuxfs is mounted (read-only or not) with `enforce` holding `enforce`.
    pub fn with_selinuxfs(enforce: &str, read_only: bool) -> Self {
        let h = FakeHost::new();
        let line = if read_only {
            SELINUXFS_RO_LINE
        } else {
            SELINUXFS_LINE
        };
        h.write("proc/self/mountinfo", format!("{OTHER_MOUNTS}{line}"));
        h.write(
            "proc/filesystems",
            "nodev\tproc\nnodev\tselinuxfs\n\text4\n",
        );
        h.write("proc/self/attr/current", "system_u:system_r:init_t:s0\0");
        h.write("sys/fs/selinux/enforce", enforce);
        h.write("sys/fs/selinux/policyvers", "33");
        h.write("sys/fs/selinux/mls", "1");
        h.write("sys/fs/selinux/deny_unknown", "0");
        h.write("sys/fs/selinux/reject_unknown", "0");
        h.write("sys/fs/selinux/context", "");
        h
    }

    /// A host without selinuxfs mounted; `in_kernel` says whether the kernel offers it.
    pub fn without_selinuxfs(in_kernel: bool) -> Self {
        let h = FakeHost::new();
        h.write("proc/self/mountinfo", OTHER_MOUNTS);
        let fs = if in_kernel {
            "nodev\tproc\nnodev\tselinuxfs\n\text4\n"
        } else {
            "nodev\tproc\n\text4\n"
        };
        h.write("proc/filesystems", fs);
        h
    }
}

/// A filesystem mounted by a test under a temporary directory; unmounted on drop.
pub struct TempMount {
    dir: TempDir,
}

impl TempMount {
    /// Mount `fstype` with `options`; `None` (after saying why) when mounting is impossible.
    pub fn new(fstype: &str, options: &str) -> Option<Self> {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new("mount")
            .args(["-t", fstype, "-o", options, "kvmsec-test"])
            .arg(dir.path())
            .output()
            .ok()?;
        if !out.status.success() {
            eprintln!(
                "skipping: cannot mount {fstype}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            return None;
        }
        Some(TempMount { dir })
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn remount(&self, options: &str) {
        let ok = Command::new("mount")
            .args(["-o", &format!("remount,{options}")])
            .arg(self.dir.path())
            .status()
            .unwrap()
            .success();
        assert!(ok, "remount {options}");
    }
}

impl Drop for TempMount {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// Makes a file immutable (`chattr +i`) until dropped: every change fails with `EPERM`,
/// even for root.
pub struct Immutable(PathBuf);

impl Immutable {
    pub fn new(path: &Path) -> Option<Self> {
        let ok = Command::new("chattr")
            .arg("+i")
            .arg(path)
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if !ok {
            eprintln!("skipping: chattr +i {} failed", path.display());
            return None;
        }
        Some(Immutable(path.to_owned()))
    }
}

impl Drop for Immutable {
    fn drop(&mut self) {
        let _ = Command::new("chattr").arg("-i").arg(&self.0).status();
    }
}

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

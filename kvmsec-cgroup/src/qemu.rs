//! Host access: finding QEMU guests by their `-name`, with every thread, ready to be moved
//! into groups.

use std::path::Path;

use crate::error::Result;
use crate::fsio;

/// A running QEMU process.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct QemuGuest {
    /// Process id.
    pub pid: u32,
    /// Guest name from `-name`.
    pub name: String,
    /// Every thread id (`/proc/<pid>/task`), including the main thread.
    pub threads: Vec<u32>,
}

/// Is `argv0` a QEMU system emulator (`qemu-system-x86_64`, `/usr/libexec/qemu-kvm`,
/// `qemu-kvm`)?
pub fn is_qemu_command(argv0: &str) -> bool {
    let base = argv0.rsplit('/').next().unwrap_or(argv0);
    base.starts_with("qemu-system-") || base == "qemu-kvm" || base == "kvm"
}

/// Split a QEMU option value at single commas; `,,` is a literal comma.
fn split_qemu_opts(v: &str) -> Vec<String> {
    let mut parts = vec![String::new()];
    let mut chars = v.chars().peekable();
    while let Some(c) = chars.next() {
        if c == ',' {
            if chars.peek() == Some(&',') {
                chars.next();
                if let Some(last) = parts.last_mut() {
                    last.push(',');
                }
            } else {
                parts.push(String::new());
            }
        } else if let Some(last) = parts.last_mut() {
            last.push(c);
        }
    }
    parts
}

/// The guest name from a `-name` value: `NAME`, `guest=NAME,debug-threads=on`,
/// `NAME,process=...`.
///
/// ```
/// use kvmsec_cgroup::qemu::guest_name_from_option;
/// assert_eq!(guest_name_from_option("high_prio").as_deref(), Some("high_prio"));
/// assert_eq!(guest_name_from_option("guest=vm1,debug-threads=on").as_deref(), Some("vm1"));
/// assert_eq!(guest_name_from_option("vm2,process=qemu:vm2").as_deref(), Some("vm2"));
/// assert_eq!(guest_name_from_option("guest=a,,b").as_deref(), Some("a,b"));
/// ```
pub fn guest_name_from_option(value: &str) -> Option<String> {
    let parts = split_qemu_opts(value);
    for (i, p) in parts.iter().enumerate() {
        if let Some(n) = p.strip_prefix("guest=") {
            return Some(n.to_string());
        }
        let is_key = ["process=", "debug-threads="]
            .iter()
            .any(|k| p.starts_with(k));
        if i == 0 && !is_key && !p.is_empty() {
            return Some(p.clone());
        }
    }
    None
}

/// The guest name of a QEMU command line (`None` when it is not QEMU or has no `-name`).
pub fn guest_name_from_cmdline(args: &[String]) -> Option<String> {
    let first = args.first()?;
    if !is_qemu_command(first) {
        return None;
    }
    let mut it = args.iter().skip(1);
    while let Some(a) = it.next() {
        if a == "-name" || a == "--name" {
            return guest_name_from_option(it.next()?);
        }
    }
    None
}

fn numeric_entries(dir: &Path) -> Vec<u32> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut v: Vec<u32> = rd
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse().ok()))
        .collect();
    v.sort_unstable();
    v
}

/// Every QEMU guest visible under `root/proc`. Processes that vanish or cannot be read
/// during the scan are skipped.
pub fn list_qemu_guests_at(root: &Path) -> Result<Vec<QemuGuest>> {
    let proc_dir = root.join("proc");
    std::fs::metadata(&proc_dir).map_err(|e| fsio::io_err("list", &proc_dir, e))?;
    let mut out = Vec::new();
    for pid in numeric_entries(&proc_dir) {
        let Ok(raw) = fsio::read_bytes(&proc_dir.join(format!("{pid}/cmdline"))) else {
            continue;
        };
        let args: Vec<String> = raw
            .split(|b| *b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        if let Some(name) = guest_name_from_cmdline(&args) {
            let threads = numeric_entries(&proc_dir.join(format!("{pid}/task")));
            out.push(QemuGuest { pid, name, threads });
        }
    }
    Ok(out)
}

/// QEMU guests named `name` under `root/proc`; matching as in [`find_qemu_guests`].
pub fn find_qemu_guests_at(root: &Path, name: &str) -> Result<Vec<QemuGuest>> {
    Ok(list_qemu_guests_at(root)?
        .into_iter()
        .filter(|g| g.name == name)
        .collect())
}

/// QEMU guests named `name` on the live host.
///
/// A process matches when the basename of its `argv[0]` is `qemu-system-*`, `qemu-kvm` or
/// `kvm` (see [`is_qemu_command`]) and its command line has `-name NAME`,
/// `-name guest=NAME,...` or `-name NAME,process=...` (see [`guest_name_from_option`]). A
/// wrapper that replaces `argv[0]` (a shell script, an interpreter shim) hides the guest.
/// Processes that exit during the scan are skipped.
pub fn find_qemu_guests(name: &str) -> Result<Vec<QemuGuest>> {
    find_qemu_guests_at(Path::new("/"), name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &[&str]) -> Vec<String> {
        s.iter().map(|a| a.to_string()).collect()
    }

    #[test]
    fn cmdlines() {
        assert_eq!(
            guest_name_from_cmdline(&args(&[
                "qemu-system-x86_64",
                "-m",
                "1G",
                "-name",
                "high_prio"
            ])),
            Some("high_prio".into())
        );
        assert_eq!(
            guest_name_from_cmdline(&args(&[
                "/usr/libexec/qemu-kvm",
                "-name",
                "guest=vm1,debug-threads=on"
            ])),
            Some("vm1".into())
        );
        assert_eq!(
            guest_name_from_cmdline(&args(&["qemu-kvm", "--name", "vm2,process=qemu-vm2"])),
            Some("vm2".into())
        );
        assert_eq!(
            guest_name_from_cmdline(&args(&[
                "qemu-system-aarch64",
                "-name",
                "debug-threads=on,guest=x"
            ])),
            Some("x".into())
        );
        assert_eq!(
            guest_name_from_cmdline(&args(&["bash", "-name", "x"])),
            None
        );
        assert_eq!(
            guest_name_from_cmdline(&args(&["qemu-system-x86_64", "-name"])),
            None
        );
        assert_eq!(guest_name_from_cmdline(&args(&[])), None);
        assert_eq!(guest_name_from_option("process=p"), None);
    }

    #[test]
    fn scan_fixture_proc() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("proc");
        for (pid, cmd, tids) in [
            (
                100u32,
                "qemu-system-x86_64\0-name\0guest=high_prio,debug-threads=on\0",
                vec![100, 101, 102],
            ),
            (200, "qemu-system-x86_64\0-name\0low_prio\0", vec![200]),
            (300, "sleep\0-name\0high_prio\0", vec![300]),
        ] {
            std::fs::create_dir_all(p.join(format!("{pid}/task"))).unwrap();
            std::fs::write(p.join(format!("{pid}/cmdline")), cmd).unwrap();
            for t in tids {
                std::fs::create_dir_all(p.join(format!("{pid}/task/{t}"))).unwrap();
            }
        }
        std::fs::create_dir_all(p.join("self")).unwrap();
        let g = find_qemu_guests_at(tmp.path(), "high_prio").unwrap();
        assert_eq!(
            g,
            vec![QemuGuest {
                pid: 100,
                name: "high_prio".into(),
                threads: vec![100, 101, 102]
            }]
        );
        assert_eq!(list_qemu_guests_at(tmp.path()).unwrap().len(), 2);
    }

    proptest::proptest! {
        #[test]
        fn option_never_panics(s in "\\PC*") {
            let _ = guest_name_from_option(&s);
        }
    }
}

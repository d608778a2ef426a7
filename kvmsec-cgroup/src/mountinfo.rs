//! Format: `/proc/<pid>/mountinfo` and `/proc/mounts` lines.
//!
//! # References
//! - Linux `Documentation/filesystems/proc.rst`, section `/proc/<pid>/mountinfo`.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::PathBuf;

use crate::devnum::DeviceNumber;
use crate::error::{Result, parse_err};

/// One mount, from a mountinfo line (or a `/proc/mounts` line, which lacks ids, the device
/// number, the root and the optional fields).
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Mount {
    /// Mount id (`None` for `/proc/mounts` lines).
    pub id: Option<u32>,
    /// Parent mount id.
    pub parent_id: Option<u32>,
    /// `st_dev` of the mounted filesystem; two mounts of one cgroup hierarchy share it.
    pub device: Option<DeviceNumber>,
    /// The directory of the filesystem that forms the root of this mount (`/` unless it is a
    /// bind mount or seen from inside a cgroup namespace).
    pub root: PathBuf,
    /// Where it is mounted, unescaped.
    pub mount_point: PathBuf,
    /// Per-mount options (`rw`, `relatime`, ...).
    pub mount_options: Vec<String>,
    /// Optional fields (`shared:409`, `master:1`, ...), zero or more.
    pub optional_fields: Vec<String>,
    /// Filesystem type (`cgroup`, `cgroup2`, `tmpfs`, ...).
    pub fs_type: String,
    /// Mount source; arbitrary for cgroupfs (`cgroup`, `none`, `memory`, ...).
    pub source: String,
    /// Superblock options; for v1 cgroupfs these name the controllers.
    pub super_options: Vec<String>,
}

/// Undo the kernel's octal escapes (`\040` space, `\011` tab, `\012` newline, `\134`
/// backslash; any `\NNN`). A backslash not followed by three octal digits stays as it is.
///
/// ```
/// use kvmsec_cgroup::mountinfo::unescape;
/// assert_eq!(unescape(r"/mnt/my\040dir"), "/mnt/my dir");
/// assert_eq!(unescape(r"a\134b\011c"), "a\\b\tc");
/// ```
pub fn unescape(field: &str) -> OsString {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'\\' && i + 3 < bytes.len() {
            let digits = &bytes[i + 1..i + 4];
            if digits.iter().all(|d| (b'0'..=b'7').contains(d)) {
                let v = u32::from(digits[0] - b'0') * 64
                    + u32::from(digits[1] - b'0') * 8
                    + u32::from(digits[2] - b'0');
                if let Ok(byte) = u8::try_from(v) {
                    out.push(byte);
                    i += 4;
                    continue;
                }
            }
        }
        out.push(b);
        i += 1;
    }
    OsString::from_vec(out)
}

/// [`unescape`] into a `String` (invalid UTF-8 replaced), copying fields without a
/// backslash directly: almost every field, and the common case worth one allocation.
fn unescape_string(field: &str) -> String {
    if field.contains('\\') {
        unescape(field).to_string_lossy().into_owned()
    } else {
        field.to_owned()
    }
}

/// [`unescape`] into a path, with the same fast path as [`unescape_string`].
fn unescape_path(field: &str) -> PathBuf {
    if field.contains('\\') {
        PathBuf::from(unescape(field))
    } else {
        PathBuf::from(field)
    }
}

fn split_options(s: &str) -> Vec<String> {
    s.split(',')
        .filter(|o| !o.is_empty())
        .map(unescape_string)
        .collect()
}

/// Parse one mountinfo line.
///
/// The optional fields end at the lone `-` field, whatever their number; fields after it are
/// the filesystem type, the source and the superblock options (which may contain spaces).
///
/// ```
/// use kvmsec_cgroup::mountinfo::parse_mountinfo_line;
/// let m = parse_mountinfo_line(
///     "32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw shared:9 - cgroup cgroup rw,cpuacct,cpu",
/// )?;
/// assert_eq!(m.fs_type, "cgroup");
/// assert_eq!(m.mount_point.to_str(), Some("/sys/fs/cgroup/cpu,cpuacct"));
/// assert_eq!(m.super_options, ["rw", "cpuacct", "cpu"]);
/// # Ok::<(), kvmsec_cgroup::Error>(())
/// ```
pub fn parse_mountinfo_line(line: &str) -> Result<Mount> {
    const WHAT: &str = "mountinfo line";
    // The kernel writes exactly one space between fields. The lone `-` ends the optional
    // fields; after it come exactly the filesystem type, the source (which may be EMPTY,
    // giving two spaces in a row) and the super options.
    let (before, after) = if let Some(rest) = line.strip_prefix("- ") {
        ("", rest)
    } else {
        line.split_once(" - ")
            .ok_or_else(|| parse_err(WHAT, line, "no lone '-' separator"))?
    };
    let fields: Vec<&str> = before.split(' ').collect();
    if fields.len() < 6 {
        return Err(parse_err(
            WHAT,
            line,
            "fewer than six fields before the '-' separator",
        ));
    }
    if fields.iter().any(|f| f.is_empty()) {
        return Err(parse_err(
            WHAT,
            line,
            "empty field (two spaces in a row) before the '-' separator",
        ));
    }
    let mut after_fields = after.splitn(3, ' ');
    let (Some(fs_type), Some(source)) = (after_fields.next(), after_fields.next()) else {
        return Err(parse_err(
            WHAT,
            line,
            "missing filesystem type or source after '-'",
        ));
    };
    if fs_type.is_empty() {
        return Err(parse_err(WHAT, line, "empty filesystem type after '-'"));
    }
    let super_options = after_fields.next().unwrap_or("");
    let num = |s: &str, name: &str| {
        s.parse::<u32>()
            .map_err(|_| parse_err(WHAT, line, format!("{name} is not a number")))
    };
    let id = num(fields[0], "mount id")?;
    let parent_id = num(fields[1], "parent id")?;
    let device: DeviceNumber = fields[2]
        .parse()
        .map_err(|_| parse_err(WHAT, line, "field 3 is not MAJOR:MINOR"))?;
    Ok(Mount {
        id: Some(id),
        parent_id: Some(parent_id),
        device: Some(device),
        root: unescape_path(fields[3]),
        mount_point: unescape_path(fields[4]),
        mount_options: split_options(fields[5]),
        optional_fields: fields[6..].iter().map(|s| s.to_string()).collect(),
        fs_type: unescape_string(fs_type),
        source: unescape_string(source),
        super_options: split_options(super_options),
    })
}

/// Parse a whole mountinfo file. Blank lines are ignored; the first malformed line is an
/// error naming it.
pub fn parse_mountinfo(text: &str) -> Result<Vec<Mount>> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(parse_mountinfo_line)
        .collect()
}

/// Parse one `/proc/mounts` (fstab-format) line: `source mountpoint fstype options 0 0`.
///
/// The result has no ids, device number or optional fields, and its root is `/`.
pub fn parse_mounts_line(line: &str) -> Result<Mount> {
    // Fields are separated by exactly one space; the source (first field) may be empty, so
    // the line can start with a space. The other fields are never empty.
    let fields: Vec<&str> = line.split(' ').collect();
    if fields.len() < 4 {
        return Err(parse_err(
            "mounts line",
            line,
            "expected: source mountpoint fstype options [dump pass]",
        ));
    }
    if fields[1..].iter().any(|f| f.is_empty()) {
        return Err(parse_err(
            "mounts line",
            line,
            "empty field (two spaces in a row) after the source",
        ));
    }
    let opts = split_options(fields[3]);
    Ok(Mount {
        id: None,
        parent_id: None,
        device: None,
        root: PathBuf::from("/"),
        mount_point: unescape_path(fields[1]),
        mount_options: opts.clone(),
        optional_fields: Vec::new(),
        fs_type: unescape_string(fields[2]),
        source: unescape_string(fields[0]),
        super_options: opts,
    })
}

/// Parse a whole `/proc/mounts` file.
pub fn parse_mounts(text: &str) -> Result<Vec<Mount>> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(parse_mounts_line)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// Issue 9 case 1: zero and two optional fields; the lone `-` ends them.
    #[test]
    fn case01_optional_fields_zero_and_two() {
        let none = parse_mountinfo_line(
            "32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu",
        )
        .unwrap();
        assert!(none.optional_fields.is_empty());
        assert_eq!(none.fs_type, "cgroup");
        assert_eq!(none.super_options, ["rw", "cpu"]);
        assert_eq!(none.device, Some(DeviceNumber::new(0, 29)));

        let two = parse_mountinfo_line(
            "32 31 0:29 / /sys/fs/cgroup/memory rw,nosuid shared:409 master:1 - cgroup cgroup rw,memory",
        )
        .unwrap();
        assert_eq!(two.optional_fields, ["shared:409", "master:1"]);
        assert_eq!(two.mount_point, Path::new("/sys/fs/cgroup/memory"));
        assert_eq!(two.mount_options, ["rw", "nosuid"]);
        assert_eq!(two.source, "cgroup");
        assert_eq!(two.super_options, ["rw", "memory"]);

        // Many optional fields, including one that looks like a type name.
        let many = parse_mountinfo_line(
            "1 2 0:3 / /x rw shared:1 master:2 propagate_from:3 unbindable cgroup - cgroup2 none rw",
        )
        .unwrap();
        assert_eq!(many.optional_fields.len(), 5);
        assert_eq!(many.fs_type, "cgroup2");
        assert_eq!(many.source, "none");

        assert!(parse_mountinfo_line("32 31 0:29 / /x rw cgroup cgroup rw").is_err());
        assert!(parse_mountinfo_line("32 31 0:29 / - cgroup cgroup rw").is_err());
    }

    /// Issue 9 case 2: octal escapes in the mount point and root.
    #[test]
    fn case02_octal_escapes() {
        let m = parse_mountinfo_line(
            r"40 31 0:37 /a\134b /mnt/cg\040space\011tab\012nl\134bs rw - cgroup cgroup rw,pids",
        )
        .unwrap();
        assert_eq!(m.mount_point, Path::new("/mnt/cg space\ttab\nnl\\bs"));
        assert_eq!(m.root, Path::new("/a\\b"));
        // Not an escape: backslash followed by non-octal text stays.
        assert_eq!(unescape(r"a\9zz"), "a\\9zz");
        assert_eq!(unescape("tail\\04"), "tail\\04");
        assert_eq!(unescape("\\"), "\\");
    }

    /// Issue 9 case 3: the source word is arbitrary.
    #[test]
    fn case03_source_word_is_arbitrary() {
        for src in ["none", "cgroup2", "memory", "cgroup", "x\\040y"] {
            let m = parse_mountinfo_line(&format!(
                "41 31 0:38 / /sys/fs/cgroup rw - cgroup2 {src} rw,nsdelegate"
            ))
            .unwrap();
            assert_eq!(m.fs_type, "cgroup2");
        }
        let m = parse_mountinfo_line("35 31 0:32 / /cg/m rw - cgroup cgroup2 rw,memory").unwrap();
        assert_eq!(m.fs_type, "cgroup");
        assert_eq!(m.source, "cgroup2");
    }

    #[test]
    fn proc_mounts_format() {
        let ms = parse_mounts(
            "cgroup /sys/fs/cgroup/cpu,cpuacct cgroup rw,nosuid,cpu,cpuacct 0 0\n\
             none /sys/fs/cgroup/unified cgroup2 rw 0 0\n",
        )
        .unwrap();
        assert_eq!(ms.len(), 2);
        assert_eq!(ms[0].fs_type, "cgroup");
        assert_eq!(ms[1].mount_point, Path::new("/sys/fs/cgroup/unified"));
        assert!(parse_mounts_line("a b").is_err());
    }

    /// Finding F6 (issue 9 case 1's whole kind): an EMPTY mount source gives two spaces in a
    /// row after the fs type; the fields after `-` are still type, source, super options.
    #[test]
    fn f6_empty_source_keeps_super_options() {
        let m = parse_mountinfo_line(
            "36 25 0:31 / /sys/fs/cgroup/cpu rw,relatime shared:9 - cgroup  rw,cpu",
        )
        .unwrap();
        assert_eq!(m.fs_type, "cgroup");
        assert_eq!(m.source, "");
        assert_eq!(m.super_options, ["rw", "cpu"]);
        assert_eq!(m.optional_fields, ["shared:9"]);
        assert_eq!(m.mount_options, ["rw", "relatime"]);
        assert_eq!(m.mount_point, Path::new("/sys/fs/cgroup/cpu"));

        // The exact line the kernel printed for `mount -t tmpfs "" /work/attack/mnt`.
        let t =
            parse_mountinfo_line("66 46 0:40 / /work/attack/mnt rw,relatime - tmpfs  rw").unwrap();
        assert_eq!(t.id, Some(66));
        assert_eq!(t.parent_id, Some(46));
        assert_eq!(t.device, Some(DeviceNumber::new(0, 40)));
        assert_eq!(t.fs_type, "tmpfs");
        assert_eq!(t.source, "");
        assert_eq!(t.super_options, ["rw"]);
        assert!(t.optional_fields.is_empty());

        // Empty source and no super options at all.
        let e = parse_mountinfo_line("1 2 0:3 / /x rw - cgroup2 ").unwrap();
        assert_eq!(e.fs_type, "cgroup2");
        assert_eq!(e.source, "");
        assert!(e.super_options.is_empty());

        // Before `-` the kernel never writes an empty field; after it the type is required.
        assert!(parse_mountinfo_line("1 2 0:3 /  /x rw - cgroup cgroup rw").is_err());
        assert!(parse_mountinfo_line("1 2 0:3 / /x rw -  cgroup rw").is_err());
        assert!(parse_mountinfo_line("1 2 0:3 / /x rw - cgroup").is_err());

        // /proc/mounts: the source is the first field and may be empty too.
        let pm = parse_mounts_line(" /sys/fs/cgroup/cpu cgroup rw,cpu 0 0").unwrap();
        assert_eq!(pm.source, "");
        assert_eq!(pm.mount_point, Path::new("/sys/fs/cgroup/cpu"));
        assert_eq!(pm.fs_type, "cgroup");
        assert_eq!(pm.super_options, ["rw", "cpu"]);
        assert_eq!(pm.mount_options, ["rw", "cpu"]);
        assert!(parse_mounts_line("cgroup  /x cgroup rw 0 0").is_err());
    }

    proptest::proptest! {
        #[test]
        fn mountinfo_never_panics(s in "\\PC*") {
            let _ = parse_mountinfo(&s);
            let _ = parse_mounts(&s);
        }

        #[test]
        fn mountinfo_fieldish_never_panics(
            parts in proptest::collection::vec("[-0-9a-z:/\\\\,=]{0,8}", 0..14)
        ) {
            let _ = parse_mountinfo_line(&parts.join(" "));
        }

        #[test]
        fn escape_round_trip(path in "/[ -~\t\n]{0,40}") {
            let mut esc = String::new();
            for c in path.chars() {
                match c {
                    ' ' => esc.push_str("\\040"),
                    '\t' => esc.push_str("\\011"),
                    '\n' => esc.push_str("\\012"),
                    '\\' => esc.push_str("\\134"),
                    c => esc.push(c),
                }
            }
            let line = format!("1 2 0:3 / {esc} rw - cgroup cgroup rw,cpu");
            let m = parse_mountinfo_line(&line).unwrap();
            proptest::prop_assert_eq!(m.mount_point, PathBuf::from(path));
        }
    }
}

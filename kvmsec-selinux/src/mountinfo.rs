//! Just enough of `/proc/<pid>/mountinfo` to find selinuxfs (formats layer).
//!
//! # References
//! - Linux `Documentation/filesystems/proc.rst`, section "`/proc/<pid>/mountinfo`".

/// One mount from a mountinfo line.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Mount {
    /// Where it is mounted (octal escapes such as `\040` decoded).
    pub mount_point: String,
    /// Filesystem type (`selinuxfs`).
    pub fs_type: String,
    /// Per-mount options (`rw,nosuid,...`).
    pub mount_options: String,
    /// Superblock options.
    pub super_options: String,
}

impl Mount {
    /// Whether the mount or its superblock is read-only.
    pub fn is_read_only(&self) -> bool {
        let ro = |opts: &str| opts.split(',').any(|o| o == "ro");
        ro(&self.mount_options) || ro(&self.super_options)
    }
}

/// Parse one mountinfo line; `None` when it is not shaped like one.
///
/// The optional fields end at the lone `-` separator, however many there are.
pub fn parse_mountinfo_line(line: &str) -> Option<Mount> {
    let mut fields = line.split(' ');
    let _id = fields.next()?;
    let _parent = fields.next()?;
    let _dev = fields.next()?;
    let _root = fields.next()?;
    let mount_point = unescape(fields.next()?);
    let mount_options = fields.next()?.to_owned();
    loop {
        if fields.next()? == "-" {
            break;
        }
    }
    let fs_type = fields.next()?.to_owned();
    let _source = fields.next()?;
    let super_options = fields.next().unwrap_or_default().to_owned();
    Some(Mount {
        mount_point,
        fs_type,
        mount_options,
        super_options,
    })
}

/// Decode the kernel's `\NNN` octal escapes (space, tab, newline, backslash).
fn unescape(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'\\'
            && let Some(oct) = bytes.get(i + 1..i + 4)
            && oct.iter().all(|d| (b'0'..=b'7').contains(d))
            && let Ok(byte) = u8::try_from(
                oct.iter()
                    .fold(0u32, |acc, d| acc * 8 + u32::from(d - b'0')),
            )
        {
            out.push(byte);
            i += 4;
            continue;
        }
        out.push(b);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selinuxfs_line_with_and_without_optional_fields() {
        let a = "22 26 0:21 / /sys/fs/selinux rw,nosuid,noexec,relatime shared:7 master:1 - selinuxfs selinuxfs rw";
        let m = parse_mountinfo_line(a).unwrap();
        assert_eq!(m.mount_point, "/sys/fs/selinux");
        assert_eq!(m.fs_type, "selinuxfs");
        assert!(!m.is_read_only());
        let b = "22 26 0:21 / /sys/fs/selinux ro,relatime - selinuxfs selinuxfs rw";
        assert!(parse_mountinfo_line(b).unwrap().is_read_only());
    }

    #[test]
    fn escaped_mount_point() {
        let a = "1 2 0:1 / /a\\040b\\134c rw - tmpfs tmpfs rw";
        assert_eq!(parse_mountinfo_line(a).unwrap().mount_point, "/a b\\c");
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_lines_never_panic(line in "[ -~\\\\]{0,80}") {
            let _ = parse_mountinfo_line(&line);
        }

        #[test]
        fn escaped_mount_points_round_trip(point in "/[a-z \t\\\\]{0,20}") {
            let escaped: String = point
                .chars()
                .map(|c| match c {
                    ' ' => "\\040".to_owned(),
                    '\t' => "\\011".to_owned(),
                    '\\' => "\\134".to_owned(),
                    c => c.to_string(),
                })
                .collect();
            let line = format!("1 2 0:1 / {escaped} rw shared:1 master:2 - selinuxfs none rw");
            let m = parse_mountinfo_line(&line).unwrap();
            proptest::prop_assert_eq!(m.mount_point, point);
            proptest::prop_assert_eq!(m.fs_type, "selinuxfs");
        }
    }

    #[test]
    fn garbage_is_none() {
        assert_eq!(parse_mountinfo_line(""), None);
        assert_eq!(parse_mountinfo_line("1 2 3 4 5 6 7"), None);
    }
}

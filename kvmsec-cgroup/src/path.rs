//! Format: group paths relative to a hierarchy root.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use crate::error::{Error, Result};

/// Longest group path accepted, in bytes (Linux `PATH_MAX`; the kernel cannot resolve a
/// longer path anyway).
pub const PATH_MAX: usize = 4096;

/// Longest path component accepted, in bytes (Linux `NAME_MAX`).
pub const NAME_MAX: usize = 255;

/// A group's path relative to the root of its hierarchy, checked so that it cannot reach
/// outside: no `..` or `.` components, not absolute, no NUL, no empty components, at most
/// [`PATH_MAX`] bytes in all and [`NAME_MAX`] bytes per component. The empty path is the
/// hierarchy's root group.
///
/// ```
/// use kvmsec_cgroup::GroupPath;
/// let p = GroupPath::new("machine/high_prio")?;
/// assert_eq!(p.as_str(), "machine/high_prio");
/// assert_eq!(p.parent().unwrap().as_str(), "machine");
/// assert!(GroupPath::new("../etc").is_err());
/// assert!(GroupPath::new("/abs").is_err());
/// assert!(GroupPath::new("a//b").is_err());
/// # Ok::<(), kvmsec_cgroup::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct GroupPath(String);

impl GroupPath {
    /// The root group of a hierarchy.
    pub fn root() -> Self {
        GroupPath(String::new())
    }

    /// Check and wrap a relative path such as `machine/vm1`.
    pub fn new(path: &str) -> Result<Self> {
        let refuse = |reason| Error::InvalidGroupPath {
            path: crate::error::clip(path),
            reason,
        };
        if path.is_empty() {
            return Ok(Self::root());
        }
        // Checked first, so nothing below (or in `ancestors_and_self`) sees a longer input.
        if path.len() > PATH_MAX {
            return Err(refuse("longer than PATH_MAX (4096 bytes)"));
        }
        if path.contains('\0') {
            return Err(refuse("contains a NUL byte"));
        }
        if path.starts_with('/') {
            return Err(refuse(
                "absolute paths are refused; give it relative to the hierarchy root",
            ));
        }
        for comp in path.split('/') {
            match comp {
                "" => return Err(refuse("empty component (doubled or trailing '/')")),
                "." | ".." => return Err(refuse("'.' and '..' components are refused")),
                c if c.len() > NAME_MAX => {
                    return Err(refuse("a component is longer than NAME_MAX (255 bytes)"));
                }
                _ => {}
            }
        }
        Ok(GroupPath(path.to_string()))
    }

    /// The path as text (empty for the root).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Is this the root group?
    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    /// The parent path (`None` for the root).
    pub fn parent(&self) -> Option<GroupPath> {
        if self.is_root() {
            return None;
        }
        Some(match self.0.rsplit_once('/') {
            Some((p, _)) => GroupPath(p.to_string()),
            None => GroupPath::root(),
        })
    }

    /// The last component (`None` for the root).
    pub fn name(&self) -> Option<&str> {
        if self.is_root() {
            return None;
        }
        self.0.rsplit('/').next()
    }

    /// A child path; `name` must be one valid component.
    pub fn join(&self, name: &str) -> Result<GroupPath> {
        if name.contains('/') {
            return Err(Error::InvalidGroupPath {
                path: crate::error::clip(name),
                reason: "a child name must be one component",
            });
        }
        let joined = if self.is_root() {
            name.to_string()
        } else {
            format!("{}/{}", self.0, name)
        };
        GroupPath::new(&joined)
    }

    /// This path and every ancestor, root first (`a/b` gives root, `a`, `a/b`).
    ///
    /// Each entry owns its text, so the total size is the sum of the prefix lengths; the
    /// [`PATH_MAX`] bound keeps that small. [`GroupPath::ancestor_prefixes`] borrows instead.
    pub fn ancestors_and_self(&self) -> Vec<GroupPath> {
        self.ancestor_prefixes()
            .map(|p| GroupPath(p.to_string()))
            .collect()
    }

    /// The texts of this path and every ancestor, root first, as slices of this path (no
    /// allocation per prefix): `a/b` gives `""`, `"a"`, `"a/b"`.
    ///
    /// ```
    /// use kvmsec_cgroup::GroupPath;
    /// let p = GroupPath::new("machine/vm1")?;
    /// assert_eq!(p.ancestor_prefixes().collect::<Vec<_>>(), ["", "machine", "machine/vm1"]);
    /// # Ok::<(), kvmsec_cgroup::Error>(())
    /// ```
    pub fn ancestor_prefixes(&self) -> impl Iterator<Item = &str> + '_ {
        let s = self.0.as_str();
        let ends = s
            .match_indices('/')
            .map(|(i, _)| i)
            .chain((!s.is_empty()).then_some(s.len()));
        std::iter::once("").chain(ends.filter_map(move |end| s.get(..end)))
    }

    /// Wrap a prefix of an already checked path (every such prefix is valid too).
    pub(crate) fn from_checked_prefix(prefix: &str) -> GroupPath {
        GroupPath(prefix.to_string())
    }

    /// Directory of this group under a hierarchy directory.
    pub fn dir_under(&self, hierarchy_dir: &Path) -> PathBuf {
        if self.is_root() {
            hierarchy_dir.to_path_buf()
        } else {
            hierarchy_dir.join(&self.0)
        }
    }

    /// From a `/proc/<pid>/cgroup` path relative to a mount root (`/a/b` or `a/b`).
    pub(crate) fn from_relative(p: &Path) -> Result<GroupPath> {
        let s = p.to_string_lossy();
        GroupPath::new(s.trim_start_matches('/'))
    }
}

impl fmt::Display for GroupPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "/{}", self.0)
    }
}

impl FromStr for GroupPath {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        GroupPath::new(s)
    }
}

#[cfg(feature = "serde")]
impl<'de> serde::Deserialize<'de> for GroupPath {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        GroupPath::new(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals() {
        for bad in [
            "..", "a/..", "a/../b", ".", "./a", "/a", "a//b", "a/", "a\0b", "/",
        ] {
            assert!(GroupPath::new(bad).is_err(), "{bad:?}");
        }
        assert!(GroupPath::root().join("a/b").is_err());
        assert!(GroupPath::root().join("..").is_err());
        assert_eq!(GroupPath::new("").unwrap(), GroupPath::root());
        let p = GroupPath::new("a/b:c/d (x)").unwrap();
        assert_eq!(p.name(), Some("d (x)"));
        assert_eq!(
            p.ancestors_and_self()
                .iter()
                .map(|p| p.as_str())
                .collect::<Vec<_>>(),
            ["", "a", "a/b:c", "a/b:c/d (x)"]
        );
        assert_eq!(p.to_string(), "/a/b:c/d (x)");
    }

    /// Finding F7: PATH_MAX and NAME_MAX are enforced with a typed error; prefixes are
    /// slices of the path.
    #[test]
    fn f7_length_limits_and_linear_ancestors() {
        let name_ok = "n".repeat(NAME_MAX);
        let p = GroupPath::new(&format!("a/{name_ok}")).unwrap();
        assert_eq!(p.name(), Some(name_ok.as_str()));
        let name_long = "n".repeat(NAME_MAX + 1);
        for bad in [name_long.clone(), format!("a/{name_long}/b")] {
            assert!(matches!(
                GroupPath::new(&bad),
                Err(Error::InvalidGroupPath { reason, .. }) if reason.contains("NAME_MAX")
            ));
        }
        assert!(GroupPath::root().join(&name_long).is_err());

        // Exactly PATH_MAX bytes is accepted; one more is refused.
        let max = "a/".repeat(PATH_MAX / 2 - 1) + "ab";
        assert_eq!(max.len(), PATH_MAX);
        let p = GroupPath::new(&max).unwrap();
        assert_eq!(p.ancestor_prefixes().count(), PATH_MAX / 2 + 1);
        let over = max.clone() + "c";
        assert!(matches!(
            GroupPath::new(&over),
            Err(Error::InvalidGroupPath { reason, .. }) if reason.contains("PATH_MAX")
        ));
        // The attack input (120 KB, 60 001 components) is refused before any other work.
        let deep = "a/".repeat(60_000) + "a";
        assert!(matches!(
            GroupPath::new(&deep),
            Err(Error::InvalidGroupPath { reason, .. }) if reason.contains("PATH_MAX")
        ));

        // Prefixes borrow from the path itself.
        let p = GroupPath::new("x/yy/zzz").unwrap();
        let prefixes: Vec<&str> = p.ancestor_prefixes().collect();
        assert_eq!(prefixes, ["", "x", "x/yy", "x/yy/zzz"]);
        for pre in &prefixes[1..] {
            assert_eq!(pre.as_ptr(), p.as_str().as_ptr());
        }
        assert_eq!(
            GroupPath::root().ancestor_prefixes().collect::<Vec<_>>(),
            [""]
        );
        assert_eq!(GroupPath::root().ancestors_and_self(), [GroupPath::root()]);
    }

    proptest::proptest! {
        #[test]
        fn accepted_paths_stay_inside(s in "[a-z./\\x00]{0,20}") {
            if let Ok(p) = GroupPath::new(&s) {
                let dir = p.dir_under(Path::new("/h"));
                proptest::prop_assert!(dir.starts_with("/h"));
                for c in dir.components().skip(2) {
                    let ok = matches!(c, std::path::Component::Normal(_));
                    proptest::prop_assert!(ok);
                }
            }
        }
    }
}

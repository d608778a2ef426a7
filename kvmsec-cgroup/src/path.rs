//! Format: group paths relative to a hierarchy root.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use crate::error::{Error, Result};

/// A group's path relative to the root of its hierarchy, checked so that it cannot reach
/// outside: no `..` or `.` components, not absolute, no NUL, no empty components. The empty
/// path is the hierarchy's root group.
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
    pub fn ancestors_and_self(&self) -> Vec<GroupPath> {
        let mut out = vec![GroupPath::root()];
        let mut acc = String::new();
        if self.is_root() {
            return out;
        }
        for comp in self.0.split('/') {
            if !acc.is_empty() {
                acc.push('/');
            }
            acc.push_str(comp);
            out.push(GroupPath(acc.clone()));
        }
        out
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

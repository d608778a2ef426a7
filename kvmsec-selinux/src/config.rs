//! `/etc/selinux/config`: reading with libselinux's semantics, editing that keeps
//! everything else byte for byte, atomic writes and `/.autorelabel` requests.
//!
//! [`parse_config`] and [`ConfigFile`] are pure (formats layer); the `*_at` functions read and
//! write files under a root directory (host access).
//!
//! # References
//! - libselinux `selinux_config.c` (`selinux_getenforcemode`, `init_selinux_config`):
//!   `SELINUX=` must start the line and is case-sensitive, its value is matched
//!   case-insensitively as a prefix and the first valid line wins; `SELINUXTYPE=` is matched
//!   case-insensitively after leading blanks, the last one wins, quotes are not removed, and
//!   the default is `targeted`.
//! - `selinux_config(5)`.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use crate::error::{Error, Result, clip};
use crate::hostfs::{read_optional, under};
use crate::selinuxfs::Mode;

/// The SELinux configuration file.
pub const CONFIG_PATH: &str = "/etc/selinux/config";
/// The compatibility link some distributions keep (Fedora, RHEL: `../selinux/config`).
pub const SYSCONFIG_PATH: &str = "/etc/sysconfig/selinux";
/// The file whose presence asks the boot scripts for a full relabel.
pub const AUTORELABEL_PATH: &str = "/.autorelabel";
/// The policy type libselinux assumes when `SELINUXTYPE=` is absent.
pub const DEFAULT_POLICY_TYPE: &str = "targeted";

/// Largest config file read (libselinux reads it line by line; a real one is < 4 KiB).
const MAX_CONFIG: u64 = 1024 * 1024;

/// One `KEY=value` line of the config.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct ConfigEntry {
    /// 1-based line number.
    pub line: usize,
    /// The key as written.
    pub key: String,
    /// The value as written (leading blanks after `=` and trailing blanks removed).
    pub value: String,
}

/// Something in the config that libselinux reads differently from what a person may
/// expect.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub enum ConfigWarning {
    /// A `SELINUX=` value that is none of enforcing/permissive/disabled; it is skipped.
    UnknownMode {
        /// 1-based line number.
        line: usize,
        /// The value.
        value: String,
    },
    /// `SELINUX=` not at the start of the line (or in another case): libselinux ignores it.
    IgnoredModeLine {
        /// 1-based line number.
        line: usize,
    },
    /// A value in double or single quotes: libselinux keeps the quotes.
    QuotedValue {
        /// 1-based line number.
        line: usize,
        /// The key.
        key: String,
    },
    /// A `#` after a value: libselinux keeps it as part of the value.
    InlineComment {
        /// 1-based line number.
        line: usize,
        /// The key.
        key: String,
    },
}

/// What `/etc/selinux/config` says, read the way libselinux reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct SelinuxConfig {
    /// The mode from the first valid `SELINUX=` line (`None`: no valid line).
    pub mode: Option<Mode>,
    /// The policy type from the last `SELINUXTYPE=` line, or `targeted`.
    pub policy_type: String,
    /// Whether `SELINUXTYPE=` was present.
    pub policy_type_set: bool,
    /// `REQUIRESEUSERS=` if present and understood.
    pub require_seusers: Option<bool>,
    /// Every `KEY=value` line in order (including unknown and obsolete keys such as
    /// `SETLOCALDEFS`).
    pub entries: Vec<ConfigEntry>,
    /// Constructs libselinux reads in a surprising way.
    pub warnings: Vec<ConfigWarning>,
}

impl SelinuxConfig {
    /// The value of the last `key=` line (exact key).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries
            .iter()
            .rev()
            .find(|e| e.key == key)
            .map(|e| e.value.as_str())
    }
}

/// Match a `SELINUX=` value the way libselinux does: case-insensitive prefix.
fn mode_of(value: &str) -> Option<Mode> {
    let lower = value.to_ascii_lowercase();
    [
        ("enforcing", Mode::Enforcing),
        ("permissive", Mode::Permissive),
        ("disabled", Mode::Disabled),
    ]
    .into_iter()
    .find(|(word, _)| lower.starts_with(word))
    .map(|(_, mode)| mode)
}

fn trim_value(v: &str) -> &str {
    v.trim_start_matches([' ', '\t'])
        .trim_end_matches(|c: char| c.is_whitespace() || c.is_control())
}

fn is_mode_line(line: &str) -> bool {
    line.starts_with("SELINUX=")
}

fn is_type_line(line: &str) -> bool {
    let t = line.trim_start();
    t.get(..12)
        .is_some_and(|k| k.eq_ignore_ascii_case("SELINUXTYPE="))
}

/// Parse config text. Never fails: unknown lines are kept, odd ones produce warnings.
///
/// ```
/// use kvmsec_selinux::{Mode, parse_config};
/// let cfg = parse_config("# comment\nSELINUX=Enforcing\nSELINUXTYPE=targeted\n");
/// assert_eq!(cfg.mode, Some(Mode::Enforcing));
/// assert_eq!(cfg.policy_type, "targeted");
/// ```
pub fn parse_config(text: &str) -> SelinuxConfig {
    let mut cfg = SelinuxConfig {
        mode: None,
        policy_type: DEFAULT_POLICY_TYPE.to_owned(),
        policy_type_set: false,
        require_seusers: None,
        entries: Vec::new(),
        warnings: Vec::new(),
    };
    for (idx, raw) in text.split('\n').enumerate() {
        let line_no = idx + 1;
        let raw = raw.strip_suffix('\r').unwrap_or(raw);
        let trimmed = raw.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let Some((key, value)) = trimmed.split_once('=') else {
            continue;
        };
        let value = trim_value(value);
        cfg.entries.push(ConfigEntry {
            line: line_no,
            key: key.to_owned(),
            value: value.to_owned(),
        });
        if (value.starts_with('"') && value.ends_with('"') && value.len() >= 2)
            || (value.starts_with('\'') && value.ends_with('\'') && value.len() >= 2)
        {
            cfg.warnings.push(ConfigWarning::QuotedValue {
                line: line_no,
                key: key.to_owned(),
            });
        }
        if value.contains('#') {
            cfg.warnings.push(ConfigWarning::InlineComment {
                line: line_no,
                key: key.to_owned(),
            });
        }

        if is_mode_line(raw) {
            match mode_of(value) {
                Some(mode) if cfg.mode.is_none() => cfg.mode = Some(mode),
                Some(_) => {}
                None => cfg.warnings.push(ConfigWarning::UnknownMode {
                    line: line_no,
                    value: clip(value, 64),
                }),
            }
        } else if key.trim().eq_ignore_ascii_case("SELINUX") {
            cfg.warnings
                .push(ConfigWarning::IgnoredModeLine { line: line_no });
        }
        if is_type_line(raw) {
            cfg.policy_type = value.to_owned();
            cfg.policy_type_set = true;
        }
        if trimmed.starts_with("REQUIRESEUSERS=") {
            let lower = value.to_ascii_lowercase();
            cfg.require_seusers = if value.starts_with(|c: char| c.is_ascii_digit()) {
                crate::hostfs::scan_int(value.as_bytes()).map(|v| v != 0)
            } else if lower.starts_with("true") {
                Some(true)
            } else if lower.starts_with("false") {
                Some(false)
            } else {
                None
            };
        }
    }
    cfg
}

/// The text of a config file, edited in place: only the changed line is rewritten;
/// comments, blank lines, unknown keys and line endings stay as they were.
///
/// ```
/// use kvmsec_selinux::{ConfigFile, Mode};
/// let mut file = ConfigFile::new("# keep me\nSELINUX=disabled\nFOO=bar\n");
/// file.set_mode(Mode::Enforcing);
/// file.set_policy_type("mls")?;
/// assert_eq!(file.text(), "# keep me\nSELINUX=enforcing\nFOO=bar\nSELINUXTYPE=mls\n");
/// # Ok::<(), kvmsec_selinux::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigFile {
    text: String,
}

impl ConfigFile {
    /// Wrap existing config text.
    pub fn new(text: impl Into<String>) -> Self {
        ConfigFile { text: text.into() }
    }

    /// The current text.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Parse the current text.
    pub fn parse(&self) -> SelinuxConfig {
        parse_config(&self.text)
    }

    /// Set `SELINUX=`: rewrites the line libselinux uses (the first valid one), else the
    /// first `SELINUX=` line, else appends one.
    pub fn set_mode(&mut self, mode: Mode) {
        let value = match mode {
            Mode::Enforcing => "enforcing",
            Mode::Permissive => "permissive",
            Mode::Disabled => "disabled",
        };
        let lines = self.lines();
        let target = lines
            .iter()
            .position(|l| {
                is_mode_line(l) && mode_of(trim_value(l.get(8..).unwrap_or_default())).is_some()
            })
            .or_else(|| lines.iter().position(|l| is_mode_line(l)));
        self.replace_or_append(target, &format!("SELINUX={value}"));
    }

    /// Set `SELINUXTYPE=`: rewrites the last such line (the one libselinux uses) or appends
    /// one. The name must be a plain word (`[A-Za-z0-9_.-]+`).
    pub fn set_policy_type(&mut self, policy_type: &str) -> Result<()> {
        if policy_type.is_empty()
            || !policy_type
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
            || policy_type.starts_with('.')
        {
            return Err(Error::InvalidConfigValue {
                key: "SELINUXTYPE".into(),
                value: clip(policy_type, 64),
                why: "a policy type is a plain name of letters, digits, '_', '.' and '-'",
            });
        }
        let target = self.lines().iter().rposition(|l| is_type_line(l));
        self.replace_or_append(target, &format!("SELINUXTYPE={policy_type}"));
        Ok(())
    }

    /// Lines without their terminators.
    fn lines(&self) -> Vec<String> {
        self.text
            .split_inclusive('\n')
            .map(|l| {
                let l = l.strip_suffix('\n').unwrap_or(l);
                l.strip_suffix('\r').unwrap_or(l).to_owned()
            })
            .collect()
    }

    fn replace_or_append(&mut self, target: Option<usize>, new_line: &str) {
        match target {
            Some(index) => {
                let mut out = String::with_capacity(self.text.len() + new_line.len());
                for (i, piece) in self.text.split_inclusive('\n').enumerate() {
                    if i == index {
                        let ending = if piece.ends_with("\r\n") {
                            "\r\n"
                        } else if piece.ends_with('\n') {
                            "\n"
                        } else {
                            ""
                        };
                        out.push_str(new_line);
                        out.push_str(ending);
                    } else {
                        out.push_str(piece);
                    }
                }
                self.text = out;
            }
            None => {
                if !self.text.is_empty() && !self.text.ends_with('\n') {
                    self.text.push('\n');
                }
                self.text.push_str(new_line);
                self.text.push('\n');
            }
        }
    }
}

/// Read `<root>/etc/selinux/config`; `None` when there is no such file.
pub fn read_config_at(root: &Path) -> Result<Option<SelinuxConfig>> {
    read_config_file_at(root, Path::new(CONFIG_PATH))
}

/// Read the live host's `/etc/selinux/config`.
pub fn read_config() -> Result<Option<SelinuxConfig>> {
    read_config_at(Path::new("/"))
}

/// Read a config file at host path `path` (for example [`SYSCONFIG_PATH`]) under `root`,
/// following symlinks inside the root.
pub fn read_config_file_at(root: &Path, path: &Path) -> Result<Option<SelinuxConfig>> {
    let real = resolve_symlinks_under(root, path)?;
    Ok(read_optional(&real, MAX_CONFIG)?.map(|b| parse_config(&String::from_utf8_lossy(&b))))
}

/// What [`set_config_mode_at`] changed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct ConfigChange {
    /// The file written (after following symlinks).
    pub path: PathBuf,
    /// The mode before (`None`: no file or no valid `SELINUX=` line).
    pub previous: Option<Mode>,
    /// The mode now configured.
    pub mode: Mode,
    /// The relabel flag file created, when going from disabled to enabled.
    pub autorelabel: Option<PathBuf>,
}

/// Set `SELINUX=` in `<root>/etc/selinux/config` (created with mode 0644 if missing),
/// atomically. Going from Disabled (or no valid setting) to Enforcing or Permissive also
/// creates `<root>/.autorelabel`, because files created while SELinux was off carry no
/// labels.
pub fn set_config_mode_at(root: &Path, mode: Mode) -> Result<ConfigChange> {
    edit_config_mode(root, Path::new(CONFIG_PATH), mode)
}

/// [`set_config_mode_at`] on the live host.
pub fn set_config_mode(mode: Mode) -> Result<ConfigChange> {
    set_config_mode_at(Path::new("/"), mode)
}

/// Set `SELINUXTYPE=` in `<root>/etc/selinux/config`, atomically; returns the file written.
pub fn set_config_policy_type_at(root: &Path, policy_type: &str) -> Result<PathBuf> {
    edit_config_file_at(root, Path::new(CONFIG_PATH), |f| {
        f.set_policy_type(policy_type)
    })
}

fn edit_config_mode(root: &Path, path: &Path, mode: Mode) -> Result<ConfigChange> {
    let mut previous = None;
    let real = edit_config_file_at(root, path, |f| {
        previous = f.parse().mode;
        f.set_mode(mode);
        Ok(())
    })?;
    let enabling = matches!(mode, Mode::Enforcing | Mode::Permissive);
    let was_disabled = matches!(previous, None | Some(Mode::Disabled));
    let autorelabel = if enabling && was_disabled {
        Some(request_autorelabel_at(root)?)
    } else {
        None
    };
    Ok(ConfigChange {
        path: real,
        previous,
        mode,
        autorelabel,
    })
}

/// Edit the config file at host path `path` under `root` (following symlinks such as
/// `/etc/sysconfig/selinux` to the real file) and write it back atomically: a temporary
/// file in the same directory with the same mode, owner and SELinux label, fsync, rename,
/// fsync of the directory. Returns the real file's path.
pub fn edit_config_file_at(
    root: &Path,
    path: &Path,
    edit: impl FnOnce(&mut ConfigFile) -> Result<()>,
) -> Result<PathBuf> {
    let real = resolve_symlinks_under(root, path)?;
    let text = read_optional(&real, MAX_CONFIG)?
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    let mut file = ConfigFile::new(text.clone());
    edit(&mut file)?;
    if file.text() != text || !real.exists() {
        atomic_write(&real, file.text().as_bytes())?;
    }
    Ok(real)
}

/// Create `<root>/.autorelabel` (empty) so the next boot relabels every file.
pub fn request_autorelabel_at(root: &Path) -> Result<PathBuf> {
    let path = under(root, AUTORELABEL_PATH);
    let file = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(false)
        .mode(0o644)
        .open(&path)
        .map_err(|e| Error::io("create", &path, e))?;
    file.sync_all().map_err(|e| Error::io("fsync", &path, e))?;
    Ok(path)
}

static TEMP_COUNTER: AtomicU32 = AtomicU32::new(0);

/// Replace `path` atomically with `data`, keeping mode, owner and label.
pub(crate) fn atomic_write(path: &Path, data: &[u8]) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "config".into());
    let old = fs::metadata(path).ok();
    let mode = old.as_ref().map_or(0o644, |m| m.mode() & 0o7777);
    let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    let temp = dir.join(format!(".{name}.kvmsec-{}-{n}", std::process::id()));

    let result = (|| -> Result<()> {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&temp)
            .map_err(|e| Error::io("create", &temp, e))?;
        file.set_permissions(fs::Permissions::from_mode(mode))
            .map_err(|e| Error::io("chmod", &temp, e))?;
        if let Some(m) = &old {
            // Keeping the owner needs privilege; an unprivileged editor owns the file anyway.
            let _ = std::os::unix::fs::fchown(&file, Some(m.uid()), Some(m.gid()));
            if let Ok(Some(label)) = crate::xattr::file_label_exact(path, crate::Symlink::Follow) {
                // Best effort: on hosts without SELinux the label may not be settable.
                let _ = crate::xattr::set_fd_label_raw(&file, &temp, &label);
            }
        }
        file.write_all(data)
            .map_err(|e| Error::io("write", &temp, e))?;
        file.sync_all().map_err(|e| Error::io("fsync", &temp, e))?;
        fs::rename(&temp, path).map_err(|e| Error::io("rename", path, e))?;
        let d = File::open(&dir).map_err(|e| Error::io("open", &dir, e))?;
        d.sync_all().map_err(|e| Error::io("fsync", &dir, e))?;
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&temp);
    }
    result
}

/// Follow symlinks in host path `path`, in every component (not only the last), keeping
/// every step inside `root`: absolute targets are re-rooted and `..` stops at the root, so a
/// directory such as `<root>/etc` that is a symlink to `/etc` leads to `<root>/etc`, never to
/// the host's. At most 40 links.
pub fn resolve_symlinks_under(root: &Path, path: &Path) -> Result<PathBuf> {
    /// One step still to walk: a name or `..`.
    enum Step {
        Name(std::ffi::OsString),
        Up,
    }
    fn push_steps(todo: &mut Vec<Step>, p: &Path) {
        // `todo` is a stack: push the components last first.
        for c in p.components().rev() {
            match c {
                Component::Normal(n) => todo.push(Step::Name(n.to_owned())),
                Component::ParentDir => todo.push(Step::Up),
                _ => {}
            }
        }
    }
    let too_many = |rel: &Path| Error::InvalidValue {
        path: root.join(rel),
        value: clip(&path.display().to_string(), 64),
        expected: "at most 40 levels of symbolic links",
    };
    let mut todo = Vec::new();
    push_steps(&mut todo, path);
    // The part walked so far, relative to the root, free of symlinks.
    let mut done = PathBuf::new();
    let mut links = 0;
    while let Some(step) = todo.pop() {
        let name = match step {
            Step::Up => {
                done.pop();
                continue;
            }
            Step::Name(n) => n,
        };
        let candidate = done.join(&name);
        let full = root.join(&candidate);
        match fs::symlink_metadata(&full) {
            Ok(m) if m.file_type().is_symlink() => {
                links += 1;
                if links > 40 {
                    return Err(too_many(&candidate));
                }
                let target = fs::read_link(&full).map_err(|e| Error::io("readlink", &full, e))?;
                if target.is_absolute() {
                    done = PathBuf::new();
                }
                push_steps(&mut todo, &target);
            }
            // Not a link, or missing (the caller reports a missing file): take it as is.
            _ => done = candidate,
        }
    }
    Ok(root.join(done))
}

#[cfg(test)]
mod tests;

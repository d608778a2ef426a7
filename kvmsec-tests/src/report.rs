//! The host security report: each crate's own checks, grouped by area.
//!
//! Every library crate decides what its checks are and how they are worded
//! (`kvmsec_cpu::report`, `kvmsec_cgroup::report`, `kvmsec_selinux::report`,
//! `kvmsec_qcow2::report`); this module only gathers them, renders them as text or JSON and
//! decides the exit status of the `host-report` example.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Serialize;

/// Outcome of one check, common to every area.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Status {
    /// The host does what a hardened KVM host should.
    Pass,
    /// Worth a look: weaker than it could be, or a setting that disagrees with another.
    Warn,
    /// A real weakness.
    Fail,
    /// A fact, or a check that could not be made (its reason starts with `not checked:`).
    Info,
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Status::Pass => "PASS",
            Status::Warn => "WARN",
            Status::Fail => "FAIL",
            Status::Info => "INFO",
        })
    }
}

/// One line of the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Line {
    /// Stable machine-readable id, e.g. `cpu.smep`.
    pub id: String,
    /// Short human name, e.g. `SMEP`.
    pub title: String,
    /// What the check found.
    pub status: Status,
    /// Why, in one line.
    pub reason: String,
}

/// The checks of one area (CPU, cgroups, SELinux, one disk image).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Section {
    /// Heading, e.g. `CPU` or `Image /var/lib/images/guest.qcow2`.
    pub area: String,
    /// The image a disk-image section is about (`None` for host areas).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<PathBuf>,
    /// The checks, in the order the crate gave them.
    pub checks: Vec<Line>,
}

/// A whole report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HostReport {
    /// Version of the kvmsec crates that made it.
    pub kvmsec_version: String,
    /// Host name, if it could be read.
    pub hostname: Option<String>,
    /// Kernel release, if it could be read.
    pub kernel: Option<String>,
    /// Effective user id of the process that made the report.
    pub uid: u32,
    /// Root directory the host files were read under (`/` for the live host).
    pub root: PathBuf,
    /// The sections, host areas first, then one per image.
    pub sections: Vec<Section>,
}

/// What to examine.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Options {
    /// Read host files under this directory instead of `/` (fixtures, other hosts' trees).
    /// CPUID and `/dev/kvm` are only examined on the live host.
    pub root: Option<PathBuf>,
    /// qcow2 images to inspect as well.
    pub images: Vec<PathBuf>,
}

macro_rules! lines_from {
    ($checks:expr, $krate:ident) => {
        $checks
            .into_iter()
            .map(|c| Line {
                id: c.id,
                title: c.title,
                status: match c.status {
                    $krate::report::Status::Pass => Status::Pass,
                    $krate::report::Status::Warn => Status::Warn,
                    $krate::report::Status::Fail => Status::Fail,
                    $krate::report::Status::Info => Status::Info,
                },
                reason: c.reason,
            })
            .collect::<Vec<Line>>()
    };
}

impl HostReport {
    /// Examines the host (and the images) as `options` says. Never fails: a check that cannot
    /// be made is reported as such.
    pub fn collect(options: &Options) -> HostReport {
        let root = options.root.clone().unwrap_or_else(|| PathBuf::from("/"));
        let live = root == Path::new("/");

        let cpu = if live {
            kvmsec_cpu::report::host_checks()
        } else {
            kvmsec_cpu::report::host_checks_at(&root)
        };
        let cgroup = if live {
            kvmsec_cgroup::report::host_checks()
        } else {
            kvmsec_cgroup::report::host_checks_at(&root)
        };
        let selinux = if live {
            kvmsec_selinux::report::host_checks()
        } else {
            kvmsec_selinux::report::host_checks_at(&root)
        };

        let mut sections = vec![
            Section {
                area: "CPU".into(),
                image: None,
                checks: lines_from!(cpu, kvmsec_cpu),
            },
            Section {
                area: "cgroups".into(),
                image: None,
                checks: lines_from!(cgroup, kvmsec_cgroup),
            },
            Section {
                area: "SELinux".into(),
                image: None,
                checks: lines_from!(selinux, kvmsec_selinux),
            },
        ];
        for image in &options.images {
            let checks = kvmsec_qcow2::report::image_checks(image);
            sections.push(Section {
                area: format!("Image {}", image.display()),
                image: Some(image.clone()),
                checks: lines_from!(checks, kvmsec_qcow2),
            });
        }

        HostReport {
            kvmsec_version: env!("CARGO_PKG_VERSION").to_string(),
            hostname: read_trimmed(&root.join("proc/sys/kernel/hostname")),
            kernel: read_trimmed(&root.join("proc/sys/kernel/osrelease")),
            // SAFETY: geteuid has no preconditions and cannot fail.
            uid: unsafe { libc::geteuid() },
            root,
            sections,
        }
    }

    /// Every line of every section.
    pub fn lines(&self) -> impl Iterator<Item = &Line> {
        self.sections.iter().flat_map(|s| s.checks.iter())
    }

    /// The line with this id, if any.
    pub fn line(&self, id: &str) -> Option<&Line> {
        self.lines().find(|l| l.id == id)
    }

    /// Whether any check failed.
    pub fn has_failures(&self) -> bool {
        self.lines().any(|l| l.status == Status::Fail)
    }

    /// The report as pretty-printed JSON.
    pub fn to_json(&self) -> String {
        // Serialising plain strings, integers and enums cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }
}

impl fmt::Display for HostReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "kvmsec host security report (kvmsec {})",
            self.kvmsec_version
        )?;
        writeln!(
            f,
            "host {}, kernel {}, uid {}{}",
            self.hostname.as_deref().unwrap_or("?"),
            self.kernel.as_deref().unwrap_or("?"),
            self.uid,
            if self.root == Path::new("/") {
                String::new()
            } else {
                format!(", files under {}", self.root.display())
            }
        )?;
        let width = self
            .lines()
            .map(|l| l.title.chars().count())
            .max()
            .unwrap_or(0);
        for section in &self.sections {
            writeln!(f)?;
            writeln!(f, "{}", section.area)?;
            for line in &section.checks {
                writeln!(
                    f,
                    "  {}  {:width$}  {}",
                    line.status, line.title, line.reason
                )?;
            }
        }
        let count = |s| self.lines().filter(|l| l.status == s).count();
        writeln!(f)?;
        write!(
            f,
            "{} pass, {} warn, {} fail, {} info",
            count(Status::Pass),
            count(Status::Warn),
            count(Status::Fail),
            count(Status::Info)
        )
    }
}

fn read_trimmed(path: &Path) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// Command-line arguments of `host-report`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Args {
    /// What to examine.
    pub options: Options,
    /// Print JSON instead of text.
    pub json: bool,
    /// Exit 1 when any check fails.
    pub strict: bool,
    /// Print usage and exit.
    pub help: bool,
}

/// Usage text of `host-report`.
pub const USAGE: &str = "\
usage: host-report [--json] [--strict] [--root DIR] [--image PATH...]

Prints a KVM host security report: CPU features and vulnerabilities, /dev/kvm,
cgroups, SELinux, and (with --image) the encryption of qcow2 images and their
backing chains.

  --json         print the report as JSON
  --strict       exit with status 1 when any check FAILs
  --root DIR     read /proc, /sys and /etc under DIR (another host's files);
                 CPUID and /dev/kvm are then not examined
  --image PATH   inspect a qcow2 image; may be repeated, and takes every
                 following argument that does not start with --

Exit status: 0 when the report was made (whatever it found), 1 with --strict
and a FAIL, 2 on a usage error.";

impl Args {
    /// Parses the arguments after the program name.
    pub fn parse<I: IntoIterator<Item = String>>(args: I) -> Result<Args, String> {
        let mut out = Args::default();
        let mut args = args.into_iter().peekable();
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--json" => out.json = true,
                "--strict" => out.strict = true,
                "-h" | "--help" => out.help = true,
                "--root" => {
                    let dir = PathBuf::from(args.next().ok_or("--root needs a directory")?);
                    if !dir.is_dir() {
                        return Err(format!("--root {}: not a directory", dir.display()));
                    }
                    out.options.root = Some(dir);
                }
                "--image" => {
                    let mut any = false;
                    while let Some(path) = args.next_if(|a| !a.starts_with("--")) {
                        out.options.images.push(PathBuf::from(path));
                        any = true;
                    }
                    if !any {
                        return Err("--image needs at least one path".into());
                    }
                }
                other => return Err(format!("unknown argument {other:?}")),
            }
        }
        Ok(out)
    }
}

/// Runs `host-report` with these arguments, printing to stdout/stderr, and returns the exit
/// status.
pub fn main_with_args<I: IntoIterator<Item = String>>(args: I) -> i32 {
    let args = match Args::parse(args) {
        Ok(args) => args,
        Err(message) => {
            eprintln!("host-report: {message}\n\n{USAGE}");
            return 2;
        }
    };
    if args.help {
        println!("{USAGE}");
        return 0;
    }
    let report = HostReport::collect(&args.options);
    if args.json {
        println!("{}", report.to_json());
    } else {
        println!("{report}");
    }
    if args.strict && report.has_failures() {
        1
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Args, String> {
        Args::parse(args.iter().map(|s| s.to_string()))
    }

    #[test]
    fn arguments() {
        let a = parse(&["--json", "--image", "a.qcow2", "b.qcow2", "--strict"]).unwrap();
        assert!(a.json && a.strict && !a.help);
        assert_eq!(
            a.options.images,
            vec![PathBuf::from("a.qcow2"), PathBuf::from("b.qcow2")]
        );
        assert_eq!(
            parse(&["--root", "/tmp"]).unwrap().options.root,
            Some("/tmp".into())
        );
        assert_eq!(
            parse(&["--root", "/nonexistent/kvmsec"]).unwrap_err(),
            "--root /nonexistent/kvmsec: not a directory"
        );
        assert_eq!(
            parse(&["--image"]).unwrap_err(),
            "--image needs at least one path"
        );
        assert_eq!(parse(&["--root"]).unwrap_err(), "--root needs a directory");
        assert_eq!(
            parse(&["--frobnicate"]).unwrap_err(),
            "unknown argument \"--frobnicate\""
        );
        assert_eq!(parse(&[]).unwrap(), Args::default());
    }

    #[test]
    fn status_words() {
        let words: Vec<String> = [Status::Pass, Status::Warn, Status::Fail, Status::Info]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(words, ["PASS", "WARN", "FAIL", "INFO"]);
        assert_eq!(serde_json::to_string(&Status::Warn).unwrap(), "\"WARN\"");
    }
}

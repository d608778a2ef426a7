//! Running a test binary's guest tests inside a fresh VM.

use std::collections::hash_map::RandomState;
use std::fmt::Write as _;
use std::fs::{self, File};
use std::hash::BuildHasher;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::assets::Assets;
use super::guest::{GUEST_CONTEXT, GUEST_ENV};
use super::initramfs::Initramfs;
use super::qemu::{self, BootConfig, BootOutcome};
use super::verdict::{EXIT_MARKER, SETUP_FAILED_MARKER, Verdict};
use super::{Error, libs};

/// Guest path of the test binary.
const GUEST_BINARY_DIR: &str = "/kvmsec";

/// Guest path of the compiled policy (where a Fedora-style host keeps it).
const GUEST_POLICY: &str = "/etc/selinux/kvmsec/policy/policy.33";

/// Source of the test policy in this repository.
const POLICY_SOURCE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/vmrig/policy/kvmsec.conf");

/// A set of guest tests to run in one boot.
///
/// The binary (by default the running test executable) is copied into an
/// initramfs with busybox, the test policy, the kernel modules and the
/// binary's shared libraries. The guest's `/init` mounts the pseudo file
/// systems, loads the modules and the policy, switches to
/// [`GUEST_CONTEXT`], and runs the binary with `KVMSEC_IN_GUEST=<suite>`,
/// `--test-threads=1 --nocapture` and the filters.
#[derive(Debug, Clone)]
pub struct GuestTests {
    suite: String,
    binary: PathBuf,
    filters: Vec<String>,
    exact: bool,
    min_passed: usize,
    disk_mib: Option<u64>,
    boot: BootConfig,
}

/// The result of [`GuestTests::run`].
#[derive(Debug, Clone)]
pub struct GuestReport {
    /// The boot, with the guest's console.
    pub outcome: BootOutcome,
    /// What the console says.
    pub verdict: Verdict,
    /// Minimum number of passed tests for a pass.
    pub min_passed: usize,
}

impl GuestReport {
    /// `None` if every guest test passed, else why not.
    pub fn failure(&self) -> Option<String> {
        if self.outcome.timed_out {
            return Some(format!(
                "the VM was killed after {:.1} s (timeout); {}",
                self.outcome.elapsed.as_secs_f64(),
                self.verdict
                    .failure(self.min_passed)
                    .unwrap_or_else(|| "verdict was complete".into())
            ));
        }
        self.verdict.failure(self.min_passed)
    }

    /// Prints the console and panics with the reason unless every guest test
    /// passed. Meant for the host-side `#[test]`.
    #[track_caller]
    pub fn assert_passed(&self) {
        eprintln!("{}", self.transcript());
        if let Some(why) = self.failure() {
            panic!("VM test run failed: {why} (console above)");
        }
    }

    /// The console plus a short header, for printing.
    pub fn transcript(&self) -> String {
        let mut text = String::new();
        let _ = writeln!(
            text,
            "----- guest console ({:.1} s, emulator status {}) -----",
            self.outcome.elapsed.as_secs_f64(),
            match self.outcome.status {
                Some(s) => s.to_string(),
                None => "killed".into(),
            }
        );
        text.push_str(&self.outcome.console);
        if !self.outcome.emulator_stderr.trim().is_empty() {
            let _ = writeln!(text, "----- emulator stderr -----");
            text.push_str(&self.outcome.emulator_stderr);
        }
        let _ = writeln!(text, "----- end of guest console -----");
        text
    }
}

impl GuestTests {
    /// Guest tests of `suite` in the running test executable.
    ///
    /// `suite` is passed to the guest as `KVMSEC_IN_GUEST`; see
    /// [`in_guest`](super::guest::in_guest).
    pub fn new(suite: &str) -> Result<Self, Error> {
        let binary = std::env::current_exe().map_err(Error::io("locating the test executable"))?;
        Ok(Self::with_binary(suite, binary))
    }

    /// Guest tests of `suite` in another test executable.
    pub fn with_binary(suite: &str, binary: impl Into<PathBuf>) -> Self {
        GuestTests {
            suite: suite.to_string(),
            binary: binary.into(),
            filters: Vec::new(),
            exact: false,
            min_passed: 1,
            disk_mib: None,
            boot: BootConfig::default(),
        }
    }

    /// Runs only tests whose name contains `filter` (libtest semantics; may be
    /// given several times).
    pub fn filter(mut self, filter: &str) -> Self {
        self.filters.push(filter.to_string());
        self
    }

    /// Makes the filters match whole test names (`--exact`).
    pub fn exact(mut self) -> Self {
        self.exact = true;
        self
    }

    /// The run fails unless at least this many tests passed (default 1).
    pub fn min_passed(mut self, n: usize) -> Self {
        self.min_passed = n;
        self
    }

    /// Attaches a sparse raw disk of `mib` MiB as `/dev/vda`.
    pub fn disk(mut self, mib: u64) -> Self {
        self.disk_mib = Some(mib);
        self
    }

    /// Adds a QEMU `-drive` suboption for the disk (e.g. a throttling limit).
    pub fn disk_option(mut self, option: &str) -> Self {
        self.boot.disk_options.push(option.to_string());
        self
    }

    /// Overrides the hard timeout (default 90 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.boot.timeout = timeout;
        self
    }

    /// Builds the initramfs for this run; `nonce` goes into the verdict line.
    pub fn initramfs(
        &self,
        assets: &Assets,
        policy: &Path,
        nonce: &str,
    ) -> Result<Initramfs, Error> {
        for f in &self.filters {
            if f.is_empty()
                || !f
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_:".contains(c))
            {
                return Err(Error::Invalid(format!(
                    "test filter {f:?} may only hold letters, digits, `_` and `:`"
                )));
            }
        }
        if !self
            .suite
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(Error::Invalid(format!(
                "suite name {:?} may only hold letters, digits, `_` and `-`",
                self.suite
            )));
        }
        let mut fs = Initramfs::new();
        for dir in [
            "/proc",
            "/sys",
            "/dev",
            "/tmp",
            "/run",
            "/root",
            "/var/tmp",
            "/bin",
            "/sbin",
            "/usr/bin",
            "/usr/sbin",
        ] {
            fs.dir(dir, 0o755)?;
        }
        fs.char_device("/dev/console", 5, 1, 0o600)?;
        fs.host_file("/bin/busybox", &assets.busybox, 0o755)?;
        fs.bytes(
            "/etc/selinux/config",
            "SELINUX=permissive\nSELINUXTYPE=kvmsec\n",
            0o644,
        )?;
        fs.host_file(GUEST_POLICY, policy, 0o644)?;
        let module_dir = format!("/lib/modules/{}/kvmsec", assets.kernel_release);
        let mut module_names = Vec::new();
        for module in &assets.modules {
            let name = module
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .ok_or_else(|| Error::Invalid(format!("bad module path {}", module.display())))?;
            fs.host_file(format!("{module_dir}/{name}"), module, 0o644)?;
            module_names.push(name);
        }

        let binary_name = self
            .binary
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .filter(|n| {
                !n.is_empty()
                    && n.chars()
                        .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
            })
            .ok_or_else(|| {
                Error::Invalid(format!("unusable binary name {}", self.binary.display()))
            })?;
        let guest_binary = format!("{GUEST_BINARY_DIR}/{binary_name}");
        fs.host_file(&guest_binary, &self.binary, 0o755)?;
        for lib in libs::shared_libraries(&self.binary)? {
            fs.host_file(&lib, &lib, 0o755)?;
        }

        let mut args = vec!["--test-threads=1".to_string(), "--nocapture".to_string()];
        if self.exact {
            args.push("--exact".into());
        }
        args.extend(self.filters.iter().cloned());
        let init = init_script(&InitParams {
            nonce,
            suite: &self.suite,
            module_dir: &module_dir,
            modules: &module_names,
            binary: &guest_binary,
            args: &args,
            disk: self.disk_mib.is_some(),
        });
        fs.bytes("/init", init, 0o755)?;
        Ok(fs)
    }

    /// Boots a VM, runs the guest tests, and reports.
    pub fn run(&self, assets: &Assets) -> Result<GuestReport, Error> {
        let dir = tempfile::Builder::new()
            .prefix("kvmsec-vmrig-")
            .tempdir()
            .map_err(Error::io("creating a temporary directory"))?;
        let nonce = format!("{:016x}", RandomState::new().hash_one(std::process::id()));
        let policy = current_policy(assets, dir.path())?;
        let initrd = dir.path().join("initramfs.cpio");
        let file =
            File::create(&initrd).map_err(Error::io(format!("creating {}", initrd.display())))?;
        self.initramfs(assets, &policy, &nonce)?
            .write(BufWriter::new(file))?
            .into_inner()
            .map_err(|e| Error::io(format!("writing {}", initrd.display()))(e.into_error()))?;

        let mut boot = self.boot.clone();
        if let Some(mib) = self.disk_mib {
            let disk = dir.path().join("disk.raw");
            let f =
                File::create(&disk).map_err(Error::io(format!("creating {}", disk.display())))?;
            f.set_len(mib * 1024 * 1024)
                .map_err(Error::io(format!("sizing {}", disk.display())))?;
            boot.disk = Some(disk);
        }
        let outcome = qemu::boot(assets, &initrd, &boot)?;
        let verdict = Verdict::parse(&outcome.console, &nonce);
        Ok(GuestReport {
            outcome,
            verdict,
            min_passed: self.min_passed,
        })
    }
}

/// The compiled policy to use: the fetched one, or, when the policy source in
/// the repository changed since `scripts/vmrig-fetch` ran, a fresh build of it
/// made with the fetched `checkpolicy` in `scratch`. (Without the repository,
/// e.g. a test binary copied elsewhere, the fetched policy is used.)
fn current_policy(assets: &Assets, scratch: &Path) -> Result<PathBuf, Error> {
    let Ok(source) = fs::read(POLICY_SOURCE) else {
        return Ok(assets.policy.clone());
    };
    if fs::read(&assets.policy_source).ok().as_deref() == Some(&source[..]) {
        return Ok(assets.policy.clone());
    }
    let out = scratch.join("policy.33");
    let result = Command::new(&assets.checkpolicy)
        .args(["-M", "-U", "allow", "-c", "33", "-o"])
        .arg(&out)
        .arg(POLICY_SOURCE)
        .output()
        .map_err(Error::io(format!(
            "running {}",
            assets.checkpolicy.display()
        )))?;
    if !result.status.success() {
        return Err(Error::Invalid(format!(
            "checkpolicy rejected {POLICY_SOURCE}:\n{}{}",
            String::from_utf8_lossy(&result.stdout),
            String::from_utf8_lossy(&result.stderr)
        )));
    }
    Ok(out)
}

struct InitParams<'a> {
    nonce: &'a str,
    suite: &'a str,
    module_dir: &'a str,
    modules: &'a [String],
    binary: &'a str,
    args: &'a [String],
    disk: bool,
}

/// The guest's `/init` (a busybox shell script). Every name and argument was
/// checked to hold only characters that need no quoting, or none beyond the
/// single quotes used here.
fn init_script(p: &InitParams<'_>) -> String {
    let modules = p.modules.join(" ");
    let args = p
        .args
        .iter()
        .map(|a| format!("'{a}'"))
        .collect::<Vec<_>>()
        .join(" ");
    let disk = if p.disk {
        "[ -b /dev/vda ] || setup_failed 'no /dev/vda (virtio disk)'\n"
    } else {
        ""
    };
    format!(
        r#"#!/bin/busybox sh
# Written by kvmsec-tests (vmrig): prepares the guest and runs the tests.
/bin/busybox --install -s
export PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root
finish() {{
    echo "{EXIT_MARKER} {nonce} $1"
    sync
    poweroff -f
    exit "$1"
}}
setup_failed() {{
    echo "{SETUP_FAILED_MARKER} $*"
    finish 90
}}
mount -t proc proc /proc || setup_failed 'mount /proc'
mount -t sysfs sysfs /sys || setup_failed 'mount /sys'
mount -t devtmpfs devtmpfs /dev || setup_failed 'mount /dev'
mount -t tmpfs -o mode=1777 tmpfs /tmp || setup_failed 'mount /tmp'
mount -t tmpfs -o mode=755 tmpfs /run || setup_failed 'mount /run'
mount -t securityfs securityfs /sys/kernel/security || setup_failed 'mount securityfs'
mount -t selinuxfs selinuxfs /sys/fs/selinux || setup_failed 'mount selinuxfs'
mount -t cgroup2 cgroup2 /sys/fs/cgroup || setup_failed 'mount cgroup2'
for m in {modules}; do
    insmod {module_dir}/$m || setup_failed "insmod $m"
done
{disk}cat {GUEST_POLICY} > /sys/fs/selinux/load || setup_failed 'loading the SELinux policy'
printf '%s' '{GUEST_CONTEXT}' > /proc/self/attr/current || setup_failed 'switching to {GUEST_CONTEXT}'
cd /tmp
export {GUEST_ENV}='{suite}' RUST_BACKTRACE=1
{binary} {args}
finish $?
"#,
        nonce = p.nonce,
        suite = p.suite,
        module_dir = p.module_dir,
        binary = p.binary,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_script_runs_the_binary_and_prints_the_verdict() {
        let script = init_script(&InitParams {
            nonce: "abc",
            suite: "selinux",
            module_dir: "/lib/modules/x/kvmsec",
            modules: &["virtio.ko".into(), "bfq.ko".into()],
            binary: "/kvmsec/vm_selinux-123",
            args: &["--test-threads=1".into(), "guest_".into()],
            disk: true,
        });
        assert!(script.starts_with("#!/bin/busybox sh\n"));
        assert!(script.contains("for m in virtio.ko bfq.ko; do"));
        assert!(script.contains("echo \"KVMSEC-VM-EXIT abc $1\""));
        assert!(script.contains("/kvmsec/vm_selinux-123 '--test-threads=1' 'guest_'\n"));
        assert!(script.contains("export KVMSEC_IN_GUEST='selinux'"));
        assert!(script.contains("[ -b /dev/vda ]"));
    }

    #[test]
    fn bad_filters_are_rejected() {
        let assets = Assets {
            root: "/a".into(),
            kernel: "/a/k".into(),
            kernel_release: "r".into(),
            modules: vec![],
            qemu: "/a/q".into(),
            qemu_lib_dir: "/a/l".into(),
            qemu_module_dir: "/a/m".into(),
            firmware_dir: "/a/f".into(),
            busybox: "/a/b".into(),
            checkpolicy: "/a/c".into(),
            policy: "/a/p".into(),
            policy_source: "/a/s".into(),
        };
        let tests = GuestTests::with_binary("s", "/bin/true").filter("a'b");
        let err = tests
            .initramfs(&assets, Path::new("/a/p"), "n")
            .unwrap_err();
        assert!(err.to_string().contains("a'b"), "{err}");
    }
}

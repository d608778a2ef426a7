//! Booting the test VM under QEMU's software emulator and capturing its console.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use super::Error;
use super::assets::Assets;

/// Kernel command line used for every boot.
///
/// - `lsm=...,selinux`: the Debian kernel has no `selinux=` boot parameter and
///   AppArmor as its default major LSM, so SELinux is enabled through the LSM
///   list.
/// - `enforcing=0`: boot permissive; tests switch modes themselves.
/// - `cgroup_no_v1=all`: no controller can be bound to a v1 hierarchy, so the
///   guest is a pure cgroup v2 host.
/// - `panic=-1` with QEMU's `-no-reboot`: a kernel panic ends the run at once.
pub const KERNEL_CMDLINE: &str = "console=ttyS0 lsm=lockdown,yama,integrity,selinux enforcing=0 \
     cgroup_no_v1=all panic=-1 quiet loglevel=4";

/// How to boot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootConfig {
    /// Guest memory in MiB.
    pub memory_mib: u32,
    /// Number of virtual CPUs.
    pub cpus: u32,
    /// The emulator is killed after this long.
    pub timeout: Duration,
    /// A raw disk image attached as a virtio block device (`/dev/vda`).
    pub disk: Option<PathBuf>,
    /// Extra `-drive` suboptions for the disk, e.g. `throttling.iops-total=200`.
    pub disk_options: Vec<String>,
}

impl Default for BootConfig {
    fn default() -> Self {
        BootConfig {
            memory_mib: 512,
            cpus: 2,
            timeout: Duration::from_secs(90),
            disk: None,
            disk_options: Vec::new(),
        }
    }
}

/// What a boot produced.
#[derive(Debug, Clone)]
pub struct BootOutcome {
    /// Everything the guest wrote to its serial console.
    pub console: String,
    /// The emulator's own diagnostics (stderr).
    pub emulator_stderr: String,
    /// The emulator's exit status; `None` when it was killed for the timeout.
    pub status: Option<ExitStatus>,
    /// Whether the timeout fired.
    pub timed_out: bool,
    /// Wall time from start to exit (or kill).
    pub elapsed: Duration,
}

/// Kills and reaps the emulator if the caller unwinds while it runs.
struct Reaper(Option<Child>);

impl Drop for Reaper {
    fn drop(&mut self) {
        if let Some(child) = self.0.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Collects a pipe into a shared buffer on a thread.
fn collect<R: Read + Send + 'static>(mut pipe: R) -> (Arc<Mutex<Vec<u8>>>, thread::JoinHandle<()>) {
    let buf = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&buf);
    let handle = thread::spawn(move || {
        let mut chunk = [0u8; 8192];
        loop {
            match pipe.read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => match sink.lock() {
                    Ok(mut v) => v.extend_from_slice(&chunk[..n]),
                    Err(_) => break,
                },
            }
        }
    });
    (buf, handle)
}

fn take(buf: &Arc<Mutex<Vec<u8>>>) -> String {
    match buf.lock() {
        Ok(v) => String::from_utf8_lossy(&v).into_owned(),
        Err(_) => String::new(),
    }
}

/// The emulator command line for `initrd` (everything but the program).
pub fn qemu_args(assets: &Assets, initrd: &Path, config: &BootConfig) -> Vec<String> {
    let mut args: Vec<String> = [
        "-L",
        &assets.firmware_dir.to_string_lossy(),
        "-accel",
        "tcg",
        "-m",
        &config.memory_mib.to_string(),
        "-smp",
        &config.cpus.to_string(),
        "-nographic",
        "-nodefaults",
        "-serial",
        "stdio",
        "-no-reboot",
        "-nic",
        "none",
        "-kernel",
        &assets.kernel.to_string_lossy(),
        "-initrd",
        &initrd.to_string_lossy(),
        "-append",
        KERNEL_CMDLINE,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    if let Some(disk) = &config.disk {
        let mut drive = format!("file={},if=virtio,format=raw", disk.display());
        for opt in &config.disk_options {
            drive.push(',');
            drive.push_str(opt);
        }
        args.push("-drive".into());
        args.push(drive);
    }
    args
}

/// Boots `initrd` and waits for the emulator to exit or the timeout to fire.
///
/// The guest's serial console is QEMU's stdout. The emulator is always reaped,
/// also when this function unwinds.
pub fn boot(assets: &Assets, initrd: &Path, config: &BootConfig) -> Result<BootOutcome, Error> {
    let start = Instant::now();
    let mut child = Command::new(&assets.qemu)
        .args(qemu_args(assets, initrd, config))
        .env("QEMU_MODULE_DIR", &assets.qemu_module_dir)
        .env("LD_LIBRARY_PATH", &assets.qemu_lib_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(Error::io(format!("starting {}", assets.qemu.display())))?;
    let (console, console_reader) = match child.stdout.take() {
        Some(out) => {
            let (buf, handle) = collect(out);
            (buf, Some(handle))
        }
        None => (Arc::default(), None),
    };
    let (stderr, stderr_reader) = match child.stderr.take() {
        Some(err) => {
            let (buf, handle) = collect(err);
            (buf, Some(handle))
        }
        None => (Arc::default(), None),
    };
    let mut reaper = Reaper(Some(child));

    let mut status = None;
    let mut timed_out = false;
    while let Some(child) = reaper.0.as_mut() {
        match child.try_wait() {
            Ok(Some(s)) => {
                status = Some(s);
                reaper.0 = None;
            }
            Ok(None) if start.elapsed() >= config.timeout => {
                timed_out = true;
                let _ = child.kill();
                let _ = child.wait();
                reaper.0 = None;
            }
            Ok(None) => thread::sleep(Duration::from_millis(20)),
            Err(source) => return Err(Error::io("waiting for the emulator")(source)),
        }
    }
    let elapsed = start.elapsed();
    // The pipes close when the emulator is gone.
    for handle in [console_reader, stderr_reader].into_iter().flatten() {
        let _ = handle.join();
    }
    Ok(BootOutcome {
        console: take(&console),
        emulator_stderr: take(&stderr),
        status,
        timed_out,
        elapsed,
    })
}

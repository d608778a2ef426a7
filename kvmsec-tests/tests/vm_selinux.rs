//! kvmsec-selinux against SELinux with a real policy loaded, in the throw-away
//! test VM.
//!
//! `vm_selinux` (host) boots the VM and runs this binary's `guest_*` tests
//! inside it; on the host those tests return at once. The guest runs Debian's
//! cloud kernel with our MLS test policy (`kvmsec-tests/vmrig/policy`), booted
//! permissive, the tests running as `unconfined_u:unconfined_r:unconfined_t`.
//! Every answer of the crate is checked against the kernel's own files.

use std::fs::{self, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use kvmsec_selinux::{
    DiskImage, Error, GuestLabels, ImageAccess, LabelOptions, LabelOutcome, LabelTemplates,
    McsAllocator, Mode, ProcAttr, RestoreOutcome, SecurityContext, SelinuxState, Selinuxfs,
    SelinuxfsLookup, Symlink, current_label, file_label, find_selinuxfs, getenforce, label_images,
    process_label, read_config, set_exec_label, set_file_label, set_file_label_raw, setenforce,
};
use kvmsec_tests::vmrig::{self, GUEST_CONTEXT, GuestTests};

const SUITE: &str = "selinux";
const SELINUXFS: &str = "/sys/fs/selinux";

#[test]
fn vm_selinux() {
    let Some(assets) = vmrig::assets_or_skip("vm_selinux") else {
        return;
    };
    let report = GuestTests::new(SUITE)
        .expect("test executable")
        .filter("guest_")
        .min_passed(7)
        .run(&assets)
        .expect("booting the test VM");
    report.assert_passed();
}

// ------------------------------------------------------------ guest helpers

/// Reads a kernel string attribute, dropping the trailing NUL / newline.
fn read_kernel_string(path: impl AsRef<Path>) -> String {
    let path = path.as_ref();
    let bytes = fs::read(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let text = String::from_utf8(bytes).expect("kernel strings are UTF-8 here");
    text.trim_end_matches(['\0', '\n']).to_string()
}

fn kernel_enforce() -> String {
    read_kernel_string(format!("{SELINUXFS}/enforce"))
}

fn selinuxfs() -> Selinuxfs {
    match find_selinuxfs().expect("looking for selinuxfs") {
        SelinuxfsLookup::Mounted(fs) => fs,
        other => panic!("selinuxfs not found: {other:?}"),
    }
}

/// Enforcing (through the crate) for its lifetime, permissive again on drop.
struct Enforcing;

impl Enforcing {
    fn start() -> Self {
        setenforce(Mode::Enforcing).expect("setenforce 1");
        assert_eq!(kernel_enforce(), "1");
        Enforcing
    }
}

impl Drop for Enforcing {
    fn drop(&mut self) {
        let _ = setenforce(Mode::Permissive);
    }
}

/// Asks the kernel to validate and canonicalise `context` exactly as written
/// (selinuxfs `context` transaction, bypassing the crate).
fn kernel_canonical(context: &str) -> io::Result<String> {
    let mut f = OpenOptions::new()
        .read(true)
        .write(true)
        .open(format!("{SELINUXFS}/context"))?;
    f.write_all(format!("{context}\0").as_bytes())?;
    let mut buf = Vec::new();
    f.read_to_end(&mut buf)?;
    Ok(String::from_utf8_lossy(&buf)
        .trim_end_matches(['\0', '\n'])
        .to_string())
}

/// A small deterministic generator (xorshift64*), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// A category list as a user might write it: unsorted, with duplicates,
    /// sometimes with `cA.cB` ranges and dense runs.
    fn categories(&mut self) -> String {
        let mut items = Vec::new();
        for _ in 0..1 + self.below(10) {
            let a = self.below(1024);
            match self.below(4) {
                0 if a < 1020 => items.push(format!("c{a}.c{}", a + 1 + self.below(3))),
                1 if a < 1016 => items.extend((a..a + 2 + self.below(6)).map(|c| format!("c{c}"))),
                _ => items.push(format!("c{a}")),
            }
        }
        items.join(",")
    }
}

// -------------------------------------------------------------- guest tests

#[test]
fn guest_policy_facts_and_config() {
    if !vmrig::in_guest(SUITE) {
        return;
    }
    let fs = selinuxfs();
    assert_eq!(fs.path(), Path::new(SELINUXFS));
    assert!(!fs.is_read_only());
    assert!(fs.mls_enabled().unwrap());
    assert_eq!(fs.policy_version().unwrap(), 33);
    assert!(
        !fs.deny_unknown().unwrap(),
        "the test policy is built with handle_unknown allow"
    );
    let lsm = read_kernel_string("/sys/kernel/security/lsm");
    assert!(lsm.split(',').any(|l| l == "selinux"), "lsm list {lsm}");
    let config = read_config().unwrap().expect("/etc/selinux/config");
    assert_eq!(config.mode, Some(Mode::Permissive));
    assert_eq!(config.policy_type, "kvmsec");
}

#[test]
fn guest_getenforce_and_setenforce_agree_with_the_kernel() {
    if !vmrig::in_guest(SUITE) {
        return;
    }
    assert_eq!(kernel_enforce(), "0", "booted with enforcing=0");
    assert_eq!(getenforce().unwrap(), SelinuxState::Permissive);
    {
        let _enforcing = Enforcing::start();
        assert_eq!(getenforce().unwrap(), SelinuxState::Enforcing);
        setenforce(Mode::Enforcing).unwrap(); // no change: still fine
        assert_eq!(kernel_enforce(), "1");
    }
    assert_eq!(kernel_enforce(), "0");
    assert_eq!(getenforce().unwrap(), SelinuxState::Permissive);
    assert!(matches!(
        setenforce(Mode::Disabled),
        Err(Error::CannotDisableAtRuntime)
    ));
    assert_eq!(kernel_enforce(), "0");
}

#[test]
fn guest_current_context_comes_from_proc() {
    if !vmrig::in_guest(SUITE) {
        return;
    }
    let current = current_label().unwrap().expect("a labelled process");
    assert_eq!(current.to_string(), GUEST_CONTEXT);
    assert_eq!(
        current.to_string(),
        read_kernel_string("/proc/self/attr/current")
    );
    assert_eq!(current.type_(), "unconfined_t");
    // /init (pid 1) switched itself before starting us.
    let init = process_label(1, ProcAttr::Current).unwrap();
    assert_eq!(init.map(|c| c.to_string()).as_deref(), Some(GUEST_CONTEXT));
}

#[test]
fn guest_kernel_canonicalises_contexts_like_we_do() {
    if !vmrig::in_guest(SUITE) {
        return;
    }
    let fs = selinuxfs();
    let fixed = [
        (
            "system_u:object_r:svirt_image_t:s0:c1,c2,c3",
            "system_u:object_r:svirt_image_t:s0:c1.c3",
        ),
        (
            "system_u:system_r:svirt_t:s0:c5,c2",
            "system_u:system_r:svirt_t:s0:c2,c5",
        ),
        (
            "system_u:object_r:virt_content_t:s0-s0",
            "system_u:object_r:virt_content_t:s0",
        ),
        (
            "unconfined_u:unconfined_r:unconfined_t:s0-s0:c0.c1023",
            GUEST_CONTEXT,
        ),
        (
            "system_u:object_r:svirt_image_t:s0:c0.c3,c2",
            "system_u:object_r:svirt_image_t:s0:c0.c3",
        ),
    ];
    for (input, want) in fixed {
        assert_eq!(
            kernel_canonical(input).unwrap(),
            want,
            "kernel, input {input}"
        );
        let ours = SecurityContext::parse(input).unwrap();
        assert_eq!(ours.to_string(), want, "crate, input {input}");
        assert_eq!(fs.canonicalize_context(&ours).unwrap(), ours);
    }

    // The policy does not know this type: the kernel refuses, and so does the
    // crate's check.
    let unknown = SecurityContext::parse("system_u:object_r:no_such_t:s0").unwrap();
    assert!(kernel_canonical(&unknown.to_string()).is_err());
    assert!(matches!(
        fs.check_context(&unknown),
        Err(Error::ContextRejected { .. })
    ));
    // Malformed ranges: both the kernel and the crate's parser refuse.
    for bad in [
        "system_u:object_r:svirt_image_t:s0:c3.c1",
        "system_u:object_r:svirt_image_t:s0:c5.c5",
        "system_u:object_r:svirt_image_t:s0:c1024",
        "system_u:system_r:svirt_t:s0:c1,c2-s0:c1",
    ] {
        assert!(kernel_canonical(bad).is_err(), "kernel accepted {bad}");
        assert!(SecurityContext::parse(bad).is_err(), "crate accepted {bad}");
    }

    // Many generated contexts, single levels and ranges, written
    // non-canonically: the kernel's answer equals the crate's canonical form.
    let mut rng = Rng(0x6b76_6d73_6563_0001);
    let heads = [
        "system_u:object_r:svirt_image_t",
        "system_u:system_r:svirt_t",
        "system_u:system_r:svirt_tcg_t",
        "unconfined_u:unconfined_r:unconfined_t",
        "system_u:object_r:virt_content_t",
    ];
    for round in 0..500 {
        let head = heads[round % heads.len()];
        let low = rng.categories();
        let input = match round % 4 {
            0 => format!("{head}:s0:{low}"),
            1 => format!("{head}:s0-s0:{low}"),
            2 => format!("{head}:s0-s0:{low},{}", rng.categories()),
            _ => format!("{head}:s0:{low}-s0:{low},{}", rng.categories()),
        };
        let kernel =
            kernel_canonical(&input).unwrap_or_else(|e| panic!("kernel rejected {input}: {e}"));
        let ours = SecurityContext::parse(&input)
            .unwrap_or_else(|e| panic!("crate rejected {input}: {e}"));
        assert_eq!(ours.to_string(), kernel, "input {input}");
        assert_eq!(fs.canonicalize_context(&ours).unwrap().to_string(), kernel);
    }
}

#[test]
fn guest_file_labels_read_back_canonical() {
    if !vmrig::in_guest(SUITE) {
        return;
    }
    let path = Path::new("/tmp/label-me");
    fs::write(path, b"x").unwrap();
    let fresh = file_label(path, Symlink::Follow).unwrap().unwrap();
    assert_eq!(
        fresh.to_string(),
        "unconfined_u:object_r:tmpfs_t:s0",
        "new tmpfs files take the tmpfs label and the creator's user"
    );

    let wanted = SecurityContext::parse("system_u:object_r:svirt_image_t:s0:c12,c7,c9,c8").unwrap();
    set_file_label(path, Symlink::Follow, &wanted).unwrap();
    let back = file_label(path, Symlink::Follow).unwrap().unwrap();
    assert_eq!(back, wanted);
    assert_eq!(
        back.to_string(),
        "system_u:object_r:svirt_image_t:s0:c7.c9,c12"
    );

    // Written raw and non-canonical: the kernel stores its canonical form.
    set_file_label_raw(
        path,
        Symlink::Follow,
        b"system_u:object_r:svirt_image_t:s0:c3,c1,c2,c2\0",
    )
    .unwrap();
    let back = file_label(path, Symlink::Follow).unwrap().unwrap();
    assert_eq!(back.to_string(), "system_u:object_r:svirt_image_t:s0:c1.c3");

    // A context the policy does not know: root holds CAP_MAC_ADMIN (the
    // policy leaves capability2 to handle_unknown=allow), so the kernel keeps
    // it as an unmapped label instead of failing with EINVAL.
    let unknown = SecurityContext::parse("system_u:object_r:no_such_t:s0").unwrap();
    set_file_label(path, Symlink::Follow, &unknown).unwrap();
    assert_eq!(file_label(path, Symlink::Follow).unwrap(), Some(unknown));
}

/// Environment of the probe helper (see [`svirt_probe_helper`]).
const PROBE_ENV: &str = "KVMSEC_SVIRT_PROBE";
const PROBE_MARKER: &str = "KVMSEC-PROBE";

/// What a process running with `label` may open: runs this executable's
/// [`svirt_probe_helper`] with `label` as its exec context and returns the
/// helper's report, one `path=ok|EACCES|...` word per file.
fn probe_as(label: &SecurityContext, files: &[&Path]) -> Vec<String> {
    let exe = std::env::current_exe().unwrap();
    let list = files
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(":");
    // The exec context is per thread: set it, fork+exec from this thread, clear it.
    set_exec_label(Some(label)).unwrap();
    let output = Command::new(exe)
        .args([
            "--exact",
            "svirt_probe_helper",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(PROBE_ENV, list)
        .output();
    set_exec_label(None).unwrap();
    let output = output.expect("running the probe helper");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let report = stdout
        .lines()
        .find_map(|l| l.split_once(PROBE_MARKER).map(|(_, report)| report))
        .unwrap_or_else(|| {
            panic!(
                "no probe report; status {}, stdout:\n{stdout}\nstderr:\n{}",
                output.status,
                String::from_utf8_lossy(&output.stderr)
            )
        });
    report.split_whitespace().map(str::to_string).collect()
}

/// Helper process for [`probe_as`]: reports its own label and whether it can
/// open each file named in `KVMSEC_SVIRT_PROBE`. Does nothing otherwise.
#[test]
fn svirt_probe_helper() {
    let Ok(list) = std::env::var(PROBE_ENV) else {
        eprintln!("nothing to do: this is the helper process of guest_svirt_labels_*");
        return;
    };
    let mut words = vec![read_kernel_string("/proc/self/attr/current")];
    for path in list.split(':') {
        let name = Path::new(path).file_name().unwrap().to_string_lossy();
        let result = match fs::File::open(path) {
            Ok(_) => "ok".to_string(),
            Err(e) if e.raw_os_error() == Some(libc::EACCES) => "EACCES".to_string(),
            Err(e) => format!("error({e})"),
        };
        words.push(format!("{name}={result}"));
    }
    println!("{PROBE_MARKER} {}", words.join(" "));
}

#[test]
fn guest_svirt_labels_confine_guests_when_enforcing() {
    if !vmrig::in_guest(SUITE) {
        return;
    }
    let dir = PathBuf::from("/tmp/svirt");
    fs::create_dir_all(&dir).unwrap();
    let a_img = dir.join("guest-a.img");
    let b_img = dir.join("guest-b.img");
    let iso = dir.join("install.iso");
    let plain = dir.join("plain.txt");
    for p in [&a_img, &b_img, &iso, &plain] {
        fs::write(p, b"data").unwrap();
    }
    let original = file_label(&a_img, Symlink::Follow).unwrap();

    let templates = LabelTemplates::default();
    let mut mcs = McsAllocator::new();
    let a = GuestLabels::dynamic(&mut mcs, &templates).unwrap();
    let b = GuestLabels::dynamic(&mut mcs, &templates).unwrap();
    assert_ne!(a.level(), b.level());
    for guest in [&a, &b] {
        // The kernel accepts the allocator's labels as they are.
        assert_eq!(
            selinuxfs().canonicalize_context(&guest.process).unwrap(),
            guest.process
        );
        assert_eq!(
            selinuxfs().canonicalize_context(&guest.image).unwrap(),
            guest.image
        );
    }
    let a_disks = [
        DiskImage::new(&a_img, ImageAccess::ReadWrite),
        DiskImage::new(&iso, ImageAccess::ReadOnly),
    ];
    let a_labels = label_images(&a_disks, &a, &templates, LabelOptions::default()).unwrap();
    let b_disks = [DiskImage::new(&b_img, ImageAccess::ReadWrite)];
    let b_labels = label_images(&b_disks, &b, &templates, LabelOptions::default()).unwrap();
    assert!(
        a_labels
            .files()
            .iter()
            .all(|f| f.outcome == LabelOutcome::Relabelled)
    );
    assert_eq!(
        file_label(&a_img, Symlink::Follow).unwrap().as_ref(),
        Some(&a.image)
    );
    assert_eq!(
        file_label(&b_img, Symlink::Follow).unwrap().as_ref(),
        Some(&b.image)
    );
    assert_eq!(
        file_label(&iso, Symlink::Follow)
            .unwrap()
            .map(|c| c.type_().to_string()),
        Some("virt_content_t".to_string())
    );

    let files = [
        a_img.as_path(),
        b_img.as_path(),
        iso.as_path(),
        plain.as_path(),
    ];
    let a_ctx = a.process.to_string();

    // Permissive: the guest runs with its label, and nothing is refused.
    let seen = probe_as(&a.process, &files);
    assert_eq!(
        seen,
        [
            a_ctx.as_str(),
            "guest-a.img=ok",
            "guest-b.img=ok",
            "install.iso=ok",
            "plain.txt=ok"
        ],
        "permissive"
    );

    {
        let _enforcing = Enforcing::start();
        let seen = probe_as(&a.process, &files);
        assert_eq!(
            seen,
            [
                a_ctx.as_str(),
                "guest-a.img=ok",
                "guest-b.img=EACCES",
                "install.iso=ok",
                "plain.txt=EACCES"
            ],
            "enforcing: own image and shared content readable; the other guest's image \
             (MCS) and a plain tmpfs file (type enforcement) refused"
        );
        // And the other way round.
        let seen = probe_as(&b.process, &files);
        assert_eq!(seen[1..3], ["guest-a.img=EACCES", "guest-b.img=ok"]);
    }

    // Restoring puts the original labels back on the private images; shared
    // read-only content keeps its label (other guests may still use it).
    for result in a_labels.restore().into_iter().chain(b_labels.restore()) {
        let want = if result.path == iso {
            RestoreOutcome::Kept
        } else {
            RestoreOutcome::Restored
        };
        assert_eq!(result.outcome, want, "{}", result.path.display());
    }
    assert_eq!(file_label(&a_img, Symlink::Follow).unwrap(), original);
    a.release(&mut mcs);
    b.release(&mut mcs);
}

#[test]
fn guest_report_follows_the_kernel_mode() {
    if !vmrig::in_guest(SUITE) {
        return;
    }
    use kvmsec_selinux::report::{Status, host_checks};
    let mode = |checks: &[kvmsec_selinux::report::Check]| {
        checks
            .iter()
            .find(|c| c.id == "selinux.mode")
            .map(|c| c.status)
            .expect("a selinux.mode check")
    };
    let permissive = host_checks();
    for c in &permissive {
        println!(
            "permissive: {} {} ({}): {}",
            c.status, c.id, c.title, c.reason
        );
    }
    assert_eq!(mode(&permissive), Status::Warn);
    let _enforcing = Enforcing::start();
    let enforcing = host_checks();
    for c in &enforcing {
        println!(
            "enforcing: {} {} ({}): {}",
            c.status, c.id, c.title, c.reason
        );
    }
    assert_eq!(mode(&enforcing), Status::Pass);
    assert!(enforcing.iter().all(|c| c.status != Status::Fail));
}

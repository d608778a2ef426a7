//! The `host-report` example on this host: what it must say here, as text and JSON, for
//! images made by `qemu-img`, with `--strict`, and as an unprivileged user.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use kvmsec_tests::report::{HostReport, Options, Status};

/// The example binary cargo built next to this test binary (`cargo test` builds examples).
fn example() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>");
    dir.join("examples").join("host-report")
}

fn run(args: &[&str]) -> Output {
    Command::new(example())
        .args(args)
        .output()
        .expect("run host-report")
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

fn qemu_img(args: &[&str]) {
    let out = Command::new("qemu-img")
        .args(args)
        .output()
        .expect("qemu-img is installed");
    assert!(
        out.status.success(),
        "qemu-img {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `qemu-img create` of a 16 MiB qcow2 image, encrypted with `format` (`luks` or `aes`) when
/// given, over a qcow2 `backing` file when given.
fn qemu_img_create(path: &str, format: Option<&str>, backing: Option<&str>) {
    let mut args = vec!["create", "-q", "-f", "qcow2"];
    let opts;
    if let Some(format) = format {
        // A short PBKDF2 calibration keeps LUKS creation fast; aes ignores iter-time.
        let iter = if format == "luks" {
            ",encrypt.iter-time=10"
        } else {
            ""
        };
        opts = format!("encrypt.format={format},encrypt.key-secret=s0{iter}");
        args.extend(["--object", "secret,id=s0,data=hunter2", "-o", &opts]);
    }
    if let Some(backing) = backing {
        args.extend(["-b", backing, "-F", "qcow2"]);
    }
    args.extend([path, "16M"]);
    qemu_img(&args);
}

fn status_of(report: &HostReport, id: &str) -> Status {
    report
        .line(id)
        .unwrap_or_else(|| panic!("no check {id} in\n{report}"))
        .status
}

#[test]
fn live_host_report_says_what_this_machine_is() {
    if !is_root() {
        eprintln!("live_host_report_says_what_this_machine_is: skipped: needs root");
        return;
    }
    let report = HostReport::collect(&Options::default());
    let text = report.to_string();

    // This machine's CPU has SMEP, and the kernel left it on.
    assert_eq!(status_of(&report, "cpu.smep"), Status::Pass, "{text}");
    // v1 controllers under /sys/fs/cgroup plus cgroup2 at /sys/fs/cgroup/unified.
    let layout = report.line("cgroup.layout").expect("cgroup.layout");
    assert!(layout.reason.to_lowercase().contains("hybrid"), "{text}");
    // The kernel has no SELinux: no selinuxfs is mounted.
    let mode = report.line("selinux.mode").expect("selinux.mode");
    assert!(mode.reason.contains("Disabled"), "{text}");
    assert!(mode.reason.contains("selinuxfs"), "{text}");
}

#[test]
fn example_prints_text_and_json() {
    let text = run(&[]);
    assert_eq!(text.status.code(), Some(0));
    let stdout = String::from_utf8(text.stdout).unwrap();
    for heading in ["\nCPU\n", "\ncgroups\n", "\nSELinux\n"] {
        assert!(stdout.contains(heading), "missing {heading:?} in\n{stdout}");
    }

    let json = run(&["--json"]);
    assert_eq!(json.status.code(), Some(0));
    let value: serde_json::Value = serde_json::from_slice(&json.stdout).expect("valid JSON");
    let sections = value["sections"].as_array().expect("sections array");
    let areas: Vec<&str> = sections
        .iter()
        .map(|s| s["area"].as_str().unwrap())
        .collect();
    assert_eq!(areas, ["CPU", "cgroups", "SELinux"]);
    for section in sections {
        for check in section["checks"].as_array().unwrap() {
            let status = check["status"].as_str().unwrap();
            assert!(
                ["PASS", "WARN", "FAIL", "INFO"].contains(&status),
                "{check}"
            );
        }
    }

    let usage = run(&["--no-such-flag"]);
    assert_eq!(usage.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&usage.stderr).contains("usage: host-report"));
}

#[test]
fn images_made_by_qemu_img_get_the_right_verdict() {
    let dir = tempfile::tempdir().unwrap();
    let p = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    let (plain, luks, aes, overlay) = (
        p("plain.qcow2"),
        p("luks.qcow2"),
        p("aes.qcow2"),
        p("overlay.qcow2"),
    );
    qemu_img_create(&plain, None, None);
    qemu_img_create(&luks, Some("luks"), None);
    qemu_img_create(&aes, Some("aes"), None);
    // An encrypted overlay whose backing file holds guest data in clear.
    qemu_img_create(&overlay, Some("luks"), Some(&plain));

    let report = HostReport::collect(&Options {
        images: vec![
            plain.clone().into(),
            luks.clone().into(),
            aes.clone().into(),
            overlay.clone().into(),
        ],
        ..Options::default()
    });
    let image = |path: &str| {
        report
            .sections
            .iter()
            .find(|s| s.area == format!("Image {path}"))
            .unwrap_or_else(|| panic!("no section for {path}"))
    };
    let encryption = |path: &str| {
        image(path)
            .checks
            .iter()
            .find(|c| c.id == "image.encryption")
            .expect("image.encryption")
            .clone()
    };

    let plain_enc = encryption(&plain);
    assert_eq!(plain_enc.status, Status::Warn, "{report}");
    let luks_enc = encryption(&luks);
    assert_eq!(luks_enc.status, Status::Pass, "{report}");
    assert!(
        luks_enc.reason.contains("aes-256") && luks_enc.reason.contains("xts"),
        "{report}"
    );
    let aes_enc = encryption(&aes);
    assert_eq!(aes_enc.status, Status::Fail, "{report}");
    assert!(encryption(&overlay).status == Status::Pass, "{report}");
    let chain = image(&overlay)
        .checks
        .iter()
        .find(|c| c.id == "image.backing-chain")
        .expect("chain");
    assert_eq!(chain.status, Status::Warn, "{report}");
    assert!(chain.reason.contains("plain.qcow2"), "{report}");

    // --strict turns the legacy-AES FAIL into exit status 1; without it the status is 0.
    assert_eq!(run(&["--image", &aes]).status.code(), Some(0));
    assert_eq!(run(&["--strict", "--image", &aes]).status.code(), Some(1));
    let json = run(&["--json", "--image", &luks, &aes]);
    let value: serde_json::Value = serde_json::from_slice(&json.stdout).expect("valid JSON");
    let sections = value["sections"].as_array().unwrap();
    assert_eq!(sections.len(), 5);
    // Image sections name their image as a field, not only in the heading.
    assert_eq!(sections[3]["image"], luks.as_str());
    assert_eq!(sections[4]["image"], aes.as_str());
    assert!(sections[0].get("image").is_none());
}

#[test]
fn unprivileged_user_gets_a_report_that_says_what_it_could_not_check() {
    if !is_root() {
        eprintln!("unprivileged_user_gets_a_report...: skipped: needs root to drop to nobody");
        return;
    }
    let out = Command::new(example())
        .arg("--json")
        .uid(65534)
        .gid(65534)
        .output()
        .expect("run host-report as nobody");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let value: serde_json::Value = serde_json::from_slice(&out.stdout).expect("valid JSON");
    assert_eq!(value["uid"], 65534);
    let reasons: Vec<String> = value["sections"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["checks"].as_array().unwrap().iter())
        .map(|c| c["reason"].as_str().unwrap().to_string())
        .collect();
    // /dev/kvm is root-only here (crw-------), so at least the KVM checks cannot be made.
    assert!(
        reasons.iter().any(|r| r.starts_with("not checked:")),
        "{reasons:#?}"
    );
}

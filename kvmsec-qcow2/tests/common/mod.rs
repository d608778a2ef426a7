//! Helpers shared by the integration tests: running qemu-img / qemu-io, random data.
#![allow(dead_code)] // each test binary uses a different subset of the helpers

use std::path::Path;
use std::process::Command;

/// Runs a command, panicking with its output if it fails; returns stdout.
pub fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs a command and returns (success, stdout+stderr).
pub fn try_run(cmd: &mut Command) -> (bool, String) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

pub fn qemu_img() -> Command {
    Command::new("qemu-img")
}

pub fn qemu_io() -> Command {
    Command::new("qemu-io")
}

/// True when qemu-img is installed; otherwise says why the test is skipped.
pub fn have_qemu() -> bool {
    let ok = Command::new("qemu-img").arg("--version").output().is_ok();
    if !ok {
        eprintln!("skipping: qemu-img not installed");
    }
    ok
}

/// `qemu-img check --output=json` → (corruptions, leaks, check-errors).
pub fn qemu_check(path: &Path, secret: Option<&str>) -> (u64, u64, u64) {
    let mut c = qemu_img();
    c.arg("check").arg("--output=json");
    add_image(&mut c, path, secret);
    let out = c.output().expect("qemu-img check");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_else(|e| {
        panic!(
            "qemu-img check output not JSON ({e}): {text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let get = |k: &str| v.get(k).and_then(|x| x.as_u64()).unwrap_or(0);
    (get("corruptions"), get("leaks"), get("check-errors"))
}

/// Adds the image argument, with a secret for encrypted images.
pub fn add_image(c: &mut Command, path: &Path, secret: Option<&str>) {
    match secret {
        None => {
            c.arg(path);
        }
        Some(s) => {
            c.arg("--object")
                .arg(format!("secret,id=sec0,data={s}"))
                .arg("--image-opts")
                .arg(format!(
                    "driver=qcow2,file.filename={},encrypt.key-secret=sec0",
                    path.display()
                ));
        }
    }
}

/// `qemu-img convert -O raw` of an image, returning the raw bytes.
pub fn qemu_to_raw(path: &Path, secret: Option<&str>) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.raw");
    let mut c = qemu_img();
    c.arg("convert").arg("-O").arg("raw");
    add_image(&mut c, path, secret);
    c.arg(&out);
    run(&mut c);
    std::fs::read(&out).unwrap()
}

/// Deterministic pseudo-random bytes (xorshift).
pub fn pseudo_random(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut v = Vec::with_capacity(len + 8);
    while v.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.extend_from_slice(&x.to_le_bytes());
    }
    v.truncate(len);
    v
}

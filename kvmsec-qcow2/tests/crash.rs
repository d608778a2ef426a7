//! Crash consistency: a writer child process is killed with SIGKILL at random moments; every
//! image must then pass `qemu-img check` without corruptions (leaks are allowed, as in QEMU)
//! and every write that was flushed before the kill must read back intact.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use kvmsec_qcow2::{CreateOptions, Image, OpenOptions, check, create};

const SIZE: u64 = 8 << 20;
const SLOT: u64 = 24 << 10;
const ENV: &str = "KVMSEC_QCOW2_CRASH_WRITER";
const KEY_ENV: &str = "KVMSEC_QCOW2_CRASH_KEYS";

fn nslots() -> u64 {
    SIZE / SLOT
}

/// The slot and data of write `i` in run `seed`.
fn write_of(seed: u64, i: u64) -> (u64, Vec<u8>) {
    let r = pseudo_random(seed * 1_000_003 + i, 8);
    let slot = u64::from_le_bytes(r.try_into().unwrap()) % nslots();
    (
        slot,
        pseudo_random(seed * 7_919 + i * 31 + 1, SLOT as usize),
    )
}

/// The child: writes forever, printing `S i` before write `i` and `F i` after a flush that
/// covers writes up to `i`.
#[test]
fn crash_writer_child() {
    let Ok(spec) = std::env::var(ENV) else {
        return; // only runs as the child of `sigkill_during_writes`
    };
    let (path, seed) = spec.split_once(':').unwrap();
    let seed: u64 = seed.parse().unwrap();
    let mut img = OpenOptions::new().write(true).open(path).unwrap();
    let out = std::io::stdout();
    for i in 0.. {
        let (slot, data) = write_of(seed, i);
        writeln!(out.lock(), "S {i}").unwrap();
        img.write_at(&data, slot * SLOT).unwrap();
        if i % 4 == 3 {
            img.flush().unwrap();
            writeln!(out.lock(), "F {i}").unwrap();
        }
    }
}

#[test]
fn sigkill_during_writes() {
    if !have_qemu() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let started = Instant::now();
    let mut kills = 0;
    for round in 0..24u64 {
        let cs = [65536u64, 4096, 512][round as usize % 3];
        let path = dir.path().join(format!("crash-{round}.qcow2"));
        drop(create(&path, &CreateOptions::new(SIZE).cluster_size(cs)).unwrap());
        let seed = round + 1;
        let mut child = Command::new(&exe)
            .args([
                "--exact",
                "crash_writer_child",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(ENV, format!("{}:{seed}", path.display()))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            let mut last_started = None;
            let mut last_flushed = None;
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let mut parts = line.split_whitespace();
                match (
                    parts.next(),
                    parts.next().and_then(|n| n.parse::<u64>().ok()),
                ) {
                    (Some("S"), Some(i)) => last_started = Some(i),
                    (Some("F"), Some(i)) => last_flushed = Some(i),
                    _ => {}
                }
            }
            (last_started, last_flushed)
        });
        let delay = 30 + u64::from(pseudo_random(round + 99, 1)[0]) % 250;
        std::thread::sleep(Duration::from_millis(delay));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        kills += 1;
        let (started, flushed) = reader.join().unwrap();

        let (corruptions, _leaks, errors) = qemu_check(&path, None);
        assert_eq!(
            (corruptions, errors),
            (0, 0),
            "round {round}: qemu-img check"
        );
        let ours = check(&path).unwrap();
        assert_eq!(ours.corruptions, 0, "round {round}: {:?}", ours.problems);

        // Every slot holds its last flushed version or a later (unflushed) one.
        let mut img = Image::open(&path).unwrap();
        let mut buf = vec![0u8; SLOT as usize];
        let upper = started.map_or(0, |s| s + 1);
        let flushed_end = flushed.map_or(0, |f| f + 1);
        let mut versions: Vec<Vec<u64>> = vec![Vec::new(); nslots() as usize];
        for i in 0..upper {
            versions[write_of(seed, i).0 as usize].push(i);
        }
        for (slot, vs) in versions.iter().enumerate() {
            img.read_at(&mut buf, slot as u64 * SLOT).unwrap();
            // A write cut short by the kill may be torn, so compare per 512-byte sector.
            let durable = vs.iter().rev().find(|&&i| i < flushed_end);
            let base = match durable {
                Some(&i) => write_of(seed, i).1,
                None => vec![0u8; SLOT as usize],
            };
            let later: Vec<Vec<u8>> = vs
                .iter()
                .filter(|&&i| i >= flushed_end)
                .map(|&i| write_of(seed, i).1)
                .collect();
            let ok = buf.chunks(512).enumerate().all(|(k, sector)| {
                let r = k * 512..(k + 1) * 512;
                sector == &base[r.clone()] || later.iter().any(|v| sector == &v[r.clone()])
            });
            assert!(ok, "round {round} cs {cs}: slot {slot} lost flushed data");
        }
        // The image stays writable after the crash.
        let mut img = OpenOptions::new().write(true).open(&path).unwrap();
        img.write_at(&[0x5a; 1000], 12345).unwrap();
        img.flush().unwrap();
        drop(img);
        assert_eq!(qemu_check(&path, None).0, 0);
    }
    assert!(kills >= 20);
    assert!(started.elapsed() < Duration::from_secs(60));
}

/// The child for key-slot changes: alternates the passphrase between "a" and "b" forever.
#[test]
fn crash_keyslot_child() {
    let Ok(path) = std::env::var(KEY_ENV) else {
        return; // only runs as the child of `sigkill_during_key_slot_changes`
    };
    let (mut old, mut new) = ("a", "b");
    loop {
        kvmsec_qcow2::change_passphrase(
            &path,
            &old.into(),
            &new.into(),
            kvmsec_qcow2::crypto::Iterations::Fixed(1000),
        )
        .unwrap();
        std::mem::swap(&mut old, &mut new);
    }
}

/// Key-slot changes killed at random moments: the image always opens with one of the two
/// passphrases and passes `qemu-img check`.
#[test]
fn sigkill_during_key_slot_changes() {
    use kvmsec_qcow2::Encryption;
    use kvmsec_qcow2::crypto::{Iterations, LuksOptions, Passphrase};
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    for round in 0..6u64 {
        let path = dir.path().join(format!("keys-{round}.qcow2"));
        let luks = LuksOptions {
            iterations: Iterations::Fixed(1000),
            ..LuksOptions::default()
        };
        let mut img = create(
            &path,
            &CreateOptions::new(1 << 20).encryption(Encryption::Luks {
                passphrase: "a".into(),
                options: luks,
            }),
        )
        .unwrap();
        img.write_at(&[0x42; 512], 0).unwrap();
        drop(img);
        let mut child = Command::new(&exe)
            .args([
                "--exact",
                "crash_keyslot_child",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(KEY_ENV, &path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let delay = 40 + u64::from(pseudo_random(round + 7, 1)[0]) % 300;
        std::thread::sleep(Duration::from_millis(delay));
        child.kill().unwrap();
        child.wait().unwrap();
        let opened = ["a", "b"].iter().find_map(|pw| {
            OpenOptions::new()
                .passphrase(Passphrase::from(*pw))
                .open(&path)
                .ok()
                .map(|img| (*pw, img))
        });
        let (pw, mut img) = opened.unwrap_or_else(|| panic!("round {round}: no passphrase opens"));
        let mut b = [0u8; 512];
        img.read_at(&mut b, 0).unwrap();
        assert_eq!(b, [0x42; 512], "round {round}");
        if have_qemu() {
            assert_eq!(qemu_check(&path, Some(pw)), (0, 0, 0), "round {round}");
        }
    }
}

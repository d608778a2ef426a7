//! kvmsec-qcow2 next to OpenSSL (the crypto loop) and QEMU's tools (lookups, conversion).
//!
//! - Cluster encryption and decryption, AES-256-XTS with the `plain64` tweak of every
//!   512-byte sector, 64 KiB clusters, one core: kvmsec's [`SectorCipher`] against OpenSSL's
//!   EVP interface (through the `openssl` crate) doing the same per-sector work with one key
//!   schedule and a new IV per sector (as QEMU's crypto backends do). A third function,
//!   `openssl-one-unit`, encrypts the 64 KiB as ONE XTS data unit: that is what
//!   `openssl speed -evp aes-256-xts` measures, an upper bound a disk format cannot use.
//! - Metadata lookups: open an image and read 512 bytes at 1000 pseudo-random allocated guest
//!   offsets spread over several L2 tables, against `qemu-io -r -c 'read -q OFF 512' ...`
//!   doing the same reads in one process (its process start is in its figure; the
//!   `open-only` group measures that part alone for both).
//! - Whole-image conversion of a 64 MiB random raw disk: raw→LUKS, LUKS→raw, raw→qcow2,
//!   qcow2→raw, in process against `qemu-img convert` (a process). kvmsec's LUKS target uses
//!   a fixed 1000 PBKDF2 iterations; `qemu-img` has no fixed count, only
//!   `encrypt.iter-time=1` (ms), and it first calibrates PBKDF2 for the key slot and the
//!   master-key digest, a fixed cost of its own that is part of its figure. Neither side
//!   syncs the target (`qemu-img convert`'s default cache mode is `unsafe`). The raw→qcow2
//!   and qcow2→raw rows remove the target before every run (outside the timing), as
//!   `scripts/bench-side-by-side` does: replacing an existing file costs both sides a
//!   filesystem-specific extra (ext4 starts writing back the new file when a rename
//!   replaces one; qemu-img truncates the old file in place instead).
//! - Sequential read of the 64 MiB plain qcow2 image in 4 MiB requests into a page-aligned
//!   buffer, against `qemu-img bench` doing the same requests (one in flight, page cache).
//!   Both figures leave out opening the image: ours times the reads only, and qemu-img's is
//!   the "Run completed in" time it prints, without its process start.
//!
//! Needs `qemu-img` and `qemu-io` (Debian `qemu-utils`) for the QEMU rows; they are skipped
//! with a message when the tools are missing. Run with
//! `cargo bench -p kvmsec-benches --bench qcow2`.

use std::fs;
use std::hint::black_box;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{
    BatchSize, BenchmarkGroup, Criterion, SamplingMode, Throughput, criterion_group, criterion_main,
};
use kvmsec_qcow2::crypto::{
    CipherAlg, CipherMode, Iterations, IvGen, LuksOptions, Passphrase, SECTOR_SIZE, SectorCipher,
};
use kvmsec_qcow2::{
    ConvertOptions, CreateOptions, Encryption, Image, OpenOptions, Target, convert, create,
};
use openssl::cipher::Cipher;
use openssl::cipher_ctx::CipherCtx;

const CLUSTER: usize = 64 * 1024;
const PASSPHRASE: &str = "kvmsec-bench-passphrase";

/// A fixed, non-trivial 512-bit XTS key (the two halves differ, as OpenSSL requires).
fn xts_key() -> [u8; 64] {
    let mut key = [0u8; 64];
    for (i, b) in key.iter_mut().enumerate() {
        *b = (i as u8).wrapping_mul(37).wrapping_add(11);
    }
    key
}

/// Deterministic filler for plaintext and raw images.
fn fill(buf: &mut [u8], mut seed: u64) {
    for chunk in buf.chunks_mut(8) {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let bytes = seed.to_le_bytes();
        let n = chunk.len();
        chunk.copy_from_slice(&bytes[..n]);
    }
}

/// OpenSSL EVP AES-256-XTS with one context: key schedule once, a new `plain64` IV per
/// sector.
struct OpensslXts {
    enc: CipherCtx,
    dec: CipherCtx,
}

impl OpensslXts {
    fn new(key: &[u8; 64]) -> OpensslXts {
        let mut enc = CipherCtx::new().unwrap_or_else(|e| panic!("{e}"));
        enc.encrypt_init(Some(Cipher::aes_256_xts()), Some(key), None)
            .unwrap_or_else(|e| panic!("{e}"));
        let mut dec = CipherCtx::new().unwrap_or_else(|e| panic!("{e}"));
        dec.decrypt_init(Some(Cipher::aes_256_xts()), Some(key), None)
            .unwrap_or_else(|e| panic!("{e}"));
        OpensslXts { enc, dec }
    }

    fn encrypt(&mut self, first_sector: u64, buf: &mut [u8]) {
        for (i, sector) in buf.chunks_mut(SECTOR_SIZE).enumerate() {
            let iv = u128::from(first_sector + i as u64).to_le_bytes();
            self.enc
                .encrypt_init(None, None, Some(&iv))
                .unwrap_or_else(|e| panic!("{e}"));
            self.enc
                .cipher_update_inplace(sector, SECTOR_SIZE)
                .unwrap_or_else(|e| panic!("{e}"));
        }
    }

    fn decrypt(&mut self, first_sector: u64, buf: &mut [u8]) {
        for (i, sector) in buf.chunks_mut(SECTOR_SIZE).enumerate() {
            let iv = u128::from(first_sector + i as u64).to_le_bytes();
            self.dec
                .decrypt_init(None, None, Some(&iv))
                .unwrap_or_else(|e| panic!("{e}"));
            self.dec
                .cipher_update_inplace(sector, SECTOR_SIZE)
                .unwrap_or_else(|e| panic!("{e}"));
        }
    }

    /// The whole buffer as one XTS data unit (what `openssl speed` times).
    fn encrypt_one_unit(&mut self, buf: &mut [u8]) {
        let iv = [0u8; 16];
        self.enc
            .encrypt_init(None, None, Some(&iv))
            .unwrap_or_else(|e| panic!("{e}"));
        let n = buf.len();
        self.enc
            .cipher_update_inplace(buf, n)
            .unwrap_or_else(|e| panic!("{e}"));
    }
}

fn configure<'a>(
    c: &'a mut Criterion,
    name: &str,
    samples: usize,
    secs: u64,
) -> BenchmarkGroup<'a, WallTime> {
    let mut g = c.benchmark_group(name);
    g.sample_size(samples)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(secs));
    if samples <= 20 {
        // Slow rows (processes, whole images): the same iteration count in every sample,
        // so the run stays short.
        g.sampling_mode(SamplingMode::Flat);
    }
    g
}

fn crypto_benches(c: &mut Criterion) {
    let key = xts_key();
    let ours = SectorCipher::new(CipherAlg::Aes256, CipherMode::Xts, IvGen::Plain64, &key)
        .unwrap_or_else(|e| panic!("{e}"));
    let mut theirs = OpensslXts::new(&key);

    // Same ciphertext from both, so the rows compare the same work.
    let mut plain = vec![0u8; CLUSTER];
    fill(&mut plain, 7);
    let first_sector = 0x12_3400;
    let mut a = plain.clone();
    let mut b = plain.clone();
    ours.encrypt(first_sector, &mut a)
        .unwrap_or_else(|e| panic!("{e}"));
    theirs.encrypt(first_sector, &mut b);
    assert!(a == b, "kvmsec and OpenSSL XTS disagree");
    theirs.decrypt(first_sector, &mut b);
    assert!(b == plain);
    eprintln!(
        "qcow2 crypto: hardware AES in use by kvmsec: {}",
        SectorCipher::hardware_accelerated()
    );

    let mut buf = plain.clone();
    let mut g = configure(c, "qcow2/cluster-encrypt-64KiB-xts", 30, 3);
    g.throughput(Throughput::Bytes(CLUSTER as u64));
    g.bench_function("kvmsec", |bch| {
        bch.iter(|| ours.encrypt(black_box(first_sector), black_box(&mut buf)))
    });
    g.bench_function("openssl-evp", |bch| {
        bch.iter(|| theirs.encrypt(black_box(first_sector), black_box(&mut buf)))
    });
    g.bench_function("openssl-one-unit", |bch| {
        bch.iter(|| theirs.encrypt_one_unit(black_box(&mut buf)))
    });
    g.finish();

    let mut g = configure(c, "qcow2/cluster-decrypt-64KiB-xts", 30, 3);
    g.throughput(Throughput::Bytes(CLUSTER as u64));
    g.bench_function("kvmsec", |bch| {
        bch.iter(|| ours.decrypt(black_box(first_sector), black_box(&mut buf)))
    });
    g.bench_function("openssl-evp", |bch| {
        bch.iter(|| theirs.decrypt(black_box(first_sector), black_box(&mut buf)))
    });
    g.finish();
}

fn have(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn run(cmd: &mut Command) {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Guest offsets of the lookup rows: 1000 pseudo-random sectors of allocated clusters.
fn lookup_offsets(allocated: &[u64]) -> Vec<u64> {
    let mut seed = 0x2545_F491_4F6C_DD1Du64;
    (0..1000)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let cluster = allocated[(seed % allocated.len() as u64) as usize];
            cluster + ((seed >> 32) % 128) * 512
        })
        .collect()
}

fn lookup_benches(c: &mut Criterion, dir: &Path) {
    // 2 GiB virtual, one 64 KiB cluster written every 1 MiB: 2048 clusters, 4 L2 tables.
    let path = dir.join("lookup.qcow2");
    let mut img = create(&path, &CreateOptions::new(2 << 30)).unwrap_or_else(|e| panic!("{e}"));
    let mut data = vec![0u8; CLUSTER];
    let mut allocated = Vec::new();
    for i in 0..2048u64 {
        fill(&mut data, i + 1);
        let off = i << 20;
        img.write_at(&data, off).unwrap_or_else(|e| panic!("{e}"));
        allocated.push(off);
    }
    img.flush().unwrap_or_else(|e| panic!("{e}"));
    drop(img);
    let offsets = lookup_offsets(&allocated);

    let ours = |offsets: &[u64]| {
        let mut img = Image::open(&path).unwrap_or_else(|e| panic!("{e}"));
        let mut sector = [0u8; 512];
        let mut sum = 0u64;
        for &off in offsets {
            img.read_at(&mut sector, off)
                .unwrap_or_else(|e| panic!("{e}"));
            sum = sum.wrapping_add(u64::from(sector[0]));
        }
        sum
    };
    let qemu_io_args: Vec<String> = offsets
        .iter()
        .flat_map(|off| ["-c".to_string(), format!("read -q {off} 512")])
        .collect();
    let qemu_io = |args: &[String]| {
        let mut cmd = Command::new("qemu-io");
        cmd.args(["-r", "-f", "qcow2"]).args(args).arg(&path);
        run(&mut cmd);
    };
    let have_qemu_io = have("qemu-io");
    if !have_qemu_io {
        eprintln!("qcow2 lookups: qemu-io missing (Debian qemu-utils); anchor rows skipped");
    }

    let mut g = configure(c, "qcow2/open-only", 20, 3);
    g.bench_function("kvmsec", |b| b.iter(|| black_box(ours(&[]))));
    if have_qemu_io {
        g.bench_function("qemu-io", |b| b.iter(|| qemu_io(&[])));
    }
    g.finish();

    let mut g = configure(c, "qcow2/open-and-1000-random-512B-reads", 20, 4);
    g.bench_function("kvmsec", |b| b.iter(|| black_box(ours(&offsets))));
    if have_qemu_io {
        g.bench_function("qemu-io", |b| b.iter(|| qemu_io(&qemu_io_args)));
    }
    g.finish();
}

struct ConvertFixture {
    dir: PathBuf,
    raw: PathBuf,
    plain: PathBuf,
    luks: PathBuf,
    secret: PathBuf,
}

impl ConvertFixture {
    fn new(dir: &Path) -> ConvertFixture {
        let raw = dir.join("input.raw");
        let mut data = vec![0u8; 64 << 20];
        fill(&mut data, 99);
        fs::write(&raw, &data).unwrap_or_else(|e| panic!("{e}"));
        let secret = dir.join("secret.txt");
        fs::write(&secret, PASSPHRASE).unwrap_or_else(|e| panic!("{e}"));
        let f = ConvertFixture {
            dir: dir.to_path_buf(),
            plain: dir.join("input.qcow2"),
            luks: dir.join("input-luks.qcow2"),
            raw,
            secret,
        };
        // Shared inputs, made by qemu-img so neither side reads its own output.
        f.qemu_convert("raw", &f.raw, &f.plain, false, true);
        f.qemu_convert("raw", &f.raw, &f.luks, true, true);
        f
    }

    fn qemu_convert(&self, src_fmt: &str, src: &Path, dst: &Path, luks: bool, to_qcow2: bool) {
        let mut cmd = Command::new("qemu-img");
        cmd.arg("convert");
        let secret = format!("secret,id=sec0,file={}", self.secret.display());
        if src_fmt == "luks-qcow2" {
            cmd.args(["--object", &secret, "--image-opts"]);
            cmd.arg(format!(
                "driver=qcow2,encrypt.key-secret=sec0,file.filename={}",
                src.display()
            ));
        } else {
            cmd.args(["-f", src_fmt]).arg(src);
        }
        if to_qcow2 {
            cmd.args(["-O", "qcow2"]);
            if luks {
                cmd.args(["--object", &secret]).args([
                    "-o",
                    "encrypt.format=luks,encrypt.key-secret=sec0,encrypt.iter-time=1",
                ]);
            }
        } else {
            cmd.args(["-O", "raw"]);
        }
        cmd.arg(dst);
        run(&mut cmd);
    }

    fn ours_convert(&self, src: &Path, dst: &Path, target: Target, passphrase: bool) {
        let mut open = OpenOptions::new();
        if passphrase {
            open = open.passphrase(Passphrase::from(PASSPHRASE));
        }
        let mut opts = ConvertOptions::new(target).source(open);
        opts.durable = false;
        convert(src, dst, opts, |_| ControlFlow::Continue(())).unwrap_or_else(|e| panic!("{e}"));
    }
}

fn luks_target() -> Target {
    Target::Qcow2(CreateOptions::new(0).encryption(Encryption::Luks {
        passphrase: Passphrase::from(PASSPHRASE),
        options: LuksOptions {
            iterations: Iterations::Fixed(1000),
            ..LuksOptions::default()
        },
    }))
}

fn convert_benches(c: &mut Criterion, dir: &Path) {
    if !have("qemu-img") {
        eprintln!("qcow2 conversion: qemu-img missing (Debian qemu-utils); rows skipped");
        return;
    }
    let f = ConvertFixture::new(dir);
    let out = f.dir.join("out.img");
    let bytes = 64u64 << 20;
    let remove_target = || match fs::remove_file(&out) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => panic!("{e}"),
        _ => {}
    };

    let mut g = configure(c, "qcow2/convert-64MiB-raw-to-luks", 10, 8);
    g.throughput(Throughput::Bytes(bytes));
    g.bench_function("kvmsec", |b| {
        b.iter(|| f.ours_convert(&f.raw, &out, luks_target(), false))
    });
    g.bench_function("qemu-img", |b| {
        b.iter(|| f.qemu_convert("raw", &f.raw, &out, true, true))
    });
    g.finish();

    let mut g = configure(c, "qcow2/convert-64MiB-luks-to-raw", 10, 8);
    g.throughput(Throughput::Bytes(bytes));
    g.bench_function("kvmsec", |b| {
        b.iter(|| f.ours_convert(&f.luks, &out, Target::Raw, true))
    });
    g.bench_function("qemu-img", |b| {
        b.iter(|| f.qemu_convert("luks-qcow2", &f.luks, &out, false, false))
    });
    g.finish();

    let mut g = configure(c, "qcow2/convert-64MiB-raw-to-qcow2", 10, 5);
    g.throughput(Throughput::Bytes(bytes));
    g.bench_function("kvmsec", |b| {
        b.iter_batched(
            remove_target,
            |()| f.ours_convert(&f.raw, &out, Target::Qcow2(CreateOptions::new(0)), false),
            BatchSize::PerIteration,
        )
    });
    g.bench_function("qemu-img", |b| {
        b.iter_batched(
            remove_target,
            |()| f.qemu_convert("raw", &f.raw, &out, false, true),
            BatchSize::PerIteration,
        )
    });
    g.finish();

    let mut g = configure(c, "qcow2/convert-64MiB-qcow2-to-raw", 10, 5);
    g.throughput(Throughput::Bytes(bytes));
    g.bench_function("kvmsec", |b| {
        b.iter_batched(
            remove_target,
            |()| f.ours_convert(&f.plain, &out, Target::Raw, false),
            BatchSize::PerIteration,
        )
    });
    g.bench_function("qemu-img", |b| {
        b.iter_batched(
            remove_target,
            |()| f.qemu_convert("qcow2", &f.plain, &out, false, false),
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

/// `qemu-img bench` reading `path` sequentially in 4 MiB requests; the time it reports.
fn qemu_img_bench_read(path: &Path, bytes: u64) -> Duration {
    let count = (bytes >> 22).to_string();
    let out = Command::new("qemu-img")
        .args(["bench", "-f", "qcow2", "-t", "writeback", "-d", "1"])
        .args(["-c", &count, "-s", "4M", "-S", "4M"])
        .arg(path)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("qemu-img bench: {e}"));
    let text = String::from_utf8_lossy(&out.stdout);
    let secs: f64 = text
        .split("Run completed in ")
        .nth(1)
        .and_then(|t| t.split_whitespace().next())
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| panic!("qemu-img bench printed no run time: {text}"));
    Duration::from_secs_f64(secs)
}

fn read_benches(c: &mut Criterion, dir: &Path) {
    if !have("qemu-img") {
        eprintln!("qcow2 sequential read: qemu-img missing (Debian qemu-utils); rows skipped");
        return;
    }
    let raw = dir.join("read.raw");
    let path = dir.join("read.qcow2");
    let bytes = 64u64 << 20;
    let mut data = vec![0u8; bytes as usize];
    fill(&mut data, 7);
    fs::write(&raw, &data).unwrap_or_else(|e| panic!("{e}"));
    run(Command::new("qemu-img")
        .args(["convert", "-f", "raw", "-O", "qcow2"])
        .args([&raw, &path]));

    let mut g = configure(c, "qcow2/read-64MiB-sequential", 10, 4);
    g.throughput(Throughput::Bytes(bytes));
    g.bench_function("kvmsec", |b| {
        let mut storage = vec![0u8; (4 << 20) + 4096];
        let start = (4096 - storage.as_ptr() as usize % 4096) % 4096;
        let buf = &mut storage[start..start + (4 << 20)];
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let mut img = Image::open(&path).unwrap_or_else(|e| panic!("{e}"));
                let t = Instant::now();
                for off in (0..bytes).step_by(4 << 20) {
                    img.read_at(buf, off).unwrap_or_else(|e| panic!("{e}"));
                }
                total += t.elapsed();
                black_box(&buf[0]);
            }
            total
        })
    });
    g.bench_function("qemu-img-bench", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| qemu_img_bench_read(&path, bytes)).sum())
    });
    g.finish();
}

fn benches(c: &mut Criterion) {
    crypto_benches(c);
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    lookup_benches(c, dir.path());
    convert_benches(c, dir.path());
    read_benches(c, dir.path());
}

criterion_group!(qcow2, benches);
criterion_main!(qcow2);

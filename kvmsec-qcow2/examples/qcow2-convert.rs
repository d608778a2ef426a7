//! Converts a disk image, like `qemu-img convert`.
//!
//! ```text
//! qcow2-convert [--to qcow2|luks|raw|null] [--cluster-size BYTES] [--iter N]
//!               [--source-format raw|qcow2] [--threads N] [--no-sync] SRC DST
//! ```
//! - `--to luks` encrypts the target (passphrase from `$KVMSEC_PASSPHRASE` or
//!   `--passphrase-file FILE`); `--iter N` sets a fixed PBKDF2 iteration count instead of the
//!   2-second calibration (for benchmarks and tests).
//! - An encrypted source is opened with `$KVMSEC_SOURCE_PASSPHRASE` or
//!   `--source-passphrase-file FILE`.
//! - `--no-sync` skips the final `fdatasync` (what `qemu-img convert` does by default).
//! - `--to null` only reads the source sequentially (DST is ignored), to time reads.
//!
//! Passphrases are never taken from the command line.

use std::io::Read;
use std::ops::ControlFlow;
use std::process::ExitCode;

use kvmsec_qcow2::{BackingFormat, ConvertOptions, CreateOptions, OpenOptions, Target, convert};

mod common;
use common::passphrase;

fn run() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let mut to = "qcow2".to_string();
    let mut cluster_size = 65536u64;
    let mut iter: Option<u32> = None;
    let mut source_format = None;
    let mut threads = 0usize;
    let mut durable = true;
    let mut pw_file = None;
    let mut src_pw_file = None;
    let mut paths = Vec::new();
    while let Some(a) = args.next() {
        let mut val = || args.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--to" => to = val()?,
            "--cluster-size" => cluster_size = val()?.parse().map_err(|e| format!("{e}"))?,
            "--iter" => iter = Some(val()?.parse().map_err(|e| format!("{e}"))?),
            "--no-sync" => durable = false,
            "--threads" => threads = val()?.parse().map_err(|e| format!("{e}"))?,
            "--passphrase-file" => pw_file = Some(val()?),
            "--source-passphrase-file" => src_pw_file = Some(val()?),
            "--source-format" => {
                source_format = Some(match val()?.as_str() {
                    "raw" => BackingFormat::Raw,
                    "qcow2" => BackingFormat::Qcow2,
                    other => return Err(format!("unknown format {other}")),
                })
            }
            _ if a.starts_with("--") => return Err(format!("unknown option {a}")),
            _ => paths.push(a),
        }
    }
    let [src, dst] = <[String; 2]>::try_from(paths)
        .map_err(|_| "usage: qcow2-convert [options] SRC DST".to_string())?;

    let mut open = OpenOptions::new();
    if let Some(pw) = passphrase("KVMSEC_SOURCE_PASSPHRASE", src_pw_file.as_ref())? {
        open = open.passphrase(pw);
    }

    if to == "null" {
        let mut img = open.open(&src).map_err(|e| e.to_string())?;
        // Page-aligned, as a VMM's guest memory and qemu-img's buffers are: the kernel copies
        // into aligned memory faster.
        let mut storage = vec![0u8; (4 << 20) + 4096];
        let start = (4096 - storage.as_ptr() as usize % 4096) % 4096;
        let buf = &mut storage[start..start + (4 << 20)];
        let mut total = 0u64;
        loop {
            let n = img.read(buf).map_err(|e| e.to_string())?;
            if n == 0 {
                break;
            }
            total += n as u64;
        }
        println!("read {total} bytes");
        return Ok(());
    }

    let target = match to.as_str() {
        "raw" => Target::Raw,
        "qcow2" => Target::Qcow2(CreateOptions::new(0).cluster_size(cluster_size)),
        "luks" => {
            let pw = passphrase("KVMSEC_PASSPHRASE", pw_file.as_ref())?
                .ok_or("--to luks needs $KVMSEC_PASSPHRASE or --passphrase-file")?;
            let mut luks = kvmsec_qcow2::crypto::LuksOptions::default();
            if let Some(n) = iter {
                luks.iterations = kvmsec_qcow2::crypto::Iterations::Fixed(n);
            }
            Target::Qcow2(CreateOptions::new(0).cluster_size(cluster_size).encryption(
                kvmsec_qcow2::Encryption::Luks {
                    passphrase: pw,
                    options: luks,
                },
            ))
        }
        other => return Err(format!("unknown target format {other}")),
    };
    let mut opts = ConvertOptions::new(target).source(open);
    opts.source_format = source_format;
    opts.threads = threads;
    opts.durable = durable;
    convert(&src, &dst, opts, |_| ControlFlow::Continue(())).map_err(|e| e.to_string())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("qcow2-convert: {e}");
            ExitCode::FAILURE
        }
    }
}

//! Creates a qcow2 image, like `qemu-img create -f qcow2`.
//!
//! ```text
//! qcow2-create [--luks] [--iter N] [--cluster-size BYTES] [--compat 0.10|1.1]
//!              [--backing NAME --backing-format raw|qcow2] PATH SIZE
//! ```
//! `--luks` encrypts the image; the passphrase comes from `$KVMSEC_PASSPHRASE` or
//! `--passphrase-file FILE` (never from the command line). An encrypted backing file is
//! opened with `$KVMSEC_BACKING_PASSPHRASE` (default: the new image's passphrase).
//! SIZE accepts a K, M, G or T suffix.

use std::process::ExitCode;

use kvmsec_qcow2::crypto::{Iterations, LuksOptions};
use kvmsec_qcow2::{BackingFormat, CreateOptions, Encryption, OpenOptions, create_with};

mod common;
use common::passphrase;

fn parse_size(s: &str) -> Result<u64, String> {
    let (num, mult) = match s.char_indices().last() {
        Some((i, 'K' | 'k')) => (&s[..i], 1u64 << 10),
        Some((i, 'M' | 'm')) => (&s[..i], 1 << 20),
        Some((i, 'G' | 'g')) => (&s[..i], 1 << 30),
        Some((i, 'T' | 't')) => (&s[..i], 1 << 40),
        _ => (s, 1),
    };
    let n: u64 = num.parse().map_err(|e| format!("size {s:?}: {e}"))?;
    n.checked_mul(mult)
        .ok_or_else(|| format!("size {s:?} too large"))
}

fn run() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let mut luks = false;
    let mut iter = None;
    let mut cluster_size = 65536;
    let mut version = 3;
    let mut backing = None;
    let mut backing_format = BackingFormat::Qcow2;
    let mut pw_file = None;
    let mut rest = Vec::new();
    while let Some(a) = args.next() {
        let mut val = || args.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--luks" => luks = true,
            "--iter" => iter = Some(val()?.parse::<u32>().map_err(|e| e.to_string())?),
            "--cluster-size" => cluster_size = parse_size(&val()?)?,
            "--compat" => {
                version = match val()?.as_str() {
                    "0.10" => 2,
                    "1.1" => 3,
                    other => return Err(format!("unknown compat {other}")),
                }
            }
            "--backing" => backing = Some(val()?),
            "--backing-format" => {
                backing_format = match val()?.as_str() {
                    "raw" => BackingFormat::Raw,
                    "qcow2" => BackingFormat::Qcow2,
                    other => return Err(format!("unknown format {other}")),
                }
            }
            "--passphrase-file" => pw_file = Some(val()?),
            _ if a.starts_with("--") => return Err(format!("unknown option {a}")),
            _ => rest.push(a),
        }
    }
    let [path, size] = <[String; 2]>::try_from(rest)
        .map_err(|_| "usage: qcow2-create [options] PATH SIZE".to_string())?;
    let mut opts = CreateOptions::new(parse_size(&size)?)
        .cluster_size(cluster_size)
        .version(version);
    if let Some(b) = backing {
        opts = opts.backing(b, backing_format);
    }
    let pw = passphrase("KVMSEC_PASSPHRASE", pw_file.as_ref())?;
    let backing_pw = passphrase("KVMSEC_BACKING_PASSPHRASE", None)?.or_else(|| pw.clone());
    if luks {
        let pw = pw.ok_or("--luks needs $KVMSEC_PASSPHRASE or --passphrase-file")?;
        let mut options = LuksOptions::default();
        if let Some(n) = iter {
            options.iterations = Iterations::Fixed(n);
        }
        opts = opts.encryption(Encryption::Luks {
            passphrase: pw,
            options,
        });
    }
    let mut open = OpenOptions::new();
    if let Some(p) = backing_pw {
        open = open.passphrase(p);
    }
    let img = create_with(&path, &opts, open).map_err(|e| e.to_string())?;
    println!(
        "created {path}: {} bytes, {}-byte clusters{}",
        img.virtual_size(),
        img.cluster_size(),
        if luks { ", LUKS encrypted" } else { "" }
    );
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("qcow2-create: {e}");
            ExitCode::FAILURE
        }
    }
}

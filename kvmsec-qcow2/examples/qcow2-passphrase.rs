//! Adds, removes or changes a passphrase of a LUKS-encrypted qcow2 image in place, like
//! `qemu-img amend -o encrypt.state=...`.
//!
//! ```text
//! qcow2-passphrase add    [--iter N] [--slot N] IMAGE   # the current passphrase unlocks, the new one is added
//! qcow2-passphrase change [--iter N] IMAGE              # the current passphrase is replaced by the new one
//! qcow2-passphrase remove [--force] IMAGE               # slots opened by the current passphrase disabled
//! qcow2-passphrase remove-slot [--force] N IMAGE        # slot N disabled
//! ```
//! The current passphrase comes from `--passphrase-file FILE` or `$KVMSEC_PASSPHRASE`, the new
//! one from `--new-passphrase-file FILE` or `$KVMSEC_NEW_PASSPHRASE` (the same options as
//! `qcow2-create` and `qcow2-convert`), never from the command line. Trailing newlines
//! in a file are ignored. `--force` allows removing the last active slot.

use std::process::ExitCode;

use kvmsec_qcow2::crypto::{Iterations, KeySlotSelector, Passphrase};
use kvmsec_qcow2::{add_passphrase, change_passphrase, remove_passphrase};

mod common;

fn passphrase(env: &str, file: Option<&String>, flag: &str) -> Result<Passphrase, String> {
    common::passphrase(env, file)?.ok_or_else(|| format!("give {flag} FILE or set ${env}"))
}

fn run() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let cmd = args
        .next()
        .ok_or("usage: qcow2-passphrase add|change|remove|remove-slot ...")?;
    let mut iterations = Iterations::Calibrate { millis: 2000 };
    let mut slot = None;
    let mut force = false;
    let mut pw_file = None;
    let mut new_pw_file = None;
    let mut rest = Vec::new();
    while let Some(a) = args.next() {
        match a.as_str() {
            "--iter" => {
                let n = args.next().ok_or("--iter needs a value")?;
                iterations = Iterations::Fixed(n.parse().map_err(|e| format!("{e}"))?);
            }
            "--slot" => {
                let n = args.next().ok_or("--slot needs a value")?;
                slot = Some(n.parse().map_err(|e| format!("{e}"))?);
            }
            "--force" => force = true,
            "--passphrase-file" => {
                pw_file = Some(args.next().ok_or("--passphrase-file needs a value")?);
            }
            "--new-passphrase-file" => {
                new_pw_file = Some(args.next().ok_or("--new-passphrase-file needs a value")?);
            }
            _ if a.starts_with("--") => return Err(format!("unknown option {a}")),
            _ => rest.push(a),
        }
    }
    let current = || passphrase("KVMSEC_PASSPHRASE", pw_file.as_ref(), "--passphrase-file");
    let new = || {
        passphrase(
            "KVMSEC_NEW_PASSPHRASE",
            new_pw_file.as_ref(),
            "--new-passphrase-file",
        )
    };
    let err = |e: kvmsec_qcow2::Error| match e {
        kvmsec_qcow2::Error::KeySlot { reason, .. } if !force && reason.contains("last active") => {
            format!("{e} (pass --force to remove it anyway)")
        }
        e => e.to_string(),
    };
    match (cmd.as_str(), rest.as_slice()) {
        ("add", [image]) => {
            let n = add_passphrase(image, &current()?, &new()?, slot, iterations).map_err(err)?;
            println!("added key slot {n}");
        }
        ("change", [image]) => {
            let n = change_passphrase(image, &current()?, &new()?, iterations).map_err(err)?;
            println!("passphrase now in key slot {n}");
        }
        ("remove", [image]) => {
            let pw = current()?;
            let slots =
                remove_passphrase(image, KeySlotSelector::Passphrase(&pw), force).map_err(err)?;
            println!("removed key slots {slots:?}");
        }
        ("remove-slot", [n, image]) => {
            let n: usize = n.parse().map_err(|e| format!("{e}"))?;
            let slots = remove_passphrase(image, KeySlotSelector::Slot(n), force).map_err(err)?;
            println!("removed key slots {slots:?}");
        }
        _ => return Err("usage: qcow2-passphrase add|change|remove|remove-slot ...".into()),
    }
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("qcow2-passphrase: {e}");
            ExitCode::FAILURE
        }
    }
}

//! Adds, removes or changes a passphrase of a LUKS-encrypted qcow2 image in place, like
//! `qemu-img amend -o encrypt.state=...`.
//!
//! ```text
//! qcow2-passphrase add    [--iter N] [--slot N] IMAGE   # $KVMSEC_PASSPHRASE unlocks, $KVMSEC_NEW_PASSPHRASE is added
//! qcow2-passphrase change [--iter N] IMAGE              # $KVMSEC_PASSPHRASE replaced by $KVMSEC_NEW_PASSPHRASE
//! qcow2-passphrase remove [--force] IMAGE               # slots opened by $KVMSEC_PASSPHRASE disabled
//! qcow2-passphrase remove-slot [--force] N IMAGE        # slot N disabled
//! ```
//! Passphrases come only from the environment (or `FILE` given in `$KVMSEC_PASSPHRASE_FILE` /
//! `$KVMSEC_NEW_PASSPHRASE_FILE`), never from the command line.

use std::process::ExitCode;

use kvmsec_qcow2::crypto::{Iterations, KeySlotSelector, Passphrase};
use kvmsec_qcow2::{add_passphrase, change_passphrase, remove_passphrase};

fn passphrase(env: &str) -> Result<Passphrase, String> {
    if let Some(f) = std::env::var_os(format!("{env}_FILE")) {
        let mut bytes = std::fs::read(&f).map_err(|e| format!("{}: {e}", f.to_string_lossy()))?;
        while bytes.last() == Some(&b'\n') {
            bytes.pop();
        }
        return Ok(Passphrase::new(bytes));
    }
    std::env::var_os(env)
        .map(|v| Passphrase::new(v.into_encoded_bytes()))
        .ok_or_else(|| format!("${env} (or ${env}_FILE) is not set"))
}

fn run() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let cmd = args
        .next()
        .ok_or("usage: qcow2-passphrase add|change|remove|remove-slot ...")?;
    let mut iterations = Iterations::Calibrate { millis: 2000 };
    let mut slot = None;
    let mut force = false;
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
            _ => rest.push(a),
        }
    }
    let err = |e: kvmsec_qcow2::Error| e.to_string();
    match (cmd.as_str(), rest.as_slice()) {
        ("add", [image]) => {
            let n = add_passphrase(
                image,
                &passphrase("KVMSEC_PASSPHRASE")?,
                &passphrase("KVMSEC_NEW_PASSPHRASE")?,
                slot,
                iterations,
            )
            .map_err(err)?;
            println!("added key slot {n}");
        }
        ("change", [image]) => {
            let n = change_passphrase(
                image,
                &passphrase("KVMSEC_PASSPHRASE")?,
                &passphrase("KVMSEC_NEW_PASSPHRASE")?,
                iterations,
            )
            .map_err(err)?;
            println!("passphrase now in key slot {n}");
        }
        ("remove", [image]) => {
            let pw = passphrase("KVMSEC_PASSPHRASE")?;
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

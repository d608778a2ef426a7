//! Shows what `qemu-img info` and `qemu-img check` would, and the host-report lines, for each
//! image (no passphrase needed).
//!
//! ```text
//! qcow2-info IMAGE...
//! ```

use std::path::Path;
use std::process::ExitCode;

use kvmsec_qcow2::{EncryptionInfo, check, info_chain, report::image_checks};

fn main() -> ExitCode {
    let mut status = ExitCode::SUCCESS;
    for arg in std::env::args().skip(1) {
        let path = Path::new(&arg);
        match info_chain(path) {
            Ok(chain) => {
                for (depth, i) in chain.iter().enumerate() {
                    println!("{}image: {}", "  ".repeat(depth), i.path.display());
                    println!("{}  format: {}", "  ".repeat(depth), i.format);
                    println!("{}  virtual size: {}", "  ".repeat(depth), i.virtual_size);
                    if let (Some(cs), Some(compat)) = (i.cluster_size, &i.compat) {
                        println!(
                            "{}  cluster size: {cs}, compat {compat}",
                            "  ".repeat(depth)
                        );
                    }
                    match &i.encryption {
                        None => println!("{}  encrypted: no", "  ".repeat(depth)),
                        Some(EncryptionInfo::LegacyAes) => {
                            println!("{}  encrypted: legacy AES (broken)", "  ".repeat(depth))
                        }
                        Some(EncryptionInfo::Luks(l)) => {
                            let active: Vec<usize> = l
                                .slots
                                .iter()
                                .enumerate()
                                .filter(|(_, s)| s.active)
                                .map(|(n, _)| n)
                                .collect();
                            println!(
                                "{}  encrypted: LUKS {}-{}-{} hash {}, active slots {active:?}",
                                "  ".repeat(depth),
                                l.cipher_alg,
                                l.cipher_mode,
                                l.ivgen_alg,
                                l.hash_alg
                            );
                        }
                        Some(other) => println!("{}  encrypted: {other:?}", "  ".repeat(depth)),
                    }
                    if let Some(b) = &i.backing_file {
                        println!("{}  backing file: {b}", "  ".repeat(depth));
                    }
                }
            }
            Err(e) => {
                eprintln!("{arg}: {e}");
                status = ExitCode::FAILURE;
            }
        }
        if let Ok(r) = check(path) {
            println!(
                "  check: {} corruptions, {} leaks, {}/{} clusters allocated",
                r.corruptions, r.leaks, r.allocated_clusters, r.total_clusters
            );
        }
        for c in image_checks(path) {
            println!("  [{}] {}: {}", c.status, c.id, c.reason);
        }
    }
    status
}

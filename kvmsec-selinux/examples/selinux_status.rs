//! Print this host's SELinux state, configuration and report section.
//!
//! `cargo run -p kvmsec-selinux --example selinux_status [ROOT]`

use std::path::PathBuf;

fn main() {
    let root = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/"));

    match kvmsec_selinux::getenforce_at(&root) {
        Ok(state) => println!("getenforce: {state}"),
        Err(e) => println!("getenforce: error: {e}"),
    }
    match kvmsec_selinux::read_config_at(&root) {
        Ok(Some(cfg)) => println!(
            "config: SELINUX={:?} SELINUXTYPE={} warnings={:?}",
            cfg.mode, cfg.policy_type, cfg.warnings
        ),
        Ok(None) => println!("config: no {}", kvmsec_selinux::CONFIG_PATH),
        Err(e) => println!("config: error: {e}"),
    }
    for check in kvmsec_selinux::report::host_checks_at(&root) {
        println!(
            "{:<5} {:<22} {:<24} {}",
            check.status, check.id, check.title, check.reason
        );
    }
}

//! Print this host's SELinux state, configuration and report section.
//!
//! `cargo run -p kvmsec-selinux --example selinux-status [ROOT]`

use std::path::PathBuf;

const USAGE: &str = "usage: selinux-status [ROOT]\n\nPrints the SELinux state, the configuration and \
the SELinux section of the kvmsec host report for the live host, or for the host whose files \
are under the directory ROOT.";

fn main() {
    let mut args = std::env::args_os().skip(1);
    let root = args.next().map(PathBuf::from);
    if args.next().is_some()
        || root
            .as_ref()
            .is_some_and(|r| r.to_string_lossy().starts_with('-'))
    {
        if root.as_ref().is_some_and(|r| r == "-h" || r == "--help") {
            println!("{USAGE}");
            return;
        }
        eprintln!("{USAGE}");
        std::process::exit(2);
    }
    let root = root.unwrap_or_else(|| PathBuf::from("/"));
    if !root.is_dir() {
        eprintln!(
            "selinux-status: {} is not a directory\n\n{USAGE}",
            root.display()
        );
        std::process::exit(2);
    }

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

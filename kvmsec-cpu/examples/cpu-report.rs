//! Prints the CPU section of the host report.
//!
//! `cargo run -p kvmsec-cpu --example cpu-report [ROOT]`: with no argument, the live host;
//! with a directory, the host whose `/proc` and `/sys` are under it.

use std::path::PathBuf;

const USAGE: &str = "usage: cpu-report [ROOT]\n\nPrints the CPU section of the kvmsec host report for \
the live host, or for the host whose /proc and /sys are under the directory ROOT.";

fn main() {
    let mut args = std::env::args_os().skip(1);
    let root = args.next().map(PathBuf::from);
    if args.next().is_some()
        || root
            .as_ref()
            .is_some_and(|r| r.to_string_lossy().starts_with('-'))
    {
        let help = root.as_ref().is_some_and(|r| r == "-h" || r == "--help");
        if help {
            println!("{USAGE}");
            return;
        }
        eprintln!("{USAGE}");
        std::process::exit(2);
    }
    if let Some(root) = root.as_ref().filter(|r| !r.is_dir()) {
        eprintln!(
            "cpu-report: {} is not a directory\n\n{USAGE}",
            root.display()
        );
        std::process::exit(2);
    }
    let checks = match &root {
        Some(root) => kvmsec_cpu::report::host_checks_at(root),
        None => kvmsec_cpu::report::host_checks(),
    };
    for c in checks {
        println!("{:4}  {:<24} {:<34} {}", c.status, c.id, c.title, c.reason);
    }
}

//! Prints the CPU section of the host report.
//!
//! `cargo run -p kvmsec-cpu --example cpu_report [ROOT]`: with no argument, the live host;
//! with a directory, the host whose `/proc` and `/sys` are under it.

fn main() {
    let checks = match std::env::args_os().nth(1) {
        Some(root) => kvmsec_cpu::report::host_checks_at(std::path::Path::new(&root)),
        None => kvmsec_cpu::report::host_checks(),
    };
    for c in checks {
        println!("{:4}  {:<24} {:<34} {}", c.status, c.id, c.title, c.reason);
    }
}

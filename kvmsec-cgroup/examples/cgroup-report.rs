//! Print this host's cgroup subsystems (like `lssubsys -am`) and the cgroup section of the
//! host report. Works unprivileged.
//!
//! ```sh
//! cargo run -p kvmsec-cgroup --example cgroup-report
//! ```

use kvmsec_cgroup::report::host_checks;
use kvmsec_cgroup::subsys::SubsystemListing;

fn main() {
    if let Some(arg) = std::env::args().nth(1) {
        let usage = "usage: cgroup-report\n\nPrints this host's cgroup subsystems (like \
                     `lssubsys -am`) and the cgroup section of the kvmsec host report.";
        if arg == "-h" || arg == "--help" {
            println!("{usage}");
            return;
        }
        eprintln!("cgroup-report: unexpected argument {arg:?}\n\n{usage}");
        std::process::exit(2);
    }
    match SubsystemListing::read_at(std::path::Path::new("/")) {
        Ok(l) => print!("{l}"),
        Err(e) => eprintln!("cannot list subsystems: {e}"),
    }
    println!();
    for c in host_checks() {
        println!("{:<4}  {:<16} {}", c.status, c.id, c.reason);
    }
}

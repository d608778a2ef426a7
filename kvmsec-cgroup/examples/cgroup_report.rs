//! Print this host's cgroup subsystems (like `lssubsys -am`) and the cgroup section of the
//! host report. Works unprivileged.
//!
//! ```sh
//! cargo run -p kvmsec-cgroup --example cgroup_report
//! ```

use kvmsec_cgroup::report::host_checks;
use kvmsec_cgroup::subsys::SubsystemListing;

fn main() {
    match SubsystemListing::read_at(std::path::Path::new("/")) {
        Ok(l) => print!("{l}"),
        Err(e) => eprintln!("cannot list subsystems: {e}"),
    }
    println!();
    for c in host_checks() {
        println!("{:<4}  {:<16} {}", c.status, c.id, c.reason);
    }
}

//! Prints a KVM host security report for this host (see `--help`).
//!
//! ```text
//! cargo run -p kvmsec-tests --example host-report
//! cargo run -p kvmsec-tests --example host-report -- --json --image guest.qcow2
//! ```

fn main() {
    std::process::exit(kvmsec_tests::report::main_with_args(
        std::env::args().skip(1),
    ));
}

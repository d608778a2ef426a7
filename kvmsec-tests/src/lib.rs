//! Shared helpers for the kvmsec integration tests and examples.

pub mod vmrig;

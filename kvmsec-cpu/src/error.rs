//! The crate's error type.

use std::path::PathBuf;

/// Everything that can go wrong in this crate.
///
/// Absence of a feature is never an error: a CPU without SMEP is a `false`, a host without
/// `/dev/kvm` is a [`KvmDevice`](crate::KvmDevice) whose `present` is `false`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Reading a host file failed.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file that could not be read.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },

    /// Register text did not contain what was expected.
    #[error("cannot parse register text {input:?}: {what}")]
    RegisterText {
        /// The offending input (shortened to at most 80 characters).
        input: String,
        /// What was wrong with it.
        what: &'static str,
    },

    /// A register name that this crate does not know.
    #[error("unknown register name {name:?}")]
    UnknownRegister {
        /// The name as written.
        name: String,
    },

    /// A bit name that the register does not have.
    #[error("unknown {register} bit name {name:?}")]
    UnknownBit {
        /// The register whose bits were being parsed.
        register: &'static str,
        /// The name as written.
        name: String,
    },

    /// A line of a CPUID dump could not be parsed.
    #[error("cannot parse CPUID dump line {line}: {what}")]
    CpuidDump {
        /// One-based line number.
        line: usize,
        /// What was wrong with it.
        what: &'static str,
    },

    /// The function needs the x86 `cpuid` instruction and this build is for another
    /// architecture.
    #[error("unsupported architecture {arch}: {what} needs x86 or x86_64")]
    UnsupportedArchitecture {
        /// The architecture this crate was built for (`std::env::consts::ARCH`).
        arch: &'static str,
        /// What was asked for.
        what: &'static str,
    },

    /// The crate was built without the `kvm` feature (or not for Linux).
    #[error("{what} needs the `kvm` feature of kvmsec-cpu on Linux")]
    KvmFeatureDisabled {
        /// What was asked for.
        what: &'static str,
    },

    /// A `/dev/kvm` ioctl failed.
    #[error("KVM ioctl {ioctl} on {path} failed: {source}")]
    Kvm {
        /// The ioctl (for example `KVM_GET_SUPPORTED_CPUID`).
        ioctl: &'static str,
        /// The KVM device used.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

/// Shorthand for results of this crate.
pub type Result<T> = std::result::Result<T, Error>;

/// Shortens `text` to at most 80 characters for inclusion in an error.
pub(crate) fn excerpt(text: &str) -> String {
    let mut out: String = text.chars().take(80).collect();
    if text.chars().nth(80).is_some() {
        out.push('…');
    }
    out
}

/// Reads a host file as text, attaching the path to any error.
pub(crate) fn read_text(path: &std::path::Path) -> Result<String> {
    let bytes = std::fs::read(path).map_err(|source| Error::Read {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// Joins an absolute host path such as `/proc/cpuinfo` under `root`.
pub(crate) fn under(root: &std::path::Path, abs: &str) -> PathBuf {
    root.join(abs.trim_start_matches('/'))
}

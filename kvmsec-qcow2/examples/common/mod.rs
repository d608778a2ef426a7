//! What the qcow2 example programs share: reading a passphrase without taking it from the
//! command line.

use kvmsec_qcow2::crypto::Passphrase;

/// The passphrase from `file` when given (trailing newlines dropped), else from the
/// environment variable `env`; `None` when neither is set.
pub fn passphrase(env: &str, file: Option<&String>) -> Result<Option<Passphrase>, String> {
    if let Some(f) = file {
        let mut bytes = std::fs::read(f).map_err(|e| format!("{f}: {e}"))?;
        while bytes.last() == Some(&b'\n') {
            bytes.pop();
        }
        return Ok(Some(Passphrase::new(bytes)));
    }
    Ok(std::env::var_os(env).map(|v| Passphrase::new(v.into_encoded_bytes())))
}

//! Secret material: passphrases and master keys, zeroized on drop and never printed.

use std::fmt;

use zeroize::Zeroizing;

/// A passphrase that unlocks an encrypted image.
///
/// The bytes are wiped from memory when the value is dropped, `Debug` prints
/// `Passphrase(<redacted>)`, and the type has no serde support, so a passphrase cannot end up
/// in a log or a serialized report by accident.
///
/// LUKS uses all bytes of the passphrase (QEMU passes the secret's UTF-8 bytes). The legacy AES
/// method uses only the bytes before the first NUL, at most 16 of them (see
/// [`legacy_aes_cipher`](super::legacy_aes_cipher)).
///
/// ```
/// use kvmsec_qcow2::crypto::Passphrase;
///
/// let pw = Passphrase::from("correct horse");
/// assert_eq!(pw.as_bytes(), b"correct horse");
/// assert_eq!(format!("{pw:?}"), "Passphrase(<redacted>)");
/// ```
#[derive(Clone)]
pub struct Passphrase(Zeroizing<Vec<u8>>);

impl Passphrase {
    /// Wraps the given bytes. The vector is moved, not copied, so no unwiped copy is left
    /// behind by this call.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        Passphrase(Zeroizing::new(bytes.into()))
    }

    /// The passphrase bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl From<&str> for Passphrase {
    fn from(s: &str) -> Self {
        Passphrase::new(s.as_bytes().to_vec())
    }
}

impl From<String> for Passphrase {
    fn from(s: String) -> Self {
        Passphrase::new(s.into_bytes())
    }
}

impl From<Vec<u8>> for Passphrase {
    fn from(v: Vec<u8>) -> Self {
        Passphrase::new(v)
    }
}

impl fmt::Debug for Passphrase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Passphrase(<redacted>)")
    }
}

/// The LUKS master key (the data-encryption key of an image), wiped on drop.
///
/// Most callers only need the [`SectorCipher`](super::SectorCipher) built from it; the raw key
/// is for callers that re-encrypt an image. `Debug` prints only the length.
#[derive(Clone)]
pub struct MasterKey(Zeroizing<Vec<u8>>);

impl MasterKey {
    /// Wraps raw key bytes.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        MasterKey(Zeroizing::new(bytes.into()))
    }

    /// The key bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Key length in bytes (64 for AES-256-XTS).
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// `true` for an empty key (never produced by this crate).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// A fresh random key of `len` bytes from the operating system's generator.
    pub fn random(len: usize) -> crate::Result<Self> {
        let mut key = Zeroizing::new(vec![0u8; len]);
        super::fill_random(&mut key)?;
        Ok(MasterKey(key))
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MasterKey(<redacted {} bytes>)", self.0.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted() {
        let p = Passphrase::from(String::from("hunter2"));
        assert!(!format!("{p:?}").contains("hunter2"));
        let k = MasterKey::new(vec![0x41u8; 32]);
        let d = format!("{k:?}");
        assert_eq!(d, "MasterKey(<redacted 32 bytes>)");
    }
}

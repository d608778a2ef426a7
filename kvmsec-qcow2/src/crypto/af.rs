//! LUKS1 anti-forensic (AF) splitting and PBKDF2 key derivation.
//!
//! # References
//! - LUKS1 On-Disk Format Specification 1.2.3, §2.4 (AF-splitter, `H1` diffusion).
//! - QEMU `crypto/afsplit.c` (hash diffusion in digest-sized chunks with a big-endian 32-bit
//!   chunk counter prefixed; the last chunk truncated).
//! - RFC 8018 §5.2 (PBKDF2).

use zeroize::Zeroizing;

use super::cipher::HashAlg;
use crate::Result;

/// Largest digest of the supported hashes (SHA-512).
const MAX_DIGEST: usize = 64;

/// PBKDF2-HMAC-`hash` of `password` with `salt` and `iterations`, filling `out`.
pub(crate) fn pbkdf2(hash: HashAlg, password: &[u8], salt: &[u8], iterations: u32, out: &mut [u8]) {
    use pbkdf2::pbkdf2_hmac;
    match hash {
        HashAlg::Sha1 => pbkdf2_hmac::<sha1::Sha1>(password, salt, iterations, out),
        HashAlg::Sha224 => pbkdf2_hmac::<sha2::Sha224>(password, salt, iterations, out),
        HashAlg::Sha256 => pbkdf2_hmac::<sha2::Sha256>(password, salt, iterations, out),
        HashAlg::Sha384 => pbkdf2_hmac::<sha2::Sha384>(password, salt, iterations, out),
        HashAlg::Sha512 => pbkdf2_hmac::<sha2::Sha512>(password, salt, iterations, out),
    }
}

/// The LUKS diffusion function H1: each digest-sized chunk `j` of `block` is replaced by
/// `hash(be32(j) || chunk)`, truncated to the chunk's length.
fn diffuse(hash: HashAlg, block: &mut [u8]) {
    let dlen = hash.digest_len();
    let mut digest = Zeroizing::new([0u8; MAX_DIGEST]);
    for (j, chunk) in block.chunks_mut(dlen).enumerate() {
        let counter = (j as u32).to_be_bytes();
        hash.hash_into(&[&counter, chunk], &mut digest);
        let n = chunk.len();
        chunk.copy_from_slice(&digest[..n]);
    }
}

/// Merges `stripes` stripes of `key_len` bytes from `material` into the key.
///
/// `material.len()` must be `key_len * stripes` (the caller sized it so) and `stripes >= 1`.
pub(crate) fn af_merge(
    hash: HashAlg,
    material: &[u8],
    key_len: usize,
    stripes: usize,
) -> Zeroizing<Vec<u8>> {
    let mut d = Zeroizing::new(vec![0u8; key_len]);
    let mut stripes_iter = material.chunks_exact(key_len).take(stripes);
    let last = stripes.saturating_sub(1);
    for _ in 0..last {
        if let Some(s) = stripes_iter.next() {
            xor_into(&mut d, s);
            diffuse(hash, &mut d);
        }
    }
    if let Some(s) = stripes_iter.next() {
        xor_into(&mut d, s);
    }
    d
}

/// Splits `key` into `stripes` stripes (random stripes 0..n-2, the last one computed), the
/// inverse of [`af_merge`].
pub(crate) fn af_split(hash: HashAlg, key: &[u8], stripes: usize) -> Result<Zeroizing<Vec<u8>>> {
    let key_len = key.len();
    let mut material = Zeroizing::new(vec![0u8; key_len * stripes]);
    let last = stripes.saturating_sub(1);
    super::fill_random(&mut material[..key_len * last])?;
    let mut d = Zeroizing::new(vec![0u8; key_len]);
    for s in material[..key_len * last].chunks_exact(key_len) {
        xor_into(&mut d, s);
        diffuse(hash, &mut d);
    }
    if let Some(tail) = material.get_mut(key_len * last..) {
        for ((t, dk), k) in tail.iter_mut().zip(d.iter()).zip(key) {
            *t = dk ^ k;
        }
    }
    Ok(material)
}

fn xor_into(dst: &mut [u8], src: &[u8]) {
    for (d, s) in dst.iter_mut().zip(src) {
        *d ^= *s;
    }
}

/// Compares two byte strings without an early exit on the first difference.
pub(crate) fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// RFC 6070 PBKDF2-HMAC-SHA1 vectors and a common PBKDF2-HMAC-SHA256 vector.
    #[test]
    fn pbkdf2_known_answers() {
        let mut out = [0u8; 20];
        pbkdf2(HashAlg::Sha1, b"password", b"salt", 2, &mut out);
        assert_eq!(
            out,
            [
                0xea, 0x6c, 0x01, 0x4d, 0xc7, 0x2d, 0x6f, 0x8c, 0xcd, 0x1e, 0xd9, 0x2a, 0xce, 0x1d,
                0x41, 0xf0, 0xd8, 0xde, 0x89, 0x57
            ]
        );
        let mut out = [0u8; 32];
        pbkdf2(HashAlg::Sha256, b"password", b"salt", 1, &mut out);
        assert_eq!(out[..8], [0x12, 0x0f, 0xb6, 0xcf, 0xfc, 0xf8, 0xb3, 0x2c]);
    }

    /// Independent computation of one diffusion step (SHA-256 over be32(0)||block[..32] and
    /// be32(1)||block[32..]) compared with `diffuse`.
    #[test]
    fn diffuse_matches_definition() {
        use sha2::{Digest, Sha256};
        let mut block: Vec<u8> = (0..40u8).collect();
        let orig = block.clone();
        diffuse(HashAlg::Sha256, &mut block);
        let mut h = Sha256::new();
        h.update([0, 0, 0, 0]);
        h.update(&orig[..32]);
        assert_eq!(&block[..32], h.finalize().as_slice());
        let mut h = Sha256::new();
        h.update([0, 0, 0, 1]);
        h.update(&orig[32..]);
        assert_eq!(&block[32..], &h.finalize()[..8]);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]
        #[test]
        fn split_merge_round_trip(
            key in proptest::collection::vec(any::<u8>(), 1..80),
            stripes in 1usize..50,
            h in prop_oneof![Just(HashAlg::Sha1), Just(HashAlg::Sha256), Just(HashAlg::Sha512)],
        ) {
            let m = af_split(h, &key, stripes).unwrap();
            prop_assert_eq!(m.len(), key.len() * stripes);
            let back = af_merge(h, &m, key.len(), stripes);
            prop_assert_eq!(&back[..], &key[..]);
        }
    }
}

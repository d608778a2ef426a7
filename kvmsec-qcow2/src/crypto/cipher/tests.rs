use super::*;
use proptest::prelude::*;
use sha2::Sha256;

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 + 3) as u8).collect()
}

fn test_key(n: usize, seed: usize) -> Vec<u8> {
    (0..n).map(|i| (seed + i * 13) as u8).collect()
}

/// IEEE 1619-2007 Annex B, XTS-AES-128 vectors 1 and 2 (32-byte data units).
#[test]
fn xts_ieee1619_vectors() {
    let cases = [
        (
            "0000000000000000000000000000000000000000000000000000000000000000",
            0u64,
            "0000000000000000000000000000000000000000000000000000000000000000",
            "917cf69ebd68b2ec9b9fe9a3eadda692cd43d2f59598ed858c02c2652fbf922e",
        ),
        (
            "1111111111111111111111111111111122222222222222222222222222222222",
            0x3333333333,
            "4444444444444444444444444444444444444444444444444444444444444444",
            "c454185e6a16936e39334038acef838bfb186fff7480adc4289382ecd6d394f0",
        ),
        (
            "fffefdfcfbfaf9f8f7f6f5f4f3f2f1f022222222222222222222222222222222",
            0x3333333333,
            "4444444444444444444444444444444444444444444444444444444444444444",
            "af85336b597afc1a900b2eb21ec949d292df4c047e0b21532186a5971a227a89",
        ),
    ];
    for (key, unit, pt, ct) in cases {
        let c = SectorCipher::new(
            CipherAlg::Aes128,
            CipherMode::Xts,
            IvGen::Plain64,
            &unhex(key),
        )
        .unwrap();
        let mut buf = unhex(pt);
        c.crypt_partial(unit, &mut buf, true).unwrap();
        assert_eq!(hex(&buf), ct);
        c.crypt_partial(unit, &mut buf, false).unwrap();
        assert_eq!(hex(&buf), pt);
    }
}

/// SHA-256 of the ciphertext of `pattern(2048)` starting at sector 0xffff_fffe (so `plain`
/// wraps while `plain64` does not), computed independently with Python `cryptography`
/// (OpenSSL) sector by sector; ESSIV = AES-256-ECB_{sha256(key)}(plain64).
#[test]
fn known_answers_against_openssl() {
    let cases: &[(usize, &str, &str, usize, usize, &str)] = &[
        (
            16,
            "xts",
            "plain64",
            32,
            19,
            "0dedef0d1fa47964b8e6a7f2c190bfba4cce6e10059aec5e6456c9bd838a6663",
        ),
        (
            16,
            "xts",
            "plain",
            32,
            19,
            "05e48d5c5963de37781265e60b75b62cdcd7e774f5cca37e9d96f283ffb9344c",
        ),
        (
            16,
            "cbc",
            "plain64",
            16,
            19,
            "dc72997d261b488b0094ea0e356f5815b7bf70e32922e536b6194ea75d798b28",
        ),
        (
            16,
            "cbc",
            "plain",
            16,
            19,
            "0b23878390d6dfbb699641b5915f3208617d76cc89b7e37695e560bfcfaf7dad",
        ),
        (
            16,
            "cbc",
            "essiv",
            16,
            19,
            "f928388ccaf4ede74bee9a2a401a22f96ae566143cd4b7b82a0b704762279b84",
        ),
        (
            16,
            "ecb",
            "plain64",
            16,
            19,
            "f7f239cbfd0c2bf30160e594b84f981ba7bf98247d7c1698dbe03000605c7fd0",
        ),
        (
            24,
            "cbc",
            "plain64",
            24,
            27,
            "ff22c6278a4237bda8d30b97eeaa6fa89a4dea5ba6cf4e95ee8c30b0e37cebbb",
        ),
        (
            24,
            "cbc",
            "plain",
            24,
            27,
            "51a4f22cc95cca0bf2813b6f5827d97257a674eb6e17010b8e43cb846d2b809f",
        ),
        (
            24,
            "cbc",
            "essiv",
            24,
            27,
            "896f8b32f1517a148ef17978fdb5f3ea670e2fce9633ee8b9b616b8db0c02f00",
        ),
        (
            24,
            "ecb",
            "plain64",
            24,
            27,
            "26edbf8863e3718f2435317b2c656299be34830c4ca0d51f03d8a0650e05a93d",
        ),
        (
            32,
            "xts",
            "plain64",
            64,
            35,
            "a09fbdc10967262712d8d513b288bdac5e9ad9f5d6a67573fc6f03fa1168bd51",
        ),
        (
            32,
            "xts",
            "plain",
            64,
            35,
            "861aedb5f89c501091f201aa8bc224482589060ead63a46cb1a9f9fbb5098844",
        ),
        (
            32,
            "cbc",
            "plain64",
            32,
            35,
            "c78d50b73a4463395a7aa95e52976f4400b2a3cda4aa9bbd02d94320c1084f9f",
        ),
        (
            32,
            "cbc",
            "plain",
            32,
            35,
            "7c39fb3a5768d259b243bea0d1d4ad94ffdc44351d3566eda167c1f32c426bb4",
        ),
        (
            32,
            "cbc",
            "essiv",
            32,
            35,
            "8942b5935735b011b63ca60dd055e8dd6c18f31716a8fcbc6566902c4183745a",
        ),
        (
            32,
            "ecb",
            "plain64",
            32,
            35,
            "43a88fb9689dbbeff20ecba48acfe81d57cba9012fdfde31a3ee4d98c7cbb0b7",
        ),
    ];
    for &(alg, mode, ivgen, kb, seed, want) in cases {
        let alg = CipherAlg::from_aes_key_bytes(alg).unwrap();
        let mode = match mode {
            "xts" => CipherMode::Xts,
            "cbc" => CipherMode::Cbc,
            _ => CipherMode::Ecb,
        };
        let ivgen = match ivgen {
            "plain" => IvGen::Plain,
            "plain64" => IvGen::Plain64,
            _ => IvGen::Essiv(HashAlg::Sha256),
        };
        let key = test_key(kb, seed);
        let c = SectorCipher::new(alg, mode, ivgen, &key).unwrap();
        let plain = pattern(2048);
        let mut buf = plain.clone();
        c.encrypt(0xffff_fffe, &mut buf).unwrap();
        assert_eq!(hex(&Sha256::digest(&buf)), want, "{alg} {mode} {ivgen:?}");
        c.decrypt(0xffff_fffe, &mut buf).unwrap();
        assert_eq!(buf, plain);
    }
}

/// AES-192-XTS (OpenSSL has none): compare with the `xts-mode` crate.
#[test]
fn xts_matches_xts_mode_crate() {
    fn check<C: KeyInit + Aes16>(alg: CipherAlg) {
        let key = test_key(2 * alg.key_bytes(), 5);
        let ours = SectorCipher::new(alg, CipherMode::Xts, IvGen::Plain64, &key).unwrap();
        let half = alg.key_bytes();
        let theirs = xts_mode::Xts128::new(
            C::new_from_slice(&key[..half]).unwrap(),
            C::new_from_slice(&key[half..]).unwrap(),
        );
        let mut a = pattern(8192);
        let mut b = a.clone();
        ours.encrypt(123_456_789, &mut a).unwrap();
        theirs.encrypt_area(&mut b, 512, 123_456_789, xts_mode::get_tweak_default);
        assert_eq!(a, b, "{alg}");
    }
    check::<Aes128>(CipherAlg::Aes128);
    check::<Aes192>(CipherAlg::Aes192);
    check::<Aes256>(CipherAlg::Aes256);
}

/// Key "pw" (padded), sector 5, checked with Python `cryptography` as AES-128-CBC plain64.
#[test]
fn legacy_aes_known_answer_and_truncation() {
    let c = legacy_aes_cipher(&Passphrase::from("pw"));
    let mut buf = pattern(2048);
    c.encrypt(5, &mut buf).unwrap();
    assert_eq!(
        hex(&Sha256::digest(&buf)),
        "98b18c30ec0736ab5e8f0fd524297f9a8b6f5c73a2495e877ba931af11b512fa"
    );
    // A NUL ends the key, as C strlen does in QEMU.
    let nul = legacy_aes_cipher(&Passphrase::new(b"pw\0ignored".to_vec()));
    let mut buf2 = pattern(2048);
    nul.encrypt(5, &mut buf2).unwrap();
    assert_eq!(buf, buf2);
    // Bytes past the 16th are ignored.
    let a = legacy_aes_cipher(&Passphrase::from("0123456789abcdefXYZ"));
    let b = legacy_aes_cipher(&Passphrase::from("0123456789abcdef"));
    let (mut x, mut y) = (pattern(512), pattern(512));
    a.encrypt(0, &mut x).unwrap();
    b.encrypt(0, &mut y).unwrap();
    assert_eq!(x, y);
}

#[test]
fn essiv_with_non_aes_digest_is_refused() {
    for h in [
        HashAlg::Sha1,
        HashAlg::Sha224,
        HashAlg::Sha384,
        HashAlg::Sha512,
    ] {
        let r = SectorCipher::new(
            CipherAlg::Aes128,
            CipherMode::Cbc,
            IvGen::Essiv(h),
            &[1; 16],
        );
        assert!(matches!(r, Err(Error::UnsupportedCipher { .. })), "{h}");
    }
}

#[test]
fn wrong_key_length_and_odd_buffers_are_typed_errors() {
    let r = SectorCipher::new(CipherAlg::Aes256, CipherMode::Xts, IvGen::Plain64, &[0; 48]);
    assert!(matches!(r, Err(Error::UnsupportedCipher { .. })));
    let c =
        SectorCipher::new(CipherAlg::Aes256, CipherMode::Xts, IvGen::Plain64, &[0; 64]).unwrap();
    for len in [1usize, 16, 511, 513, 1000] {
        let mut b = vec![0u8; len];
        assert!(matches!(c.encrypt(0, &mut b), Err(Error::SectorAlignment { len: l }) if l == len));
        assert!(matches!(
            c.decrypt(0, &mut b),
            Err(Error::SectorAlignment { .. })
        ));
    }
    c.encrypt(0, &mut []).unwrap();
}

#[test]
fn cipher_is_send_sync_and_debug_redacted() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<SectorCipher>();
    let c = SectorCipher::new(
        CipherAlg::Aes128,
        CipherMode::Cbc,
        IvGen::Plain64,
        &[0x5a; 16],
    )
    .unwrap();
    let d = format!("{c:?}");
    assert!(d.contains("redacted") && !d.contains("90"), "{d}");
}

#[test]
fn aes_hardware_is_used_here() {
    // The machines this crate is developed and tested on have AES-NI (and VAES).
    if !std::arch::is_x86_feature_detected!("aes") {
        eprintln!("skipping: this CPU has no AES-NI");
        return;
    }
    assert!(SectorCipher::hardware_accelerated());
}

#[test]
fn probe_signatures() {
    let mut d = vec![0u8; 1024];
    d[512..520].copy_from_slice(b"EFI PART");
    assert_eq!(probe_plaintext(&d), PlaintextProbe::Gpt);
    let mut m = vec![1u8; 512];
    m[510] = 0x55;
    m[511] = 0xAA;
    assert_eq!(probe_plaintext(&m), PlaintextProbe::Mbr);
    assert_eq!(probe_plaintext(&[3u8; 512]), PlaintextProbe::Unknown);
    assert_eq!(probe_plaintext(&[]), PlaintextProbe::Unknown);
}

fn any_config() -> impl Strategy<Value = (CipherAlg, CipherMode, IvGen)> {
    (
        prop_oneof![
            Just(CipherAlg::Aes128),
            Just(CipherAlg::Aes192),
            Just(CipherAlg::Aes256)
        ],
        prop_oneof![
            Just(CipherMode::Xts),
            Just(CipherMode::Cbc),
            Just(CipherMode::Ecb)
        ],
        prop_oneof![
            Just(IvGen::Plain),
            Just(IvGen::Plain64),
            Just(IvGen::Essiv(HashAlg::Sha256))
        ],
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn encrypt_decrypt_round_trip(
        (alg, mode, ivgen) in any_config(),
        key_seed in any::<u8>(),
        sectors in 0usize..9,
        first in any::<u64>(),
        fill in any::<u8>(),
    ) {
        let key: Vec<u8> = (0..mode.key_bytes(alg)).map(|i| key_seed.wrapping_add(i as u8)).collect();
        let c = SectorCipher::new(alg, mode, ivgen, &key).unwrap();
        let plain: Vec<u8> = (0..sectors * 512).map(|i| fill.wrapping_mul(i as u8)).collect();
        let mut buf = plain.clone();
        c.encrypt(first, &mut buf).unwrap();
        if sectors > 0 {
            prop_assert_ne!(&buf, &plain);
        }
        // Sector-at-a-time gives the same result as one call.
        let mut one_by_one = plain.clone();
        for (i, s) in one_by_one.chunks_mut(512).enumerate() {
            c.encrypt(first.wrapping_add(i as u64), s).unwrap();
        }
        prop_assert_eq!(&one_by_one, &buf);
        c.decrypt(first, &mut buf).unwrap();
        prop_assert_eq!(buf, plain);
    }
}

/// Issue 9 case 28: legacy AES cannot detect a wrong passphrase; the probe tells a decrypted
/// partition table from garbage.
#[test]
fn legacy_aes_wrong_passphrase_is_only_detectable_by_probe() {
    let mut mbr = vec![0u8; 1024];
    mbr[446] = 0x80; // a bootable partition entry
    mbr[510] = 0x55;
    mbr[511] = 0xAA;
    mbr[512..520].copy_from_slice(b"EFI PART");
    let right = legacy_aes_cipher(&Passphrase::from("right"));
    let mut disk = mbr.clone();
    right.encrypt(0, &mut disk).unwrap();

    let mut with_wrong = disk.clone();
    legacy_aes_cipher(&Passphrase::from("wrong"))
        .decrypt(0, &mut with_wrong)
        .unwrap();
    assert_ne!(with_wrong, mbr, "decryption 'succeeds' with garbage");
    assert_eq!(probe_plaintext(&with_wrong), PlaintextProbe::Unknown);

    let mut with_right = disk;
    right.decrypt(0, &mut with_right).unwrap();
    assert_eq!(probe_plaintext(&with_right), PlaintextProbe::Gpt);
    assert_eq!(probe_plaintext(&with_right[..512]), PlaintextProbe::Mbr);
}

/// The AVX-512 XTS code and the portable loop give the same bytes, for every key size, for
/// batch-boundary lengths and for sector numbers that wrap. (The known-answer tests above pin
/// whichever path this CPU takes to OpenSSL.)
#[test]
fn xts_vector_and_portable_paths_agree() {
    #[cfg(target_arch = "x86_64")]
    if !xts_x86::available() {
        eprintln!(
            "skipped the comparison: this CPU has no AVX-512F, so both calls run the same code"
        );
        return;
    }
    for (alg, kb) in [
        (CipherAlg::Aes128, 32),
        (CipherAlg::Aes192, 48),
        (CipherAlg::Aes256, 64),
    ] {
        for ivgen in [IvGen::Plain64, IvGen::Plain] {
            let c = SectorCipher::new(alg, CipherMode::Xts, ivgen, &test_key(kb, 3)).unwrap();
            for sectors in [1, 2, 15, 16, 17, 33, 128] {
                for first in [0, 0xffff_fffe, u64::MAX - 3] {
                    let plain = pattern(sectors * 512);
                    let mut fast = plain.clone();
                    let mut portable = plain.clone();
                    c.run(first, &mut fast, true);
                    c.run_portable(first, &mut portable, true);
                    assert_eq!(
                        fast, portable,
                        "{alg} {ivgen:?} {sectors} sectors from {first}"
                    );
                    c.run(first, &mut fast, false);
                    c.run_portable(first, &mut portable, false);
                    assert_eq!(fast, plain);
                    assert_eq!(portable, plain);
                }
            }
        }
    }
}

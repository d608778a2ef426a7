//! LUKS and legacy AES interoperability with the real qemu-img, both directions; key slots;
//! encrypted backing chains; issue 9 cases 27-29.

mod common;

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use common::*;
use kvmsec_qcow2::crypto::{Iterations, KeySlotSelector, LuksOptions, Passphrase};
use kvmsec_qcow2::report::{Status, image_checks};
use kvmsec_qcow2::{
    BackingFormat, ConvertOptions, CreateOptions, Encryption, EncryptionInfo, Error, Image,
    OpenOptions, Target, add_passphrase, change_passphrase, convert, create, info,
    remove_passphrase,
};

fn fast_luks(pw: &str) -> Encryption {
    Encryption::Luks {
        passphrase: pw.into(),
        options: LuksOptions {
            iterations: Iterations::Fixed(1000),
            ..LuksOptions::default()
        },
    }
}

fn secret_args(pw: &str) -> [String; 2] {
    ["--object".into(), format!("secret,id=sec0,data={pw}")]
}

/// qemu-img create of a LUKS image with extra -o options.
fn qemu_luks(path: &Path, size: &str, pw: &str, extra: &str) {
    let mut o = "encrypt.format=luks,encrypt.key-secret=sec0,encrypt.iter-time=10".to_string();
    if !extra.is_empty() {
        o.push(',');
        o.push_str(extra);
    }
    run(qemu_img()
        .args(["create", "-f", "qcow2"])
        .args(secret_args(pw))
        .args(["-o", &o])
        .arg(path)
        .arg(size));
}

/// qemu-io commands on an encrypted image.
fn qemu_io_enc(path: &Path, pw: &str, cmds: &[&str]) {
    let mut c = qemu_io();
    c.args(secret_args(pw)).arg("--image-opts");
    for cmd in cmds {
        c.args(["-c", cmd]);
    }
    c.arg(format!(
        "driver=qcow2,file.filename={},encrypt.key-secret=sec0",
        path.display()
    ));
    run(&mut c);
}

fn open_pw(path: &Path, pw: &str) -> Result<Image, Error> {
    OpenOptions::new()
        .passphrase(Passphrase::from(pw))
        .open(path)
}

fn read_all(img: &mut Image) -> Vec<u8> {
    let mut v = vec![0u8; img.virtual_size() as usize];
    img.read_at(&mut v, 0).unwrap();
    v
}

/// The header cluster and the LUKS region (bytes that guest writes must never touch).
fn metadata_bytes(p: &Path) -> Vec<u8> {
    let b = std::fs::read(p).unwrap();
    let h = kvmsec_qcow2::header::Header::parse(&b).unwrap();
    let (off, len) = h.crypto_header().unwrap();
    let mut v = b[..h.cluster_size() as usize].to_vec();
    v.extend_from_slice(&b[off as usize..(off + len) as usize]);
    v
}

#[test]
fn our_luks_images_pass_qemu() {
    if !have_qemu() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for (version, cs) in [(3u32, 65536u64), (2, 65536), (3, 4096), (3, 2 << 20)] {
        let p = dir.path().join(format!("ours-{version}-{cs}.qcow2"));
        let size = 4usize << 20;
        let mut img = create(
            &p,
            &CreateOptions::new(size as u64)
                .version(version)
                .cluster_size(cs)
                .encryption(fast_luks("pw")),
        )
        .unwrap();
        // Case 30: remember the metadata clusters to compare after the writes.
        let meta_before = metadata_bytes(&p);
        let mut model = vec![0u8; size];
        for (i, (off, len)) in [(0usize, 5000usize), (100_000, 70_000), (size - 513, 513)]
            .into_iter()
            .enumerate()
        {
            let d = pseudo_random(i as u64 + cs, len);
            img.write_at(&d, off as u64).unwrap();
            model[off..off + len].copy_from_slice(&d);
        }
        img.flush().unwrap();
        drop(img);
        assert!(
            metadata_bytes(&p) == meta_before,
            "v{version} cs {cs}: metadata changed"
        );
        assert_eq!(qemu_check(&p, Some("pw")), (0, 0, 0), "v{version} cs {cs}");
        assert!(qemu_to_raw(&p, Some("pw")) == model, "v{version} cs {cs}");
        assert!(read_all(&mut open_pw(&p, "pw").unwrap()) == model);
        // A wrong passphrase is a typed error, never garbage.
        assert!(matches!(open_pw(&p, "nope"), Err(Error::WrongPassphrase)));
        // info without a passphrase.
        match info(&p).unwrap().encryption {
            Some(EncryptionInfo::Luks(l)) => {
                assert_eq!(
                    (
                        l.cipher_alg.as_str(),
                        l.cipher_mode.as_str(),
                        l.ivgen_alg.as_str()
                    ),
                    ("aes-256", "xts", "plain64")
                );
                assert!(l.slots[0].active && !l.slots[1].active);
            }
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn qemu_luks_images_read_back() {
    if !have_qemu() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // Each qemu-img LUKS create costs its fixed ~2 s PBKDF2 calibration: few variants, each
    // covering several parameters.
    let variants = [
        ("default", ""),
        (
            "v2-cbc-plain64-sha1",
            "compat=0.10,encrypt.cipher-mode=cbc,encrypt.ivgen-alg=plain64,encrypt.hash-alg=sha1",
        ),
        (
            "aes128-cbc-essiv-sha512",
            "encrypt.cipher-alg=aes-128,encrypt.cipher-mode=cbc,encrypt.ivgen-alg=essiv,encrypt.ivgen-hash-alg=sha256,encrypt.hash-alg=sha512",
        ),
        ("c512", "cluster_size=512"),
    ];
    for (name, extra) in variants {
        let p = dir.path().join(format!("{name}.qcow2"));
        qemu_luks(&p, "3M", "pw", extra);
        // Data, zero clusters (case 27) and unallocated clusters.
        qemu_io_enc(
            &p,
            "pw",
            &[
                "write -P 0x5a 0 1M",
                "write -z 64k 128k",
                "write -P 0x33 2M 4k",
            ],
        );
        let expected = qemu_to_raw(&p, Some("pw"));
        let got = read_all(&mut open_pw(&p, "pw").unwrap());
        assert!(got == expected, "{name}");
        assert!(
            got[70_000..190_000].iter().all(|&b| b == 0),
            "{name}: zero clusters"
        );
        assert!(
            got[1 << 20..2 << 20].iter().all(|&b| b == 0),
            "{name}: unallocated"
        );
        let ours = kvmsec_qcow2::check(&p).unwrap();
        assert!(ours.is_clean(), "{name}: {:?}", ours.problems);
        // Writes by us into qemu's image are accepted by qemu.
        let mut img = OpenOptions::new()
            .write(true)
            .passphrase("pw".into())
            .open(&p)
            .unwrap();
        img.write_at(&[0x77; 3000], 1_500_000).unwrap();
        img.flush().unwrap();
        drop(img);
        assert_eq!(qemu_check(&p, Some("pw")), (0, 0, 0), "{name}");
        let mut expected = expected;
        expected[1_500_000..1_503_000].fill(0x77);
        assert!(qemu_to_raw(&p, Some("pw")) == expected, "{name}");
    }
}

#[test]
fn key_slots_both_ways() {
    if !have_qemu() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("keys.qcow2");
    let mut img = create(
        &p,
        &CreateOptions::new(1 << 20).encryption(fast_luks("one")),
    )
    .unwrap();
    img.write_at(&[1u8; 4096], 0).unwrap();
    drop(img);
    // Ours: add "two", qemu opens with it.
    assert_eq!(
        add_passphrase(
            &p,
            &"one".into(),
            &"two".into(),
            None,
            Iterations::Fixed(1000)
        )
        .unwrap(),
        1
    );
    assert_eq!(qemu_check(&p, Some("two")), (0, 0, 0));
    // qemu amend adds "three" in slot 2; we open with it.
    run(qemu_img()
        .arg("amend")
        .args([
            "--object",
            "secret,id=sec0,data=two",
            "--object",
            "secret,id=sec1,data=three",
        ])
        .arg("--image-opts")
        .arg(format!(
            "driver=qcow2,file.filename={},encrypt.key-secret=sec0",
            p.display()
        ))
        .args([
            "-o",
            "encrypt.state=active,encrypt.new-secret=sec1,encrypt.iter-time=10",
        ]));
    assert!(open_pw(&p, "three").is_ok());
    // Ours: remove "one"; qemu refuses it and accepts "three".
    assert_eq!(
        remove_passphrase(&p, KeySlotSelector::Passphrase(&"one".into()), false).unwrap(),
        vec![0]
    );
    let (ok, out) = try_run(
        qemu_img()
            .arg("info")
            .args(secret_args("one"))
            .arg("--image-opts")
            .arg(format!(
                "driver=qcow2,file.filename={},encrypt.key-secret=sec0",
                p.display()
            ))
            .arg("--output=json"),
    );
    let _ = (ok, out);
    assert_eq!(qemu_to_raw_result(&p, "one"), None);
    assert!(qemu_to_raw_result(&p, "three").is_some());
    // Ours: change "two" to "four".
    change_passphrase(&p, &"two".into(), &"four".into(), Iterations::Fixed(1000)).unwrap();
    assert!(matches!(open_pw(&p, "two"), Err(Error::WrongPassphrase)));
    assert!(qemu_to_raw_result(&p, "four").unwrap()[..4096] == [1u8; 4096]);
    // qemu amend removes slot of "three"; we no longer open with it.
    run(qemu_img()
        .arg("amend")
        .args([
            "--object",
            "secret,id=sec0,data=four",
            "--object",
            "secret,id=sec1,data=three",
        ])
        .arg("--image-opts")
        .arg(format!(
            "driver=qcow2,file.filename={},encrypt.key-secret=sec0",
            p.display()
        ))
        .args(["-o", "encrypt.state=inactive,encrypt.old-secret=sec1"]));
    assert!(matches!(open_pw(&p, "three"), Err(Error::WrongPassphrase)));
    assert_eq!(qemu_check(&p, Some("four")), (0, 0, 0));
}

fn qemu_to_raw_result(p: &Path, pw: &str) -> Option<Vec<u8>> {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("o.raw");
    let mut c = qemu_img();
    c.args(["convert", "-O", "raw"]);
    add_image(&mut c, p, Some(pw));
    c.arg(&out);
    let (ok, _) = try_run(&mut c);
    ok.then(|| std::fs::read(&out).unwrap())
}

/// Case 29: an encrypted overlay over an encrypted backing file with another passphrase, and
/// depth-three chains mixing plain and encrypted images.
#[test]
fn encrypted_chains_with_per_image_passphrases() {
    if !have_qemu() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("base.qcow2");
    qemu_luks(&base, "2M", "base-pw", "");
    qemu_io_enc(&base, "base-pw", &["write -P 0x10 0 1M"]);
    // Plain middle by qemu (plain over encrypted).
    let mid = dir.path().join("mid.qcow2");
    run(qemu_img()
        .args(["create", "-f", "qcow2", "-F", "qcow2", "-b", "base.qcow2"])
        .arg(&mid));
    // Top: encrypted overlay by us, another passphrase (encrypted over plain).
    let top = dir.path().join("top.qcow2");
    let mut asked: Vec<PathBuf> = Vec::new();
    {
        let mut img = OpenOptions::new()
            .passphrases(|p: &Path| {
                asked.push(p.to_path_buf());
                Some(Passphrase::from("base-pw"))
            })
            .open(&mid)
            .unwrap();
        let mut b = [0u8; 8];
        img.read_at(&mut b, 0).unwrap();
        assert_eq!(b, [0x10; 8]);
    }
    assert_eq!(asked, vec![base.clone()]);
    // With one passphrase for the whole chain the base does not open: nothing is created.
    let e = create(
        &top,
        &CreateOptions::new(2 << 20)
            .backing("mid.qcow2", BackingFormat::Qcow2)
            .encryption(fast_luks("top-pw")),
    )
    .unwrap_err();
    assert!(matches!(e, Error::WrongPassphrase), "{e}");
    assert!(!top.exists());
    drop(
        kvmsec_qcow2::create_with(
            &top,
            &CreateOptions::new(2 << 20)
                .backing("mid.qcow2", BackingFormat::Qcow2)
                .encryption(fast_luks("top-pw")),
            OpenOptions::new().passphrases(|p: &Path| {
                Some(Passphrase::from(if p.ends_with("base.qcow2") {
                    "base-pw"
                } else {
                    "top-pw"
                }))
            }),
        )
        .unwrap(),
    );
    let by_image = |p: &Path| -> Option<Passphrase> {
        match p.file_name()?.to_str()? {
            "top.qcow2" => Some("top-pw".into()),
            "base.qcow2" => Some("base-pw".into()),
            _ => None,
        }
    };
    let mut img = OpenOptions::new()
        .write(true)
        .passphrases(by_image)
        .open(&top)
        .unwrap();
    img.write_at(&[0x20; 1000], 500_000).unwrap();
    img.flush().unwrap();
    let got = read_all(&mut img);
    drop(img);
    let mut model = vec![0u8; 2 << 20];
    model[..1 << 20].fill(0x10);
    model[500_000..501_000].fill(0x20);
    assert!(got == model);
    // A missing passphrase for the base is a typed error naming it.
    let e = OpenOptions::new()
        .passphrases(|p: &Path| p.ends_with("top.qcow2").then(|| "top-pw".into()))
        .open(&top)
        .unwrap_err();
    assert!(matches!(&e, Error::PassphraseRequired { path } if path.ends_with("base.qcow2")));
    // qemu-img reads our top through the chain (two secrets).
    let out = dir.path().join("chain.raw");
    run(qemu_img()
        .args(["convert", "-O", "raw"])
        .args(["--object", "secret,id=s1,data=top-pw", "--object", "secret,id=s2,data=base-pw"])
        .arg("--image-opts")
        .arg(format!(
            "driver=qcow2,file.filename={},encrypt.key-secret=s1,backing.encrypt.key-secret=s2,backing.backing.encrypt.key-secret=s2",
            top.display()
        ))
        .arg(&out));
    assert!(std::fs::read(&out).unwrap() == model);
    // Report: the plain middle image sits beneath an encrypted overlay.
    let checks = image_checks(&top);
    let chain = checks
        .iter()
        .find(|c| c.id == "image.backing-chain")
        .unwrap();
    assert_eq!(chain.status, Status::Warn, "{chain:?}");
    assert!(chain.reason.contains("mid.qcow2"));
}

#[test]
fn convert_to_and_from_luks() {
    let dir = tempfile::tempdir().unwrap();
    let size = (3 << 20) + 512;
    let mut data = pseudo_random(77, size);
    data[65536..3 * 65536].fill(0);
    let raw = dir.path().join("in.raw");
    std::fs::write(&raw, &data).unwrap();
    let enc = dir.path().join("enc.qcow2");
    convert(
        &raw,
        &enc,
        ConvertOptions::new(Target::Qcow2(
            CreateOptions::new(0).encryption(fast_luks("pw")),
        )),
        |_| ControlFlow::Continue(()),
    )
    .unwrap();
    if have_qemu() {
        assert_eq!(qemu_check(&enc, Some("pw")), (0, 0, 0));
        assert!(qemu_to_raw(&enc, Some("pw")) == data);
    }
    // LUKS -> LUKS (re-encryption with a new key) and LUKS -> raw.
    let enc2 = dir.path().join("enc2.qcow2");
    convert(
        &enc,
        &enc2,
        ConvertOptions::new(Target::Qcow2(
            CreateOptions::new(0)
                .cluster_size(4096)
                .encryption(fast_luks("pw2")),
        ))
        .source(OpenOptions::new().passphrase("pw".into())),
        |_| ControlFlow::Continue(()),
    )
    .unwrap();
    let back = dir.path().join("back.raw");
    convert(
        &enc2,
        &back,
        ConvertOptions::new(Target::Raw).source(OpenOptions::new().passphrase("pw2".into())),
        |_| ControlFlow::Continue(()),
    )
    .unwrap();
    assert!(std::fs::read(&back).unwrap() == data);
    // Case 27: the zero hole stays unallocated in the encrypted image.
    let mut img = open_pw(&enc, "pw").unwrap();
    let mut hole = vec![1u8; 2 * 65536];
    img.read_at(&mut hole, 65536).unwrap();
    assert!(hole.iter().all(|&b| b == 0));
    // Compression + encryption is refused (as qemu-img does).
    if have_qemu() {
        let (ok, out) = try_run(
            qemu_img()
                .args(["convert", "-c", "-O", "qcow2"])
                .args(secret_args("pw"))
                .args([
                    "-o",
                    "encrypt.format=luks,encrypt.key-secret=sec0,encrypt.iter-time=10",
                ])
                .arg(&raw)
                .arg(dir.path().join("cx.qcow2")),
        );
        assert!(!ok && out.contains("Compression and encryption"), "{out}");
    }
}

/// Legacy AES: read qemu's, refuse writes without opt-in, report FAIL, case 28 probe.
#[test]
fn legacy_aes() {
    if !have_qemu() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("mbr.raw");
    let mut data = pseudo_random(8, 1 << 20);
    data[510] = 0x55;
    data[511] = 0xaa;
    std::fs::write(&raw, &data).unwrap();
    let aes = dir.path().join("aes.qcow2");
    run(qemu_img()
        .args(["convert", "-f", "raw", "-O", "qcow2"])
        .args(secret_args("pw"))
        .args(["-o", "encrypt.format=aes,encrypt.key-secret=sec0"])
        .arg(&raw)
        .arg(&aes));
    let mut img = open_pw(&aes, "pw").unwrap();
    assert!(read_all(&mut img) == data);
    assert_eq!(
        img.probe_plaintext().unwrap(),
        kvmsec_qcow2::crypto::PlaintextProbe::Mbr
    );
    // Case 28: a wrong passphrase opens (the format cannot tell) but the probe says Unknown.
    let mut wrong = open_pw(&aes, "wrong").unwrap();
    assert_eq!(
        wrong.probe_plaintext().unwrap(),
        kvmsec_qcow2::crypto::PlaintextProbe::Unknown
    );
    // Migrate it: legacy AES -> LUKS, which qemu-img reads.
    let luks = dir.path().join("migrated.qcow2");
    convert(
        &aes,
        &luks,
        ConvertOptions::new(Target::Qcow2(
            CreateOptions::new(0).encryption(fast_luks("new")),
        ))
        .source(OpenOptions::new().passphrase("pw".into())),
        |_| ControlFlow::Continue(()),
    )
    .unwrap();
    assert!(qemu_to_raw(&luks, Some("new")) == data);
    assert_eq!(qemu_check(&luks, Some("new")), (0, 0, 0));
    let checks = image_checks(&aes);
    let enc = checks.iter().find(|c| c.id == "image.encryption").unwrap();
    assert_eq!(enc.status, Status::Fail);
    assert!(enc.reason.starts_with("broken"));
    // Writing needs the explicit opt-in; what we write qemu reads.
    let mut w = OpenOptions::new()
        .write(true)
        .allow_legacy_aes_write(true)
        .passphrase("pw".into())
        .open(&aes)
        .unwrap();
    w.write_at(&[3u8; 700], 4000).unwrap();
    w.flush().unwrap();
    drop(w);
    data[4000..4700].fill(3);
    assert!(qemu_to_raw(&aes, Some("pw")) == data);
    assert_eq!(qemu_check(&aes, Some("pw")), (0, 0, 0));
    // Creating one needs the acknowledgement.
    let e = create(
        dir.path().join("new-aes.qcow2"),
        &CreateOptions::new(1 << 20).encryption(Encryption::LegacyAes {
            passphrase: "pw".into(),
            acknowledge_broken: false,
        }),
    );
    assert!(matches!(e, Err(Error::InvalidArgument(_))));
}

#[test]
fn report_verdicts_for_qemu_images() {
    if !have_qemu() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("plain.qcow2");
    run(qemu_img()
        .args(["create", "-f", "qcow2"])
        .arg(&plain)
        .arg("1M"));
    let luks = dir.path().join("luks.qcow2");
    qemu_luks(&luks, "1M", "pw", "");
    let status = |p: &Path| {
        image_checks(p)
            .into_iter()
            .find(|c| c.id == "image.encryption")
            .unwrap()
    };
    assert_eq!(status(&plain).status, Status::Warn);
    let l = status(&luks);
    assert_eq!(l.status, Status::Pass);
    assert!(
        l.reason.contains("aes-256-xts-plain64") && l.reason.contains("slots: 0"),
        "{l:?}"
    );
    let garbage = dir.path().join("garbage.qcow2");
    std::fs::write(&garbage, b"QFI\xfb\0\0\0\x03garbage").unwrap();
    let g = image_checks(&garbage);
    assert_eq!(g[0].status, Status::Fail);
}

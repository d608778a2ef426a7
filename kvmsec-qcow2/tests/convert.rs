//! Conversion: raw/qcow2/legacy AES sources into qcow2 and raw, progress and cancellation.

mod common;

use std::ops::ControlFlow;

use common::*;
use kvmsec_qcow2::crypto::Passphrase;
use kvmsec_qcow2::{ConvertOptions, CreateOptions, Error, Image, OpenOptions, Target, convert};

fn cont(_: kvmsec_qcow2::Progress) -> ControlFlow<()> {
    ControlFlow::Continue(())
}

fn sample_raw(dir: &std::path::Path, size: usize) -> (std::path::PathBuf, Vec<u8>) {
    let mut data = pseudo_random(5, size);
    data[1 << 20..3 << 20].fill(0); // a hole to skip
    let p = dir.join("src.raw");
    std::fs::write(&p, &data).unwrap();
    (p, data)
}

#[test]
fn raw_to_qcow2_to_raw() {
    let dir = tempfile::tempdir().unwrap();
    let size = (5 << 20) + 4096 + 512; // not a cluster multiple
    let (raw, data) = sample_raw(dir.path(), size);
    for cs in [512u64, 65536, 2 << 20] {
        let q = dir.path().join(format!("c{cs}.qcow2"));
        let mut calls = 0;
        convert(
            &raw,
            &q,
            ConvertOptions::new(Target::Qcow2(CreateOptions::new(0).cluster_size(cs))),
            |p| {
                calls += 1;
                assert!(p.done <= p.total);
                ControlFlow::Continue(())
            },
        )
        .unwrap();
        assert!(calls > 0);
        let mut img = Image::open(&q).unwrap();
        assert_eq!(img.virtual_size(), size as u64);
        let mut back = vec![0u8; size];
        img.read_at(&mut back, 0).unwrap();
        assert!(back == data, "cs {cs}");
        if have_qemu() {
            assert_eq!(qemu_check(&q, None), (0, 0, 0), "cs {cs}");
            assert!(qemu_to_raw(&q, None) == data);
        }
        let r = dir.path().join(format!("c{cs}.raw"));
        convert(&q, &r, ConvertOptions::new(Target::Raw), cont).unwrap();
        assert!(std::fs::read(&r).unwrap() == data);
    }
}

#[test]
fn cancel_leaves_no_target_and_source_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let (raw, data) = sample_raw(dir.path(), 8 << 20);
    let q = dir.path().join("out.qcow2");
    let r = convert(
        &raw,
        &q,
        ConvertOptions::new(Target::Qcow2(CreateOptions::new(0))),
        |p| {
            if p.done >= 2 << 20 {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        },
    );
    assert!(matches!(r, Err(Error::Cancelled)));
    assert!(!q.exists());
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");
    assert!(std::fs::read(&raw).unwrap() == data);
}

#[test]
fn qemu_compressed_and_legacy_aes_sources() {
    if !have_qemu() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (raw, data) = sample_raw(dir.path(), 4 << 20);
    let comp = dir.path().join("comp.qcow2");
    run(qemu_img()
        .args(["convert", "-c", "-f", "raw", "-O", "qcow2"])
        .arg(&raw)
        .arg(&comp));
    let out = dir.path().join("from-comp.qcow2");
    convert(
        &comp,
        &out,
        ConvertOptions::new(Target::Qcow2(CreateOptions::new(0))),
        cont,
    )
    .unwrap();
    assert!(qemu_to_raw(&out, None) == data);

    // Legacy AES made by qemu-img: read with the passphrase, convert to plain.
    let aes = dir.path().join("aes.qcow2");
    run(qemu_img()
        .args([
            "convert",
            "-f",
            "raw",
            "-O",
            "qcow2",
            "--object",
            "secret,id=sec0,data=pw",
        ])
        .args(["-o", "encrypt.format=aes,encrypt.key-secret=sec0"])
        .arg(&raw)
        .arg(&aes));
    let mut img = OpenOptions::new()
        .passphrase(Passphrase::from("pw"))
        .open(&aes)
        .unwrap();
    let mut back = vec![0u8; 4 << 20];
    img.read_at(&mut back, 0).unwrap();
    assert!(back == data);
    assert!(matches!(
        OpenOptions::new().open(&aes),
        Err(Error::PassphraseRequired { .. })
    ));
    assert!(matches!(
        OpenOptions::new()
            .write(true)
            .passphrase(Passphrase::from("pw"))
            .open(&aes),
        Err(Error::Unsupported { .. })
    ));
    let plain = dir.path().join("aes-plain.raw");
    convert(
        &aes,
        &plain,
        ConvertOptions::new(Target::Raw).source(OpenOptions::new().passphrase("pw".into())),
        cont,
    )
    .unwrap();
    assert!(std::fs::read(&plain).unwrap() == data);
}

#[test]
fn destination_that_is_the_source_or_its_chain_is_refused() {
    use kvmsec_qcow2::{BackingFormat, create};
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("base.qcow2");
    let top = dir.path().join("top.qcow2");
    let mut b = create(&base, &CreateOptions::new(4 << 20)).unwrap();
    b.write_at(&[0x5a; 4096], 0).unwrap();
    b.flush().unwrap();
    drop(b);
    create(
        &top,
        &CreateOptions::new(4 << 20).backing("base.qcow2", BackingFormat::Qcow2),
    )
    .unwrap();
    let raw = dir.path().join("plain.raw");
    std::fs::write(&raw, vec![7u8; 1 << 20]).unwrap();
    let link = dir.path().join("link.qcow2");
    std::os::unix::fs::symlink(&base, &link).unwrap();
    let hard = dir.path().join("hard.qcow2");
    std::fs::hard_link(&top, &hard).unwrap();

    let snapshot = |p: &std::path::Path| std::fs::read(p).unwrap();
    let (b0, t0, r0) = (snapshot(&base), snapshot(&top), snapshot(&raw));
    let cases: [(&std::path::Path, &std::path::Path); 6] = [
        (&top, &top),
        (&top, &base),
        (&top, &link),
        (&top, &hard),
        (&base, &base),
        (&raw, &raw),
    ];
    for (src, dst) in cases {
        for target in [Target::Raw, Target::Qcow2(CreateOptions::new(0))] {
            let r = convert(src, dst, ConvertOptions::new(target), cont);
            assert!(
                matches!(r, Err(Error::InvalidArgument(_))),
                "{src:?} -> {dst:?}: {r:?}"
            );
        }
    }
    assert_eq!(snapshot(&base), b0);
    assert_eq!(snapshot(&top), t0);
    assert_eq!(snapshot(&raw), r0);
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 5);
}

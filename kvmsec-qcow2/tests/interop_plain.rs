//! Interoperability with the real qemu-img for unencrypted images, both directions.

mod common;

use common::*;
use kvmsec_qcow2::{BackingFormat, CreateOptions, Image, OpenOptions, create};

/// Writes a pattern of writes (aligned, unaligned, crossing clusters) to both an image and a
/// model; returns the model.
fn write_pattern(img: &mut Image, size: usize, seed: u64) -> Vec<u8> {
    let mut model = vec![0u8; size];
    let cs = img.cluster_size() as usize;
    let writes = [
        (0usize, 4096usize),
        (cs - 100, 300),
        ((3 * cs).min(size / 4) + 17, (2 * cs + 5).min(size / 4)),
        (size - 1000, 1000),
        (size / 2, cs),
        (size / 3 + 7, 1),
    ];
    for (i, &(off, len)) in writes.iter().enumerate() {
        let data = pseudo_random(seed + i as u64, len);
        img.write_at(&data, off as u64).unwrap();
        model[off..off + len].copy_from_slice(&data);
    }
    img.flush().unwrap();
    model
}

/// Our `info` agrees with `qemu-img info --output=json` on the facts both give.
fn compare_info(path: &std::path::Path) {
    let out = run(qemu_img().args(["info", "--output=json"]).arg(path));
    let q: serde_json::Value = serde_json::from_str(&out).unwrap();
    let i = kvmsec_qcow2::info(path).unwrap();
    assert_eq!(Some(i.virtual_size), q["virtual-size"].as_u64());
    assert_eq!(i.cluster_size, q["cluster-size"].as_u64());
    assert_eq!(Some(i.format.as_str()), q["format"].as_str());
    assert_eq!(
        i.encryption.is_some(),
        q["encrypted"].as_bool().unwrap_or(false)
    );
    let data = &q["format-specific"]["data"];
    assert_eq!(i.compat.as_deref(), data["compat"].as_str());
    assert_eq!(
        i.refcount_bits.map(u64::from),
        data["refcount-bits"].as_u64()
    );
    assert_eq!(
        i.extended_l2,
        data["extended-l2"].as_bool().unwrap_or(false)
    );
    assert_eq!(i.backing_file.as_deref(), q["backing-filename"].as_str());
    if let Some(c) = data["compression-type"].as_str() {
        assert_eq!(i.compression_type.as_deref(), Some(c));
    }
}

#[test]
fn our_images_pass_qemu_check_and_convert() {
    if !have_qemu() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for (version, cs) in [
        (3u32, 65536u64),
        (2, 65536),
        (3, 512),
        (3, 2 << 20),
        (2, 4096),
    ] {
        let size = 6usize << 20;
        let path = dir.path().join(format!("ours-v{version}-{cs}.qcow2"));
        let mut img = create(
            &path,
            &CreateOptions::new(size as u64)
                .version(version)
                .cluster_size(cs),
        )
        .unwrap();
        let model = write_pattern(&mut img, size, cs);
        drop(img);
        assert_eq!(qemu_check(&path, None), (0, 0, 0), "v{version} cs {cs}");
        compare_info(&path);
        assert!(
            qemu_to_raw(&path, None) == model,
            "v{version} cs {cs}: data differs"
        );
        // And we read back what we wrote.
        let mut back = vec![0u8; size];
        Image::open(&path).unwrap().read_at(&mut back, 0).unwrap();
        assert!(back == model);
    }
}

#[test]
fn refcount_table_growth_with_small_clusters() {
    if !have_qemu() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("grow.qcow2");
    let size = 24usize << 20;
    let mut img = create(&path, &CreateOptions::new(size as u64).cluster_size(512)).unwrap();
    let data = pseudo_random(9, size);
    for off in (0..size).step_by(1 << 20) {
        img.write_at(&data[off..off + (1 << 20)], off as u64)
            .unwrap();
    }
    img.flush().unwrap();
    assert!(img.header().refcount_table_clusters > 1);
    drop(img);
    assert_eq!(qemu_check(&path, None), (0, 0, 0));
    assert!(qemu_to_raw(&path, None) == data);
}

/// qemu-img writes, we read: versions, cluster sizes, compression, zero clusters.
#[test]
fn qemu_images_read_back() {
    if !have_qemu() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let size = 4usize << 20;
    let raw = dir.path().join("src.raw");
    let mut data = pseudo_random(42, size);
    data[size / 2..size / 2 + 300_000].fill(0);
    std::fs::write(&raw, &data).unwrap();
    let cases: &[(&str, &[&str])] = &[
        ("v3-64k", &["-o", "compat=1.1,cluster_size=65536"]),
        ("v2-64k", &["-o", "compat=0.10"]),
        ("v3-512", &["-o", "cluster_size=512"]),
        ("v3-2m", &["-o", "cluster_size=2M"]),
        ("compressed", &["-c"]),
        ("compressed-zstd", &["-c", "-o", "compression_type=zstd"]),
        ("compressed-4k", &["-c", "-o", "cluster_size=4096"]),
        ("extl2", &["-o", "extended_l2=on"]),
        ("refcount1", &["-o", "refcount_bits=1"]),
        ("refcount64", &["-o", "refcount_bits=64"]),
    ];
    for (name, args) in cases {
        let path = dir.path().join(format!("{name}.qcow2"));
        run(qemu_img()
            .args(["convert", "-f", "raw", "-O", "qcow2"])
            .args(*args)
            .arg(&raw)
            .arg(&path));
        let mut img = Image::open(&path).unwrap();
        let mut back = vec![0u8; size];
        img.read_at(&mut back, 0).unwrap();
        assert!(back == data, "{name}: data differs");
        let ours = kvmsec_qcow2::check(&path).unwrap();
        assert!(ours.is_clean(), "{name}: {:?}", ours.problems);
        compare_info(&path);
    }
}

#[test]
fn qemu_zero_clusters_and_subclusters() {
    if !have_qemu() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for (name, opts) in [("z", "cluster_size=65536"), ("zext", "extended_l2=on")] {
        let path = dir.path().join(format!("{name}.qcow2"));
        run(qemu_img()
            .args(["create", "-f", "qcow2", "-o", opts])
            .arg(&path)
            .arg("4M"));
        run(qemu_io()
            .args([
                "-f",
                "qcow2",
                "-c",
                "write -P 0xab 0 1M",
                "-c",
                "write -z 64k 128k",
            ])
            .args(["-c", "write -P 0xcd 300k 5k", "-c", "write -z 2M 4k"])
            .arg(&path));
        let expected = qemu_to_raw(&path, None);
        let mut back = vec![0u8; 4 << 20];
        Image::open(&path).unwrap().read_at(&mut back, 0).unwrap();
        assert!(back == expected, "{name}");
        assert!(back[70_000..80_000].iter().all(|&b| b == 0));
    }
}

#[test]
fn backing_chain_depth_three_both_ways() {
    if !have_qemu() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let size = 4u64 << 20;
    // Base raw, mid qcow2 by qemu-img, top qcow2 by us.
    let base = dir.path().join("base.raw");
    let mut model = pseudo_random(1, size as usize);
    std::fs::write(&base, &model).unwrap();
    let mid = dir.path().join("mid.qcow2");
    run(qemu_img()
        .args(["create", "-f", "qcow2", "-F", "raw", "-b", "base.raw"])
        .arg(&mid));
    run(qemu_io()
        .args(["-f", "qcow2", "-c", "write -P 0x11 100k 200k"])
        .arg(&mid));
    model[100 << 10..300 << 10].fill(0x11);
    let top = dir.path().join("top.qcow2");
    let mut img = create(
        &top,
        &CreateOptions::new(size).backing("mid.qcow2", BackingFormat::Qcow2),
    )
    .unwrap();
    img.write_at(&[0x22; 5000], 250 << 10).unwrap();
    model[250 << 10..(250 << 10) + 5000].fill(0x22);
    img.flush().unwrap();
    drop(img);
    let mut back = vec![0u8; size as usize];
    OpenOptions::new()
        .open(&top)
        .unwrap()
        .read_at(&mut back, 0)
        .unwrap();
    assert!(back == model);
    assert_eq!(qemu_check(&top, None), (0, 0, 0));
    assert!(qemu_to_raw(&top, None) == model);
    compare_info(&top);
    compare_info(&mid);
    let chain = kvmsec_qcow2::info_chain(&top).unwrap();
    assert_eq!(chain.len(), 3);
    assert_eq!(chain[2].format, "raw");
}

#[test]
fn internal_snapshots_read_active_layer_and_refuse_writes() {
    if !have_qemu() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("snap.qcow2");
    run(qemu_img()
        .args(["create", "-f", "qcow2"])
        .arg(&path)
        .arg("2M"));
    run(qemu_io()
        .args(["-f", "qcow2", "-c", "write -P 1 0 128k"])
        .arg(&path));
    run(qemu_img().args(["snapshot", "-c", "s1"]).arg(&path));
    run(qemu_io()
        .args(["-f", "qcow2", "-c", "write -P 2 64k 64k"])
        .arg(&path));
    let expected = qemu_to_raw(&path, None);
    let mut img = Image::open(&path).unwrap();
    assert_eq!(img.snapshots().len(), 1);
    let mut back = vec![0u8; 2 << 20];
    img.read_at(&mut back, 0).unwrap();
    assert!(back == expected);
    assert!(OpenOptions::new().write(true).open(&path).is_err());
    assert_eq!(qemu_check(&path, None), (0, 0, 0));
}

#[test]
fn sparse_one_tebibyte() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.qcow2");
    let mut img = create(&path, &CreateOptions::new(1 << 40)).unwrap();
    img.write_at(&[7u8; 4096], (1 << 40) - 4096).unwrap();
    img.write_at(&[8u8; 4096], 1 << 39).unwrap();
    img.flush().unwrap();
    let mut b = [0u8; 4096];
    img.read_at(&mut b, (1 << 40) - 4096).unwrap();
    assert_eq!(b, [7u8; 4096]);
    drop(img);
    let len = std::fs::metadata(&path).unwrap().len();
    assert!(len < 4 << 20, "1 TiB image takes {len} bytes");
    if have_qemu() {
        assert_eq!(qemu_check(&path, None), (0, 0, 0));
    }
}

/// Writing over qemu's compressed clusters and preallocated zero clusters frees the old host
/// clusters correctly: qemu-img check finds no leak and no corruption.
#[test]
fn overwrite_compressed_and_zero_clusters() {
    if !have_qemu() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("src.raw");
    let mut model = pseudo_random(11, 2 << 20);
    // Compressible halves so several compressed clusters share host clusters.
    for c in model.chunks_mut(65536) {
        c[..40000].fill(3);
    }
    std::fs::write(&raw, &model).unwrap();
    let path = dir.path().join("c.qcow2");
    run(qemu_img()
        .args(["convert", "-c", "-f", "raw", "-O", "qcow2"])
        .arg(&raw)
        .arg(&path));
    let mut img = OpenOptions::new().write(true).open(&path).unwrap();
    img.write_at(&[0xee; 100], 70_000).unwrap();
    img.write_at(&[0xdd; 65536], 5 * 65536).unwrap();
    img.flush().unwrap();
    drop(img);
    model[70_000..70_100].fill(0xee);
    model[5 * 65536..6 * 65536].fill(0xdd);
    assert_eq!(qemu_check(&path, None), (0, 0, 0));
    assert!(qemu_to_raw(&path, None) == model);

    // Zero clusters that keep their host cluster (write -z over allocated data).
    let z = dir.path().join("z.qcow2");
    run(qemu_img().args(["create", "-f", "qcow2"]).arg(&z).arg("1M"));
    run(qemu_io()
        .args([
            "-f",
            "qcow2",
            "-c",
            "write -P 1 0 256k",
            "-c",
            "write -z 0 128k",
        ])
        .arg(&z));
    let mut img = OpenOptions::new().write(true).open(&z).unwrap();
    img.write_at(&[9u8; 1000], 1000).unwrap();
    img.flush().unwrap();
    drop(img);
    let mut expected = vec![0u8; 1 << 20];
    expected[128 << 10..256 << 10].fill(1);
    expected[1000..2000].fill(9);
    assert_eq!(qemu_check(&z, None), (0, 0, 0));
    assert!(qemu_to_raw(&z, None) == expected);
}

//! `check` counts leaks and corruptions like `qemu-img check` on images we damage.

mod common;

use std::os::unix::fs::FileExt;

use common::*;
use kvmsec_qcow2::{CreateOptions, check, create};

/// Host offset of guest offset `guest` from `qemu-img map`.
fn host_of(path: &std::path::Path, guest: u64) -> u64 {
    let out = run(qemu_img()
        .args(["map", "--output=json", "-f", "qcow2"])
        .arg(path));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    for e in v.as_array().unwrap() {
        let start = e["start"].as_u64().unwrap();
        let len = e["length"].as_u64().unwrap();
        if (start..start + len).contains(&guest) {
            return e["offset"].as_u64().unwrap() + (guest - start);
        }
    }
    panic!("guest {guest} not mapped");
}

fn be16_at(path: &std::path::Path, off: u64, v: u16) {
    let f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    f.write_all_at(&v.to_be_bytes(), off).unwrap();
}

fn be64_at(path: &std::path::Path, off: u64, v: u64) {
    let f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    f.write_all_at(&v.to_be_bytes(), off).unwrap();
}

fn image(dir: &std::path::Path, name: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    let mut img = create(&p, &CreateOptions::new(4 << 20)).unwrap();
    img.write_at(&pseudo_random(1, 300_000), 0).unwrap();
    img.flush().unwrap();
    p
}

fn ours(p: &std::path::Path) -> (u64, u64, u64) {
    let r = check(p).unwrap();
    (r.corruptions, r.leaks, r.check_errors)
}

#[test]
fn clean_images_agree() {
    let dir = tempfile::tempdir().unwrap();
    let p = image(dir.path(), "clean.qcow2");
    assert_eq!(ours(&p), (0, 0, 0));
    if have_qemu() {
        assert_eq!(qemu_check(&p, None), (0, 0, 0));
        // qemu-img's own images with snapshots and compression are clean for us too.
        let q = dir.path().join("q.qcow2");
        run(qemu_img()
            .args(["convert", "-c", "-O", "qcow2"])
            .arg(&p)
            .arg(&q));
        run(qemu_img().args(["snapshot", "-c", "s"]).arg(&q));
        run(qemu_io()
            .args(["-f", "qcow2", "-c", "write -P 3 0 100k"])
            .arg(&q));
        assert_eq!(ours(&q), (0, 0, 0), "{:?}", check(&q).unwrap().problems);
    }
}

#[test]
fn damaged_images_counted_like_qemu() {
    if !have_qemu() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // 1. A leak: an extra cluster at the end with refcount 1.
    let p = image(dir.path(), "leak.qcow2");
    let len = std::fs::metadata(&p).unwrap().len();
    let f = std::fs::OpenOptions::new().write(true).open(&p).unwrap();
    f.set_len(len + 65536).unwrap();
    drop(f);
    // refcount block is cluster 2 (our layout), entry per cluster, 16-bit.
    be16_at(&p, 2 * 65536 + 2 * (len / 65536), 1);
    assert_eq!(qemu_check(&p, None), ours(&p));
    assert_eq!(ours(&p).1, 1);

    // 2. A corruption: a data cluster's refcount dropped to zero.
    let p = image(dir.path(), "corrupt.qcow2");
    let host = host_of(&p, 0);
    be16_at(&p, 2 * 65536 + 2 * (host / 65536), 0);
    assert_eq!(qemu_check(&p, None), ours(&p));
    assert!(ours(&p).0 >= 1);

    // 3. A refcount of two on an unshared cluster.
    let p = image(dir.path(), "two.qcow2");
    let host = host_of(&p, 65536);
    be16_at(&p, 2 * 65536 + 2 * (host / 65536), 2);
    assert_eq!(qemu_check(&p, None), ours(&p));

    // 4. An L2 entry pointing past the end of the file.
    let p = image(dir.path(), "past.qcow2");
    let l2 = {
        let b = std::fs::read(&p).unwrap();
        let l1 = u64::from_be_bytes(b[40..48].try_into().unwrap());
        u64::from_be_bytes(b[l1 as usize..l1 as usize + 8].try_into().unwrap())
            & 0x00ff_ffff_ffff_fe00
    };
    be64_at(&p, l2 + 8 * 20, (1u64 << 63) | (100 << 20));
    let q = qemu_check(&p, None);
    let o = ours(&p);
    assert!(q.0 >= 1 && o.0 >= 1, "qemu {q:?} ours {o:?}");
}

/// F1/F2: header sizes and offsets near 2^64 give a typed error or a counted corruption,
/// never a huge allocation, a 2^32-step loop or an overflow.
#[test]
fn hostile_sizes_and_offsets_are_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("h.qcow2");
    let mut img = create(&p, &CreateOptions::new(4 << 20).cluster_size(512)).unwrap();
    img.write_at(&[3u8; 3000], 0).unwrap();
    drop(img);
    let orig = std::fs::read(&p).unwrap();
    let put = |off: u64, b: &[u8]| {
        std::fs::write(&p, &orig).unwrap();
        let f = std::fs::OpenOptions::new().write(true).open(&p).unwrap();
        f.write_all_at(b, off).unwrap();
    };
    // refcount_table_clusters (offset 56): far above the limit and the file.
    for n in [0x0010_0000u32, 0x0102_0001, u32::MAX] {
        put(56, &n.to_be_bytes());
        let t = std::time::Instant::now();
        let r = check(&p);
        assert!(
            matches!(
                r,
                Err(kvmsec_qcow2::Error::LimitExceeded { .. }
                    | kvmsec_qcow2::Error::Truncated { .. })
            ),
            "{n:#x}: {r:?}"
        );
        assert!(t.elapsed().as_secs() < 5);
    }
    // A limit lower than the real table is enforced too.
    std::fs::write(&p, &orig).unwrap();
    let tiny = kvmsec_qcow2::Limits {
        max_refcount_table_bytes: 0,
        ..kvmsec_qcow2::Limits::default()
    };
    assert!(matches!(
        kvmsec_qcow2::check_with(&p, &tiny),
        Err(kvmsec_qcow2::Error::LimitExceeded { .. })
    ));
    // l1_size + l1_table_offset near 2^64 (offsets 36, 40).
    put(36, &0x3000u32.to_be_bytes());
    let f = std::fs::OpenOptions::new().write(true).open(&p).unwrap();
    f.write_all_at(&0xFFFF_FFFF_FFFF_0000u64.to_be_bytes(), 40)
        .unwrap();
    drop(f);
    let r = check(&p).unwrap();
    assert!(r.corruptions > 0 && r.corruptions < 10, "{r:?}");
    // refcount_table_offset near 2^64 (offset 48).
    put(48, &0xFFFF_FFFF_FFFF_0000u64.to_be_bytes());
    assert!(check(&p).is_err());
}

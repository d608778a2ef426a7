//! Hostile and damaged images: typed errors, never panics, hangs or unbounded allocations.

mod common;

use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use common::*;
use kvmsec_qcow2::{BackingFormat, CreateOptions, Error, Limits, OpenOptions, check, create};
use proptest::prelude::*;

const CS: u64 = 4096;

/// A small valid image with data in a few clusters; returns its bytes.
fn valid_image(dir: &Path) -> (PathBuf, Vec<u8>) {
    let p = dir.join("valid.qcow2");
    let mut img = create(&p, &CreateOptions::new(256 << 10).cluster_size(CS)).unwrap();
    img.write_at(&pseudo_random(3, 20_000), 1000).unwrap();
    img.write_at(&[9u8; 5000], 200_000).unwrap();
    drop(img);
    let bytes = std::fs::read(&p).unwrap();
    (p, bytes)
}

fn put(path: &Path, off: u64, bytes: &[u8]) {
    let f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    f.write_all_at(bytes, off).unwrap();
}

fn be64(b: &[u8], off: usize) -> u64 {
    u64::from_be_bytes(b[off..off + 8].try_into().unwrap())
}

/// Opens and reads everything; returns the first error.
fn open_and_read(p: &Path) -> Result<Vec<u8>, Error> {
    let limits = Limits {
        max_chain_depth: 8,
        ..Limits::default()
    };
    let mut img = OpenOptions::new().limits(limits).open(p)?;
    let mut buf = vec![0u8; img.virtual_size().min(1 << 20) as usize];
    img.read_at(&mut buf, 0)?;
    Ok(buf)
}

fn header_field_error(p: &Path, off: u64, bytes: &[u8]) -> Error {
    put(p, off, bytes);
    open_and_read(p).expect_err("damaged image opened")
}

#[test]
fn header_fields_out_of_range() {
    let dir = tempfile::tempdir().unwrap();
    let (p, orig) = valid_image(dir.path());
    let reset = || std::fs::write(&p, &orig).unwrap();
    // Case 25: cluster_bits outside 9..=21, checked before any shift.
    for bits in [0u32, 8, 22, 63, 64, u32::MAX] {
        reset();
        let e = header_field_error(&p, 20, &bits.to_be_bytes());
        assert!(
            matches!(
                e,
                Error::InvalidHeader {
                    field: "cluster_bits",
                    ..
                }
            ),
            "{bits}: {e}"
        );
    }
    // L1 size: huge (limit) and too small for the virtual size.
    reset();
    let e = header_field_error(&p, 36, &u32::MAX.to_be_bytes());
    assert!(matches!(e, Error::LimitExceeded { .. }), "{e}");
    reset();
    let e = header_field_error(&p, 24, &(1u64 << 50).to_be_bytes());
    assert!(
        matches!(
            e,
            Error::InvalidHeader {
                field: "l1_size",
                ..
            }
        ),
        "{e}"
    );
    // Refcount table: unaligned, past EOF, huge.
    reset();
    let e = header_field_error(&p, 48, &(CS + 8).to_be_bytes());
    assert!(matches!(e, Error::InvalidHeader { .. }), "{e}");
    reset();
    let e = header_field_error(&p, 48, &(1u64 << 40).to_be_bytes());
    assert!(matches!(e, Error::Truncated { .. }), "{e}");
    reset();
    let e = header_field_error(&p, 56, &u32::MAX.to_be_bytes());
    assert!(matches!(e, Error::LimitExceeded { .. }), "{e}");
    // Header length: too short, not a multiple of 8, past the cluster.
    for len in [0u32, 103, 105, 1 << 20] {
        reset();
        let e = header_field_error(&p, 100, &len.to_be_bytes());
        assert!(
            matches!(
                e,
                Error::InvalidHeader {
                    field: "header_length",
                    ..
                }
            ),
            "{len}: {e}"
        );
    }
    // Unknown incompatible feature.
    reset();
    let e = header_field_error(&p, 72, &(1u64 << 33).to_be_bytes());
    assert!(
        matches!(e, Error::UnknownIncompatibleFeatures { .. }),
        "{e}"
    );
    // Extension length running past the header cluster.
    reset();
    let e = header_field_error(&p, 112 + 4, &0x7fff_fff0u32.to_be_bytes());
    assert!(matches!(e, Error::InvalidExtension { .. }), "{e}");
    // Case 26: backing name past the first cluster.
    reset();
    put(&p, 8, &(CS - 3).to_be_bytes());
    let e = header_field_error(&p, 16, &10u32.to_be_bytes());
    assert!(
        matches!(
            e,
            Error::InvalidHeader {
                field: "backing_file_offset",
                ..
            }
        ),
        "{e}"
    );
    // Overlapping tables: L1 on the refcount table.
    reset();
    let rt = be64(&orig, 48);
    let e = header_field_error(&p, 40, &rt.to_be_bytes());
    assert!(matches!(e, Error::Corrupt { .. }), "{e}");
    // Not qcow2 at all.
    reset();
    let e = header_field_error(&p, 0, b"QFI\x00");
    assert!(matches!(e, Error::NotQcow2 { .. }), "{e}");
}

#[test]
fn truncated_files() {
    let dir = tempfile::tempdir().unwrap();
    let (p, orig) = valid_image(dir.path());
    for len in [
        0usize,
        3,
        4,
        50,
        71,
        72,
        103,
        111,
        500,
        CS as usize,
        2 * CS as usize + 10,
    ] {
        std::fs::write(&p, &orig[..len.min(orig.len())]).unwrap();
        let e = open_and_read(&p).expect_err("truncated image opened");
        assert!(
            matches!(e, Error::Truncated { .. } | Error::NotQcow2 { .. }),
            "len {len}: {e}"
        );
    }
    // Cut inside the data: what is missing must not be invented; the image still reads
    // (QEMU reads zeros past EOF) or reports a typed error.
    std::fs::write(&p, &orig[..orig.len() - 3000]).unwrap();
    let _ = open_and_read(&p);
    let _ = check(&p);
}

#[test]
fn table_entries_past_eof_or_into_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let (p, orig) = valid_image(dir.path());
    let l1 = be64(&orig, 40);
    let l2 = be64(&orig, l1 as usize) & 0x00ff_ffff_ffff_fe00;
    let rt = be64(&orig, 48);
    // L1 entry past EOF.
    put(&p, l1, &((1u64 << 63) | (1 << 30)).to_be_bytes());
    let e = open_and_read(&p).unwrap_err();
    assert!(matches!(e, Error::Corrupt { .. }), "{e}");
    // L2 entry into the L1 table (case 30: guest data must never land in metadata).
    std::fs::write(&p, &orig).unwrap();
    put(&p, l2, &((1u64 << 63) | l1).to_be_bytes());
    let e = open_and_read(&p).unwrap_err();
    assert!(matches!(e, Error::Corrupt { .. }), "{e}");
    let mut img = OpenOptions::new().write(true).open(&p).unwrap();
    assert!(img.write_at(&[0xff; 4096], 0).is_err());
    drop(img);
    let after = std::fs::read(&p).unwrap();
    assert_eq!(
        after[l1 as usize..(l1 + CS) as usize],
        orig[l1 as usize..(l1 + CS) as usize]
    );
    // L2 entry into the refcount table and the refcount block.
    for target in [rt, CS] {
        std::fs::write(&p, &orig).unwrap();
        put(&p, l2, &((1u64 << 63) | target).to_be_bytes());
        assert!(matches!(open_and_read(&p), Err(Error::Corrupt { .. })));
    }
    // Refcount table entry past EOF.
    std::fs::write(&p, &orig).unwrap();
    put(&p, rt + 8, &(1u64 << 40).to_be_bytes());
    assert!(matches!(open_and_read(&p), Err(Error::Corrupt { .. })));
}

#[test]
fn compressed_cluster_inflating_past_a_cluster() {
    use flate2::{Compress, Compression, FlushCompress};
    let dir = tempfile::tempdir().unwrap();
    let (p, orig) = valid_image(dir.path());
    let l1 = be64(&orig, 40);
    let l2 = be64(&orig, l1 as usize) & 0x00ff_ffff_ffff_fe00;
    // A deflate stream of 64 KiB placed at the end of the file.
    let mut c = Compress::new(Compression::default(), false);
    let mut z = vec![0u8; 70_000];
    c.compress(&vec![7u8; 65536], &mut z, FlushCompress::Finish)
        .unwrap();
    z.truncate(c.total_out() as usize);
    let off = orig.len() as u64;
    put(&p, off, &z);
    let sectors = (z.len() as u64).div_ceil(512) - 1;
    let x = 62 - (12 - 8); // cluster_bits 12
    let entry = (1u64 << 62) | (sectors << x) | off;
    put(&p, l2 + 8 * 10, &entry.to_be_bytes());
    let e = open_and_read(&p).unwrap_err();
    assert!(matches!(e, Error::Decompress { .. }), "{e}");
}

#[test]
fn backing_loops_and_deep_chains() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.qcow2");
    let b = dir.path().join("b.qcow2");
    create(
        &a,
        &CreateOptions::new(1 << 20).backing("b.qcow2", BackingFormat::Qcow2),
    )
    .unwrap_err(); // b does not exist yet
    create(&b, &CreateOptions::new(1 << 20)).unwrap();
    create(
        &a,
        &CreateOptions::new(1 << 20).backing("b.qcow2", BackingFormat::Qcow2),
    )
    .unwrap();
    // Rewrite b's header to point back at a: a -> b -> a.
    let set_backing = |path: &Path, name: &str| {
        let bytes = std::fs::read(path).unwrap();
        let mut h = kvmsec_qcow2::header::Header::parse(&bytes).unwrap();
        h.backing_file = Some(name.to_string());
        put(path, 0, &h.to_bytes().unwrap());
    };
    set_backing(&b, "a.qcow2");
    assert!(matches!(open_and_read(&a), Err(Error::BackingLoop { .. })));
    assert!(matches!(
        kvmsec_qcow2::info_chain(&a),
        Err(Error::BackingLoop { .. })
    ));
    // Self loop.
    let s = dir.path().join("self.qcow2");
    create(&s, &CreateOptions::new(1 << 20)).unwrap();
    set_backing(&s, "self.qcow2");
    assert!(matches!(open_and_read(&s), Err(Error::BackingLoop { .. })));
    // Deep chain: 12 images against a limit of 8.
    let mut prev = dir.path().join("d0.qcow2");
    create(&prev, &CreateOptions::new(1 << 20)).unwrap();
    for i in 1..12 {
        let cur = dir.path().join(format!("d{i}.qcow2"));
        let name = prev.file_name().unwrap().to_str().unwrap().to_string();
        create(
            &cur,
            &CreateOptions::new(1 << 20).backing(name, BackingFormat::Qcow2),
        )
        .unwrap();
        prev = cur;
    }
    assert!(matches!(
        open_and_read(&prev),
        Err(Error::BackingTooDeep { .. })
    ));
}

#[test]
fn unknown_extension_and_long_header_survive_rewrite() {
    // Case 24: header_length > 112 and unknown extensions are kept when we rewrite the header
    // (autoclear bits are cleared on a writable open).
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("x.qcow2");
    drop(create(&p, &CreateOptions::new(1 << 20)).unwrap());
    let bytes = std::fs::read(&p).unwrap();
    let mut h = kvmsec_qcow2::header::Header::parse(&bytes).unwrap();
    h.unknown_header_bytes = vec![0xa5; 16];
    h.extensions.push(kvmsec_qcow2::header::Extension {
        kind: 0x7777_0001,
        data: vec![1, 2, 3],
    });
    h.autoclear_features = 1 << 5;
    put(&p, 0, &h.to_bytes().unwrap());
    let mut img = OpenOptions::new().write(true).open(&p).unwrap();
    img.write_at(b"abc", 0).unwrap();
    drop(img);
    let h2 = kvmsec_qcow2::header::Header::parse(&std::fs::read(&p).unwrap()).unwrap();
    assert_eq!(h2.header_length, 128);
    assert_eq!(h2.unknown_header_bytes, vec![0xa5; 16]);
    assert_eq!(h2.extension(0x7777_0001), Some(&[1u8, 2, 3][..]));
    assert_eq!(h2.autoclear_features, 0);
    if have_qemu() {
        assert_eq!(qemu_check(&p, None), (0, 0, 0));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    /// Bit flips, field overwrites and truncation: every result is a typed error or data.
    #[test]
    fn mutated_images_never_panic(
        flips in proptest::collection::vec((0usize..(6 * CS as usize), 0u8..8), 0..6),
        field in proptest::option::of((0usize..120, any::<u64>())),
        cut in proptest::option::of(0usize..(12 * CS as usize)),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let (p, orig) = valid_image(dir.path());
        let mut bytes = orig.clone();
        for (pos, bit) in flips {
            if pos < bytes.len() {
                bytes[pos] ^= 1 << bit;
            }
        }
        if let Some((off, v)) = field {
            let end = (off + 8).min(bytes.len());
            let vb = v.to_be_bytes();
            bytes[off..end].copy_from_slice(&vb[..end - off]);
        }
        if let Some(c) = cut {
            bytes.truncate(c.min(bytes.len()));
        }
        std::fs::write(&p, &bytes).unwrap();
        let _ = open_and_read(&p);
        let _ = check(&p);
        let _ = kvmsec_qcow2::info(&p);
        let _ = kvmsec_qcow2::report::image_checks(&p);
        // Unchanged bytes must give the original data.
        if bytes == orig {
            prop_assert!(open_and_read(&p).is_ok());
        }
    }
}

/// F4: a write over a hostile zero/compressed L2 entry must not release metadata or live data.
#[test]
fn write_never_releases_metadata_or_live_clusters() {
    let dir = tempfile::tempdir().unwrap();
    let (p, orig) = valid_image(dir.path());
    let l1_off = be64(&orig, 40);
    let l2_off = be64(&orig, l1_off as usize) & 0x00ff_ffff_ffff_fe00;
    let data1 = be64(&orig, l2_off as usize + 8) & 0x00ff_ffff_ffff_fe00;
    assert!(data1 != 0);
    let comp = 1u64 << 62;
    let cases = [
        ("zero prealloc inside the header", 0x201u64),
        ("zero prealloc on the L1 table", l1_off | 1),
        ("zero prealloc on an L2 table", l2_off | 1),
        ("compressed in the L1 table", comp | l1_off),
        ("compressed in the header", comp | 0x200),
        ("compressed over a live data cluster", comp | data1),
        (
            "compressed at the end of the file",
            comp | (orig.len() as u64 - 1),
        ),
    ];
    for (what, entry) in cases {
        std::fs::write(&p, &orig).unwrap();
        put(&p, l2_off, &entry.to_be_bytes());
        let before = std::fs::read(&p).unwrap();
        let mut img = OpenOptions::new().write(true).open(&p).unwrap();
        let r = img.write_at(&[0xa5; CS as usize], 0);
        drop(img);
        assert!(
            matches!(
                r,
                Err(Error::Corrupt { .. }
                    | Error::MetadataOverlap { .. }
                    | Error::Decompress { .. })
            ),
            "{what}: {r:?}"
        );
        assert!(
            std::fs::read(&p).unwrap() == before,
            "{what}: image changed"
        );
    }
}

/// F3: a backing file (or image) that is a FIFO, a terminal or a directory is a typed error,
/// never a hang in `open(2)`.
#[test]
fn fifo_or_device_backing_files_do_not_hang() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo");
    let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: `c` is a valid NUL-terminated path that outlives the call.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    std::fs::create_dir(dir.path().join("subdir")).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let d = dir.path().to_path_buf();
    std::thread::spawn(move || {
        let mut results = Vec::new();
        for (name, fmt) in [
            ("fifo", Some("raw")),
            ("fifo", Some("qcow2")),
            ("fifo", None),
            ("/dev/tty", Some("raw")),
            ("/dev/tty", None),
            ("subdir", Some("raw")),
        ] {
            let top = d.join("evil.qcow2");
            let _ = std::fs::remove_file(&top);
            let mut c = qemu_img();
            c.args(["create", "-q", "-f", "qcow2", "-u", "-b", name]);
            c.args(["-F", fmt.unwrap_or("raw")]);
            run(c.arg(&top).arg("1M"));
            if fmt.is_none() {
                // Hide the backing-format extension (0xe2792aca) so the format is probed.
                let mut b = std::fs::read(&top).unwrap();
                let at = b
                    .windows(4)
                    .position(|w| w == [0xe2, 0x79, 0x2a, 0xca])
                    .unwrap();
                b[at..at + 4].copy_from_slice(&[0x12, 0x34, 0x56, 0x78]);
                std::fs::write(&top, b).unwrap();
            }
            let open = OpenOptions::new().open(&top).map(|_| ());
            let info = kvmsec_qcow2::info_chain(&top).map(|_| ());
            let conv = kvmsec_qcow2::convert(
                &top,
                d.join("out.raw"),
                kvmsec_qcow2::ConvertOptions::new(kvmsec_qcow2::Target::Raw),
                |_| std::ops::ControlFlow::Continue(()),
            );
            results.push((name, open.is_err(), info.is_err(), conv.is_err()));
        }
        let direct = OpenOptions::new().open(d.join("fifo")).map(|_| ());
        let chk = check(d.join("fifo")).map(|_| ());
        tx.send((results, direct.is_err(), chk.is_err())).unwrap();
    });
    let (results, direct, chk) = rx
        .recv_timeout(std::time::Duration::from_secs(20))
        .expect("opening a FIFO/device backing file hung");
    for (name, open_err, info_err, conv_err) in results {
        assert!(open_err && info_err && conv_err, "{name}");
    }
    assert!(direct && chk);
}

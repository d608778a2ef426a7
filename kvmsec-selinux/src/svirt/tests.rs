use super::*;
use crate::testutil::{Immutable, TempMount, is_root};
use crate::xattr::{file_label, file_label_exact};
use std::process::Command;

fn ctx(s: &str) -> SecurityContext {
    s.parse().unwrap()
}

fn label_of(p: &Path) -> Option<String> {
    file_label(p, Symlink::Follow)
        .unwrap()
        .map(|c| c.to_string())
}

/// A real backing chain: base.qcow2 <- mid.qcow2 <- top.qcow2, made by qemu-img.
fn qemu_chain(dir: &Path) -> Option<(PathBuf, PathBuf, PathBuf)> {
    let base = dir.join("base.qcow2");
    let mid = dir.join("mid.qcow2");
    let top = dir.join("top.qcow2");
    let run = |args: &[&str]| -> bool {
        match Command::new("qemu-img").args(args).output() {
            Ok(o) if o.status.success() => true,
            Ok(o) => {
                eprintln!("qemu-img failed: {}", String::from_utf8_lossy(&o.stderr));
                false
            }
            Err(e) => {
                eprintln!("skipping: qemu-img not available: {e}");
                false
            }
        }
    };
    let s = |p: &Path| p.to_str().unwrap().to_owned();
    if !run(&["create", "-q", "-f", "qcow2", &s(&base), "1M"])
        || !run(&[
            "create",
            "-q",
            "-f",
            "qcow2",
            "-b",
            &s(&base),
            "-F",
            "qcow2",
            &s(&mid),
        ])
        || !run(&[
            "create",
            "-q",
            "-f",
            "qcow2",
            "-b",
            &s(&mid),
            "-F",
            "qcow2",
            &s(&top),
        ])
    {
        return None;
    }
    Some((base, mid, top))
}

#[test]
fn default_templates_and_dynamic_labels() {
    let t = LabelTemplates::default();
    assert_eq!(t.process.to_string(), DEFAULT_PROCESS_BASE);
    assert_eq!(t.image.to_string(), DEFAULT_IMAGE_BASE);
    assert_eq!(t.shared_read_only.to_string(), DEFAULT_SHARED_READ_ONLY);
    assert_eq!(t.shared_writable.to_string(), DEFAULT_SHARED_WRITABLE);

    let mut mcs = McsAllocator::with_range(0, 0, 2).unwrap(); // 3 pairs
    let a = GuestLabels::dynamic(&mut mcs, &t).unwrap();
    let b = GuestLabels::dynamic(&mut mcs, &t).unwrap();
    assert_eq!(a.kind, LabelKind::Dynamic);
    assert_ne!(a.level(), b.level());
    assert!(a.level().unwrap().is_incomparable(&b.level().unwrap()));
    let la = a.level().unwrap().to_string();
    assert_eq!(
        a.process.to_string(),
        format!("system_u:system_r:svirt_t:{la}")
    );
    assert_eq!(
        a.image.to_string(),
        format!("system_u:object_r:svirt_image_t:{la}")
    );
    assert!(a.release(&mut mcs));
    assert!(!a.release(&mut mcs));
    assert_eq!(mcs.available_pairs(), 2);
}

#[test]
fn static_labels_are_taken_as_given() {
    let t = LabelTemplates::default();
    let mut mcs = McsAllocator::new();
    let p = ctx("system_u:system_r:svirt_t:s0:c5,c6");
    let g = GuestLabels::static_labels(p.clone(), None, &t);
    assert_eq!(g.kind, LabelKind::Static);
    assert_eq!(g.process, p);
    assert_eq!(
        g.image.to_string(),
        "system_u:object_r:svirt_image_t:s0:c5,c6"
    );
    assert!(!g.release(&mut mcs));
    let img = ctx("system_u:object_r:my_image_t:s0:c9");
    let g = GuestLabels::static_labels(p, Some(img.clone()), &t);
    assert_eq!(g.image, img);
    assert_eq!(mcs.available_pairs(), mcs.total_pairs());
}

fn guest() -> GuestLabels {
    GuestLabels::static_labels(
        ctx("system_u:system_r:svirt_t:s0:c14,c721"),
        None,
        &LabelTemplates::default(),
    )
}

#[test]
fn label_and_restore_a_qemu_img_backing_chain() {
    let dir = tempfile::tempdir().unwrap();
    let Some((base, mid, top)) = qemu_chain(dir.path()) else {
        return;
    };
    // Originals: base labelled, mid labelled without NUL (verbatim), top unlabelled.
    set_file_label_raw(
        &base,
        Symlink::Follow,
        b"system_u:object_r:virt_image_t:s0\0",
    )
    .unwrap();
    set_file_label_raw(&mid, Symlink::Follow, b"system_u:object_r:user_home_t:s0").unwrap();

    let images = DiskImage::chain(&top, ImageAccess::ReadWrite, [mid.clone(), base.clone()]);
    let t = LabelTemplates::default();
    let labelling = label_images(&images, &guest(), &t, LabelOptions::default()).unwrap();

    assert_eq!(
        label_of(&top).as_deref(),
        Some("system_u:object_r:svirt_image_t:s0:c14,c721")
    );
    assert_eq!(label_of(&mid).as_deref(), Some(DEFAULT_SHARED_READ_ONLY));
    assert_eq!(label_of(&base).as_deref(), Some(DEFAULT_SHARED_READ_ONLY));
    let outcomes: Vec<_> = labelling.files().iter().map(|f| f.outcome).collect();
    assert_eq!(outcomes, vec![LabelOutcome::Relabelled; 3]);
    assert_eq!(labelling.files()[0].original, None);
    assert_eq!(
        labelling.files()[1].original.as_deref(),
        Some(&b"system_u:object_r:user_home_t:s0"[..])
    );
    assert_eq!(labelling.unlabelled().count(), 0);

    // Stop with the defaults: the private top is restored, shared layers are kept for
    // other guests.
    let results = labelling.clone().restore();
    let got: Vec<_> = results.iter().map(|r| r.outcome.clone()).collect();
    assert_eq!(
        got,
        vec![
            RestoreOutcome::Restored,
            RestoreOutcome::Kept,
            RestoreOutcome::Kept
        ]
    );
    assert_eq!(label_of(&top), None);
    assert_eq!(label_of(&base).as_deref(), Some(DEFAULT_SHARED_READ_ONLY));

    // With restore_shared, every layer gets its original bytes back exactly.
    let opts = LabelOptions {
        restore_shared: true,
        ..LabelOptions::default()
    };
    set_file_label_raw(
        &base,
        Symlink::Follow,
        b"system_u:object_r:virt_image_t:s0\0",
    )
    .unwrap();
    set_file_label_raw(&mid, Symlink::Follow, b"system_u:object_r:user_home_t:s0").unwrap();
    let labelling = label_images(&images, &guest(), &t, opts).unwrap();
    for r in labelling.restore() {
        assert_eq!(r.outcome, RestoreOutcome::Restored, "{}", r.path.display());
    }
    assert_eq!(
        file_label_exact(&base, Symlink::Follow).unwrap().unwrap(),
        b"system_u:object_r:virt_image_t:s0\0"
    );
    assert_eq!(
        file_label_exact(&mid, Symlink::Follow).unwrap().unwrap(),
        b"system_u:object_r:user_home_t:s0"
    );
    assert_eq!(file_label_exact(&top, Symlink::Follow).unwrap(), None);
}

#[test]
fn nothing_is_relabelled_twice() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.img");
    let shared = dir.path().join("shared.img");
    std::fs::write(&a, b"").unwrap();
    std::fs::write(&shared, b"").unwrap();
    let link = dir.path().join("link-to-a");
    std::os::unix::fs::symlink(&a, &link).unwrap();
    let hard = dir.path().join("hard-a");
    std::fs::hard_link(&a, &hard).unwrap();
    // Already carries the shared read-only label: left alone and never restored.
    set_file_label_raw(
        &shared,
        Symlink::Follow,
        b"system_u:object_r:virt_content_t:s0\0",
    )
    .unwrap();

    let images = vec![
        DiskImage::new(&a, ImageAccess::ReadOnly),
        DiskImage::new(&link, ImageAccess::ReadWrite),
        DiskImage::new(&hard, ImageAccess::ReadOnly),
        DiskImage::new(&shared, ImageAccess::ReadOnly),
        DiskImage::new(&shared, ImageAccess::ReadOnly),
    ];
    let labelling = label_images(
        &images,
        &guest(),
        &LabelTemplates::default(),
        LabelOptions {
            restore_shared: true,
            ..LabelOptions::default()
        },
    )
    .unwrap();
    assert_eq!(labelling.files().len(), 2);
    let fa = &labelling.files()[0];
    assert_eq!(fa.path, std::fs::canonicalize(&a).unwrap());
    // The widest use wins: read-write gets the private label.
    assert_eq!(fa.access, ImageAccess::ReadWrite);
    assert_eq!(
        fa.wanted.to_string(),
        "system_u:object_r:svirt_image_t:s0:c14,c721"
    );
    assert_eq!(labelling.files()[1].outcome, LabelOutcome::AlreadyLabelled);

    // Labelling again finds everything in place.
    let again = label_images(
        &images,
        &guest(),
        &LabelTemplates::default(),
        LabelOptions::default(),
    )
    .unwrap();
    assert!(
        again
            .files()
            .iter()
            .all(|f| f.outcome == LabelOutcome::AlreadyLabelled)
    );
    assert!(
        again
            .restore()
            .iter()
            .all(|r| r.outcome == RestoreOutcome::Kept)
    );

    let results = labelling.restore();
    assert_eq!(results[0].outcome, RestoreOutcome::Restored);
    assert_eq!(results[1].outcome, RestoreOutcome::Kept);
    assert_eq!(label_of(&a), None);
    assert_eq!(label_of(&shared).as_deref(), Some(DEFAULT_SHARED_READ_ONLY));
}

#[test]
fn per_disk_label_and_shared_writable() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.img");
    let b = dir.path().join("b.img");
    std::fs::write(&a, b"").unwrap();
    std::fs::write(&b, b"").unwrap();
    let own = ctx("system_u:object_r:nfs_t:s0");
    let images = vec![
        DiskImage {
            label: Some(own.clone()),
            ..DiskImage::new(&a, ImageAccess::ReadWrite)
        },
        DiskImage::new(&b, ImageAccess::SharedWritable),
    ];
    label_images(
        &images,
        &guest(),
        &LabelTemplates::default(),
        LabelOptions::default(),
    )
    .unwrap();
    assert_eq!(label_of(&a), Some(own.to_string()));
    assert_eq!(label_of(&b).as_deref(), Some(DEFAULT_SHARED_WRITABLE));
}

#[test]
fn failure_half_way_restores_what_was_changed() {
    let dir = tempfile::tempdir().unwrap();
    let first = dir.path().join("1.img");
    let second = dir.path().join("2.img");
    let stuck = dir.path().join("3.img");
    let last = dir.path().join("4.img");
    for p in [&first, &second, &stuck, &last] {
        std::fs::write(p, b"").unwrap();
    }
    set_file_label_raw(&first, Symlink::Follow, b"system_u:object_r:etc_t:s0\0").unwrap();
    let Some(_immutable) = Immutable::new(&stuck) else {
        return;
    };
    let images = vec![
        DiskImage::new(&first, ImageAccess::ReadWrite),
        DiskImage::new(&second, ImageAccess::ReadOnly),
        DiskImage::new(&stuck, ImageAccess::ReadOnly),
        DiskImage::new(&last, ImageAccess::ReadOnly),
    ];
    match label_images(
        &images,
        &guest(),
        &LabelTemplates::default(),
        LabelOptions::default(),
    ) {
        Err(Error::RelabelFailed {
            path,
            source,
            restored,
            restore_failures,
        }) => {
            assert_eq!(path, std::fs::canonicalize(&stuck).unwrap());
            assert!(
                matches!(*source, Error::PermissionDenied { .. }),
                "{source}"
            );
            assert_eq!(restored, 2);
            assert!(restore_failures.is_empty());
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        file_label_exact(&first, Symlink::Follow).unwrap().unwrap(),
        b"system_u:object_r:etc_t:s0\0"
    );
    assert_eq!(label_of(&second), None);
    assert_eq!(label_of(&last), None);
}

#[test]
fn missing_image_fails_before_touching_anything() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.img");
    std::fs::write(&a, b"").unwrap();
    let images = vec![
        DiskImage::new(&a, ImageAccess::ReadWrite),
        DiskImage::new(dir.path().join("missing.img"), ImageAccess::ReadOnly),
    ];
    match label_images(
        &images,
        &guest(),
        &LabelTemplates::default(),
        LabelOptions::default(),
    ) {
        Err(Error::RelabelFailed { path, restored, .. }) => {
            assert!(path.ends_with("missing.img"));
            assert_eq!(restored, 0);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(label_of(&a), None);
}

/// Issue 9, case 23: a file on a filesystem without xattr support (ENOTSUP) or on a
/// read-only one (EROFS) is a per-file outcome, not a failure of the whole guest.
#[test]
fn case23_enotsup_and_erofs_are_per_file_outcomes() {
    if !is_root() {
        eprintln!("skipping: mounting needs root");
        return;
    }
    let Some(ramfs) = TempMount::new("ramfs", "mode=755") else {
        return;
    };
    let Some(ro) = TempMount::new("tmpfs", "size=1m") else {
        return;
    };
    let nfs_like = ramfs.path().join("on-ramfs.qcow2");
    std::fs::write(&nfs_like, b"").unwrap();
    let ro_file = ro.path().join("on-ro.qcow2");
    std::fs::write(&ro_file, b"").unwrap();
    ro.remount("ro");
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.qcow2");
    std::fs::write(&good, b"").unwrap();

    let images = vec![
        DiskImage::new(&good, ImageAccess::ReadWrite),
        DiskImage::new(&nfs_like, ImageAccess::ReadOnly),
        DiskImage::new(&ro_file, ImageAccess::ReadOnly),
    ];
    let t = LabelTemplates::default();
    let labelling = label_images(&images, &guest(), &t, LabelOptions::default()).unwrap();
    let outcomes: Vec<_> = labelling.files().iter().map(|f| f.outcome).collect();
    assert_eq!(
        outcomes,
        vec![
            LabelOutcome::Relabelled,
            LabelOutcome::Unsupported,
            LabelOutcome::ReadOnlyFilesystem
        ]
    );
    let unlabelled: Vec<_> = labelling.unlabelled().map(|f| f.path.clone()).collect();
    assert_eq!(
        unlabelled,
        vec![
            std::fs::canonicalize(&nfs_like).unwrap(),
            std::fs::canonicalize(&ro_file).unwrap()
        ]
    );
    assert_eq!(
        label_of(&good).as_deref(),
        Some("system_u:object_r:svirt_image_t:s0:c14,c721")
    );
    let restored = labelling.restore();
    assert_eq!(restored[0].outcome, RestoreOutcome::Restored);
    assert_eq!(restored[1].outcome, RestoreOutcome::Kept);
    assert_eq!(restored[2].outcome, RestoreOutcome::Kept);

    // A caller that cannot accept them gets an error, with the good file rolled back.
    let strict = LabelOptions {
        accept_unlabellable: false,
        ..LabelOptions::default()
    };
    match label_images(&images, &guest(), &t, strict) {
        Err(Error::RelabelFailed {
            source, restored, ..
        }) => {
            assert!(matches!(*source, Error::NoXattrSupport { .. }));
            assert_eq!(restored, 1);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(label_of(&good), None);
}

#[test]
fn templates_from_the_policy() {
    let h = crate::testutil::FakeHost::new();
    assert_eq!(
        LabelTemplates::from_policy_at(h.root(), "targeted").unwrap(),
        None
    );
    h.write(
        "etc/selinux/targeted/contexts/virtual_domain_context",
        "system_u:system_r:svirt_t:s0\nsystem_u:system_r:svirt_tcg_t:s0\n",
    );
    h.write(
        "etc/selinux/targeted/contexts/virtual_image_context",
        "system_u:object_r:svirt_image_t:s0\nsystem_u:object_r:virt_content_t:s0\n",
    );
    let t = LabelTemplates::from_policy_at(h.root(), "targeted")
        .unwrap()
        .unwrap();
    assert_eq!(t, LabelTemplates::default());
    h.write(
        "etc/selinux/mls/contexts/virtual_domain_context",
        "# comment\nsystem_u:system_r:svirt_t:s2\n",
    );
    let t = LabelTemplates::from_policy_at(h.root(), "mls")
        .unwrap()
        .unwrap();
    assert_eq!(t.process.to_string(), "system_u:system_r:svirt_t:s2");
    assert_eq!(t.image, LabelTemplates::default().image);
    h.write(
        "etc/selinux/bad/contexts/virtual_domain_context",
        "nonsense\n",
    );
    assert!(matches!(
        LabelTemplates::from_policy_at(h.root(), "bad"),
        Err(Error::InvalidContext { .. })
    ));
    assert!(matches!(
        LabelTemplates::from_policy_at(h.root(), "../../x"),
        Err(Error::InvalidConfigValue { .. })
    ));
}

#[cfg(feature = "serde")]
#[test]
fn serde_round_trips() {
    let g = guest();
    let json = serde_json::to_string(&g).unwrap();
    assert!(
        json.contains("\"system_u:system_r:svirt_t:s0:c14,c721\""),
        "{json}"
    );
    assert_eq!(serde_json::from_str::<GuestLabels>(&json).unwrap(), g);
    let bad = r#"{"process":"x","image":"u:r:t","kind":"Static"}"#;
    assert!(serde_json::from_str::<GuestLabels>(bad).is_err());

    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.img");
    std::fs::write(&a, b"").unwrap();
    let l = label_images(
        &[DiskImage::new(&a, ImageAccess::ReadWrite)],
        &g,
        &LabelTemplates::default(),
        LabelOptions::default(),
    )
    .unwrap();
    let saved = serde_json::to_string(&l).unwrap();
    let loaded: ImageLabelling = serde_json::from_str(&saved).unwrap();
    assert_eq!(loaded, l);
    assert_eq!(loaded.restore()[0].outcome, RestoreOutcome::Restored);
    assert_eq!(label_of(&a), None);
}

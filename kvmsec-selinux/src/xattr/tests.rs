use super::*;
use crate::testutil::{TempMount, is_root};

fn ctx(s: &str) -> SecurityContext {
    s.parse().unwrap()
}

#[test]
fn set_and_get_on_a_real_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("disk.img");
    std::fs::write(&file, b"data").unwrap();

    // ENODATA: no label is None.
    assert_eq!(file_label(&file, Symlink::Follow).unwrap(), None);

    let c = ctx("system_u:object_r:svirt_image_t:s0:c1,c2");
    set_file_label(&file, Symlink::Follow, &c).unwrap();
    // Written with a NUL, as libselinux does; read with it dropped.
    assert_eq!(
        file_label_exact(&file, Symlink::Follow).unwrap().unwrap(),
        b"system_u:object_r:svirt_image_t:s0:c1,c2\0"
    );
    assert_eq!(
        file_label_raw(&file, Symlink::Follow).unwrap().unwrap(),
        b"system_u:object_r:svirt_image_t:s0:c1,c2"
    );
    assert_eq!(file_label(&file, Symlink::Follow).unwrap(), Some(c.clone()));

    // Through an open file.
    let f = std::fs::File::open(&file).unwrap();
    assert_eq!(fd_label(&f, &file).unwrap(), Some(c));
    let d = ctx("system_u:object_r:virt_content_t:s0");
    set_fd_label(&f, &file, &d).unwrap();
    assert_eq!(file_label(&file, Symlink::Follow).unwrap(), Some(d.clone()));
    assert_eq!(
        fd_label_raw(&f, &file).unwrap().unwrap(),
        b"system_u:object_r:virt_content_t:s0"
    );

    remove_file_label(&file, Symlink::Follow).unwrap();
    assert_eq!(file_label(&file, Symlink::Follow).unwrap(), None);
    // Removing a missing label is fine.
    remove_file_label(&file, Symlink::Follow).unwrap();
}

#[test]
fn follow_and_no_follow_on_a_symlink() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("target");
    let link = dir.path().join("link");
    std::fs::write(&file, b"x").unwrap();
    std::os::unix::fs::symlink(&file, &link).unwrap();

    let on_file = ctx("system_u:object_r:svirt_image_t:s0:c3,c4");
    set_file_label(&link, Symlink::Follow, &on_file).unwrap();
    assert_eq!(
        file_label(&file, Symlink::Follow).unwrap(),
        Some(on_file.clone())
    );

    let on_link = ctx("system_u:object_r:user_home_t:s0");
    match set_file_label(&link, Symlink::NoFollow, &on_link) {
        Ok(()) => {
            assert_eq!(file_label(&link, Symlink::NoFollow).unwrap(), Some(on_link));
            assert_eq!(file_label(&link, Symlink::Follow).unwrap(), Some(on_file));
        }
        // Some filesystems refuse user-visible xattrs on symlinks.
        Err(e) => eprintln!("lsetxattr on a symlink refused here: {e}"),
    }
}

/// Issue 9, case 19 for the xattr: one trailing NUL dropped, nothing else; a value stored
/// without NUL (kernels without SELinux store it verbatim) keeps every character.
#[test]
fn case19_xattr_keeps_last_character() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("f");
    std::fs::write(&file, b"").unwrap();
    for (stored, expected) in [
        (
            &b"system_u:object_r:svirt_image_t:s0\0"[..],
            "system_u:object_r:svirt_image_t:s0",
        ),
        (
            b"system_u:object_r:svirt_image_t:s0",
            "system_u:object_r:svirt_image_t:s0",
        ),
        (
            b"system_u:object_r:svirt_image_t:s0:c10\0",
            "system_u:object_r:svirt_image_t:s0:c10",
        ),
        (
            b"system_u:object_r:svirt_image_t:s0:c10",
            "system_u:object_r:svirt_image_t:s0:c10",
        ),
    ] {
        set_file_label_raw(&file, Symlink::Follow, stored).unwrap();
        assert_eq!(
            file_label(&file, Symlink::Follow)
                .unwrap()
                .unwrap()
                .to_string(),
            expected
        );
    }
}

#[test]
fn garbage_and_empty_labels() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("f");
    std::fs::write(&file, b"").unwrap();
    set_file_label_raw(&file, Symlink::Follow, b"garbage\0").unwrap();
    assert!(matches!(
        file_label(&file, Symlink::Follow),
        Err(Error::InvalidContext { .. })
    ));
    assert_eq!(
        file_label_raw(&file, Symlink::Follow).unwrap().unwrap(),
        b"garbage"
    );
    set_file_label_raw(&file, Symlink::Follow, b"").unwrap();
    assert_eq!(
        file_label_raw(&file, Symlink::Follow).unwrap().unwrap(),
        b""
    );
    assert!(matches!(
        file_label(&file, Symlink::Follow),
        Err(Error::InvalidContext { .. })
    ));
}

#[test]
fn large_label_grows_the_buffer() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("f");
    std::fs::write(&file, b"").unwrap();
    let long_type = format!("{}_t", "x".repeat(600));
    let c = ctx(&format!("system_u:object_r:{long_type}:s0"));
    set_file_label(&file, Symlink::Follow, &c).unwrap();
    assert_eq!(file_label(&file, Symlink::Follow).unwrap(), Some(c));
}

#[test]
fn missing_file_and_nul_in_path() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing");
    match file_label(&missing, Symlink::Follow) {
        Err(Error::Io { op, path, source }) => {
            assert_eq!(op, "getxattr");
            assert_eq!(path, missing);
            assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
        }
        other => panic!("{other:?}"),
    }
    let bad = Path::new("a\0b");
    assert!(matches!(
        set_file_label(bad, Symlink::Follow, &ctx("u:r:t")),
        Err(Error::InvalidValue { .. })
    ));
}

/// ramfs has no xattr handlers: ENOTSUP becomes the typed "no xattr support" error.
#[test]
fn no_xattr_support_is_typed() {
    if !is_root() {
        eprintln!("skipping: mounting ramfs needs root");
        return;
    }
    let Some(m) = TempMount::new("ramfs", "mode=755") else {
        return;
    };
    let file = m.path().join("img");
    std::fs::write(&file, b"x").unwrap();
    match set_file_label(&file, Symlink::Follow, &ctx("u:r:t:s0")) {
        Err(Error::NoXattrSupport { path }) => assert_eq!(path, file),
        other => panic!("{other:?}"),
    }
    match file_label(&file, Symlink::Follow) {
        Err(Error::NoXattrSupport { .. }) | Ok(None) => {}
        other => panic!("{other:?}"),
    }
}

/// A tmpfs mounted by the test keeps labels too.
#[test]
fn tmpfs_labels_and_read_only_remount() {
    if !is_root() {
        eprintln!("skipping: mounting tmpfs needs root");
        return;
    }
    let Some(m) = TempMount::new("tmpfs", "size=1m") else {
        return;
    };
    let file = m.path().join("img");
    std::fs::write(&file, b"x").unwrap();
    let c = ctx("system_u:object_r:svirt_image_t:s0:c7,c8");
    set_file_label(&file, Symlink::Follow, &c).unwrap();
    assert_eq!(file_label(&file, Symlink::Follow).unwrap(), Some(c.clone()));
    m.remount("ro");
    assert_eq!(file_label(&file, Symlink::Follow).unwrap(), Some(c));
    match set_file_label(&file, Symlink::Follow, &ctx("u:r:t:s0")) {
        Err(Error::ReadOnlyFilesystem { path }) => assert_eq!(path, file),
        other => panic!("{other:?}"),
    }
}

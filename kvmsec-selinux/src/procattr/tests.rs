use super::*;
use crate::testutil::FakeHost;

#[test]
fn reads_all_attributes_with_kernel_nul() {
    let h = FakeHost::new();
    h.write(
        "proc/42/attr/current",
        "system_u:system_r:svirt_t:s0:c14,c721\0",
    );
    h.write("proc/42/attr/exec", "");
    h.write(
        "proc/42/attr/fscreate",
        "system_u:object_r:svirt_image_t:s0\0",
    );
    h.write(
        "proc/42/attr/prev",
        "system_u:system_r:virtd_t:s0-s0:c0.c1023\n",
    );
    let labels = process_labels_at(h.root(), 42).unwrap();
    assert_eq!(
        labels.current.unwrap().to_string(),
        "system_u:system_r:svirt_t:s0:c14,c721"
    );
    assert_eq!(labels.exec, None);
    assert_eq!(
        labels.fscreate.unwrap().to_string(),
        "system_u:object_r:svirt_image_t:s0"
    );
    assert_eq!(
        labels.prev.unwrap().to_string(),
        "system_u:system_r:virtd_t:s0-s0:c0.c1023"
    );
}

/// Issue 9, case 19 for `/proc/<pid>/attr/current`: the NUL goes, `s0` keeps its `0`.
#[test]
fn case19_procattr_keeps_last_character() {
    let h = FakeHost::new();
    h.write("proc/7/attr/current", "system_u:system_r:svirt_t:s0\0");
    let ctx = process_label_at(h.root(), 7, ProcAttr::Current)
        .unwrap()
        .unwrap();
    assert_eq!(ctx.to_string(), "system_u:system_r:svirt_t:s0");
    h.write("proc/7/attr/current", "system_u:system_r:svirt_t:s0:c10\0");
    let ctx = process_label_at(h.root(), 7, ProcAttr::Current)
        .unwrap()
        .unwrap();
    assert_eq!(ctx.to_string(), "system_u:system_r:svirt_t:s0:c10");
}

#[test]
fn errors() {
    let h = FakeHost::new();
    assert!(matches!(
        process_label_at(h.root(), 0, ProcAttr::Current),
        Err(Error::InvalidValue { .. })
    ));
    assert!(matches!(
        process_label_at(h.root(), 99, ProcAttr::Current),
        Err(Error::Io { .. })
    ));
    h.write("proc/5/attr/current", "not a context");
    assert!(matches!(
        process_label_at(h.root(), 5, ProcAttr::Current),
        Err(Error::InvalidContext { .. })
    ));
}

#[test]
fn set_exec_label_writes_nul_terminated_and_clears() {
    let h = FakeHost::new();
    h.write("proc/thread-self/attr/exec", "");
    let ctx: SecurityContext = "system_u:system_r:svirt_t:s0:c1,c2".parse().unwrap();
    set_exec_label_at(h.root(), Some(&ctx)).unwrap();
    assert_eq!(
        h.read("proc/thread-self/attr/exec"),
        b"system_u:system_r:svirt_t:s0:c1,c2\0"
    );
    set_exec_label_at(h.root(), None).unwrap();
    assert_eq!(h.read("proc/thread-self/attr/exec"), b"");

    // Without thread-self, the task directory of the calling thread is used.
    let h = FakeHost::new();
    // SAFETY: gettid has no preconditions.
    let tid = unsafe { libc::gettid() };
    h.write(&format!("proc/self/task/{tid}/attr/exec"), "");
    set_exec_label_at(h.root(), Some(&ctx)).unwrap();
    assert_eq!(
        h.read(&format!("proc/self/task/{tid}/attr/exec")),
        b"system_u:system_r:svirt_t:s0:c1,c2\0"
    );
}

/// On a kernel without an active LSM (this machine) the live files answer EINVAL.
#[test]
fn live_host_without_lsm() {
    match current_label() {
        Err(Error::LsmNotActive { .. }) => {}
        Ok(label) => eprintln!("this host has an LSM answering attr/current: {label:?}"),
        Err(e) => panic!("{e}"),
    }
    match process_label(std::process::id(), ProcAttr::Current) {
        Err(Error::LsmNotActive { path }) => {
            assert!(path.ends_with("attr/current"));
        }
        Ok(_) => {}
        Err(e) => panic!("{e}"),
    }
}

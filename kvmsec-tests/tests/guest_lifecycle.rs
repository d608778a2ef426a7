//! The crates together, the way a hypervisor manager uses them to start and stop one guest:
//! an encrypted qcow2 overlay over a plain base image (kvmsec-qcow2), sVirt labels on the
//! guest's disks (kvmsec-selinux, real `security.selinux` xattrs), the guest's QEMU process
//! found by `-name` and put in its own cgroups (kvmsec-cgroup, this machine's cgroupfs), and
//! everything undone when the guest stops.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};

use kvmsec_cgroup::{Cgroups, Controller, CpuShares, GroupPath, GroupSet, RemoveOptions, qemu};
use kvmsec_qcow2::crypto::{Iterations, LuksOptions, Passphrase};
use kvmsec_qcow2::{
    BackingFormat, CreateOptions, Encryption, Image, OpenOptions, create, info_chain,
};
use kvmsec_selinux::{
    DiskImage, GuestLabels, ImageAccess, LabelOptions, LabelOutcome, LabelTemplates, McsAllocator,
    RestoreOutcome, Symlink, file_label, label_images,
};

const PAGE: usize = 64 << 10;

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Kills the stand-in guest and removes its groups even when an assertion fails.
struct Guest {
    child: Child,
    groups: Option<GroupSet>,
}

impl Drop for Guest {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(groups) = self.groups.take() {
            let _ = groups.remove(&RemoveOptions {
                recursive: true,
                move_processes_to_parent: true,
                ..RemoveOptions::default()
            });
        }
    }
}

fn luks(passphrase: &str) -> Encryption {
    Encryption::Luks {
        passphrase: Passphrase::from(passphrase),
        // A fixed, small count keeps the test fast; real images calibrate to 2 s.
        options: LuksOptions {
            iterations: Iterations::Fixed(1000),
            ..LuksOptions::default()
        },
    }
}

fn pattern(seed: u8) -> Vec<u8> {
    (0..PAGE)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

#[test]
fn start_and_stop_one_guest() {
    if !is_root() {
        eprintln!("start_and_stop_one_guest: skipped: needs root (cgroups, xattrs)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let base_path = dir.path().join("base.qcow2");
    let overlay_path = dir.path().join("guest.qcow2");

    // 1. Disks: a plain base holding the OS, an encrypted overlay for the guest's writes.
    let mut base = create(&base_path, &CreateOptions::new(16 << 20)).unwrap();
    base.write_at(&pattern(1), 0).unwrap();
    base.write_at(&pattern(2), 8 << 20).unwrap();
    base.flush().unwrap();
    drop(base);
    let mut overlay = create(
        &overlay_path,
        &CreateOptions::new(16 << 20)
            .backing("base.qcow2", BackingFormat::Qcow2)
            .encryption(luks("guest secret")),
    )
    .unwrap();
    overlay.write_at(&pattern(3), 8 << 20).unwrap();
    overlay.flush().unwrap();
    drop(overlay);

    // The guest sees its own write over the base's data.
    let mut disk = OpenOptions::new()
        .passphrase(Passphrase::from("guest secret"))
        .open(&overlay_path)
        .unwrap();
    let mut buf = vec![0; PAGE];
    disk.read_at(&mut buf, 0).unwrap();
    assert_eq!(buf, pattern(1));
    disk.read_at(&mut buf, 8 << 20).unwrap();
    assert_eq!(buf, pattern(3));
    drop(disk);

    // 2. sVirt: a fresh MCS pair; the overlay gets the guest's private label, the base the
    //    shared read-only one. The chain comes from the image itself.
    let chain: Vec<PathBuf> = info_chain(&overlay_path)
        .unwrap()
        .into_iter()
        .map(|i| i.path)
        .collect();
    assert_eq!(chain.len(), 2);
    assert_eq!(chain[1].file_name().unwrap(), "base.qcow2");
    let templates = LabelTemplates::default();
    let mut mcs = McsAllocator::new();
    let labels = GuestLabels::dynamic(&mut mcs, &templates).unwrap();
    let images = DiskImage::chain(
        &chain[0],
        ImageAccess::ReadWrite,
        chain[1..].iter().cloned(),
    );
    let options = LabelOptions {
        restore_shared: true,
        ..LabelOptions::default()
    };
    let before: Vec<_> = chain
        .iter()
        .map(|p| file_label(p, Symlink::Follow).unwrap())
        .collect();
    let labelling = label_images(&images, &labels, &templates, options).unwrap();
    assert!(
        labelling
            .files()
            .iter()
            .all(|f| f.outcome == LabelOutcome::Relabelled)
    );
    let overlay_label = file_label(&chain[0], Symlink::Follow).unwrap().unwrap();
    assert_eq!(overlay_label, labels.image);
    assert_eq!(overlay_label.range(), labels.process.range());
    assert_eq!(
        file_label(&chain[1], Symlink::Follow)
            .unwrap()
            .unwrap()
            .to_string(),
        "system_u:object_r:virt_content_t:s0"
    );
    // The pair is now taken: a second guest never gets it.
    let other = GuestLabels::dynamic(&mut mcs, &templates).unwrap();
    assert_ne!(other.process.range(), labels.process.range());

    // 3. The guest's QEMU process, found by `-name guest=...`, moved into its own groups.
    let name = format!("kvmsec-lifecycle-{}", std::process::id());
    let mut qemu_cmd = Command::new("/bin/sh");
    qemu_cmd.arg0("qemu-system-x86_64").args([
        "-c",
        "while :; do sleep 1; done",
        "-name",
        &format!("guest={name},debug-threads=on"),
    ]);
    let mut guest = Guest {
        child: qemu_cmd.spawn().unwrap(),
        groups: None,
    };
    let pid = guest.child.id();
    let found = (0..50)
        .find_map(|_| {
            let g = qemu::find_qemu_guests(&name).unwrap();
            if g.iter().any(|x| x.pid == pid) {
                Some(g)
            } else {
                // The child may not have exec'd yet.
                std::thread::sleep(std::time::Duration::from_millis(20));
                None
            }
        })
        .unwrap_or_else(|| {
            let all = qemu::list_qemu_guests_at(Path::new("/")).unwrap();
            panic!(
                "{name} not found among {all:?}; child status {:?}",
                guest.child.try_wait()
            )
        });
    // While the shell forks `sleep`, the child briefly carries the same command line, so
    // look for our pid among the matches.
    let ours = found
        .iter()
        .find(|g| g.pid == pid)
        .expect("our stand-in among the matches");
    assert_eq!(ours.name, name);
    assert!(ours.threads.contains(&pid));

    let host = Cgroups::discover().unwrap();
    let controllers: Vec<Controller> = [Controller::Cpu, Controller::Pids]
        .into_iter()
        .filter(|c| host.hierarchy_for(c).is_some())
        .collect();
    assert!(!controllers.is_empty(), "this machine mounts cpu and pids");
    let path = GroupPath::new(&format!("kvmsec-test-{name}")).unwrap();
    guest.groups = Some(GroupSet::create(&host, &path, &controllers).unwrap());
    let groups = guest.groups.as_ref().unwrap();
    groups.move_process(pid).unwrap();
    assert_eq!(groups.processes().unwrap(), vec![pid]);
    if let Some(cpu) = groups.group(&Controller::Cpu) {
        cpu.set_cpu_shares(CpuShares::new(256).unwrap()).unwrap();
        assert_eq!(cpu.cpu_shares().unwrap(), CpuShares::new(256).unwrap());
    }

    // 4. The guest stops: process gone, groups removed, labels back as they were, pair free.
    drop(guest);
    assert!(!Path::new("/sys/fs/cgroup/cpu").join(path.as_str()).exists());
    let restored = labelling.restore();
    assert!(
        restored
            .iter()
            .all(|r| r.outcome == RestoreOutcome::Restored),
        "{restored:?}"
    );
    let after: Vec<_> = chain
        .iter()
        .map(|p| file_label(p, Symlink::Follow).unwrap())
        .collect();
    assert_eq!(after, before);
    assert!(labels.release(&mut mcs));
    let _ = Image::open(&base_path).unwrap();
}

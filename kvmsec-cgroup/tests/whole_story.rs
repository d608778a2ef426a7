//! The whole story of issue 4: two long-running stand-ins whose command lines say
//! `qemu-system-x86_64 ... -name high_prio` and `-name low_prio` are found by name, moved
//! into `high_prio` and `low_prio` groups, given a 10:1 share of CPU (cpu weight) and of disk
//! bandwidth (blkio throttling, the only I/O control this kernel offers; weights 1000/100 are
//! exercised on a fixture host in `fixtures.rs`), and the settings and task lists are read
//! back.

mod common;

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

use common::{Scratch, live_host, serial, unique_name};
use kvmsec_cgroup::{BlockDevice, Controller, CpuWeight, DeviceNumber, IoLimits, qemu};

#[test]
fn whole_story_high_prio_low_prio() {
    let Some(host) = live_host() else { return };
    let _lock = serial();
    let mut s = Scratch::default();

    // Stand-ins: argv[0] is qemu-system-x86_64 and the arguments carry `-name NAME`
    // (`sh -c LOOP -name NAME`: the shell ignores the trailing words).
    let mut ours = Vec::new();
    for name in ["high_prio", "low_prio"] {
        let mut c = Command::new("/bin/sh");
        c.arg0("qemu-system-x86_64")
            .args(["-c", "while :; do sleep 1; done", "-name", name]);
        ours.push((name, s.spawn(c)));
    }

    let tmp = tempfile::tempdir().unwrap();
    let io_dev = if host.hierarchy_for(&Controller::Io).is_some() {
        let dev = common::loop_device(&mut s, tmp.path(), 64 << 20);
        Some(DeviceNumber::of_block_device(Path::new(&dev)).unwrap())
    } else {
        None
    };

    let top = unique_name();
    let mut ctrls = vec![Controller::Cpu];
    if io_dev.is_some() {
        ctrls.push(Controller::Io);
    }
    for (name, pid) in &ours {
        // Find the guest by name; only processes this test started are touched.
        let found = qemu::find_qemu_guests(name).unwrap();
        let guest = found
            .iter()
            .find(|g| g.pid == *pid)
            .unwrap_or_else(|| panic!("{name} not found: {found:?}"));
        assert_eq!(guest.name, *name);
        assert!(guest.threads.contains(pid));

        let set = s.create(&host, &top, Some(name), &ctrls);
        for tid in &guest.threads {
            set.move_thread(*tid).unwrap();
        }
        set.move_process(guest.pid).unwrap();

        let (weight, bps) = if *name == "high_prio" {
            (1000, 20_000_000)
        } else {
            (100, 2_000_000)
        };
        let cpu = set.group(&Controller::Cpu).unwrap();
        cpu.set_cpu_weight(CpuWeight::new(weight).unwrap()).unwrap();
        if let Some(d) = io_dev {
            set.group(&Controller::Io)
                .unwrap()
                .set_io_limits(
                    &BlockDevice::Number(d),
                    IoLimits {
                        rbps: Some(bps),
                        wbps: Some(bps),
                        ..Default::default()
                    },
                )
                .unwrap();
        }
    }

    // Read everything back.
    let high = s
        .sets
        .iter()
        .find(|x| x.path().name() == Some("high_prio"))
        .unwrap();
    let low = s
        .sets
        .iter()
        .find(|x| x.path().name() == Some("low_prio"))
        .unwrap();
    let hc = high.group(&Controller::Cpu).unwrap();
    let lc = low.group(&Controller::Cpu).unwrap();
    assert_eq!(hc.cpu_weight().unwrap().get(), 1000);
    assert_eq!(lc.cpu_weight().unwrap().get(), 100);
    assert_eq!(
        hc.cpu_shares().unwrap().get() / lc.cpu_shares().unwrap().get(),
        10
    );
    assert_eq!(high.processes().unwrap(), [ours[0].1]);
    assert_eq!(low.processes().unwrap(), [ours[1].1]);
    assert_eq!(high.threads().unwrap(), [ours[0].1]);
    if let Some(d) = io_dev {
        let hl = high.group(&Controller::Io).unwrap().io_limits().unwrap();
        let ll = low.group(&Controller::Io).unwrap().io_limits().unwrap();
        assert_eq!(hl.len(), 1);
        assert_eq!(hl[0].device, d);
        assert_eq!(hl[0].limits.wbps, Some(20_000_000));
        assert_eq!(ll[0].limits.wbps, Some(2_000_000));
        assert_eq!(hl[0].limits.rbps.unwrap() / ll[0].limits.rbps.unwrap(), 10);
    }
}

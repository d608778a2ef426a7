//! SELinux with a real policy loaded, in the throw-away test VM.
//!
//! `vm_selinux` (host) boots the VM and runs this binary's `guest_*` tests
//! inside it; on the host those tests return at once. The guest runs Debian's
//! cloud kernel with our MLS test policy (`kvmsec-tests/vmrig/policy`), booted
//! permissive, the tests running as `unconfined_u:unconfined_r:unconfined_t`.

use std::ffi::CString;
use std::fs::{self, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use kvmsec_tests::vmrig::{self, GUEST_CONTEXT, GuestTests};

const SUITE: &str = "selinux";
const SELINUXFS: &str = "/sys/fs/selinux";

#[test]
fn vm_selinux() {
    let Some(assets) = vmrig::assets_or_skip("vm_selinux") else {
        return;
    };
    let report = GuestTests::new(SUITE)
        .expect("test executable")
        .filter("guest_")
        .min_passed(6)
        .run(&assets)
        .expect("booting the test VM");
    report.assert_passed();
}

// ------------------------------------------------------------ guest helpers

/// Reads a kernel string attribute, dropping the trailing NUL / newline.
fn read_kernel_string(path: impl AsRef<Path>) -> String {
    let path = path.as_ref();
    let bytes = fs::read(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let text = String::from_utf8(bytes).expect("kernel strings are UTF-8 here");
    text.trim_end_matches(['\0', '\n']).to_string()
}

fn enforce() -> String {
    read_kernel_string(format!("{SELINUXFS}/enforce"))
}

fn write_enforce(value: &str) {
    fs::write(format!("{SELINUXFS}/enforce"), value).expect("writing selinuxfs enforce");
}

/// Switches to enforcing for its lifetime and back to permissive on drop.
struct Enforcing;

impl Enforcing {
    fn start() -> Self {
        write_enforce("1");
        assert_eq!(enforce(), "1");
        Enforcing
    }
}

impl Drop for Enforcing {
    fn drop(&mut self) {
        write_enforce("0");
    }
}

/// Asks the kernel to validate and canonicalise a context (selinuxfs
/// `context` transaction: write it with a NUL, read the answer back).
fn kernel_canonical(context: &str) -> io::Result<String> {
    let mut f = OpenOptions::new()
        .read(true)
        .write(true)
        .open(format!("{SELINUXFS}/context"))?;
    f.write_all(format!("{context}\0").as_bytes())?;
    let mut buf = Vec::new();
    f.read_to_end(&mut buf)?;
    Ok(String::from_utf8_lossy(&buf)
        .trim_end_matches(['\0', '\n'])
        .to_string())
}

fn set_label(path: &Path, context: &str) -> io::Result<()> {
    let cpath = CString::new(path.as_os_str().as_bytes()).map_err(io::Error::other)?;
    let value = format!("{context}\0");
    // SAFETY: both pointers are valid NUL-terminated strings / a buffer of the
    // given length for the duration of the call.
    let rc = unsafe {
        libc::setxattr(
            cpath.as_ptr(),
            c"security.selinux".as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn get_label(path: &Path) -> io::Result<String> {
    let cpath = CString::new(path.as_os_str().as_bytes()).map_err(io::Error::other)?;
    let mut buf = vec![0u8; 4096];
    // SAFETY: the path is NUL-terminated and `buf` is writable for its length.
    let n = unsafe {
        libc::getxattr(
            cpath.as_ptr(),
            c"security.selinux".as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    buf.truncate(n as usize);
    Ok(String::from_utf8_lossy(&buf)
        .trim_end_matches('\0')
        .to_string())
}

/// Canonical MLS category list, computed independently of the kernel: sorted,
/// deduplicated, runs of three or more as `cA.cB`, pairs as `cA,cB`.
fn canonical_categories(mut cats: Vec<u16>) -> String {
    cats.sort_unstable();
    cats.dedup();
    let mut parts = Vec::new();
    let mut i = 0;
    while i < cats.len() {
        let mut j = i;
        while j + 1 < cats.len() && cats[j + 1] == cats[j] + 1 {
            j += 1;
        }
        match j - i {
            0 => parts.push(format!("c{}", cats[i])),
            1 => parts.push(format!("c{},c{}", cats[i], cats[j])),
            _ => parts.push(format!("c{}.c{}", cats[i], cats[j])),
        }
        i = j + 1;
    }
    parts.join(",")
}

/// A small deterministic generator (xorshift64*), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

// -------------------------------------------------------------- guest tests

#[test]
fn guest_policy_is_loaded_and_mls() {
    if !vmrig::in_guest(SUITE) {
        return;
    }
    assert_eq!(read_kernel_string(format!("{SELINUXFS}/mls")), "1");
    assert_eq!(read_kernel_string(format!("{SELINUXFS}/policyvers")), "33");
    assert_eq!(
        read_kernel_string(format!("{SELINUXFS}/deny_unknown")),
        "0",
        "the test policy is built with handle_unknown allow"
    );
    let lsm = read_kernel_string("/sys/kernel/security/lsm");
    assert!(lsm.split(',').any(|l| l == "selinux"), "lsm list {lsm}");
}

#[test]
fn guest_getenforce_and_setenforce_agree_with_the_kernel() {
    if !vmrig::in_guest(SUITE) {
        return;
    }
    assert_eq!(enforce(), "0", "booted with enforcing=0");
    {
        let _enforcing = Enforcing::start();
        assert_eq!(enforce(), "1");
    }
    assert_eq!(enforce(), "0");
}

#[test]
fn guest_current_context_comes_from_proc() {
    if !vmrig::in_guest(SUITE) {
        return;
    }
    assert_eq!(read_kernel_string("/proc/self/attr/current"), GUEST_CONTEXT);
    // /init (pid 1) switched itself before starting us; its children inherit.
    assert_eq!(read_kernel_string("/proc/1/attr/current"), GUEST_CONTEXT);
}

#[test]
fn guest_kernel_canonicalises_contexts_like_we_do() {
    if !vmrig::in_guest(SUITE) {
        return;
    }
    let fixed = [
        (
            "system_u:object_r:svirt_image_t:s0:c1,c2,c3",
            "system_u:object_r:svirt_image_t:s0:c1.c3",
        ),
        (
            "system_u:system_r:svirt_t:s0:c5,c2",
            "system_u:system_r:svirt_t:s0:c2,c5",
        ),
        (
            "system_u:object_r:virt_content_t:s0-s0",
            "system_u:object_r:virt_content_t:s0",
        ),
        (
            "unconfined_u:unconfined_r:unconfined_t:s0-s0:c0.c1023",
            GUEST_CONTEXT,
        ),
        (
            "system_u:object_r:svirt_image_t:s0:c0.c3,c2",
            "system_u:object_r:svirt_image_t:s0:c0.c3",
        ),
    ];
    for (input, want) in fixed {
        assert_eq!(kernel_canonical(input).unwrap(), want, "input {input}");
    }
    // Invalid in the loaded policy: unknown type, reversed category range.
    for bad in [
        "system_u:object_r:no_such_t:s0",
        "system_u:object_r:svirt_image_t:s0:c3.c1",
        "system_u:object_r:svirt_image_t:s0:c1024",
    ] {
        assert!(kernel_canonical(bad).is_err(), "{bad} accepted");
    }

    let mut rng = Rng(0x6b76_6d73_6563_0001);
    for round in 0..400 {
        let n = 1 + rng.below(12) as usize;
        let mut cats: Vec<u16> = (0..n).map(|_| rng.below(1024) as u16).collect();
        if round % 3 == 0 {
            // Dense runs make the dot notation appear.
            let start = rng.below(1000) as u16;
            cats.extend(start..start + 2 + rng.below(8) as u16);
        }
        let listed: Vec<String> = cats.iter().map(|c| format!("c{c}")).collect();
        let low = canonical_categories(cats.clone());
        let (input, want) = if round % 2 == 0 {
            (
                format!("system_u:object_r:svirt_image_t:s0:{}", listed.join(",")),
                format!("system_u:object_r:svirt_image_t:s0:{low}"),
            )
        } else {
            (
                format!("system_u:system_r:svirt_t:s0-s0:{}", listed.join(",")),
                format!("system_u:system_r:svirt_t:s0-s0:{low}"),
            )
        };
        assert_eq!(kernel_canonical(&input).unwrap(), want, "input {input}");
    }
}

#[test]
fn guest_file_labels_read_back_canonical() {
    if !vmrig::in_guest(SUITE) {
        return;
    }
    let path = Path::new("/tmp/label-me");
    fs::write(path, b"x").unwrap();
    assert_eq!(
        get_label(path).unwrap(),
        "unconfined_u:object_r:tmpfs_t:s0",
        "new tmpfs files take the tmpfs label and the creator's user"
    );
    set_label(path, "system_u:object_r:svirt_image_t:s0:c7,c8,c9,c12").unwrap();
    assert_eq!(
        get_label(path).unwrap(),
        "system_u:object_r:svirt_image_t:s0:c7.c9,c12"
    );
    // A context the policy does not know: root holds CAP_MAC_ADMIN (the
    // policy leaves capability2 to handle_unknown=allow), so the kernel keeps
    // it as an unmapped label instead of failing with EINVAL.
    set_label(path, "system_u:object_r:no_such_t:s0").unwrap();
    assert_eq!(get_label(path).unwrap(), "system_u:object_r:no_such_t:s0");
}

/// Result bits reported by the confined child through its exit status.
const OWN_IMAGE_READABLE: i32 = 1;
const OTHER_IMAGE_DENIED: i32 = 2;
const TMPFS_FILE_DENIED: i32 = 4;
const CONTENT_READABLE: i32 = 8;
const TRANSITION_FAILED: i32 = 64;

/// Forks a child that switches to `domain` and tries to open the files;
/// returns the result bits.
fn probe_as(domain: &str, own: &Path, other: &Path, tmpfs: &Path, content: &Path) -> i32 {
    let ctx = domain.as_bytes().to_vec();
    let paths: Vec<CString> = [own, other, tmpfs, content]
        .iter()
        .map(|p| CString::new(p.as_os_str().as_bytes()).unwrap())
        .collect();
    let attr = c"/proc/thread-self/attr/current";
    // SAFETY: the child only calls async-signal-safe functions (open, write,
    // close, _exit) on memory prepared before the fork.
    unsafe {
        let pid = libc::fork();
        assert!(pid >= 0, "fork: {}", io::Error::last_os_error());
        if pid == 0 {
            let fd = libc::open(attr.as_ptr(), libc::O_WRONLY);
            if fd < 0 || libc::write(fd, ctx.as_ptr().cast(), ctx.len()) < 0 {
                libc::_exit(TRANSITION_FAILED);
            }
            libc::close(fd);
            let readable = |p: &CString| {
                let fd = libc::open(p.as_ptr(), libc::O_RDONLY);
                if fd >= 0 {
                    libc::close(fd);
                    Ok(())
                } else {
                    Err(*libc::__errno_location())
                }
            };
            let mut bits = 0;
            if readable(&paths[0]).is_ok() {
                bits |= OWN_IMAGE_READABLE;
            }
            if readable(&paths[1]) == Err(libc::EACCES) {
                bits |= OTHER_IMAGE_DENIED;
            }
            if readable(&paths[2]) == Err(libc::EACCES) {
                bits |= TMPFS_FILE_DENIED;
            }
            if readable(&paths[3]).is_ok() {
                bits |= CONTENT_READABLE;
            }
            libc::_exit(bits);
        }
        let mut status = 0;
        assert_eq!(libc::waitpid(pid, &mut status, 0), pid);
        assert!(libc::WIFEXITED(status), "child status {status:#x}");
        libc::WEXITSTATUS(status)
    }
}

#[test]
fn guest_svirt_label_confines_a_process_when_enforcing() {
    if !vmrig::in_guest(SUITE) {
        return;
    }
    let dir = Path::new("/tmp/svirt");
    fs::create_dir_all(dir).unwrap();
    let own = dir.join("guest-a.img");
    let other = dir.join("guest-b.img");
    let tmpfs = dir.join("plain.txt");
    let content = dir.join("install.iso");
    for p in [&own, &other, &tmpfs, &content] {
        fs::write(p, b"data").unwrap();
    }
    set_label(&own, "system_u:object_r:svirt_image_t:s0:c10,c20").unwrap();
    set_label(&other, "system_u:object_r:svirt_image_t:s0:c30,c40").unwrap();
    set_label(&content, "system_u:object_r:virt_content_t:s0").unwrap();
    let domain = "system_u:system_r:svirt_t:s0:c10,c20";

    // Permissive: everything is allowed (only logged).
    let bits = probe_as(domain, &own, &other, &tmpfs, &content);
    assert_eq!(bits, OWN_IMAGE_READABLE | CONTENT_READABLE, "permissive");

    let _enforcing = Enforcing::start();
    let bits = probe_as(domain, &own, &other, &tmpfs, &content);
    assert_eq!(
        bits,
        OWN_IMAGE_READABLE | OTHER_IMAGE_DENIED | TMPFS_FILE_DENIED | CONTENT_READABLE,
        "enforcing: own image and shared content readable, the other guest's image \
         and plain tmpfs files denied"
    );
}

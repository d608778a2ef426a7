//! kvmsec-selinux next to libselinux's context functions (`context_new`, `context_str`,
//! `context_type_set`, `context_range_set`, `context_free`), called through a small FFI
//! binding that lives in this bench only. libselinux's string functions need no selinuxfs,
//! so they run on any host with `libselinux1-dev` installed (it provides `libselinux.so`).
//!
//! MCS allocation is compared with the way libvirt labels a guest: draw a random category
//! pair, format `s0:cA,cB`, look it up in a set of strings, and build the label with
//! `context_new` + `context_range_set` + `context_str` (re-written here, since libvirt's
//! allocator is not a library). Run with `cargo bench -p kvmsec-benches --bench selinux`.

use std::collections::HashSet;
use std::ffi::{CStr, CString, c_char, c_int, c_void};
use std::hint::black_box;
use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, criterion_group, criterion_main};
use kvmsec_selinux::{McsAllocator, MlsRange, SecurityContext};

/// libselinux's `context_s_t`.
#[repr(C)]
struct ContextS {
    ptr: *mut c_void,
}

#[link(name = "selinux")]
unsafe extern "C" {
    fn context_new(s: *const c_char) -> *mut ContextS;
    fn context_str(c: *mut ContextS) -> *const c_char;
    fn context_free(c: *mut ContextS);
    fn context_type_set(c: *mut ContextS, s: *const c_char) -> c_int;
    fn context_range_set(c: *mut ContextS, s: *const c_char) -> c_int;
}

/// An owned libselinux context.
struct LibContext(*mut ContextS);

impl LibContext {
    fn new(s: &CStr) -> Option<LibContext> {
        // SAFETY: `s` is a valid NUL-terminated string; context_new copies it and returns
        // NULL on failure.
        let p = unsafe { context_new(s.as_ptr()) };
        (!p.is_null()).then_some(LibContext(p))
    }

    /// `context_str`, copied into a `String` (as the kvmsec side returns one).
    fn to_string_owned(&self) -> Option<String> {
        // SAFETY: self.0 is a live context from context_new; the returned string is valid
        // until the next context_str/context_free on it, and is copied before either.
        let s = unsafe { context_str(self.0) };
        if s.is_null() {
            return None;
        }
        // SAFETY: non-NULL pointer to a NUL-terminated string owned by the context.
        Some(unsafe { CStr::from_ptr(s) }.to_string_lossy().into_owned())
    }

    fn set_type(&mut self, t: &CStr) -> bool {
        // SAFETY: live context and a valid NUL-terminated string (copied by the callee).
        unsafe { context_type_set(self.0, t.as_ptr()) == 0 }
    }

    fn set_range(&mut self, r: &CStr) -> bool {
        // SAFETY: live context and a valid NUL-terminated string (copied by the callee).
        unsafe { context_range_set(self.0, r.as_ptr()) == 0 }
    }
}

impl Drop for LibContext {
    fn drop(&mut self) {
        // SAFETY: self.0 came from context_new and is freed exactly once, here.
        unsafe { context_free(self.0) }
    }
}

const CONTEXTS: [&str; 4] = [
    "system_u:system_r:svirt_t:s0:c123,c456",
    "system_u:object_r:svirt_image_t:s0:c1,c2",
    "unconfined_u:unconfined_r:unconfined_t:s0-s0:c0.c1023",
    "system_u:system_r:virtd_t:s0-s0:c0.c1023",
];

/// A small deterministic generator for the draws of both allocators in the `prng` rows.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
}

/// libvirt's way, re-written: random pair, format, string set, label via libselinux.
struct LibvirtStyle {
    base: CString,
    in_use: HashSet<String>,
}

impl LibvirtStyle {
    fn allocate(&mut self, rng: &mut XorShift) -> Option<(String, String)> {
        loop {
            let a = (rng.next() % 1024) as u32;
            let b = (rng.next() % 1024) as u32;
            if a == b {
                continue;
            }
            let level = format!("s0:c{},c{}", a.min(b), a.max(b));
            if self.in_use.contains(&level) {
                continue;
            }
            let mut ctx = LibContext::new(&self.base)?;
            let range = CString::new(level.as_str()).ok()?;
            if !ctx.set_range(&range) {
                return None;
            }
            let label = ctx.to_string_owned()?;
            self.in_use.insert(level.clone());
            return Some((level, label));
        }
    }

    fn release(&mut self, level: &str) {
        self.in_use.remove(level);
    }
}

fn configure<'a>(c: &'a mut Criterion, name: &str) -> BenchmarkGroup<'a, WallTime> {
    let mut g = c.benchmark_group(name);
    g.sample_size(30)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    g
}

fn benches(c: &mut Criterion) {
    let cstrings: Vec<CString> = CONTEXTS
        .iter()
        .map(|s| CString::new(*s).unwrap_or_default())
        .collect();

    // Both sides give the same text back for these inputs.
    for (s, cs) in CONTEXTS.iter().zip(&cstrings) {
        let ours = SecurityContext::parse(s).map(|c| c.to_string()).ok();
        let theirs = LibContext::new(cs).and_then(|c| c.to_string_owned());
        assert_eq!(ours.as_deref(), Some(*s));
        assert_eq!(theirs.as_deref(), Some(*s));
    }

    let mut g = configure(c, "selinux/context-parse");
    g.bench_function("kvmsec", |b| {
        b.iter(|| {
            for s in CONTEXTS {
                black_box(SecurityContext::parse(black_box(s)).is_ok());
            }
        })
    });
    g.bench_function("libselinux", |b| {
        b.iter(|| {
            for s in &cstrings {
                black_box(LibContext::new(black_box(s)).is_some());
            }
        })
    });
    g.finish();

    let mut g = configure(c, "selinux/context-parse-format");
    g.bench_function("kvmsec", |b| {
        b.iter(|| {
            for s in CONTEXTS {
                black_box(
                    SecurityContext::parse(black_box(s))
                        .map(|c| c.to_string())
                        .ok(),
                );
            }
        })
    });
    g.bench_function("libselinux", |b| {
        b.iter(|| {
            for s in &cstrings {
                black_box(LibContext::new(black_box(s)).and_then(|c| c.to_string_owned()));
            }
        })
    });
    g.finish();

    // The image label from the process label: new type, same range, formatted.
    let process = "system_u:system_r:svirt_t:s0:c123,c456";
    let process_c = CString::new(process).unwrap_or_default();
    let image_type_c = CString::new("svirt_image_t").unwrap_or_default();
    let range_text = "s0:c7,c9";
    let range_c = CString::new(range_text).unwrap_or_default();
    let range: MlsRange = range_text.parse().unwrap_or_else(|e| panic!("{e}"));
    let mut g = configure(c, "selinux/context-retype-relabel");
    g.bench_function("kvmsec", |b| {
        b.iter(|| {
            let ctx = SecurityContext::parse(black_box(process)).ok()?;
            let image = ctx.with_type("svirt_image_t").ok()?.with_range(Some(range));
            Some(black_box(image.to_string()))
        })
    });
    g.bench_function("libselinux", |b| {
        b.iter(|| {
            let mut ctx = LibContext::new(black_box(&process_c))?;
            if !ctx.set_type(&image_type_c) || !ctx.set_range(&range_c) {
                return None;
            }
            Some(black_box(ctx.to_string_owned()?))
        })
    });
    g.finish();

    // MCS allocation with 256 guests already running; each iteration labels one more guest
    // and releases it.
    let base = "system_u:system_r:svirt_t:s0";
    let base_ctx = SecurityContext::parse(base).unwrap_or_else(|e| panic!("{e}"));
    let mut ours = McsAllocator::new();
    let mut ours_prng = McsAllocator::new();
    let mut theirs = LibvirtStyle {
        base: CString::new(base).unwrap_or_default(),
        in_use: HashSet::new(),
    };
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    for _ in 0..256 {
        let _ = ours.allocate();
        let _ = ours_prng.allocate_with(&mut || rng.next());
        let _ = theirs.allocate(&mut rng);
    }
    let mut g = configure(c, "selinux/mcs-allocate-label");
    g.bench_function("kvmsec", |b| {
        b.iter(|| {
            let level = ours.allocate().ok()?;
            let label = base_ctx
                .with_range(Some(MlsRange::single(level)))
                .to_string();
            ours.release(&level);
            Some(black_box(label))
        })
    });
    g.bench_function("kvmsec-prng", |b| {
        b.iter(|| {
            let level = ours_prng.allocate_with(&mut || rng.next()).ok()?;
            let label = base_ctx
                .with_range(Some(MlsRange::single(level)))
                .to_string();
            ours_prng.release(&level);
            Some(black_box(label))
        })
    });
    g.bench_function("libvirt-style+libselinux-prng", |b| {
        b.iter(|| {
            let (level, label) = theirs.allocate(&mut rng)?;
            theirs.release(&level);
            Some(black_box(label))
        })
    });
    g.finish();
}

criterion_group!(selinux, benches);
criterion_main!(selinux);

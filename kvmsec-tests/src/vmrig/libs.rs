//! Which shared libraries a dynamically linked host binary needs in the guest.
//!
//! The guest runs the test binary built on the host, so it needs the very
//! libraries the host's dynamic loader would map, at the same paths: the
//! loader named in the binary's `PT_INTERP` and every `DT_NEEDED` library,
//! recursively. `ldd` (the host's loader in tracing mode) resolves exactly
//! that, so this module runs it and parses its output.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::Error;

/// The libraries (and the dynamic loader) `binary` needs, as absolute host
/// paths, in `ldd` order. Empty for a statically linked binary.
pub fn shared_libraries(binary: &Path) -> Result<Vec<PathBuf>, Error> {
    let output = Command::new("ldd")
        .arg(binary)
        .env("LC_ALL", "C")
        .output()
        .map_err(Error::io(format!("running ldd on {}", binary.display())))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        // glibc's ldd exits 1 for static binaries ("not a dynamic executable").
        if stdout.contains("not a dynamic executable")
            || stderr.contains("not a dynamic executable")
        {
            return Ok(Vec::new());
        }
        return Err(Error::Invalid(format!(
            "ldd {} failed ({}): {}",
            binary.display(),
            output.status,
            stderr.trim()
        )));
    }
    parse_ldd(&stdout).map_err(|line| {
        Error::Invalid(format!(
            "ldd {}: cannot use line {line:?}",
            binary.display()
        ))
    })
}

/// Parses `ldd` output into library paths. Returns the offending line when a
/// library is not found or a line has an unexpected shape.
pub fn parse_ldd(output: &str) -> Result<Vec<PathBuf>, String> {
    let mut libs = Vec::new();
    for line in output.lines() {
        let line = line.trim();
        if line.is_empty() || line.contains("statically linked") {
            continue;
        }
        let path = match line.split_once(" => ") {
            // "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)"
            Some((_, rest)) => {
                if rest.starts_with("not found") {
                    return Err(line.to_string());
                }
                rest.split(" (").next().unwrap_or("").trim()
            }
            // "/lib64/ld-linux-x86-64.so.2 (0x...)" or "linux-vdso.so.1 (0x...)"
            None => line.split(" (").next().unwrap_or("").trim(),
        };
        if path.is_empty() {
            // "libfoo.so => (0x...)": provided by the kernel (vDSO).
            continue;
        }
        if !path.starts_with('/') {
            // The vDSO is mapped by the kernel, not loaded from a file.
            if path.starts_with("linux-vdso") || path.starts_with("linux-gate") {
                continue;
            }
            return Err(line.to_string());
        }
        let path = PathBuf::from(path);
        if !libs.contains(&path) {
            libs.push(path);
        }
    }
    Ok(libs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_glibc_ldd_output() {
        let out = "\tlinux-vdso.so.1 (0x00007ffc1b5f2000)\n\
                   \tlibgcc_s.so.1 => /lib/x86_64-linux-gnu/libgcc_s.so.1 (0x00007f0e)\n\
                   \tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f0d)\n\
                   \t/lib64/ld-linux-x86-64.so.2 (0x00007f0f)\n";
        let libs = parse_ldd(out).unwrap();
        assert_eq!(
            libs,
            [
                "/lib/x86_64-linux-gnu/libgcc_s.so.1",
                "/lib/x86_64-linux-gnu/libc.so.6",
                "/lib64/ld-linux-x86-64.so.2"
            ]
            .map(PathBuf::from)
        );
    }

    #[test]
    fn missing_library_is_reported() {
        let out = "\tlibfdt.so.1 => not found\n";
        assert_eq!(parse_ldd(out).unwrap_err(), "libfdt.so.1 => not found");
        assert_eq!(
            parse_ldd("\tstatically linked\n").unwrap(),
            Vec::<PathBuf>::new()
        );
    }

    #[test]
    fn this_test_binary_needs_libc() {
        let exe = std::env::current_exe().unwrap();
        let libs = shared_libraries(&exe).unwrap();
        assert!(
            libs.iter().any(|p| p.ends_with("libc.so.6")),
            "ldd of {} gave {libs:?}",
            exe.display()
        );
    }
}

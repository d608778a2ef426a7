//! The asset directory filled by `scripts/vmrig-fetch`.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use super::Error;

/// Environment variable naming the asset directory.
pub const ASSETS_ENV: &str = "KVMSEC_VM_ASSETS";

/// Where `scripts/vmrig-fetch` puts the assets when `KVMSEC_VM_ASSETS` is unset.
pub const DEFAULT_ASSETS_DIR: &str = "/var/cache/kvmsec-vmrig";

/// Manifest format this harness understands.
const FORMAT: &str = "1";

/// The files a test VM is made of, as listed by the asset manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assets {
    /// The asset directory.
    pub root: PathBuf,
    /// Kernel image (`bzImage`).
    pub kernel: PathBuf,
    /// Kernel release, e.g. `6.1.0-57-cloud-amd64`.
    pub kernel_release: String,
    /// Kernel modules, in the order they must be loaded.
    pub modules: Vec<PathBuf>,
    /// `qemu-system-x86_64`.
    pub qemu: PathBuf,
    /// Directory for `LD_LIBRARY_PATH` when running the emulator.
    pub qemu_lib_dir: PathBuf,
    /// Directory for `QEMU_MODULE_DIR` (holds the TCG accelerator module).
    pub qemu_module_dir: PathBuf,
    /// Firmware directory (`-L`).
    pub firmware_dir: PathBuf,
    /// Statically linked busybox.
    pub busybox: PathBuf,
    /// Statically linked `checkpolicy`.
    pub checkpolicy: PathBuf,
    /// The compiled test policy (`policy.33`).
    pub policy: PathBuf,
    /// The policy source the compiled policy was built from.
    pub policy_source: PathBuf,
}

impl Assets {
    /// The asset directory this process should use: `$KVMSEC_VM_ASSETS`, else
    /// [`DEFAULT_ASSETS_DIR`].
    pub fn default_dir() -> PathBuf {
        match std::env::var_os(ASSETS_ENV) {
            Some(dir) if !dir.is_empty() => PathBuf::from(dir),
            _ => PathBuf::from(DEFAULT_ASSETS_DIR),
        }
    }

    /// Loads the assets from [`Assets::default_dir`].
    ///
    /// `Ok(None)` means they are not there (no manifest); the caller skips.
    /// An incomplete or inconsistent directory is an error.
    pub fn find() -> Result<Option<Assets>, Error> {
        let dir = Self::default_dir();
        if !dir.join("manifest").is_file() {
            return Ok(None);
        }
        Self::load(&dir).map(Some)
    }

    /// Loads the assets from `dir`, checking that every listed file exists.
    pub fn load(dir: &Path) -> Result<Assets, Error> {
        let manifest_path = dir.join("manifest");
        let text = fs::read_to_string(&manifest_path)
            .map_err(Error::io(format!("reading {}", manifest_path.display())))?;
        let mut values = BTreeMap::new();
        let mut files = Vec::new();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let Some((key, value)) = line.split_once('=') else {
                return Err(Error::Invalid(format!(
                    "{}: line {line:?} is not key=value",
                    manifest_path.display()
                )));
            };
            if key == "file" {
                files.push(value.to_string());
            } else {
                values.insert(key.to_string(), value.to_string());
            }
        }
        let get = |key: &str| {
            values.get(key).cloned().ok_or_else(|| {
                Error::Invalid(format!(
                    "{} has no `{key}=`; rerun scripts/vmrig-fetch",
                    manifest_path.display()
                ))
            })
        };
        if get("format")? != FORMAT {
            return Err(Error::Invalid(format!(
                "{} has format {} (want {FORMAT}); rerun scripts/vmrig-fetch",
                manifest_path.display(),
                get("format")?
            )));
        }
        for file in &files {
            if !dir.join(file).exists() {
                return Err(Error::Invalid(format!(
                    "asset {file} listed in {} is missing; rerun scripts/vmrig-fetch",
                    manifest_path.display()
                )));
            }
        }
        let path = |key: &str| get(key).map(|p| dir.join(p));
        let module_dir = dir.join("kernel/modules");
        let modules = get("modules")?
            .split_whitespace()
            .map(|m| module_dir.join(format!("{m}.ko")))
            .collect();
        Ok(Assets {
            root: dir.to_path_buf(),
            kernel: path("kernel")?,
            kernel_release: get("kernel_release")?,
            modules,
            qemu: path("qemu")?,
            qemu_lib_dir: path("qemu_lib_dir")?,
            qemu_module_dir: path("qemu_module_dir")?,
            firmware_dir: path("firmware_dir")?,
            busybox: path("busybox")?,
            checkpolicy: path("checkpolicy")?,
            policy: path("policy")?,
            policy_source: dir.join("policy/kvmsec.conf"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_manifest(dir: &Path, extra: &str) {
        let text = format!(
            "# test\nformat=1\nkernel_release=6.1.0-1-cloud-amd64\nkernel=kernel/vmlinuz\n\
             modules=virtio bfq\nqemu=qemu/bin/qemu-system-x86_64\nqemu_lib_dir=qemu/lib\n\
             qemu_module_dir=qemu/modules\nfirmware_dir=firmware\nbusybox=bin/busybox\n\
             checkpolicy=bin/checkpolicy\npolicy=policy/policy.33\nfile=kernel/vmlinuz\n{extra}"
        );
        fs::write(dir.join("manifest"), text).unwrap();
    }

    #[test]
    fn manifest_is_read_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("kernel")).unwrap();
        fs::write(dir.path().join("kernel/vmlinuz"), b"k").unwrap();
        write_manifest(dir.path(), "");
        let assets = Assets::load(dir.path()).unwrap();
        assert_eq!(assets.kernel, dir.path().join("kernel/vmlinuz"));
        assert_eq!(
            assets.modules,
            [
                dir.path().join("kernel/modules/virtio.ko"),
                dir.path().join("kernel/modules/bfq.ko")
            ]
        );

        write_manifest(dir.path(), "file=bin/busybox\n");
        let err = Assets::load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("bin/busybox"), "{err}");
    }
}

//! sVirt: guest process and image labels, and labelling a guest's disk images with restore
//! (operations layer).
//!
//! # References
//! - libvirt `src/security/security_selinux.c` (`GenLabel`, `SetImageLabelInternal`,
//!   `RestoreFileLabel`): base contexts from `virtual_domain_context` and
//!   `virtual_image_context`, read-only and backing images get the content label, shared
//!   images the image type at `s0`, `ENOTSUP`/`EROFS` are not fatal.

use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::context::{Level, MlsRange, SecurityContext};
use crate::error::{Error, Result};
use crate::mcs::McsAllocator;
use crate::xattr::{Symlink, file_label_exact, remove_file_label, set_file_label_raw};

/// Default base context for guest processes.
pub const DEFAULT_PROCESS_BASE: &str = "system_u:system_r:svirt_t:s0";
/// Default base context for a guest's private images.
pub const DEFAULT_IMAGE_BASE: &str = "system_u:object_r:svirt_image_t:s0";
/// Default label for read-only images every guest may read (also backing files).
pub const DEFAULT_SHARED_READ_ONLY: &str = "system_u:object_r:virt_content_t:s0";
/// Default label for writable images shared by several guests.
pub const DEFAULT_SHARED_WRITABLE: &str = "system_u:object_r:svirt_image_t:s0";

fn s0() -> Option<MlsRange> {
    Some(MlsRange::single(Level::default()))
}

fn ctx(user: &str, role: &str, type_: &str) -> SecurityContext {
    SecurityContext::from_parts(user, role, type_, s0())
}

/// The base contexts labels are made from.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct LabelTemplates {
    /// Base for guest processes ([`DEFAULT_PROCESS_BASE`]); its range is replaced.
    pub process: SecurityContext,
    /// Base for private images ([`DEFAULT_IMAGE_BASE`]); its range is replaced.
    pub image: SecurityContext,
    /// Label for read-only and backing images ([`DEFAULT_SHARED_READ_ONLY`]), as given.
    pub shared_read_only: SecurityContext,
    /// Label for shared writable images ([`DEFAULT_SHARED_WRITABLE`]), as given.
    pub shared_writable: SecurityContext,
}

impl Default for LabelTemplates {
    fn default() -> Self {
        LabelTemplates {
            process: ctx("system_u", "system_r", "svirt_t"),
            image: ctx("system_u", "object_r", "svirt_image_t"),
            shared_read_only: ctx("system_u", "object_r", "virt_content_t"),
            shared_writable: ctx("system_u", "object_r", "svirt_image_t"),
        }
    }
}

impl LabelTemplates {
    /// Read the templates of the policy `policy_type` (`targeted`) on the host under `root`,
    /// as libvirt does: line 1 of `/etc/selinux/<type>/contexts/virtual_domain_context` is
    /// the process base; lines 1 and 2 of `virtual_image_context` are the image base and
    /// the shared read-only label. The shared writable label is the image base at its own
    /// level. `None` when the policy has no `virtual_domain_context`.
    pub fn from_policy_at(root: &Path, policy_type: &str) -> Result<Option<Self>> {
        // Same rule as the config writer: a plain name, so the path stays under the root.
        crate::config::ConfigFile::new("").set_policy_type(policy_type)?;
        let dir = crate::hostfs::under(root, format!("/etc/selinux/{policy_type}/contexts"));
        let read = |name: &str| -> Result<Option<Vec<SecurityContext>>> {
            let path = dir.join(name);
            let Some(bytes) = crate::hostfs::read_optional(&path, 4096)? else {
                return Ok(None);
            };
            String::from_utf8_lossy(&bytes)
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(SecurityContext::parse)
                .collect::<Result<Vec<_>>>()
                .map(Some)
        };
        let Some(domain) = read("virtual_domain_context")? else {
            return Ok(None);
        };
        let image = read("virtual_image_context")?.unwrap_or_default();
        let defaults = LabelTemplates::default();
        let process = domain.into_iter().next().unwrap_or(defaults.process);
        let mut image = image.into_iter();
        let image_base = image.next().unwrap_or(defaults.image);
        let shared_read_only = image.next().unwrap_or(defaults.shared_read_only);
        Ok(Some(LabelTemplates {
            process,
            shared_writable: image_base.clone(),
            image: image_base,
            shared_read_only,
        }))
    }
}

/// How a guest's labels were chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum LabelKind {
    /// A fresh MCS pair from the allocator.
    Dynamic,
    /// Given by the user, used as is, nothing reserved.
    Static,
}

/// The labels of one guest.
///
/// ```
/// use kvmsec_selinux::{GuestLabels, LabelTemplates, McsAllocator};
/// let mut mcs = McsAllocator::new();
/// let guest = GuestLabels::dynamic(&mut mcs, &LabelTemplates::default())?;
/// assert_eq!(guest.process.type_(), "svirt_t");
/// assert_eq!(guest.image.type_(), "svirt_image_t");
/// assert_eq!(guest.process.range(), guest.image.range());
/// guest.release(&mut mcs);
/// # Ok::<(), kvmsec_selinux::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct GuestLabels {
    /// The qemu process's label.
    pub process: SecurityContext,
    /// The label of the guest's private images.
    pub image: SecurityContext,
    /// How they were chosen.
    pub kind: LabelKind,
}

impl GuestLabels {
    /// New labels with a fresh MCS pair from `mcs`: each base with its range replaced by the
    /// pair. Unlike libvirt, the bases' user and role are kept as given (libvirt swaps in
    /// its own process's user and role).
    pub fn dynamic(mcs: &mut McsAllocator, templates: &LabelTemplates) -> Result<Self> {
        let level = mcs.allocate()?;
        let range = Some(MlsRange::single(level));
        Ok(GuestLabels {
            process: templates.process.with_range(range),
            image: templates.image.with_range(range),
            kind: LabelKind::Dynamic,
        })
    }

    /// Labels given by the user, accepted as they are. Without an image label, the image
    /// base with the process's range is used.
    pub fn static_labels(
        process: SecurityContext,
        image: Option<SecurityContext>,
        templates: &LabelTemplates,
    ) -> Self {
        let image = image.unwrap_or_else(|| templates.image.with_range(process.range().copied()));
        GuestLabels {
            process,
            image,
            kind: LabelKind::Static,
        }
    }

    /// The guest's MCS level (low level of the process range), if any.
    pub fn level(&self) -> Option<Level> {
        self.process.range().map(|r| *r.low())
    }

    /// Give a dynamic guest's pair back to `mcs` (static labels were never reserved).
    pub fn release(&self, mcs: &mut McsAllocator) -> bool {
        match (self.kind, self.level()) {
            (LabelKind::Dynamic, Some(level)) => mcs.release(&level),
            _ => false,
        }
    }
}

/// How a guest uses an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum ImageAccess {
    /// Read-only or a backing file: the shared read-only label.
    ReadOnly,
    /// Writable and shared with other guests: the shared writable label.
    SharedWritable,
    /// Writable and private: the guest's image label.
    ReadWrite,
}

/// One file to label.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct DiskImage {
    /// The file (symlinks are followed).
    pub path: PathBuf,
    /// How the guest uses it.
    pub access: ImageAccess,
    /// A label for this file only, overriding the one `access` implies.
    pub label: Option<SecurityContext>,
}

impl DiskImage {
    /// A file with the label its access implies.
    pub fn new(path: impl Into<PathBuf>, access: ImageAccess) -> Self {
        DiskImage {
            path: path.into(),
            access,
            label: None,
        }
    }

    /// A disk and its backing chain: `top` with `access`, every backing file read-only.
    pub fn chain(
        top: impl Into<PathBuf>,
        access: ImageAccess,
        backing: impl IntoIterator<Item = PathBuf>,
    ) -> Vec<DiskImage> {
        let mut out = vec![DiskImage::new(top, access)];
        out.extend(
            backing
                .into_iter()
                .map(|p| DiskImage::new(p, ImageAccess::ReadOnly)),
        );
        out
    }
}

/// What happened to one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum LabelOutcome {
    /// The label was changed; the original is remembered.
    Relabelled,
    /// It already had the wanted label; left alone and never restored.
    AlreadyLabelled,
    /// The filesystem has no xattr support (`ENOTSUP`), e.g. NFS without labels.
    Unsupported,
    /// The filesystem is read-only (`EROFS`).
    ReadOnlyFilesystem,
}

/// One labelled file.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct LabelledFile {
    /// The file (symlinks resolved).
    pub path: PathBuf,
    /// The access it was labelled for (the widest of its uses).
    pub access: ImageAccess,
    /// The label wanted.
    pub wanted: SecurityContext,
    /// The `security.selinux` value before, byte for byte (`None`: it had none).
    pub original: Option<Vec<u8>>,
    /// What happened.
    pub outcome: LabelOutcome,
}

/// Choices for [`label_images`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct LabelOptions {
    /// Accept files that cannot carry a label (`ENOTSUP`, `EROFS`) as a per-file outcome
    /// (default `true`). When `false` they fail the whole call (after rolling back).
    pub accept_unlabellable: bool,
    /// Also restore read-only and shared images when the guest stops (default `false`,
    /// as libvirt: other guests may still use them).
    pub restore_shared: bool,
}

impl Default for LabelOptions {
    fn default() -> Self {
        LabelOptions {
            accept_unlabellable: true,
            restore_shared: false,
        }
    }
}

/// The record of one guest's image labelling: keep it (it is serialisable with the
/// `serde` feature) and call [`ImageLabelling::restore`] when the guest stops.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct ImageLabelling {
    files: Vec<LabelledFile>,
    options: LabelOptions,
}

/// What happened to one file on restore.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum RestoreOutcome {
    /// The original label (or its absence) was put back.
    Restored,
    /// Not changed by us, or a shared image left for other guests.
    Kept,
    /// Putting the original back failed.
    Failed(String),
}

/// One file's restore result.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct RestoreResult {
    /// The file.
    pub path: PathBuf,
    /// What happened.
    pub outcome: RestoreOutcome,
}

impl ImageLabelling {
    /// Every file, in labelling order.
    pub fn files(&self) -> &[LabelledFile] {
        &self.files
    }

    /// Files that could not carry a label (`ENOTSUP`/`EROFS`).
    pub fn unlabelled(&self) -> impl Iterator<Item = &LabelledFile> {
        self.files.iter().filter(|f| {
            matches!(
                f.outcome,
                LabelOutcome::Unsupported | LabelOutcome::ReadOnlyFilesystem
            )
        })
    }

    /// Put back the original labels of the files this labelling changed (private images;
    /// shared and read-only ones only with [`LabelOptions::restore_shared`]). Never fails
    /// as a whole: each file gets a [`RestoreResult`].
    ///
    /// A file that had no label is put back by removing the attribute; an SELinux kernel
    /// refuses that (`EACCES`), which shows as [`RestoreOutcome::Failed`]. (libvirt falls
    /// back to the policy's `file_contexts` default there; this crate does not read
    /// `file_contexts`.)
    pub fn restore(self) -> Vec<RestoreResult> {
        let restore_shared = self.options.restore_shared;
        self.files
            .iter()
            .map(|f| {
                let ours = f.outcome == LabelOutcome::Relabelled;
                let private = f.access == ImageAccess::ReadWrite;
                let outcome = if ours && (private || restore_shared) {
                    match put_back(f) {
                        Ok(()) => RestoreOutcome::Restored,
                        Err(e) => RestoreOutcome::Failed(e.to_string()),
                    }
                } else {
                    RestoreOutcome::Kept
                };
                RestoreResult {
                    path: f.path.clone(),
                    outcome,
                }
            })
            .collect()
    }
}

fn put_back(f: &LabelledFile) -> Result<()> {
    match &f.original {
        Some(bytes) => set_file_label_raw(&f.path, Symlink::Follow, bytes),
        None => remove_file_label(&f.path, Symlink::Follow),
    }
}

/// Label a guest's images: private images get `guest.image`, read-only and backing files
/// `templates.shared_read_only`, shared writable ones `templates.shared_writable`, and a
/// [`DiskImage::label`] overrides all of these.
///
/// Every file is labelled at most once, even when listed several times (by path after
/// resolving symlinks, or by inode); a file used in several ways gets the label of its
/// widest use (private over shared-writable over read-only; the first override wins).
/// A file that already has its label is left alone. `ENOTSUP`/`EROFS` on a file is a
/// per-file [`LabelOutcome`] (unless [`LabelOptions::accept_unlabellable`] is off). Any
/// other failure restores every file changed so far and returns
/// [`Error::RelabelFailed`].
///
/// ```no_run
/// use kvmsec_selinux::{
///     label_images, DiskImage, GuestLabels, ImageAccess, LabelOptions, LabelTemplates,
///     McsAllocator,
/// };
///
/// let mut mcs = McsAllocator::new();
/// mcs.seed_from_processes()?;
/// let guest = GuestLabels::dynamic(&mut mcs, &LabelTemplates::default())?;
/// let disks = DiskImage::chain(
///     "/var/lib/libvirt/images/vm1.qcow2",
///     ImageAccess::ReadWrite,
///     ["/var/lib/libvirt/images/base.qcow2".into()],
/// );
/// let labelling =
///     label_images(&disks, &guest, &LabelTemplates::default(), LabelOptions::default())?;
/// // ... run the guest with set_exec_label(Some(&guest.process)) ...
/// for r in labelling.restore() {
///     println!("{}: {:?}", r.path.display(), r.outcome);
/// }
/// guest.release(&mut mcs);
/// # Ok::<(), kvmsec_selinux::Error>(())
/// ```
pub fn label_images(
    images: &[DiskImage],
    guest: &GuestLabels,
    templates: &LabelTemplates,
    options: LabelOptions,
) -> Result<ImageLabelling> {
    // Plan first: resolve and merge every entry before touching anything.
    struct Planned {
        path: PathBuf,
        access: ImageAccess,
        wanted: SecurityContext,
        overridden: bool,
    }
    let mut plan: Vec<Planned> = Vec::new();
    let mut by_inode: HashMap<(u64, u64), usize> = HashMap::new();
    for image in images {
        let path = fs::canonicalize(&image.path).map_err(|e| Error::RelabelFailed {
            path: image.path.clone(),
            source: Box::new(Error::io("resolve", &image.path, e)),
            restored: 0,
            restore_failures: Vec::new(),
        })?;
        let meta = fs::metadata(&path).map_err(|e| Error::RelabelFailed {
            path: path.clone(),
            source: Box::new(Error::io("stat", &path, e)),
            restored: 0,
            restore_failures: Vec::new(),
        })?;
        let wanted = match &image.label {
            Some(l) => l.clone(),
            None => match image.access {
                ImageAccess::ReadWrite => guest.image.clone(),
                ImageAccess::SharedWritable => templates.shared_writable.clone(),
                ImageAccess::ReadOnly => templates.shared_read_only.clone(),
            },
        };
        let key = (meta.dev(), meta.ino());
        match by_inode.get(&key).and_then(|i| plan.get_mut(*i)) {
            Some(existing) => {
                if existing.overridden {
                    continue;
                }
                if image.label.is_some() || image.access > existing.access {
                    existing.wanted = wanted;
                    existing.overridden = image.label.is_some();
                }
                existing.access = existing.access.max(image.access);
            }
            None => {
                by_inode.insert(key, plan.len());
                plan.push(Planned {
                    path,
                    access: image.access,
                    wanted,
                    overridden: image.label.is_some(),
                });
            }
        }
    }

    let mut done: Vec<LabelledFile> = Vec::with_capacity(plan.len());
    for p in plan {
        match label_one(&p.path, &p.wanted) {
            Ok((original, outcome)) => done.push(LabelledFile {
                path: p.path,
                access: p.access,
                wanted: p.wanted,
                original,
                outcome,
            }),
            Err(e) if e.is_unlabellable() && options.accept_unlabellable => {
                let outcome = match e {
                    Error::ReadOnlyFilesystem { .. } => LabelOutcome::ReadOnlyFilesystem,
                    _ => LabelOutcome::Unsupported,
                };
                done.push(LabelledFile {
                    path: p.path,
                    access: p.access,
                    wanted: p.wanted,
                    original: None,
                    outcome,
                });
            }
            Err(e) => {
                let (restored, restore_failures) = roll_back(&done);
                return Err(Error::RelabelFailed {
                    path: p.path,
                    source: Box::new(e),
                    restored,
                    restore_failures,
                });
            }
        }
    }
    Ok(ImageLabelling {
        files: done,
        options,
    })
}

/// Label one file; returns its original value and the outcome.
fn label_one(path: &Path, wanted: &SecurityContext) -> Result<(Option<Vec<u8>>, LabelOutcome)> {
    let original = file_label_exact(path, Symlink::Follow)?;
    let wanted_text = wanted.to_string();
    let same = original
        .as_deref()
        .map(|o| crate::context::strip_kernel_suffix(o) == wanted_text.as_bytes())
        .unwrap_or(false);
    if same {
        return Ok((original, LabelOutcome::AlreadyLabelled));
    }
    set_file_label_raw(path, Symlink::Follow, &wanted.to_kernel_bytes())?;
    Ok((original, LabelOutcome::Relabelled))
}

fn roll_back(done: &[LabelledFile]) -> (usize, Vec<(PathBuf, String)>) {
    let mut restored = 0;
    let mut failures = Vec::new();
    for f in done.iter().rev() {
        if f.outcome != LabelOutcome::Relabelled {
            continue;
        }
        match put_back(f) {
            Ok(()) => restored += 1,
            Err(e) => failures.push((f.path.clone(), e.to_string())),
        }
    }
    (restored, failures)
}

#[cfg(test)]
mod tests;

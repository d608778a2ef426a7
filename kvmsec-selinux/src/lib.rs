//! Pure-Rust SELinux for KVM hosts: MLS/MCS security contexts, selinuxfs enforcement,
//! `/etc/selinux/config`, process and file labels, and sVirt guest labelling — with no
//! link to libselinux, so it builds statically and runs on hosts without SELinux.
//!
//! ```
//! use kvmsec_selinux::{Level, SecurityContext};
//!
//! // Parse what the kernel hands back (one trailing NUL is dropped) and canonicalise.
//! let ctx = SecurityContext::from_bytes(b"system_u:object_r:svirt_image_t:s0:c3,c1,c2,c9\0")?;
//! assert_eq!(ctx.to_string(), "system_u:object_r:svirt_image_t:s0:c1.c3,c9");
//!
//! // Dominance: a level with more categories dominates one with a subset.
//! let wide: Level = "s0:c1.c5".parse()?;
//! let narrow: Level = "s0:c2,c3".parse()?;
//! assert!(wide.dominates(&narrow));
//! assert!(ctx.range().unwrap().low().dominates(&"s0:c1,c9".parse()?));
//! # Ok::<(), kvmsec_selinux::Error>(())
//! ```
//!
//! # What is in here
//! - **Formats** (pure, no I/O): [`SecurityContext`], [`MlsRange`], [`Level`],
//!   [`CategorySet`]; [`parse_config`] and [`ConfigFile`] for `/etc/selinux/config`;
//!   [`parse_mountinfo_line`].
//! - **Host access**, each with a `..._at(root)` form for tests and other roots:
//!   [`find_selinuxfs_at`], [`getenforce_at`], [`setenforce_at`], [`Selinuxfs`] (policy
//!   version, MLS, deny_unknown, [`Selinuxfs::canonicalize_context`]),
//!   [`canonicalize_context`]; [`read_config_at`],
//!   [`set_config_mode_at`] (atomic, comment-preserving, requests `/.autorelabel`);
//!   [`process_label_at`], [`set_exec_label`]; [`file_label`], [`set_file_label`],
//!   [`fd_label`].
//! - **Operations**: [`McsAllocator`] (seeded from running guests),
//!   [`LabelTemplates`] (defaults or the policy's `virtual_*_context` files),
//!   [`GuestLabels`], [`label_images`] with [`ImageLabelling::restore`];
//!   [`report::host_checks`].
//!
//! # Testing and fuzzing
//! Unit tests run against fake `/proc`, selinuxfs and `/etc` trees under a temporary root,
//! real `security.selinux` xattrs on files they create, temporary ramfs/tmpfs mounts and a
//! backing chain made by `qemu-img`. `fuzz/` holds `cargo fuzz` targets for context,
//! config and mountinfo parsing.
//!
//! # Crate features
//! - `serde` (off by default): `Serialize`/`Deserialize` for the public data types;
//!   contexts, levels, ranges and category sets serialise as their canonical strings.
//!
//! # Platform support
//! Linux only (selinuxfs, `/proc/<pid>/attr`, `security.selinux` xattrs). Every
//! host-reading function has a live form and an `_at(root)` form; the live forms read `/`.
//! Without SELinux in the kernel the crate still works: the state is
//! [`SelinuxState::Disabled`] with the reason, and labels can be stored as plain xattrs.
//!
//! # Limitations
//! - Only raw contexts are parsed; translated (mcstrans) ranges such as
//!   `SystemLow-SystemHigh` are reported as [`Error::TranslatedContext`], not translated.
//! - Categories are limited to `c0..c1023` and sensitivities to `s0..s65535`; only the
//!   kernel knows whether a context is valid in the loaded policy
//!   ([`Selinuxfs::canonicalize_context`]).
//! - The MCS allocator accepts ranges of two or more categories (libvirt insists on
//!   eight); reservations are in memory; original image labels are kept in the
//!   [`ImageLabelling`] value (serialisable), not in `trusted.*` xattrs as libvirt does.
//! - No policy loading, booleans, AVC queries, `file_contexts` lookups (restorecon) or
//!   `/proc/<pid>/attr/selinux/*` (LSM stacking) interfaces.
//!
//! # References
//! - Linux `security/selinux/selinuxfs.c`, `security/selinux/ss/mls.c`,
//!   `Documentation/admin-guide/LSM/SELinux.rst`.
//! - libselinux (`selinux_config.c`, `procattr.c`, `getfilecon.c`, `setenforce.c`) for
//!   user-space conventions; `selinux_config(5)`.
//! - libvirt `src/security/security_selinux.c` for sVirt labelling.
//! - The SELinux Notebook, <https://github.com/SELinuxProject/selinux-notebook>.

#![deny(missing_docs)]
#![warn(missing_debug_implementations)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod config;
mod context;
mod error;
mod hostfs;
mod mcs;
mod mountinfo;
mod procattr;
pub mod report;
mod selinuxfs;
mod svirt;
#[cfg(test)]
mod testutil;
mod xattr;

pub use config::{
    AUTORELABEL_PATH, CONFIG_PATH, ConfigChange, ConfigEntry, ConfigFile, ConfigWarning,
    DEFAULT_POLICY_TYPE, SYSCONFIG_PATH, SelinuxConfig, edit_config_file_at, parse_config,
    read_config, read_config_at, read_config_file_at, request_autorelabel_at,
    resolve_symlinks_under, set_config_mode, set_config_mode_at, set_config_policy_type_at,
};
pub use context::{CategorySet, Level, MAX_CATEGORY, MAX_CONTEXT_LEN, MlsRange, SecurityContext};
pub use error::{ContextPart, ContextProblem, DisabledReason, Error, Result};
pub use mcs::{McsAllocator, SeedReport};
pub use mountinfo::{Mount, parse_mountinfo_line};
pub use procattr::{
    ProcAttr, ProcessLabels, current_label, process_label, process_label_at, process_labels,
    process_labels_at, set_exec_label, set_exec_label_at,
};
pub use selinuxfs::{
    EnforceMode, Mode, OLD_SELINUXFS_MOUNT, SELINUXFS_MOUNT, SelinuxState, Selinuxfs,
    SelinuxfsLookup, canonicalize_context, canonicalize_context_at, find_selinuxfs,
    find_selinuxfs_at, getenforce, getenforce_at, setenforce, setenforce_at,
};
pub use svirt::{
    DEFAULT_IMAGE_BASE, DEFAULT_PROCESS_BASE, DEFAULT_SHARED_READ_ONLY, DEFAULT_SHARED_WRITABLE,
    DiskImage, GuestLabels, ImageAccess, ImageLabelling, LabelKind, LabelOptions, LabelOutcome,
    LabelTemplates, LabelledFile, RestoreOutcome, RestoreResult, label_images,
};
pub use xattr::{
    Symlink, XATTR_NAME, fd_label, fd_label_raw, file_label, file_label_raw, remove_file_label,
    set_fd_label, set_fd_label_raw, set_file_label, set_file_label_raw, strip_label_nul,
};

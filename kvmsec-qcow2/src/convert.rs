//! Converting images: raw or qcow2 (plain, legacy AES, LUKS) into qcow2 (plain or LUKS) or
//! raw (operations layer).
//!
//! The conversion runs as a pipeline on all cores: the calling thread reads the source and
//! maps target clusters; worker threads decrypt (source cipher), encrypt (target cipher) and
//! write with large positional writes. Buffers are recycled through a pool, so the hot loop
//! does not allocate. The target is built in a temporary file next to it and renamed into
//! place only when complete; on error or cancellation the temporary file is removed and the
//! source is never written.

use std::fs::File;
use std::ops::ControlFlow;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::mpsc::{Receiver, Sender, channel};

use crate::create::{CreateOptions, TempFile, build};
use crate::crypto::SectorCipher;
use crate::image::{BackingFormat, ClusterState, Image, OpenOptions, is_qcow2};
use crate::io::{datasync, file_len, io_err, pread_zero_fill};
use crate::{Error, Result};

/// How far a long operation has come.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Progress {
    /// Guest bytes processed so far.
    pub done: u64,
    /// Guest bytes in total.
    pub total: u64,
}

/// The format to convert into.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Target {
    /// A raw image (sparse where the source reads as zeros).
    Raw,
    /// A qcow2 image with these options. `size` is taken from the source; `backing` must be
    /// `None` (the target is standalone); encryption may be LUKS or none.
    Qcow2(CreateOptions),
}

/// What to convert and how.
///
/// ```
/// use kvmsec_qcow2::{convert, ConvertOptions, Target, CreateOptions};
/// let dir = tempfile::tempdir()?;
/// let raw = dir.path().join("disk.raw");
/// std::fs::write(&raw, vec![1u8; 1 << 20])?;
/// let out = dir.path().join("disk.qcow2");
/// convert(&raw, &out, ConvertOptions::new(Target::Qcow2(CreateOptions::new(0))), |_| {
///     std::ops::ControlFlow::Continue(())
/// })?;
/// let mut back = vec![0u8; 1 << 20];
/// kvmsec_qcow2::Image::open(&out)?.read_at(&mut back, 0)?;
/// assert!(back.iter().all(|&b| b == 1));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct ConvertOptions<'a> {
    /// Source format; `None` probes for the qcow2 magic. Set it when the source may be a raw
    /// disk written by an untrusted guest (which could contain a qcow2 header).
    pub source_format: Option<BackingFormat>,
    /// How to open a qcow2 source (passphrases for its chain, limits).
    pub source: OpenOptions<'a>,
    /// What to write.
    pub target: Target,
    /// Worker threads (0 = one per available core).
    pub threads: usize,
    /// `fdatasync` the target before renaming it into place (default `true`). With `false`
    /// the conversion leaves write-back to the kernel, as `qemu-img convert` does by default
    /// (its target cache mode is `unsafe`): faster, but after a power loss the renamed target
    /// may miss data.
    pub durable: bool,
}

impl<'a> ConvertOptions<'a> {
    /// Probe the source, default open options, all cores.
    pub fn new(target: Target) -> Self {
        ConvertOptions {
            source_format: None,
            source: OpenOptions::new(),
            target,
            threads: 0,
            durable: true,
        }
    }

    /// Sets how the source is opened (e.g. with its passphrases).
    pub fn source(mut self, source: OpenOptions<'a>) -> Self {
        self.source = source;
        self
    }

    /// Sets the source format instead of probing.
    pub fn source_format(mut self, format: BackingFormat) -> Self {
        self.source_format = Some(format);
        self
    }
}

enum Source {
    Raw {
        file: File,
        path: PathBuf,
        size: u64,
    },
    Qcow2(Box<Image>),
}

impl Source {
    fn size(&self) -> u64 {
        match self {
            Source::Raw { size, .. } => *size,
            Source::Qcow2(i) => i.virtual_size(),
        }
    }

    fn cluster_size(&self) -> u64 {
        match self {
            Source::Raw { .. } => 65536,
            Source::Qcow2(i) => i.cluster_size(),
        }
    }

    fn read(&mut self, buf: &mut [u8], off: u64, states: &mut Vec<ClusterState>) -> Result<()> {
        match self {
            Source::Raw { file, path, size } => {
                let valid = size.saturating_sub(off).min(buf.len() as u64) as usize;
                pread_zero_fill(file, path, &mut buf[..valid], off)?;
                buf[valid..].fill(0);
                states.clear();
                states.extend(buf.chunks(65536).map(|_| ClusterState::Plain));
                Ok(())
            }
            Source::Qcow2(img) => img.read_for_convert(buf, off, states),
        }
    }
}

/// One batch handed to the workers.
struct Job {
    buf: Vec<u8>,
    /// (buffer start, length, first sector) ranges to decrypt with the source cipher.
    decrypt: Vec<(usize, usize, u64)>,
    /// (buffer start, length, file offset) ranges to write (after encrypting with the target
    /// cipher, whose sector number is the file offset / 512).
    writes: Vec<(usize, usize, u64)>,
}

/// Converts `src` into a new image at `dst` (replacing it only on success).
///
/// `progress` is called after each batch; returning [`ControlFlow::Break`] cancels the
/// conversion ([`Error::Cancelled`]), removing the partial target.
///
/// Unallocated and zero clusters of the source are not written (the target reads them as
/// zeros); in an encrypted target they are left unallocated, never encrypted zeros.
pub fn convert(
    src: impl AsRef<Path>,
    dst: impl AsRef<Path>,
    opts: ConvertOptions<'_>,
    mut progress: impl FnMut(Progress) -> ControlFlow<()>,
) -> Result<()> {
    let src = src.as_ref();
    let dst = dst.as_ref();
    let threads = if opts.threads == 0 {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2)
    } else {
        opts.threads
    };
    let file = crate::io::open_image(src, false)?;
    let format = match opts.source_format {
        Some(f) => f,
        None if is_qcow2(&file, src)? => BackingFormat::Qcow2,
        None => BackingFormat::Raw,
    };
    let mut source = match format {
        BackingFormat::Raw => {
            let size = file_len(&file, src)?;
            Source::Raw {
                file,
                path: src.to_path_buf(),
                size,
            }
        }
        BackingFormat::Qcow2 => {
            drop(file);
            Source::Qcow2(Box::new(opts.source.write(false).open(src)?))
        }
    };
    let src_cipher: Option<SectorCipher> = match &source {
        Source::Qcow2(img) => img.crypt.as_ref().map(|c| c.cipher.clone()),
        Source::Raw { .. } => None,
    };
    refuse_overwriting_source(&source, dst)?;
    let size = source.size();
    let tmp = TempFile::new(dst)?;

    match opts.target {
        Target::Raw => {
            let out = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(&tmp.path)
                .map_err(|e| io_err("open", &tmp.path, e))?;
            let unit = source.cluster_size();
            let batch = unit.max(1 << 20) as usize;
            run_pipeline(
                &mut source,
                size,
                batch,
                threads,
                src_cipher.as_ref(),
                None,
                &out,
                &tmp.path,
                &mut progress,
                |buf, off, states, job_decrypt, writes| {
                    // Write every cluster that is not known zero, at its guest offset.
                    let cs = unit as usize;
                    let mut run: Option<(usize, usize)> = None;
                    let valid = size.saturating_sub(off).min(buf.len() as u64) as usize;
                    for (k, st) in states.iter().enumerate() {
                        let s = k * cs;
                        let e = ((k + 1) * cs).min(valid);
                        if s >= e {
                            break;
                        }
                        let skip = match st {
                            ClusterState::Zero => true,
                            ClusterState::Plain => is_zero(&buf[s..e]),
                            ClusterState::Cipher { sector } => {
                                job_decrypt.push((s, cs, *sector));
                                false
                            }
                        };
                        run = match (run, skip) {
                            (None, false) => Some((s, e)),
                            (Some((a, _)), false) => Some((a, e)),
                            (Some((a, b)), true) => {
                                writes.push((a, b - a, off + a as u64));
                                None
                            }
                            (None, true) => None,
                        };
                    }
                    if let Some((a, b)) = run {
                        writes.push((a, b - a, off + a as u64));
                    }
                    Ok(())
                },
            )?;
            out.set_len(size)
                .map_err(|e| io_err("truncate", &tmp.path, e))?;
            if opts.durable {
                datasync(&out, &tmp.path)?;
            }
        }
        Target::Qcow2(mut copts) => {
            if copts.backing.is_some() {
                return Err(Error::InvalidArgument(
                    "a conversion target cannot have a backing file".into(),
                ));
            }
            if let Some(crate::Encryption::LegacyAes { .. }) = copts.encryption {
                return Err(Error::InvalidArgument(
                    "converting into legacy AES is not supported (it is broken); use LUKS".into(),
                ));
            }
            copts.size = size;
            let mut img = build(&tmp.path, &copts)?;
            let tgt_cipher = img.crypt.as_ref().map(|c| c.cipher.clone());
            let out = img
                .file()
                .try_clone()
                .map_err(|e| io_err("open", &tmp.path, e))?;
            let cs = img.cluster_size();
            let batch = cs.max(source.cluster_size()).max(1 << 20) as usize;
            let scs = source.cluster_size() as usize;
            let mut mappings: Vec<(u64, u64)> = Vec::new();
            let mut units: Vec<bool> = Vec::new();
            let mut newpos: Vec<usize> = Vec::new();
            run_pipeline(
                &mut source,
                size,
                batch,
                threads,
                src_cipher.as_ref(),
                tgt_cipher.as_ref(),
                &out,
                &tmp.path,
                &mut progress,
                |buf, off, states, job_decrypt, writes| {
                    let cs = cs as usize;
                    let n_units = buf.len().div_ceil(cs);
                    let valid = size.saturating_sub(off).min(buf.len() as u64) as usize;
                    // Which target clusters must be written.
                    units.clear();
                    units.resize(n_units, false);
                    for (k, st) in states.iter().enumerate() {
                        let s = k * scs;
                        let e = ((k + 1) * scs).min(buf.len());
                        if s >= valid {
                            break;
                        }
                        for (u, unit) in units
                            .iter_mut()
                            .enumerate()
                            .take(e.div_ceil(cs))
                            .skip(s / cs)
                        {
                            let us = u * cs;
                            let ue = (us + cs).min(buf.len());
                            let needed = match st {
                                ClusterState::Zero => false,
                                ClusterState::Plain => !is_zero(&buf[us.max(s)..ue.min(e)]),
                                ClusterState::Cipher { .. } => true,
                            };
                            *unit |= needed;
                        }
                    }
                    // Compact the needed clusters to the front, remembering where each
                    // source cluster's ciphertext went.
                    newpos.clear();
                    newpos.resize(n_units, usize::MAX);
                    let mut k = 0usize;
                    for u in 0..n_units {
                        if units[u] {
                            if u != k {
                                buf.copy_within(u * cs..(u + 1) * cs, k * cs);
                            }
                            newpos[u] = k * cs;
                            k += 1;
                        }
                    }
                    for (i, st) in states.iter().enumerate() {
                        if let ClusterState::Cipher { sector } = st {
                            let s = i * scs;
                            let u = s / cs;
                            if let Some(&p) = newpos.get(u).filter(|&&p| p != usize::MAX) {
                                job_decrypt.push((p + s % cs, scs, *sector));
                            }
                        }
                    }
                    if k == 0 {
                        return Ok(());
                    }
                    let host = img.alloc_clusters(k as u64)?;
                    img.check_overlap(host, k as u64 * cs as u64)?;
                    let gi0 = off / cs as u64;
                    for (u, &p) in newpos.iter().enumerate() {
                        if p != usize::MAX {
                            mappings.push((gi0 + u as u64, host + p as u64));
                        }
                    }
                    writes.push((0, k * cs, host));
                    Ok(())
                },
            )?;
            img.set_mappings(&mappings)?;
            if opts.durable {
                img.flush()?;
            }
        }
    }
    tmp.persist()
}

/// Refuses a destination that is (following symlinks, or through a hard link) the source
/// file or any file of its backing chain: renaming the target over it would destroy it.
fn refuse_overwriting_source(source: &Source, dst: &Path) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let d = match std::fs::metadata(dst) {
        Ok(m) => (m.dev(), m.ino()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io_err("stat", dst, e)),
    };
    let ids = match source {
        Source::Raw { file, path, .. } => {
            let m = file.metadata().map_err(|e| io_err("stat", path, e))?;
            vec![(m.dev(), m.ino())]
        }
        Source::Qcow2(img) => img.chain_file_ids()?,
    };
    if ids.contains(&d) {
        return Err(Error::InvalidArgument(format!(
            "destination {} is the source image or a file of its backing chain",
            dst.display()
        )));
    }
    Ok(())
}

fn is_zero(b: &[u8]) -> bool {
    let (pre, mid, post) = {
        // SAFETY: u64 has no invalid bit patterns; align_to only reinterprets the aligned
        // middle part of the byte slice.
        unsafe { b.align_to::<u64>() }
    };
    pre.iter().all(|&x| x == 0) && post.iter().all(|&x| x == 0) && mid.iter().all(|&x| x == 0)
}

#[allow(clippy::too_many_arguments)] // internal: the pipeline's fixed parts
fn run_pipeline(
    source: &mut Source,
    size: u64,
    batch: usize,
    threads: usize,
    src_cipher: Option<&SectorCipher>,
    tgt_cipher: Option<&SectorCipher>,
    out: &File,
    out_path: &Path,
    progress: &mut dyn FnMut(Progress) -> ControlFlow<()>,
    mut plan: impl FnMut(
        &mut [u8],
        u64,
        &[ClusterState],
        &mut Vec<(usize, usize, u64)>,
        &mut Vec<(usize, usize, u64)>,
    ) -> Result<()>,
) -> Result<()> {
    let workers = threads.max(1);
    let (pool_tx, pool_rx): (Sender<Job>, Receiver<Job>) = channel();
    for _ in 0..workers * 2 {
        let _ = pool_tx.send(Job {
            buf: vec![0u8; batch],
            decrypt: Vec::new(),
            writes: Vec::new(),
        });
    }
    let (job_tx, job_rx) = channel::<Job>();
    let job_rx = Mutex::new(job_rx);
    let (err_tx, err_rx) = channel::<Error>();
    let mut states = Vec::new();

    std::thread::scope(|s| -> Result<()> {
        for _ in 0..workers {
            let pool_tx = pool_tx.clone();
            let err_tx = err_tx.clone();
            let job_rx = &job_rx;
            s.spawn(move || {
                loop {
                    let job = match job_rx.lock() {
                        Ok(rx) => rx.recv(),
                        Err(_) => return,
                    };
                    let Ok(mut job) = job else { return };
                    if let Err(e) = work(&mut job, src_cipher, tgt_cipher, out, out_path) {
                        let _ = err_tx.send(e);
                    }
                    let _ = pool_tx.send(job);
                }
            });
        }
        drop(err_tx);

        let mut off = 0u64;
        let result = loop {
            if off >= size {
                break Ok(());
            }
            if let Ok(e) = err_rx.try_recv() {
                break Err(e);
            }
            let Ok(mut job) = pool_rx.recv() else {
                break Err(Error::InvalidArgument("conversion workers stopped".into()));
            };
            let len = (batch as u64).min(size - off) as usize;
            job.decrypt.clear();
            job.writes.clear();
            // Whole batches (a multiple of every cluster size); the source zero-fills past its
            // end and the plan never writes past it.
            let buf = &mut job.buf[..batch];
            if let Err(e) = source.read(buf, off, &mut states) {
                break Err(e);
            }
            if let Err(e) = plan(buf, off, &states, &mut job.decrypt, &mut job.writes) {
                break Err(e);
            }
            if job.decrypt.is_empty() && job.writes.is_empty() {
                let _ = pool_tx.send(job);
            } else if job_tx.send(job).is_err() {
                break Err(Error::InvalidArgument("conversion workers stopped".into()));
            }
            off += len as u64;
            if progress(Progress {
                done: off,
                total: size,
            })
            .is_break()
            {
                break Err(Error::Cancelled);
            }
        };
        drop(job_tx);
        result
    })?;
    // All workers have finished (scope joined); report the first worker error.
    if let Ok(e) = err_rx.try_recv() {
        return Err(e);
    }
    Ok(())
}

fn work(
    job: &mut Job,
    src_cipher: Option<&SectorCipher>,
    tgt_cipher: Option<&SectorCipher>,
    out: &File,
    out_path: &Path,
) -> Result<()> {
    if let Some(c) = src_cipher {
        for &(s, l, sector) in &job.decrypt {
            c.decrypt(sector, &mut job.buf[s..s + l])?;
        }
    }
    for &(s, l, file_off) in &job.writes {
        let data = &mut job.buf[s..s + l];
        if let Some(c) = tgt_cipher {
            c.encrypt(file_off / 512, data)?;
        }
        out.write_all_at(data, file_off)
            .map_err(|e| io_err("write", out_path, e))?;
    }
    Ok(())
}

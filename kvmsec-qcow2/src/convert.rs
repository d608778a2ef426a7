//! Converting images: raw or qcow2 (plain, legacy AES, LUKS) into qcow2 (plain or LUKS) or
//! raw (operations layer).
//!
//! The conversion runs as a pipeline: the calling thread reads the source (one read per run
//! of contiguous clusters) and maps target clusters; worker threads decrypt (source cipher),
//! encrypt (target cipher) and write with large positional writes, one at a time. Without a
//! cipher there is one worker: the kernel serialises buffered writes to one file anyway, and
//! a second writer would only spin on the file's lock, taking the core the reader needs.
//! Buffers are recycled through a pool, so the hot loop does not allocate. The target is
//! built in a temporary file next to it (a qcow2 target's refcounts and L2 tables are
//! written once, after the data) and renamed into place only when complete; on error or
//! cancellation the temporary file is removed and the source is never written.
//!
//! Replacing an existing target costs extra on ext4: a rename over another file makes the
//! kernel start writing the new file back at once (`auto_da_alloc`), measured at 28–42 ms
//! for a 64 MiB target here. Remove the old target first when that matters.

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
    /// Worker threads for decryption and encryption (0 = one per available core). A
    /// conversion without a cipher on either side uses one writer thread whatever this says.
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

/// A page-aligned byte buffer. The kernel copies to and from page-aligned user memory much
/// faster (measured: a 4 MiB `pread` from the page cache into a buffer 16 bytes past a page
/// boundary, where the allocator puts a large `Vec`, takes 1.45 times as long).
struct AlignedBuf {
    storage: Vec<u8>,
    start: usize,
    len: usize,
}

impl AlignedBuf {
    const ALIGN: usize = 4096;

    fn new(len: usize) -> AlignedBuf {
        let storage = vec![0u8; len + Self::ALIGN];
        let addr = storage.as_ptr() as usize;
        let start = (Self::ALIGN - addr % Self::ALIGN) % Self::ALIGN;
        AlignedBuf {
            storage,
            start,
            len,
        }
    }

    fn get_mut(&mut self) -> &mut [u8] {
        &mut self.storage[self.start..self.start + self.len]
    }
}

/// One batch handed to the workers.
struct Job {
    buf: AlignedBuf,
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
/// Unallocated and zero clusters of the source, and clusters that read as all zeros, are not
/// written: a qcow2 target leaves them unallocated (in an encrypted target too, never
/// encrypted zeros), a raw target leaves sparse holes. By default the target is synced
/// before it is renamed into place ([`ConvertOptions::durable`]); `qemu-img convert` does
/// not sync.
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
            // The final size up front (a sparse file): the data writes then never extend the
            // file, which spares ext4 an i_size update per write (as qemu-img does).
            out.set_len(size)
                .map_err(|e| io_err("truncate", &tmp.path, e))?;
            let unit = source.cluster_size();
            let batch = unit.max(BATCH) as usize;
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
            let batch = cs.max(source.cluster_size()).max(BATCH) as usize;
            let scs = source.cluster_size() as usize;
            let mut mappings: Vec<(u64, u64)> = Vec::new();
            let mut units: Vec<bool> = Vec::new();
            let mut newpos: Vec<usize> = Vec::new();
            // Data clusters taken so far (first cluster's host offset, count); counted in the
            // refcounts once, after the pipeline.
            let mut reserved: Vec<(u64, u64)> = Vec::new();
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
                    let host = img.reserve_clusters(k as u64)?;
                    img.check_overlap(host, k as u64 * cs as u64)?;
                    match reserved.last_mut() {
                        Some((h, n)) if *h + *n * cs as u64 == host => *n += k as u64,
                        _ => reserved.push((host, k as u64)),
                    }
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
            for &(host, n) in &reserved {
                img.count_reserved(host, n)?;
            }
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

/// Guest bytes per batch: one read and one write per MiB (instead of one read per cluster).
/// 2 MiB batches (`qemu-img convert`'s request size) made raw targets slower on the 2-core
/// VM we measured on: half of the runs took 2-4 times as long, all in the kernel's copy into
/// new page-cache folios (likely larger folios served from memory the VM had returned to
/// its host); `qemu-img convert` to raw shows the same slow runs there.
const BATCH: u64 = 1 << 20;

/// Whether `b` is all zeros. Checks 256-byte blocks with a branch-free OR (which the compiler
/// vectorises) and stops at the first block with a set bit, so random data costs one block.
fn is_zero(b: &[u8]) -> bool {
    let mut blocks = b.chunks_exact(256);
    for block in &mut blocks {
        if block.iter().fold(0u8, |acc, &x| acc | x) != 0 {
            return false;
        }
    }
    blocks.remainder().iter().all(|&x| x == 0)
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
    // Without a cipher the workers only write, and buffered writes to one file are serialised
    // by the kernel: a second writer would spin on the inode lock (measured: a third of the
    // CPU time of a raw -> qcow2 conversion).
    let workers = if src_cipher.is_none() && tgt_cipher.is_none() {
        1
    } else {
        threads.max(1)
    };
    let (pool_tx, pool_rx): (Sender<Job>, Receiver<Job>) = channel();
    for _ in 0..(workers * 2).max(3) {
        let _ = pool_tx.send(Job {
            buf: AlignedBuf::new(batch),
            decrypt: Vec::new(),
            writes: Vec::new(),
        });
    }
    let (job_tx, job_rx) = channel::<Job>();
    let job_rx = Mutex::new(job_rx);
    let (err_tx, err_rx) = channel::<Error>();
    // Workers write one at a time: a worker waiting for the lock sleeps instead of spinning in
    // the kernel on the target's inode lock, leaving the core to a worker that encrypts.
    let write_lock = Mutex::new(());
    let mut states = Vec::new();

    std::thread::scope(|s| -> Result<()> {
        for _ in 0..workers {
            let pool_tx = pool_tx.clone();
            let err_tx = err_tx.clone();
            let job_rx = &job_rx;
            let write_lock = &write_lock;
            s.spawn(move || {
                loop {
                    let job = match job_rx.lock() {
                        Ok(rx) => rx.recv(),
                        Err(_) => return,
                    };
                    let Ok(mut job) = job else { return };
                    if let Err(e) =
                        work(&mut job, src_cipher, tgt_cipher, out, out_path, write_lock)
                    {
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
            let buf = job.buf.get_mut();
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
    write_lock: &Mutex<()>,
) -> Result<()> {
    let buf = job.buf.get_mut();
    if let Some(c) = src_cipher {
        for &(s, l, sector) in &job.decrypt {
            c.decrypt(sector, &mut buf[s..s + l])?;
        }
    }
    for &(s, l, file_off) in &job.writes {
        let data = &mut buf[s..s + l];
        if let Some(c) = tgt_cipher {
            c.encrypt(file_off / 512, data)?;
        }
        // A poisoned lock only means another worker panicked; the file is still usable.
        let _guard = write_lock.lock().unwrap_or_else(|p| p.into_inner());
        out.write_all_at(data, file_off)
            .map_err(|e| io_err("write", out_path, e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::ClusterMapping;
    use proptest::prelude::*;

    fn noise(seed: u64, len: usize) -> Vec<u8> {
        let mut x = seed | 1;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8 | 1
            })
            .collect()
    }

    /// Passes `qemu-img check` and compares equal to `raw` (when qemu-img is installed).
    fn qemu_agrees(image: &Path, raw: &Path) {
        use std::process::Command;
        if Command::new("qemu-img").arg("--version").output().is_err() {
            eprintln!("skipping the qemu-img checks: qemu-img not installed");
            return;
        }
        let check = Command::new("qemu-img").arg("check").arg(image).output();
        let check = check.expect("qemu-img check");
        assert!(check.status.success(), "{check:?}");
        let cmp = Command::new("qemu-img")
            .args(["compare", "-f", "raw", "-F", "qcow2"])
            .args([raw, image])
            .output()
            .expect("qemu-img compare");
        assert!(cmp.status.success(), "{cmp:?}");
    }

    #[test]
    fn aligned_buffers_start_on_a_page() {
        for len in [1usize, 4096, BATCH as usize, 3 << 20] {
            let mut b = AlignedBuf::new(len);
            let s = b.get_mut();
            assert_eq!(s.len(), len);
            assert_eq!(s.as_ptr() as usize % AlignedBuf::ALIGN, 0);
        }
    }

    /// Zero runs that start, end and cross batch and cluster boundaries, a zero batch, a
    /// cluster with one set byte and a tail shorter than a cluster: every target reads back
    /// the source, skipped clusters are exactly the all-zero ones, and qemu-img agrees.
    #[test]
    fn zero_clusters_across_batches_stay_unallocated() {
        let dir = tempfile::tempdir().unwrap();
        let size = 2 * BATCH as usize + (BATCH as usize / 2) + 4096 + 512;
        let mut data = noise(7, size);
        let b = BATCH as usize;
        data[b - 65536..b + 65536].fill(0); // across the first batch boundary
        data[b + (b / 2)..2 * b + 4096].fill(0); // to just past the second one
        data[3 * 65536..4 * 65536].fill(0);
        data[5 * 65536..6 * 65536].fill(0);
        data[5 * 65536 + 1234] = 9; // one byte keeps a cluster
        let raw = dir.path().join("src.raw");
        std::fs::write(&raw, &data).unwrap();

        for cs in [4096u64, 65536, 2 << 20] {
            let q = dir.path().join(format!("c{cs}.qcow2"));
            let target = Target::Qcow2(CreateOptions::new(0).cluster_size(cs));
            convert(&raw, &q, ConvertOptions::new(target), |_| {
                ControlFlow::Continue(())
            })
            .unwrap();
            let mut img = Image::open(&q).unwrap();
            let mut back = vec![0u8; size];
            img.read_at(&mut back, 0).unwrap();
            assert!(back == data, "cluster size {cs}");
            for (gi, chunk) in data.chunks(cs as usize).enumerate() {
                let (m, _) = img.mapping(gi as u64).unwrap();
                let zero = chunk.iter().all(|&x| x == 0);
                assert_eq!(
                    matches!(m, ClusterMapping::Unallocated),
                    zero,
                    "cluster size {cs}, cluster {gi}"
                );
            }
            qemu_agrees(&q, &raw);

            let r = dir.path().join(format!("c{cs}.raw"));
            convert(&q, &r, ConvertOptions::new(Target::Raw), |_| {
                ControlFlow::Continue(())
            })
            .unwrap();
            assert!(std::fs::read(&r).unwrap() == data, "cluster size {cs}");
        }
    }

    proptest! {
        #[test]
        fn is_zero_matches_a_byte_scan(len in 0usize..2048, set in any::<Option<usize>>()) {
            let mut b = vec![0u8; len];
            if let Some(i) = set.filter(|_| len > 0).map(|i| i % len) {
                b[i] = 0x80;
            }
            prop_assert_eq!(is_zero(&b), b.iter().all(|&x| x == 0));
            // Unaligned starts too.
            if len > 3 {
                prop_assert_eq!(is_zero(&b[3..]), b[3..].iter().all(|&x| x == 0));
            }
        }
    }
}

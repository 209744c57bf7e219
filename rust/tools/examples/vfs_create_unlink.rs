// SPDX-License-Identifier: GPL-2.0
//! The core calls a creat(2) and an unlink(2) of empty files in one
//! directory make through the kernel adapter, replayed on an in-memory
//! device in userspace and timed per operation: the CPU the core spends,
//! without the VFS, to profile it (`perf record -g`). A measurement, not a
//! test.
//!
//! Per create, as `rust/vfs` makes them: the VFS lookup of the new name
//! (`lookup_at`, not found), `create`, and the directory's attributes read
//! back (`getattr`, namei.rs `resync`). Per unlink: `remove`, which
//! reports both inodes' attributes, then `evict` when the last reference
//! to the unlinked inode goes. Every entry into the core also does what
//! `FsInfo::with_core` does around the call. The background commit runs
//! every `COMMIT_EVERY` operations (0: only the dirty limit and the final
//! sync commit), and each phase ends with a commit, as the benchmark's
//! sync does.
//!
//! usage: cargo run --release -p ferrofs-tools --example vfs_create_unlink -- [FILES [COMMIT_EVERY [CACHE_BLOCKS]]]

use ferrofs_core::device::BlockDevice;
use ferrofs_core::error::{Error, Result};
use ferrofs_core::format::{Timespec, S_IFREG};
use ferrofs_core::fs::{Filesystem, MountOptions};
use ferrofs_core::mkfs::{self, MkfsOptions};
use ferrofs_core::subvol::SubvolId;

/// This thread's CPU time in seconds: on a shared host the wall clock
/// also counts the time other tasks had the CPU.
fn cpu_secs() -> f64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid timespec for the call to fill.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

const SV: SubvolId = SubvolId::DEFAULT;
/// The benchmark's disk.
const DISK_BYTES: u64 = 8 << 30;
const BLOCK: usize = 4096;

/// A sparse in-memory disk: blocks never written read as zeros. Once
/// `discard` is set (after mount, when the node cache holds every node
/// the run needs) writes are only counted, so the timings are the core's
/// and not the cost of storing the blocks; a read then would see stale
/// data, so it stops the run.
struct MemDisk {
    blocks: std::collections::HashMap<u64, Box<[u8; BLOCK]>>,
    discard: bool,
    writes: u64,
    flushes: u64,
}

impl MemDisk {
    fn block(&mut self, n: u64) -> &mut [u8; BLOCK] {
        self.blocks.entry(n).or_insert_with(|| Box::new([0; BLOCK]))
    }
}

impl BlockDevice for MemDisk {
    fn size_bytes(&self) -> u64 {
        DISK_BYTES
    }
    fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<()> {
        assert!(!self.discard, "a metadata read at {offset} after the cache was warm: raise CACHE_BLOCKS");
        for (i, chunk) in buf.chunks_mut(BLOCK).enumerate() {
            let n = offset / BLOCK as u64 + i as u64;
            match self.blocks.get(&n) {
                Some(b) => chunk.copy_from_slice(&b[..chunk.len()]),
                None => chunk.fill(0),
            }
        }
        Ok(())
    }
    fn write(&mut self, offset: u64, buf: &[u8], _fua: bool) -> Result<()> {
        self.writes += 1;
        if self.discard {
            return Ok(());
        }
        if !offset.is_multiple_of(BLOCK as u64) {
            // Only the superblock copies are written below a block.
            let n = offset / BLOCK as u64;
            let at = (offset % BLOCK as u64) as usize;
            self.block(n)[at..at + buf.len()].copy_from_slice(buf);
        } else {
            for (i, chunk) in buf.chunks(BLOCK).enumerate() {
                self.block(offset / BLOCK as u64 + i as u64)[..chunk.len()].copy_from_slice(chunk);
            }
        }
        Ok(())
    }
    fn flush(&mut self) -> Result<()> {
        self.flushes += 1;
        Ok(())
    }
}

/// What `FsInfo::with_core` does around every call into the core.
fn with_core<T>(fs: &mut Filesystem<MemDisk>, f: impl FnOnce(&mut Filesystem<MemDisk>) -> Result<T>) -> Result<T> {
    let _ = fs.set_io_in_flight(false);
    let r = f(fs);
    std::hint::black_box((fs.cached_clean_nodes(), fs.avail_blocks()));
    r
}

fn arg(args: &mut impl Iterator<Item = String>, default: u64) -> u64 {
    args.next().map_or(default, |s| s.parse().expect("a number"))
}

fn main() {
    let mut args = std::env::args().skip(1);
    let files = arg(&mut args, 50_000);
    let commit_every = arg(&mut args, 0);
    // The kernel caches 1/32 of RAM: 32768 nodes in the benchmark's 4 GiB VM.
    let opts = MountOptions { cache_blocks: arg(&mut args, 32_768) as usize, ..MountOptions::default() };

    let mut disk = MemDisk { blocks: Default::default(), discard: false, writes: 0, flushes: 0 };
    let mk = MkfsOptions {
        block_size: BLOCK as u32,
        size_bytes: DISK_BYTES,
        uuid: [7; 16],
        label: b"bench",
        now: (1_700_000_000, 0),
        fast_commit_blocks: None,
    };
    mkfs::format(&mut disk, &mk).expect("mkfs");
    let mut fs = Filesystem::mount_with(disk, opts).expect("mount");
    let now = Timespec { sec: 1_700_000_000, nsec: 0 };
    let root = fs.root_ino();
    let dir = fs.mkdir(SV, root, b"many", 0o755, 0, 0, now).expect("mkdir").ino;
    fs.commit().expect("commit");
    fs.device().discard = true;
    let names: Vec<Vec<u8>> = (0..files).map(|i| format!("f{i:07}").into_bytes()).collect();
    let mut inos = Vec::with_capacity(names.len());

    let before = (fs.stats(), fs.device().writes);
    let t = cpu_secs();
    for (i, name) in names.iter().enumerate() {
        let found = with_core(&mut fs, |fs| fs.lookup_at(SV, dir, name));
        assert_eq!(found, Err(Error::NotFound));
        let attr = with_core(&mut fs, |fs| fs.create(SV, dir, name, S_IFREG | 0o644, 0, 0, 0, now)).expect("create");
        with_core(&mut fs, |fs| fs.getattr(SV, dir)).expect("getattr dir");
        inos.push(attr.ino);
        if commit_every != 0 && i as u64 % commit_every == commit_every - 1 {
            with_core(&mut fs, |fs| fs.commit()).expect("commit");
        }
    }
    fs.commit().expect("commit");
    report("create", files, t, before, &mut fs);

    let before = (fs.stats(), fs.device().writes);
    let t = cpu_secs();
    for (i, (name, &ino)) in names.iter().zip(&inos).enumerate() {
        with_core(&mut fs, |fs| fs.remove(SV, dir, name, false, now)).expect("unlink");
        with_core(&mut fs, |fs| fs.evict(SV, ino)).expect("evict");
        if commit_every != 0 && i as u64 % commit_every == commit_every - 1 {
            with_core(&mut fs, |fs| fs.commit()).expect("commit");
        }
    }
    fs.commit().expect("commit");
    report("unlink", files, t, before, &mut fs);
    assert_eq!(fs.getattr(SV, dir).expect("getattr").size, 0, "every name is gone");
}

fn report(phase: &str, n: u64, t: f64, before: (ferrofs_core::store::Stats, u64), fs: &mut Filesystem<MemDisk>) {
    let secs = cpu_secs() - t;
    let (s0, w0) = before;
    let s = fs.stats();
    let per_op = |a: u64, b: u64| (a - b) as f64 / n as f64;
    println!(
        "{phase:6} {n} files: {:.2} us/op, {:.0} ops/s (CPU time); {} commits, {} nodes written in {} device writes, {} metadata reads",
        secs * 1e6 / n as f64,
        n as f64 / secs,
        s.commits - s0.commits,
        s.meta_writes - s0.meta_writes,
        fs.device().writes - w0,
        s.meta_reads - s0.meta_reads,
    );
    println!(
        "{phase:6} per op: {:.2} changes by finger, {:.2} write descents, {:.2} node copies, {:.2} inode look-ups",
        per_op(s.finger_hits, s0.finger_hits),
        per_op(s.write_descents, s0.write_descents),
        per_op(s.node_copies, s0.node_copies),
        per_op(s.inode_reads, s0.inode_reads),
    );
}

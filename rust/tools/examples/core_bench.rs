// SPDX-License-Identifier: GPL-2.0
//! The core on a file-backed device in userspace: creates, lookups and
//! unlinks per second, and the bytes one commit writes for a one-inode
//! change. A measurement, not a test.
//!
//! usage: cargo run --release -p ferrofs-tools --example core_bench -- IMAGE [FILES [CACHE_BLOCKS]]

use ferrofs_core::subvol::SubvolId;
const SV: SubvolId = SubvolId::DEFAULT;
use ferrofs_core::device::BlockDevice;
use ferrofs_core::error::Result;
use ferrofs_core::format::Timespec;
use ferrofs_core::fs::{Filesystem, MountOptions, SetAttr};
use ferrofs_core::mkfs::{self, MkfsOptions};
use ferrofs_tools::FileDevice;
use std::path::PathBuf;
use std::time::Instant;

/// Counts what reaches the file.
struct Counting {
    dev: FileDevice,
    bytes: u64,
    writes: u64,
    flushes: u64,
}

impl BlockDevice for Counting {
    fn size_bytes(&self) -> u64 {
        self.dev.size_bytes()
    }
    fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<()> {
        self.dev.read(offset, buf)
    }
    fn write(&mut self, offset: u64, buf: &[u8], fua: bool) -> Result<()> {
        self.bytes += buf.len() as u64;
        self.writes += 1;
        self.flushes += u64::from(fua);
        self.dev.write(offset, buf, fua)
    }
    fn flush(&mut self) -> Result<()> {
        self.flushes += 1;
        self.dev.flush()
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let image = PathBuf::from(args.next().expect("usage: core_bench IMAGE [FILES]"));
    let files: u64 = args.next().map_or(20_000, |s| s.parse().expect("FILES"));
    let mut mount_opts = MountOptions::default();
    if let Some(n) = args.next() {
        mount_opts.cache_blocks = n.parse().expect("CACHE_BLOCKS");
    }
    let _ = std::fs::remove_file(&image);
    std::fs::File::create(&image).unwrap().set_len(1 << 30).unwrap();
    let mut dev = FileDevice::open(&image, true).unwrap();
    let opts = MkfsOptions {
        block_size: 4096,
        size_bytes: 1 << 30,
        uuid: [9; 16],
        label: b"bench",
        now: (1_700_000_000, 0),
        fast_commit_blocks: None,
    };
    mkfs::format(&mut dev, &opts).unwrap();
    let dev = Counting { dev, bytes: 0, writes: 0, flushes: 0 };
    let mut fs = Filesystem::mount_with(dev, mount_opts).unwrap();
    let now = Timespec { sec: 1_700_000_000, nsec: 0 };
    let root = fs.root_ino();
    let dir = fs.mkdir(SV, root, b"d", 0o755, 0, 0, now).unwrap().ino;
    let names: Vec<Vec<u8>> = (0..files).map(|i| format!("file-{i:08}").into_bytes()).collect();

    let reads0 = fs.stats().meta_reads;
    let t = Instant::now();
    for (i, n) in names.iter().enumerate() {
        fs.create(SV, dir, n, 0o100644, 0, 0, 0, now).unwrap();
        if i % 1000 == 999 {
            fs.commit().unwrap();
        }
    }
    fs.commit().unwrap();
    let create = files as f64 / t.elapsed().as_secs_f64();
    let create_reads = fs.stats().meta_reads - reads0;

    let reads0 = fs.stats().meta_reads;
    let t = Instant::now();
    for n in &names {
        fs.lookup(SV, dir, n).unwrap();
    }
    let lookup = files as f64 / t.elapsed().as_secs_f64();
    let lookup_reads = fs.stats().meta_reads - reads0;

    // One commit of a single inode's change, in a tree of `files` inodes.
    let ino = fs.lookup(SV, dir, &names[files as usize / 2]).unwrap();
    let before = (fs.device().bytes, fs.device().writes, fs.device().flushes);
    fs.setattr(SV, ino, &SetAttr { mode: Some(0o100600), ..SetAttr::default() }, now).unwrap();
    fs.commit().unwrap();
    let d = fs.device();
    let (bytes, writes, flushes) = (d.bytes - before.0, d.writes - before.1, d.flushes - before.2);

    let reads0 = fs.stats().meta_reads;
    let t = Instant::now();
    for (i, n) in names.iter().enumerate() {
        let ino = fs.lookup(SV, dir, n).unwrap();
        fs.unlink(SV, dir, n, now).unwrap();
        fs.evict(SV, ino).unwrap();
        if i % 1000 == 999 {
            fs.commit().unwrap();
        }
    }
    fs.commit().unwrap();
    let unlink = files as f64 / t.elapsed().as_secs_f64();
    let unlink_reads = fs.stats().meta_reads - reads0;
    fs.unmount().unwrap();

    println!(
        "file-backed device {} (1 GiB, 4 KiB blocks), {files} files in one directory, commit every 1000, cache of {} clean nodes:",
        image.display(),
        mount_opts.cache_blocks
    );
    println!("  creates/s  {create:.0}  ({create_reads} metadata reads)");
    println!("  lookups/s  {lookup:.0}  ({lookup_reads} metadata reads)");
    println!("  unlinks/s  {unlink:.0} (unlink + evict)  ({unlink_reads} metadata reads)");
    println!("  one-inode change commit: {bytes} bytes in {writes} writes, {flushes} flushes (FUA superblocks counted as flushes)");
}

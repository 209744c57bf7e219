// SPDX-License-Identifier: GPL-2.0
//! The core's incremental send on a file-backed device in userspace, with
//! the bench's small-file shape (files of 2000 bytes, 1000 per directory,
//! every k-th rewritten): device read calls and bytes, split into the
//! plan's building and the stream's commands, from a cold node cache. A
//! measurement, not a test.
//!
//! usage: cargo run --release -p ferrofs-tools --example send_bench -- IMAGE [FILES [PERCENT [LATENCY_US]]]
//!
//! LATENCY_US (default 0) is spent busy-waiting in every read call, once
//! for a batch of reads submitted together (`BlockDevice::read_pieces`), as
//! a device whose round trip dominates (the bench's VM) would have it.
//! NO_BATCH=1 in the environment makes the device refuse batches.

use ferrofs_core::device::BlockDevice;
use ferrofs_core::error::Result;
use ferrofs_core::format::Timespec;
use ferrofs_core::fs::{Filesystem, MountOptions};
use ferrofs_core::mem::TryVec;
use ferrofs_core::mkfs::{self, MkfsOptions};
use ferrofs_core::send::SendRequest;
use ferrofs_core::subvol::SubvolId;
use ferrofs_tools::FileDevice;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Counts the reads that reach the file and makes each synchronous one
/// take `latency`.
struct Counting {
    dev: FileDevice,
    latency: Duration,
    reads: u64,
    read_bytes: u64,
    batches: u64,
    batch_blocks: u64,
    /// Serve `read_pieces` (off: the device does not batch).
    batch: bool,
}

impl Counting {
    fn wait(&self) {
        let t = Instant::now();
        while t.elapsed() < self.latency {}
    }
}

impl BlockDevice for Counting {
    fn size_bytes(&self) -> u64 {
        self.dev.size_bytes()
    }
    fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<()> {
        self.reads += 1;
        self.read_bytes += buf.len() as u64;
        self.wait();
        self.dev.read(offset, buf)
    }
    fn write(&mut self, offset: u64, buf: &[u8], fua: bool) -> Result<()> {
        self.dev.write(offset, buf, fua)
    }
    fn flush(&mut self) -> Result<()> {
        self.dev.flush()
    }
    fn read_pieces(&mut self, offsets: &[u64], piece: usize, buf: &mut [u8]) -> Result<bool> {
        if !self.batch {
            return Ok(false);
        }
        self.batches += 1;
        self.batch_blocks += offsets.len() as u64;
        self.read_bytes += buf.len() as u64;
        // Submitted together: one round trip for the batch.
        self.wait();
        for (&o, b) in offsets.iter().zip(buf.chunks_exact_mut(piece.max(1))) {
            self.dev.read(o, b)?;
        }
        Ok(true)
    }
}

const KIB: u64 = 1024;

fn main() {
    let mut args = std::env::args().skip(1);
    let image = PathBuf::from(args.next().expect("usage: send_bench IMAGE [FILES [PERCENT [LATENCY_US]]]"));
    let files: u64 = args.next().map_or(20_000, |s| s.parse().expect("FILES"));
    let pct: u64 = args.next().map_or(10, |s| s.parse().expect("PERCENT"));
    let latency = Duration::from_micros(args.next().map_or(0, |s| s.parse().expect("LATENCY_US")));
    let batch = std::env::var_os("NO_BATCH").is_none();
    let size = 4u64 << 30;
    let _ = std::fs::remove_file(&image);
    std::fs::File::create(&image).unwrap().set_len(size).unwrap();
    let mut dev = FileDevice::open(&image, true).unwrap();
    let opts = MkfsOptions {
        block_size: 4096,
        size_bytes: size,
        uuid: [9; 16],
        label: b"bench",
        now: (1_700_000_000, 0),
        fast_commit_blocks: None,
    };
    mkfs::format(&mut dev, &opts).unwrap();
    let mount_opts = MountOptions { cache_blocks: 32_768, ..MountOptions::default() };
    let now = Timespec { sec: 1_700_000_000, nsec: 0 };
    let top = SubvolId::DEFAULT;
    let mut fs = Filesystem::mount_with(dev, mount_opts).unwrap();
    let root = fs.root_ino();
    let small = fs.create_subvolume(top, root, b"small", [1; 16], 0, 0, now).unwrap();
    let mut inos = Vec::new();
    let mut dir = 0;
    for i in 0..files {
        if i % 1000 == 0 {
            dir = fs.mkdir(small, root, format!("d{:04}", i / 1000).as_bytes(), 0o755, 0, 0, now).unwrap().ino;
        }
        let f = fs.create(small, dir, format!("f{i:07}").as_bytes(), 0o644, 0, 0, 0, now).unwrap().ino;
        fs.write(small, f, 0, &[1u8; 2000], now).unwrap();
        inos.push(f);
        if i % 1000 == 999 {
            fs.commit().unwrap();
        }
    }
    let s0 = fs.snapshot(small, top, root, b"small-0", true, [2; 16], now).unwrap();
    let step = (100 / pct.max(1)).max(1);
    for i in 0..(files * pct / 100).max(1) {
        let f = inos[(i * step % files) as usize];
        fs.write(small, f, 0, &[pct as u8 + 1; 2000], now).unwrap();
        if i % 1000 == 999 {
            fs.commit().unwrap();
        }
    }
    let s1 = fs.snapshot(small, top, root, b"small-1", true, [3; 16], now).unwrap();
    let dev = fs.unmount().unwrap();
    let dev = Counting { dev, latency, reads: 0, read_bytes: 0, batches: 0, batch_blocks: 0, batch };
    let mut fs = Filesystem::mount_with(dev, MountOptions { read_only: true, ..mount_opts }).unwrap();

    let (r0, b0, m0) = (fs.device().reads, fs.device().read_bytes, fs.stats().meta_reads);
    let req = SendRequest { source: s1, parent: Some(s0), flags: 0, version: 1, resume: 0, resume_crc: 0 };
    let mut st = fs.send_begin(req, &[]).unwrap();
    let t = Instant::now();
    let mut stream = 0usize;
    let mut plan: Option<(Duration, u64, u64, u64)> = None;
    loop {
        let mut out = TryVec::new();
        let done = fs.send_step(&mut st, &mut out, 1 << 16).unwrap();
        stream += out.len();
        if plan.is_none() && out.len() >= 1 << 16 || plan.is_none() && done {
            let d = fs.device();
            plan = Some((t.elapsed(), d.reads - r0, d.read_bytes - b0, fs.stats().meta_reads - m0));
        }
        if done {
            break;
        }
    }
    fs.send_end(st);
    let total = t.elapsed();
    let d = fs.device();
    let (reads, bytes) = (d.reads - r0, d.read_bytes - b0);
    let (batches, batch_blocks) = (d.batches, d.batch_blocks);
    let meta = fs.stats().meta_reads - m0;
    let (pt, pr, pb, pm) = plan.unwrap();
    println!(
        "incremental send of {files} small files after {pct}% rewritten, read latency {latency:?}, stream {} KiB",
        stream as u64 / KIB
    );
    println!("  until the first 64 KiB of commands: {pt:?}, {pr} device reads ({} KiB), {pm} metadata reads", pb / KIB);
    println!("  whole send: {total:?}, {reads} device reads ({} KiB), {meta} metadata reads", bytes / KIB);
    println!("  batched node reads: {batches} batches of {batch_blocks} blocks");
}

// SPDX-License-Identifier: GPL-2.0
//! Unwritten (preallocated) extents: fallocate maps blocks without writing
//! them, they read as zeros everywhere, writes into them replace what they
//! cover, an image without the feature bit keeps the zero-writing
//! fallocate, and a crash at any write never shows what the device held
//! before in a preallocated block (the free space is seeded with a
//! pattern first, so stale data would be seen).

mod common;
use common::*;
use ferrofs_core::device::BlockDevice;
use ferrofs_core::error::Error;
use ferrofs_core::fs::Filesystem;
use ferrofs_core::mkfs::{self, MkfsOptions};
use ferrofs_core::subvol::SubvolId;
use ferrofs_core::superblock::{read_superblock, write_superblock, INCOMPAT_UNWRITTEN};

const SV: SubvolId = SubvolId::DEFAULT;
const BS: u64 = 4096;
/// What the device holds in every block before mkfs: never file content.
const STALE: u8 = 0xa5;

/// A formatted device whose every block mkfs did not write holds `STALE`.
fn seeded(size: u64) -> SimDev {
    let mut d = SimDev::new(size);
    let junk = vec![STALE; 64 * BS as usize];
    let mut at = 0;
    while at < size {
        let n = (size - at).min(junk.len() as u64) as usize;
        d.write(at, &junk[..n], false).unwrap();
        at += n as u64;
    }
    d.flush().unwrap();
    let opts = MkfsOptions { block_size: 4096, size_bytes: size, uuid: [0x77; 16], label: b"u", now: (1000, 0), fast_commit_blocks: None };
    mkfs::format(&mut d, &opts).unwrap();
    d.flush().unwrap();
    d.pending.clear();
    d
}

/// `(logical block, blocks, unwritten)` of every extent.
fn map(fs: &mut Filesystem<SimDev>, ino: u64) -> Vec<(u64, u64, bool)> {
    let mut v = Vec::new();
    fs.extents(SV, ino, 0, &mut |l, _, n, s| {
        v.push((l / BS, n / BS, s.unwritten));
        true
    })
    .unwrap();
    v
}

fn new_file(fs: &mut Filesystem<SimDev>, name: &[u8]) -> u64 {
    let root = fs.root_ino();
    fs.create(SV, root, name, 0o644, 0, 0, 0, ts(1)).unwrap().ino
}

#[test]
fn fallocate_writes_nothing_and_reads_zeros() {
    let mut fs = mount(seeded(16 << 20));
    assert_ne!(fs.superblock().incompat & INCOMPAT_UNWRITTEN, 0, "mkfs sets the feature");
    let f = new_file(&mut fs, b"f");
    fs.commit().unwrap();
    let before = fs.device().bytes_written;
    fs.fallocate(SV, f, 0, 256 * BS, false, ts(2)).unwrap();
    // Tree blocks only, nowhere near the megabyte preallocated.
    assert_eq!(fs.device().bytes_written - before, 0, "fallocate wrote through the device before a commit");
    fs.commit().unwrap();
    let written = fs.device().bytes_written - before;
    assert!(written < 64 * BS, "fallocate of 256 blocks cost {written} bytes of writes");
    assert_eq!(map(&mut fs, f), vec![(0, 256, true)]);
    assert_eq!(fs.getattr(SV, f).unwrap().blocks, 256 * BS / 512);
    assert_eq!(read_all(&mut fs, f), vec![0u8; 256 * BS as usize]);
    // SEEK_HOLE stops at an unwritten extent, SEEK_DATA skips it.
    assert_eq!(fs.seek_hole(SV, f, 0).unwrap(), 0);
    assert_eq!(fs.seek_data(SV, f, 0).unwrap(), None);
    // The read map hands the kernel holes, never the stale blocks.
    let mut runs = ferrofs_core::mem::TryVec::new();
    fs.map_blocks(SV, f, 0, 256, &mut runs).unwrap();
    assert!(runs.iter().all(|r| r.disk.is_none()), "{runs:?}");
    assert_eq!(runs.iter().map(|r| r.blocks).sum::<u64>(), 256);
    assert_check_clean(&mut fs, "after fallocate");
    let mut fs = mount(fs.unmount().unwrap());
    assert_eq!(map(&mut fs, f), vec![(0, 256, true)]);
    assert_eq!(read_all(&mut fs, f), vec![0u8; 256 * BS as usize]);
}

#[test]
fn a_write_replaces_the_part_it_covers() {
    let mut fs = mount(seeded(16 << 20));
    let f = new_file(&mut fs, b"f");
    fs.fallocate(SV, f, 0, 32 * BS, false, ts(2)).unwrap();
    fs.commit().unwrap();
    let mut want = vec![0u8; 32 * BS as usize];
    // A partial block in the middle: the rest of the block reads zeros.
    let off = 10 * BS + 100;
    fs.write(SV, f, off, &[0x11; 5000], ts(3)).unwrap();
    want[off as usize..off as usize + 5000].fill(0x11);
    assert_eq!(read_all(&mut fs, f), want);
    assert_eq!(map(&mut fs, f), vec![(0, 10, true), (10, 2, false), (12, 20, true)]);
    assert_eq!((fs.seek_data(SV, f, 0).unwrap(), fs.seek_hole(SV, f, 10 * BS).unwrap()), (Some(10 * BS), 12 * BS));
    assert_eq!(fs.getattr(SV, f).unwrap().blocks, 32 * BS / 512);
    // In the same transaction as the fallocate: still not written in place
    // (the extent would go on saying unwritten).
    let g = new_file(&mut fs, b"g");
    fs.fallocate(SV, g, 0, 8 * BS, false, ts(4)).unwrap();
    fs.write(SV, g, 3 * BS, &[0x22; 4096], ts(4)).unwrap();
    let mut gwant = vec![0u8; 8 * BS as usize];
    gwant[3 * BS as usize..4 * BS as usize].fill(0x22);
    assert_eq!(read_all(&mut fs, g), gwant);
    assert_eq!(map(&mut fs, g), vec![(0, 3, true), (3, 1, false), (4, 4, true)]);
    // The two-step write the kernel's writeback uses.
    let w = fs.begin_data_write(SV, f, 20 * BS, 2 * BS).unwrap();
    write_runs(&mut fs, &w, 20 * BS, &[0x33; 2 * 4096]).unwrap();
    fs.finish_data_write(SV, w).unwrap();
    want[20 * BS as usize..22 * BS as usize].fill(0x33);
    assert_eq!(read_all(&mut fs, f), want);
    // Zeroing, punching and truncating keep the remaining flags right.
    fs.punch_hole(SV, f, 4 * BS, 2 * BS, ts(5)).unwrap();
    fs.zero_range(SV, f, 10 * BS, BS, true, ts(5)).unwrap();
    want[10 * BS as usize..11 * BS as usize].fill(0);
    fs.truncate(SV, f, 28 * BS + 7, ts(5)).unwrap();
    want.truncate(28 * BS as usize + 7);
    assert_eq!(read_all(&mut fs, f), want);
    assert_eq!(
        map(&mut fs, f),
        vec![(0, 4, true), (6, 4, true), (10, 1, true), (11, 1, false), (12, 8, true), (20, 2, false), (22, 7, true)]
    );
    // A fallocate over it all leaves every mapped block as it is.
    fs.fallocate(SV, f, 0, 29 * BS, true, ts(6)).unwrap();
    assert_eq!(read_all(&mut fs, f), want);
    assert_eq!(map(&mut fs, f)[1], (4, 2, true));
    assert_check_clean(&mut fs, "after writes into unwritten extents");
    let mut fs = mount(fs.unmount().unwrap());
    assert_eq!(read_all(&mut fs, f), want);
    assert_eq!(read_all(&mut fs, g), gwant);
    assert_check_clean(&mut fs, "after remount");
}

#[test]
fn without_the_feature_bit_fallocate_writes_zeros() {
    let mut d = seeded(16 << 20);
    let mut sb = read_superblock(&mut d).unwrap();
    sb.incompat &= !INCOMPAT_UNWRITTEN;
    write_superblock(&mut d, &sb).unwrap();
    let mut fs = mount(d);
    let f = new_file(&mut fs, b"f");
    fs.commit().unwrap();
    let before = fs.device().bytes_written;
    fs.fallocate(SV, f, 0, 64 * BS, false, ts(2)).unwrap();
    assert!(fs.device().bytes_written - before >= 64 * BS);
    assert_eq!(map(&mut fs, f), vec![(0, 64, false)]);
    assert_eq!(read_all(&mut fs, f), vec![0u8; 64 * BS as usize]);
    // Mapped zeros are data to SEEK_DATA, as before.
    assert_eq!(fs.seek_data(SV, f, 0).unwrap(), Some(0));
    fs.commit().unwrap();
    assert_check_clean(&mut fs, "zero-writing fallocate");
}

/// An unwritten extent on an image that does not announce them is damage:
/// reads refuse it, fsck reports it.
#[test]
fn an_unwritten_extent_without_the_bit_is_corrupt() {
    let mut fs = mount(seeded(16 << 20));
    let f = new_file(&mut fs, b"f");
    fs.fallocate(SV, f, 0, 4 * BS, false, ts(2)).unwrap();
    let mut d = fs.unmount().unwrap();
    let mut sb = read_superblock(&mut d).unwrap();
    sb.incompat &= !INCOMPAT_UNWRITTEN;
    write_superblock(&mut d, &sb).unwrap();
    let mut fs = mount(d);
    let mut buf = vec![0u8; 100];
    assert!(matches!(fs.read(SV, f, 0, &mut buf), Err(Error::Corrupt(..))));
    let r = fs.check(false).unwrap();
    let problems: Vec<String> = r.problems.iter().map(|p| p.to_string()).collect();
    assert!(problems.iter().any(|p| p.contains("unwritten extent without the unwritten feature")), "{problems:?}");
}

/// A write of the workload: (offset, length, the byte written).
type Written = (u64, usize, u8);
/// A write an fsync made durable, with the device write count then.
type Durable = (u64, Written);

/// Every byte of `got` is zero or a byte some write put at that position.
fn no_stale_bytes(got: &[u8], writes: &[Written], what: &str) {
    for (i, &b) in got.iter().enumerate() {
        if b == 0 {
            continue;
        }
        let ok = writes.iter().any(|&(off, len, v)| v == b && (off..off + len as u64).contains(&(i as u64)));
        assert!(ok, "{what}: byte {i} of the file is {b:#x}, which no write put there (stale device content)");
    }
}

/// The crash workload: fallocate, writes into the preallocation through
/// both write paths, fsyncs (tree-log and fast-commit tiers), punch,
/// zero_range, commits. Returns, for each fsync, the device write count
/// once it returned and the write it made durable.
fn workload(fs: &mut Filesystem<SimDev>, f: u64, writes: &mut Vec<Written>) -> Result<Vec<Durable>, Error> {
    let mut durable = Vec::new();
    let write = |fs: &mut Filesystem<SimDev>, off: u64, len: usize, v: u8, writes: &mut Vec<Written>| {
        writes.push((off, len, v));
        fs.write(SV, f, off, &vec![v; len], ts(3)).map(drop)
    };
    fs.fallocate(SV, f, 0, 48 * BS, false, ts(2))?;
    fs.fsync(SV, f)?;
    write(fs, 5 * BS + 300, 6000, 0x11, writes)?;
    fs.fsync(SV, f)?;
    durable.push((fs.device().writes, (5 * BS + 300, 6000, 0x11)));
    fs.commit()?;
    write(fs, 20 * BS, 3 * BS as usize, 0x22, writes)?;
    fs.fsync(SV, f)?;
    durable.push((fs.device().writes, (20 * BS, 3 * BS as usize, 0x22)));
    writes.push((30 * BS, 2 * BS as usize, 0x33));
    let w = fs.begin_data_write(SV, f, 30 * BS, 2 * BS)?;
    write_runs(fs, &w, 30 * BS, &[0x33; 2 * 4096])?;
    fs.finish_data_write(SV, w)?;
    fs.fsync(SV, f)?;
    durable.push((fs.device().writes, (30 * BS, 2 * BS as usize, 0x33)));
    fs.fallocate(SV, f, 48 * BS, 16 * BS, true, ts(4))?;
    write(fs, 50 * BS + 17, 100, 0x44, writes)?;
    fs.punch_hole(SV, f, 40 * BS, 2 * BS, ts(5))?;
    fs.zero_range(SV, f, 12 * BS, 4 * BS, false, ts(5))?;
    fs.fsync(SV, f)?;
    durable.push((fs.device().writes, (50 * BS + 17, 100, 0x44)));
    fs.commit()?;
    Ok(durable)
}

#[test]
fn a_crash_never_shows_stale_blocks() {
    let base = seeded(8 << 20);
    let mut fs = mount(base.clone());
    let f = new_file(&mut fs, b"f");
    fs.commit().unwrap();
    let base = fs.unmount().unwrap();
    let mut fs = mount(base.clone());
    let start = fs.device().writes;
    let mut writes = Vec::new();
    let durable = workload(&mut fs, f, &mut writes).unwrap();
    let total = fs.device().writes - start;
    let full_run = read_all(&mut fs, f);
    no_stale_bytes(&full_run, &writes, "reference run");
    assert!(map(&mut fs, f).iter().any(|e| e.2), "the workload leaves unwritten extents");
    let mut rng = Rng(seed_or(11));
    let mut states = 0;
    for n in 0..total {
        let mut m = mount(base.clone());
        m.device().cut_after = Some(start + n);
        let mut w = Vec::new();
        assert!(workload(&mut m, f, &mut w).is_err(), "survived a cut at write {n}");
        let dev = m.device().clone();
        let images = [("drop", dev.crash_drop_all()), ("keep", dev.crash_keep_all()), ("random", dev.crash_random(&mut rng))];
        for (how, img) in images {
            let what = format!("cut after write {n} ({how})");
            let mut m = Filesystem::mount(img).unwrap_or_else(|e| panic!("{what}: mount failed: {e:?}"));
            assert_check_clean(&mut m, &what);
            let got = read_all(&mut m, f);
            no_stale_bytes(&got, &writes, &what);
            // What an fsync that returned before the cut made durable is there.
            for &(at, (off, len, v)) in durable.iter().filter(|d| d.0 <= start + n) {
                let range = &got[off as usize..off as usize + len];
                assert!(range.iter().all(|&b| b == v), "{what}: the write of {v:#x} fsynced at write {at} is lost");
            }
            states += 1;
        }
    }
    println!("unwritten crash: {states} crash states over {total} writes");
}

/// A WRITE command of a stream: (offset, bytes).
type SentWrite = (u64, Vec<u8>);

/// Runs a whole send; returns its WRITE commands and punched ranges
/// `(offset, len)`.
fn send_data(fs: &mut Filesystem<SimDev>, req: ferrofs_core::send::SendRequest) -> (Vec<SentWrite>, Vec<(u64, u64)>) {
    use ferrofs_core::send_stream::{decode_command, decode_stream_header, Command, HEADER_LEN};
    let mut st = fs.send_begin(req, &[]).unwrap();
    let mut stream = Vec::new();
    loop {
        let mut buf = ferrofs_core::mem::TryVec::new();
        let done = fs.send_step(&mut st, &mut buf, 1 << 20).unwrap();
        stream.extend_from_slice(&buf);
        if done {
            break;
        }
    }
    fs.send_end(st);
    let version = decode_stream_header(&stream).unwrap();
    let (mut writes, mut punched) = (Vec::new(), Vec::new());
    let mut at = HEADER_LEN;
    while at < stream.len() {
        let (c, n) = decode_command(&stream[at..], version).unwrap();
        match c {
            Command::Write { offset, data, .. } => writes.push((offset, data.to_vec())),
            Command::Fallocate { offset, len, .. } => punched.push((offset, len)),
            _ => {}
        }
        at += n;
    }
    (writes, punched)
}

/// Send sees unwritten extents as holes: zeros in a version 1 stream, a
/// punched range in version 2, never the blocks' stale content.
#[test]
fn send_treats_unwritten_extents_as_holes() {
    use ferrofs_core::send::SendRequest;
    let mut fs = mount(seeded(16 << 20));
    let f = new_file(&mut fs, b"f");
    fs.fallocate(SV, f, 0, 16 * BS, false, ts(2)).unwrap();
    fs.write(SV, f, 5 * BS, &[0x11; 2 * 4096], ts(3)).unwrap();
    let root = fs.root_ino();
    let snap = fs.snapshot(SV, SV, root, b"snap", true, [9; 16], ts(4)).unwrap();
    for version in [1, 2] {
        let req = SendRequest { source: snap, parent: None, flags: 0, version, resume: 0, resume_crc: 0 };
        let (writes, punched) = send_data(&mut fs, req);
        // A full send creates the file empty: what no command covers reads
        // as zeros at the receiver.
        let mut file = vec![0u8; 16 * BS as usize];
        for (off, data) in &writes {
            file[*off as usize..*off as usize + data.len()].copy_from_slice(data);
        }
        for &(off, len) in &punched {
            file[off as usize..(off + len) as usize].fill(0);
        }
        let mut want = vec![0u8; 16 * BS as usize];
        want[5 * BS as usize..7 * BS as usize].fill(0x11);
        assert!(file == want, "v{version}: the stream does not rebuild the file");
        // Only the written blocks travel as data.
        let sent: Vec<(u64, usize)> = writes.iter().map(|w| (w.0, w.1.len())).collect();
        assert_eq!(sent, vec![(5 * BS, 2 * BS as usize)], "v{version} sends unwritten blocks as data");
        assert!(punched.iter().all(|&(off, len)| off + len <= 5 * BS || off >= 7 * BS), "v{version}: {punched:?}");
    }
    // Incremental: a block written into the unwritten range since the
    // parent is the only data sent; unwritten against unwritten is no change.
    fs.write(SV, f, 10 * BS, &[0x22; 4096], ts(5)).unwrap();
    let snap2 = fs.snapshot(SV, SV, root, b"snap2", true, [8; 16], ts(6)).unwrap();
    let req = SendRequest { source: snap2, parent: Some(snap), flags: 0, version: 1, resume: 0, resume_crc: 0 };
    let (writes, _) = send_data(&mut fs, req);
    assert_eq!(writes, vec![(10 * BS, vec![0x22u8; 4096])]);
}

/// fsync tiers: blocks preallocated since the last commit take a full
/// commit (a record's runs carry CRCs of their content, and unwritten
/// blocks have none worth vouching for). A write into the preallocation
/// after a commit is a fast-commit record, whose replay keeps the
/// unwritten remainder.
#[test]
fn fsync_keeps_the_unwritten_flag_through_replay() {
    use ferrofs_core::fast_commit::FsyncTier;
    let mut fs = mount(seeded(16 << 20));
    let f = new_file(&mut fs, b"f");
    fs.commit().unwrap();
    fs.fallocate(SV, f, 0, 16 * BS, false, ts(2)).unwrap();
    assert_eq!(fs.fsync(SV, f).unwrap(), FsyncTier::FullCommit(ferrofs_core::fast_commit::Ineligible::Changed));
    let mut fs = mount(fs.device().crash_drop_all());
    assert_check_clean(&mut fs, "a fallocate made durable by a full commit");
    assert_eq!(map(&mut fs, f), vec![(0, 16, true)]);
    assert_eq!(read_all(&mut fs, f), vec![0u8; 16 * BS as usize]);
    fs.commit().unwrap();
    fs.write(SV, f, 4 * BS, &[0x11; 4096], ts(3)).unwrap();
    assert_eq!(fs.fsync(SV, f).unwrap(), FsyncTier::FastCommit);
    let mut fs = mount(fs.device().crash_drop_all());
    assert_check_clean(&mut fs, "fast-commit replay of a write into an unwritten extent");
    assert_eq!(map(&mut fs, f), vec![(0, 4, true), (4, 1, false), (5, 11, true)]);
    let mut want = vec![0u8; 16 * BS as usize];
    want[4 * BS as usize..5 * BS as usize].fill(0x11);
    assert_eq!(read_all(&mut fs, f), want);
}

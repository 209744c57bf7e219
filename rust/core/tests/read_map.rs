// SPDX-License-Identifier: GPL-2.0
//! The block map reads follow (`map_blocks`): runs and holes as the
//! extents say, clipped at the end of file; and the rule that keeps mapped
//! blocks from reuse while reads outside the core lock are in flight
//! (`set_io_in_flight`), across truncation, commits and a full disk.

mod common;
use common::*;
use ferrofs_core::device::BlockDevice;
use ferrofs_core::error::Error;
use ferrofs_core::file_read::BlockRun;
use ferrofs_core::fs::Filesystem;
use ferrofs_core::mem::TryVec;
use ferrofs_core::subvol::SubvolId;

const SV: SubvolId = SubvolId::DEFAULT;
const BS: u64 = 4096;

fn map(fs: &mut Filesystem<SimDev>, ino: u64, fb: u64, n: u64) -> (u64, Vec<BlockRun>) {
    let mut out = TryVec::new();
    let m = fs.map_blocks(SV, ino, fb, n, &mut out).unwrap();
    assert_eq!(m.runs, out.len());
    (m.size, out.iter().copied().collect())
}

/// The disk blocks of every extent of `ino`.
fn disk_blocks(fs: &mut Filesystem<SimDev>, ino: u64) -> Vec<u64> {
    let mut v = Vec::new();
    fs.extents(SV, ino, 0, &mut |_, p, n, _| {
        v.extend(p / BS..(p + n) / BS);
        true
    })
    .unwrap();
    v
}

fn raw_block(fs: &mut Filesystem<SimDev>, blk: u64) -> Vec<u8> {
    let mut b = vec![0u8; BS as usize];
    fs.device().read(blk * BS, &mut b).unwrap();
    b
}

#[test]
fn map_reports_runs_and_holes_up_to_eof() {
    let mut fs = mount(fresh(16 << 20));
    let root = fs.root_ino();
    let f = fs.create(SV, root, b"f", 0o644, 0, 0, 0, ts(1)).unwrap().ino;
    let mut rng = Rng(7);
    let head = rng.bytes(3 * BS as usize);
    fs.write(SV, f, 0, &head, ts(1)).unwrap();
    fs.write(SV, f, 10 * BS + 100, &[9u8; 50], ts(1)).unwrap();
    fs.commit().unwrap();
    let (size, runs) = map(&mut fs, f, 0, 100);
    assert_eq!(size, 10 * BS + 150);
    let lens: Vec<(u64, bool)> = runs.iter().map(|r| (r.blocks, r.disk.is_some())).collect();
    // Blocks 0..3 data, 3..10 hole, block 10 data, nothing past EOF.
    assert_eq!(lens, vec![(3, true), (7, false), (1, true)]);
    // The disk runs hold the file's bytes.
    let d0 = runs[0].disk.unwrap();
    for i in 0..3 {
        assert_eq!(raw_block(&mut fs, d0 + i), head[(i * BS) as usize..((i + 1) * BS) as usize]);
    }
    let last = raw_block(&mut fs, runs[2].disk.unwrap());
    assert_eq!(&last[100..150], &[9u8; 50]);
    // From inside the hole, and a range ending inside the first run.
    let (_, runs) = map(&mut fs, f, 5, 2);
    assert_eq!(runs, vec![BlockRun { blocks: 2, disk: None }]);
    let (_, runs) = map(&mut fs, f, 1, 1);
    assert_eq!(runs, vec![BlockRun { blocks: 1, disk: Some(d0 + 1) }]);
    // At or past EOF: nothing.
    assert!(map(&mut fs, f, 11, 5).1.is_empty());
    // Directories are refused.
    let mut out = TryVec::new();
    assert!(matches!(fs.map_blocks(SV, root, 0, 1, &mut out), Err(Error::IsDir)));
}

#[test]
fn read_through_the_map_matches_written_bytes_at_any_offset() {
    let mut fs = mount(fresh(16 << 20));
    let root = fs.root_ino();
    let f = fs.create(SV, root, b"f", 0o644, 0, 0, 0, ts(1)).unwrap().ino;
    let mut rng = Rng(11);
    let mut want = vec![0u8; 40_000];
    for _ in 0..12 {
        let off = rng.below(36_000) as usize;
        let len = 1 + rng.below(3000) as usize;
        let data = rng.bytes(len);
        fs.write(SV, f, off as u64, &data, ts(1)).unwrap();
        want[off..off + len].copy_from_slice(&data);
    }
    fs.punch_hole(SV, f, 2 * BS, 3 * BS, ts(2)).unwrap();
    want[2 * BS as usize..5 * BS as usize].fill(0);
    let size = fs.getattr(SV, f).unwrap().size as usize;
    want.truncate(size);
    for (off, len) in [(0, size + 9), (1, 5000), (4095, 2), (8192, 12_288), (size - 1, 10), (size, 4), (3 * BS as usize + 7, 9000)] {
        let mut buf = vec![0xeeu8; len];
        let n = fs.read(SV, f, off as u64, &mut buf).unwrap();
        let end = (off + len).min(size);
        assert_eq!(n, end.saturating_sub(off), "read at {off} len {len}");
        assert_eq!(&buf[..n], &want[off.min(size)..end], "read at {off} len {len}");
    }
}

/// Fills the disk with a new file until space runs out; its disk blocks.
fn fill(fs: &mut Filesystem<SimDev>, name: &[u8]) -> Vec<u64> {
    let root = fs.root_ino();
    let f = fs.create(SV, root, name, 0o644, 0, 0, 0, ts(3)).unwrap().ino;
    let chunk = vec![0xb5u8; 16 * BS as usize];
    loop {
        let off = fs.getattr(SV, f).unwrap().size;
        match fs.write(SV, f, off, &chunk, ts(3)) {
            Ok(n) if n == chunk.len() => {}
            Ok(_) | Err(Error::NoSpace) => break,
            Err(e) => panic!("write: {e:?}"),
        }
    }
    disk_blocks(fs, f)
}

/// Maps file `a` (100 blocks), then truncates it, optionally commits, and
/// fills the disk: returns the mapped blocks, the filler's blocks, and
/// whether the mapped blocks still hold `a`'s bytes.
fn truncate_and_refill(io_in_flight: bool, commit_between: bool) -> (Vec<u64>, Vec<u64>, bool, Filesystem<SimDev>) {
    truncate_and_refill_after(io_in_flight, commit_between, 0)
}

/// `truncate_and_refill` with `generations` new hold generations begun
/// between the truncate (and commit) and the fill.
fn truncate_and_refill_after(
    io_in_flight: bool,
    commit_between: bool,
    generations: usize,
) -> (Vec<u64>, Vec<u64>, bool, Filesystem<SimDev>) {
    let mut fs = mount(fresh(2 << 20));
    let root = fs.root_ino();
    let a = fs.create(SV, root, b"a", 0o644, 0, 0, 0, ts(1)).unwrap().ino;
    let data = vec![0x3cu8; 100 * BS as usize];
    assert_eq!(fs.write(SV, a, 0, &data, ts(1)).unwrap(), data.len());
    if commit_between {
        fs.commit().unwrap();
    }
    let (_, runs) = map(&mut fs, a, 0, 100);
    let mapped: Vec<u64> = runs.iter().flat_map(|r| r.disk.map(|d| d..d + r.blocks).unwrap()).collect();
    assert_eq!(mapped.len(), 100);
    // A read of those blocks is now "in flight" outside the lock.
    fs.set_io_in_flight(io_in_flight).unwrap();
    fs.truncate(SV, a, 0, ts(2)).unwrap();
    if commit_between {
        fs.commit().unwrap();
    }
    for _ in 0..generations {
        fs.next_hold_generation().unwrap();
    }
    let filler = fill(&mut fs, b"filler");
    let intact = mapped.iter().all(|&b| raw_block(&mut fs, b) == data[..BS as usize]);
    (mapped, filler, intact, fs)
}

#[test]
fn blocks_freed_while_reads_go_on_are_reusable_two_hold_generations_later() {
    for commit_between in [false, true] {
        // Reads stay in flight all along: only the generations the kernel
        // begins (each once every read of the one before has ended) let
        // the blocks go. One is not enough: a read of the generation the
        // blocks were freed in may still be in flight.
        let (mapped, filler, intact, _) = truncate_and_refill_after(true, commit_between, 1);
        assert!(!filler.iter().any(|b| mapped.contains(b)), "reused one generation after the free (commit {commit_between})");
        assert!(intact);
        let (mapped, filler, intact, mut fs) = truncate_and_refill_after(true, commit_between, 2);
        assert!(filler.iter().any(|b| mapped.contains(b)), "still held two generations after the free (commit {commit_between})");
        assert!(!intact);
        fs.set_io_in_flight(false).unwrap();
        fs.commit().unwrap();
        assert_check_clean(&mut fs, "after blocks were freed by generations");
    }
}

#[test]
fn blocks_freed_while_reads_are_in_flight_are_not_reused() {
    for commit_between in [false, true] {
        // Without reads in flight the full disk takes the freed blocks
        // back: the scenario does reach them.
        let (mapped, filler, intact, _) = truncate_and_refill(false, commit_between);
        assert!(filler.iter().any(|b| mapped.contains(b)), "control: the filler should reuse a's blocks");
        assert!(!intact);

        let (mapped, filler, intact, mut fs) = truncate_and_refill(true, commit_between);
        assert!(!filler.iter().any(|b| mapped.contains(b)), "a block mapped for a read was reused (commit {commit_between})");
        assert!(intact, "a mapped block was overwritten (commit {commit_between})");
        // statfs counts them as free all along, and once the reads drain
        // they are free for real: the disk takes more data.
        let free_held = fs.statfs().free_blocks;
        assert!(free_held >= 100, "held blocks count as free: {free_held}");
        fs.set_io_in_flight(false).unwrap();
        assert_eq!(fs.statfs().free_blocks, free_held);
        let more = fill(&mut fs, b"more");
        assert!(more.iter().any(|b| mapped.contains(b)));
        fs.commit().unwrap();
        assert_check_clean(&mut fs, "after the held blocks were reused");
    }
}

#[test]
fn a_commit_while_blocks_are_held_records_them_as_free() {
    let (_, _, _, mut fs) = truncate_and_refill(true, true);
    fs.commit().unwrap();
    assert_check_clean(&mut fs, "commit with held blocks");
    let free = fs.statfs().free_blocks;
    let dev = fs.unmount().unwrap();
    let fs = mount(dev);
    // Remounted: no reads in flight, the held blocks are plain free space.
    assert_eq!(fs.statfs().free_blocks, free);
}

/// `map_overwrite`'s runs, or `None` when the range may not be rewritten
/// in place.
fn overwrite(fs: &mut Filesystem<SimDev>, sv: SubvolId, ino: u64, fb: u64, n: u64) -> Option<Vec<BlockRun>> {
    let mut out = TryVec::new();
    let ok = fs.map_overwrite(sv, ino, fb, n, &mut out).unwrap();
    assert!(ok || out.is_empty(), "a refusal left runs behind");
    ok.then(|| out.iter().copied().collect())
}

#[test]
fn overwrite_in_place_only_for_committed_blocks_this_file_alone_holds() {
    let mut fs = mount(fresh(32 << 20));
    let root = fs.root_ino();
    let f = fs.create(SV, root, b"f", 0o644, 0, 0, 0, ts(1)).unwrap().ino;
    let mut rng = Rng(11);
    fs.write(SV, f, 0, &rng.bytes(8 * BS as usize), ts(1)).unwrap();
    // Blocks of the running transaction: fsync records vouch for them.
    assert_eq!(overwrite(&mut fs, SV, f, 0, 8), None);
    fs.commit().unwrap();
    let (_, read_runs) = map(&mut fs, f, 0, 8);
    assert_eq!(overwrite(&mut fs, SV, f, 0, 8), Some(read_runs.clone()));
    assert_eq!(overwrite(&mut fs, SV, f, 2, 3).map(|r| r[0].disk), Some(Some(read_runs[0].disk.unwrap() + 2)));
    // Nothing at or past the block holding EOF, nor an empty range.
    fs.write(SV, f, 8 * BS, &[7u8; 100], ts(2)).unwrap();
    fs.commit().unwrap();
    assert_eq!(overwrite(&mut fs, SV, f, 7, 2), None);
    assert_eq!(overwrite(&mut fs, SV, f, 0, 0), None);
    assert!(overwrite(&mut fs, SV, f, 0, 8).is_some());
    // A block rewritten in this transaction moved: that block is refused,
    // its neighbours are not.
    fs.write(SV, f, 3 * BS, &[1u8; BS as usize], ts(3)).unwrap();
    assert_eq!(overwrite(&mut fs, SV, f, 0, 8), None);
    assert!(overwrite(&mut fs, SV, f, 4, 4).is_some());
    fs.commit().unwrap();
    assert!(overwrite(&mut fs, SV, f, 0, 8).is_some());
    // Holes and unwritten extents are not overwrites.
    let g = fs.create(SV, root, b"g", 0o644, 0, 0, 0, ts(4)).unwrap().ino;
    fs.write(SV, g, 4 * BS, &[2u8; BS as usize], ts(4)).unwrap();
    fs.fallocate(SV, g, 8 * BS, 4 * BS, false, ts(4)).unwrap();
    fs.commit().unwrap();
    assert!(overwrite(&mut fs, SV, g, 4, 1).is_some());
    assert_eq!(overwrite(&mut fs, SV, g, 3, 2), None);
    assert_eq!(overwrite(&mut fs, SV, g, 8, 1), None);
    // Once a snapshot shares the tree, neither side may write in place.
    let snap = fs.snapshot(SV, SV, root, b"snap", false, [3; 16], ts(5)).unwrap();
    assert_eq!(overwrite(&mut fs, SV, f, 0, 8), None);
    assert_eq!(overwrite(&mut fs, snap, f, 0, 8), None);
    // A copy-on-write of the shared leaf takes references on its extents:
    // still shared, after a commit too.
    fs.write(SV, g, 4 * BS, &[3u8; BS as usize], ts(6)).unwrap();
    fs.commit().unwrap();
    assert_eq!(overwrite(&mut fs, SV, f, 0, 8), None);
    // Directories are refused.
    let mut out = TryVec::new();
    assert!(matches!(fs.map_overwrite(SV, root, 0, 1, &mut out), Err(Error::IsDir)));
}

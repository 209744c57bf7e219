// SPDX-License-Identifier: GPL-2.0
//! Space management inside files: fallocate (growing the size or keeping
//! it), punch_hole, zero_range, SEEK_DATA/SEEK_HOLE and the extent map, with
//! their edge cases, and fallocate's all-or-nothing answer to ENOSPC.

mod common;
use ferrofs_core::subvol::SubvolId;
const SV: SubvolId = SubvolId::DEFAULT;
use common::*;
use ferrofs_core::error::Error;
use ferrofs_core::fs::Filesystem;

const BS: u64 = 4096;

/// `(logical, physical, len)` of every extent from byte `from` on.
fn extents(fs: &mut Filesystem<SimDev>, ino: u64, from: u64) -> Vec<(u64, u64, u64)> {
    let mut v = Vec::new();
    fs.extents(SV, ino, from, &mut |l, p, n, _| {
        v.push((l, p, n));
        true
    })
    .unwrap();
    v
}

/// The file blocks the extent map covers.
fn mapped(fs: &mut Filesystem<SimDev>, ino: u64) -> Vec<u64> {
    extents(fs, ino, 0).iter().flat_map(|&(l, _, n)| l / BS..(l + n) / BS).collect()
}

fn blocks(fs: &mut Filesystem<SimDev>, ino: u64) -> u64 {
    fs.getattr(SV, ino).unwrap().blocks / (BS / 512)
}

#[test]
fn fallocate_fills_holes_grows_or_keeps_the_size() {
    let mut fs = mount(fresh(16 << 20));
    let root = fs.root_ino();
    let f = fs.create(SV, root, b"f", 0o644, 0, 0, 0, ts(1)).unwrap().ino;
    let mut rng = Rng(3);
    let head = rng.bytes(10_000);
    fs.write(SV, f, 0, &head, ts(1)).unwrap();
    fs.write(SV, f, 10 * BS, &[7u8; 100], ts(1)).unwrap();
    fs.commit().unwrap();
    let mut want = read_all(&mut fs, f);
    assert_eq!(mapped(&mut fs, f), vec![0, 1, 2, 10]);
    let size = want.len() as u64;

    // Inside the file: the holes among blocks 1..=9 get blocks, the size
    // and mtime stay, ctime moves.
    fs.fallocate(SV, f, BS + 5, 8 * BS, false, ts(2)).unwrap();
    let a = fs.getattr(SV, f).unwrap();
    assert_eq!((a.size, a.mtime, a.ctime), (size, ts(1), ts(2)));
    assert_eq!(mapped(&mut fs, f), (0..=10).collect::<Vec<_>>());
    assert_eq!(blocks(&mut fs, f), 11);
    assert_eq!(read_all(&mut fs, f), want);
    // The new blocks are unwritten: holes to SEEK_HOLE and SEEK_DATA.
    assert_eq!(fs.seek_hole(SV, f, 0).unwrap(), 3 * BS);
    assert_eq!(fs.seek_data(SV, f, 3 * BS).unwrap(), Some(10 * BS));

    // Past the end with keep_size: blocks beyond the size, size unchanged,
    // still no data there as far as SEEK_DATA is concerned.
    fs.fallocate(SV, f, size, 2 * BS + 1, true, ts(3)).unwrap();
    let a = fs.getattr(SV, f).unwrap();
    assert_eq!((a.size, a.mtime, a.ctime), (size, ts(1), ts(3)));
    assert_eq!(mapped(&mut fs, f), (0..=12).collect::<Vec<_>>());
    assert_eq!(fs.seek_data(SV, f, size).unwrap(), None);
    assert_eq!(fs.seek_hole(SV, f, size - 1).unwrap(), size);
    assert_check_clean(&mut fs, "blocks preallocated past the end");

    // Past the end, growing the size: mtime moves too, the gap reads zero.
    fs.fallocate(SV, f, 100_000, 5000, false, ts(4)).unwrap();
    let a = fs.getattr(SV, f).unwrap();
    assert_eq!((a.size, a.mtime, a.ctime), (105_000, ts(4), ts(4)));
    want.resize(105_000, 0);
    assert_eq!(read_all(&mut fs, f), want);
    assert_eq!(fs.seek_hole(SV, f, 10 * BS).unwrap(), 11 * BS);
    assert_eq!(fs.seek_data(SV, f, 11 * BS).unwrap(), None);

    // Fully allocated already: only ctime.
    fs.fallocate(SV, f, 0, 3 * BS, false, ts(5)).unwrap();
    assert_eq!(blocks(&mut fs, f), 13 + 2);
    assert_eq!(fs.getattr(SV, f).unwrap().ctime, ts(5));

    // A write into preallocated blocks, committed and not.
    fs.write(SV, f, 12 * BS + 10, b"abc", ts(6)).unwrap();
    want[(12 * BS + 10) as usize..(12 * BS + 13) as usize].copy_from_slice(b"abc");
    let u = fs.create(SV, root, b"u", 0o644, 0, 0, 0, ts(6)).unwrap().ino;
    fs.fallocate(SV, u, 0, 3 * BS, false, ts(6)).unwrap();
    fs.write(SV, u, BS, b"in place", ts(6)).unwrap();
    let mut uwant = vec![0u8; 3 * BS as usize];
    uwant[BS as usize..BS as usize + 8].copy_from_slice(b"in place");
    assert_eq!(read_all(&mut fs, u), uwant);
    assert_eq!(blocks(&mut fs, u), 3);

    // Argument errors change nothing.
    assert!(matches!(fs.fallocate(SV, f, 0, 0, false, ts(7)), Err(Error::Invalid(_))));
    assert_eq!(fs.fallocate(SV, f, (1 << 48) - 10, 11, true, ts(7)), Err(Error::FileTooBig));
    assert_eq!(fs.fallocate(SV, root, 0, 10, false, ts(7)), Err(Error::IsDir));
    assert_eq!(fs.getattr(SV, f).unwrap().ctime, ts(6));

    // Shrinking drops the preallocation; the rest survives a remount.
    fs.truncate(SV, f, 30_000, ts(8)).unwrap();
    want.truncate(30_000);
    assert_eq!(blocks(&mut fs, f), 8);
    let mut fs = mount(fs.unmount().unwrap());
    assert_check_clean(&mut fs, "after remount");
    assert_eq!(read_all(&mut fs, f), want);
    assert_eq!(read_all(&mut fs, u), uwant);
    assert_eq!(mapped(&mut fs, u), vec![0, 1, 2]);
}

#[test]
fn punch_hole_frees_whole_blocks_and_zeroes_edges() {
    let mut fs = mount(fresh(16 << 20));
    let root = fs.root_ino();
    let f = fs.create(SV, root, b"f", 0o644, 0, 0, 0, ts(1)).unwrap().ino;
    let mut rng = Rng(4);
    let mut want = rng.bytes(41_960);
    fs.write(SV, f, 0, &want, ts(1)).unwrap();
    fs.commit().unwrap();
    let size = want.len() as u64;
    assert_eq!(blocks(&mut fs, f), 11);

    // [5000, 15000): block 2 goes, blocks 1 and 3 are zeroed in part.
    fs.punch_hole(SV, f, 5000, 10_000, ts(2)).unwrap();
    want[5000..15_000].fill(0);
    let a = fs.getattr(SV, f).unwrap();
    assert_eq!((a.size, a.mtime, a.ctime), (size, ts(2), ts(2)));
    assert_eq!(read_all(&mut fs, f), want);
    assert_eq!(mapped(&mut fs, f), vec![0, 1, 3, 4, 5, 6, 7, 8, 9, 10]);
    assert_eq!(fs.seek_hole(SV, f, 0).unwrap(), 2 * BS);
    assert_eq!(fs.seek_hole(SV, f, 2 * BS + 7).unwrap(), 2 * BS + 7);
    assert_eq!(fs.seek_data(SV, f, 2 * BS).unwrap(), Some(3 * BS));
    assert_eq!(fs.seek_data(SV, f, 5000).unwrap(), Some(5000));

    // Within one block, twice in the same transaction (the second in place).
    fs.punch_hole(SV, f, 4 * BS + 10, 20, ts(3)).unwrap();
    fs.punch_hole(SV, f, 4 * BS + 100, 20, ts(3)).unwrap();
    want[(4 * BS + 10) as usize..(4 * BS + 30) as usize].fill(0);
    want[(4 * BS + 100) as usize..(4 * BS + 120) as usize].fill(0);
    assert_eq!(read_all(&mut fs, f), want);
    assert_eq!(blocks(&mut fs, f), 10);

    // Wholly past the end: nothing at all, times included.
    fs.punch_hole(SV, f, size + 100, 5000, ts(4)).unwrap();
    fs.punch_hole(SV, f, size, 1, ts(4)).unwrap();
    assert_eq!(fs.getattr(SV, f).unwrap().ctime, ts(3));

    // Reaching past the end: the partial last block goes whole, and
    // blocks preallocated past the end stay.
    fs.fallocate(SV, f, size, 3 * BS, true, ts(5)).unwrap();
    assert_eq!(blocks(&mut fs, f), 13);
    fs.punch_hole(SV, f, 9 * BS, 1 << 30, ts(5)).unwrap();
    want[(9 * BS) as usize..].fill(0);
    assert_eq!(fs.getattr(SV, f).unwrap().size, size);
    assert_eq!(read_all(&mut fs, f), want);
    assert_eq!(mapped(&mut fs, f), vec![0, 1, 3, 4, 5, 6, 7, 8, 11, 12, 13]);
    assert_eq!(fs.seek_hole(SV, f, 8 * BS).unwrap(), 9 * BS);
    assert_eq!(fs.seek_data(SV, f, 9 * BS).unwrap(), None);

    assert!(matches!(fs.punch_hole(SV, f, 0, 0, ts(6)), Err(Error::Invalid(_))));
    assert_eq!(fs.punch_hole(SV, f, 1 << 47, (1 << 47) + 1, ts(6)), Err(Error::FileTooBig));
    assert_check_clean(&mut fs, "after punching");
    let mut fs = mount(fs.unmount().unwrap());
    assert_eq!(read_all(&mut fs, f), want);
    assert_check_clean(&mut fs, "after punching and remount");

    // Punching everything below the size leaves only what lies past it.
    fs.punch_hole(SV, f, 0, size, ts(7)).unwrap();
    assert_eq!(read_all(&mut fs, f), vec![0u8; size as usize]);
    assert_eq!(mapped(&mut fs, f), vec![11, 12, 13]);
    assert_eq!(fs.seek_data(SV, f, 0).unwrap(), None);
    assert_eq!(fs.seek_hole(SV, f, 0).unwrap(), 0);
    assert_check_clean(&mut fs, "after punching everything");
}

#[test]
fn punching_the_middle_of_an_extent_splits_it() {
    let mut fs = mount(fresh(16 << 20));
    let root = fs.root_ino();
    let f = fs.create(SV, root, b"f", 0o644, 0, 0, 0, ts(1)).unwrap().ino;
    fs.write(SV, f, 0, &[9u8; 64 << 10], ts(1)).unwrap();
    fs.commit().unwrap();
    let e = extents(&mut fs, f, 0);
    assert_eq!(e.len(), 1, "{e:?}");
    let (_, phys, _) = e[0];
    fs.punch_hole(SV, f, 5 * BS, 2 * BS, ts(2)).unwrap();
    assert_eq!(extents(&mut fs, f, 0), vec![(0, phys, 5 * BS), (7 * BS, phys + 7 * BS, 9 * BS)]);
    // From the middle of an extent: that extent whole, then the rest.
    assert_eq!(extents(&mut fs, f, 8 * BS + 3), vec![(7 * BS, phys + 7 * BS, 9 * BS)]);
    assert_eq!(extents(&mut fs, f, 6 * BS), vec![(7 * BS, phys + 7 * BS, 9 * BS)]);
    assert_eq!(extents(&mut fs, f, 16 * BS), vec![]);
    // emit returning false stops.
    let mut n = 0;
    fs.extents(SV, f, 0, &mut |_, _, _, _| {
        n += 1;
        false
    })
    .unwrap();
    assert_eq!(n, 1);
    // Inodes that are not files have none.
    assert_eq!(extents(&mut fs, root, 0), vec![]);
    assert_eq!(blocks(&mut fs, f), 14);
    assert_check_clean(&mut fs, "split extent");
}

#[test]
fn zero_range_zeroes_and_allocates() {
    let mut fs = mount(fresh(16 << 20));
    let root = fs.root_ino();
    let mut rng = Rng(5);
    let data = rng.bytes(20_000);
    for (name, keep) in [(&b"grow"[..], false), (&b"keep"[..], true)] {
        let f = fs.create(SV, root, name, 0o644, 0, 0, 0, ts(1)).unwrap().ino;
        fs.write(SV, f, 0, &data, ts(1)).unwrap();
        fs.punch_hole(SV, f, 2 * BS, BS, ts(1)).unwrap();
        fs.commit().unwrap();
        fs.zero_range(SV, f, 1000, 30_000, keep, ts(2)).unwrap();
        let mut want = data.clone();
        want[1000..].fill(0);
        if !keep {
            want.resize(31_000, 0);
        }
        let a = fs.getattr(SV, f).unwrap();
        assert_eq!((a.size, a.mtime, a.ctime), (want.len() as u64, ts(2), ts(2)));
        assert_eq!(read_all(&mut fs, f), want);
        // Every block the range touches is allocated, past the size too;
        // those the punch emptied are unwritten, holes to SEEK_HOLE.
        assert_eq!(mapped(&mut fs, f), (0..8).collect::<Vec<_>>());
        assert_eq!(fs.seek_hole(SV, f, 0).unwrap(), BS);
    }
    assert_check_clean(&mut fs, "zero_range");
    let mut fs = mount(fs.unmount().unwrap());
    assert_check_clean(&mut fs, "zero_range after remount");
}

#[test]
fn seeks_agree_with_the_extent_map() {
    let mut fs = mount(fresh(32 << 20));
    let root = fs.root_ino();
    let f = fs.create(SV, root, b"sparse", 0o644, 0, 0, 0, ts(1)).unwrap().ino;
    let mut rng = Rng(6);
    for i in 0..60 {
        let off = rng.below(4 << 20);
        let len = 1 + rng.below(3 * BS) as usize;
        fs.write(SV, f, off, &rng.bytes(len), ts(1)).unwrap();
        if i % 7 == 0 {
            fs.punch_hole(SV, f, rng.below(4 << 20), rng.below(40_000) + 1, ts(1)).unwrap();
        }
        if i % 20 == 0 {
            fs.commit().unwrap();
        }
    }
    let size = fs.getattr(SV, f).unwrap().size;
    let map: std::collections::BTreeSet<u64> = mapped(&mut fs, f).into_iter().collect();
    assert_eq!(map.len() as u64, blocks(&mut fs, f));
    let content = read_all(&mut fs, f);
    // Non-zero bytes only in mapped blocks.
    for (i, c) in content.chunks(BS as usize).enumerate() {
        assert!(map.contains(&(i as u64)) || c.iter().all(|&b| b == 0), "data in unmapped block {i}");
    }
    let mut off = 0;
    while off < size + 2 * BS {
        let want_data = if off >= size { None } else { (off / BS..size.div_ceil(BS)).find(|b| map.contains(b)).map(|b| (b * BS).max(off)) };
        let want_hole =
            if off >= size { off } else { (off / BS..).find(|b| !map.contains(b)).map(|b| (b * BS).max(off).min(size)).unwrap() };
        assert_eq!(fs.seek_data(SV, f, off).unwrap(), want_data, "seek_data {off}");
        assert_eq!(fs.seek_hole(SV, f, off).unwrap(), want_hole, "seek_hole {off}");
        off += 1 + rng.below(3 * BS);
    }
    assert_eq!(fs.seek_data(SV, root, 0), Err(Error::IsDir));
    assert_eq!(fs.seek_hole(SV, u64::MAX - 1, 0), Err(Error::NotFound));
}

#[test]
fn fallocate_gets_all_the_space_or_changes_nothing() {
    // 4 MiB (1024 blocks), with the free space cut into pieces.
    let mut fs = mount(fresh(4 << 20));
    let root = fs.root_ino();
    for i in 0..60 {
        let f = fs.create(SV, root, format!("s{i}").as_bytes(), 0o644, 0, 0, 0, ts(1)).unwrap().ino;
        fs.write(SV, f, 0, &vec![1u8; 5 * BS as usize], ts(1)).unwrap();
    }
    fs.commit().unwrap();
    for i in (0..60).step_by(2) {
        let ino = fs.lookup(SV, root, format!("s{i}").as_bytes()).unwrap();
        fs.unlink(SV, root, format!("s{i}").as_bytes(), ts(2)).unwrap();
        fs.evict(SV, ino).unwrap();
    }
    fs.commit().unwrap();
    let f = fs.create(SV, root, b"big", 0o644, 0, 0, 0, ts(3)).unwrap().ino;
    fs.write(SV, f, 0, b"head", ts(3)).unwrap();
    fs.commit().unwrap();
    let free = fs.statfs().free_blocks;
    let before = (fs.getattr(SV, f).unwrap(), fs.superblock().generation, fs.device().writes);

    // More than there is: refused, and nothing changed, on disk or in memory.
    for len in [(free + 1) * BS, free * BS, (free - 10) * BS, 1 << 40] {
        assert_eq!(fs.fallocate(SV, f, BS, len, false, ts(4)), Err(Error::NoSpace), "len {len}");
        assert_eq!(fs.aborted(), None);
        assert_eq!(fs.statfs().free_blocks, free);
        assert_eq!((fs.getattr(SV, f).unwrap(), fs.superblock().generation, fs.device().writes), before);
    }
    // The largest that fits succeeds whole.
    let mut n = free;
    let got = loop {
        n -= 1;
        match fs.fallocate(SV, f, BS, n * BS, false, ts(5)) {
            Ok(()) => break n,
            Err(Error::NoSpace) => {
                assert_eq!(fs.statfs().free_blocks, free);
                assert_eq!((fs.getattr(SV, f).unwrap(), fs.superblock().generation, fs.device().writes), before);
            }
            Err(e) => panic!("fallocate {n} blocks: {e:?}"),
        }
    };
    // The rest is the global reserve and the worst case of one tree item per run.
    assert!(got * 4 > free * 3, "only {got} of {free} free blocks could be preallocated");
    assert_eq!(blocks(&mut fs, f), got + 1);
    assert_eq!(fs.getattr(SV, f).unwrap().size, (got + 1) * BS);
    let e = extents(&mut fs, f, 0);
    assert!(e.len() > 5, "free space was not fragmented: {e:?}");
    assert_eq!(fs.seek_hole(SV, f, 0).unwrap(), BS);
    let mut buf = vec![1u8; (got * BS) as usize];
    fs.read(SV, f, BS, &mut buf).unwrap();
    assert!(buf.iter().all(|&b| b == 0));
    assert_eq!(fs.aborted(), None);
    fs.commit().unwrap();
    assert_check_clean(&mut fs, "full after fallocate");
    let mut fs = mount(fs.unmount().unwrap());
    assert_check_clean(&mut fs, "full after fallocate and remount");
    println!("prealloc: {got} of {free} free blocks preallocated in {} extents on a fragmented 4 MiB filesystem", e.len());
}

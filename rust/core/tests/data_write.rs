// SPDX-License-Identifier: GPL-2.0
//! Data written in three steps (`begin_data_write`, the caller's own device
//! write, `finish_data_write`): the bytes read back, blocks and sizes add
//! up, space in flight is neither free nor leaked, and the reservation
//! holds when other work fills the disk between the steps.

mod common;
use common::*;
use ferrofs_core::error::Error;
use ferrofs_core::fs::Filesystem;
use ferrofs_core::subvol::SubvolId;

const SV: SubvolId = SubvolId::DEFAULT;
const BS: u64 = 4096;

#[test]
fn three_step_writes_read_back_and_keep_counts_right() {
    let mut fs = mount(fresh(16 << 20));
    let root = fs.root_ino();
    let f = fs.create(SV, root, b"f", 0o644, 0, 0, 0, ts(1)).unwrap().ino;
    let mut rng = Rng(5);
    let mut want = rng.bytes(50_000);
    fs.write(SV, f, 0, &want, ts(1)).unwrap();
    fs.commit().unwrap();
    let free0 = fs.statfs().free_blocks;

    // Over the middle and past the end, with a partial last block.
    let data = rng.bytes(70_000);
    let w = fs.begin_data_write(SV, f, 3 * BS, data.len() as u64).unwrap();
    assert_eq!(w.len(), data.len() as u64);
    let picked: u64 = w.runs.iter().map(|r| r.blocks).sum();
    assert_eq!(picked, 70_000u64.div_ceil(BS));
    // Blocks in flight are not free (nor available), and the file is as it was.
    assert!(fs.statfs().free_blocks <= free0 - picked);
    assert_eq!(read_all(&mut fs, f), want);
    write_runs(&mut fs, &w, 3 * BS, &data).unwrap();
    assert_eq!(fs.finish_data_write(SV, w).unwrap(), data.len() as u64);
    want.resize(3 * BS as usize + data.len(), 0);
    want[3 * BS as usize..].copy_from_slice(&data);
    assert_eq!(read_all(&mut fs, f), want);
    let a = fs.getattr(SV, f).unwrap();
    assert_eq!(a.size, want.len() as u64);
    assert_eq!(a.blocks, (want.len() as u64).div_ceil(BS) * (BS / 512));
    fs.commit().unwrap();
    assert_check_clean(&mut fs, "after a finished write");

    // An abandoned write gives its blocks back and changes nothing.
    let free1 = fs.statfs().free_blocks;
    let w = fs.begin_data_write(SV, f, 0, 9000).unwrap();
    fs.abandon_data_write(w).unwrap();
    assert_eq!(fs.statfs().free_blocks, free1);
    assert_eq!(read_all(&mut fs, f), want);
    fs.commit().unwrap();
    assert_check_clean(&mut fs, "after an abandoned write");
    let mut fs = mount(fs.unmount().unwrap());
    assert_eq!(read_all(&mut fs, f), want);

    // Not at a block boundary, or not a regular file: refused.
    assert!(matches!(fs.begin_data_write(SV, f, 100, 10), Err(Error::Invalid(_))));
    assert!(matches!(fs.begin_data_write(SV, root, 0, 10), Err(Error::IsDir)));
}

/// Blocks a new file can take on `fs` until ENOSPC.
fn fill_blocks(fs: &mut Filesystem<SimDev>, name: &[u8]) -> u64 {
    let root = fs.root_ino();
    let g = fs.create(SV, root, name, 0o644, 0, 0, 0, ts(2)).unwrap().ino;
    let chunk = vec![0x77u8; BS as usize];
    loop {
        let off = fs.getattr(SV, g).unwrap().size;
        match fs.write(SV, g, off, &chunk, ts(2)) {
            Ok(n) if n == chunk.len() => {}
            Ok(_) | Err(Error::NoSpace) => break,
            Err(e) => panic!("filling: {e:?}"),
        }
    }
    fs.getattr(SV, g).unwrap().size / BS
}

/// A 2 MiB disk with a file of 20 small extents.
fn fragmented() -> (Filesystem<SimDev>, u64) {
    let mut fs = mount(fresh(2 << 20));
    let root = fs.root_ino();
    let f = fs.create(SV, root, b"f", 0o644, 0, 0, 0, ts(1)).unwrap().ino;
    let mut rng = Rng(9);
    for i in 0..20 {
        fs.write(SV, f, i * 2 * BS, &rng.bytes(100), ts(1)).unwrap();
    }
    fs.commit().unwrap();
    (fs, f)
}

#[test]
fn the_reservation_holds_while_other_work_fills_the_disk() {
    let (mut fs, _) = fragmented();
    let room = fill_blocks(&mut fs, b"g");

    let (mut fs, f) = fragmented();
    let data = Rng(10).bytes(40 * BS as usize);
    let free0 = fs.statfs().free_blocks;
    let w = fs.begin_data_write(SV, f, 0, data.len() as u64).unwrap();
    assert_eq!(w.len(), data.len() as u64);
    let reserved = w.reserved_blocks();
    assert!(reserved > 0);
    // Neither the new blocks nor the reservation are free meanwhile...
    assert_eq!(fs.statfs().free_blocks, free0 - 40 - reserved);
    // ...nor can other work have them.
    let got = fill_blocks(&mut fs, b"g");
    assert!(got + 40 + reserved <= room + 2, "filled {got} of {room} with {} in flight", 40 + reserved);
    write_runs(&mut fs, &w, 0, &data).unwrap();
    // The finish still has its room: no ENOSPC, no abort.
    assert_eq!(fs.finish_data_write(SV, w).unwrap(), data.len() as u64);
    assert_eq!(&read_all(&mut fs, f)[..data.len()], &data[..]);
    fs.commit().unwrap();
    assert_check_clean(&mut fs, "full disk after a reserved write");
}

#[test]
fn a_full_disk_gives_a_short_write_then_enospc() {
    let mut fs = mount(fresh(2 << 20));
    let root = fs.root_ino();
    let f = fs.create(SV, root, b"f", 0o644, 0, 0, 0, ts(1)).unwrap().ino;
    let data = vec![0x42u8; 4 << 20];
    let w = fs.begin_data_write(SV, f, 0, data.len() as u64).unwrap();
    let got = w.len();
    assert!(got > 0 && got < data.len() as u64, "short: {got}");
    write_runs(&mut fs, &w, 0, &data).unwrap();
    assert_eq!(fs.finish_data_write(SV, w).unwrap(), got);
    assert!(matches!(fs.begin_data_write(SV, f, got.div_ceil(BS) * BS, 1 << 20), Err(Error::NoSpace)));
    fs.commit().unwrap();
    assert_check_clean(&mut fs, "short write on a full disk");
}

/// The kernel's writeback maps blocks while their data write may still be
/// in flight, so an fsync record can reach the device before its data. A
/// crash that keeps the record but not the data: replay finds the run's
/// data CRC wrong, stops there, and the file is as the last commit left
/// it, never showing the blocks' old contents. With the data written too,
/// the same record replays.
#[test]
fn a_record_whose_data_never_landed_is_dropped_at_replay() {
    use ferrofs_core::fast_commit::FsyncTier;
    for landed in [false, true] {
        let mut fs = mount(fresh(16 << 20));
        let root = fs.root_ino();
        let f = fs.create(SV, root, b"f", 0o644, 0, 0, 0, ts(1)).unwrap().ino;
        let old = Rng(9).bytes(3 * BS as usize);
        fs.write(SV, f, 0, &old, ts(1)).unwrap();
        fs.commit().unwrap();
        let data = Rng(10).bytes(2 * BS as usize);
        let mut w = fs.begin_data_write(SV, f, BS, data.len() as u64).unwrap();
        w.note_written(&data);
        if landed {
            write_runs(&mut fs, &w, BS, &data).unwrap();
        }
        fs.finish_data_write(SV, w).unwrap();
        assert_eq!(fs.fsync(SV, f).unwrap(), FsyncTier::FastCommit);
        let mut after = mount(fs.device().crash_drop_all());
        let mut want = old.clone();
        if landed {
            want[BS as usize..3 * BS as usize].copy_from_slice(&data);
            assert_eq!(after.replay_stopped(), None);
        } else {
            assert_eq!(after.replay_stopped().map(|(seq, _)| seq), Some(0));
        }
        assert_eq!(read_all(&mut after, f), want, "data landed: {landed}");
        assert_check_clean(&mut after, "after replay");
    }
}

/// The extents of `f` as stored: (file byte, disk byte, bytes).
fn stored_extents(fs: &mut Filesystem<SimDev>, f: u64) -> Vec<(u64, u64, u64)> {
    let mut out = Vec::new();
    fs.extents(SV, f, 0, &mut |logical, physical, len, _| {
        out.push((logical, physical, len));
        true
    })
    .unwrap();
    out
}

/// Two writebacks of one file side by side (the flusher and an fsync) ask
/// for their blocks out of file order: the later blocks leave a gap for
/// the earlier ones, which fill it, and the file stays one extent.
#[test]
fn writes_of_one_file_out_of_order_land_in_file_order_as_one_extent() {
    let mut fs = mount(fresh(64 << 20));
    let root = fs.root_ino();
    let f = fs.create(SV, root, b"f", 0o644, 0, 0, 0, ts(1)).unwrap().ino;
    let other = fs.create(SV, root, b"other", 0o644, 0, 0, 0, ts(1)).unwrap().ino;
    let mut rng = Rng(9);
    let batch = 256 * BS;
    let data = rng.bytes(4 * batch as usize);
    let piece = |i: u64| &data[(i * batch) as usize..((i + 1) * batch) as usize];
    let write = |fs: &mut Filesystem<SimDev>, i: u64| {
        let w = fs.begin_data_write(SV, f, i * batch, batch).unwrap();
        write_runs(fs, &w, i * batch, piece(i)).unwrap();
        w
    };
    let w0 = write(&mut fs, 0);
    assert_eq!(fs.finish_data_write(SV, w0).unwrap(), batch);
    // The third batch before the second, both in flight at once, and
    // another file written between them.
    let w2 = write(&mut fs, 2);
    fs.write(SV, other, 0, &rng.bytes(40 * BS as usize), ts(1)).unwrap();
    let w1 = write(&mut fs, 1);
    assert_eq!(fs.finish_data_write(SV, w2).unwrap(), batch);
    assert_eq!(fs.finish_data_write(SV, w1).unwrap(), batch);
    let w3 = write(&mut fs, 3);
    assert_eq!(fs.finish_data_write(SV, w3).unwrap(), batch);
    let ext = stored_extents(&mut fs, f);
    assert_eq!(ext.len(), 1, "one extent for four batches: {ext:?}");
    assert_eq!(ext[0].0, 0);
    assert_eq!(ext[0].2, 4 * batch);
    assert_eq!(read_all(&mut fs, f), data);
    fs.commit().unwrap();
    assert_check_clean(&mut fs, "after writes out of order");
    let mut fs = mount(fs.unmount().unwrap());
    assert_eq!(read_all(&mut fs, f), data);
    assert_eq!(stored_extents(&mut fs, f).len(), 1);
}

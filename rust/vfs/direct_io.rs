// SPDX-License-Identifier: GPL-2.0
//! read_iter and write_iter of regular files: the page cache's generic
//! paths, and O_DIRECT (IOCB_DIRECT), which moves the data between the
//! caller's buffer and the device without the page cache.
//!
//! A direct transfer goes in pieces of up to `PIECE` bytes through a
//! bounded kernel buffer, over the same data paths as the page cache:
//! `read_blocks_into` (the block map taken under the core lock, the I/O
//! outside it, holes and unwritten extents as zeros) and `write_file_data`
//! (new blocks picked under the lock, the data written outside it, then
//! mapped: a crash leaves the old data or the new, and the file's size
//! grows only once the data is mapped).
//! Copying through a buffer, rather than pinning the caller's pages,
//! keeps the unsafe surface to two copy calls; the cost is one memcpy.
//!
//! A read from a block boundary goes straight into the caller's pages
//! (`read_queued`), which the shim pins: an asynchronous one (io_uring,
//! Linux AIO) is queued and completes from the last bio's end; a
//! synchronous one (read(2), pread(2)) waits for that end in the call, as
//! iomap's direct reads do, rather than going through the bounce buffer
//! (`dd bs=1M iflag=direct` read at about a third of ext4's rate through
//! it).
//! An overwrite of whole blocks that the file alone holds since the last
//! commit goes in place, as on ext4: such blocks belong to no snapshot and
//! to no fsync record, so no tree changes, and a crash leaves each of
//! their sectors old or new. An asynchronous one is queued the same way as
//! a read (`overwrite_queued`); a synchronous one writes its piece from the
//! bounce buffer (`overwrite_in_place`). Every other write is
//! copy-on-write.
//!
//! Alignment: offset, length and buffer must be multiples of the device's
//! logical block size (EINVAL otherwise), the rule of Linux filesystems,
//! reported by statx as STATX_DIOALIGN. Ferrofs blocks are larger (4 KiB),
//! so a sector-aligned write that covers a block only in part reads the
//! rest of that block first and writes the whole block to a new place
//! (read-modify-write under the inode lock, which every write holds), as
//! the copy-on-write data path needs whole blocks anyway; a buffered
//! fallback would cost a second pass through the page cache for the same
//! result.
//!
//! Coherency: a direct read first writes back the range's dirty pages; a
//! direct write writes back and drops the range's cached pages before,
//! and drops them again after (a fault may have read the old data back
//! meanwhile), so no cached or mapped page shows stale data. Lock order:
//! i_rwsem (shared for reads, exclusive for writes), then folio locks
//! (writeback), then the core lock; no lock of this file is held while
//! the caller's buffer is copied, except i_rwsem.

use super::bindings as b;
use super::inode::{INode, Locked};
use super::kiocb::{IovIter, Kiocb};
use super::read_io::read_blocks_into;
use super::types::from_result;
use super::write_io::{write_file_data, DataBytes};
use crate::file_read::BlockRun;
use crate::fs::InodeAttr;
use crate::mem::TryVec;
use crate::store::divisor;
use kernel::prelude::*;

/// Most bytes of a direct transfer one trip through the bounce buffer
/// moves (the buffer holds this plus a block).
const PIECE: u64 = 1 << 20;

/// `->read_iter`: direct reads here, the rest to generic_file_read_iter.
///
/// # Safety
/// Called by the VFS with `iocb` and `to` of a read on an open ferrofs
/// regular file (only `FILE_OPS` has this), both live for the call.
pub(crate) unsafe extern "C" fn read_iter(iocb: *mut b::kiocb, to: *mut b::iov_iter) -> isize {
    // SAFETY: the VFS's live kiocb and iter of this call (the contract).
    let (req, iter) = unsafe { (Kiocb::from_raw(iocb), IovIter::from_raw(to)) };
    if !req.is_direct() {
        // SAFETY: the VFS's own arguments, passed on unchanged.
        return unsafe { b::generic_file_read_iter(iocb, to) };
    }
    from_result(|| direct_read(req, iter))
}

/// `->write_iter`: direct writes here, the rest to
/// generic_file_write_iter.
///
/// # Safety
/// Called by the VFS with `iocb` and `from` of a write on an open ferrofs
/// regular file (only `FILE_OPS` has this), both live for the call, and
/// no lock of the file held.
pub(crate) unsafe extern "C" fn write_iter(iocb: *mut b::kiocb, from: *mut b::iov_iter) -> isize {
    // SAFETY: the VFS's live kiocb and iter of this call (the contract).
    let (req, iter) = unsafe { (Kiocb::from_raw(iocb), IovIter::from_raw(from)) };
    if !req.is_direct() {
        // A buffered write sleeps on i_rwsem and the page cache, and
        // generic_file_write_iter refuses IOCB_NOWAIT with EINVAL: the
        // caller (RWF_NOWAIT) hears that it is not supported, as on ext4.
        if req.nowait() {
            return -(crate::error::errno::EOPNOTSUPP as isize);
        }
        // SAFETY: the VFS's own arguments, passed on unchanged.
        return unsafe { b::generic_file_write_iter(iocb, from) };
    }
    from_result(|| direct_write(req, iter))
}

/// `x` rounded down to a multiple of `bs`.
fn round_down(x: u64, bs: u64) -> u64 {
    x - x % divisor(bs)
}

/// `x` rounded up to a multiple of `bs`.
fn round_up(x: u64, bs: u64) -> u64 {
    crate::store::div_ceil(x, bs).saturating_mul(bs)
}

/// The bounce buffer sized to `len` zeroed bytes.
fn bounce(buf: &mut TryVec<u8>, len: u64) -> Result<&mut [u8]> {
    buf.clear();
    buf.try_resize(usize::try_from(len).map_err(|_| EINVAL)?, 0)?;
    Ok(&mut buf[..])
}

/// A direct read: up to the end of file, in pieces; returns the bytes
/// read, short only at EOF or when an error or fault stopped it after some
/// bytes were read.
fn direct_read(req: &Kiocb, to: &IovIter) -> Result<isize> {
    let count = to.count() as u64;
    if count == 0 {
        return Ok(0);
    }
    if req.dio_misaligned(to) {
        return Err(EINVAL);
    }
    // IOCB_NOWAIT (io_uring's first try, RWF_NOWAIT): only a read that
    // can be queued without sleeping goes on; the rest get EAGAIN, and
    // io_uring retries them from a worker, without the flag.
    let nowait = req.nowait();
    if nowait && !req.may_complete_later() {
        return Err(EAGAIN);
    }
    let inode = req.inode();
    // Keeps truncate and writes of the file out while the blocks are
    // mapped and read (a queued read's pin holds them from reuse after).
    let _shared = match nowait {
        true => inode.try_lock_shared().ok_or(EAGAIN)?,
        false => inode.lock_shared(),
    };
    let pos = u64::try_from(req.pos()).map_err(|_| EINVAL)?;
    let end = pos.saturating_add(count).min(inode.size() as u64);
    if pos >= end {
        return Ok(0);
    }
    // Dirty pages hold the newest data: on the device first.
    if !nowait {
        inode.write_back_range(pos as i64, (end - 1) as i64)?;
    } else if inode.range_needs_writeback(pos as i64, (end - 1) as i64) {
        return Err(EAGAIN);
    }
    if let Some(queued) = read_queued(req, inode, to, pos, end, count, nowait)? {
        return queued;
    }
    if nowait {
        return Err(EAGAIN);
    }
    let bs = u64::from(inode.info().block_size());
    let mut buf = TryVec::new();
    let (mut at, mut done) = (pos, 0u64);
    while at < end {
        match read_piece(inode, to, &mut buf, at, end, bs) {
            Ok(n) => {
                at += n;
                done += n;
            }
            Err(e) if done == 0 => return Err(e),
            Err(_) => break,
        }
    }
    req.set_pos(at as i64);
    req.accessed();
    Ok(done as isize)
}

/// A direct read from a block boundary, of at most a piece, of bytes
/// `pos..end` (before EOF; `count` the caller's length): the block map
/// taken under the core lock as for any read, then the bios read straight
/// into the caller's pages (pinned by the shim; holes zeroed now), and the
/// request ends when they are over, the read's pin on its blocks held
/// until then. An asynchronous request is queued for that end; a
/// synchronous one waits for it here. `None`: not such a request.
/// `Some(Err(EIOCBQUEUED))`: queued, the request no longer this call's.
/// With `nowait`, EAGAIN where it would sleep: on the core lock, for a
/// node not in the cache, or for data writes in flight.
fn read_queued(req: &Kiocb, inode: &INode, to: &IovIter, pos: u64, end: u64, count: u64, nowait: bool) -> Result<Option<Result<isize>>> {
    let info = inode.info();
    let bs = u64::from(info.block_size());
    // Any kind of request qualifies: an asynchronous one is queued, a
    // synchronous one waited for (O_DSYNC means nothing to a read).
    if pos % divisor(bs) != 0 || end - pos > PIECE {
        return Ok(None);
    }
    // Whole blocks up to EOF, but not past the caller's buffer: both are
    // multiples of the logical block size, so the least is too. Bytes of
    // the last block past EOF are zero on the device (data is written in
    // whole blocks, zero past EOF) and not counted in the result.
    let len = round_up(end - pos, bs).min(count);
    let mut map: TryVec<BlockRun> = TryVec::new();
    let (fb, nblocks) = (pos / divisor(bs), crate::store::div_ceil(len, bs));
    let (_, pin) = info.map_for_read(inode.subvol(), inode.ino(), fb, nblocks, &mut map, nowait)?;
    let runs = byte_runs(&map, bs, len)?;
    // A block just written back is read only once its data is there.
    let dev = info.data_device();
    if !nowait {
        dev.wait_for_writes();
    } else if dev.writes_in_flight() {
        return Err(EAGAIN);
    }
    req.accessed();
    req.set_pos(end as i64);
    let slot = pin.into_slot();
    // The shim pins the iter's pages for its bios, reads `runs` during the
    // call (checking each run's bounds), and on -EIOCBQUEUED keeps the
    // kiocb until its ki_complete, which the VFS allows as this call then
    // returns -EIOCBQUEUED; a synchronous kiocb it does not keep: it waits
    // for the bios and returns the result. It ends the hold count in
    // `slot` once in every case, while the request still holds the file
    // and so the FsInfo and its device's tracker.
    // SAFETY: the kiocb and iter are this read_iter call's, live for the
    // call; the tracker lives as long as the FsInfo; `slot` is the count
    // handed over (`IoPin::into_slot`).
    let rc = unsafe {
        b::ferrofs_dio_submit(
            dev.super_block(),
            req.as_ptr(),
            to.as_ptr(),
            runs.as_ptr(),
            runs.len(),
            (end - pos) as kernel::ffi::c_long,
            dev.tracker(),
            false,
            pos as i64,
            slot,
        )
    };
    if rc == EIOCBQUEUED.to_errno() {
        return Ok(Some(Err(EIOCBQUEUED)));
    }
    if rc >= 0 {
        // A synchronous request, all of it: the shim returns what the
        // request would complete with.
        return Ok(Some(Ok(rc as isize)));
    }
    req.set_pos(pos as i64);
    Err(Error::from_errno(rc))
}

/// The shim's byte runs for the block runs `map`, `len` bytes in all: a
/// hole in `map` reads as zeros, and so does what `map` does not reach (past
/// EOF); runs past `len` are left out.
fn byte_runs(map: &[BlockRun], bs: u64, len: u64) -> Result<TryVec<b::ferrofs_drun>> {
    let mut runs: TryVec<b::ferrofs_drun> = TryVec::try_with_capacity(map.len().saturating_add(1))?;
    let mut left = len;
    for run in map.iter() {
        if left == 0 {
            break;
        }
        let n = run.blocks.saturating_mul(bs).min(left);
        // A block inside the filesystem (checked by the map): the product fits.
        let disk = run.disk.map_or(DREAD_HOLE, |d| d * bs);
        runs.try_push(b::ferrofs_drun { disk, len: n })?;
        left -= n;
    }
    if left != 0 {
        runs.try_push(b::ferrofs_drun { disk: DREAD_HOLE, len: left })?;
    }
    Ok(runs)
}

/// Writes `data`, whole blocks from file byte `first` up to at most EOF,
/// over the file's own blocks in place and waits for it, when they qualify
/// as for `overwrite_queued` (`FsInfo::map_for_overwrite`): `false` (and
/// nothing written) when they do not.
fn overwrite_in_place(inode: Locked<'_>, first: u64, data: &[u8]) -> Result<bool> {
    let info = inode.info();
    let bs = u64::from(info.block_size());
    let dev = info.data_device();
    let Some(ticket) = dev.overwrite_begin() else { return Ok(false) };
    let mut map: TryVec<BlockRun> = TryVec::new();
    let blocks = data.len() as u64 / divisor(bs);
    let Some(_pin) = info.map_for_overwrite(inode.subvol(), inode.ino(), first / divisor(bs), blocks, &mut map, false)? else {
        return Ok(false);
    };
    let mut at = 0usize;
    for run in map.iter() {
        // Blocks inside the filesystem (checked by the map), covering
        // exactly `data`: the products fit.
        let (disk, n) = (run.disk.ok_or(EINVAL)?, (run.blocks * bs) as usize);
        dev.write_shared(disk * bs, data.get(at..at + n).ok_or(EINVAL)?)?;
        at += n;
    }
    ticket.written();
    Ok(true)
}

/// A hole in a queued read's runs (the shim's FERROFS_DREAD_HOLE).
const DREAD_HOLE: u64 = u64::MAX;

/// Reads the piece of `at..end` that starts in `at`'s block: the whole
/// blocks under it into `buf`, then its bytes to the caller. Returns the
/// bytes read; EFAULT when the caller's buffer took fewer.
fn read_piece(inode: &INode, to: &IovIter, buf: &mut TryVec<u8>, at: u64, end: u64, bs: u64) -> Result<u64> {
    let first = round_down(at, bs);
    let piece_end = end.min(first + PIECE);
    let blocks = bounce(buf, round_up(piece_end, bs) - first)?;
    read_blocks_into(inode, first, blocks)?;
    // Inside the buffer (at - first < bs, and piece_end is at most its end).
    let src = blocks.get((at - first) as usize..(piece_end - first) as usize).ok_or(EINVAL)?;
    if to.copy_to(src) < src.len() {
        return Err(EFAULT);
    }
    Ok(piece_end - at)
}

/// A direct write, under the inode lock as every write; then O_SYNC and
/// O_DSYNC make it durable (generic_write_sync, through fsync). An
/// asynchronous overwrite that can go in place is queued
/// (`overwrite_queued`); with IOCB_NOWAIT, only such a one goes on.
fn direct_write(req: &Kiocb, from: &IovIter) -> Result<isize> {
    let nowait = req.nowait();
    if nowait && !req.may_complete_later() {
        return Err(EAGAIN);
    }
    let inode = req.inode();
    let written = {
        let lock = match nowait {
            true => inode.try_lock().ok_or(EAGAIN)?,
            false => inode.lock(),
        };
        let count = req.write_checks(*lock, from)?;
        if count == 0 {
            return Ok(0);
        }
        // After the checks: O_APPEND moved the position to EOF.
        if req.dio_misaligned(from) {
            return Err(EINVAL);
        }
        // With IOCB_NOWAIT, EAGAIN when the times need an update.
        req.modified(*lock)?;
        if let Some(queued) = overwrite_queued(req, *lock, from, count as u64, nowait)? {
            return queued;
        }
        if nowait {
            return Err(EAGAIN);
        }
        write_pieces(req, *lock, from, count as u64)?
    };
    Ok(req.write_sync(written as isize))
}

/// An asynchronous direct write (io_uring, Linux AIO) of whole blocks
/// before EOF, at most a piece, onto blocks the file alone holds since
/// the last commit (`FsInfo::map_for_overwrite`): the bios write the
/// caller's pages (pinned by the shim) over those blocks in place, no
/// tree changes, and the request completes when they are over, the pin on
/// the blocks held until then. Pages of the range read into the cache
/// meanwhile are dropped before it completes; fsync and sync flush for
/// such data (`FsInfo::flush_overwrites`). `None`: not such a request
/// (the copy-on-write path takes it). With `nowait`, EAGAIN where it would
/// sleep: dirty pages in the range, the core lock, a node not cached.
fn overwrite_queued(req: &Kiocb, inode: Locked<'_>, from: &IovIter, count: u64, nowait: bool) -> Result<Option<Result<isize>>> {
    let info = inode.info();
    let bs = u64::from(info.block_size());
    let pos = u64::try_from(req.pos()).map_err(|_| EINVAL)?;
    let end = pos.checked_add(count).ok_or(EFBIG)?;
    if !req.may_complete_later() || pos % divisor(bs) != 0 || count % divisor(bs) != 0 || count > PIECE || end > inode.size() as u64 {
        return Ok(None);
    }
    // A dirty page's writeback would later put its older bytes back.
    if !nowait {
        drop_cache_before(inode, pos as i64, (end - 1) as i64)?;
    } else if inode.range_needs_writeback(pos as i64, (end - 1) as i64) {
        return Err(EAGAIN);
    }
    let dev = info.data_device();
    // Counted before the map, so a snapshot either waits for this write
    // or turns it away (copy-on-write) before it maps.
    let Some(ticket) = dev.overwrite_begin() else { return Ok(None) };
    let mut map: TryVec<BlockRun> = TryVec::new();
    let Some(pin) = info.map_for_overwrite(inode.subvol(), inode.ino(), pos / divisor(bs), count / divisor(bs), &mut map, nowait)? else {
        return Ok(None);
    };
    // The map covers exactly `count` bytes, all of them on the disk.
    let runs = byte_runs(&map, bs, count)?;
    if runs.iter().any(|r| r.disk == DREAD_HOLE) {
        return Err(EINVAL);
    }
    req.set_pos(end as i64);
    let slot = pin.into_slot();
    // The shim pins the iter's pages for its bios, reads `runs` during the
    // call (checking each run's bounds; the map covers exactly `count`
    // bytes), and on -EIOCBQUEUED keeps the kiocb until its ki_complete,
    // which the VFS allows as this call then returns -EIOCBQUEUED. It ends
    // the hold count in `slot` once in every case, while the request still
    // holds the file and so the FsInfo, whose device's tracker counts the
    // write; on -EIOCBQUEUED it ends the write's count there too.
    // SAFETY: the kiocb and iter are this write_iter call's, live for the
    // call; `slot` is the count handed over (`IoPin::into_slot`); the
    // tracker lives as long as the FsInfo.
    let rc = unsafe {
        b::ferrofs_dio_submit(
            dev.super_block(),
            req.as_ptr(),
            from.as_ptr(),
            runs.as_ptr(),
            runs.len(),
            count as kernel::ffi::c_long,
            dev.tracker(),
            true,
            pos as i64,
            slot,
        )
    };
    if rc == EIOCBQUEUED.to_errno() {
        ticket.handed_over();
        return Ok(Some(Err(EIOCBQUEUED)));
    }
    req.set_pos(pos as i64);
    Err(Error::from_errno(rc))
}

/// The VFS inode after a write of file data up to `end` that the core
/// stored (`Ok`, its attributes) or not (`Err`): out of space part way,
/// the core may have stored and grown the file by some of it, so the size
/// and blocks follow the core's. `size` is the size before the write.
fn follow_core(inode: Locked<'_>, size: u64, end: u64, stored: crate::error::Result<InodeAttr>) -> Result {
    match stored {
        Ok(attr) => inode.set_blocks(attr.blocks),
        Err(e) => {
            if let Ok(attr) = inode.with_core(|fs, sv| fs.getattr(sv, inode.ino())) {
                inode.set_blocks(attr.blocks);
                if attr.size > size {
                    inode.set_size(attr.size as i64);
                }
            }
            return Err(e.into());
        }
    }
    if end > size {
        inode.set_size(end as i64);
    }
    Ok(())
}

/// Writes back the dirty pages of bytes `first..=last` (their later
/// writeback would overwrite a direct write's data), then drops every
/// cached page of the range.
fn drop_cache_before(inode: Locked<'_>, first: i64, last: i64) -> Result {
    inode.write_back_range(first, last)?;
    // EBUSY: a page was dirtied again through a mapping meanwhile, racing
    // with this write as it may; the drop after the write retries it.
    match inode.invalidate_range(first, last) {
        Ok(()) => Ok(()),
        Err(e) if e == EBUSY => Ok(()),
        Err(e) => Err(e),
    }
}

/// The writing of `direct_write`: `count` bytes from `ki_pos`, in pieces,
/// with the page cache of the blocks touched dropped before and after.
fn write_pieces(req: &Kiocb, inode: Locked<'_>, from: &IovIter, count: u64) -> Result<u64> {
    let pos = u64::try_from(req.pos()).map_err(|_| EINVAL)?;
    let end = pos.checked_add(count).ok_or(EFBIG)?;
    let bs = u64::from(inode.info().block_size());
    // The whole blocks touched: partial ones are read back below.
    let (first, last) = (round_down(pos, bs) as i64, round_up(end, bs) as i64 - 1);
    drop_cache_before(inode, first, last)?;
    let mut buf = TryVec::new();
    let (mut at, mut done) = (pos, 0u64);
    let mut failed = None;
    while at < end {
        match write_piece(inode, from, &mut buf, at, end, bs) {
            Ok(n) => {
                at += n;
                done += n;
            }
            Err(e) => {
                failed = Some(e);
                break;
            }
        }
    }
    // A page read back by a fault during the write holds the old data.
    let _ = inode.invalidate_range(first, last);
    match failed {
        Some(e) if done == 0 => Err(e),
        _ => {
            req.set_pos(at as i64);
            Ok(done)
        }
    }
}

/// Writes the piece of `at..end` that starts in `at`'s block: the old
/// bytes of a partly covered first and last block read into `buf`, the
/// caller's bytes copied over them, and the whole blocks stored by the
/// copy-on-write data path (i_size grows after), or written over the
/// file's own blocks in place when they qualify (`overwrite_in_place`).
/// Returns the bytes written.
fn write_piece(inode: Locked<'_>, from: &IovIter, buf: &mut TryVec<u8>, at: u64, end: u64, bs: u64) -> Result<u64> {
    let first = round_down(at, bs);
    let piece_end = end.min(first + PIECE);
    let span_end = round_up(piece_end, bs);
    let size = inode.size() as u64;
    let blocks = bounce(buf, span_end - first)?;
    // A block wholly past EOF is not read: it is zero, as the buffer.
    if at % divisor(bs) != 0 && first < size {
        read_blocks_into(&inode, first, blocks.get_mut(..bs as usize).ok_or(EINVAL)?)?;
    }
    // The last block, unless read just above.
    let tail = span_end - bs;
    if piece_end % divisor(bs) != 0 && tail < size && (tail != first || at % divisor(bs) == 0) {
        read_blocks_into(&inode, tail, blocks.get_mut((tail - first) as usize..).ok_or(EINVAL)?)?;
    }
    let dst = blocks.get_mut((at - first) as usize..(piece_end - first) as usize).ok_or(EINVAL)?;
    if from.copy_from(dst) < dst.len() {
        return Err(EFAULT);
    }
    // The file's bytes in the last block end at the write or at EOF,
    // whichever is later; past them the block stays zero, as past EOF
    // anywhere, and the size the core sets is where they end.
    let data_end = piece_end.max(span_end.min(size));
    buf.truncate((data_end - first) as usize);
    if at % divisor(bs) == 0 && piece_end % divisor(bs) == 0 && piece_end <= size && overwrite_in_place(inode, first, buf)? {
        return Ok(piece_end - at);
    }
    let stored = write_file_data(&inode, first, DataBytes::Waited(buf));
    follow_core(inode, size, piece_end, stored)?;
    Ok(piece_end - at)
}

// SPDX-License-Identifier: GPL-2.0
//! The page cache of regular files: address_space_operations over the core.
//!
//! Reads fill folios from the block map the core gives, with the I/O
//! outside the core lock: read_folio waits for its one folio (`read_io`);
//! readahead maps the whole window at once and leaves bios in flight
//! straight into the folios, which end them (`read_window`); buffered writes
//! dirty folios, and writeback writes runs of contiguous dirty folios of up
//! to `BATCH` bytes to new blocks the core picks, outside the core lock
//! (`write_io`). The folio lock is always taken before the per-mount core
//! lock, never after.
//!
//! Space: each dirty folio holds one block promised by `FsInfo`, tagged on
//! the folio (`folio->private`), so write_begin can refuse with ENOSPC
//! before the data is accepted rather than lose it at writeback.

use super::bindings as b;
use super::cell::{zeroed, Vtable};
use super::device::{IoPin, KernelDevice};
use super::errno_of;
use super::inode::{INode, Locked};
use super::read_io::read_blocks_into;
use super::types::{from_result, Folio, NoFsScope};
use super::write_io::{write_file_data, DataBytes};
use crate::error::Result as CoreResult;
use crate::file_read::BlockRun;
use crate::mem::TryVec;
use crate::store::div_ceil;
use core::marker::PhantomData;
use core::ptr::NonNull;
use kernel::ffi::{c_int, c_uint, c_void};
use kernel::prelude::*;
use kernel::types::Opaque;

/// Most bytes one writeback trip hands to the core.
const BATCH: usize = 1 << 20;

pub(crate) static FILE_AOPS: Vtable<b::address_space_operations> = Vtable(b::address_space_operations {
    read_folio: Some(read_folio),
    readahead: Some(readahead),
    writepages: Some(writepages),
    dirty_folio: Some(dirty_folio),
    write_begin: Some(write_begin),
    write_end: Some(write_end),
    invalidate_folio: Some(invalidate_folio),
    release_folio: Some(release_folio),
    ..zeroed()
});

/// Reads a locked folio's contents from the core; zero past the end of the
/// file. Leaves the folio locked.
fn fill_folio(folio: &Folio) -> CoreResult<()> {
    let inode = folio.inode();
    let pos = folio.pos();
    folio.with_bytes(|bytes| read_blocks_into(inode, pos, bytes).map(drop))
}

/// `->read_folio`: fills one folio of a regular file from the core.
///
/// # Safety
/// Called by the page cache with `folio` locked and referenced, in the page
/// cache of a ferrofs regular file (the only inodes with `FILE_AOPS`).
/// locking.rst has the mapping's invalidate_lock held shared, but nothing
/// here relies on it: the folio lock keeps the folio in the mapping, so
/// `folio->mapping->host` is a live inode of a super_block whose FsInfo is
/// set. The folio is ours to fill and is unlocked here (`folio_end_read`)
/// whatever the result, as the operation requires. `_file` may be NULL and
/// is not used.
unsafe extern "C" fn read_folio(_file: *mut b::file, folio: *mut b::folio) -> c_int {
    // SAFETY: the page cache passes a locked, referenced folio of a ferrofs
    // regular file, ours until folio_end_read below.
    let f = unsafe { Folio::from_raw(folio) };
    let r = fill_folio(f);
    // SAFETY: our locked folio; marks it uptodate on success and unlocks it
    // either way (`f` is not used after this).
    unsafe { b::folio_end_read(folio, r.is_ok()) };
    from_result(|| Ok(r?))
}

/// `->readahead`: reads the whole window in one core call, then copies it
/// into the folios.
///
/// # Safety
/// Called by the page cache with `rac` a live readahead_control of the
/// mapping of a live ferrofs regular file, whose invalidate_lock is held
/// shared (locking.rst). The window's folios are already in the page cache,
/// locked and referenced by `rac`; each one `readahead_folio` hands out is
/// ours to fill and unlock (`folio_end_read`), and the VFS (read_pages)
/// unlocks and drops those left untaken, so returning early is allowed.
unsafe extern "C" fn readahead(rac: *mut b::readahead_control) {
    // SAFETY: the page cache passes a live readahead_control of a ferrofs
    // regular file's mapping, under its invalidate_lock, for the call.
    let rac = unsafe { Readahead::from_raw(rac) };
    read_window(rac);
}

/// A readahead request.
///
/// # Invariants
/// A live readahead_control of the page cache of a live ferrofs regular
/// file, whose invalidate_lock the page cache holds shared, for the
/// borrow; each folio it hands out is locked, stays in the page cache and
/// is ours to fill and end (folio_end_read) once.
#[repr(transparent)]
struct Readahead(Opaque<b::readahead_control>);

impl Readahead {
    /// Borrows a readahead_control as a `Readahead`.
    ///
    /// # Safety
    /// `ptr` is the readahead_control of a `->readahead` call in progress on
    /// a ferrofs regular file, for `'a`.
    unsafe fn from_raw<'a>(ptr: *mut b::readahead_control) -> &'a Self {
        // SAFETY: `Readahead` is a transparent wrapper of the C struct.
        // INVARIANT: the caller guarantees a live request of ours for 'a.
        unsafe { &*ptr.cast::<Self>() }
    }

    /// The file being read.
    fn inode(&self) -> &INode {
        // SAFETY: a live request (type invariant): its mapping's host is a
        // live ferrofs inode that outlives its page cache.
        unsafe { INode::from_raw(b::ferrofs_mapping_host(b::ferrofs_readahead_mapping(self.0.get()))) }
    }

    /// File offset and length of the window.
    fn window(&self) -> (u64, usize) {
        // SAFETY: a live request (type invariant).
        unsafe { (b::ferrofs_readahead_pos(self.0.get()) as u64, b::ferrofs_readahead_length(self.0.get())) }
    }

    /// The window's next folio, locked, or None at its end.
    fn next_folio(&self) -> Option<ReadFolio<'_>> {
        // SAFETY: a live request (type invariant); the folio comes back
        // locked, in our page cache, ours to end.
        let folio = unsafe { b::ferrofs_readahead_folio(self.0.get()) };
        if folio.is_null() {
            return None;
        }
        // SAFETY: as just said; it stays in the page cache while locked.
        // INVARIANT: locked, ours, not yet ended.
        Some(ReadFolio(unsafe { Folio::from_raw(folio) }))
    }
}

/// A folio readahead handed out: locked, to be filled and ended once.
///
/// # Invariants
/// `.0` is locked by this thread and not yet ended; `end` (or, failing
/// that, drop) ends it with folio_end_read, which unlocks it.
struct ReadFolio<'a>(&'a Folio);

impl ReadFolio<'_> {
    /// Marks the folio uptodate if `ok`, and unlocks it.
    fn end(self, ok: bool) {
        let p = self.0.as_ptr();
        core::mem::forget(self);
        // SAFETY: locked by us and not yet ended (type invariant); `self` is
        // gone, so nothing touches the folio afterwards.
        unsafe { b::folio_end_read(p, ok) };
    }
}

impl core::ops::Deref for ReadFolio<'_> {
    type Target = Folio;
    fn deref(&self) -> &Folio {
        self.0
    }
}

impl Drop for ReadFolio<'_> {
    fn drop(&mut self) {
        // SAFETY: locked by us and not yet ended (type invariant).
        unsafe { b::folio_end_read(self.0.as_ptr(), false) };
    }
}

/// Most folios one batch of folio reads holds: 1 MiB of 4 KiB folios,
/// the most one bio takes.
const READ_FOLIOS: usize = 256;

/// readahead's body. The whole window is mapped under the core lock at
/// once; then each stretch of folios lying one after the other on the
/// device goes out as bios straight into the folios, which the bios' end
/// marks uptodate and unlocks. So no buffer or copy is needed, and the
/// reader does not wait here: it waits on the folio it wants while the
/// rest of the window is still arriving (and the I/O of the next window,
/// started early by the page cache, overlaps its copying). Folios in holes
/// or past the end of file are zeroed here; the folio holding the end of
/// file goes in the same bio as the blocks before it (one request, and no
/// wait here), and that bio's end zeroes its tail, as the block's bytes
/// past the end are not known to be zeros. Returning early is allowed: the
/// VFS (read_pages) unlocks and drops the folios left untaken.
fn read_window(rac: &Readahead) {
    let inode = rac.inode();
    let info = inode.info();
    let bs = u64::from(info.block_size());
    let divisor = crate::store::divisor(bs);
    let (pos, len) = rac.window();
    let first = pos / divisor;
    let mut runs: TryVec<BlockRun> = TryVec::new();
    let Ok((size, pin)) = info.map_for_read(inode.subvol(), inode.ino(), first, div_ceil(len as u64, bs), &mut runs, false) else {
        // The folios are read one by one via read_folio, which reports.
        return;
    };
    let dev = info.data_device();
    // A block just mapped may still have its data write in flight.
    dev.wait_for_writes();
    let mut reads = FolioReads::new(dev, &pin, bs, (len as u64 / divisor) as usize);
    let mut map = RunCursor { runs: &runs, index: 0, start: first };
    while let Some(folio) = rac.next_folio() {
        let fpos = folio.pos();
        let in_file = size.saturating_sub(fpos);
        match map.block(fpos / divisor) {
            // Whole blocks before the end of file: read by the bios.
            Some(Some(disk)) if in_file >= bs => {
                if let Err(folio) = reads.push(disk * bs, folio) {
                    let ok = fill_folio(&folio).is_ok();
                    folio.end(ok);
                }
            }
            // The block holding the end of file: read with the blocks
            // before it, its tail zeroed once its read is in.
            Some(Some(disk)) => match reads.push(disk * bs, folio) {
                Ok(()) => reads.submit_trimmed(in_file as usize),
                // No room: the folios before it stay queued, whole.
                Err(folio) => {
                    let ok = fill_folio(&folio).is_ok();
                    folio.end(ok);
                }
            },
            // Holes, unwritten blocks and what lies past the end of file.
            Some(None) => {
                folio.zero(0, bs as usize);
                folio.end(true);
            }
            // Not in the map (the window moved): mapped again on its own.
            None => {
                let ok = fill_folio(&folio).is_ok();
                folio.end(ok);
            }
        }
    }
    reads.submit();
    drop(reads);
    // Each bio holds its blocks from reuse itself until its I/O is over,
    // counted in the pin's generation.
    drop(pin);
}

/// Walks a window's block map, file block by file block, forwards.
struct RunCursor<'a> {
    runs: &'a [BlockRun],
    /// The run holding `start`.
    index: usize,
    /// The first file block of `runs[index]`.
    start: u64,
}

impl RunCursor<'_> {
    /// Where file block `fb` is: `Some(Some(disk block))`, `Some(None)`
    /// for a hole or past the runs (which end at the end of file), `None`
    /// before the runs' start.
    fn block(&mut self, fb: u64) -> Option<Option<u64>> {
        loop {
            let off = fb.checked_sub(self.start)?;
            let Some(run) = self.runs.get(self.index) else { return Some(None) };
            if off < run.blocks {
                // Inside the run, which the map checked lies in the
                // filesystem.
                return Some(run.disk.map(|d| d + off));
            }
            self.start = self.start.saturating_add(run.blocks);
            self.index += 1;
        }
    }
}

/// Folios on their way to the device, one after the other on it, read
/// together once the stretch ends (`submit`).
///
/// # Invariants
/// Every pointer in `folios` is a locked, not uptodate folio of a
/// readahead window whose read is ours to end: it came from a `ReadFolio`,
/// whose duty the batch took over; the folio at index `i` goes to disk
/// byte `disk + i * bs`.
struct FolioReads<'a> {
    dev: &'a KernelDevice,
    /// The count that keeps the mapped blocks from reuse, in whose
    /// generation the bios count too.
    pin: &'a IoPin<'a>,
    bs: u64,
    disk: u64,
    folios: TryVec<*mut b::folio>,
}

impl<'a> FolioReads<'a> {
    /// A batch for a window of `window` folios, with room for them made
    /// up to `READ_FOLIOS` (more is asked for as needed; a folio without
    /// room is read in place).
    fn new(dev: &'a KernelDevice, pin: &'a IoPin<'a>, bs: u64, window: usize) -> Self {
        let mut folios = TryVec::new();
        let _ = folios.try_reserve(window.clamp(1, READ_FOLIOS));
        FolioReads { dev, pin, bs, disk: 0, folios }
    }

    /// Adds `folio`, to be read from disk byte `disk`, submitting the
    /// stretch before it first if `disk` does not follow it. Gives the
    /// folio back when there is no room for it.
    fn push<'f>(&mut self, disk: u64, folio: ReadFolio<'f>) -> Result<(), ReadFolio<'f>> {
        let len = self.folios.len() as u64;
        if len > 0 && (len as usize >= READ_FOLIOS || self.disk.checked_add(len * self.bs) != Some(disk)) {
            self.submit();
        }
        if self.folios.try_push(folio.as_ptr()).is_err() {
            return Err(folio);
        }
        if self.folios.len() == 1 {
            self.disk = disk;
        }
        // INVARIANT: the folio's read is the batch's to end now.
        core::mem::forget(folio);
        Ok(())
    }

    /// Sends the stretch to the device; a folio the device refused (a
    /// range outside it) is ended not uptodate, so a reader reads it again
    /// through read_folio and sees the error.
    fn submit(&mut self) {
        self.submit_trimmed(usize::MAX);
    }

    /// As `submit`, but only the first `last_valid` bytes of the last
    /// folio are kept (the end of file lies in it): the bio's end zeroes
    /// the rest, as the block's bytes past the end are not known to be
    /// zeros on the device.
    fn submit_trimmed(&mut self, last_valid: usize) {
        if self.folios.is_empty() {
            return;
        }
        // SAFETY: each folio is locked, not uptodate and ours to end (type
        // invariant); those submitted are the bios' from here on, and only
        // the rest are touched below.
        let sent = unsafe { self.dev.read_folios_in_flight(self.disk, &self.folios, self.pin, last_valid) };
        for &folio in self.folios.get(sent..).unwrap_or(&[]) {
            // SAFETY: still ours to end (type invariant; not submitted).
            unsafe { b::folio_end_read(folio, false) };
        }
        self.folios.clear();
    }
}

impl Drop for FolioReads<'_> {
    fn drop(&mut self) {
        self.submit();
    }
}

/// Runs of contiguous dirty folios on their way to the core.
///
/// # Invariants
/// Every pointer in `folios` is a folio of the page cache being written
/// back, under writeback this writepages started and has not ended, and
/// unlocked: it came from an `UnderWriteback`, whose duty to end the
/// writeback the batch took over.
struct Batch<'a> {
    /// File offset of `data[0]`.
    pos: u64,
    /// The bytes of the queued folios. Each batch has its own buffer, as
    /// the buffer goes with the batch's data write, which runs on after
    /// the batch is done (`write_io`).
    data: TryVec<u8>,
    /// The most bytes `data` was sized for.
    room: usize,
    /// Folios under writeback whose bytes are in `data`.
    folios: TryVec<*mut b::folio>,
    _folio: PhantomData<&'a Folio>,
}

impl<'a> Batch<'a> {
    /// Starts a new batch at file offset `pos` of a file of `isize` bytes:
    /// a buffer for what is left of the file, up to `BATCH` bytes. When it
    /// cannot be had, the first folio's copy fails and reports ENOMEM.
    fn start(&mut self, pos: u64, isize: u64) {
        self.pos = pos;
        let left = isize.saturating_sub(pos);
        let room = usize::try_from(left).unwrap_or(BATCH).min(BATCH);
        let room = room.next_multiple_of(kernel::page::PAGE_SIZE).min(BATCH);
        self.data = TryVec::try_with_capacity(room).unwrap_or_default();
        self.room = room;
    }

    /// Whether a folio of `size` bytes at `pos` extends the batch.
    fn joins(&self, pos: u64, size: usize) -> bool {
        !self.folios.is_empty() && self.pos + self.data.len() as u64 == pos && self.data.len() + size <= self.room
    }

    /// Takes over ending `folio`'s writeback; gives it back if it cannot be
    /// queued.
    fn queue(&mut self, folio: UnderWriteback<'a>) -> Result<(), UnderWriteback<'a>> {
        if self.folios.try_push(folio.0.as_ptr()).is_err() {
            return Err(folio);
        }
        // INVARIANT: the batch now ends the folio's writeback (in `flush`).
        core::mem::forget(folio);
        Ok(())
    }

    /// Hands the batch to the core and ends writeback of its folios once
    /// their blocks are mapped; the data write may still be in flight
    /// (`write_io`). `inode` is the file being written back.
    fn flush(&mut self, inode: &INode) -> c_int {
        if self.folios.is_empty() {
            return 0;
        }
        let data = core::mem::take(&mut self.data);
        let r = write_file_data(inode, self.pos, DataBytes::InFlight(data));
        let rc = match r {
            Ok(attr) => {
                inode.set_blocks(attr.blocks);
                0
            }
            Err(e) => {
                let errno = errno_of(e).to_errno();
                // fsync will report it.
                inode.set_mapping_error(errno);
                errno
            }
        };
        for &folio in self.folios.iter() {
            // SAFETY: under writeback started by us and not yet ended (type
            // invariant); the pointer is dropped from the batch just below.
            unsafe { b::folio_end_writeback(folio) };
        }
        self.folios.clear();
        rc
    }
}

/// A `->writepages` call in progress: the page cache being written back
/// and writeback_iter's state.
///
/// # Invariants
/// For `'a`: `mapping` is the page cache of a live ferrofs regular file and
/// `wbc` its live writeback_control, and this thread holds no folio lock of
/// `mapping` except that of the folio `next` last handed out, until it is
/// unlocked. `prev` is NULL or the folio `next` last handed out, and
/// `error` is that folio's result, as writeback_iter wants them passed
/// back.
struct Writeback<'a> {
    mapping: *mut b::address_space,
    wbc: *mut b::writeback_control,
    prev: *mut b::folio,
    error: c_int,
    _inode: PhantomData<&'a INode>,
}

impl<'a> Writeback<'a> {
    /// Starts a writeback of `mapping`.
    ///
    /// # Safety
    /// `mapping` is the page cache of a ferrofs regular file whose inode
    /// stays live for `'a`, `wbc` a writeback_control for it live for `'a`,
    /// and the caller holds no folio lock of `mapping`.
    unsafe fn from_raw(mapping: *mut b::address_space, wbc: *mut b::writeback_control) -> Self {
        // INVARIANT: as the caller guarantees; no folio handed out yet.
        Writeback { mapping, wbc, prev: core::ptr::null_mut(), error: 0, _inode: PhantomData }
    }

    /// The file being written back.
    fn inode(&self) -> &'a INode {
        // SAFETY: a live mapping's host is its live ferrofs inode (type
        // invariant), live for 'a.
        unsafe { INode::from_raw(b::ferrofs_mapping_host(self.mapping)) }
    }

    /// The next folio to write, locked with its dirty bit cleared for I/O,
    /// or None at the end. The previous one goes back to writeback_iter
    /// with its result (0 unless `fail` said otherwise).
    fn next(&mut self) -> Option<WbFolio<'_, 'a>> {
        // The previous folio is no longer locked by us: the `WbFolio` that
        // held it borrowed `self` and is gone.
        // SAFETY: a live mapping and writeback_control, with `prev` and
        // `error` kept by writeback_iter's protocol (type invariants).
        let folio = unsafe { b::writeback_iter(self.mapping, self.wbc, self.prev, &mut self.error) };
        // INVARIANT: `folio` is now the one last handed out.
        self.prev = folio;
        if folio.is_null() {
            return None;
        }
        self.error = 0;
        // INVARIANT: locked by this thread, ours to unlock.
        // SAFETY: writeback_iter returns a referenced folio of `mapping`,
        // locked for us, so it stays in the page cache while we hold it.
        let folio = unsafe { Folio::from_raw(folio) };
        Some(WbFolio { folio, _iter: PhantomData })
    }

    /// Records `errno` as the result of the folio `next` last handed out.
    fn fail(&mut self, errno: c_int) {
        self.error = errno;
    }

    /// writeback_iter's final result, once `next` returned None.
    fn result(&self) -> c_int {
        self.error
    }
}

/// A folio writeback_iter handed out: locked by this thread, with its dirty
/// bit cleared for I/O.
///
/// # Invariants
/// `folio` is locked by this thread until this value is consumed or
/// dropped, which unlocks it.
struct WbFolio<'w, 'a> {
    folio: &'a Folio,
    _iter: PhantomData<&'w mut Writeback<'a>>,
}

impl<'a> WbFolio<'_, 'a> {
    /// Unlocks the folio without writing it.
    fn unlock(self) {
        drop(self);
    }

    /// Starts the folio's writeback and unlocks it.
    fn start_writeback(self) -> UnderWriteback<'a> {
        // SAFETY: locked by this thread (type invariant), dirty bit cleared
        // by writeback_iter.
        unsafe { b::ferrofs_folio_start_writeback(self.folio.as_ptr()) };
        let folio = self.folio;
        // Unlocks it.
        drop(self);
        // INVARIANT: under writeback just started by us, now unlocked.
        UnderWriteback(folio)
    }
}

impl core::ops::Deref for WbFolio<'_, '_> {
    type Target = Folio;
    fn deref(&self) -> &Folio {
        self.folio
    }
}

impl Drop for WbFolio<'_, '_> {
    fn drop(&mut self) {
        // SAFETY: locked by this thread (type invariant); not used after.
        unsafe { b::folio_unlock(self.folio.as_ptr()) };
    }
}

/// A folio under writeback this thread started, unlocked; its contents are
/// not touched any more. Dropping it ends the writeback.
///
/// # Invariants
/// `.0` is under writeback started by this writepages and not yet ended.
struct UnderWriteback<'a>(&'a Folio);

impl Drop for UnderWriteback<'_> {
    fn drop(&mut self) {
        // SAFETY: under writeback started by us and not yet ended (type
        // invariant); this ends it once.
        unsafe { b::folio_end_writeback(self.0.as_ptr()) };
    }
}

/// `->writepages`: hands runs of contiguous dirty folios to the core.
///
/// # Safety
/// Called through do_writepages (flusher threads, sync, fsync,
/// filemap_write_and_wait_range) with `mapping` the page cache of a
/// ferrofs regular file whose inode the caller keeps live, and `wbc` its
/// live writeback_control. The caller holds no folio lock of `mapping`
/// (each folio is locked by `writeback_iter`, which returns it locked with
/// its dirty bit cleared for I/O) and may or may not hold the inode's
/// i_rwsem, so nothing here takes it. Every folio is unlocked after
/// `folio_start_writeback`, and all writeback started here is ended before
/// returning.
unsafe extern "C" fn writepages(mapping: *mut b::address_space, wbc: *mut b::writeback_control) -> c_int {
    // SAFETY: do_writepages passes the page cache of a ferrofs regular file
    // whose inode it keeps live, and its live writeback_control, for the
    // call, holding no folio lock of the mapping.
    let mut wb = unsafe { Writeback::from_raw(mapping, wbc) };
    write_folios(&mut wb)
}

/// writepages' body: writes every folio writeback_iter hands out, in
/// batches of contiguous runs; returns 0 or the first negative errno.
fn write_folios(wb: &mut Writeback<'_>) -> c_int {
    let inode = wb.inode();
    let info = inode.info();
    // Nothing here may wait for writeback to end: reclaim must not enter
    // the filesystem, which could wait on the folios this batch holds.
    let _nofs = NoFsScope::enter();
    let Ok(folios) = TryVec::try_with_capacity(BATCH >> 12) else {
        return ENOMEM.to_errno();
    };
    let mut batch = Batch { pos: 0, data: TryVec::new(), room: 0, folios, _folio: PhantomData };
    let mut first_error = 0;
    loop {
        let Some(folio) = wb.next() else { break };
        let (pos, size, isize) = (folio.pos(), folio.size(), inode.size() as u64);
        if pos >= isize {
            // Past EOF: a truncate is removing it.
            if folio.unreserve() {
                info.release_dirty();
            }
            folio.unlock();
            continue;
        }
        let len = (isize - pos).min(size as u64) as usize;
        if !batch.joins(pos, size) {
            let rc = batch.flush(inode);
            if first_error == 0 {
                first_error = rc;
            }
            batch.start(pos, isize);
        }
        // Bytes past EOF never reach the disk and are zero in the cache, as
        // a later extension must read zeros there.
        if len < size {
            folio.zero(len, size);
        }
        let copied = folio.with_bytes(|bytes| bytes.get(..len).map(|src| batch.data.try_extend_from_slice(src)));
        if folio.unreserve() {
            info.release_dirty();
        }
        let folio = folio.start_writeback();
        let queued = if matches!(copied, Some(Ok(()))) { batch.queue(folio) } else { Err(folio) };
        if let Err(folio) = queued {
            batch.data.truncate(batch.data.len().saturating_sub(len));
            inode.set_mapping_error(ENOMEM.to_errno());
            // Ends its writeback.
            drop(folio);
            wb.fail(ENOMEM.to_errno());
        }
        if len < size {
            // EOF: nothing can follow in this batch.
            let rc = batch.flush(inode);
            if first_error == 0 {
                first_error = rc;
            }
        }
    }
    let rc = batch.flush(inode);
    [first_error, rc, wb.result()].into_iter().find(|&e| e != 0).unwrap_or(0)
}

/// A folio being marked dirty (`->dirty_folio`), and its mapping.
///
/// Weaker than `Folio`: the folio may be unlocked.
///
/// # Invariants
/// For `'a`: `folio` is a live folio of `mapping`, the page cache of a live
/// ferrofs regular file, and cannot be truncated out of it, because the
/// caller holds the folio lock or found the folio mapped under the page
/// table lock; so `mapping->host` stays live. The folio lock may not be
/// held, so the folio's contents are not ours, and the caller may hold
/// spinlocks, so nothing done through this value may sleep.
struct DirtyingFolio<'a> {
    mapping: *mut b::address_space,
    folio: *mut b::folio,
    _folio: PhantomData<&'a Folio>,
}

impl DirtyingFolio<'_> {
    /// Borrows the arguments of a `->dirty_folio` call.
    ///
    /// # Safety
    /// `folio` is a folio of `mapping`, the page cache of a ferrofs regular
    /// file, that the caller keeps from being truncated (folio lock or page
    /// table lock) for `'a`.
    unsafe fn from_raw(mapping: *mut b::address_space, folio: *mut b::folio) -> Self {
        // INVARIANT: as the caller guarantees.
        DirtyingFolio { mapping, folio, _folio: PhantomData }
    }

    /// The file whose page cache holds the folio.
    fn inode(&self) -> &INode {
        // SAFETY: the folio cannot leave `mapping` (type invariant), so its
        // host, a live ferrofs inode, outlives the borrow.
        unsafe { INode::from_raw(b::ferrofs_mapping_host(self.mapping)) }
    }

    /// Tags the folio with a promised block (`folio->private`) unless it
    /// has one; true if it was tagged now.
    fn reserve(&self) -> bool {
        // SAFETY: a live folio (type invariant); the shim's test and
        // folio_attach_private (a reference and a flag bit) do not sleep and
        // do not touch the folio's contents.
        unsafe { b::ferrofs_folio_reserve(self.folio) }
    }

    /// Marks the folio dirty and tags it dirty in the mapping
    /// (filemap_dirty_folio); true if it was clean.
    fn mark_dirty(&self) -> bool {
        // SAFETY: a folio of `mapping` kept in it (type invariant), which is
        // what filemap_dirty_folio needs; it does not sleep.
        unsafe { b::filemap_dirty_folio(self.mapping, self.folio) }
    }
}

/// `->dirty_folio`: tags the folio with one promised block (if it has none
/// yet), then marks it dirty.
///
/// # Safety
/// Called when `folio`, a folio of `mapping` (the page cache of a ferrofs
/// regular file), is marked dirty. The caller holds the folio lock or found
/// the folio under the page table lock, so it cannot be truncated and
/// `mapping->host` stays live (locking.rst). The caller may hold spinlocks,
/// so this must not sleep: the tag (`folio_attach_private`), the atomic
/// count and filemap_dirty_folio do not.
unsafe extern "C" fn dirty_folio(mapping: *mut b::address_space, folio: *mut b::folio) -> bool {
    // SAFETY: the VM passes a folio of our mapping that it keeps from being
    // truncated (folio lock or page table lock, locking.rst) for the call.
    let folio = unsafe { DirtyingFolio::from_raw(mapping, folio) };
    mark_folio_dirty(&folio)
}

/// dirty_folio's body; must not sleep.
fn mark_folio_dirty(folio: &DirtyingFolio<'_>) -> bool {
    if folio.reserve() {
        folio.inode().info().reserve_dirty();
    }
    folio.mark_dirty()
}

/// `->invalidate_folio`: gives back the block promised to a folio that a
/// truncate, hole punch or eviction removes whole.
///
/// # Safety
/// Called with `folio` locked (locking.rst) and still attached to the page
/// cache of a ferrofs regular file (`folio->mapping` is cleared only after
/// this returns), `offset..offset + len` the part of it being invalidated.
/// The inode may be being evicted (truncate_inode_pages_final), but its
/// memory and its super_block's FsInfo outlive the call.
unsafe extern "C" fn invalidate_folio(folio: *mut b::folio, offset: usize, len: usize) {
    // SAFETY: the VFS passes a locked folio still in the page cache of a
    // ferrofs regular file, whose inode memory outlives the call.
    let folio = unsafe { Folio::from_raw(folio) };
    if offset == 0 && len == folio.size() && folio.unreserve() {
        folio.inode().info().release_dirty();
    }
}

/// `->release_folio`: the page cache is about to let go of `folio`; gives
/// back its promised block if it still holds one, and always agrees.
///
/// # Safety
/// Called by filemap_release_folio with `folio` locked and not under
/// writeback (locking.rst), `folio->mapping` the page cache of a live
/// ferrofs regular file. locking.rst allows a dirty folio here (reclaim
/// offers only clean ones; invalidate_inode_pages2 can offer a dirty one):
/// its tag and promise are dropped all the same.
unsafe extern "C" fn release_folio(folio: *mut b::folio, _gfp: b::gfp_t) -> bool {
    // SAFETY: filemap_release_folio passes a locked folio of a live ferrofs
    // regular file's page cache, for the call.
    let folio = unsafe { Folio::from_raw(folio) };
    // A clean folio holds no promise any more, so the tag can go.
    if folio.unreserve() {
        folio.inode().info().release_dirty();
    }
    true
}

/// Refuses a write that would dirty one more folio when the promised blocks
/// would no longer fit; first writes this file back and commits, which
/// turns promises into real blocks and frees the blocks they replaced. No
/// folio of the file may be locked by us.
fn reserve_room(inode: &INode) -> Result {
    let info = inode.info();
    if info.room_for_one_more() {
        return Ok(());
    }
    // No folio lock is held, so writeback of this mapping cannot wait on
    // us; its result is not needed (the commit and the check decide).
    let _ = inode.write_back_all();
    info.commit_or_fail()?;
    if info.room_for_one_more() {
        Ok(())
    } else {
        Err(ENOSPC)
    }
}

/// The page cache of a regular file during a buffered write.
///
/// # Invariants
/// `mapping` is the page cache of `inode`, a live ferrofs regular file
/// whose i_rwsem this thread holds (generic_perform_write, between
/// write_begin and write_end), for `'a`.
struct WriteMapping<'a> {
    mapping: *mut b::address_space,
    inode: Locked<'a>,
}

impl<'a> WriteMapping<'a> {
    /// Wraps the mapping of a buffered write.
    ///
    /// # Safety
    /// `mapping` is the page cache of a live ferrofs regular file whose
    /// i_rwsem the caller's write holds for `'a`.
    unsafe fn from_raw(mapping: *mut b::address_space) -> Self {
        // SAFETY: a live mapping's host is its live inode; the write holds
        // its i_rwsem (contract).
        // INVARIANT: as the contract says.
        unsafe { WriteMapping { mapping, inode: Locked::assume(INode::from_raw(b::ferrofs_mapping_host(mapping))) } }
    }

    /// The locked, referenced folio at `pos`, created if missing. No
    /// folio of the mapping may be locked by us.
    fn grab(&self, pos: i64) -> Result<OwnedFolio> {
        // SAFETY: a live mapping of ours (type invariant).
        let folio = unsafe { b::ferrofs_write_begin_folio(self.mapping, pos) };
        // SAFETY: pointer classification only.
        match unsafe { b::ferrofs_ptr_err(folio.cast()) } {
            // SAFETY: a folio of our page cache, locked and referenced for us.
            0 => Ok(unsafe { OwnedFolio::from_raw(folio) }),
            err => Err(Error::from_errno(err as c_int)),
        }
    }
}

/// A folio this thread has locked, with a reference it owns.
///
/// # Invariants
/// `.0` is a folio of a ferrofs regular file's page cache, locked by this
/// thread, with one reference owned by this value; dropping it unlocks the
/// folio and drops the reference.
struct OwnedFolio(NonNull<b::folio>);

impl OwnedFolio {
    /// Takes over a locked folio and one reference to it.
    ///
    /// # Safety
    /// `ptr` is a folio of a ferrofs regular file's page cache, locked by
    /// this thread, whose reference the caller hands over.
    unsafe fn from_raw(ptr: *mut b::folio) -> Self {
        // SAFETY: a live folio is not NULL (contract).
        // INVARIANT: the caller hands over the lock and the reference.
        OwnedFolio(unsafe { NonNull::new_unchecked(ptr) })
    }

    /// Hands the lock and the reference to the caller (the VFS).
    fn into_raw(self) -> *mut b::folio {
        let p = self.0.as_ptr();
        core::mem::forget(self);
        p
    }

    /// Marks the folio's contents current.
    fn mark_uptodate(&self) {
        // SAFETY: our locked folio (type invariant).
        unsafe { b::ferrofs_folio_mark_uptodate(self.0.as_ptr()) }
    }

    /// Marks the folio dirty (through `dirty_folio`).
    fn mark_dirty(&self) {
        // SAFETY: our locked folio (type invariant).
        unsafe { b::folio_mark_dirty(self.0.as_ptr()) };
    }

    /// Whether the folio holds its file's current data.
    fn uptodate(&self) -> bool {
        // SAFETY: our locked folio (type invariant).
        unsafe { b::ferrofs_folio_uptodate(self.0.as_ptr()) }
    }

    /// Whether the folio carries the tag of a promised block.
    fn reserved(&self) -> bool {
        // SAFETY: our locked folio (type invariant), which serialises its tag.
        unsafe { b::ferrofs_folio_reserved(self.0.as_ptr()) }
    }
}

impl core::ops::Deref for OwnedFolio {
    type Target = Folio;
    fn deref(&self) -> &Folio {
        // SAFETY: a locked, referenced folio of ours (type invariant), for
        // as long as this value lives.
        unsafe { Folio::from_raw(self.0.as_ptr()) }
    }
}

impl Drop for OwnedFolio {
    fn drop(&mut self) {
        // SAFETY: we hold the lock and the reference (type invariant) and
        // give both back.
        unsafe {
            b::folio_unlock(self.0.as_ptr());
            b::ferrofs_folio_put(self.0.as_ptr());
        }
    }
}

/// `->write_begin`: finds or creates the folio at `pos`, locked, after
/// making sure a block can be promised for it, and reads in the bytes the
/// write does not cover.
///
/// # Safety
/// Called by generic_perform_write with the i_rwsem of `mapping->host` (a
/// live ferrofs regular file) held exclusively (locking.rst) and no folio of
/// `mapping` locked by the caller, which lets `reserve_room` write the file
/// back; `pos..pos + len` lies within one page, and `foliop` is writable.
/// On success `*foliop` is a locked folio holding a reference of ours,
/// which the VFS passes back to `write_end`. `_file` may be NULL and
/// `_fsdata` is not used.
unsafe extern "C" fn write_begin(
    _file: *mut b::file,
    mapping: *mut b::address_space,
    pos: i64,
    len: c_uint,
    foliop: *mut *mut b::folio,
    _fsdata: *mut *mut c_void,
) -> c_int {
    // SAFETY: generic_perform_write passes the page cache of a live ferrofs
    // regular file whose i_rwsem it holds, for the call.
    let w = unsafe { WriteMapping::from_raw(mapping) };
    from_result(|| {
        let folio = begin_write(&w, pos, len)?;
        // SAFETY: `foliop` is writable; the VFS takes over the folio's lock
        // and reference and passes them back to write_end.
        unsafe { *foliop = folio.into_raw() };
        Ok(())
    })
}

/// write_begin's body: the locked folio at `pos`, holding a promised block,
/// and with the bytes the write of `len` does not cover read in.
fn begin_write(w: &WriteMapping<'_>, pos: i64, len: c_uint) -> Result<OwnedFolio> {
    if w.inode.info().is_shut_down() {
        return Err(EIO);
    }
    // Before the page cache takes the data, which writeback could not
    // store (a file opened for writing before its subvolume became
    // read-only).
    w.inode.subvol().check_writable()?;
    let mut folio = w.grab(pos)?;
    if !folio.reserved() {
        // Check for space without the folio: making room writes this file
        // back, which locks its folios. The folio is looked up afresh
        // afterwards, as a truncate may have removed it meanwhile.
        drop(folio);
        reserve_room(&w.inode)?;
        folio = w.grab(pos)?;
    }
    let (fpos, size) = (folio.pos() as i64, folio.size());
    let whole = pos == fpos && len as usize == size;
    if !folio.uptodate() && !whole {
        if fpos >= w.inode.size() {
            // Wholly past EOF: nothing to read, the rest reads as zero.
            folio.zero(0, size);
        } else {
            fill_folio(&folio)?;
        }
        folio.mark_uptodate();
    }
    Ok(folio)
}

/// `->write_end`: accepts the bytes copied into the folio, grows i_size,
/// dirties the folio, and unlocks and releases it.
///
/// # Safety
/// Called after a successful `write_begin` for the same `mapping`, `pos` and
/// `len`, with `folio` the locked folio it returned (and its reference) and
/// `copied <= len` bytes copied in; the i_rwsem of the host is still held
/// exclusively (locking.rst), which serialises the i_size update.
unsafe extern "C" fn write_end(
    _file: *mut b::file,
    mapping: *mut b::address_space,
    pos: i64,
    len: c_uint,
    copied: c_uint,
    folio: *mut b::folio,
    _fsdata: *mut c_void,
) -> c_int {
    // SAFETY: the VFS passes back the folio write_begin returned, locked and
    // with our reference, and the host's i_rwsem is still held.
    let (w, folio) = unsafe { (WriteMapping::from_raw(mapping), OwnedFolio::from_raw(folio)) };
    end_write(&w, folio, pos, len, copied) as c_int
}

/// write_end's body: the bytes taken; the folio is unlocked and released.
fn end_write(w: &WriteMapping<'_>, folio: OwnedFolio, pos: i64, len: c_uint, copied: c_uint) -> c_uint {
    let mut copied = copied;
    if !folio.uptodate() {
        // Only a whole-folio write skips the read; a short copy into it
        // leaves stale bytes, so take none of it and let the VFS retry.
        if copied < len {
            copied = 0;
        } else {
            folio.mark_uptodate();
        }
    }
    if copied > 0 {
        let end = pos + copied as i64;
        if end > w.inode.size() {
            w.inode.set_size(end);
        }
        folio.mark_dirty();
    }
    copied
}

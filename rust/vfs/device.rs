// SPDX-License-Identifier: GPL-2.0
//! The core's `BlockDevice` over the mounted block device: bios straight
//! from and to the core's buffers (shim `ferrofs_bdev_io`), so a run of
//! blocks the core reads or writes at once goes out as one large bio; and
//! the core's one read ahead (`BlockDevice::read_ahead`), whose bios run
//! while the core goes on (shim `ferrofs_aread_*`); and batches of reads
//! submitted together (`BlockDevice::read_pieces`, shim
//! `ferrofs_bdev_read_pieces`); and writeback's data writes, left in flight
//! (`write_in_flight`, shim `ferrofs_dwrite_*`), which every flush and
//! every read, and every write of the core, first waits for (`settle`): so
//! nothing reads or rewrites a block whose data is still on its way, and no
//! flush misses a write submitted before it. The same tracker counts the
//! in-place direct writes that have ended and which of them a flush
//! covered (`overwrites_unflushed`), as no fsync record names their data.
//! And it counts every I/O outside the core lock on blocks mapped under it
//! in its *hold generation* (`pin_io`, `hold_advance`), which tells the
//! core when the blocks it freed meanwhile may be reused (`crate::space`).

use super::bindings as b;
use crate::device::BlockDevice;
use crate::error::{Error, Result};
use crate::mem::TryVec;
use core::ptr::NonNull;

/// The most bytes of data writes left in flight: a writer past it waits.
const WRITES_IN_FLIGHT_MAX: usize = 16 << 20;

/// The block device under a mounted super_block.
///
/// # Invariants
/// `writes` is a live tracker of this super_block's data writes in flight,
/// one of whose references this device holds.
pub(crate) struct KernelDevice {
    sb: *mut b::super_block,
    size: u64,
    /// The read ahead the core started, if any.
    ahead: Option<ReadAhead>,
    /// Data writes in flight, shared by every handle on the device.
    writes: NonNull<b::ferrofs_dwrites>,
}

// SAFETY: the super_block outlives the device: the device lives in the
// FsInfo hanging off that super_block and is dropped in put_super/kill_sb,
// before the super_block goes away. Bios may be submitted from any task.
unsafe impl Send for KernelDevice {}
// SAFETY: `&self` gives only `read_shared`, `read_pieces_shared`,
// `write_shared` and the data writes in flight, which submit bios and wait
// on their own stack or on the tracker (atomics and a wait queue); the
// block layer takes bios from many tasks at once. `sb`, `size` and `writes` never change after `new`;
// `ahead` is only reached through `&mut self`.
unsafe impl Sync for KernelDevice {}

impl KernelDevice {
    /// `None` when there is no memory for its tracker.
    ///
    /// # Safety
    /// `sb` is a live super_block with its block device open, and it
    /// outlives the returned device.
    pub(crate) unsafe fn new(sb: *mut b::super_block) -> Option<Self> {
        // SAFETY: `sb` is live and has its block device open (caller).
        let size = unsafe { b::ferrofs_bdev_bytes(sb) };
        // SAFETY: allocates a tracker; no argument.
        let writes = NonNull::new(unsafe { b::ferrofs_dwrites_new() })?;
        // INVARIANT: the new tracker's one reference is this device's.
        Some(KernelDevice { sb, size, ahead: None, writes })
    }

    /// A second handle on the same device, for file data read and written
    /// outside the core lock; it lives in the same FsInfo and shares the
    /// data writes in flight.
    pub(crate) fn duplicate(&self) -> Self {
        // SAFETY: `writes` is live (type invariant); the new handle holds
        // the reference taken here.
        let writes = unsafe { NonNull::new_unchecked(b::ferrofs_dwrites_get(self.writes.as_ptr())) };
        KernelDevice { sb: self.sb, size: self.size, ahead: None, writes }
    }

    /// Fills `buf` (sector-aligned memory, a whole number of sectors) from
    /// byte `offset`, without the core: many tasks may read at once.
    pub(crate) fn read_shared(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        self.wait_for_writes();
        self.io(offset, buf.as_mut_ptr(), buf.len(), false, false)
    }

    /// Writes `pieces` of `data` (whole sectors: each a disk byte offset,
    /// and the range of `data` that goes there) and returns without
    /// waiting; the write owns `data` until its I/O is over. An error means
    /// nothing was submitted; a failure of the I/O itself shows at the next
    /// `settle`. The blocks must be ones nothing else writes or reads
    /// before a settle (`crate::data_write`).
    pub(crate) fn write_in_flight(&self, data: TryVec<u8>, pieces: &[DataPiece]) -> Result<()> {
        let (ptr, len) = data.into_kvmalloc();
        let pieces_ptr = pieces.as_ptr().cast::<b::ferrofs_dpiece>();
        // SAFETY: `sb` is live with an open device and `writes` is live
        // (type invariants); `ptr` is null or a kvmalloc'd buffer of at
        // least `len` bytes that the shim takes over; `DataPiece` has the
        // layout of `ferrofs_dpiece` and the slice holds `pieces.len()` of
        // them, read before the call returns. The shim checks alignment
        // and ranges.
        let rc = unsafe { b::ferrofs_dwrite_submit(self.sb, self.writes.as_ptr(), ptr.cast(), len, pieces_ptr, pieces.len()) };
        match rc {
            0 => Ok(()),
            rc if rc == -(crate::error::errno::EINVAL) => Err(Error::Bug("data write not in whole sectors within the device")),
            _ => Err(Error::Io),
        }
    }

    /// Waits until every data write submitted before the call has ended
    /// (later ones may still be in flight, so a streaming writer never
    /// holds a flush up); `Io` once any of them ever failed.
    pub(crate) fn settle(&self) -> Result<()> {
        // SAFETY: `writes` is live (type invariant).
        match unsafe { b::ferrofs_dwrites_settle(self.writes.as_ptr()) } {
            0 => Ok(()),
            _ => Err(Error::Io),
        }
    }

    /// Waits until no data write at all is in flight, as `settle` does
    /// for those submitted before it: the blocks held while writes are in
    /// flight are free only then.
    pub(crate) fn drain(&self) -> Result<()> {
        // SAFETY: `writes` is live (type invariant).
        match unsafe { b::ferrofs_dwrites_drain(self.writes.as_ptr()) } {
            0 => Ok(()),
            _ => Err(Error::Io),
        }
    }

    /// Waits for the data writes in flight, if any (a cheap check when
    /// there are none), before the device reads or rewrites blocks they
    /// may be writing. A failed data write is not this caller's to report:
    /// the next flush reports it and stops the filesystem.
    pub(crate) fn wait_for_writes(&self) {
        if self.writes_in_flight() {
            let _ = self.settle();
        }
    }

    /// Whether a data write may be in flight; after `false` (an acquire),
    /// every write submitted before has ended.
    pub(crate) fn writes_in_flight(&self) -> bool {
        // SAFETY: `writes` is live (type invariant).
        unsafe { b::ferrofs_dwrites_busy(self.writes.as_ptr()) }
    }

    /// Counts I/O about to map blocks under the core lock and use them
    /// outside it, in the current hold generation, until the pin drops:
    /// the core reuses no block it frees meanwhile before then. Taken
    /// before the core call that maps.
    pub(crate) fn pin_io(&self) -> IoPin<'_> {
        // SAFETY: `writes` is live (type invariant); the pin ends the count
        // once.
        let slot = unsafe { b::ferrofs_hold_enter(self.writes.as_ptr()) };
        IoPin { dev: self, slot }
    }

    /// What the core may do with the blocks it keeps back for I/O in
    /// flight: `None` when no such I/O is in flight, else how many new
    /// hold generations began (0 to 2; one begins once every I/O of the
    /// generation before the current has ended). Called at each entry into
    /// the core, under its lock: the generation changes only there.
    pub(crate) fn hold_advance(&self) -> Option<u32> {
        // SAFETY: live tracker (type invariant); caller holds the core lock for write.
        let begun = unsafe { b::ferrofs_hold_advance(self.writes.as_ptr()) };
        // -1: nothing in flight.
        u32::try_from(begun).ok()
    }

    /// Reads `folios`, one after the other on the device from byte `disk`,
    /// straight into them, and returns without waiting: the bios' end marks
    /// each folio uptodate (unless the I/O failed) and unlocks it, having
    /// zeroed the last folio past its first `last_valid` bytes (the end of
    /// file; `usize::MAX` keeps it whole). Returns how many, from the
    /// first, went out; the rest stay the caller's. Each bio counts in
    /// `pin`'s hold generation until its I/O is over, so a block freed
    /// meanwhile is not handed out again.
    ///
    /// # Safety
    /// Each folio is a locked, not uptodate page-cache folio whose read the
    /// caller must end (folio_end_read) and has not; for those submitted
    /// that duty passes to the bios, and the caller no longer touches them.
    pub(crate) unsafe fn read_folios_in_flight(&self, disk: u64, folios: &[*mut b::folio], pin: &IoPin<'_>, last_valid: usize) -> usize {
        // The shim checks the range against the device and reads the
        // slice before it returns.
        // SAFETY: `sb` (open device) and `writes` are live (type
        // invariants); the folios are as the caller guarantees; `pin`
        // holds a count in its slot, so the bios may count there too.
        unsafe { b::ferrofs_fread_submit(self.sb, self.writes.as_ptr(), disk, folios.as_ptr(), folios.len(), pin.slot, last_valid) }
    }

    /// Waits while too many bytes of data writes are in flight, so their
    /// buffers stay bounded.
    pub(crate) fn throttle(&self) {
        // SAFETY: `writes` is live (type invariant).
        unsafe { b::ferrofs_dwrites_throttle(self.writes.as_ptr(), WRITES_IN_FLIGHT_MAX) }
    }

    /// Makes every write that completed durable: the data writes in flight
    /// are waited for first, so the flush covers them too; the in-place
    /// writes that had ended count as flushed once it completes.
    pub(crate) fn flush_shared(&self) -> Result<()> {
        self.settle()?;
        // SAFETY: `self.sb` is live with an open block device and `writes`
        // is live (type invariants).
        match unsafe { b::ferrofs_dwrites_flush(self.sb, self.writes.as_ptr()) } {
            0 => Ok(()),
            _ => Err(Error::Io),
        }
    }

    /// Whether an in-place direct write (`overwrites`) has ended since the
    /// last flush issued after it: its data may not be durable yet.
    pub(crate) fn overwrites_unflushed(&self) -> bool {
        // SAFETY: `writes` is live (type invariant).
        unsafe { b::ferrofs_overwrites_unflushed(self.writes.as_ptr()) }
    }

    /// Counts an in-place direct write from now, before its block map is
    /// taken, until the ticket ends; `None` while a snapshot is under way
    /// (`close_overwrites`): the write then goes copy-on-write.
    pub(crate) fn overwrite_begin(&self) -> Option<OverwriteTicket<'_>> {
        // SAFETY: `writes` is live (type invariant).
        let counted = unsafe { b::ferrofs_overwrite_begin(self.writes.as_ptr()) };
        // Not `then_some`: that would build (and drop, ending) a ticket
        // for an uncounted write too.
        counted.then(|| OverwriteTicket(self))
    }

    /// Turns new in-place direct writes away and waits until none is left,
    /// for a snapshot, which then shares no block one is writing; they are
    /// let in again when the gate drops.
    pub(crate) fn close_overwrites(&self) -> OverwriteGate<'_> {
        // SAFETY: `writes` is live (type invariant); the gate opens it once.
        unsafe { b::ferrofs_overwrites_close(self.writes.as_ptr()) };
        OverwriteGate(self)
    }

    /// The tracker that counts in-place direct writes and hold
    /// generations, for `ferrofs_dio_submit`; live as long as this device.
    pub(crate) fn tracker(&self) -> *mut b::ferrofs_dwrites {
        self.writes.as_ptr()
    }

    /// Writes `buf` (as for `read_shared`) at byte `offset`, without the
    /// core, into blocks no one else writes (`crate::data_write`).
    pub(crate) fn write_shared(&self, offset: u64, buf: &[u8]) -> Result<()> {
        // The bio only reads from the buffer for a write.
        self.io(offset, buf.as_ptr().cast_mut(), buf.len(), true, false)
    }

    /// The super_block whose device this is.
    pub(crate) fn super_block(&self) -> *mut b::super_block {
        self.sb
    }

    fn check(&self, offset: u64, len: usize) -> Result<()> {
        let end = offset.checked_add(len as u64).ok_or(Error::Io)?;
        if (offset | len as u64) & 511 != 0 || end > self.size {
            return Err(Error::Bug("device I/O not in whole sectors within the device"));
        }
        Ok(())
    }

    fn io(&self, offset: u64, ptr: *mut u8, len: usize, write: bool, fua: bool) -> Result<()> {
        self.check(offset, len)?;
        // SAFETY: `self.sb` is live with an open device (type invariant);
        // `ptr` points to `len` bytes the caller owns for the call (readable
        // for a write, writable for a read), and the call waits for the I/O.
        match unsafe { b::ferrofs_bdev_io(self.sb, offset, ptr.cast(), len, write, fua) } {
            0 => Ok(()),
            rc if rc == -(crate::error::errno::ENOMEM) => Err(Error::NoMemory),
            rc if rc == -(crate::error::errno::EINVAL) => Err(Error::Bug("device buffer not sector aligned")),
            _ => Err(Error::Io),
        }
    }
}

impl BlockDevice for KernelDevice {
    fn size_bytes(&self) -> u64 {
        self.size
    }

    fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<()> {
        // The core reads data blocks too (an fsync record's CRCs).
        self.wait_for_writes();
        self.io(offset, buf.as_mut_ptr(), buf.len(), false, false)
    }

    fn write(&mut self, offset: u64, buf: &[u8], fua: bool) -> Result<()> {
        // The core rewrites blocks of the running transaction in place: no
        // data write to them may still be on its way.
        self.wait_for_writes();
        // The bio only reads from the buffer for a write.
        self.io(offset, buf.as_ptr().cast_mut(), buf.len(), true, fua)
    }

    fn flush(&mut self) -> Result<()> {
        // A commit maps blocks whose data may still be on its way.
        self.flush_shared()
    }

    fn read_ahead(&mut self, offset: u64, len: usize) -> Result<()> {
        // The last one's bios end before a new one starts.
        self.ahead = None;
        self.check(offset, len)?;
        // SAFETY: `self.sb` is live with an open device, and it outlives
        // this device and so the read ahead (type invariant).
        self.ahead = unsafe { ReadAhead::start(self.sb, offset, len) };
        Ok(())
    }

    fn read_ahead_take(&mut self, offset: u64, buf: &mut [u8]) -> Result<usize> {
        Ok(match self.ahead.take() {
            Some(r) if r.offset == offset => r.copy_to(buf),
            _ => 0,
        })
    }

    fn read_ahead_cancel(&mut self) {
        self.ahead = None;
    }

    fn read_pieces(&mut self, offsets: &[u64], piece: usize, buf: &mut [u8]) -> Result<bool> {
        self.read_pieces_shared(offsets, piece, buf).map(|()| true)
    }
}

/// A shared handle on the device as the core's `BlockDevice`, for a
/// commit's writes with the core lock held for read (`FsInfo::commit`):
/// the same bios, waits and flush as the core's own handle, with no read
/// ahead.
pub(crate) struct SharedDevice<'a>(pub(crate) &'a KernelDevice);

impl BlockDevice for SharedDevice<'_> {
    fn size_bytes(&self) -> u64 {
        self.0.size
    }

    fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<()> {
        self.0.read_shared(offset, buf)
    }

    fn write(&mut self, offset: u64, buf: &[u8], fua: bool) -> Result<()> {
        // As the core's own handle: no data write to the blocks may still
        // be on its way.
        self.0.wait_for_writes();
        // The bio only reads from the buffer for a write.
        self.0.io(offset, buf.as_ptr().cast_mut(), buf.len(), true, fua)
    }

    fn flush(&mut self) -> Result<()> {
        self.0.flush_shared()
    }
}

impl KernelDevice {
    /// `BlockDevice::read_pieces` without the core, for nodes read outside
    /// the core lock (`FsInfo::with_sv_read`): many tasks may read at once.
    /// No wait for data writes in flight: a node a tree names is never the
    /// target of one (those go to blocks taken from free space).
    pub(crate) fn read_pieces_shared(&self, offsets: &[u64], piece: usize, buf: &mut [u8]) -> Result<()> {
        if offsets.len().checked_mul(piece) != Some(buf.len()) {
            return Err(Error::Bug("batch buffer not one piece per offset"));
        }
        for &offset in offsets {
            self.check(offset, piece)?;
        }
        // SAFETY: `self.sb` is live with an open device (type invariant);
        // `offsets` holds `offsets.len()` offsets and `buf` the pieces'
        // bytes, both the caller's for the call, which waits for the I/O.
        let rc = unsafe { b::ferrofs_bdev_read_pieces(self.sb, offsets.as_ptr(), offsets.len(), buf.as_mut_ptr().cast(), piece) };
        match rc {
            0 => Ok(()),
            rc if rc == -(crate::error::errno::ENOMEM) => Err(Error::NoMemory),
            rc if rc == -(crate::error::errno::EINVAL) => Err(Error::Bug("device buffer not sector aligned")),
            _ => Err(Error::Io),
        }
    }
}

impl Drop for KernelDevice {
    fn drop(&mut self) {
        // SAFETY: this device's reference (type invariant), dropped once;
        // the last one waits for the writes in flight before freeing.
        unsafe { b::ferrofs_dwrites_put(self.writes.as_ptr()) };
    }
}

/// I/O outside the core lock counted in its hold generation while this
/// lives (`KernelDevice::pin_io`).
///
/// # Invariants
/// This pin holds one count in `slot` of its device's tracker, ended once:
/// when it drops, or by the shim it is handed to (`into_slot`).
pub(crate) struct IoPin<'a> {
    dev: &'a KernelDevice,
    slot: u32,
}

impl IoPin<'_> {
    /// Hands the count to an asynchronous direct read or write
    /// (`ferrofs_dio_submit`), which ends it once its bios are over:
    /// returns the slot to pass.
    pub(crate) fn into_slot(self) -> u32 {
        let slot = self.slot;
        core::mem::forget(self);
        slot
    }
}

impl Drop for IoPin<'_> {
    fn drop(&mut self) {
        // SAFETY: the tracker is live (the device's type invariant); this
        // pin's count is ended once, here (type invariant).
        unsafe { b::ferrofs_hold_exit(self.dev.writes.as_ptr(), self.slot) };
    }
}

/// An in-place direct write counted as under way (`overwrite_begin`):
/// dropped, it ends unwritten (its data did not reach the device).
pub(crate) struct OverwriteTicket<'a>(&'a KernelDevice);

impl OverwriteTicket<'_> {
    /// Ends it with its data written: the next flush must cover it.
    pub(crate) fn written(self) {
        self.end(true);
    }

    /// Hands it to the shim (`ferrofs_dio_submit` queued the write), which
    /// ends it with the write's last bio.
    pub(crate) fn handed_over(self) {
        core::mem::forget(self);
    }

    fn end(self, written: bool) {
        // SAFETY: the device's tracker is live (its type invariant); this
        // ticket's count is ended once, here (forgotten after).
        unsafe { b::ferrofs_overwrite_end(self.0.writes.as_ptr(), written) };
        core::mem::forget(self);
    }
}

impl Drop for OverwriteTicket<'_> {
    fn drop(&mut self) {
        // SAFETY: as in `end`: reached only when neither `end` nor
        // `handed_over` took the ticket.
        unsafe { b::ferrofs_overwrite_end(self.0.writes.as_ptr(), false) };
    }
}

/// In-place direct writes turned away while this lives
/// (`KernelDevice::close_overwrites`).
pub(crate) struct OverwriteGate<'a>(&'a KernelDevice);

impl Drop for OverwriteGate<'_> {
    fn drop(&mut self) {
        // SAFETY: the device's tracker is live (its type invariant); the
        // gate this closed is opened once.
        unsafe { b::ferrofs_overwrites_open(self.0.writes.as_ptr()) };
    }
}

/// One piece of a data write: `len` bytes from `from` in its buffer, to
/// byte `disk` of the device.
#[repr(C)]
pub(crate) struct DataPiece {
    pub(crate) disk: u64,
    pub(crate) from: usize,
    pub(crate) len: usize,
}

/// A read of the device in flight, into a buffer of its own.
///
/// # Invariants
/// `r` came from `ferrofs_aread_start` and is freed only by `drop`, which
/// waits for its bios first; its buffer holds `len` bytes.
struct ReadAhead {
    r: NonNull<b::ferrofs_aread>,
    offset: u64,
    len: usize,
}

impl ReadAhead {
    /// Starts reading `len` bytes at byte `offset` (whole sectors within
    /// the device); `None` when the shim cannot (no memory).
    ///
    /// # Safety
    /// `sb` is a live super_block with its block device open, and it
    /// outlives the returned read.
    unsafe fn start(sb: *mut b::super_block, offset: u64, len: usize) -> Option<Self> {
        // SAFETY: `sb` is live with an open device (caller); the shim
        // checks the alignment and owns the buffer it reads into.
        let r = NonNull::new(unsafe { b::ferrofs_aread_start(sb, offset, len) })?;
        // INVARIANT: `r` is a fresh read of `len` bytes.
        Some(ReadAhead { r, offset, len })
    }

    /// Waits for the read and copies its bytes into the start of `buf`;
    /// returns how many (0 when the read failed).
    fn copy_to(&self, buf: &mut [u8]) -> usize {
        // SAFETY: `r` is a live read (type invariant).
        if unsafe { b::ferrofs_aread_wait(self.r.as_ptr()) } != 0 {
            return 0;
        }
        // SAFETY: `r` is live, and its read is over (waited above).
        let data = unsafe { b::ferrofs_aread_buf(self.r.as_ptr()) };
        let n = self.len.min(buf.len());
        // SAFETY: the buffer holds `len` >= `n` bytes the finished read
        // filled, owned by `r` until `drop`, and `buf` is other memory.
        let src = unsafe { core::slice::from_raw_parts(data.cast::<u8>(), n) };
        buf[..n].copy_from_slice(src);
        n
    }
}

impl Drop for ReadAhead {
    fn drop(&mut self) {
        // SAFETY: `r` is live and freed only here (type invariant); the
        // shim waits for its bios before freeing.
        unsafe { b::ferrofs_aread_free(self.r.as_ptr()) };
    }
}

/// The pool readahead's folio bios come from (with room beside each for
/// what its end needs), kept while the module is loaded.
pub(crate) struct FolioReadPool;

impl FolioReadPool {
    /// Makes the pool; dropped at module exit to free it.
    pub(crate) fn new() -> kernel::error::Result<Self> {
        // SAFETY: called once at module init, before any mount can read.
        kernel::error::to_result(unsafe { b::ferrofs_fread_init() })?;
        Ok(FolioReadPool)
    }
}

impl Drop for FolioReadPool {
    fn drop(&mut self) {
        // SAFETY: at module exit every ferrofs is unmounted (each mount holds
        // a module reference), and unmount waits for every folio read in
        // flight (they count in the mount's hold generations), so every bio
        // is back in the pool.
        unsafe { b::ferrofs_fread_exit() };
    }
}

// SPDX-License-Identifier: GPL-2.0
//! Per-mount state hanging off `super_block::s_fs_info`: the mounted core
//! filesystem behind one lock, and the calls the VFS glue makes into it.
//!
//! One reader-writer lock guards the core for this mount: every call that
//! may change it holds it for write (the core is a single-writer engine
//! taking `&mut self`); calls that only read first try the core's `&self`
//! walks of the cached nodes holding it for read, many at once
//! (`with_sv_shared`, core `tree_read`). It is never held while copying to
//! or from user memory (readdir copies a batch out first), so a page fault
//! cannot nest inside it. Memory reclaim only ever try-locks it
//! (`shrink_cache`): the core allocates while holding it.
//!
//! File data is read without it: `map_for_read` takes the block map under
//! the lock, counting the read from before the map until its I/O is done
//! (`KernelDevice::pin_io`, an `IoPin`) in its *hold generation*. The core
//! keeps every block it frees from reuse until the I/O that might still
//! use it has ended: at each entry the device's tracker says whether any
//! I/O is in flight and whether a new generation began, as one does once
//! every I/O of the generation before the current has ended
//! (`KernelDevice::hold_advance`); a block freed in generation g is
//! reusable once g + 2 begins (`crate::space`), or once nothing is in
//! flight. Writeback writes file data without the lock too (`write_io`),
//! between two core calls that pick the blocks and then map them, and
//! leaves the I/O in flight; each data write counts in its generation from
//! its submission (before the call that maps its blocks into the file)
//! until it ends. Readahead leaves its folio reads in flight (their bios
//! end the folios), each counted in the generation of the pin that mapped
//! its blocks until its I/O is over. In-place direct writes count as reads
//! do.
//! Calls that only read (lookup, readdir, getattr of an inode not in
//! memory, readlink, xattrs, the block map) read the metadata nodes they
//! lack without it too (`with_sv_read`): they stop at a missing node, the
//! nodes are read outside the lock, counted the same way, and the call
//! runs again.

use super::bindings as b;
use super::core_lock::{CoreGuard, CoreLock};
use super::device::{IoPin, KernelDevice, SharedDevice};
use super::flush_group::FlushGroup;
use super::subvol::{Subvol, SubvolTable};
use super::types::NoFsScope;
use crate::error::{Error, Result};
use crate::fast_commit::FsyncTier;
use crate::file_read::BlockRun;
use crate::format::FileType;
use crate::fs::{DirEmit, Filesystem, MountOptions, StatFs};
use crate::group_commit::BatchWritten;
use crate::mem::TryVec;
use crate::node_io::NodeWant;
use crate::store::SealedCommit;
use crate::subvol::SubvolId;
use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use kernel::alloc::flags::GFP_KERNEL;
use kernel::prelude::*;

/// Rounds of node reads outside the core lock one read-only call may take
/// before it reads the rest under the lock (`FsInfo::with_sv_read`). A
/// cold lookup deep in a large tree needs one per level it lacks.
const OUTSIDE_READ_ROUNDS: usize = 16;

/// A block map on the shared read path (`FsInfo::map_pinned`).
type SharedMap<'a, T> = dyn Fn(&Filesystem<KernelDevice>, &mut TryVec<NodeWant>, SubvolId, &mut TryVec<BlockRun>) -> Result<T> + 'a;

/// One directory entry handed from the core to the VFS.
pub(crate) struct DirEntryOut {
    pub(crate) name: KVec<u8>,
    pub(crate) ino: u64,
    pub(crate) file_type: FileType,
    pub(crate) next_cookie: u64,
}

/// Up to `room` entries that `list` emits, copied out of the core's nodes.
fn list_batch(room: usize, list: impl FnOnce(&mut DirEmit<'_>) -> Result<()>) -> Result<KVec<DirEntryOut>> {
    let mut batch = KVec::new();
    let mut failed = None;
    list(&mut |name, ino, file_type, next_cookie| {
        if batch.len() >= room {
            return false;
        }
        let mut n = KVec::new();
        let pushed = n
            .extend_from_slice(name, GFP_KERNEL)
            .and_then(|()| batch.push(DirEntryOut { name: n, ino, file_type, next_cookie }, GFP_KERNEL));
        if pushed.is_err() {
            failed = Some(Error::NoMemory);
            return false;
        }
        true
    })?;
    failed.map_or(Ok(batch), Err)
}

/// Mounts the core into its own allocation, then replays the fsyncs since
/// its last commit. Opening builds the large value in `open_boxed`'s frame,
/// which is gone before replay's deep calls begin (together they overran
/// the 16 KiB kernel stack).
fn mount_boxed(dev: KernelDevice, opts: MountOptions) -> Result<KBox<Filesystem<KernelDevice>>> {
    let mut fs = open_boxed(dev, opts)?;
    finish_boxed(&mut fs)?;
    Ok(fs)
}

/// `Filesystem::open` into a box. Not inlined: its frame holds the core
/// while it is built, and must not be part of `finish_boxed`'s stack.
#[inline(never)]
fn open_boxed(dev: KernelDevice, opts: MountOptions) -> Result<KBox<Filesystem<KernelDevice>>> {
    KBox::new(Filesystem::open(dev, opts)?, GFP_KERNEL).map_err(|_| Error::NoMemory)
}

/// `Filesystem::finish_mount` on the boxed core. Not inlined, for the same
/// reason.
#[inline(never)]
fn finish_boxed(fs: &mut Filesystem<KernelDevice>) -> Result<()> {
    fs.finish_mount()
}

/// Per-mount state.
#[pin_data]
pub(crate) struct FsInfo {
    root_ino: u64,
    uuid: [u8; 16],
    /// `None` once put_super has unmounted the core. Boxed apart: the
    /// core is large, and mounting builds it in `mount_boxed`'s frame
    /// alone rather than moving it through fill_super's.
    #[pin]
    core: CoreLock<Option<KBox<Filesystem<KernelDevice>>>>,
    /// The core's count of clean cached nodes as of the last call into it,
    /// for the shrinker's count, which must not take the lock.
    clean_nodes: AtomicUsize,
    /// The shrinker of the node cache, from the end of fill_super to
    /// put_super.
    shrinker: AtomicPtr<b::ferrofs_shrinker>,
    /// What the data path reads without the core lock.
    unlocked: Unlocked,
    /// Seconds between background commits.
    commit_secs: AtomicU32,
    /// The background-commit work, from the end of fill_super to put_super.
    ticker: AtomicPtr<b::ferrofs_ticker>,
    /// The background drop of deleted subvolumes' trees, from the end of
    /// fill_super to put_super; stopped while read-only or frozen.
    dropper: AtomicPtr<b::ferrofs_worker>,
    /// The subvolumes met since mount.
    #[pin]
    subvols: SubvolTable,
    /// Set once the filesystem has been stopped by an error (reported once).
    failed: AtomicBool,
    /// Set by FS_IOC_SHUTDOWN: changes fail with EIO, no read-only flip.
    shut_down: AtomicBool,
    /// `fast_commit=`, as the core has it (for /proc/mounts, lock-free).
    fast_commit: AtomicBool,
    /// `norecovery`: mounted without replaying the fast-commit records;
    /// fixed for the mount.
    norecovery: bool,
    /// /sys/fs/ferrofs/<dev>/, from the end of fill_super to put_super.
    sysfs: AtomicPtr<b::ferrofs_sysfs>,
    /// Tasks in `with_core` (waiting for the lock or holding it) or in
    /// `with_sv_read` (which reads nodes outside the lock only when some
    /// other task is counted here).
    core_users: AtomicUsize,
    /// Which fast-commit records are durable, and their shared flush.
    #[pin]
    flushes: FlushGroup,
    /// Calls that only read answered on the shared read path, and those
    /// that it could not answer (`read_calls`).
    shared_reads: AtomicU64,
    locked_reads: AtomicU64,
    /// Shared answers given while a commit wrote (`read_calls`), and
    /// whether one writes now (`commit`).
    reads_beside_commit: AtomicU64,
    commit_writing: AtomicBool,
}

/// The part of FsInfo the data path uses without the core lock.
struct Unlocked {
    /// Blocks promised to dirty page-cache folios not yet written back (one
    /// per folio tagged in `aops`), so a buffered write that could not be
    /// written back fails with ENOSPC at write(2) and not later.
    dirty_reserved: AtomicU64,
    /// The core's `avail_blocks` as of the end of the last call into it:
    /// space only changes inside core calls, so this is what statfs would
    /// say now, readable by write_begin without the lock.
    avail_blocks: AtomicU64,
    /// The same device as the core's, for those reads and for writeback's
    /// data writes.
    read_dev: KernelDevice,
    /// Block size (the page size: checked at mount).
    block_size: u32,
}

/// One task counted in `FsInfo::core_users` while this lives.
struct Busy<'a>(&'a AtomicUsize);

impl<'a> Busy<'a> {
    fn enter(users: &'a AtomicUsize) -> Self {
        users.fetch_add(1, Ordering::Relaxed);
        Busy(users)
    }
}

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// What a mount asks of the core.
pub(crate) struct MountSwitches {
    pub(crate) read_only: bool,
    pub(crate) fast_commit: bool,
    pub(crate) norecovery: bool,
}

/// The monotonic clock the core times replay with.
fn monotonic_ns() -> u64 {
    kernel::time::Ktime::ktime_get().to_ns().try_into().unwrap_or(0)
}

impl FsInfo {
    /// Mounts the core filesystem on `dev`, caching up to `cache_blocks`
    /// clean metadata nodes. Not inlined: the mounted core is large and the
    /// mount may commit, which runs deep, so its copies stay out of the
    /// caller's frame (fill_super's) on the kernel's small stack.
    #[inline(never)]
    pub(crate) fn new(dev: KernelDevice, switches: MountSwitches, cache_blocks: usize) -> Result<Pin<KBox<Self>>> {
        let MountSwitches { read_only, fast_commit, norecovery } = switches;
        let opts = MountOptions {
            read_only,
            fast_commit,
            no_replay: norecovery,
            clock: Some(monotonic_ns),
            cache_blocks,
            ..MountOptions::default()
        };
        let read_dev = dev.duplicate();
        let fs = mount_boxed(dev, opts)?;
        if let Some((seq, why)) = fs.replay_stopped() {
            kernel::pr_warn!("ferrofs: fsync replay stopped at record {}: {}; fsyncs from there on are lost\n", seq, why);
        }
        let (root_ino, uuid, clean) = (fs.root_ino(), fs.superblock().uuid, fs.cached_clean_nodes());
        let block_size = fs.superblock().block_size;
        let avail = fs.avail_blocks();
        KBox::pin_init(
            pin_init!(FsInfo {
                root_ino,
                uuid,
                core <- CoreLock::new(Some(fs)),
                clean_nodes: AtomicUsize::new(clean),
                shrinker: AtomicPtr::new(core::ptr::null_mut()),
                unlocked: Unlocked {
                    dirty_reserved: AtomicU64::new(0),
                    avail_blocks: AtomicU64::new(avail),
                    read_dev,
                    block_size,
                },
                commit_secs: AtomicU32::new(super::options::DEFAULT_COMMIT_SECS),
                ticker: AtomicPtr::new(core::ptr::null_mut()),
                dropper: AtomicPtr::new(core::ptr::null_mut()),
                subvols <- SubvolTable::new(),
                failed: AtomicBool::new(false),
                shut_down: AtomicBool::new(false),
                fast_commit: AtomicBool::new(fast_commit),
                norecovery,
                sysfs: AtomicPtr::new(core::ptr::null_mut()),
                core_users: AtomicUsize::new(0),
                flushes <- FlushGroup::new(),
                shared_reads: AtomicU64::new(0),
                locked_reads: AtomicU64::new(0),
                reads_beside_commit: AtomicU64::new(0),
                commit_writing: AtomicBool::new(false),
            }),
            GFP_KERNEL,
        )
        .map_err(|_| Error::NoMemory)
    }

    /// Hands ownership to the super_block as an opaque pointer.
    pub(crate) fn into_foreign(this: Pin<KBox<Self>>) -> *mut core::ffi::c_void {
        // SAFETY: the pointer is only turned back into a pinned box by
        // `from_foreign`, so the pinned value never moves.
        KBox::into_raw(unsafe { Pin::into_inner_unchecked(this) }).cast()
    }

    /// Takes ownership back from `into_foreign`.
    ///
    /// # Safety
    /// `ptr` came from `into_foreign` and is not used afterwards.
    pub(crate) unsafe fn from_foreign(ptr: *mut core::ffi::c_void) -> Pin<KBox<Self>> {
        // SAFETY: per the contract, `ptr` is a leaked KBox<FsInfo>, pinned.
        unsafe { Pin::new_unchecked(KBox::from_raw(ptr.cast())) }
    }

    /// Borrows the FsInfo of a mounted super_block.
    ///
    /// # Safety
    /// `ptr` is the `s_fs_info` of a live ferrofs super_block, set by
    /// fill_super; the borrow does not outlive the super_block.
    pub(crate) unsafe fn from_sb_info<'a>(ptr: *mut core::ffi::c_void) -> &'a FsInfo {
        // SAFETY: per the contract.
        unsafe { &*ptr.cast::<FsInfo>() }
    }

    /// Fsync of inode `ino` of subvolume `sv` by the core's cheapest tier,
    /// durable on return; `before` runs first under the same lock. A
    /// fast-commit record is staged under the core lock and written and
    /// flushed after it (`FlushGroup::make_durable`), so fsyncs running
    /// together share a write and a flush; the flush waits first for the
    /// data writes in flight (`KernelDevice::flush_shared`), so it covers
    /// the data the record points to. A full commit runs after that hold,
    /// with the lock downgraded for its I/O (`commit_or_fail`).
    pub(crate) fn fsync(
        &self,
        sv: &Subvol,
        ino: u64,
        before: impl FnOnce(&mut Filesystem<KernelDevice>, SubvolId) -> Result<()>,
    ) -> Result<()> {
        let group = self.flushes.group();
        let staged = self.with_sv(sv, |fs, sv| {
            before(fs, sv)?;
            let done = fs.fsync_staged(sv, ino)?;
            group.core_flushed(done.flushed_tickets);
            Ok(done)
        })?;
        if let FsyncTier::FullCommit(_) = staged.tier {
            // Outside that hold: its I/O runs with the lock downgraded,
            // so reads go on meanwhile. Any commit sealed from here on
            // covers the inode.
            self.commit_or_fail()?;
        }
        if let Some(ticket) = staged.ticket {
            self.flushes.make_durable(ticket, || self.write_record_batch(), || self.data_device().flush_shared()).inspect_err(|&e| {
                // A record may never reach the disk: stop the filesystem, as
                // a write or flush failing inside the core does, before
                // anything acknowledged later could depend on it.
                let _ = self.with_core(|fs| {
                    fs.abort(e);
                    Ok(())
                });
            })?;
        }
        // Data rewritten in place changes no tree: usually the flush above
        // or the commit's covered it, else one more.
        self.flush_overwrites()
    }

    /// Takes the records the core staged and writes them with one device
    /// write, outside the core lock; the caller holds the flush group's
    /// gate, so batches go out one at a time and in order
    /// (`crate::record_batch`).
    fn write_record_batch(&self) -> Result<BatchWritten> {
        let taken = self.with_core(|fs| fs.take_record_batch())?;
        let last_ticket = match taken.batch {
            Some(b) => {
                self.data_device().write_shared(b.at, &b.buf)?;
                Some(b.last_ticket)
            }
            None => None,
        };
        Ok(BatchWritten { last_ticket, flushed_tickets: taken.flushed_tickets })
    }

    /// How the calls that only read were answered since mount.
    pub(crate) fn read_calls(&self) -> crate::tree_read::ReadCalls {
        crate::tree_read::ReadCalls {
            shared: self.shared_reads.load(Ordering::Relaxed),
            locked: self.locked_reads.load(Ordering::Relaxed),
            beside_commit: self.reads_beside_commit.load(Ordering::Relaxed),
        }
    }

    /// Device flushes the fast-commit fsyncs issued since mount (the core
    /// counts its own).
    pub(crate) fn group_flushes(&self) -> u64 {
        self.flushes.group().flushes()
    }

    /// Inode number of the root directory.
    pub(crate) fn root_ino(&self) -> u64 {
        self.root_ino
    }

    /// Counts one more block promised to a dirty folio.
    pub(crate) fn reserve_dirty(&self) {
        self.unlocked.dirty_reserved.fetch_add(1, Ordering::Relaxed);
    }

    /// Gives back the block of a folio written back or thrown away.
    pub(crate) fn release_dirty(&self) {
        // Never below zero, even if a tag outlived a remount of the count.
        let _ = self.unlocked.dirty_reserved.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| Some(n.saturating_sub(1)));
    }

    /// Whether the core has room for every promised block plus one more
    /// and the tree nodes that writing them back will copy: a margin of 64
    /// blocks and one in 16 of the promised ones.
    /// Lock-free: the free space is the core's as of its last call.
    pub(crate) fn room_for_one_more(&self) -> bool {
        let promised = self.unlocked.dirty_reserved.load(Ordering::Relaxed);
        let avail = self.unlocked.avail_blocks.load(Ordering::Relaxed);
        avail > promised + 1 + 64 + promised / 16
    }

    /// Starts committing every `secs` seconds in the background, so work
    /// not fsynced is at risk for at most about that long.
    ///
    /// # Safety
    /// `sb` is the live super_block this FsInfo hangs off; `stop_commits`
    /// runs before the core is unmounted.
    pub(crate) unsafe fn start_commits(&self, sb: *mut b::super_block, secs: u32) -> kernel::error::Result {
        // SAFETY: `sb` outlives the ticker (contract); `periodic_commit`
        // matches the callback type.
        let t = unsafe { b::ferrofs_ticker_new(sb, Some(super::super_ops::periodic_commit)) };
        if t.is_null() {
            return Err(kernel::error::code::ENOMEM);
        }
        self.ticker.store(t, Ordering::Release);
        self.set_commit_interval(secs);
        Ok(())
    }

    /// Changes the background commit interval (remount with `commit=N`).
    pub(crate) fn set_commit_interval(&self, secs: u32) {
        self.commit_secs.store(secs, Ordering::Relaxed);
        let t = self.ticker.load(Ordering::Acquire);
        if !t.is_null() {
            // SAFETY: the ticker lives until stop_commits takes it.
            unsafe { b::ferrofs_ticker_set(t, secs) };
        }
    }

    /// The background commit interval in seconds.
    pub(crate) fn commit_interval(&self) -> u32 {
        self.commit_secs.load(Ordering::Relaxed)
    }

    /// Stops background commits, waiting for one in progress.
    pub(crate) fn stop_commits(&self) {
        let t = self.ticker.swap(core::ptr::null_mut(), Ordering::AcqRel);
        // SAFETY: taken out of `self.ticker` just now, so freed only once.
        unsafe { b::ferrofs_ticker_free(t) };
    }

    /// Registers the shrinker of the node cache.
    ///
    /// # Safety
    /// `sb` is the live super_block this FsInfo hangs off; `stop_shrinker`
    /// runs before the core is unmounted.
    pub(crate) unsafe fn start_shrinker(&self, sb: *mut b::super_block) -> kernel::error::Result {
        // SAFETY: `sb` outlives the shrinker (contract); the callbacks
        // match the types the shim calls.
        let s = unsafe { b::ferrofs_shrinker_new(sb, Some(super::reclaim::count_nodes), Some(super::reclaim::scan_nodes)) };
        if s.is_null() {
            return Err(kernel::error::code::ENOMEM);
        }
        self.shrinker.store(s, Ordering::Release);
        Ok(())
    }

    /// Unregisters the shrinker, waiting for a callback in progress.
    pub(crate) fn stop_shrinker(&self) {
        let s = self.shrinker.swap(core::ptr::null_mut(), Ordering::AcqRel);
        // SAFETY: taken out of `self.shrinker` just now, so freed only once.
        unsafe { b::ferrofs_shrinker_free(s) };
    }

    /// Clean metadata nodes cached, as of the last call into the core.
    pub(crate) fn cached_clean_nodes(&self) -> usize {
        self.clean_nodes.load(Ordering::Relaxed)
    }

    /// Memory reclaim: drops up to `nr` clean cached nodes, least recently
    /// used first, and returns how many went; `None` if the core lock is
    /// taken (reclaim must not wait for it: its holder may be allocating,
    /// possibly this very task). Allocates nothing.
    pub(crate) fn shrink_cache(&self, nr: usize) -> Option<usize> {
        let mut guard = self.core.try_lock()?;
        let freed = match guard.as_mut() {
            Some(fs) => {
                let freed = fs.shrink_cache(nr);
                self.clean_nodes.store(fs.cached_clean_nodes(), Ordering::Relaxed);
                freed
            }
            None => 0,
        };
        Some(freed)
    }

    /// Adds /sys/fs/ferrofs/`name`/ for this mount.
    ///
    /// # Safety
    /// `remove_sysfs` runs before this FsInfo is freed (put_super).
    pub(crate) unsafe fn add_sysfs(&self, name: &kernel::str::CStr) -> kernel::error::Result {
        // SAFETY: this FsInfo is pinned in its box and outlives the
        // directory (contract).
        let dir = unsafe { super::sysfs::add(name, self) }?;
        self.sysfs.store(dir, Ordering::Release);
        Ok(())
    }

    /// Removes the sysfs directory, waiting for reads in progress; the
    /// caller holds no core lock.
    pub(crate) fn remove_sysfs(&self) {
        let dir = self.sysfs.swap(core::ptr::null_mut(), Ordering::AcqRel);
        // SAFETY: taken out of `self.sysfs` just now, so removed once; the
        // caller holds no core lock (contract).
        unsafe { super::sysfs::remove(dir) };
    }

    /// Whether fsyncs may use fast-commit records (`fast_commit=`).
    pub(crate) fn fast_commit(&self) -> bool {
        self.fast_commit.load(Ordering::Relaxed)
    }

    /// Turns fast commits on or off (remount).
    pub(crate) fn set_fast_commit(&self, on: bool) -> Result<()> {
        self.with_core(|fs| {
            fs.set_fast_commit(on);
            self.fast_commit.store(on, Ordering::Relaxed);
            Ok(())
        })
    }

    /// Whether the mount left the fast-commit records unreplayed.
    pub(crate) fn norecovery(&self) -> bool {
        self.norecovery
    }

    /// Makes the background drop of deleted subvolumes ready; it runs once
    /// `allow_drops` lets it.
    ///
    /// # Safety
    /// `sb` is the live super_block this FsInfo hangs off; `stop_drops`
    /// with `free` runs before the core is unmounted.
    pub(crate) unsafe fn start_drops(&self, sb: *mut b::super_block) -> kernel::error::Result {
        // SAFETY: `sb` outlives the worker (contract); `drop_step` matches
        // the callback type.
        let w = unsafe { b::ferrofs_worker_new(sb, Some(super::super_ops::drop_step)) };
        if w.is_null() {
            return Err(kernel::error::code::ENOMEM);
        }
        self.dropper.store(w, Ordering::Release);
        Ok(())
    }

    /// Lets the background drop run and starts it: at a read-write mount
    /// or remount (a drop an unmount or a crash interrupted goes on), after
    /// a thaw, and after a subvolume is deleted.
    pub(crate) fn allow_drops(&self) {
        let w = self.dropper.load(Ordering::Acquire);
        if !w.is_null() {
            // SAFETY: the worker lives until `stop_drops(true)` takes it.
            unsafe {
                b::ferrofs_worker_allow(w);
                b::ferrofs_worker_kick(w);
            }
        }
    }

    /// Starts the background drop if it is allowed (after a delete).
    pub(crate) fn kick_drops(&self) {
        let w = self.dropper.load(Ordering::Acquire);
        if !w.is_null() {
            // SAFETY: the worker lives until `stop_drops(true)` takes it.
            unsafe { b::ferrofs_worker_kick(w) };
        }
    }

    /// Stops the background drop, waiting only for the step in progress;
    /// with `free`, for good (put_super).
    pub(crate) fn stop_drops(&self, free: bool) {
        if free {
            let w = self.dropper.swap(core::ptr::null_mut(), Ordering::AcqRel);
            // SAFETY: taken out of `self.dropper` just now, so freed once.
            unsafe { b::ferrofs_worker_free(w) };
            return;
        }
        let w = self.dropper.load(Ordering::Acquire);
        if !w.is_null() {
            // SAFETY: the worker lives until `stop_drops(true)` takes it.
            unsafe { b::ferrofs_worker_stop(w) };
        }
    }

    /// The adapter's state of subvolume `id`, made on first use; `NotFound`
    /// if the core has no such live subvolume.
    pub(crate) fn subvol(&self, id: SubvolId) -> Result<&Subvol> {
        if let Some(s) = self.subvols.find(id) {
            return Ok(s);
        }
        // Under the core lock, so a delete (which marks the entry under the
        // same lock) cannot slip in between the check and the insert.
        let p = self.with_core(|fs| {
            let read_only = fs.subvolume_read_only(id)?;
            self.subvols.get(id, read_only).map(|s| s as *const Subvol)
        })?;
        // SAFETY: table entries live as long as the table, so as `self`.
        Ok(unsafe { &*p })
    }

    /// Runs `f` on the core for subvolume `sv`; `NotFound` once `sv` is
    /// deleted (checked under the core lock, see `subvol`).
    pub(crate) fn with_sv<T>(&self, sv: &Subvol, f: impl FnOnce(&mut Filesystem<KernelDevice>, SubvolId) -> Result<T>) -> Result<T> {
        self.with_core(|fs| if sv.is_deleted() { Err(Error::NotFound) } else { f(fs, sv.id()) })
    }

    /// `with_sv` for a call that only reads: the nodes it finds missing
    /// from the cache are read outside the core lock (`crate::node_io`), so
    /// other calls go on during the device round trip. `f` may run several
    /// times, and must change nothing where it can read a node.
    ///
    /// A round that names nodes to read counts as I/O in its hold
    /// generation (`IoPin`), taken under the lock in the call that names
    /// them, until they are inserted, so no block freed meanwhile is
    /// reused.
    /// Only while another task uses the core (`core_users`): alone, a call
    /// reads under the lock, as a deferred round costs a second pass of
    /// the call and buys nothing.
    ///
    /// After `OUTSIDE_READ_ROUNDS` rounds (a tree changing under the call,
    /// a cache too small to keep what it read), or when a read outside
    /// fails, the call runs once more reading under the lock, which reports
    /// a device error or damage as every call does.
    pub(crate) fn with_sv_read<T>(
        &self,
        sv: &Subvol,
        mut f: impl FnMut(&mut Filesystem<KernelDevice>, SubvolId) -> Result<T>,
    ) -> Result<T> {
        let _busy = Busy::enter(&self.core_users);
        let mut wants = TryVec::new();
        for _ in 0..OUTSIDE_READ_ROUNDS {
            if self.core_users.load(Ordering::Relaxed) <= 1 {
                // No other task in the core, waiting for it, or reading
                // outside it: nobody would gain by the lock being free
                // during this call's reads, and a deferred round costs a
                // second pass of the call.
                break;
            }
            let mut pin = None;
            let got = self.with_sv(sv, |fs, id| {
                let r = fs.without_node_io(&mut wants, |fs| f(fs, id))?;
                if r.is_none() && !wants.is_empty() {
                    // Counted under the lock, in the generation of the call
                    // that named the nodes: any later entry into the core,
                    // which could free their blocks, sees it.
                    pin = Some(self.unlocked.read_dev.pin_io());
                }
                Ok(r)
            })?;
            if let Some(v) = got {
                return Ok(v);
            }
            let Some(_pin) = pin else { break };
            if !self.read_nodes_outside(&wants)? {
                break;
            }
        }
        self.with_sv(sv, f)
    }

    /// Reads the nodes `wants` names with no lock held and inserts them
    /// under the write lock (`Filesystem::insert_read_nodes`); the caller
    /// holds a hold count (`IoPin`) taken under the lock in the call that
    /// named them. `Ok(false)` when there was no memory for the batch or
    /// the read failed: the caller then reads under the lock, which
    /// reports a device error as every call does.
    fn read_nodes_outside(&self, wants: &[NodeWant]) -> Result<bool> {
        let bs = self.unlocked.block_size as usize;
        let Ok(mut data) = TryVec::try_from_elem(0u8, wants.len() * bs) else { return Ok(false) };
        let Ok(mut offsets) = TryVec::try_with_capacity(wants.len()) else { return Ok(false) };
        for w in wants.iter() {
            // Within the capacity reserved above; each block is inside
            // the filesystem (checked before it was named).
            let _ = offsets.try_push(w.blk.saturating_mul(bs as u64));
        }
        if self.unlocked.read_dev.read_pieces_shared(&offsets, bs, &mut data).is_err() {
            return Ok(false);
        }
        self.with_core(|fs| fs.insert_read_nodes(wants, &data))?;
        Ok(true)
    }

    /// Runs the read-only `shared` on the core under the lock taken for
    /// read, beside any number of other readers (`crate::tree_read`), and
    /// `f` as `with_sv_read` does where `shared` cannot answer (see
    /// `try_shared`).
    pub(crate) fn with_sv_shared<T>(
        &self,
        sv: &Subvol,
        shared: impl FnMut(&Filesystem<KernelDevice>, &mut TryVec<NodeWant>, SubvolId) -> Result<T>,
        f: impl FnMut(&mut Filesystem<KernelDevice>, SubvolId) -> Result<T>,
    ) -> Result<T> {
        match self.try_shared(sv, false, shared) {
            Some(r) => r,
            None => self.with_sv_read(sv, f),
        }
    }

    /// `shared` on the core under the lock taken for read (try-taken with
    /// `nowait`), if it can answer there; counted in `read_calls` either
    /// way. Where it lacks nodes it names them (`tree_read::CachedNodes`):
    /// they are counted in the hold generation under the lock, in the call
    /// that named them (`IoPin`), read with no lock held, inserted under
    /// the write lock, and `shared` runs again, up to
    /// `OUTSIDE_READ_ROUNDS` times (once, reading nothing, with `nowait`).
    /// `None` where it cannot answer: a subvolume not opened since mount,
    /// damage (which only the locked call reports and stops the filesystem
    /// for), no memory, a failed read, too many rounds.
    pub(crate) fn try_shared<T>(
        &self,
        sv: &Subvol,
        nowait: bool,
        shared: impl FnMut(&Filesystem<KernelDevice>, &mut TryVec<NodeWant>, SubvolId) -> Result<T>,
    ) -> Option<Result<T>> {
        let r = self.shared_rounds(sv, nowait, shared);
        let counter = if r.is_some() { &self.shared_reads } else { &self.locked_reads };
        counter.fetch_add(1, Ordering::Relaxed);
        r
    }

    /// The body of `try_shared`.
    fn shared_rounds<T>(
        &self,
        sv: &Subvol,
        nowait: bool,
        mut shared: impl FnMut(&Filesystem<KernelDevice>, &mut TryVec<NodeWant>, SubvolId) -> Result<T>,
    ) -> Option<Result<T>> {
        let _busy = Busy::enter(&self.core_users);
        let mut wants = TryVec::new();
        for _ in 0..OUTSIDE_READ_ROUNDS {
            let _pin = {
                let guard = match nowait {
                    false => self.core.read(),
                    true => self.core.try_read()?,
                };
                // After put_super: the locked call says so.
                let fs = guard.as_ref()?;
                if sv.is_deleted() {
                    return Some(Err(Error::NotFound));
                }
                // As under the write lock: no allocation recurses into
                // reclaim, which may evict ferrofs inodes and so wait for
                // the lock.
                let r = {
                    let _nofs = NoFsScope::enter();
                    shared(fs, &mut wants, sv.id())
                };
                if r.is_ok() && self.commit_writing.load(Ordering::Relaxed) {
                    self.reads_beside_commit.fetch_add(1, Ordering::Relaxed);
                }
                match r {
                    // Counted under the lock, so any later entry for write,
                    // which could free the nodes' blocks, sees it.
                    Err(Error::WouldBlock) if !nowait && !wants.is_empty() => self.unlocked.read_dev.pin_io(),
                    Err(Error::WouldBlock | Error::Corrupt(_) | Error::Bug(_) | Error::Io | Error::NoMemory) => return None,
                    r => return Some(r),
                }
            };
            match self.read_nodes_outside(&wants) {
                Ok(true) => {}
                Ok(false) => return None,
                Err(e) => return Some(Err(e)),
            }
        }
        None
    }

    /// Appends the block map of file blocks `[fb, fb + nblocks)` of `ino`
    /// to `out` (see `Filesystem::map_blocks`) and returns the file size,
    /// with a pin that keeps the mapped blocks from reuse until dropped:
    /// drop it once the reads of those blocks are done. With `nowait`
    /// (IOCB_NOWAIT) it never sleeps on the core lock nor reads a node:
    /// `WouldBlock` where it would.
    pub(crate) fn map_for_read(
        &self,
        sv: &Subvol,
        ino: u64,
        fb: u64,
        nblocks: u64,
        out: &mut TryVec<BlockRun>,
        nowait: bool,
    ) -> Result<(u64, IoPin<'_>)> {
        let shared = |fs: &Filesystem<KernelDevice>, wants: &mut TryVec<NodeWant>, id, out: &mut TryVec<BlockRun>| {
            Ok(fs.map_blocks_cached(wants, id, ino, fb, nblocks, out)?.size)
        };
        self.map_pinned(sv, out, nowait, Some(&shared), |fs, id, out| Ok(fs.map_blocks(id, ino, fb, nblocks, out)?.size))
    }

    /// The disk runs of file blocks `[fb, fb + nblocks)` of `ino` into
    /// `out` when a direct write may rewrite them in place (see
    /// `Filesystem::map_overwrite`), with a pin that keeps them from reuse
    /// until the write is over; `None` when it may not. `nowait` as for
    /// `map_for_read`.
    pub(crate) fn map_for_overwrite(
        &self,
        sv: &Subvol,
        ino: u64,
        fb: u64,
        nblocks: u64,
        out: &mut TryVec<BlockRun>,
        nowait: bool,
    ) -> Result<Option<IoPin<'_>>> {
        let (ok, pin) = self.map_pinned(sv, out, nowait, None, |fs, id, out| fs.map_overwrite(id, ino, fb, nblocks, out))?;
        Ok(ok.then_some(pin))
    }

    /// Runs `map`, which appends runs to `out`, under the core lock with a
    /// pin taken first (see `map_for_read`); `shared`, if given, first
    /// under the lock taken for read (see `with_sv_shared`).
    fn map_pinned<T>(
        &self,
        sv: &Subvol,
        out: &mut TryVec<BlockRun>,
        nowait: bool,
        shared: Option<&SharedMap<'_, T>>,
        mut map: impl FnMut(&mut Filesystem<KernelDevice>, SubvolId, &mut TryVec<BlockRun>) -> Result<T>,
    ) -> Result<(T, IoPin<'_>)> {
        // Counted before the map: the entry into the core that maps sees
        // it, so every block the map names is held from reuse once freed.
        // Under the lock taken for read no block is freed at all, and a
        // later writer's entry sees the count. (Not inside the call, which
        // may run several times.)
        let pin = self.unlocked.read_dev.pin_io();
        let first = out.len();
        if let Some(shared) = shared {
            let shared = |fs: &Filesystem<KernelDevice>, wants: &mut TryVec<NodeWant>, id| {
                // A round that stopped may have mapped part of the range.
                out.truncate(first);
                shared(fs, wants, id, out)
            };
            match self.try_shared(sv, nowait, shared) {
                Some(r) => return Ok((r?, pin)),
                None => out.truncate(first),
            }
        }
        let mut map = |fs: &mut Filesystem<KernelDevice>, id| {
            // A deferred round may have mapped part of the range.
            out.truncate(first);
            map(fs, id, out)
        };
        let got = match nowait {
            false => self.with_sv_read(sv, map)?,
            true => {
                let mut wants = TryVec::new();
                let got = self.try_with_core(|fs| {
                    if sv.is_deleted() {
                        return Err(Error::NotFound);
                    }
                    fs.without_node_io(&mut wants, |fs| map(fs, sv.id()))
                })?;
                got.ok_or(Error::WouldBlock)?
            }
        };
        Ok((got, pin))
    }

    /// Flushes the device if an in-place direct write ended since the last
    /// flush issued after it (`KernelDevice::overwrites_unflushed`): fsync
    /// and sync make such data durable though no record or commit names it.
    pub(crate) fn flush_overwrites(&self) -> Result<()> {
        let dev = self.data_device();
        if dev.overwrites_unflushed() {
            dev.flush_shared()?;
        }
        Ok(())
    }

    /// The device, for file data read and written outside the core lock.
    pub(crate) fn data_device(&self) -> &KernelDevice {
        &self.unlocked.read_dev
    }

    /// Block size in bytes.
    pub(crate) fn block_size(&self) -> u32 {
        self.unlocked.block_size
    }

    /// Filesystem UUID.
    pub(crate) fn uuid(&self) -> [u8; 16] {
        self.uuid
    }

    /// Runs `f` on the mounted core; `Err(Io)` after put_super.
    ///
    /// Allocations under the lock must not recurse into filesystem reclaim,
    /// which can evict ferrofs inodes and so take this same lock: the core
    /// runs in a NOFS allocation scope.
    pub(crate) fn with_core<T>(&self, f: impl FnOnce(&mut Filesystem<KernelDevice>) -> Result<T>) -> Result<T> {
        let _busy = Busy::enter(&self.core_users);
        self.in_core(&mut self.core.lock(), f)
    }

    /// `with_core` for a caller that must not sleep on the lock
    /// (IOCB_NOWAIT): `WouldBlock` while another task holds it.
    pub(crate) fn try_with_core<T>(&self, f: impl FnOnce(&mut Filesystem<KernelDevice>) -> Result<T>) -> Result<T> {
        let _busy = Busy::enter(&self.core_users);
        self.in_core(&mut self.core.try_lock().ok_or(Error::WouldBlock)?, f)
    }

    /// Commits what the core holds uncommitted, if it is writable and its
    /// superblock lets it be. The commit's node writes, flush and
    /// superblock writes run with the core lock downgraded to read
    /// (`Store::commit_write`): every call that only reads goes on
    /// meanwhile, and no writer gets in until the commit has ended.
    /// Nothing to do, and no error, when the filesystem is not writable
    /// (read-only, or stopped by an error): the background commit and
    /// sync_fs call this.
    pub(crate) fn commit(&self) -> Result<()> {
        self.commit_sealed_by(|fs| match fs.is_writable() && !fs.superblock().needs_read_only() {
            true => fs.commit_seal(),
            false => Ok(None),
        })
    }

    /// `commit` for a call that must not return before its change is
    /// durable (a full-commit fsync, a subvolume ioctl, making room for a
    /// write): a filesystem that cannot commit fails it, with the core's
    /// error.
    pub(crate) fn commit_or_fail(&self) -> Result<()> {
        self.commit_sealed_by(|fs| fs.commit_seal())
    }

    /// A commit whose first step under the write lock is `seal`.
    fn commit_sealed_by(&self, seal: impl FnOnce(&mut Filesystem<KernelDevice>) -> Result<Option<SealedCommit>>) -> Result<()> {
        let _busy = Busy::enter(&self.core_users);
        let mut guard = self.core.lock();
        let sealed = self.in_core(&mut guard, seal)?;
        let Some(sealed) = sealed else { return Ok(()) };
        let shared = guard.downgrade();
        self.commit_writing.store(true, Ordering::Relaxed);
        let written = {
            // As under the write lock: no allocation recurses into
            // reclaim, which may evict ferrofs inodes and so wait for the
            // writers.
            let _nofs = NoFsScope::enter();
            match shared.as_ref() {
                Some(fs) => fs.commit_write(&sealed, &mut SharedDevice(&self.unlocked.read_dev)),
                // Sealed under this same hold of the writers' lock: the
                // core cannot have gone.
                None => Err(Error::Bug("core gone during a commit")),
            }
        };
        self.commit_writing.store(false, Ordering::Relaxed);
        self.in_core(&mut shared.regain(), |fs| fs.commit_done(sealed, written))
    }

    /// The body of `with_core`, under the lock `guard` holds.
    fn in_core<T>(
        &self,
        guard: &mut CoreGuard<'_, Option<KBox<Filesystem<KernelDevice>>>>,
        f: impl FnOnce(&mut Filesystem<KernelDevice>) -> Result<T>,
    ) -> Result<T> {
        // No allocation under the lock recurses into reclaim, which may
        // evict ferrofs inodes and so wait for this same lock.
        let _nofs = NoFsScope::enter();
        match guard.as_mut() {
            Some(fs) => {
                // The I/O outside the lock (reads, data writes, folio reads,
                // in-place writes) seen ended is over (acquires in the
                // shim), so its blocks may be handed out again.
                // Failing to free the held blocks (no memory for the free
                // set) only keeps them held until a later call: the call
                // itself goes on, as a call carrying a write to finish must.
                let _ = match self.unlocked.read_dev.hold_advance() {
                    None => fs.set_io_in_flight(false),
                    // Holding first: it cannot fail, and must not be
                    // skipped by a failed release.
                    Some(begun) => fs.set_io_in_flight(true).and_then(|()| (0..begun).try_for_each(|_| fs.next_hold_generation())),
                };
                let r = f(fs);
                if let Err(Error::Corrupt(_) | Error::Bug(_) | Error::Io) = r {
                    // Damage or a failed device: stop writing before a
                    // wrong decision reaches the disk.
                    if let Err(e) = r {
                        fs.abort(e);
                    }
                }
                if let Some(why) = fs.aborted() {
                    self.report_failure(fs, why);
                }
                self.clean_nodes.store(fs.cached_clean_nodes(), Ordering::Relaxed);
                self.unlocked.avail_blocks.store(fs.avail_blocks(), Ordering::Relaxed);
                match r {
                    // After FS_IOC_SHUTDOWN changes fail with EIO, as on xfs
                    // and ext4, not with the EROFS of an aborted core.
                    Err(Error::ReadOnly) if self.is_shut_down() => Err(Error::Io),
                    r => r,
                }
            }
            None => Err(Error::Io),
        }
    }

    /// Once per mount: one dmesg line, and (after an error) the super_block
    /// made read-only so no new writer starts; the core already refuses
    /// every change.
    fn report_failure(&self, fs: &mut Filesystem<KernelDevice>, why: Error) {
        if self.failed.swap(true, Ordering::Relaxed) {
            return;
        }
        let sb = fs.device().super_block();
        // SAFETY: the device's super_block is live while its core is mounted;
        // s_id is NUL-terminated.
        unsafe {
            let dev = kernel::str::CStr::from_char_ptr(b::ferrofs_sb_id(sb));
            if self.is_shut_down() {
                kernel::pr_warn!("ferrofs: {}: shut down (FS_IOC_SHUTDOWN); later changes fail with EIO\n", dev);
            } else {
                kernel::pr_err!("ferrofs: {}: stopped after an error ({}); the filesystem is now read-only\n", dev, why);
                b::ferrofs_sb_force_rdonly(sb);
            }
        }
    }

    /// Records an FS_IOC_SHUTDOWN (before the core is aborted).
    pub(crate) fn mark_shut_down(&self) {
        self.shut_down.store(true, Ordering::Relaxed);
    }

    /// Whether FS_IOC_SHUTDOWN stopped this filesystem.
    pub(crate) fn is_shut_down(&self) -> bool {
        self.shut_down.load(Ordering::Relaxed)
    }

    /// Appends up to `max` entries of `dir` from `cookie` on to `out`.
    pub(crate) fn readdir(&self, sv: &Subvol, dir: u64, cookie: u64, out: &mut KVec<DirEntryOut>, max: usize) -> Result<()> {
        let room = max.saturating_sub(out.len());
        // Each attempt lists into a batch of its own: a shared attempt or
        // a deferred round may stop part way.
        let batch = self.with_sv_shared(
            sv,
            |fs, wants, sv| list_batch(room, |emit| fs.readdir_cached(wants, sv, dir, cookie, emit)),
            |fs, sv| list_batch(room, |emit| fs.readdir(sv, dir, cookie, emit)),
        )?;
        if out.is_empty() {
            *out = batch;
            return Ok(());
        }
        for e in batch {
            out.push(e, GFP_KERNEL).map_err(|_| Error::NoMemory)?;
        }
        Ok(())
    }

    /// Filesystem-wide counts.
    pub(crate) fn statfs(&self) -> Result<StatFs> {
        self.with_core(|fs| {
            fs.settle_frees()?;
            Ok(fs.statfs())
        })
    }

    /// Commits and releases the core; later calls fail with EIO.
    pub(crate) fn unmount(&self) -> Result<()> {
        // Data rewritten in place is as durable after an unmount as the
        // rest, though the final commit may have nothing to write.
        let flushed = self.flush_overwrites();
        let taken = self.core.lock().take();
        self.clean_nodes.store(0, Ordering::Relaxed);
        let unmounted = match taken {
            Some(fs) => KBox::into_inner(fs).unmount().map(drop),
            None => Ok(()),
        };
        flushed.and(unmounted)
    }
}

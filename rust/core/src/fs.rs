// SPDX-License-Identifier: GPL-2.0
//! The filesystem API the kernel adapter and the tools call: one mounted
//! filesystem, its subvolumes' fs trees, inodes and the transaction.
//!
//! # API (stable; the kernel adapter calls exactly this)
//!
//! Every inode operation names its subvolume first (`sv: SubvolId`, a tree
//! id; `SubvolId::DEFAULT` is 5), below written `sv,` once for all.
//!
//! ```text
//! Filesystem::mount(dev) / mount_with(dev, MountOptions) -> Result<Filesystem<D>>
//! root_ino() -> u64                                       256, in every subvolume
//! lookup_at(sv, dir, name) -> Result<(SubvolId, u64)>     a subvolume's name gives its root
//! lookup_attr(sv, dir, name) -> Result<(SubvolId, u64, Option<InodeAttr>)>   attributes within sv
//! getattr(ino) -> Result<InodeAttr>
//! lookup(dir, name) -> Result<u64>                       Err(NotFound)
//! readdir(dir, cookie, emit(name, ino, FileType, next_cookie) -> bool)
//!     cookies 0 and 1 are the VFS's "." and ".."; entries start at 2
//! statfs() -> StatFs
//! create(dir, name, mode, rdev, uid, gid, now) -> Result<InodeAttr>   (regular, fifo, socket, devices)
//! mknod(dir, name, mode, rdev, uid, gid, now) -> Result<InodeAttr>    (same as create)
//! mkdir(dir, name, mode, uid, gid, now) -> Result<InodeAttr>
//! symlink(dir, name, target, uid, gid, now) -> Result<InodeAttr>
//! tmpfile(mode, uid, gid, now) -> Result<InodeAttr>      regular, nlink 0, on the orphan list (O_TMPFILE)
//! link(ino, dir, name, now) -> Result<InodeAttr>          nlink 0: taken off the orphan list
//! unlink(dir, name, now) / rmdir(dir, name, now) -> Result<()>
//! remove(dir, name, is_dir, now) -> Result<Removed>     either, with both inodes' attributes after
//! rename(olddir, oldname, newdir, newname, flags, now) -> Result<()>  RENAME_NOREPLACE | RENAME_EXCHANGE
//! setattr(ino, &SetAttr, now) -> Result<InodeAttr>               (size = truncate)
//! read(ino, offset, buf) -> Result<usize>;  write(ino, offset, data, now) -> Result<usize>
//! write_data(ino, offset, data) -> Result<usize>          write leaving the times alone (writeback)
//! truncate(ino, size, now) -> Result<()>;  readlink(ino) -> Result<TryVec<u8>>
//! fallocate(ino, offset, len, keep_size, now) -> Result<()>        mode 0 / KEEP_SIZE, all or nothing
//! punch_hole(ino, offset, len, now) -> Result<()>                  PUNCH_HOLE (size kept)
//! zero_range(ino, offset, len, keep_size, now) -> Result<()>       ZERO_RANGE
//! seek_data(ino, offset) -> Result<Option<u64>>;  seek_hole(ino, offset) -> Result<u64>
//! extents(ino, from, emit(logical, physical, len, shared) -> bool) -> Result<()>   bytes, for FIEMAP
//! get_xattr(ino, name, buf) -> Result<usize>   (empty buf: size query; Err(Range) if too small)
//! set_xattr(ino, name, value, flags, now);  list_xattr(ino, buf) -> Result<usize>;  remove_xattr(ino, name, now)
//! evict(ino) -> Result<()>      the VFS dropped its last reference; frees the inode if nlink is 0
//! trees() -> Result<TryVec<TreeInfo>>   every tree, for fsck and dump-tree
//! check(repair) -> Result<check::Report>;  dump(&mut dyn core::fmt::Write) -> Result<()>
//! commit() -> Result<()>;  unmount(self) -> Result<D>
//! set_fast_commit(on); mount_options() -> &MountOptions    fast_commit= on remount; norecovery is no_replay
//! set_read_only(read_only) -> Result<()>                  remount
//! create_subvolume(sv, dir, name, uuid, uid, gid, now) -> Result<SubvolId>
//! snapshot(src, sv, dir, name, read_only, uuid, now) -> Result<SubvolId>   commits first
//! delete_subvolume(sv, dir, name, now) -> Result<SubvolId>  unlinked now, dropped by drop_step
//! drop_step() -> Result<bool>;  pending_drop() -> Result<Option<SubvolId>>
//! subvolume_info(id) -> Result<SubvolInfo>;  list_subvolumes() -> Result<TryVec<SubvolInfo>>
//! set_subvolume_read_only(id, bool);  subvolume_read_only(id) -> Result<bool>
//! names_of(sv, ino) -> Result<TryVec<(dir, name)>>       from the back-references
//! send_begin(SendRequest) -> Result<SendSession>;  send_step(&mut session, out, budget) -> Result<bool>
//! send_end(session)                                       see `crate::send`
//! abort(why: Error);  aborted() -> Option<Error>;  is_writable() -> bool
//! stats() -> store::Stats;  superblock() -> &Superblock
//! ```
//!
//! Edge cases the adapter relies on (details at each method):
//!
//! - `tmpfile` accepts `mode` with `S_IFREG` or no type bits (else
//!   `Invalid`). Its inode is freed by `evict`, or after a crash by the next
//!   read-write mount, unless `link` named it first; `evict` of an inode
//!   with links frees nothing.
//! - `fallocate`, `punch_hole`, `zero_range`: `len` 0 is `Invalid`,
//!   `offset + len` past `MAX_FILE_SIZE` is `FileTooBig`; regular files only
//!   (`IsDir` / `Invalid`). New blocks are unwritten extents (nothing is
//!   written to them) when the superblock has `INCOMPAT_UNWRITTEN`, else
//!   written with zeros.
//!   `fallocate` changes nothing when it returns `NoSpace`; with
//!   `keep_size` it may map blocks past the size. `punch_hole` never changes
//!   the size and ignores the part of the range at or past it.
//! - `seek_data` returns `None` and `seek_hole` returns `offset` when
//!   `offset >= size` (the adapter turns both into ENXIO); below the size,
//!   `seek_data` gives the first byte in a written block (`None` if none
//!   below the size) and `seek_hole` the first byte in a hole or an
//!   unwritten extent, or the size. Block granularity.
//! - `extents` reports each extent item, the one covering `from` included
//!   whole, in bytes; blocks past the size are included.
//! - `set_read_only(true)` commits first; `set_read_only(false)` is
//!   `ReadOnly` after an abort or when the superblock needs read-only, and
//!   reclaims orphans like mount.
//! - Subvolumes (see `crate::subvol`): every change in a read-only one is
//!   `ReadOnly`; an unknown or deleted one is `NotFound`; rename onto or
//!   exchange with a subvolume's name is `CrossDevice`; `rmdir` of a
//!   subvolume's name deletes it when its root directory is empty.
//! - `abort` keeps the first reason; afterwards every change and `commit`
//!   is `ReadOnly`, nothing more reaches the device (unmount included), and
//!   reads see the trees in memory.
//!
//! Unlinking the last name of an inode puts it on the orphan list instead
//! of freeing it: the VFS may still have it open. `evict` frees it; at
//! mount, whatever is still on the orphan list is freed.
//!
//! Every changing call first reserves a worst-case number of blocks; when
//! that fails it commits once (blocks freed by this transaction become
//! usable only then) and otherwise returns `NoSpace` before changing
//! anything. A failure after changes began aborts the transaction (see
//! `crate::store`).
//!
//! Limits: names 1..=255 bytes; symlink targets 1..=4095 bytes; xattr
//! names 1..=255 bytes, values up to 64 KiB, any number per inode; files up
//! to `MAX_FILE_SIZE` = 2^48 bytes (256 TiB); 65000 links per inode.
//!
//! Concurrency is the caller's: every method takes `&mut self`, the kernel
//! adapter serialises calls with one lock per filesystem. The dirty metadata
//! a transaction holds is bounded by `MountOptions::dirty_limit` (the store
//! commits on its own when it is reached, at an operation boundary).
//!
//! # Designed in, not yet implemented
//!
//! **Log tree (fsync of directory trees).** Fast commit
//! (`crate::fast_commit`) and tree-log records (`crate::tree_log`, for
//! files and for a directory's entries naming files) are built. The
//! superblock also reserves a log tree pointer, for what those records do
//! not cover (directories made, moved or removed, a directory's own
//! attributes): they would be logged in a tree of id `LOG_TREE_ID`,
//! published without a full commit and replayed after the records; a
//! non-empty log tree sets `INCOMPAT_LOG_TREE`, so code that cannot replay
//! refuses the image.

use crate::btree::{self, Cursor, Dir, TreeRoot};
use crate::device::BlockDevice;
use crate::error::{Error, Result};
use crate::format::*;
use crate::mem::TryVec;
use crate::pending_orphans::PendingOrphans;
use crate::store::Store;
pub use crate::subvol::SubvolId;
use crate::subvol::Subvolume;
use crate::superblock;

/// Mount-time choices.
#[derive(Debug, Clone, Copy)]
pub struct MountOptions {
    /// Never write: no orphan cleanup, every change refused.
    pub read_only: bool,
    /// Commit on its own once this many metadata blocks are dirty
    /// (bounds the memory a transaction holds); 0 for never.
    pub dirty_limit: usize,
    /// Clean metadata blocks to keep cached.
    pub cache_blocks: usize,
    /// For fsck: mount even when the root item's inode counters are out of
    /// range (they are then taken as unknown), so `check` can count the
    /// inodes and repair them. The kernel never sets it: it relies on the
    /// counters' bounds.
    pub tolerate_bad_counters: bool,
    /// Serve fsyncs by fast-commit records where they can (`fast_commit=`);
    /// off, every fsync that has something to write is a full commit,
    /// counted under `Ineligible::Disabled`. Changed by `set_fast_commit`.
    pub fast_commit: bool,
    /// Leave the fast-commit records unreplayed (`norecovery`): the state
    /// is that of the last full commit. Read-only only, and for the whole
    /// mount, since a commit would make the unreplayed records stale.
    pub no_replay: bool,
    /// A monotonic clock in nanoseconds, to time replay
    /// (`FastCommitStats::replay_ns`); the core has no clock of its own.
    pub clock: Option<fn() -> u64>,
}

impl Default for MountOptions {
    fn default() -> Self {
        MountOptions {
            read_only: false,
            dirty_limit: 16384,
            cache_blocks: 4096,
            tolerate_bad_counters: false,
            fast_commit: true,
            no_replay: false,
            clock: None,
        }
    }
}

/// What `getattr` reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InodeAttr {
    /// Inode number.
    pub ino: u64,
    /// Type and permission bits.
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Size in bytes.
    pub size: u64,
    /// Link count.
    pub nlink: u32,
    /// Space used, in 512-byte units.
    pub blocks: u64,
    /// Last access.
    pub atime: Timespec,
    /// Last modification.
    pub mtime: Timespec,
    /// Last status change.
    pub ctime: Timespec,
    /// Creation.
    pub btime: Timespec,
    /// Device number.
    pub rdev: u64,
    /// Inode generation.
    pub generation: u64,
    /// Inode flags.
    pub flags: u32,
}

impl InodeAttr {
    /// The file type.
    pub fn file_type(&self) -> FileType {
        FileType::from_mode(self.mode).unwrap_or(FileType::Regular)
    }
}

/// Changes `setattr` makes; `None` leaves a field alone.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SetAttr {
    /// Permission bits (the type bits are kept).
    pub mode: Option<u32>,
    /// Owner.
    pub uid: Option<u32>,
    /// Group.
    pub gid: Option<u32>,
    /// New size (truncate or extend).
    pub size: Option<u64>,
    /// Access time.
    pub atime: Option<Timespec>,
    /// Modification time.
    pub mtime: Option<Timespec>,
    /// Status change time (default: `now`).
    pub ctime: Option<Timespec>,
    /// Inode flags.
    pub flags: Option<u32>,
}

/// What `statfs` reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatFs {
    /// Block size.
    pub block_size: u32,
    /// Blocks in the filesystem.
    pub total_blocks: u64,
    /// Blocks not in use.
    pub free_blocks: u64,
    /// Blocks an unprivileged caller may still use.
    pub avail_blocks: u64,
    /// Inodes (used plus what free space could hold).
    pub files: u64,
    /// Inodes that could still be created.
    pub free_files: u64,
    /// Longest name.
    pub name_max: u32,
}

/// One tree, as `trees()` lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TreeInfo {
    /// Its root.
    pub root: TreeRoot,
    /// The first key still in the tree: a deleted subvolume's drop
    /// progress (everything left of it is freed already), else the
    /// smallest key. Walks start here (`Store::walk_from`).
    pub from: Key,
}

/// The callback `readdir` feeds: `(name, ino, type, next_cookie)`,
/// returning false to stop.
pub type DirEmit<'a> = dyn FnMut(&[u8], u64, FileType, u64) -> bool + 'a;

/// The callback `extents` feeds: `(logical, physical, length)` in bytes and
/// what else is known of the extent, returning false to stop.
pub type ExtentEmit<'a> = dyn FnMut(u64, u64, u64, ExtentState) -> bool + 'a;

/// What `extents` reports of an extent besides where it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExtentState {
    /// Another subvolume shares it (FIEMAP_EXTENT_SHARED).
    pub shared: bool,
    /// Preallocated, reads as zeros (FIEMAP_EXTENT_UNWRITTEN).
    pub unwritten: bool,
}

/// `rename` flag: fail if the new name exists.
pub const RENAME_NOREPLACE: u32 = 1;
/// `rename` flag: swap the two names.
pub const RENAME_EXCHANGE: u32 = 2;
/// `set_xattr` flag: fail if the attribute exists.
pub const XATTR_CREATE: u32 = 1;
/// `set_xattr` flag: fail if the attribute does not exist.
pub const XATTR_REPLACE: u32 = 2;
/// Most hard links to one inode.
pub const LINK_MAX: u32 = 65000;

/// A mounted filesystem.
pub struct Filesystem<D: BlockDevice> {
    pub(crate) s: Store<D>,
    /// The subvolume the running operation works in (see `enter`).
    pub(crate) sv: Subvolume,
    /// The other subvolumes opened since mount.
    pub(crate) parked: TryVec<Subvolume>,
    /// Inodes of the live subvolumes not opened since mount, as their root
    /// items say (statfs counts these with the open ones').
    pub(crate) unopened_inodes: u64,
    /// Inode items written now leave their inode fast-commit eligible
    /// (see `expressible`).
    pub(crate) fc_expressible: bool,
    /// Snapshots a send is reading, once per send (see `crate::send`).
    pub(crate) sending: TryVec<SubvolId>,
    pub(crate) opts: MountOptions,
    pub(crate) global_reserve: u64,
    /// `mod_seq` when the running operation began changing trees.
    pub(crate) op_seq: u64,
    /// Orphan items not yet in their trees (`crate::pending_orphans`).
    pub(crate) pending_orphans: PendingOrphans,
}

/// Checks a directory entry name.
pub(crate) fn check_name(name: &[u8]) -> Result<()> {
    if name.len() > NAME_MAX {
        return Err(Error::NameTooLong);
    }
    if name.is_empty() || name.contains(&b'/') || name.contains(&0) || name == b"." || name == b".." {
        return Err(Error::Invalid("invalid file name"));
    }
    Ok(())
}

pub(crate) fn inode_key(ino: u64) -> Key {
    Key::new(ino, INODE_KEY, 0)
}

impl<D: BlockDevice> Filesystem<D> {
    /// Mounts read-write with default options.
    pub fn mount(dev: D) -> Result<Self> {
        Self::mount_with(dev, MountOptions::default())
    }

    /// Mounts: reads the newest valid superblock, validates the tree roots,
    /// rebuilds free space, replays the fsyncs since the last commit, and
    /// (read-write) reclaims orphans. `open` and `finish_mount` in one.
    pub fn mount_with(dev: D, opts: MountOptions) -> Result<Self> {
        let mut fs = Self::open(dev, opts)?;
        fs.finish_mount()?;
        Ok(fs)
    }

    /// The first half of `mount_with`: the filesystem as of its last
    /// commit, checked and ready for `finish_mount`, which must come before
    /// any other call. Apart so that a caller can move the (large) value
    /// into its place first, and replay's deep calls then run on a stack
    /// that no longer holds the value being built. Never inlined: its
    /// frame holds the store and the filesystem while they are built, and
    /// inlined into the caller's it would sit beside the caller's own slot
    /// for the result (the kernel's mount had one frame of 8 KiB).
    #[inline(never)]
    pub fn open(mut dev: D, opts: MountOptions) -> Result<Self> {
        let sb = superblock::read_superblock(&mut dev)?;
        if sb.needs_read_only() && !opts.read_only {
            return Err(Error::ReadOnly);
        }
        if opts.no_replay && !opts.read_only {
            return Err(Error::Invalid("skipping the fast-commit replay needs a read-only mount"));
        }
        if sb.root_tree.block == 0 || sb.alloc_tree.block == 0 {
            return Err(Error::corrupt("superblock has no root or allocation tree"));
        }
        let mut s = Store::new(dev, sb)?;
        s.cache_limit = opts.cache_blocks.max(64);
        let (rt, at) = (s.root_tree, s.alloc_tree);
        s.node(rt.block, rt.generation, rt.level)?;
        s.node(at.block, at.generation, at.level)?;
        s.load_free_space()?;
        let sv = Subvolume::load(&mut s, SubvolId::DEFAULT, opts.tolerate_bad_counters)?.ok_or(Error::corrupt("no default subvolume"))?;
        let total = s.sb.total_blocks;
        let mut fs = Filesystem {
            s,
            sv,
            parked: TryVec::new(),
            unopened_inodes: 0,
            fc_expressible: false,
            sending: TryVec::new(),
            opts,
            global_reserve: crate::store::global_reserve(total),
            op_seq: 0,
            pending_orphans: PendingOrphans::default(),
        };
        fs.unopened_inodes = fs.count_unopened_inodes()?;
        let root_attr = fs.getattr(SubvolId::DEFAULT, ROOT_DIR_INO).map_err(|e| match e {
            Error::NotFound => Error::corrupt("root directory's inode is missing"),
            e => e,
        })?;
        if root_attr.file_type() != FileType::Dir {
            return Err(Error::corrupt("root directory is not a directory"));
        }
        Ok(fs)
    }

    /// The second half of `mount_with`, once after `open`: replays the
    /// fsyncs since the last commit from the fast-commit area (in memory
    /// only on a read-only mount, not at all with `no_replay`), then
    /// (read-write) reclaims orphans.
    pub fn finish_mount(&mut self) -> Result<()> {
        let fs = self;
        let opts = fs.opts;
        if !opts.no_replay {
            let started = opts.clock.map(|now| now());
            if fs.replay_fast_commits()? > 0 && !opts.read_only {
                fs.commit()?;
            }
            if let (Some(now), Some(t0), true) = (opts.clock, started, fs.s.fc.stats.replayed > 0) {
                fs.s.fc.stats.replay_ns = now().saturating_sub(t0);
            }
        }
        // Replay is over: no record will claim a free block any more, so
        // nodes may take runs of free blocks ahead of need.
        fs.s.space.cluster_meta = true;
        if !opts.read_only {
            fs.reclaim_all_orphans()?;
        }
        Ok(())
    }

    /// Creates the trees of a new filesystem on a store whose free space is
    /// set up (used by mkfs).
    pub(crate) fn create_new(mut s: Store<D>, root_dir: InodeItem) -> Result<Self> {
        let at = s.new_node(ALLOC_TREE_ID, 0)?;
        s.alloc_tree = TreeRoot { id: ALLOC_TREE_ID, block: at, generation: s.gen, level: 0, last_snapshot: 0 };
        let rt = s.new_node(ROOT_TREE_ID, 0)?;
        s.root_tree = TreeRoot { id: ROOT_TREE_ID, block: rt, generation: s.gen, level: 0, last_snapshot: 0 };
        let ft = s.new_node(FS_TREE_ID, 0)?;
        let root = TreeRoot { id: FS_TREE_ID, block: ft, generation: s.gen, level: 0, last_snapshot: 0 };
        // The default subvolume's UUID is the filesystem's.
        let item = RootItem {
            last_ino: ROOT_DIR_INO,
            inode_count: 1,
            root_dir: ROOT_DIR_INO,
            uuid: s.sb.uuid,
            otransid: s.gen,
            ctransid: s.gen,
            otime: root_dir.ctime,
            ctime: root_dir.ctime,
            ..Default::default()
        };
        let total = s.sb.total_blocks;
        let sv = Subvolume { id: SubvolId::DEFAULT, root, item, stored: item };
        let mut fs = Filesystem {
            s,
            sv,
            parked: TryVec::new(),
            unopened_inodes: 0,
            fc_expressible: false,
            sending: TryVec::new(),
            opts: MountOptions::default(),
            global_reserve: crate::store::global_reserve(total),
            op_seq: 0,
            pending_orphans: PendingOrphans::default(),
        };
        let ino = InodeItem { transid: fs.s.gen, generation: fs.s.gen, ..root_dir };
        btree::insert(&mut fs.s, &mut fs.sv.root, &inode_key(ROOT_DIR_INO), &ino.encode())?;
        let (key, data) = (Key::new(FS_TREE_ID, ROOT_ITEM_KEY, 0), fs.sv.current_item().encode());
        let mut rt = fs.s.root_tree;
        btree::insert(&mut fs.s, &mut rt, &key, &data)?;
        fs.s.root_tree = rt;
        fs.sv.stored = fs.sv.current_item();
        Ok(fs)
    }

    /// Inode number of the root directory.
    pub fn root_ino(&self) -> u64 {
        self.sv.item.root_dir
    }

    /// Block size.
    pub fn block_size(&self) -> u32 {
        self.s.sb.block_size
    }

    /// The superblock as last committed.
    pub fn superblock(&self) -> &superblock::Superblock {
        &self.s.sb
    }

    /// I/O and commit counters.
    pub fn stats(&self) -> crate::store::Stats {
        self.s.stats
    }

    /// Clean metadata nodes cached: what `shrink_cache` can give back.
    pub fn cached_clean_nodes(&self) -> usize {
        self.s.clean_nodes()
    }

    /// Memory reclaim: drops up to `n` clean cached nodes, least recently
    /// used first, and returns how many went (see `Store::shrink`). Never
    /// fails and allocates nothing; a later read of a dropped node reads
    /// it from the device again.
    pub fn shrink_cache(&mut self, n: usize) -> usize {
        self.s.shrink(n)
    }

    /// The device (for tests and tools that inspect it while mounted).
    pub fn device(&mut self) -> &mut D {
        &mut self.s.dev
    }

    /// The transaction store, for tools and tests that work on trees
    /// directly (dump-tree, scale tests). Changing trees through it
    /// bypasses every filesystem invariant.
    pub fn store(&mut self) -> &mut Store<D> {
        &mut self.s
    }

    /// The store and the mounted fs tree's root, for fsck tests and repair
    /// tools that edit items directly. Bypasses every invariant.
    pub fn raw_fs_tree(&mut self) -> (&mut Store<D>, &mut TreeRoot) {
        (&mut self.s, &mut self.sv.root)
    }

    /// Why the running transaction was aborted, if it was (the filesystem
    /// then refuses changes; the device holds the last commit).
    pub fn aborted(&self) -> Option<Error> {
        self.s.aborted
    }

    pub(crate) fn read_inode(&mut self, ino: u64) -> Result<InodeItem> {
        self.s.stats.inode_reads += 1;
        self.sv_read().read_inode(ino)
    }

    /// `read_inode` for calls that only read, which also see the stand-in
    /// directory of a snapshot (`EMPTY_SUBVOL_DIR_INO`): empty, no xattrs,
    /// the snapshot's creation time. Calls that change an inode use
    /// `read_inode`, for which it does not exist.
    pub(crate) fn inode_for_reading(&mut self, ino: u64) -> Result<InodeItem> {
        self.s.stats.inode_reads += 1;
        self.sv_read().inode_for_reading(ino)
    }

    /// `read_inode`, `f`, then `write_inode`, in one search of the leaf
    /// when the transaction already changed it; returns the item written.
    pub(crate) fn modify_inode(&mut self, ino: u64, f: impl FnOnce(&mut InodeItem)) -> Result<InodeItem> {
        let (bounds, gen) = (self.s.bounds(), self.s.gen);
        let root = self.sv.root;
        let mut f = Some(f);
        // An item of another length than this version writes (none today)
        // takes the path below, as does a leaf no finger names.
        let changed = btree::update_in_place(&mut self.s, &root, &inode_key(ino), |data| {
            let Ok(data) = <&mut [u8; INODE_ITEM_SIZE]>::try_from(data) else { return Ok(None) };
            let mut it = crate::error::CorruptAt::at_ino(InodeItem::decode_bounded(data, &bounds), ino)?;
            if let Some(f) = f.take() {
                f(&mut it);
            }
            it.transid = gen;
            *data = it.encode();
            Ok(Some(it))
        })?;
        self.s.stats.inode_reads += 1;
        let it = match changed.flatten() {
            Some(it) => it,
            None => {
                let mut it = self.sv_read().read_inode(ino)?;
                if let Some(f) = f.take() {
                    f(&mut it);
                }
                self.write_inode(ino, &mut it)?;
                return Ok(it);
            }
        };
        self.mark_if_inexpressible(ino, &it)?;
        Ok(it)
    }

    /// A committed regular file changed other than by `expressible` code:
    /// its fsync needs a full commit until the next one.
    fn mark_if_inexpressible(&mut self, ino: u64, it: &InodeItem) -> Result<()> {
        if !self.fc_expressible && it.file_type() == FileType::Regular {
            self.s.fc.mark(self.sv.id, ino)?;
        }
        Ok(())
    }

    pub(crate) fn write_inode(&mut self, ino: u64, it: &mut InodeItem) -> Result<()> {
        it.transid = self.s.gen;
        self.mark_if_inexpressible(ino, it)?;
        btree::update(&mut self.s, &mut self.sv.root, &inode_key(ino), &it.encode())
    }

    /// Runs `f` as a change a fast-commit record can express (data
    /// writes, attribute changes that do not shrink the file): the inode
    /// items it writes leave the inode eligible.
    pub(crate) fn expressible<T>(&mut self, f: impl FnOnce(&mut Self) -> Result<T>) -> Result<T> {
        let outer = core::mem::replace(&mut self.fc_expressible, true);
        let r = f(self);
        self.fc_expressible = outer;
        r
    }

    pub(crate) fn attr_of(&self, ino: u64, it: &InodeItem) -> InodeAttr {
        crate::tree_read::attr_of(&self.s.bounds(), ino, it)
    }

    /// Attributes of an inode.
    pub fn getattr(&mut self, sv: SubvolId, ino: u64) -> Result<InodeAttr> {
        self.enter(sv)?;
        let it = self.inode_for_reading(ino)?;
        Ok(self.attr_of(ino, &it))
    }

    pub(crate) fn read_dir_inode(&mut self, dir: u64) -> Result<InodeItem> {
        let it = self.read_inode(dir)?;
        if !it.is_dir() {
            return Err(Error::NotDir);
        }
        Ok(it)
    }

    /// The inode a name in a directory points at.
    pub fn lookup(&mut self, sv: SubvolId, dir: u64, name: &[u8]) -> Result<u64> {
        self.lookup_at(sv, dir, name).map(|(_, ino)| ino)
    }

    /// `lookup` that also says which subvolume the inode is in: a name
    /// that is a subvolume gives that subvolume's root directory.
    pub fn lookup_at(&mut self, sv: SubvolId, dir: u64, name: &[u8]) -> Result<(SubvolId, u64)> {
        self.enter(sv)?;
        self.s.stats.inode_reads += 1;
        self.sv_read().lookup_at(dir, name)
    }

    /// `lookup_at`, with the attributes of the inode found when it is in
    /// `sv` itself (a lookup, as du's, then needs no second call to read
    /// them); a subvolume's root directory is read in its own subvolume
    /// by the caller, which checks that subvolume first.
    pub fn lookup_attr(&mut self, sv: SubvolId, dir: u64, name: &[u8]) -> Result<(SubvolId, u64, Option<InodeAttr>)> {
        self.enter(sv)?;
        self.s.stats.inode_reads += 2;
        self.sv_read().lookup_attr(dir, name)
    }

    /// Lists a directory from `cookie` on. `emit(name, ino, type,
    /// next_cookie)` returns false to stop. Cookies are stable: an entry's
    /// cookie never changes while it exists, and new entries get larger ones.
    pub fn readdir(&mut self, sv: SubvolId, dir: u64, cookie: u64, emit: &mut DirEmit<'_>) -> Result<()> {
        self.enter(sv)?;
        self.s.stats.inode_reads += 1;
        self.sv_read().readdir(dir, cookie, emit)
    }

    /// Free blocks less the global reserve: statfs' `avail_blocks`, without
    /// counting inodes.
    pub fn avail_blocks(&self) -> u64 {
        self.s.space.free_for_statfs().saturating_sub(self.global_reserve)
    }

    /// Applies the data frees kept back for the end of the transaction
    /// (`crate::deferred_frees`), so that `statfs` counts their blocks
    /// free at once, as after any unlink; nothing to do when read-only.
    pub fn settle_frees(&mut self) -> Result<()> {
        if self.s.space.deferred.is_empty() || self.check_writable().is_err() {
            return Ok(());
        }
        let seq = self.s.mod_seq();
        let r = self.s.apply_refs();
        self.abort_if_changed(seq, r)
    }

    /// Space and inode counts.
    pub fn statfs(&self) -> StatFs {
        let sp = &self.s.space;
        let free = sp.free_for_statfs();
        StatFs {
            block_size: self.s.sb.block_size,
            total_blocks: self.s.sb.total_blocks,
            free_blocks: free,
            avail_blocks: self.avail_blocks(),
            files: self.inode_count().saturating_add(free),
            free_files: free,
            name_max: NAME_MAX as u32,
        }
    }

    /// Every tree: the root tree, the allocation tree and each fs tree
    /// the root tree lists (the mounted subvolume as it is in memory).
    pub fn trees(&mut self) -> Result<TryVec<TreeInfo>> {
        let mut v = TryVec::new();
        v.try_push(TreeInfo { root: self.s.root_tree, from: Key::default() })?;
        v.try_push(TreeInfo { root: self.s.alloc_tree, from: Key::default() })?;
        let rt = self.s.root_tree;
        let mut c = Cursor::new(Key::default(), Dir::Forward);
        let mut found: TryVec<(u64, RootItem)> = TryVec::new();
        while let Some((k, d)) = c.next(&mut self.s, &rt)? {
            if k.ty == ROOT_ITEM_KEY {
                found.try_push((k.objectid, RootItem::decode(d)?))?;
            }
        }
        for &(id, ri) in found.iter() {
            let root = match self.open_subvol(SubvolId(id)) {
                Some(sv) => sv.root,
                None => crate::subvol::tree_root(id, &ri),
            };
            v.try_push(TreeInfo { root, from: ri.drop_progress })?;
        }
        Ok(v)
    }

    /// Makes everything done so far durable.
    pub fn commit(&mut self) -> Result<()> {
        match self.commit_seal()? {
            Some(sealed) => {
                let written = self.s.commit_write_own(&sealed);
                self.s.commit_done(sealed, written)
            }
            None => Ok(()),
        }
    }

    /// The first step of a commit whose writes run with only `&self`, so
    /// that other tasks read the cached trees meanwhile: stores what the
    /// trees need and seals the dirty nodes. `None` when nothing is
    /// uncommitted. Then `commit_write` with a handle on this device, then
    /// `commit_done`; nothing may change the filesystem in between.
    pub fn commit_seal(&mut self) -> Result<Option<crate::store::SealedCommit>> {
        self.check_writable()?;
        if !self.s.is_dirty() {
            return Ok(None);
        }
        let r = self.store_pending_orphans().and_then(|()| self.s.apply_refs()).and_then(|()| self.store_root_items());
        if let Err(e) = r {
            self.s.aborted = Some(e);
            return Err(e);
        }
        self.s.commit_seal().map(Some)
    }

    /// A sealed commit's node writes, flush and superblock writes, through
    /// `dev`; returns the device writes of nodes, for `commit_done`.
    pub fn commit_write(&self, sealed: &crate::store::SealedCommit, dev: &mut dyn BlockDevice) -> Result<u64> {
        self.s.commit_write(sealed, dev)
    }

    /// Ends a commit with what its `commit_write` returned: on success
    /// the commit is the filesystem's; on an error the filesystem stops.
    pub fn commit_done(&mut self, sealed: crate::store::SealedCommit, written: Result<u64>) -> Result<()> {
        self.s.commit_done(sealed, written)
    }

    /// Commits if needed and hands the device back.
    pub fn unmount(mut self) -> Result<D> {
        if !self.opts.read_only && self.s.aborted.is_none() {
            self.commit()?;
            self.s.flush_superblock_copy()?;
        }
        Ok(self.s.dev)
    }

    /// Whether a change could be made now (mounted read-write, not aborted).
    pub fn is_writable(&self) -> bool {
        self.check_writable().is_ok()
    }

    /// Stops the filesystem: nothing more is changed or committed (the first
    /// reason is kept and `aborted` reports it); reads keep working.
    /// What the running transaction changed is dropped with it: the device
    /// keeps the last commit, and `unmount` writes nothing.
    pub fn abort(&mut self, why: Error) {
        if self.s.aborted.is_none() {
            self.s.aborted = Some(why);
        }
    }

    /// Remount. To read-only: commits what is pending (unless aborted), then
    /// refuses every change with `ReadOnly`; a failed commit aborts (see
    /// `commit`) and is returned, read-only either way. To read-write:
    /// `ReadOnly` if the transaction was aborted or the superblock has
    /// read-only compatible features this code lacks; otherwise changes are
    /// allowed again and the orphan list is reclaimed and committed, as at
    /// mount (if that fails the filesystem stays read-only and the error is
    /// returned).
    pub fn set_read_only(&mut self, read_only: bool) -> Result<()> {
        if read_only == self.opts.read_only {
            return Ok(());
        }
        if read_only {
            let r = if self.s.aborted.is_none() { self.commit() } else { Ok(()) };
            self.opts.read_only = true;
            return r;
        }
        if self.s.aborted.is_some() || self.s.sb.needs_read_only() {
            return Err(Error::ReadOnly);
        }
        if self.opts.no_replay {
            // A commit would make the records this mount left alone stale.
            return Err(Error::Invalid("mounted without fast-commit replay: read-only for good"));
        }
        self.opts.read_only = false;
        let r = self.reclaim_all_orphans();
        if r.is_err() {
            self.opts.read_only = true;
        }
        r
    }

    /// Turns fast commits on or off (remount with `fast_commit=`); records
    /// already written stay valid until the next commit.
    pub fn set_fast_commit(&mut self, on: bool) {
        self.opts.fast_commit = on;
    }

    /// The options the filesystem is mounted with now.
    pub fn mount_options(&self) -> &MountOptions {
        &self.opts
    }

    pub(crate) fn check_writable(&self) -> Result<()> {
        if self.opts.read_only {
            return Err(Error::ReadOnly);
        }
        self.s.check_writable()
    }

    /// Makes sure `items` tree changes and `data` new data blocks can be
    /// done without running out of space, committing once to free pinned
    /// blocks if that helps.
    pub(crate) fn reserve(&mut self, items: u64, data: u64) -> Result<()> {
        let r = self.reserve_inner(items, data, false);
        // Commits made here changed no visible state: the operation's own
        // changes start now, and a refusal leaves nothing half done.
        self.op_seq = self.s.mod_seq();
        r
    }

    /// `reserve` for operations that only remove items (unlink, rmdir,
    /// evict, shrinking truncate): they may dip into half of the global
    /// reserve, since they are how a full filesystem gets space back, and
    /// removing an item copies a path but never splits.
    pub(crate) fn reserve_delete(&mut self, items: u64) -> Result<()> {
        let r = self.reserve_inner(items, 0, true);
        self.op_seq = self.s.mod_seq();
        r
    }

    fn reserve_inner(&mut self, items: u64, data: u64, delete: bool) -> Result<()> {
        if self.opts.dirty_limit != 0 && self.s.dirty_nodes() >= self.opts.dirty_limit {
            self.commit()?;
        }
        if self.fits(items, data, delete) {
            return Ok(());
        }
        // Blocks freed in the last commit, or frees kept back: a commit
        // makes them free.
        if self.s.space.pinned.total() > 0 || !self.s.space.deferred.is_empty() {
            self.commit()?;
            if self.fits(items, data, delete) {
                return Ok(());
            }
        }
        Err(Error::NoSpace)
    }

    /// Whether the free blocks cover `items` tree changes and `data` data
    /// blocks plus the global reserve (half of it for removals), without
    /// committing; see `reserve`.
    pub(crate) fn fits(&self, items: u64, data: u64, delete: bool) -> bool {
        let floor = if delete { self.global_reserve / 2 } else { self.global_reserve };
        let need = data.saturating_add(self.node_blocks_for(items, delete)).saturating_add(floor);
        self.s.space.reservable() >= need
    }

    /// The most node blocks `items` tree changes may allocate: each copies
    /// a path of the fs tree (and splits it, unless it only removes) and
    /// a path of the allocation tree.
    pub(crate) fn node_blocks_for(&self, items: u64, delete: bool) -> u64 {
        let hf = self.sv.root.level as u64 + 2;
        let ha = self.s.alloc_tree.level as u64 + 2;
        let per_item = if delete { hf + ha } else { 2 * hf + ha };
        items.saturating_mul(per_item)
    }

    /// Runs a changing operation: refuses it when read-only, applies queued
    /// refcount changes after it, and aborts the transaction if it failed
    /// after changing trees.
    pub(crate) fn change<T>(&mut self, f: impl FnOnce(&mut Self) -> Result<T>) -> Result<T> {
        self.check_writable()?;
        if self.sv.item.is_read_only() {
            return Err(Error::ReadOnly);
        }
        self.op_seq = self.s.mod_seq();
        let r = f(self).and_then(|v| self.s.apply_refs_after_change().map(|()| v));
        self.abort_if_changed(self.op_seq, r)
    }

    /// Passes `r` on, first aborting the transaction when it is an error
    /// and trees changed since `mod_seq` was `seq`: a half-made change must
    /// never be committed.
    fn abort_if_changed<T>(&mut self, seq: u64, r: Result<T>) -> Result<T> {
        if let Err(e) = r {
            if self.s.mod_seq() != seq && self.s.aborted.is_none() {
                self.s.aborted = Some(e);
            }
        }
        r
    }

    /// Hands out a new inode number.
    pub(crate) fn next_ino(&mut self) -> Result<u64> {
        let ino = self.sv.item.last_ino.checked_add(1).ok_or(Error::NoSpace)?;
        if ino >= LAST_INO_LIMIT {
            return Err(Error::NoSpace);
        }
        self.sv.item.last_ino = ino;
        Ok(ino)
    }

    /// Frees the inodes on the orphan list of every writable subvolume (at
    /// a read-write mount or remount): unlinked files that were still open
    /// when the filesystem last went down.
    fn reclaim_all_orphans(&mut self) -> Result<()> {
        let active = self.sv.id;
        for id in self.writable_subvolumes()?.iter() {
            self.enter(*id)?;
            self.change(|fs| fs.reclaim_orphans())?;
        }
        self.enter(active)
    }

    fn reclaim_orphans(&mut self) -> Result<()> {
        let mut any = false;
        loop {
            let mut buf = TryVec::new();
            let root = self.sv.root;
            let Some(k) = btree::first_in(&mut self.s, &root, Key::new(ORPHAN_OBJECTID, ORPHAN_KEY, 0), &mut buf)? else { break };
            any = true;
            self.evict_orphan(k.offset)?;
        }
        if any {
            self.commit()?;
        }
        Ok(())
    }
}

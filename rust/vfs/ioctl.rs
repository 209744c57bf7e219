// SPDX-License-Identifier: GPL-2.0
//! ioctls on ferrofs files and directories: FS_IOC_SHUTDOWN (the "godown"
//! of fstests) and the subvolume calls of
//! [`include/uapi/linux/ferrofs.h`] (create, snapshot, delete, flags, info,
//! list, received-subvolume marking), and send (`super::send`). The inode-flag ioctls come through the VFS's fileattr operations
//! instead. The subvolume calls' structures and numbers are `crate::uapi`,
//! the one Rust definition of that header, which the tools use too.
//!
//! Each callback only turns its argument into typed values; user memory is
//! reached only through the user-copy helpers, never under the core lock.
//! The directory calls lock the directory as mkdir and rmdir do (its
//! i_rwsem, then the victim's for a delete), look the name up in the
//! dcache under that lock, and leave the dcache true afterwards: a new
//! subvolume's dentry is instantiated, a deleted one's is invalidated.
//!
//! Deleting a subvolume that is in use gives EBUSY: any dentry under its
//! root still referenced once the unused ones are pruned (an open file, a
//! working directory, a mount point), or its root's dentry referenced by
//! anything but the delete itself (a working directory, an open directory,
//! the root of a `subvol=` mount). Inodes in use without a dentry there
//! cannot exist: every open file, mapping and working directory pins one. The core's tree is then dropped in
//! the background (`super_ops::drop_step`).

use super::bindings as b;
use super::fs_info::FsInfo;
use super::inode::{INode, Locked};
use super::types::{from_result, Dentry, File};
use super::{namei, now};
use crate::error::Error as CoreError;
use crate::format::{ROOT_DIR_INO, S_IFDIR};
use crate::subvol::{SubvolId, SubvolInfo};
use crate::uapi::{self, SubvolList, VolArgs, LIST_MORE, SUBVOL_NAME_MAX, SUBVOL_RDONLY};
use core::mem::{offset_of, size_of, MaybeUninit};
use core::ptr::NonNull;
use kernel::ffi::{c_long, c_uint, c_ulong};
use kernel::prelude::*;
use kernel::types::ARef;

/// `_IOR('X', 125, __u32)`, as xfs and ext4 define it.
pub(crate) const FS_IOC_SHUTDOWN: c_uint = 0x8004_587d;

/// How a shutdown treats work not yet committed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Shutdown {
    /// Flags 0: write back and commit everything first.
    SyncAll,
    /// Flags 1 (LOGFLUSH): commit what the core holds; dirty pages are lost.
    CommitOnly,
    /// Flags 2 (NOLOGFLUSH): stop at once, as a power cut would.
    Immediate,
}

impl Shutdown {
    /// The mode for the ioctl's flag word, or None for an unknown one.
    pub(crate) fn from_flags(flags: u32) -> Option<Self> {
        match flags {
            0 => Some(Shutdown::SyncAll),
            1 => Some(Shutdown::CommitOnly),
            2 => Some(Shutdown::Immediate),
            _ => None,
        }
    }
}

/// `->unlocked_ioctl` of files and directories.
///
/// Each command is a function of its own, not inlined here: the
/// dispatcher's frame would otherwise hold the largest command's locals
/// under every command, deep ones (a snapshot's commit) included.
///
/// # Safety
/// Called by vfs_ioctl with `file` an open ferrofs file or directory, held
/// by the caller for the call, and no lock held; `arg` is the caller's
/// unchecked argument, which reaches memory only through the user-copy
/// helpers.
pub(crate) unsafe extern "C" fn ioctl(file: *mut b::file, cmd: c_uint, arg: c_ulong) -> c_long {
    // SAFETY: the VFS passes an open ferrofs file, held open for the call.
    let file = unsafe { File::from_raw(file) };
    let arg = arg as u64;
    from_result(|| {
        match cmd {
            FS_IOC_SHUTDOWN => shutdown(file, arg as c_ulong)?,
            uapi::IOC_SUBVOL_CREATE => create(file, arg, Create::Subvolume)?,
            uapi::IOC_SNAP_CREATE => create(file, arg, Create::Snapshot)?,
            uapi::IOC_SUBVOL_DELETE => delete(file, arg)?,
            uapi::IOC_SUBVOL_GETFLAGS => get_flags(file, arg)?,
            uapi::IOC_SUBVOL_SETFLAGS => set_flags(file, arg)?,
            uapi::IOC_GET_SUBVOL_INFO => subvol_info(file, arg)?,
            uapi::IOC_LIST_SUBVOLS => list(file, arg)?,
            uapi::IOC_SEND => super::send::send(file, arg)?,
            uapi::IOC_SET_RECEIVED_SUBVOL => set_received(file, arg)?,
            _ => return Err(ENOTTY),
        }
        Ok(0isize)
    })
}

/// Whether the current task has CAP_SYS_ADMIN.
pub(super) fn capable_sys_admin() -> bool {
    // SAFETY: a plain capability check on the current task.
    unsafe { b::capable(b::CAP_SYS_ADMIN as i32) }
}

/// Reads a u32 from the user address `uptr` (get_user).
fn get_user_u32(uptr: c_ulong) -> Result<u32> {
    let mut v = 0u32;
    // SAFETY: get_user checks the user address and handles faults, so any
    // value of `uptr` is allowed; `v` is a valid kernel destination.
    match unsafe { b::ferrofs_get_user_u32(uptr as *const u32, &mut v) } {
        0 => Ok(v),
        _ => Err(EFAULT),
    }
}

/// FS_IOC_SHUTDOWN: checks CAP_SYS_ADMIN, reads the flags word, optionally
/// syncs, then stops the filesystem. The caller holds no lock of this
/// filesystem (the sync takes s_umount, writeback takes folio locks).
#[inline(never)]
fn shutdown(file: &File, arg: c_ulong) -> Result {
    if !capable_sys_admin() {
        return Err(EPERM);
    }
    let mode = Shutdown::from_flags(get_user_u32(arg)?).ok_or(EINVAL)?;
    let sb = file.inode().super_block();
    if mode == Shutdown::SyncAll {
        sb.sync();
    }
    stop(sb.info(), mode);
    Ok(())
}

/// Stops the filesystem: after this every change fails with EIO and
/// nothing more reaches the device.
fn stop(info: &FsInfo, mode: Shutdown) {
    info.mark_shut_down();
    let _ = info.with_core(|fs| {
        if mode != Shutdown::Immediate && fs.is_writable() {
            // A failed commit leaves the last committed state, which is
            // what a shutdown promises anyway.
            let _ = fs.commit();
        }
        fs.abort(CoreError::Io);
        Ok(())
    });
}

/// Plain data copied to and from user memory.
///
/// # Safety
/// Implement only for `#[repr(C)]` types of integers and arrays of them,
/// with no padding: every bit pattern is a valid value (so user bytes may
/// fill one), and no byte is left uninitialised (so copying one out leaks
/// nothing).
pub(super) unsafe trait UserData: Copy {}
// SAFETY: integers and integer arrays, laid out without padding (the size
// asserts in `crate::uapi` match the sums of the fields).
unsafe impl UserData for VolArgs {}
// SAFETY: as above.
unsafe impl UserData for uapi::SubvolInfo {}
// SAFETY: as above.
unsafe impl UserData for SubvolList {}
// SAFETY: as above.
unsafe impl UserData for uapi::SendArgs {}
// SAFETY: as above.
unsafe impl UserData for uapi::ReceivedSubvolArgs {}
// SAFETY: an integer.
unsafe impl UserData for u64 {}

/// An all-zero value of `T`.
fn zeroed<T: UserData>() -> T {
    // SAFETY: every bit pattern, zeros too, is a valid `T` (`UserData`).
    unsafe { MaybeUninit::<T>::zeroed().assume_init() }
}

/// Copies a `T` in from user address `addr`; EFAULT if it cannot be read.
pub(super) fn copy_in<T: UserData>(addr: u64) -> Result<T> {
    let mut v = zeroed::<T>();
    // SAFETY: `v` is `size_of::<T>()` writable bytes; copy_from_user checks
    // the user range and handles faults, so any `addr` is allowed.
    match unsafe { b::ferrofs_copy_from_user((&mut v as *mut T).cast(), addr, size_of::<T>()) } {
        0 => Ok(v),
        _ => Err(EFAULT),
    }
}

/// Copies `v` out to user address `addr`; EFAULT if it cannot be written.
fn copy_out<T: UserData>(addr: u64, v: &T) -> Result {
    // SAFETY: `v` is `size_of::<T>()` initialised bytes (`UserData`: no
    // padding); copy_to_user checks the user range and handles faults.
    match unsafe { b::ferrofs_copy_to_user(addr, (v as *const T).cast(), size_of::<T>()) } {
        0 => Ok(()),
        _ => Err(EFAULT),
    }
}

/// The name of a create, snapshot or delete: NUL-terminated within the
/// field, not empty, not "." or "..", no '/'.
fn checked_name(raw: &[u8; SUBVOL_NAME_MAX + 1]) -> Result<&[u8]> {
    let len = raw.iter().position(|&c| c == 0).ok_or(super::errno_of(CoreError::NameTooLong))?;
    let name = &raw[..len];
    if name.is_empty() || name == b"." || name == b".." || name.contains(&b'/') {
        return Err(EINVAL);
    }
    Ok(name)
}

/// A random UUID for a new subvolume.
fn random_uuid() -> [u8; 16] {
    let mut uuid = [0u8; 16];
    // SAFETY: fills the 16 bytes of `uuid`.
    unsafe { b::ferrofs_uuid(uuid.as_mut_ptr()) };
    uuid
}

/// Write access to the mount of an open file (mnt_want_write_file), held
/// until dropped: EROFS on a read-only mount, and a freeze waits for it.
struct MountWrite<'a>(&'a File);

impl<'a> MountWrite<'a> {
    fn get(file: &'a File) -> Result<Self> {
        // SAFETY: an open file (File's invariant).
        kernel::error::to_result(unsafe { b::mnt_want_write_file(file.as_ptr()) })?;
        Ok(MountWrite(file))
    }
}

impl Drop for MountWrite<'_> {
    fn drop(&mut self) {
        // SAFETY: paired with the successful mnt_want_write_file in `get`.
        unsafe { b::mnt_drop_write_file(self.0.as_ptr()) };
    }
}

/// A file found by descriptor (fget), held until dropped (fput).
///
/// # Invariants
/// `.0` is a file we hold a reference to.
pub(super) struct FdFile(NonNull<b::file>);

impl FdFile {
    /// The file `fd` of the calling task; EBADF if there is none.
    pub(super) fn get(fd: i64) -> Result<Self> {
        let fd = u32::try_from(fd).ok().filter(|&fd| fd <= i32::MAX as u32).ok_or(EBADF)?;
        // SAFETY: fget looks the number up in the current task's table.
        let f = unsafe { b::fget(fd) };
        // INVARIANT: fget returned a reference, or NULL.
        NonNull::new(f).map(FdFile).ok_or(EBADF)
    }

    /// The file as one of ours, if it is open on the filesystem of `near`
    /// (any other filesystem, or another ferrofs, is None).
    fn on_same_fs(&self, near: &INode) -> Option<&File> {
        // SAFETY: a file we hold (type invariant) pins its inode.
        let inode = unsafe { b::ferrofs_file_inode(self.0.as_ptr()) };
        // SAFETY: as above; i_sb never changes.
        let sb = unsafe { b::ferrofs_inode_sb(inode) };
        // SAFETY: a ferrofs file (its super_block is ours), held open by us
        // for the borrow of `self`.
        (sb == near.super_block().as_ptr()).then(|| unsafe { File::from_raw(self.0.as_ptr()) })
    }
}

impl FdFile {
    /// Whether the file was opened for writing.
    pub(super) fn is_writable(&self) -> bool {
        // SAFETY: a file we hold (type invariant).
        unsafe { b::ferrofs_file_writable(self.0.as_ptr()) }
    }

    /// Writes all of `buf` at the file's position, as write(2) would
    /// (short writes are continued; a write that makes no progress is EIO).
    pub(super) fn append_all(&self, mut buf: &[u8]) -> Result {
        while !buf.is_empty() {
            // SAFETY: a file we hold (type invariant); `buf` is readable
            // for its length. kernel_write may sleep: no lock is held.
            let n = unsafe { b::ferrofs_file_append(self.0.as_ptr(), buf.as_ptr().cast(), buf.len()) };
            if n < 0 {
                return Err(kernel::error::Error::from_errno(n as i32));
            }
            let n = (n as usize).min(buf.len());
            if n == 0 {
                return Err(EIO);
            }
            buf = &buf[n..];
        }
        Ok(())
    }
}

impl Drop for FdFile {
    fn drop(&mut self) {
        // SAFETY: the reference fget gave us (type invariant), given back once.
        unsafe { b::fput(self.0.as_ptr()) };
    }
}

/// A dentry looked up under its locked parent, referenced until dropped.
///
/// # Invariants
/// `.0` is a live dentry we hold a reference to, whose parent's i_rwsem
/// this thread holds for as long as the value lives (its name is stable).
struct LookedUp(NonNull<b::dentry>);

impl LookedUp {
    /// `name` in the directory of `dir_file`, whose inode `_locked` holds
    /// locked (lookup_one_len: from the dcache or through `->lookup`).
    fn get(dir_file: &File, _locked: &Locked<'_>, name: &[u8]) -> Result<Self> {
        // SAFETY: the file's dentry is pinned by the open file; its inode's
        // i_rwsem is held (`_locked`), as lookup_one_len requires; `name`
        // is valid for its length (at most NAME_MAX).
        let d = unsafe { b::ferrofs_lookup_one(b::ferrofs_file_dentry(dir_file.as_ptr()), name.as_ptr().cast(), name.len() as i32) };
        // SAFETY: reads the error out of a pointer that may be an ERR_PTR.
        let err = unsafe { b::ferrofs_ptr_err(d.cast()) };
        if err != 0 {
            return Err(Error::from_errno(err as i32));
        }
        // INVARIANT: a referenced dentry under the locked parent.
        NonNull::new(d).map(LookedUp).ok_or(ENOMEM)
    }

    /// As a `Dentry`.
    fn dentry(&self) -> &Dentry {
        // SAFETY: live, with a stable name while `self` lives (type
        // invariant).
        unsafe { Dentry::from_raw(self.0.as_ptr()) }
    }
}

impl Drop for LookedUp {
    fn drop(&mut self) {
        // SAFETY: our reference (type invariant), given back once.
        unsafe { b::dput(self.0.as_ptr()) };
    }
}

/// inode_permission through the file's mount idmap.
fn permission(file: &File, inode: &INode, mask: i32) -> Result {
    // SAFETY: an open file and a live inode.
    kernel::error::to_result(unsafe { b::ferrofs_file_permission(file.as_ptr(), inode.as_ptr(), mask) })
}

/// Whether the caller owns `inode` (through the file's idmap) or has
/// CAP_FOWNER over it.
fn owner_or_capable(file: &File, inode: &INode) -> bool {
    // SAFETY: an open file and a live inode.
    unsafe { b::ferrofs_file_owner_or_capable(file.as_ptr(), inode.as_ptr()) }
}

/// MAY_WRITE | MAY_EXEC: what adding or removing a name needs.
fn may_write_exec() -> i32 {
    // SAFETY: reads immutable constants that shim.c defines.
    unsafe { b::FERROFS_MAY_WRITE | b::FERROFS_MAY_EXEC }
}

/// The root directory of the subvolume `inode` is in.
fn subvol_root(inode: &INode) -> Result<ARef<INode>> {
    Ok(inode.super_block().iget(inode.subvol().id(), ROOT_DIR_INO, None)?)
}

/// What a create ioctl makes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Create {
    Subvolume,
    Snapshot,
}

/// SUBVOL_CREATE and SNAP_CREATE: a new subvolume, or a snapshot of the
/// one `args.fd` is in, named `args.name` in the directory `file`; its id
/// goes back in `args.subvolid`. Needs write and search permission on the
/// directory; a snapshot also ownership of the source's root directory or
/// CAP_SYS_ADMIN. No lock of this filesystem is held by the caller.
#[inline(never)]
fn create(file: &File, arg: u64, what: Create) -> Result {
    let args: VolArgs = copy_in(arg)?;
    let flags_known = if what == Create::Snapshot { SUBVOL_RDONLY } else { 0 };
    if args.reserved.iter().any(|&r| r != 0) || args.flags & !flags_known != 0 || (what == Create::Subvolume && args.fd != 0) {
        return Err(EINVAL);
    }
    let name = checked_name(&args.name)?;
    let dir = file.inode();
    if !dir.is_dir() {
        return Err(ENOTDIR);
    }
    let source = match what {
        Create::Snapshot => Some(FdFile::get(args.fd)?),
        Create::Subvolume => None,
    };
    let source_subvol = match &source {
        Some(f) => {
            let src = f.on_same_fs(dir).ok_or(EXDEV)?.inode();
            if !capable_sys_admin() && !owner_or_capable(file, &*subvol_root(src)?) {
                return Err(EPERM);
            }
            Some(src.subvol().id())
        }
        None => None,
    };
    let _write = MountWrite::get(file)?;
    // A snapshot shares the source's blocks: no direct write may be
    // rewriting one in place meanwhile (they go copy-on-write until then).
    let _no_overwrites = source_subvol.map(|_| dir.info().data_device().close_overwrites());
    if source_subvol.is_some() {
        // The snapshot holds what was written before the call: the page
        // cache goes to the core first (the core commits before sharing).
        dir.super_block().sync();
    }
    let id = create_locked(file, dir, name, source_subvol, args.flags & SUBVOL_RDONLY != 0)?;
    commit_change(dir)?;
    copy_out(arg + offset_of!(VolArgs, subvolid) as u64, &id.0)
}

/// create's part under the directory lock: the name must be new.
fn create_locked(file: &File, dir: &INode, name: &[u8], source: Option<SubvolId>, read_only: bool) -> Result<SubvolId> {
    let locked = dir.lock_parent();
    permission(file, dir, may_write_exec())?;
    let dentry = LookedUp::get(file, &locked, name)?;
    if dentry.dentry().inode().is_some() {
        return Err(EEXIST);
    }
    let (_, uid, gid) = file.idmap().new_owner(dir, S_IFDIR | 0o755);
    let (uuid, t, dir_ino) = (random_uuid(), now(), dir.ino());
    let id = dir.with_core(|fs, sv| match source {
        None => fs.create_subvolume(sv, dir_ino, name, uuid, uid, gid, t),
        Some(src) => fs.snapshot(src, sv, dir_ino, name, read_only, uuid, t),
    })?;
    let root = dir.super_block().iget(id, ROOT_DIR_INO, None)?;
    namei::resync(*locked)?;
    // SAFETY: the negative dentry of this create, in the directory whose
    // i_rwsem `locked` holds; it takes over our reference to the root.
    unsafe { dentry.dentry().instantiate(root) };
    Ok(id)
}

/// SUBVOL_DELETE: deletes subvolume `args.name` of the directory `file`
/// (CAP_SYS_ADMIN; EBUSY while it is in use, see the file's header). Its
/// name goes at once; its space comes back as the background drop frees
/// its tree. No lock of this filesystem is held by the caller.
#[inline(never)]
fn delete(file: &File, arg: u64) -> Result {
    if !capable_sys_admin() {
        return Err(EPERM);
    }
    let args: VolArgs = copy_in(arg)?;
    if args.reserved.iter().any(|&r| r != 0) || args.flags != 0 || args.fd != 0 {
        return Err(EINVAL);
    }
    let name = checked_name(&args.name)?;
    let dir = file.inode();
    if !dir.is_dir() {
        return Err(ENOTDIR);
    }
    let _write = MountWrite::get(file)?;
    // Dirty data of the subvolume's files goes first, so their inodes are
    // clean and the busy check can evict the unused ones.
    dir.super_block().sync();
    delete_locked(file, dir, name)?;
    commit_change(dir)?;
    dir.info().kick_drops();
    Ok(())
}

/// Commits a subvolume change the ioctl just made, so it is durable when
/// the call returns (as btrfs's subvolume ioctls are): one commit, which
/// is all a snapshot costs once the page cache is written back.
fn commit_change(dir: &INode) -> Result {
    Ok(dir.info().commit_or_fail()?)
}

/// delete's part under the directory lock and the subvolume root's.
fn delete_locked(file: &File, dir: &INode, name: &[u8]) -> Result {
    let locked = dir.lock_parent();
    let dentry = LookedUp::get(file, &locked, name)?;
    let d = dentry.dentry();
    let victim = d.inode().ok_or(ENOENT)?;
    if victim.ino() != ROOT_DIR_INO || victim.same_subvol(dir) {
        return Err(EINVAL);
    }
    let victim_locked = victim.lock();
    let sv = victim.subvol();
    // Unused dentries below go, and with them (evicted at once while the
    // subvolume is dying) their clean inodes; a dentry left below is in
    // use. Then our lookup holds the root's one reference (each child
    // held one too); anything more is a user of the subvolume's root (a
    // working directory, an open directory, a mount's root).
    sv.set_dying(true);
    d.shrink_children();
    if d.has_children() || d.count() > 1 {
        sv.set_dying(false);
        return Err(EBUSY);
    }
    let (t, dir_ino) = (now(), dir.ino());
    let r = dir.with_core(|fs, dsv| {
        let id = fs.delete_subvolume(dsv, dir_ino, name, t)?;
        if id == sv.id() {
            // Under the core lock, as `FsInfo::with_sv` requires.
            sv.mark_deleted();
        }
        Ok(id)
    });
    if r.is_err() {
        sv.set_dying(false);
    }
    r?;
    // As vfs_rmdir does, and then out of the dcache with what is below it.
    // SAFETY: the removed subvolume's root dentry, with its inode locked.
    unsafe { d.mark_dead_dir() };
    d.invalidate();
    drop(victim_locked);
    namei::resync(*locked)?;
    // SAFETY: `d` was removed from `dir`, whose i_rwsem is held.
    unsafe { d.delete_from(dir) };
    Ok(())
}

/// SUBVOL_GETFLAGS: FERROFS_SUBVOL_RDONLY if the file's subvolume is
/// read-only.
#[inline(never)]
fn get_flags(file: &File, arg: u64) -> Result {
    let ro = file.inode().with_core(|fs, sv| fs.subvolume_read_only(sv))?;
    copy_out(arg, &if ro { SUBVOL_RDONLY } else { 0u64 })
}

/// SUBVOL_SETFLAGS: makes the file's subvolume read-only or writable
/// (the owner of its root directory, or CAP_SYS_ADMIN).
#[inline(never)]
fn set_flags(file: &File, arg: u64) -> Result {
    let flags: u64 = copy_in(arg)?;
    if flags & !SUBVOL_RDONLY != 0 {
        return Err(EINVAL);
    }
    let inode = file.inode();
    if !capable_sys_admin() && !owner_or_capable(file, &*subvol_root(inode)?) {
        return Err(EPERM);
    }
    let _write = MountWrite::get(file)?;
    let sv = inode.subvol();
    let read_only = flags & SUBVOL_RDONLY != 0;
    if read_only {
        // New writes stop here; what the page cache holds reaches the
        // core before the core refuses changes.
        sv.set_read_only(true);
        inode.super_block().sync();
    }
    let r = inode.with_core(|fs, id| fs.set_subvolume_read_only(id, read_only));
    // The core's flag is the truth, whatever happened.
    if let Ok(now_ro) = inode.with_core(|fs, id| fs.subvolume_read_only(id)) {
        sv.set_read_only(now_ro);
    }
    r?;
    commit_change(inode)
}

/// SET_RECEIVED_SUBVOL: records on a writable subvolume (the file must be
/// its root directory) the stream it was received from; returns the
/// transaction and time recorded. The owner of the root directory or
/// CAP_SYS_ADMIN.
#[inline(never)]
fn set_received(file: &File, arg: u64) -> Result {
    let mut args: uapi::ReceivedSubvolArgs = copy_in(arg)?;
    if args.flags != 0 || args.reserved.iter().any(|&r| r != 0) || args.stime.reserved != 0 || args.stime.nsec >= 1_000_000_000 {
        return Err(EINVAL);
    }
    let inode = file.inode();
    if inode.ino() != ROOT_DIR_INO {
        return Err(EINVAL);
    }
    if !capable_sys_admin() && !owner_or_capable(file, inode) {
        return Err(EPERM);
    }
    let _write = MountWrite::get(file)?;
    let stime = crate::format::Timespec { sec: args.stime.sec, nsec: args.stime.nsec };
    let now = now();
    let rtransid = inode.with_core(|fs, id| fs.set_received_subvolume(id, args.uuid, args.stransid, stime, now))?;
    commit_change(inode)?;
    args.rtransid = rtransid;
    args.rtime = uapi::Timespec { sec: now.sec, nsec: now.nsec, reserved: 0 };
    copy_out(arg, &args)
}

/// The uAPI form of a subvolume's description.
fn info_out(i: &SubvolInfo) -> uapi::SubvolInfo {
    let ts = |t: crate::format::Timespec| uapi::Timespec { sec: t.sec, nsec: t.nsec, reserved: 0 };
    let mut out = uapi::SubvolInfo::zeroed();
    out.subvolid = i.id.0;
    out.parent_id = i.parent;
    out.dirid = i.dir;
    out.flags = if i.item.is_read_only() { SUBVOL_RDONLY } else { 0 };
    out.generation = i.item.generation;
    out.ctransid = i.item.ctransid;
    out.otransid = i.item.otransid;
    out.stransid = i.item.stransid;
    out.rtransid = i.item.rtransid;
    out.uuid = i.item.uuid;
    out.parent_uuid = i.item.parent_uuid;
    out.received_uuid = i.item.received_uuid;
    out.ctime = ts(i.item.ctime);
    out.otime = ts(i.item.otime);
    out.stime = ts(i.item.stime);
    out.rtime = ts(i.item.rtime);
    let name = i.name();
    out.name[..name.len()].copy_from_slice(name);
    out
}

/// GET_SUBVOL_INFO: what the file's subvolume is.
#[inline(never)]
fn subvol_info(file: &File, arg: u64) -> Result {
    let info = file.inode().with_core(|fs, sv| fs.subvolume_info(sv))?;
    copy_out(arg, &info_out(&info))
}

/// LIST_SUBVOLS: the live subvolumes from `start_id` on (CAP_SYS_ADMIN).
/// The list is taken under the core lock and copied out without it.
#[inline(never)]
fn list(file: &File, arg: u64) -> Result {
    if !capable_sys_admin() {
        return Err(EPERM);
    }
    let mut args: SubvolList = copy_in(arg)?;
    if args.reserved.iter().any(|&r| r != 0) || args.flags != 0 {
        return Err(EINVAL);
    }
    let all = file.inode().info().with_core(|fs| fs.list_subvolumes())?;
    let mut wanted = all.iter().filter(|i| i.id.0 >= args.start_id);
    let mut written = 0u32;
    let mut at = args.entries;
    for i in wanted.by_ref().take(args.count as usize) {
        copy_out(at, &info_out(i))?;
        at = at.checked_add(size_of::<uapi::SubvolInfo>() as u64).ok_or(EFAULT)?;
        written += 1;
    }
    args.count = written;
    args.flags = if wanted.next().is_some() { LIST_MORE } else { 0 };
    copy_out(arg, &args)
}

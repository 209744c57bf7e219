// SPDX-License-Identifier: GPL-2.0
//! Namespace operations of directories (create, mkdir, mknod, symlink,
//! link, unlink, rmdir, rename), setattr for every inode, and symlink
//! targets. Each runs one core call under the mount's lock, then brings the
//! VFS inodes it touched up to date from the core's attributes.

use super::bindings as b;
use super::inode::{refresh, Fields, INode, Locked};
use super::now;
use super::types::{from_result, Dentry, Idmap};
use crate::error::{Error as CoreError, Result as CoreResult};
use crate::format::{Timespec, NAME_MAX, S_IFMT, S_IFREG};
use crate::fs::{InodeAttr, SetAttr, RENAME_EXCHANGE, RENAME_NOREPLACE};
use core::marker::PhantomData;
use kernel::error::code::{EBUSY, ECHILD, ENOENT};
use kernel::error::{to_result, Result};
use kernel::ffi::c_int;
use kernel::types::{ARef, Opaque};

/// The name of a dentry, checked against NAME_MAX.
pub(crate) fn checked_name(dentry: &Dentry) -> CoreResult<&[u8]> {
    let name = dentry.name();
    if name.len() > NAME_MAX {
        return Err(CoreError::NameTooLong);
    }
    Ok(name)
}

/// Re-reads `inode`'s attributes from the core into it.
pub(crate) fn resync(inode: Locked<'_>) -> CoreResult<()> {
    let attr = inode.with_core(|fs, sv| fs.getattr(sv, inode.ino()))?;
    inode.refresh(&attr);
    Ok(())
}

/// Re-reads `inode`'s attributes into it without its i_rwsem (see
/// `rename`'s # Safety for when that is so).
///
/// # Safety
/// The caller holds what serialises `inode`'s attribute updates, or
/// accepts a refresh racing with them as rename does.
unsafe fn resync_unlocked(inode: &INode) -> CoreResult<()> {
    let ino = inode.ino();
    let attr = inode.with_core(|fs, sv| fs.getattr(sv, ino))?;
    // SAFETY: per the contract; the inode is live (borrowed).
    unsafe { refresh(inode.as_ptr(), &attr) };
    Ok(())
}

/// What kind of inode a namespace call makes.
enum NewKind<'a> {
    Node { rdev: u64 },
    Dir,
    Symlink(&'a [u8]),
}

/// The arguments of `create`, `mknod`, `mkdir` and `symlink`, typed.
///
/// # Safety
/// `idmap` is the mount's idmap, `dir` a live ferrofs directory whose
/// i_rwsem the VFS holds exclusively, and `dentry` a negative dentry in it
/// whose name that lock keeps stable, all for `'a`.
unsafe fn make_args<'a>(idmap: *mut b::mnt_idmap, dir: *mut b::inode, dentry: *mut b::dentry) -> (&'a Idmap, Locked<'a>, &'a Dentry) {
    // SAFETY: per the contract.
    unsafe { (Idmap::from_raw(idmap), Locked::assume(INode::from_raw(dir)), Dentry::from_raw(dentry)) }
}

/// Makes a new inode named by `dentry` in `dir`, and instantiates the
/// dentry with it. `dentry` is a negative dentry in `dir`; no core lock is
/// held.
fn make(idmap: &Idmap, dir: Locked<'_>, dentry: &Dentry, mode: u32, kind: NewKind<'_>) -> CoreResult<()> {
    let name = checked_name(dentry)?;
    let dir_ino = dir.ino();
    // The VFS hands mkdir the permission bits only; the owner rules (a
    // setgid parent makes setgid subdirectories) need the type too.
    let typed = if matches!(kind, NewKind::Dir) { mode | crate::format::S_IFDIR } else { mode };
    let (mut mode, uid, gid) = idmap.new_owner(&dir, typed);
    // The umask or the directory's default ACL shapes the mode (SB_POSIXACL).
    // SAFETY: `dir` is a live ferrofs directory whose i_rwsem is held
    // (`Locked`), for a create, mknod, mkdir or symlink; the core lock is
    // not held.
    let acls = unsafe { super::xattr::InheritedAcls::new(dir.as_ptr(), &mut mode, matches!(kind, NewKind::Symlink(_))) }?;
    let t = now();
    let attr: InodeAttr = dir.with_core(|fs, sv| {
        let made = match kind {
            NewKind::Node { rdev } => fs.create(sv, dir_ino, name, mode, rdev, uid, gid, t),
            NewKind::Dir => fs.mkdir(sv, dir_ino, name, mode, uid, gid, t),
            NewKind::Symlink(target) => fs.symlink(sv, dir_ino, name, target, uid, gid, t),
        };
        acls.store(fs, sv, dir_ino, name, made, t)
    })?;
    let new = dir.super_block().iget_created(dir.subvol().id(), &attr, acls.any())?;
    resync(dir)?;
    // SAFETY: `dentry` is the negative dentry of this create, in the locked
    // `dir`; it takes over our reference to the new inode.
    unsafe { dentry.instantiate(new) };
    Ok(())
}

/// O_TMPFILE: a regular file with no name, on the orphan list until a
/// linkat(2) names it, freed at its last close otherwise.
///
/// # Safety
/// Called by vfs_tmpfile with `dir` a live ferrofs directory, pinned by
/// the caller's path but *not* locked (locking.rst: tmpfile takes no
/// i_rwsem), `idmap` the mount's idmap, `file` the file being opened, whose
/// `f_path.dentry` is a new negative dentry under `dir`, and `mode` the new
/// file's mode. Nothing here needs the directory lock: the core lock
/// serialises the create, `ferrofs_new_owner` only reads the directory's
/// mode and group (as inode_init_owner does for other filesystems'
/// tmpfile), and posix_acl_create needs only a live directory.
pub(crate) unsafe extern "C" fn tmpfile(idmap: *mut b::mnt_idmap, dir: *mut b::inode, file: *mut b::file, mode: b::umode_t) -> c_int {
    // SAFETY: vfs_tmpfile passes the mount's idmap, a live directory of ours
    // pinned by the caller's path (not locked), and the file being opened,
    // whose dentry is a new negative dentry under `dir`, all for the call.
    let (idmap, dir, file) = unsafe { (Idmap::from_raw(idmap), INode::from_raw(dir), TmpFile::from_raw(file)) };
    from_result(|| make_tmpfile(idmap, dir, file, mode as u32))
}

/// The file an O_TMPFILE open is making.
///
/// # Invariants
/// The file of a vfs_tmpfile call in progress, live for the borrow: not
/// open yet (so not a `File`), its `f_path.dentry` a new negative dentry
/// under the directory of the call.
#[repr(transparent)]
struct TmpFile(Opaque<b::file>);

impl TmpFile {
    /// Borrows the file of a tmpfile call as a `TmpFile`.
    ///
    /// # Safety
    /// `ptr` is the file of a vfs_tmpfile call in progress, for `'a`.
    unsafe fn from_raw<'a>(ptr: *mut b::file) -> &'a Self {
        // SAFETY: `TmpFile` is a transparent wrapper of `file`.
        // INVARIANT: the caller guarantees the file of a tmpfile call.
        unsafe { &*ptr.cast::<Self>() }
    }

    /// Gives the file's dentry the new, unnamed `inode` (d_tmpfile) and
    /// opens the file (finish_open_simple).
    fn open_with(&self, inode: ARef<INode>) -> Result {
        let raw: *mut b::inode = ARef::into_raw(inode).as_ptr().cast();
        // d_tmpfile drops the one link it expects the new inode to have (the
        // core's is already 0) and marks it linkable.
        // SAFETY: the file of a tmpfile call, with a negative dentry (type
        // invariant), and a new inode only we have, whose reference it takes.
        unsafe {
            b::set_nlink(raw, 1);
            b::ferrofs_d_tmpfile(self.0.get(), raw);
        }
        // SAFETY: the file's dentry now has its inode.
        to_result(unsafe { b::ferrofs_finish_open_simple(self.0.get()) })
    }
}

/// tmpfile's body: no i_rwsem is held. None is needed: the core lock
/// serialises the create, `new_owner` only reads the directory's mode and
/// group (as inode_init_owner does for other filesystems' tmpfile), and
/// posix_acl_create needs only a live directory.
fn make_tmpfile(idmap: &Idmap, dir: &INode, file: &TmpFile, mode: u32) -> Result {
    let dir_ino = dir.ino();
    let (mut mode, uid, gid) = idmap.new_owner(dir, mode | crate::format::S_IFREG);
    // SAFETY: `dir` is a live ferrofs directory, which is all
    // posix_acl_create needs for tmpfile; the core lock is not held.
    let acls = unsafe { super::xattr::InheritedAcls::new(dir.as_ptr(), &mut mode, false) }?;
    let t = now();
    let attr = dir.with_core(|fs, sv| {
        let made = fs.tmpfile(sv, mode, uid, gid, t);
        acls.store(fs, sv, dir_ino, &[], made, t)
    })?;
    let new = dir.super_block().iget_created(dir.subvol().id(), &attr, acls.any())?;
    file.open_with(new)
}

/// `->create`: a regular file (open with O_CREAT, creat(2), mknod(2) of
/// S_IFREG).
///
/// # Safety
/// Called by vfs_create or lookup_open with `dir` a live ferrofs directory
/// whose i_rwsem the VFS holds exclusively (locking.rst), `dentry` a
/// negative dentry in it whose name that lock keeps stable, `idmap` the
/// mount's idmap and `mode` the new file's mode (S_IFREG and permission
/// bits). `_excl` (O_EXCL) is not used: the dentry is negative under the
/// lock, so the name is new.
pub(crate) unsafe extern "C" fn create(
    idmap: *mut b::mnt_idmap,
    dir: *mut b::inode,
    dentry: *mut b::dentry,
    mode: b::umode_t,
    _excl: bool,
) -> c_int {
    // SAFETY: the VFS passes its idmap, a locked directory and a negative
    // dentry in it, for the call.
    let (idmap, dir, dentry) = unsafe { make_args(idmap, dir, dentry) };
    from_result(|| Ok(make(idmap, dir, dentry, mode as u32, NewKind::Node { rdev: 0 })?))
}

/// The core's encoding of a VFS device number.
fn encode_dev(rdev: b::dev_t) -> u64 {
    // SAFETY: a pure conversion of a device number.
    unsafe { b::ferrofs_encode_dev(rdev) }
}

/// `->mknod`: a device node, fifo or socket.
///
/// # Safety
/// Called by vfs_mknod with `dir` a live ferrofs directory whose i_rwsem the
/// VFS holds exclusively (locking.rst), `dentry` a negative dentry in it
/// whose name that lock keeps stable, `idmap` the mount's idmap, `mode` the
/// new inode's mode (type and permission bits: a device, fifo or socket
/// from mknod(2), which sends S_IFREG to `create`) and `rdev` its device
/// number.
pub(crate) unsafe extern "C" fn mknod(
    idmap: *mut b::mnt_idmap,
    dir: *mut b::inode,
    dentry: *mut b::dentry,
    mode: b::umode_t,
    rdev: b::dev_t,
) -> c_int {
    // SAFETY: the VFS passes its idmap, a locked directory and a negative
    // dentry in it, for the call.
    let (idmap, dir, dentry) = unsafe { make_args(idmap, dir, dentry) };
    from_result(|| Ok(make(idmap, dir, dentry, mode as u32, NewKind::Node { rdev: encode_dev(rdev) })?))
}

/// `->mkdir`.
///
/// # Safety
/// Called by vfs_mkdir with `dir` a live ferrofs directory whose i_rwsem the
/// VFS holds exclusively (locking.rst), `dentry` a negative dentry in it
/// whose name that lock keeps stable, `idmap` the mount's idmap and `mode`
/// the permission bits only (`make` adds S_IFDIR).
pub(crate) unsafe extern "C" fn mkdir(idmap: *mut b::mnt_idmap, dir: *mut b::inode, dentry: *mut b::dentry, mode: b::umode_t) -> c_int {
    // SAFETY: the VFS passes its idmap, a locked directory and a negative
    // dentry in it, for the call.
    let (idmap, dir, dentry) = unsafe { make_args(idmap, dir, dentry) };
    from_result(|| Ok(make(idmap, dir, dentry, mode as u32, NewKind::Dir)?))
}

/// `->symlink`.
///
/// # Safety
/// Called by vfs_symlink with `dir` a live ferrofs directory whose i_rwsem
/// the VFS holds exclusively (locking.rst), `dentry` a negative dentry in it
/// whose name that lock keeps stable, `idmap` the mount's idmap and
/// `target` a NUL-terminated kernel copy of the target, live for the call.
pub(crate) unsafe extern "C" fn symlink(
    idmap: *mut b::mnt_idmap,
    dir: *mut b::inode,
    dentry: *mut b::dentry,
    target: *const kernel::ffi::c_char,
) -> c_int {
    // SAFETY: the VFS passes its idmap, a locked directory, a negative
    // dentry in it and a NUL-terminated target, all for the call.
    let ((idmap, dir, dentry), target) = unsafe { (make_args(idmap, dir, dentry), kernel::str::CStr::from_char_ptr(target)) };
    from_result(|| Ok(make(idmap, dir, dentry, 0o777, NewKind::Symlink(target.as_bytes()))?))
}

/// `->link`: a new name `dentry` in `dir` for the inode of `old`.
///
/// # Safety
/// Called by vfs_link with `old` a positive dentry of a live ferrofs inode
/// that is not a directory, on the same super_block as `dir`, a live ferrofs
/// directory, and `dentry` a negative dentry in `dir` whose name is stable;
/// the VFS holds the i_rwsem of both `dir` and the source inode exclusively
/// (locking.rst).
pub(crate) unsafe extern "C" fn link(old: *mut b::dentry, dir: *mut b::inode, dentry: *mut b::dentry) -> c_int {
    // SAFETY: the VFS passes these live for the call, holding the i_rwsem
    // of `dir` and of `old`'s inode, which `old` (positive) pins. `old`'s
    // own parent is not locked, so it is not borrowed as a `Dentry`.
    let (target, dir, dentry) = unsafe {
        (Locked::assume(INode::from_raw(b::ferrofs_dentry_inode(old))), Locked::assume(INode::from_raw(dir)), Dentry::from_raw(dentry))
    };
    from_result(|| Ok(link_to(target, dir, dentry)?))
}

/// link's body: names `target` as `dentry` in `dir`.
fn link_to(target: Locked<'_>, dir: Locked<'_>, dentry: &Dentry) -> CoreResult<()> {
    // Inode numbers are per subvolume: a link cannot cross one.
    if !target.same_subvol(&dir) {
        return Err(CoreError::CrossDevice);
    }
    let name = checked_name(dentry)?;
    let t = now();
    let attr = dir.with_core(|fs, sv| fs.link(sv, target.ino(), dir.ino(), name, t))?;
    target.refresh(&attr);
    resync(dir)?;
    // SAFETY: `dentry` is the negative dentry of this link, in the locked
    // `dir`; it takes a reference of its own to the inode.
    unsafe { dentry.instantiate(ARef::from(target.inode())) };
    Ok(())
}

/// unlink and rmdir: remove the name, then update both inodes. `dentry`
/// is a positive dentry in `dir` naming `victim`; no core lock is held.
/// References to the victim's dentry that an rmdir(2) holds itself: the
/// lookup's and vfs_rmdir's own. Any more mean it is in use (a working
/// directory, an open directory, the root of a mount).
const RMDIR_OWN_REFS: u32 = 2;

fn remove(dir: Locked<'_>, dentry: &Dentry, victim: Locked<'_>, is_dir: bool) -> Result {
    let name = checked_name(dentry)?;
    let dir_ino = dir.ino();
    let t = now();
    // rmdir of an empty subvolume's root deletes the subvolume (the core
    // decides, as the entry says so): unless it is in use.
    let subvol_root = !victim.same_subvol(&dir);
    if subvol_root {
        // Cached (negative) dentries below hold references to it too: they
        // go first, so the count tells only of users.
        dentry.shrink_children();
        if dentry.has_children() || dentry.count() > RMDIR_OWN_REFS {
            return Err(EBUSY);
        }
    }
    // The core reports both inodes' attributes as the removal left them,
    // so neither is read back with a call of its own.
    let removed = dir.with_core(|fs, sv| {
        let removed = fs.remove(sv, dir_ino, name, is_dir, t)?;
        if subvol_root {
            // Under the core lock, as `FsInfo::with_sv` requires.
            victim.subvol().mark_deleted();
        }
        Ok(removed)
    })?;
    dir.refresh(&removed.dir);
    if subvol_root {
        // Its inodes are gone with it: nothing to read back; its tree is
        // freed in the background.
        dir.info().kick_drops();
        return Ok(());
    }
    // The last name may be gone: the inode lives on as an orphan until
    // evict, with these attributes.
    match removed.victim {
        Some(a) => victim.refresh(&a),
        None => resync(victim)?,
    }
    Ok(())
}

/// The arguments of `unlink` and `rmdir`, typed, then `remove`.
///
/// # Safety
/// `dir` is a live ferrofs directory and `dentry` a positive dentry in it;
/// the VFS holds the i_rwsem of both `dir` and the victim inode exclusively
/// for the call.
unsafe fn remove_raw(dir: *mut b::inode, dentry: *mut b::dentry, is_dir: bool) -> c_int {
    // SAFETY: per the contract.
    let (dir, dentry) = unsafe { (Locked::assume(INode::from_raw(dir)), Dentry::from_raw(dentry)) };
    from_result(|| {
        let victim = dentry.inode().ok_or(ENOENT)?;
        // SAFETY: the VFS holds the victim's i_rwsem (contract).
        remove(dir, dentry, unsafe { Locked::assume(victim) }, is_dir)
    })
}

/// `->unlink`.
///
/// # Safety
/// Called by vfs_unlink with `dir` a live ferrofs directory and `dentry` a
/// positive dentry in it naming a non-directory; the VFS holds the i_rwsem
/// of both `dir` and the victim inode exclusively (locking.rst).
pub(crate) unsafe extern "C" fn unlink(dir: *mut b::inode, dentry: *mut b::dentry) -> c_int {
    // SAFETY: the VFS passes a locked directory and a positive dentry in
    // it whose inode it has locked too, for the call.
    unsafe { remove_raw(dir, dentry, false) }
}

/// `->rmdir`.
///
/// # Safety
/// Called by vfs_rmdir with `dir` a live ferrofs directory and `dentry` a
/// positive dentry in it naming a directory; the VFS holds the i_rwsem of
/// both `dir` and the victim directory exclusively (locking.rst).
pub(crate) unsafe extern "C" fn rmdir(dir: *mut b::inode, dentry: *mut b::dentry) -> c_int {
    // SAFETY: the VFS passes a locked directory and a positive dentry in
    // it whose inode it has locked too, for the call.
    unsafe { remove_raw(dir, dentry, true) }
}

/// `->rename`, with RENAME_NOREPLACE and RENAME_EXCHANGE.
///
/// # Safety
/// Called by vfs_rename with `old_dir` and `new_dir` live ferrofs directories
/// of one super_block, whose i_rwsem the VFS holds exclusively, `old` a
/// positive dentry in `old_dir` and `new` a dentry in `new_dir`, negative
/// or positive (positive for RENAME_EXCHANGE); both names are stable. The
/// VFS also holds exclusively the i_rwsem of every non-directory involved,
/// of a directory that `new` replaces and of each directory that changes
/// parent; a cross-directory rename holds s_vfs_rename_sem (locking.rst,
/// vfs_rename). A directory that stays in its parent (renamed there, or
/// exchanged with a sibling) is not locked, yet is refreshed below like the
/// other inodes. `flags` may hold bits the VFS passes on
/// (RENAME_WHITEOUT), which are refused.
pub(crate) unsafe extern "C" fn rename(
    _idmap: *mut b::mnt_idmap,
    old_dir: *mut b::inode,
    old: *mut b::dentry,
    new_dir: *mut b::inode,
    new: *mut b::dentry,
    flags: u32,
) -> c_int {
    // SAFETY: the VFS passes two locked directories and a dentry in each
    // with a stable name, all live for the call.
    let (old_dir, old, new_dir, new) = unsafe {
        (Locked::assume(INode::from_raw(old_dir)), Dentry::from_raw(old), Locked::assume(INode::from_raw(new_dir)), Dentry::from_raw(new))
    };
    from_result(|| Ok(rename_in(old_dir, old, new_dir, new, flags)?))
}

/// rename's body; no core lock is held.
fn rename_in(old_dir: Locked<'_>, old: &Dentry, new_dir: Locked<'_>, new: &Dentry, flags: u32) -> CoreResult<()> {
    if flags & !(RENAME_NOREPLACE | RENAME_EXCHANGE) != 0 {
        return Err(CoreError::Invalid("unsupported rename flag"));
    }
    let (moved, replaced) = (old.inode(), new.inode());
    // Names stay in their subvolume: moving one across is a copy, as across
    // filesystems (mv falls back to it on EXDEV). A subvolume's own entry
    // may move within its parent; replacing one is refused here (and by
    // the core, which also refuses exchanging with one).
    let is_subvol_root = |i: Option<&INode>| i.is_some_and(|i| !i.same_subvol(&old_dir));
    if !old_dir.same_subvol(&new_dir) || is_subvol_root(replaced) {
        return Err(CoreError::CrossDevice);
    }
    let (oname, nname) = (checked_name(old)?, checked_name(new)?);
    let t = now();
    old_dir.with_core(|fs, sv| fs.rename(sv, old_dir.ino(), oname, new_dir.ino(), nname, flags, t))?;
    resync(old_dir)?;
    resync(new_dir)?;
    for inode in [moved, replaced].into_iter().flatten() {
        // The VFS holds its i_rwsem unless it is a directory that stays in
        // its parent, which is refreshed all the same (see `rename`'s # Safety).
        // SAFETY: a live inode, pinned by its dentry; the VFS holds its
        // i_rwsem or it is a directory that stays in its parent (above).
        unsafe { resync_unlocked(inode) }?;
    }
    Ok(())
}

/// The arguments of a setattr call.
///
/// # Invariants
/// `idmap`, `dentry` and `iattr` are the arguments of a notify_change call
/// in progress, live for `'a`: the mount's idmap, a positive dentry of a
/// live ferrofs inode whose i_rwsem the VFS holds exclusively, and the
/// requested change. (The dentry's parent is not locked, so its name is
/// not read: this is not a `Dentry`.)
struct SetattrCall<'a> {
    idmap: *mut b::mnt_idmap,
    dentry: *mut b::dentry,
    iattr: *mut b::iattr,
    _call: PhantomData<&'a ()>,
}

impl<'a> SetattrCall<'a> {
    /// Wraps the arguments of a setattr.
    ///
    /// # Safety
    /// They are the arguments of a notify_change call in progress, for `'a`.
    unsafe fn new(idmap: *mut b::mnt_idmap, dentry: *mut b::dentry, iattr: *mut b::iattr) -> Self {
        // INVARIANT: the caller guarantees the arguments of a call in progress.
        SetattrCall { idmap, dentry, iattr, _call: PhantomData }
    }

    /// The inode being changed, locked by the VFS.
    fn inode(&self) -> Locked<'a> {
        // SAFETY: a positive dentry pins its ferrofs inode, whose i_rwsem
        // notify_change holds for the call (type invariant).
        unsafe { Locked::assume(INode::from_raw(b::ferrofs_dentry_inode(self.dentry))) }
    }

    /// setattr_prepare (permission and limit checks), then the request's
    /// fields in plain form.
    fn prepare(&self) -> Result<b::ferrofs_iattr> {
        let mut f = b::ferrofs_iattr::default();
        // SAFETY: the live arguments of a setattr (type invariant).
        to_result(unsafe { b::ferrofs_setattr_prepare(self.idmap, self.dentry, self.iattr, &mut f) })?;
        Ok(f)
    }

    /// After a mode change reached the core and the VFS inode: brings the
    /// access ACL in line (posix_acl_chmod). No core lock may be held.
    fn chmod_acl(&self) -> Result {
        // SAFETY: the arguments of this setattr, whose inode's i_rwsem the
        // VFS holds (type invariant).
        to_result(unsafe { super::xattr::chmod_acl(self.idmap, self.dentry) })
    }
}

/// ATTR_MODE, ATTR_UID, ATTR_GID, ATTR_SIZE, ATTR_ATIME, ATTR_MTIME and
/// ATTR_CTIME.
fn attr_bits() -> [u32; 7] {
    // SAFETY: reads immutable constants that shim.c defines.
    unsafe {
        [
            b::FERROFS_ATTR_MODE,
            b::FERROFS_ATTR_UID,
            b::FERROFS_ATTR_GID,
            b::FERROFS_ATTR_SIZE,
            b::FERROFS_ATTR_ATIME,
            b::FERROFS_ATTR_MTIME,
            b::FERROFS_ATTR_CTIME,
        ]
    }
}

/// `->setattr` of every inode type: chmod, chown, truncate, utimes.
///
/// # Safety
/// Called by notify_change with `dentry` a positive dentry of a live
/// ferrofs inode whose i_rwsem the VFS holds exclusively (locking.rst;
/// notify_change checks it), `iattr` the live requested change (checked
/// here by setattr_prepare) and `idmap` the mount's idmap. No folio lock or
/// core lock is held, so truncate_setsize may wait for writeback.
pub(crate) unsafe extern "C" fn setattr(idmap: *mut b::mnt_idmap, dentry: *mut b::dentry, iattr: *mut b::iattr) -> c_int {
    // SAFETY: notify_change passes its idmap, a positive dentry whose inode
    // it holds locked, and the live request, all for the call.
    let call = unsafe { SetattrCall::new(idmap, dentry, iattr) };
    from_result(|| change_attrs(&call))
}

/// setattr's body; no folio or core lock is held.
fn change_attrs(call: &SetattrCall<'_>) -> Result {
    let inode = call.inode();
    // Before the page cache is cut: a read-only subvolume keeps its size.
    inode.subvol().check_writable()?;
    let mut f = call.prepare()?;
    let ino = inode.ino();
    let has = |bit: u32| f.valid & bit != 0;
    let [m, u, g, s, a, mt, c] = attr_bits().map(has);
    let ts = |sec: i64, nsec: u32| Timespec { sec, nsec };
    let regular = inode.mode() & S_IFMT == S_IFREG;
    if regular {
        // The VFS inode's times run ahead of the core's (see `file`): hand
        // them over with the change, so taking the result back is exact.
        let [atime, mtime, _] = inode.times();
        if !a {
            (f.atime_sec, f.atime_nsec) = (atime.sec, atime.nsec);
        }
        if !mt {
            (f.mtime_sec, f.mtime_nsec) = (mtime.sec, mtime.nsec);
            if s && f.size as i64 != inode.size() {
                // A size change is a modification even when truncate(2)
                // asks for no time (POSIX; ext4 does the same).
                let t = now();
                (f.mtime_sec, f.mtime_nsec) = (t.sec, t.nsec);
            }
        }
    }
    let old_size = if regular && s {
        let old = inode.size();
        // Page cache first: drops the folios past the new end and zeroes the
        // tail of the last one, and waits for their writeback, so nothing
        // written back later can reach past the end the core is given.
        inode.truncate_setsize(f.size as i64);
        Some(old)
    } else {
        None
    };
    let change = SetAttr {
        mode: m.then_some(f.mode),
        uid: u.then_some(f.uid),
        gid: g.then_some(f.gid),
        size: s.then_some(f.size),
        atime: (a || regular).then(|| ts(f.atime_sec, f.atime_nsec)),
        mtime: (mt || regular).then(|| ts(f.mtime_sec, f.mtime_nsec)),
        ctime: c.then(|| ts(f.ctime_sec, f.ctime_nsec)),
        flags: None,
    };
    let t = now();
    let r = inode.with_core(|fs, sv| fs.setattr(sv, ino, &change, t)).map(|attr| {
        // The core's size is current only when this change set it.
        inode.refresh_fields(&attr, Fields { size: s || !regular, times: true, atime: a || regular })
    });
    if let (Err(_), Some(old)) = (&r, old_size) {
        // The core kept the old size; so must the VFS.
        inode.set_size(old);
    }
    r?;
    if m {
        // The new mode is in place, the core lock free.
        return call.chmod_acl();
    }
    Ok(())
}

/// The delayed_call of a get_link, which frees the returned string.
///
/// # Invariants
/// The caller's empty delayed_call of a get_link call in progress, live
/// for the borrow.
#[repr(transparent)]
struct DelayedCall(Opaque<b::delayed_call>);

impl DelayedCall {
    /// Borrows a delayed_call as a `DelayedCall`.
    ///
    /// # Safety
    /// `ptr` is the empty delayed_call of a get_link call in progress,
    /// live for `'a`.
    unsafe fn from_raw<'a>(ptr: *mut b::delayed_call) -> &'a Self {
        // SAFETY: `DelayedCall` is a transparent wrapper of `delayed_call`.
        // INVARIANT: the caller guarantees a live, empty one for 'a.
        unsafe { &*ptr.cast::<Self>() }
    }

    /// A NUL-terminated copy of `s` that this delayed call frees, or an
    /// ERR_PTR: what get_link returns.
    fn link_copy(&self, s: &[u8]) -> *const kernel::ffi::c_char {
        // SAFETY: a live delayed_call (type invariant); the shim copies `s`
        // and sets the call to free the copy.
        unsafe { b::ferrofs_link_copy(self.0.get(), s.as_ptr().cast(), s.len()) }
    }
}

/// `->get_link` of symlinks: the target, read from the core.
///
/// # Safety
/// Called during path walk or by vfs_readlink/vfs_get_link with `inode` a
/// ferrofs symlink and `done` the caller's empty delayed_call, which it
/// runs once done with the returned string; no i_rwsem is held
/// (locking.rst).
/// In RCU-walk mode `dentry` is NULL and `inode` only RCU-protected: it is
/// not touched then (ECHILD asks for a ref-walk). Otherwise `dentry` is a
/// positive dentry of `inode`, which keeps it live for the call.
pub(crate) unsafe extern "C" fn get_link(
    dentry: *mut b::dentry,
    inode: *mut b::inode,
    done: *mut b::delayed_call,
) -> *const kernel::ffi::c_char {
    if dentry.is_null() {
        // RCU walk: reading the core may sleep, so ask for a ref walk.
        return from_result::<*const kernel::ffi::c_char>(|| Err(ECHILD));
    }
    // SAFETY: in ref-walk mode the VFS passes a symlink inode pinned by its
    // positive `dentry`, and its empty delayed_call, for the call.
    let (inode, done) = unsafe { (INode::from_raw(inode), DelayedCall::from_raw(done)) };
    from_result(|| {
        let ino = inode.ino();
        let target = inode.with_core_shared(|fs, wants, sv| fs.readlink_cached(wants, sv, ino), |fs, sv| fs.readlink(sv, ino))?;
        Ok(done.link_copy(&target))
    })
}

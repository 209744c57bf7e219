// SPDX-License-Identifier: GPL-2.0
//! Namespace operations of directories (create, mkdir, mknod, symlink,
//! link, unlink, rmdir, rename), setattr for every inode, and symlink
//! targets. Each runs one core call under the mount's lock, then brings the
//! VFS inodes it touched up to date from the core's attributes.

use super::bindings as b;
use super::fs_info::FsInfo;
use super::inode::{self, refresh, refresh_fields, Fields};
use super::{errno_of, now};
use crate::error::{Error as CoreError, Result as CoreResult};
use crate::format::{Timespec, NAME_MAX, S_IFMT, S_IFREG};
use crate::fs::{InodeAttr, SetAttr, RENAME_EXCHANGE, RENAME_NOREPLACE};
use kernel::ffi::c_int;
use kernel::types::ARef;

/// The FsInfo, super_block and inode number behind a VFS inode.
///
/// # Safety
/// `inode` is a live ferrofs inode.
pub(crate) unsafe fn parts<'a>(inode: *mut b::inode) -> (&'a FsInfo, *mut b::super_block, u64) {
    // SAFETY: a live ferrofs inode belongs to a mounted super_block whose
    // s_fs_info was set by fill_super and outlives the inode.
    unsafe {
        let sb = b::ferrofs_inode_sb(inode);
        (FsInfo::from_sb_info(b::ferrofs_sb_fs_info(sb)), sb, b::ferrofs_inode_ino(inode))
    }
}

/// The name of a dentry, checked against NAME_MAX.
///
/// # Safety
/// `dentry` is live and its name stable for `'a` (the VFS holds the
/// parent's lock during namespace operations).
pub(crate) unsafe fn name_of<'a>(dentry: *const b::dentry) -> CoreResult<&'a [u8]> {
    let mut len = 0u32;
    // SAFETY: per the contract.
    let name = unsafe { core::slice::from_raw_parts(b::ferrofs_dentry_name(dentry, &mut len), len as usize) };
    if name.len() > NAME_MAX {
        return Err(CoreError::NameTooLong);
    }
    Ok(name)
}

fn to_c(r: CoreResult<()>) -> c_int {
    match r {
        Ok(()) => 0,
        Err(e) => errno_of(e).to_errno(),
    }
}

/// Re-reads `ino`'s attributes into its VFS inode.
///
/// # Safety
/// `inode` is a live ferrofs inode whose number is `ino`.
unsafe fn resync(info: &FsInfo, inode: *mut b::inode, ino: u64) -> CoreResult<()> {
    let attr = info.with_core(|fs| fs.getattr(ino))?;
    // SAFETY: per the contract.
    unsafe { refresh(inode, &attr) };
    Ok(())
}

/// What kind of inode a namespace call makes.
enum NewKind<'a> {
    Node { rdev: u64 },
    Dir,
    Symlink(&'a [u8]),
}

/// Makes a new inode named by `dentry` in `dir`, and instantiates the
/// dentry with it.
///
/// # Safety
/// `idmap`, `dir` and `dentry` are the arguments of a `create`, `mknod`,
/// `mkdir` or `symlink` call in progress: `dir` a live ferrofs directory
/// whose i_rwsem the VFS holds exclusively, `dentry` a negative dentry in
/// it whose name that lock keeps stable. No core lock is held.
unsafe fn make(idmap: *mut b::mnt_idmap, dir: *mut b::inode, dentry: *mut b::dentry, mode: u32, kind: NewKind<'_>) -> CoreResult<()> {
    // SAFETY: live VFS objects (caller); the parent is locked.
    let ((info, sb, dir_ino), name) = unsafe { (parts(dir), name_of(dentry)?) };
    // The VFS hands mkdir the permission bits only; the owner rules (a
    // setgid parent makes setgid subdirectories) need the type too.
    let typed = if matches!(kind, NewKind::Dir) { mode | crate::format::S_IFDIR } else { mode };
    let (mut mode, mut uid, mut gid) = (typed, 0u32, 0u32);
    // SAFETY: live idmap and directory.
    unsafe { b::ferrofs_new_owner(idmap, dir, &mut mode, &mut uid, &mut gid) };
    // The umask or the directory's default ACL shapes the mode (SB_POSIXACL).
    // SAFETY: the parent is live and locked; the core lock is not held.
    let acls = unsafe { super::xattr::InheritedAcls::new(dir, &mut mode, matches!(kind, NewKind::Symlink(_))) }?;
    let t = now();
    let attr: InodeAttr = info.with_core(|fs| {
        let made = match kind {
            NewKind::Node { rdev } => fs.create(dir_ino, name, mode, rdev, uid, gid, t),
            NewKind::Dir => fs.mkdir(dir_ino, name, mode, uid, gid, t),
            NewKind::Symlink(target) => fs.symlink(dir_ino, name, target, uid, gid, t),
        };
        acls.store(fs, dir_ino, name, made, t)
    })?;
    // SAFETY: `sb` is live and mounted.
    let new = unsafe { inode::iget(sb, attr.ino, Some(&attr)) }?;
    // SAFETY: the parent is live and locked; the dentry takes over our
    // reference to the new inode.
    unsafe {
        resync(info, dir, dir_ino)?;
        b::ferrofs_d_instantiate(dentry, ARef::into_raw(new).as_ptr().cast());
    }
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
    // SAFETY: called by the VFS with a live directory (not locked for
    // tmpfile) and the file being opened.
    let r = unsafe {
        let (info, sb, dir_ino) = parts(dir);
        let (mut mode, mut uid, mut gid) = (mode as u32 | crate::format::S_IFREG, 0u32, 0u32);
        b::ferrofs_new_owner(idmap, dir, &mut mode, &mut uid, &mut gid);
        super::xattr::InheritedAcls::new(dir, &mut mode, false).and_then(|acls| {
            let t = now();
            let attr = info.with_core(|fs| {
                let made = fs.tmpfile(mode, uid, gid, t);
                acls.store(fs, dir_ino, &[], made, t)
            })?;
            let new = inode::iget(sb, attr.ino, Some(&attr))?;
            let raw: *mut b::inode = ARef::into_raw(new).as_ptr().cast();
            // d_tmpfile drops the one link it expects the new inode to have
            // (the core's is already 0) and marks it linkable.
            b::set_nlink(raw, 1);
            b::ferrofs_d_tmpfile(file, raw);
            Ok(())
        })
    };
    match r {
        // SAFETY: the file's dentry now has its inode.
        Ok(()) => unsafe { b::ferrofs_finish_open_simple(file) },
        Err(e) => errno_of(e).to_errno(),
    }
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
    // SAFETY: called by the VFS with live, locked objects.
    to_c(unsafe { make(idmap, dir, dentry, mode as u32, NewKind::Node { rdev: 0 }) })
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
    // SAFETY: pure conversion of a device number.
    let rdev = unsafe { b::ferrofs_encode_dev(rdev) };
    // SAFETY: called by the VFS with live, locked objects.
    to_c(unsafe { make(idmap, dir, dentry, mode as u32, NewKind::Node { rdev }) })
}

/// `->mkdir`.
///
/// # Safety
/// Called by vfs_mkdir with `dir` a live ferrofs directory whose i_rwsem the
/// VFS holds exclusively (locking.rst), `dentry` a negative dentry in it
/// whose name that lock keeps stable, `idmap` the mount's idmap and `mode`
/// the permission bits only (`make` adds S_IFDIR).
pub(crate) unsafe extern "C" fn mkdir(idmap: *mut b::mnt_idmap, dir: *mut b::inode, dentry: *mut b::dentry, mode: b::umode_t) -> c_int {
    // SAFETY: called by the VFS with live, locked objects.
    to_c(unsafe { make(idmap, dir, dentry, mode as u32, NewKind::Dir) })
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
    // SAFETY: the VFS passes a NUL-terminated target that lives for the call.
    let target = unsafe { kernel::str::CStr::from_char_ptr(target) }.as_bytes();
    // SAFETY: called by the VFS with live, locked objects.
    to_c(unsafe { make(idmap, dir, dentry, 0o777, NewKind::Symlink(target)) })
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
    // SAFETY: called by the VFS with live objects; `old` is positive.
    let r = unsafe {
        let target = b::ferrofs_dentry_inode(old);
        let ((info, _, dir_ino), (_, _, ino)) = (parts(dir), parts(target));
        name_of(dentry).and_then(|name| {
            let t = now();
            let attr = info.with_core(|fs| fs.link(ino, dir_ino, name, t))?;
            refresh(target, &attr);
            resync(info, dir, dir_ino)?;
            // The new dentry takes a reference of its own.
            b::ihold(target);
            b::ferrofs_d_instantiate(dentry, target);
            Ok(())
        })
    };
    to_c(r)
}

/// unlink and rmdir: remove the name, then update both inodes.
///
/// # Safety
/// `dir` and `dentry` are the arguments of an `unlink` or `rmdir` call in
/// progress: `dentry` a positive dentry in `dir`, and the VFS holding the
/// i_rwsem of both `dir` and the victim inode exclusively. No core lock is
/// held.
unsafe fn remove(dir: *mut b::inode, dentry: *mut b::dentry, is_dir: bool) -> CoreResult<()> {
    // SAFETY: live, locked objects (caller); the dentry is positive.
    let ((info, _, dir_ino), name, victim) = unsafe { (parts(dir), name_of(dentry)?, b::ferrofs_dentry_inode(dentry)) };
    // SAFETY: the victim is live while its dentry is.
    let (_, _, victim_ino) = unsafe { parts(victim) };
    let t = now();
    info.with_core(|fs| if is_dir { fs.rmdir(dir_ino, name, t) } else { fs.unlink(dir_ino, name, t) })?;
    // SAFETY: both inodes are live and locked by the VFS.
    unsafe {
        resync(info, dir, dir_ino)?;
        // The last name may be gone: the inode lives on as an orphan until
        // evict, so its attributes can still be read.
        resync(info, victim, victim_ino)
    }
}

/// `->unlink`.
///
/// # Safety
/// Called by vfs_unlink with `dir` a live ferrofs directory and `dentry` a
/// positive dentry in it naming a non-directory; the VFS holds the i_rwsem
/// of both `dir` and the victim inode exclusively (locking.rst).
pub(crate) unsafe extern "C" fn unlink(dir: *mut b::inode, dentry: *mut b::dentry) -> c_int {
    // SAFETY: called by the VFS with live, locked objects.
    to_c(unsafe { remove(dir, dentry, false) })
}

/// `->rmdir`.
///
/// # Safety
/// Called by vfs_rmdir with `dir` a live ferrofs directory and `dentry` a
/// positive dentry in it naming a directory; the VFS holds the i_rwsem of
/// both `dir` and the victim directory exclusively (locking.rst).
pub(crate) unsafe extern "C" fn rmdir(dir: *mut b::inode, dentry: *mut b::dentry) -> c_int {
    // SAFETY: called by the VFS with live, locked objects.
    to_c(unsafe { remove(dir, dentry, true) })
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
    if flags & !(RENAME_NOREPLACE | RENAME_EXCHANGE) != 0 {
        return errno_of(CoreError::Invalid("unsupported rename flag")).to_errno();
    }
    // SAFETY: the VFS holds the rename locks on both directories and the
    // inodes involved; `old` is positive, `new` may be negative.
    let r = unsafe {
        let ((info, _, odir), (_, _, ndir)) = (parts(old_dir), parts(new_dir));
        let moved = b::ferrofs_dentry_inode(old);
        let replaced = b::ferrofs_dentry_inode(new);
        name_of(old).and_then(|oname| name_of(new).map(|nname| (oname, nname))).and_then(|(oname, nname)| {
            let t = now();
            info.with_core(|fs| fs.rename(odir, oname, ndir, nname, flags, t))?;
            for inode in [old_dir, new_dir, moved, replaced] {
                if !inode.is_null() {
                    let (_, _, ino) = parts(inode);
                    resync(info, inode, ino)?;
                }
            }
            Ok(())
        })
    };
    to_c(r)
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
    let mut f = b::ferrofs_iattr::default();
    // SAFETY: live objects from the VFS; setattr_prepare checks permission
    // and limits before we change anything.
    let rc = unsafe { b::ferrofs_setattr_prepare(idmap, dentry, iattr, &mut f) };
    if rc != 0 {
        return rc;
    }
    // SAFETY: the dentry is positive and its inode locked by the VFS.
    let inode = unsafe { b::ferrofs_dentry_inode(dentry) };
    // SAFETY: as above.
    let (info, _, ino) = unsafe { parts(inode) };
    let has = |bit: &u32| f.valid & *bit != 0;
    // SAFETY: reading immutable constants defined in shim.c.
    let (m, u, g, s, a, mt, c) = unsafe {
        (
            has(&b::FERROFS_ATTR_MODE),
            has(&b::FERROFS_ATTR_UID),
            has(&b::FERROFS_ATTR_GID),
            has(&b::FERROFS_ATTR_SIZE),
            has(&b::FERROFS_ATTR_ATIME),
            has(&b::FERROFS_ATTR_MTIME),
            has(&b::FERROFS_ATTR_CTIME),
        )
    };
    let ts = |sec: i64, nsec: u32| Timespec { sec, nsec };
    // SAFETY: the inode is live and locked.
    let regular = unsafe { (*inode).i_mode } as u32 & S_IFMT == S_IFREG;
    if regular {
        // The VFS inode's times run ahead of the core's (see `file`): hand
        // them over with the change, so taking the result back is exact.
        let (mut sec, mut nsec) = ([0i64; 3], [0u32; 3]);
        // SAFETY: live inode; three slots each.
        unsafe { b::ferrofs_inode_times(inode, sec.as_mut_ptr(), nsec.as_mut_ptr()) };
        if !a {
            (f.atime_sec, f.atime_nsec) = (sec[0], nsec[0]);
        }
        if !mt {
            (f.mtime_sec, f.mtime_nsec) = (sec[1], nsec[1]);
            // SAFETY: live, locked inode.
            if s && f.size as i64 != unsafe { b::ferrofs_i_size_read(inode) } {
                // A size change is a modification even when truncate(2)
                // asks for no time (POSIX; ext4 does the same).
                let t = now();
                (f.mtime_sec, f.mtime_nsec) = (t.sec, t.nsec);
            }
        }
    }
    let old_size = if regular && s {
        // SAFETY: live, locked inode.
        let old = unsafe { b::ferrofs_i_size_read(inode) };
        // Page cache first: drops the folios past the new end and zeroes the
        // tail of the last one, and waits for their writeback, so nothing
        // written back later can reach past the end the core is given.
        // SAFETY: live, locked inode.
        unsafe { b::truncate_setsize(inode, f.size as i64) };
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
    let r = info.with_core(|fs| fs.setattr(ino, &change, t)).map(|attr| {
        // SAFETY: the inode is live and locked; the core's size is current
        // only when this change set it.
        unsafe { refresh_fields(inode, &attr, Fields { size: s || !regular, times: true, atime: a || regular }) }
    });
    if let (Err(_), Some(old)) = (&r, old_size) {
        // The core kept the old size; so must the VFS.
        // SAFETY: live, locked inode.
        unsafe { b::ferrofs_i_size_write(inode, old) };
    }
    if m && r.is_ok() {
        // SAFETY: the VFS arguments; the new mode is in place, the core lock free.
        return unsafe { super::xattr::chmod_acl(idmap, dentry) };
    }
    to_c(r)
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
        // SAFETY: ERR_PTR encoding of a negative errno.
        return unsafe { b::ferrofs_err_ptr(kernel::error::code::ECHILD.to_errno() as _) }.cast();
    }
    // SAFETY: the VFS passes a live symlink inode.
    let (info, _, ino) = unsafe { parts(inode) };
    match info.with_core(|fs| fs.readlink(ino)) {
        // SAFETY: `done` is the VFS's delayed call, which frees the copy.
        Ok(target) => unsafe { b::ferrofs_link_copy(done, target.as_ptr().cast(), target.len()) },
        // SAFETY: ERR_PTR encoding of a negative errno.
        Err(e) => unsafe { b::ferrofs_err_ptr(errno_of(e).to_errno() as _) }.cast(),
    }
}

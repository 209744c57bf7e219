// SPDX-License-Identifier: GPL-2.0
//! Extended attributes, POSIX ACLs and inode flags: the `user.`, `trusted.`
//! and `security.` handlers (`sb->s_xattr`), listxattr, get_inode_acl and
//! set_acl over the `system.posix_acl_*` xattrs, the ACLs a new inode
//! inherits, and FS_IOC_GETFLAGS/SETFLAGS through fileattr_get/fileattr_set.
//!
//! The core stores every attribute under its full name (`user.x`,
//! `system.posix_acl_access`) and ACLs in the VFS's xattr format of the
//! initial user namespace. The VFS hands the handlers kernel buffers (it
//! copies user memory in and out itself), so nothing here touches user
//! memory, with or without the core lock. Values travel in heap buffers of
//! at most 64 KiB, never on the stack.

use super::bindings as b;
use super::cell::{zeroed, Vtable};
use super::device::KernelDevice;
use super::inode::{INode, Locked};
use super::types::{from_result, Idmap};
use super::{errno_of, now};
use crate::error::{Error as CoreError, Result as CoreResult};
use crate::format::{Timespec, S_IFDIR, S_IFMT, XATTR_NAME_MAX, XATTR_VALUE_MAX};
use crate::fs::{Filesystem, InodeAttr, SetAttr};
use crate::mem::TryVec;
use crate::subvol::SubvolId;
use core::mem::MaybeUninit;
use kernel::c_str;
use kernel::error::code::{EACCES, ECHILD, EINVAL, EPERM, ERANGE};
use kernel::error::{to_result, Error, Result};
use kernel::ffi::{c_char, c_int, c_void};
use kernel::str::CStr;
use kernel::types::Opaque;

/// The stored names of the access and default ACL.
pub(crate) const ACL_ACCESS: &[u8] = b"system.posix_acl_access";
pub(crate) const ACL_DEFAULT: &[u8] = b"system.posix_acl_default";

const USER_PREFIX: &[u8] = b"user.";
const TRUSTED_PREFIX: &[u8] = b"trusted.";
const SECURITY_PREFIX: &[u8] = b"security.";
/// The file capabilities' name past SECURITY_PREFIX (XATTR_CAPS_SUFFIX).
const CAPABILITY: &[u8] = b"capability";

const fn handler(prefix: &'static CStr) -> b::xattr_handler {
    b::xattr_handler { prefix: prefix.as_char_ptr(), get: Some(xattr_get), set: Some(xattr_set), ..zeroed() }
}

static USER: Vtable<b::xattr_handler> = Vtable(handler(c_str!("user.")));
static TRUSTED: Vtable<b::xattr_handler> = Vtable(handler(c_str!("trusted.")));
static SECURITY: Vtable<b::xattr_handler> = Vtable(handler(c_str!("security.")));

/// `sb->s_xattr`, NULL-terminated. The ACL names need no handler: the VFS
/// routes `system.posix_acl_*` to get_inode_acl and set_acl.
static HANDLERS: Vtable<[*const b::xattr_handler; 4]> = Vtable([&USER.0, &TRUSTED.0, &SECURITY.0, core::ptr::null()]);

/// Installs the xattr handlers on a new super_block and turns on POSIX
/// ACLs, which also hands the umask to `InheritedAcls::new`.
///
/// # Safety
/// `sb` is the super_block fill_super is setting up, before its first
/// inode is read (inodes take IOP_XATTR from `s_xattr` when allocated).
pub(crate) unsafe fn init_sb(sb: *mut b::super_block) {
    // SAFETY: per the contract; HANDLERS is static and NULL-terminated.
    unsafe { b::ferrofs_sb_init_xattr(sb, HANDLERS.0.as_ptr()) }
}

/// `prefix` followed by `suffix`, in `out`: the name the core stores.
/// `None` past the 255 bytes a name may have.
fn full_name<'a>(prefix: &[u8], suffix: &[u8], out: &'a mut [u8; XATTR_NAME_MAX]) -> Option<&'a [u8]> {
    let len = prefix.len().checked_add(suffix.len())?;
    let dst = out.get_mut(..len)?;
    let (p, s) = dst.split_at_mut(prefix.len());
    p.copy_from_slice(prefix);
    s.copy_from_slice(suffix);
    Some(dst)
}

/// The prefix of one of our handlers.
///
/// # Safety
/// `handler` is one of our static handlers.
unsafe fn handler_prefix(handler: *const b::xattr_handler) -> &'static [u8] {
    // SAFETY: our handlers' prefixes are static C strings (contract).
    unsafe { CStr::from_char_ptr((*handler).prefix).as_bytes() }
}

/// The full name a handler call is about. The VFS caps names at 255 bytes
/// and reports longer ones as ERANGE; so do we, should one get through.
fn handler_name<'a>(prefix: &[u8], suffix: &[u8], out: &'a mut [u8; XATTR_NAME_MAX]) -> Result<&'a [u8]> {
    full_name(prefix, suffix, out).ok_or(ERANGE)
}

/// A kernel output buffer of `size` bytes as a slice, empty for a size
/// query (`size == 0`, when the pointer may be NULL).
///
/// # Safety
/// When `size > 0`, `buffer` is a kernel buffer with room for `size` bytes,
/// possibly uninitialised, that only the caller writes for `'a`.
unsafe fn out_buffer<'a>(buffer: *mut c_void, size: usize) -> &'a mut [MaybeUninit<u8>] {
    if size == 0 {
        return &mut [];
    }
    // SAFETY: per the contract; MaybeUninit<u8> accepts any contents.
    unsafe { core::slice::from_raw_parts_mut(buffer.cast::<MaybeUninit<u8>>(), size) }
}

/// Copies `src` to the front of `dst`, which the caller has checked is
/// large enough (anything past `dst`'s end is not copied).
fn write_out(dst: &mut [MaybeUninit<u8>], src: &[u8]) {
    for (d, &s) in dst.iter_mut().zip(src) {
        d.write(s);
    }
}

/// The core's `set_xattr` flags for the VFS's XATTR_CREATE/XATTR_REPLACE.
fn core_set_flags(flags: c_int) -> u32 {
    // SAFETY: reading constants defined in xattr_shim.c.
    let (create, replace) = unsafe { (b::FERROFS_XATTR_CREATE, b::FERROFS_XATTR_REPLACE) };
    let mut f = 0;
    if flags & create != 0 {
        f |= crate::fs::XATTR_CREATE;
    }
    if flags & replace != 0 {
        f |= crate::fs::XATTR_REPLACE;
    }
    f
}

/// `xattr_handler::get` of the `user.`, `trusted.` and `security.` handlers.
///
/// # Safety
/// Called by __vfs_getxattr with `handler` one of our static handlers,
/// `inode` a live ferrofs inode (no i_rwsem held, locking.rst), `name` the
/// NUL-terminated rest of the name past the handler's prefix, and `buffer`
/// a kernel buffer (never user memory) with room for `size` bytes when
/// `size > 0`; for a size query (`size == 0`) it is not touched. `_dentry`
/// is not used.
unsafe extern "C" fn xattr_get(
    handler: *const b::xattr_handler,
    _dentry: *mut b::dentry,
    inode: *mut b::inode,
    name: *const c_char,
    buffer: *mut c_void,
    size: usize,
) -> c_int {
    // The VFS calls with one of our handlers, a live inode of ours, the
    // NUL-terminated name suffix and a kernel buffer of `size` bytes (none
    // for a size query), all for the call.
    // SAFETY: each pointer is what its wrapper requires, as above.
    let parts = unsafe { (handler_prefix(handler), CStr::from_char_ptr(name), INode::from_raw(inode), out_buffer(buffer, size)) };
    let (prefix, suffix, inode, out) = parts;
    from_result(|| get(prefix, suffix.as_bytes(), inode, out).map(|n| n as c_int))
}

/// xattr_get's body: the value's length, and the value in `out` unless it
/// is empty (a size query).
fn get(prefix: &[u8], suffix: &[u8], inode: &INode, out: &mut [MaybeUninit<u8>]) -> Result<usize> {
    if prefix == SECURITY_PREFIX && suffix == CAPABILITY && inode.nosec() {
        // S_NOSEC: the inode has no security.capability (see `nosec`).
        // The VFS asks this at every chown and at the first write of each
        // inode, which is not worth a trip to the core.
        return Err(errno_of(CoreError::NoData));
    }
    let mut buf = [0u8; XATTR_NAME_MAX];
    let name = handler_name(prefix, suffix, &mut buf)?;
    let ino = inode.ino();
    if out.is_empty() {
        return Ok(inode.with_core_shared(
            |fs, wants, sv| fs.get_xattr_cached(wants, sv, ino, name, &mut []),
            |fs, sv| fs.get_xattr(sv, ino, name, &mut []),
        )?);
    }
    // The value is read into our own buffer first: the caller's may be
    // uninitialised memory, which must not become a `&mut [u8]`.
    let mut value = TryVec::try_from_elem(0u8, out.len().min(XATTR_VALUE_MAX))?;
    let n = match inode.try_core_shared(|fs, wants, sv| fs.get_xattr_cached(wants, sv, ino, name, &mut value)) {
        Some(r) => r,
        None => inode.with_core_read(|fs, sv| fs.get_xattr(sv, ino, name, &mut value)),
    }?
    .min(value.len());
    write_out(out, value.get(..n).unwrap_or(&[]));
    Ok(n)
}

/// `xattr_handler::set` of the `user.`, `trusted.` and `security.` handlers:
/// set, or remove when `value` is NULL.
///
/// # Safety
/// Called by __vfs_setxattr (an empty value comes as "" with size 0) or
/// __vfs_removexattr (`value` NULL, XATTR_REPLACE) with `handler` one of our
/// static handlers, `inode` a live ferrofs inode whose i_rwsem the VFS holds
/// exclusively (locking.rst), `name` the NUL-terminated rest of the name
/// past the handler's prefix, and `value` NULL or a kernel buffer of `size`
/// bytes, live for the call. `_idmap` and `_dentry` are not used.
unsafe extern "C" fn xattr_set(
    handler: *const b::xattr_handler,
    _idmap: *mut b::mnt_idmap,
    _dentry: *mut b::dentry,
    inode: *mut b::inode,
    name: *const c_char,
    value: *const c_void,
    size: usize,
    flags: c_int,
) -> c_int {
    // The VFS calls with one of our handlers, a live inode of ours that it
    // holds locked, the NUL-terminated name suffix, and either NULL (remove)
    // or a kernel buffer of `size` bytes (an empty value: "", 0), all for
    // the call.
    // SAFETY: each pointer is what its wrapper requires, as above.
    let (prefix, suffix, inode, value) = unsafe {
        let value: Option<&[u8]> = match (value.is_null(), size) {
            (true, _) => None,
            (false, 0) => Some(&[]),
            (false, _) => Some(core::slice::from_raw_parts(value.cast::<u8>(), size)),
        };
        (handler_prefix(handler), CStr::from_char_ptr(name), Locked::assume(INode::from_raw(inode)), value)
    };
    from_result(|| set(prefix, suffix.as_bytes(), inode, value, flags))
}

/// xattr_set's body: sets `value`, or removes the name for None.
fn set(prefix: &[u8], suffix: &[u8], inode: Locked<'_>, value: Option<&[u8]>, flags: c_int) -> Result {
    let mut buf = [0u8; XATTR_NAME_MAX];
    let name = handler_name(prefix, suffix, &mut buf)?;
    // security., system. and trusted. names skip inode_permission, so the
    // read-only check of `subvol::permission` does not cover them.
    inode.subvol().check_writable()?;
    if prefix == SECURITY_PREFIX {
        // Before the xattr can exist: get's S_NOSEC answer must not hide
        // it. The VFS clears it on its way here too (__vfs_setxattr_noperm);
        // this covers callers of __vfs_setxattr.
        inode.clear_nosec();
    }
    let ino = inode.ino();
    let t = now();
    let attr = inode.with_core(|fs, sv| {
        match value {
            Some(v) => fs.set_xattr(sv, ino, name, v, core_set_flags(flags), t)?,
            None => fs.remove_xattr(sv, ino, name, t)?,
        }
        fs.getattr(sv, ino)
    })?;
    inode.refresh(&attr);
    Ok(())
}

/// Whether listxattr shows a stored name: `user.`, `security.` and the
/// ACLs always, `trusted.` only to CAP_SYS_ADMIN (as ext4 does), and
/// nothing of a namespace the VFS could not read back.
fn listed(name: &[u8], may_trusted: bool) -> bool {
    let in_ns = |p: &[u8]| name.len() > p.len() && name.starts_with(p);
    in_ns(USER_PREFIX) || in_ns(SECURITY_PREFIX) || name == ACL_ACCESS || name == ACL_DEFAULT || (may_trusted && in_ns(TRUSTED_PREFIX))
}

/// Keeps, in place at the front of `list` (NUL-terminated names), the
/// names listxattr shows; returns their length.
fn retain_listed(list: &mut [u8], may_trusted: bool) -> usize {
    let (mut kept, mut start) = (0usize, 0usize);
    while let Some(len) = list.get(start..).and_then(|rest| rest.iter().position(|&c| c == 0)) {
        let next = start + len + 1;
        if list.get(start..start + len).is_some_and(|name| listed(name, may_trusted)) {
            // `kept <= start` and `next <= list.len()`: both ranges lie
            // inside the slice.
            list.copy_within(start..next, kept);
            kept += len + 1;
        }
        start = next;
    }
    kept
}

/// Whether a NUL-separated list holds a `trusted.` name.
fn any_trusted(list: &[u8]) -> bool {
    list.split(|&c| c == 0).any(|n| n.starts_with(TRUSTED_PREFIX))
}

/// Whether the current task has CAP_SYS_ADMIN.
fn capable_sys_admin() -> bool {
    // SAFETY: a plain capability check of the current task.
    unsafe { b::capable(b::CAP_SYS_ADMIN as c_int) }
}

/// `->listxattr`: the stored names the caller may see, NUL-terminated one
/// after another.
///
/// # Safety
/// Called by vfs_listxattr with `dentry` a positive dentry of a live ferrofs
/// inode (no i_rwsem held, locking.rst) and `buffer` a kernel buffer (never
/// user memory) with room for `size` bytes when `size > 0`; for a size query
/// (`size == 0`) it may be NULL and is not touched.
pub(crate) unsafe extern "C" fn listxattr(dentry: *mut b::dentry, buffer: *mut c_char, size: usize) -> isize {
    // SAFETY: the VFS passes a positive dentry, which pins its ferrofs
    // inode, and a kernel buffer of `size` bytes (none for a size query),
    // both for the call.
    let (inode, out) = unsafe { (INode::from_raw(b::ferrofs_dentry_inode(dentry)), out_buffer(buffer.cast(), size)) };
    from_result(|| list(inode, out).map(|n| n as isize))
}

/// The names `list` gives (a size query, then the list), NUL-terminated.
fn list_names(mut list: impl FnMut(&mut [u8]) -> CoreResult<usize>) -> CoreResult<TryVec<u8>> {
    let n = list(&mut [])?;
    let mut v = TryVec::try_from_elem(0u8, n)?;
    if n > 0 {
        list(&mut v)?;
    }
    Ok(v)
}

/// listxattr's body: the list's length, and the list in `out` unless it is
/// empty (a size query).
fn list(inode: &INode, out: &mut [MaybeUninit<u8>]) -> Result<usize> {
    let ino = inode.ino();
    let mut all = inode.with_core_shared(
        |fs, wants, sv| list_names(|buf| fs.list_xattr_cached(wants, sv, ino, buf)),
        |fs, sv| list_names(|buf| fs.list_xattr(sv, ino, buf)),
    )?;
    let may_trusted = any_trusted(&all) && capable_sys_admin();
    let n = retain_listed(&mut all, may_trusted);
    if out.is_empty() {
        return Ok(n);
    }
    if n > out.len() {
        return Err(ERANGE);
    }
    write_out(out, all.get(..n).unwrap_or(&[]));
    Ok(n)
}

/// The stored name of an ACL type, `None` for a type the VFS does not have.
fn acl_name(ty: c_int) -> Option<&'static [u8]> {
    // SAFETY: reading constants defined in xattr_shim.c.
    let (access, default) = unsafe { (b::FERROFS_ACL_TYPE_ACCESS, b::FERROFS_ACL_TYPE_DEFAULT) };
    match ty {
        t if t == access => Some(ACL_ACCESS),
        t if t == default => Some(ACL_DEFAULT),
        _ => None,
    }
}

/// A stored value, `None` if absent. Allocates under the core lock, which
/// runs in a NOFS scope.
fn read_value(mut get: impl FnMut(&mut [u8]) -> CoreResult<usize>) -> CoreResult<Option<TryVec<u8>>> {
    let len = match get(&mut []) {
        Ok(len) => len,
        Err(CoreError::NoData) => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut v = TryVec::try_from_elem(0u8, len)?;
    if len > 0 {
        get(&mut v)?;
    }
    Ok(Some(v))
}

/// A POSIX ACL the VFS lent us.
///
/// # Invariants
/// A posix_acl whose reference the caller holds for the borrow.
#[repr(transparent)]
pub(crate) struct PosixAcl(Opaque<b::posix_acl>);

impl PosixAcl {
    /// Borrows an ACL as a `PosixAcl`, None for NULL.
    ///
    /// # Safety
    /// `ptr` is NULL or a posix_acl the caller holds a reference to for `'a`.
    unsafe fn from_raw<'a>(ptr: *mut b::posix_acl) -> Option<&'a Self> {
        // SAFETY: `PosixAcl` is a transparent wrapper of `posix_acl`.
        // INVARIANT: the caller holds a reference for 'a.
        unsafe { ptr.cast::<Self>().as_ref() }
    }

    /// The C pointer, for calls not wrapped here.
    fn as_ptr(&self) -> *mut b::posix_acl {
        self.0.get()
    }

    /// The ACL in the stored format.
    fn encode(&self) -> Result<TryVec<u8>> {
        // SAFETY: a live ACL (type invariant).
        let size = unsafe { b::ferrofs_acl_xattr_size(self.as_ptr()) };
        let mut v = TryVec::try_from_elem(0u8, size)?;
        // SAFETY: a live ACL; `v` has room for `size` bytes.
        let n = unsafe { b::ferrofs_acl_to_xattr(self.as_ptr(), v.as_mut_ptr().cast(), size) };
        if n < 0 {
            return Err(Error::from_errno(n));
        }
        v.truncate(n as usize);
        Ok(v)
    }
}

/// An ACL in the stored format, `None` for no ACL.
fn encode(acl: Option<&PosixAcl>) -> Result<Option<TryVec<u8>>> {
    acl.map(PosixAcl::encode).transpose()
}

/// get_inode_acl: the VFS caches what this returns (NULL for no ACL).
///
/// # Safety
/// Called by the ACL code (__get_acl, for get_inode_acl() and the
/// permission checks; get_cached_acl_rcu in RCU-walk) with `inode` a
/// ferrofs inode other than a symlink and `ty` an ACL type. With `rcu` set
/// (RCU-walk) the inode is only RCU-protected and is not touched;
/// otherwise it is live, kept so by the caller, and no i_rwsem is held
/// (locking.rst).
pub(crate) unsafe extern "C" fn get_inode_acl(inode: *mut b::inode, ty: c_int, rcu: bool) -> *mut b::posix_acl {
    if rcu {
        // Reading the core may sleep: ask for a reference walk.
        return from_result::<*mut b::posix_acl>(|| Err(ECHILD));
    }
    // SAFETY: outside RCU walk the VFS passes a live inode of ours, kept
    // live for the call.
    let inode = unsafe { INode::from_raw(inode) };
    from_result(|| read_acl(inode, ty))
}

/// get_inode_acl's body: a new ACL reference, or NULL for none.
fn read_acl(inode: &INode, ty: c_int) -> Result<*mut b::posix_acl> {
    let name = acl_name(ty).ok_or(EINVAL)?;
    let ino = inode.ino();
    let value = inode.with_core_shared(
        |fs, wants, sv| read_value(|buf| fs.get_xattr_cached(wants, sv, ino, name, buf)),
        |fs, sv| read_value(|buf| fs.get_xattr(sv, ino, name, buf)),
    )?;
    match value {
        None => Ok(core::ptr::null_mut()),
        Some(v) => {
            // SAFETY: `v` is valid for its length; the result is a new
            // reference, NULL or an ERR_PTR, all of which the VFS expects.
            let acl = unsafe { b::ferrofs_acl_from_xattr(v.as_ptr().cast(), v.len()) };
            Ok(acl)
        }
    }
}

/// `->set_acl`: stores, or with `acl` NULL removes, an access or default
/// ACL, and the mode change an access ACL implies.
///
/// # Safety
/// Called by vfs_set_acl/vfs_remove_acl, or by posix_acl_chmod from our
/// `setattr`, with `dentry` a positive dentry of a live ferrofs inode (not
/// a symlink) whose i_rwsem is held exclusively, `acl` NULL or an ACL the
/// caller holds a reference to for the call, and `idmap` the mount's idmap;
/// no core lock is held.
pub(crate) unsafe extern "C" fn set_acl(idmap: *mut b::mnt_idmap, dentry: *mut b::dentry, acl: *mut b::posix_acl, ty: c_int) -> c_int {
    // The VFS passes its idmap, a positive dentry (which pins its inode)
    // whose inode it holds locked, and an ACL it holds a reference to or
    // NULL, all for the call.
    // SAFETY: each pointer is what its wrapper requires, as above.
    let parts =
        unsafe { (Idmap::from_raw(idmap), Locked::assume(INode::from_raw(b::ferrofs_dentry_inode(dentry))), PosixAcl::from_raw(acl)) };
    let (idmap, inode, acl) = parts;
    from_result(|| store_acl(idmap, inode, acl, ty))
}

/// set_acl's body.
fn store_acl(idmap: &Idmap, inode: Locked<'_>, acl: Option<&PosixAcl>, ty: c_int) -> Result {
    let name = acl_name(ty).ok_or(EINVAL)?;
    inode.subvol().check_writable()?;
    let old_mode = inode.mode();
    let (mut mode, mut acl) = (old_mode, acl);
    if name == ACL_ACCESS {
        if let Some(a) = acl {
            // The mode's group bits become the ACL's mask; an ACL the mode
            // says all of is not stored (acl becomes None). Only our copy
            // of the pointer changes: the caller still owns its reference.
            let mut p = a.as_ptr();
            // SAFETY: the live idmap and ACL, and the locked inode
            // (`Locked`); the shim may only set `p` to NULL.
            to_result(unsafe { b::ferrofs_acl_update_mode(idmap.as_ptr(), inode.as_ptr(), &mut mode, &mut p) })?;
            acl = if p.is_null() { None } else { Some(a) };
        }
    }
    if name == ACL_DEFAULT && old_mode & S_IFMT != S_IFDIR {
        return if acl.is_none() { Ok(()) } else { Err(EACCES) };
    }
    let value = encode(acl)?;
    let ino = inode.ino();
    let t = now();
    let r = inode.with_core(|fs, sv| {
        match &value {
            Some(v) => fs.set_xattr(sv, ino, name, v, 0, t)?,
            None => match fs.remove_xattr(sv, ino, name, t) {
                Ok(()) | Err(CoreError::NoData) => {}
                Err(e) => return Err(e),
            },
        }
        if mode != old_mode {
            fs.setattr(sv, ino, &SetAttr { mode: Some(mode), ..SetAttr::default() }, t)?;
        }
        fs.getattr(sv, ino)
    });
    match r {
        Ok(attr) => {
            inode.refresh(&attr);
            let p = acl.map_or(core::ptr::null_mut(), PosixAcl::as_ptr);
            // SAFETY: the inode is locked (`Locked`); set_cached_acl takes
            // its own reference to the ACL (or caches "none" for NULL).
            unsafe { b::ferrofs_set_cached_acl(inode.as_ptr(), ty, p) };
            Ok(())
        }
        Err(e) => {
            // Part of the change may have reached the core: drop what the
            // VFS has cached and take the core's attributes as they are.
            // SAFETY: the inode is live and locked (`Locked`).
            unsafe { b::ferrofs_forget_cached_acl(inode.as_ptr(), ty) };
            if let Ok(attr) = inode.with_core(|fs, sv| fs.getattr(sv, ino)) {
                inode.refresh(&attr);
            }
            Err(e.into())
        }
    }
}

/// After setattr changed a mode: brings the access ACL's owner, mask and
/// other entries in line with it (posix_acl_chmod, which calls `set_acl`).
/// Symlinks, which have no ACL operations, never get here: notify_change
/// refuses mode changes on them with EOPNOTSUPP.
///
/// # Safety
/// The VFS arguments of the setattr, whose inode's i_rwsem the VFS holds
/// exclusively, after the new mode reached the core and the VFS inode; the
/// core lock is not held (posix_acl_chmod calls `set_acl`).
pub(crate) unsafe fn chmod_acl(idmap: *mut b::mnt_idmap, dentry: *mut b::dentry) -> c_int {
    // SAFETY: per the contract.
    unsafe { b::ferrofs_acl_chmod(idmap, dentry) }
}

/// The core error for an errno from a kernel ACL helper, for the create
/// path, which speaks core errors; those the core has map back exactly.
fn core_error_of(e: Error) -> CoreError {
    use crate::error::errno::*;
    match -e.to_errno() {
        ENOMEM => CoreError::NoMemory,
        ENOSPC => CoreError::NoSpace,
        EUCLEAN => CoreError::corrupt("damaged default ACL"),
        EROFS => CoreError::ReadOnly,
        EOPNOTSUPP => CoreError::NotSupported,
        EPERM => CoreError::NotPermitted,
        E2BIG => CoreError::ArgTooBig,
        ENODATA => CoreError::NoData,
        ERANGE => CoreError::Range,
        EINVAL => CoreError::Invalid("invalid default ACL"),
        _ => CoreError::Io,
    }
}

/// The ACLs a new inode inherits from its directory's default ACL, encoded
/// before the core lock is taken.
pub(crate) struct InheritedAcls {
    default: Option<TryVec<u8>>,
    access: Option<TryVec<u8>>,
}

impl InheritedAcls {
    /// Runs posix_acl_create for a new inode of `*mode` (with its type
    /// bits) in `dir`: applies the directory's default ACL, or the umask
    /// when it has none, to `*mode`, and keeps the ACLs to store. A symlink
    /// gets neither, as its mode is fixed.
    ///
    /// # Safety
    /// `dir` is a live ferrofs directory, its i_rwsem held exclusively by
    /// the VFS for create, mknod, mkdir and symlink, and not at all for
    /// tmpfile (posix_acl_create needs only a live directory); the core lock
    /// is not held (the default ACL may need reading).
    pub(crate) unsafe fn new(dir: *mut b::inode, mode: &mut u32, symlink: bool) -> CoreResult<Self> {
        let mut acls = InheritedAcls { default: None, access: None };
        if symlink {
            return Ok(acls);
        }
        let (mut default, mut access) = (core::ptr::null_mut(), core::ptr::null_mut());
        // SAFETY: per the contract; both out-pointers are valid.
        let r = to_result(unsafe { b::ferrofs_acl_create(dir, mode, &mut default, &mut access) }).and_then(|()| {
            // SAFETY: each is NULL or an ACL posix_acl_create gave us, whose
            // reference we hold until the release below.
            let (d, a) = unsafe { (PosixAcl::from_raw(default), PosixAcl::from_raw(access)) };
            acls.default = encode(d)?;
            acls.access = encode(a)?;
            Ok(())
        });
        for acl in [default, access] {
            if !acl.is_null() {
                // SAFETY: we own these references and are done with them.
                unsafe { b::ferrofs_acl_release(acl) };
            }
        }
        r.map(|()| acls).map_err(core_error_of)
    }

    /// Whether the new inode gets any ACL.
    pub(crate) fn any(&self) -> bool {
        self.default.is_some() || self.access.is_some()
    }

    /// Stores the ACLs on `created`, the inode a core create just made as
    /// `name` in `dir` (an empty name: an O_TMPFILE inode), under the same
    /// lock. If that fails the name is
    /// removed and the inode freed again: no inode may live with a mode
    /// computed for an ACL it lacks.
    pub(crate) fn store(
        &self,
        fs: &mut Filesystem<KernelDevice>,
        sv: SubvolId,
        dir: u64,
        name: &[u8],
        created: CoreResult<InodeAttr>,
        now: Timespec,
    ) -> CoreResult<InodeAttr> {
        let attr = created?;
        let mut r = Ok(());
        for (xname, value) in [(ACL_DEFAULT, &self.default), (ACL_ACCESS, &self.access)] {
            if let Some(v) = value {
                r = r.and_then(|()| fs.set_xattr(sv, attr.ino, xname, v, crate::fs::XATTR_CREATE, now));
            }
        }
        if let Err(e) = r {
            let undone = match name {
                // An O_TMPFILE inode has no name; it is already an orphan.
                [] => Ok(()),
                _ if attr.mode & S_IFMT == S_IFDIR => fs.rmdir(sv, dir, name, now),
                _ => fs.unlink(sv, dir, name, now),
            };
            // The VFS never saw the inode, so nothing else will evict it. If
            // undoing fails too, the transaction is aborted and the first
            // error is the one worth reporting.
            let _ = undone.and_then(|()| fs.evict(sv, attr.ino));
            return Err(e);
        }
        Ok(attr)
    }
}

/// The inode flags ferrofs keeps (FS_*_FL, as FS_IOC_GETFLAGS reports them).
const SUPPORTED_FLAGS: u32 = b::FS_SYNC_FL | b::FS_IMMUTABLE_FL | b::FS_APPEND_FL | b::FS_NODUMP_FL | b::FS_NOATIME_FL;

/// Each stored flag the VFS enforces, and its `i_flags` bit.
const VFS_FLAGS: [(u32, u32); 4] =
    [(b::FS_SYNC_FL, b::S_SYNC), (b::FS_IMMUTABLE_FL, b::S_IMMUTABLE), (b::FS_APPEND_FL, b::S_APPEND), (b::FS_NOATIME_FL, b::S_NOATIME)];

/// The `i_flags` bits for stored flags, and the mask of all of them.
fn vfs_flags(flags: u32) -> (u32, u32) {
    VFS_FLAGS.iter().fold((0, 0), |(set, mask), &(fl, s)| (if flags & fl != 0 { set | s } else { set }, mask | s))
}

/// The flags to store when FS_IOC_SETFLAGS asks for `wanted` on an inode
/// that has `old`: EOPNOTSUPP for a flag ferrofs lacks (as ext4), EPERM for
/// changing other flags of an inode that is and stays immutable (ext4's
/// rule; the VFS already limits changing immutable and append-only
/// themselves to CAP_LINUX_IMMUTABLE). Bits of `old` outside the supported
/// set are kept.
fn new_flags(old: u32, wanted: u32) -> Result<u32> {
    if wanted & !SUPPORTED_FLAGS != 0 {
        return Err(errno_of(CoreError::NotSupported));
    }
    let imm = b::FS_IMMUTABLE_FL;
    if old & imm != 0 && wanted & imm != 0 && old & SUPPORTED_FLAGS != wanted {
        return Err(EPERM);
    }
    Ok((old & !SUPPORTED_FLAGS) | wanted)
}

/// Mirrors stored flags into the VFS inode's `i_flags`, where the VFS
/// enforces them (writes, unlink, rename, link, setattr, xattrs).
///
/// # Safety
/// `inode` is live, and I_NEW or locked by the caller.
pub(crate) unsafe fn apply_flags(inode: *mut b::inode, flags: u32) {
    let (set, mask) = vfs_flags(flags);
    // SAFETY: per the contract; inode_set_flags updates i_flags atomically.
    unsafe { b::inode_set_flags(inode, set, mask) }
}

/// The fileattr of an FS_IOC_GETFLAGS/SETFLAGS (or FSGETXATTR/FSSETXATTR).
///
/// # Invariants
/// The live fileattr of a fileattr_get or fileattr_set call in progress.
#[repr(transparent)]
struct FileAttr(Opaque<b::fileattr>);

impl FileAttr {
    /// Borrows a fileattr as a `FileAttr`.
    ///
    /// # Safety
    /// `ptr` is the fileattr of a fileattr call in progress, live for `'a`.
    unsafe fn from_raw<'a>(ptr: *mut b::fileattr) -> &'a Self {
        // SAFETY: `FileAttr` is a transparent wrapper of `fileattr`.
        // INVARIANT: the caller guarantees a live fileattr for 'a.
        unsafe { &*ptr.cast::<Self>() }
    }

    /// Fills it from FS_*_FL flags (fileattr_fill_flags).
    fn fill_flags(&self, flags: u32) {
        // SAFETY: a live fileattr (type invariant).
        unsafe { b::ferrofs_fileattr_fill_flags(self.0.get(), flags) }
    }

    /// The FS_*_FL flags asked for.
    fn flags(&self) -> u32 {
        // SAFETY: a live fileattr (type invariant).
        unsafe { b::ferrofs_fileattr_flags(self.0.get()) }
    }

    /// Whether it came as FS_IOC_FSSETXATTR (fields beyond the flags).
    fn has_fsx(&self) -> bool {
        // SAFETY: a live fileattr (type invariant).
        unsafe { b::ferrofs_fileattr_has_fsx(self.0.get()) }
    }
}

/// `->fileattr_get` (FS_IOC_GETFLAGS, FS_IOC_FSGETXATTR).
///
/// # Safety
/// Called by vfs_fileattr_get with `dentry` a positive dentry of a live
/// ferrofs regular file or directory (the only inodes with this operation),
/// its i_rwsem held exclusively (from vfs_fileattr_set) or not at all
/// (locking.rst), and `fa` the caller's live fileattr to fill.
pub(crate) unsafe extern "C" fn fileattr_get(dentry: *mut b::dentry, fa: *mut b::fileattr) -> c_int {
    // SAFETY: the VFS passes a positive dentry, which pins its ferrofs
    // inode, and its live fileattr, both for the call.
    let (inode, fa) = unsafe { (INode::from_raw(b::ferrofs_dentry_inode(dentry)), FileAttr::from_raw(fa)) };
    from_result(|| {
        let attr = inode.with_core(|fs, sv| fs.getattr(sv, inode.ino()))?;
        fa.fill_flags(attr.flags & SUPPORTED_FLAGS);
        Ok(())
    })
}

/// `->fileattr_set` (FS_IOC_SETFLAGS, FS_IOC_FSSETXATTR).
///
/// # Safety
/// Called by vfs_fileattr_set with `dentry` a positive dentry of a live
/// ferrofs regular file or directory whose i_rwsem it holds exclusively
/// (locking.rst), and `fa` the requested attributes, already checked by
/// fileattr_set_prepare (changing immutable or append-only needs
/// CAP_LINUX_IMMUTABLE). `_idmap` is not used.
pub(crate) unsafe extern "C" fn fileattr_set(_idmap: *mut b::mnt_idmap, dentry: *mut b::dentry, fa: *mut b::fileattr) -> c_int {
    // SAFETY: vfs_fileattr_set calls with a positive dentry of ours, which
    // pins its inode, that inode locked, and the checked fileattr, all for
    // the call.
    let (inode, fa) = unsafe { (Locked::assume(INode::from_raw(b::ferrofs_dentry_inode(dentry))), FileAttr::from_raw(fa)) };
    from_result(|| set_flags(inode, fa))
}

/// fileattr_set's body.
fn set_flags(inode: Locked<'_>, fa: &FileAttr) -> Result {
    // FS_IOC_FSSETXATTR fields with no FS_*_FL equivalent (extent size
    // hints, project ids, other xflags) are not kept.
    if fa.has_fsx() {
        return Err(errno_of(CoreError::NotSupported));
    }
    inode.subvol().check_writable()?;
    let wanted = fa.flags();
    let ino = inode.ino();
    // The inode lock keeps the flags from changing between here and the
    // setattr: every change goes through this function.
    let old = inode.with_core(|fs, sv| fs.getattr(sv, ino))?.flags;
    let flags = new_flags(old, wanted)?;
    let t = now();
    let attr = inode.with_core(|fs, sv| fs.setattr(sv, ino, &SetAttr { flags: Some(flags), ..SetAttr::default() }, t))?;
    inode.refresh(&attr);
    // SAFETY: the inode is live and locked (`Locked`).
    unsafe { apply_flags(inode.as_ptr(), attr.flags) };
    Ok(())
}

mod tests {
    //! KUnit cases for the pure helpers above.
    use super::super::kunit::{kcheck, kunit_suite, Test};
    use super::*;

    fn prefix_join(t: &mut Test) {
        let mut out = [0u8; XATTR_NAME_MAX];
        kcheck!(t, full_name(b"user.", b"x", &mut out) == Some(&b"user.x"[..]));
        kcheck!(t, full_name(b"security.", b"selinux", &mut out) == Some(&b"security.selinux"[..]));
        let long = [b'n'; 250];
        kcheck!(t, full_name(b"user.", &long, &mut out).map(|n| n.len()) == Some(255));
        kcheck!(t, full_name(b"trusted.", &long, &mut out).is_none());
    }

    fn list_filter(t: &mut Test) {
        let stored = *b"user.a\0trusted.t\0system.posix_acl_access\0other.z\0security.s\0system.posix_acl_default\0user.\0";
        let mut list = stored;
        let n = retain_listed(&mut list, false);
        kcheck!(t, list.get(..n) == Some(&b"user.a\0system.posix_acl_access\0security.s\0system.posix_acl_default\0"[..]));
        let mut list = stored;
        let n = retain_listed(&mut list, true);
        kcheck!(t, list.get(..n) == Some(&b"user.a\0trusted.t\0system.posix_acl_access\0security.s\0system.posix_acl_default\0"[..]));
        kcheck!(t, any_trusted(&stored) && !any_trusted(b"user.trusted.\0"));
        let mut empty = [0u8; 0];
        kcheck!(t, retain_listed(&mut empty, true) == 0);
        // A name without its NUL is dropped, not shown half-terminated.
        let mut torn = *b"user.a\0user.b";
        kcheck!(t, retain_listed(&mut torn, true) == 7);
    }

    fn flag_map(t: &mut Test) {
        let all = b::S_SYNC | b::S_IMMUTABLE | b::S_APPEND | b::S_NOATIME;
        kcheck!(t, vfs_flags(0) == (0, all));
        kcheck!(t, vfs_flags(b::FS_IMMUTABLE_FL | b::FS_APPEND_FL) == (b::S_IMMUTABLE | b::S_APPEND, all));
        kcheck!(t, vfs_flags(b::FS_NODUMP_FL) == (0, all));
        kcheck!(t, vfs_flags(SUPPORTED_FLAGS) == (all, all));
        kcheck!(t, vfs_flags(b::FS_SYNC_FL | b::FS_NOATIME_FL) == (b::S_SYNC | b::S_NOATIME, all));
    }

    fn setflags_rules(t: &mut Test) {
        let (imm, app, nodump) = (b::FS_IMMUTABLE_FL, b::FS_APPEND_FL, b::FS_NODUMP_FL);
        kcheck!(t, new_flags(0, imm | nodump) == Ok(imm | nodump));
        kcheck!(t, new_flags(imm, 0) == Ok(0));
        kcheck!(t, new_flags(imm, imm) == Ok(imm));
        kcheck!(t, new_flags(imm, imm | nodump) == Err(EPERM));
        kcheck!(t, new_flags(app, app | nodump) == Ok(app | nodump));
        kcheck!(t, new_flags(0, b::FS_COMPR_FL) == Err(errno_of(CoreError::NotSupported)));
        kcheck!(t, new_flags(0, b::FS_DIRSYNC_FL | nodump) == Err(errno_of(CoreError::NotSupported)));
        // Stored bits ferrofs does not know are left alone.
        kcheck!(t, new_flags(b::FS_NOCOW_FL | nodump, app) == Ok(b::FS_NOCOW_FL | app));
    }

    fn acl_and_set_flags(t: &mut Test) {
        // SAFETY: reading constants defined in xattr_shim.c.
        let (access, default, create, replace) =
            unsafe { (b::FERROFS_ACL_TYPE_ACCESS, b::FERROFS_ACL_TYPE_DEFAULT, b::FERROFS_XATTR_CREATE, b::FERROFS_XATTR_REPLACE) };
        kcheck!(t, acl_name(access) == Some(ACL_ACCESS) && acl_name(default) == Some(ACL_DEFAULT));
        kcheck!(t, acl_name(0).is_none());
        kcheck!(t, core_set_flags(0) == 0);
        kcheck!(t, core_set_flags(create) == crate::fs::XATTR_CREATE);
        kcheck!(t, core_set_flags(replace) == crate::fs::XATTR_REPLACE);
    }

    fn errno_map(t: &mut Test) {
        let errs = [
            CoreError::NoMemory,
            CoreError::NoSpace,
            CoreError::corrupt("x"),
            CoreError::ReadOnly,
            CoreError::NotSupported,
            CoreError::NotPermitted,
            CoreError::ArgTooBig,
            CoreError::NoData,
            CoreError::Range,
            CoreError::Invalid("x"),
            CoreError::Io,
        ];
        for e in errs {
            kcheck!(t, core_error_of(errno_of(e)).errno() == e.errno());
        }
        kcheck!(t, core_error_of(EACCES) == CoreError::Io);
    }

    kunit_suite!(ferrofs_xattr_suite, "ferrofs_xattr", [prefix_join, list_filter, flag_map, setflags_rules, acl_and_set_flags, errno_map]);
}

// SPDX-License-Identifier: GPL-2.0
//! Typed views of the VFS objects callbacks receive (super_block, dentry,
//! mount idmap, file, folio) and `from_result`, the one place where a
//! callback's `Result` becomes an errno or an ERR_PTR.
//!
//! C headers: [`include/linux/fs.h`](srctree/include/linux/fs.h),
//! [`include/linux/dcache.h`](srctree/include/linux/dcache.h),
//! [`include/linux/pagemap.h`](srctree/include/linux/pagemap.h).
//!
//! Each wrapper is `#[repr(transparent)]` over `Opaque<C struct>`, so a
//! `&File` is the kernel's `struct file *`. They are only borrowed from a
//! pointer the VFS passed to a callback (`from_raw`), for no longer than the
//! call; the `# Invariants` section of each says what such a borrow
//! guarantees, and the callback's `// SAFETY:` comment says why the kernel
//! gives that guarantee. The inode wrapper, `INode`, and its lock witness
//! `Locked` live in `inode`; wrappers of objects only one file uses (the
//! FIEMAP request, the dir_context, the fs_context, ACLs) live in that file.

use super::bindings as b;
use super::fs_info::FsInfo;
use super::inode::{self, INode};
use crate::error::Result as CoreResult;
use crate::fs::InodeAttr;
use crate::subvol::SubvolId;
use kernel::error::Error;
use kernel::ffi::{c_char, c_int};
use kernel::str::CStr;
use kernel::types::{ARef, Opaque};

/// A mounted ferrofs super_block.
///
/// # Invariants
/// The super_block is live for the borrow, and its `s_fs_info` is the
/// `FsInfo` fill_super set, which lives until kill_sb, after the last
/// inode and file of the super_block are gone.
#[repr(transparent)]
pub(crate) struct SuperBlock(Opaque<b::super_block>);

impl SuperBlock {
    /// Borrows a super_block as a `SuperBlock`.
    ///
    /// # Safety
    /// `ptr` is a live ferrofs super_block whose fill_super has set
    /// `s_fs_info`, and it stays live for `'a`.
    pub(crate) unsafe fn from_raw<'a>(ptr: *mut b::super_block) -> &'a Self {
        // SAFETY: `SuperBlock` is a transparent wrapper of `super_block`.
        // INVARIANT: the caller guarantees a live, filled super_block for 'a.
        unsafe { &*ptr.cast::<Self>() }
    }

    /// The C pointer, for calls not wrapped here.
    pub(crate) fn as_ptr(&self) -> *mut b::super_block {
        self.0.get()
    }

    /// The mount's state.
    pub(crate) fn info(&self) -> &FsInfo {
        // SAFETY: by the type invariant `s_fs_info` is the FsInfo set by
        // fill_super, which outlives the super_block and so this borrow.
        unsafe { FsInfo::from_sb_info(b::ferrofs_sb_fs_info(self.as_ptr())) }
    }

    /// The device name (s_id), for messages.
    pub(crate) fn id(&self) -> &CStr {
        // SAFETY: s_id is a NUL-terminated array inside the live super_block
        // (type invariant), set before fill_super and never changed after.
        unsafe { CStr::from_char_ptr(b::ferrofs_sb_id(self.as_ptr())) }
    }

    /// Writes back and commits the whole filesystem (sync_filesystem, with
    /// s_umount taken by the shim). The caller must not hold s_umount or a
    /// folio lock of this filesystem, or it deadlocks.
    pub(crate) fn sync(&self) {
        // SAFETY: the super_block is live (type invariant); the shim takes
        // s_umount around sync_filesystem itself.
        unsafe { b::ferrofs_sync_sb(self.as_ptr()) }
    }

    /// The inode `ino` of subvolume `sv`, from the inode cache or loaded
    /// (see `inode::iget`); `NotFound` if the subvolume is gone.
    pub(crate) fn iget(&self, sv: SubvolId, ino: u64, known: Option<&InodeAttr>) -> CoreResult<ARef<INode>> {
        let sv = self.info().subvol(sv)?;
        // SAFETY: a live ferrofs super_block with s_fs_info set (type
        // invariant); `sv` is an entry of its own FsInfo's table.
        unsafe { inode::iget(self.as_ptr(), sv, ino, known) }
    }

    /// `iget` of the inode a create just made (see `inode::iget_created`).
    pub(crate) fn iget_created(&self, sv: SubvolId, attr: &InodeAttr, inherited_acl: bool) -> CoreResult<ARef<INode>> {
        let sv = self.info().subvol(sv)?;
        // SAFETY: as in `iget`.
        unsafe { inode::iget_created(self.as_ptr(), sv, attr, inherited_acl) }
    }

    /// Whether the mount is read-only (SB_RDONLY).
    pub(crate) fn is_read_only(&self) -> bool {
        // SAFETY: a live super_block (type invariant).
        unsafe { b::ferrofs_sb_rdonly(self.as_ptr()) }
    }
}

/// A dentry of a ferrofs filesystem.
///
/// # Invariants
/// The dentry is live for the borrow and its name does not change during
/// it (the VFS holds the parent directory's i_rwsem, as it does around
/// lookup and the namespace operations).
#[repr(transparent)]
pub(crate) struct Dentry(Opaque<b::dentry>);

impl Dentry {
    /// Borrows a dentry as a `Dentry`.
    ///
    /// # Safety
    /// `ptr` is a live dentry of a ferrofs filesystem whose name stays
    /// stable for `'a` (its parent's i_rwsem is held for that long).
    pub(crate) unsafe fn from_raw<'a>(ptr: *mut b::dentry) -> &'a Self {
        // SAFETY: `Dentry` is a transparent wrapper of `dentry`.
        // INVARIANT: the caller guarantees a live dentry with a stable name.
        unsafe { &*ptr.cast::<Self>() }
    }

    /// The C pointer, for calls not wrapped here.
    pub(crate) fn as_ptr(&self) -> *mut b::dentry {
        self.0.get()
    }

    /// The name (not NUL-terminated; not yet checked against NAME_MAX).
    pub(crate) fn name(&self) -> &[u8] {
        let mut len = 0u32;
        // SAFETY: the dentry is live and its name stable for the borrow of
        // `self` (type invariant); the shim returns `d_name.name` and its
        // length.
        unsafe { core::slice::from_raw_parts(b::ferrofs_dentry_name(self.as_ptr(), &mut len), len as usize) }
    }

    /// Gives the lookup's answer to the VFS (d_splice_alias): `inode`, or
    /// None to leave the dentry negative. Returns what `->lookup` returns:
    /// NULL, another dentry for the inode, or an ERR_PTR.
    ///
    /// # Safety
    /// `self` is the new negative dentry of a `->lookup` in progress.
    pub(crate) unsafe fn splice_alias(&self, inode: Option<ARef<INode>>) -> *mut b::dentry {
        let raw = inode.map_or(core::ptr::null_mut(), |i| ARef::into_raw(i).as_ptr().cast::<b::inode>());
        // SAFETY: a dentry of a lookup in progress (contract); d_splice_alias
        // takes over the inode reference (NULL for a negative dentry).
        unsafe { b::ferrofs_d_splice_alias(raw, self.as_ptr()) }
    }

    /// Makes the dentry positive with `inode`, whose reference it takes
    /// over (d_instantiate).
    ///
    /// # Safety
    /// `self` is the negative dentry of a create, mknod, mkdir, symlink or
    /// link in progress, in a directory whose i_rwsem the VFS holds.
    pub(crate) unsafe fn instantiate(&self, inode: ARef<INode>) {
        // SAFETY: a negative dentry of a namespace call in progress
        // (contract); the dentry takes over our reference.
        unsafe { b::ferrofs_d_instantiate(self.as_ptr(), ARef::into_raw(inode).as_ptr().cast()) }
    }

    /// Its reference count (d_count), for telling whether it is in use.
    pub(crate) fn count(&self) -> u32 {
        // SAFETY: the dentry is live (type invariant); a racy read of the
        // count, as the VFS's own busy checks make.
        unsafe { b::ferrofs_d_count(self.as_ptr()) }
    }

    /// Prunes the unused dentries below this one (shrink_dcache_parent).
    pub(crate) fn shrink_children(&self) {
        // SAFETY: a live dentry (type invariant).
        unsafe { b::shrink_dcache_parent(self.as_ptr()) }
    }

    /// Whether any dentry is still below this one.
    pub(crate) fn has_children(&self) -> bool {
        // SAFETY: a live dentry (type invariant); the shim takes d_lock.
        unsafe { b::ferrofs_d_has_children(self.as_ptr()) }
    }

    /// Marks a removed directory dead, as vfs_rmdir does: lookups in it
    /// fail and nothing can be mounted on it.
    ///
    /// # Safety
    /// A positive dentry of a directory the filesystem just removed, whose
    /// inode's i_rwsem the caller holds.
    pub(crate) unsafe fn mark_dead_dir(&self) {
        // SAFETY: per the contract.
        unsafe { b::ferrofs_mark_dead_dir(self.as_ptr()) }
    }

    /// Unhashes the dentry and prunes what is below it, detaching mounts
    /// there (d_invalidate).
    pub(crate) fn invalidate(&self) {
        // SAFETY: a live dentry (type invariant).
        unsafe { b::d_invalidate(self.as_ptr()) }
    }

    /// d_delete, with the fsnotify event, after the name went from `dir`.
    ///
    /// # Safety
    /// The name was removed from `dir`, whose i_rwsem the caller holds, and
    /// the caller holds a reference to the dentry.
    pub(crate) unsafe fn delete_from(&self, dir: &INode) {
        // SAFETY: per the contract.
        unsafe { b::ferrofs_d_delete(dir.as_ptr(), self.as_ptr()) }
    }

    /// The inode of a positive dentry, or None for a negative one.
    pub(crate) fn inode(&self) -> Option<&INode> {
        // SAFETY: the dentry is live (type invariant); d_inode is read once.
        let raw = unsafe { b::ferrofs_dentry_inode(self.as_ptr()) };
        if raw.is_null() {
            return None;
        }
        // SAFETY: a positive dentry holds a reference to its inode, a ferrofs
        // inode, and with the parent locked it stays positive for the borrow.
        Some(unsafe { INode::from_raw(raw) })
    }
}

/// The idmap of the mount a VFS call came through.
///
/// # Invariants
/// The idmap is live for the borrow (the call pins its mount).
#[repr(transparent)]
pub(crate) struct Idmap(Opaque<b::mnt_idmap>);

impl Idmap {
    /// Borrows an idmap as an `Idmap`.
    ///
    /// # Safety
    /// `ptr` is the idmap of the mount of a VFS call in progress, live for
    /// `'a`.
    pub(crate) unsafe fn from_raw<'a>(ptr: *mut b::mnt_idmap) -> &'a Self {
        // SAFETY: `Idmap` is a transparent wrapper of `mnt_idmap`.
        // INVARIANT: the caller guarantees a live idmap for 'a.
        unsafe { &*ptr.cast::<Self>() }
    }

    /// The C pointer, for calls not wrapped here.
    pub(crate) fn as_ptr(&self) -> *mut b::mnt_idmap {
        self.0.get()
    }

    /// Mode, uid and gid of a new inode of `mode` in `dir`, through this
    /// mount's idmap (inode_init_owner's rules: a setgid directory passes
    /// its group on, and its setgid bit to subdirectories).
    pub(crate) fn new_owner(&self, dir: &INode, mode: u32) -> (u32, u32, u32) {
        let (mut mode, mut uid, mut gid) = (mode, 0u32, 0u32);
        // SAFETY: a live idmap (type invariant) and a live directory; the
        // shim only reads the directory's mode and group.
        unsafe { b::ferrofs_new_owner(self.as_ptr(), dir.as_ptr(), &mut mode, &mut uid, &mut gid) };
        (mode, uid, gid)
    }
}

/// An open file of a ferrofs filesystem.
///
/// # Invariants
/// The file is open for the borrow; its inode (`f_inode`) is a live
/// ferrofs inode, pinned by the open file.
#[repr(transparent)]
pub(crate) struct File(Opaque<b::file>);

impl File {
    /// Borrows a file as a `File`.
    ///
    /// # Safety
    /// `ptr` is an open ferrofs file that stays open for `'a`.
    pub(crate) unsafe fn from_raw<'a>(ptr: *mut b::file) -> &'a Self {
        // SAFETY: `File` is a transparent wrapper of `file`.
        // INVARIANT: the caller guarantees an open ferrofs file for 'a.
        unsafe { &*ptr.cast::<Self>() }
    }

    /// The C pointer, for calls not wrapped here.
    pub(crate) fn as_ptr(&self) -> *mut b::file {
        self.0.get()
    }

    /// The file's inode.
    pub(crate) fn inode(&self) -> &INode {
        // SAFETY: an open file pins its inode for as long as it is open
        // (type invariant), which outlives this borrow; it is ours.
        unsafe { INode::from_raw(b::ferrofs_file_inode(self.as_ptr())) }
    }

    /// The idmap of the mount the file was opened through.
    pub(crate) fn idmap(&self) -> &Idmap {
        // SAFETY: an open file pins its mount and so the mount's idmap
        // (type invariant), for as long as the borrow of `self`.
        unsafe { Idmap::from_raw(b::ferrofs_file_idmap(self.as_ptr())) }
    }

    /// Writes the byte range's dirty pages back and waits for them
    /// (file_write_and_wait_range, which also reports earlier writeback
    /// errors of this file).
    pub(crate) fn write_and_wait_range(&self, start: i64, end: i64) -> kernel::error::Result {
        // SAFETY: the file is open (type invariant).
        kernel::error::to_result(unsafe { b::file_write_and_wait_range(self.as_ptr(), start, end) })
    }

    /// generic_file_llseek: SEEK_SET, SEEK_CUR and SEEK_END, as the VFS
    /// does them; returns the new position or a negative errno.
    pub(crate) fn generic_llseek(&self, offset: i64, whence: c_int) -> i64 {
        // SAFETY: the file is open (type invariant); the caller of llseek
        // holds f_pos_lock where the VFS needs it.
        unsafe { b::generic_file_llseek(self.as_ptr(), offset, whence) }
    }

    /// Moves the file position to `pos` (vfs_setpos, which checks it
    /// against the file's limit).
    pub(crate) fn set_pos(&self, pos: i64) -> kernel::error::Result<i64> {
        // SAFETY: the file is open (type invariant); called from llseek,
        // whose caller holds f_pos_lock where the VFS needs it.
        let r = unsafe { b::ferrofs_setpos(self.as_ptr(), pos) };
        if r < 0 {
            Err(Error::from_errno(r as c_int))
        } else {
            Ok(r)
        }
    }
}

/// A folio in the page cache of a ferrofs regular file.
///
/// # Invariants
/// The folio is live and referenced for the borrow, and locked by this
/// thread (or under writeback started by it), so it stays in its mapping,
/// whose host is a live ferrofs regular-file inode.
#[repr(transparent)]
pub(crate) struct Folio(Opaque<b::folio>);

impl Folio {
    /// Borrows a folio as a `Folio`.
    ///
    /// # Safety
    /// `ptr` is a referenced folio of a ferrofs regular file's page cache,
    /// locked by the caller (or under its writeback) for `'a`.
    pub(crate) unsafe fn from_raw<'a>(ptr: *mut b::folio) -> &'a Self {
        // SAFETY: `Folio` is a transparent wrapper of `folio`.
        // INVARIANT: the caller guarantees a locked folio of ours for 'a.
        unsafe { &*ptr.cast::<Self>() }
    }

    /// The C pointer, for calls not wrapped here.
    pub(crate) fn as_ptr(&self) -> *mut b::folio {
        self.0.get()
    }

    /// The inode whose page cache holds the folio.
    pub(crate) fn inode(&self) -> &INode {
        // SAFETY: a locked folio stays in its mapping, whose host is a live
        // ferrofs inode (type invariant) that outlives its page cache.
        unsafe { INode::from_raw(b::ferrofs_folio_inode(self.as_ptr())) }
    }

    /// Byte offset of the folio in its file.
    pub(crate) fn pos(&self) -> u64 {
        // SAFETY: the folio is live and in its mapping (type invariant).
        unsafe { b::ferrofs_folio_pos(self.as_ptr()) as u64 }
    }

    /// Size of the folio in bytes.
    pub(crate) fn size(&self) -> usize {
        // SAFETY: the folio is live (type invariant).
        unsafe { b::ferrofs_folio_size(self.as_ptr()) }
    }

    /// The folio's bytes, mapped for the duration of `f`.
    pub(crate) fn with_bytes<T>(&self, f: impl FnOnce(&mut [u8]) -> T) -> T {
        // SAFETY: the folio is locked by this thread (type invariant), so its
        // contents are ours; ferrofs never enables large folios, so the one
        // mapped page covers folio_size bytes, and it is unmapped after `f`.
        unsafe {
            let len = b::ferrofs_folio_size(self.as_ptr());
            let addr = b::ferrofs_folio_map(self.as_ptr());
            let r = f(core::slice::from_raw_parts_mut(addr.cast::<u8>(), len));
            b::ferrofs_folio_unmap(addr);
            r
        }
    }

    /// Zeroes bytes `start..end` of the folio.
    pub(crate) fn zero(&self, start: usize, end: usize) {
        // SAFETY: the folio is locked by this thread (type invariant), so its
        // contents are ours.
        unsafe { b::ferrofs_folio_zero(self.as_ptr(), start, end) }
    }

    /// Drops the folio's tag of a promised block (`folio->private`); true
    /// if it had one, whose promise the caller then gives back.
    pub(crate) fn unreserve(&self) -> bool {
        // SAFETY: the folio is locked (type invariant), which serialises its
        // private tag.
        unsafe { b::ferrofs_folio_unreserve(self.as_ptr()) }
    }
}

/// What a callback's successful value becomes at the C boundary, and what
/// an error becomes there.
pub(crate) trait ToCallbackReturn {
    /// The C return type.
    type Ret;
    /// The value for success.
    fn into_ret(self) -> Self::Ret;
    /// The value for `e`: a negative errno, or an ERR_PTR.
    fn from_error(e: Error) -> Self::Ret;
}

/// `int` callbacks: 0 or a negative errno.
impl ToCallbackReturn for () {
    type Ret = c_int;
    fn into_ret(self) -> c_int {
        0
    }
    fn from_error(e: Error) -> c_int {
        e.to_errno()
    }
}

/// `int` callbacks that return a count (xattr get): the count or a
/// negative errno.
impl ToCallbackReturn for c_int {
    type Ret = c_int;
    fn into_ret(self) -> c_int {
        self
    }
    fn from_error(e: Error) -> c_int {
        e.to_errno()
    }
}

/// `loff_t` callbacks (llseek): the position or a negative errno.
impl ToCallbackReturn for i64 {
    type Ret = i64;
    fn into_ret(self) -> i64 {
        self
    }
    fn from_error(e: Error) -> i64 {
        e.to_errno() as i64
    }
}

/// `long` callbacks (ioctl, fallocate): the value or a negative errno.
impl ToCallbackReturn for isize {
    type Ret = isize;
    fn into_ret(self) -> isize {
        self
    }
    fn from_error(e: Error) -> isize {
        e.to_errno() as isize
    }
}

/// Encodes `e` as an ERR_PTR.
fn err_ptr(e: Error) -> *mut kernel::ffi::c_void {
    // SAFETY: ferrofs_err_ptr only encodes the (negative, in-range) errno in
    // a pointer value.
    unsafe { b::ferrofs_err_ptr(e.to_errno() as _) }
}

/// Pointer callbacks (lookup's `struct dentry *`, get_inode_acl's
/// `struct posix_acl *`): the pointer (NULL allowed) or an ERR_PTR.
impl<T> ToCallbackReturn for *mut T {
    type Ret = *mut T;
    fn into_ret(self) -> *mut T {
        self
    }
    fn from_error(e: Error) -> *mut T {
        err_ptr(e).cast()
    }
}

/// `const char *` callbacks (get_link): the string or an ERR_PTR.
impl ToCallbackReturn for *const c_char {
    type Ret = *const c_char;
    fn into_ret(self) -> *const c_char {
        self
    }
    fn from_error(e: Error) -> *const c_char {
        err_ptr(e).cast_const().cast()
    }
}

/// Runs a callback's body and turns its result into what C expects.
pub(crate) fn from_result<T: ToCallbackReturn>(f: impl FnOnce() -> Result<T, Error>) -> T::Ret {
    match f() {
        Ok(v) => v.into_ret(),
        Err(e) => T::from_error(e),
    }
}

/// A scope in which this task's allocations do not enter filesystems
/// (memalloc_nofs_save), ended when dropped; bound to the task.
pub(crate) struct NoFsScope {
    flags: kernel::ffi::c_uint,
    _task: core::marker::PhantomData<*mut ()>,
}

impl NoFsScope {
    pub(crate) fn enter() -> Self {
        // SAFETY: plain task-flag save, restored by `drop` on this task
        // (the scope cannot move to another one).
        let flags = unsafe { b::ferrofs_nofs_save() };
        NoFsScope { flags, _task: core::marker::PhantomData }
    }
}

impl Drop for NoFsScope {
    fn drop(&mut self) {
        // SAFETY: restores what `enter` saved, on the same task.
        unsafe { b::ferrofs_nofs_restore(self.flags) };
    }
}

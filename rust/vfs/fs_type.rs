// SPDX-License-Identifier: GPL-2.0
//! Registration of the `ferrofs` filesystem type and the mount path:
//! fs_context → get_tree_bdev → fill_super, and kill_sb.

use super::bindings as b;
use super::cell::{zeroed, KernelStatic};
use super::device::KernelDevice;
use super::options::{self, MountParams, ParamError};
use super::types::{from_result, SuperBlock};
use super::{errno_of, fs_info, inode, super_ops};
use crate::error::Error as CoreError;
use crate::superblock;
use kernel::alloc::flags::GFP_KERNEL;
use kernel::error::to_result;
use kernel::prelude::*;
use kernel::str::CString;
use kernel::types::Opaque;
use kernel::{c_str, fmt};

/// Name the type registers under, and the prefix of the fs_context log.
const FS_NAME: &CStr = c_str!("ferrofs");

/// The file_system_type must be static: the kernel keeps pointers into it
/// and lockdep wants its lock_class_keys in static storage.
static FS_TYPE: KernelStatic<b::file_system_type> = KernelStatic::new(zeroed());

static CONTEXT_OPS: b::fs_context_operations = b::fs_context_operations {
    get_tree: Some(get_tree),
    parse_param: Some(parse_param),
    reconfigure: Some(reconfigure),
    free: Some(free_fs_context),
    ..zeroed()
};

/// Keeps `ferrofs` registered while alive.
pub(crate) struct Registration;

impl Registration {
    /// Registers the filesystem type; dropped at module exit to unregister.
    pub(crate) fn new(module: &'static ThisModule) -> Result<Self> {
        let t = FS_TYPE.get();
        // SAFETY: module init runs once, before the type is registered, so
        // nothing else reads FS_TYPE while we fill it in.
        unsafe {
            (*t).name = FS_NAME.as_char_ptr();
            (*t).owner = module.as_ptr();
            (*t).fs_flags = b::FS_REQUIRES_DEV as i32;
            (*t).init_fs_context = Some(init_fs_context);
            (*t).kill_sb = Some(kill_sb);
        }
        // SAFETY: FS_TYPE is fully initialised and static.
        to_result(unsafe { b::register_filesystem(t) })?;
        Ok(Registration)
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        // SAFETY: registered in `new`; all ferrofs super_blocks are gone by
        // module exit, since each mount holds a module reference.
        unsafe { b::unregister_filesystem(FS_TYPE.get()) };
    }
}

/// A mount or reconfigure context of ours.
///
/// # Invariants
/// A live fs_context of the ferrofs type, used by no other operation for
/// the borrow (the VFS serialises a context's operations: fsconfig holds
/// `fc->uapi_mutex`; mount(2) owns its context alone). Its `fs_private` is
/// NULL or a `MountParams` box made by `init`, which `take_params` frees.
#[repr(transparent)]
struct FsContext(Opaque<b::fs_context>);

impl FsContext {
    /// Borrows a context as an `FsContext`.
    ///
    /// # Safety
    /// `ptr` is a live fs_context of our type that no other operation uses
    /// for `'a`, whose `fs_private` is NULL or a box `init` made.
    unsafe fn from_raw<'a>(ptr: *mut b::fs_context) -> &'a mut Self {
        // SAFETY: `FsContext` is a transparent wrapper of `fs_context`.
        // INVARIANT: the caller guarantees a live context of ours for 'a.
        unsafe { &mut *ptr.cast::<Self>() }
    }

    /// Hangs our operations and a fresh `MountParams` box on the context.
    fn init(&mut self) -> Result {
        let params = KBox::new(MountParams::default(), GFP_KERNEL)?;
        // SAFETY: a live context that only we use (type invariant);
        // CONTEXT_OPS is static.
        // INVARIANT: `fs_private` becomes a box made here.
        unsafe {
            b::ferrofs_fc_set_ops(self.0.get(), &CONTEXT_OPS);
            b::ferrofs_fc_set_private(self.0.get(), KBox::into_raw(params).cast());
        }
        Ok(())
    }

    /// The options parsed so far; None if `init` has not run.
    fn params(&mut self) -> Option<&mut MountParams> {
        // SAFETY: `fs_private` is NULL or our box (type invariant); the
        // `&mut self` borrow keeps any other reference to it out.
        unsafe { b::ferrofs_fc_private(self.0.get()).cast::<MountParams>().as_mut() }
    }

    /// Takes the `MountParams` box off the context.
    fn take_params(&mut self) -> Option<KBox<MountParams>> {
        // SAFETY: a live context (type invariant).
        let p = unsafe { b::ferrofs_fc_private(self.0.get()) }.cast::<MountParams>();
        if p.is_null() {
            return None;
        }
        // SAFETY: `p` is the box `init` made (type invariant), given back
        // once: `fs_private` is cleared first.
        // INVARIANT: `fs_private` becomes NULL.
        unsafe {
            b::ferrofs_fc_set_private(self.0.get(), core::ptr::null_mut());
            Some(KBox::from_raw(p))
        }
    }

    /// Logs `msg` in the context (dmesg for mount(2), the fd log for fsopen).
    fn log_error(&self, msg: &str) {
        if let Ok(text) = CString::try_from_fmt(fmt!("{}", msg)) {
            // SAFETY: a live context that only we use (type invariant);
            // `text` is NUL-terminated and outlives the call.
            unsafe { b::ferrofs_fc_error(self.0.get(), text.as_char_ptr()) };
        }
    }

    /// get_tree_bdev with our fill_super: opens the device and mounts.
    fn get_tree_bdev(&self) -> Result {
        // SAFETY: a live mount context (type invariant), its parameters
        // parsed; fill_super has the signature get_tree_bdev expects.
        to_result(unsafe { b::ferrofs_get_tree_bdev(self.0.get(), Some(fill_super)) })
    }
}

/// `file_system_type::init_fs_context`: hangs our operations and a
/// `MountParams` box on a new context (mount, or remount).
///
/// # Safety
/// Called by alloc_fs_context, or by finish_clean_context to reuse a
/// reconfigure context, with `fc` a live fs_context of our type that no
/// other operation uses yet and whose `fs_private` is NULL (fresh, or
/// cleared by vfs_clean_context after `free_fs_context`). The VFS calls
/// `free_fs_context` once for each successful call, which frees the box.
unsafe extern "C" fn init_fs_context(fc: *mut b::fs_context) -> kernel::ffi::c_int {
    // SAFETY: the VFS passes a live context of our type, used by nothing
    // else yet, with `fs_private` NULL.
    let fc = unsafe { FsContext::from_raw(fc) };
    from_result(|| fc.init())
}

/// `fs_context_operations::free`: frees the `MountParams` box.
///
/// # Safety
/// Called by put_fs_context or vfs_clean_context, once per successful
/// `init_fs_context`, with `fc` live and used by no other operation; its
/// `fs_private` is the box `init_fs_context` made, or NULL.
unsafe extern "C" fn free_fs_context(fc: *mut b::fs_context) {
    // SAFETY: the VFS passes a live context of ours, used by nothing else,
    // whose `fs_private` is our box or NULL.
    let fc = unsafe { FsContext::from_raw(fc) };
    drop(fc.take_params());
}

/// The options parsed so far into a live fs_context of ours.
///
/// # Safety
/// `fc` is a live fs_context set up by init_fs_context, not yet freed.
unsafe fn params_of<'a>(fc: *mut b::fs_context) -> Option<&'a mut MountParams> {
    // SAFETY: per the contract, fs_private is our box or null; the VFS
    // serialises calls on one context.
    unsafe { b::ferrofs_fc_private(fc).cast::<MountParams>().as_mut() }
}

/// `fs_context_operations::parse_param`: one `key[=value]` of mount(2) or
/// fsconfig(2); `source` and the generic flags are left to the VFS.
///
/// # Safety
/// Called by vfs_parse_fs_param with `fc` a live context set up by
/// `init_fs_context`, its operations serialised by the VFS (fsconfig holds
/// `fc->uapi_mutex`; mount(2) owns its context alone), and `param` live for
/// the call, with a NUL-terminated `key` and, when its type is
/// `fs_value_is_string`, a NUL-terminated `string`.
unsafe extern "C" fn parse_param(fc: *mut b::fs_context, param: *mut b::fs_parameter) -> kernel::ffi::c_int {
    // SAFETY: the VFS passes a live context of ours, which it lets only this
    // operation use, and a parameter whose key (and string value, if any)
    // are NUL-terminated for the call.
    let (fc, key, value) = unsafe {
        let value = b::ferrofs_param_string(param);
        (
            FsContext::from_raw(fc),
            CStr::from_char_ptr(b::ferrofs_param_key(param)).as_bytes(),
            (!value.is_null()).then(|| CStr::from_char_ptr(value).as_bytes()),
        )
    };
    from_result(|| parse_one(fc, key, value))
}

/// ENOPARAM: "not one of ours", which the VFS turns into its own handling
/// (`source`) or an unknown-parameter error.
fn enoparam() -> Error {
    // SAFETY: reading an immutable constant exported by the shim.
    Error::from_errno(-unsafe { b::FERROFS_ENOPARAM })
}

/// parse_param's body.
fn parse_one(fc: &mut FsContext, key: &[u8], value: Option<&[u8]>) -> Result {
    let params = fc.params().ok_or(ENOMEM)?;
    match options::parse(params, key, value) {
        Ok(()) => Ok(()),
        // The VFS handles `source` and reports anything else as unknown.
        Err(ParamError::Unknown) => Err(enoparam()),
        Err(ParamError::Bad(why)) => {
            fc.log_error(why);
            Err(EINVAL)
        }
    }
}

/// `fs_context_operations::reconfigure`: remount, read-only or read-write,
/// and `commit=`.
///
/// # Safety
/// Called by reconfigure_super with `fc` a live reconfiguration context set
/// up by `init_fs_context` and `fc->root` the root of a mounted ferrofs
/// super_block (past fill_super, so its FsInfo is set), whose s_umount the
/// caller holds exclusively, as sync_filesystem requires. The super_block
/// is not frozen; unless the remount is forced, going read-only has been
/// refused while files are open for writing.
unsafe extern "C" fn reconfigure(fc: *mut b::fs_context) -> kernel::ffi::c_int {
    // SAFETY: reconfigure_super passes a live reconfiguration context of
    // ours, used by no other operation, whose root is a mounted ferrofs
    // super_block; it holds that super_block's s_umount exclusively.
    let r = unsafe { Reconfigure::from_raw(fc) };
    from_result(|| remount(r))
}

/// A remount in progress.
///
/// # Invariants
/// `fc` is a reconfiguration context whose `fc->root` is the root of `sb`,
/// a mounted ferrofs super_block whose s_umount this thread holds
/// exclusively for `'a` (reconfigure_super).
struct Reconfigure<'a> {
    fc: &'a mut FsContext,
    sb: &'a SuperBlock,
}

impl<'a> Reconfigure<'a> {
    /// Wraps a reconfiguration context.
    ///
    /// # Safety
    /// `fc` is a live reconfiguration context of ours, used by no other
    /// operation for `'a`, whose root is a mounted ferrofs super_block whose
    /// s_umount the caller holds exclusively for `'a`.
    unsafe fn from_raw(fc: *mut b::fs_context) -> Self {
        // SAFETY: per the contract; the root's super_block is mounted, so
        // its FsInfo is set.
        // INVARIANT: the caller guarantees the context, root and lock.
        unsafe { Reconfigure { sb: SuperBlock::from_raw(b::ferrofs_fc_root_sb(fc)), fc: FsContext::from_raw(fc) } }
    }

    /// Some(to_read_only) when the remount changes read-only.
    fn changes_rdonly(&self) -> Option<bool> {
        let mut to_rdonly = false;
        // SAFETY: a live reconfiguration context with its root set (type
        // invariant).
        unsafe { b::ferrofs_fc_changes_rdonly(self.fc.0.get(), &mut to_rdonly) }.then_some(to_rdonly)
    }

    /// Writes the page cache back and commits (sync_filesystem, whose
    /// s_umount we hold).
    fn sync(&self) {
        // SAFETY: a mounted super_block whose s_umount this thread holds
        // exclusively (type invariant), as sync_filesystem requires.
        unsafe { b::sync_filesystem(self.sb.as_ptr()) };
    }
}

/// reconfigure's body: read-only or read-write, and `commit=`.
fn remount(r: Reconfigure<'_>) -> Result {
    let params = r.fc.params().copied().unwrap_or_default();
    let info = r.sb.info();
    if let Some(to_rdonly) = r.changes_rdonly() {
        if to_rdonly {
            // The VFS has made sure no file is open for writing; write the
            // page cache back so the final commit holds everything.
            r.sync();
        }
        if let Err(e) = info.with_core(|fs| fs.set_read_only(to_rdonly)) {
            r.fc.log_error(if to_rdonly { "could not commit before going read-only" } else { "cannot go read-write after an error" });
            return Err(e.into());
        }
    }
    if let Some(secs) = params.commit_secs {
        info.set_commit_interval(secs);
    }
    Ok(())
}

/// `fs_context_operations::get_tree`: mounts through get_tree_bdev.
///
/// # Safety
/// Called by vfs_get_tree with `fc` a live mount context set up by
/// `init_fs_context`, its parameters parsed, used by no other operation.
unsafe extern "C" fn get_tree(fc: *mut b::fs_context) -> kernel::ffi::c_int {
    // SAFETY: the VFS passes a live mount context of ours, its parameters
    // parsed, used by no other operation.
    let fc = unsafe { FsContext::from_raw(fc) };
    from_result(|| fc.get_tree_bdev())
}

/// fill_super for get_tree_bdev: reads and checks the ferrofs superblock,
/// mounts the core, installs the FsInfo and the root dentry, and starts the
/// background commits.
///
/// # Safety
/// Called by get_tree_bdev with `sb` a new super_block of our type that no
/// other task can reach yet (not SB_BORN), whose s_umount the caller holds
/// exclusively, with its block device open (`s_bdev`, set by
/// setup_bdev_super) and `s_fs_info` NULL; `fc` is the live mount context
/// set up by `init_fs_context`. On an error the VFS tears the super_block
/// down through `kill_sb`, which frees the FsInfo if one was set here.
unsafe extern "C" fn fill_super(sb: *mut b::super_block, fc: *mut b::fs_context) -> kernel::ffi::c_int {
    // SAFETY: the VFS gives us a new, locked super_block with its block
    // device open, and the fs_context of this mount.
    match unsafe { try_fill_super(sb, fc) } {
        Ok(()) => 0,
        Err(e) => e.to_errno(),
    }
}

/// Reports a mount failure through the fs_context log (which reaches dmesg
/// as "ferrofs: <dev>: <reason>") and turns it into an errno.
///
/// # Safety
/// `sb` and `fc` are the live objects of the mount in progress.
unsafe fn mount_error(sb: *mut b::super_block, fc: *mut b::fs_context, e: CoreError) -> Error {
    // SAFETY: s_id is a NUL-terminated array in the live super_block.
    let dev = unsafe { CStr::from_char_ptr(b::ferrofs_sb_id(sb)) };
    if let Ok(msg) = CString::try_from_fmt(fmt!("{}: {}", dev, e)) {
        // SAFETY: `fc` is live; `msg` is NUL-terminated and outlives the call.
        unsafe { b::ferrofs_fc_error(fc, msg.as_char_ptr()) };
    }
    errno_of(e)
}

/// fill_super's body, with a kernel `Result`.
///
/// # Safety
/// As for `fill_super`: `sb` is the new, exclusively locked super_block
/// with its block device open and no FsInfo yet, and `fc` the live mount
/// context.
unsafe fn try_fill_super(sb: *mut b::super_block, fc: *mut b::fs_context) -> Result {
    let page = kernel::page::PAGE_SIZE as u32;
    // SAFETY: `sb` is live and ours until fill_super returns.
    if unsafe { b::sb_set_blocksize(sb, page as i32) } == 0 {
        // SAFETY: as above.
        return Err(unsafe { mount_error(sb, fc, CoreError::Unsupported("device sector size is larger than the page size")) });
    }
    // SAFETY: block size set just above; the device lives in FsInfo, which
    // the super_block owns until kill_sb.
    let mut dev = unsafe { KernelDevice::new(sb) };
    let core_sb = match superblock::read_superblock(&mut dev) {
        Ok(s) => s,
        // SAFETY: live mount objects.
        Err(e) => return Err(unsafe { mount_error(sb, fc, e) }),
    };
    if core_sb.block_size != page {
        // SAFETY: live mount objects.
        return Err(unsafe { mount_error(sb, fc, CoreError::Unsupported("block size differs from the page size")) });
    }
    if core_sb.needs_read_only() {
        // SAFETY: live mount objects.
        return Err(unsafe { mount_error(sb, fc, CoreError::Unsupported("read-only-compatible features need a read-only mount")) });
    }
    // SAFETY: `sb` is live.
    let read_only = unsafe { b::ferrofs_sb_rdonly(sb) };
    let info = match fs_info::FsInfo::new(dev, read_only) {
        Ok(i) => i,
        // SAFETY: live mount objects.
        Err(e) => return Err(unsafe { mount_error(sb, fc, e) }),
    };
    // SAFETY: `sb` is ours until fill_super returns; the FsInfo pointer is
    // released in kill_sb whether or not the rest of the mount succeeds.
    unsafe {
        (*sb).s_magic = superblock::STATFS_MAGIC as _;
        (*sb).s_maxbytes = i64::MAX;
        (*sb).s_time_gran = 1;
        (*sb).s_time_min = i64::MIN;
        (*sb).s_time_max = i64::MAX;
        (*sb).s_op = &super_ops::SUPER_OPS;
        super::xattr::init_sb(sb);
        b::ferrofs_sb_set_fs_info(sb, fs_info::FsInfo::into_foreign(info));
    }
    // SAFETY: `sb` is live and its FsInfo is set.
    let root_ino = unsafe { fs_info::FsInfo::from_sb_info(b::ferrofs_sb_fs_info(sb)) }.root_ino();
    // SAFETY: `sb` is live and its FsInfo is set.
    let root = unsafe { inode::iget(sb, root_ino, None) }.map_err(|e| {
        // SAFETY: live mount objects.
        unsafe { mount_error(sb, fc, e) }
    })?;
    // SAFETY: d_make_root consumes the inode reference, also on failure.
    let dentry = unsafe { b::d_make_root(kernel::types::ARef::into_raw(root).as_ptr().cast()) };
    if dentry.is_null() {
        return Err(ENOMEM);
    }
    // SAFETY: `sb` is ours; the root dentry is new and referenced.
    unsafe { (*sb).s_root = dentry };
    // SAFETY: `fc` is the live context of this mount.
    let secs = unsafe { params_of(fc) }.and_then(|p| p.commit_secs).unwrap_or(options::DEFAULT_COMMIT_SECS);
    // SAFETY: `sb` is live with its FsInfo set; put_super stops the ticker
    // before the core goes away.
    unsafe { fs_info::FsInfo::from_sb_info(b::ferrofs_sb_fs_info(sb)).start_commits(sb, secs) }
}

/// `file_system_type::kill_sb`: shuts the super_block down, then frees the
/// FsInfo.
///
/// # Safety
/// Called by deactivate_locked_super once per super_block of our type, when
/// its last active reference goes (also after setup_bdev_super or
/// fill_super failed), with s_umount held exclusively (locking.rst); its
/// `s_fs_info` is NULL or the FsInfo fill_super set. When
/// kill_block_super returns, every inode has been evicted and, if
/// fill_super got as far as `s_root`, `put_super` has run; only then is the
/// FsInfo dropped, and nothing reaches it afterwards.
unsafe extern "C" fn kill_sb(sb: *mut b::super_block) {
    // SAFETY: the VFS calls kill_sb once per super_block of our type.
    let info = unsafe { b::ferrofs_sb_fs_info(sb) };
    // SAFETY: as above; this evicts the inodes and releases the device.
    unsafe { b::kill_block_super(sb) };
    if !info.is_null() {
        // SAFETY: `info` came from `FsInfo::into_foreign` in fill_super and
        // nothing uses it after kill_block_super.
        drop(unsafe { fs_info::FsInfo::from_foreign(info) });
    }
}

// SPDX-License-Identifier: GPL-2.0
//! Registration of the `ferrofs` filesystem type and the mount path:
//! fs_context → get_tree_bdev → fill_super, and kill_sb.

use super::bindings as b;
use super::cell::{zeroed, KernelStatic};
use super::device::KernelDevice;
use super::inode::INode;
use super::options::{self, MountParams, ParamError};
use super::types::{from_result, SuperBlock};
use super::{errno_of, fs_info, super_ops};
use crate::error::Error as CoreError;
use crate::format::ROOT_DIR_INO;
use crate::subvol::SubvolId;
use crate::superblock;
use kernel::alloc::flags::GFP_KERNEL;
use kernel::error::to_result;
use kernel::prelude::*;
use kernel::str::CString;
use kernel::types::{ARef, Opaque};
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
/// `commit=` and `fast_commit=`.
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

/// reconfigure's body: read-only or read-write, `commit=` and
/// `fast_commit=`; `norecovery` stays as mounted.
fn remount(r: Reconfigure<'_>) -> Result {
    let (commit_secs, fast_commit, norecovery) =
        r.fc.params().map_or((None, None, false), |p| (p.commit_secs, p.fast_commit, p.norecovery));
    let info = r.sb.info();
    // norecovery is for the whole mount: it can be repeated, not added,
    // and a mount that left its records unreplayed never goes read-write
    // (a commit would make them stale).
    if norecovery && !info.norecovery() {
        r.fc.log_error("norecovery: only at mount; this mount has replayed its fast-commit records");
        return Err(EINVAL);
    }
    if info.norecovery() && r.changes_rdonly() == Some(false) {
        r.fc.log_error("norecovery: a mount without replay stays read-only; unmount and mount again to replay");
        return Err(EINVAL);
    }
    if let Some(to_rdonly) = r.changes_rdonly() {
        if to_rdonly {
            // The background drop stops after its step in progress; the
            // VFS has made sure no file is open for writing; write the page
            // cache back so the final commit holds everything.
            info.stop_drops(false);
            r.sync();
        }
        if let Err(e) = info.with_core(|fs| fs.set_read_only(to_rdonly)) {
            r.fc.log_error(if to_rdonly { "could not commit before going read-only" } else { "cannot go read-write after an error" });
            return Err(e.into());
        }
        if !to_rdonly {
            info.allow_drops();
        }
    }
    if let Some(secs) = commit_secs {
        info.set_commit_interval(secs);
    }
    if let Some(on) = fast_commit {
        info.set_fast_commit(on)?;
    }
    // subvol= and subvolid= choose a mount's root; a remount keeps it.
    Ok(())
}

/// `fs_context_operations::get_tree`: mounts through get_tree_bdev.
///
/// # Safety
/// Called by vfs_get_tree with `fc` a live mount context set up by
/// `init_fs_context`, its parameters parsed, used by no other operation.
unsafe extern "C" fn get_tree(fc: *mut b::fs_context) -> kernel::ffi::c_int {
    from_result(|| {
        // No `FsContext` is borrowed here: fill_super borrows the context.
        // SAFETY: a live mount context of ours with its parameters parsed;
        // fill_super has the signature get_tree_bdev expects.
        to_result(unsafe { b::ferrofs_get_tree_bdev(fc, Some(fill_super)) })?;
        // get_tree_bdev holds s_umount until vfs_get_tree's caller drops it.
        // SAFETY: get_tree_bdev is done with the context and set `fc->root`
        // to the root of a mounted ferrofs super_block (FsInfo set).
        let m = unsafe { MountedContext::from_raw(fc) };
        let r = choose_root(m);
        if r.is_err() {
            // SAFETY: get_tree_bdev succeeded, so `fc->root` is a referenced
            // root of a super_block this thread holds locked; `m` (which
            // borrowed both) is gone, and neither is used again.
            unsafe { b::ferrofs_fc_drop_root(fc) };
        }
        r
    })
}

/// A mount context whose get_tree_bdev succeeded.
///
/// # Invariants
/// `fc` is a mount context of ours used by no other operation, whose
/// `fc->root` is a referenced dentry of `sb`, a mounted ferrofs
/// super_block (FsInfo set).
struct MountedContext<'a> {
    fc: &'a mut FsContext,
    sb: &'a SuperBlock,
}

impl MountedContext<'_> {
    /// Wraps a context after get_tree_bdev.
    ///
    /// # Safety
    /// As the type invariant says, for `'a`.
    unsafe fn from_raw<'a>(fc: *mut b::fs_context) -> MountedContext<'a> {
        // SAFETY: per the contract; the root's super_block is mounted.
        // INVARIANT: the caller guarantees the context and its root.
        unsafe { MountedContext { sb: SuperBlock::from_raw(b::ferrofs_fc_root_sb(fc)), fc: FsContext::from_raw(fc) } }
    }

    /// Makes the mount's root the root directory of subvolume `sv`.
    fn set_root_subvol(&mut self, sv: SubvolId) -> Result {
        let inode = self.sb.iget(sv, ROOT_DIR_INO, None)?;
        // SAFETY: d_obtain_root takes over the inode reference, also on
        // failure; it returns the directory's one dentry (connected if a
        // lookup made it) or a new root-like one, or an ERR_PTR.
        let dentry = unsafe { b::d_obtain_root(ARef::into_raw(inode).as_ptr().cast()) };
        // SAFETY: reads the error out of a pointer that may be an ERR_PTR.
        let err = unsafe { b::ferrofs_ptr_err(dentry.cast()) };
        if err != 0 || dentry.is_null() {
            return Err(if err != 0 { Error::from_errno(err as i32) } else { ENOMEM });
        }
        // The new root's reference moves into the context; the old one's,
        // which the context held, is given back.
        // SAFETY: a context of ours with its root set (type invariant).
        unsafe {
            let old = b::ferrofs_fc_root(self.fc.0.get());
            b::ferrofs_fc_set_root(self.fc.0.get(), dentry);
            b::dput(old);
        }
        Ok(())
    }
}

/// get_tree's last part: `subvol=` and `subvolid=` make that subvolume's
/// root directory the mount's root (the super_block's root stays the
/// default subvolume's). A bad value fails the mount with a log line; the
/// caller then drops the root and the (still locked) super_block, which
/// the VFS does only for a get_tree that succeeded.
fn choose_root(mut m: MountedContext<'_>) -> Result {
    let Some(params) = m.fc.params() else { return Ok(()) };
    let (path, id) = (params.subvol_path.take(), params.subvol_id);
    if path.is_none() && id.is_none() {
        return Ok(());
    }
    let info = m.sb.info();
    let by_path = match path.as_deref().map(|p| subvol_at_path(info, p)).transpose() {
        Ok(v) => v,
        Err(why) => return Err(mount_option_error(m.fc, "subvol", path.as_deref().unwrap_or_default(), why)),
    };
    let by_id = match id.map(|id| subvol_by_id(info, id).map_err(|why| (id, why))).transpose() {
        Ok(v) => v,
        Err((id, why)) => {
            if let Ok(msg) = CString::try_from_fmt(fmt!("subvolid={}: {}", id, why)) {
                m.fc.log_error(msg.to_str().unwrap_or(why));
            }
            return Err(EINVAL);
        }
    };
    let target = match (by_path, by_id) {
        (Some(a), Some(b)) if a != b => {
            m.fc.log_error("subvol= and subvolid= name different subvolumes");
            return Err(EINVAL);
        }
        (Some(a), _) | (None, Some(a)) => a,
        (None, None) => return Ok(()),
    };
    if target == SubvolId::DEFAULT {
        return Ok(());
    }
    m.set_root_subvol(target)
}

/// Logs "OPTION=VALUE: WHY" and gives EINVAL.
fn mount_option_error(fc: &FsContext, option: &str, value: &[u8], why: &str) -> Error {
    let value = core::str::from_utf8(value).unwrap_or("(not UTF-8)");
    let text = CString::try_from_fmt(fmt!("{}={}: {}", option, value, why));
    if let Ok(msg) = text {
        // SAFETY: a live context only we use (FsContext's invariant); `msg`
        // is NUL-terminated and outlives the call.
        unsafe { b::ferrofs_fc_error(fc.0.get(), msg.as_char_ptr()) };
    }
    EINVAL
}

/// The subvolume whose root `path` names, walking from the default
/// subvolume's root through the core (a name that is a subvolume enters
/// it). Every component must be a directory, and the last one the root of
/// a subvolume ("/" alone is the default subvolume).
fn subvol_at_path(info: &fs_info::FsInfo, path: &[u8]) -> core::result::Result<SubvolId, &'static str> {
    let (mut sv, mut ino) = (SubvolId::DEFAULT, ROOT_DIR_INO);
    for name in options::path_components(path) {
        if name == b"." || name == b".." {
            return Err("'.' and '..' are not allowed");
        }
        (sv, ino) = info.with_core(|fs| fs.lookup_at(sv, ino, name)).map_err(|e| match e {
            CoreError::NotFound => "no such file or directory",
            CoreError::NotDir => "a component is not a directory",
            CoreError::NameTooLong => "a component's name is too long",
            _ => "cannot be looked up",
        })?;
    }
    let attr = info.with_core(|fs| fs.getattr(sv, ino)).map_err(|_| "cannot be looked up")?;
    if attr.file_type() != crate::format::FileType::Dir {
        return Err("not a directory");
    }
    if ino != ROOT_DIR_INO {
        return Err("not a subvolume");
    }
    Ok(sv)
}

/// The live subvolume `id` (0: the default one).
fn subvol_by_id(info: &fs_info::FsInfo, id: u64) -> core::result::Result<SubvolId, &'static str> {
    if id == 0 {
        return Ok(SubvolId::DEFAULT);
    }
    let sv = SubvolId(id);
    info.with_core(|fs| fs.subvolume_info(sv)).map(|i| i.id).map_err(|_| "no such subvolume")
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
    // SAFETY: get_tree_bdev passes a new super_block of ours that no other
    // task can reach, locked, with its device open and no FsInfo, and the
    // live mount context, which no other operation uses meanwhile.
    let (sb, fc) = unsafe { (NewSuperBlock::from_raw(sb), FsContext::from_raw(fc)) };
    from_result(|| fill(sb, fc))
}

/// A super_block fill_super is setting up.
///
/// # Invariants
/// A new super_block of our type that no other task can reach yet (not
/// SB_BORN), whose s_umount this thread holds exclusively, with its block
/// device open; `s_fs_info` is NULL until `install` sets it, and kill_sb
/// frees what was installed.
#[repr(transparent)]
struct NewSuperBlock(Opaque<b::super_block>);

impl NewSuperBlock {
    /// Borrows a super_block being filled as a `NewSuperBlock`.
    ///
    /// # Safety
    /// `ptr` is the super_block of a fill_super in progress, as the type
    /// invariant says, for `'a`.
    unsafe fn from_raw<'a>(ptr: *mut b::super_block) -> &'a Self {
        // SAFETY: `NewSuperBlock` is a transparent wrapper of `super_block`.
        // INVARIANT: the caller guarantees a new super_block of ours.
        unsafe { &*ptr.cast::<Self>() }
    }

    /// The C pointer, for calls not wrapped here.
    fn as_ptr(&self) -> *mut b::super_block {
        self.0.get()
    }

    /// The device name (s_id), for messages.
    fn id(&self) -> &CStr {
        // SAFETY: s_id is a NUL-terminated array in the live super_block
        // (type invariant), set before fill_super.
        unsafe { CStr::from_char_ptr(b::ferrofs_sb_id(self.as_ptr())) }
    }

    /// sb_set_blocksize; false if the device cannot do `size`.
    fn set_blocksize(&self, size: u32) -> bool {
        // SAFETY: a new super_block with its device open, only ours (type
        // invariant).
        unsafe { b::sb_set_blocksize(self.as_ptr(), size as i32) != 0 }
    }

    /// Whether the mount is read-only (SB_RDONLY).
    fn rdonly(&self) -> bool {
        // SAFETY: a live super_block (type invariant).
        unsafe { b::ferrofs_sb_rdonly(self.as_ptr()) }
    }

    /// Sets ferrofs's limits and operations, the xattr handlers and the
    /// FsInfo, which kill_sb frees; from here on the super_block is a
    /// `SuperBlock`.
    fn install(&self, info: Pin<KBox<fs_info::FsInfo>>) -> &SuperBlock {
        // SAFETY: the super_block is ours alone until fill_super returns,
        // before its first inode is read (type invariant); kill_sb releases
        // the FsInfo whether or not the rest of the mount succeeds.
        unsafe {
            let sb = self.as_ptr();
            (*sb).s_magic = superblock::STATFS_MAGIC as _;
            (*sb).s_maxbytes = i64::MAX;
            (*sb).s_time_gran = 1;
            (*sb).s_time_min = i64::MIN;
            (*sb).s_time_max = i64::MAX;
            (*sb).s_op = &super_ops::SUPER_OPS;
            super::xattr::init_sb(sb);
            b::ferrofs_sb_set_fs_info(sb, fs_info::FsInfo::into_foreign(info));
            SuperBlock::from_raw(sb)
        }
    }

    /// Makes `root` the root dentry (d_make_root, s_root).
    fn set_root(&self, root: ARef<INode>) -> Result {
        // SAFETY: d_make_root consumes the inode reference, also on failure.
        let dentry = unsafe { b::d_make_root(ARef::into_raw(root).as_ptr().cast()) };
        if dentry.is_null() {
            return Err(ENOMEM);
        }
        // SAFETY: the super_block is ours alone (type invariant); the root
        // dentry is new and referenced.
        unsafe { (*self.as_ptr()).s_root = dentry };
        Ok(())
    }
}

/// Reports a mount failure through the fs_context log (which reaches dmesg
/// as "ferrofs: <dev>: <reason>") and turns it into an errno.
fn mount_error(sb: &NewSuperBlock, fc: &FsContext, e: CoreError) -> Error {
    if let Ok(msg) = CString::try_from_fmt(fmt!("{}: {}", sb.id(), e)) {
        // SAFETY: a live context only we use (FsContext's invariant); `msg`
        // is NUL-terminated and outlives the call.
        unsafe { b::ferrofs_fc_error(fc.0.get(), msg.as_char_ptr()) };
    }
    errno_of(e)
}

/// fill_super's body.
fn fill(sb: &NewSuperBlock, fc: &mut FsContext) -> Result {
    let page = kernel::page::PAGE_SIZE as u32;
    if !sb.set_blocksize(page) {
        return Err(mount_error(sb, fc, CoreError::Unsupported("device sector size is larger than the page size")));
    }
    // SAFETY: the super_block's device is open (NewSuperBlock) and its
    // block size set just above; the device goes into the FsInfo, which the
    // super_block owns until kill_sb, or is dropped here on an error.
    let mut dev = unsafe { KernelDevice::new(sb.as_ptr()) }.ok_or(ENOMEM)?;
    let core_sb = superblock::read_superblock(&mut dev).map_err(|e| mount_error(sb, fc, e))?;
    if core_sb.block_size != page {
        return Err(mount_error(sb, fc, CoreError::Unsupported("block size differs from the page size")));
    }
    if core_sb.needs_read_only() {
        return Err(mount_error(sb, fc, CoreError::Unsupported("read-only-compatible features need a read-only mount")));
    }
    let (fast_commit, norecovery) = fc.params().map_or((true, false), |p| (p.fast_commit.unwrap_or(true), p.norecovery));
    if norecovery && !sb.rdonly() {
        // Going on would commit and make the unreplayed records stale.
        fc.log_error("norecovery: needs a read-only mount (add ro)");
        return Err(EINVAL);
    }
    let switches = fs_info::MountSwitches { read_only: sb.rdonly(), fast_commit, norecovery };
    let cache_blocks = super::reclaim::cache_blocks(page);
    let info = fs_info::FsInfo::new(dev, switches, cache_blocks).map_err(|e| mount_error(sb, fc, e))?;
    let mounted = sb.install(info);
    // The super_block's root is the default subvolume's root directory,
    // whatever subvolume this mount shows (see `get_tree`).
    let root = mounted.iget(SubvolId::DEFAULT, mounted.info().root_ino(), None).map_err(|e| mount_error(sb, fc, e))?;
    sb.set_root(root)?;
    let secs = fc.params().and_then(|p| p.commit_secs).unwrap_or(options::DEFAULT_COMMIT_SECS);
    // SAFETY: `mounted` is live with its FsInfo set; put_super stops the
    // ticker, the drop worker and the shrinker before the core is unmounted.
    unsafe {
        mounted.info().start_commits(mounted.as_ptr(), secs)?;
        mounted.info().start_drops(mounted.as_ptr())?;
        mounted.info().start_shrinker(mounted.as_ptr())?;
    }
    if !sb.rdonly() {
        // Deletions an unmount or a crash interrupted go on.
        mounted.info().allow_drops();
    }
    // SAFETY: put_super removes the directory before kill_sb frees the
    // FsInfo; it runs for this super_block, whose `s_root` is set.
    if let Err(e) = unsafe { mounted.info().add_sysfs(sb.id()) } {
        if let Ok(msg) = CString::try_from_fmt(fmt!("{}: cannot add /sys/fs/ferrofs/{}", sb.id(), sb.id())) {
            fc.log_error(msg.to_str().unwrap_or("cannot add the sysfs directory"));
        }
        return Err(e);
    }
    Ok(())
}

/// A super_block of ours whose `kill_sb` is in progress.
///
/// # Invariants
/// A live super_block of the ferrofs type whose last active reference is
/// gone, with s_umount held exclusively by the VFS, which calls kill_sb
/// once for it; this value is the only one made for that call, and `kill`
/// consumes it. Its `s_fs_info` is NULL or the FsInfo fill_super made with
/// `into_foreign`.
struct DyingSuperBlock(*mut b::super_block);

impl DyingSuperBlock {
    /// Takes the super_block of a kill_sb call.
    ///
    /// # Safety
    /// `ptr` is the super_block of a kill_sb call in progress, and no other
    /// `DyingSuperBlock` is made for it.
    unsafe fn from_raw(ptr: *mut b::super_block) -> Self {
        // INVARIANT: as the caller guarantees.
        DyingSuperBlock(ptr)
    }

    /// Shuts the super_block down (kill_block_super: evicts every inode,
    /// runs put_super if fill_super got as far as `s_root`, releases the
    /// device), then hands back the FsInfo fill_super set, if any.
    fn kill(self) -> Option<Pin<KBox<fs_info::FsInfo>>> {
        // SAFETY: a live super_block (type invariant).
        let info = unsafe { b::ferrofs_sb_fs_info(self.0) };
        // SAFETY: our kill_sb in progress, under s_umount (type invariant);
        // done once, as `self` is consumed.
        unsafe { b::kill_block_super(self.0) };
        if info.is_null() {
            return None;
        }
        // SAFETY: `info` came from `FsInfo::into_foreign` in fill_super (type
        // invariant); kill_block_super has evicted every inode and run
        // put_super, so nothing uses it afterwards.
        Some(unsafe { fs_info::FsInfo::from_foreign(info) })
    }
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
    // SAFETY: deactivate_locked_super calls kill_sb once per super_block of
    // our type, its last active reference gone, with s_umount held
    // exclusively; its s_fs_info is NULL or fill_super's FsInfo.
    let sb = unsafe { DyingSuperBlock::from_raw(sb) };
    shut_down(sb);
}

/// kill_sb's body: the super_block goes, then its FsInfo.
fn shut_down(sb: DyingSuperBlock) {
    drop(sb.kill());
}

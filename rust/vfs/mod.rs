// SPDX-License-Identifier: GPL-2.0
//! The kernel adapter: turns VFS calls into core calls and core errors into
//! errnos. All `unsafe` of the module lives under this directory; on-disk
//! logic lives in the core.

#[allow(
    dead_code,
    unreachable_pub,
    missing_docs,
    non_camel_case_types,
    non_upper_case_globals,
    non_snake_case,
    unsafe_op_in_unsafe_fn,
    improper_ctypes,
    clippy::all,
    clippy::undocumented_unsafe_blocks
)]
pub(crate) mod bindings {
    //! bindgen output for the module's own shim header.
    include!("bindings_generated.rs");
}

mod adapter_tests;
pub(crate) mod aops;
pub(crate) mod cell;
pub(crate) mod core_lock;
pub(crate) mod device;
pub(crate) mod dir;
pub(crate) mod direct_io;
pub(crate) mod extents;
pub(crate) mod file;
pub(crate) mod flush_group;
pub(crate) mod fs_info;
pub(crate) mod fs_type;
pub(crate) mod gate;
pub(crate) mod inode;
pub(crate) mod ioctl;
pub(crate) mod kiocb;
pub(crate) mod kunit;
pub(crate) mod namei;
pub(crate) mod options;
pub(crate) mod read_io;
pub(crate) mod reclaim;
pub(crate) mod send;
pub(crate) mod subvol;
pub(crate) mod super_ops;
pub(crate) mod sysfs;
mod tests;
pub(crate) mod types;
pub(crate) mod write_io;
pub(crate) mod xattr;

/// The kernel error for a core error: the same errno.
pub(crate) fn errno_of(e: crate::error::Error) -> kernel::error::Error {
    kernel::error::Error::from_errno(-e.errno())
}

impl From<crate::error::Error> for kernel::error::Error {
    fn from(e: crate::error::Error) -> Self {
        errno_of(e)
    }
}

/// The current time, for the core's timestamps.
pub(crate) fn now() -> crate::format::Timespec {
    let (mut sec, mut nsec) = (0i64, 0u32);
    // SAFETY: writes two integers through valid pointers.
    unsafe { bindings::ferrofs_now(&mut sec, &mut nsec) };
    crate::format::Timespec { sec, nsec }
}

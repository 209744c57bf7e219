// SPDX-License-Identifier: GPL-2.0
//! ferrofs kernel module: the crate root. Registers the `ferrofs` filesystem
//! type and mounts each shared core module at this crate's root, so core code
//! names its siblings `crate::x` here exactly as in the cargo library.

// `pin_init!` of the per-mount state (`vfs::fs_info::FsInfo`) expands one
// level per field and outgrows the default limit of 128.
#![recursion_limit = "256"]

// The core, compiled from the same files as the userspace library (the
// list must match rust/core/src/lib.rs but for the tools-only modules
// check, dump, walk and edit, which nothing in the kernel calls; `make
// check` compares them). Its
// `pub` items are not exported from a module, hence the allows; the core
// holds no unsafe code, and the compiler keeps it so here too.
#[allow(unreachable_pub, dead_code, missing_docs)]
#[forbid(unsafe_code)]
#[path = "core/src/alloc_tree.rs"]
mod alloc_tree;
#[allow(unreachable_pub, dead_code, missing_docs)]
#[forbid(unsafe_code)]
#[path = "core/src/btree.rs"]
mod btree;
/// The portable CRC-32C, kept for the KUnit suite that checks the
/// kernel's against it; the core's `crate::crc32c` is the kernel's.
#[allow(unreachable_pub, dead_code, missing_docs)]
#[forbid(unsafe_code)]
#[path = "core/src/crc32c.rs"]
mod crc32c_soft;
#[allow(unreachable_pub, dead_code, missing_docs)]
#[forbid(unsafe_code)]
#[path = "core/src/data_write.rs"]
mod data_write;
#[allow(unreachable_pub, dead_code, missing_docs)]
#[forbid(unsafe_code)]
#[path = "core/src/deferred_frees.rs"]
mod deferred_frees;
#[allow(unreachable_pub, dead_code, missing_docs)]
#[forbid(unsafe_code)]
#[path = "core/src/device.rs"]
mod device;
#[allow(unreachable_pub, dead_code, missing_docs)]
#[forbid(unsafe_code)]
#[path = "core/src/dir.rs"]
mod dir;
#[allow(unreachable_pub, dead_code, missing_docs)]
#[forbid(unsafe_code)]
#[path = "core/src/error.rs"]
mod error;
#[allow(unreachable_pub, dead_code, missing_docs)]
#[forbid(unsafe_code)]
#[path = "core/src/fast_commit.rs"]
mod fast_commit;
#[allow(unreachable_pub, dead_code, missing_docs)]
#[forbid(unsafe_code)]
#[path = "core/src/file.rs"]
mod file;
#[allow(unreachable_pub, dead_code, missing_docs)]
#[forbid(unsafe_code)]
#[path = "core/src/file_read.rs"]
mod file_read;
#[allow(unreachable_pub, dead_code, missing_docs)]
#[forbid(unsafe_code)]
#[path = "core/src/format.rs"]
mod format;
#[allow(unreachable_pub, dead_code, missing_docs)]
#[forbid(unsafe_code)]
#[path = "core/src/fs.rs"]
mod fs;
#[allow(unreachable_pub, dead_code, missing_docs)]
#[forbid(unsafe_code)]
#[path = "core/src/fsync_stats.rs"]
mod fsync_stats;
#[allow(unreachable_pub, dead_code, missing_docs)]
#[forbid(unsafe_code)]
#[path = "core/src/group_commit.rs"]
mod group_commit;
#[allow(unreachable_pub, dead_code, missing_docs)]
#[forbid(unsafe_code)]
#[path = "core/src/le.rs"]
mod le;
#[allow(unreachable_pub, dead_code, missing_docs)]
#[forbid(unsafe_code)]
#[path = "core/src/mkfs.rs"]
mod mkfs;
#[allow(unreachable_pub, dead_code, missing_docs)]
#[forbid(unsafe_code)]
#[path = "core/src/new_data.rs"]
mod new_data;
#[allow(unreachable_pub, dead_code, missing_docs)]
#[forbid(unsafe_code)]
#[path = "core/src/node.rs"]
mod node;
#[allow(unreachable_pub, dead_code, missing_docs)]
#[forbid(unsafe_code)]
#[path = "core/src/node_cache.rs"]
mod node_cache;
#[allow(unreachable_pub, dead_code, missing_docs)]
#[forbid(unsafe_code)]
#[path = "core/src/node_io.rs"]
mod node_io;
#[allow(unreachable_pub, dead_code, missing_docs)]
#[forbid(unsafe_code)]
#[path = "core/src/pending_orphans.rs"]
mod pending_orphans;
#[allow(unreachable_pub, dead_code, missing_docs)]
#[forbid(unsafe_code)]
#[path = "core/src/record_batch.rs"]
mod record_batch;
#[allow(unreachable_pub, dead_code, missing_docs)]
#[forbid(unsafe_code)]
#[path = "core/src/related_changes.rs"]
mod related_changes;
#[allow(unreachable_pub, dead_code, missing_docs)]
#[forbid(unsafe_code)]
#[path = "core/src/replay_read.rs"]
mod replay_read;
#[allow(unreachable_pub, dead_code, missing_docs)]
#[forbid(unsafe_code)]
#[path = "core/src/send.rs"]
mod send;
#[allow(unreachable_pub, dead_code, missing_docs)]
#[forbid(unsafe_code)]
#[path = "core/src/send_plan.rs"]
mod send_plan;
#[allow(unreachable_pub, dead_code, missing_docs)]
#[forbid(unsafe_code)]
#[path = "core/src/send_prefetch.rs"]
mod send_prefetch;
#[allow(unreachable_pub, dead_code, missing_docs)]
#[forbid(unsafe_code)]
#[path = "core/src/send_stream.rs"]
mod send_stream;
#[allow(unreachable_pub, dead_code, missing_docs)]
#[forbid(unsafe_code)]
#[path = "core/src/shared_fingers.rs"]
mod shared_fingers;
#[allow(unreachable_pub, dead_code, missing_docs)]
#[forbid(unsafe_code)]
#[path = "core/src/space.rs"]
mod space;
#[allow(unreachable_pub, dead_code, missing_docs)]
#[forbid(unsafe_code)]
#[path = "core/src/store.rs"]
mod store;
#[allow(unreachable_pub, dead_code, missing_docs)]
#[forbid(unsafe_code)]
#[path = "core/src/subvol.rs"]
mod subvol;
#[allow(unreachable_pub, dead_code, missing_docs)]
#[forbid(unsafe_code)]
#[path = "core/src/superblock.rs"]
mod superblock;
#[allow(unreachable_pub, dead_code, missing_docs)]
#[forbid(unsafe_code)]
#[path = "core/src/tree_diff.rs"]
mod tree_diff;
#[allow(unreachable_pub, dead_code, missing_docs)]
#[forbid(unsafe_code)]
#[path = "core/src/tree_log.rs"]
mod tree_log;
#[allow(unreachable_pub, dead_code, missing_docs)]
#[forbid(unsafe_code)]
#[path = "core/src/tree_log_dir.rs"]
mod tree_log_dir;
#[allow(unreachable_pub, dead_code, missing_docs)]
#[forbid(unsafe_code)]
#[path = "core/src/tree_log_replay.rs"]
mod tree_log_replay;
#[allow(unreachable_pub, dead_code, missing_docs)]
#[forbid(unsafe_code)]
#[path = "core/src/tree_read.rs"]
mod tree_read;
#[allow(unreachable_pub, dead_code, missing_docs)]
#[forbid(unsafe_code)]
#[path = "core/src/uapi.rs"]
mod uapi;
#[allow(unreachable_pub, dead_code, missing_docs)]
#[forbid(unsafe_code)]
#[path = "core/src/write_streams.rs"]
mod write_streams;
#[allow(unreachable_pub, dead_code, missing_docs)]
#[forbid(unsafe_code)]
#[path = "core/src/written_crc.rs"]
mod written_crc;
#[allow(unreachable_pub, dead_code, missing_docs)]
#[forbid(unsafe_code)]
#[path = "core/src/xattr.rs"]
mod xattr;

/// The kernel host's fallible vector, seen by the core as `crate::mem`.
#[allow(dead_code)]
#[path = "vfs/mem.rs"]
mod mem;

/// The kernel's CRC-32C, seen by the core as `crate::crc32c`.
#[path = "vfs/crc32c.rs"]
mod crc32c;

mod vfs;

use kernel::prelude::*;

module! {
    type: Ferrofs,
    name: "ferrofs",
    author: "ferrofs developers",
    description: "ferrofs: a copy-on-write B-tree filesystem",
    license: "GPL",
    alias: ["fs-ferrofs"],
}

struct Ferrofs {
    // Dropped in declaration order: the type is unregistered (no mount is
    // left) before /sys/fs/ferrofs and the folio-read bio pool go.
    _registration: vfs::fs_type::Registration,
    _sysfs: vfs::sysfs::SysfsRoot,
    _read_bios: vfs::device::FolioReadPool,
}

impl kernel::Module for Ferrofs {
    fn init(module: &'static ThisModule) -> Result<Self> {
        let read_bios = vfs::device::FolioReadPool::new()?;
        let sysfs = vfs::sysfs::SysfsRoot::new()?;
        Ok(Ferrofs { _registration: vfs::fs_type::Registration::new(module)?, _sysfs: sysfs, _read_bios: read_bios })
    }
}

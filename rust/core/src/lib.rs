// SPDX-License-Identifier: GPL-2.0
//! ferrofs core: the on-disk format and the engine, shared by the kernel
//! module and the userspace tools.
//!
//! This file is the crate root for cargo only. The kernel module mounts each
//! core module at its own crate root with `#[path]`, so every core file names
//! its siblings as `crate::<module>` and works unchanged in both crates. The one
//! module that differs is `mem`: each host supplies its own fallible vector
//! (here over `alloc`, in the kernel over `KVec`) with the same API.
//!
//! Layers inside the core, bottom up: `format` (keys, item codecs) and
//! `node` (block layout) -> `space` (in-memory free space, refcount queue)
//! -> `store` (cache, CoW, commit) and `alloc` (allocation tree) -> `btree`
//! -> `fs` (API, inodes) with `dir`, `file`, `xattr` -> `check`, `dump`.
//! Beside them, `uapi`: the ioctl interface of `include/uapi/linux/ferrofs.h`,
//! defined once for the kernel adapter and the tools; `send_stream`: the
//! btrfs send stream codec, for the kernel's send and `ferrofs receive`;
//! `send` (full sends, the session) with `send_plan` (incremental sends)
//! over `tree_diff` (what two snapshots do not share).

#![no_std]
#![forbid(unsafe_code)]
// The kernel builds this code with its Clippy MSRV of 1.78, before
// `Option::is_none_or` (1.82): `map_or(true, ..)` is the spelling both accept.
#![allow(clippy::unnecessary_map_or)]

extern crate alloc;
#[cfg(test)]
extern crate std;

pub mod alloc_tree;
pub mod btree;
pub mod check;
pub mod crc32c;
pub mod data_write;
pub mod deferred_frees;
pub mod device;
pub mod dir;
pub mod dump;
pub mod edit;
pub mod error;
pub mod fast_commit;
pub mod file;
pub mod file_read;
pub mod format;
pub mod fs;
pub mod fsync_stats;
pub mod group_commit;
pub mod le;
#[path = "mem_alloc.rs"]
pub mod mem;
pub mod mkfs;
pub mod new_data;
pub mod node;
pub mod node_cache;
pub mod node_io;
pub mod pending_orphans;
pub mod record_batch;
pub mod related_changes;
pub mod replay_read;
pub mod send;
pub mod send_plan;
pub mod send_prefetch;
pub mod send_stream;
pub mod shared_fingers;
pub mod space;
pub mod store;
pub mod subvol;
pub mod superblock;
pub mod tree_diff;
pub mod tree_log;
pub mod tree_log_dir;
pub mod tree_log_replay;
pub mod tree_read;
pub mod uapi;
pub mod walk;
pub mod write_streams;
pub mod written_crc;
pub mod xattr;

// SPDX-License-Identifier: GPL-2.0
//! The metadata node cache and memory: its size at mount, taken from the
//! machine's RAM, and the shrinker through which memory reclaim (and
//! `drop_caches`) takes clean nodes back.
//!
//! C headers: [`include/linux/shrinker.h`](srctree/include/linux/shrinker.h).

use super::bindings as b;
use super::types::SuperBlock;
use crate::fs::MountOptions;
use kernel::ffi::{c_long, c_ulong};

/// Share of RAM the node cache may fill with clean nodes before it drops
/// the least recently used: 1/32, as a directory tree of a few hundred
/// thousand entries then stays in memory on a machine of a few GiB.
const RAM_SHARE: u64 = 32;

/// Clean nodes a mount may cache (`MountOptions::cache_blocks`): 1/32 of
/// RAM in `block_size` blocks, never fewer than the core's default.
pub(crate) fn cache_blocks(block_size: u32) -> usize {
    // SAFETY: reads a counter; no precondition.
    let pages = unsafe { b::ferrofs_totalram_pages() } as u64;
    let bytes = pages.saturating_mul(kernel::page::PAGE_SIZE as u64) / RAM_SHARE;
    // A NonZero divisor: no division-by-zero panic path (see store::divisor).
    let blocks = bytes / crate::store::divisor(u64::from(block_size));
    let floor = MountOptions::default().cache_blocks;
    usize::try_from(blocks).unwrap_or(usize::MAX).max(floor)
}

/// `count_objects`: the clean nodes the mount caches, read without a lock.
///
/// # Safety
/// Called only by the FsInfo's shrinker (see `FsInfo::start_shrinker`)
/// with `sb` the ferrofs super_block it was made for. The shrinker is
/// registered from the end of fill_super until `put_super` frees it
/// (`shrinker_free` waits for callbacks in progress), so `sb` is live and
/// its FsInfo set for the whole call.
pub(crate) unsafe extern "C" fn count_nodes(sb: *mut b::super_block) -> c_ulong {
    // SAFETY: per the contract, a live super_block with its FsInfo set.
    let sb = unsafe { SuperBlock::from_raw(sb) };
    sb.info().cached_clean_nodes()
}

/// `scan_objects`: drops up to `nr` clean nodes, least recently used
/// first; how many went, or -1 (the shim's SHRINK_STOP) when the core is
/// busy. Busy includes this very task allocating under the core lock.
///
/// # Safety
/// As for `count_nodes`.
pub(crate) unsafe extern "C" fn scan_nodes(sb: *mut b::super_block, nr: c_ulong) -> c_long {
    // SAFETY: per the contract, a live super_block with its FsInfo set.
    let sb = unsafe { SuperBlock::from_raw(sb) };
    match sb.info().shrink_cache(nr) {
        Some(freed) => c_long::try_from(freed).unwrap_or(c_long::MAX),
        None => -1,
    }
}

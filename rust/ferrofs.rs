// SPDX-License-Identifier: GPL-2.0
//! ferrofs kernel module: the crate root. Registers the `ferrofs` filesystem
//! type and mounts each shared core module at this crate's root, so core code
//! names its siblings `crate::x` here exactly as in the cargo library.

// The core, compiled from the same files as the userspace library. Its
// `pub` items are not exported from a module, hence the allows.
#[allow(unreachable_pub, dead_code, missing_docs)]
#[path = "core/src/crc32c.rs"]
mod crc32c;
#[allow(unreachable_pub, dead_code, missing_docs)]
#[path = "core/src/device.rs"]
mod device;
#[allow(unreachable_pub, dead_code, missing_docs)]
#[path = "core/src/error.rs"]
mod error;
#[allow(unreachable_pub, dead_code, missing_docs)]
#[path = "core/src/superblock.rs"]
mod superblock;

/// The kernel host's fallible vector, seen by the core as `crate::mem`.
#[allow(dead_code)]
#[path = "vfs/mem.rs"]
mod mem;

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
    _registration: vfs::fs_type::Registration,
}

impl kernel::Module for Ferrofs {
    fn init(module: &'static ThisModule) -> Result<Self> {
        Ok(Ferrofs { _registration: vfs::fs_type::Registration::new(module)? })
    }
}

// SPDX-License-Identifier: GPL-2.0
//! The page cache of regular files: address_space_operations over the core.

use super::bindings as b;
use super::cell::{zeroed, Vtable};

pub(crate) static FILE_AOPS: Vtable<b::address_space_operations> = Vtable(b::address_space_operations { ..zeroed() });

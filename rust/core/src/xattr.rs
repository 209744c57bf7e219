// SPDX-License-Identifier: GPL-2.0
//! Extended attributes: any number per inode, values up to
//! `XATTR_VALUE_MAX` (64 KiB), each split across items.
//!
//! An attribute lives at `(ino, XATTR, hash32 << 32 | idx << 16 | part)`.
//! Part 0 holds `name_len u8, value_len u32, name, first value bytes`; parts
//! 1.. hold the rest of the value, each as large as a leaf item may be.
//! `idx` separates names whose hashes collide.

use crate::btree;
use crate::device::BlockDevice;
use crate::error::{Error, Result};
use crate::format::*;
use crate::fs::{Filesystem, XATTR_CREATE, XATTR_REPLACE};
use crate::mem::TryVec;
use crate::subvol::SubvolId;

fn xkey(ino: u64, base: u64, part: u64) -> Key {
    Key::new(ino, XATTR_KEY, base | part)
}

pub(crate) fn check_xattr_name(name: &[u8]) -> Result<()> {
    if name.len() > XATTR_NAME_MAX {
        return Err(Error::NameTooLong);
    }
    if name.is_empty() || name.contains(&0) {
        return Err(Error::Invalid("invalid xattr name"));
    }
    Ok(())
}

impl<D: BlockDevice> Filesystem<D> {
    /// Finds an attribute: `Ok(Ok(base))` if present, `Ok(Err(free_base))`
    /// with a free slot for it otherwise.
    fn find_xattr(&mut self, ino: u64, name: &[u8]) -> Result<core::result::Result<u64, u64>> {
        self.sv_read().find_xattr(ino, name)
    }

    fn xattr_parts(&self, name_len: usize, value_len: usize) -> (usize, usize, u64) {
        let max = crate::node::max_item_data(self.s.bs);
        let first = (max - XATTR_HEAD_SIZE - name_len).min(value_len);
        let rest = crate::store::div_ceil((value_len - first) as u64, max as u64) as usize;
        (first, max, 1 + rest as u64)
    }

    /// Reads an attribute into `buf`; with an empty `buf` only returns the
    /// size. `Err(NoData)` if absent, `Err(Range)` if `buf` is too small.
    pub fn get_xattr(&mut self, sv: SubvolId, ino: u64, name: &[u8], buf: &mut [u8]) -> Result<usize> {
        self.enter(sv)?;
        self.s.stats.inode_reads += 1;
        self.sv_read().get_xattr(ino, name, buf)
    }

    fn delete_xattr_parts(&mut self, ino: u64, base: u64) -> Result<()> {
        loop {
            let mut buf = TryVec::new();
            let root = self.sv.root;
            let Some(k) = btree::last_in(&mut self.s, &root, xkey(ino, base, 0xffff), &mut buf)? else { return Ok(()) };
            if k.offset & !0xffff != base {
                return Ok(());
            }
            btree::delete(&mut self.s, &mut self.sv.root, &k)?;
        }
    }

    /// Sets an attribute; `flags` may be `XATTR_CREATE` or `XATTR_REPLACE`.
    pub fn set_xattr(&mut self, sv: SubvolId, ino: u64, name: &[u8], value: &[u8], flags: u32, now: Timespec) -> Result<()> {
        self.enter(sv)?;
        check_xattr_name(name)?;
        if value.len() > XATTR_VALUE_MAX {
            return Err(Error::ArgTooBig);
        }
        self.change(|fs| {
            let mut it = fs.read_inode(ino)?;
            let found = fs.find_xattr(ino, name)?;
            match found {
                Ok(_) if flags & XATTR_CREATE != 0 => return Err(Error::Exists),
                Err(_) if flags & XATTR_REPLACE != 0 => return Err(Error::NoData),
                _ => {}
            }
            let (first, max, parts) = fs.xattr_parts(name.len(), value.len());
            fs.reserve(2 * parts + 2, 0)?;
            let base = match found {
                Ok(b) => {
                    fs.delete_xattr_parts(ino, b)?;
                    b
                }
                Err(b) => b,
            };
            let mut head = TryVec::new();
            XattrHead { name, value_len: value.len(), first: &value[..first] }.encode(&mut head)?;
            btree::insert(&mut fs.s, &mut fs.sv.root, &xkey(ino, base, 0), &head)?;
            for (i, chunk) in value[first..].chunks(max).enumerate() {
                btree::insert(&mut fs.s, &mut fs.sv.root, &xkey(ino, base, i as u64 + 1), chunk)?;
            }
            it.ctime = now;
            fs.write_inode(ino, &mut it)
        })
    }

    /// Removes an attribute; `Err(NoData)` if absent.
    pub fn remove_xattr(&mut self, sv: SubvolId, ino: u64, name: &[u8], now: Timespec) -> Result<()> {
        self.enter(sv)?;
        check_xattr_name(name)?;
        self.change(|fs| {
            let mut it = fs.read_inode(ino)?;
            let Ok(base) = fs.find_xattr(ino, name)? else { return Err(Error::NoData) };
            let (_, _, parts) = {
                let mut b = [0u8; 0];
                let vl = fs.get_xattr(sv, ino, name, &mut b)?;
                fs.xattr_parts(name.len(), vl)
            };
            fs.reserve_delete(parts + 1)?;
            fs.delete_xattr_parts(ino, base)?;
            it.ctime = now;
            fs.write_inode(ino, &mut it)
        })
    }

    /// Lists attribute names, each followed by a NUL, into `buf`; with an
    /// empty `buf` only returns the size needed. Order: by name hash.
    pub fn list_xattr(&mut self, sv: SubvolId, ino: u64, buf: &mut [u8]) -> Result<usize> {
        self.enter(sv)?;
        self.s.stats.inode_reads += 1;
        self.sv_read().list_xattr(ino, buf)
    }
}

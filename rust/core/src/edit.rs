// SPDX-License-Identifier: GPL-2.0
//! Field-level editing of an image, for `ferrofs debug` and the
//! hostile-image tests: every editable field of the superblock and of each
//! metadata block (node header, interior pointers, item headers, item
//! values), named by a spec string, set to any value, and the checksum
//! re-sealed, so the edit gets past the checksums to the decoders.
//!
//! Specs:
//!
//! | spec | field |
//! |---|---|
//! | `super.F` | superblock field `F`, in both copies |
//! | `node.B.header.F` | node header field of block `B` |
//! | `node.B.ptr.I.F` | interior pointer `I` of block `B` |
//! | `node.B.item.I.header.F` | leaf item header `I` of block `B` |
//! | `node.B.item.I.F` | field `F` of leaf item `I`'s value |
//! | `item.T.O.Y.X.F` | field `F` of the item keyed `(O, Y, X)` in tree `T` (`Y` a number or a type name) |
//!
//! The field names are those of `superblock::FIELDS`, `node::HEADER_FIELDS`,
//! `node::PTR_FIELDS`, `node::ITEM_HEADER_FIELDS` and
//! `format::item_fields`. Used by the tools only: the kernel module does not
//! include this file.

use crate::device::BlockDevice;
use crate::error::{Error, Result};
use crate::format::{item_fields, item_type_by_name, item_type_name, Key};
use crate::fs::{Filesystem, MountOptions};
use crate::le::{find, Field, Limit};
use crate::mem::TryVec;
use crate::node;
use crate::superblock::{self, SUPERBLOCK_OFFSETS, SUPERBLOCK_SIZE};
use crate::walk::Visit;
use core::fmt;

/// Where an edited structure lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// Both superblock copies.
    Superblock,
    /// The structure at byte `base` of metadata block `block`.
    Node {
        /// Block number.
        block: u64,
        /// Byte offset of the structure in the block.
        base: usize,
    },
}

/// Which structure of a block a target names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// The superblock.
    Superblock,
    /// A node header.
    Header,
    /// Interior pointer `i`.
    Ptr(usize),
    /// Leaf item header `i`, of the item keyed `key`.
    ItemHeader(usize, Key),
    /// Leaf item `i`'s value, keyed `key`.
    Item(usize, Key),
}

/// One editable field of an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target {
    /// The tree the block belongs to (0 for the superblock).
    pub tree: u64,
    /// The block (0 for the superblock).
    pub block: u64,
    /// Which structure.
    pub part: Part,
    /// Where the structure's bytes are.
    pub place: Place,
    /// The field.
    pub field: Field,
    /// Its value in the image.
    pub value: u64,
}

impl fmt::Display for Target {
    /// The spec `set` takes for this field.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = self.field.name;
        match self.part {
            Part::Superblock => write!(f, "super.{name}"),
            Part::Header => write!(f, "node.{}.header.{name}", self.block),
            Part::Ptr(i) => write!(f, "node.{}.ptr.{i}.{name}", self.block),
            Part::ItemHeader(i, _) => write!(f, "node.{}.item.{i}.header.{name}", self.block),
            Part::Item(i, _) => write!(f, "node.{}.item.{i}.{name}", self.block),
        }
    }
}

impl Target {
    /// The values a hostile-image test writes: 0, 1, max, max-1, the
    /// current value +-1, and both sides of the field's limit; the current
    /// value left out. `total_blocks` and `block_size` give the limits.
    pub fn boundary_values(&self, total_blocks: u64, block_size: u32) -> TryVec<u64> {
        let f = &self.field;
        let max = f.max();
        let orig = self.value;
        let mut v: TryVec<u64> = TryVec::new();
        let limit = match f.limit {
            Limit::None => None,
            Limit::Value(l) => Some(l),
            Limit::TotalBlocks => Some(total_blocks),
            Limit::BlockSize => Some(block_size as u64),
        };
        let mut cand = [0, 1, max, max - 1, orig.wrapping_add(1) & max, orig.wrapping_sub(1) & max, max, max, max];
        if let Some(l) = limit {
            cand[6] = l.saturating_sub(1).min(max);
            cand[7] = l.min(max);
            cand[8] = l.saturating_add(1).min(max);
        }
        for x in cand {
            if x != orig && !v.contains(&x) && v.try_push(x).is_err() {
                break;
            }
        }
        v.sort_unstable();
        v
    }
}

fn read_block<D: BlockDevice>(dev: &mut D, offset: u64, len: usize) -> Result<TryVec<u8>> {
    let mut b = TryVec::try_from_elem(0u8, len)?;
    dev.read(offset, &mut b)?;
    Ok(b)
}

/// Every editable field of the image: the superblock's, then each node's of
/// every tree (the image is opened read-only and left as it is).
pub fn targets<D: BlockDevice>(dev: &mut D) -> Result<TryVec<Target>> {
    let sb = read_block(dev, SUPERBLOCK_OFFSETS[0], SUPERBLOCK_SIZE)?;
    let mut out: TryVec<Target> = TryVec::new();
    for f in superblock::FIELDS {
        let value = f.get(&sb)?;
        out.try_push(Target { tree: 0, block: 0, part: Part::Superblock, place: Place::Superblock, field: *f, value })?;
    }
    let mut fs = Filesystem::mount_with(&mut *dev, MountOptions { read_only: true, ..MountOptions::default() })?;
    let trees = fs.trees()?;
    for t in trees.iter() {
        let tree = t.root.id;
        let mut err = Ok(());
        fs.store().walk_from(&t.root, t.from, &mut |_, v| {
            if let Visit::Node { block, buf, .. } = v {
                if let Err(e) = node_targets(tree, block, buf, &mut out) {
                    err = Err(e);
                }
            }
            Ok(())
        })?;
        err?;
    }
    Ok(out)
}

fn node_targets(tree: u64, block: u64, buf: &[u8], out: &mut TryVec<Target>) -> Result<()> {
    let mut add = |part: Part, base: usize, table: &[Field], data: &[u8]| -> Result<()> {
        for f in table {
            if let Ok(value) = f.get(data.get(base..).unwrap_or(&[])) {
                out.try_push(Target { tree, block, part, place: Place::Node { block, base }, field: *f, value })?;
            }
        }
        Ok(())
    };
    add(Part::Header, 0, node::HEADER_FIELDS, buf)?;
    let n = node::nritems(buf);
    for i in 0..n {
        if node::level(buf) > 0 {
            add(Part::Ptr(i), node::ptr_offset(i), node::PTR_FIELDS, buf)?;
            continue;
        }
        let key = node::item_key(buf, i);
        add(Part::ItemHeader(i, key), node::item_header_offset(i), node::ITEM_HEADER_FIELDS, buf)?;
        let r = node::item_data_range(buf, i);
        // A field is editable only where the item's data holds it.
        let data = buf.get(..r.end.min(buf.len())).unwrap_or(&[]);
        add(Part::Item(i, key), r.start, item_fields(key.ty), data)?;
    }
    Ok(())
}

/// Finds where the item keyed `key` of tree `tree` is: its block and the
/// byte offset of its value there.
pub fn locate_item<D: BlockDevice>(dev: &mut D, tree: u64, key: &Key) -> Result<Place> {
    let mut fs = Filesystem::mount_with(&mut *dev, MountOptions { read_only: true, ..MountOptions::default() })?;
    let trees = fs.trees()?;
    let t = trees.iter().find(|t| t.root.id == tree).ok_or(Error::NotFound)?;
    let (root, from) = (t.root, t.from);
    let mut hit = None;
    fs.store().walk_from(&root, from, &mut |_, v| {
        if let Visit::Node { block, buf, .. } = v {
            if node::level(buf) == 0 {
                if let Ok(i) = node::leaf_search(buf, key) {
                    hit = Some(Place::Node { block, base: node::item_data_range(buf, i).start });
                }
            }
        }
        Ok(())
    })?;
    hit.ok_or(Error::NotFound)
}

/// The block size as the primary superblock says, without validating the
/// rest of it: an earlier edit may have damaged it on purpose.
fn raw_block_size<D: BlockDevice>(dev: &mut D) -> Result<usize> {
    let sb = read_block(dev, SUPERBLOCK_OFFSETS[0], SUPERBLOCK_SIZE)?;
    let f = find(superblock::FIELDS, "block_size").ok_or(Error::Bug("superblock field table lacks block_size"))?;
    let bs = f.get(&sb)? as u32;
    superblock::check_block_size(bs)?;
    Ok(bs as usize)
}

/// A number as specs and values are written: decimal, or hex after `0x`.
pub fn parse_number(s: &str) -> Result<u64> {
    let r = match s.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16),
        None => s.parse(),
    };
    r.map_err(|_| Error::Invalid("not a number"))
}

/// Resolves a spec (see the module's table) to a place and a field. A
/// node's own fields are looked up in the block as it is on the device.
pub fn resolve<D: BlockDevice>(dev: &mut D, spec: &str) -> Result<(Place, Field)> {
    let parts: TryVec<&str> = {
        let mut v = TryVec::new();
        for p in spec.split('.') {
            v.try_push(p)?;
        }
        v
    };
    let bad = Error::Invalid("unknown field spec (see `ferrofs debug fields`)");
    let field = |table: &[Field], name: &str| find(table, name).copied().ok_or(Error::Invalid("no such field"));
    match &parts[..] {
        ["super", f] => Ok((Place::Superblock, field(superblock::FIELDS, f)?)),
        ["item", t, o, y, x, f] => {
            let ty = match item_type_by_name(y) {
                Some(ty) => ty,
                None => u8::try_from(parse_number(y)?).map_err(|_| bad)?,
            };
            let key = Key::new(parse_number(o)?, ty, parse_number(x)?);
            let place = locate_item(dev, parse_number(t)?, &key)?;
            Ok((place, field(item_fields(ty), f)?))
        }
        ["node", b, rest @ ..] => {
            let block = parse_number(b)?;
            let bs = raw_block_size(dev)?;
            let buf = read_block(dev, block.checked_mul(bs as u64).ok_or(bad)?, bs)?;
            let at = |base: usize| Place::Node { block, base };
            match rest {
                ["header", f] => Ok((at(0), field(node::HEADER_FIELDS, f)?)),
                ["ptr", i, f] => Ok((at(node::ptr_offset(parse_number(i)? as usize)), field(node::PTR_FIELDS, f)?)),
                ["item", i, "header", f] => {
                    Ok((at(node::item_header_offset(parse_number(i)? as usize)), field(node::ITEM_HEADER_FIELDS, f)?))
                }
                ["item", i, f] => {
                    let i = parse_number(i)? as usize;
                    let ty = node::item_key(&buf, i).ty;
                    Ok((at(node::item_data_range(&buf, i).start), field(item_fields(ty), f)?))
                }
                _ => Err(bad),
            }
        }
        _ => Err(bad),
    }
}

/// Writes `value` into `field` at `place` and re-seals the checksum of
/// the block (or of both superblock copies).
pub fn set<D: BlockDevice>(dev: &mut D, place: Place, field: &Field, value: u64) -> Result<()> {
    match place {
        Place::Superblock => {
            for off in SUPERBLOCK_OFFSETS {
                let mut b = read_block(dev, off, SUPERBLOCK_SIZE)?;
                field.set(&mut b, value)?;
                superblock::seal(&mut b);
                dev.write(off, &b, true)?;
            }
        }
        Place::Node { block, base } => {
            let bs = raw_block_size(dev)?;
            let off = block.checked_mul(bs as u64).ok_or(Error::Invalid("block number overflows"))?;
            let mut b = read_block(dev, off, bs)?;
            field.set(b.get_mut(base..).ok_or(Error::Invalid("field outside the block"))?, value)?;
            node::seal(&mut b);
            dev.write(off, &b, true)?;
        }
    }
    dev.flush()
}

/// Reads `field` at `place`.
pub fn get<D: BlockDevice>(dev: &mut D, place: Place, field: &Field) -> Result<u64> {
    match place {
        Place::Superblock => field.get(&read_block(dev, SUPERBLOCK_OFFSETS[0], SUPERBLOCK_SIZE)?),
        Place::Node { block, base } => {
            let bs = raw_block_size(dev)?;
            let off = block.checked_mul(bs as u64).ok_or(Error::Invalid("block number overflows"))?;
            let b = read_block(dev, off, bs)?;
            field.get(b.get(base..).unwrap_or(&[]))
        }
    }
}

/// A short name for a target's structure, for reports: `superblock`,
/// `node header`, `interior pointer`, `item header` or `item <type>`.
pub fn kind(t: &Target) -> (&'static str, Option<&'static str>) {
    match t.part {
        Part::Superblock => ("superblock", None),
        Part::Header => ("node header", None),
        Part::Ptr(_) => ("interior pointer", None),
        Part::ItemHeader(..) => ("item header", None),
        Part::Item(_, k) => ("item", Some(item_type_name(k.ty).unwrap_or("unknown"))),
    }
}

// SPDX-License-Identifier: GPL-2.0
//! `dump-tree`: a human-readable listing of the superblock and every node
//! and item of every tree, written to any `core::fmt::Write`.

use crate::alloc_tree::decode_record;
use crate::device::BlockDevice;
use crate::error::{Error, Result};
use crate::format::*;
use crate::fs::Filesystem;
use crate::node;
use crate::walk::Visit;
use core::fmt::Write;

fn w(r: core::fmt::Result) -> Result<()> {
    r.map_err(|_| Error::Invalid("dump output failed"))
}

/// Writes bytes as text, escaping anything that is not printable ASCII.
fn bytes(out: &mut dyn Write, b: &[u8]) -> Result<()> {
    for &c in b {
        if (0x20..0x7f).contains(&c) && c != b'\\' {
            w(out.write_char(c as char))?;
        } else {
            w(write!(out, "\\x{c:02x}"))?;
        }
    }
    Ok(())
}

fn type_name(ty: u8) -> &'static str {
    match ty {
        INODE_KEY => "INODE",
        INODE_REF_KEY => "INODE_REF",
        ROOT_REF_KEY => "ROOT_REF",
        ROOT_BACKREF_KEY => "ROOT_BACKREF",
        XATTR_KEY => "XATTR",
        DIR_HASH_KEY => "DIR_HASH",
        DIR_SEQ_KEY => "DIR_SEQ",
        SYMLINK_KEY => "SYMLINK",
        EXTENT_KEY => "EXTENT",
        ORPHAN_KEY => "ORPHAN",
        ROOT_ITEM_KEY => "ROOT_ITEM",
        REFCOUNT_KEY => "REFCOUNT",
        _ => "UNKNOWN",
    }
}

fn uuid(out: &mut dyn Write, name: &str, u: &[u8; 16]) -> Result<()> {
    w(write!(out, " {name} "))?;
    for (i, b) in u.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            w(out.write_char('-'))?;
        }
        w(write!(out, "{b:02x}"))?;
    }
    Ok(())
}

fn time(out: &mut dyn Write, name: &str, t: Timespec) -> Result<()> {
    w(write!(out, " {name} {}.{:09}", t.sec, t.nsec))
}

/// Describes one item's value.
fn item(out: &mut dyn Write, k: &Key, d: &[u8]) -> Result<()> {
    match k.ty {
        INODE_KEY => match InodeItem::decode(d) {
            Ok(i) => {
                w(write!(
                    out,
                    "mode {:o} uid {} gid {} nlink {} size {} blocks {} rdev {} gen {} transid {} flags {:#x}",
                    i.mode, i.uid, i.gid, i.nlink, i.size, i.blocks, i.rdev, i.generation, i.transid, i.flags
                ))?;
                time(out, "atime", i.atime)?;
                time(out, "mtime", i.mtime)?;
                time(out, "ctime", i.ctime)?;
                time(out, "btime", i.btime)?;
                if i.is_dir() {
                    w(write!(out, " parent {} next_seq {}", i.parent, i.next_seq))?;
                }
                Ok(())
            }
            Err(e) => w(write!(out, "<bad inode: {}>", e.reason())),
        },
        DIR_HASH_KEY | DIR_SEQ_KEY => match DirEntry::decode(d) {
            Ok(e) => {
                if e.subvol {
                    w(write!(out, "subvolume {} other {:#x} name \"", e.ino, e.other))?;
                } else {
                    w(write!(out, "ino {} type {:?} other {:#x} name \"", e.ino, e.ty, e.other))?;
                }
                bytes(out, e.name)?;
                w(out.write_char('"'))
            }
            Err(e) => w(write!(out, "<bad entry: {}>", e.reason())),
        },
        EXTENT_KEY => match ExtentItem::decode(d) {
            Ok(e) => {
                w(write!(out, "disk {} blocks {} gen {}", e.disk_block, e.nblocks, e.generation))?;
                if e.unwritten {
                    w(out.write_str(" unwritten"))?;
                }
                Ok(())
            }
            Err(e) => w(write!(out, "<bad extent: {}>", e.reason())),
        },
        XATTR_KEY if k.offset & 0xffff == 0 => match XattrHead::decode(d) {
            Ok(h) => {
                w(write!(out, "value_len {} name \"", h.value_len))?;
                bytes(out, h.name)?;
                w(write!(out, "\" inline {}", h.first.len()))
            }
            Err(e) => w(write!(out, "<bad xattr head: {}>", e.reason())),
        },
        XATTR_KEY => w(write!(out, "value part, {} bytes", d.len())),
        SYMLINK_KEY => {
            w(out.write_char('"'))?;
            bytes(out, d)?;
            w(out.write_char('"'))
        }
        ROOT_ITEM_KEY => match RootItem::decode(d) {
            Ok(r) => {
                w(write!(
                    out,
                    "root {} gen {} level {} last_ino {} inodes {} root_dir {} flags {:#x}{}{} last_snapshot {}",
                    r.block,
                    r.generation,
                    r.level,
                    r.last_ino,
                    r.inode_count,
                    r.root_dir,
                    r.flags,
                    if r.is_read_only() { " readonly" } else { "" },
                    if r.is_dead() { " deleted" } else { "" },
                    r.last_snapshot
                ))?;
                uuid(out, "uuid", &r.uuid)?;
                uuid(out, "parent_uuid", &r.parent_uuid)?;
                uuid(out, "received_uuid", &r.received_uuid)?;
                w(write!(out, " ctransid {} otransid {} stransid {} rtransid {}", r.ctransid, r.otransid, r.stransid, r.rtransid))?;
                time(out, "ctime", r.ctime)?;
                time(out, "otime", r.otime)?;
                if r.is_dead() {
                    let p = r.drop_progress;
                    w(write!(out, " drop_progress ({} {} {})", p.objectid, type_name(p.ty), p.offset))?;
                }
                Ok(())
            }
            Err(e) => w(write!(out, "<bad root item: {}>", e.reason())),
        },
        INODE_REF_KEY | ROOT_REF_KEY | ROOT_BACKREF_KEY => match NameRef::decode(d) {
            Ok(n) => {
                w(write!(out, "dir {} seq {} name \"", n.dir, n.seq))?;
                bytes(out, n.name)?;
                w(out.write_char('"'))
            }
            Err(e) => w(write!(out, "<bad name reference: {}>", e.reason())),
        },
        REFCOUNT_KEY => match decode_record(k, d) {
            Ok(r) => w(write!(out, "blocks {}..{} count {}", r.start, r.start + r.len, r.count)),
            Err(e) => w(write!(out, "<bad record: {}>", e.reason())),
        },
        ORPHAN_KEY => Ok(()),
        _ => w(write!(out, "{} bytes", d.len())),
    }
}

impl<D: BlockDevice> Filesystem<D> {
    /// Writes the superblock and every tree, node by node, to `out`.
    pub fn dump(&mut self, out: &mut dyn Write) -> Result<()> {
        let sb = self.s.sb.clone();
        w(writeln!(
            out,
            "superblock: version {} block_size {} total_blocks {} blocks_used {} generation {} (running {})",
            sb.version, sb.block_size, sb.total_blocks, sb.blocks_used, sb.generation, self.s.gen
        ))?;
        w(writeln!(
            out,
            "  root tree {}/{}/{} alloc tree {}/{}/{} log tree {} fast-commit {}+{}",
            sb.root_tree.block,
            sb.root_tree.generation,
            sb.root_tree.level,
            sb.alloc_tree.block,
            sb.alloc_tree.generation,
            sb.alloc_tree.level,
            sb.log_tree.block,
            sb.fast_commit_start,
            sb.fast_commit_blocks
        ))?;
        let trees = self.trees()?;
        // Nodes several trees share are listed under the first tree only.
        let mut listed: crate::mem::TryVec<u64> = crate::mem::TryVec::new();
        for t in trees.iter() {
            let root = t.root;
            w(writeln!(out, "tree {} root {} gen {} level {}", root.id, root.block, root.generation, root.level))?;
            self.s.walk_from(&root, t.from, &mut |_, v| match v {
                Visit::Bad { block, error } => w(writeln!(out, "  node {block}: UNREADABLE: {}", error.reason())),
                Visit::Node { block, buf, depth } => {
                    let n = node::nritems(buf);
                    let lvl = node::level(buf);
                    match listed.binary_search(&block) {
                        Ok(_) => {
                            return w(writeln!(out, "{:indent$}node {} shared, listed above", "", block, indent = 2 + depth * 2));
                        }
                        Err(i) => listed.try_insert(i, block)?,
                    }
                    w(writeln!(
                        out,
                        "{:indent$}node {} level {} gen {} owner {} items {} free {}",
                        "",
                        block,
                        lvl,
                        node::generation(buf),
                        node::owner(buf),
                        n,
                        if lvl == 0 { node::leaf_free(buf) } else { node::ptr_capacity(buf.len()).saturating_sub(n) * node::PTR_SIZE },
                        indent = 2 + depth * 2
                    ))?;
                    for i in 0..n {
                        if lvl > 0 {
                            let k = node::ptr_key(buf, i);
                            w(writeln!(
                                out,
                                "{:indent$}ptr ({} {} {}) -> block {} gen {}",
                                "",
                                k.objectid,
                                type_name(k.ty),
                                k.offset,
                                node::ptr_block(buf, i),
                                node::ptr_gen(buf, i),
                                indent = 4 + depth * 2
                            ))?;
                            continue;
                        }
                        let k = node::item_key(buf, i);
                        w(write!(out, "{:indent$}item ({} {} {:#x}) ", "", k.objectid, type_name(k.ty), k.offset, indent = 4 + depth * 2))?;
                        item(out, &k, node::item_data(buf, i))?;
                        w(out.write_char('\n'))?;
                    }
                    Ok(())
                }
            })?;
        }
        Ok(())
    }
}

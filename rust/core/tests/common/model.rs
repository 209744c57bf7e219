// SPDX-License-Identifier: GPL-2.0
//! An in-memory reference model of the filesystem semantics the core
//! implements, and a comparison of its visible state with the core's.
#![allow(dead_code)]

use ferrofs_core::subvol::SubvolId;
/// The subvolume the model runs in: the first one created (snapshots of it
/// are named in the default subvolume, outside the model).
pub const SV: SubvolId = SubvolId(256);
use super::SimDev;
use ferrofs_core::error::Error;
use ferrofs_core::format::FileType;
use ferrofs_core::fs::Filesystem;
use std::collections::{BTreeMap, BTreeSet};

pub const BS: u64 = 4096;

#[derive(Clone, Debug, PartialEq)]
pub enum Body {
    /// `blocks`: the file blocks mapped; `unwritten`: those of them
    /// preallocated and never written since (they read as zeros and are
    /// holes to SEEK_DATA/SEEK_HOLE).
    File {
        data: Vec<u8>,
        blocks: BTreeSet<u64>,
        unwritten: BTreeSet<u64>,
    },
    Dir {
        entries: BTreeMap<u64, (Vec<u8>, u64)>,
        next_seq: u64,
        parent: u64,
    },
    Symlink(Vec<u8>),
    Special,
}

#[derive(Clone, Debug, PartialEq)]
pub struct MInode {
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub nlink: u32,
    pub rdev: u64,
    pub body: Body,
    pub xattrs: BTreeMap<Vec<u8>, Vec<u8>>,
}

impl MInode {
    pub fn ty(&self) -> FileType {
        FileType::from_mode(self.mode).unwrap()
    }
    pub fn size(&self) -> u64 {
        match &self.body {
            Body::File { data, .. } => data.len() as u64,
            Body::Dir { entries, .. } => entries.values().map(|(n, _)| n.len() as u64).sum(),
            Body::Symlink(t) => t.len() as u64,
            Body::Special => 0,
        }
    }
    pub fn is_dir(&self) -> bool {
        matches!(self.body, Body::Dir { .. })
    }
}

#[derive(Clone, Debug, PartialEq, Default)]
pub struct Model {
    pub inodes: BTreeMap<u64, MInode>,
    pub open: BTreeSet<u64>,
    pub root: u64,
}

pub type R<T> = Result<T, Error>;

impl Model {
    pub fn new(root: u64) -> Self {
        let mut m = Model { root, ..Default::default() };
        m.inodes.insert(
            root,
            MInode {
                mode: 0o40755,
                uid: 0,
                gid: 0,
                nlink: 2,
                rdev: 0,
                body: Body::Dir { entries: BTreeMap::new(), next_seq: 2, parent: root },
                xattrs: BTreeMap::new(),
            },
        );
        m
    }

    pub fn find(&self, dir: u64, name: &[u8]) -> Option<(u64, u64)> {
        match &self.inodes[&dir].body {
            Body::Dir { entries, .. } => entries.iter().find(|(_, (n, _))| n == name).map(|(s, (_, i))| (*s, *i)),
            _ => None,
        }
    }

    fn dir_mut(&mut self, dir: u64) -> (&mut BTreeMap<u64, (Vec<u8>, u64)>, &mut u64) {
        match &mut self.inodes.get_mut(&dir).unwrap().body {
            Body::Dir { entries, next_seq, .. } => (entries, next_seq),
            _ => panic!("not a dir"),
        }
    }

    fn add_entry(&mut self, dir: u64, name: &[u8], ino: u64) {
        let is_dir = self.inodes[&ino].is_dir();
        let (entries, next) = self.dir_mut(dir);
        entries.insert(*next, (name.to_vec(), ino));
        *next += 1;
        if is_dir {
            self.inodes.get_mut(&dir).unwrap().nlink += 1;
        }
    }

    fn remove_entry(&mut self, dir: u64, seq: u64) {
        let (entries, _) = self.dir_mut(dir);
        let (_, ino) = entries.remove(&seq).unwrap();
        if self.inodes[&ino].is_dir() {
            self.inodes.get_mut(&dir).unwrap().nlink -= 1;
        }
    }

    /// Drops one link (or a directory's last); frees the inode if unlinked
    /// and not open. Returns whether it was freed.
    fn drop_link(&mut self, ino: u64) -> bool {
        let i = self.inodes.get_mut(&ino).unwrap();
        if i.is_dir() {
            i.nlink = 0;
        } else {
            i.nlink -= 1;
        }
        if i.nlink == 0 && !self.open.contains(&ino) {
            self.inodes.remove(&ino);
            return true;
        }
        false
    }

    fn check_name(name: &[u8]) -> R<()> {
        if name.len() > 255 {
            return Err(Error::NameTooLong);
        }
        if name.is_empty() || name.contains(&b'/') || name.contains(&0) || name == b"." || name == b".." {
            return Err(Error::Invalid("invalid file name"));
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    pub fn new_inode(&mut self, dir: u64, name: &[u8], ino: u64, mode: u32, rdev: u64, body: Body, uid: u32, gid: u32) -> R<()> {
        Self::check_name(name)?;
        if self.find(dir, name).is_some() {
            return Err(Error::Exists);
        }
        let nlink = if matches!(body, Body::Dir { .. }) { 2 } else { 1 };
        let body = match body {
            Body::Dir { .. } => Body::Dir { entries: BTreeMap::new(), next_seq: 2, parent: dir },
            b => b,
        };
        self.inodes.insert(ino, MInode { mode, uid, gid, nlink, rdev, body, xattrs: BTreeMap::new() });
        self.add_entry(dir, name, ino);
        Ok(())
    }

    /// A nameless regular file, held open by whoever made it.
    pub fn tmpfile(&mut self, ino: u64, mode: u32, uid: u32, gid: u32) {
        let body = Body::File { data: vec![], blocks: Default::default(), unwritten: Default::default() };
        self.inodes.insert(ino, MInode { mode, uid, gid, nlink: 0, rdev: 0, body, xattrs: BTreeMap::new() });
        self.open.insert(ino);
    }

    pub fn link(&mut self, ino: u64, dir: u64, name: &[u8]) -> R<()> {
        Self::check_name(name)?;
        if self.inodes[&ino].is_dir() {
            return Err(Error::NotPermitted);
        }
        if self.find(dir, name).is_some() {
            return Err(Error::Exists);
        }
        self.inodes.get_mut(&ino).unwrap().nlink += 1;
        self.add_entry(dir, name, ino);
        Ok(())
    }

    /// Returns the inode that lost its last link and was freed, if any.
    pub fn unlink(&mut self, dir: u64, name: &[u8]) -> R<Option<u64>> {
        if name.len() > 255 {
            return Err(Error::NameTooLong);
        }
        let (seq, ino) = self.find(dir, name).ok_or(Error::NotFound)?;
        if self.inodes[&ino].is_dir() {
            return Err(Error::IsDir);
        }
        self.remove_entry(dir, seq);
        Ok(self.drop_link(ino).then_some(ino))
    }

    pub fn rmdir(&mut self, dir: u64, name: &[u8]) -> R<Option<u64>> {
        if name.len() > 255 {
            return Err(Error::NameTooLong);
        }
        let (seq, ino) = self.find(dir, name).ok_or(Error::NotFound)?;
        match &self.inodes[&ino].body {
            Body::Dir { entries, .. } if entries.is_empty() => {}
            Body::Dir { .. } => return Err(Error::NotEmpty),
            _ => return Err(Error::NotDir),
        }
        self.remove_entry(dir, seq);
        Ok(self.drop_link(ino).then_some(ino))
    }

    fn parent(&self, d: u64) -> u64 {
        match &self.inodes[&d].body {
            Body::Dir { parent, .. } => *parent,
            _ => panic!(),
        }
    }

    fn is_ancestor(&self, anc: u64, mut d: u64) -> bool {
        loop {
            if d == anc {
                return true;
            }
            if d == self.root {
                return false;
            }
            d = self.parent(d);
        }
    }

    fn set_parent(&mut self, ino: u64, p: u64) {
        if let Body::Dir { parent, .. } = &mut self.inodes.get_mut(&ino).unwrap().body {
            *parent = p;
        }
    }

    /// Returns inodes freed by a replacing rename.
    pub fn rename(&mut self, odir: u64, oname: &[u8], ndir: u64, nname: &[u8], flags: u32) -> R<Option<u64>> {
        if oname.len() > 255 {
            return Err(Error::NameTooLong);
        }
        Self::check_name(nname)?;
        let (sseq, sino) = self.find(odir, oname).ok_or(Error::NotFound)?;
        let dst = self.find(ndir, nname);
        let exchange = flags & 2 != 0;
        if exchange && dst.is_none() {
            return Err(Error::NotFound);
        }
        if flags & 1 != 0 && dst.is_some() {
            return Err(Error::Exists);
        }
        if let Some((_, dino)) = dst {
            if dino == sino {
                return Ok(None);
            }
        }
        let src_dir = self.inodes[&sino].is_dir();
        if src_dir && odir != ndir && self.is_ancestor(sino, ndir) {
            return Err(Error::Invalid("loop"));
        }
        if let Some((_, dino)) = dst {
            let dst_dir = self.inodes[&dino].is_dir();
            if exchange {
                if dst_dir && odir != ndir && self.is_ancestor(dino, odir) {
                    return Err(Error::Invalid("loop"));
                }
            } else if src_dir {
                if !dst_dir {
                    return Err(Error::NotDir);
                }
                if let Body::Dir { entries, .. } = &self.inodes[&dino].body {
                    if !entries.is_empty() {
                        return Err(Error::NotEmpty);
                    }
                }
            } else if dst_dir {
                return Err(Error::IsDir);
            }
        }
        if let (true, Some((dseq, dino))) = (exchange, dst) {
            self.dir_mut(odir).0.get_mut(&sseq).unwrap().1 = dino;
            self.dir_mut(ndir).0.get_mut(&dseq).unwrap().1 = sino;
            self.set_parent(sino, ndir);
            self.set_parent(dino, odir);
            let dst_dir = self.inodes[&dino].is_dir();
            if odir != ndir && src_dir != dst_dir {
                let (gain, lose) = if src_dir { (ndir, odir) } else { (odir, ndir) };
                self.inodes.get_mut(&gain).unwrap().nlink += 1;
                self.inodes.get_mut(&lose).unwrap().nlink -= 1;
            }
            return Ok(None);
        }
        let mut freed = None;
        if let Some((dseq, dino)) = dst {
            self.remove_entry(ndir, dseq);
            if self.drop_link(dino) {
                freed = Some(dino);
            }
        }
        self.remove_entry(odir, sseq);
        self.add_entry(ndir, nname, sino);
        if src_dir {
            self.set_parent(sino, ndir);
        }
        Ok(freed)
    }

    pub fn write(&mut self, ino: u64, off: u64, buf: &[u8]) -> R<usize> {
        let Body::File { data, blocks, unwritten } = &mut self.inodes.get_mut(&ino).unwrap().body else { return Err(Error::Invalid("x")) };
        if buf.is_empty() {
            return Ok(0);
        }
        let end = off as usize + buf.len();
        if data.len() < end {
            data.resize(end, 0);
        }
        data[off as usize..end].copy_from_slice(buf);
        for b in off / BS..=(end as u64 - 1) / BS {
            blocks.insert(b);
            unwritten.remove(&b);
        }
        Ok(buf.len())
    }

    pub fn truncate(&mut self, ino: u64, size: u64) -> R<()> {
        let Body::File { data, blocks, unwritten } = &mut self.inodes.get_mut(&ino).unwrap().body else { return Err(Error::Invalid("x")) };
        // Only shrinking drops blocks (preallocated ones past the old size
        // included); growing keeps them.
        if size < data.len() as u64 {
            let keep = size.div_ceil(BS);
            blocks.retain(|&b| b < keep);
            unwritten.retain(|&b| b < keep);
        }
        data.resize(size as usize, 0);
        Ok(())
    }

    fn range_end(off: u64, len: u64) -> R<u64> {
        if len == 0 {
            return Err(Error::Invalid("x"));
        }
        off.checked_add(len).filter(|&e| e <= 1 << 48).ok_or(Error::FileTooBig)
    }

    fn file_mut(&mut self, ino: u64) -> (&mut Vec<u8>, &mut BTreeSet<u64>, &mut BTreeSet<u64>) {
        match &mut self.inodes.get_mut(&ino).unwrap().body {
            Body::File { data, blocks, unwritten } => (data, blocks, unwritten),
            _ => panic!("not a file"),
        }
    }

    /// Every block the range touches is allocated, those not mapped yet as
    /// unwritten; the size grows to its end unless `keep_size`.
    pub fn fallocate(&mut self, ino: u64, off: u64, len: u64, keep_size: bool) -> R<()> {
        let end = Self::range_end(off, len)?;
        let (data, blocks, unwritten) = self.file_mut(ino);
        for b in off / BS..end.div_ceil(BS) {
            if blocks.insert(b) {
                unwritten.insert(b);
            }
        }
        if !keep_size && end > data.len() as u64 {
            data.resize(end as usize, 0);
        }
        Ok(())
    }

    /// Zeroes the range below the size and drops each block that has bytes
    /// below the size, all of them in the range (blocks wholly past the
    /// size stay).
    pub fn punch_hole(&mut self, ino: u64, off: u64, len: u64) -> R<()> {
        let end = Self::range_end(off, len)?;
        let (data, blocks, unwritten) = self.file_mut(ino);
        let size = data.len() as u64;
        let end = end.min(size);
        if off >= end {
            return Ok(());
        }
        data[off as usize..end as usize].fill(0);
        let punched = |b: u64| b * BS >= off && b * BS < size && ((b + 1) * BS).min(size) <= end;
        blocks.retain(|&b| !punched(b));
        unwritten.retain(|&b| !punched(b));
        Ok(())
    }

    pub fn zero_range(&mut self, ino: u64, off: u64, len: u64, keep_size: bool) -> R<()> {
        self.punch_hole(ino, off, len)?;
        self.fallocate(ino, off, len, keep_size)
    }

    /// The blocks that hold data: mapped and not unwritten.
    fn data_blocks(&self, ino: u64) -> BTreeSet<u64> {
        let Body::File { blocks, unwritten, .. } = &self.inodes[&ino].body else { panic!() };
        blocks.difference(unwritten).copied().collect()
    }

    /// SEEK_DATA as the core defines it, from the block set.
    pub fn seek_data(&self, ino: u64, off: u64) -> Option<u64> {
        let Body::File { data, .. } = &self.inodes[&ino].body else { panic!() };
        let blocks = &self.data_blocks(ino);
        let size = data.len() as u64;
        if off >= size {
            return None;
        }
        if blocks.contains(&(off / BS)) {
            return Some(off);
        }
        blocks.range(off / BS + 1..).next().map(|b| b * BS).filter(|&p| p < size)
    }

    /// SEEK_HOLE as the core defines it, from the block set.
    pub fn seek_hole(&self, ino: u64, off: u64) -> u64 {
        let Body::File { data, .. } = &self.inodes[&ino].body else { panic!() };
        let blocks = &self.data_blocks(ino);
        let size = data.len() as u64;
        if off >= size {
            return off;
        }
        let mut b = off / BS;
        if !blocks.contains(&b) {
            return off;
        }
        while blocks.contains(&b) {
            b += 1;
        }
        (b * BS).min(size)
    }

    pub fn set_xattr(&mut self, ino: u64, name: &[u8], value: &[u8], flags: u32) -> R<()> {
        if name.len() > 255 {
            return Err(Error::NameTooLong);
        }
        if value.len() > 65536 {
            return Err(Error::ArgTooBig);
        }
        let x = &mut self.inodes.get_mut(&ino).unwrap().xattrs;
        let exists = x.contains_key(name);
        if exists && flags & 1 != 0 {
            return Err(Error::Exists);
        }
        if !exists && flags & 2 != 0 {
            return Err(Error::NoData);
        }
        x.insert(name.to_vec(), value.to_vec());
        Ok(())
    }

    pub fn remove_xattr(&mut self, ino: u64, name: &[u8]) -> R<()> {
        self.inodes.get_mut(&ino).unwrap().xattrs.remove(name).map(|_| ()).ok_or(Error::NoData)
    }

    /// After a remount: nothing is open, unlinked inodes are gone.
    pub fn remounted(&mut self) {
        self.open.clear();
        self.inodes.retain(|_, i| i.nlink > 0);
    }

    /// Every (dir, seq, name, ino) reachable from the root.
    pub fn entries(&self) -> Vec<(u64, Vec<u8>, u64)> {
        let mut out = Vec::new();
        for (&d, i) in &self.inodes {
            if let Body::Dir { entries, .. } = &i.body {
                for (n, ino) in entries.values() {
                    out.push((d, n.clone(), *ino));
                }
            }
        }
        out
    }
}

/// Compares everything visible. With `data`, whole file contents too;
/// otherwise only for `focus`.
pub fn compare(fs: &mut Filesystem<SimDev>, m: &Model, data: bool, focus: &[u64]) -> Result<(), String> {
    for (&ino, i) in &m.inodes {
        let a = fs.getattr(SV, ino).map_err(|e| format!("getattr {ino}: {e:?}"))?;
        let want = (i.mode, i.uid, i.gid, i.nlink, i.size(), i.rdev);
        let got = (a.mode, a.uid, a.gid, a.nlink, a.size, a.rdev);
        if want != got {
            return Err(format!("inode {ino}: model (mode,uid,gid,nlink,size,rdev) {want:?} core {got:?}"));
        }
        match &i.body {
            Body::Dir { entries, .. } => {
                let mut got = Vec::new();
                fs.readdir(SV, ino, 0, &mut |n, i, t, c| {
                    got.push((c - 1, n.to_vec(), i, t));
                    true
                })
                .map_err(|e| format!("readdir {ino}: {e:?}"))?;
                let want: Vec<_> = entries.iter().map(|(s, (n, i))| (*s, n.clone(), *i, m.inodes[i].ty())).collect();
                if want != got {
                    return Err(format!("dir {ino}: model {want:?}\n core {got:?}"));
                }
                for (n, i) in entries.values() {
                    let l = fs.lookup(SV, ino, n).map_err(|e| format!("lookup {ino}/{:?}: {e:?}", String::from_utf8_lossy(n)))?;
                    if l != *i {
                        return Err(format!("lookup {ino}/{n:?} gave {l}, want {i}"));
                    }
                }
            }
            Body::File { data: d, blocks, unwritten } => {
                if a.blocks != blocks.len() as u64 * (BS / 512) {
                    return Err(format!("file {ino}: blocks model {} core {}", blocks.len() as u64 * 8, a.blocks));
                }
                if data || focus.contains(&ino) {
                    compare_map(fs, m, ino, blocks, unwritten, d.len() as u64)?;
                }
                if data || focus.contains(&ino) {
                    let mut buf = vec![0xeeu8; d.len() + 100];
                    let n = fs.read(SV, ino, 0, &mut buf).map_err(|e| format!("read {ino}: {e:?}"))?;
                    if n != d.len() || buf[..n] != d[..] {
                        let first = (0..n.min(d.len())).find(|&k| buf[k] != d[k]);
                        return Err(format!("file {ino}: content differs (len {} vs {}), first at {first:?}", d.len(), n));
                    }
                }
            }
            Body::Symlink(t) => {
                let got = fs.readlink(SV, ino).map_err(|e| format!("readlink {ino}: {e:?}"))?;
                if got[..] != t[..] {
                    return Err(format!("symlink {ino} differs"));
                }
            }
            Body::Special => {}
        }
        let n = fs.list_xattr(SV, ino, &mut []).map_err(|e| format!("listxattr {ino}: {e:?}"))?;
        let mut buf = vec![0u8; n];
        fs.list_xattr(SV, ino, &mut buf).unwrap();
        let mut names: Vec<Vec<u8>> = buf.split(|&c| c == 0).filter(|s| !s.is_empty()).map(|s| s.to_vec()).collect();
        names.sort();
        let want: Vec<Vec<u8>> = i.xattrs.keys().cloned().collect();
        if names != want {
            return Err(format!("xattr names of {ino} differ: {} vs {}", want.len(), names.len()));
        }
        if data || focus.contains(&ino) {
            for (k, v) in &i.xattrs {
                let mut b = vec![0u8; v.len()];
                let n = fs.get_xattr(SV, ino, k, &mut b).map_err(|e| format!("getxattr {ino}: {e:?}"))?;
                if n != v.len() || b != *v {
                    return Err(format!("xattr {k:?} of {ino} differs"));
                }
            }
        }
    }
    Ok(())
}

/// The extent map against the model's blocks: which file blocks `extents`
/// reports (in order, without overlap, on distinct disk blocks), and
/// `seek_data` / `seek_hole` at the edges of every mapped run, around the
/// size and at a few places in between.
fn compare_map(
    fs: &mut Filesystem<SimDev>,
    m: &Model,
    ino: u64,
    blocks: &BTreeSet<u64>,
    unwritten: &BTreeSet<u64>,
    size: u64,
) -> Result<(), String> {
    let mut got = BTreeSet::new();
    let mut got_unwritten = BTreeSet::new();
    let mut disk = BTreeSet::new();
    let mut last_end = 0;
    let mut bad = None;
    fs.extents(SV, ino, 0, &mut |l, p, n, state| {
        if state.unwritten {
            got_unwritten.extend(l / BS..(l + n) / BS);
        }
        if l < last_end || l % BS != 0 || p % BS != 0 || n == 0 || n % BS != 0 {
            bad = Some((l, p, n));
        }
        last_end = l + n;
        for i in 0..n / BS {
            got.insert(l / BS + i);
            if !disk.insert(p / BS + i) {
                bad = Some((l, p, n));
            }
        }
        true
    })
    .map_err(|e| format!("extents {ino}: {e:?}"))?;
    if let Some(b) = bad {
        return Err(format!("file {ino}: malformed extent (logical, physical, len) {b:?}"));
    }
    if got != *blocks {
        let want: Vec<u64> = blocks.iter().copied().collect();
        let got: Vec<u64> = got.into_iter().collect();
        return Err(format!("file {ino}: extent map covers blocks {got:?}, model {want:?}"));
    }
    if got_unwritten != *unwritten {
        return Err(format!("file {ino}: unwritten blocks {got_unwritten:?}, model {unwritten:?}"));
    }
    let mut probes = vec![0, size.saturating_sub(1), size, size + 1, size / 3, size / 2 + 1];
    for &b in blocks {
        probes.extend([b * BS, (b * BS).saturating_sub(1), b * BS + BS - 1, b * BS + BS]);
    }
    for off in probes {
        let d = fs.seek_data(SV, ino, off).map_err(|e| format!("seek_data {ino} {off}: {e:?}"))?;
        let h = fs.seek_hole(SV, ino, off).map_err(|e| format!("seek_hole {ino} {off}: {e:?}"))?;
        let (wd, wh) = (m.seek_data(ino, off), m.seek_hole(ino, off));
        if (d, h) != (wd, wh) {
            return Err(format!("file {ino} size {size} at {off}: core seek_data/seek_hole {d:?}/{h}, model {wd:?}/{wh}"));
        }
    }
    Ok(())
}

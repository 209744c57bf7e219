// SPDX-License-Identifier: GPL-2.0
//! Fuzzes mounting a damaged image: the input patches bytes of a small
//! valid image (optionally resealing the checksums of what it touched), then
//! mount, and on success every read path, `dump`, `check(false)` and
//! `unmount`; read-write mounts may also change the tree first.
//!
//! Input: one flags byte (bit 0: leave checksums as patched, bit 1: mount
//! read-only, bit 2: make changes), then patches `(page u8, offset u16 LE,
//! len u8, bytes)`; `page` indexes the image's non-zero pages, so patches
//! land on superblocks, nodes and file data rather than on empty space.
#![no_main]

use ferrofs_core::format::{FileType, Timespec, S_IFREG};
use ferrofs_core::fs::{Filesystem, MountOptions, SetAttr};
use ferrofs_core::node::{self, NODE_MAGIC};
use ferrofs_core::superblock::SUPERBLOCK_OFFSETS;
use ferrofs_core_fuzz::{reseal_superblock, sample_image, MemDev, IMAGE_SIZE, PAGE};
use libfuzzer_sys::fuzz_target;
use std::collections::BTreeSet;
use std::sync::OnceLock;

/// Bounds on the walk, so a directory that a damaged tree makes huge or
/// cyclic costs milliseconds, not the run.
const MAX_INODES: usize = 64;
const MAX_ENTRIES: usize = 512;
const MAX_READ: usize = 64 << 10;

struct Image {
    bytes: Vec<u8>,
    used_pages: Vec<u64>,
}

fn image() -> &'static Image {
    static IMAGE: OnceLock<Image> = OnceLock::new();
    IMAGE.get_or_init(|| {
        let bytes = sample_image();
        let used_pages = bytes.chunks(PAGE).enumerate().filter(|(_, p)| p.iter().any(|&b| b != 0)).map(|(i, _)| i as u64).collect();
        Image { bytes, used_pages }
    })
}

fn now() -> Timespec {
    Timespec { sec: 2000, nsec: 0 }
}

fn patched(img: &'static Image, data: &[u8], reseal: bool) -> MemDev<'static> {
    let mut dev = MemDev::new(&img.bytes, IMAGE_SIZE);
    let mut touched = BTreeSet::new();
    let mut rest = data;
    while let Some((&[sel, o0, o1, len], tail)) = rest.split_first_chunk::<4>() {
        let page = img.used_pages[sel as usize % img.used_pages.len()];
        let off = u16::from_le_bytes([o0, o1]) as usize % PAGE;
        let n = (len as usize).min(tail.len()).min(PAGE - off);
        dev.page_mut(page)[off..off + n].copy_from_slice(&tail[..n]);
        touched.insert(page);
        rest = &tail[n..];
    }
    if reseal {
        for page in touched {
            let b = dev.page_mut(page);
            if SUPERBLOCK_OFFSETS.contains(&(page * PAGE as u64)) {
                reseal_superblock(b);
            } else if b[4..8] == NODE_MAGIC.to_le_bytes() {
                node::seal(b);
            }
        }
    }
    dev
}

/// Every read the VFS could make, from the root down; all errors are fine.
fn read_everything(fs: &mut Filesystem<MemDev<'static>>) {
    let root = fs.root_ino();
    let _ = fs.getattr(root);
    let mut todo = vec![root];
    let mut seen = BTreeSet::from([root]);
    let mut buf = vec![0u8; MAX_READ];
    while let Some(dir) = todo.pop() {
        let mut ents = Vec::new();
        let _ = fs.readdir(dir, 0, &mut |name, ino, ty, _| {
            ents.push((name.to_vec(), ino, ty));
            ents.len() < MAX_ENTRIES
        });
        let _ = fs.lookup(dir, b"no such name");
        for (name, ino, ty) in ents {
            let _ = fs.lookup(dir, &name);
            if seen.len() >= MAX_INODES || !seen.insert(ino) {
                continue;
            }
            let Ok(attr) = fs.getattr(ino) else { continue };
            match attr.file_type() {
                FileType::Regular => {
                    let _ = fs.read(ino, 0, &mut buf);
                    let _ = fs.read(ino, attr.size.saturating_sub(100), &mut buf[..4096]);
                }
                FileType::Symlink => {
                    let _ = fs.readlink(ino);
                }
                FileType::Dir if ty == FileType::Dir => todo.push(ino),
                _ => {}
            }
            read_xattrs(fs, ino, &mut buf);
        }
    }
}

fn read_xattrs(fs: &mut Filesystem<MemDev<'static>>, ino: u64, buf: &mut [u8]) {
    let Ok(n) = fs.list_xattr(ino, &mut []) else { return };
    let mut names = vec![0u8; n.min(MAX_READ)];
    let Ok(n) = fs.list_xattr(ino, &mut names) else { return };
    for name in names[..n.min(names.len())].split(|&c| c == 0).filter(|s| !s.is_empty()) {
        let _ = fs.get_xattr(ino, name, &mut []);
        let _ = fs.get_xattr(ino, name, buf);
    }
}

/// Changes that walk and rewrite damaged trees: create, write, xattr,
/// truncate, rename and unlink.
fn change_things(fs: &mut Filesystem<MemDev<'static>>) {
    let root = fs.root_ino();
    let Ok(a) = fs.create(root, b"fuzz-new", S_IFREG | 0o644, 0, 0, 0, now()) else { return };
    let _ = fs.write(a.ino, 3000, &[9u8; 6000], now());
    let _ = fs.set_xattr(a.ino, b"user.fuzz", b"value", 0, now());
    if let Ok(big) = fs.lookup(root, b"big") {
        let _ = fs.setattr(big, &SetAttr { size: Some(100), ..Default::default() }, now());
    }
    let _ = fs.rename(root, b"fuzz-new", root, b"short", 0, now());
    let _ = fs.unlink(root, b"hardlink", now());
    let _ = fs.commit();
}

struct Sink;

impl core::fmt::Write for Sink {
    fn write_str(&mut self, _: &str) -> core::fmt::Result {
        Ok(())
    }
}

fuzz_target!(|data: &[u8]| {
    let img = image();
    let Some((&flags, patches)) = data.split_first() else { return };
    let dev = patched(img, patches, flags & 1 == 0);
    let read_only = flags & 2 != 0;
    let opts = MountOptions { read_only, ..Default::default() };
    let Ok(mut fs) = Filesystem::mount_with(dev, opts) else { return };
    read_everything(&mut fs);
    let _ = (fs.statfs(), fs.trees());
    let _ = fs.dump(&mut Sink);
    if !read_only && flags & 4 != 0 {
        change_things(&mut fs);
    }
    let _ = fs.check(false);
    let _ = fs.unmount();
});

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

use ferrofs_core::fs::{Filesystem, MountOptions};
use ferrofs_core::node::{self, NODE_MAGIC};
use ferrofs_core::superblock::SUPERBLOCK_OFFSETS;
use ferrofs_core_fuzz::{change_things, read_everything, reseal_superblock, sample_image, MemDev, IMAGE_SIZE, PAGE};
use libfuzzer_sys::fuzz_target;
use std::collections::BTreeSet;
use std::sync::OnceLock;

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

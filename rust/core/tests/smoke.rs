// SPDX-License-Identifier: GPL-2.0
//! Basic end-to-end behaviour of the API.
#![allow(clippy::needless_range_loop)]
mod common;
use common::*;
use ferrofs_core::error::Error;
use ferrofs_core::format::FileType;

fn list(fs: &mut ferrofs_core::fs::Filesystem<SimDev>, dir: u64) -> Vec<(Vec<u8>, u64, FileType, u64)> {
    let mut v = Vec::new();
    fs.readdir(dir, 0, &mut |n, i, t, c| {
        v.push((n.to_vec(), i, t, c));
        true
    })
    .unwrap();
    v
}

#[test]
fn mkfs_mount_root() {
    let d = fresh(8 << 20);
    let mut fs = mount(d);
    let root = fs.root_ino();
    assert_eq!(root, 256);
    let a = fs.getattr(root).unwrap();
    assert_eq!(a.mode, 0o40755);
    assert_eq!(a.nlink, 2);
    assert_eq!(a.mtime, ts(1000));
    assert!(list(&mut fs, root).is_empty());
    assert_eq!(fs.lookup(root, b"nope"), Err(Error::NotFound));
    let st = fs.statfs();
    assert_eq!(st.block_size, 4096);
    assert_eq!(st.total_blocks, 2048);
    assert!(st.free_blocks > 2000, "{st:?}");
    fs.unmount().unwrap();
}

#[test]
fn create_lookup_readdir_remount() {
    let mut fs = mount(fresh(16 << 20));
    let root = fs.root_ino();
    let mut inos = Vec::new();
    for i in 0..300u32 {
        let name = format!("file{i}");
        let a = fs.create(root, name.as_bytes(), 0o644, 0, 1, 2, ts(2000 + i as i64)).unwrap();
        inos.push(a.ino);
    }
    let d = fs.mkdir(root, b"sub", 0o700, 0, 0, ts(5)).unwrap();
    assert_eq!(fs.getattr(root).unwrap().nlink, 3);
    assert_eq!(fs.create(root, b"file7", 0o644, 0, 0, 0, ts(1)).unwrap_err(), Error::Exists);
    fs.commit().unwrap();
    for i in (0..300).step_by(3) {
        fs.unlink(root, format!("file{i}").as_bytes(), ts(9)).unwrap();
        fs.evict(inos[i]).unwrap();
    }
    let dev = fs.unmount().unwrap();
    let mut fs = mount(dev);
    for i in 0..300 {
        let r = fs.lookup(root, format!("file{i}").as_bytes());
        if i % 3 == 0 {
            assert_eq!(r, Err(Error::NotFound));
        } else {
            assert_eq!(r, Ok(inos[i]));
            assert_eq!(fs.getattr(inos[i]).unwrap().uid, 1);
        }
    }
    let l = list(&mut fs, root);
    assert_eq!(l.len(), 201);
    assert_eq!(l.last().unwrap().0, b"sub");
    assert_eq!(l.last().unwrap().1, d.ino);
    // Cookies resume exactly.
    let cookie = l[99].3;
    let mut rest = Vec::new();
    fs.readdir(root, cookie, &mut |n, _, _, _| {
        rest.push(n.to_vec());
        true
    })
    .unwrap();
    assert_eq!(rest.len(), 101);
    assert_eq!(rest[0], l[100].0);
    fs.unmount().unwrap();
}

#[test]
fn file_data_round_trip() {
    let mut fs = mount(fresh(32 << 20));
    let root = fs.root_ino();
    let f = fs.create(root, b"f", 0o644, 0, 0, 0, ts(1)).unwrap().ino;
    let data: Vec<u8> = (0..100_000u32).map(|i| (i * 7) as u8).collect();
    assert_eq!(fs.write(f, 1000, &data, ts(2)).unwrap(), data.len());
    let mut buf = vec![0u8; 120_000];
    assert_eq!(fs.read(f, 0, &mut buf).unwrap(), 101_000);
    assert!(buf[..1000].iter().all(|&b| b == 0));
    assert_eq!(&buf[1000..101_000], &data[..]);
    fs.commit().unwrap();
    // Overwrite in the middle after commit (copy-on-write), then truncate.
    fs.write(f, 5000, b"hello", ts(3)).unwrap();
    fs.truncate(f, 5003, ts(4)).unwrap();
    fs.truncate(f, 9000, ts(5)).unwrap();
    let dev = fs.unmount().unwrap();
    let mut fs = mount(dev);
    let mut buf = vec![0u8; 10_000];
    assert_eq!(fs.read(f, 0, &mut buf).unwrap(), 9000);
    assert_eq!(&buf[5000..5003], b"hel");
    assert!(buf[5003..9000].iter().all(|&b| b == 0));
    assert_eq!(&buf[1000..5000], &data[..4000]);
    assert_eq!(fs.getattr(f).unwrap().blocks, 2 * 8);
}

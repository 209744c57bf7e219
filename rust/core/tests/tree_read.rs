// SPDX-License-Identifier: GPL-2.0
//! The shared read path (`crate::tree_read`): lookups, getattr and the
//! block map through `&self` and the cached nodes alone answer what the
//! exclusive calls answer, the running transaction's changes included;
//! where they would need a node the cache lacks or a subvolume not yet
//! opened they say `WouldBlock`; and many threads can run them at once.

mod common;
use common::*;
use ferrofs_core::device::BlockDevice;
use ferrofs_core::error::Error;
use ferrofs_core::file_read::BlockRun;
use ferrofs_core::fs::Filesystem;
use ferrofs_core::mem::TryVec;
use ferrofs_core::subvol::SubvolId;

const SV: SubvolId = SubvolId::DEFAULT;
const BS: u64 = 4096;

fn cached_map(fs: &Filesystem<SimDev>, ino: u64, fb: u64, n: u64) -> Result<(u64, Vec<BlockRun>), Error> {
    let mut out = TryVec::new();
    let m = fs.map_blocks_cached(&mut TryVec::new(), SV, ino, fb, n, &mut out)?;
    Ok((m.size, out.iter().copied().collect()))
}

fn map(fs: &mut Filesystem<SimDev>, ino: u64, fb: u64, n: u64) -> (u64, Vec<BlockRun>) {
    let mut out = TryVec::new();
    let m = fs.map_blocks(SV, ino, fb, n, &mut out).unwrap();
    (m.size, out.iter().copied().collect())
}

/// A directory of `n` files, file `i` with `i % 4 + 1` blocks written at
/// block `i % 3` (so a hole before its data when that is not 0), half
/// committed and half not.
fn populated(n: u64) -> (Filesystem<SimDev>, u64, Vec<u64>) {
    let mut fs = mount(fresh(32 << 20));
    let root = fs.root_ino();
    let dir = fs.mkdir(SV, root, b"d", 0o755, 0, 0, ts(1)).unwrap().ino;
    let mut inos = Vec::new();
    for i in 0..n {
        let name = format!("f{i}");
        let f = fs.create(SV, dir, name.as_bytes(), 0o644, 0, 0, 0, ts(1)).unwrap().ino;
        fs.write(SV, f, (i % 3) * BS, &vec![i as u8; ((i % 4 + 1) * BS) as usize], ts(1)).unwrap();
        inos.push(f);
        if i == n / 2 {
            fs.commit().unwrap();
        }
    }
    (fs, dir, inos)
}

#[test]
fn cached_calls_answer_as_the_exclusive_ones_including_uncommitted_changes() {
    let (mut fs, dir, inos) = populated(40);
    for (i, &f) in inos.iter().enumerate() {
        let name = format!("f{i}");
        let want = fs.lookup_attr(SV, dir, name.as_bytes()).unwrap();
        assert_eq!(fs.lookup_attr_cached(&mut TryVec::new(), SV, dir, name.as_bytes()).unwrap(), want, "lookup of {name}");
        assert_eq!(want.1, f);
        assert_eq!(fs.getattr_cached(&mut TryVec::new(), SV, f).unwrap(), fs.getattr(SV, f).unwrap());
        let want = map(&mut fs, f, 0, 1000);
        assert_eq!(cached_map(&fs, f, 0, 1000).unwrap(), want, "map of {name}");
        // A hole, then the data.
        if i % 3 > 0 {
            assert_eq!(want.1[0].disk, None);
        }
        assert!(want.1.last().unwrap().disk.is_some());
    }
    // readdir, readlink and xattrs (a value of several items), as the
    // exclusive calls give them.
    let list = |fs: &mut Filesystem<SimDev>, cached: bool| {
        let mut names = Vec::new();
        let mut emit = |n: &[u8], ino: u64, _ty, next: u64| {
            names.push((n.to_vec(), ino, next));
            true
        };
        if cached {
            fs.readdir_cached(&mut TryVec::new(), SV, dir, 0, &mut emit).unwrap();
        } else {
            fs.readdir(SV, dir, 0, &mut emit).unwrap();
        }
        names
    };
    let want = list(&mut fs, false);
    assert_eq!(want.len(), inos.len());
    assert_eq!(list(&mut fs, true), want);
    fs.symlink(SV, dir, b"link", b"f1", 0, 0, ts(1)).unwrap();
    let link = fs.lookup(SV, dir, b"link").unwrap();
    assert_eq!(&fs.readlink_cached(&mut TryVec::new(), SV, link).unwrap()[..], b"f1");
    let big = vec![0x5au8; 10000];
    fs.set_xattr(SV, inos[1], b"user.big", &big, 0, ts(1)).unwrap();
    fs.set_xattr(SV, inos[1], b"user.small", b"s", 0, ts(1)).unwrap();
    let mut buf = vec![0u8; 20000];
    assert_eq!(fs.get_xattr_cached(&mut TryVec::new(), SV, inos[1], b"user.big", &mut []).unwrap(), big.len());
    let n = fs.get_xattr_cached(&mut TryVec::new(), SV, inos[1], b"user.big", &mut buf).unwrap();
    assert_eq!(&buf[..n], &big[..]);
    assert!(matches!(fs.get_xattr_cached(&mut TryVec::new(), SV, inos[1], b"user.none", &mut buf), Err(Error::NoData)));
    let n = fs.list_xattr_cached(&mut TryVec::new(), SV, inos[1], &mut buf).unwrap();
    let mut want_list = vec![0u8; 100];
    let m = fs.list_xattr(SV, inos[1], &mut want_list).unwrap();
    assert_eq!(&buf[..n], &want_list[..m]);
    assert_eq!(n, b"user.big\0user.small\0".len());
    // Answers that are errors are answers too.
    assert!(matches!(fs.lookup_attr_cached(&mut TryVec::new(), SV, dir, b"absent"), Err(Error::NotFound)));
    assert!(matches!(fs.lookup_attr_cached(&mut TryVec::new(), SV, inos[0], b"x"), Err(Error::NotDir)));
    assert!(matches!(fs.map_blocks_cached(&mut TryVec::new(), SV, dir, 0, 1, &mut TryVec::new()), Err(Error::IsDir)));
    // An uncommitted unlink and rename show at once.
    fs.unlink(SV, dir, b"f3", ts(2)).unwrap();
    fs.rename(SV, dir, b"f4", dir, b"g4", 0, ts(2)).unwrap();
    assert!(matches!(fs.lookup_attr_cached(&mut TryVec::new(), SV, dir, b"f3"), Err(Error::NotFound)));
    assert!(matches!(fs.lookup_attr_cached(&mut TryVec::new(), SV, dir, b"f4"), Err(Error::NotFound)));
    assert_eq!(fs.lookup_attr_cached(&mut TryVec::new(), SV, dir, b"g4").unwrap().1, inos[4]);
}

#[test]
fn cached_calls_would_block_where_a_node_is_not_cached_and_not_after_the_exclusive_call() {
    let (mut fs, dir, inos) = populated(300);
    fs.commit().unwrap();
    // Drop every clean node: nothing is dirty after the commit.
    fs.shrink_cache(usize::MAX);
    assert_eq!(fs.cached_clean_nodes(), 0);
    let f = inos[250];
    assert!(matches!(fs.lookup_attr_cached(&mut TryVec::new(), SV, dir, b"f250"), Err(Error::WouldBlock)));
    assert!(matches!(fs.getattr_cached(&mut TryVec::new(), SV, f), Err(Error::WouldBlock)));
    assert!(matches!(cached_map(&fs, f, 0, 1000), Err(Error::WouldBlock)));
    let reads = fs.stats().meta_reads;
    // The shared calls read nothing.
    assert_eq!(fs.stats().meta_reads, reads);
    let want = fs.lookup_attr(SV, dir, b"f250").unwrap();
    assert!(fs.stats().meta_reads > reads);
    assert_eq!(fs.lookup_attr_cached(&mut TryVec::new(), SV, dir, b"f250").unwrap(), want);
    // A shared walk names what it lacks: reading those nodes (as the
    // kernel does, without a lock) and inserting them, round after round,
    // answers without the exclusive call.
    fs.shrink_cache(usize::MAX);
    let mut wants = TryVec::new();
    let mut rounds = 0;
    let got = loop {
        match fs.lookup_attr_cached(&mut wants, SV, dir, b"f17") {
            Err(Error::WouldBlock) => {}
            r => break r.unwrap(),
        }
        rounds += 1;
        assert!(rounds < 10, "no answer after {rounds} rounds");
        assert!(!wants.is_empty());
        let mut data = vec![0u8; wants.len() * BS as usize];
        for (w, piece) in wants.iter().zip(data.chunks_mut(BS as usize)) {
            fs.device().read(w.blk * BS, piece).unwrap();
        }
        fs.insert_read_nodes(&wants, &data).unwrap();
    };
    assert!(rounds >= 2, "a cold lookup wants the tree's levels: {rounds} rounds");
    assert_eq!(got.1, inos[17]);
    assert_eq!(got, fs.lookup_attr(SV, dir, b"f17").unwrap());
    let want = map(&mut fs, f, 0, 1000);
    assert_eq!(cached_map(&fs, f, 0, 1000).unwrap(), want);
}

#[test]
fn a_subvolume_not_opened_since_mount_would_block_until_the_exclusive_call_opens_it() {
    let mut fs = mount(fresh(32 << 20));
    let root = fs.root_ino();
    let f = fs.create(SV, root, b"inner", 0o644, 0, 0, 0, ts(1)).unwrap().ino;
    // A read-only snapshot: a mount opens only the writable subvolumes
    // (for their orphans).
    let snap = fs.snapshot(SV, SV, root, b"snap", true, [7; 16], ts(1)).unwrap();
    fs.commit().unwrap();
    let mut fs = mount(fs.unmount().unwrap());
    // Through the parent, the name leads to the snapshot's root.
    assert_eq!(fs.lookup_attr_cached(&mut TryVec::new(), SV, root, b"snap").unwrap(), (snap, root, None));
    let r = fs.lookup_attr_cached(&mut TryVec::new(), snap, root, b"inner");
    assert!(matches!(r, Err(Error::WouldBlock)), "{r:?}");
    assert!(matches!(fs.getattr_cached(&mut TryVec::new(), snap, root), Err(Error::WouldBlock)));
    assert_eq!(fs.lookup_attr(snap, root, b"inner").unwrap().1, f);
    assert_eq!(fs.lookup_attr_cached(&mut TryVec::new(), snap, root, b"inner").unwrap().1, f);
}

#[test]
fn many_threads_read_one_filesystem_at_once() {
    let (mut fs, dir, inos) = populated(64);
    let want: Vec<_> = (0..inos.len()).map(|i| fs.lookup_attr(SV, dir, format!("f{i}").as_bytes()).unwrap()).collect();
    let maps: Vec<_> = inos.iter().map(|&f| map(&mut fs, f, 0, 1000)).collect();
    let fs = &fs;
    std::thread::scope(|s| {
        for t in 0..4 {
            let (want, maps, inos) = (&want, &maps, &inos);
            s.spawn(move || {
                for round in 0..200 {
                    let i = (round * 7 + t * 13) % inos.len();
                    assert_eq!(fs.lookup_attr_cached(&mut TryVec::new(), SV, dir, format!("f{i}").as_bytes()).unwrap(), want[i]);
                    assert_eq!(cached_map(fs, inos[i], 0, 1000).unwrap(), maps[i]);
                }
            });
        }
    });
}

#[test]
fn shared_walks_leave_fingers_that_later_calls_use() {
    let (mut fs, dir, inos) = populated(300);
    // A commit ends every finger.
    fs.commit().unwrap();
    let f = inos[123];
    assert_eq!(fs.lookup_attr_cached(&mut TryVec::new(), SV, dir, b"f123").unwrap().1, f);
    // The walk above reached the inode's leaf and noted it: the locked
    // read of that inode goes straight there.
    let hits = fs.stats().finger_hits;
    fs.getattr(SV, f).unwrap();
    assert!(fs.stats().finger_hits > hits, "no finger from the shared walk");
    // Fingers stay true across changes: after creates and unlinks that
    // split and copy leaves, shared and locked lookups still agree.
    for i in 0..300u64 {
        fs.create(SV, dir, format!("n{i}").as_bytes(), 0o644, 0, 0, 0, ts(2)).unwrap();
        if i % 3 == 0 {
            fs.unlink(SV, dir, format!("f{i}").as_bytes(), ts(2)).unwrap();
        }
        let probe = format!("f{}", (i * 7) % 300);
        let cached = fs.lookup_attr_cached(&mut TryVec::new(), SV, dir, probe.as_bytes()).map(|r| r.1);
        let locked = fs.lookup_attr(SV, dir, probe.as_bytes()).map(|r| r.1);
        assert_eq!(format!("{cached:?}"), format!("{locked:?}"), "{probe} after {i}");
    }
}

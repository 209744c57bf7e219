// SPDX-License-Identifier: GPL-2.0
//! The orphan list's entries held in memory until a commit
//! (`ferrofs_core::pending_orphans`): an unlink whose inode is evicted
//! before the next commit never touches the orphan items, one still
//! unlinked and unfreed at a commit is in the committed orphan list (so a
//! crash after it frees it at the next mount), and snapshots, read-only
//! subvolumes, relinking and overflow past the in-memory entries keep the
//! list exact.

mod common;
use common::*;
use ferrofs_core::btree::{Cursor, Dir};
use ferrofs_core::error::Error;
use ferrofs_core::format::{Key, ORPHAN_KEY, ORPHAN_OBJECTID};
use ferrofs_core::fs::{Filesystem, MountOptions};
use ferrofs_core::pending_orphans::PENDING_ORPHANS_MAX;
use ferrofs_core::subvol::SubvolId;

const SV: SubvolId = SubvolId::DEFAULT;

/// The orphan items in the tree of subvolume `sv` as it is now (committed
/// or not).
fn orphan_items(fs: &mut Filesystem<SimDev>, sv: SubvolId) -> Vec<u64> {
    // Any read enters the subvolume, so the raw tree is its.
    fs.getattr(sv, fs.root_ino()).unwrap();
    let (s, root) = fs.raw_fs_tree();
    let root = *root;
    let mut c = Cursor::new(Key::new(ORPHAN_OBJECTID, ORPHAN_KEY, 0), Dir::Forward);
    let mut out = Vec::new();
    while let Some((k, _)) = c.next(s, &root).unwrap() {
        if k.objectid != ORPHAN_OBJECTID || k.ty != ORPHAN_KEY {
            break;
        }
        out.push(k.offset);
    }
    out
}

/// Makes `n` files of `len` bytes in the root directory, committed.
fn files(fs: &mut Filesystem<SimDev>, sv: SubvolId, n: usize, len: usize) -> Vec<u64> {
    let root = fs.root_ino();
    let inos: Vec<u64> = (0..n)
        .map(|i| {
            let ino = fs.create(sv, root, format!("f{i}").as_bytes(), 0o644, 0, 0, 0, ts(1)).unwrap().ino;
            fs.write(sv, ino, 0, &vec![i as u8; len], ts(1)).unwrap();
            ino
        })
        .collect();
    fs.commit().unwrap();
    inos
}

#[test]
fn unlink_then_evict_never_touches_the_orphan_items() {
    let mut fs = mount(fresh(32 << 20));
    let root = fs.root_ino();
    let inos = files(&mut fs, SV, 5, 9000);
    let free = fs.statfs().free_blocks;
    for (i, &ino) in inos.iter().enumerate() {
        fs.unlink(SV, root, format!("f{i}").as_bytes(), ts(2)).unwrap();
        assert_eq!(fs.getattr(SV, ino).unwrap().nlink, 0);
        // On the list, but not as an item in the tree.
        assert_eq!(orphan_items(&mut fs, SV), Vec::<u64>::new(), "unlink of f{i}");
        fs.evict(SV, ino).unwrap();
        assert_eq!(fs.getattr(SV, ino), Err(Error::NotFound));
    }
    fs.commit().unwrap();
    assert_eq!(orphan_items(&mut fs, SV), Vec::<u64>::new());
    assert!(fs.statfs().free_blocks >= free + 5 * 3, "the files' blocks came back");
    assert_check_clean(&mut fs, "after unlinks and evicts");
}

#[test]
fn open_unlinked_files_at_a_commit_are_freed_after_a_crash() {
    // More than the in-memory entries: the rest go to the tree at once.
    let n = PENDING_ORPHANS_MAX + 5;
    let mut fs = mount(fresh(32 << 20));
    let root = fs.root_ino();
    let inos = files(&mut fs, SV, n, 20_000);
    let free = fs.statfs().free_blocks;
    for i in 0..n {
        fs.unlink(SV, root, format!("f{i}").as_bytes(), ts(2)).unwrap();
    }
    let mut early = orphan_items(&mut fs, SV);
    early.sort_unstable();
    assert_eq!(early, inos[PENDING_ORPHANS_MAX..].to_vec(), "the overflow is in the tree at once");
    // Still open at the commit: every one is in the committed list.
    fs.commit().unwrap();
    let mut listed = orphan_items(&mut fs, SV);
    listed.sort_unstable();
    assert_eq!(listed, inos);
    assert_check_clean(&mut fs, "open unlinked files committed");
    let crashed = fs.device().crash_drop_all();
    let mut r = Filesystem::mount_with(crashed.clone(), MountOptions { read_only: true, ..Default::default() }).unwrap();
    for &ino in &inos {
        assert_eq!(r.getattr(SV, ino).unwrap().nlink, 0);
    }
    let mut fs = mount(crashed);
    for &ino in &inos {
        assert_eq!(fs.getattr(SV, ino), Err(Error::NotFound));
    }
    assert!(fs.statfs().free_blocks >= free + n as u64 * 5, "reclaimed at mount");
    assert_eq!(orphan_items(&mut fs, SV), Vec::<u64>::new());
    assert_check_clean(&mut fs, "after reclaim");
}

#[test]
fn evict_after_the_commit_takes_the_item_out_of_the_tree() {
    let mut fs = mount(fresh(32 << 20));
    let root = fs.root_ino();
    let inos = files(&mut fs, SV, 3, 5000);
    fs.unlink(SV, root, b"f1", ts(2)).unwrap();
    fs.commit().unwrap();
    assert_eq!(orphan_items(&mut fs, SV), vec![inos[1]]);
    fs.evict(SV, inos[1]).unwrap();
    assert_eq!(orphan_items(&mut fs, SV), Vec::<u64>::new());
    fs.commit().unwrap();
    assert_check_clean(&mut fs, "evicted after the commit");
    // Nothing is left to reclaim after a crash.
    let mut fs = mount(fs.device().crash_drop_all());
    assert_eq!(fs.getattr(SV, inos[0]).unwrap().nlink, 1);
    assert_eq!(fs.getattr(SV, inos[1]), Err(Error::NotFound));
    assert_check_clean(&mut fs, "after a crash");
}

#[test]
fn relinked_before_the_commit_is_off_the_list() {
    let mut fs = mount(fresh(32 << 20));
    let root = fs.root_ino();
    let inos = files(&mut fs, SV, 2, 5000);
    fs.unlink(SV, root, b"f0", ts(2)).unwrap();
    assert_eq!(fs.link(SV, inos[0], root, b"again", ts(3)).unwrap().nlink, 1);
    fs.evict(SV, inos[0]).unwrap();
    fs.commit().unwrap();
    assert_eq!(orphan_items(&mut fs, SV), Vec::<u64>::new());
    assert_eq!(fs.lookup(SV, root, b"again").unwrap(), inos[0]);
    assert_check_clean(&mut fs, "relinked");
    // A rename over a name drops its inode's last link the same way.
    fs.rename(SV, root, b"again", root, b"f1", 0, ts(4)).unwrap();
    fs.commit().unwrap();
    assert_eq!(orphan_items(&mut fs, SV), vec![inos[1]]);
    fs.evict(SV, inos[1]).unwrap();
    fs.commit().unwrap();
    assert_eq!(orphan_items(&mut fs, SV), Vec::<u64>::new());
    assert_check_clean(&mut fs, "renamed over");
}

#[test]
fn snapshots_and_read_only_subvolumes_get_their_orphan_items() {
    let mut fs = mount(fresh(64 << 20));
    let root = fs.root_ino();
    let sub = fs.create_subvolume(SV, root, b"sub", [3; 16], 0, 0, ts(1)).unwrap();
    let in_sv = files(&mut fs, SV, 2, 5000);
    let in_sub = files(&mut fs, sub, 2, 5000);
    fs.unlink(SV, root, b"f0", ts(2)).unwrap();
    fs.unlink(sub, root, b"f1", ts(2)).unwrap();
    // The snapshot commits first: it has the open unlinked file listed.
    let snap = fs.snapshot(SV, SV, root, b"snap", true, [4; 16], ts(3)).unwrap();
    assert_eq!(orphan_items(&mut fs, snap), vec![in_sv[0]]);
    assert_eq!(orphan_items(&mut fs, sub), vec![in_sub[1]]);
    fs.unlink(sub, root, b"f0", ts(4)).unwrap();
    // Read-only from here: its list is complete before the flag is set.
    fs.set_subvolume_read_only(sub, true).unwrap();
    let mut listed = orphan_items(&mut fs, sub);
    listed.sort_unstable();
    assert_eq!(listed, in_sub);
    fs.commit().unwrap();
    assert_check_clean(&mut fs, "snapshot and read-only subvolume");
}

// SPDX-License-Identifier: GPL-2.0
//! Inodes without names and the filesystem's own states: tmpfiles (freed
//! at evict or at the next mount, kept once linked), remounting read-only
//! and back, and abort (nothing more reaches the device).

mod common;
use ferrofs_core::subvol::SubvolId;
const SV: SubvolId = SubvolId::DEFAULT;
use common::*;
use ferrofs_core::btree;
use ferrofs_core::device::BlockDevice;
use ferrofs_core::error::Error;
use ferrofs_core::format::{Key, ORPHAN_KEY, ORPHAN_OBJECTID};
use ferrofs_core::fs::{Filesystem, MountOptions};

fn ro() -> MountOptions {
    MountOptions { read_only: true, ..Default::default() }
}

#[test]
fn tmpfile_is_freed_at_evict() {
    let mut fs = mount(fresh(16 << 20));
    fs.commit().unwrap();
    let free = fs.statfs().free_blocks;
    let t = fs.tmpfile(SV, 0o640, 3, 4, ts(5)).unwrap();
    assert_eq!((t.mode, t.nlink, t.uid, t.gid, t.size, t.ctime), (0o100640, 0, 3, 4, 0, ts(5)));
    assert_eq!(fs.write(SV, t.ino, 0, &[1u8; 50_000], ts(6)).unwrap(), 50_000);
    assert_eq!(fs.getattr(SV, t.ino).unwrap().nlink, 0);
    // Nameless and on the orphan list: consistent.
    assert_check_clean(&mut fs, "open tmpfile");
    fs.evict(SV, t.ino).unwrap();
    assert_eq!(fs.getattr(SV, t.ino), Err(Error::NotFound));
    fs.commit().unwrap();
    assert_check_clean(&mut fs, "after evict");
    assert_eq!(fs.statfs().free_blocks, free);
    assert!(matches!(fs.tmpfile(SV, 0o40755, 0, 0, ts(7)), Err(Error::Invalid(_))));
    assert!(matches!(fs.tmpfile(SV, 0o20644, 0, 0, ts(7)), Err(Error::Invalid(_))));
    assert_eq!(fs.tmpfile(SV, 0o100600, 0, 0, ts(7)).unwrap().mode, 0o100600);
}

#[test]
fn tmpfile_open_at_a_crash_is_freed_at_mount() {
    let mut fs = mount(fresh(16 << 20));
    fs.commit().unwrap();
    let free = fs.statfs().free_blocks;
    let t = fs.tmpfile(SV, 0o600, 0, 0, ts(1)).unwrap().ino;
    fs.write(SV, t, 0, &[2u8; 70_000], ts(1)).unwrap();
    fs.commit().unwrap();
    let crashed = fs.device().crash_drop_all();
    // A read-only mount leaves it; a read-write one frees it.
    let mut r = Filesystem::mount_with(crashed.clone(), ro()).unwrap();
    assert_eq!(r.getattr(SV, t).unwrap().size, 70_000);
    let mut fs = mount(crashed);
    assert_eq!(fs.getattr(SV, t), Err(Error::NotFound));
    assert_check_clean(&mut fs, "after mount");
    assert_eq!(fs.statfs().free_blocks, free);
}

#[test]
fn linked_tmpfile_survives_evict_and_mount() {
    let mut fs = mount(fresh(16 << 20));
    let root = fs.root_ino();
    let t = fs.tmpfile(SV, 0o644, 0, 0, ts(1)).unwrap().ino;
    fs.write(SV, t, 0, b"kept", ts(1)).unwrap();
    // The orphan item is committed before the name comes.
    fs.commit().unwrap();
    let a = fs.link(SV, t, root, b"named", ts(2)).unwrap();
    assert_eq!((a.nlink, a.ctime), (1, ts(2)));
    fs.evict(SV, t).unwrap();
    assert_eq!(fs.getattr(SV, t).unwrap().nlink, 1);
    assert_check_clean(&mut fs, "linked tmpfile");
    // A crash before that commit: the name is lost and the inode freed.
    let before_link = {
        let mut f2 = mount(fresh(16 << 20));
        let t2 = f2.tmpfile(SV, 0o644, 0, 0, ts(1)).unwrap().ino;
        f2.commit().unwrap();
        f2.link(SV, t2, root, b"named", ts(2)).unwrap();
        let mut m = mount(f2.device().crash_drop_all());
        assert_eq!(m.getattr(SV, t2), Err(Error::NotFound));
        assert_check_clean(&mut m, "crash before the link's commit");
        m.lookup(SV, root, b"named")
    };
    assert_eq!(before_link, Err(Error::NotFound));
    // After it: kept, also through a crash.
    fs.commit().unwrap();
    let mut m = mount(fs.device().crash_drop_all());
    assert_eq!(m.lookup(SV, root, b"named").unwrap(), t);
    let mut buf = [0u8; 4];
    assert_eq!(m.read(SV, t, 0, &mut buf).unwrap(), 4);
    assert_eq!(&buf, b"kept");
    assert_check_clean(&mut m, "linked tmpfile after a crash");
    let mut fs = mount(fs.unmount().unwrap());
    assert_eq!(fs.getattr(SV, t).unwrap().nlink, 1);
    assert_check_clean(&mut fs, "linked tmpfile after remount");
}

#[test]
fn link_at_zero_links_without_orphan_item_does_not_abort() {
    let mut fs = mount(fresh(16 << 20));
    let root = fs.root_ino();
    let t = fs.tmpfile(SV, 0o644, 0, 0, ts(1)).unwrap().ino;
    {
        let (s, tree) = fs.raw_fs_tree();
        btree::delete(s, tree, &Key::new(ORPHAN_OBJECTID, ORPHAN_KEY, t)).unwrap();
    }
    assert_eq!(fs.link(SV, t, root, b"x", ts(2)).unwrap().nlink, 1);
    assert_eq!(fs.aborted(), None);
    assert_check_clean(&mut fs, "linked without an orphan item");
}

#[test]
fn read_only_and_back() {
    let mut fs = mount(fresh(16 << 20));
    let root = fs.root_ino();
    let f = fs.create(SV, root, b"f", 0o644, 0, 0, 0, ts(1)).unwrap().ino;
    fs.write(SV, f, 0, b"pending", ts(1)).unwrap();
    let gen = fs.superblock().generation;
    fs.set_read_only(true).unwrap();
    // The pending change was committed on the way.
    assert_eq!(fs.superblock().generation, gen + 1);
    assert!(!fs.is_writable());
    let writes = fs.device().writes;
    assert_eq!(fs.create(SV, root, b"g", 0o644, 0, 0, 0, ts(2)).unwrap_err(), Error::ReadOnly);
    assert_eq!(fs.write(SV, f, 0, b"x", ts(2)).unwrap_err(), Error::ReadOnly);
    assert_eq!(fs.fallocate(SV, f, 0, 10, false, ts(2)).unwrap_err(), Error::ReadOnly);
    assert_eq!(fs.tmpfile(SV, 0o600, 0, 0, ts(2)).unwrap_err(), Error::ReadOnly);
    assert_eq!(fs.commit(), Err(Error::ReadOnly));
    let mut buf = [0u8; 7];
    assert_eq!(fs.read(SV, f, 0, &mut buf).unwrap(), 7);
    assert_eq!(&buf, b"pending");
    fs.set_read_only(true).unwrap();
    assert_eq!(fs.device().writes, writes);
    fs.set_read_only(false).unwrap();
    assert!(fs.is_writable());
    fs.write(SV, f, 0, b"P", ts(3)).unwrap();
    let mut fs = mount(fs.unmount().unwrap());
    assert_eq!(fs.read(SV, f, 0, &mut buf).unwrap(), 7);
    assert_eq!(&buf, b"Pending");
    assert_check_clean(&mut fs, "after read-only round trip");
}

#[test]
fn read_write_again_reclaims_orphans() {
    let mut fs = mount(fresh(16 << 20));
    let root = fs.root_ino();
    let f = fs.create(SV, root, b"f", 0o644, 0, 0, 0, ts(1)).unwrap().ino;
    fs.write(SV, f, 0, &[5u8; 30_000], ts(1)).unwrap();
    fs.commit().unwrap();
    let free = fs.statfs().free_blocks;
    // Unlinked while open, then the power goes.
    fs.unlink(SV, root, b"f", ts(2)).unwrap();
    fs.commit().unwrap();
    let mut fs = Filesystem::mount_with(fs.device().crash_drop_all(), ro()).unwrap();
    assert_eq!(fs.getattr(SV, f).unwrap().nlink, 0);
    fs.set_read_only(false).unwrap();
    assert_eq!(fs.getattr(SV, f), Err(Error::NotFound));
    assert!(fs.statfs().free_blocks >= free + 7);
    assert_check_clean(&mut fs, "orphans reclaimed at read-write remount");
}

#[test]
fn read_write_is_refused_after_abort_or_for_ro_compat_features() {
    let mut fs = mount(fresh(16 << 20));
    fs.set_read_only(true).unwrap();
    fs.abort(Error::Io);
    assert_eq!(fs.set_read_only(false), Err(Error::ReadOnly));
    assert!(!fs.is_writable());

    let mut dev = fresh(16 << 20);
    let mut sb = ferrofs_core::superblock::read_superblock(&mut dev).unwrap();
    sb.ro_compat |= 1 << 40;
    ferrofs_core::superblock::write_superblock(&mut dev, &sb).unwrap();
    assert!(matches!(Filesystem::mount(dev.clone()), Err(Error::ReadOnly)));
    let mut fs = Filesystem::mount_with(dev, ro()).unwrap();
    assert_eq!(fs.set_read_only(false), Err(Error::ReadOnly));
    assert!(!fs.is_writable());
    let root = fs.root_ino();
    assert_eq!(fs.create(SV, root, b"g", 0o644, 0, 0, 0, ts(2)).unwrap_err(), Error::ReadOnly);
}

#[test]
fn abort_stops_every_write_to_the_device() {
    let mut fs = mount(fresh(16 << 20));
    let root = fs.root_ino();
    let f = fs.create(SV, root, b"kept", 0o644, 0, 0, 0, ts(1)).unwrap().ino;
    fs.write(SV, f, 0, &[1u8; 20_000], ts(1)).unwrap();
    fs.commit().unwrap();
    let committed = visible(&mut mount(fs.device().crash_drop_all()));
    // Uncommitted work, then the shutdown.
    let g = fs.create(SV, root, b"lost", 0o644, 0, 0, 0, ts(2)).unwrap().ino;
    fs.write(SV, g, 0, &[2u8; 9000], ts(2)).unwrap();
    fs.write(SV, f, 0, b"changed", ts(2)).unwrap();
    let t = fs.tmpfile(SV, 0o600, 0, 0, ts(2)).unwrap().ino;
    let (writes, flushes, fua) = (fs.device().writes, fs.device().flushes, fs.device().fua_writes);
    fs.abort(Error::Io);
    fs.abort(Error::corrupt("second reason"));
    assert_eq!(fs.aborted(), Some(Error::Io));
    assert!(!fs.is_writable());
    // Every change and commit is refused...
    assert_eq!(fs.create(SV, root, b"x", 0o644, 0, 0, 0, ts(3)).unwrap_err(), Error::ReadOnly);
    assert_eq!(fs.write(SV, f, 0, b"y", ts(3)).unwrap_err(), Error::ReadOnly);
    assert_eq!(fs.write_data(SV, f, 0, b"y").unwrap_err(), Error::ReadOnly);
    assert_eq!(fs.truncate(SV, f, 0, ts(3)).unwrap_err(), Error::ReadOnly);
    assert_eq!(fs.fallocate(SV, f, 0, 1 << 20, false, ts(3)).unwrap_err(), Error::ReadOnly);
    assert_eq!(fs.punch_hole(SV, f, 0, 100, ts(3)).unwrap_err(), Error::ReadOnly);
    assert_eq!(fs.unlink(SV, root, b"kept", ts(3)).unwrap_err(), Error::ReadOnly);
    assert_eq!(fs.set_xattr(SV, f, b"user.a", b"v", 0, ts(3)).unwrap_err(), Error::ReadOnly);
    assert_eq!(fs.evict(SV, t).unwrap_err(), Error::ReadOnly);
    assert_eq!(fs.commit(), Err(Error::ReadOnly));
    assert_eq!(fs.set_read_only(true), Ok(()));
    // ...reads keep working on what is in memory...
    let mut buf = [0u8; 7];
    assert_eq!(fs.read(SV, f, 0, &mut buf).unwrap(), 7);
    assert_eq!(&buf, b"changed");
    assert_eq!(fs.lookup(SV, root, b"lost").unwrap(), g);
    assert_eq!(fs.seek_data(SV, g, 0).unwrap(), Some(0));
    // ...and nothing more reaches the device, unmount included.
    let dev = fs.unmount().unwrap();
    assert_eq!((dev.writes, dev.flushes, dev.fua_writes), (writes, flushes, fua));
    // The last commit is what the device holds (the data written for the
    // lost changes went to blocks it counts as free).
    let mut fs = mount(dev.crash_drop_all());
    assert_eq!(visible(&mut fs), committed);
    assert_check_clean(&mut fs, "after abort");
    let mut fs = mount(dev);
    assert_eq!(visible(&mut fs), committed);
    assert_check_clean(&mut fs, "after abort, unflushed writes kept");
}

/// A commit flushes twice: once before superblock copy 0 (FUA, a write and
/// a flush on a device without FUA) and none for copy 1, which the next
/// commit's first flush makes durable. When a crash tears copy 0 in the
/// middle of a commit, copy 1 then holds the commit before it, whole.
#[test]
fn commit_flushes_twice_and_copy1_covers_a_torn_copy0() {
    const STEPS: usize = 3;
    // The workload up to the start of commit `upto`, then that commit.
    let run = |upto: usize, cut: Option<u64>| {
        let mut fs = mount(fresh(16 << 20));
        let root = fs.root_ino();
        let mut states = Vec::new();
        for i in 0..upto {
            let f = fs.create(SV, root, format!("f{i}").as_bytes(), 0o644, 0, 0, 0, ts(1)).unwrap().ino;
            fs.write(SV, f, 0, &[i as u8; 5000], ts(1)).unwrap();
            if i + 1 == upto {
                fs.device().cut_after = cut;
            }
            let before = (fs.device().flushes, fs.device().fua_writes);
            if fs.commit().is_err() {
                break;
            }
            assert_eq!(
                (fs.device().flushes - before.0, fs.device().fua_writes - before.1),
                (1, 1),
                "one flush and one FUA write (copy 0) per commit"
            );
            states.push(visible(&mut mount(fs.device().crash_drop_all())));
        }
        (fs, states)
    };
    let (mut fs, states) = run(STEPS, None);
    // The last commit's copy 1 is the last write; copy 0 the one before.
    let total = fs.device().writes;
    let dev = fs.unmount().unwrap();
    assert_eq!(visible(&mut mount(dev.crash_drop_all())), states[STEPS - 1]);
    // Power cut as copy 0 of the last commit is written, which tears it.
    let (mut fs, _) = run(STEPS, Some(total - 2));
    let mut image = fs.device().crash_drop_all();
    let off = ferrofs_core::superblock::SUPERBLOCK_OFFSETS[0];
    let mut torn = vec![0u8; ferrofs_core::superblock::SUPERBLOCK_SIZE];
    image.read(off, &mut torn).unwrap();
    torn[100..200].fill(0xa5);
    image.write(off, &torn, true).unwrap();
    let mut fs = mount(image);
    assert_eq!(visible(&mut fs), states[STEPS - 2], "copy 1 holds the commit before the torn one");
    assert_check_clean(&mut fs, "mounted from copy 1");
}

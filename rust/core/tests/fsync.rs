// SPDX-License-Identifier: GPL-2.0
//! fsync through the fast-commit tier: which fsyncs it serves and why the
//! others fall to a full commit, one flush per record, the record codec
//! against damage, and crash enumeration: a seeded workload of writes,
//! attribute changes and namespace changes, each followed by fsync, is cut
//! after every single write; the disk keeps none, all or a random subset
//! of the unflushed writes; the mount replays the records. Every path must
//! then show the state of its last completed sync point (an fsync that
//! covered it, or a commit) or of one in flight, fsck must be clean, and a
//! second mount must show the same.

mod common;
use common::sync_points::{check_image, replay_cut_at_every_write, SyncPoint};
use common::*;
use ferrofs_core::fast_commit::{FsyncTier, Ineligible, NewName, Record, Run, RECORD_BASE};
use ferrofs_core::format::{InodeItem, NAME_MAX};
use ferrofs_core::fs::{Filesystem, SetAttr};
use ferrofs_core::subvol::SubvolId;
use std::collections::BTreeMap;

const SV: SubvolId = SubvolId::DEFAULT;
const FILES: usize = 4;

/// `visible`'s key of file `i` (paths end in a slash there).
fn path(i: usize) -> String {
    format!("/f{i}/")
}

/// The workload: FILES committed files, then `steps` seeded operations,
/// each followed by an fsync (or a commit). Stops at the first error (the
/// power cut). Returns the sync points and the tiers the fsyncs took.
fn workload(fs: &mut Filesystem<SimDev>, seed: u64, steps: usize) -> (Vec<SyncPoint>, Vec<FsyncTier>) {
    let mut rng = Rng(seed);
    let root = fs.root_ino();
    let mut inos = Vec::new();
    let mut points = Vec::new();
    let mut tiers = Vec::new();
    let mut sizes = [0u64; FILES];
    // Every path this workload ever made, and the inode behind it.
    let mut names: BTreeMap<String, usize> = BTreeMap::new();
    for (i, size) in sizes.iter_mut().enumerate() {
        let a = fs.create(SV, root, format!("f{i}").as_bytes(), 0o644, 0, 0, 0, ts(1)).unwrap();
        let len = 1000 + 3000 * i;
        fs.write(SV, a.ino, 0, &vec![i as u8 + 1; len], ts(1)).unwrap();
        *size = len as u64;
        inos.push(a.ino);
        names.insert(path(i), i);
    }
    let snapshot = |fs: &mut Filesystem<SimDev>, names: &BTreeMap<String, usize>, only: Option<usize>| {
        let v = visible(fs);
        let states: BTreeMap<String, Option<String>> =
            names.iter().filter(|(_, &i)| only.is_none_or(|o| o == i)).map(|(p, _)| (p.clone(), v.get(p).cloned())).collect();
        // Nothing here removes a name: every one is there to compare.
        assert!(states.values().all(Option::is_some), "{states:?} against {v:?}");
        states
    };
    let w0 = fs.device().writes;
    if fs.commit().is_err() {
        return (points, tiers);
    }
    points.push(SyncPoint { w0, w1: fs.device().writes, states: snapshot(fs, &names, None) });
    let mut link_no = 0;
    // New files are not picked for the other operations (only the first
    // FILES are): they only get their creating fsync.
    let mut sizes_new: Vec<u64> = Vec::new();
    for step in 0..steps {
        let i = rng.below(FILES as u64) as usize;
        let ino = inos[i];
        let t = ts(10 + step as i64);
        let r = match rng.below(14) {
            // Appends, overwrites and growth: what a record expresses.
            0..=3 => {
                let len = 1 + rng.below(9000) as usize;
                let at = sizes[i];
                sizes[i] += len as u64;
                fs.write(SV, ino, at, &vec![rng.below(250) as u8 + 1; len], t).map(drop)
            }
            4 | 5 => {
                let at = rng.below(sizes[i].max(1));
                let len = 1 + rng.below(6000) as usize;
                sizes[i] = sizes[i].max(at + len as u64);
                fs.write(SV, ino, at, &vec![rng.below(250) as u8 + 1; len], t).map(drop)
            }
            6 => fs.setattr(SV, ino, &SetAttr { mode: Some(0o600 + rng.below(0o100) as u32), ..Default::default() }, t).map(drop),
            7 => {
                sizes[i] += rng.below(20000);
                fs.setattr(SV, ino, &SetAttr { size: Some(sizes[i]), ..Default::default() }, t).map(drop)
            }
            // What it does not: a full commit serves the fsync.
            8 => {
                sizes[i] /= 2;
                fs.setattr(SV, ino, &SetAttr { size: Some(sizes[i]), ..Default::default() }, t).map(drop)
            }
            9 => {
                link_no += 1;
                let name = format!("l{link_no}");
                let r = fs.link(SV, ino, root, name.as_bytes(), t).map(drop);
                if r.is_ok() {
                    names.insert(format!("/{name}/"), i);
                }
                r
            }
            10 => fs.set_xattr(SV, ino, b"user.k", &[step as u8; 10], 0, t),
            // A new file with data: its name goes in the record.
            11 | 12 => {
                link_no += 1;
                let name = format!("n{link_no}");
                let r = fs.create(SV, root, name.as_bytes(), 0o644, 0, 0, 0, t);
                let Ok(a) = r else { break };
                if fs.write(SV, a.ino, 0, &vec![link_no as u8; 1 + rng.below(7000) as usize], t).is_err() {
                    break;
                }
                inos.push(a.ino);
                sizes_new.push(0);
                names.insert(format!("/{name}/"), inos.len() - 1);
                let w0 = fs.device().writes;
                let Ok(tier) = fs.fsync(SV, a.ino) else { break };
                tiers.push(tier);
                let only = if matches!(tier, FsyncTier::FastCommit | FsyncTier::TreeLog) { Some(inos.len() - 1) } else { None };
                points.push(SyncPoint { w0, w1: fs.device().writes, states: snapshot(fs, &names, only) });
                continue;
            }
            _ => {
                let w0 = fs.device().writes;
                if fs.commit().is_err() {
                    break;
                }
                points.push(SyncPoint { w0, w1: fs.device().writes, states: snapshot(fs, &names, None) });
                continue;
            }
        };
        if r.is_err() {
            break;
        }
        let w0 = fs.device().writes;
        let gen = fs.superblock().generation;
        let tier = match fs.fsync(SV, ino) {
            Ok(t) => t,
            Err(_) => break,
        };
        assert_eq!(
            fs.superblock().generation == gen,
            matches!(tier, FsyncTier::FastCommit | FsyncTier::TreeLog | FsyncTier::Clean),
            "only a full commit commits"
        );
        tiers.push(tier);
        let only = if matches!(tier, FsyncTier::FastCommit | FsyncTier::TreeLog) { Some(i) } else { None };
        points.push(SyncPoint { w0, w1: fs.device().writes, states: snapshot(fs, &names, only) });
    }
    (points, tiers)
}

fn run(seed: u64, steps: usize, cut: Option<u64>) -> (Filesystem<SimDev>, Vec<SyncPoint>, Vec<FsyncTier>) {
    let mut fs = mount(fresh(32 << 20));
    fs.device().cut_after = cut;
    let (points, tiers) = workload(&mut fs, seed, steps);
    (fs, points, tiers)
}

#[test]
fn fsync_tiers_and_one_flush_per_record() {
    let mut fs = mount(fresh(32 << 20));
    let root = fs.root_ino();
    let f = fs.create(SV, root, b"f", 0o644, 0, 0, 0, ts(1)).unwrap().ino;
    assert_eq!(fs.fsync(SV, f).unwrap(), FsyncTier::FastCommit, "a new file's one name goes in the record");
    // Its name is durable: replayed after a crash.
    assert!(visible(&mut mount(fs.device().crash_drop_all())).contains_key("/f/"));
    fs.commit().unwrap();
    assert_eq!(fs.fsync(SV, f).unwrap(), FsyncTier::Clean);
    // Not in a directory that lost an entry since the last commit (its
    // freed slots may be taken again), nor with a second name.
    let unlink_committed = |fs: &mut Filesystem<SimDev>, name: &[u8]| {
        let gone = fs.create(SV, root, name, 0o644, 0, 0, 0, ts(1)).unwrap().ino;
        fs.commit().unwrap();
        fs.unlink(SV, root, name, ts(1)).unwrap();
        fs.evict(SV, gone).unwrap();
    };
    // While that removal is not durable, a record of a new file beside it
    // would bring the removed file back with the new one: the directory's
    // records go first, with the same one flush.
    unlink_committed(&mut fs, b"gone");
    let early = fs.create(SV, root, b"early", 0o644, 0, 0, 0, ts(1)).unwrap().ino;
    let (along, fl) = (fs.fast_commit_stats().related_dirs_logged, fs.device().flushes);
    assert_eq!(fs.fsync(SV, early).unwrap(), FsyncTier::TreeLog);
    assert_eq!((fs.fast_commit_stats().related_dirs_logged - along, fs.device().flushes - fl), (1, 1));
    let t = visible(&mut mount(fs.device().crash_drop_all()));
    assert!(t.contains_key("/early/") && !t.contains_key("/gone/"), "{t:?}");
    // Once the directory's fsync made it durable, new files beside it go to
    // the tree-log tier.
    unlink_committed(&mut fs, b"gone2");
    assert_eq!(fs.fsync(SV, root).unwrap(), FsyncTier::TreeLog);
    let n = fs.create(SV, root, b"n", 0o644, 0, 0, 0, ts(1)).unwrap().ino;
    assert_eq!(fs.fsync(SV, n).unwrap(), FsyncTier::TreeLog);
    let m = fs.create(SV, root, b"m", 0o644, 0, 0, 0, ts(1)).unwrap().ino;
    fs.link(SV, m, root, b"m2", ts(1)).unwrap();
    assert_eq!(fs.fsync(SV, m).unwrap(), FsyncTier::TreeLog);
    for k in 0..5u64 {
        fs.write(SV, f, k * 4096, &[k as u8 + 1; 4096], ts(2)).unwrap();
        let (w, fl) = (fs.device().writes, fs.device().flushes);
        assert_eq!(fs.fsync(SV, f).unwrap(), FsyncTier::FastCommit);
        assert_eq!((fs.device().writes - w, fs.device().flushes - fl), (1, 1), "one record block and one flush");
    }
    let d = fs.mkdir(SV, root, b"d", 0o755, 0, 0, ts(3)).unwrap().ino;
    fs.commit().unwrap();
    fs.create(SV, d, b"x", 0o644, 0, 0, 0, ts(3)).unwrap();
    assert_eq!(fs.fsync(SV, d).unwrap(), FsyncTier::TreeLog, "a directory's new entry: the new file's record");
    fs.mkdir(SV, d, b"sub", 0o755, 0, 0, ts(3)).unwrap();
    assert_eq!(fs.fsync(SV, d).unwrap(), FsyncTier::FullCommit(Ineligible::NotRegular), "a new subdirectory");
    fs.write(SV, f, 0, b"z", ts(4)).unwrap();
    fs.link(SV, f, root, b"g", ts(4)).unwrap();
    assert_eq!(fs.fsync(SV, f).unwrap(), FsyncTier::TreeLog, "a new name needs a tree-log record");
    fs.write(SV, f, 0, &vec![7u8; 2 << 20], ts(5)).unwrap();
    assert_eq!(fs.fsync(SV, f).unwrap(), FsyncTier::FullCommit(Ineligible::TooMuchData));
    let st = fs.fast_commit_stats();
    assert_eq!((st.fast_commits, st.tree_logs, st.clean), (6, 6, 1));
    assert_eq!(st.full_commits[Ineligible::Related.index()], 0);
    assert_eq!(st.full_commits[Ineligible::NotRegular.index()], 1);
    assert_eq!(st.full_commits[Ineligible::TooMuchData.index()], 1);
    // The records since the last commit come back after a crash.
    fs.write(SV, f, 100, b"after", ts(6)).unwrap();
    fs.setattr(SV, f, &SetAttr { mode: Some(0o600), ..Default::default() }, ts(6)).unwrap();
    assert_eq!(fs.fsync(SV, f).unwrap(), FsyncTier::FastCommit);
    let want = visible(&mut fs);
    // A read-only mount replays in memory, checks clean, writes nothing.
    let image = fs.device().crash_drop_all();
    let ro = ferrofs_core::fs::MountOptions { read_only: true, ..Default::default() };
    let mut rofs = Filesystem::mount_with(image.clone(), ro).unwrap();
    assert_eq!(visible(&mut rofs), want);
    assert_check_clean(&mut rofs, "read-only mount with records replayed in memory");
    assert_eq!(rofs.unmount().unwrap().writes, image.writes, "a read-only mount writes nothing");
    let mut fs = mount(fs.device().crash_drop_all());
    assert_eq!(fs.fast_commit_stats().replayed, 1);
    assert_eq!(visible(&mut fs), want);
    assert_check_clean(&mut fs, "after replay");
}

/// A fresh 32 MiB disk whose fast-commit area has `blocks` blocks.
fn with_area(blocks: u64) -> (SimDev, ferrofs_core::superblock::Superblock) {
    let mut d = SimDev::new(32 << 20);
    let opts = ferrofs_core::mkfs::MkfsOptions {
        block_size: 4096,
        size_bytes: 32 << 20,
        uuid: [1; 16],
        label: b"",
        now: (1000, 0),
        fast_commit_blocks: Some(blocks),
    };
    let sb = ferrofs_core::mkfs::format(&mut d, &opts).unwrap();
    (d, sb)
}

#[test]
fn area_fills_then_a_commit_empties_it() {
    let (d, _) = with_area(3);
    let mut fs = mount(d);
    let root = fs.root_ino();
    let f = fs.create(SV, root, b"f", 0o644, 0, 0, 0, ts(1)).unwrap().ino;
    fs.commit().unwrap();
    let tiers: Vec<_> = (0..5u64)
        .map(|k| {
            fs.write(SV, f, k * 4096, &[1; 4096], ts(2)).unwrap();
            fs.fsync(SV, f).unwrap()
        })
        .collect();
    let full = FsyncTier::FullCommit(Ineligible::AreaFull);
    assert_eq!(tiers, [FsyncTier::FastCommit, FsyncTier::FastCommit, FsyncTier::FastCommit, full, FsyncTier::FastCommit]);
}

#[test]
fn no_area_means_full_commits() {
    let (d, sb) = with_area(0);
    assert_eq!((sb.fast_commit_blocks, sb.incompat), (0, ferrofs_core::superblock::INCOMPAT_UNWRITTEN));
    let mut fs = mount(d);
    let root = fs.root_ino();
    let f = fs.create(SV, root, b"f", 0o644, 0, 0, 0, ts(1)).unwrap().ino;
    fs.commit().unwrap();
    fs.write(SV, f, 0, b"x", ts(2)).unwrap();
    assert_eq!(fs.fsync(SV, f).unwrap(), FsyncTier::FullCommit(Ineligible::NoArea));
    assert_check_clean(&mut fs, "no area");
}

#[test]
fn records_refuse_damage() {
    let bounds = ferrofs_core::format::Bounds { total_blocks: 1 << 20, block_size: 4096, unwritten: true };
    let inode = InodeItem { mode: 0o100644, nlink: 1, size: 9000, blocks: 3, generation: 4, ..Default::default() };
    let mut runs = ferrofs_core::mem::TryVec::new();
    runs.try_push(Run { file_block: 0, disk_block: 500, blocks: 2, data_crc: 7 }).unwrap();
    runs.try_push(Run { file_block: 5, disk_block: 900, blocks: 1, data_crc: 8 }).unwrap();
    let mut bytes = [0u8; NAME_MAX];
    bytes[..4].copy_from_slice(b"file");
    let name = NewName { dir: 256, seq: 5, hash_off: (ferrofs_core::format::name_hash(b"file") as u64) << 32 | 1, len: 4, bytes };
    let rec = Record { epoch: 9, seq: 3, subvol: SV, ino: 257, inode, name: Some(name), runs };
    let mut b = ferrofs_core::mem::TryVec::new();
    rec.encode(4096, &mut b).unwrap();
    assert_eq!(b.len(), 4096);
    let len = Record::announced_len(&b).unwrap();
    assert_eq!(len, RECORD_BASE + 2 * 28);
    assert_eq!(Record::decode(&b[..len], &bounds).unwrap(), rec);
    // Every single flipped byte of the record is caught.
    for i in 0..len {
        let mut bad = b[..len].to_vec();
        bad[i] ^= 0x40;
        assert!(Record::announced_len(&bad) != Some(len) || Record::decode(&bad, &bounds).is_err(), "byte {i} flipped");
    }
    assert!(Record::decode(&b[..len - 1], &bounds).is_err());
    assert_eq!(Record::announced_len(&[0u8; 4096]), None);
    // Runs out of range are refused even with a good CRC.
    for bad in [
        Run { file_block: 0, disk_block: 1 << 20, blocks: 1, data_crc: 0 },
        Run { file_block: u64::MAX, disk_block: 10, blocks: 1, data_crc: 0 },
    ] {
        let mut runs = ferrofs_core::mem::TryVec::new();
        runs.try_push(bad).unwrap();
        let r = Record { runs, ..rec.clone_header() };
        r.encode(4096, &mut b).unwrap();
        let len = Record::announced_len(&b).unwrap();
        assert!(Record::decode(&b[..len], &bounds).is_err());
    }
    // A name whose hash offset does not match it is refused.
    let r = Record { name: Some(NewName { hash_off: 1 << 32, ..name }), ..rec.clone_header() };
    r.encode(4096, &mut b).unwrap();
    let len = Record::announced_len(&b).unwrap();
    assert!(Record::decode(&b[..len], &bounds).is_err());
}

trait CloneHeader {
    fn clone_header(&self) -> Record;
}

impl CloneHeader for Record {
    fn clone_header(&self) -> Record {
        Record {
            epoch: self.epoch,
            seq: self.seq,
            subvol: self.subvol,
            ino: self.ino,
            inode: self.inode,
            name: self.name,
            runs: ferrofs_core::mem::TryVec::new(),
        }
    }
}

#[test]
fn crash_at_every_write_keeps_what_fsync_made_durable() {
    let seeds: Vec<u64> = if full() { (1..=12).collect() } else { vec![seed_or(3), 7] };
    let steps = if full() { 60 } else { 30 };
    let mut states = 0;
    for seed in seeds {
        let (mut fs, points, tiers) = run(seed, steps, None);
        assert!(tiers.iter().filter(|t| **t == FsyncTier::FastCommit).count() >= steps / 4, "seed {seed}: most fsyncs are fast: {tiers:?}");
        assert!(
            tiers.iter().any(|t| matches!(t, FsyncTier::TreeLog)),
            "seed {seed}: links, xattrs and shrinking take the tree log: {tiers:?}"
        );
        assert!(fs.fast_commit_stats().new_names > 0, "seed {seed}: new files went through records");
        let total = fs.device().writes;
        let mut rng = Rng(seed ^ 0xfc);
        for cut in points[0].w1..total {
            let (mut fs, _, _) = run(seed, steps, Some(cut));
            let dev = fs.device().clone();
            check_image(dev.crash_drop_all(), &points, cut, &format!("seed {seed} cut {cut} drop"));
            check_image(dev.crash_keep_all(), &points, cut, &format!("seed {seed} cut {cut} keep"));
            check_image(dev.crash_random(&mut rng), &points, cut, &format!("seed {seed} cut {cut} random"));
            states += 3;
        }
    }
    println!("fsync crash states checked: {states}");
}

/// A crash during replay: the mount that replays is cut after every single
/// write of its commit; mounting what the disk then holds (unflushed writes
/// dropped, kept, or a random subset) gives the same files as a replay that
/// ran to the end, since the epoch only moves with the replay's commit.
#[test]
fn crash_during_replay_replays_again_to_the_same_state() {
    let mut fs = mount(fresh(32 << 20));
    let root = fs.root_ino();
    let f = fs.create(SV, root, b"f", 0o644, 0, 0, 0, ts(1)).unwrap().ino;
    fs.write(SV, f, 0, &[1; 5000], ts(1)).unwrap();
    fs.commit().unwrap();
    for k in 0..4u64 {
        fs.write(SV, f, 5000 + k * 3000, &[k as u8 + 2; 3000], ts(2)).unwrap();
        assert_eq!(fs.fsync(SV, f).unwrap(), FsyncTier::FastCommit);
    }
    let g = fs.create(SV, root, b"g", 0o600, 0, 0, 0, ts(3)).unwrap().ino;
    fs.write(SV, g, 0, b"new file", ts(3)).unwrap();
    assert_eq!(fs.fsync(SV, g).unwrap(), FsyncTier::FastCommit);
    let want = visible(&mut fs);
    replay_cut_at_every_write(&fs.device().crash_drop_all(), &want, 11);
}

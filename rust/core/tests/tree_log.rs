// SPDX-License-Identifier: GPL-2.0
//! fsync through the tree-log tier: namespace changes (link, unlink,
//! rename in one directory, across directories, over an existing file),
//! xattrs, shrinking truncate, punched holes, fallocate, symlinks and
//! device nodes, alone and in pairs, each followed by fsync, with the
//! power cut after every single write and the unflushed writes dropped,
//! kept or a random subset kept. After replay: the fsynced inode's data,
//! attributes and every name it has are there, a rename shows exactly one
//! of its names, nothing else was damaged, fsck is clean, and a second
//! mount shows the same. Then btrfs's tree-log "trouble cases", each by
//! name, the record codec against damage, and a crash during replay.

mod common;
use common::sync_points::{check_image, replay_cut_at_every_write, SyncPoint};
use common::*;
use ferrofs_core::error::Result;
use ferrofs_core::fast_commit::{FsyncTier, Ineligible};
use ferrofs_core::format::{Bounds, InodeItem};
use ferrofs_core::fs::{Filesystem, SetAttr, RENAME_EXCHANGE};
use ferrofs_core::subvol::SubvolId;
use ferrofs_core::tree_log::{LogRecord, LoggedItem, LoggedName, LOG_BASE};
use std::collections::BTreeMap;

const SV: SubvolId = SubvolId::DEFAULT;
type Fs = Filesystem<SimDev>;

/// Inodes of the committed starting state.
#[derive(Clone, Copy)]
struct Start {
    root: u64,
    d1: u64,
    d2: u64,
    /// `/a`: 5000 bytes, xattr `user.x`.
    a: u64,
    /// `/b`: 3000 bytes.
    b: u64,
    /// `/c` and `/d1/c2`.
    c: u64,
    /// `/s` -> `target`.
    s: u64,
}

fn start(fs: &mut Fs) -> Start {
    let root = fs.root_ino();
    let d1 = fs.mkdir(SV, root, b"d1", 0o755, 0, 0, ts(1)).unwrap().ino;
    let d2 = fs.mkdir(SV, root, b"d2", 0o755, 0, 0, ts(1)).unwrap().ino;
    let a = fs.create(SV, root, b"a", 0o644, 0, 0, 0, ts(1)).unwrap().ino;
    fs.write(SV, a, 0, &[1; 5000], ts(1)).unwrap();
    fs.set_xattr(SV, a, b"user.x", b"xv", 0, ts(1)).unwrap();
    let b = fs.create(SV, root, b"b", 0o644, 0, 0, 0, ts(1)).unwrap().ino;
    fs.write(SV, b, 0, &[2; 3000], ts(1)).unwrap();
    let c = fs.create(SV, root, b"c", 0o600, 0, 0, 0, ts(1)).unwrap().ino;
    fs.write(SV, c, 0, &[3; 100], ts(1)).unwrap();
    fs.link(SV, c, d1, b"c2", ts(1)).unwrap();
    let s = fs.symlink(SV, root, b"s", b"target", 0, 0, ts(1)).unwrap().ino;
    Start { root, d1, d2, a, b, c, s }
}

/// A scenario's steps so far, and the sync points they made.
struct Run<'a> {
    fs: &'a mut Fs,
    points: Vec<SyncPoint>,
    tiers: Vec<FsyncTier>,
}

impl Run<'_> {
    /// fsync of `ino`; `paths` are the paths whose state the fsync makes
    /// durable (the inode's names now and the ones it lost).
    fn fsync(&mut self, ino: u64, paths: &[&str]) -> Result<()> {
        let w0 = self.fs.device().writes;
        let tier = self.fs.fsync(SV, ino)?;
        self.tiers.push(tier);
        let v = visible(self.fs);
        let states = paths.iter().map(|p| (p.to_string(), v.get(*p).cloned())).collect();
        self.points.push(SyncPoint { w0, w1: self.fs.device().writes, states });
        Ok(())
    }
}

/// A scenario: its steps, the tier every fsync must take, and pairs of
/// paths exactly one of which must exist after any crash (renames).
struct Scenario {
    name: &'static str,
    steps: fn(&mut Run, Start) -> Result<()>,
    tier: FsyncTier,
    atomic: &'static [(&'static str, &'static str)],
}

/// Runs a scenario on a fresh disk cut after `cut` writes (None: never).
fn play(sc: &Scenario, cut: Option<u64>) -> (Fs, Vec<SyncPoint>, Vec<FsyncTier>) {
    let mut fs = mount(fresh(32 << 20));
    let st = start(&mut fs);
    fs.commit().unwrap();
    // Every path but the directories' (their listings are not what an
    // fsync of a file makes durable; the files' paths say it).
    let all: BTreeMap<String, Option<String>> =
        visible(&mut fs).into_iter().filter(|(_, v)| !v.contains(" mode 40")).map(|(p, v)| (p, Some(v))).collect();
    let w = fs.device().writes;
    let mut points = vec![SyncPoint { w0: w, w1: w, states: all }];
    fs.device().cut_after = cut;
    let mut run = Run { fs: &mut fs, points: Vec::new(), tiers: Vec::new() };
    let _ = (sc.steps)(&mut run, st);
    let (more, tiers) = (run.points, run.tiers);
    points.extend(more);
    (fs, points, tiers)
}

/// The crash enumeration of one scenario.
fn enumerate(sc: &Scenario) -> usize {
    let (mut fs, points, tiers) = play(sc, None);
    assert!(!tiers.is_empty() && tiers.iter().all(|t| *t == sc.tier), "{}: tiers {tiers:?}", sc.name);
    if sc.tier == FsyncTier::TreeLog {
        let st = fs.fast_commit_stats();
        assert_eq!(st.tree_logs, tiers.len() as u64, "{}", sc.name);
    }
    let total = fs.device().writes;
    // Without a cut, after a crash that drops everything unflushed, the
    // last sync point shows whole.
    let seen = check_image(fs.device().crash_drop_all(), &points, total, &format!("{} whole", sc.name));
    for (p, want) in points.last().unwrap().states.iter() {
        assert_eq!(seen.get(p), want.as_ref(), "{}: {p} after replay", sc.name);
    }
    let mut rng = Rng(points.len() as u64 * 31 + total);
    let mut states = 0;
    for cut in points[0].w1..total {
        let (mut fs, _, _) = play(sc, Some(cut));
        let dev = fs.device().clone();
        for (how, image) in [("drop", dev.crash_drop_all()), ("keep", dev.crash_keep_all()), ("random", dev.crash_random(&mut rng))] {
            let what = format!("{} cut {cut} {how}", sc.name);
            let seen = check_image(image, &points, cut, &what);
            for (x, y) in sc.atomic {
                assert!(seen.contains_key(*x) != seen.contains_key(*y), "{what}: exactly one of {x} and {y}");
            }
            states += 1;
        }
    }
    states
}

const TL: FsyncTier = FsyncTier::TreeLog;

fn scenarios() -> Vec<Scenario> {
    vec![
        Scenario {
            name: "rename in one directory",
            steps: |r, s| {
                r.fs.rename(SV, s.root, b"a", s.root, b"a2", 0, ts(5))?;
                r.fsync(s.a, &["/a/", "/a2/"])
            },
            tier: TL,
            atomic: &[("/a/", "/a2/")],
        },
        Scenario {
            name: "rename across directories",
            steps: |r, s| {
                r.fs.rename(SV, s.root, b"a", s.d1, b"a", 0, ts(5))?;
                r.fsync(s.a, &["/a/", "/d1/a/"])
            },
            tier: TL,
            atomic: &[("/a/", "/d1/a/")],
        },
        Scenario {
            name: "rename over an existing file",
            steps: |r, s| {
                r.fs.rename(SV, s.root, b"a", s.root, b"b", 0, ts(5))?;
                r.fsync(s.a, &["/a/", "/b/"])
            },
            tier: TL,
            atomic: &[],
        },
        Scenario {
            name: "link into another directory",
            steps: |r, s| {
                r.fs.link(SV, s.a, s.d2, b"al", ts(5))?;
                r.fsync(s.a, &["/a/", "/d2/al/"])
            },
            tier: TL,
            atomic: &[],
        },
        Scenario {
            name: "unlink one of two links",
            steps: |r, s| {
                r.fs.unlink(SV, s.d1, b"c2", ts(5))?;
                r.fsync(s.c, &["/c/", "/d1/c2/"])
            },
            tier: TL,
            atomic: &[],
        },
        Scenario {
            name: "unlink the last link of an open file",
            steps: |r, s| {
                r.fs.unlink(SV, s.root, b"b", ts(5))?;
                r.fsync(s.b, &["/b/"])
            },
            tier: TL,
            atomic: &[],
        },
        Scenario {
            name: "setxattr",
            steps: |r, s| {
                r.fs.set_xattr(SV, s.a, b"user.y", &[7; 300], 0, ts(5))?;
                r.fsync(s.a, &["/a/"])
            },
            tier: TL,
            atomic: &[],
        },
        Scenario {
            name: "removexattr",
            steps: |r, s| {
                r.fs.remove_xattr(SV, s.a, b"user.x", ts(5))?;
                r.fsync(s.a, &["/a/"])
            },
            tier: TL,
            atomic: &[],
        },
        Scenario {
            name: "shrinking truncate",
            steps: |r, s| {
                r.fs.setattr(SV, s.a, &SetAttr { size: Some(100), ..Default::default() }, ts(5))?;
                r.fsync(s.a, &["/a/"])
            },
            tier: TL,
            atomic: &[],
        },
        Scenario {
            name: "punch hole",
            steps: |r, s| {
                r.fs.punch_hole(SV, s.a, 0, 4096, ts(5))?;
                r.fsync(s.a, &["/a/"])
            },
            tier: TL,
            atomic: &[],
        },
        Scenario {
            name: "fallocate",
            steps: |r, s| {
                r.fs.fallocate(SV, s.a, 4096, 20000, false, ts(5))?;
                r.fsync(s.a, &["/a/"])
            },
            // Preallocated (unwritten) blocks: no record vouches for them.
            tier: FsyncTier::FullCommit(Ineligible::Changed),
            atomic: &[],
        },
        Scenario {
            name: "symlink",
            steps: |r, s| {
                let l = r.fs.symlink(SV, s.d1, b"s2", b"x/y", 0, 0, ts(5))?.ino;
                r.fsync(l, &["/d1/s2/"])
            },
            tier: TL,
            atomic: &[],
        },
        Scenario {
            name: "mknod",
            steps: |r, s| {
                let n = r.fs.mknod(SV, s.d2, b"fifo", 0o010644, 0, 0, 0, ts(5))?.ino;
                r.fsync(n, &["/d2/fifo/"])
            },
            tier: TL,
            atomic: &[],
        },
        Scenario {
            name: "rename a symlink across directories",
            steps: |r, s| {
                r.fs.rename(SV, s.root, b"s", s.d2, b"s", 0, ts(5))?;
                r.fsync(s.s, &["/s/", "/d2/s/"])
            },
            tier: TL,
            atomic: &[("/s/", "/d2/s/")],
        },
        Scenario {
            name: "rename then link",
            steps: |r, s| {
                r.fs.rename(SV, s.root, b"a", s.d1, b"a2", 0, ts(5))?;
                r.fsync(s.a, &["/a/", "/d1/a2/"])?;
                r.fs.link(SV, s.a, s.d2, b"a3", ts(6))?;
                r.fsync(s.a, &["/a/", "/d1/a2/", "/d2/a3/"])
            },
            tier: TL,
            atomic: &[("/a/", "/d1/a2/")],
        },
        Scenario {
            name: "link then unlink the first name",
            steps: |r, s| {
                r.fs.link(SV, s.a, s.d1, b"x", ts(5))?;
                r.fsync(s.a, &["/a/", "/d1/x/"])?;
                r.fs.unlink(SV, s.root, b"a", ts(6))?;
                r.fsync(s.a, &["/a/", "/d1/x/"])
            },
            tier: TL,
            atomic: &[],
        },
        Scenario {
            name: "setxattr then shrinking truncate",
            steps: |r, s| {
                r.fs.set_xattr(SV, s.b, b"user.z", b"1", 0, ts(5))?;
                r.fsync(s.b, &["/b/"])?;
                r.fs.write(SV, s.b, 3000, &[9; 9000], ts(6))?;
                r.fs.setattr(SV, s.b, &SetAttr { size: Some(5000), ..Default::default() }, ts(6))?;
                r.fsync(s.b, &["/b/"])
            },
            tier: TL,
            atomic: &[],
        },
        Scenario {
            name: "create, fsync the directory",
            steps: |r, s| {
                let n = r.fs.create(SV, s.d1, b"new", 0o644, 0, 0, 0, ts(5))?.ino;
                r.fs.write(SV, n, 0, &[8; 6000], ts(5))?;
                r.fsync(s.d1, &["/d1/new/"])
            },
            tier: TL,
            atomic: &[],
        },
        Scenario {
            name: "unlink and free, fsync the directory",
            steps: |r, s| {
                r.fs.unlink(SV, s.root, b"b", ts(5))?;
                r.fs.evict(SV, s.b)?;
                r.fsync(s.root, &["/b/"])
            },
            tier: TL,
            atomic: &[],
        },
        Scenario {
            name: "rename over a freed file, fsync the directory",
            steps: |r, s| {
                r.fs.rename(SV, s.root, b"a", s.root, b"b", 0, ts(5))?;
                r.fs.evict(SV, s.b)?;
                r.fsync(s.root, &["/a/", "/b/"])
            },
            tier: TL,
            atomic: &[],
        },
        Scenario {
            name: "rename across directories, fsync the old one; unlink, fsync the other",
            steps: |r, s| {
                r.fs.rename(SV, s.root, b"a", s.d1, b"a", 0, ts(5))?;
                r.fsync(s.root, &["/a/", "/d1/a/"])?;
                r.fs.unlink(SV, s.d1, b"c2", ts(6))?;
                r.fsync(s.d1, &["/a/", "/d1/a/", "/c/", "/d1/c2/"])
            },
            tier: TL,
            atomic: &[("/a/", "/d1/a/")],
        },
        Scenario {
            name: "two files renamed, each fsynced",
            steps: |r, s| {
                r.fs.rename(SV, s.root, b"a", s.d2, b"a", 0, ts(5))?;
                r.fsync(s.a, &["/a/", "/d2/a/"])?;
                r.fs.rename(SV, s.root, b"c", s.d2, b"c", 0, ts(6))?;
                r.fsync(s.c, &["/c/", "/d2/c/", "/d1/c2/"])
            },
            tier: TL,
            atomic: &[("/a/", "/d2/a/"), ("/c/", "/d2/c/")],
        },
    ]
}

#[test]
fn every_scenario_survives_a_crash_at_every_write() {
    let only = std::env::var("FERROFS_SCENARIO").ok();
    let mut n = 0;
    for sc in scenarios().iter().filter(|s| only.as_deref().is_none_or(|o| s.name.contains(o))) {
        let states = enumerate(sc);
        assert!(states >= 3, "{}: the cuts fall inside the fsyncs", sc.name);
        n += states;
    }
    println!("tree-log crash states checked: {n}");
    assert!(n > 0);
}

/// One tree-log fsync costs one record write and one flush, and no commit.
#[test]
fn one_write_and_one_flush_per_record() {
    let mut fs = mount(fresh(32 << 20));
    let s = start(&mut fs);
    fs.commit().unwrap();
    let gen = fs.superblock().generation;
    for (k, step) in ["rename", "link", "setxattr"].iter().enumerate() {
        match *step {
            "rename" => fs.rename(SV, s.root, b"a", s.d1, b"a", 0, ts(5)).unwrap(),
            "link" => drop(fs.link(SV, s.a, s.d2, b"l", ts(5)).unwrap()),
            _ => fs.set_xattr(SV, s.a, b"user.q", b"v", 0, ts(5)).unwrap(),
        }
        let (w, fl) = (fs.device().writes, fs.device().flushes);
        assert_eq!(fs.fsync(SV, s.a).unwrap(), TL, "{step}");
        assert_eq!((fs.device().writes - w, fs.device().flushes - fl), (1, 1), "{step}: one record block and one flush");
        assert_eq!(fs.superblock().generation, gen, "{step}: no commit");
        assert_eq!(fs.fast_commit_stats().tree_logs, k as u64 + 1);
    }
    let want = visible(&mut fs);
    let mut fs = mount(fs.device().crash_drop_all());
    assert_eq!(fs.fast_commit_stats().replayed, 3);
    assert_eq!(visible(&mut fs), want);
    assert_check_clean(&mut fs, "after replay");
}

/// btrfs trouble case: "mkdir foo/some_dir; commit; rename foo/some_dir
/// foo2/some_dir; mkdir foo/some_dir; fsync foo/some_dir/some_file". The
/// file's directory is new, so a record cannot name it: a full commit.
#[test]
fn trouble_file_in_a_new_directory_that_reuses_a_moved_ones_name() {
    let mut fs = mount(fresh(32 << 20));
    let s = start(&mut fs);
    let sd = fs.mkdir(SV, s.d1, b"some_dir", 0o755, 0, 0, ts(1)).unwrap().ino;
    fs.commit().unwrap();
    fs.rename(SV, s.d1, b"some_dir", s.d2, b"some_dir", 0, ts(2)).unwrap();
    let nd = fs.mkdir(SV, s.d1, b"some_dir", 0o755, 0, 0, ts(2)).unwrap().ino;
    let f = fs.create(SV, nd, b"some_file", 0o644, 0, 0, 0, ts(2)).unwrap().ino;
    fs.write(SV, f, 0, b"data", ts(2)).unwrap();
    assert_eq!(fs.fsync(SV, f).unwrap(), FsyncTier::FullCommit(Ineligible::NewParent));
    let want = visible(&mut fs);
    let mut fs = mount(fs.device().crash_drop_all());
    assert_eq!(visible(&mut fs), want);
    assert!(fs.lookup(SV, s.d2, b"some_dir").unwrap() == sd);
    assert_check_clean(&mut fs, "new directory");
}

/// btrfs trouble case: a link into a directory made since the last commit.
#[test]
fn trouble_link_into_a_new_directory() {
    let mut fs = mount(fresh(32 << 20));
    let s = start(&mut fs);
    fs.commit().unwrap();
    let nd = fs.mkdir(SV, s.root, b"new", 0o755, 0, 0, ts(2)).unwrap().ino;
    fs.link(SV, s.a, nd, b"x", ts(2)).unwrap();
    assert_eq!(fs.fsync(SV, s.a).unwrap(), FsyncTier::FullCommit(Ineligible::NewParent));
    let mut fs = mount(fs.device().crash_drop_all());
    assert!(visible(&mut fs).contains_key("/new/x/"));
    assert_check_clean(&mut fs, "link into a new directory");
}

/// btrfs trouble case: "rename foo bar; create foo; fsync foo". The new
/// foo's name belonged to the file now called bar, whose new name no
/// record holds: replaying a record for foo alone would leave that file
/// with no name at all, so a full commit serves instead.
#[test]
fn trouble_renamed_files_old_name_reused_before_the_rename_is_logged() {
    let mut fs = mount(fresh(32 << 20));
    let s = start(&mut fs);
    fs.commit().unwrap();
    fs.rename(SV, s.root, b"a", s.root, b"bar", 0, ts(2)).unwrap();
    let foo = fs.create(SV, s.root, b"a", 0o644, 0, 0, 0, ts(2)).unwrap().ino;
    assert_eq!(fs.fsync(SV, foo).unwrap(), FsyncTier::FullCommit(Ineligible::SlotTaken));
    let mut fs = mount(fs.device().crash_drop_all());
    let v = visible(&mut fs);
    assert!(v.contains_key("/a/") && v.contains_key("/bar/"), "{v:?}");
    assert_check_clean(&mut fs, "old name reused");
}

/// The same with the rename logged first ("rename foo bar; fsync bar;
/// create foo; fsync foo"): two records, both names survive.
#[test]
fn trouble_renamed_files_old_name_reused_after_the_rename_is_logged() {
    let sc = Scenario {
        name: "rename, fsync, new file under the old name, fsync",
        steps: |r, s| {
            r.fs.rename(SV, s.root, b"a", s.root, b"bar", 0, ts(2))?;
            r.fsync(s.a, &["/a/", "/bar/"])?;
            let foo = r.fs.create(SV, s.root, b"a", 0o644, 0, 0, 0, ts(3))?.ino;
            r.fs.write(SV, foo, 0, b"new foo", ts(3))?;
            r.fsync(foo, &["/a/"])
        },
        tier: TL,
        atomic: &[],
    };
    assert!(enumerate(&sc) >= 3);
}

/// btrfs trouble case: "unlink foo; create foo; fsync foo": the old file
/// loses the name to the new one and, with no link left, is reclaimed.
#[test]
fn trouble_name_reused_by_a_new_file_after_unlink() {
    let sc = Scenario {
        name: "unlink, create the same name, fsync the new file",
        steps: |r, s| {
            r.fs.unlink(SV, s.root, b"b", ts(2))?;
            let nb = r.fs.create(SV, s.root, b"b", 0o644, 0, 0, 0, ts(2))?.ino;
            r.fs.write(SV, nb, 0, b"new b", ts(2))?;
            r.fsync(nb, &["/b/"])
        },
        tier: TL,
        atomic: &[],
    };
    assert!(enumerate(&sc) >= 3);
    let (mut fs, _, _) = play(&sc, None);
    let mut fs = mount(fs.device().crash_drop_all());
    // Inode numbers are the same in every run of the starting state.
    let old_b = start(&mut mount(fresh(32 << 20))).b;
    assert!(matches!(fs.getattr(SV, old_b), Err(ferrofs_core::error::Error::NotFound)), "the old b is reclaimed");
}

/// rename exchange: each file takes the other's name, which a record for
/// one of them cannot say without the other: a full commit.
#[test]
fn trouble_rename_exchange_takes_a_full_commit() {
    let mut fs = mount(fresh(32 << 20));
    let s = start(&mut fs);
    fs.commit().unwrap();
    fs.rename(SV, s.root, b"a", s.root, b"b", RENAME_EXCHANGE, ts(2)).unwrap();
    assert_eq!(fs.fsync(SV, s.a).unwrap(), FsyncTier::FullCommit(Ineligible::SlotTaken));
    let want = visible(&mut fs);
    let mut fs = mount(fs.device().crash_drop_all());
    assert_eq!(visible(&mut fs), want);
}

/// A directory's fsync logs the files whose entries changed; what it
/// cannot say takes a full commit: a subdirectory made or moved, the
/// directory's own attributes, a directory made since the last commit.
#[test]
fn directory_fsync_refusals() {
    let mut fs = mount(fresh(32 << 20));
    let s = start(&mut fs);
    fs.commit().unwrap();
    fs.mkdir(SV, s.d1, b"sub", 0o755, 0, 0, ts(2)).unwrap();
    assert_eq!(fs.fsync(SV, s.d1).unwrap(), FsyncTier::FullCommit(Ineligible::NotRegular));
    fs.setattr(SV, s.d2, &SetAttr { mode: Some(0o700), ..Default::default() }, ts(3)).unwrap();
    assert_eq!(fs.fsync(SV, s.d2).unwrap(), FsyncTier::FullCommit(Ineligible::Changed));
    let nd = fs.mkdir(SV, s.root, b"nd", 0o755, 0, 0, ts(4)).unwrap().ino;
    assert_eq!(fs.fsync(SV, nd).unwrap(), FsyncTier::FullCommit(Ineligible::NewParent));
    fs.create(SV, s.d2, b"x", 0o644, 0, 0, 0, ts(5)).unwrap();
    let (w, fl) = (fs.device().writes, fs.device().flushes);
    assert_eq!(fs.fsync(SV, s.d2).unwrap(), TL);
    assert_eq!((fs.device().writes - w, fs.device().flushes - fl), (1, 1), "the records in one write, one flush");
    // Its entries are all durable now; another change elsewhere keeps the
    // transaction dirty, and the directory's fsync has nothing to write.
    fs.write(SV, s.a, 0, b"x", ts(6)).unwrap();
    let (w, clean) = (fs.device().writes, fs.fast_commit_stats().clean);
    assert_eq!(fs.fsync(SV, s.d2).unwrap(), FsyncTier::Clean);
    assert_eq!((fs.device().writes - w, fs.fast_commit_stats().clean - clean), (0, 1));
}

/// More items than a record holds: a full commit, counted.
#[test]
fn too_many_items_take_a_full_commit() {
    let mut fs = mount(fresh(32 << 20));
    let s = start(&mut fs);
    fs.commit().unwrap();
    for k in 0..40u32 {
        fs.set_xattr(SV, s.a, format!("user.k{k}").as_bytes(), &[k as u8; 2000], 0, ts(2)).unwrap();
    }
    assert_eq!(fs.fsync(SV, s.a).unwrap(), FsyncTier::FullCommit(Ineligible::LogTooBig));
    assert_eq!(fs.fast_commit_stats().full_commits[Ineligible::LogTooBig.index()], 1);
}

/// An image without the tree-log feature bit (older mkfs) gets full
/// commits, and a record on such an image is never replayed.
#[test]
fn without_the_feature_bit_no_records_are_written() {
    let mut d = fresh(32 << 20);
    let mut sb = ferrofs_core::superblock::read_superblock(&mut d).unwrap();
    sb.incompat &= !ferrofs_core::superblock::INCOMPAT_TREE_LOG;
    ferrofs_core::superblock::write_superblock(&mut d, &sb).unwrap();
    let mut fs = mount(d);
    let s = start(&mut fs);
    fs.commit().unwrap();
    fs.link(SV, s.a, s.d1, b"l", ts(2)).unwrap();
    assert_eq!(fs.fsync(SV, s.a).unwrap(), FsyncTier::FullCommit(Ineligible::NoTreeLog));
}

fn sample_record() -> LogRecord {
    let mut names = ferrofs_core::mem::TryVec::new();
    for (dir, seq, name) in [(256u64, 5u64, &b"file"[..]), (300, 9, b"other")] {
        let mut n = ferrofs_core::mem::TryVec::new();
        n.try_extend_from_slice(name).unwrap();
        let hash_off = (ferrofs_core::format::name_hash(name) as u64) << 32 | 1;
        names.try_push(LoggedName { dir, seq, hash_off, name: n }).unwrap();
    }
    let mut items = ferrofs_core::mem::TryVec::new();
    let mut x = ferrofs_core::mem::TryVec::new();
    ferrofs_core::format::XattrHead { name: b"user.a", value_len: 2, first: b"hi" }.encode(&mut x).unwrap();
    let xoff = (ferrofs_core::format::name_hash(b"user.a") as u64) << 32;
    items.try_push(LoggedItem { ty: ferrofs_core::format::XATTR_KEY, offset: xoff, data: x }).unwrap();
    let e = ferrofs_core::format::ExtentItem::written(500, 2, 7);
    let mut ed = ferrofs_core::mem::TryVec::new();
    ed.try_extend_from_slice(&e.encode()).unwrap();
    items.try_push(LoggedItem { ty: ferrofs_core::format::EXTENT_KEY, offset: 0, data: ed }).unwrap();
    let mut runs = ferrofs_core::mem::TryVec::new();
    runs.try_push(ferrofs_core::fast_commit::Run { file_block: 0, disk_block: 500, blocks: 2, data_crc: 7 }).unwrap();
    let inode = InodeItem { mode: 0o100644, nlink: 2, size: 8000, blocks: 2, generation: 4, ..Default::default() };
    LogRecord { epoch: 9, seq: 3, subvol: SV, ino: 257, inode, runs, names, items }
}

#[test]
fn records_refuse_damage() {
    let bounds = Bounds { total_blocks: 1 << 20, block_size: 4096, unwritten: true };
    let rec = sample_record();
    let mut b = ferrofs_core::mem::TryVec::new();
    rec.encode(4096, &mut b).unwrap();
    let len = LogRecord::announced_len(&b).unwrap();
    assert_eq!(len, rec.len());
    assert!(len > LOG_BASE);
    assert_eq!(LogRecord::decode(&b[..len], &bounds).unwrap(), rec);
    for i in 0..len {
        let mut bad = b[..len].to_vec();
        bad[i] ^= 0x40;
        assert!(LogRecord::announced_len(&bad) != Some(len) || LogRecord::decode(&bad, &bounds).is_err(), "byte {i} flipped");
    }
    assert!(LogRecord::decode(&b[..len - 1], &bounds).is_err());
    // Field checks hold even under a good CRC.
    let reencode = |r: &LogRecord| {
        let mut out = ferrofs_core::mem::TryVec::new();
        r.encode(4096, &mut out).unwrap();
        let n = r.len();
        LogRecord::decode(&out[..n], &bounds)
    };
    let mut r = sample_record();
    r.inode.nlink = 3;
    assert!(reencode(&r).is_err(), "link count differs from the names");
    let mut r = sample_record();
    r.inode.mode = 0o040755;
    assert!(reencode(&r).is_err(), "a directory");
    let mut r = sample_record();
    r.names[1].dir = 256;
    r.names[1].seq = 5;
    assert!(reencode(&r).is_err(), "one slot twice");
    let mut r = sample_record();
    r.names[0].hash_off = 1 << 32;
    assert!(reencode(&r).is_err(), "hash offset not the name's");
    let mut r = sample_record();
    r.items.swap(0, 1);
    assert!(reencode(&r).is_err(), "items out of order");
    let mut r = sample_record();
    r.items[0].ty = ferrofs_core::format::INODE_REF_KEY;
    assert!(reencode(&r).is_err(), "an item type a record may not carry");
    let mut r = sample_record();
    r.runs[0].disk_block = 1 << 20;
    assert!(reencode(&r).is_err(), "run outside the filesystem");
}

/// A crash during the replay's commit: mounting again replays the same
/// records onto the same committed state and gives the same files.
#[test]
fn crash_during_replay_replays_again_to_the_same_state() {
    let mut fs = mount(fresh(32 << 20));
    let s = start(&mut fs);
    fs.commit().unwrap();
    fs.rename(SV, s.root, b"a", s.d1, b"moved", 0, ts(2)).unwrap();
    assert_eq!(fs.fsync(SV, s.a).unwrap(), TL);
    fs.rename(SV, s.root, b"c", s.root, b"b", 0, ts(3)).unwrap();
    fs.write(SV, s.c, 100, &[4; 7000], ts(3)).unwrap();
    assert_eq!(fs.fsync(SV, s.c).unwrap(), TL);
    fs.write(SV, s.a, 0, b"fast", ts(4)).unwrap();
    fs.set_xattr(SV, s.a, b"user.n", b"1", 0, ts(4)).unwrap();
    assert_eq!(fs.fsync(SV, s.a).unwrap(), TL);
    let want = visible(&mut fs);
    replay_cut_at_every_write(&fs.device().crash_drop_all(), &want, 5);
}

/// A whole record of the epoch that does not fit the filesystem (here: an
/// inode generation the state does not have, CRC made right) ends the
/// replay there, leaves the state before it, and is reported once.
#[test]
fn a_record_that_does_not_fit_stops_replay_and_is_reported() {
    let mut fs = mount(fresh(32 << 20));
    let s = start(&mut fs);
    fs.commit().unwrap();
    let before = visible(&mut fs);
    fs.rename(SV, s.root, b"a", s.d1, b"a", 0, ts(2)).unwrap();
    assert_eq!(fs.fsync(SV, s.a).unwrap(), TL);
    let sb = fs.superblock().clone();
    let mut dev = fs.device().crash_drop_all();
    let bounds = Bounds { total_blocks: sb.total_blocks, block_size: sb.block_size, unwritten: true };
    let at = sb.fast_commit_start * 4096;
    let mut block = vec![0u8; 4096];
    ferrofs_core::device::BlockDevice::read(&mut dev, at, &mut block).unwrap();
    let len = LogRecord::announced_len(&block).unwrap();
    let mut rec = LogRecord::decode(&block[..len], &bounds).unwrap();
    rec.inode.generation += 1;
    let mut out = ferrofs_core::mem::TryVec::new();
    rec.encode(4096, &mut out).unwrap();
    ferrofs_core::device::BlockDevice::write(&mut dev, at, &out, true).unwrap();
    let mut fs = mount(dev);
    assert_eq!(fs.fast_commit_stats().replayed, 0);
    assert_eq!(fs.replay_stopped().map(|(seq, _)| seq), Some(0));
    assert_eq!(visible(&mut fs), before);
    assert_check_clean(&mut fs, "stopped replay");
}

/// Files' paths as `visible` shows them (directories' listings left out).
fn file_paths(fs: &mut Fs) -> BTreeMap<String, String> {
    visible(fs).into_iter().filter(|(_, v)| !v.contains(" mode 40")).collect()
}

/// The random workload of `every_change_fsynced_survives_a_crash`, cut
/// after `cut` writes: the file paths after each fsync with the writes
/// before and after it, and the tiers taken.
#[allow(clippy::type_complexity)]
fn random_fsyncs(seed: u64, cut: Option<u64>) -> (Fs, Vec<(u64, u64, BTreeMap<String, String>)>, BTreeMap<String, u32>) {
    let mut rng = Rng(seed);
    let mut fs = mount(fresh(32 << 20));
    let s = start(&mut fs);
    fs.commit().unwrap();
    let w = fs.device().writes;
    let mut points = vec![(w, w, file_paths(&mut fs))];
    let mut tiers = BTreeMap::new();
    fs.device().cut_after = cut;
    let dirs = [s.root, s.d1, s.d2];
    let names = [&b"p"[..], b"q", b"r", b"a", b"b", b"c"];
    for step in 0..40 {
        let t = ts(10 + step);
        let (d, n) = (dirs[rng.below(3) as usize], names[rng.below(6) as usize]);
        let (d2, n2) = (dirs[rng.below(3) as usize], names[rng.below(6) as usize]);
        let len = 1 + rng.below(6000) as usize;
        let data = rng.bytes(len);
        let op = rng.below(7);
        // Namespace changes are sometimes made durable by the fsync of a
        // directory whose entry they changed instead (which logs the
        // files whose entries changed, whole).
        let by_dir = rng.below(2) == 0;
        let target = match fs.lookup(SV, d, n) {
            Ok(ino) if fs.getattr(SV, ino).map(|a| a.file_type() == ferrofs_core::format::FileType::Dir).unwrap_or(true) => continue,
            Ok(ino) => {
                let r = match op {
                    0 | 1 => fs.rename(SV, d, n, d2, n2, 0, t),
                    2 => fs.link(SV, ino, d2, n2, t).map(drop),
                    3 => fs.unlink(SV, d, n, t),
                    4 => fs.write(SV, ino, rng.below(8000), &data, t).map(drop),
                    5 => fs.set_xattr(SV, ino, b"user.r", &data[..data.len().min(200)], 0, t),
                    _ => fs.setattr(SV, ino, &SetAttr { size: Some(rng.below(4000)), ..Default::default() }, t).map(drop),
                };
                match r {
                    Ok(()) if by_dir && op <= 3 => [d, d, d2, d][op as usize],
                    Ok(()) => ino,
                    Err(ferrofs_core::error::Error::Io) => break,
                    Err(_) => continue,
                }
            }
            Err(_) => {
                let Ok(a) = fs.create(SV, d, n, 0o644, 0, 0, 0, t) else { break };
                if fs.write(SV, a.ino, 0, &data, t).is_err() {
                    break;
                }
                if by_dir {
                    d
                } else {
                    a.ino
                }
            }
        };
        let w0 = fs.device().writes;
        let Ok(tier) = fs.fsync(SV, target) else { break };
        if std::env::var("TLDEBUG").is_ok() {
            eprintln!(
                "step {step} op {op} by_dir {by_dir} d {d} n {:?} d2 {d2} n2 {:?} target {target} tier {tier:?} seq {}",
                String::from_utf8_lossy(n),
                String::from_utf8_lossy(n2),
                points.len()
            );
        }
        *tiers.entry(format!("{tier:?}")).or_insert(0) += 1;
        points.push((w0, fs.device().writes, file_paths(&mut fs)));
    }
    (fs, points, tiers)
}

/// Seeded random namespace and data changes among a few files (renames
/// over files, links, unlinks, writes, xattrs, truncates, new files), each
/// followed by fsync of the inode it changed (or, for a namespace change,
/// of a directory whose entry it changed), whatever tier that takes;
/// the power is cut after a sample of the writes (every one with
/// `FERROFS_FULL`), the unflushed ones dropped, kept or a random subset
/// kept. Since every change is fsynced, the files must show exactly what
/// they showed after the last fsync that completed (or after the one in
/// flight), no record may be refused, and fsck must be clean.
#[test]
fn every_change_fsynced_survives_a_crash() {
    let seeds: Vec<u64> = if let Ok(s) = std::env::var("TLSEED") {
        vec![s.parse().unwrap()]
    } else if full() {
        (1..=24).collect()
    } else {
        (1..=6).collect()
    };
    let mut tiers: BTreeMap<String, u32> = BTreeMap::new();
    for seed in seeds {
        let (mut fs, points, t) = random_fsyncs(seed, None);
        t.into_iter().for_each(|(k, n)| *tiers.entry(k).or_insert(0) += n);
        let total = fs.device().writes;
        let mut rng = Rng(seed ^ 0x71);
        let cuts: Vec<u64> = (points[0].1..=total).filter(|_| full() || rng.below(4) == 0).collect();
        for cut in cuts {
            let (mut fs, _, _) = random_fsyncs(seed, Some(cut));
            let dev = fs.device().clone();
            for (how, image) in [("drop", dev.crash_drop_all()), ("keep", dev.crash_keep_all()), ("random", dev.crash_random(&mut rng))] {
                let what = format!("seed {seed} cut {cut} {how}");
                let mut after = Filesystem::mount(image).unwrap_or_else(|e| panic!("{what}: {e:?}"));
                assert_eq!(after.replay_stopped(), None, "{what}");
                let seen = file_paths(&mut after);
                let done = points.iter().rev().find(|p| p.1 <= cut).expect("the starting point");
                let in_flight = points.iter().filter(|p| p.0 < cut && p.1 > cut);
                let ok = std::iter::once(done).chain(in_flight).any(|p| p.2 == seen);
                assert!(ok, "{what}: {seen:?}\nlast synced {:?}", done.2);
                assert_check_clean(&mut after, &what);
            }
        }
    }
    println!("tiers: {tiers:?}");
    assert!(tiers.get("TreeLog").copied().unwrap_or(0) > 40, "{tiers:?}");
}

/// A file whose blocks a snapshot shares: a shrinking truncate and a
/// punched hole, fsynced, replay dropping only this tree's references
/// (fsck checks every block's count against its users), and the snapshot's
/// copy is untouched.
#[test]
fn shared_blocks_keep_their_snapshots_references() {
    let mut fs = mount(fresh(32 << 20));
    let s = start(&mut fs);
    fs.write(SV, s.a, 0, &[5; 40000], ts(1)).unwrap();
    let snap = fs.snapshot(SV, SV, s.root, b"snap", true, [3; 16], ts(2)).unwrap();
    fs.commit().unwrap();
    let in_snap = visible_in(&mut fs, snap);
    fs.setattr(SV, s.a, &SetAttr { size: Some(9000), ..Default::default() }, ts(3)).unwrap();
    fs.punch_hole(SV, s.a, 0, 4096, ts(3)).unwrap();
    fs.write(SV, s.a, 8000, &[6; 3000], ts(3)).unwrap();
    assert_eq!(fs.fsync(SV, s.a).unwrap(), TL);
    let want = visible(&mut fs);
    let mut fs = mount(fs.device().crash_drop_all());
    assert_eq!(visible(&mut fs), want);
    assert_eq!(visible_in(&mut fs, snap), in_snap);
    assert_check_clean(&mut fs, "shared blocks");
}

/// A subvolume made read-only since the last commit may hold changes a
/// record would have to write into it: a full commit serves.
#[test]
fn read_only_subvolume_takes_a_full_commit() {
    let mut fs = mount(fresh(32 << 20));
    let root = fs.root_ino();
    let sv = fs.create_subvolume(SV, root, b"sv", [4; 16], 0, 0, ts(1)).unwrap();
    let l = fs.symlink(sv, 256, b"l", b"t", 0, 0, ts(1)).unwrap().ino;
    fs.commit().unwrap();
    fs.rename(sv, 256, b"l", 256, b"l2", 0, ts(2)).unwrap();
    fs.set_subvolume_read_only(sv, true).unwrap();
    assert_eq!(fs.fsync(sv, l).unwrap(), FsyncTier::FullCommit(Ineligible::Changed));
}

/// rename exchange of two files in one directory, then the directory's
/// fsync: each file's record would take the other's name, which replay of
/// the first alone could not do safely: a full commit.
#[test]
fn directory_fsync_after_rename_exchange_takes_a_full_commit() {
    let mut fs = mount(fresh(32 << 20));
    let s = start(&mut fs);
    fs.commit().unwrap();
    fs.rename(SV, s.root, b"a", s.root, b"b", RENAME_EXCHANGE, ts(2)).unwrap();
    assert_eq!(fs.fsync(SV, s.root).unwrap(), FsyncTier::FullCommit(Ineligible::SlotTaken));
    let want = visible(&mut fs);
    let mut fs = mount(fs.device().crash_drop_all());
    assert_eq!(visible(&mut fs), want);
}

/// A file moved in from another directory, then this directory's fsync:
/// its record carries all its names, so the old one goes too.
#[test]
fn directory_fsync_of_a_file_moved_in() {
    let sc = Scenario {
        name: "move in, fsync the new directory",
        steps: |r, s| {
            r.fs.rename(SV, s.d1, b"c2", s.d2, b"c3", 0, ts(2))?;
            r.fsync(s.d2, &["/d1/c2/", "/d2/c3/", "/c/"])
        },
        tier: TL,
        atomic: &[("/d1/c2/", "/d2/c3/")],
    };
    assert!(enumerate(&sc) >= 3);
}

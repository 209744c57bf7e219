// SPDX-License-Identifier: GPL-2.0
//! Model test: seeded random sequences of every operation, applied to the
//! core and to the reference model; the visible state (attributes, link
//! counts, directory listings with cookies, lookups, symlinks, xattr names)
//! is compared after every operation. Contents, the extent map and
//! SEEK_DATA/SEEK_HOLE answers are compared for the inode an operation
//! touched, after each commit for every inode changed since the last
//! comparison, and for all inodes after every remount. `check` must be
//! clean after every commit and remount. The model runs in a subvolume;
//! snapshots of it (read-only and writable, named in the default subvolume)
//! are frozen into a copy of their visible state when taken and compared
//! again after later changes, after every remount, after some are deleted
//! and dropped, and at the end after the source itself is deleted and
//! dropped. A failing seed prints itself;
//! replay one with `FERROFS_SEED=<seed>` (`FERROFS_STEPS=<n>` sets the
//! length); `FERROFS_FULL=1` runs more seeds, longer.

mod common;
use common::model::*;
use common::*;
use ferrofs_core::error::Error;
use ferrofs_core::fs::{Filesystem, SetAttr};
use ferrofs_core::subvol::SubvolId;
use std::collections::BTreeMap;

struct Run {
    rng: Rng,
    fs: Option<Filesystem<SimDev>>,
    m: Model,
    now: i64,
    ops: u64,
    commits: u64,
    remounts: u64,
    log: Vec<String>,
    /// Inodes whose data or xattrs changed since contents were last compared.
    touched: std::collections::BTreeSet<u64>,
    /// Live snapshots of the model's subvolume: id, name, frozen state.
    snaps: Vec<(SubvolId, String, BTreeMap<String, String>)>,
    snaps_taken: u64,
}

fn name(rng: &mut Rng) -> Vec<u8> {
    match rng.below(40) {
        0 => vec![b'L'; 255],
        1 => vec![b'T'; 256],
        _ => format!("n{}", rng.below(14)).into_bytes(),
    }
}

impl Run {
    fn fs(&mut self) -> &mut Filesystem<SimDev> {
        self.fs.as_mut().unwrap()
    }

    fn dirs(&self) -> Vec<u64> {
        self.m.inodes.iter().filter(|(_, i)| i.is_dir() && i.nlink > 0).map(|(k, _)| *k).collect()
    }

    fn pick<T: Clone>(&mut self, v: &[T]) -> Option<T> {
        if v.is_empty() {
            None
        } else {
            Some(v[self.rng.below(v.len() as u64) as usize].clone())
        }
    }

    fn files(&self) -> Vec<u64> {
        self.m.inodes.iter().filter(|(_, i)| matches!(i.body, Body::File { .. })).map(|(k, _)| *k).collect()
    }

    /// Every live snapshot still shows what it showed when taken.
    fn compare_snapshots(&mut self, when: &str) -> Result<(), String> {
        let fs = self.fs.as_mut().unwrap();
        for (id, name, want) in &self.snaps {
            let got = visible_in(fs, *id);
            if &got != want {
                return Err(format!("snapshot {name} ({}) changed {when}:\n want {want:#?}\n got {got:#?}", id.0));
            }
        }
        Ok(())
    }

    fn check_clean(&mut self) -> Result<(), String> {
        let r = self.fs().check(false).map_err(|e| format!("check failed: {e:?}"))?;
        if !r.is_clean() {
            let ps: Vec<String> = r.problems.iter().map(|p| p.to_string()).collect();
            return Err(format!("check: {}", ps.join("\n")));
        }
        Ok(())
    }

    fn same<T: std::fmt::Debug + PartialEq>(
        &self,
        what: &str,
        core: Result<T, Error>,
        model: Result<T, Error>,
    ) -> Result<Option<T>, String> {
        match (core, model) {
            (Ok(a), Ok(b)) => {
                if a != b {
                    return Err(format!("{what}: core {a:?} model {b:?}"));
                }
                Ok(Some(a))
            }
            (Err(a), Err(b)) if std::mem::discriminant(&a) == std::mem::discriminant(&b) => Ok(None),
            (a, b) => Err(format!("{what}: core {a:?} model {b:?}")),
        }
    }

    /// Frees what the model freed (the VFS would evict it now).
    fn evict(&mut self, freed: Option<u64>) -> Result<(), String> {
        if let Some(ino) = freed {
            self.fs().evict(SV, ino).map_err(|e| format!("evict {ino}: {e:?}"))?;
            if self.fs().getattr(SV, ino) != Err(Error::NotFound) {
                return Err(format!("inode {ino} survived evict"));
            }
        }
        Ok(())
    }

    fn step(&mut self) -> Result<(), String> {
        self.now += 1;
        let now = ts(self.now);
        let dirs = self.dirs();
        let dir = self.pick(&dirs).unwrap();
        let ents = self.m.entries();
        let mut focus = Vec::new();
        let op = self.rng.below(122);
        let desc;
        match op {
            0..=11 => {
                let n = name(&mut self.rng);
                let kind = self.rng.below(6);
                let (mode, rdev) = match kind {
                    0 => (0o10640, 0),
                    1 => (0o140600, 0),
                    2 => (0o20600, 0x1234),
                    3 => (0o60600, 0x0803),
                    _ => (0o100644, 0),
                };
                desc = format!("create {dir}/{} mode {mode:o}", String::from_utf8_lossy(&n[..n.len().min(8)]));
                let r = self.fs().create(SV, dir, &n, mode, rdev, 7, 8, now);
                let ino = r.as_ref().map(|a| a.ino).unwrap_or(0);
                let body = if mode & 0o170000 == 0o100000 {
                    Body::File { data: vec![], blocks: Default::default(), unwritten: Default::default() }
                } else {
                    Body::Special
                };
                let mr = self.m.new_inode(dir, &n, ino, mode, rdev, body, 7, 8);
                self.same(&desc, r.map(|_| ()), mr)?;
            }
            12..=17 => {
                let n = name(&mut self.rng);
                desc = format!("mkdir {dir}/{}", String::from_utf8_lossy(&n[..n.len().min(8)]));
                let r = self.fs().mkdir(SV, dir, &n, 0o750, 3, 4, now);
                let ino = r.as_ref().map(|a| a.ino).unwrap_or(0);
                let body = Body::Dir { entries: Default::default(), next_seq: 2, parent: dir };
                let mr = self.m.new_inode(dir, &n, ino, 0o40750, 0, body, 3, 4);
                self.same(&desc, r.map(|_| ()), mr)?;
            }
            18..=20 => {
                let n = name(&mut self.rng);
                let len = if self.rng.below(4) == 0 { 1 + self.rng.below(4095) as usize } else { 1 + self.rng.below(40) as usize };
                let target: Vec<u8> = (0..len).map(|i| b'a' + (i % 26) as u8).collect();
                desc = format!("symlink {dir} len {len}");
                let r = self.fs().symlink(SV, dir, &n, &target, 1, 1, now);
                let ino = r.as_ref().map(|a| a.ino).unwrap_or(0);
                let mr = self.m.new_inode(dir, &n, ino, 0o120777, 0, Body::Symlink(target), 1, 1);
                self.same(&desc, r.map(|_| ()), mr)?;
            }
            21..=24 => {
                // Nameless ones too (tmpfiles, unlinked files still open),
                // half of the time when there are any.
                let nameless: Vec<u64> = self.m.inodes.iter().filter(|(_, i)| !i.is_dir() && i.nlink == 0).map(|(k, _)| *k).collect();
                let cands: Vec<u64> = if !nameless.is_empty() && self.rng.below(2) == 0 {
                    nameless
                } else {
                    self.m.inodes.iter().filter(|(_, i)| !i.is_dir()).map(|(k, _)| *k).collect()
                };
                let Some(ino) = self.pick(&cands) else { return Ok(()) };
                let n = name(&mut self.rng);
                desc = format!("link {ino} -> {dir}");
                let r = self.fs().link(SV, ino, dir, &n, now).map(|_| ());
                let mr = self.m.link(ino, dir, &n);
                self.same(&desc, r, mr)?;
            }
            25..=33 => {
                let Some((d, n, _)) = self.pick(&ents) else { return Ok(()) };
                let n = if self.rng.below(10) == 0 { name(&mut self.rng) } else { n };
                desc = format!("unlink {d}/{}", String::from_utf8_lossy(&n[..n.len().min(8)]));
                let r = self.fs().unlink(SV, d, &n, now);
                let mr = self.m.unlink(d, &n);
                self.same(&desc, r, mr.map(|_| ()))?;
                if let Ok(f) = mr {
                    self.evict(f)?;
                }
            }
            34..=38 => {
                let Some((d, n, _)) = self.pick(&ents) else { return Ok(()) };
                desc = format!("rmdir {d}/{}", String::from_utf8_lossy(&n[..n.len().min(8)]));
                let r = self.fs().rmdir(SV, d, &n, now);
                let mr = self.m.rmdir(d, &n);
                self.same(&desc, r.map(|_| ()), mr.map(|_| ()))?;
                if let Ok(f) = mr {
                    self.evict(f)?;
                }
            }
            39..=48 => {
                let Some((d, n, _)) = self.pick(&ents) else { return Ok(()) };
                let nd = self.pick(&dirs).unwrap();
                let nn = if self.rng.below(3) == 0 {
                    let e2 = self.pick(&ents).unwrap();
                    e2.1
                } else {
                    name(&mut self.rng)
                };
                let nd = if self.rng.below(3) == 0 { self.pick(&ents).map(|e| e.0).unwrap_or(nd) } else { nd };
                let flags = [0, 0, 1, 2][self.rng.below(4) as usize];
                desc = format!(
                    "rename {d}/{} -> {nd}/{} flags {flags}",
                    String::from_utf8_lossy(&n),
                    String::from_utf8_lossy(&nn[..nn.len().min(8)])
                );
                let r = self.fs().rename(SV, d, &n, nd, &nn, flags, now);
                let mr = self.m.rename(d, &n, nd, &nn, flags);
                self.same(&desc, r.map(|_| ()), mr.map(|_| ()))?;
                if let Ok(f) = mr {
                    self.evict(f)?;
                }
            }
            49..=62 => {
                let files = self.files();
                let Some(ino) = self.pick(&files) else { return Ok(()) };
                let off = match self.rng.below(10) {
                    0 => self.rng.below(1 << 20),
                    _ => self.rng.below(48 << 10),
                };
                let len = match self.rng.below(10) {
                    0 => self.rng.below(200 << 10) as usize,
                    _ => self.rng.below(9000) as usize,
                };
                let data = self.rng.bytes(len);
                desc = format!("write {ino} off {off} len {len}");
                let r = self.fs().write(SV, ino, off, &data, now);
                let mr = self.m.write(ino, off, &data);
                self.same(&desc, r, mr)?;
                focus.push(ino);
            }
            63..=68 => {
                let files = self.files();
                let Some(ino) = self.pick(&files) else { return Ok(()) };
                let size = if self.rng.below(2) == 0 { self.rng.below(64 << 10) } else { self.rng.below(300 << 10) };
                desc = format!("truncate {ino} to {size}");
                let r = self.fs().truncate(SV, ino, size, now);
                let mr = self.m.truncate(ino, size);
                self.same(&desc, r, mr)?;
                focus.push(ino);
            }
            69..=72 => {
                let inos: Vec<u64> = self.m.inodes.keys().copied().collect();
                let ino = self.pick(&inos).unwrap();
                let mode = self.rng.below(0o7777) as u32;
                let uid = self.rng.below(5) as u32;
                desc = format!("setattr {ino} mode {mode:o} uid {uid}");
                let a = SetAttr { mode: Some(mode), uid: Some(uid), gid: Some(uid + 1), ..Default::default() };
                let r = self.fs().setattr(SV, ino, &a, now).map(|_| ());
                let i = self.m.inodes.get_mut(&ino).unwrap();
                i.mode = (i.mode & 0o170000) | mode;
                i.uid = uid;
                i.gid = uid + 1;
                self.same(&desc, r, Ok(()))?;
            }
            73..=80 => {
                let inos: Vec<u64> = self.m.inodes.keys().copied().collect();
                let ino = self.pick(&inos).unwrap();
                let xn = format!("user.x{}", self.rng.below(6)).into_bytes();
                let len = match self.rng.below(20) {
                    0 => 65536 + self.rng.below(2) as usize,
                    1..=3 => self.rng.below(20_000) as usize,
                    _ => self.rng.below(300) as usize,
                };
                let v = self.rng.bytes(len);
                let flags = [0, 0, 1, 2][self.rng.below(4) as usize];
                desc = format!("setxattr {ino} len {len} flags {flags}");
                let r = self.fs().set_xattr(SV, ino, &xn, &v, flags, now);
                let mr = self.m.set_xattr(ino, &xn, &v, flags);
                self.same(&desc, r, mr)?;
                focus.push(ino);
            }
            81..=84 => {
                let inos: Vec<u64> = self.m.inodes.keys().copied().collect();
                let ino = self.pick(&inos).unwrap();
                let xn = format!("user.x{}", self.rng.below(6)).into_bytes();
                desc = format!("removexattr {ino}");
                let r = self.fs().remove_xattr(SV, ino, &xn, now);
                let mr = self.m.remove_xattr(ino, &xn);
                self.same(&desc, r, mr)?;
            }
            85..=88 => {
                let cands: Vec<u64> = self.m.inodes.iter().filter(|(_, i)| !i.is_dir()).map(|(k, _)| *k).collect();
                let Some(ino) = self.pick(&cands) else { return Ok(()) };
                desc = format!("open {ino}");
                self.m.open.insert(ino);
            }
            89..=91 => {
                let open: Vec<u64> = self.m.open.iter().copied().collect();
                let Some(ino) = self.pick(&open) else { return Ok(()) };
                desc = format!("close {ino}");
                self.m.open.remove(&ino);
                if self.m.inodes[&ino].nlink == 0 {
                    self.m.inodes.remove(&ino);
                    self.evict(Some(ino))?;
                } else {
                    self.fs().evict(SV, ino).map_err(|e| format!("evict linked {ino}: {e:?}"))?;
                    self.fs().getattr(SV, ino).map_err(|e| format!("linked {ino} gone after evict: {e:?}"))?;
                }
            }
            92..=96 => {
                desc = "commit".into();
                self.fs().commit().map_err(|e| format!("commit: {e:?}"))?;
                self.commits += 1;
                self.check_clean()?;
                self.log.push(desc.clone());
                // Contents of everything changed since the last comparison.
                let touched: Vec<u64> = std::mem::take(&mut self.touched).into_iter().collect();
                return compare(self.fs.as_mut().unwrap(), &self.m, false, &touched);
            }
            100..=101 => {
                let mode = [0o600, 0o100640, 0o40755][self.rng.below(3) as usize];
                desc = format!("tmpfile mode {mode:o}");
                match self.fs().tmpfile(SV, mode, 5, 6, now) {
                    Err(Error::Invalid(_)) if mode & 0o170000 == 0o40000 => {}
                    Ok(a) if mode & 0o170000 != 0o40000 && a.nlink == 0 => self.m.tmpfile(a.ino, 0o100000 | (mode & 0o7777), 5, 6),
                    r => return Err(format!("{desc}: {r:?}")),
                }
            }
            102..=105 | 109..=110 => {
                let files = self.files();
                let Some(ino) = self.pick(&files) else { return Ok(()) };
                let (off, len) = match self.rng.below(12) {
                    0 => (self.rng.below(1 << 16), 0),
                    1 => ((1 << 48) - self.rng.below(4096), 4096 + self.rng.below(100)),
                    2 => (self.rng.below(1 << 20), 1 + self.rng.below(1 << 18)),
                    _ => (self.rng.below(300 << 10), 1 + self.rng.below(40_000)),
                };
                let keep = self.rng.below(2) == 0;
                let (r, mr) = if op <= 105 {
                    desc = format!("fallocate {ino} off {off} len {len} keep_size {keep}");
                    (self.fs().fallocate(SV, ino, off, len, keep, now), self.m.fallocate(ino, off, len, keep))
                } else {
                    desc = format!("zero_range {ino} off {off} len {len} keep_size {keep}");
                    (self.fs().zero_range(SV, ino, off, len, keep, now), self.m.zero_range(ino, off, len, keep))
                };
                self.same(&desc, r, mr)?;
                focus.push(ino);
            }
            106..=108 => {
                let files = self.files();
                let Some(ino) = self.pick(&files) else { return Ok(()) };
                let size = self.m.inodes[&ino].size();
                let off = match self.rng.below(4) {
                    0 => size.saturating_sub(self.rng.below(9000)),
                    _ => self.rng.below(300 << 10),
                };
                let len = match self.rng.below(8) {
                    0 => 1 << 40,
                    1 => 0,
                    _ => 1 + self.rng.below(60_000),
                };
                desc = format!("punch_hole {ino} off {off} len {len}");
                let r = self.fs().punch_hole(SV, ino, off, len, now);
                let mr = self.m.punch_hole(ino, off, len);
                self.same(&desc, r, mr)?;
                focus.push(ino);
            }
            111 => {
                // The VFS refuses a read-only remount while unlinked files are open.
                if self.m.open.iter().any(|i| self.m.inodes[i].nlink == 0) {
                    return Ok(());
                }
                desc = "remount read-only and back".into();
                self.fs().set_read_only(true).map_err(|e| format!("set_read_only(true): {e:?}"))?;
                let root = self.m.root;
                match self.fs().create(SV, root, b"refused", 0o644, 0, 0, 0, now) {
                    Err(Error::ReadOnly) => {}
                    r => return Err(format!("create while read-only: {r:?}")),
                }
                self.fs().set_read_only(false).map_err(|e| format!("set_read_only(false): {e:?}"))?;
                self.check_clean()?;
            }
            112..=115 => {
                let files = self.files();
                let Some(ino) = self.pick(&files) else { return Ok(()) };
                desc = format!("extent map and seeks of {ino}");
                focus.push(ino);
            }
            116..=118 if self.snaps.len() >= 6 => {
                // Enough kept: comparing them all is what the time goes to.
                let (id, n, _) = self.snaps.remove(0);
                desc = format!("delete oldest snapshot {n} ({})", id.0);
                let r = self.fs().delete_subvolume(SubvolId::DEFAULT, 256, n.as_bytes(), now);
                if r != Ok(id) {
                    return Err(format!("{desc}: {r:?}"));
                }
            }
            116..=118 => {
                let read_only = self.rng.below(2) == 0;
                let n = format!("snap{}", self.snaps_taken);
                desc = format!("snapshot {n} read_only {read_only}");
                let uuid = [self.snaps_taken as u8; 16];
                let id = self
                    .fs()
                    .snapshot(SV, SubvolId::DEFAULT, 256, n.as_bytes(), read_only, uuid, now)
                    .map_err(|e| format!("{desc}: {e:?}"))?;
                self.snaps_taken += 1;
                self.commits += 1;
                let frozen = visible_in(self.fs(), id);
                let source = visible_in(self.fs(), SV);
                if frozen != source {
                    return Err(format!("{desc}: the snapshot differs from its source"));
                }
                self.snaps.push((id, n, frozen));
                self.check_clean()?;
            }
            119 => {
                let Some(i) = (!self.snaps.is_empty()).then(|| self.rng.below(self.snaps.len() as u64) as usize) else { return Ok(()) };
                let (id, n, _) = self.snaps.remove(i);
                desc = format!("delete snapshot {n} ({})", id.0);
                let r = self.fs().delete_subvolume(SubvolId::DEFAULT, 256, n.as_bytes(), now);
                if r != Ok(id) {
                    return Err(format!("{desc}: {r:?}"));
                }
                if self.fs().getattr(id, 256) != Err(Error::NotFound) {
                    return Err(format!("{desc}: still readable"));
                }
                self.compare_snapshots("after a deletion")?;
            }
            120..=121 => {
                desc = "drop step".into();
                let limit = 1 + self.rng.below(8);
                self.fs().drop_step_limited(limit).map_err(|e| format!("{desc}: {e:?}"))?;
                self.commits += 1;
                self.check_clean()?;
                self.compare_snapshots("after a drop step")?;
            }
            97..=99 => {
                desc = "remount".into();
                let dev = self.fs.take().unwrap().unmount().map_err(|e| format!("unmount: {e:?}"))?;
                self.fs = Some(Filesystem::mount(dev).map_err(|e| format!("mount: {e:?}"))?);
                self.m.remounted();
                self.remounts += 1;
                self.check_clean()?;
                self.compare_snapshots("after a remount")?;
                self.log.push(desc.clone());
                self.touched.clear();
                return compare(self.fs.as_mut().unwrap(), &self.m, true, &[]);
            }
            _ => unreachable!(),
        }
        self.ops += 1;
        self.log.push(desc);
        self.touched.extend(focus.iter().copied());
        compare(self.fs.as_mut().unwrap(), &self.m, false, &focus)
    }
}

fn run_seed(seed: u64, steps: usize) -> (u64, u64, u64) {
    let mut fs = mount(fresh(64 << 20));
    let root = fs.root_ino();
    let work = fs.create_subvolume(SubvolId::DEFAULT, root, b"work", [0xee; 16], 0, 0, ts(1)).unwrap();
    assert_eq!(work, SV);
    let mut r = Run {
        rng: Rng(seed),
        fs: Some(fs),
        m: Model::new(root),
        now: 10_000,
        ops: 0,
        commits: 0,
        remounts: 0,
        log: Vec::new(),
        touched: Default::default(),
        snaps: Vec::new(),
        snaps_taken: 0,
    };
    for i in 0..steps {
        if let Err(e) = r.step() {
            let tail: Vec<&String> = r.log.iter().rev().take(12).collect();
            panic!("FERROFS_SEED={seed} failed at step {i}: {e}\nlast ops (newest first): {tail:#?}");
        }
    }
    r.fs().commit().unwrap();
    r.check_clean().unwrap_or_else(|e| panic!("FERROFS_SEED={seed}: final {e}"));
    compare(r.fs.as_mut().unwrap(), &r.m, true, &[]).unwrap_or_else(|e| panic!("FERROFS_SEED={seed}: final {e}"));
    // The source goes; every snapshot stays as it was.
    let end = ts(r.now + 1);
    r.fs().delete_subvolume(SubvolId::DEFAULT, root, b"work", end).unwrap();
    while r.fs().drop_step().unwrap() {}
    r.compare_snapshots("after the source was dropped").unwrap_or_else(|e| panic!("FERROFS_SEED={seed}: {e}"));
    r.check_clean().unwrap_or_else(|e| panic!("FERROFS_SEED={seed}: after dropping the source: {e}"));
    let dev = r.fs.take().unwrap().unmount().unwrap();
    r.fs = Some(mount(dev));
    r.compare_snapshots("after the last remount").unwrap_or_else(|e| panic!("FERROFS_SEED={seed}: {e}"));
    r.check_clean().unwrap_or_else(|e| panic!("FERROFS_SEED={seed}: last remount: {e}"));
    (r.ops, r.commits, r.remounts)
}

#[test]
fn model_random_sequences() {
    let (seeds, steps): (Vec<u64>, usize) = match std::env::var("FERROFS_SEED").ok().and_then(|s| s.parse().ok()) {
        Some(s) => (vec![s], 1500),
        None if full() => ((1..=64).collect(), 2000),
        None => ((1..=6).collect(), 1200),
    };
    let steps = std::env::var("FERROFS_STEPS").ok().and_then(|s| s.parse().ok()).unwrap_or(steps);
    let t = std::time::Instant::now();
    let (mut ops, mut commits, mut remounts) = (0, 0, 0);
    for &s in &seeds {
        let (o, c, m) = run_seed(s, steps);
        ops += o;
        commits += c;
        remounts += m;
    }
    println!("model: {} seeds, {ops} operations, {commits} commits, {remounts} remounts compared in {:.2?}", seeds.len(), t.elapsed());
}

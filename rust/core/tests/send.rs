// SPDX-License-Identifier: GPL-2.0
//! Send: streams of full and incremental sends, applied by a receiver over
//! the core API onto a second filesystem, recreate the snapshot exactly
//! (names, hard links, data, holes, xattrs, owners, modes, times), through
//! renames in every combination; the tree diff reads only what changed;
//! bad requests are refused; snapshots being sent stay.

mod common;
use common::*;
use ferrofs_core::error::Error;
use ferrofs_core::format::*;
use ferrofs_core::fs::{Filesystem, SetAttr, RENAME_EXCHANGE};
use ferrofs_core::mem::TryVec;
use ferrofs_core::send::*;
use ferrofs_core::send_stream::{decode_command, decode_stream_header, Command, HEADER_LEN};
use ferrofs_core::subvol::SubvolId;
use std::collections::BTreeMap;

const SV: SubvolId = SubvolId::DEFAULT;
type Fs = Filesystem<SimDev>;

/// Runs a whole send with steps of `budget` bytes.
fn send_with(fs: &mut Fs, req: SendRequest, budget: usize) -> Result<Vec<u8>, Error> {
    send_cloning(fs, req, &[], budget)
}

/// `send_with` naming clone sources.
fn send_cloning(fs: &mut Fs, req: SendRequest, clones: &[SubvolId], budget: usize) -> Result<Vec<u8>, Error> {
    let mut st = fs.send_begin(req, clones)?;
    let mut out = Vec::new();
    let r = loop {
        let mut buf = TryVec::new();
        match fs.send_step(&mut st, &mut buf, budget) {
            Ok(done) => {
                out.extend_from_slice(&buf);
                if done {
                    break Ok(out);
                }
            }
            Err(e) => break Err(e),
        }
    };
    fs.send_end(st);
    r
}

fn send(fs: &mut Fs, source: SubvolId, parent: Option<SubvolId>) -> Vec<u8> {
    send_with(fs, SendRequest { source, parent, flags: 0, version: 1, resume: 0, resume_crc: 0 }, 1 << 20).unwrap()
}

fn snap(fs: &mut Fs, src: SubvolId, name: &str) -> SubvolId {
    let root = fs.root_ino();
    let mut uuid = [0u8; 16];
    uuid[..name.len().min(16)].copy_from_slice(&name.as_bytes()[..name.len().min(16)]);
    fs.snapshot(src, SV, root, name.as_bytes(), true, uuid, ts(50)).unwrap()
}

/// A receiver over the core API: applies a stream inside `fs`, creating
/// the received subvolume (SUBVOL) or a writable snapshot of the one
/// received as the parent (SNAPSHOT) in the top directory. Returns the
/// subvolume it made.
struct Receiver {
    /// Received subvolumes by UUID.
    by_uuid: BTreeMap<[u8; 16], SubvolId>,
}

impl Receiver {
    fn new() -> Self {
        Receiver { by_uuid: BTreeMap::new() }
    }

    fn resolve(fs: &mut Fs, sv: SubvolId, path: &[u8]) -> u64 {
        let mut ino = fs.root_ino();
        for c in path.split(|&b| b == b'/').filter(|c| !c.is_empty()) {
            ino = fs.lookup(sv, ino, c).unwrap_or_else(|e| panic!("receive: no {} ({e:?})", String::from_utf8_lossy(path)));
        }
        ino
    }

    fn parent_of<'a>(fs: &mut Fs, sv: SubvolId, path: &'a [u8]) -> (u64, &'a [u8]) {
        match path.iter().rposition(|&b| b == b'/') {
            Some(i) => (Self::resolve(fs, sv, &path[..i]), &path[i + 1..]),
            None => (fs.root_ino(), path),
        }
    }

    fn apply(&mut self, fs: &mut Fs, stream: &[u8]) -> SubvolId {
        let version = decode_stream_header(stream).unwrap();
        let mut at = HEADER_LEN;
        let mut sv = None;
        let now = ts(99);
        let top = fs.root_ino();
        while at < stream.len() {
            let (cmd, used) = decode_command(&stream[at..], version).unwrap();
            at += used;
            let cur = sv.unwrap_or(SV);
            match cmd {
                Command::Subvol { uuid, .. } | Command::Snapshot { uuid, .. } if self.by_uuid.contains_key(&uuid) => {
                    // A resumed stream: on with the partial subvolume.
                    sv = Some(self.by_uuid[&uuid]);
                    let (marker, used) = decode_command(&stream[at..], version).unwrap();
                    assert!(matches!(marker, Command::SetXattr { name: RESUME_XATTR, .. }), "{marker:?}");
                    at += used;
                }
                Command::Subvol { path, uuid, .. } => {
                    let id = fs.create_subvolume(SV, top, path, [7; 16], 0, 0, now).unwrap();
                    self.by_uuid.insert(uuid, id);
                    sv = Some(id);
                }
                Command::Snapshot { path, uuid, clone_uuid, .. } => {
                    let parent = self.by_uuid[&clone_uuid];
                    let id = fs.snapshot(parent, SV, top, path, false, [8; 16], now).unwrap();
                    self.by_uuid.insert(uuid, id);
                    sv = Some(id);
                }
                Command::Mkfile { path, .. } => self.make(fs, cur, path, S_IFREG | 0o600, 0, None),
                Command::Mkdir { path, .. } => {
                    let (d, n) = Self::parent_of(fs, cur, path);
                    fs.mkdir(cur, d, n, 0o700, 0, 0, now).unwrap();
                }
                Command::Mknod { path, mode, rdev, .. } => self.make(fs, cur, path, mode as u32, rdev, None),
                Command::Mkfifo { path, .. } => self.make(fs, cur, path, S_IFIFO | 0o600, 0, None),
                Command::Mksock { path, .. } => self.make(fs, cur, path, S_IFSOCK | 0o600, 0, None),
                Command::Symlink { path, target, .. } => self.make(fs, cur, path, S_IFLNK, 0, Some(target)),
                Command::Rename { from, to } => {
                    let (od, on) = Self::parent_of(fs, cur, from);
                    let (nd, nn) = Self::parent_of(fs, cur, to);
                    fs.rename(cur, od, on, nd, nn, 0, now)
                        .unwrap_or_else(|e| panic!("rename {} -> {}: {e:?}", String::from_utf8_lossy(from), String::from_utf8_lossy(to)));
                }
                Command::Link { path, target } => {
                    let ino = Self::resolve(fs, cur, target);
                    let (d, n) = Self::parent_of(fs, cur, path);
                    fs.link(cur, ino, d, n, now).unwrap();
                }
                Command::Unlink { path } => {
                    let (d, n) = Self::parent_of(fs, cur, path);
                    fs.unlink(cur, d, n, now).unwrap_or_else(|e| panic!("unlink {}: {e:?}", String::from_utf8_lossy(path)));
                }
                Command::Rmdir { path } => {
                    let (d, n) = Self::parent_of(fs, cur, path);
                    fs.rmdir(cur, d, n, now).unwrap();
                }
                Command::SetXattr { path, name, data } => {
                    let ino = Self::resolve(fs, cur, path);
                    fs.set_xattr(cur, ino, name, data, 0, now).unwrap();
                }
                Command::RemoveXattr { path, name } => {
                    let ino = Self::resolve(fs, cur, path);
                    fs.remove_xattr(cur, ino, name, now).unwrap();
                }
                Command::Write { path, offset, data } => {
                    let ino = Self::resolve(fs, cur, path);
                    fs.write(cur, ino, offset, data, now).unwrap();
                }
                Command::Truncate { path, size } => {
                    let ino = Self::resolve(fs, cur, path);
                    fs.truncate(cur, ino, size, now).unwrap();
                }
                Command::Chmod { path, mode } => {
                    let ino = Self::resolve(fs, cur, path);
                    fs.setattr(cur, ino, &SetAttr { mode: Some(mode as u32), ..Default::default() }, now).unwrap();
                }
                Command::Chown { path, uid, gid } => {
                    let ino = Self::resolve(fs, cur, path);
                    fs.setattr(cur, ino, &SetAttr { uid: Some(uid as u32), gid: Some(gid as u32), ..Default::default() }, now).unwrap();
                }
                Command::Utimes { path, atime, mtime, .. } => {
                    let ino = Self::resolve(fs, cur, path);
                    let t = |s: ferrofs_core::send_stream::StreamTime| Timespec { sec: s.sec as i64, nsec: s.nsec };
                    let a = SetAttr { atime: Some(t(atime)), mtime: Some(t(mtime)), ..Default::default() };
                    fs.setattr(cur, ino, &a, now).unwrap();
                }
                Command::Fallocate { path, mode, offset, len } => {
                    assert_eq!(mode, 3, "only punch-hole is sent");
                    let ino = Self::resolve(fs, cur, path);
                    fs.punch_hole(cur, ino, offset, len, now).unwrap();
                }
                Command::Clone { path, offset, len, clone_uuid, clone_path, clone_offset, .. } => {
                    let from = self.by_uuid[&clone_uuid];
                    let src = Self::resolve(fs, from, clone_path);
                    let mut buf = vec![0u8; len as usize];
                    let n = fs.read(from, src, clone_offset, &mut buf).unwrap();
                    assert_eq!(n as u64, len, "clone past the source's end");
                    let ino = Self::resolve(fs, cur, path);
                    fs.write(cur, ino, offset, &buf, now).unwrap();
                }
                Command::UpdateExtent { .. } => {}
                Command::End => break,
                c => panic!("receiver: unexpected {c:?}"),
            }
        }
        assert_eq!(at, stream.len(), "bytes after END");
        sv.expect("stream without SUBVOL or SNAPSHOT")
    }

    fn make(&mut self, fs: &mut Fs, sv: SubvolId, path: &[u8], mode: u32, rdev: u64, target: Option<&[u8]>) {
        let (d, n) = Self::parent_of(fs, sv, path);
        match target {
            Some(t) => fs.symlink(sv, d, n, t, 0, 0, ts(99)).map(|_| ()),
            None => fs.create(sv, d, n, mode, rdev, 0, 0, ts(99)).map(|_| ()),
        }
        .unwrap_or_else(|e| panic!("create {}: {e:?}", String::from_utf8_lossy(path)));
    }
}

/// Everything send must carry, by path: type, mode, owner, size, data,
/// target, xattrs, atime, mtime, and the other names of the same inode.
fn tree_of(fs: &mut Fs, sv: SubvolId) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut by_ino: BTreeMap<u64, Vec<String>> = BTreeMap::new();
    let mut todo = vec![(String::new(), fs.root_ino())];
    while let Some((path, ino)) = todo.pop() {
        let a = fs.getattr(sv, ino).unwrap();
        // A directory's size counts names of nested subvolumes, which
        // send leaves out.
        let size = if a.file_type() == FileType::Dir { 0 } else { a.size };
        let mut d =
            format!("mode {:o} uid {} gid {} size {} rdev {} atime {:?} mtime {:?}", a.mode, a.uid, a.gid, size, a.rdev, a.atime, a.mtime);
        match a.file_type() {
            FileType::Dir => {
                let mut ents = Vec::new();
                fs.readdir(sv, ino, 0, &mut |n, i, _, _| {
                    ents.push((n.to_vec(), i));
                    true
                })
                .unwrap();
                for (n, i) in ents {
                    if i != ROOT_DIR_INO {
                        todo.push((format!("{path}/{}", String::from_utf8_lossy(&n)), i));
                    }
                }
            }
            FileType::Regular => {
                let mut buf = vec![0u8; a.size as usize];
                fs.read(sv, ino, 0, &mut buf).unwrap();
                d.push_str(&format!(" data {:x} nlink {}", fnv(&buf), a.nlink));
                by_ino.entry(ino).or_default().push(path.clone());
            }
            FileType::Symlink => d.push_str(&format!(" target {}", String::from_utf8_lossy(&fs.readlink(sv, ino).unwrap()))),
            _ => {
                d.push_str(&format!(" nlink {}", a.nlink));
                by_ino.entry(ino).or_default().push(path.clone());
            }
        }
        d.push_str(&xattr_summary(fs, sv, ino));
        out.insert(path, d);
    }
    for paths in by_ino.values() {
        let mut all = paths.clone();
        all.sort();
        for p in paths {
            out.get_mut(p).unwrap().push_str(&format!(" names {all:?}"));
        }
    }
    out
}

fn assert_same(src: &mut Fs, sv: SubvolId, dst: &mut Fs, got: SubvolId, what: &str) {
    let want = tree_of(src, sv);
    let have = tree_of(dst, got);
    if want != have {
        for (k, v) in &want {
            match have.get(k) {
                Some(h) if h == v => {}
                Some(h) => eprintln!("{what}: {k}\n  want {v}\n  have {h}"),
                None => eprintln!("{what}: {k} missing"),
            }
        }
        for k in have.keys().filter(|k| !want.contains_key(*k)) {
            eprintln!("{what}: {k} extra");
        }
        panic!("{what}: received tree differs");
    }
}

/// Every kind of inode, hard links across directories, holes, xattrs.
fn populate(fs: &mut Fs, rng: &mut Rng) {
    let root = fs.root_ino();
    let a = fs.mkdir(SV, root, b"a", 0o755, 1, 2, ts(1)).unwrap().ino;
    let b = fs.mkdir(SV, a, b"b", 0o700, 3, 4, ts(1)).unwrap().ino;
    let f = fs.create(SV, root, b"f", 0o644, 0, 5, 6, ts(2)).unwrap().ino;
    fs.write(SV, f, 0, &rng.bytes(70_000), ts(2)).unwrap();
    let h = fs.create(SV, a, b"holes", 0o600, 0, 0, 0, ts(2)).unwrap().ino;
    fs.write(SV, h, 100_000, &rng.bytes(5000), ts(2)).unwrap();
    fs.write(SV, h, 300_000, &rng.bytes(10), ts(2)).unwrap();
    fs.truncate(SV, h, 500_000, ts(2)).unwrap();
    fs.link(SV, f, b, b"f-link", ts(3)).unwrap();
    fs.set_xattr(SV, f, b"user.one", b"1", 0, ts(3)).unwrap();
    fs.set_xattr(SV, b, b"user.dir", &rng.bytes(3000), 0, ts(3)).unwrap();
    fs.symlink(SV, b, b"sym", b"../../f", 7, 8, ts(3)).unwrap();
    fs.create(SV, root, b"fifo", S_IFIFO | 0o640, 0, 0, 0, ts(3)).unwrap();
    fs.create(SV, a, b"sock", S_IFSOCK | 0o600, 0, 0, 0, ts(3)).unwrap();
    fs.create(SV, a, b"chr", S_IFCHR | 0o600, 0x0501, 0, 0, ts(3)).unwrap();
    fs.create(SV, root, b"empty", 0o4755, 0, 0, 0, ts(3)).unwrap();
    let t = SetAttr { atime: Some(ts(11)), mtime: Some(ts(12)), ..Default::default() };
    fs.setattr(SV, b, &t, ts(13)).unwrap();
}

#[test]
fn full_send_recreates_the_snapshot() {
    let mut rng = Rng(seed_or(1));
    let mut fs = mount(fresh(64 << 20));
    populate(&mut fs, &mut rng);
    // More entries than one batch of the walk, a directory among them.
    let root = fs.root_ino();
    let many = fs.mkdir(SV, root, b"many", 0o755, 0, 0, ts(4)).unwrap().ino;
    for i in 0..150 {
        if i == 70 {
            let sub = fs.mkdir(SV, many, b"sub", 0o755, 0, 0, ts(4)).unwrap().ino;
            fs.create(SV, sub, b"leaf", 0o644, 0, 0, 0, ts(4)).unwrap();
        }
        let f = fs.create(SV, many, format!("f{i}").as_bytes(), 0o644, 0, 0, 0, ts(4)).unwrap().ino;
        fs.write(SV, f, 0, &rng.bytes(i * 37), ts(4)).unwrap();
    }
    let s1 = snap(&mut fs, SV, "s1");
    let stream = send(&mut fs, s1, None);
    let mut dst = mount(fresh(64 << 20));
    let got = Receiver::new().apply(&mut dst, &stream);
    assert_same(&mut fs, s1, &mut dst, got, "full");
    // The same stream whatever the step size.
    let small = send_with(&mut fs, SendRequest { source: s1, parent: None, flags: 0, version: 1, resume: 0, resume_crc: 0 }, 1).unwrap();
    assert_eq!(small, stream);
    assert_check_clean(&mut fs, "after send");
}

/// The changes incremental send finds hardest: swaps, a directory moved
/// under its former child, names reused by other inodes, inode numbers
/// reused, hard links added and removed across directories, deleted
/// directories with deleted contents, data, holes, size, xattrs, owners.
#[test]
fn incremental_send_applies_renames_in_every_combination() {
    let mut rng = Rng(seed_or(2));
    let mut fs = mount(fresh(64 << 20));
    populate(&mut fs, &mut rng);
    let root = fs.root_ino();
    let s1 = snap(&mut fs, SV, "s1");
    let a = fs.lookup(SV, root, b"a").unwrap();
    let b = fs.lookup(SV, a, b"b").unwrap();
    let f = fs.lookup(SV, root, b"f").unwrap();
    // a/b moves to the top, then a moves under it: a directory under its
    // former child.
    fs.rename(SV, a, b"b", root, b"b", 0, ts(20)).unwrap();
    fs.rename(SV, root, b"a", b, b"a", 0, ts(20)).unwrap();
    // f and fifo swap names.
    fs.rename(SV, root, b"f", root, b"fifo", RENAME_EXCHANGE, ts(20)).unwrap();
    // A new file takes the old name of a moved one; one more link, one less.
    fs.create(SV, root, b"empty2", 0o600, 0, 0, 0, ts(20)).unwrap();
    fs.rename(SV, root, b"empty", a, b"empty", 0, ts(20)).unwrap();
    let n = fs.create(SV, root, b"empty", 0o600, 0, 0, 0, ts(20)).unwrap().ino;
    fs.write(SV, n, 0, b"new data", ts(20)).unwrap();
    fs.link(SV, f, a, b"f-link2", ts(20)).unwrap();
    fs.unlink(SV, b, b"f-link", ts(20)).unwrap();
    // A deleted directory with contents, and its inode number's new owner.
    let d = fs.mkdir(SV, root, b"doomed", 0o755, 0, 0, ts(20)).unwrap().ino;
    fs.create(SV, d, b"inside", 0o600, 0, 0, 0, ts(20)).unwrap();
    let s2 = snap(&mut fs, SV, "s2");
    fs.unlink(SV, d, b"inside", ts(21)).unwrap();
    fs.rmdir(SV, root, b"doomed", ts(21)).unwrap();
    // Data: overwrite, hole punched, size cut, size grown past a hole.
    let h = fs.lookup(SV, a, b"holes").unwrap();
    fs.write(SV, f, 4096, &rng.bytes(9000), ts(22)).unwrap();
    fs.punch_hole(SV, h, 98_304, 8192, ts(22)).unwrap();
    fs.truncate(SV, h, 200_000, ts(22)).unwrap();
    fs.truncate(SV, h, 900_000, ts(22)).unwrap();
    fs.set_xattr(SV, f, b"user.one", b"changed", 0, ts(22)).unwrap();
    fs.set_xattr(SV, f, b"user.two", b"2", 0, ts(22)).unwrap();
    fs.remove_xattr(SV, b, b"user.dir", ts(22)).unwrap();
    fs.setattr(SV, n, &SetAttr { uid: Some(77), mode: Some(0o640), ..Default::default() }, ts(22)).unwrap();
    let s3 = snap(&mut fs, SV, "s3");

    let mut dst = mount(fresh(64 << 20));
    let mut rx = Receiver::new();
    let got1 = rx.apply(&mut dst, &send(&mut fs, s1, None));
    assert_same(&mut fs, s1, &mut dst, got1, "s1");
    let got2 = rx.apply(&mut dst, &send(&mut fs, s2, Some(s1)));
    assert_same(&mut fs, s2, &mut dst, got2, "s2 from s1");
    let got3 = rx.apply(&mut dst, &send(&mut fs, s3, Some(s2)));
    assert_same(&mut fs, s3, &mut dst, got3, "s3 from s2");
    // Any two related snapshots, not only neighbours.
    assert_check_clean(&mut dst, "receiver");
    let mut dst2 = mount(fresh(64 << 20));
    let mut rx2 = Receiver::new();
    rx2.apply(&mut dst2, &send(&mut fs, s1, None));
    let got3b = rx2.apply(&mut dst2, &send(&mut fs, s3, Some(s1)));
    assert_same(&mut fs, s3, &mut dst2, got3b, "s3 from s1");
}

/// Random operations between snapshots; each incremental stream applied
/// to the previous received snapshot gives the new one.
#[test]
fn incremental_send_follows_random_changes() {
    let seed = seed_or(3);
    let rounds = if full() { 60 } else { 12 };
    let mut rng = Rng(seed);
    let mut fs = mount(fresh(128 << 20));
    let mut dst = mount(fresh(128 << 20));
    let mut rx = Receiver::new();
    populate(&mut fs, &mut rng);
    let mut prev = snap(&mut fs, SV, "r0");
    let got = rx.apply(&mut dst, &send(&mut fs, prev, None));
    assert_same(&mut fs, prev, &mut dst, got, "r0");
    for round in 1..=rounds {
        for _ in 0..25 {
            random_op(&mut fs, &mut rng);
        }
        let next = snap(&mut fs, SV, &format!("r{round}"));
        let stream = send(&mut fs, next, Some(prev));
        let got = rx.apply(&mut dst, &stream);
        assert_same(&mut fs, next, &mut dst, got, &format!("seed {seed} round {round}"));
        prev = next;
    }
    assert_check_clean(&mut dst, "receiver");
}

/// Every path in the live subvolume: (path, parent dir, name, ino, is dir).
fn paths(fs: &mut Fs) -> Vec<(u64, Vec<u8>, u64, bool)> {
    let mut out = Vec::new();
    let mut todo = vec![fs.root_ino()];
    while let Some(d) = todo.pop() {
        let mut ents = Vec::new();
        fs.readdir(SV, d, 0, &mut |n, i, t, _| {
            ents.push((n.to_vec(), i, t));
            true
        })
        .unwrap();
        for (n, i, t) in ents {
            if i == ROOT_DIR_INO {
                continue;
            }
            let dir = t == FileType::Dir;
            if dir {
                todo.push(i);
            }
            out.push((d, n, i, dir));
        }
    }
    out
}

fn random_op(fs: &mut Fs, rng: &mut Rng) {
    let all = paths(fs);
    let dirs: Vec<u64> = std::iter::once(fs.root_ino()).chain(all.iter().filter(|p| p.3).map(|p| p.2)).collect();
    let pick_dir = |rng: &mut Rng| dirs[rng.below(dirs.len() as u64) as usize];
    let name = |rng: &mut Rng| format!("n{}", rng.below(12)).into_bytes();
    let t = ts(100 + rng.below(1000) as i64);
    let any = if all.is_empty() { None } else { Some(all[rng.below(all.len() as u64) as usize].clone()) };
    // Errors (a name taken, a directory not empty, a move into itself) are
    // part of the game: the operation just does not happen.
    let _ = match rng.below(11) {
        0 | 1 => fs.create(SV, pick_dir(rng), &name(rng), 0o644, 0, 0, 0, t).map(|a| {
            let len = rng.below(20_000) as usize;
            let _ = fs.write(SV, a.ino, rng.below(30_000), &rng.bytes(len), t);
        }),
        2 => fs.mkdir(SV, pick_dir(rng), &name(rng), 0o755, 0, 0, t).map(|_| ()),
        3 | 4 => match any {
            Some((d, n, _, _)) => {
                let flags = if rng.below(4) == 0 { RENAME_EXCHANGE } else { 0 };
                fs.rename(SV, d, &n, pick_dir(rng), &name(rng), flags, t)
            }
            None => Ok(()),
        },
        5 => match any {
            Some((d, n, _, true)) => fs.rmdir(SV, d, &n, t),
            Some((d, n, i, false)) => fs.unlink(SV, d, &n, t).and_then(|_| fs.evict(SV, i)),
            None => Ok(()),
        },
        6 => match any {
            Some((_, _, i, false)) => fs.link(SV, i, pick_dir(rng), &name(rng), t).map(|_| ()),
            _ => Ok(()),
        },
        7 => match any {
            Some((_, _, i, false)) => {
                let len = rng.below(9000) as usize;
                fs.write(SV, i, rng.below(60_000), &rng.bytes(len), t).map(|_| ())
            }
            _ => Ok(()),
        },
        8 => match any {
            Some((_, _, i, false)) => match rng.below(3) {
                0 => fs.truncate(SV, i, rng.below(40_000), t),
                1 => fs.punch_hole(SV, i, rng.below(40_000), 1 + rng.below(20_000), t),
                // The VFS never changes a symlink's mode.
                _ if fs.getattr(SV, i).unwrap().file_type() == FileType::Symlink => Ok(()),
                _ => fs.setattr(SV, i, &SetAttr { mode: Some(rng.below(0o777) as u32), ..Default::default() }, t).map(|_| ()),
            },
            _ => Ok(()),
        },
        9 => match any {
            Some((_, _, i, _)) => {
                let x = format!("user.x{}", rng.below(3)).into_bytes();
                if rng.below(3) == 0 {
                    fs.remove_xattr(SV, i, &x, t)
                } else {
                    let len = rng.below(200) as usize;
                    fs.set_xattr(SV, i, &x, &rng.bytes(len), 0, t)
                }
            }
            None => Ok(()),
        },
        _ => fs.symlink(SV, pick_dir(rng), &name(rng), b"some/where", 0, 0, t).map(|_| ()),
    };
}

/// An incremental send of one change in a large tree reads a few nodes,
/// not the tree.
#[test]
fn tree_diff_skips_what_the_snapshots_share() {
    let mut fs = mount(fresh(256 << 20));
    let root = fs.root_ino();
    let d = fs.mkdir(SV, root, b"d", 0o755, 0, 0, ts(1)).unwrap().ino;
    for i in 0..4000 {
        fs.create(SV, d, format!("file-{i:05}").as_bytes(), 0o644, 0, 0, 0, ts(1)).unwrap();
    }
    let s1 = snap(&mut fs, SV, "s1");
    let f = fs.lookup(SV, d, b"file-02000").unwrap();
    fs.write(SV, f, 0, b"x", ts(2)).unwrap();
    let s2 = snap(&mut fs, SV, "s2");
    let dev = fs.unmount().unwrap();
    let mut fs = mount(dev);
    let before = fs.stats().meta_reads;
    let stream = send(&mut fs, s2, Some(s1));
    let incremental_reads = fs.stats().meta_reads - before;
    let dev = fs.unmount().unwrap();
    let mut fs = mount(dev);
    let before = fs.stats().meta_reads;
    send(&mut fs, s2, None);
    let full_reads = fs.stats().meta_reads - before;
    assert!(incremental_reads * 10 < full_reads, "incremental read {incremental_reads} nodes, full {full_reads}");
    // What the stream holds: the top directory's times (orphan names
    // would pass through it), the one file's data, size and times,
    // nothing about the 3999 others.
    let version = decode_stream_header(&stream).unwrap();
    let mut at = HEADER_LEN;
    let mut cmds = Vec::new();
    while at < stream.len() {
        let (c, used) = decode_command(&stream[at..], version).unwrap();
        cmds.push(format!("{c:?}").split_whitespace().next().unwrap().to_string());
        at += used;
    }
    assert_eq!(cmds, ["Snapshot", "Utimes", "Write", "Truncate", "Utimes", "End"], "{cmds:?}");
}

#[test]
fn send_refuses_bad_requests_and_keeps_its_snapshots() {
    let mut fs = mount(fresh(64 << 20));
    let root = fs.root_ino();
    fs.create(SV, root, b"f", 0o644, 0, 0, 0, ts(1)).unwrap();
    let s1 = snap(&mut fs, SV, "s1");
    let req = |source, parent, flags, version| SendRequest { source, parent, flags, version, resume: 0, resume_crc: 0 };
    let bad = [
        (req(SV, None, 0, 1), Error::NotPermitted),
        (req(s1, Some(SV), 0, 1), Error::NotPermitted),
        (req(s1, Some(s1), 0, 1), Error::Invalid("send parent is the source")),
        (req(s1, None, 0x100, 1), Error::Invalid("unknown send flags")),
        (req(s1, None, SEND_VERSION, 3), Error::Invalid("unsupported send stream version")),
        (req(s1, None, SEND_VERSION, 0), Error::Invalid("unsupported send stream version")),
        (req(SubvolId(999), None, 0, 1), Error::NotFound),
    ];
    for (r, want) in bad {
        assert_eq!(fs.send_begin(r, &[]).err(), Some(want), "{r:?}");
    }
    // A snapshot of another subvolume shares nothing with s1.
    let other = fs.create_subvolume(SV, root, b"other", [9; 16], 0, 0, ts(1)).unwrap();
    let o1 = snap(&mut fs, other, "o1");
    assert_eq!(fs.send_begin(req(s1, Some(o1), 0, 1), &[]).err(), Some(Error::Invalid("send parent unrelated to the source")));
    // Clone sources must be read-only snapshots too.
    assert_eq!(fs.send_begin(req(s1, None, 0, 1), &[SV]).err(), Some(Error::NotPermitted));
    assert_eq!(fs.send_begin(req(s1, None, 0, 1), &[SubvolId(999)]).err(), Some(Error::NotFound));
    let st = fs.send_begin(req(s1, None, 0, 1), &[o1]).unwrap();
    assert_eq!(fs.delete_subvolume(SV, root, b"o1", ts(2)), Err(Error::NotPermitted));
    assert_eq!(fs.delete_subvolume(SV, root, b"s1", ts(2)), Err(Error::NotPermitted));
    assert_eq!(fs.set_subvolume_read_only(s1, false), Err(Error::NotPermitted));
    fs.send_end(st);
    fs.delete_subvolume(SV, root, b"s1", ts(2)).unwrap();
    fs.delete_subvolume(SV, root, b"o1", ts(2)).unwrap();
}

/// Flags: NO_FILE_DATA sends extents' places only; version 2 punches
/// holes instead of writing zeros; the header and END can be left out.
#[test]
fn send_flags_shape_the_stream() {
    let mut rng = Rng(seed_or(4));
    let mut fs = mount(fresh(64 << 20));
    let root = fs.root_ino();
    let f = fs.create(SV, root, b"f", 0o644, 0, 0, 0, ts(1)).unwrap().ino;
    fs.write(SV, f, 0, &rng.bytes(100_000), ts(1)).unwrap();
    let s1 = snap(&mut fs, SV, "s1");
    fs.punch_hole(SV, f, 8192, 16384, ts(2)).unwrap();
    let s2 = snap(&mut fs, SV, "s2");
    let names = |stream: &[u8], skip_header: bool| {
        let (version, mut at) = if skip_header { (2, 0) } else { (decode_stream_header(stream).unwrap(), HEADER_LEN) };
        let mut v = Vec::new();
        while at < stream.len() {
            let (c, used) = decode_command(&stream[at..], version).unwrap();
            v.push(match c {
                Command::Write { offset, data, .. } => format!("write {offset} {}", data.len()),
                Command::UpdateExtent { offset, len, .. } => format!("extent {offset} {len}"),
                Command::Fallocate { mode, offset, len, .. } => format!("fallocate {mode} {offset} {len}"),
                c => format!("{c:?}").split_whitespace().next().unwrap().to_string(),
            });
            at += used;
        }
        v
    };
    let nodata = send_with(
        &mut fs,
        SendRequest { source: s1, parent: None, flags: SEND_NO_FILE_DATA, version: 0, resume: 0, resume_crc: 0 },
        1 << 20,
    )
    .unwrap();
    let n = names(&nodata, false);
    assert!(n.contains(&"extent 0 49152".to_string()) && !n.iter().any(|c| c.starts_with("write")), "{n:?}");
    let v1 = names(&send(&mut fs, s2, Some(s1)), false);
    assert!(v1.contains(&"write 8192 16384".to_string()), "{v1:?}");
    let v2 = send_with(
        &mut fs,
        SendRequest { source: s2, parent: Some(s1), flags: SEND_VERSION, version: 2, resume: 0, resume_crc: 0 },
        1 << 20,
    )
    .unwrap();
    assert_eq!(decode_stream_header(&v2).unwrap(), 2);
    let v2n = names(&v2, false);
    assert!(v2n.contains(&"fallocate 3 8192 16384".to_string()) && !v2n.iter().any(|c| c.starts_with("write")), "{v2n:?}");
    let bare = SendRequest {
        source: s2,
        parent: Some(s1),
        flags: SEND_VERSION | SEND_OMIT_STREAM_HEADER | SEND_OMIT_END_CMD,
        version: 2,
        resume: 0,
        resume_crc: 0,
    };
    let bare = send_with(&mut fs, bare, 1 << 20).unwrap();
    let bn = names(&bare, true);
    assert_eq!(bn[..], v2n[..v2n.len() - 1]);
}

/// A full send naming a clone source the receiver has: the blocks the two
/// snapshots share go as CLONE from it, the rest as WRITE, and the result
/// is the snapshot.
#[test]
fn full_send_clones_what_a_clone_source_shares() {
    let mut rng = Rng(seed_or(5));
    let mut fs = mount(fresh(64 << 20));
    let root = fs.root_ino();
    let f = fs.create(SV, root, b"f", 0o644, 0, 0, 0, ts(1)).unwrap().ino;
    fs.write(SV, f, 0, &rng.bytes(200_000), ts(1)).unwrap();
    let g = fs.create(SV, root, b"g", 0o644, 0, 0, 0, ts(1)).unwrap().ino;
    fs.write(SV, g, 0, &rng.bytes(50_001), ts(1)).unwrap();
    let s1 = snap(&mut fs, SV, "s1");
    fs.write(SV, f, 100_000, &rng.bytes(10_000), ts(2)).unwrap();
    fs.rename(SV, root, b"g", root, b"g2", 0, ts(2)).unwrap();
    let s2 = snap(&mut fs, SV, "s2");
    let req = SendRequest { source: s2, parent: None, flags: 0, version: 1, resume: 0, resume_crc: 0 };
    let plain = send_with(&mut fs, req, 1 << 20).unwrap();
    let cloned = send_cloning(&mut fs, req, &[s1], 1 << 20).unwrap();
    let (version, mut at) = (decode_stream_header(&cloned).unwrap(), HEADER_LEN);
    let (mut clones, mut writes) = (0, 0);
    while at < cloned.len() {
        let (c, used) = decode_command(&cloned[at..], version).unwrap();
        match c {
            Command::Clone { clone_path, offset, clone_offset, .. } => {
                assert!(clone_path == b"f" || clone_path == b"g", "{c:?}");
                assert_eq!(offset, clone_offset);
                clones += 1;
            }
            Command::Write { .. } => writes += 1,
            _ => {}
        }
        at += used;
    }
    assert!(clones >= 3 && writes >= 1, "{clones} clones, {writes} writes");
    assert!(cloned.len() * 4 < plain.len(), "cloned stream {} bytes, plain {}", cloned.len(), plain.len());
    let mut dst = mount(fresh(64 << 20));
    let mut rx = Receiver::new();
    rx.apply(&mut dst, &send(&mut fs, s1, None));
    let got = rx.apply(&mut dst, &cloned);
    assert_same(&mut fs, s2, &mut dst, got, "s2 cloned from s1");
}

/// The commands of a stream (after its header), as byte ranges.
fn commands(stream: &[u8]) -> Vec<std::ops::Range<usize>> {
    let version = decode_stream_header(stream).unwrap();
    let (mut at, mut out) = (HEADER_LEN, Vec::new());
    while at < stream.len() {
        let (_, used) = decode_command(&stream[at..], version).unwrap();
        out.push(at..at + used);
        at += used;
    }
    out
}

/// A transfer broken after any command and resumed: the resumed stream is
/// SUBVOL/SNAPSHOT, the marker, then exactly the rest of the stream, and
/// the receiver ends with the snapshot, as from an unbroken transfer.
#[test]
fn resumed_send_goes_on_where_the_receiver_stopped() {
    let mut rng = Rng(seed_or(6));
    let mut fs = mount(fresh(64 << 20));
    populate(&mut fs, &mut rng);
    let s1 = snap(&mut fs, SV, "s1");
    let root = fs.root_ino();
    let f = fs.lookup(SV, root, b"f").unwrap();
    fs.write(SV, f, 1000, &rng.bytes(150_000), ts(5)).unwrap();
    fs.rename(SV, root, b"a", root, b"a2", 0, ts(5)).unwrap();
    let s2 = snap(&mut fs, SV, "s2");
    for (source, parent, name) in [(s1, None, "full"), (s2, Some(s1), "incremental")] {
        let req = SendRequest { source, parent, flags: 0, version: 1, resume: 0, resume_crc: 0 };
        let whole = send_with(&mut fs, req, 1 << 20).unwrap();
        let cmds = commands(&whole);
        let n = cmds.len() - 1; // after SUBVOL/SNAPSHOT
        for k in [0, 1, n / 3, n / 2, n - 1] {
            let crc = u32::from_le_bytes(whole[cmds[k].start + 6..cmds[k].start + 10].try_into().unwrap());
            let resume = SendRequest { flags: SEND_RESUME, resume: k as u64, resume_crc: crc, ..req };
            let resumed = send_with(&mut fs, resume, 1 << 20).unwrap();
            if k > 0 {
                // Another command at that place: another stream, refused.
                let wrong = SendRequest { resume_crc: crc ^ 1, ..resume };
                let e = send_with(&mut fs, wrong, 1 << 20).err();
                assert_eq!(e, Some(Error::Invalid("send resume token does not match this send")), "{name} {k}");
            }
            let rc = commands(&resumed);
            assert_eq!(&resumed[rc[0].clone()], &whole[cmds[0].clone()], "{name} {k}: first command");
            let rest: Vec<&[u8]> = rc[2..].iter().map(|r| &resumed[r.clone()]).collect();
            let want: Vec<&[u8]> = cmds[1 + k..].iter().map(|r| &whole[r.clone()]).collect();
            assert!(rest == want, "{name} {k}: resumed stream differs");
            // Applied after the broken transfer's first commands: the snapshot.
            let mut dst = mount(fresh(64 << 20));
            let mut rx = Receiver::new();
            if parent.is_some() {
                rx.apply(&mut dst, &send(&mut fs, s1, None));
            }
            rx.apply(&mut dst, &whole[..cmds[k].end]);
            let got = rx.apply(&mut dst, &resumed);
            assert_same(&mut fs, source, &mut dst, got, &format!("{name} resumed after {k}"));
        }
        let past = SendRequest { flags: SEND_RESUME, resume: n as u64 + 1, resume_crc: 0, ..req };
        assert_eq!(send_with(&mut fs, past, 1 << 20).err(), Some(Error::Invalid("send resume position past the end of the stream")));
    }
}

/// A subvolume marked received (SET_RECEIVED_SUBVOL) is sent under the
/// identity it was received as, so chained sends and receives line up;
/// a read-only subvolume cannot be marked.
#[test]
fn received_subvolumes_send_as_what_they_were_received_as() {
    let mut fs = mount(fresh(64 << 20));
    let root = fs.root_ino();
    let r = fs.create_subvolume(SV, root, b"r", [3; 16], 0, 0, ts(1)).unwrap();
    let rtransid = fs.set_received_subvolume(r, [0xee; 16], 4242, ts(7), ts(8)).unwrap();
    let info = fs.subvolume_info(r).unwrap().item;
    assert_eq!((info.received_uuid, info.stransid, info.stime, info.rtransid, info.rtime), ([0xee; 16], 4242, ts(7), rtransid, ts(8)));
    fs.set_subvolume_read_only(r, true).unwrap();
    assert_eq!(fs.set_received_subvolume(r, [1; 16], 1, ts(1), ts(1)), Err(Error::ReadOnly));
    let stream = send(&mut fs, r, None);
    let (cmd, _) = decode_command(&stream[HEADER_LEN..], 1).unwrap();
    assert_eq!(cmd, Command::Subvol { path: b"r", uuid: [0xee; 16], ctransid: 4242 });
    // Kept across a remount.
    let dev = fs.unmount().unwrap();
    let mut fs = mount(dev);
    assert_eq!(fs.subvolume_info(r).unwrap().item.received_uuid, [0xee; 16]);
}

#[test]
fn a_large_incremental_plan_is_built_in_bounded_steps() {
    let mut fs = mount(fresh(256 << 20));
    let root = fs.root_ino();
    let d = fs.mkdir(SV, root, b"d", 0o755, 0, 0, ts(1)).unwrap().ino;
    let mut inos = Vec::new();
    for i in 0..3000 {
        inos.push(fs.create(SV, d, format!("f{i:05}").as_bytes(), 0o644, 0, 0, 0, ts(1)).unwrap().ino);
    }
    let s1 = snap(&mut fs, SV, "s1");
    for (i, &ino) in inos.iter().enumerate() {
        fs.write(SV, ino, 0, format!("changed {i}").as_bytes(), ts(2)).unwrap();
    }
    let s2 = snap(&mut fs, SV, "s2");
    let req = SendRequest { source: s2, parent: Some(s1), flags: 0, version: 1, resume: 0, resume_crc: 0 };
    let mut st = fs.send_begin(req, &[]).unwrap();
    // Steps that end with nothing written: the plan's building, which lets
    // the caller drop the core between them.
    let (mut empty_steps, mut stream) = (0, Vec::new());
    loop {
        let mut buf = TryVec::new();
        let done = fs.send_step(&mut st, &mut buf, 1 << 30).unwrap();
        empty_steps += usize::from(buf.is_empty() && !done);
        stream.extend_from_slice(&buf);
        if done {
            break;
        }
    }
    fs.send_end(st);
    assert!(empty_steps >= 3, "the plan was built in {empty_steps} empty steps");
    // And the stream is the one a receiver turns into s2.
    assert_eq!(stream, send(&mut fs, s2, Some(s1)));
    let mut dst = mount(fresh(256 << 20));
    let full = send(&mut fs, s1, None);
    let mut rx = Receiver::new();
    rx.apply(&mut dst, &full);
    let got = rx.apply(&mut dst, &stream);
    assert_same(&mut fs, s2, &mut dst, got, "after the stepwise plan");
}

#[test]
fn a_full_send_reads_small_files_data_in_few_device_reads() {
    let mut fs = mount(fresh(256 << 20));
    let root = fs.root_ino();
    let d = fs.mkdir(SV, root, b"d", 0o755, 0, 0, ts(1)).unwrap().ino;
    let mut rng = Rng(7);
    for i in 0..600 {
        let f = fs.create(SV, d, format!("f{i:04}").as_bytes(), 0o644, 0, 0, 0, ts(1)).unwrap().ino;
        // Mostly 2000 bytes; some of several blocks, some empty, one with
        // a hole at its start (not one extent from block 0), one large.
        let len = match i % 50 {
            7 => 9000 + i,
            9 => 0,
            _ => 2000,
        };
        fs.write(SV, f, 0, &rng.bytes(len), ts(1)).unwrap();
        if i == 300 {
            fs.write(SV, f, 20000, b"tail", ts(1)).unwrap();
            fs.punch_hole(SV, f, 0, 8192, ts(1)).unwrap();
        }
        if i == 400 {
            fs.write(SV, f, 0, &rng.bytes(300_000), ts(1)).unwrap();
        }
    }
    let s1 = snap(&mut fs, SV, "s1");
    let mut fs = mount(fs.unmount().unwrap());
    let before = fs.device().reads;
    let inodes_before = fs.stats().inode_reads;
    let stream = send(&mut fs, s1, None);
    let reads = fs.device().reads - before;
    let meta = fs.stats().meta_reads;
    // Without read-ahead each of the 600 files' data is its own read.
    assert!(reads < meta + 100, "{reads} device reads for 600 files ({meta} of them metadata)");
    // Each file's inode is looked up once for its batch (attributes, data
    // read ahead, its commands) and once for its xattrs: not again for its
    // commands, nor a second time for an empty xattr list.
    let inode_reads = fs.stats().inode_reads - inodes_before;
    assert!(inode_reads <= 2 * 600 + 50, "{inode_reads} inode lookups for a full send of 600 files");
    let mut dst = mount(fresh(256 << 20));
    let got = Receiver::new().apply(&mut dst, &stream);
    assert_same(&mut fs, s1, &mut dst, got, "small files read ahead");
}

#[test]
fn large_files_data_is_read_ahead_while_the_last_piece_is_encoded() {
    const MIB: usize = 1 << 20;
    let mut fs = mount(fresh(256 << 20));
    let root = fs.root_ino();
    let mut rng = Rng(11);
    let make = |fs: &mut Fs, name: &str| fs.create(SV, root, name.as_bytes(), 0o644, 0, 0, 0, ts(1)).unwrap().ino;
    // One file written at once; two written in turns (extents apart on
    // disk, so a piece spans several); one with a hole inside; one whose
    // size is not a whole number of blocks.
    let whole = make(&mut fs, "whole");
    fs.write(SV, whole, 0, &rng.bytes(3 * MIB + MIB / 2), ts(1)).unwrap();
    let (a, b) = (make(&mut fs, "turn-a"), make(&mut fs, "turn-b"));
    for i in 0..12u64 {
        for f in [a, b] {
            fs.write(SV, f, i * 256 * 1024, &rng.bytes(256 * 1024), ts(1)).unwrap();
        }
    }
    let holed = make(&mut fs, "holed");
    fs.write(SV, holed, 0, &rng.bytes(4 * MIB), ts(1)).unwrap();
    fs.punch_hole(SV, holed, MIB as u64 + 4096, MIB as u64 + 8192, ts(1)).unwrap();
    let odd = make(&mut fs, "odd");
    fs.write(SV, odd, 0, &rng.bytes(2 * MIB + MIB / 2 + 100), ts(1)).unwrap();
    let s1 = snap(&mut fs, SV, "s1");
    for f in [whole, a] {
        fs.write(SV, f, MIB as u64 / 2, &rng.bytes(2 * MIB), ts(2)).unwrap();
    }
    let s2 = snap(&mut fs, SV, "s2");
    let mut fs = mount(fs.unmount().unwrap());

    let plain = send(&mut fs, s1, None);
    let plain_incr = send(&mut fs, s2, Some(s1));
    assert_eq!(fs.device().ahead_started, 0);
    fs.device().read_ahead = true;
    let ahead = send(&mut fs, s1, None);
    let (started, taken) = (fs.device().ahead_started, fs.device().ahead_taken);
    let ahead_incr = send(&mut fs, s2, Some(s1));
    assert!(ahead == plain, "a full send reading ahead sends other bytes");
    assert!(ahead_incr == plain_incr, "an incremental send reading ahead sends other bytes");
    // 17 MiB in pieces of about 1 MiB: every piece but the first file's
    // first and the one after the hole is read ahead (a file's first
    // while the last piece of the file before it is sent).
    assert!(taken >= 16, "{taken} of {started} read aheads taken");
    assert!(started - taken <= 2, "{taken} of {started} read aheads taken");
    let mut dst = mount(fresh(256 << 20));
    let mut rx = Receiver::new();
    let got = rx.apply(&mut dst, &ahead);
    assert_same(&mut fs, s1, &mut dst, got, "large files read ahead");
    let got = rx.apply(&mut dst, &ahead_incr);
    assert_same(&mut fs, s2, &mut dst, got, "large files read ahead, incremental");
}

/// The tree diff reads the nodes it is going to enter in batches, and only
/// those: an incremental send reads as many nodes as one on a device that
/// does not batch, in a fraction of the device calls, and sends the same
/// stream; the changed small files' data comes in few reads too.
#[test]
fn incremental_send_reads_changed_nodes_and_data_in_batches() {
    let mut fs = mount(fresh(256 << 20));
    let root = fs.root_ino();
    let mut rng = Rng(5);
    let mut files = Vec::new();
    for d in 0..4 {
        let dir = fs.mkdir(SV, root, format!("d{d}").as_bytes(), 0o755, 0, 0, ts(1)).unwrap().ino;
        for i in 0..1000 {
            let f = fs.create(SV, dir, format!("f{i:05}").as_bytes(), 0o644, 0, 0, 0, ts(1)).unwrap().ino;
            fs.write(SV, f, 0, &rng.bytes(2000), ts(1)).unwrap();
            files.push((dir, f));
        }
    }
    let s1 = snap(&mut fs, SV, "s1");
    // Every 10th file rewritten, every 50th gone, a new directory of files
    // (splits: the trees' nodes no longer line up one to one), a chmod.
    for (i, &(dir, f)) in files.iter().enumerate() {
        if i % 10 == 0 {
            fs.write(SV, f, 0, &rng.bytes(2000), ts(2)).unwrap();
        } else if i % 50 == 7 {
            fs.unlink(SV, dir, format!("f{:05}", i % 1000).as_bytes(), ts(2)).unwrap();
            fs.evict(SV, f).unwrap();
        } else if i == 333 {
            fs.setattr(SV, f, &SetAttr { mode: Some(0o100600), ..SetAttr::default() }, ts(2)).unwrap();
        }
    }
    let new_dir = fs.mkdir(SV, files[1500].0, b"new", 0o755, 0, 0, ts(2)).unwrap().ino;
    for i in 0..300 {
        let f = fs.create(SV, new_dir, format!("n{i:04}").as_bytes(), 0o644, 0, 0, 0, ts(2)).unwrap().ino;
        fs.write(SV, f, 0, &rng.bytes(3000), ts(2)).unwrap();
    }
    let s2 = snap(&mut fs, SV, "s2");
    let dev = fs.unmount().unwrap();

    // Cold caches, a device that does not batch: node by node.
    let mut fs = mount(dev);
    fs.device().batch_reads = false;
    // The mount's own reads may have come in batches (leaf read-ahead).
    let (meta0, reads0, mbatches0) = (fs.stats().meta_reads, fs.device().reads, fs.stats().meta_batches);
    let plain = send(&mut fs, s2, Some(s1));
    let (plain_meta, plain_reads) = (fs.stats().meta_reads - meta0, fs.device().reads - reads0);
    assert_eq!(fs.stats().meta_batches, mbatches0);

    // The same with batches.
    let mut dev = fs.unmount().unwrap();
    dev.batch_reads = true;
    let mut fs = mount(dev);
    let (meta0, reads0, batches0, pieces0) = (fs.stats().meta_reads, fs.device().reads, fs.device().batches, fs.device().batch_pieces);
    let mbatches0 = fs.stats().meta_batches;
    let stream = send(&mut fs, s2, Some(s1));
    let meta = fs.stats().meta_reads - meta0;
    let reads = fs.device().reads - reads0;
    let (batches, pieces) = (fs.device().batches - batches0, fs.device().batch_pieces - pieces0);
    assert!(stream == plain, "batched reads changed the stream");
    assert_eq!(fs.stats().meta_batches - mbatches0, batches);
    // Only nodes the diff enters are read (a wrong block fails its check,
    // and is read again by itself), each once.
    assert_eq!(meta, plain_meta, "{meta} nodes read in batches of {pieces}, {plain_meta} one by one");
    assert!(pieces * 10 >= plain_meta * 9, "only {pieces} of {plain_meta} nodes read in {batches} batches");
    // 400 changed and 300 new files' data, and the nodes, in few calls.
    let calls = reads + batches;
    assert!(calls * 8 < plain_reads, "{calls} device calls ({reads} reads, {batches} batches) against {plain_reads}");
    let mut dst = mount(fresh(256 << 20));
    let mut rx = Receiver::new();
    let full = send(&mut fs, s1, None);
    rx.apply(&mut dst, &full);
    let got = rx.apply(&mut dst, &stream);
    assert_same(&mut fs, s2, &mut dst, got, "batched incremental send");
}

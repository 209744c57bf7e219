// SPDX-License-Identifier: GPL-2.0
//! The hostile-image campaign: a valid image holding files of every type is
//! edited field by field, for every field of the superblock, of every node
//! header, item header and interior pointer, and of every item type's value
//! (the codecs' own field tables, `ferrofs_core::le`), to boundary values:
//! 0, 1, max, max-1, the original value +-1, and the values on both sides of
//! each field's limit. Checksums are re-sealed so the damage gets past them.
//! Each image is mounted and driven through the operations a user would run
//! on it (statfs, readdir, lookup, read, FIEMAP, SEEK_DATA/SEEK_HOLE,
//! readlink, getxattr, create, write, rename, unlink, truncate, fsync,
//! unmount, then a second mount and fsck), aborting on corruption as the
//! kernel adapter does. Every case must end in `Ok` or an error: a panic
//! (overflow checks are on), an allocation the kernel would WARN on, or a
//! case running past the watchdog's limit fails the test.
//!
//! Every item of the image is edited (a few seconds); a second test makes
//! two to four edits at once, at random (`FERROFS_SEED`, more cases with
//! `FERROFS_FULL=1`).

mod common;
use ferrofs_core::subvol::SubvolId;
const SV: SubvolId = SubvolId::DEFAULT;
use common::*;
use ferrofs_core::edit::{self, Part, Place, Target};
use ferrofs_core::error::Error;
use ferrofs_core::format::{self, FileType, Key};
use ferrofs_core::fs::{Filesystem, RENAME_NOREPLACE};
use ferrofs_core::superblock;
use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const DEV_SIZE: u64 = 16 << 20;
/// A case running this long is a hang: the kernel would soft-lock.
const CASE_LIMIT: Duration = Duration::from_secs(60);

/// A valid image with a file of every type, multi-part xattrs and symlink,
/// a sparse file, a hard link, an orphan, and a directory big enough to
/// give the fs tree interior nodes; a subvolume, a read-only snapshot
/// sharing the default subvolume's nodes, and a deleted subvolume whose
/// tree is only partly dropped.
fn base_image() -> SimDev {
    let mut fs = mount(fresh(DEV_SIZE));
    let root = fs.root_ino();
    let d = fs.mkdir(SV, root, b"d", 0o755, 1, 1, ts(1)).unwrap().ino;
    fs.mkdir(SV, root, b"e", 0o700, 0, 0, ts(1)).unwrap();
    fs.mkdir(SV, d, b"sub", 0o755, 0, 0, ts(1)).unwrap();
    let data = fs.create(SV, root, b"data", 0o644, 0, 0, 0, ts(2)).unwrap().ino;
    fs.write(SV, data, 0, &[7u8; 9000], ts(2)).unwrap();
    fs.write(SV, data, 65536, &[9u8; 5000], ts(2)).unwrap();
    fs.set_xattr(SV, data, b"user.small", b"v", 0, ts(2)).unwrap();
    fs.set_xattr(SV, data, b"user.big", &[3u8; 3000], 0, ts(2)).unwrap();
    fs.link(SV, data, d, b"data-link", ts(2)).unwrap();
    fs.symlink(SV, root, b"ln", b"d/sub", 0, 0, ts(3)).unwrap();
    fs.symlink(SV, root, b"longln", &[b'z'; 3000], 0, 0, ts(3)).unwrap();
    fs.create(SV, root, b"fifo", 0o010644, 0, 0, 0, ts(4)).unwrap();
    fs.create(SV, root, b"chr", 0o020644, 0x0103, 0, 0, ts(4)).unwrap();
    fs.create(SV, d, b"inner", 0o600, 0, 0, 0, ts(4)).unwrap();
    for i in 0..24u8 {
        let name = vec![b'a' + i % 26; 200 + i as usize];
        fs.create(SV, d, &name, 0o644, 0, 0, 0, ts(5)).unwrap();
    }
    fs.tmpfile(SV, 0o600, 0, 0, ts(6)).unwrap();
    let sv = fs.create_subvolume(SV, root, b"sv", [1; 16], 0, 0, ts(7)).unwrap();
    let f = fs.create(sv, 256, b"in-sv", 0o644, 0, 0, 0, ts(7)).unwrap().ino;
    fs.write(sv, f, 0, &[5u8; 7000], ts(7)).unwrap();
    fs.snapshot(SV, SV, d, b"snap", true, [2; 16], ts(8)).unwrap();
    let gone = fs.create_subvolume(SV, root, b"gone", [3; 16], 0, 0, ts(8)).unwrap();
    for i in 0..40u8 {
        fs.create(gone, 256, &[b'g'; 200][..100 + i as usize], 0o644, 0, 0, 0, ts(8)).unwrap();
    }
    fs.delete_subvolume(SV, root, b"gone", ts(9)).unwrap();
    fs.commit().unwrap();
    assert!(fs.drop_step_limited(1).unwrap(), "the deleted subvolume is left half dropped");
    fs.unmount().unwrap()
}

/// One edit: a field and the value written into it.
#[derive(Clone, Debug)]
struct Case {
    target: Target,
    value: u64,
}

impl Case {
    fn describe(&self) -> String {
        format!("{} = {:#x}", self.target, self.value)
    }
}

/// Every field of the image at each of its boundary values.
fn cases(base: &SimDev) -> Vec<Case> {
    let mut dev = base.clone();
    let sb = superblock::read_superblock(&mut dev).unwrap();
    let targets = edit::targets(&mut dev).unwrap();
    let mut out = Vec::new();
    for t in targets.iter() {
        for &value in t.boundary_values(sb.total_blocks, sb.block_size).iter() {
            out.push(Case { target: *t, value });
        }
    }
    out
}

/// The image of a group of edits, each re-sealed.
fn apply(base: &SimDev, group: &[Case]) -> SimDev {
    let mut d = base.clone();
    // Node edits first: they read the block size from the superblock,
    // which a superblock edit may have damaged on purpose.
    for c in group.iter().filter(|c| c.target.place != Place::Superblock) {
        edit::set(&mut d, c.target.place, &c.target.field, c.value).unwrap();
    }
    for c in group.iter().filter(|c| c.target.place == Place::Superblock) {
        edit::set(&mut d, c.target.place, &c.target.field, c.value).unwrap();
    }
    d
}

/// What the kernel adapter does with a result: damage, a device error or
/// a bug stops the filesystem from writing.
fn settle<T>(fs: &mut Filesystem<SimDev>, r: Result<T, Error>, tally: &mut Tally) -> Option<T> {
    match r {
        Ok(v) => Some(v),
        Err(e) => {
            if let Error::Bug(why) = e {
                tally.bugs.push(why);
            }
            if matches!(e, Error::Corrupt(_) | Error::Bug(_) | Error::Io) {
                fs.abort(e);
            }
            None
        }
    }
}

#[derive(Default)]
struct Tally {
    mounted: bool,
    bugs: Vec<&'static str>,
}

/// The operation script of one case.
fn drive(dev: SimDev, tally: &mut Tally) {
    let Ok(mut fs) = Filesystem::mount(dev) else { return };
    tally.mounted = true;
    let t = &mut *tally;
    let _ = fs.statfs();
    let root = fs.root_ino();
    let mut dirs = vec![(SV, root)];
    let mut files: Vec<(SubvolId, u64, FileType)> = Vec::new();
    let mut seen_dirs = 0;
    while let Some((sv, dir)) = dirs.pop() {
        seen_dirs += 1;
        if seen_dirs > 64 {
            break;
        }
        let mut ents = Vec::new();
        let r = fs.readdir(sv, dir, 0, &mut |n, i, ty, _| {
            ents.push((n.to_vec(), i, ty));
            ents.len() < 256
        });
        settle(&mut fs, r, t);
        for (name, _, ty) in ents {
            let r = fs.lookup_at(sv, dir, &name);
            let Some((csv, ino)) = settle(&mut fs, r, t) else { continue };
            let r = fs.getattr(csv, ino);
            if settle(&mut fs, r, t).is_some() {
                if ty == FileType::Dir {
                    dirs.push((csv, ino));
                }
                files.push((csv, ino, ty));
            }
        }
    }
    let mut buf = vec![0u8; 1 << 16];
    for &(sv, ino, _) in files.iter().take(64) {
        let r = fs.getattr(sv, ino);
        let Some(a) = settle(&mut fs, r, t) else { continue };
        let r = fs.read(sv, ino, 0, &mut buf);
        settle(&mut fs, r, t);
        let r = fs.read(sv, ino, a.size.saturating_sub(4096), &mut buf[..8192]);
        settle(&mut fs, r, t);
        let mut n = 0;
        let r = fs.extents(sv, ino, 0, &mut |_, _, _, _| {
            n += 1;
            n < 512
        });
        settle(&mut fs, r, t);
        let r = fs.seek_data(sv, ino, 0);
        settle(&mut fs, r, t);
        let r = fs.seek_hole(sv, ino, 0);
        settle(&mut fs, r, t);
        let r = fs.readlink(sv, ino);
        settle(&mut fs, r, t);
        let r = fs.list_xattr(sv, ino, &mut buf);
        settle(&mut fs, r, t);
        for x in [&b"user.small"[..], b"user.big", b"user.none"] {
            let r = fs.get_xattr(sv, ino, x, &mut buf);
            settle(&mut fs, r, t);
        }
    }
    // Changes, as a user would make them next.
    let r = fs.create(SV, root, b"new", 0o644, 0, 0, 0, ts(10));
    if let Some(a) = settle(&mut fs, r, t) {
        let r = fs.write(SV, a.ino, 0, &[1u8; 10000], ts(10));
        settle(&mut fs, r, t);
        let r = fs.set_xattr(SV, a.ino, b"user.n", b"x", 0, ts(10));
        settle(&mut fs, r, t);
    }
    let lk = fs.lookup(SV, root, b"data");
    if let Some(data) = settle(&mut fs, lk, t) {
        let r = fs.write(SV, data, 4096, &[2u8; 6000], ts(11));
        settle(&mut fs, r, t);
        let r = fs.truncate(SV, data, 3000, ts(11));
        settle(&mut fs, r, t);
    }
    let r = fs.rename(SV, root, b"e", root, b"d", 0, ts(12));
    settle(&mut fs, r, t);
    let lk = fs.lookup(SV, root, b"d");
    if let Some(d) = settle(&mut fs, lk, t) {
        let r = fs.rename(SV, root, b"e", d, b"e", RENAME_NOREPLACE, ts(12));
        settle(&mut fs, r, t);
        let r = fs.unlink(SV, d, b"inner", ts(12));
        settle(&mut fs, r, t);
    }
    let r = fs.rename(SV, root, b"ln", root, b"ln2", 0, ts(12));
    settle(&mut fs, r, t);
    let r = fs.unlink(SV, root, b"fifo", ts(13));
    settle(&mut fs, r, t);
    let r = fs.snapshot(SV, SV, root, b"hsnap", false, [4; 16], ts(14));
    settle(&mut fs, r, t);
    let r = fs.delete_subvolume(SV, root, b"sv", ts(14));
    settle(&mut fs, r, t);
    let r = fs.list_subvolumes();
    settle(&mut fs, r, t);
    for _ in 0..3 {
        let r = fs.drop_step_limited(4);
        settle(&mut fs, r, t);
    }
    let r = fs.commit();
    settle(&mut fs, r, t);
    for (sv, ino, _) in files.iter().take(64) {
        let r = fs.evict(*sv, *ino);
        settle(&mut fs, r, t);
    }
    let Ok(dev) = fs.unmount() else { return };
    // The next mount and fsck of whatever the case left.
    if let Ok(mut fs) = Filesystem::mount(dev) {
        let r = fs.check(false);
        settle(&mut fs, r, t);
        let _ = fs.unmount();
    }
}

/// How many cases of each kind a list holds.
fn kinds_of(cases: &[Case]) -> BTreeMap<String, usize> {
    let mut kinds: BTreeMap<String, usize> = BTreeMap::new();
    for c in cases {
        let kind = match edit::kind(&c.target) {
            (k, None) => k.to_string(),
            (k, Some(ty)) => format!("{k} {ty}"),
        };
        *kinds.entry(kind).or_default() += 1;
    }
    kinds
}

/// Runs each group of edits as one image under the watchdog; returns the
/// failures (panics, internal errors) and how many images mounted.
fn run_groups(base: &SimDev, groups: &[Vec<Case>]) -> (Vec<String>, usize) {
    // The watchdog: a case that runs too long is reported and the process
    // ends, as a soft lockup would end a kernel test.
    let current = Arc::new(Mutex::new((String::new(), Instant::now())));
    let done = Arc::new(AtomicBool::new(false));
    let watchdog = {
        let (current, done) = (current.clone(), done.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(200));
                let (what, since) = current.lock().unwrap().clone();
                if since.elapsed() > CASE_LIMIT {
                    eprintln!("hostile image case hangs (over {CASE_LIMIT:?}): {what}");
                    std::process::abort();
                }
            }
        })
    };
    let panic_msg: Arc<Mutex<String>> = Arc::new(Mutex::new(String::new()));
    let hook_msg = panic_msg.clone();
    let old_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        *hook_msg.lock().unwrap() = format!("{info}");
    }));
    let (mut mounted, mut failures) = (0usize, Vec::new());
    for g in groups {
        let what = g.iter().map(Case::describe).collect::<Vec<_>>().join(", ");
        *current.lock().unwrap() = (what.clone(), Instant::now());
        let dev = apply(base, g);
        let mut tally = Tally::default();
        if catch_unwind(AssertUnwindSafe(|| drive(dev, &mut tally))).is_err() {
            failures.push(format!("{what}: {}", panic_msg.lock().unwrap()));
        }
        mounted += tally.mounted as usize;
        for b in tally.bugs {
            failures.push(format!("{what}: internal error reached: {b}"));
        }
    }
    done.store(true, Ordering::Relaxed);
    watchdog.join().unwrap();
    std::panic::set_hook(old_hook);
    (failures, mounted)
}

fn assert_no_failures(failures: &[String]) {
    assert!(
        failures.is_empty(),
        "{} hostile-image cases failed:\n{}",
        failures.len(),
        failures.iter().take(40).cloned().collect::<Vec<_>>().join("\n")
    );
}

#[test]
fn every_field_at_its_boundaries() {
    let base = base_image();
    let cases = cases(&base);
    // What the list covers, so the test cannot pass on an empty one.
    let kinds = kinds_of(&cases);
    for want in [
        "superblock",
        "node header",
        "item header",
        "interior pointer",
        "item inode",
        "item dir_hash",
        "item dir_seq",
        "item extent",
        "item xattr",
        "item symlink",
        "item root_item",
        "item refcount",
    ] {
        assert!(kinds.get(want).copied().unwrap_or(0) > 0, "the campaign covers no {want} field: {kinds:?}");
    }
    let started = Instant::now();
    let groups: Vec<Vec<Case>> = cases.iter().map(|c| vec![c.clone()]).collect();
    let (failures, mounted) = run_groups(&base, &groups);
    eprintln!(
        "hostile images, one field each: {} cases ({} mounted) in {:.1}s, {} failed; by kind: {kinds:?}",
        groups.len(),
        mounted,
        started.elapsed().as_secs_f64(),
        failures.len()
    );
    assert_no_failures(&failures);
    assert!(
        mounted > groups.len() / 4,
        "too few cases got past mount ({mounted} of {}): the edits miss the checks they aim at",
        groups.len()
    );
}

/// Two to four boundary edits at once, drawn at random from the same list:
/// damage a single edit cannot make (a loop in the parent chain with a
/// huge inode count, an extent past the end of a file whose size lies too).
#[test]
fn several_fields_at_once() {
    let base = base_image();
    let cases = cases(&base);
    let mut rng = Rng(seed_or(12));
    let n = if full() { 20_000 } else { 3_000 };
    let groups: Vec<Vec<Case>> =
        (0..n).map(|_| (0..2 + rng.below(3)).map(|_| cases[rng.below(cases.len() as u64) as usize].clone()).collect()).collect();
    let started = Instant::now();
    let (failures, mounted) = run_groups(&base, &groups);
    eprintln!(
        "hostile images, 2-4 fields each: {} cases ({} mounted) in {:.1}s, {} failed",
        groups.len(),
        mounted,
        started.elapsed().as_secs_f64(),
        failures.len()
    );
    assert_no_failures(&failures);
}

/// The three crafted images that oopsed or hung the kernel, and the FIEMAP
/// overflow found by reading the code, each kept as a named regression case
/// beside the campaign.
#[test]
fn crafted_images_that_broke_the_kernel() {
    // An fs-tree root item claiming ~2^64 inodes: statfs overflowed.
    let mut d = base_image();
    edit_item(&mut d, format::ROOT_TREE_ID, Key::new(format::FS_TREE_ID, format::ROOT_ITEM_KEY, 0), "inode_count", u64::MAX - 3);
    assert!(matches!(Filesystem::mount(d), Err(Error::Corrupt(c)) if c.what.contains("inode count")));

    // A symlink whose inode claims 2^48 bytes: readlink sized a buffer by it.
    let mut d = base_image();
    let mut fs = mount(d.clone());
    let ln = fs.lookup(SV, fs.root_ino(), b"ln").unwrap();
    drop(fs);
    edit_item(&mut d, format::FS_TREE_ID, Key::new(ln, format::INODE_KEY, 0), "size", 1 << 48);
    let mut fs = mount(d);
    match fs.readlink(SV, ln) {
        Err(Error::Corrupt(c)) => assert_eq!((c.what, c.ino), ("symlink size outside 1..=4095", ln)),
        other => panic!("readlink of a 2^48-byte symlink: {other:?}"),
    }

    // A directory that is its own parent, and a root item claiming a huge
    // inode count: the ancestor walk of rename was bounded by that count.
    let mut d = base_image();
    let mut fs = mount(d.clone());
    let root = fs.root_ino();
    let dd = fs.lookup(SV, root, b"d").unwrap();
    drop(fs);
    edit_item(&mut d, format::FS_TREE_ID, Key::new(dd, format::INODE_KEY, 0), "parent", dd);
    let mut fs = mount(d);
    let started = Instant::now();
    match fs.rename(SV, root, b"e", dd, b"e", 0, ts(9)) {
        Err(Error::Corrupt(c)) => assert_eq!(c.what, "directory parents form a loop"),
        other => panic!("rename into a self-parented directory: {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(5));

    // An extent keyed near 2^64 file blocks: FIEMAP added its byte start
    // and length unchecked. Now the extent fails to decode, and nothing
    // past the maximum file size is ever reported.
    let mut d = base_image();
    let mut fs = mount(d.clone());
    let data = fs.lookup(SV, fs.root_ino(), b"data").unwrap();
    drop(fs);
    let targets = edit::targets(&mut d).unwrap();
    let last_extent = targets
        .iter()
        .rev()
        .find(|t| {
            matches!(t.part, Part::ItemHeader(_, k) if k.objectid == data && k.ty == format::EXTENT_KEY) && t.field.name == "key_offset"
        })
        .copied()
        .expect("data has extents");
    edit::set(&mut d, last_extent.place, &last_extent.field, u64::MAX - 1).unwrap();
    let mut fs = mount(d);
    let mut past_max = false;
    let r = fs.extents(SV, data, 0, &mut |logical, _, len, _| {
        past_max |= logical.checked_add(len).is_none_or(|end| end > format::MAX_FILE_SIZE);
        true
    });
    assert!(matches!(r, Err(Error::Corrupt(c)) if c.what == "extent maps past the maximum file size" && c.ino == data), "{r:?}");
    assert!(!past_max);
}

/// Sets `field` of the item at `key` in tree `tree` in place and re-seals
/// the node, as a crafted image would have it.
fn edit_item(d: &mut SimDev, tree: u64, key: Key, field: &str, value: u64) {
    let place = edit::locate_item(d, tree, &key).unwrap();
    let f = *ferrofs_core::le::find(format::item_fields(key.ty), field).unwrap();
    edit::set(d, place, &f, value).unwrap();
}

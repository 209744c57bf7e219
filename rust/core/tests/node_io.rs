// SPDX-License-Identifier: GPL-2.0
//! Node reads deferred to the caller (`ferrofs_core::node_io`), as the
//! kernel does them outside its lock: read-only calls run with deferral,
//! stop at each node the cache lacks, and are run again once the caller
//! has read the nodes they named. They must answer exactly as the same
//! calls reading under the lock, and a node whose block was freed while it
//! was read outside must not be cached.

mod common;
use common::*;
use ferrofs_core::device::BlockDevice;
use ferrofs_core::error::Error;
use ferrofs_core::file_read::BlockRun;
use ferrofs_core::fs::Filesystem;
use ferrofs_core::mem::TryVec;
use ferrofs_core::node_io::{NodeWant, MAX_WANTS};
use ferrofs_core::subvol::SubvolId;

const SV: SubvolId = SubvolId::DEFAULT;
const BS: usize = 4096;

/// Reads the wanted nodes from the device as the kernel does, one block
/// each, in order.
fn read_wants(fs: &mut Filesystem<SimDev>, wants: &[NodeWant]) -> Vec<u8> {
    let mut data = vec![0u8; wants.len() * BS];
    for (k, w) in wants.iter().enumerate() {
        fs.device().read(w.blk * BS as u64, &mut data[k * BS..(k + 1) * BS]).unwrap();
    }
    data
}

/// Runs `f` as the kernel's read path does: deferred, reading what it
/// names, until it answers. Returns the answer and how many rounds it took.
fn deferred<T>(
    fs: &mut Filesystem<SimDev>,
    mut f: impl FnMut(&mut Filesystem<SimDev>) -> ferrofs_core::error::Result<T>,
) -> (ferrofs_core::error::Result<T>, usize) {
    let mut wants = TryVec::new();
    for round in 1..=64 {
        match fs.without_node_io(&mut wants, &mut f) {
            Ok(Some(v)) => return (Ok(v), round),
            Err(e) => return (Err(e), round),
            Ok(None) => {
                assert!(!wants.is_empty() && wants.len() <= MAX_WANTS, "a deferred call names what it wants");
                let data = read_wants(fs, &wants);
                fs.insert_read_nodes(&wants, &data).unwrap();
            }
        }
    }
    panic!("a deferred call never finished");
}

/// A committed tree of `n` files in two directories, with data, a symlink
/// and an xattr, and the node cache emptied; the two directories.
fn cold_tree(n: u64) -> (Filesystem<SimDev>, [u64; 2]) {
    let mut fs = mount(fresh(256 << 20));
    let root = fs.root_ino();
    let a = fs.mkdir(SV, root, b"a", 0o755, 0, 0, ts(1)).unwrap().ino;
    let b = fs.mkdir(SV, root, b"b", 0o755, 0, 0, ts(1)).unwrap().ino;
    for i in 0..n {
        let dir = if i % 2 == 0 { a } else { b };
        let name = format!("file-{i:05}").into_bytes();
        let ino = fs.create(SV, dir, &name, 0o644, 0, 0, 0, ts(2)).unwrap().ino;
        if i % 3 == 0 {
            fs.write(SV, ino, 0, &vec![i as u8; 100 + (i as usize * 37) % 20_000], ts(2)).unwrap();
        }
        if i % 50 == 0 {
            fs.set_xattr(SV, ino, b"user.k", format!("v{i}").as_bytes(), 0, ts(2)).unwrap();
        }
    }
    fs.symlink(SV, a, b"link", b"../b/file-00001", 0, 0, ts(3)).unwrap();
    fs.commit().unwrap();
    fs.shrink_cache(usize::MAX);
    (fs, [a, b])
}

/// One read-only call, answering a line of text.
type Call<'a> = dyn FnMut(&mut Filesystem<SimDev>) -> ferrofs_core::error::Result<String> + 'a;
/// Runs a call (deferred or not) and counts it.
type Runner<'a> = dyn FnMut(&mut Filesystem<SimDev>, &mut Call<'_>) -> String + 'a;

/// Everything the read paths of the kernel ask of one directory: its
/// listing, each name's lookup with attributes, every file's block map,
/// xattr and symlink target; each call run through `run`, which counts
/// its rounds.
fn survey(fs: &mut Filesystem<SimDev>, dir: u64, run: &mut Runner<'_>) -> Vec<String> {
    let mut out = Vec::new();
    let listing = run(fs, &mut |fs| {
        let mut names = Vec::new();
        fs.readdir(SV, dir, 0, &mut |n, ino, _, cookie| {
            names.push(format!("{}:{ino}:{cookie}", String::from_utf8_lossy(n)));
            true
        })?;
        Ok(names.join("/"))
    });
    out.push(listing.clone());
    for ent in listing.split('/') {
        let name = ent.split(':').next().unwrap().as_bytes().to_vec();
        out.push(run(fs, &mut |fs| {
            let (_, ino, attr) = fs.lookup_attr(SV, dir, &name)?;
            let a = attr.unwrap();
            let mut runs = TryVec::<BlockRun>::new();
            let symlink = a.mode & 0o170000 == 0o120000;
            let size = if symlink { 0 } else { fs.map_blocks(SV, ino, 0, 64, &mut runs)?.size };
            let mut x = [0u8; 32];
            let xattr = match fs.get_xattr(SV, ino, b"user.k", &mut x) {
                Ok(n) => String::from_utf8_lossy(&x[..n]).into_owned(),
                Err(Error::NoData) => String::new(),
                Err(e) => return Err(e),
            };
            let target = if symlink { fs.readlink(SV, ino)?.to_vec() } else { Vec::new() };
            Ok(format!("{ino} {a:?} {} {:?} {xattr} {}", size, &runs[..], String::from_utf8_lossy(&target)))
        }));
    }
    out
}

#[test]
fn deferred_reads_answer_as_reads_under_the_lock() {
    let n = if full() { 6_000 } else { 1_500 };
    let (mut locked, dirs) = cold_tree(n);
    let (mut outside, _) = cold_tree(n);
    let mut locked_calls = 0;
    let mut want = Vec::new();
    for &d in &dirs {
        want.extend(survey(&mut locked, d, &mut |fs, f| {
            locked_calls += 1;
            f(fs).unwrap()
        }));
    }
    let (mut calls, mut rounds) = (0, 0);
    let mut got = Vec::new();
    for &d in &dirs {
        got.extend(survey(&mut outside, d, &mut |fs, f| {
            let (r, k) = deferred(fs, |fs| f(fs));
            calls += 1;
            rounds += k;
            r.unwrap()
        }));
    }
    assert_eq!(got, want);
    assert_eq!(calls, locked_calls);
    // The tree was cold: calls stopped for nodes, and read them in batches
    // (leaf read ahead), not one round per node.
    assert!(rounds > calls, "no call was deferred ({rounds} rounds for {calls} calls)");
    let (lr, or) = (locked.stats().meta_reads, outside.stats().meta_reads);
    assert!(or <= lr + lr / 4 + 8, "deferred reads read {or} nodes, under the lock {lr}");
    // Warm now: every call answers in its first round.
    let before = outside.stats().meta_reads;
    for &d in &dirs {
        survey(&mut outside, d, &mut |fs, f| {
            let (r, k) = deferred(fs, |fs| f(fs));
            assert_eq!(k, 1, "a warm call was deferred");
            r.unwrap()
        });
    }
    assert_eq!(outside.stats().meta_reads, before);
    assert_check_clean(&mut outside, "after deferred reads");
}

/// A lookup stopped for the leaf holding a name; the name is then removed
/// (the leaf is copied and its old block released), and the leaf read
/// outside arrives: it must not be cached, whether its block is pinned by
/// the running transaction or held after a commit, and the blocks' later
/// users must see their own contents.
#[test]
fn a_node_freed_while_read_outside_is_not_cached() {
    for commit_between in [false, true] {
        let (mut fs, [a, _]) = cold_tree(600);
        let ino = fs.lookup(SV, a, b"file-00100").unwrap();
        fs.shrink_cache(usize::MAX);
        // Rounds until the call stops at a leaf (level 0, named first).
        let mut wants = TryVec::new();
        loop {
            assert!(fs.without_node_io(&mut wants, |fs| fs.lookup(SV, a, b"file-00100")).unwrap().is_none());
            if wants[0].level == 0 {
                break;
            }
            let data = read_wants(&mut fs, &wants);
            fs.insert_read_nodes(&wants, &data).unwrap();
        }
        let data = read_wants(&mut fs, &wants);
        // The kernel counts its read in flight from here on.
        fs.set_io_in_flight(true).unwrap();
        fs.unlink(SV, a, b"file-00100", ts(9)).unwrap();
        if commit_between {
            fs.commit().unwrap();
        }
        let cached_before = fs.cached_clean_nodes();
        fs.insert_read_nodes(&wants, &data).unwrap();
        let cached_after = fs.cached_clean_nodes();
        fs.set_io_in_flight(false).unwrap();
        assert!(
            cached_after < cached_before + wants.len(),
            "the released leaf was cached ({cached_before} + {} -> {cached_after})",
            wants.len()
        );
        // Reuse the freed blocks for new nodes and data, then read all back.
        let root = fs.root_ino();
        let c = fs.mkdir(SV, root, b"c", 0o755, 0, 0, ts(10)).unwrap().ino;
        for i in 0..400u32 {
            let f = fs.create(SV, c, format!("n{i}").as_bytes(), 0o644, 0, 0, 0, ts(10)).unwrap().ino;
            fs.write(SV, f, 0, &i.to_le_bytes(), ts(10)).unwrap();
        }
        fs.commit().unwrap();
        assert_eq!(deferred(&mut fs, |fs| fs.lookup(SV, a, b"file-00100")).0, Err(Error::NotFound));
        assert!(deferred(&mut fs, |fs| fs.lookup(SV, a, b"file-00102")).0.is_ok());
        // Unlinked, not evicted: kept as an orphan.
        assert_eq!(fs.getattr(SV, ino).unwrap().nlink, 0);
        for i in (0..400u32).step_by(37) {
            let f = fs.lookup(SV, c, format!("n{i}").as_bytes()).unwrap();
            assert_eq!(read_all(&mut fs, f), i.to_le_bytes());
        }
        assert_check_clean(&mut fs, "after reuse of a block read outside");
        let mut again = mount(fs.device().crash_keep_all());
        assert_check_clean(&mut again, "after remount");
    }
}

/// Nodes that fail validation (a device that returned garbage) are not
/// cached: the call asks for them again, and run under the lock it reports
/// the damage.
#[test]
fn nodes_failing_validation_are_left_out() {
    let (mut fs, [a, _]) = cold_tree(300);
    let mut wants = TryVec::new();
    assert!(fs.without_node_io(&mut wants, |fs| fs.lookup(SV, a, b"file-00010")).unwrap().is_none());
    let first: Vec<NodeWant> = wants.iter().copied().collect();
    let garbage = vec![0xa5u8; first.len() * BS];
    fs.insert_read_nodes(&first, &garbage).unwrap();
    assert!(fs.without_node_io(&mut wants, |fs| fs.lookup(SV, a, b"file-00010")).unwrap().is_none());
    assert_eq!(&wants[..], &first[..]);
    // A batch of the wrong size is a caller's bug.
    assert!(matches!(fs.insert_read_nodes(&first, &garbage[BS..]), Err(Error::Bug(_))));
    // Read properly, the lookup answers.
    assert!(deferred(&mut fs, |fs| fs.lookup(SV, a, b"file-00010")).0.is_ok());
}

// SPDX-License-Identifier: GPL-2.0
//! Crash checks by sync points: what each path showed when a sync (an
//! fsync that covered it, or a commit) made it durable, and what a disk
//! cut after any write may then show.

use super::{assert_check_clean, mount, visible, SimDev};
use ferrofs_core::fs::Filesystem;
use std::collections::BTreeMap;

/// Paths and what `visible` says of them at one moment a sync made them
/// durable (None: the path must not exist).
pub struct SyncPoint {
    /// Device writes before the sync began and after it ended.
    pub w0: u64,
    pub w1: u64,
    pub states: BTreeMap<String, Option<String>>,
}

/// The states `path` may show after a power cut once `cut` writes were done.
pub fn allowed(points: &[SyncPoint], path: &str, cut: u64) -> Vec<Option<String>> {
    let mut out = Vec::new();
    if let Some(done) = points.iter().rev().find(|p| p.w1 <= cut && p.states.contains_key(path)) {
        out.push(done.states[path].clone());
    } else {
        // Not made yet by any completed sync: it must not exist.
        out.push(None);
    }
    for p in points.iter().filter(|p| p.w0 < cut && p.w1 > cut) {
        if let Some(s) = p.states.get(path) {
            out.push(s.clone());
        }
    }
    out
}

/// Mounts a disk as a crash left it and checks every path any sync point
/// names against `allowed`, fsck clean, and a second mount showing the
/// same; returns what the mount showed.
pub fn check_image(image: SimDev, points: &[SyncPoint], cut: u64, what: &str) -> BTreeMap<String, String> {
    let mut fs = Filesystem::mount(image).unwrap_or_else(|e| panic!("{what}: mount after the cut fails: {e:?}"));
    let seen = visible(&mut fs);
    let paths: std::collections::BTreeSet<&String> = points.iter().flat_map(|p| p.states.keys()).collect();
    for p in paths {
        let ok = allowed(points, p, cut);
        let got = seen.get(p.as_str()).cloned();
        assert!(ok.contains(&got), "{what}: {p} shows {got:?}, allowed {ok:?}");
    }
    assert_check_clean(&mut fs, what);
    let again = visible(&mut mount(fs.unmount().unwrap()));
    assert_eq!(again, seen, "{what}: a second mount shows the same");
    seen
}

/// Cuts the replaying mount of `pending` (a disk with records to replay)
/// after every single write of its commit, and mounts what each cut disk
/// holds (unflushed writes dropped, kept, a random subset): every one must
/// show `want`, as a whole replay does, with fsck clean, since the epoch
/// only moves with the replay's commit.
pub fn replay_cut_at_every_write(pending: &SimDev, want: &BTreeMap<String, String>, seed: u64) {
    let start = pending.writes;
    let mut whole = mount(pending.clone());
    assert_eq!(&visible(&mut whole), want);
    let writes = whole.device().writes - start;
    assert!(writes > 2, "the replay commits");
    let mut rng = super::Rng(seed);
    for cut in start..start + writes {
        let mut dev = pending.clone();
        dev.cut_after = Some(cut);
        let shared = std::rc::Rc::new(std::cell::RefCell::new(dev));
        // The replay's commit fails at the cut, and the mount with it.
        assert!(Filesystem::mount(super::SharedDev(shared.clone())).is_err(), "cut {cut}: the mount fails");
        let dead = shared.borrow().clone();
        for (what, image) in [("drop", dead.crash_drop_all()), ("keep", dead.crash_keep_all()), ("random", dead.crash_random(&mut rng))] {
            let mut fs = Filesystem::mount(image).unwrap_or_else(|e| panic!("cut {cut} {what}: {e:?}"));
            assert_eq!(&visible(&mut fs), want, "cut {cut} {what}");
            assert_check_clean(&mut fs, &format!("cut {cut} {what}"));
        }
    }
}

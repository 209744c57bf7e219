// SPDX-License-Identifier: GPL-2.0
//! Crash enumeration: each workload is run once to learn its writes and the
//! state after every commit, then again with the power cut after every
//! single write; the disk is then rebuilt with the unflushed writes dropped,
//! kept, or a random subset applied in random order. Each crash state must
//! mount, pass `check`, and show exactly the last committed state (or the
//! one whose superblock was being written). Prints how many states it checked.

mod common;
use ferrofs_core::subvol::SubvolId;
const SV: SubvolId = SubvolId::DEFAULT;
use common::*;
use ferrofs_core::error::Error;
use ferrofs_core::fs::Filesystem;
use ferrofs_core::superblock::read_superblock;
use std::collections::BTreeMap;

type State = BTreeMap<String, String>;

/// Records a commit, including one the filesystem made on its own when
/// space ran low (noticed after the operation that made it).
fn note(fs: &mut Filesystem<SimDev>, commits: &mut Vec<(u64, u64)>) {
    let gen = fs.superblock().generation;
    if commits.last().is_none_or(|&(_, g)| g != gen) {
        commits.push((fs.device().writes, gen));
    }
}

/// A deterministic workload; stops at the first error (the power cut).
fn workload(fs: &mut Filesystem<SimDev>, kind: u32, seed: u64, commits: &mut Vec<(u64, u64)>) -> Result<(), Error> {
    let mut rng = Rng(seed);
    let root = fs.root_ino();
    let commit = |fs: &mut Filesystem<SimDev>, commits: &mut Vec<(u64, u64)>| -> Result<(), Error> {
        note(fs, commits);
        fs.commit()?;
        note(fs, commits);
        Ok(())
    };
    match kind {
        // Mixed namespace and data operations.
        0 => {
            let d = fs.mkdir(SV, root, b"dir", 0o755, 0, 0, ts(1))?.ino;
            let mut files = Vec::new();
            for i in 0..6 {
                let f = fs.create(SV, if i % 2 == 0 { root } else { d }, format!("f{i}").as_bytes(), 0o644, 0, 0, 0, ts(2))?.ino;
                let len = [10, 5000, 70_000][i % 3];
                fs.write(SV, f, rng.below(9000), &rng.bytes(len), ts(3))?;
                files.push(f);
            }
            commit(fs, commits)?;
            fs.write(SV, files[1], 100, &rng.bytes(20_000), ts(4))?;
            fs.truncate(SV, files[2], 3000, ts(4))?;
            fs.rename(SV, root, b"f0", d, b"moved", 0, ts(5))?;
            fs.set_xattr(SV, files[3], b"user.a", &rng.bytes(9000), 0, ts(5))?;
            fs.symlink(SV, d, b"ln", b"../f4", 0, 0, ts(5))?;
            commit(fs, commits)?;
            fs.unlink(SV, root, b"f4", ts(6))?;
            fs.evict(SV, files[4])?;
            fs.link(SV, files[5], root, b"hard", ts(6))?;
            fs.write(SV, files[5], 0, &rng.bytes(12_000), ts(6))?;
            fs.rename(SV, root, b"hard", d, b"f1", 0, ts(7))?;
            commit(fs, commits)?;
            fs.truncate(SV, files[3], 0, ts(8))?;
            fs.remove_xattr(SV, files[3], b"user.a", ts(8))?;
            fs.mkdir(SV, d, b"sub", 0o700, 0, 0, ts(8))?;
            fs.rename(SV, root, b"dir", root, b"dir2", 0, ts(9))?;
            commit(fs, commits)?;
        }
        // Enough entries to split and then merge tree nodes.
        1 => {
            for i in 0..220 {
                fs.create(SV, root, format!("entry-with-a-longish-name-{i:04}").as_bytes(), 0o644, 0, 0, 0, ts(1))?;
                if i % 70 == 69 {
                    commit(fs, commits)?;
                }
            }
            commit(fs, commits)?;
            for i in (0..220).filter(|i| i % 4 != 1) {
                let n = format!("entry-with-a-longish-name-{i:04}");
                let ino = fs.lookup(SV, root, n.as_bytes())?;
                fs.unlink(SV, root, n.as_bytes(), ts(2))?;
                fs.evict(SV, ino)?;
                if i % 80 == 79 {
                    commit(fs, commits)?;
                }
            }
            commit(fs, commits)?;
        }
        // A nearly full filesystem: fill until out of space, delete, refill.
        3 => {
            let mut files = Vec::new();
            'fill: for i in 0..40 {
                let f = match fs.create(SV, root, format!("f{i}").as_bytes(), 0o644, 0, 0, 0, ts(1)) {
                    Ok(a) => a.ino,
                    Err(Error::NoSpace) => break,
                    Err(e) => return Err(e),
                };
                files.push(f);
                note(fs, commits);
                for k in 0..4 {
                    let r = fs.write(SV, f, k * 30_000, &rng.bytes(30_000), ts(1));
                    note(fs, commits);
                    match r {
                        Ok(30_000) => {}
                        Ok(_) | Err(Error::NoSpace) => break 'fill,
                        Err(e) => return Err(e),
                    }
                }
                if i % 3 == 2 {
                    commit(fs, commits)?;
                }
            }
            commit(fs, commits)?;
            for (i, &f) in files.iter().enumerate().filter(|(i, _)| i % 2 == 0) {
                fs.unlink(SV, root, format!("f{i}").as_bytes(), ts(2))?;
                note(fs, commits);
                fs.evict(SV, f)?;
                note(fs, commits);
            }
            let g = fs.create(SV, root, b"refill", 0o644, 0, 0, 0, ts(3))?.ino;
            note(fs, commits);
            let r = fs.write(SV, g, 0, &rng.bytes(300_000), ts(3));
            note(fs, commits);
            match r {
                Ok(_) | Err(Error::NoSpace) => {}
                Err(e) => return Err(e),
            }
            commit(fs, commits)?;
        }
        // Preallocation, hole punching and tmpfiles: fallocate growing the
        // size and past it, punch and zero ranges over committed and new
        // blocks, a tmpfile that gets a name and one left open at the crash
        // (freed by the next mount).
        4 => {
            let f = fs.create(SV, root, b"pre", 0o644, 0, 0, 0, ts(1))?.ino;
            fs.write(SV, f, 0, &rng.bytes(50_000), ts(1))?;
            fs.fallocate(SV, f, 50_000, 100_000, false, ts(2))?;
            fs.fallocate(SV, f, 200_000, 30_000, true, ts(2))?;
            let t = fs.tmpfile(SV, 0o600, 0, 0, ts(2))?.ino;
            fs.write(SV, t, 0, &rng.bytes(20_000), ts(2))?;
            commit(fs, commits)?;
            fs.punch_hole(SV, f, 10_000, 30_000, ts(3))?;
            fs.zero_range(SV, f, 120_000, 20_000, false, ts(3))?;
            fs.write(SV, f, 130_000, &rng.bytes(3000), ts(3))?;
            fs.link(SV, t, root, b"named", ts(3))?;
            fs.evict(SV, t)?;
            let u = fs.tmpfile(SV, 0o600, 0, 0, ts(3))?.ino;
            fs.fallocate(SV, u, 0, 64 << 10, false, ts(3))?;
            commit(fs, commits)?;
            fs.punch_hole(SV, f, 0, 1 << 20, ts(4))?;
            fs.zero_range(SV, f, 160_000, 50_000, true, ts(4))?;
            fs.write(SV, t, 30_000, &rng.bytes(5000), ts(4))?;
            fs.truncate(SV, f, 70_000, ts(4))?;
            commit(fs, commits)?;
        }
        // A subvolume, a read-only snapshot of it, writes into the blocks
        // they share, then both deleted and dropped in small steps.
        5 => {
            let sv = fs.create_subvolume(SV, root, b"sub", [1; 16], 0, 0, ts(1))?;
            let mut files = Vec::new();
            for i in 0..8 {
                let f = fs.create(sv, root, format!("f{i}").as_bytes(), 0o644, 0, 0, 0, ts(1))?.ino;
                fs.write(sv, f, 0, &rng.bytes(6000 + 9000 * (i % 3)), ts(1))?;
                files.push(f);
            }
            for i in 0..90 {
                fs.create(sv, root, format!("name-long-enough-to-fill-leaves-{i:03}").as_bytes(), 0o644, 0, 0, 0, ts(1))?;
            }
            commit(fs, commits)?;
            let r = fs.snapshot(sv, SV, root, b"snap", true, [2; 16], ts(2));
            note(fs, commits);
            r?;
            fs.write(sv, files[0], 100, &rng.bytes(3000), ts(3))?;
            fs.unlink(sv, root, b"f1", ts(3))?;
            fs.evict(sv, files[1])?;
            fs.truncate(sv, files[2], 10, ts(3))?;
            fs.create(sv, root, b"new", 0o644, 0, 0, 0, ts(3))?;
            commit(fs, commits)?;
            for name in [&b"sub"[..], b"snap"] {
                fs.delete_subvolume(SV, root, name, ts(4))?;
                commit(fs, commits)?;
                loop {
                    let more = fs.drop_step_limited(3);
                    note(fs, commits);
                    if !more? {
                        break;
                    }
                }
            }
        }
        // Data written in three steps (blocks picked, data written as the
        // kernel does outside the core lock, blocks mapped), with commits
        // and other changes between the steps, and a write abandoned.
        6 => {
            let f = fs.create(SV, root, b"two-step", 0o644, 0, 0, 0, ts(1))?.ino;
            let g = fs.create(SV, root, b"other", 0o644, 0, 0, 0, ts(1))?.ino;
            fs.write(SV, f, 0, &rng.bytes(80 << 10), ts(1))?;
            fs.write(SV, g, 0, &rng.bytes(30 << 10), ts(1))?;
            commit(fs, commits)?;
            let data = rng.bytes((40 << 10) + 1000);
            let w = fs.begin_data_write(SV, f, 8192, data.len() as u64)?;
            write_runs(fs, &w, 8192, &data)?;
            commit(fs, commits)?;
            fs.finish_data_write(SV, w)?;
            commit(fs, commits)?;
            let lost = fs.begin_data_write(SV, f, 200 << 10, 10_000)?;
            write_runs(fs, &lost, 200 << 10, &rng.bytes(10_000))?;
            let w = fs.begin_data_write(SV, f, 120 << 10, 30_000)?;
            fs.truncate(SV, g, 5000, ts(2))?;
            write_runs(fs, &w, 120 << 10, &rng.bytes(30_000))?;
            fs.abandon_data_write(lost)?;
            commit(fs, commits)?;
            fs.finish_data_write(SV, w)?;
            commit(fs, commits)?;
        }
        // Many small overwrites of one file, with and without commits between.
        _ => {
            let f = fs.create(SV, root, b"data", 0o644, 0, 0, 0, ts(1))?.ino;
            fs.write(SV, f, 0, &rng.bytes(64 << 10), ts(1))?;
            commit(fs, commits)?;
            for round in 0..4 {
                for _ in 0..6 {
                    let off = rng.below(80 << 10);
                    let len = 1 + rng.below(6000) as usize;
                    fs.write(SV, f, off, &rng.bytes(len), ts(2))?;
                }
                if round % 2 == 0 {
                    fs.truncate(SV, f, rng.below(90 << 10), ts(3))?;
                }
                commit(fs, commits)?;
            }
        }
    }
    Ok(())
}

#[test]
fn crash_at_every_write() {
    let t = std::time::Instant::now();
    let mut states_checked = 0u64;
    let mut cut_points = 0u64;
    let base_seed = seed_or(7);
    let runs: Vec<(u32, u64)> = if full() {
        (0..7).flat_map(|k| (0..6).map(move |s| (k, s))).collect()
    } else {
        vec![(0, 0), (0, 1), (1, 0), (2, 0), (2, 1), (3, 0), (4, 0), (5, 0), (6, 0), (6, 1)]
    };
    for (kind, extra) in runs {
        let seed = base_seed + kind as u64 + 100 * extra;
        let base = fresh(if kind == 3 { 2 << 20 } else { 24 << 20 });
        let base_gen = mount(base.clone()).superblock().generation;
        // Reference run: the state after each commit, by generation.
        let mut fs = mount(base.clone());
        let start = fs.device().writes;
        let mut states: BTreeMap<u64, State> = BTreeMap::new();
        states.insert(base_gen, visible(&mut mount(base.clone())));
        let mut commits = Vec::new();
        // Capture states after each commit by re-running up to it.
        workload(&mut fs, kind, seed, &mut commits).unwrap();
        let total = fs.device().writes - start;
        {
            let mut fs2 = mount(fs.unmount().unwrap());
            assert_check_clean(&mut fs2, "reference run");
        }
        for (i, &(_, gen)) in commits.iter().enumerate() {
            // Replay with the power cut right after commit i, keep everything.
            let mut f = mount(base.clone());
            f.device().cut_after = Some(commits[i].0);
            let mut c = Vec::new();
            let _ = workload(&mut f, kind, seed, &mut c);
            let mut img = f.device().crash_drop_all();
            assert_eq!(read_superblock(&mut img).unwrap().generation, gen);
            let mut m = mount(img);
            states.insert(gen, visible(&mut m));
        }
        let mut rng = Rng(seed ^ 0xabcdef);
        for n in 0..total {
            cut_points += 1;
            let mut f = mount(base.clone());
            f.device().cut_after = Some(start + n);
            let mut c = Vec::new();
            let r = workload(&mut f, kind, seed, &mut c);
            assert!(r.is_err() || n >= total, "workload {kind} survived a cut at write {n}");
            let done_gen = commits.iter().filter(|&&(w, _)| w <= start + n).map(|&(_, g)| g).max().unwrap_or(base_gen);
            let dev = f.device().clone();
            let mut images = vec![("drop", dev.crash_drop_all()), ("keep", dev.crash_keep_all())];
            for k in 0..2 {
                images.push((if k == 0 { "random-a" } else { "random-b" }, dev.crash_random(&mut rng)));
            }
            for (how, mut img) in images {
                let what = format!("workload {kind} seed {seed} cut after write {n} ({how})");
                // The generation on disk; mounting may commit (orphan cleanup).
                let gen = read_superblock(&mut img).unwrap_or_else(|e| panic!("{what}: no superblock: {e:?}")).generation;
                let mut m = Filesystem::mount(img).unwrap_or_else(|e| panic!("{what}: mount failed: {e:?}"));
                assert!(gen == done_gen || gen == done_gen + 1, "{what}: generation {gen}, last committed {done_gen}");
                assert_check_clean(&mut m, &what);
                let want = states.get(&gen).unwrap_or_else(|| panic!("{what}: no state for generation {gen}"));
                let got = visible(&mut m);
                if &got != want {
                    panic!("{what}: state differs from generation {gen}:\n want {want:#?}\n got {got:#?}");
                }
                // The crash state must also take new work and survive a remount.
                let root = m.root_ino();
                match m.create(SV, root, b"after-crash", 0o644, 0, 0, 0, ts(99)) {
                    Ok(_) | Err(Error::NoSpace) => {}
                    Err(e) => panic!("{what}: create after crash: {e:?}"),
                }
                let mut m = mount(m.unmount().unwrap());
                assert_check_clean(&mut m, &what);
                states_checked += 1;
            }
        }
    }
    println!("crash: {cut_points} cut points, {states_checked} crash states mounted, checked and compared in {:.2?}", t.elapsed());
}

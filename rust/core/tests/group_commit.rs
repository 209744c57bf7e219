// SPDX-License-Identifier: GPL-2.0
//! Group commit: `Filesystem::fsync_unflushed` stages a record and hands
//! out its ticket without writing or flushing; the staged records go out as
//! one batch (`crate::record_batch`), and `GroupCommit` decides which write
//! and flush make which ticket durable. Checked against the simulated disk
//! (a record is not durable before its batch is written and flushed, is
//! after, tickets follow record order, a commit covers earlier tickets) and
//! with threads racing as the kernel's fsyncs do (every acknowledged ticket
//! and all below it on the disk, writes and flushes shared and counted
//! exactly).

mod common;
use common::*;
use ferrofs_core::device::BlockDevice;
use ferrofs_core::fast_commit::{FsyncTier, Ineligible};
use ferrofs_core::group_commit::{BatchWritten, GroupCommit};
use ferrofs_core::subvol::SubvolId;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const SV: SubvolId = SubvolId::DEFAULT;

fn read_all(fs: &mut ferrofs_core::fs::Filesystem<SimDev>, ino: u64, len: usize) -> Vec<u8> {
    let mut buf = vec![0u8; len];
    let n = fs.read(SV, ino, 0, &mut buf).unwrap();
    buf.truncate(n);
    buf
}

#[test]
fn staged_records_get_tickets_in_order_and_are_durable_only_once_written_and_flushed() {
    let mut fs = mount(fresh(64 << 20));
    let root = fs.root_ino();
    let f = fs.create(SV, root, b"f", 0o644, 0, 0, 0, ts(1)).unwrap().ino;
    fs.commit().unwrap();
    let group = GroupCommit::new();
    let mut last = 0;
    for k in 1..=3u64 {
        fs.write(SV, f, (k - 1) * 4096, &[k as u8; 4096], ts(2)).unwrap();
        let (w, fl) = (fs.device().writes, fs.device().flushes);
        let done = fs.fsync_unflushed(SV, f).unwrap();
        assert_eq!(done.tier, FsyncTier::FastCommit);
        let t = done.ticket.expect("a record has a ticket");
        assert!(t > last, "tickets follow record order: {t} after {last}");
        last = t;
        assert_eq!((fs.device().writes - w, fs.device().flushes - fl), (0, 0), "the record staged, not written");
        assert!(!group.is_durable(t));
    }
    // The three go out as one write.
    let w = fs.device().writes;
    let taken = fs.take_record_batch().unwrap();
    let batch = taken.batch.expect("three records staged");
    assert_eq!(batch.last_ticket, last);
    assert_eq!(batch.buf.len() % 4096, 0);
    assert!(fs.take_record_batch().unwrap().batch.is_none(), "taken once");
    fs.device().write(batch.at, &batch.buf, false).unwrap();
    assert_eq!(fs.device().writes - w, 1);
    // A crash now may lose all three records: the file keeps its committed
    // (empty) state.
    let mut lost = mount(fs.device().crash_drop_all());
    assert_eq!(read_all(&mut lost, f, 3 * 4096), Vec::<u8>::new());
    // One flush covers the three; after it they survive any crash.
    let written = BatchWritten { last_ticket: Some(batch.last_ticket), flushed_tickets: taken.flushed_tickets };
    let flushed = group.make_durable(1, || Ok(written), || fs.device().flush()).unwrap();
    assert!(flushed && group.is_durable(3) && group.flushes() == 1);
    let mut kept = mount(fs.device().crash_drop_all());
    let want: Vec<u8> = (1..=3u8).flat_map(|k| [k; 4096]).collect();
    assert_eq!(read_all(&mut kept, f, 3 * 4096), want);
    assert_eq!(kept.fast_commit_stats().replayed, 3);
    assert!(!group.make_durable(2, || panic!("ticket 2 is written"), || panic!("and flushed")).unwrap());

    // A full commit covers the ticket of a record still staged: the record
    // is dropped, never written.
    fs.write(SV, f, 0, b"x", ts(3)).unwrap();
    let t4 = fs.fsync_unflushed(SV, f).unwrap().ticket.unwrap();
    // (A link into a directory made since the last commit: no record can
    // name that directory.)
    let nd = fs.mkdir(SV, root, b"nd", 0o755, 0, 0, ts(3)).unwrap().ino;
    fs.link(SV, f, nd, b"g", ts(3)).unwrap();
    let done = fs.fsync_unflushed(SV, f).unwrap();
    assert_eq!((done.tier, done.ticket), (FsyncTier::FullCommit(Ineligible::NewParent), None));
    assert!(done.flushed_tickets >= t4);
    let taken = fs.take_record_batch().unwrap();
    assert!(taken.batch.is_none(), "the commit dropped the staged record");
    let covered = BatchWritten { last_ticket: None, flushed_tickets: taken.flushed_tickets };
    assert!(!group.make_durable(t4, || Ok(covered), || panic!("the commit covered it")).unwrap());
    let mut after = mount(fs.device().crash_drop_all());
    assert_eq!(read_all(&mut after, f, 1), b"x");
    // Tickets keep counting across the commit's new epoch.
    fs.write(SV, f, 0, b"y", ts(4)).unwrap();
    let t5 = fs.fsync_unflushed(SV, f).unwrap().ticket.unwrap();
    assert_eq!(t5, t4 + 1);
    // The flushing `fsync` writes what is staged, then flushes once.
    fs.write(SV, f, 0, b"z", ts(5)).unwrap();
    let (w, fl) = (fs.device().writes, fs.device().flushes);
    assert_eq!(fs.fsync(SV, f).unwrap(), FsyncTier::FastCommit);
    assert_eq!((fs.device().writes - w, fs.device().flushes - fl), (1, 1), "two records, one write, one flush");
    let mut kept = mount(fs.device().crash_drop_all());
    assert_eq!(read_all(&mut kept, f, 1), b"z");
}

/// A batch taken before a commit and written after it (its holder was
/// slow) lands where the new epoch's records go next; the records staged
/// after the commit, written over it, are what replay sees, and the stale
/// ones of the old epoch never hide them.
#[test]
fn a_batch_of_the_old_epoch_written_after_a_commit_hides_nothing() {
    let mut fs = mount(fresh(64 << 20));
    let root = fs.root_ino();
    let f = fs.create(SV, root, b"f", 0o644, 0, 0, 0, ts(1)).unwrap().ino;
    let g = fs.create(SV, root, b"g", 0o644, 0, 0, 0, ts(1)).unwrap().ino;
    fs.commit().unwrap();
    fs.write(SV, f, 0, &[1; 8192], ts(2)).unwrap();
    fs.fsync_unflushed(SV, f).unwrap();
    let old = fs.take_record_batch().unwrap().batch.unwrap();
    fs.commit().unwrap();
    // The old epoch's batch lands after the commit.
    fs.device().write(old.at, &old.buf, false).unwrap();
    fs.device().flush().unwrap();
    let mut m = mount(fs.device().crash_drop_all());
    assert_eq!(m.fast_commit_stats().replayed, 0, "a record of an older epoch is not replayed");
    assert_eq!(read_all(&mut m, f, 8192), vec![1; 8192], "the commit holds the data");
    // The new epoch's record goes to the same place, after it.
    fs.write(SV, g, 0, &[2; 4096], ts(3)).unwrap();
    fs.fsync_unflushed(SV, g).unwrap();
    let new = fs.take_record_batch().unwrap().batch.unwrap();
    assert_eq!(new.at, old.at, "the new epoch starts at the area's start");
    fs.device().write(new.at, &new.buf, false).unwrap();
    fs.device().flush().unwrap();
    let mut m = mount(fs.device().crash_drop_all());
    assert_eq!(m.fast_commit_stats().replayed, 1);
    assert_eq!(read_all(&mut m, g, 4096), vec![2; 4096]);
}

/// A disk for the race: record writes land in a volatile set; a flush
/// makes durable what was written when it began, after a pause in which
/// other writes complete (and must not count as flushed).
#[derive(Default)]
struct RaceDisk {
    volatile: BTreeSet<u64>,
    durable: BTreeSet<u64>,
    flushes: u64,
}

#[test]
fn racing_fsyncs_share_writes_and_flushes_and_are_acknowledged_in_record_order() {
    const THREADS: u64 = 8;
    const EACH: u64 = 150;
    // The core lock: hands out tickets and stages records in ticket order,
    // as the core does.
    struct Core {
        next: u64,
        staged: Vec<u64>,
    }
    let core = Arc::new(Mutex::new(Core { next: 0, staged: Vec::new() }));
    let disk = Arc::new(Mutex::new(RaceDisk::default()));
    let group = Arc::new(GroupCommit::new());
    // The kernel's gate: each batch is taken, written and flushed under
    // it, one holder at a time.
    let gate = Arc::new(Mutex::new(()));
    let skipped = Arc::new(AtomicU64::new(0));
    let batches = Arc::new(AtomicU64::new(0));
    let threads: Vec<_> = (0..THREADS)
        .map(|_| {
            let (core, disk, group, gate, skipped, batches) =
                (core.clone(), disk.clone(), group.clone(), gate.clone(), skipped.clone(), batches.clone());
            std::thread::spawn(move || {
                for _ in 0..EACH {
                    let ticket = {
                        let mut c = core.lock().unwrap();
                        c.next += 1;
                        let t = c.next;
                        c.staged.push(t);
                        t
                    };
                    if group.is_durable(ticket) {
                        skipped.fetch_add(1, Ordering::Relaxed);
                    } else {
                        // Takes the batch under the core lock, writes it
                        // without: other threads stage meanwhile.
                        let write = || {
                            let batch: Vec<u64> = std::mem::take(&mut core.lock().unwrap().staged);
                            let Some(&last) = batch.last() else { return Ok(BatchWritten::default()) };
                            assert!(batch.windows(2).all(|w| w[1] == w[0] + 1), "a batch is consecutive tickets");
                            std::thread::sleep(Duration::from_micros(100));
                            disk.lock().unwrap().volatile.extend(batch);
                            batches.fetch_add(1, Ordering::Relaxed);
                            Ok(BatchWritten { last_ticket: Some(last), flushed_tickets: 0 })
                        };
                        let flush = || {
                            let begun = disk.lock().unwrap().volatile.clone();
                            std::thread::sleep(Duration::from_micros(300));
                            let mut d = disk.lock().unwrap();
                            d.durable.extend(begun);
                            d.flushes += 1;
                            Ok(())
                        };
                        let _holding = gate.lock().unwrap();
                        if !group.make_durable(ticket, write, flush).unwrap() {
                            skipped.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    // Acknowledged: this record and every earlier one are on
                    // the disk.
                    let d = disk.lock().unwrap();
                    let missing: Vec<u64> = (1..=ticket).filter(|t| !d.durable.contains(t)).collect();
                    assert!(missing.is_empty(), "ticket {ticket} acknowledged with {missing:?} not durable");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let fsyncs = THREADS * EACH;
    let d = disk.lock().unwrap();
    assert_eq!(group.flushes(), d.flushes, "every flush counted once");
    assert_eq!(group.flushes() + skipped.load(Ordering::Relaxed), fsyncs, "each fsync flushed or was covered");
    // Batches share writes as flushes share flushes: the fsyncs that
    // staged while a holder wrote and flushed go out in the next batch.
    assert!(batches.load(Ordering::Relaxed) * 10 < fsyncs * 9, "concurrent fsyncs shared writes");
    // Each write and flush covers the fsyncs that staged while the one
    // before it ran. With 8 threads and the 2 CPUs of the test host most
    // are covered; demand a margin that a host busy elsewhere still gives,
    // where one flush per fsync would fail it.
    assert!(d.flushes * 10 < fsyncs * 9, "concurrent fsyncs shared flushes: {} flushes for {fsyncs}", d.flushes);
    assert_eq!(group.durable(), fsyncs);
}

/// Tree-log records take tickets like fast-commit records: staged, durable
/// after the shared write and flush; a directory's fsync that finds
/// its entries held by an unflushed record waits for that record's ticket.
#[test]
fn tree_log_records_take_tickets_too() {
    let mut fs = mount(fresh(64 << 20));
    let root = fs.root_ino();
    let f = fs.create(SV, root, b"f", 0o644, 0, 0, 0, ts(1)).unwrap().ino;
    fs.commit().unwrap();
    fs.link(SV, f, root, b"g", ts(2)).unwrap();
    let fl = fs.device().flushes;
    let done = fs.fsync_unflushed(SV, f).unwrap();
    assert_eq!(done.tier, FsyncTier::TreeLog);
    let t = done.ticket.expect("a record has a ticket");
    assert_eq!(fs.device().flushes, fl, "staged, not flushed");
    // Its entry is held by that record, not yet durable: the directory's
    // fsync writes nothing but must wait for the same ticket.
    let dir = fs.fsync_unflushed(SV, root).unwrap();
    assert_eq!((dir.tier, dir.ticket), (FsyncTier::Clean, Some(t)));
    let mut lost = mount(fs.device().crash_drop_all());
    assert!(lost.lookup(SV, root, b"g").is_err(), "unflushed: the link may be lost");
    assert_eq!(fs.write_staged_records().unwrap(), Some(t));
    fs.device().flush().unwrap();
    let mut kept = mount(fs.device().crash_drop_all());
    assert!(kept.lookup(SV, root, b"g").is_ok() && kept.lookup(SV, root, b"f").is_ok());
}

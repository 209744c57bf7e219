// SPDX-License-Identifier: GPL-2.0
//! KUnit suites for the adapter's own helpers, run at insmod: the
//! mount-option parser (commit=, subvol=, fast_commit=, norecovery) and
//! its /proc/mounts text, the shutdown flags, the
//! fallocate modes, the core lock's try-lock.

use super::ioctl::Shutdown;
use super::kunit::{kcheck, kunit_suite, Test};
use super::options::{parse, path_components, show_commit, MountParams, ParamError, DEFAULT_COMMIT_SECS};

fn commit_values(t: &mut Test) {
    let mut p = MountParams::default();
    kcheck!(t, parse(&mut p, b"commit", Some(b"30")) == Ok(()));
    kcheck!(t, p.commit_secs == Some(30));
    kcheck!(t, parse(&mut p, b"commit", Some(b"0")) == Ok(()));
    kcheck!(t, p.commit_secs == Some(DEFAULT_COMMIT_SECS));
    kcheck!(t, parse(&mut p, b"commit", Some(b"86400")) == Ok(()));
    kcheck!(t, p.commit_secs == Some(86400));
}

fn commit_rejects_malformed(t: &mut Test) {
    let mut p = MountParams::default();
    for bad in [&b""[..], b"-1", b"5s", b"86401", b"99999999999", b" 5"] {
        kcheck!(t, matches!(parse(&mut p, b"commit", Some(bad)), Err(ParamError::Bad(_))));
    }
    kcheck!(t, matches!(parse(&mut p, b"commit", None), Err(ParamError::Bad(_))));
    kcheck!(t, p.commit_secs.is_none());
}

fn unknown_is_left_to_the_vfs(t: &mut Test) {
    let mut p = MountParams::default();
    kcheck!(t, parse(&mut p, b"source", Some(b"/dev/vdb")) == Err(ParamError::Unknown));
    kcheck!(t, parse(&mut p, b"bogus", None) == Err(ParamError::Unknown));
    kcheck!(t, p == MountParams::default());
}

fn show_text(t: &mut Test) {
    let mut buf = [0u8; 24];
    kcheck!(t, show_commit(DEFAULT_COMMIT_SECS, &mut buf).is_none());
    kcheck!(t, show_commit(30, &mut buf) == Some(&b",commit=30\0"[..]));
    kcheck!(t, show_commit(86400, &mut buf) == Some(&b",commit=86400\0"[..]));
    kcheck!(t, show_commit(1, &mut buf) == Some(&b",commit=1\0"[..]));
}

fn subvol_options(t: &mut Test) {
    let mut p = MountParams::default();
    kcheck!(t, parse(&mut p, b"subvol", Some(b"/a/b")) == Ok(()));
    kcheck!(t, p.subvol_path.as_deref() == Some(&b"/a/b"[..]));
    kcheck!(t, parse(&mut p, b"subvolid", Some(b"257")) == Ok(()));
    kcheck!(t, p.subvol_id == Some(257));
    kcheck!(t, parse(&mut p, b"subvolid", Some(b"18446744073709551615")) == Ok(()));
    kcheck!(t, p.subvol_id == Some(u64::MAX));
    for bad in [&b""[..], b"-1", b"1x", b"18446744073709551616", b" 5"] {
        kcheck!(t, matches!(parse(&mut p, b"subvolid", Some(bad)), Err(ParamError::Bad(_))));
    }
    kcheck!(t, matches!(parse(&mut p, b"subvol", Some(b"")), Err(ParamError::Bad(_))));
    kcheck!(t, matches!(parse(&mut p, b"subvol", None), Err(ParamError::Bad(_))));
    let names: [&[u8]; 2] = [b"a", b"b"];
    kcheck!(t, path_components(b"//a///b/").eq(names.iter().copied()));
    kcheck!(t, path_components(b"/").next().is_none());
}

fn fsync_options(t: &mut Test) {
    let mut p = MountParams::default();
    kcheck!(t, p.fast_commit.is_none() && !p.norecovery);
    kcheck!(t, parse(&mut p, b"fast_commit", Some(b"off")) == Ok(()));
    kcheck!(t, p.fast_commit == Some(false));
    kcheck!(t, parse(&mut p, b"fast_commit", Some(b"on")) == Ok(()));
    kcheck!(t, p.fast_commit == Some(true));
    p.fast_commit = None;
    kcheck!(t, parse(&mut p, b"fast_commit", None) == Ok(()));
    kcheck!(t, p.fast_commit == Some(true));
    for bad in [&b""[..], b"maybe", b"OFF", b"0", b"on "] {
        kcheck!(t, matches!(parse(&mut p, b"fast_commit", Some(bad)), Err(ParamError::Bad(_))));
    }
    kcheck!(t, p.fast_commit == Some(true));
    kcheck!(t, matches!(parse(&mut p, b"norecovery", Some(b"1")), Err(ParamError::Bad(_))));
    kcheck!(t, matches!(parse(&mut p, b"noload", Some(b"")), Err(ParamError::Bad(_))));
    kcheck!(t, !p.norecovery);
    kcheck!(t, parse(&mut p, b"noload", None) == Ok(()));
    kcheck!(t, p.norecovery);
    let mut q = MountParams::default();
    kcheck!(t, parse(&mut q, b"norecovery", None) == Ok(()));
    kcheck!(t, q.norecovery);
}

kunit_suite!(ferrofs_options_suite, "ferrofs_options", [commit_values, commit_rejects_malformed, unknown_is_left_to_the_vfs, show_text]);

kunit_suite!(ferrofs_fsync_options_suite, "ferrofs_fsync_options", [fsync_options]);

kunit_suite!(ferrofs_subvol_options_suite, "ferrofs_subvol_options", [subvol_options]);

fn shutdown_flags(t: &mut Test) {
    kcheck!(t, Shutdown::from_flags(0) == Some(Shutdown::SyncAll));
    kcheck!(t, Shutdown::from_flags(1) == Some(Shutdown::CommitOnly));
    kcheck!(t, Shutdown::from_flags(2) == Some(Shutdown::Immediate));
    for bad in [3u32, 4, 0x8000_0000, u32::MAX] {
        kcheck!(t, Shutdown::from_flags(bad).is_none());
    }
}

kunit_suite!(ferrofs_ioctl_suite, "ferrofs_ioctl", [shutdown_flags]);

fn fallocate_modes(t: &mut Test) {
    use super::extents::Falloc;
    // The kernel's FALLOC_FL_* values.
    let (keep, punch, zero, collapse, insert, unshare) = (0x01, 0x02, 0x10, 0x08, 0x20, 0x40);
    let mode = |m: u32| Falloc::from_mode(m, keep, punch, zero);
    kcheck!(t, mode(0) == Some(Falloc::Allocate { keep_size: false }));
    kcheck!(t, mode(keep) == Some(Falloc::Allocate { keep_size: true }));
    kcheck!(t, mode(punch | keep) == Some(Falloc::PunchHole));
    kcheck!(t, mode(zero) == Some(Falloc::ZeroRange { keep_size: false }));
    kcheck!(t, mode(zero | keep) == Some(Falloc::ZeroRange { keep_size: true }));
    for unsupported in [punch, collapse, insert, unshare, punch | zero | keep, collapse | keep] {
        kcheck!(t, mode(unsupported).is_none());
    }
}

kunit_suite!(ferrofs_extents_suite, "ferrofs_extents", [fallocate_modes]);

/// Reclaim's try-lock fails while the core lock is held, for write or for
/// read, by this task too, and succeeds once it is free; a read try-lock
/// fails while it is held for write. Downgraded, it lets readers in and
/// keeps writers out; regained, it keeps both out.
fn core_lock_try_lock(t: &mut Test) {
    use super::core_lock::CoreLock;
    use kernel::alloc::flags::GFP_KERNEL;
    use kernel::prelude::*;
    let Ok(lock) = KBox::pin_init(CoreLock::new(5u32), GFP_KERNEL) else {
        kcheck!(t, false);
        return;
    };
    {
        let mut held = lock.lock();
        *held += 1;
        kcheck!(t, lock.try_lock().is_none());
    }
    kcheck!(t, lock.try_lock().map(|g| *g) == Some(6));
    kcheck!(t, *lock.lock() == 6);
    // Held for read: no writer gets in, reclaim's try-lock included.
    {
        let r = lock.read();
        kcheck!(t, *r == 6);
        kcheck!(t, lock.try_lock().is_none());
    }
    // Held for write: no reader gets in.
    {
        let _w = lock.lock();
        kcheck!(t, lock.try_read().is_none());
    }
    kcheck!(t, lock.try_read().map(|g| *g) == Some(6));
    // Downgraded (a commit's writes): readers get in, writers do not;
    // regained, neither does; then both do again.
    {
        let mut w = lock.lock();
        *w += 1;
        let d = w.downgrade();
        kcheck!(t, *d == 7);
        kcheck!(t, lock.try_read().map(|g| *g) == Some(7));
        kcheck!(t, lock.try_lock().is_none());
        let mut w = d.regain();
        kcheck!(t, lock.try_read().is_none());
        kcheck!(t, lock.try_lock().is_none());
        *w += 1;
    }
    kcheck!(t, lock.try_lock().map(|g| *g) == Some(8));
    // A downgraded guard dropped releases both halves.
    drop(lock.lock().downgrade());
    kcheck!(t, lock.try_lock().is_some());
    kcheck!(t, lock.try_read().is_some());
}

kunit_suite!(ferrofs_core_lock_suite, "ferrofs_core_lock", [core_lock_try_lock]);

// SPDX-License-Identifier: GPL-2.0
//! Running out of space: every operation fails cleanly with NoSpace (or a
//! short write), the transaction is never aborted, the filesystem stays
//! consistent and mountable, and deleting files gives the space back.

mod common;
use ferrofs_core::subvol::SubvolId;
const SV: SubvolId = SubvolId::DEFAULT;
use common::*;
use ferrofs_core::error::Error;

#[test]
fn fill_delete_refill() {
    // 2 MiB: 512 blocks, about 470 usable.
    let mut fs = mount(fresh(2 << 20));
    let root = fs.root_ino();
    let mut files = Vec::new();
    let mut written = 0u64;
    let chunk = vec![0x5au8; 20_000];
    'fill: for i in 0.. {
        let f = match fs.create(SV, root, format!("f{i}").as_bytes(), 0o644, 0, 0, 0, ts(1)) {
            Ok(a) => a.ino,
            Err(Error::NoSpace) => break,
            Err(e) => panic!("create: {e:?}"),
        };
        files.push(f);
        loop {
            let off = fs.getattr(SV, f).unwrap().size;
            match fs.write(SV, f, off, &chunk, ts(2)) {
                Ok(n) if n == chunk.len() => written += n as u64,
                Ok(n) => {
                    written += n as u64;
                    break 'fill;
                }
                Err(Error::NoSpace) => break 'fill,
                Err(e) => panic!("write: {e:?}"),
            }
            if off > 200_000 {
                break;
            }
        }
    }
    assert_eq!(fs.aborted(), None);
    // Small things fail cleanly too, and the transaction survives.
    for i in 0..50 {
        match fs.mkdir(SV, root, format!("d{i}").as_bytes(), 0o755, 0, 0, ts(3)) {
            Ok(_) | Err(Error::NoSpace) => {}
            Err(e) => panic!("mkdir: {e:?}"),
        }
        match fs.set_xattr(SV, files[0], format!("user.{i}").as_bytes(), &[1u8; 3000], 0, ts(3)) {
            Ok(_) | Err(Error::NoSpace) => {}
            Err(e) => panic!("setxattr: {e:?}"),
        }
    }
    assert_eq!(fs.aborted(), None);
    fs.commit().unwrap();
    assert_check_clean(&mut fs, "full filesystem");
    let st = fs.statfs();
    println!(
        "enospc: {} files, {written} bytes written before NoSpace; free {} of {} blocks",
        files.len(),
        st.free_blocks,
        st.total_blocks
    );
    assert!(written > 1_500_000, "only {written} bytes fit");
    let dev = fs.unmount().unwrap();
    let mut fs = mount(dev);
    assert_check_clean(&mut fs, "full filesystem after remount");
    // Delete everything written; the space comes back and can be reused.
    for (i, &f) in files.iter().enumerate() {
        fs.unlink(SV, root, format!("f{i}").as_bytes(), ts(4)).unwrap();
        fs.evict(SV, f).unwrap();
    }
    fs.commit().unwrap();
    assert_check_clean(&mut fs, "after deleting");
    let free = fs.statfs().free_blocks;
    assert!(free * 4096 > written, "free {free} blocks after deleting {written} bytes");
    let f = fs.create(SV, root, b"again", 0o644, 0, 0, 0, ts(5)).unwrap().ino;
    let big = vec![1u8; (written as usize) * 9 / 10];
    assert_eq!(fs.write(SV, f, 0, &big, ts(5)).unwrap(), big.len());
    fs.commit().unwrap();
    assert_check_clean(&mut fs, "after refilling");
}

#[test]
fn deleting_in_the_same_transaction_frees_after_auto_commit() {
    let mut fs = mount(fresh(2 << 20));
    let root = fs.root_ino();
    let f = fs.create(SV, root, b"a", 0o644, 0, 0, 0, ts(1)).unwrap().ino;
    let mut n = 0;
    while let Ok(k) = fs.write(SV, f, n, &[7u8; 65536], ts(1)) {
        n += k as u64;
        if k < 65536 {
            break;
        }
    }
    fs.commit().unwrap();
    // Unlinked blocks are pinned until a commit; the next write needing
    // them commits on its own instead of failing.
    fs.unlink(SV, root, b"a", ts(2)).unwrap();
    fs.evict(SV, f).unwrap();
    let g = fs.create(SV, root, b"b", 0o644, 0, 0, 0, ts(3)).unwrap().ino;
    assert_eq!(fs.write(SV, g, 0, &vec![8u8; n as usize * 9 / 10], ts(3)).unwrap(), n as usize * 9 / 10);
    assert_check_clean(&mut fs, "after reuse");
}

// SPDX-License-Identifier: GPL-2.0
//! The fast-commit ineligible set (`FastCommitState::mark`): marks in any
//! order, repeated or not, leave it sorted and without duplicates, and
//! `is_marked` finds exactly what was marked.

use ferrofs_core::fast_commit::FastCommitState;
use ferrofs_core::subvol::SubvolId;

#[test]
fn marks_in_any_order_stay_sorted_and_unique() {
    let mut fc = FastCommitState::default();
    let (a, b) = (SubvolId(5), SubvolId(300));
    // An unlink loop's shape (the directory, then each victim in inode
    // order), then marks behind the last, repeats, and another subvolume.
    let marks: Vec<(SubvolId, u64)> = (0..50u64)
        .flat_map(|i| [(a, 256), (a, 1000 + i)])
        .chain([(a, 999), (a, 1020), (b, 7), (a, 1), (b, 7), (a, 2000), (a, 257)])
        .collect();
    for &(sv, ino) in &marks {
        fc.mark(sv, ino).unwrap();
    }
    let mut want: Vec<(u64, u64)> = marks.iter().map(|&(sv, ino)| (sv.0, ino)).collect();
    want.sort();
    want.dedup();
    assert_eq!(&fc.ineligible[..], &want[..]);
    for &(sv, ino) in &marks {
        assert!(fc.is_marked(sv, ino));
    }
    for (sv, ino) in [(a, 0), (a, 258), (a, 1050), (b, 6), (b, 8), (SubvolId(6), 256)] {
        assert!(!fc.is_marked(sv, ino), "{sv:?} {ino}");
    }
}

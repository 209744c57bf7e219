// SPDX-License-Identifier: GPL-2.0
//! The text of `/sys/fs/ferrofs/<dev>/fsync_stats`: the fsync tiers'
//! counters, replay's, the device flushes and the mount's fsync options,
//! one `key value` line each. The kernel formats it and `ferrofs stats`
//! parses it with this one codec, so the two cannot drift apart.
//!
//! The keys and their order are frozen (scripts match them; the table is
//! in Documentation/filesystems/ferrofs.rst): new keys are only appended.
//! Counts are decimal u64; switches are `on` or `off`. The parser is strict,
//! since its input is a file anyone can hand it: every key exactly once, no
//! other key, each value well formed, and the full-commit total equal to
//! the sum of its reasons.

use crate::fast_commit::{FastCommitStats, Ineligible};
use crate::store::Stats;
use core::fmt::{self, Write};

/// Prefix of the full-commit reasons' keys (`full_commit_<reason name>`).
const REASON_PREFIX: &str = "full_commit_";

/// Longest text `parse` accepts: a sysfs attribute is at most a page.
pub const MAX_TEXT: usize = 4096;

/// Everything the file reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FsyncReport {
    /// The fsync tiers' and replay's counters.
    pub fc: FastCommitStats,
    /// Commits since mount (full ones: fsync's, background, sync).
    pub commits: u64,
    /// Device cache flushes the filesystem issued since mount.
    pub flushes: u64,
    /// `fast_commit=`: whether fsyncs may use records.
    pub fast_commit: bool,
    /// `norecovery`: mounted without replaying the records.
    pub norecovery: bool,
    /// `commit=`: seconds between background commits.
    pub commit_secs: u64,
}

/// One line's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Value {
    /// A counter or a number of seconds.
    Count(u64),
    /// An option that is on or off.
    Switch(bool),
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Count(n) => write!(f, "{}", n),
            Value::Switch(on) => f.write_str(if *on { "on" } else { "off" }),
        }
    }
}

/// The keys that are not full-commit reasons, in file order around them:
/// these come before the reasons.
const HEAD_KEYS: [&str; 3] = ["fsync_fast_commit", "fsync_full_commit", "fsync_clean"];
/// These come after the reasons.
const TAIL_KEYS: [&str; 9] = [
    "fast_commit_new_names",
    "fast_commit_bytes",
    "commits",
    "flushes",
    "replayed_records",
    "replay_ns",
    "option_fast_commit",
    "option_norecovery",
    "option_commit",
];

/// Keys appended after `TAIL_KEYS` (the tree-log tier), before the
/// reasons added with it.
const LATER_KEYS: [&str; 2] = ["fsync_tree_log", "tree_log_bytes"];
/// Keys appended after the later reasons, the file's last lines.
const FINAL_KEYS: [&str; 1] = ["tree_log_related_dirs"];
/// Reasons whose lines sit between `HEAD_KEYS` and `TAIL_KEYS`; the later
/// ones (`Ineligible::ALL[MID_REASONS..]`) come last, so that every key
/// added since keeps the earlier lines where they were.
const MID_REASONS: usize = 7;

/// Number of lines (and keys).
pub const LINES: usize = FIRST_FINAL_LINE + FINAL_KEYS.len();
/// Line (0-based) of `FINAL_KEYS[0]`.
const FIRST_FINAL_LINE: usize = HEAD_KEYS.len() + Ineligible::ALL.len() + TAIL_KEYS.len() + LATER_KEYS.len();

/// Line (0-based) of reason `i` (`Ineligible::index`).
const fn reason_line(i: usize) -> usize {
    if i < MID_REASONS {
        HEAD_KEYS.len() + i
    } else {
        HEAD_KEYS.len() + MID_REASONS + TAIL_KEYS.len() + LATER_KEYS.len() + (i - MID_REASONS)
    }
}

/// A key and its place in the report, to read or set it.
enum Slot<'a> {
    Count(&'a mut u64),
    Switch(&'a mut bool),
    /// The full-commit total, derived from the reasons.
    Total,
}

/// Why a text is not a valid report; `line` counts from 1 (0: the text as
/// a whole).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParseError {
    /// The offending line.
    pub line: usize,
    /// What is wrong with it.
    pub what: &'static str,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            f.write_str(self.what)
        } else {
            write!(f, "line {}: {}", self.line, self.what)
        }
    }
}

impl FsyncReport {
    /// The report of a mount: its counters and options.
    pub fn new(fc: FastCommitStats, store: &Stats, fast_commit: bool, norecovery: bool, commit_secs: u64) -> Self {
        FsyncReport { fc, commits: store.commits, flushes: store.flushes, fast_commit, norecovery, commit_secs }
    }

    /// Fsyncs served by a full commit, whatever the reason.
    pub fn full_commits(&self) -> u64 {
        self.fc.full_commits.iter().fold(0u64, |a, &n| a.saturating_add(n))
    }

    /// Key of line `i` (0-based, below `LINES`); reason keys are built
    /// into `buf`.
    fn key(i: usize, buf: &mut [u8; 40]) -> &str {
        if i < HEAD_KEYS.len() {
            return HEAD_KEYS[i];
        }
        if let Some(k) = i.checked_sub(FIRST_FINAL_LINE) {
            return FINAL_KEYS.get(k).copied().unwrap_or("");
        }
        let j = i - HEAD_KEYS.len();
        let reason = if j < MID_REASONS {
            j
        } else if j - MID_REASONS < TAIL_KEYS.len() {
            return TAIL_KEYS[j - MID_REASONS];
        } else if j - MID_REASONS - TAIL_KEYS.len() < LATER_KEYS.len() {
            return LATER_KEYS[j - MID_REASONS - TAIL_KEYS.len()];
        } else {
            j - TAIL_KEYS.len() - LATER_KEYS.len()
        };
        let Some(r) = Ineligible::ALL.get(reason) else { return "" };
        let name = r.name();
        let len = REASON_PREFIX.len() + name.len();
        buf[..REASON_PREFIX.len()].copy_from_slice(REASON_PREFIX.as_bytes());
        buf[REASON_PREFIX.len()..len].copy_from_slice(name.as_bytes());
        core::str::from_utf8(&buf[..len]).unwrap_or("")
    }

    /// Where key `key` lives.
    fn slot(&mut self, key: &str) -> Option<(usize, Slot<'_>)> {
        let reasons = MID_REASONS;
        let later = HEAD_KEYS.len() + MID_REASONS + TAIL_KEYS.len();
        if let Some(name) = key.strip_prefix(REASON_PREFIX) {
            let i = Ineligible::ALL.iter().position(|r| r.name() == name)?;
            return Some((reason_line(i), Slot::Count(&mut self.fc.full_commits[i])));
        }
        let (i, slot) = match key {
            "fsync_fast_commit" => (0, Slot::Count(&mut self.fc.fast_commits)),
            "fsync_full_commit" => (1, Slot::Total),
            "fsync_clean" => (2, Slot::Count(&mut self.fc.clean)),
            "fast_commit_new_names" => (3 + reasons, Slot::Count(&mut self.fc.new_names)),
            "fast_commit_bytes" => (4 + reasons, Slot::Count(&mut self.fc.record_bytes)),
            "commits" => (5 + reasons, Slot::Count(&mut self.commits)),
            "flushes" => (6 + reasons, Slot::Count(&mut self.flushes)),
            "replayed_records" => (7 + reasons, Slot::Count(&mut self.fc.replayed)),
            "replay_ns" => (8 + reasons, Slot::Count(&mut self.fc.replay_ns)),
            "option_fast_commit" => (9 + reasons, Slot::Switch(&mut self.fast_commit)),
            "option_norecovery" => (10 + reasons, Slot::Switch(&mut self.norecovery)),
            "option_commit" => (11 + reasons, Slot::Count(&mut self.commit_secs)),
            "fsync_tree_log" => (later, Slot::Count(&mut self.fc.tree_logs)),
            "tree_log_bytes" => (later + 1, Slot::Count(&mut self.fc.tree_log_bytes)),
            "tree_log_related_dirs" => (FIRST_FINAL_LINE, Slot::Count(&mut self.fc.related_dirs_logged)),
            _ => return None,
        };
        Some((i, slot))
    }

    /// Calls `f` with each line's key and value, in file order.
    pub fn for_each_line(&self, mut f: impl FnMut(&str, Value) -> fmt::Result) -> fmt::Result {
        let mut copy = *self;
        let total = self.full_commits();
        let mut buf = [0u8; 40];
        for i in 0..LINES {
            let key = Self::key(i, &mut buf);
            let value = match copy.slot(key) {
                Some((_, Slot::Count(n))) => Value::Count(*n),
                Some((_, Slot::Switch(on))) => Value::Switch(*on),
                Some((_, Slot::Total)) => Value::Count(total),
                None => return Err(fmt::Error),
            };
            f(key, value)?;
        }
        Ok(())
    }

    /// Writes the file's text.
    pub fn format(&self, out: &mut dyn Write) -> fmt::Result {
        self.for_each_line(|key, value| writeln!(out, "{} {}", key, value))
    }

    /// Reads a text `format` wrote (see the module's header for what is
    /// checked).
    pub fn parse(text: &str) -> Result<Self, ParseError> {
        if text.len() > MAX_TEXT {
            return Err(ParseError { line: 0, what: "longer than a sysfs file can be" });
        }
        let mut r = FsyncReport::default();
        let mut seen = [false; LINES];
        let mut total = None;
        for (n, line) in text.lines().enumerate() {
            let bad = |what| ParseError { line: n + 1, what };
            let (key, value) = line.split_once(' ').ok_or(bad("not `key value`"))?;
            let (i, slot) = r.slot(key).ok_or(bad("unknown key"))?;
            if core::mem::replace(&mut seen[i], true) {
                return Err(bad("key given twice"));
            }
            match slot {
                Slot::Count(c) => *c = decimal(value).ok_or(bad("not a decimal count"))?,
                Slot::Switch(on) => {
                    *on = match value {
                        "on" => true,
                        "off" => false,
                        _ => return Err(bad("neither on nor off")),
                    }
                }
                Slot::Total => total = Some((n + 1, decimal(value).ok_or(bad("not a decimal count"))?)),
            }
        }
        if seen.iter().any(|s| !s) {
            return Err(ParseError { line: 0, what: "a key is missing" });
        }
        if let Some((line, t)) = total {
            if t != r.full_commits() {
                return Err(ParseError { line, what: "full-commit total differs from the sum of its reasons" });
            }
        }
        Ok(r)
    }
}

/// A plain decimal u64 (no sign, no spaces, no empty string).
fn decimal(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > 20 || !s.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    s.bytes().try_fold(0u64, |n, c| n.checked_mul(10)?.checked_add(u64::from(c - b'0')))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::String;

    fn sample() -> FsyncReport {
        let mut fc = FastCommitStats {
            fast_commits: 7,
            new_names: 2,
            record_bytes: 28672,
            clean: 3,
            replayed: 4,
            replay_ns: 123456,
            tree_logs: 5,
            tree_log_bytes: 8192,
            related_dirs_logged: 6,
            ..Default::default()
        };
        for (i, r) in Ineligible::ALL.iter().enumerate() {
            fc.full_commits[r.index()] = 10 + i as u64;
        }
        FsyncReport { fc, commits: 40, flushes: 55, fast_commit: false, norecovery: true, commit_secs: 30 }
    }

    fn text(r: &FsyncReport) -> String {
        let mut s = String::new();
        r.format(&mut s).unwrap();
        s
    }

    #[test]
    fn round_trip() {
        let r = sample();
        let s = text(&r);
        assert_eq!(s.lines().count(), LINES);
        assert_eq!(FsyncReport::parse(&s), Ok(r));
        assert_eq!(FsyncReport::parse(&text(&FsyncReport::default())), Ok(FsyncReport::default()));
    }

    #[test]
    fn lines_are_the_documented_ones() {
        let s = text(&sample());
        let want = "fsync_fast_commit 7\nfsync_full_commit 186\nfsync_clean 3\n\
            full_commit_no_area 10\nfull_commit_not_regular 11\nfull_commit_new 12\nfull_commit_changed 13\n\
            full_commit_too_much_data 14\nfull_commit_area_full 15\nfull_commit_disabled 16\n\
            fast_commit_new_names 2\nfast_commit_bytes 28672\ncommits 40\nflushes 55\n\
            replayed_records 4\nreplay_ns 123456\noption_fast_commit off\noption_norecovery on\noption_commit 30\n\
            fsync_tree_log 5\ntree_log_bytes 8192\n\
            full_commit_new_parent 17\nfull_commit_slot_taken 18\nfull_commit_log_too_big 19\nfull_commit_no_tree_log 20\nfull_commit_related 21\n\
            tree_log_related_dirs 6\n";
        assert_eq!(s, want);
    }

    #[test]
    fn hostile_texts_are_refused() {
        let good = text(&sample());
        let err = |t: &str| FsyncReport::parse(t).unwrap_err();
        assert_eq!(err(&good.replacen("fsync_clean 3", "fsync_clean x", 1)).what, "not a decimal count");
        assert_eq!(err(&good.replacen("fsync_clean 3", "fsync_clean 18446744073709551616", 1)).what, "not a decimal count");
        assert_eq!(err(&good.replacen("fsync_clean 3", "fsync_clean -3", 1)).what, "not a decimal count");
        assert_eq!(err(&good.replacen("option_norecovery on", "option_norecovery yes", 1)).what, "neither on nor off");
        assert_eq!(err(&good.replacen("fsync_clean 3\n", "", 1)).what, "a key is missing");
        assert_eq!(err(&(good.clone() + "fsync_clean 3\n")).what, "key given twice");
        assert_eq!(err(&(good.clone() + "bogus 1\n")).what, "unknown key");
        assert_eq!(err(&(good.clone() + "full_commit_bogus 1\n")).what, "unknown key");
        assert_eq!(err(&(good.clone() + "lonely\n")), ParseError { line: LINES + 1, what: "not `key value`" });
        let e = err(&good.replacen("fsync_full_commit 186", "fsync_full_commit 185", 1));
        assert_eq!(e, ParseError { line: 2, what: "full-commit total differs from the sum of its reasons" });
        assert_eq!(err(&"x".repeat(MAX_TEXT + 1)).line, 0);
        assert_eq!(err("").what, "a key is missing");
    }

    #[test]
    fn each_line_has_one_place() {
        let mut r = FsyncReport::default();
        let mut buf = [0u8; 40];
        for i in 0..LINES {
            let key = std::string::String::from(FsyncReport::key(i, &mut buf));
            assert_eq!(r.slot(&key).map(|(at, _)| at), Some(i), "{key}");
        }
    }

    #[test]
    fn every_reason_has_its_own_key() {
        let mut r = FsyncReport::default();
        for reason in Ineligible::ALL {
            r.fc.full_commits[reason.index()] += 1;
            let key = std::format!("full_commit_{} 1", reason.name());
            assert!(text(&r).lines().any(|l| l == key), "{key}");
            assert_eq!(FsyncReport::parse(&text(&r)).unwrap().fc.full_commits[reason.index()], 1);
        }
        assert_eq!(r.full_commits(), Ineligible::ALL.len() as u64);
    }
}

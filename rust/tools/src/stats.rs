// SPDX-License-Identifier: GPL-2.0
//! `ferrofs stats DEV_OR_MOUNTPOINT [--json]`: a mounted ferrofs's fsync
//! statistics, read from /sys/fs/ferrofs/<dev>/fsync_stats with the core's
//! codec (`ferrofs_core::fsync_stats`) and printed as an aligned table or
//! as one JSON object.
//!
//! The device is found from the path: a block device names itself (its
//! major:minor in /sys/dev/block); any other path is looked up in
//! /proc/self/mountinfo, where the mount holding it (the longest mount
//! point above it) must be a ferrofs, whose major:minor is its device's
//! even inside a subvolume with its own st_dev.

use ferrofs_core::fsync_stats::{FsyncReport, Value};
use std::fmt::Write;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Component, Path, PathBuf};

/// Where the kernel's files are; tests point these elsewhere.
pub struct Roots {
    /// /proc/self/mountinfo.
    pub mountinfo: PathBuf,
    /// /sys.
    pub sys: PathBuf,
}

impl Default for Roots {
    fn default() -> Self {
        Roots { mountinfo: "/proc/self/mountinfo".into(), sys: "/sys".into() }
    }
}

/// `ferrofs stats`: the text to print, or the message of why not.
pub fn stats(path: &Path, json: bool, roots: &Roots) -> Result<String, String> {
    let dev = device_name(path, roots)?;
    let file = roots.sys.join("fs/ferrofs").join(&dev).join("fsync_stats");
    let text = match std::fs::read_to_string(&file) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(format!("{}: not a mounted ferrofs (no {})", path.display(), file.display()))
        }
        Err(e) => return Err(format!("{}: {e}", file.display())),
    };
    let report = FsyncReport::parse(&text).map_err(|e| format!("{}: {e}", file.display()))?;
    Ok(if json { to_json(&dev, &report) } else { to_table(&dev, &report) })
}

/// The kernel's name of the device behind `path` (`vdb`, `dm-0`).
fn device_name(path: &Path, roots: &Roots) -> Result<String, String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let (major, minor) = if meta.file_type().is_block_device() {
        let rdev = meta.rdev();
        (libc::major(rdev), libc::minor(rdev))
    } else {
        let full = std::fs::canonicalize(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let text = std::fs::read_to_string(&roots.mountinfo).map_err(|e| format!("{}: {e}", roots.mountinfo.display()))?;
        let m = mount_of(&text, &full).ok_or_else(|| format!("{}: no mount holds it", path.display()))?;
        if m.fstype != "ferrofs" {
            return Err(format!("{}: not a mounted ferrofs (it is on {} at {})", path.display(), m.fstype, m.point.display()));
        }
        (m.major, m.minor)
    };
    let link = roots.sys.join(format!("dev/block/{major}:{minor}"));
    let target = std::fs::read_link(&link).map_err(|e| format!("{}: not a mounted ferrofs ({}: {e})", path.display(), link.display()))?;
    target
        .file_name()
        .and_then(|n| n.to_str())
        .map(str::to_owned)
        .ok_or_else(|| format!("{}: {} names no device", path.display(), link.display()))
}

/// One line of /proc/self/mountinfo.
#[derive(Debug, PartialEq, Eq)]
struct Mount {
    major: u32,
    minor: u32,
    point: PathBuf,
    fstype: String,
}

/// The mount holding `path` (absolute, no symlinks): the deepest mount
/// point above it, the last mounted of equals (it is on top).
fn mount_of(mountinfo: &str, path: &Path) -> Option<Mount> {
    let mut best: Option<(usize, Mount)> = None;
    for m in mountinfo.lines().filter_map(parse_mountinfo_line) {
        if !path.starts_with(&m.point) {
            continue;
        }
        let depth = m.point.components().filter(|c| matches!(c, Component::Normal(_))).count();
        if best.as_ref().is_none_or(|(d, _)| depth >= *d) {
            best = Some((depth, m));
        }
    }
    best.map(|(_, m)| m)
}

/// `ID PARENT MAJ:MIN ROOT POINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPER`
/// (proc(5)); None for a line not of that shape.
fn parse_mountinfo_line(line: &str) -> Option<Mount> {
    let fields: Vec<&str> = line.split(' ').collect();
    let (major, minor) = fields.get(2)?.split_once(':')?;
    let point = PathBuf::from(unescape(fields.get(4)?));
    let dash = fields.iter().position(|f| *f == "-")?;
    let fstype = fields.get(dash + 1)?.to_string();
    Some(Mount { major: major.parse().ok()?, minor: minor.parse().ok()?, point, fstype })
}

/// Undoes mountinfo's `\ooo` octal escapes (space, tab, newline, backslash).
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let octal = b.get(i + 1..i + 4).filter(|d| b[i] == b'\\' && d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match octal.and_then(|d| u8::from_str_radix(std::str::from_utf8(d).ok()?, 8).ok()) {
            Some(c) => {
                out.push(c);
                i += 4;
            }
            None => {
                out.push(b[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The table: the device, then one aligned `key value` row per line of
/// the sysfs file, in its order.
fn to_table(dev: &str, r: &FsyncReport) -> String {
    let mut out = format!("{:<26} {}\n", "device", dev);
    let _ = r.for_each_line(|key, value| writeln!(out, "{key:<26} {value}"));
    out
}

/// One JSON object: "device", then every key of the sysfs file in its
/// order, counts as numbers and switches as booleans.
fn to_json(dev: &str, r: &FsyncReport) -> String {
    let mut out = format!("{{\n  \"device\": {}", serde_json::Value::from(dev));
    let _ = r.for_each_line(|key, value| {
        let v = match value {
            Value::Count(n) => serde_json::Value::from(n),
            Value::Switch(on) => serde_json::Value::from(on),
        };
        write!(out, ",\n  {}: {v}", serde_json::Value::from(key))
    });
    out.push_str("\n}\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrofs_core::fast_commit::{FastCommitStats, Ineligible};

    const MOUNTINFO: &str = "\
22 1 0:21 / / rw,relatime - ext4 /dev/vda rw
30 22 254:16 / /mnt/a rw,relatime - ferrofs /dev/vdb rw
31 30 8:0 / /mnt/a/inner rw shared:5 - ext4 /dev/sda rw
32 22 254:32 / /mnt/with\\040space rw - ferrofs /dev/vdc rw
33 22 254:48 / /mnt/a rw - ferrofs /dev/vdd rw
garbage line
";

    fn at(p: &str) -> Option<(u32, u32, String)> {
        mount_of(MOUNTINFO, Path::new(p)).map(|m| (m.major, m.minor, m.fstype))
    }

    #[test]
    fn the_deepest_and_topmost_mount_holds_a_path() {
        assert_eq!(at("/mnt/a/x/y"), Some((254, 48, "ferrofs".into())), "the later mount on /mnt/a is on top");
        assert_eq!(at("/mnt/a/inner/f"), Some((8, 0, "ext4".into())));
        assert_eq!(at("/mnt/ab"), Some((0, 21, "ext4".into())), "a prefix by components, not bytes");
        assert_eq!(at("/mnt/with space/f"), Some((254, 32, "ferrofs".into())));
        assert_eq!(mount_of("", Path::new("/x")), None);
    }

    fn sample() -> FsyncReport {
        let mut fc = FastCommitStats { fast_commits: 5, clean: 1, record_bytes: 20480, ..Default::default() };
        fc.full_commits[Ineligible::Disabled.index()] = 2;
        FsyncReport { fc, commits: 9, flushes: 12, fast_commit: true, norecovery: false, commit_secs: 5 }
    }

    #[test]
    fn json_has_every_key_with_typed_values() {
        let j: serde_json::Value = serde_json::from_str(&to_json("vdb", &sample())).unwrap();
        let obj = j.as_object().unwrap();
        assert_eq!(obj.len(), 1 + ferrofs_core::fsync_stats::LINES);
        assert_eq!(j["device"], "vdb");
        assert_eq!(j["fsync_fast_commit"], 5);
        assert_eq!(j["fsync_full_commit"], 2);
        assert_eq!(j["full_commit_disabled"], 2);
        assert_eq!(j["flushes"], 12);
        assert_eq!(j["option_fast_commit"], true);
        assert_eq!(j["option_norecovery"], false);
    }

    #[test]
    fn table_rows_follow_the_file() {
        let t = to_table("vdb", &sample());
        let rows: Vec<Vec<&str>> = t.lines().map(|l| l.split_whitespace().collect()).collect();
        assert_eq!(rows[0], ["device", "vdb"]);
        assert_eq!(rows[1], ["fsync_fast_commit", "5"]);
        assert!(rows.contains(&vec!["option_fast_commit", "on"]));
        assert_eq!(rows.len(), 1 + ferrofs_core::fsync_stats::LINES);
    }

    /// A fake /sys and mountinfo in a temporary directory.
    fn fake(dev: &str, text: Option<&str>) -> (PathBuf, Roots) {
        let dir = std::env::temp_dir().join(format!("ferrofs-stats-{}-{dev}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("sys/dev/block")).unwrap();
        std::fs::create_dir_all(dir.join("mnt")).unwrap();
        let mnt = std::fs::canonicalize(dir.join("mnt")).unwrap();
        std::os::unix::fs::symlink(format!("../../devices/virtual/block/{dev}"), dir.join("sys/dev/block/254:16")).unwrap();
        if let Some(text) = text {
            std::fs::create_dir_all(dir.join("sys/fs/ferrofs").join(dev)).unwrap();
            std::fs::write(dir.join("sys/fs/ferrofs").join(dev).join("fsync_stats"), text).unwrap();
        }
        let mi = format!("1 0 0:1 / / rw - ext4 /dev/vda rw\n2 1 254:16 / {} rw - ferrofs /dev/{dev} rw\n", mnt.display());
        std::fs::write(dir.join("mountinfo"), mi).unwrap();
        let roots = Roots { mountinfo: dir.join("mountinfo"), sys: dir.join("sys") };
        (mnt, roots)
    }

    #[test]
    fn reads_the_file_of_the_mount_holding_the_path() {
        let mut text = String::new();
        sample().format(&mut text).unwrap();
        let (mnt, roots) = fake("vdq", Some(&text));
        let j: serde_json::Value = serde_json::from_str(&stats(&mnt, true, &roots).unwrap()).unwrap();
        assert_eq!((j["device"].as_str(), j["commits"].as_u64()), (Some("vdq"), Some(9)));
        assert!(stats(&mnt, false, &roots).unwrap().starts_with("device"));
        // Damaged text is refused with the file named.
        std::fs::write(roots.sys.join("fs/ferrofs/vdq/fsync_stats"), text.replace("commits 9", "commits nine")).unwrap();
        let e = stats(&mnt, false, &roots).unwrap_err();
        assert!(e.contains("fsync_stats: line") && e.contains("not a decimal count"), "{e}");
    }

    #[test]
    fn a_path_not_on_a_mounted_ferrofs_is_refused() {
        let (mnt, roots) = fake("vdr", None);
        let e = stats(&mnt, false, &roots).unwrap_err();
        assert!(e.contains("not a mounted ferrofs"), "{e}");
        let e = stats(&roots.sys, false, &roots).unwrap_err();
        assert!(e.contains("not a mounted ferrofs (it is on ext4 at /)"), "{e}");
        let e = stats(Path::new("/no/such/path"), false, &roots).unwrap_err();
        assert!(e.contains("No such file"), "{e}");
    }
}

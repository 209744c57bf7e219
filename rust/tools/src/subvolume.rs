// SPDX-License-Identifier: GPL-2.0
//! `ferrofs subvolume`: create, snapshot, delete, list and show the
//! subvolumes of a mounted ferrofs, and get or set their read-only flag,
//! through the ioctls of `include/uapi/linux/ferrofs.h`.
//!
//! How paths become ioctl arguments:
//! - create and delete go to the parent directory with the last component
//!   as the name, because that is where the kernel adds or removes the
//!   entry. A path is split as text (`a/b/` is `b` in `a`), so `.` and
//!   `..` as a last component are refused rather than resolved.
//! - delete first resolves symlinks, `.` and `..` (the subvolume deleted is
//!   the one the path leads to) and prints the resolved path.
//! - Any open file names the subvolume it is in, so `snapshot /mnt/s/dir`
//!   would snapshot all of `/mnt/s`. snapshot, delete and set-readonly act
//!   on a subvolume and refuse a path that is not a subvolume's root
//!   directory, which is always inode `ROOT_DIR_INO` (256; the inodes
//!   inside a subvolume count from 257). show, list and get-readonly report
//!   on the subvolume the path is in and accept any file or directory.
//!
//! Every failure is a `Failure`, printed as `ferrofs: WHAT: WHY`, with
//! strerror(3)'s text as WHY when the kernel refused.

use crate::ioctl::{FerrofsFile, Kind, OpenError};
use crate::{format_uuid, strerror};
use ferrofs_core::format::ROOT_DIR_INO;
use ferrofs_core::uapi::{self, SubvolInfo, Timespec};
use serde::Serialize;
use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::fmt;
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// A command that failed: what it was doing and why it failed.
#[derive(Debug, PartialEq, Eq)]
pub struct Failure {
    what: String,
    why: String,
}

impl Failure {
    fn new(what: impl Into<String>, why: impl Into<String>) -> Self {
        Failure { what: what.into(), why: why.into() }
    }

    fn io(what: impl Into<String>, e: &io::Error) -> Self {
        Failure::new(what, strerror(e))
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.what, self.why)
    }
}

/// `path` in single quotes, as every message shows paths.
fn quoted(path: &Path) -> String {
    format!("'{}'", path.display())
}

/// Splits `path` as text into its parent directory and last component:
/// trailing slashes do not count, the parent of a bare name is `.`, and
/// the parent of `/name` is `/`. `/` itself has an empty last component.
pub fn split_parent(path: &Path) -> (PathBuf, OsString) {
    fn trim_slashes(bytes: &[u8]) -> &[u8] {
        let end = bytes.iter().rposition(|&b| b != b'/').map_or(0, |i| i + 1);
        &bytes[..end]
    }
    let whole = path.as_os_str().as_bytes();
    let bytes = trim_slashes(whole);
    match bytes.iter().rposition(|&b| b == b'/') {
        None if bytes.is_empty() && whole.starts_with(b"/") => (PathBuf::from("/"), OsString::new()),
        None => (PathBuf::from("."), OsStr::from_bytes(bytes).to_owned()),
        Some(slash) => {
            let parent = trim_slashes(&bytes[..slash]);
            let parent = if parent.is_empty() { b"/" } else { parent };
            (PathBuf::from(OsStr::from_bytes(parent)), OsStr::from_bytes(&bytes[slash + 1..]).to_owned())
        }
    }
}

/// Why `name` cannot name a subvolume, if it cannot.
fn name_problem(name: &OsStr) -> Option<String> {
    let bytes = name.as_bytes();
    if bytes.is_empty() || bytes == b"." || bytes == b".." {
        return Some(format!("invalid subvolume name '{}'", name.to_string_lossy()));
    }
    if bytes.len() > uapi::SUBVOL_NAME_MAX {
        return Some(format!("name longer than {} bytes", uapi::SUBVOL_NAME_MAX));
    }
    None
}

/// Opens `path` for the command doing `what`.
fn open(path: &Path, kind: Kind, what: &str) -> Result<FerrofsFile, Failure> {
    FerrofsFile::open(path, kind).map_err(|e| match e {
        OpenError::Io(e) => Failure::new(what, format!("{}: {}", quoted(path), strerror(&e))),
        refused => Failure::new(what, format!("{} is {refused}", quoted(path))),
    })
}

/// Opens `path`, which must be a subvolume's root directory, for the
/// command doing `what`.
fn open_subvolume_root(path: &Path, what: &str) -> Result<FerrofsFile, Failure> {
    let file = open(path, Kind::FileOrDirectory, what)?;
    let meta = file.file().metadata().map_err(|e| Failure::new(what, format!("{}: {}", quoted(path), strerror(&e))))?;
    if !meta.is_dir() || meta.ino() != ROOT_DIR_INO {
        return Err(Failure::new(what, format!("{} is not a subvolume", quoted(path))));
    }
    Ok(file)
}

/// `subvolume create PATH`.
pub fn create(path: &Path) -> Result<(), Failure> {
    let (parent, name) = split_parent(path);
    let target = parent.join(&name);
    let what = format!("cannot create subvolume {}", quoted(&target));
    if let Some(problem) = name_problem(&name) {
        return Err(Failure::new(what, problem));
    }
    let dir = open(&parent, Kind::Directory, &what)?;
    dir.create_subvolume(name.as_bytes()).map_err(|e| Failure::io(what, &e))?;
    println!("Create subvolume {}", quoted(&target));
    Ok(())
}

/// `subvolume snapshot [-r] SOURCE DEST`: the snapshot is DEST/NAME of
/// SOURCE when DEST is an existing directory, DEST itself otherwise.
pub fn snapshot(source: &Path, dest: &Path, readonly: bool) -> Result<(), Failure> {
    let (dir_path, name) = if dest.is_dir() { (dest.to_path_buf(), split_parent(source).1) } else { split_parent(dest) };
    let target = dir_path.join(&name);
    let what = format!("cannot snapshot {} as {}", quoted(source), quoted(&target));
    if let Some(problem) = name_problem(&name) {
        return Err(Failure::new(what, problem));
    }
    let source_root = open_subvolume_root(source, &what)?;
    let dir = open(&dir_path, Kind::Directory, &what)?;
    let flags = if readonly { uapi::SUBVOL_RDONLY } else { 0 };
    dir.create_snapshot(&source_root, name.as_bytes(), flags).map_err(|e| Failure::io(what, &e))?;
    let kind = if readonly { "a readonly snapshot" } else { "a snapshot" };
    println!("Create {kind} of {} in {}", quoted(source), quoted(&target));
    Ok(())
}

/// `subvolume delete PATH`, for one PATH.
pub fn delete(path: &Path) -> Result<(), Failure> {
    let what = format!("cannot delete subvolume {}", quoted(path));
    let resolved = std::fs::canonicalize(path).map_err(|e| Failure::io(&what, &e))?;
    let subvolume = open_subvolume_root(&resolved, &what)?;
    let info = subvolume.subvolume_info().map_err(|e| Failure::io(&what, &e))?;
    // Closed before the delete: an open directory of a subvolume is a use
    // of it, and the kernel refuses to delete a subvolume in use (EBUSY).
    drop(subvolume);
    if info.subvolid == uapi::FS_TREE_OBJECTID {
        return Err(Failure::new(what, "the default subvolume cannot be deleted"));
    }
    let (parent, name) = split_parent(&resolved);
    if let Some(problem) = name_problem(&name) {
        return Err(Failure::new(what, problem));
    }
    let dir = open(&parent, Kind::Directory, &what)?;
    // The kernel deletes the name in the directory it is given. When the
    // subvolume is mounted on its own, the directory above the mount point
    // belongs to another subvolume (or filesystem), where the name, if it
    // exists, is something else.
    let parent_info = dir.subvolume_info().map_err(|e| Failure::io(&what, &e))?;
    if parent_info.subvolid != info.parent_id {
        return Err(Failure::new(what, "a mount point (its parent subvolume is not mounted above it)"));
    }
    dir.delete_subvolume(name.as_bytes()).map_err(|e| Failure::io(what, &e))?;
    println!("Delete subvolume {}", quoted(&resolved));
    Ok(())
}

/// Entries asked for per `LIST_SUBVOLS` call (each is 504 bytes).
const LIST_BATCH: usize = 64;

/// Every live subvolume, in id order, in batches.
fn list_all(file: &FerrofsFile) -> io::Result<Vec<SubvolInfo>> {
    let mut all = Vec::new();
    let mut batch = vec![SubvolInfo::zeroed(); LIST_BATCH];
    let mut start_id = 0;
    loop {
        let got = file.list_subvolumes(start_id, &mut batch)?;
        let entries = &batch[..got.count];
        all.extend_from_slice(entries);
        if !got.more {
            return Ok(all);
        }
        // Each call must move forward, or a faulty reply would loop here.
        match entries.last().and_then(|last| last.subvolid.checked_add(1)) {
            Some(next) if next > start_id => start_id = next,
            _ => return Err(io::Error::other("the kernel's list of subvolumes does not advance")),
        }
    }
}

/// Where each subvolume is, from the top level (the default subvolume):
/// its name joined under the names of the subvolumes holding it. The
/// interface names no directory inside a subvolume, so a name in a
/// directory other than its parent's root shows that directory as
/// `<dir:INO>`, and a parent missing from `entries` as `<subvol:ID>`
/// (placeholders add no spaces to a `list` line).
pub fn subvolume_paths(entries: &[SubvolInfo]) -> BTreeMap<u64, String> {
    let by_id: BTreeMap<u64, &SubvolInfo> = entries.iter().map(|e| (e.subvolid, e)).collect();
    let path_of = |entry: &SubvolInfo| {
        let mut parts = Vec::new();
        let mut current = entry;
        let mut steps = 0;
        loop {
            parts.push(String::from_utf8_lossy(current.name_bytes()).into_owned());
            if current.dirid != ROOT_DIR_INO {
                parts.push(format!("<dir:{}>", current.dirid));
            }
            if current.parent_id == uapi::FS_TREE_OBJECTID {
                break;
            }
            // More steps than entries is a loop (a kernel fault): it ends
            // at a placeholder, as an unknown parent does.
            match by_id.get(&current.parent_id) {
                Some(parent) if steps < by_id.len() => {
                    current = parent;
                    steps += 1;
                }
                _ => {
                    parts.push(format!("<subvol:{}>", current.parent_id));
                    break;
                }
            }
        }
        parts.reverse();
        parts.join("/")
    };
    entries.iter().map(|e| (e.subvolid, path_of(e))).collect()
}

/// `subvolume list [--json] PATH`: every subvolume but the default one
/// (the top level every path starts from).
pub fn list(path: &Path, json: bool) -> Result<(), Failure> {
    let what = format!("cannot list the subvolumes of {}", quoted(path));
    let file = open(path, Kind::FileOrDirectory, &what)?;
    let all = list_all(&file).map_err(|e| Failure::io(what, &e))?;
    let paths = subvolume_paths(&all);
    let listed = all.iter().filter(|e| e.subvolid != uapi::FS_TREE_OBJECTID);
    let out = if json {
        let objects: Vec<SubvolumeJson> =
            listed.map(|e| SubvolumeJson { path: paths.get(&e.subvolid).cloned(), ..SubvolumeJson::from(e) }).collect();
        to_json(&objects)
    } else {
        listed.map(|e| list_line(e, &paths[&e.subvolid])).collect()
    };
    let _ = io::stdout().write_all(out.as_bytes());
    Ok(())
}

/// One line of `list`.
fn list_line(info: &SubvolInfo, path: &str) -> String {
    format!("ID {} gen {} parent {} top level {} path {path}\n", info.subvolid, info.generation, info.parent_id, info.parent_id)
}

/// `subvolume show [--json] PATH`: the subvolume PATH is in.
pub fn show(path: &Path, json: bool) -> Result<(), Failure> {
    let what = format!("cannot show the subvolume of {}", quoted(path));
    let file = open(path, Kind::FileOrDirectory, &what)?;
    let info = file.subvolume_info().map_err(|e| Failure::io(what, &e))?;
    let out = if json { to_json(&SubvolumeJson::from(&info)) } else { show_text(path, &info) };
    let _ = io::stdout().write_all(out.as_bytes());
    Ok(())
}

/// `subvolume get-readonly PATH`: prints `true` or `false`.
pub fn get_readonly(path: &Path) -> Result<(), Failure> {
    let what = format!("cannot read the read-only flag of {}", quoted(path));
    let file = open(path, Kind::FileOrDirectory, &what)?;
    let flags = file.subvolume_flags().map_err(|e| Failure::io(what, &e))?;
    println!("{}", flags & uapi::SUBVOL_RDONLY != 0);
    Ok(())
}

/// `subvolume set-readonly PATH true|false`: changes that flag only.
pub fn set_readonly(path: &Path, readonly: bool) -> Result<(), Failure> {
    let what = format!("cannot set the read-only flag of {}", quoted(path));
    let file = open_subvolume_root(path, &what)?;
    let flags = file.subvolume_flags().map_err(|e| Failure::io(&what, &e))?;
    let wanted = if readonly { flags | uapi::SUBVOL_RDONLY } else { flags & !uapi::SUBVOL_RDONLY };
    if wanted != flags {
        file.set_subvolume_flags(wanted).map_err(|e| Failure::io(what, &e))?;
    }
    Ok(())
}

/// A UUID, or `None` for the all-zero "none".
fn uuid_or_none(uuid: &[u8; 16]) -> Option<String> {
    (*uuid != [0; 16]).then(|| format_uuid(uuid))
}

/// Seconds since the epoch as a UTC date and time, `2026-12-05 10:11:12
/// +0000`; `-` for zero, the "never" of send and receive times.
pub fn format_time(t: &Timespec) -> String {
    if t.sec == 0 && t.nsec == 0 {
        return "-".to_string();
    }
    let (days, secs) = (t.sec.div_euclid(86_400), t.sec.rem_euclid(86_400));
    let (year, month, day) = civil_from_days(days);
    format!("{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} +0000", secs / 3600, secs / 60 % 60, secs % 60)
}

/// The proleptic Gregorian date `days` after 1970-01-01 (the "days from
/// civil" inverse: eras of 400 years, years starting on March 1 so that
/// the leap day comes last).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 { month_from_march + 3 } else { month_from_march - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// `show`'s text: the path, then one field per line.
pub fn show_text(path: &Path, info: &SubvolInfo) -> String {
    let name = String::from_utf8_lossy(info.name_bytes());
    let dash = || "-".to_string();
    let fields = [
        ("Name", if name.is_empty() { "<FS_TREE>".to_string() } else { name.into_owned() }),
        ("UUID", uuid_or_none(&info.uuid).unwrap_or_else(dash)),
        ("Parent UUID", uuid_or_none(&info.parent_uuid).unwrap_or_else(dash)),
        ("Received UUID", uuid_or_none(&info.received_uuid).unwrap_or_else(dash)),
        ("Creation time", format_time(&info.otime)),
        ("Subvolume ID", info.subvolid.to_string()),
        ("Generation", info.generation.to_string()),
        ("Gen at creation", info.otransid.to_string()),
        ("Parent ID", info.parent_id.to_string()),
        ("Flags", if info.flags & uapi::SUBVOL_RDONLY != 0 { "readonly".to_string() } else { dash() }),
        ("Send transid", info.stransid.to_string()),
        ("Send time", format_time(&info.stime)),
        ("Receive transid", info.rtransid.to_string()),
        ("Receive time", format_time(&info.rtime)),
    ];
    let mut out = format!("{}\n", path.display());
    for (label, value) in fields {
        out.push_str(&format!("\t{:<18}{value}\n", format!("{label}:")));
    }
    out
}

/// A time in `--json` output.
#[derive(Serialize, Debug, PartialEq, Eq)]
struct TimeJson {
    sec: i64,
    nsec: u32,
}

fn time_or_none(t: &Timespec) -> Option<TimeJson> {
    (t.sec != 0 || t.nsec != 0).then_some(TimeJson { sec: t.sec, nsec: t.nsec })
}

/// One subvolume in `--json` output: `show` prints one object, `list` an
/// array of them with `path` added. These names are an interface: add
/// fields, never rename or drop one. A UUID or time that is all zero
/// ("none", "never") is `null`; names not in UTF-8 have their bad bytes
/// replaced by U+FFFD.
#[derive(Serialize, Debug, PartialEq, Eq)]
struct SubvolumeJson {
    id: u64,
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    path: Option<String>,
    parent_id: u64,
    dirid: u64,
    uuid: Option<String>,
    parent_uuid: Option<String>,
    received_uuid: Option<String>,
    readonly: bool,
    flags: u64,
    generation: u64,
    ctransid: u64,
    otransid: u64,
    stransid: u64,
    rtransid: u64,
    ctime: Option<TimeJson>,
    otime: Option<TimeJson>,
    stime: Option<TimeJson>,
    rtime: Option<TimeJson>,
}

impl From<&SubvolInfo> for SubvolumeJson {
    fn from(info: &SubvolInfo) -> Self {
        SubvolumeJson {
            id: info.subvolid,
            name: String::from_utf8_lossy(info.name_bytes()).into_owned(),
            path: None,
            parent_id: info.parent_id,
            dirid: info.dirid,
            uuid: uuid_or_none(&info.uuid),
            parent_uuid: uuid_or_none(&info.parent_uuid),
            received_uuid: uuid_or_none(&info.received_uuid),
            readonly: info.flags & uapi::SUBVOL_RDONLY != 0,
            flags: info.flags,
            generation: info.generation,
            ctransid: info.ctransid,
            otransid: info.otransid,
            stransid: info.stransid,
            rtransid: info.rtransid,
            ctime: time_or_none(&info.ctime),
            otime: time_or_none(&info.otime),
            stime: time_or_none(&info.stime),
            rtime: time_or_none(&info.rtime),
        }
    }
}

fn to_json<T: Serialize>(value: &T) -> String {
    // Serializing these plain structs cannot fail: every key is a string.
    let mut text = serde_json::to_string_pretty(value).expect("plain structs serialize");
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(p: &str) -> (String, String) {
        let (parent, name) = split_parent(Path::new(p));
        (parent.to_string_lossy().into_owned(), name.to_string_lossy().into_owned())
    }

    #[test]
    fn paths_split_as_text() {
        let cases = [
            ("/mnt/sub", "/mnt", "sub"),
            ("/mnt/sub/", "/mnt", "sub"),
            ("a//b//", "a", "b"),
            ("sub", ".", "sub"),
            ("/sub", "/", "sub"),
            ("///sub", "/", "sub"),
            ("/mnt/.", "/mnt", "."),
            ("a/..", "a", ".."),
            ("/", "/", ""),
            ("//", "/", ""),
            ("", ".", ""),
        ];
        for (path, parent, name) in cases {
            assert_eq!(split(path), (parent.to_string(), name.to_string()), "{path}");
        }
    }

    #[test]
    fn names_are_checked() {
        assert_eq!(name_problem(OsStr::new("snap")), None);
        assert_eq!(name_problem(OsStr::new(&"n".repeat(255))), None);
        assert_eq!(name_problem(OsStr::new(&"n".repeat(256))), Some("name longer than 255 bytes".to_string()));
        for bad in ["", ".", ".."] {
            assert_eq!(name_problem(OsStr::new(bad)), Some(format!("invalid subvolume name '{bad}'")));
        }
    }

    #[test]
    fn times_are_utc_dates() {
        let at = |sec| format_time(&Timespec { sec, nsec: 1, reserved: 0 });
        assert_eq!(format_time(&Timespec::default()), "-");
        assert_eq!(at(0), "1970-01-01 00:00:00 +0000");
        assert_eq!(at(951_782_400), "2000-02-29 00:00:00 +0000");
        assert_eq!(at(1_700_000_000), "2023-11-14 22:13:20 +0000");
        assert_eq!(at(-1), "1969-12-31 23:59:59 +0000");
        assert_eq!(at(4_102_444_799), "2099-12-31 23:59:59 +0000");
        // Whatever the kernel says, formatting does not overflow.
        assert!(at(i64::MAX).starts_with("292277026596-"));
        assert!(at(i64::MIN).starts_with("-292277022657-"));
    }

    fn info(id: u64, parent_id: u64, dirid: u64, name: &str) -> SubvolInfo {
        let mut info = SubvolInfo::zeroed();
        info.subvolid = id;
        info.parent_id = parent_id;
        info.dirid = dirid;
        info.name[..name.len()].copy_from_slice(name.as_bytes());
        info
    }

    #[test]
    fn paths_join_parents_and_mark_unknown_dirs() {
        let entries = [
            info(5, 0, 0, ""),
            info(256, 5, ROOT_DIR_INO, "a"),
            info(257, 256, ROOT_DIR_INO, "b"),
            info(258, 257, 300, "c"),
            info(259, 5, 301, "d"),
            info(260, 999, ROOT_DIR_INO, "orphan"),
            info(261, 262, ROOT_DIR_INO, "loop1"),
            info(262, 261, ROOT_DIR_INO, "loop2"),
        ];
        let paths = subvolume_paths(&entries);
        assert_eq!(paths[&256], "a");
        assert_eq!(paths[&257], "a/b");
        assert_eq!(paths[&258], "a/b/<dir:300>/c");
        assert_eq!(paths[&259], "<dir:301>/d");
        assert_eq!(paths[&260], "<subvol:999>/orphan");
        // A loop (a kernel fault) ends; how it is shown does not matter.
        assert!(paths[&261].ends_with("loop2/loop1"), "{}", paths[&261]);
        assert_eq!(list_line(&entries[2], &paths[&257]), "ID 257 gen 0 parent 256 top level 256 path a/b\n");
    }

    fn sample() -> SubvolInfo {
        let mut s = info(257, 5, ROOT_DIR_INO, "snap");
        s.flags = uapi::SUBVOL_RDONLY;
        s.generation = 12;
        s.otransid = 10;
        s.uuid = [0x11; 16];
        s.parent_uuid = [0x22; 16];
        s.otime = Timespec { sec: 1_700_000_000, nsec: 5, reserved: 0 };
        s
    }

    #[test]
    fn show_prints_every_field() {
        let text = show_text(Path::new("/mnt/snap"), &sample());
        let expected = "/mnt/snap
\tName:             snap
\tUUID:             11111111-1111-1111-1111-111111111111
\tParent UUID:      22222222-2222-2222-2222-222222222222
\tReceived UUID:    -
\tCreation time:    2023-11-14 22:13:20 +0000
\tSubvolume ID:     257
\tGeneration:       12
\tGen at creation:  10
\tParent ID:        5
\tFlags:            readonly
\tSend transid:     0
\tSend time:        -
\tReceive transid:  0
\tReceive time:     -
";
        assert_eq!(text, expected);
        assert!(show_text(Path::new("/mnt"), &info(5, 0, 0, "")).contains("Name:             <FS_TREE>\n"));
    }

    /// The field names are an interface; this pins them and their order.
    #[test]
    fn json_field_names_are_stable() {
        let json = to_json(&SubvolumeJson::from(&sample()));
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        let keys: Vec<&str> = value.as_object().unwrap().keys().map(String::as_str).collect();
        let mut expected = vec![
            "id",
            "name",
            "parent_id",
            "dirid",
            "uuid",
            "parent_uuid",
            "received_uuid",
            "readonly",
            "flags",
            "generation",
            "ctransid",
            "otransid",
            "stransid",
            "rtransid",
            "ctime",
            "otime",
            "stime",
            "rtime",
        ];
        expected.sort_unstable();
        assert_eq!(keys, expected);
        assert_eq!(value["readonly"], true);
        assert_eq!(value["uuid"], "11111111-1111-1111-1111-111111111111");
        assert_eq!(value["received_uuid"], serde_json::Value::Null);
        assert_eq!(value["otime"], serde_json::json!({ "sec": 1_700_000_000, "nsec": 5 }));
        assert_eq!(value["stime"], serde_json::Value::Null);
        // Declared order on output, for people reading it.
        assert!(json.find("\"id\"").unwrap() < json.find("\"name\"").unwrap());
        assert!(json.find("\"name\"").unwrap() < json.find("\"parent_id\"").unwrap());
        let listed = to_json(&vec![SubvolumeJson { path: Some("a/snap".into()), ..SubvolumeJson::from(&sample()) }]);
        let value: serde_json::Value = serde_json::from_str(&listed).unwrap();
        assert_eq!(value[0]["path"], "a/snap");
    }
}

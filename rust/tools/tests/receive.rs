// SPDX-License-Identifier: GPL-2.0
//! `ferrofs receive` as a user runs it, on whatever filesystem the temp
//! directory is (and tmpfs, /dev/shm, where a fallback needs a filesystem
//! that lacks a feature): streams built with the core's encoder are applied
//! and the tree checked byte for byte and attribute by attribute; damaged
//! streams are refused with the command's number, name and offset, and the
//! partial subvolume removed or kept; `--dump` prints what btrfs receive
//! --dump prints (checked against btrfs-progs' own output for streams
//! Linux's btrfs send wrote, in ferrofs-core's tests/data).
//!
//! The tests run as root: device nodes, owners.

use ferrofs_core::send_stream::{Command, StreamEncoder, StreamTime, CMD_HEADER_LEN, HEADER_LEN};
use ferrofs_tools::posix;
use std::ffi::CString;
use std::io::Write;
use std::os::fd::AsFd;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command as Process, Stdio};

const U1: [u8; 16] = [0x11; 16];
const U2: [u8; 16] = [0x22; 16];
const U3: [u8; 16] = [0x33; 16];

fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_ferrofs"))
}

/// A fresh empty directory under `base` for one test.
fn scratch_in(base: &Path, name: &str) -> PathBuf {
    let dir = base.join(format!("ferrofs-receive-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn scratch(name: &str) -> PathBuf {
    scratch_in(&std::env::temp_dir(), name)
}

/// One stream: header and commands.
fn stream(version: u32, cmds: &[Command<'_>]) -> Vec<u8> {
    let mut enc = StreamEncoder::new(version).unwrap();
    let mut out = ferrofs_core::send_stream::stream_header(version).to_vec();
    for c in cmds {
        out.extend_from_slice(enc.encode(c).unwrap());
    }
    out
}

/// Byte offset of command `n` (from 1) of a stream built by `stream`.
fn offset_of(version: u32, cmds: &[Command<'_>], n: usize) -> usize {
    let mut enc = StreamEncoder::new(version).unwrap();
    HEADER_LEN + cmds[..n - 1].iter().map(|c| enc.encode(c).unwrap().len()).sum::<usize>()
}

/// Runs `ferrofs receive ARGS` with `input` on stdin: status, stdout, stderr.
fn receive(args: &[&str], input: &[u8], env: &[(&str, &str)]) -> (i32, Vec<u8>, String) {
    let mut child = Process::new(bin())
        .arg("receive")
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    (out.status.code().unwrap_or(-1), out.stdout, String::from_utf8_lossy(&out.stderr).into_owned())
}

fn receive_ok(dir: &Path, input: &[u8]) {
    let (code, _, err) = receive(&[dir.to_str().unwrap()], input, &[]);
    assert_eq!(code, 0, "{err}");
}

fn t(sec: u64, nsec: u32) -> StreamTime {
    StreamTime { sec, nsec }
}

fn xattr(path: &Path, name: &str) -> Option<Vec<u8>> {
    let dir = std::fs::File::open(path.parent().unwrap()).unwrap();
    let file = CString::new(path.file_name().unwrap().as_encoded_bytes()).unwrap();
    posix::lgetxattr(dir.as_fd(), &file, &CString::new(name).unwrap()).ok()
}

fn lmeta(p: &Path) -> std::fs::Metadata {
    std::fs::symlink_metadata(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn times(p: &Path) -> ((i64, i64), (i64, i64)) {
    let m = lmeta(p);
    ((m.atime(), m.atime_nsec()), (m.mtime(), m.mtime_nsec()))
}

/// Data that differs at every offset, so a misplaced write shows.
fn pattern(n: usize, seed: u8) -> Vec<u8> {
    (0..n).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) ^ (i >> 8) as u8).collect()
}

/// A first subvolume with one of nearly everything.
fn full_commands<'a>(big: &'a [u8], tail: &'a [u8]) -> Vec<Command<'a>> {
    vec![
        Command::Subvol { path: b"snap1", uuid: U1, ctransid: 7 },
        Command::Mkdir { path: b"o258-7-0", ino: 258 },
        Command::Rename { from: b"o258-7-0", to: b"dir" },
        Command::Mkfile { path: b"o257-7-0", ino: 257 },
        Command::Rename { from: b"o257-7-0", to: b"file" },
        Command::Write { path: b"file", offset: 0, data: &big[..40000] },
        Command::Write { path: b"file", offset: 40000, data: &big[40000..80000] },
        Command::Write { path: b"file", offset: 80000, data: &big[80000..] },
        Command::Write { path: b"file", offset: 200_000, data: tail },
        Command::SetXattr { path: b"file", name: b"user.bin", data: b"\x00\xff\x10" },
        Command::SetXattr { path: b"file", name: b"user.gone", data: b"x" },
        Command::RemoveXattr { path: b"file", name: b"user.gone" },
        Command::Chown { path: b"file", uid: 1234, gid: 5678 },
        Command::Chmod { path: b"file", mode: 0o4755 },
        Command::Utimes { path: b"file", atime: t(1_600_000_000, 5), mtime: t(1_500_000_000, 123_456_789), ctime: t(1, 0) },
        Command::Link { path: b"dir/hard", target: b"file" },
        Command::Symlink { path: b"dir/link", ino: 259, target: b"../file" },
        Command::Chown { path: b"dir/link", uid: 42, gid: 43 },
        Command::Utimes { path: b"dir/link", atime: t(1_000_000_000, 0), mtime: t(1_000_000_001, 7), ctime: t(1, 0) },
        Command::Mkfifo { path: b"fifo", ino: 260 },
        Command::Mknod { path: b"null", ino: 261, mode: 0o20644, rdev: (1 << 8) | 3 },
        Command::Mksock { path: b"sock", ino: 262 },
        Command::Mkfile { path: b"copy", ino: 263 },
        Command::Clone { path: b"copy", offset: 0, len: 8192, clone_uuid: U1, clone_ctransid: 7, clone_path: b"file", clone_offset: 4096 },
        Command::Mkfile { path: b"short", ino: 264 },
        Command::Write { path: b"short", offset: 0, data: b"0123456789" },
        Command::Truncate { path: b"short", size: 4 },
        Command::Mkfile { path: b"long", ino: 265 },
        Command::Truncate { path: b"long", size: 100_000 },
        Command::Mkfile { path: b"gone", ino: 266 },
        Command::Unlink { path: b"gone" },
        Command::Mkdir { path: b"gonedir", ino: 267 },
        Command::Rmdir { path: b"gonedir" },
        Command::UpdateExtent { path: b"file", offset: 0, len: 4096 },
        Command::Mkdir { path: b"dir/sticky", ino: 268 },
        Command::Chmod { path: b"dir/sticky", mode: 0o1777 },
        Command::Chmod { path: b"dir", mode: 0o750 },
        Command::Utimes { path: b"dir", atime: t(1_234_567_890, 1), mtime: t(1_234_567_891, 2), ctime: t(1, 0) },
        Command::SetXattr { path: b"", name: b"user.root", data: b"top" },
        Command::Chmod { path: b"", mode: 0o755 },
        Command::Chown { path: b"", uid: 0, gid: 0 },
        Command::Utimes { path: b"", atime: t(1_111_111_111, 0), mtime: t(1_222_222_222, 0), ctime: t(1, 0) },
        Command::End,
    ]
}

#[test]
fn a_full_stream_makes_the_tree_byte_for_byte() {
    let dir = scratch("full");
    let (big, tail) = (pattern(90_000, 1), pattern(5000, 2));
    receive_ok(&dir, &stream(1, &full_commands(&big, &tail)));
    let s = dir.join("snap1");
    // Times first: reading a file or a symlink updates its atime (relatime).
    assert_eq!(times(&s.join("file")), ((1_600_000_000, 5), (1_500_000_000, 123_456_789)));
    assert_eq!(times(&s.join("dir/link")), ((1_000_000_000, 0), (1_000_000_001, 7)));
    let file = std::fs::read(s.join("file")).unwrap();
    assert_eq!(file.len(), 205_000);
    assert_eq!(&file[..90_000], &big[..]);
    assert!(file[90_000..200_000].iter().all(|&b| b == 0), "the gap reads as zeros");
    assert_eq!(&file[200_000..], &tail[..]);
    let m = lmeta(&s.join("file"));
    assert_eq!((m.uid(), m.gid(), m.permissions().mode() & 0o7777, m.nlink()), (1234, 5678, 0o4755, 2));
    assert_eq!(xattr(&s.join("file"), "user.bin").as_deref(), Some(&b"\x00\xff\x10"[..]));
    assert_eq!(xattr(&s.join("file"), "user.gone"), None);
    assert_eq!(lmeta(&s.join("dir/hard")).ino(), m.ino(), "a hard link, not a copy");
    assert_eq!(std::fs::read_link(s.join("dir/link")).unwrap(), Path::new("../file"));
    let l = lmeta(&s.join("dir/link"));
    assert_eq!((l.uid(), l.gid()), (42, 43));
    assert!(lmeta(&s.join("fifo")).file_type().is_fifo());
    let n = lmeta(&s.join("null"));
    assert!(n.file_type().is_char_device());
    assert_eq!(n.rdev(), libc::makedev(1, 3));
    assert!(lmeta(&s.join("sock")).file_type().is_socket());
    assert_eq!(std::fs::read(s.join("copy")).unwrap(), &big[4096..4096 + 8192]);
    assert_eq!(std::fs::read(s.join("short")).unwrap(), b"0123");
    assert_eq!(std::fs::read(s.join("long")).unwrap(), vec![0u8; 100_000]);
    assert!(!s.join("gone").exists() && !s.join("gonedir").exists());
    assert_eq!(lmeta(&s.join("dir/sticky")).permissions().mode() & 0o7777, 0o1777);
    assert_eq!(lmeta(&s.join("dir")).permissions().mode() & 0o7777, 0o750);
    assert_eq!(times(&s.join("dir")), ((1_234_567_890, 1), (1_234_567_891, 2)));
    assert_eq!(lmeta(&s).permissions().mode() & 0o7777, 0o755);
    assert_eq!(times(&s), ((1_111_111_111, 0), (1_222_222_222, 0)));
    assert_eq!(xattr(&s, "user.root").as_deref(), Some(&b"top"[..]), "an xattr of the subvolume's root");
    let map = std::fs::read_to_string(dir.join(".ferrofs-received")).unwrap();
    assert!(map.ends_with("\n11111111-1111-1111-1111-111111111111 7 snap1\n"), "{map}");
    // The same stream again: the subvolume exists; nothing is removed.
    let (code, _, err) = receive(&[dir.to_str().unwrap()], &stream(1, &full_commands(&big, &tail)), &[]);
    assert_eq!(code, 1);
    assert!(err.contains("subvolume 'snap1' already exists"), "{err}");
    assert_eq!(std::fs::read(s.join("file")).unwrap(), file);
}

/// Changes on top of `full_commands`' subvolume.
fn incremental_commands(new: &[u8]) -> Vec<Command<'_>> {
    vec![
        Command::Snapshot { path: b"snap2", uuid: U2, ctransid: 9, clone_uuid: U1, clone_ctransid: 7 },
        Command::Rename { from: b"dir", to: b"moved" },
        Command::Unlink { path: b"moved/hard" },
        Command::Write { path: b"file", offset: 10, data: b"OVERWRITE" },
        Command::Mkfile { path: b"o300-9-0", ino: 300 },
        Command::Rename { from: b"o300-9-0", to: b"new" },
        Command::Write { path: b"new", offset: 0, data: new },
        // Cloned from the parent subvolume, found through the map.
        Command::Clone { path: b"new", offset: 4096, len: 4096, clone_uuid: U1, clone_ctransid: 7, clone_path: b"file", clone_offset: 0 },
        Command::SetXattr { path: b"moved", name: b"user.dir", data: b"yes" },
        Command::Utimes { path: b"new", atime: t(5, 0), mtime: t(6, 0), ctime: t(1, 0) },
        Command::End,
    ]
}

#[test]
fn an_incremental_stream_applies_to_a_copy_of_its_received_parent() {
    let dir = scratch("incr");
    let (big, tail, new) = (pattern(90_000, 1), pattern(5000, 2), pattern(8192, 3));
    receive_ok(&dir, &stream(1, &full_commands(&big, &tail)));
    receive_ok(&dir, &stream(2, &incremental_commands(&new)));
    let (p, s) = (dir.join("snap1"), dir.join("snap2"));
    // Times the copy kept (before any read updates an atime).
    assert_eq!(times(&s.join("moved/link")), ((1_000_000_000, 0), (1_000_000_001, 7)));
    assert_eq!(times(&s.join("moved")).0, (1_234_567_890, 1), "its mtime moved with the unlink in it");
    // Copying and cloning from the parent left its times alone.
    assert_eq!(times(&p.join("file")), ((1_600_000_000, 5), (1_500_000_000, 123_456_789)));
    assert_eq!(times(&p.join("dir")), ((1_234_567_890, 1), (1_234_567_891, 2)));
    assert_eq!(times(&p.join("dir/link")), ((1_000_000_000, 0), (1_000_000_001, 7)));
    assert_eq!(times(&p), ((1_111_111_111, 0), (1_222_222_222, 0)));
    // Untouched in the parent.
    let parent_file = std::fs::read(p.join("file")).unwrap();
    assert_eq!(&parent_file[..90_000], &big[..]);
    assert!(p.join("dir/hard").exists() && !p.join("moved").exists());
    // The parent's state carried over, with the changes.
    let mut want = parent_file.clone();
    want[10..19].copy_from_slice(b"OVERWRITE");
    assert_eq!(std::fs::read(s.join("file")).unwrap(), want);
    assert!(!s.join("dir").exists() && !s.join("moved/hard").exists());
    assert_eq!(lmeta(&s.join("file")).nlink(), 1);
    assert_eq!(std::fs::read_link(s.join("moved/link")).unwrap(), Path::new("../file"));
    let mut want_new = new.clone();
    want_new[4096..8192].copy_from_slice(&parent_file[..4096]);
    assert_eq!(std::fs::read(s.join("new")).unwrap(), want_new);
    assert_eq!(xattr(&s.join("moved"), "user.dir").as_deref(), Some(&b"yes"[..]));
    // What the copy kept: owners, modes, xattrs, times, node types.
    let m = lmeta(&s.join("file"));
    assert_eq!((m.uid(), m.gid(), m.permissions().mode() & 0o7777), (1234, 5678, 0o4755));
    assert_eq!(xattr(&s.join("file"), "user.bin").as_deref(), Some(&b"\x00\xff\x10"[..]));
    assert_eq!(xattr(&s, "user.root").as_deref(), Some(&b"top"[..]), "the root's xattrs copied");
    assert_eq!(lmeta(&s.join("null")).rdev(), libc::makedev(1, 3));
    assert!(lmeta(&s.join("fifo")).file_type().is_fifo());
    let map = std::fs::read_to_string(dir.join(".ferrofs-received")).unwrap();
    assert!(map.contains("\n22222222-2222-2222-2222-222222222222 9 snap2\n"), "{map}");
}

#[test]
fn a_parent_copied_for_a_snapshot_keeps_its_holes() {
    let dir = scratch("sparse");
    let data = pattern(4096, 8);
    let full = [
        Command::Subvol { path: b"p", uuid: U1, ctransid: 1 },
        Command::Mkfile { path: b"sparse", ino: 257 },
        Command::Write { path: b"sparse", offset: 0, data: &data },
        Command::Write { path: b"sparse", offset: 64 << 20, data: &data },
        Command::Truncate { path: b"sparse", size: 128 << 20 },
        Command::End,
    ];
    receive_ok(&dir, &stream(1, &full));
    let snap = [Command::Snapshot { path: b"c", uuid: U2, ctransid: 2, clone_uuid: U1, clone_ctransid: 1 }, Command::End];
    receive_ok(&dir, &stream(1, &snap));
    let (p, c) = (lmeta(&dir.join("p/sparse")), lmeta(&dir.join("c/sparse")));
    assert_eq!(c.len(), 128 << 20);
    // 512-byte blocks: far below the 128 MiB a filled copy would take.
    assert!(c.blocks() <= p.blocks() + 64, "copy allocated {} blocks, parent {}", c.blocks(), p.blocks());
    let bytes = std::fs::read(dir.join("c/sparse")).unwrap();
    assert_eq!(&bytes[..4096], &data[..]);
    assert_eq!(&bytes[64 << 20..(64 << 20) + 4096], &data[..]);
    assert!(bytes[4096..64 << 20].iter().all(|&b| b == 0) && bytes[(64 << 20) + 4096..].iter().all(|&b| b == 0));
}

#[test]
fn concatenated_streams_and_a_parent_that_is_not_there() {
    let dir = scratch("concat");
    let (big, tail, new) = (pattern(90_000, 1), pattern(5000, 2), pattern(8192, 3));
    let mut both = stream(1, &full_commands(&big, &tail));
    both.extend(stream(2, &incremental_commands(&new)));
    receive_ok(&dir, &both);
    assert!(dir.join("snap1/file").exists() && dir.join("snap2/new").exists());

    // An incremental stream into a directory that never received its parent.
    let other = scratch("noparent");
    let (code, _, err) = receive(&[other.to_str().unwrap()], &stream(2, &incremental_commands(&new)), &[]);
    assert_eq!(code, 1);
    assert!(
        err.contains("command 1 (snapshot) at byte 17: cannot find parent subvolume 11111111-1111-1111-1111-111111111111 transid 7"),
        "{err}"
    );
    assert!(std::fs::read_dir(&other).unwrap().next().is_none(), "nothing left behind");
}

#[test]
fn version_2_fallocate_fileattr_and_encoded_write() {
    // tmpfs has no FALLOC_FL_ZERO_RANGE: the fallback writes zeros.
    let shm = Path::new("/dev/shm");
    let dir = if shm.is_dir() { scratch_in(shm, "v2") } else { scratch("v2") };
    let data = pattern(20_000, 4);
    let cmds = [
        Command::Subvol { path: b"v2", uuid: U3, ctransid: 1 },
        Command::Mkfile { path: b"f", ino: 257 },
        Command::Write { path: b"f", offset: 0, data: &data },
        Command::Fallocate { path: b"f", mode: 0x10 | 0x01, offset: 100, len: 200 }, // zero range, keep size
        Command::Fallocate { path: b"f", mode: 0x02 | 0x01, offset: 8192, len: 4096 }, // punch hole
        Command::Fallocate { path: b"f", mode: 0x01, offset: 0, len: 1 << 20 },      // keep-size prealloc
        Command::Fallocate { path: b"f", mode: 0x10, offset: 19_000, len: 2000 },    // zero range, grows
        Command::Mkfile { path: b"g", ino: 258 },
        Command::Fallocate { path: b"g", mode: 0, offset: 0, len: 5000 },
        Command::EncodedWrite {
            path: b"g",
            offset: 100,
            unencoded_file_len: 3,
            unencoded_len: 10,
            unencoded_offset: 2,
            compression: 0,
            encryption: 0,
            data: b"0123456789",
        },
        Command::Fileattr { path: b"g", attr: 1 << 9 }, // NOATIME
        Command::End,
    ];
    let (code, _, err) = receive(&[dir.to_str().unwrap()], &stream(2, &cmds), &[]);
    assert_eq!(code, 0, "{err}");
    let mut want = data.clone();
    want[100..300].fill(0);
    want[8192..8192 + 4096].fill(0);
    want[19_000..].fill(0);
    want.resize(21_000, 0);
    assert_eq!(std::fs::read(dir.join("v2/f")).unwrap(), want);
    let g = std::fs::read(dir.join("v2/g")).unwrap();
    assert_eq!(g.len(), 5000);
    assert_eq!(&g[100..103], b"234");
    // Inode flags where the filesystem has them; a warning where not.
    let f = std::fs::File::open(dir.join("v2/g")).unwrap();
    match posix::get_inode_flags(f.as_fd()) {
        Ok(flags) => assert!(flags & 0x80 != 0 || err.contains("fileattr"), "FS_NOATIME_FL not set: {flags:#x} {err}"),
        Err(_) => assert!(err.contains("warning: fileattr 'g'"), "{err}"),
    }
    // Compressed data is refused, naming the command.
    let cmds = [
        Command::Subvol { path: b"c", uuid: U2, ctransid: 1 },
        Command::Mkfile { path: b"f", ino: 257 },
        Command::EncodedWrite {
            path: b"f",
            offset: 0,
            unencoded_file_len: 4096,
            unencoded_len: 4096,
            unencoded_offset: 0,
            compression: 1,
            encryption: 0,
            data: b"zz",
        },
        Command::End,
    ];
    let (code, _, err) = receive(&[dir.to_str().unwrap()], &stream(2, &cmds), &[]);
    assert_eq!(code, 1);
    let at = offset_of(2, &cmds, 3);
    assert!(
        err.contains(&format!(
            "command 3 (encoded_write) at byte {at}: encoded_write 'f': compressed data (compression 1) is not supported"
        )),
        "{err}"
    );
    assert!(!dir.join("c").exists());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn damaged_streams_are_refused_with_the_command_and_offset() {
    let data = pattern(3000, 5);
    let cmds = [
        Command::Subvol { path: b"s", uuid: U1, ctransid: 1 },
        Command::Mkfile { path: b"f", ino: 257 },
        Command::Write { path: b"f", offset: 0, data: &data },
        Command::Chmod { path: b"f", mode: 0o600 },
        Command::End,
    ];
    let good = stream(1, &cmds);
    let write_at = offset_of(1, &cmds, 3);
    let chmod_at = offset_of(1, &cmds, 4);
    let end_at = offset_of(1, &cmds, 5);
    let cases: Vec<(&str, Vec<u8>, String)> = vec![
        (
            "bit flip in data",
            {
                let mut b = good.clone();
                b[write_at + 100] ^= 4;
                b
            },
            format!("bad CRC in command 3 (write) at byte {write_at}"),
        ),
        (
            "bit flip in crc",
            {
                let mut b = good.clone();
                b[chmod_at + 7] ^= 1;
                b
            },
            format!("bad CRC in command 4 (chmod) at byte {chmod_at}"),
        ),
        (
            "truncated",
            good[..write_at + 500].to_vec(),
            format!("truncated command (the stream ends inside it) in command 3 (write) at byte {write_at}"),
        ),
        ("truncated header", good[..chmod_at + 4].to_vec(), format!("truncated command header in command 4 (unknown) at byte {chmod_at}")),
        ("no END", good[..end_at].to_vec(), format!("stream ends without an END command at byte {end_at}")),
        (
            "unknown command",
            {
                let mut b = good[..chmod_at].to_vec();
                let mut c = vec![0u8, 0, 0, 0, 30, 0, 0, 0, 0, 0];
                let crc = ferrofs_core::send_stream::command_crc(&c.clone().try_into().unwrap(), &[]);
                c[6..10].copy_from_slice(&crc.to_le_bytes());
                b.extend_from_slice(&c);
                b
            },
            format!("unknown command in command 4 (unknown) at byte {chmod_at}"),
        ),
        (
            "huge length",
            {
                let mut b = good.clone();
                b[chmod_at..chmod_at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
                b
            },
            format!("command length beyond the version's limit in command 4 (unknown) at byte {chmod_at}"),
        ),
    ];
    for (what, input, want) in cases {
        let dir = scratch("damaged");
        let (code, out, err) = receive(&[dir.to_str().unwrap()], &input, &[]);
        assert_eq!(code, 1, "{what}: {err}");
        assert!(out.is_empty());
        assert!(err.contains(&format!("ferrofs: receive: {want}\n")), "{what}: {err}");
        assert!(err.contains("partial subvolume") && err.contains("removed"), "{what}: {err}");
        assert!(!dir.join("s").exists(), "{what}: partial subvolume left");
        assert!(!dir.join(".ferrofs-received").exists(), "{what}: recorded as received");
        // Kept on request, under a name that says so.
        let (code, _, err) = receive(&["--keep-partial", dir.to_str().unwrap()], &input, &[]);
        assert_eq!(code, 1);
        assert!(err.contains(&format!("partial subvolume kept as {}", dir.join("s.partial").display())), "{what}: {err}");
        assert!(dir.join("s.partial/f").exists() && !dir.join("s").exists(), "{what}");
    }
    // Streams damaged before any subvolume.
    for (input, want) in [
        (Vec::new(), "empty stream at byte 0".to_string()),
        (b"btrfs-strean\0\x01\0\0\0".to_vec(), "not a btrfs send stream (bad magic) at byte 0".to_string()),
        (good[..10].to_vec(), "truncated stream header at byte 0".to_string()),
        (
            ferrofs_core::send_stream::stream_header(3).to_vec(),
            "unsupported: send stream version (only 1 and 2 are supported) at byte 0".to_string(),
        ),
    ] {
        let dir = scratch("damaged-head");
        let (code, _, err) = receive(&[dir.to_str().unwrap()], &input, &[]);
        assert_eq!(code, 1);
        assert!(err.contains(&format!("ferrofs: receive: {want}\n")), "{want}: {err}");
    }
    // A command the destination refuses: named the same way.
    let cmds = [Command::Subvol { path: b"s", uuid: U1, ctransid: 1 }, Command::Rename { from: b"missing", to: b"x" }, Command::End];
    let dir = scratch("apply-error");
    let (code, _, err) = receive(&[dir.to_str().unwrap()], &stream(1, &cmds), &[]);
    assert_eq!(code, 1);
    let at = offset_of(1, &cmds, 2);
    assert!(err.contains(&format!("command 2 (rename) at byte {at}: rename 'missing': No such file or directory")), "{err}");
    assert!(!dir.join("s").exists());
}

#[test]
fn hostile_values_are_errors_not_panics() {
    let big = u64::MAX - 10;
    let cases: [(Command<'_>, &str); 9] = [
        (Command::Write { path: b"f", offset: big, data: b"x" }, "write beyond the largest file offset"),
        (
            Command::Clone { path: b"f", offset: 0, len: 20, clone_uuid: U1, clone_ctransid: 1, clone_path: b"f", clone_offset: big },
            "range beyond the largest file offset",
        ),
        (
            Command::Clone { path: b"f", offset: 0, len: u64::MAX, clone_uuid: U1, clone_ctransid: 1, clone_path: b"f", clone_offset: 0 },
            "range beyond the largest file offset",
        ),
        (Command::Fallocate { path: b"f", mode: 0, offset: big, len: 20 }, "fallocate beyond the largest file offset"),
        (Command::Truncate { path: b"f", size: u64::MAX }, "truncate 'f'"),
        (Command::Utimes { path: b"f", atime: t(u64::MAX, 0), mtime: t(0, 0), ctime: t(0, 0) }, "out of range"),
        (Command::Chown { path: b"f", uid: 1 << 32, gid: 0 }, "out of range"),
        (Command::Mknod { path: b"n", ino: 1, mode: 0o100644, rdev: 0 }, "is not a device"),
        (
            Command::EncodedWrite {
                path: b"f",
                offset: 0,
                unencoded_file_len: big,
                unencoded_len: 1,
                unencoded_offset: big,
                compression: 0,
                encryption: 0,
                data: b"x",
            },
            "lengths do not match its data",
        ),
    ];
    for (cmd, want) in cases {
        let dir = scratch("hostile");
        let cmds = [Command::Subvol { path: b"s", uuid: U1, ctransid: 1 }, Command::Mkfile { path: b"f", ino: 257 }, cmd, Command::End];
        let (code, _, err) = receive(&[dir.to_str().unwrap()], &stream(2, &cmds), &[]);
        assert_eq!(code, 1, "{cmd:?}: {err}");
        assert!(err.contains(&format!("command 3 ({})", cmd.name())) && err.contains(want), "{cmd:?}: {err}");
        assert!(!dir.join("s").exists());
    }
}

#[test]
fn paths_never_leave_the_subvolume() {
    let outside = scratch("outside");
    std::fs::write(outside.join("victim"), b"keep").unwrap();
    let target = outside.to_str().unwrap().as_bytes();
    let bad: [(&[Command<'_>], &str); 4] = [
        (&[Command::Mkfile { path: b"../escape", ino: 257 }], "is not a plain relative path"),
        (&[Command::Mkfile { path: b"/tmp/escape", ino: 257 }], "is not a plain relative path"),
        (
            &[Command::Symlink { path: b"l", ino: 257, target }, Command::Write { path: b"l/victim", offset: 0, data: b"owned" }],
            "l/victim: 'l' is a symlink (not followed)",
        ),
        (
            &[
                Command::Symlink { path: b"l", ino: 257, target: b"/etc/hostname" },
                Command::Write { path: b"l", offset: 0, data: b"owned" },
            ],
            "open 'l'",
        ),
    ];
    for (cmds, want) in bad {
        let dir = scratch("escape");
        let mut all = vec![Command::Subvol { path: b"s", uuid: U1, ctransid: 1 }];
        all.extend_from_slice(cmds);
        all.push(Command::End);
        let (code, _, err) = receive(&[dir.to_str().unwrap()], &stream(1, &all), &[]);
        assert_eq!(code, 1, "{err}");
        assert!(err.contains(want), "{err}");
        assert_eq!(std::fs::read(outside.join("victim")).unwrap(), b"keep");
    }
    for path in [&b"a/b"[..], b"..", b"."] {
        let dir = scratch("bad-subvol");
        let (code, _, err) = receive(&[dir.to_str().unwrap()], &stream(1, &[Command::Subvol { path, uuid: U1, ctransid: 1 }]), &[]);
        assert_eq!(code, 1);
        assert!(err.contains("subvolume path") || err.contains("not a plain relative path"), "{err}");
    }
}

#[test]
fn dump_prints_what_btrfs_receive_dump_prints() {
    // Streams written by Linux's btrfs send, and btrfs-progs 6.2's dump of
    // them (TZ=UTC).
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../core/tests/data");
    for name in ["btrfs-full-v1", "btrfs-full-v2", "btrfs-incr-v1"] {
        let want = std::fs::read(data.join(format!("{name}.dump"))).unwrap();
        let input = std::fs::read(data.join(format!("{name}.stream"))).unwrap();
        let (code, out, err) = receive(&["--dump", "--dump-format", "progs-6.2"], &input, &[("TZ", "UTC")]);
        assert_eq!(code, 0, "{err}");
        assert_eq!(String::from_utf8_lossy(&out), String::from_utf8_lossy(&want), "{name}");
        // -f reads the same.
        let path = data.join(format!("{name}.stream"));
        let (code, out2, _) = receive(&["--dump", "--dump-format", "progs-6.2", "-f", path.to_str().unwrap()], b"", &[("TZ", "UTC")]);
        assert_eq!((code, out2), (0, out));
    }
    // Every command, both formats where they differ, escaping, alignment.
    let cmds = [
        Command::Subvol { path: b"sv", uuid: U1, ctransid: 3 },
        Command::Mkfile { path: b"a b", ino: 257 },
        Command::Rename { from: b"a b", to: b"tab\there" },
        Command::Link { path: b"l", target: b"tab\there" },
        Command::Symlink { path: b"s", ino: 258, target: b"t\\x" },
        Command::Mknod { path: b"n", ino: 259, mode: 0o20644, rdev: 0x803 },
        Command::SetXattr { path: b"", name: b"user.x y", data: b"v\x01" },
        Command::RemoveXattr { path: b"a_very_long_path_name_that_is_longer_than_thirty_two", name: b"user.x" },
        Command::Write { path: b"f", offset: 7, data: b"abc" },
        Command::Clone { path: b"f", offset: 0, len: 4096, clone_uuid: U1, clone_ctransid: 3, clone_path: b"g h", clone_offset: 8192 },
        Command::Truncate { path: b"f", size: 10 },
        Command::Chmod { path: b"f", mode: 0o4755 },
        Command::Chown { path: b"f", uid: 1, gid: 2 },
        Command::Utimes { path: b"f", atime: t(0, 0), mtime: t(86_400, 9), ctime: t(1_700_000_000, 0) },
        Command::UpdateExtent { path: b"f", offset: 1, len: 2 },
        Command::Fallocate { path: b"f", mode: 3, offset: 4, len: 5 },
        Command::Fileattr { path: b"f", attr: 16 },
        Command::EncodedWrite {
            path: b"f",
            offset: 0,
            unencoded_file_len: 1,
            unencoded_len: 2,
            unencoded_offset: 0,
            compression: 2,
            encryption: 0,
            data: b"zz",
        },
        Command::Unlink { path: b"l" },
        Command::Rmdir { path: b"d" },
        Command::Mkdir { path: b"d", ino: 260 },
        Command::Mkfifo { path: b"p", ino: 261 },
        Command::Mksock { path: b"k", ino: 262 },
        Command::End,
        Command::Snapshot { path: b"sn", uuid: U2, ctransid: 4, clone_uuid: U1, clone_ctransid: 3 },
        Command::End,
    ];
    let mut input = stream(2, &cmds[..24]);
    input.extend(stream(2, &cmds[24..]));
    let common_head = "\
subvol          ./sv                            uuid=11111111-1111-1111-1111-111111111111 transid=3
mkfile          ./sv/a\\ b
rename          ./sv/a\\ b                       dest=./sv/tab\\there
link            ./sv/l                          dest=tab\\there
symlink         ./sv/s                          dest=t\\\\x
mknod           ./sv/n                          mode=20644 dev=0x803
";
    let common_mid = "\
write           ./sv/f                          offset=7 len=3
";
    let common_tail = "\
truncate        ./sv/f                          size=10
chmod           ./sv/f                          mode=4755
chown           ./sv/f                          gid=2 uid=1
utimes          ./sv/f                          atime=1970-01-01T00:00:00+0000 mtime=1970-01-02T00:00:00+0000 ctime=2023-11-14T22:13:20+0000
update_extent   ./sv/f                          offset=1 len=2
fallocate       ./sv/f                          mode=3 offset=4 len=5
fileattr        ./sv/f                          fileattr=0x16
";
    let end = "\
unlink          ./sv/l
rmdir           ./sv/d
mkdir           ./sv/d
mkfifo          ./sv/p
mksock          ./sv/k
snapshot        ./sn                            uuid=22222222-2222-2222-2222-222222222222 transid=4 parent_uuid=11111111-1111-1111-1111-111111111111 parent_transid=3
";
    let current = format!(
        "{common_head}set_xattr       ./sv/                           name=user.x\\ y v\\001 len=2
remove_xattr    ./sv/a_very_long_path_name_that_is_longer_than_thirty_two name=user.x
{common_mid}clone           ./sv/f                          offset=0 len=4096 from=./sv/g\\ h clone_offset=8192
{common_tail}encoded_write   ./sv/f                          offset=0 len=2 unencoded_file_len=1 unencoded_len=2 unencoded_offset=0 compression=2 encryption=0
{end}"
    );
    let old = format!(
        "{common_head}set_xattr       ./sv/                           name=user.x y data=v\x01 len=2
remove_xattr    ./sv/a_very_long_path_name_that_is_longer_than_thirty_two name=user.x
{common_mid}clone           ./sv/f                          offset=0 len=4096 from=./sv/g h clone_offset=8192
{common_tail}encoded_write   ./sv/f                          offset=0 len=2, unencoded_file_len=1, unencoded_len=2, unencoded_offset=0, compression=2, encryption=0
{end}"
    );
    for (format, want) in [("current", current), ("progs-6.2", old)] {
        let (code, out, err) = receive(&["--dump", "--dump-format", format], &input, &[("TZ", "UTC")]);
        assert_eq!(code, 0, "{err}");
        assert_eq!(String::from_utf8_lossy(&out), want, "{format}");
    }
    // The default is the current format; a damaged stream stops the dump
    // after the lines before it, with the same message as receive.
    let (_, out, _) = receive(&["--dump"], &input, &[("TZ", "UTC")]);
    assert!(String::from_utf8_lossy(&out).contains("from=./sv/g\\ h"));
    let mut bad = input.clone();
    let at = offset_of(2, &cmds[..24], 3);
    bad[at + CMD_HEADER_LEN + 2] ^= 1;
    let (code, out, err) = receive(&["--dump"], &bad, &[("TZ", "UTC")]);
    assert_eq!(code, 1);
    assert_eq!(String::from_utf8_lossy(&out).lines().count(), 2);
    assert!(err.contains(&format!("bad CRC in command 3 (rename) at byte {at}")), "{err}");
}

#[test]
fn dump_of_a_file_of_concatenated_streams_prints_every_stream() {
    // Linux's btrfs send streams of both versions, one after another in
    // one file (as `btrfs send A >f; btrfs send -p A B >>f` leaves them):
    // the dump is each stream's dump in turn, from a file as from a pipe.
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../core/tests/data");
    let names = ["btrfs-full-v1", "btrfs-incr-v1", "btrfs-full-v2"];
    let mut input = Vec::new();
    let mut want = Vec::new();
    for name in names {
        input.extend(std::fs::read(data.join(format!("{name}.stream"))).unwrap());
        want.extend(std::fs::read(data.join(format!("{name}.dump"))).unwrap());
    }
    let dir = scratch("dump-concat");
    let file = dir.join("streams");
    std::fs::write(&file, &input).unwrap();
    let args = ["--dump", "--dump-format", "progs-6.2"];
    let (code, out, err) = receive(&[&args[..], &["-f", file.to_str().unwrap()]].concat(), b"", &[("TZ", "UTC")]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(String::from_utf8_lossy(&out), String::from_utf8_lossy(&want));
    let (code, piped, _) = receive(&args, &input, &[("TZ", "UTC")]);
    assert_eq!((code, piped), (0, out.clone()));

    // A multi-subvolume send (the first stream without its END, the next
    // without its header) is one stream of two subvolumes.
    let cmds = [
        Command::Subvol { path: b"a", uuid: U1, ctransid: 1 },
        Command::Mkfile { path: b"f", ino: 257 },
        Command::Subvol { path: b"b", uuid: U2, ctransid: 2 },
        Command::Mkdir { path: b"d", ino: 257 },
        Command::End,
    ];
    let mut multi = stream(1, &cmds);
    multi.extend(stream(2, &[Command::Subvol { path: b"c", uuid: U3, ctransid: 3 }, Command::End]));
    std::fs::write(&file, &multi).unwrap();
    let (code, out, err) = receive(&["--dump", "-f", file.to_str().unwrap()], b"", &[]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<String> =
        String::from_utf8_lossy(&out).lines().map(|l| l.split_whitespace().take(2).collect::<Vec<_>>().join(" ")).collect();
    assert_eq!(lines, ["subvol ./a", "mkfile ./a/f", "subvol ./b", "mkdir ./b/d", "subvol ./c"]);

    // A last stream cut short: the streams before it are printed, then the
    // error names where the input broke off.
    let mut cut = input.clone();
    cut.extend_from_slice(&std::fs::read(data.join("btrfs-incr-v1.stream")).unwrap()[..40]);
    std::fs::write(&file, &cut).unwrap();
    let (code, out, err) = receive(&[&args[..], &["-f", file.to_str().unwrap()]].concat(), b"", &[("TZ", "UTC")]);
    assert_eq!(code, 1);
    assert_eq!(String::from_utf8_lossy(&out), String::from_utf8_lossy(&want));
    assert!(err.contains(&format!("at byte {}", input.len() + HEADER_LEN)), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The installed btrfs-progs, and which dump format matches it; None
/// without btrfs-progs.
fn btrfs_progs() -> Option<&'static str> {
    let out = Process::new("btrfs").arg("--version").output().ok()?;
    let v = String::from_utf8_lossy(&out.stdout);
    let v = v.trim().strip_prefix("btrfs-progs v")?;
    let mut parts = v.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next()?, parts.next().unwrap_or(0));
    Some(if (major, minor) >= (6, 10) { "current" } else { "progs-6.2" })
}

#[test]
fn btrfs_receive_reads_what_the_encoder_writes() {
    let Some(format) = btrfs_progs() else {
        eprintln!("btrfs-progs not installed: skipped");
        return;
    };
    let data = pattern(48 << 10, 6);
    let big = pattern(128 << 10, 7);
    let mut cmds = vec![
        Command::Subvol { path: b"enc", uuid: U1, ctransid: 12 },
        Command::Mkfile { path: b"o257-12-0", ino: 257 },
        Command::Rename { from: b"o257-12-0", to: b"a file" },
        Command::Mkdir { path: b"d", ino: 258 },
        Command::Mknod { path: b"d/n", ino: 259, mode: 0o60600, rdev: 0x0700 },
        Command::Mkfifo { path: b"d/p", ino: 260 },
        Command::Mksock { path: b"d/s", ino: 261 },
        Command::Symlink { path: b"d/l", ino: 262, target: b"../a file" },
        Command::Link { path: b"d/h", target: b"a file" },
        Command::SetXattr { path: b"a file", name: b"user.k", data: b"value" },
        Command::RemoveXattr { path: b"a file", name: b"user.k" },
        Command::Write { path: b"a file", offset: 0, data: &data },
        Command::Clone {
            path: b"a file",
            offset: 1 << 20,
            len: 4096,
            clone_uuid: U1,
            clone_ctransid: 12,
            clone_path: b"d/h",
            clone_offset: 0,
        },
        Command::Truncate { path: b"a file", size: 3 << 20 },
        Command::Chown { path: b"a file", uid: 1000, gid: 100 },
        Command::Chmod { path: b"a file", mode: 0o640 },
        Command::Utimes { path: b"a file", atime: t(1_700_000_001, 1), mtime: t(1_700_000_002, 2), ctime: t(1_700_000_003, 3) },
        Command::UpdateExtent { path: b"a file", offset: 4096, len: 8192 },
        Command::Unlink { path: b"d/h" },
        Command::Rmdir { path: b"d" },
    ];
    for version in [1, 2] {
        if version == 2 {
            cmds[11] = Command::Write { path: b"a file", offset: 0, data: &big };
            cmds.push(Command::Fallocate { path: b"a file", mode: 3, offset: 0, len: 4096 });
            cmds.push(Command::Fileattr { path: b"a file", attr: 0x10 });
            cmds.push(Command::EncodedWrite {
                path: b"a file",
                offset: 8192,
                unencoded_file_len: 4096,
                unencoded_len: 4096,
                unencoded_offset: 0,
                compression: 1,
                encryption: 0,
                data: b"compressed bytes",
            });
        }
        let mut all = cmds.clone();
        all.push(Command::End);
        let input = stream(version, &all);
        let file = scratch("btrfs-reads").join(format!("v{version}.stream"));
        std::fs::write(&file, &input).unwrap();
        let out = Process::new("btrfs").args(["receive", "--dump", "-f"]).arg(&file).env("TZ", "UTC").output().unwrap();
        assert!(out.status.success(), "btrfs receive --dump refused the v{version} stream: {}", String::from_utf8_lossy(&out.stderr));
        let (code, ours, err) = receive(&["--dump", "--dump-format", format], &input, &[("TZ", "UTC")]);
        assert_eq!(code, 0, "{err}");
        assert_eq!(String::from_utf8_lossy(&ours), String::from_utf8_lossy(&out.stdout), "v{version}");
        assert_eq!(String::from_utf8_lossy(&ours).lines().count(), all.len() - 1);
    }
}

#[test]
fn a_stream_that_broke_off_resumes_into_its_kept_partial() {
    let dir = scratch("resume");
    let data = pattern(40_000, 9);
    let cmds = [
        Command::Subvol { path: b"r", uuid: U3, ctransid: 5 },
        Command::Mkdir { path: b"d", ino: 257 },
        Command::Mkfile { path: b"d/f", ino: 258 },
        Command::Write { path: b"d/f", offset: 0, data: &data[..20_000] },
        Command::Write { path: b"d/f", offset: 20_000, data: &data[20_000..] },
        Command::SetXattr { path: b"d/f", name: b"user.x", data: b"1" },
        Command::Utimes { path: b"d/f", atime: t(10, 1), mtime: t(20, 2), ctime: t(30, 3) },
        Command::End,
    ];
    let whole = stream(2, &cmds);
    // Cut inside the second write: SUBVOL and three commands applied.
    let cut = offset_of(2, &cmds, 5) + 100;
    let (code, _, err) = receive(&["--keep-partial", dir.to_str().unwrap()], &whole[..cut], &[]);
    assert_eq!(code, 1);
    let line = err.lines().find_map(|l| l.strip_prefix("resume token: ")).unwrap_or_else(|| panic!("no token: {err}"));
    let token: ferrofs_tools::resume_token::ResumeToken = line.parse().unwrap();
    let mut enc = StreamEncoder::new(2).unwrap();
    let last = enc.encode(&cmds[3]).unwrap();
    let crc = u32::from_le_bytes(last[6..10].try_into().unwrap());
    assert_eq!((token.uuid, token.ctransid, token.parent, token.version, token.commands, token.crc), (U3, 5, None, 2, 3, crc));
    assert!(dir.join("r.partial/d/f").exists() && !dir.join("r").exists());

    // The resumed stream, as `ferrofs send --resume` writes it: the same
    // SUBVOL, the marker with the count, the commands after it.
    let marker = Command::SetXattr { path: b"", name: ferrofs_core::send::RESUME_XATTR, data: b"3" };
    let mut resumed = vec![cmds[0], marker];
    resumed.extend_from_slice(&cmds[4..]);
    // A count that is not the partial's is refused, and the partial stays.
    let mut wrong = resumed.clone();
    wrong[1] = Command::SetXattr { path: b"", name: ferrofs_core::send::RESUME_XATTR, data: b"2" };
    let (code, _, err) = receive(&["--keep-partial", dir.to_str().unwrap()], &stream(2, &wrong), &[]);
    assert_eq!(code, 1);
    assert!(err.contains("the stream resumes 'r' after 2 commands, its kept partial after 3"), "{err}");
    assert!(dir.join("r.partial").exists());
    let (code, _, err) = receive(&[dir.to_str().unwrap()], &stream(2, &resumed), &[]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("Resuming r after 3 commands"), "{err}");
    assert!(!dir.join("r.partial").exists());
    assert_eq!(times(&dir.join("r/d/f")), ((10, 1), (20, 2)));
    assert_eq!(std::fs::read(dir.join("r/d/f")).unwrap(), data);
    assert_eq!(xattr(&dir.join("r/d/f"), "user.x").as_deref(), Some(&b"1"[..]));
    assert_eq!(xattr(&dir.join("r"), "user.ferrofs.partial"), None, "the token is gone");
    assert_eq!(xattr(&dir.join("r"), "user.ferrofs.resume"), None, "the marker is not set");
    let map = std::fs::read_to_string(dir.join(".ferrofs-received")).unwrap();
    assert!(map.contains("33333333-3333-3333-3333-333333333333 5 r\n"), "{map}");

    // A resumed stream with no partial to go on with.
    let other = scratch("resume-none");
    let (code, _, err) = receive(&[other.to_str().unwrap()], &stream(2, &resumed), &[]);
    assert_eq!(code, 1);
    assert!(err.contains("a resumed stream, but no partial subvolume kept by the same transfer is here"), "{err}");
    // A refused command gives no token (it would be refused again).
    let bad = [Command::Subvol { path: b"q", uuid: U1, ctransid: 1 }, Command::Rmdir { path: b"missing" }, Command::End];
    let (_, _, err) = receive(&["--keep-partial", other.to_str().unwrap()], &stream(2, &bad), &[]);
    assert!(err.contains("partial subvolume kept as") && !err.contains("resume token"), "{err}");
}

#[test]
fn max_errors_passes_over_failed_commands_up_to_the_limit() {
    let cmds = [
        Command::Subvol { path: b"e", uuid: U2, ctransid: 9 },
        Command::Mkfile { path: b"a", ino: 257 },
        Command::Chmod { path: b"missing1", mode: 0o600 },
        Command::Write { path: b"a", offset: 0, data: b"first" },
        Command::Rmdir { path: b"missing2" },
        Command::Mkfile { path: b"b", ino: 258 },
        Command::End,
    ];
    let s = stream(1, &cmds);
    let chmod_at = offset_of(1, &cmds, 3);
    let rmdir_at = offset_of(1, &cmds, 5);

    // The default stops at the first failure and removes the partial.
    let dir = scratch("maxerr-default");
    let (code, _, err) = receive(&[dir.to_str().unwrap()], &s, &[]);
    assert_eq!(code, 1);
    assert!(err.contains(&format!("command 3 (chmod) at byte {chmod_at}")), "{err}");
    assert!(!dir.join("e").exists(), "{err}");

    // -E 2 passes over the first failure and stops at the second.
    let dir = scratch("maxerr-2");
    let (code, _, err) = receive(&["-E", "2", dir.to_str().unwrap()], &s, &[]);
    assert_eq!(code, 1);
    assert!(err.contains(&format!("ERROR: command 3 (chmod) at byte {chmod_at}")) && err.contains("(passed over)"), "{err}");
    assert!(err.contains(&format!("receive: command 5 (rmdir) at byte {rmdir_at}")), "{err}");
    assert!(!dir.join("e").exists(), "the stop removes the partial: {err}");

    // -E 0 never stops: everything else is applied, the subvolume kept but
    // left out of the map, and the exit status says it went wrong.
    let dir = scratch("maxerr-0");
    let (code, _, err) = receive(&["-E", "0", dir.to_str().unwrap()], &s, &[]);
    assert_eq!(code, 1, "{err}");
    assert_eq!(std::fs::read(dir.join("e/a")).unwrap(), b"first");
    assert!(dir.join("e/b").exists(), "{err}");
    assert!(err.contains("subvolume 'e' is kept with 2 failed command(s) passed over; it is not recorded as received"), "{err}");
    assert!(err.contains("2 command(s) failed and were passed over"), "{err}");
    let map = std::fs::read_to_string(dir.join(".ferrofs-received")).unwrap_or_default();
    assert!(!map.contains("22222222-2222-2222-2222-222222222222"), "{map}");

    // A failed SUBVOL cannot be passed over: nothing would have a place.
    let dir = scratch("maxerr-subvol");
    std::fs::create_dir(dir.join("e")).unwrap();
    let (code, _, err) = receive(&["-E", "0", dir.to_str().unwrap()], &s, &[]);
    assert_eq!(code, 1);
    assert!(err.contains("command 1 (subvol)") && !err.contains("passed over"), "{err}");
}

#[test]
fn a_signal_stops_the_receive_like_a_stream_that_broke_off() {
    let data = pattern(60_000, 3);
    let cmds = [
        Command::Subvol { path: b"sig", uuid: U1, ctransid: 4 },
        Command::Mkfile { path: b"f", ino: 257 },
        Command::Write { path: b"f", offset: 0, data: &data[..30_000] },
        Command::Write { path: b"f", offset: 30_000, data: &data[30_000..] },
        Command::End,
    ];
    let s = stream(1, &cmds);
    let cut = offset_of(1, &cmds, 4);
    for keep in [false, true] {
        let dir = scratch(if keep { "signal-keep" } else { "signal" });
        let mut args = vec![dir.to_str().unwrap().to_string()];
        if keep {
            args.insert(0, "--keep-partial".into());
        }
        let mut child = Process::new(bin())
            .arg("receive")
            .args(&args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // The first write's worth, then the pipe stays open: the receiver
        // waits in read for the rest.
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(&s[..cut]).unwrap();
        stdin.flush().unwrap();
        let applied = dir.join("sig/f");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while std::fs::metadata(&applied).map_or(true, |m| m.len() < 30_000) {
            assert!(std::time::Instant::now() < deadline, "the first write never landed");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        // SAFETY: signals our own child, which is still running (its stdin
        // is open, so it cannot have ended).
        assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
        let out = child.wait_with_output().unwrap();
        drop(stdin);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(err.contains(&format!("interrupted by a signal at byte {cut}")), "{err}");
        assert!(!dir.join("sig").exists(), "{err}");
        if keep {
            let line = err.lines().find_map(|l| l.strip_prefix("resume token: ")).unwrap_or_else(|| panic!("no token: {err}"));
            let token: ferrofs_tools::resume_token::ResumeToken = line.parse().unwrap();
            assert_eq!((token.uuid, token.commands), (U1, 2));
            assert_eq!(std::fs::read(dir.join("sig.partial/f")).unwrap(), &data[..30_000]);
        } else {
            assert!(err.contains("partial subvolume") && err.contains("removed"), "{err}");
            assert!(!dir.join("sig.partial").exists());
        }
    }
}

// SPDX-License-Identifier: GPL-2.0
//! The tools as a user runs them: mkfs.ferrofs options and confirmation,
//! fsck.ferrofs exit codes on clean and deliberately damaged images.

use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn bin(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_mkfs-ferrofs")).with_file_name(name)
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ferrofs-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    let _ = std::fs::remove_file(&p);
    p
}

fn run(name: &str, args: &[&str], stdin: &str) -> (i32, String) {
    let mut child = Command::new(bin(name)).args(args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code().unwrap_or(-1), text)
}

fn mkfs(img: &Path, extra: &[&str]) {
    let mut args = vec!["-q"];
    args.extend_from_slice(extra);
    args.push(img.to_str().unwrap());
    args.push("64M");
    let (code, out) = run("mkfs-ferrofs", &args, "");
    assert_eq!(code, 0, "{out}");
}

fn fsck(img: &Path) -> (i32, String) {
    run("fsck-ferrofs", &["-n", img.to_str().unwrap()], "")
}

fn flip(img: &Path, offset: u64) {
    let f = std::fs::OpenOptions::new().read(true).write(true).open(img).unwrap();
    let mut b = [0u8; 1];
    f.read_exact_at(&mut b, offset).unwrap();
    b[0] ^= 0x5a;
    f.write_all_at(&b, offset).unwrap();
}

#[test]
fn fresh_image_is_clean_and_labelled() {
    let img = scratch("fresh.img");
    mkfs(&img, &["-L", "cli-test", "-U", "01234567-89ab-4def-8123-456789abcdef"]);
    assert_eq!(fsck(&img).0, 0);
    let (code, out) = run("ferrofs", &["show-super", img.to_str().unwrap()], "");
    assert_eq!(code, 0);
    assert!(out.contains("cli-test") && out.contains("01234567-89ab-4def-8123-456789abcdef"), "{out}");
    let (code, out) = run("ferrofs", &["dump-tree", img.to_str().unwrap()], "");
    assert_eq!(code, 0);
    assert!(out.contains("mode 40755"), "{out}");
}

#[test]
fn mkfs_asks_before_overwriting() {
    let img = scratch("ask.img");
    mkfs(&img, &["-L", "first"]);
    let (code, _) = run("mkfs-ferrofs", &["-L", "second", img.to_str().unwrap()], "n\n");
    assert_ne!(code, 0);
    assert!(run("ferrofs", &["show-super", img.to_str().unwrap()], "").1.contains("first"));
    let (code, _) = run("mkfs-ferrofs", &["-L", "second", img.to_str().unwrap()], "y\n");
    assert_eq!(code, 0);
    assert!(run("ferrofs", &["show-super", img.to_str().unwrap()], "").1.contains("second"));
}

#[test]
fn mkfs_rejects_bad_arguments() {
    let img = scratch("bad-args.img");
    assert_ne!(run("mkfs-ferrofs", &["-b", "3000", img.to_str().unwrap(), "64M"], "").0, 0);
    assert_ne!(run("mkfs-ferrofs", &["-L", &"x".repeat(64), img.to_str().unwrap(), "64M"], "").0, 0);
    assert_ne!(run("mkfs-ferrofs", &["-U", "not-a-uuid", img.to_str().unwrap(), "64M"], "").0, 0);
    assert_ne!(run("mkfs-ferrofs", &[img.to_str().unwrap(), "100K"], "").0, 0);
    assert_ne!(run("mkfs-ferrofs", &["--bogus", img.to_str().unwrap()], "").0, 0);
}

#[test]
fn fsck_detects_damage_with_fsck8_codes() {
    // Not a filesystem at all.
    let img = scratch("zero.img");
    std::fs::File::create(&img).unwrap().set_len(64 << 20).unwrap();
    assert_eq!(fsck(&img).0, 4);

    // Both superblock copies damaged.
    let img = scratch("sb.img");
    mkfs(&img, &[]);
    flip(&img, 65536 + 100);
    flip(&img, 131072 + 100);
    let (code, out) = fsck(&img);
    assert_eq!(code, 4, "{out}");
    assert!(out.contains("checksum"), "{out}");

    // Each metadata block of a fresh image, damaged in turn.
    let clean = scratch("clean.img");
    mkfs(&clean, &[]);
    let (_, dump) = run("ferrofs", &["dump-tree", clean.to_str().unwrap()], "");
    let nodes: Vec<u64> = dump
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("node "))
        .filter_map(|rest| rest.split_whitespace().next()?.parse().ok())
        .collect();
    assert!(nodes.len() >= 3, "{dump}");
    for n in nodes {
        let img = scratch(&format!("node{n}.img"));
        std::fs::copy(&clean, &img).unwrap();
        flip(&img, n * 4096 + 200);
        let (code, out) = fsck(&img);
        assert_eq!(code, 4, "damaged node {n} not detected: {out}");
    }

    // Missing arguments are a usage error.
    assert_eq!(run("fsck-ferrofs", &[], "").0, 16);
}

/// `ferrofs debug`: fields lists specs that get and set accept; a set
/// re-seals the checksum, so the edit reaches the decoders (fsck names the
/// damage instead of a checksum failure), and a bad spec or value is refused.
#[test]
fn debug_get_set_fields() {
    let img = scratch("debug.img");
    mkfs(&img, &[]);
    let p = img.to_str().unwrap();
    let (code, list) = run("ferrofs", &["debug", "fields", p], "");
    assert_eq!(code, 0, "{list}");
    let line = list
        .lines()
        .find(|l| l.starts_with("item.") || l.contains(".item.") && l.contains(".inode_count "))
        .expect("root item field listed");
    let spec = line.split(' ').next().unwrap();
    assert_eq!(run("ferrofs", &["debug", "get", p, spec], ""), (0, "0x1\n".to_string()));
    assert_eq!(run("ferrofs", &["debug", "set", p, "item.1.5.root_item.0.inode_count", "0xfffffffffffffffe"], "").0, 0);
    assert_eq!(run("ferrofs", &["debug", "get", p, spec], ""), (0, "0xfffffffffffffffe\n".to_string()));
    let (code, out) = fsck(&img);
    assert_ne!(code, 0, "{out}");
    assert!(out.contains("inode count"), "fsck should name the counter, not a checksum: {out}");
    assert!(!out.contains("checksum"), "{out}");
    // The kernel refuses such an image; fsck counts the inodes and repairs it.
    let (code, out) = run("fsck-ferrofs", &["-y", p], "");
    assert_eq!(code, 1, "{out}");
    assert_eq!(fsck(&img).0, 0);
    // The repair copied the root item to a new block: name it by key.
    assert_eq!(run("ferrofs", &["debug", "get", p, "item.1.5.root_item.0.inode_count"], ""), (0, "0x1\n".to_string()));
    let (code, out) = run("ferrofs", &["debug", "set", p, "super.nonsense", "1"], "");
    assert!(code != 0 && out.contains("no such field"), "{out}");
    let (code, out) = run("ferrofs", &["debug", "set", p, "node.99.header.level", "256"], "");
    assert!(code != 0 && out.contains("does not fit"), "{out}");
}

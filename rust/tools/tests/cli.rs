// SPDX-License-Identifier: GPL-2.0
//! The tools as a user runs them: mkfs.ferrofs options and confirmation,
//! fsck.ferrofs exit codes on clean and deliberately damaged images, the
//! command-line surface of all three (help, version, usage errors, every
//! accepted form of their arguments), and `ferrofs subvolume` away from
//! ferrofs (its work on a mounted ferrofs is tests/vm/t_62_subvol_cli.sh's).

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

/// Runs a tool: its exit code, stdout and stderr.
fn run_split(name: &str, args: &[&str], stdin: &str) -> (i32, String, String) {
    let mut child = Command::new(bin(name)).args(args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// Runs a tool: its exit code and its stdout followed by its stderr.
fn run(name: &str, args: &[&str], stdin: &str) -> (i32, String) {
    let (code, stdout, stderr) = run_split(name, args, stdin);
    (code, stdout + &stderr)
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

/// A reader that stops early (`ferrofs show-super DEV | head -1`) ends the
/// printing commands quietly, by SIGPIPE as it ends `cat`, not with a panic.
#[test]
fn printing_into_a_closed_pipe_ends_quietly() {
    use std::os::unix::process::ExitStatusExt;
    let img = scratch("closed-pipe.img");
    mkfs(&img, &[]);
    for command in ["show-super", "dump-tree"] {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out =
            Command::new(bin("ferrofs")).args([command, img.to_str().unwrap()]).stdout(writer).stderr(Stdio::piped()).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.signal(), Some(libc::SIGPIPE), "{command}: {:?} {stderr}", out.status);
        assert!(stderr.is_empty(), "{command}: {stderr}");
    }
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

/// Values that parse but the format refuses exit 1 with mkfs's own
/// message; arguments that do not parse are usage errors (exit 2).
#[test]
fn mkfs_rejects_bad_arguments() {
    let img = scratch("bad-args.img");
    let p = img.to_str().unwrap();
    for args in
        [&["-U", "not-a-uuid", p, "64M"][..], &["-b", "big", p, "64M"], &[p, "64Q"], &["--bogus", p], &[p, "64M", "extra"], &[], &["-L"]]
    {
        let (code, stdout, stderr) = run_split("mkfs-ferrofs", args, "");
        assert!(code == 2 && stdout.is_empty() && stderr.starts_with("error: "), "{args:?}: {code} {stdout} {stderr}");
    }
    assert!(!img.exists(), "a usage error created {p}");
    for args in [&["-b", "3000", p, "64M"][..], &["-L", &"x".repeat(64), p, "64M"], &[p, "100K"]] {
        let (code, out) = run("mkfs-ferrofs", args, "");
        assert!(code == 1 && out.starts_with("mkfs.ferrofs: "), "{args:?}: {code} {out}");
    }
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

/// `--help` and `-h` describe every subcommand and option, on stdout, exit 0.
#[test]
fn help_lists_subcommands_and_options() {
    for flag in ["--help", "-h"] {
        let (code, out, err) = run_split("ferrofs", &[flag], "");
        assert!(code == 0 && err.is_empty(), "{code} {err}");
        for word in ["show-super", "dump-tree", "debug", "subvolume", "--version"] {
            assert!(out.contains(word), "ferrofs {flag} lacks {word}: {out}");
        }
        let (code, out, _) = run_split("ferrofs", &["debug", flag], "");
        assert_eq!(code, 0);
        for word in ["fields", "get", "set", "SPEC: super.F"] {
            assert!(out.contains(word), "ferrofs debug {flag} lacks {word}: {out}");
        }
        let (code, out, _) = run_split("mkfs-ferrofs", &[flag], "");
        assert_eq!(code, 0);
        for word in ["-f, --force", "-q, --quiet", "-L, --label", "-U, --uuid", "-b, --block-size", "<DEVICE|FILE>", "[SIZE]"] {
            assert!(out.contains(word), "mkfs {flag} lacks {word}: {out}");
        }
        let (code, out, _) = run_split("fsck-ferrofs", &[flag], "");
        assert_eq!(code, 0);
        for word in ["-n", "-y", "-p", "-a", "-f", "-v", "<DEVICE|FILE>"] {
            assert!(out.contains(word), "fsck {flag} lacks {word}: {out}");
        }
    }
    let (code, out, _) = run_split("ferrofs", &["help", "debug"], "");
    assert!(code == 0 && out.contains("fields"), "{out}");
}

/// `--version` and `-V` print the tool's name and the crate's version.
#[test]
fn version_prints_the_version() {
    for (bin, name) in [("mkfs-ferrofs", "mkfs.ferrofs"), ("fsck-ferrofs", "fsck.ferrofs"), ("ferrofs", "ferrofs")] {
        for flag in ["--version", "-V"] {
            assert_eq!(run_split(bin, &[flag], ""), (0, format!("{name} {}\n", env!("CARGO_PKG_VERSION")), String::new()), "{bin} {flag}");
        }
    }
}

/// A command line that does not parse exits 2 (fsck: 16, as fsck(8) has
/// it) with an error on stderr and nothing on stdout, before any device is
/// opened or written.
#[test]
fn usage_errors_exit_with_the_usage_code() {
    let img = scratch("usage.img");
    mkfs(&img, &["-L", "untouched"]);
    let p = img.to_str().unwrap();
    let cases: &[(&str, &[&str], i32)] = &[
        ("ferrofs", &[], 2),
        ("ferrofs", &["--bogus"], 2),
        ("ferrofs", &["frobnicate", p], 2),
        ("ferrofs", &["show-super"], 2),
        ("ferrofs", &["show-super", p, "extra"], 2),
        ("ferrofs", &["dump-tree", "--bogus", p], 2),
        ("ferrofs", &["debug"], 2),
        ("ferrofs", &["debug", "edit", p], 2),
        ("ferrofs", &["debug", "get", p], 2),
        ("ferrofs", &["debug", "set", p, "super.label0"], 2),
        ("ferrofs", &["debug", "set", p, "super.label0", "xyz"], 2),
        ("ferrofs", &["debug", "set", p, "super.label0", "0x41", "extra"], 2),
        ("mkfs-ferrofs", &["--bogus", "-f", "-L", "changed", p], 2),
        ("mkfs-ferrofs", &["-f", "-L", "changed", "-U", "0123", p], 2),
        ("fsck-ferrofs", &[], 16),
        ("fsck-ferrofs", &["--bogus", p], 16),
        ("fsck-ferrofs", &["-x", p], 16),
        ("fsck-ferrofs", &["-y", p, p], 16),
        ("fsck-ferrofs", &["-C0", p], 16),
    ];
    for (bin, args, want) in cases {
        let (code, stdout, stderr) = run_split(bin, args, "");
        assert_eq!(code, *want, "{bin} {args:?}: {stdout}{stderr}");
        assert!(stdout.is_empty(), "{bin} {args:?}: usage error on stdout: {stdout}");
        assert!(stderr.starts_with("error: ") || stderr.contains("\nUsage: "), "{bin} {args:?}: {stderr}");
    }
    let (code, out) = run("ferrofs", &["show-super", p], "");
    assert!(code == 0 && out.contains("untouched"), "{out}");
    assert_eq!(fsck(&img).0, 0);
}

/// Every form of mkfs.ferrofs's arguments that tests/ and scripts/ use:
/// long options, repeated options (the last wins), options after the
/// operands, `--`, a label starting with '-', quiet and chatty output.
#[test]
fn mkfs_accepts_every_form() {
    let img = scratch("forms.img");
    let p = img.to_str().unwrap();
    let show = |want: &[&str]| {
        let (code, out) = run("ferrofs", &["show-super", p], "");
        assert_eq!(code, 0, "{out}");
        for w in want {
            assert!(out.contains(w), "{w} not in {out}");
        }
    };
    let uuid = "fedcba98-7654-4321-8fed-cba987654321";
    let (code, stdout, _) =
        run_split("mkfs-ferrofs", &["--quiet", "--label", "long", "--uuid", uuid, "--block-size", "4096", p, "64M"], "");
    assert_eq!((code, stdout.as_str()), (0, ""));
    show(&["label           long", uuid, "total blocks    16384"]);
    // As tests/fstests/ferrofs.rc makes a sized filesystem: -f in the
    // default options and again, -b twice, the size in bytes.
    let (code, out) = run("mkfs-ferrofs", &["-f", "-f", "-b", "4096", "-q", "-b", "4K", p, "33554432"], "");
    assert_eq!(code, 0, "{out}");
    show(&["label           \n", "total blocks    8192"]);
    let (code, out) = run("mkfs-ferrofs", &[p, "-f", "-L", "first", "-L", "after", "-U", uuid, "48M"], "");
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("label 'after'") && out.contains("block size 4096, 12288 blocks"), "{out}");
    show(&["label           after", "total blocks    12288"]);
    // Without SIZE: the whole file, which a smaller SIZE never shrank.
    let (code, out) = run("mkfs-ferrofs", &["-q", "-f", "-L", "-dash", "--", p], "");
    assert_eq!(code, 0, "{out}");
    show(&["label           -dash", "total blocks    16384"]);
    let (code, out) = run("mkfs-ferrofs", &["-qfL=joined", p], "");
    assert_eq!(code, 0, "{out}");
    show(&["label           joined"]);
    // No -f and no answer: the existing filesystem stays.
    let (code, out) = run("mkfs-ferrofs", &["-q", "--label", "gone", p], "");
    assert!(code == 1 && out.contains("Overwrite it?"), "{out}");
    show(&["label           joined"]);
    assert_eq!(fsck(&img).0, 0);
}

/// Every form of fsck.ferrofs's arguments: -n, -y, -p and -a, the last of
/// them winning; -f accepted; -v; options in any order.
#[test]
fn fsck_accepts_every_form() {
    let img = scratch("fsck-forms.img");
    mkfs(&img, &[]);
    let p = img.to_str().unwrap();
    for args in [
        &["-n", p][..],
        &[p],
        &["-f", p],
        &["-y", p],
        &["-p", p],
        &["-a", p],
        &["-a", "-f", "-n", p],
        &["-fy", p],
        &[p, "-n"],
        &["-y", "-a", "-f", "-f", "-n", "-n", p],
    ] {
        let (code, out) = run("fsck-ferrofs", args, "");
        assert!(code == 0 && out.ends_with(": clean\n"), "{args:?}: {code} {out}");
        assert!(!out.contains("checked"), "{args:?}: verbose without -v: {out}");
    }
    let (code, out) = run("fsck-ferrofs", &["-v", "-n", p], "");
    assert!(code == 0 && out.contains("checked 3 nodes"), "{out}");

    // A counter out of range: found with -n, repaired with -y, -p or -a,
    // whichever of them comes last deciding.
    let damage = || assert_eq!(run("ferrofs", &["debug", "set", p, "item.1.5.root_item.0.inode_count", "7"], "").0, 0);
    for repair in ["-y", "-p", "-a"] {
        damage();
        let (code, out) = run("fsck-ferrofs", &[repair, "-n", p], "");
        assert_eq!(code, 4, "{repair} -n must only check: {out}");
        assert_eq!(fsck(&img).0, 4, "{repair} -n wrote to the image");
        let (code, out) = run("fsck-ferrofs", &["-n", repair, p], "");
        assert_eq!(code, 1, "-n {repair} must repair: {out}");
        assert_eq!(fsck(&img).0, 0);
    }
}

/// A fresh empty directory for one test.
fn scratch_dir(name: &str) -> PathBuf {
    let dir = scratch(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Everything under `dir`, sorted: what a command must leave as it was.
fn tree(dir: &Path) -> Vec<PathBuf> {
    let mut found = vec![];
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            found.extend(tree(&path));
        }
        found.push(path);
    }
    found.sort();
    found
}

/// `ferrofs subvolume --help` names every command; each command's help
/// names its operands and options.
#[test]
fn subvolume_help_describes_each_command() {
    let (code, out, err) = run_split("ferrofs", &["subvolume", "--help"], "");
    assert!(code == 0 && err.is_empty(), "{code} {err}");
    for word in ["create", "snapshot", "delete", "list", "show", "get-readonly", "set-readonly"] {
        assert!(out.contains(word), "ferrofs subvolume --help lacks {word}: {out}");
    }
    let cases: &[(&str, &[&str])] = &[
        ("create", &["<PATH>"]),
        ("snapshot", &["-r, --readonly", "<SOURCE>", "<DEST>"]),
        ("delete", &["<PATH>..."]),
        ("list", &["--json", "<PATH>", "ID <id> gen <generation> parent <parent id> top level <parent id> path <path>", "<dir:INODE>"]),
        ("show", &["--json", "<PATH>"]),
        ("get-readonly", &["<PATH>"]),
        ("set-readonly", &["<PATH>", "<READONLY>", "[possible values: true, false]"]),
    ];
    for (command, words) in cases {
        for flag in ["--help", "-h"] {
            let (code, out, err) = run_split("ferrofs", &["subvolume", command, flag], "");
            assert!(code == 0 && err.is_empty(), "subvolume {command} {flag}: {code} {err}");
            for word in words.iter() {
                assert!(out.contains(word), "ferrofs subvolume {command} {flag} lacks {word}: {out}");
            }
        }
    }
    let (code, out, _) = run_split("ferrofs", &["help", "subvolume", "snapshot"], "");
    assert!(code == 0 && out.contains("<SOURCE>"), "{out}");
}

/// Command lines that do not parse exit 2, print nothing on stdout and
/// touch nothing.
#[test]
fn subvolume_usage_errors_exit_2() {
    let dir = scratch_dir("subvol-usage");
    std::fs::create_dir(dir.join("src")).unwrap();
    let before = tree(&dir);
    let d = |name: &str| dir.join(name).to_str().unwrap().to_string();
    let (src, new) = (d("src"), d("new"));
    let cases: &[&[&str]] = &[
        &["subvolume"],
        &["subvolume", "frobnicate", &new],
        &["subvolume", "create"],
        &["subvolume", "create", &new, &d("other")],
        &["subvolume", "create", "-p", &new],
        &["subvolume", "snapshot"],
        &["subvolume", "snapshot", &src],
        &["subvolume", "snapshot", &src, &new, &d("third")],
        &["subvolume", "snapshot", "-x", &src, &new],
        &["subvolume", "delete"],
        &["subvolume", "delete", "--bogus", &src],
        &["subvolume", "list"],
        &["subvolume", "list", &src, &new],
        &["subvolume", "list", "--json=yes", &src],
        &["subvolume", "show"],
        &["subvolume", "show", "--bogus", &src],
        &["subvolume", "get-readonly"],
        &["subvolume", "set-readonly", &src],
        &["subvolume", "set-readonly", &src, "maybe"],
        &["subvolume", "set-readonly", &src, "true", "false"],
    ];
    for args in cases {
        let (code, stdout, stderr) = run_split("ferrofs", args, "");
        assert_eq!(code, 2, "{args:?}: {stdout}{stderr}");
        assert!(stdout.is_empty(), "{args:?}: usage error on stdout: {stdout}");
        assert!(stderr.starts_with("error: ") || stderr.contains("\nUsage: "), "{args:?}: {stderr}");
    }
    assert_eq!(tree(&dir), before);
}

/// Away from ferrofs every command fails with exit 1 and one line naming
/// what it tried and why, and nothing is created, deleted or changed: the
/// tool checks the filesystem before it sends any ioctl.
#[test]
fn subvolume_commands_refuse_other_filesystems() {
    let dir = scratch_dir("subvol-foreign");
    std::fs::create_dir(dir.join("src")).unwrap();
    std::fs::write(dir.join("file"), b"data").unwrap();
    let before = tree(&dir);
    let d = |name: &str| dir.join(name).to_str().unwrap().to_string();
    let (top, src, new, file) = (d(""), d("src"), d("new"), d("file"));
    let top = top.trim_end_matches('/');
    let not_ferrofs = |path: &str| format!("'{path}' is not on a ferrofs filesystem\n");
    let cases: Vec<(Vec<&str>, String)> = vec![
        (vec!["create", &new], format!("cannot create subvolume '{new}': {}", not_ferrofs(top))),
        (vec!["snapshot", &src, &new], format!("cannot snapshot '{src}' as '{new}': {}", not_ferrofs(&src))),
        (vec!["snapshot", "-r", &src, top], format!("cannot snapshot '{src}' as '{src}': {}", not_ferrofs(&src))),
        (vec!["delete", &src], format!("cannot delete subvolume '{src}': {}", not_ferrofs(&src))),
        (vec!["list", top], format!("cannot list the subvolumes of '{top}': {}", not_ferrofs(top))),
        (vec!["list", "--json", &file], format!("cannot list the subvolumes of '{file}': {}", not_ferrofs(&file))),
        (vec!["show", &src], format!("cannot show the subvolume of '{src}': {}", not_ferrofs(&src))),
        (vec!["show", "--json", &file], format!("cannot show the subvolume of '{file}': {}", not_ferrofs(&file))),
        (vec!["get-readonly", &src], format!("cannot read the read-only flag of '{src}': {}", not_ferrofs(&src))),
        (vec!["set-readonly", &src, "true"], format!("cannot set the read-only flag of '{src}': {}", not_ferrofs(&src))),
    ];
    for (args, message) in cases {
        let args: Vec<&str> = ["subvolume"].into_iter().chain(args).collect();
        let (code, stdout, stderr) = run_split("ferrofs", &args, "");
        assert_eq!((code, stdout.as_str(), stderr), (1, "", format!("ferrofs: {message}")), "{args:?}");
    }
    // Every path of delete is tried, and each failure reported.
    let (code, stdout, stderr) = run_split("ferrofs", &["subvolume", "delete", &d("missing"), &src], "");
    assert_eq!((code, stdout.as_str()), (1, ""), "{stderr}");
    assert_eq!(stderr.lines().count(), 2, "{stderr}");
    assert!(stderr.contains("No such file or directory") && stderr.contains(&not_ferrofs(&src)), "{stderr}");
    assert_eq!(tree(&dir), before);
}

/// Paths that cannot name a subvolume or cannot be opened: refused with
/// exit 1 before the filesystem is looked at or opened.
#[test]
fn subvolume_commands_refuse_bad_paths() {
    let dir = scratch_dir("subvol-bad-paths");
    let before = tree(&dir);
    let top = dir.to_str().unwrap().to_string();
    let long = format!("{top}/{}", "n".repeat(256));
    let (dot, dotdot, missing, in_missing) =
        (format!("{top}/."), format!("{top}/.."), format!("{top}/missing"), format!("{top}/missing/new"));
    let cases: Vec<(Vec<&str>, String)> = vec![
        (vec!["create", &dotdot], "invalid subvolume name '..'".to_string()),
        (vec!["create", &dot], "invalid subvolume name '.'".to_string()),
        (vec!["create", "/"], "invalid subvolume name ''".to_string()),
        (vec!["create", &long], "name longer than 255 bytes".to_string()),
        (vec!["create", &in_missing], format!("'{missing}': No such file or directory")),
        (vec!["snapshot", &top, &long], "name longer than 255 bytes".to_string()),
        (vec!["show", "/dev/null"], "'/dev/null' is not a regular file or directory".to_string()),
        (vec!["delete", &missing], "No such file or directory".to_string()),
    ];
    for (args, why) in cases {
        let args: Vec<&str> = ["subvolume"].into_iter().chain(args).collect();
        let (code, stdout, stderr) = run_split("ferrofs", &args, "");
        assert!(code == 1 && stdout.is_empty(), "{args:?}: {code} {stdout}{stderr}");
        assert!(stderr.starts_with("ferrofs: ") && stderr.ends_with(&format!(": {why}\n")), "{args:?}: {stderr}");
    }
    assert_eq!(tree(&dir), before);
}

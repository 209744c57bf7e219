// SPDX-License-Identifier: GPL-2.0
//! The seed corpus under `corpus/<target>/`, cut from the sample image:
//! `write_seed_corpus` (ignored; run it after a format change) rewrites it,
//! and the other tests check that the seeds still get past the decoders,
//! since a seed that is refused at once teaches the fuzzer nothing.
//!
//! `cargo test --manifest-path rust/core/fuzz/Cargo.toml -- --ignored`

use ferrofs_core::subvol::SubvolId;
const SV: SubvolId = SubvolId::DEFAULT;
use ferrofs_core::alloc_tree::decode_record;
use ferrofs_core::format::*;
use ferrofs_core::fs::Filesystem;
use ferrofs_core::fsync_stats::FsyncReport;
use ferrofs_core::mkfs::{self, MkfsOptions};
use ferrofs_core::node;
use ferrofs_core::superblock::{Superblock, SUPERBLOCK_OFFSETS, SUPERBLOCK_SIZE};
use ferrofs_core::walk::Visit;
use ferrofs_core_fuzz::{sample_image, MemDev, IMAGE_SIZE, IMAGE_UUID, PAGE};
use std::path::PathBuf;

/// The item types in the order the `items` target's first byte picks them.
const ITEM_TYPES: [(u8, &str); 9] = [
    (INODE_KEY, "inode"),
    (DIR_HASH_KEY, "dir-hash"),
    (DIR_SEQ_KEY, "dir-seq"),
    (EXTENT_KEY, "extent"),
    (ROOT_ITEM_KEY, "root-item"),
    (REFCOUNT_KEY, "refcount"),
    (INODE_REF_KEY, "inode-ref"),
    (ROOT_REF_KEY, "root-ref"),
    (ROOT_BACKREF_KEY, "root-backref"),
];

/// Every node of every tree in the image: (tree id, block, bytes).
fn nodes(img: &[u8]) -> Vec<(u64, u64, Vec<u8>)> {
    let mut fs = Filesystem::mount(MemDev::new(img, img.len() as u64)).expect("mount");
    let mut out = Vec::new();
    for t in fs.trees().expect("trees").iter() {
        let root = t.root;
        fs.store()
            .walk(&root, &mut |_, v| {
                if let Visit::Node { block, buf, .. } = v {
                    out.push((root.id, block, buf.to_vec()));
                }
                Ok(())
            })
            .expect("walk");
    }
    out
}

/// An image with 8 KiB blocks, so the node layout code is fuzzed at more
/// than one block size (the largest seed sets libFuzzer's input length).
fn image_8k() -> Vec<u8> {
    let size = 4 << 20;
    let mut dev = MemDev::new(&[], size);
    let opts =
        MkfsOptions { block_size: 8192, size_bytes: size, uuid: IMAGE_UUID, label: b"fuzz-8k", now: (1000, 0), fast_commit_blocks: None };
    mkfs::format(&mut dev, &opts).expect("mkfs");
    let mut fs = Filesystem::mount(dev).expect("mount");
    let root = fs.root_ino();
    let f = fs.create(SV, root, b"file", 0o644, 0, 0, 0, Timespec { sec: 1, nsec: 0 }).expect("create").ino;
    fs.write(SV, f, 0, &[3u8; 10000], Timespec { sec: 1, nsec: 0 }).expect("write");
    fs.unmount().expect("unmount").into_image()
}

/// The seed files, by target: (target, file name, bytes).
fn seeds() -> Vec<(&'static str, String, Vec<u8>)> {
    let img = sample_image();
    let mut out = Vec::new();
    for (i, off) in SUPERBLOCK_OFFSETS.iter().enumerate() {
        let o = *off as usize;
        out.push(("superblock", format!("copy-{i}"), img[o..o + SUPERBLOCK_SIZE].to_vec()));
    }
    let all = nodes(&img);
    // The first leaf and the first interior node of each tree.
    let mut kinds = Vec::new();
    for (tree, block, buf) in &all {
        let kind = (*tree, node::level(buf) > 0);
        if !kinds.contains(&kind) {
            kinds.push(kind);
            out.push(("node", format!("tree-{tree}-{}-{block}", if kind.1 { "interior" } else { "leaf" }), buf.clone()));
        }
    }
    let (_, block, leaf) = nodes(&image_8k()).into_iter().find(|(tree, _, b)| *tree == FS_TREE_ID && node::level(b) == 0).expect("fs leaf");
    out.push(("node", format!("tree-5-leaf-{block}-8k"), leaf));
    for (sel, (ty, name)) in ITEM_TYPES.iter().enumerate() {
        let found = all
            .iter()
            .filter(|(_, _, b)| node::level(b) == 0)
            .find_map(|(_, _, b)| (0..node::nritems(b)).map(|i| (node::item_key(b, i), node::item_data(b, i))).find(|(k, _)| k.ty == *ty));
        let (key, data) = found.unwrap_or_else(|| panic!("no {name} item in the sample image"));
        let mut seed = vec![sel as u8];
        if *ty == REFCOUNT_KEY {
            seed.extend_from_slice(&key.objectid.to_le_bytes());
        }
        seed.extend_from_slice(data);
        out.push(("items", (*name).to_string(), seed));
    }
    // Flags only (no damage): read-write, read-only, read-write with changes.
    for (flags, name) in [(0u8, "rw"), (2, "ro"), (4, "rw-change")] {
        out.push(("mount", name.to_string(), vec![flags]));
    }
    // A no-op patch of the item count of each of the first used pages, so
    // the patch layout is there for the fuzzer to mutate.
    let used: Vec<usize> = img.chunks(PAGE).enumerate().filter(|(_, p)| p.iter().any(|&b| b != 0)).map(|(i, _)| i).collect();
    for (sel, &page) in used.iter().enumerate().take(6) {
        let at = page * PAGE + 48;
        let mut seed = vec![0u8, sel as u8, 48, 0, 4];
        seed.extend_from_slice(&img[at..at + 4]);
        out.push(("mount", format!("patch-page-{page}"), seed));
    }
    // The pending record of the sample image's fast-commit area: alone (the
    // decoder) and as area contents after the flags byte (replay), as is
    // and with the first record's epoch, sequence and CRC set right.
    let sb =
        Superblock::decode(&img[SUPERBLOCK_OFFSETS[0] as usize..][..SUPERBLOCK_SIZE], SUPERBLOCK_OFFSETS[0]).expect("sample superblock");
    let area = &img[sb.fast_commit_start as usize * PAGE..][..PAGE];
    let len = ferrofs_core::fast_commit::Record::announced_len(area).expect("a pending record");
    out.push(("fast_commit", "record".to_string(), area[..len].to_vec()));
    for (flags, name) in [(0u8, "area"), (1, "area-resealed")] {
        let mut seed = vec![flags];
        seed.extend_from_slice(area);
        out.push(("fast_commit", name.to_string(), seed));
    }
    // The tree-log record that follows it, alone and as the area after
    // the fast-commit record.
    let next = len.div_ceil(PAGE) * PAGE;
    let tail = &img[sb.fast_commit_start as usize * PAGE + next..][..PAGE];
    let tlen = ferrofs_core::tree_log::LogRecord::announced_len(tail).expect("a pending tree-log record");
    out.push(("tree_log", "record".to_string(), tail[..tlen].to_vec()));
    for (flags, name) in [(0u8, "area"), (1, "area-resealed")] {
        let mut seed = vec![flags];
        seed.extend_from_slice(tail);
        out.push(("tree_log", name.to_string(), seed));
    }
    // A statistics text as the kernel writes it, every count non-zero.
    let mut fc = ferrofs_core::fast_commit::FastCommitStats {
        fast_commits: 3,
        clean: 1,
        record_bytes: 12288,
        replayed: 1,
        replay_ns: 5000,
        ..Default::default()
    };
    fc.full_commits.iter_mut().enumerate().for_each(|(i, n)| *n = i as u64 + 1);
    let report = FsyncReport { fc, commits: 4, flushes: 7, fast_commit: true, norecovery: false, commit_secs: 5 };
    let mut text = String::new();
    report.format(&mut text).expect("format");
    out.push(("fsync_stats", "report".to_string(), text.into_bytes()));
    out.extend(send_stream_seeds());
    out
}

/// Send stream seeds: the version byte, then commands. Every command the
/// codec knows, one per seed, in both versions; and the commands of the
/// streams btrfs send wrote (the core's `tests/data`), all in one seed.
fn send_stream_seeds() -> Vec<(&'static str, String, Vec<u8>)> {
    use ferrofs_core::send_stream::{Command, StreamEncoder, StreamTime, HEADER_LEN};
    let (u, t) = (*b"0123456789abcdef", StreamTime { sec: 1_700_000_000, nsec: 5 });
    let data = [0x5au8; 300];
    let cmds = [
        Command::Subvol { path: b"vol", uuid: u, ctransid: 7 },
        Command::Snapshot { path: b"snap", uuid: u, ctransid: 9, clone_uuid: u, clone_ctransid: 8 },
        Command::Mkfile { path: b"f", ino: 257 },
        Command::Mkdir { path: b"d", ino: 258 },
        Command::Mknod { path: b"n", ino: 259, mode: 0o20644, rdev: 0x801 },
        Command::Mkfifo { path: b"p", ino: 260 },
        Command::Mksock { path: b"s", ino: 261 },
        Command::Symlink { path: b"l", ino: 262, target: b"../f" },
        Command::Rename { from: b"f", to: b"d/g" },
        Command::Link { path: b"h", target: b"d/g" },
        Command::Unlink { path: b"h" },
        Command::Rmdir { path: b"d" },
        Command::SetXattr { path: b"f", name: b"user.a", data: b"v" },
        Command::RemoveXattr { path: b"f", name: b"user.a" },
        Command::Write { path: b"f", offset: 4096, data: &data },
        Command::Clone { path: b"f", offset: 0, len: 4096, clone_uuid: u, clone_ctransid: 7, clone_path: b"g", clone_offset: 0 },
        Command::Truncate { path: b"f", size: 10 },
        Command::Chmod { path: b"f", mode: 0o644 },
        Command::Chown { path: b"f", uid: 1, gid: 2 },
        Command::Utimes { path: b"", atime: t, mtime: t, ctime: t },
        Command::End,
        Command::UpdateExtent { path: b"f", offset: 0, len: 1 },
        Command::Fallocate { path: b"f", mode: 3, offset: 0, len: 4096 },
        Command::Fileattr { path: b"f", attr: 0x10 },
        Command::EncodedWrite {
            path: b"f",
            offset: 0,
            unencoded_file_len: 300,
            unencoded_len: 300,
            unencoded_offset: 0,
            compression: 0,
            encryption: 0,
            data: &data,
        },
    ];
    let mut out = Vec::new();
    for version in [1u32, 2] {
        let mut enc = StreamEncoder::new(version).expect("encoder");
        for c in &cmds {
            if let Ok(bytes) = enc.encode(c) {
                let mut seed = vec![(version - 1) as u8];
                seed.extend_from_slice(bytes);
                out.push(("send_stream", format!("v{version}-{}", c.name()), seed));
            }
        }
    }
    let data_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/data");
    for name in ["btrfs-full-v1", "btrfs-full-v2", "btrfs-incr-v1"] {
        let stream = std::fs::read(data_dir.join(format!("{name}.stream"))).expect("btrfs stream");
        let mut seed = vec![stream[13] - 1];
        seed.extend_from_slice(&stream[HEADER_LEN..]);
        out.push(("send_stream", name.to_string(), seed));
    }
    out
}

fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("corpus")
}

#[test]
#[ignore = "rewrites corpus/; run after a format change"]
fn write_seed_corpus() {
    let root = corpus_dir();
    for target in ["superblock", "node", "items", "mount", "fast_commit", "tree_log", "send_stream", "fsync_stats"] {
        // Seeds of fixed regressions (regress-*) stay.
        let dir = root.join(target);
        std::fs::create_dir_all(&dir).expect("mkdir");
        for e in std::fs::read_dir(&dir).expect("readdir") {
            let e = e.expect("entry");
            if !e.file_name().to_string_lossy().starts_with("regress-") {
                std::fs::remove_file(e.path()).expect("remove seed");
            }
        }
    }
    for (target, name, bytes) in seeds() {
        std::fs::write(root.join(target).join(name), bytes).expect("write seed");
    }
}

#[test]
fn sample_image_is_clean() {
    let img = sample_image();
    let mut fs = Filesystem::mount(MemDev::new(&img, IMAGE_SIZE)).expect("mount");
    let r = fs.check(false).expect("check");
    assert!(r.is_clean(), "{:?}", r.problems.iter().map(|p| p.to_string()).collect::<Vec<_>>());
    let levels: Vec<u8> = fs.trees().expect("trees").iter().map(|t| t.root.level).collect();
    assert!(levels.iter().any(|&l| l > 0), "no tree has an interior node: {levels:?}");
}

/// The committed seeds, as the fuzzer reads them.
fn committed() -> Vec<(String, String, Vec<u8>)> {
    let mut out = Vec::new();
    for target in ["superblock", "node", "items", "mount", "send_stream", "fsync_stats"] {
        let dir = corpus_dir().join(target);
        for e in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = e.expect("corpus entry").path();
            let name = path.file_name().expect("file name").to_string_lossy().into_owned();
            out.push((target.to_string(), name, std::fs::read(&path).expect("read seed")));
        }
    }
    out
}

#[test]
fn committed_seeds_pass_the_decoders() {
    let seeds = committed();
    for target in ["superblock", "node", "items", "mount", "send_stream", "fsync_stats"] {
        assert!(seeds.iter().any(|(t, _, _)| t == target), "no seeds for {target}");
    }
    for (target, name, b) in seeds {
        match target.as_str() {
            "superblock" => {
                let off = SUPERBLOCK_OFFSETS[name.ends_with('1') as usize];
                Superblock::decode(&b, off).unwrap_or_else(|e| panic!("{name}: {e:?}"));
            }
            "node" => node::validate_structure(&b, IMAGE_SIZE / PAGE as u64).unwrap_or_else(|e| panic!("{name}: {e:?}")),
            "items" => {
                let (ty, _) = ITEM_TYPES[b[0] as usize];
                let v = if ty == REFCOUNT_KEY { &b[9..] } else { &b[1..] };
                let ok = match ty {
                    INODE_KEY => InodeItem::decode(v).is_ok(),
                    DIR_HASH_KEY | DIR_SEQ_KEY => DirEntry::decode(v).is_ok(),
                    EXTENT_KEY => ExtentItem::decode(v).is_ok(),
                    ROOT_ITEM_KEY => RootItem::decode(v).is_ok(),
                    INODE_REF_KEY | ROOT_REF_KEY | ROOT_BACKREF_KEY => NameRef::decode(v).is_ok(),
                    _ => decode_record(&Key::new(u64::from_le_bytes(b[1..9].try_into().expect("8 bytes")), ty, 0), v).is_ok(),
                };
                assert!(ok, "{name} does not decode");
            }
            "send_stream" => {
                let version = 1 + (b[0] & 1) as u32;
                ferrofs_core::send_stream::decode_command(&b[1..], version).unwrap_or_else(|e| panic!("{name}: {e:?}"));
            }
            "fsync_stats" => {
                let text = std::str::from_utf8(&b).unwrap_or_else(|e| panic!("{name}: {e}"));
                FsyncReport::parse(text).unwrap_or_else(|e| panic!("{name}: {e}"));
            }
            _ => {}
        }
    }
}

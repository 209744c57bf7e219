// SPDX-License-Identifier: GPL-2.0
//! mkfs.ferrofs: writes an empty ferrofs filesystem onto a device or file.

use ferrofs_core::mkfs::{self, MkfsOptions};
use ferrofs_core::superblock::{self, Superblock};
use ferrofs_tools::{format_uuid, parse_size, parse_uuid, random_uuid, FileDevice};
use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::process::exit;
use std::time::{SystemTime, UNIX_EPOCH};

const USAGE: &str = "usage: mkfs.ferrofs [-f] [-q] [-L LABEL] [-U UUID] [-b BLOCKSIZE] DEVICE|FILE [SIZE]";

struct Args {
    force: bool,
    quiet: bool,
    label: String,
    uuid: Option<[u8; 16]>,
    block_size: u32,
    target: PathBuf,
    size: Option<u64>,
}

fn die(msg: &str) -> ! {
    eprintln!("mkfs.ferrofs: {msg}");
    exit(1)
}

fn parse_args() -> Args {
    let mut a = Args { force: false, quiet: false, label: String::new(), uuid: None, block_size: 4096, target: PathBuf::new(), size: None };
    let mut positional = Vec::new();
    let mut it = std::env::args().skip(1);
    let mut only_positional = false;
    while let Some(arg) = it.next() {
        if only_positional || !arg.starts_with('-') || arg == "-" {
            positional.push(arg);
            continue;
        }
        let mut value = |name: &str| it.next().unwrap_or_else(|| die(&format!("{name} needs a value\n{USAGE}")));
        match arg.as_str() {
            "--" => only_positional = true,
            "-f" | "--force" => a.force = true,
            "-q" | "--quiet" => a.quiet = true,
            "-L" | "--label" => a.label = value("-L"),
            "-U" | "--uuid" => {
                let v = value("-U");
                a.uuid = Some(parse_uuid(&v).unwrap_or_else(|| die(&format!("invalid UUID '{v}'"))));
            }
            "-b" | "--block-size" => {
                let v = value("-b");
                a.block_size =
                    parse_size(&v).and_then(|n| u32::try_from(n).ok()).unwrap_or_else(|| die(&format!("invalid block size '{v}'")));
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                exit(0)
            }
            _ => die(&format!("unknown option '{arg}'\n{USAGE}")),
        }
    }
    match positional.len() {
        1 | 2 => {}
        _ => die(USAGE),
    }
    a.target = PathBuf::from(&positional[0]);
    if let Some(s) = positional.get(1) {
        a.size = Some(parse_size(s).unwrap_or_else(|| die(&format!("invalid size '{s}'"))));
    }
    a
}

/// Whether the device already holds a ferrofs filesystem (or looks like one).
fn existing_filesystem(dev: &mut FileDevice) -> Option<String> {
    match superblock::read_superblock(dev) {
        Ok(sb) => Some(describe(&sb)),
        Err(ferrofs_core::error::Error::NotFerrofs) => None,
        Err(e) => Some(format!("a damaged ferrofs filesystem ({e})")),
    }
}

fn describe(sb: &Superblock) -> String {
    format!("a ferrofs filesystem (label '{}', UUID {})", String::from_utf8_lossy(sb.label()), format_uuid(&sb.uuid))
}

fn main() {
    let args = parse_args();
    let is_regular_missing = !args.target.exists();
    if is_regular_missing {
        if args.size.is_none() {
            die(&format!("{}: no such file; give a SIZE to create it", args.target.display()));
        }
        std::fs::File::create(&args.target).unwrap_or_else(|e| die(&format!("{}: {e}", args.target.display())));
    }
    let mut dev = FileDevice::open(&args.target, true).unwrap_or_else(|e| die(&format!("{}: {e}", args.target.display())));
    if let Some(size) = args.size {
        dev.set_size(size).unwrap_or_else(|e| die(&format!("{}: {e}", args.target.display())));
    }
    let size = args.size.unwrap_or(ferrofs_core::device::BlockDevice::size_bytes(&dev));

    if !args.force {
        if let Some(what) = existing_filesystem(&mut dev) {
            eprint!("{} contains {what}.\nOverwrite it? [y/N] ", args.target.display());
            let _ = std::io::stderr().flush();
            let mut answer = String::new();
            let _ = std::io::stdin().lock().read_line(&mut answer);
            if !matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes") {
                die("aborted; nothing written");
            }
        }
    }

    let uuid = args.uuid.unwrap_or_else(|| random_uuid().unwrap_or_else(|e| die(&format!("no random UUID: {e}"))));
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    let opts = MkfsOptions {
        block_size: args.block_size,
        size_bytes: size,
        uuid,
        label: args.label.as_bytes(),
        now: (now.as_secs() as i64, now.subsec_nanos()),
    };
    match mkfs::format(&mut dev, &opts) {
        Ok(sb) => {
            if !args.quiet {
                println!("{}: {}", args.target.display(), describe(&sb));
                println!("  block size {}, {} blocks ({} bytes)", sb.block_size, sb.total_blocks, sb.size_bytes());
            }
        }
        Err(e) => die(&format!("{}: {e}", args.target.display())),
    }
}

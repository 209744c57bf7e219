// SPDX-License-Identifier: GPL-2.0
//! mkfs.ferrofs: writes an empty ferrofs filesystem onto a device or file.

use clap::Parser;
use ferrofs_core::mkfs::{self, MkfsOptions};
use ferrofs_core::superblock::{self, Superblock};
use ferrofs_tools::{format_uuid, parse_size, parse_uuid, random_uuid, FileDevice};
use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::process::exit;
use std::time::{SystemTime, UNIX_EPOCH};

/// Writes an empty ferrofs filesystem onto a device or image file.
///
/// A missing FILE is created when SIZE is given; SIZE also extends a shorter
/// regular file. An existing ferrofs filesystem is overwritten only after a
/// yes on stdin, or with -f.
// args_override_self: a repeated option takes its last value instead of
// being an error, as tests/fstests/ferrofs.rc passes -f and -b both in its
// default options and again on the command line.
#[derive(Parser)]
#[command(name = "mkfs.ferrofs", bin_name = "mkfs.ferrofs", version, args_override_self = true)]
struct Args {
    /// Overwrite an existing filesystem without asking
    #[arg(short, long)]
    force: bool,
    /// Print nothing on success
    #[arg(short, long)]
    quiet: bool,
    /// Filesystem label, at most 63 bytes
    // A label may start with '-': the next word is always the label.
    #[arg(short = 'L', long, value_name = "LABEL", allow_hyphen_values = true)]
    label: Option<String>,
    /// Filesystem UUID, 8-4-4-4-12 hex (default: random)
    #[arg(short = 'U', long, value_name = "UUID", value_parser = uuid_arg)]
    uuid: Option<[u8; 16]>,
    /// Block size in bytes: a power of two, 4096..65536 (K suffix accepted)
    #[arg(short = 'b', long, value_name = "BLOCKSIZE", default_value = "4096", value_parser = block_size_arg)]
    block_size: u32,
    /// Blocks of the fast-commit area for fsync records; 0 for none, every
    /// fsync then a full commit (default: a 64th of the filesystem, at most 1024)
    #[arg(long, value_name = "BLOCKS")]
    fast_commit_blocks: Option<u64>,
    /// The block device or image file to format
    #[arg(value_name = "DEVICE|FILE")]
    target: PathBuf,
    /// Filesystem size in bytes, or with a K, M, G or T suffix (default: the whole device or file)
    #[arg(value_name = "SIZE", value_parser = size_arg)]
    size: Option<u64>,
}

// Values that do not parse are usage errors; values that parse but the
// format refuses (a block size of 3000, a too-long label) are left to
// mkfs::format, which says why.
fn uuid_arg(s: &str) -> Result<[u8; 16], String> {
    parse_uuid(s).ok_or_else(|| "expected 8-4-4-4-12 hex digits".to_string())
}

fn block_size_arg(s: &str) -> Result<u32, String> {
    parse_size(s).and_then(|n| u32::try_from(n).ok()).ok_or_else(|| "not a block size".to_string())
}

fn size_arg(s: &str) -> Result<u64, String> {
    parse_size(s).ok_or_else(|| "expected a number of bytes, with an optional K, M, G or T suffix".to_string())
}

fn die(msg: &str) -> ! {
    eprintln!("mkfs.ferrofs: {msg}");
    exit(1)
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
    let args = Args::parse();
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
        label: args.label.as_deref().unwrap_or_default().as_bytes(),
        now: (now.as_secs() as i64, now.subsec_nanos()),
        fast_commit_blocks: args.fast_commit_blocks,
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

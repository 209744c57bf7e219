// SPDX-License-Identifier: GPL-2.0
//! fsck.ferrofs: checks a ferrofs filesystem, with fsck(8) exit codes.

use ferrofs_core::error::Error;
use ferrofs_core::superblock;
use ferrofs_tools::{format_uuid, FileDevice};
use std::path::PathBuf;
use std::process::exit;

/// fsck(8) exit codes.
const FSCK_OK: i32 = 0;
const FSCK_UNCORRECTED: i32 = 4;
const FSCK_OPERATIONAL: i32 = 8;
const FSCK_USAGE: i32 = 16;

const USAGE: &str = "usage: fsck.ferrofs [-n|-y|-p|-a] [-f] [-v] DEVICE|FILE";

fn main() {
    let mut target = None;
    let mut verbose = false;
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            // Read-only checking is all this version does, so every mode
            // checks without writing; -y/-p/-a are accepted for fsck(8).
            "-n" | "-y" | "-p" | "-a" | "-f" => {}
            "-v" => verbose = true,
            "-h" | "--help" => {
                println!("{USAGE}");
                exit(FSCK_OK)
            }
            a if a.starts_with('-') => {
                eprintln!("fsck.ferrofs: unknown option '{a}'\n{USAGE}");
                exit(FSCK_USAGE)
            }
            a if target.is_none() => target = Some(PathBuf::from(a)),
            _ => {
                eprintln!("{USAGE}");
                exit(FSCK_USAGE)
            }
        }
    }
    let Some(target) = target else {
        eprintln!("{USAGE}");
        exit(FSCK_USAGE)
    };
    let mut dev = match FileDevice::open(&target, false) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("fsck.ferrofs: {}: {e}", target.display());
            exit(FSCK_OPERATIONAL)
        }
    };
    match superblock::read_superblock(&mut dev) {
        Ok(sb) => {
            if verbose {
                println!(
                    "{}: ferrofs, UUID {}, generation {}, {} of {} blocks used",
                    target.display(),
                    format_uuid(&sb.uuid),
                    sb.generation,
                    sb.blocks_used,
                    sb.total_blocks
                );
            }
            println!("{}: clean", target.display());
            exit(FSCK_OK)
        }
        Err(Error::Io) => {
            eprintln!("fsck.ferrofs: {}: I/O error reading the superblock", target.display());
            exit(FSCK_OPERATIONAL)
        }
        Err(e) => {
            eprintln!("fsck.ferrofs: {}: {e}", target.display());
            exit(FSCK_UNCORRECTED)
        }
    }
}

// SPDX-License-Identifier: GPL-2.0
//! fsck.ferrofs: checks a ferrofs filesystem (every invariant the core's
//! `check` knows), optionally repairs what is safe, with fsck(8) exit codes.

use ferrofs_core::error::Error;
use ferrofs_core::fs::{Filesystem, MountOptions};
use ferrofs_tools::{format_uuid, is_mounted, FileDevice};
use std::path::PathBuf;
use std::process::exit;

/// fsck(8) exit codes.
const FSCK_OK: i32 = 0;
const FSCK_CORRECTED: i32 = 1;
const FSCK_UNCORRECTED: i32 = 4;
const FSCK_OPERATIONAL: i32 = 8;
const FSCK_USAGE: i32 = 16;

const USAGE: &str = "usage: fsck.ferrofs [-n | -y | -p | -a] [-f] [-v] DEVICE|FILE
  -n        check only, open read-only (the default)
  -y -p -a  repair what is safe to repair (leaked blocks, link counts, counters)
  -f        accepted for fsck(8); every run is a full check
  -v        print what was checked";

fn main() {
    let mut target = None;
    let mut verbose = false;
    let mut repair = false;
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "-n" => repair = false,
            "-y" | "-p" | "-a" => repair = true,
            "-f" => {}
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
    let name = target.display().to_string();
    if repair && is_mounted(&target) {
        eprintln!("fsck.ferrofs: {name} is mounted; refusing to repair it (use -n to check)");
        exit(FSCK_OPERATIONAL)
    }
    let dev = FileDevice::open(&target, repair).unwrap_or_else(|e| {
        eprintln!("fsck.ferrofs: {name}: {e}");
        exit(FSCK_OPERATIONAL)
    });
    let opts = MountOptions { read_only: !repair, tolerate_bad_counters: true, ..MountOptions::default() };
    let mut fs = match Filesystem::mount_with(dev, opts) {
        Ok(fs) => fs,
        Err(Error::Io) => {
            eprintln!("fsck.ferrofs: {name}: I/O error while opening the filesystem");
            exit(FSCK_OPERATIONAL)
        }
        Err(e) => {
            eprintln!("fsck.ferrofs: {name}: cannot open the filesystem: {e}");
            exit(FSCK_UNCORRECTED)
        }
    };
    let report = match fs.check(repair) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("fsck.ferrofs: {name}: check stopped: {e}");
            exit(if e == Error::Io { FSCK_OPERATIONAL } else { FSCK_UNCORRECTED })
        }
    };
    for p in report.problems.iter() {
        println!("{name}: {p}");
    }
    if verbose {
        let sb = fs.superblock();
        println!(
            "{name}: UUID {}, generation {}, {} of {} blocks used; checked {} nodes, {} items, {} inodes",
            format_uuid(&sb.uuid),
            sb.generation,
            sb.blocks_used,
            sb.total_blocks,
            report.nodes,
            report.items,
            report.inodes
        );
    }
    if repair {
        if let Err(e) = fs.unmount() {
            eprintln!("fsck.ferrofs: {name}: writing repairs failed: {e}");
            exit(FSCK_OPERATIONAL)
        }
    }
    let code = match (report.is_clean(), report.repaired) {
        (true, _) => {
            println!("{name}: clean");
            FSCK_OK
        }
        (false, n) if repair && n > 0 => {
            // Repairs were made; re-check to tell corrected from remaining.
            let dev = FileDevice::open(&target, false).unwrap_or_else(|e| {
                eprintln!("fsck.ferrofs: {name}: {e}");
                exit(FSCK_OPERATIONAL)
            });
            let again = Filesystem::mount_with(dev, MountOptions { read_only: true, ..MountOptions::default() })
                .and_then(|mut fs| fs.check(false))
                .map(|r| r.is_clean());
            if again == Ok(true) {
                println!("{name}: {n} problem(s) repaired; now clean");
                FSCK_CORRECTED
            } else {
                println!("{name}: {n} repair(s) made; problems remain");
                FSCK_UNCORRECTED
            }
        }
        (false, _) => {
            println!("{name}: {} problem(s) found", report.problems.len());
            FSCK_UNCORRECTED
        }
    };
    exit(code)
}

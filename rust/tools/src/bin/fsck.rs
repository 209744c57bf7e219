// SPDX-License-Identifier: GPL-2.0
//! fsck.ferrofs: checks a ferrofs filesystem (every invariant the core's
//! `check` knows), optionally repairs what is safe, with fsck(8) exit codes.

use clap::Parser;
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

/// Checks a ferrofs filesystem: every invariant the core knows.
///
/// Exit codes follow fsck(8): 0 clean, 1 problems repaired and now clean,
/// 4 problems left, 8 operational error, 16 usage error.
// args_override_self: fsck(8) and scripts may repeat an option (-y -a);
// that is not an error.
#[derive(Parser)]
#[command(name = "fsck.ferrofs", bin_name = "fsck.ferrofs", version, args_override_self = true)]
struct Args {
    /// Check only, open read-only (the default)
    // -n and -y/-p/-a override each other: the last one given wins.
    #[arg(short = 'n', overrides_with = "repair")]
    check_only: bool,
    /// Repair what is safe to repair (leaked blocks, link counts, counters)
    #[arg(short = 'y', visible_short_aliases = ['p', 'a'], overrides_with = "check_only")]
    repair: bool,
    /// Accepted for fsck(8); every run is a full check
    // Parsed so that fsck(8)'s -f is accepted, never read.
    #[arg(short = 'f')]
    #[allow(dead_code)]
    force: bool,
    /// Print what was checked
    #[arg(short = 'v')]
    verbose: bool,
    /// The block device or image file to check
    #[arg(value_name = "DEVICE|FILE")]
    target: PathBuf,
}

fn main() {
    let args = Args::try_parse().unwrap_or_else(|e| {
        // Help and --version print to stdout and succeed; every other parse
        // error is a usage error, which fsck(8) numbers 16
        // (the parser's own exit code would be 2).
        let code = if e.use_stderr() { FSCK_USAGE } else { FSCK_OK };
        let _ = e.print();
        exit(code)
    });
    let (target, verbose) = (args.target, args.verbose);
    let repair = args.repair && !args.check_only;
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
    // The check sees the state replay left; a chain cut short by a record
    // that did not fit is worth saying (its fsyncs and the later ones are lost).
    if let Some((seq, why)) = fs.replay_stopped() {
        println!("{name}: fsync replay stopped at record {seq}: {why}");
    }
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

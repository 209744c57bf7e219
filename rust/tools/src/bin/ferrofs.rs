// SPDX-License-Identifier: GPL-2.0
//! ferrofs: the command-line tool (show-super, dump-tree, the `debug`
//! field editor for crafted-image tests, `subvolume` and `send` on a
//! mounted filesystem, `receive` of btrfs send streams onto any, and
//! `stats` of a mounted one).

#![forbid(unsafe_code)]

use clap::{ArgAction, Parser, Subcommand};
use ferrofs_core::edit;
use ferrofs_core::fs::{Filesystem, MountOptions};
use ferrofs_core::superblock;
use ferrofs_tools::receive::dump::DumpFormat;
use ferrofs_tools::{format_uuid, receive, send, stats, subvolume, FileDevice};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::exit;

/// Inspects and edits ferrofs filesystems and images.
// One `Command` variant per subcommand. A group of subcommands (`debug`,
// `subvolume`) is a variant holding an enum of its own, dispatched by a
// function of its own, so that further groups slot in beside it without
// touching the rest.
#[derive(Parser)]
#[command(name = "ferrofs", bin_name = "ferrofs", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the superblock's fields
    ShowSuper {
        /// The block device or image file
        #[arg(value_name = DEVICE)]
        device: PathBuf,
    },
    /// Print the superblock and every tree, node by node, each item decoded
    DumpTree {
        /// The block device or image file
        #[arg(value_name = DEVICE)]
        device: PathBuf,
    },
    /// Read and write single fields of an image, for crafted-image tests
    #[command(subcommand, after_help = SPEC_HELP)]
    Debug(DebugCommand),
    /// Create, snapshot, delete, list and inspect subvolumes of a mounted filesystem
    #[command(subcommand)]
    Subvolume(SubvolumeCommand),
    /// Write the send stream of a read-only snapshot (btrfs send format)
    Send {
        /// Send only what differs from PARENT, a read-only snapshot the receiver has
        #[arg(short = 'p', long = "parent", value_name = "PARENT")]
        parent: Option<PathBuf>,
        /// A read-only snapshot the receiver has (may be repeated)
        #[arg(short = 'c', long = "clone-src", value_name = "CLONE_SRC")]
        clone_sources: Vec<PathBuf>,
        /// Stream version: 1 (the default) or 2
        #[arg(long = "proto", value_name = "N")]
        proto: Option<u32>,
        /// Write to FILE instead of standard output
        #[arg(short = 'f', value_name = "FILE")]
        file: Option<PathBuf>,
        /// Leave file data out: only where it is (UPDATE_EXTENT)
        #[arg(long = "no-data")]
        no_data: bool,
        /// No progress line
        #[arg(short = 'q', long)]
        quiet: bool,
        /// Go on with an interrupted transfer: the token `ferrofs receive --keep-partial` kept (`--token` prints it)
        #[arg(long, value_name = "TOKEN")]
        resume: Option<ferrofs_tools::resume_token::ResumeToken>,
        /// The read-only snapshot's root directory
        snapshot: PathBuf,
    },
    /// Apply btrfs send streams onto a directory of any filesystem, or print them
    #[command(after_help = RECEIVE_HELP)]
    Receive {
        /// Read the stream from FILE instead of standard input
        #[arg(short = 'f', value_name = "FILE")]
        file: Option<PathBuf>,
        /// Print the commands as `btrfs receive --dump` does; apply nothing
        #[arg(long)]
        dump: bool,
        /// Which btrfs-progs release's --dump output to match
        #[arg(long, value_enum, default_value = "current", value_name = "FORMAT")]
        dump_format: DumpFormatArg,
        /// On failure, keep the partial subvolume (as NAME.partial) instead of removing it
        #[arg(long)]
        keep_partial: bool,
        /// Stop at the NERR-th command that fails; the ones before are reported and passed over (0: never stop for a failed command)
        #[arg(short = 'E', long = "max-errors", value_name = "NERR", default_value_t = 1)]
        max_errors: u64,
        /// Print the resume token of the kept partial subvolume PARTIAL and apply nothing
        #[arg(long, value_name = "PARTIAL", conflicts_with_all = ["dump", "file", "dir"])]
        token: Option<PathBuf>,
        /// The directory the subvolumes are created in (not with --dump)
        #[arg(required_unless_present_any = ["dump", "token"])]
        dir: Option<PathBuf>,
    },
    /// Print a mounted filesystem's fsync statistics (/sys/fs/ferrofs/DEV/fsync_stats)
    #[command(after_help = STATS_HELP)]
    Stats {
        /// Print one JSON object: "device" and the file's keys (counts as numbers, switches as booleans)
        #[arg(long)]
        json: bool,
        /// The mounted block device, or any path on the filesystem
        #[arg(value_name = "DEV_OR_MOUNTPOINT")]
        path: PathBuf,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum DumpFormatArg {
    /// btrfs-progs 6.10 and later
    Current,
    /// btrfs-progs 6.2 to 6.9
    #[value(name = "progs-6.2")]
    Progs6_2,
}

const RECEIVE_HELP: &str = "Each stream's SUBVOL or SNAPSHOT becomes the directory DIR/NAME; a SNAPSHOT
starts as a copy of its parent, found in DIR/.ferrofs-received, the list of
subvolumes received into DIR (see ferrofs.rst). A stream that fails part-way
leaves no partial subvolume behind unless --keep-partial; so does a
receive that SIGINT, SIGTERM or SIGHUP stops. With -E NERR, a command that
fails (other than SUBVOL, SNAPSHOT or END) is reported and passed over until
the NERR-th failure; a subvolume received that way is kept but not recorded
as received, and the exit status is 1.";

const STATS_HELP: &str = "Each row: a key of the sysfs file and its value (see ferrofs.rst,
\"Statistics in sysfs\"). Exit status 1 when PATH is not on a mounted ferrofs.";

#[derive(Subcommand)]
enum SubvolumeCommand {
    /// Create an empty subvolume at PATH, in an existing directory
    Create {
        /// The new subvolume: its parent directory and name
        path: PathBuf,
    },
    /// Snapshot the subvolume SOURCE as DEST, or as DEST/NAME-OF-SOURCE when DEST is a directory
    Snapshot {
        /// Make the snapshot read-only
        #[arg(short = 'r', long)]
        readonly: bool,
        /// A subvolume's root directory
        source: PathBuf,
        /// An existing directory, or the new snapshot's path
        dest: PathBuf,
    },
    /// Delete subvolumes (their space is freed in the background)
    Delete {
        /// Subvolumes' root directories
        #[arg(required = true, value_name = "PATH")]
        paths: Vec<PathBuf>,
    },
    /// List the filesystem's subvolumes (needs CAP_SYS_ADMIN)
    #[command(after_help = LIST_HELP)]
    List {
        /// Print a JSON array of objects with the fields of `show --json` and "path"
        #[arg(long)]
        json: bool,
        /// Any file or directory of the filesystem
        path: PathBuf,
    },
    /// Show the subvolume PATH is in
    Show {
        /// Print one JSON object
        #[arg(long)]
        json: bool,
        /// Any file or directory
        path: PathBuf,
    },
    /// Print whether the subvolume PATH is in is read-only: true or false
    GetReadonly {
        /// Any file or directory
        path: PathBuf,
    },
    /// Make a subvolume read-only (true) or writable again (false)
    SetReadonly {
        /// A subvolume's root directory
        path: PathBuf,
        /// true or false
        #[arg(action = ArgAction::Set)]
        readonly: bool,
    },
}

const LIST_HELP: &str = "Each line: ID <id> gen <generation> parent <parent id> top level <parent id> path <path>
The default subvolume (id 5) is the top level and is not listed. A path joins
the subvolume's name under the names of the subvolumes holding it; a name kept
in a directory other than its parent subvolume's root shows that directory as
<dir:INODE>, which the interface does not name.";

#[derive(Subcommand)]
enum DebugCommand {
    /// List every editable field: SPEC VALUE [BOUNDARY VALUES...]
    Fields {
        /// The block device or image file
        #[arg(value_name = DEVICE)]
        device: PathBuf,
    },
    /// Print one field, in hex
    #[command(after_help = SPEC_HELP)]
    Get {
        /// The block device or image file
        #[arg(value_name = DEVICE)]
        device: PathBuf,
        /// The field (see SPEC below)
        spec: String,
    },
    /// Write one field in place and re-seal the block's checksum
    #[command(after_help = SPEC_HELP)]
    Set {
        /// The block device or image file
        #[arg(value_name = DEVICE)]
        device: PathBuf,
        /// The field (see SPEC below)
        spec: String,
        /// The new value, decimal or 0x hex
        #[arg(value_parser = number_arg)]
        value: u64,
    },
}

const DEVICE: &str = "DEVICE|FILE";

const SPEC_HELP: &str = "SPEC: super.F | node.B.header.F | node.B.ptr.I.F | node.B.item.I.header.F |
      node.B.item.I.F | item.TREE.OBJECTID.TYPE.OFFSET.F  (see ferrofs.rst)";

// A value that is not a number is a usage error, reported before the image
// is opened.
fn number_arg(s: &str) -> Result<u64, String> {
    edit::parse_number(s).map_err(|_| "not a number (decimal or 0x hex)".to_string())
}

fn die(msg: &str) -> ! {
    eprintln!("ferrofs: {msg}");
    exit(1)
}

fn show_super(path: &Path) {
    let mut dev = FileDevice::open(path, false).unwrap_or_else(|e| die(&format!("{}: {e}", path.display())));
    let sb = superblock::read_superblock(&mut dev).unwrap_or_else(|e| die(&format!("{}: {e}", path.display())));
    println!("uuid            {}", format_uuid(&sb.uuid));
    println!("label           {}", String::from_utf8_lossy(sb.label()));
    println!("version         {}", sb.version);
    println!("block size      {}", sb.block_size);
    println!("total blocks    {}", sb.total_blocks);
    println!("blocks used     {}", sb.blocks_used);
    println!("generation      {}", sb.generation);
    println!("features        incompat {:#x} ro_compat {:#x} compat {:#x}", sb.incompat, sb.ro_compat, sb.compat);
    println!("root tree       block {} gen {} level {}", sb.root_tree.block, sb.root_tree.generation, sb.root_tree.level);
    println!("log tree        block {} gen {} level {}", sb.log_tree.block, sb.log_tree.generation, sb.log_tree.level);
}

fn dump_tree(path: &Path) {
    let dev = FileDevice::open(path, false).unwrap_or_else(|e| die(&format!("{}: {e}", path.display())));
    let mut fs = Filesystem::mount_with(dev, MountOptions { read_only: true, ..MountOptions::default() })
        .unwrap_or_else(|e| die(&format!("{}: {e}", path.display())));
    let mut out = String::new();
    if let Err(e) = fs.dump(&mut out) {
        print!("{out}");
        die(&format!("{}: dump stopped: {e}", path.display()));
    }
    let _ = std::io::stdout().write_all(out.as_bytes());
}

fn open_rw(path: &Path, write: bool) -> FileDevice {
    FileDevice::open(path, write).unwrap_or_else(|e| die(&format!("{}: {e}", path.display())))
}

/// Lists every editable field with its value and the boundary values a
/// hostile-image test writes into it.
fn debug_fields(path: &Path) {
    let mut dev = open_rw(path, false);
    let sb = superblock::read_superblock(&mut dev).unwrap_or_else(|e| die(&format!("{}: {e}", path.display())));
    let targets = edit::targets(&mut dev).unwrap_or_else(|e| die(&format!("{}: {e}", path.display())));
    let mut out = String::new();
    for t in targets.iter() {
        out.push_str(&format!("{t} {:#x}", t.value));
        for v in t.boundary_values(sb.total_blocks, sb.block_size).iter() {
            out.push_str(&format!(" {v:#x}"));
        }
        out.push('\n');
    }
    let _ = std::io::stdout().write_all(out.as_bytes());
}

fn debug_get_set(path: &Path, spec: &str, value: Option<u64>) {
    let mut dev = open_rw(path, value.is_some());
    let (place, field) = edit::resolve(&mut dev, spec).unwrap_or_else(|e| die(&format!("{spec}: {e}")));
    match value {
        None => match edit::get(&mut dev, place, &field) {
            Ok(v) => println!("{v:#x}"),
            Err(e) => die(&format!("{spec}: {e}")),
        },
        Some(v) => {
            if let Err(e) = edit::set(&mut dev, place, &field, v) {
                die(&format!("{spec}: {e}"));
            }
        }
    }
}

fn debug(cmd: DebugCommand) {
    match cmd {
        DebugCommand::Fields { device } => debug_fields(&device),
        DebugCommand::Get { device, spec } => debug_get_set(&device, &spec, None),
        DebugCommand::Set { device, spec, value } => debug_get_set(&device, &spec, Some(value)),
    }
}

fn subvolume(cmd: SubvolumeCommand) {
    let result = match cmd {
        SubvolumeCommand::Create { path } => subvolume::create(&path),
        SubvolumeCommand::Snapshot { readonly, source, dest } => subvolume::snapshot(&source, &dest, readonly),
        SubvolumeCommand::Delete { paths } => {
            // Every path is tried; the status says whether any failed.
            let mut failed = false;
            for path in &paths {
                if let Err(failure) = subvolume::delete(path) {
                    eprintln!("ferrofs: {failure}");
                    failed = true;
                }
            }
            if failed {
                exit(1)
            }
            Ok(())
        }
        SubvolumeCommand::List { json, path } => subvolume::list(&path, json),
        SubvolumeCommand::Show { json, path } => subvolume::show(&path, json),
        SubvolumeCommand::GetReadonly { path } => subvolume::get_readonly(&path),
        SubvolumeCommand::SetReadonly { path, readonly } => subvolume::set_readonly(&path, readonly),
    };
    if let Err(failure) = result {
        die(&failure.to_string());
    }
}

fn receive_cmd(file: Option<PathBuf>, dump: bool, format: DumpFormatArg, opts: receive::ReceiveOptions, dir: Option<PathBuf>) {
    let input: Box<dyn std::io::Read> = match &file {
        Some(f) => {
            Box::new(std::fs::File::open(f).unwrap_or_else(|e| die(&format!("receive: {}: {}", f.display(), ferrofs_tools::strerror(&e)))))
        }
        None => Box::new(std::io::stdin().lock()),
    };
    let input = std::io::BufReader::with_capacity(1 << 20, input);
    let result = if dump {
        let format = match format {
            DumpFormatArg::Current => DumpFormat::Current,
            DumpFormatArg::Progs6_2 => DumpFormat::Progs6_2,
        };
        receive::dump(input, std::io::BufWriter::new(std::io::stdout().lock()), format)
    } else {
        let dir = dir.expect("clap requires DIR without --dump");
        // A signal ends the receive as a stream that broke off: the partial
        // subvolume is removed, or kept with its resume token.
        if let Err(e) = ferrofs_tools::posix::stop_on_signals() {
            die(&format!("receive: catching signals: {}", ferrofs_tools::strerror(&e)));
        }
        receive::receive(input, &dir, opts).map(|warnings| warnings.iter().for_each(|w| eprintln!("ferrofs receive: {w}")))
    };
    if let Err(e) = result {
        die(&format!("receive: {e}"));
    }
}

fn main() {
    let command = Cli::parse().command;
    if matches!(command, Command::ShowSuper { .. } | Command::DumpTree { .. } | Command::Debug(_) | Command::Stats { .. }) {
        ferrofs_tools::posix::end_quietly_on_closed_pipe();
    }
    match command {
        Command::ShowSuper { device } => show_super(&device),
        Command::DumpTree { device } => dump_tree(&device),
        Command::Debug(cmd) => debug(cmd),
        Command::Subvolume(cmd) => subvolume(cmd),
        Command::Send { parent, clone_sources, proto, file, no_data, quiet, resume, snapshot } => {
            let opts = send::SendOptions { snapshot, parent, clone_sources, proto, file, no_data, quiet, resume };
            if let Err(e) = send::send(&opts) {
                die(&format!("send: {e}"));
            }
        }
        Command::Receive { token: Some(partial), .. } => match receive::resume::token_at(&partial) {
            Ok(t) => println!("{t}"),
            Err(e) => die(&format!("receive: {e}")),
        },
        Command::Receive { file, dump, dump_format, keep_partial, max_errors, dir, token: None } => {
            receive_cmd(file, dump, dump_format, receive::ReceiveOptions { keep_partial, max_errors }, dir)
        }
        Command::Stats { json, path } => match stats::stats(&path, json, &stats::Roots::default()) {
            Ok(text) => print!("{text}"),
            Err(msg) => die(&msg),
        },
    }
}

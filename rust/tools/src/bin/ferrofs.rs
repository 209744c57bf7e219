// SPDX-License-Identifier: GPL-2.0
//! ferrofs: the command-line tool (show-super, dump-tree; later send,
//! receive, subvolume, snapshot, stats).

use ferrofs_core::fs::{Filesystem, MountOptions};
use ferrofs_core::superblock;
use ferrofs_tools::{format_uuid, FileDevice};
use std::io::Write;
use std::path::Path;
use std::process::exit;

const USAGE: &str = "usage: ferrofs show-super DEVICE|FILE
       ferrofs dump-tree DEVICE|FILE";

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

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["show-super", dev] => show_super(Path::new(dev)),
        ["dump-tree", dev] => dump_tree(Path::new(dev)),
        ["-h" | "--help"] => println!("{USAGE}"),
        _ => die(USAGE),
    }
}

// SPDX-License-Identifier: GPL-2.0
//! ferrofs: the command-line tool (show-super, dump-tree, and the `debug`
//! field editor for crafted-image tests; later send, receive, subvolume,
//! snapshot, stats).

use ferrofs_core::edit;
use ferrofs_core::fs::{Filesystem, MountOptions};
use ferrofs_core::superblock;
use ferrofs_tools::{format_uuid, FileDevice};
use std::io::Write;
use std::path::Path;
use std::process::exit;

const USAGE: &str = "usage: ferrofs show-super DEVICE|FILE
       ferrofs dump-tree DEVICE|FILE
       ferrofs debug fields DEVICE|FILE     every editable field: SPEC VALUE [BOUNDARY VALUES...]
       ferrofs debug get DEVICE|FILE SPEC
       ferrofs debug set DEVICE|FILE SPEC VALUE   writes the field, re-seals the checksum

SPEC: super.F | node.B.header.F | node.B.ptr.I.F | node.B.item.I.header.F |
      node.B.item.I.F | item.TREE.OBJECTID.TYPE.OFFSET.F  (see ferrofs.rst)";

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

fn parse_value(s: &str) -> u64 {
    edit::parse_number(s).unwrap_or_else(|_| die(&format!("{s}: not a number")))
}

fn debug_get_set(path: &Path, spec: &str, value: Option<&str>) {
    let mut dev = open_rw(path, value.is_some());
    let (place, field) = edit::resolve(&mut dev, spec).unwrap_or_else(|e| die(&format!("{spec}: {e}")));
    match value {
        None => match edit::get(&mut dev, place, &field) {
            Ok(v) => println!("{v:#x}"),
            Err(e) => die(&format!("{spec}: {e}")),
        },
        Some(v) => {
            if let Err(e) = edit::set(&mut dev, place, &field, parse_value(v)) {
                die(&format!("{spec}: {e}"));
            }
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["show-super", dev] => show_super(Path::new(dev)),
        ["dump-tree", dev] => dump_tree(Path::new(dev)),
        ["debug", "fields", dev] => debug_fields(Path::new(dev)),
        ["debug", "get", dev, spec] => debug_get_set(Path::new(dev), spec, None),
        ["debug", "set", dev, spec, value] => debug_get_set(Path::new(dev), spec, Some(value)),
        ["-h" | "--help"] => println!("{USAGE}"),
        _ => die(USAGE),
    }
}

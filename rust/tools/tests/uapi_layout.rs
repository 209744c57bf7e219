// SPDX-License-Identifier: GPL-2.0
//! The Rust definition of the ioctl interface (`rust/core/src/uapi.rs`,
//! shared by the tools and the kernel module) against the header it
//! follows: a C program compiled with the system `cc` against
//! `include/uapi/linux/ferrofs.h` prints the size and alignment of every
//! structure, the offset and size of every field, every constant and every
//! request number; the same lines are built from the Rust definitions, and
//! the two must be equal.
//!
//! Field names come from the Rust side; the C program only compiles if the
//! header has each of them, and equal structure sizes leave no room for a
//! field the Rust side lacks.

use ferrofs_core::uapi::{self, ReceivedSubvolArgs, SendArgs, SubvolInfo, SubvolList, Timespec, VolArgs};
use std::fmt::Write as _;
use std::mem::{align_of, offset_of, size_of};
use std::path::{Path, PathBuf};
use std::process::Command;

/// One structure: its C name, size and alignment, and per field its name,
/// offset and size.
struct Layout {
    c_name: &'static str,
    size: usize,
    align: usize,
    fields: Vec<(&'static str, usize, usize)>,
}

/// The size of the field `get` reaches, without a value of the structure.
fn field_size<S, F>(_get: fn(&S) -> &F) -> usize {
    size_of::<F>()
}

macro_rules! layout {
    ($c_name:literal, $ty:ty { $($field:ident),* $(,)? }) => {
        Layout {
            c_name: $c_name,
            size: size_of::<$ty>(),
            align: align_of::<$ty>(),
            fields: vec![$((stringify!($field), offset_of!($ty, $field), field_size(|s: &$ty| &s.$field))),*],
        }
    };
}

fn layouts() -> Vec<Layout> {
    vec![
        layout!("ferrofs_ioctl_vol_args", VolArgs { fd, flags, subvolid, reserved, name }),
        layout!("ferrofs_ioctl_timespec", Timespec { sec, nsec, reserved }),
        layout!(
            "ferrofs_ioctl_subvol_info",
            SubvolInfo {
                subvolid,
                parent_id,
                dirid,
                flags,
                generation,
                ctransid,
                otransid,
                stransid,
                rtransid,
                uuid,
                parent_uuid,
                received_uuid,
                ctime,
                otime,
                stime,
                rtime,
                reserved,
                name,
            }
        ),
        layout!("ferrofs_ioctl_subvol_list", SubvolList { start_id, count, flags, entries, reserved }),
        layout!("ferrofs_ioctl_received_subvol_args", ReceivedSubvolArgs { uuid, stransid, rtransid, stime, rtime, flags, reserved }),
        layout!(
            "ferrofs_ioctl_send_args",
            SendArgs { send_fd, clone_sources_count, clone_sources, parent_root, flags, version, resume_crc, resume_commands, reserved }
        ),
    ]
}

/// Every constant and request number: its C macro and the Rust value.
fn constants() -> Vec<(&'static str, u64)> {
    vec![
        ("FERROFS_IOCTL_MAGIC", uapi::IOCTL_MAGIC.into()),
        ("FERROFS_SUBVOL_NAME_MAX", uapi::SUBVOL_NAME_MAX as u64),
        ("FERROFS_SUBVOL_RDONLY", uapi::SUBVOL_RDONLY),
        ("FERROFS_FS_TREE_OBJECTID", uapi::FS_TREE_OBJECTID),
        ("FERROFS_LIST_MORE", uapi::LIST_MORE.into()),
        ("FERROFS_IOC_SUBVOL_CREATE", uapi::IOC_SUBVOL_CREATE.into()),
        ("FERROFS_IOC_SNAP_CREATE", uapi::IOC_SNAP_CREATE.into()),
        ("FERROFS_IOC_SUBVOL_DELETE", uapi::IOC_SUBVOL_DELETE.into()),
        ("FERROFS_IOC_SUBVOL_GETFLAGS", uapi::IOC_SUBVOL_GETFLAGS.into()),
        ("FERROFS_IOC_SUBVOL_SETFLAGS", uapi::IOC_SUBVOL_SETFLAGS.into()),
        ("FERROFS_IOC_GET_SUBVOL_INFO", uapi::IOC_GET_SUBVOL_INFO.into()),
        ("FERROFS_IOC_LIST_SUBVOLS", uapi::IOC_LIST_SUBVOLS.into()),
        ("FERROFS_SEND_FLAG_NO_FILE_DATA", uapi::SEND_FLAG_NO_FILE_DATA),
        ("FERROFS_SEND_FLAG_OMIT_STREAM_HEADER", uapi::SEND_FLAG_OMIT_STREAM_HEADER),
        ("FERROFS_SEND_FLAG_OMIT_END_CMD", uapi::SEND_FLAG_OMIT_END_CMD),
        ("FERROFS_SEND_FLAG_VERSION", uapi::SEND_FLAG_VERSION),
        ("FERROFS_SEND_FLAG_RESUME", uapi::SEND_FLAG_RESUME),
        ("FERROFS_SEND_MAX_CLONE_SOURCES", uapi::SEND_MAX_CLONE_SOURCES),
        ("FERROFS_IOC_SEND", uapi::IOC_SEND.into()),
        ("FERROFS_IOC_SET_RECEIVED_SUBVOL", uapi::IOC_SET_RECEIVED_SUBVOL.into()),
    ]
}

/// The lines both sides print.
fn rust_report() -> String {
    let mut out = String::new();
    for l in layouts() {
        writeln!(out, "struct {} size {} align {}", l.c_name, l.size, l.align).unwrap();
        for (field, offset, size) in &l.fields {
            writeln!(out, "{}.{field} offset {offset} size {size}", l.c_name).unwrap();
        }
    }
    for (name, value) in constants() {
        writeln!(out, "{name} {value:#x}").unwrap();
    }
    out
}

/// A C program printing `rust_report`'s lines from the header.
fn c_program(header: &Path) -> String {
    let mut c = format!("#include <stdio.h>\n#include <stddef.h>\n#include \"{}\"\nint main(void)\n{{\n", header.display());
    for l in layouts() {
        let ty = format!("struct {}", l.c_name);
        writeln!(c, "\tprintf(\"{ty} size %zu align %zu\\n\", sizeof({ty}), _Alignof({ty}));").unwrap();
        for (field, _, _) in &l.fields {
            writeln!(
                c,
                "\tprintf(\"{}.{field} offset %zu size %zu\\n\", offsetof({ty}, {field}), sizeof((({ty} *)0)->{field}));",
                l.c_name
            )
            .unwrap();
        }
    }
    for (name, _) in constants() {
        writeln!(c, "\tprintf(\"{name} %#llx\\n\", (unsigned long long)({name}));").unwrap();
    }
    c.push_str("\treturn 0;\n}\n");
    c
}

/// Whether a C compiler named `cc` runs at all.
fn have_cc() -> bool {
    Command::new("cc").arg("--version").output().is_ok_and(|o| o.status.success())
}

#[test]
fn rust_definitions_match_the_header() {
    if !have_cc() {
        eprintln!("SKIP rust_definitions_match_the_header: no C compiler (`cc`) to compile the header with");
        return;
    }
    let header = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../include/uapi/linux/ferrofs.h");
    let header = header.canonicalize().unwrap_or_else(|e| panic!("{}: {e}", header.display()));
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("uapi-layout-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (source, program) = (dir.join("layout.c"), dir.join("layout"));
    std::fs::write(&source, c_program(&header)).unwrap();
    let cc = Command::new("cc").args(["-std=c11", "-Wall", "-Werror", "-o"]).arg(&program).arg(&source).output().unwrap();
    assert!(cc.status.success(), "cc failed on {}:\n{}", source.display(), String::from_utf8_lossy(&cc.stderr));
    let run = Command::new(&program).output().unwrap();
    assert!(run.status.success());
    let from_c = String::from_utf8(run.stdout).unwrap();
    let from_rust = rust_report();
    for (c_line, rust_line) in from_c.lines().zip(from_rust.lines()) {
        assert_eq!(rust_line, c_line, "rust/core/src/uapi.rs differs from {}", header.display());
    }
    assert_eq!(from_rust, from_c);
    let _ = std::fs::remove_dir_all(&dir);
}

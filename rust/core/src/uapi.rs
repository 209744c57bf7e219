// SPDX-License-Identifier: GPL-2.0
//! The ferrofs ioctl interface on the Rust side: every structure, flag and
//! request number of `include/uapi/linux/ferrofs.h`, field for field.
//!
//! The header is the contract; this file is its one Rust definition, used
//! by the kernel adapter (`rust/vfs/ioctl.rs`) and by the tools
//! (`ferrofs subvolume`), so the two cannot drift apart. The tools' test
//! `rust/tools/tests/uapi_layout.rs` compiles a C program against the
//! header and compares every size, offset, constant and request number with
//! this file. Names are the header's without the `ferrofs_ioctl_` /
//! `FERROFS_` prefix; field names are the header's unchanged, so the two
//! read side by side. `char` arrays are `u8` here: the bytes are what
//! matters, and `char`'s signedness differs between architectures.
//!
//! Plain data only: the user copies and the ioctl calls themselves are the
//! kernel adapter's and the tools' (the core holds no unsafe code).

use core::mem::size_of;

/// `FERROFS_IOCTL_MAGIC`: the type byte of every ferrofs request number.
pub const IOCTL_MAGIC: u8 = 0xf5;
/// `FERROFS_SUBVOL_NAME_MAX`: the longest subvolume name, in bytes.
pub const SUBVOL_NAME_MAX: usize = 255;
/// `FERROFS_SUBVOL_RDONLY`: the subvolume is read-only.
pub const SUBVOL_RDONLY: u64 = 1 << 1;
/// `FERROFS_FS_TREE_OBJECTID`: the default subvolume, the one mkfs makes.
pub const FS_TREE_OBJECTID: u64 = 5;
/// `FERROFS_LIST_MORE`: `LIST_SUBVOLS` has more entries past this batch.
pub const LIST_MORE: u32 = 1 << 0;

/// `struct ferrofs_ioctl_vol_args`: create, snapshot and delete.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct VolArgs {
    /// Snapshot source (`SNAP_CREATE`); else 0.
    pub fd: i64,
    /// `SUBVOL_RDONLY` (`SNAP_CREATE`); else 0.
    pub flags: u64,
    /// Out: the new subvolume's id.
    pub subvolid: u64,
    /// Must be zero.
    pub reserved: [u64; 5],
    /// NUL-terminated.
    pub name: [u8; SUBVOL_NAME_MAX + 1],
}

/// `struct ferrofs_ioctl_timespec`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Timespec {
    pub sec: i64,
    pub nsec: u32,
    pub reserved: u32,
}

/// `struct ferrofs_ioctl_subvol_info`: what `GET_SUBVOL_INFO` returns and
/// `LIST_SUBVOLS` fills an array of.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct SubvolInfo {
    pub subvolid: u64,
    /// Subvolume holding its name; 0 for the default.
    pub parent_id: u64,
    /// Directory in the parent holding the name.
    pub dirid: u64,
    /// `SUBVOL_RDONLY`.
    pub flags: u64,
    /// Generation of its tree's root.
    pub generation: u64,
    /// Transaction of the last change.
    pub ctransid: u64,
    /// Transaction that created it.
    pub otransid: u64,
    /// Sender's transaction (received subvolumes).
    pub stransid: u64,
    /// Transaction that received it.
    pub rtransid: u64,
    pub uuid: [u8; 16],
    /// The snapshot's source; zero if none.
    pub parent_uuid: [u8; 16],
    pub received_uuid: [u8; 16],
    pub ctime: Timespec,
    pub otime: Timespec,
    pub stime: Timespec,
    pub rtime: Timespec,
    pub reserved: [u64; 8],
    /// NUL-terminated; empty for the default subvolume.
    pub name: [u8; SUBVOL_NAME_MAX + 1],
}

/// `struct ferrofs_ioctl_subvol_list`: one batch of `LIST_SUBVOLS`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct SubvolList {
    /// In: the first id wanted.
    pub start_id: u64,
    /// In: room in `entries`; out: entries written.
    pub count: u32,
    /// In: zero; out: `LIST_MORE`.
    pub flags: u32,
    /// In: user pointer to `SubvolInfo[count]`.
    pub entries: u64,
    /// Must be zero.
    pub reserved: [u64; 4],
}

/// `FERROFS_SEND_FLAG_NO_FILE_DATA`: WRITEs become UPDATE_EXTENTs.
pub const SEND_FLAG_NO_FILE_DATA: u64 = 0x1;
/// `FERROFS_SEND_FLAG_OMIT_STREAM_HEADER`: no stream header.
pub const SEND_FLAG_OMIT_STREAM_HEADER: u64 = 0x2;
/// `FERROFS_SEND_FLAG_OMIT_END_CMD`: no END command.
pub const SEND_FLAG_OMIT_END_CMD: u64 = 0x4;
/// `FERROFS_SEND_FLAG_VERSION`: `version` says the stream version.
pub const SEND_FLAG_VERSION: u64 = 0x8;
/// `FERROFS_SEND_FLAG_RESUME`: `resume_commands` is valid.
pub const SEND_FLAG_RESUME: u64 = 0x10;
/// `FERROFS_SEND_MAX_CLONE_SOURCES`: the most clone sources one call takes.
pub const SEND_MAX_CLONE_SOURCES: u64 = 64;

/// `struct ferrofs_ioctl_send_args`: `SEND`, modelled on btrfs's.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct SendArgs {
    /// Where the stream goes: a file or pipe open for writing.
    pub send_fd: i64,
    /// Entries in `clone_sources`.
    pub clone_sources_count: u64,
    /// User pointer to `__u64[clone_sources_count]`: subvolume ids.
    pub clone_sources: u64,
    /// The parent snapshot's subvolume id; 0 for a full send.
    pub parent_root: u64,
    /// `SEND_FLAG_*`.
    pub flags: u64,
    /// Stream version (1 or 2) with `SEND_FLAG_VERSION`.
    pub version: u32,
    /// With `SEND_FLAG_RESUME`: the CRC in the header of the last command
    /// the receiver applied (checked against this send's); else zero.
    pub resume_crc: u32,
    /// With `SEND_FLAG_RESUME`: commands after SUBVOL/SNAPSHOT the
    /// receiver applied already, left out of this stream; else zero.
    pub resume_commands: u64,
    /// Must be zero.
    pub reserved: [u64; 3],
}

/// `struct ferrofs_ioctl_received_subvol_args`: `SET_RECEIVED_SUBVOL`,
/// modelled on btrfs's.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct ReceivedSubvolArgs {
    /// In: the sender's UUID of the subvolume.
    pub uuid: [u8; 16],
    /// In: the sender's transid.
    pub stransid: u64,
    /// Out: the transaction that recorded it.
    pub rtransid: u64,
    /// In: when it was sent.
    pub stime: Timespec,
    /// Out: when it was recorded.
    pub rtime: Timespec,
    /// Must be zero.
    pub flags: u64,
    /// Must be zero.
    pub reserved: [u64; 16],
}

// The sizes the header gives, which the request numbers encode: a field
// added or resized here changes every number below, and the build stops.
const _: () = assert!(size_of::<VolArgs>() == 320);
const _: () = assert!(size_of::<SubvolInfo>() == 504);
const _: () = assert!(size_of::<SubvolList>() == 56);
const _: () = assert!(size_of::<SendArgs>() == 80);
const _: () = assert!(size_of::<ReceivedSubvolArgs>() == 200);
// The flags are the core's send flags.
const _: () = assert!(SEND_FLAG_NO_FILE_DATA == crate::send::SEND_NO_FILE_DATA);
const _: () = assert!(SEND_FLAG_OMIT_STREAM_HEADER == crate::send::SEND_OMIT_STREAM_HEADER);
const _: () = assert!(SEND_FLAG_OMIT_END_CMD == crate::send::SEND_OMIT_END_CMD);
const _: () = assert!(SEND_FLAG_VERSION == crate::send::SEND_VERSION);
const _: () = assert!(SEND_FLAG_RESUME == crate::send::SEND_RESUME);
// A subvolume's name is a directory entry of its parent.
const _: () = assert!(SUBVOL_NAME_MAX == crate::format::NAME_MAX);

impl VolArgs {
    /// Arguments with every field zero, as the header requires of the
    /// fields a call does not use.
    pub const fn zeroed() -> Self {
        VolArgs { fd: 0, flags: 0, subvolid: 0, reserved: [0; 5], name: [0; SUBVOL_NAME_MAX + 1] }
    }

    /// Zeroed arguments naming `name`, or `None` when it does not fit
    /// (longer than `SUBVOL_NAME_MAX` bytes) or holds a NUL byte, which
    /// would cut it short.
    pub fn with_name(name: &[u8]) -> Option<Self> {
        if name.len() > SUBVOL_NAME_MAX || name.contains(&0) {
            return None;
        }
        let mut args = Self::zeroed();
        args.name[..name.len()].copy_from_slice(name);
        Some(args)
    }
}

impl SubvolInfo {
    /// All zero: what the kernel overwrites.
    pub const fn zeroed() -> Self {
        const ZERO_TIME: Timespec = Timespec { sec: 0, nsec: 0, reserved: 0 };
        SubvolInfo {
            subvolid: 0,
            parent_id: 0,
            dirid: 0,
            flags: 0,
            generation: 0,
            ctransid: 0,
            otransid: 0,
            stransid: 0,
            rtransid: 0,
            uuid: [0; 16],
            parent_uuid: [0; 16],
            received_uuid: [0; 16],
            ctime: ZERO_TIME,
            otime: ZERO_TIME,
            stime: ZERO_TIME,
            rtime: ZERO_TIME,
            reserved: [0; 8],
            name: [0; SUBVOL_NAME_MAX + 1],
        }
    }

    /// The name's bytes, up to its NUL (all of the array if the kernel
    /// left none).
    pub fn name_bytes(&self) -> &[u8] {
        let end = self.name.iter().position(|&b| b == 0).unwrap_or(self.name.len());
        &self.name[..end]
    }
}

/// Request numbers are built as `<asm-generic/ioctl.h>` builds them: the
/// direction, the argument's size, the type byte and the command number.
/// The architectures with their own `<asm/ioctl.h>` use 13 size bits and a
/// different write bit; the layout test catches any other difference.
#[cfg(any(
    target_arch = "powerpc",
    target_arch = "powerpc64",
    target_arch = "mips",
    target_arch = "mips32r6",
    target_arch = "mips64",
    target_arch = "mips64r6",
    target_arch = "sparc",
    target_arch = "sparc64"
))]
mod ioc {
    pub const SIZE_BITS: u32 = 13;
    pub const WRITE: u32 = 4;
    pub const READ: u32 = 2;
}
#[cfg(not(any(
    target_arch = "powerpc",
    target_arch = "powerpc64",
    target_arch = "mips",
    target_arch = "mips32r6",
    target_arch = "mips64",
    target_arch = "mips64r6",
    target_arch = "sparc",
    target_arch = "sparc64"
)))]
mod ioc {
    pub const SIZE_BITS: u32 = 14;
    pub const WRITE: u32 = 1;
    pub const READ: u32 = 2;
}

/// `_IOC(dir, FERROFS_IOCTL_MAGIC, nr, size)`.
const fn ferrofs_ioc(dir: u32, nr: u8, size: usize) -> u32 {
    const NR_BITS: u32 = 8;
    const TYPE_BITS: u32 = 8;
    const SIZE_SHIFT: u32 = NR_BITS + TYPE_BITS;
    // Evaluated at compile time for every constant below: a structure too
    // big for the size field stops the build.
    assert!(size < 1 << ioc::SIZE_BITS);
    (dir << (SIZE_SHIFT + ioc::SIZE_BITS)) | ((size as u32) << SIZE_SHIFT) | ((IOCTL_MAGIC as u32) << NR_BITS) | nr as u32
}

const fn ior(nr: u8, size: usize) -> u32 {
    ferrofs_ioc(ioc::READ, nr, size)
}

const fn iow(nr: u8, size: usize) -> u32 {
    ferrofs_ioc(ioc::WRITE, nr, size)
}

const fn iowr(nr: u8, size: usize) -> u32 {
    ferrofs_ioc(ioc::READ | ioc::WRITE, nr, size)
}

/// `FERROFS_IOC_SUBVOL_CREATE`.
pub const IOC_SUBVOL_CREATE: u32 = iowr(1, size_of::<VolArgs>());
/// `FERROFS_IOC_SNAP_CREATE`.
pub const IOC_SNAP_CREATE: u32 = iowr(2, size_of::<VolArgs>());
/// `FERROFS_IOC_SUBVOL_DELETE`.
pub const IOC_SUBVOL_DELETE: u32 = iow(3, size_of::<VolArgs>());
/// `FERROFS_IOC_SUBVOL_GETFLAGS`: the argument is a `__u64`.
pub const IOC_SUBVOL_GETFLAGS: u32 = ior(4, size_of::<u64>());
/// `FERROFS_IOC_SUBVOL_SETFLAGS`: the argument is a `__u64`.
pub const IOC_SUBVOL_SETFLAGS: u32 = iow(5, size_of::<u64>());
/// `FERROFS_IOC_GET_SUBVOL_INFO`.
pub const IOC_GET_SUBVOL_INFO: u32 = ior(6, size_of::<SubvolInfo>());
/// `FERROFS_IOC_LIST_SUBVOLS`.
pub const IOC_LIST_SUBVOLS: u32 = iowr(7, size_of::<SubvolList>());
/// `FERROFS_IOC_SEND`.
pub const IOC_SEND: u32 = iow(8, size_of::<SendArgs>());
/// `FERROFS_IOC_SET_RECEIVED_SUBVOL`.
pub const IOC_SET_RECEIVED_SUBVOL: u32 = iowr(9, size_of::<ReceivedSubvolArgs>());

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fit_or_are_refused() {
        let args = VolArgs::with_name(b"snap").unwrap();
        assert_eq!(&args.name[..5], b"snap\0");
        assert!(VolArgs::with_name(&[b'n'; SUBVOL_NAME_MAX]).is_some_and(|a| a.name[SUBVOL_NAME_MAX] == 0));
        assert!(VolArgs::with_name(&[b'n'; SUBVOL_NAME_MAX + 1]).is_none());
        assert!(VolArgs::with_name(b"a\0b").is_none());
    }

    #[test]
    fn name_stops_at_nul_or_the_array_end() {
        let mut info = SubvolInfo::zeroed();
        assert_eq!(info.name_bytes(), b"");
        info.name[..3].copy_from_slice(b"abc");
        assert_eq!(info.name_bytes(), b"abc");
        info.name = [b'x'; SUBVOL_NAME_MAX + 1];
        assert_eq!(info.name_bytes().len(), SUBVOL_NAME_MAX + 1);
    }
}

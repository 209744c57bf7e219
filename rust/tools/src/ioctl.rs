// SPDX-License-Identifier: GPL-2.0
//! The tools' only unsafe code: the ferrofs ioctls of `ferrofs_core::uapi`,
//! sent only to files that fstatfs has shown to be on ferrofs.
//!
//! Why the check comes first: a request number means something only to the
//! code that defined it. On another filesystem, or on a device node (whose
//! ioctls go to its driver, wherever the node lives), `0xf5` numbers could
//! mean anything, so `FerrofsFile` holds only regular files and directories
//! of a ferrofs mount, and every ioctl is a method of it.

#![expect(unsafe_code, reason = "this module is where the tools' unsafe code lives")]
#![deny(clippy::undocumented_unsafe_blocks, unsafe_op_in_unsafe_fn)]

use ferrofs_core::superblock::STATFS_MAGIC;
use ferrofs_core::uapi::{self, SubvolInfo, SubvolList, VolArgs};
use std::fmt;
use std::fs::{File, Metadata, OpenOptions};
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// What the command needs the path to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A directory (the parent of a name, a snapshot source).
    Directory,
    /// Any regular file or directory (which names the subvolume it is in).
    FileOrDirectory,
}

/// Why a path could not be opened as a `FerrofsFile`.
#[derive(Debug)]
pub enum OpenError {
    /// open(2), stat(2) or fstatfs(2) failed.
    Io(io::Error),
    /// A device node, FIFO or socket: never opened.
    NotFileOrDirectory,
    /// On another filesystem.
    NotFerrofs,
}

impl fmt::Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OpenError::Io(e) => f.write_str(&crate::strerror(e)),
            OpenError::NotFileOrDirectory => f.write_str("not a regular file or directory"),
            OpenError::NotFerrofs => f.write_str("not on a ferrofs filesystem"),
        }
    }
}

/// An open regular file or directory on a mounted ferrofs.
///
/// # Invariants
/// `file` is a regular file or a directory, and fstatfs reported ferrofs's
/// `f_type` for it: its file operations are ferrofs's, so the kernel hands a
/// `FERROFS_IOC_*` request to the ferrofs ioctl handler, which reads and
/// writes the argument as `include/uapi/linux/ferrofs.h` describes it.
pub struct FerrofsFile {
    file: File,
}

/// One batch of `list_subvols`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ListBatch {
    /// Entries written, from the start of the slice.
    pub count: usize,
    /// More subvolumes follow the last one written.
    pub more: bool,
}

fn is_file_or_directory(meta: &Metadata) -> bool {
    meta.is_file() || meta.is_dir()
}

impl FerrofsFile {
    /// Opens `path` (following symlinks) read-only.
    pub fn open(path: &Path, kind: Kind) -> Result<Self, OpenError> {
        // Look before opening: opening a device node can have effects of
        // its own (a tape rewinds) and opening a FIFO blocks.
        let meta = std::fs::metadata(path).map_err(OpenError::Io)?;
        if !is_file_or_directory(&meta) {
            return Err(OpenError::NotFileOrDirectory);
        }
        let mut flags = libc::O_NOCTTY | libc::O_NONBLOCK;
        if kind == Kind::Directory {
            flags |= libc::O_DIRECTORY;
        }
        let file = OpenOptions::new().read(true).custom_flags(flags).open(path).map_err(OpenError::Io)?;
        // The path may have been replaced between the look and the open:
        // what counts is the file actually open.
        if !is_file_or_directory(&file.metadata().map_err(OpenError::Io)?) {
            return Err(OpenError::NotFileOrDirectory);
        }
        if statfs_type(&file).map_err(OpenError::Io)? != i128::from(STATFS_MAGIC) {
            return Err(OpenError::NotFerrofs);
        }
        // INVARIANT: a regular file or directory, on ferrofs, checked above
        // on the open file itself.
        Ok(FerrofsFile { file })
    }

    /// The open file (for fstat).
    pub fn file(&self) -> &File {
        &self.file
    }

    /// Sends `request` with `arg`, returning errno as an `io::Error`.
    ///
    /// # Safety
    /// `request` must be the `FERROFS_IOC_*` number whose argument is a `T`
    /// (`ferrofs_core::uapi`, checked against the header by
    /// `tests/uapi_layout.rs`), and any user pointer inside `arg` must point
    /// at memory the kernel may write as that request describes, for the
    /// duration of the call.
    unsafe fn ioctl<T>(&self, request: u32, arg: &mut T) -> io::Result<()> {
        // The request parameter is `unsigned long` in glibc and `int` in
        // musl (`libc::Ioctl`); `as` keeps the 32 bits either way.
        let request = request as libc::Ioctl;
        // SAFETY: the fd is open (borrowed) and on ferrofs (invariant), so
        // by this function's contract the kernel touches only the `T` at
        // `arg` (an exclusive borrow) and memory the caller vouched for.
        let ret = unsafe { libc::ioctl(self.file.as_raw_fd(), request, arg as *mut T) };
        if ret < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    }

    /// `SUBVOL_CREATE` on this directory: an empty subvolume `name`.
    /// Returns the new subvolume's id.
    pub fn create_subvolume(&self, name: &[u8]) -> io::Result<u64> {
        let mut args = vol_args(name)?;
        // SAFETY: IOC_SUBVOL_CREATE takes a VolArgs, which holds no pointer.
        unsafe { self.ioctl(uapi::IOC_SUBVOL_CREATE, &mut args)? };
        Ok(args.subvolid)
    }

    /// `SNAP_CREATE` on this directory: snapshot the subvolume `source` is
    /// in as `name`, with `flags` (`uapi::SUBVOL_RDONLY`). Returns the new
    /// subvolume's id.
    pub fn create_snapshot(&self, source: &FerrofsFile, name: &[u8], flags: u64) -> io::Result<u64> {
        let mut args = vol_args(name)?;
        args.fd = source.file.as_raw_fd().into();
        args.flags = flags;
        // SAFETY: IOC_SNAP_CREATE takes a VolArgs, which holds no pointer;
        // its fd stays open for the call, borrowed from `source`.
        unsafe { self.ioctl(uapi::IOC_SNAP_CREATE, &mut args)? };
        Ok(args.subvolid)
    }

    /// `SUBVOL_DELETE` on this directory: delete subvolume `name`.
    pub fn delete_subvolume(&self, name: &[u8]) -> io::Result<()> {
        let mut args = vol_args(name)?;
        // SAFETY: IOC_SUBVOL_DELETE takes a VolArgs, which holds no pointer.
        unsafe { self.ioctl(uapi::IOC_SUBVOL_DELETE, &mut args) }
    }

    /// `SUBVOL_GETFLAGS`: the flags of the subvolume this file is in.
    pub fn subvolume_flags(&self) -> io::Result<u64> {
        let mut flags = 0u64;
        // SAFETY: IOC_SUBVOL_GETFLAGS takes a u64.
        unsafe { self.ioctl(uapi::IOC_SUBVOL_GETFLAGS, &mut flags)? };
        Ok(flags)
    }

    /// `SUBVOL_SETFLAGS`: sets the flags of the subvolume this file is in.
    pub fn set_subvolume_flags(&self, flags: u64) -> io::Result<()> {
        let mut flags = flags;
        // SAFETY: IOC_SUBVOL_SETFLAGS takes a u64.
        unsafe { self.ioctl(uapi::IOC_SUBVOL_SETFLAGS, &mut flags) }
    }

    /// `GET_SUBVOL_INFO`: the subvolume this file is in.
    pub fn subvolume_info(&self) -> io::Result<SubvolInfo> {
        let mut info = SubvolInfo::zeroed();
        // SAFETY: IOC_GET_SUBVOL_INFO takes a SubvolInfo, which holds no
        // pointer.
        unsafe { self.ioctl(uapi::IOC_GET_SUBVOL_INFO, &mut info)? };
        Ok(info)
    }

    /// `LIST_SUBVOLS`: the live subvolumes with ids from `start_id` on, as
    /// many as fit in `entries`.
    pub fn list_subvolumes(&self, start_id: u64, entries: &mut [SubvolInfo]) -> io::Result<ListBatch> {
        let room = u32::try_from(entries.len()).unwrap_or(u32::MAX);
        let mut list = SubvolList {
            start_id,
            count: room,
            // The kernel writes through this address: it must carry the
            // slice's provenance, hence exposed rather than a bare address.
            entries: entries.as_mut_ptr().expose_provenance() as u64,
            ..SubvolList::default()
        };
        // SAFETY: IOC_LIST_SUBVOLS takes a SubvolList; the kernel writes at
        // most `count` (= `room` <= `entries.len()`) SubvolInfo at its one
        // pointer, `entries`: an exclusive borrow, initialised.
        unsafe { self.ioctl(uapi::IOC_LIST_SUBVOLS, &mut list)? };
        if list.count > room {
            return Err(io::Error::other(format!("the kernel reported {} entries in room for {room}", list.count)));
        }
        Ok(ListBatch { count: list.count as usize, more: list.flags & uapi::LIST_MORE != 0 })
    }

    /// `SET_RECEIVED_SUBVOL` on this subvolume root: records that it was
    /// received as `uuid` at the sender's transid `stransid`.
    pub fn set_received_subvolume(&self, uuid: [u8; 16], stransid: u64) -> io::Result<()> {
        let mut args = uapi::ReceivedSubvolArgs { uuid, stransid, ..uapi::ReceivedSubvolArgs::default() };
        // SAFETY: IOC_SET_RECEIVED_SUBVOL takes a ReceivedSubvolArgs, which
        // holds no pointers; the kernel writes only that struct.
        unsafe { self.ioctl(uapi::IOC_SET_RECEIVED_SUBVOL, &mut args) }
    }

    /// `SEND` on this snapshot: writes its stream to `out` (blocking until
    /// the stream is complete). `parent` and `clone_sources` are
    /// subvolume ids; `flags` `uapi::SEND_FLAG_*`.
    /// `resume` and `resume_crc`: the commands the receiver has and the CRC
    /// of the last (with `uapi::SEND_FLAG_RESUME`).
    #[allow(clippy::too_many_arguments)]
    pub fn send(
        &self,
        out: &impl AsRawFd,
        parent: u64,
        clone_sources: &[u64],
        flags: u64,
        version: u32,
        resume: u64,
        resume_crc: u32,
    ) -> io::Result<()> {
        let mut args = uapi::SendArgs {
            send_fd: out.as_raw_fd().into(),
            clone_sources_count: clone_sources.len() as u64,
            // The kernel reads through this address: it carries the slice's
            // provenance.
            clone_sources: clone_sources.as_ptr().expose_provenance() as u64,
            parent_root: parent,
            flags,
            version,
            resume_commands: resume,
            resume_crc,
            ..uapi::SendArgs::default()
        };
        // SAFETY: IOC_SEND takes a SendArgs; the kernel only reads
        // `clone_sources_count` u64s at `clone_sources`, a live borrow, and
        // writes to the descriptor `out`, which the caller owns.
        unsafe { self.ioctl(uapi::IOC_SEND, &mut args) }
    }
}

/// Arguments naming `name`; a name that does not fit is EINVAL (callers
/// check names first, to say what is wrong with them).
fn vol_args(name: &[u8]) -> io::Result<VolArgs> {
    VolArgs::with_name(name).ok_or_else(|| io::Error::from_raw_os_error(libc::EINVAL))
}

/// What fstatfs reports for `file`.
fn statfs(file: &File) -> io::Result<libc::statfs> {
    let mut buf = MaybeUninit::<libc::statfs>::uninit();
    // SAFETY: fstatfs writes one `struct statfs` to the pointer, which has
    // room for exactly one, and the fd is open for the call (borrowed).
    let ret = unsafe { libc::fstatfs(file.as_raw_fd(), buf.as_mut_ptr()) };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fstatfs succeeded, so it filled in the whole structure.
    Ok(unsafe { buf.assume_init() })
}

/// The filesystem type fstatfs reports for `file` (`__fsword_t`, whose
/// width and sign vary by architecture, widened losslessly).
fn statfs_type(file: &File) -> io::Result<i128> {
    Ok(statfs(file)?.f_type.into())
}

/// The filesystem id fstatfs reports for `file` (ferrofs's comes from its
/// UUID, the same for every subvolume): whether two files are on one
/// filesystem, which `st_dev` (one per subvolume) cannot tell.
pub fn fsid(file: &File) -> io::Result<[u8; 8]> {
    let f = statfs(file)?.f_fsid;
    const _: () = assert!(std::mem::size_of::<libc::fsid_t>() == 8);
    // SAFETY: `fsid_t` is two C ints with no padding (size checked above),
    // so its bytes are initialised and any 8 bytes are a valid [u8; 8].
    Ok(unsafe { std::mem::transmute::<libc::fsid_t, [u8; 8]>(f) })
}

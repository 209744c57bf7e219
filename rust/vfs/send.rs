// SPDX-License-Identifier: GPL-2.0
//! FERROFS_IOC_SEND: writes the send stream of the snapshot an open file
//! belongs to (see `crate::send`) to a file descriptor of the caller.
//!
//! The core produces the stream in steps of about `STEP_BYTES` under the
//! core lock; each step's bytes are written to the output without it, so a
//! send never holds the lock while it waits on a pipe or a slow file, and
//! writers to every subvolume go on between steps. A pending signal stops
//! the send with EINTR between steps. The snapshots stay read-only and
//! undeletable until the session ends, whatever ends it.

use super::bindings as b;
use super::ioctl::{capable_sys_admin, copy_in, FdFile};
use super::types::File;
use crate::mem::TryVec;
use crate::send::{SendRequest, SendSession};
use crate::subvol::SubvolId;
use crate::uapi::{SendArgs, SEND_MAX_CLONE_SOURCES};
use kernel::prelude::*;

/// Stream bytes one step produces before the lock is let go.
const STEP_BYTES: usize = 256 * 1024;

/// SEND: checks the arguments, then runs the session to its end.
#[inline(never)]
pub(crate) fn send(file: &File, arg: u64) -> Result {
    if !capable_sys_admin() {
        return Err(EPERM);
    }
    let args: SendArgs = copy_in(arg)?;
    let resuming = args.flags & crate::uapi::SEND_FLAG_RESUME != 0;
    if args.reserved.iter().any(|&r| r != 0) || (!resuming && (args.resume_commands != 0 || args.resume_crc != 0)) {
        return Err(EINVAL);
    }
    if args.clone_sources_count > SEND_MAX_CLONE_SOURCES {
        return Err(EINVAL);
    }
    let out = FdFile::get(args.send_fd)?;
    if !out.is_writable() {
        return Err(EBADF);
    }
    let inode = file.inode();
    let info = inode.info();
    // The clone sources' ids; the core checks each is a read-only snapshot.
    let mut clones = TryVec::new();
    for i in 0..args.clone_sources_count {
        let at = args.clone_sources.checked_add(i * 8).ok_or(EFAULT)?;
        let id: u64 = copy_in(at)?;
        clones.try_push(SubvolId(id))?;
    }
    let parent = (args.parent_root != 0).then_some(SubvolId(args.parent_root));
    let req = |source| SendRequest {
        source,
        parent,
        flags: args.flags,
        version: args.version,
        resume: args.resume_commands,
        resume_crc: args.resume_crc,
    };
    let mut session = inode.with_core(|fs, source| fs.send_begin(req(source), &clones))?;
    let r = run(file, &out, &mut session);
    info.with_core(|fs| {
        fs.send_end(session);
        Ok(())
    })?;
    r
}

/// Steps the session and writes each step's bytes out, until the stream
/// is complete, an error, or a signal.
fn run(file: &File, out: &FdFile, session: &mut SendSession) -> Result {
    let info = file.inode().info();
    let mut buf = TryVec::new();
    loop {
        // SAFETY: reads the current task's signal state.
        if unsafe { b::ferrofs_signal_pending() } {
            return Err(EINTR);
        }
        buf.clear();
        let done = info.with_core(|fs| fs.send_step(session, &mut buf, STEP_BYTES))?;
        out.append_all(&buf)?;
        if done {
            return Ok(());
        }
        // SAFETY: may sleep; no lock is held here.
        unsafe { b::ferrofs_cond_resched() };
    }
}

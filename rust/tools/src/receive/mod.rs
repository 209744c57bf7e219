// SPDX-License-Identifier: GPL-2.0
//! `ferrofs receive`: reads btrfs send streams (from `btrfs send` or ferrofs
//! send) and applies them onto a directory of any filesystem, or prints them
//! as `btrfs receive --dump` does.
//!
//! - `stream`: the input, command by command, every CRC checked, every
//!   error placed (command number, name, byte offset).
//! - `apply` (with `paths`, `copy`, `map`): the commands as POSIX calls;
//!   `resume`: going on with a partial subvolume after `send --resume`.
//! - `dump`: the `--dump` lines.

mod apply;
mod copy;
pub mod dump;
pub mod map;
mod paths;
pub mod resume;
pub mod stream;

pub use apply::fs_flags;
use dump::{DumpFormat, Dumper};
use ferrofs_core::send_stream::command_name;
use std::io::{Read, Write};
use std::path::Path;
use stream::{Event, StreamReader};

/// How `receive` treats failures.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReceiveOptions {
    /// Keep a partial subvolume (as NAME.partial) instead of removing it.
    pub keep_partial: bool,
    /// Stop at the command that fails this many times over (`-E`, as btrfs
    /// receive counts: 1 stops at the first failure, 0 never stops for a
    /// command that failed). A damaged stream always stops.
    pub max_errors: u64,
}

/// Applies every stream of `input` under `dest`. On failure the message
/// says what failed and where, and what became of the partial subvolume.
/// Returns the warnings (flags the destination cannot hold, commands
/// passed over) when the input was read to its end; with commands passed
/// over the result is still an error, after the warnings were printed.
pub fn receive(input: impl Read, dest: &Path, opts: ReceiveOptions) -> Result<Vec<String>, String> {
    let mut applier = apply::Applier::new(dest, opts.keep_partial)?;
    let mut failures = 0u64;
    let mut reader = StreamReader::new(input);
    // A stream that broke off can be resumed; a command the destination
    // refused would be refused again.
    let fail = |applier: &mut apply::Applier, msg: String, resumable: bool| {
        let mut msg = msg;
        if let Some(what) = applier.abort(resumable) {
            msg.push_str(&format!("\n{what}"));
        }
        Err(msg)
    };
    loop {
        match reader.next_event() {
            Ok(Event::Header { version }) => applier.set_version(version),
            Ok(Event::Command { cmd, number, offset, crc }) => {
                if let Err(e) = applier.apply_counted(&cmd, crc) {
                    let msg = format!("command {number} ({}) at byte {offset}: {e}", command_name(cmd.number()));
                    failures += 1;
                    let go_on = opts.max_errors == 0 || failures < opts.max_errors;
                    if go_on && applier.pass_over_failed(&cmd) {
                        eprintln!("ferrofs receive: ERROR: {msg} (passed over)");
                        continue;
                    }
                    return fail(&mut applier, msg, false);
                }
            }
            Ok(Event::End) => break,
            Err(e) => return fail(&mut applier, e.to_string(), true),
        }
    }
    if let Err(e) = applier.end_of_input() {
        return fail(&mut applier, e, true);
    }
    let warnings = std::mem::take(&mut applier.warnings);
    if failures > 0 {
        warnings.iter().for_each(|w| eprintln!("ferrofs receive: {w}"));
        return Err(format!("{failures} command(s) failed and were passed over (see above)"));
    }
    Ok(warnings)
}

/// Prints every command of every stream of `input` to `out`.
pub fn dump(input: impl Read, out: impl Write, format: DumpFormat) -> Result<(), String> {
    let mut reader = StreamReader::new(input);
    let mut dumper = Dumper::new(out, format);
    loop {
        match reader.next_event().map_err(|e| e.to_string())? {
            Event::Header { .. } => {}
            Event::Command { cmd, number, offset, .. } => {
                dumper.command(&cmd).map_err(|e| format!("command {number} ({}) at byte {offset}: {e}", command_name(cmd.number())))?
            }
            Event::End => break,
        }
    }
    dumper.into_inner().flush().map_err(|e| format!("write error: {e}"))
}

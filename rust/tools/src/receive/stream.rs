// SPDX-License-Identifier: GPL-2.0
//! Reads send streams from a byte source, one command at a time, through the
//! core's codec: several streams may follow each other (each with its
//! header, as `btrfs send A B` writes them), every CRC is checked, and every
//! failure says where: the command's number (counted from 1 over the whole
//! input), its name and its byte offset.
//!
//! As in btrfs-progs, an input with no stream at all is refused, and so is
//! one whose last stream ends without an END command. A command is read
//! whole before it is decoded, after its header has bounded its length by
//! the version's limit, so a hostile length cannot make a large allocation.

use ferrofs_core::error::Error;
use ferrofs_core::send_stream::{
    command_name, decode_command, decode_command_header, decode_stream_header, Command, CMD_HEADER_LEN, HEADER_LEN,
};
use std::fmt;
use std::io::{self, Read};

/// What is wrong with a stream, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamError {
    /// What is wrong ("bad CRC").
    pub reason: String,
    /// The command it is in (number from 1, name), when in one.
    pub command: Option<(u64, &'static str)>,
    /// Byte offset in the input of the command (or stream header).
    pub offset: u64,
}

impl fmt::Display for StreamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.command {
            Some((n, name)) => write!(f, "{} in command {n} ({name}) at byte {}", self.reason, self.offset),
            None => write!(f, "{} at byte {}", self.reason, self.offset),
        }
    }
}

/// One step through the input.
#[derive(Debug)]
pub enum Event<'a> {
    /// A stream header: the stream's version.
    Header {
        /// The stream's version.
        version: u32,
    },
    /// A command, decoded and checked.
    Command {
        /// The command.
        cmd: Command<'a>,
        /// Its number in the input, from 1.
        number: u64,
        /// Byte offset of its header in the input.
        offset: u64,
        /// The CRC its header carried (checked).
        crc: u32,
    },
    /// The input ended after a complete stream.
    End,
}

/// Reads streams from `R`.
pub struct StreamReader<R> {
    input: R,
    offset: u64,
    /// The version of the stream being read; None between streams.
    version: Option<u32>,
    streams: u64,
    commands: u64,
    buf: Vec<u8>,
}

/// What a read stopped by a signal (`posix::stop_on_signals`) reports.
pub const INTERRUPTED: &str = "interrupted by a signal";

/// Reads as much of `buf` as the input has: the count read, short only at
/// EOF. A read a signal interrupted is retried, unless the signal asked
/// the process to stop.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted && !crate::posix::stop_requested() => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// The reason a failed read gives.
fn read_error(e: &io::Error) -> String {
    if e.kind() == io::ErrorKind::Interrupted {
        INTERRUPTED.to_string()
    } else {
        format!("read error: {e}")
    }
}

impl<R: Read> StreamReader<R> {
    /// A reader at the start of `input`.
    pub fn new(input: R) -> Self {
        StreamReader { input, offset: 0, version: None, streams: 0, commands: 0, buf: Vec::new() }
    }

    fn error(&self, reason: impl Into<String>, command: Option<(u64, &'static str)>, offset: u64) -> StreamError {
        StreamError { reason: reason.into(), command, offset }
    }

    /// The next header, command or the end.
    pub fn next_event(&mut self) -> Result<Event<'_>, StreamError> {
        let at = self.offset;
        if crate::posix::stop_requested() {
            return Err(self.error(INTERRUPTED, None, at));
        }
        let Some(version) = self.version else {
            let mut h = [0u8; HEADER_LEN];
            let got = read_full(&mut self.input, &mut h).map_err(|e| self.error(read_error(&e), None, at))?;
            self.offset += got as u64;
            if got == 0 {
                return if self.streams == 0 { Err(self.error("empty stream", None, at)) } else { Ok(Event::End) };
            }
            if got < HEADER_LEN {
                return Err(self.error("truncated stream header", None, at));
            }
            // "unsupported: send stream version ...", "not a btrfs send stream ...".
            let version = decode_stream_header(&h).map_err(|e| {
                let reason = if matches!(e, Error::Unsupported(_)) { e.to_string() } else { e.reason().to_string() };
                self.error(reason, None, at)
            })?;
            self.version = Some(version);
            self.streams += 1;
            return Ok(Event::Header { version });
        };
        let number = self.commands + 1;
        let mut h = [0u8; CMD_HEADER_LEN];
        let got = read_full(&mut self.input, &mut h).map_err(|e| self.error(read_error(&e), None, at))?;
        self.offset += got as u64;
        if got == 0 {
            return Err(self.error("stream ends without an END command", None, at));
        }
        if got < CMD_HEADER_LEN {
            return Err(self.error("truncated command header", Some((number, "unknown")), at));
        }
        self.commands = number;
        let header = decode_command_header(&h, version).map_err(|e| self.error(e.reason(), Some((number, "unknown")), at))?;
        let name = command_name(header.cmd);
        self.buf.clear();
        self.buf.extend_from_slice(&h);
        self.buf.resize(header.total_len(), 0);
        let got = read_full(&mut self.input, &mut self.buf[CMD_HEADER_LEN..]).map_err(|e| StreamError {
            reason: read_error(&e),
            command: Some((number, name)),
            offset: at,
        })?;
        self.offset += got as u64;
        if got < header.payload_len {
            return Err(self.error("truncated command (the stream ends inside it)", Some((number, name)), at));
        }
        let (cmd, _) = decode_command(&self.buf, version).map_err(|e| StreamError {
            reason: e.reason().to_string(),
            command: Some((number, name)),
            offset: at,
        })?;
        if matches!(cmd, Command::End) {
            self.version = None;
        }
        Ok(Event::Command { cmd, number, offset: at, crc: header.crc })
    }
}

// SPDX-License-Identifier: GPL-2.0
//! The resume token of an interrupted transfer: what `ferrofs receive`
//! leaves when a stream breaks off, and what `ferrofs send --resume` takes
//! to send the rest. One line of text:
//!
//! ```text
//! ferrofs-resume-1:UUID:CTRANSID:PARENT_UUID:PARENT_CTRANSID:VERSION:COMMANDS:CRC
//! ```
//!
//! UUID and CTRANSID name the snapshot being received (as its SUBVOL or
//! SNAPSHOT command does), PARENT_UUID and PARENT_CTRANSID the parent of an
//! incremental stream (`-` and `0` for a full one), VERSION the stream
//! version, COMMANDS how many commands after SUBVOL/SNAPSHOT were applied,
//! and CRC (8 hex digits) the CRC in the header of the last of them, which
//! the kernel compares with its own command at that place. UUIDs are 32 hex
//! digits, numbers decimal.

use std::fmt;

const PREFIX: &str = "ferrofs-resume-1";

/// A parsed resume token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResumeToken {
    /// The snapshot being received.
    pub uuid: [u8; 16],
    /// Its transid as the stream gave it.
    pub ctransid: u64,
    /// The parent of an incremental stream: UUID and transid.
    pub parent: Option<([u8; 16], u64)>,
    /// Stream version.
    pub version: u32,
    /// Commands after SUBVOL/SNAPSHOT applied.
    pub commands: u64,
    /// CRC of the last of them.
    pub crc: u32,
}

fn hex16(s: &str) -> Option<[u8; 16]> {
    if s.len() != 32 {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

fn hex(b: &[u8; 16]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

impl fmt::Display for ResumeToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (pu, pc) = match self.parent {
            Some((u, c)) => (hex(&u), c),
            None => ("-".to_string(), 0),
        };
        write!(f, "{PREFIX}:{}:{}:{pu}:{pc}:{}:{}:{:08x}", hex(&self.uuid), self.ctransid, self.version, self.commands, self.crc)
    }
}

impl std::str::FromStr for ResumeToken {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = |what: &str| format!("not a resume token ({what}): '{s}'");
        let f: Vec<&str> = s.trim().split(':').collect();
        if f.len() != 8 || f[0] != PREFIX {
            return Err(bad("it has the form ferrofs-resume-1:UUID:CTRANSID:PARENT_UUID:PARENT_CTRANSID:VERSION:COMMANDS:CRC"));
        }
        let num = |i: usize, what: &str| f[i].parse::<u64>().map_err(|_| bad(what));
        let uuid = hex16(f[1]).ok_or_else(|| bad("UUID"))?;
        let ctransid = num(2, "CTRANSID")?;
        let parent = match f[3] {
            "-" => None,
            p => Some((hex16(p).ok_or_else(|| bad("PARENT_UUID"))?, num(4, "PARENT_CTRANSID")?)),
        };
        let version = u32::try_from(num(5, "VERSION")?).map_err(|_| bad("VERSION"))?;
        let commands = num(6, "COMMANDS")?;
        if f[7].len() != 8 {
            return Err(bad("CRC"));
        }
        let crc = u32::from_str_radix(f[7], 16).map_err(|_| bad("CRC"))?;
        Ok(ResumeToken { uuid, ctransid, parent, version, commands, crc })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_bad_ones_are_refused() {
        let t = ResumeToken { uuid: [0xab; 16], ctransid: 7, parent: Some(([1; 16], 3)), version: 2, commands: 123, crc: 0xdeadbeef };
        let s = t.to_string();
        assert_eq!(s, format!("ferrofs-resume-1:{}:7:{}:3:2:123:deadbeef", "ab".repeat(16), "01".repeat(16)));
        assert_eq!(s.parse::<ResumeToken>(), Ok(t));
        let full = ResumeToken { parent: None, ..t };
        assert_eq!(full.to_string().parse::<ResumeToken>(), Ok(full));
        for bad in [
            "",
            "ferrofs-resume-2:x",
            &s.replace(":123:", ":-1:"),
            &s.replace("deadbeef", "deadbee"),
            &s.replace(&"ab".repeat(16), &"ab".repeat(15)),
            &s.replace(":2:123", ":99999999999:123"),
            &format!("{s}:extra"),
        ] {
            assert!(bad.parse::<ResumeToken>().is_err(), "{bad}");
        }
    }
}

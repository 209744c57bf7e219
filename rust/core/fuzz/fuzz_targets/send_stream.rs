// SPDX-License-Identifier: GPL-2.0
//! Fuzzes the send stream decoder: the first byte picks the version (bit 0)
//! and whether the command's length and CRC are made right first (bit 1, so
//! the attribute checks see every input); the rest is decoded as commands,
//! one after another. Whatever decodes must re-encode and decode back to the
//! same command; the only thing the encoder may refuse is a write larger
//! than its own limit, which the decoder accepts from other senders.
#![no_main]

use ferrofs_core::send_stream::{command_crc, decode_command, decode_stream_header, max_write, Command, StreamEncoder, CMD_HEADER_LEN};
use libfuzzer_sys::fuzz_target;

/// Makes `b` one command as far as length and CRC go.
fn reseal(b: &mut [u8]) {
    if b.len() < CMD_HEADER_LEN {
        return;
    }
    let len = (b.len() - CMD_HEADER_LEN) as u32;
    b[0..4].copy_from_slice(&len.to_le_bytes());
    let mut hdr = [0u8; CMD_HEADER_LEN];
    hdr.copy_from_slice(&b[..CMD_HEADER_LEN]);
    let crc = command_crc(&hdr, &b[CMD_HEADER_LEN..]);
    b[6..10].copy_from_slice(&crc.to_le_bytes());
}

fn data_len(c: &Command<'_>) -> usize {
    match c {
        Command::Write { data, .. } | Command::EncodedWrite { data, .. } => data.len(),
        _ => 0,
    }
}

fn check_all(mut b: &[u8], version: u32) {
    let mut enc = StreamEncoder::new(version).expect("encoder");
    while let Ok((c, used)) = decode_command(b, version) {
        assert!(used >= CMD_HEADER_LEN && used <= b.len());
        match enc.encode(&c) {
            Ok(bytes) => {
                let (again, n) = decode_command(bytes, version).expect("a re-encoded command must decode");
                assert_eq!(again, c, "a decoded command must survive re-encoding");
                assert_eq!(n, bytes.len());
            }
            Err(e) => assert!(data_len(&c) > max_write(version), "re-encoding {c:?} failed: {e:?}"),
        }
        b = &b[used..];
    }
}

fuzz_target!(|data: &[u8]| {
    let _ = decode_stream_header(data);
    let Some((&sel, rest)) = data.split_first() else { return };
    let version = 1 + (sel & 1) as u32;
    if sel & 2 != 0 {
        let mut b = rest.to_vec();
        reseal(&mut b);
        check_all(&b, version);
    } else {
        check_all(rest, version);
    }
});

// SPDX-License-Identifier: GPL-2.0
//! The send stream codec against the format: round trips of every command in
//! both versions, exact bytes built here independently (including the
//! seed-0, no-inversion CRC), streams written by Linux's btrfs send
//! (`tests/data/btrfs-*.stream`, made with `btrfs send` on Linux 6.18), and
//! every refusal the decoder documents.

use ferrofs_core::error::Error;
use ferrofs_core::send_stream::*;

/// CRC-32C bit by bit (reflected polynomial 0x82F63B78) from the raw state
/// `seed`, no final inversion: written apart from the crate's table-driven
/// one, so the two check each other.
fn crc32c_bitwise(seed: u32, data: &[u8]) -> u32 {
    let mut c = seed;
    for &b in data {
        c ^= b as u32;
        for _ in 0..8 {
            c = if c & 1 != 0 { (c >> 1) ^ 0x82F6_3B78 } else { c >> 1 };
        }
    }
    c
}

/// A command built by hand: `tlvs` as (type, value, with length field).
fn raw_cmd_with(cmd: u16, tlvs: &[(u16, &[u8], bool)]) -> Vec<u8> {
    let mut payload = Vec::new();
    for (ty, v, with_len) in tlvs {
        payload.extend_from_slice(&ty.to_le_bytes());
        if *with_len {
            payload.extend_from_slice(&(v.len() as u16).to_le_bytes());
        }
        payload.extend_from_slice(v);
    }
    let mut out = Vec::new();
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&cmd.to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&payload);
    let crc = crc32c_bitwise(0, &out);
    out[6..10].copy_from_slice(&crc.to_le_bytes());
    out
}

/// A command with every attribute carrying its length (v1 framing).
fn raw_cmd(cmd: u16, tlvs: &[(u16, &[u8])]) -> Vec<u8> {
    let t: Vec<(u16, &[u8], bool)> = tlvs.iter().map(|(a, v)| (*a, *v, true)).collect();
    raw_cmd_with(cmd, &t)
}

fn corrupt(what: &'static str) -> Error {
    Error::corrupt(what)
}

const U1: [u8; 16] = *b"0123456789abcdef";
const U2: [u8; 16] = *b"fedcba9876543210";
const T1: StreamTime = StreamTime { sec: 1_700_000_000, nsec: 123_456_789 };
const T2: StreamTime = StreamTime { sec: 0, nsec: 999_999_999 };
const T3: StreamTime = StreamTime { sec: u64::MAX, nsec: 0 };

/// One of every command, with values that differ from each other.
fn every_command(data: &[u8]) -> Vec<Command<'_>> {
    vec![
        Command::Subvol { path: b"vol", uuid: U1, ctransid: 7 },
        Command::Snapshot { path: b"snap", uuid: U1, ctransid: 9, clone_uuid: U2, clone_ctransid: 8 },
        Command::Mkfile { path: b"o257-7-0", ino: 257 },
        Command::Mkdir { path: b"dir", ino: 258 },
        Command::Mknod { path: b"dev", ino: 259, mode: 0o20644, rdev: 0x0801 },
        Command::Mkfifo { path: b"fifo", ino: 260 },
        Command::Mksock { path: b"sock", ino: 261 },
        Command::Symlink { path: b"dir/link", ino: 262, target: b"../file with space" },
        Command::Rename { from: b"o257-7-0", to: b"file" },
        Command::Link { path: b"dir/hard", target: b"file" },
        Command::Unlink { path: b"gone" },
        Command::Rmdir { path: b"olddir" },
        Command::SetXattr { path: b"file", name: b"user.colour", data: b"bl\0ue" },
        Command::SetXattr { path: b"file", name: b"user.empty", data: b"" },
        Command::RemoveXattr { path: b"file", name: b"user.colour" },
        Command::Write { path: b"file", offset: 4096, data },
        Command::Write { path: b"file", offset: 0, data: b"" },
        Command::Clone {
            path: b"file",
            offset: 8192,
            len: 4096,
            clone_uuid: U2,
            clone_ctransid: 5,
            clone_path: b"src",
            clone_offset: 12288,
        },
        Command::Truncate { path: b"file", size: u64::MAX },
        Command::Chmod { path: b"file", mode: 0o4755 },
        Command::Chown { path: b"", uid: 1000, gid: 1001 },
        Command::Utimes { path: b"file", atime: T1, mtime: T2, ctime: T3 },
        Command::End,
        Command::UpdateExtent { path: b"file", offset: 1, len: 2 },
    ]
}

fn v2_only_commands(data: &[u8]) -> Vec<Command<'_>> {
    vec![
        Command::Fallocate { path: b"file", mode: 3, offset: 4096, len: 8192 },
        Command::Fileattr { path: b"file", attr: 0x10 },
        Command::EncodedWrite {
            path: b"file",
            offset: 0,
            unencoded_file_len: 4096,
            unencoded_len: 8192,
            unencoded_offset: 4096,
            compression: 2,
            encryption: 0,
            data,
        },
    ]
}

#[test]
fn every_command_round_trips_in_both_versions() {
    let data: Vec<u8> = (0..5000u32).map(|i| (i * 31 % 251) as u8).collect();
    for version in [1, 2] {
        let mut enc = StreamEncoder::new(version).expect("encoder");
        assert_eq!(enc.version(), version);
        let mut cmds = every_command(&data);
        if version == 2 {
            cmds.extend(v2_only_commands(&data));
        }
        let mut stream = stream_header(version).to_vec();
        for c in &cmds {
            let bytes = enc.encode(c).unwrap_or_else(|e| panic!("encode {c:?}: {e:?}")).to_vec();
            let (d, used) = decode_command(&bytes, version).unwrap_or_else(|e| panic!("decode {c:?}: {e:?}"));
            assert_eq!(&d, c, "v{version}");
            assert_eq!(used, bytes.len());
            assert_eq!(d.name(), command_name(c.number()));
            stream.extend_from_slice(&bytes);
        }
        // The same commands back out of one stream, in order.
        assert_eq!(decode_stream_header(&stream), Ok(version));
        let mut at = HEADER_LEN;
        let mut back = Vec::new();
        while at < stream.len() {
            let (c, used) = decode_command(&stream[at..], version).expect("decode in stream");
            back.push(c);
            at += used;
        }
        assert_eq!(back, cmds);
    }
}

#[test]
fn v2_commands_need_version_2() {
    let data = [1u8; 10];
    let mut enc = StreamEncoder::new(1).expect("encoder");
    let mut enc2 = StreamEncoder::new(2).expect("encoder");
    for c in v2_only_commands(&data) {
        assert!(matches!(enc.encode(&c), Err(Error::Invalid(_))), "{c:?} encoded in v1");
        // And a v1 reader refuses them as unknown commands.
        let bytes = enc2.encode(&c).expect("v2").to_vec();
        assert_eq!(decode_command(&bytes, 1).map(|x| x.1), Err(corrupt("unknown command")));
    }
}

#[test]
fn exact_bytes_of_an_unlink_with_the_seed_0_crc() {
    let mut enc = StreamEncoder::new(1).expect("encoder");
    let bytes = enc.encode(&Command::Unlink { path: b"a" }).expect("encode");
    // len 5, cmd 11, crc, then PATH (15) of length 1: "a". The CRC value was
    // computed outside this crate, bit by bit, from seed 0 without the final
    // inversion, over the 15 bytes with the crc field zeroed.
    let want = [0x05, 0, 0, 0, 0x0b, 0, 0x40, 0xf3, 0xe4, 0xb7, 0x0f, 0, 0x01, 0, b'a'];
    assert_eq!(bytes, &want[..]);
    let mut zeroed = want;
    zeroed[6..10].fill(0);
    assert_eq!(crc32c_bitwise(0, &zeroed), 0xb7e4_f340);
    // Not the standard CRC-32C (seed and final XOR all ones).
    assert_ne!(ferrofs_core::crc32c::checksum(&zeroed), 0xb7e4_f340);
}

#[test]
fn exact_bytes_of_every_command_match_a_hand_built_one() {
    let data = [7u8; 100];
    let u64b = |v: u64| v.to_le_bytes();
    let ts = |t: StreamTime| {
        let mut v = t.sec.to_le_bytes().to_vec();
        v.extend_from_slice(&t.nsec.to_le_bytes());
        v
    };
    let (ino, mode, rdev) = (u64b(259), u64b(0o20644), u64b(0x0801));
    let (a, m, c) = (ts(T1), ts(T2), ts(T3));
    let cases: Vec<(Command<'_>, Vec<u8>)> = vec![
        (
            Command::Mknod { path: b"dev", ino: 259, mode: 0o20644, rdev: 0x0801 },
            raw_cmd(5, &[(15, b"dev"), (3, &ino), (8, &rdev), (5, &mode)]),
        ),
        (Command::Utimes { path: b"f", atime: T1, mtime: T2, ctime: T3 }, raw_cmd(20, &[(15, b"f"), (11, &a), (10, &m), (9, &c)])),
        (
            Command::Clone { path: b"f", offset: 1, len: 2, clone_uuid: U2, clone_ctransid: 3, clone_path: b"s", clone_offset: 4 },
            raw_cmd(16, &[(18, &u64b(1)), (24, &u64b(2)), (15, b"f"), (20, &U2), (21, &u64b(3)), (22, b"s"), (23, &u64b(4))]),
        ),
        (Command::Write { path: b"f", offset: 9, data: &data }, raw_cmd(15, &[(15, b"f"), (18, &u64b(9)), (19, &data)])),
        (Command::End, raw_cmd(21, &[])),
    ];
    let mut enc = StreamEncoder::new(1).expect("encoder");
    for (cmd, want) in &cases {
        assert_eq!(enc.encode(cmd).expect("encode"), &want[..], "{cmd:?}");
    }
    // v2: DATA is the last attribute and has no length field.
    let mut enc = StreamEncoder::new(2).expect("encoder");
    let want = raw_cmd_with(15, &[(15, b"f", true), (18, &u64b(9), true), (19, &data, false)]);
    assert_eq!(enc.encode(&Command::Write { path: b"f", offset: 9, data: &data }).expect("encode"), &want[..]);
    assert_eq!(want.len(), 10 + 5 + 12 + 2 + 100);
}

#[test]
fn stream_header_round_trip_and_refusals() {
    let h = stream_header(2);
    assert_eq!(&h[..], b"btrfs-stream\0\x02\0\0\0");
    assert_eq!(decode_stream_header(&h), Ok(2));
    assert_eq!(decode_stream_header(&stream_header(1)), Ok(1));
    for v in [0, 3, u32::MAX] {
        assert!(matches!(decode_stream_header(&stream_header(v)), Err(Error::Unsupported(_))), "version {v}");
        assert!(matches!(StreamEncoder::new(v), Err(Error::Invalid(_))), "encoder version {v}");
        assert!(matches!(decode_command(&raw_cmd(21, &[]), v), Err(Error::Unsupported(_))));
    }
    let mut bad = h;
    bad[0] = b'B';
    assert!(matches!(decode_stream_header(&bad), Err(Error::Invalid(_))));
    assert!(matches!(decode_stream_header(&h[..16]), Err(Error::Invalid(_))));
    assert!(matches!(decode_stream_header(b""), Err(Error::Invalid(_))));
    assert_eq!((max_write(1), max_write(2)), (48 << 10, 128 << 10));
}

#[test]
fn refusals() {
    let u64b = 5u64.to_le_bytes();
    let t = [0u8; 12];
    let ok = raw_cmd(17, &[(15, b"f"), (4, &u64b)]);
    assert_eq!(decode_command(&ok, 1), Ok((Command::Truncate { path: b"f", size: 5 }, ok.len())));

    // Bad CRC: any flipped bit, in the header or the payload.
    for byte in 0..ok.len() {
        let mut b = ok.clone();
        b[byte] ^= 0x10;
        let r = decode_command(&b, 1);
        assert!(r.is_err(), "bit flip at byte {byte} accepted");
        if !(0..4).contains(&byte) {
            assert_eq!(r, Err(corrupt("bad CRC")), "byte {byte}");
        }
    }
    // Truncation anywhere.
    for cut in 0..ok.len() {
        let want = if cut < CMD_HEADER_LEN { "truncated command header" } else { "command runs past the end of the stream" };
        assert_eq!(decode_command(&ok[..cut], 1), Err(corrupt(want)), "cut at {cut}");
    }
    // Length overflow and lengths past the version's buffer.
    for (len, version) in [(u32::MAX, 1), (u32::MAX, 2), (64 << 10, 1), (192 << 10, 2)] {
        let mut b = ok.clone();
        b[0..4].copy_from_slice(&(len - 9).to_le_bytes());
        assert_eq!(decode_command(&b, version), Err(corrupt("command length beyond the version's limit")), "{len}");
    }
    // The largest command each version allows still decodes.
    for version in [1, 2] {
        let big = vec![0u8; max_command_len(version) - CMD_HEADER_LEN - 4];
        let b = raw_cmd(18, &[(15, b"f"), (5, &u64b), (14, &big[..big.len().min(65535)])]);
        if b.len() <= max_command_len(version) {
            assert!(decode_command(&b, version).is_ok());
        }
    }
    // Unknown commands: 0, past v1, past v2.
    for (c, version) in [(0u16, 1), (0, 2), (23, 1), (25, 1), (26, 2), (u16::MAX, 2)] {
        assert_eq!(decode_command(&raw_cmd(c, &[]), version), Err(corrupt("unknown command")), "cmd {c} v{version}");
    }
    // Missing attributes.
    assert_eq!(decode_command(&raw_cmd(17, &[(15, b"f")]), 1), Err(corrupt("missing attribute")));
    assert_eq!(decode_command(&raw_cmd(17, &[(4, &u64b)]), 1), Err(corrupt("missing attribute")));
    assert_eq!(decode_command(&raw_cmd(15, &[(15, b"f"), (18, &u64b)]), 2), Err(corrupt("missing attribute")));
    // Duplicates, of a used and of a skipped attribute.
    assert_eq!(decode_command(&raw_cmd(17, &[(15, b"f"), (4, &u64b), (4, &u64b)]), 1), Err(corrupt("duplicate attribute")));
    assert_eq!(decode_command(&raw_cmd(17, &[(15, b"f"), (4, &u64b), (12, &t), (12, &t)]), 1), Err(corrupt("duplicate attribute")));
    // Wrong sizes.
    assert_eq!(decode_command(&raw_cmd(17, &[(15, b"f"), (4, &u64b[..7])]), 1), Err(corrupt("integer attribute is not 8 bytes")));
    assert_eq!(decode_command(&raw_cmd(17, &[(15, b"f"), (4, &[0; 9])]), 1), Err(corrupt("integer attribute is not 8 bytes")));
    assert_eq!(decode_command(&raw_cmd(1, &[(15, b"v"), (1, &U1[..15]), (2, &u64b)]), 1), Err(corrupt("UUID attribute is not 16 bytes")));
    let utimes = |a: &[u8]| raw_cmd(20, &[(15, b"f"), (11, a), (10, &t), (9, &t)]);
    assert_eq!(decode_command(&utimes(&t[..11]), 1), Err(corrupt("timespec attribute is not 12 bytes")));
    assert_eq!(decode_command(&utimes(&[0; 13]), 1), Err(corrupt("timespec attribute is not 12 bytes")));
    let mut big_nsec = t;
    big_nsec[8..].copy_from_slice(&1_000_000_000u32.to_le_bytes());
    assert_eq!(decode_command(&utimes(&big_nsec), 1), Err(corrupt("timespec nanoseconds out of range")));
    let fallocate = |m: &[u8]| raw_cmd(23, &[(15, b"f"), (25, m), (18, &u64b), (4, &u64b)]);
    assert_eq!(decode_command(&fallocate(&u64b), 2), Err(corrupt("integer attribute is not 4 bytes")));
    assert!(decode_command(&fallocate(&[1, 0, 0, 0]), 2).is_ok());
    // Unknown attribute types.
    for ty in [0u16, 36, u16::MAX] {
        assert_eq!(decode_command(&raw_cmd(17, &[(15, b"f"), (4, &u64b), (ty, b"x")]), 1), Err(corrupt("unknown attribute type")));
    }
    // Trailing garbage after the last attribute: 1 to 3 bytes cannot hold
    // an attribute header, and a header whose length runs past the command.
    for junk in [&[1u8][..], &[4, 0], &[4, 0, 8]] {
        let mut b = raw_cmd(17, &[(15, b"f"), (4, &u64b)]);
        let n = b.len() - 10 + junk.len();
        b.extend_from_slice(junk);
        b[0..4].copy_from_slice(&(n as u32).to_le_bytes());
        b[6..10].fill(0);
        let crc = crc32c_bitwise(0, &b);
        b[6..10].copy_from_slice(&crc.to_le_bytes());
        assert_eq!(decode_command(&b, 1), Err(corrupt("truncated attribute header")), "{junk:?}");
    }
    let mut b = raw_cmd(17, &[(15, b"f"), (4, &u64b), (12, &t)]);
    let n = b.len() - 10 - 1;
    b.truncate(b.len() - 1);
    b[0..4].copy_from_slice(&(n as u32).to_le_bytes());
    b[6..10].fill(0);
    let crc = crc32c_bitwise(0, &b);
    b[6..10].copy_from_slice(&crc.to_le_bytes());
    assert_eq!(decode_command(&b, 1), Err(corrupt("attribute runs past the command")));
    // NUL inside a path or name.
    assert_eq!(decode_command(&raw_cmd(11, &[(15, b"a\0b")]), 1), Err(corrupt("NUL byte in a path or name")));
    assert_eq!(decode_command(&raw_cmd(14, &[(15, b"a"), (13, b"user.\0")]), 1), Err(corrupt("NUL byte in a path or name")));
    // The input may go on past the command (the next one): only the
    // command's own bytes are used.
    let mut two = ok.clone();
    two.extend_from_slice(&ok);
    assert_eq!(decode_command(&two, 1).map(|x| x.1), Ok(ok.len()));
}

#[test]
fn v2_data_runs_to_the_end_and_so_is_last() {
    let u64b = 0u64.to_le_bytes();
    // Whatever follows DATA in v2 is data, also bytes that look like an
    // attribute; in v1 the same bytes are an attribute of their own.
    let b = raw_cmd_with(15, &[(15, b"f", true), (18, &u64b, true), (19, b"ab", false), (12, &[0; 12], true)]);
    let (c, _) = decode_command(&b, 2).expect("v2");
    let Command::Write { data, .. } = c else { panic!("{c:?}") };
    assert_eq!(data.len(), 2 + 4 + 12);
    let b = raw_cmd_with(15, &[(15, b"f", true), (18, &u64b, true), (19, b"ab", true), (12, &[0; 12], true)]);
    assert_eq!(decode_command(&b, 1).map(|x| x.0), Ok(Command::Write { path: b"f", offset: 0, data: b"ab" }));
    let b = raw_cmd_with(15, &[(15, b"f", true), (18, &u64b, true), (19, b"", false)]);
    assert_eq!(decode_command(&b, 2).map(|x| x.0), Ok(Command::Write { path: b"f", offset: 0, data: b"" }));
    // v2 DATA after which a required attribute was meant to come: missing.
    let b = raw_cmd_with(15, &[(15, b"f", true), (19, b"xy", false), (18, &u64b, true)]);
    assert_eq!(decode_command(&b, 2), Err(corrupt("missing attribute")));
}

#[test]
fn attributes_the_command_does_not_use_are_skipped() {
    let ino = 260u64.to_le_bytes();
    let t = [0u8; 12];
    // The kernel sends RDEV and MODE with MKFIFO, OTIME with v2 UTIMES.
    let b = raw_cmd(6, &[(15, b"fifo"), (3, &ino), (8, &0u64.to_le_bytes()), (5, &0o10644u64.to_le_bytes())]);
    assert_eq!(decode_command(&b, 1).map(|x| x.0), Ok(Command::Mkfifo { path: b"fifo", ino: 260 }));
    let b = raw_cmd(20, &[(15, b"f"), (11, &t), (10, &t), (9, &t), (12, &t)]);
    assert!(matches!(decode_command(&b, 2), Ok((Command::Utimes { .. }, _))));
    // Even with a size no command would accept for them.
    let b = raw_cmd(11, &[(15, b"f"), (35, b"anything")]);
    assert_eq!(decode_command(&b, 1).map(|x| x.0), Ok(Command::Unlink { path: b"f" }));
    // ENCODED_WRITE's compression and encryption default to 0.
    let z = 0u64.to_le_bytes();
    let b = raw_cmd_with(25, &[(15, b"f", true), (18, &z, true), (27, &z, true), (28, &z, true), (29, &z, true), (19, b"d", false)]);
    let (c, _) = decode_command(&b, 2).expect("encoded write");
    assert!(matches!(c, Command::EncodedWrite { compression: 0, encryption: 0, data: b"d", .. }), "{c:?}");
}

#[test]
fn encoder_refuses_what_the_version_cannot_carry() {
    for version in [1, 2] {
        let mut enc = StreamEncoder::new(version).expect("encoder");
        let big = vec![0u8; max_write(version) + 1];
        assert!(matches!(enc.encode(&Command::Write { path: b"f", offset: 0, data: &big }), Err(Error::Invalid(_))));
        let ok = &big[..max_write(version)];
        let bytes = enc.encode(&Command::Write { path: b"f", offset: 0, data: ok }).expect("max write").to_vec();
        assert!(bytes.len() <= max_command_len(version));
        assert!(decode_command(&bytes, version).is_ok());
        let long = vec![b'a'; 65536];
        assert!(matches!(enc.encode(&Command::Unlink { path: &long }), Err(Error::Invalid(_))));
        let fits = 65535.min(max_command_len(version) - CMD_HEADER_LEN - 4);
        assert!(enc.encode(&Command::Unlink { path: &long[..fits] }).is_ok());
        if version == 1 {
            assert!(matches!(enc.encode(&Command::Unlink { path: &long[..fits + 1] }), Err(Error::Invalid(_))));
        }
        assert!(matches!(enc.encode(&Command::Unlink { path: b"a\0" }), Err(Error::Invalid(_))));
        let bad = StreamTime { sec: 0, nsec: 1_000_000_000 };
        assert!(matches!(enc.encode(&Command::Utimes { path: b"", atime: bad, mtime: bad, ctime: bad }), Err(Error::Invalid(_))));
        // A command past the version's buffer, out of attributes that
        // each fit.
        let name = vec![b'n'; 65535];
        let r = enc.encode(&Command::SetXattr { path: &name, name: &name, data: &name });
        assert!(matches!(r, Err(Error::Invalid(_))), "v{version}: {r:?}");
        // After an error the encoder is still usable.
        assert!(enc.encode(&Command::End).is_ok());
    }
}

/// Every command of a stream file, with its offset and bytes.
fn commands_of(stream: &[u8]) -> (u32, Vec<(Command<'_>, &[u8])>) {
    let version = decode_stream_header(stream).expect("header");
    let mut at = HEADER_LEN;
    let mut out = Vec::new();
    while at < stream.len() {
        let (c, used) = decode_command(&stream[at..], version).unwrap_or_else(|e| panic!("at byte {at}: {e:?}"));
        out.push((c, &stream[at..at + used]));
        at += used;
    }
    (version, out)
}

#[test]
fn streams_written_by_btrfs_send_decode_and_reencode_byte_for_byte() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    for (name, want_version, want_cmds) in [("btrfs-full-v1", 1, 43), ("btrfs-full-v2", 2, 43), ("btrfs-incr-v1", 1, 15)] {
        let stream = std::fs::read(dir.join(format!("{name}.stream"))).expect("read stream");
        let (version, cmds) = commands_of(&stream);
        assert_eq!(version, want_version, "{name}");
        assert_eq!(cmds.len(), want_cmds, "{name}");
        assert_eq!(cmds.first().map(|c| c.0.number()), Some(if name.contains("incr") { cmd::SNAPSHOT } else { cmd::SUBVOL }));
        assert_eq!(cmds.last().map(|c| c.0), Some(Command::End));
        let mut enc = StreamEncoder::new(version).expect("encoder");
        let mut same = 0;
        for (c, bytes) in &cmds {
            let again = enc.encode(c).expect("re-encode");
            // The kernel adds attributes receivers ignore to MKFIFO/MKSOCK
            // (MODE, RDEV) and to v2 UTIMES (OTIME); everything else is
            // the same bytes, CRC included.
            let extra =
                matches!(c, Command::Mkfifo { .. } | Command::Mksock { .. }) || (version == 2 && matches!(c, Command::Utimes { .. }));
            if extra {
                assert_eq!(decode_command(again, version).map(|x| x.0), Ok(*c));
            } else {
                assert_eq!(again, *bytes, "{name}: {c:?}");
                same += 1;
            }
        }
        assert!(same >= cmds.len() - 12, "{name}: only {same} byte-identical");
    }
    // What the btrfs streams hold, as a spot check of the decoded values.
    let stream = std::fs::read(dir.join("btrfs-full-v1.stream")).expect("read");
    let (_, cmds) = commands_of(&stream);
    assert!(cmds.iter().any(|(c, _)| *c == Command::SetXattr { path: b"file", name: b"user.colour", data: b"blue" }));
    assert!(cmds.iter().any(|(c, _)| *c == Command::Write { path: b"file", offset: 0, data: b"hello world\n" }));
    assert!(cmds.iter().any(|(c, _)| *c == Command::Link { path: b"o259-7-0/hard", target: b"file" }));
    assert!(cmds.iter().any(|(c, _)| *c == Command::Chown { path: b"empty", uid: 1000, gid: 1001 }));
}

/// `encode_append` writes exactly what `encode` returns after what `out`
/// holds, and leaves `out` as it was when the command cannot be encoded.
#[test]
fn encode_append_matches_encode() {
    let data = vec![7u8; 5000];
    for version in [1, 2] {
        let mut enc = StreamEncoder::new(version).expect("encoder");
        let mut out = ferrofs_core::mem::TryVec::new();
        out.try_extend_from_slice(b"prefix").unwrap();
        let mut want = b"prefix".to_vec();
        for c in every_command(&data) {
            enc.encode_append(&c, &mut out).expect("append");
            want.extend_from_slice(enc.encode(&c).expect("encode"));
        }
        assert_eq!(&out[..], &want[..], "version {version}");
        let too_big = vec![0u8; max_write(version) * 4];
        let before = out.len();
        assert!(enc.encode_append(&Command::Write { path: b"f", offset: 0, data: &too_big }, &mut out).is_err());
        assert_eq!(out.len(), before);
    }
}

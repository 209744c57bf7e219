// SPDX-License-Identifier: GPL-2.0
//! Test support: a simulated block device that remembers which writes are
//! not yet durable, can lose power after any write, and can then produce
//! the disk as it might look after the crash (unflushed writes dropped,
//! kept, partly kept, or applied out of order); a seeded RNG; helpers.
#![allow(dead_code)]

use ferrofs_core::subvol::SubvolId;
const SV: SubvolId = SubvolId::DEFAULT;
use ferrofs_core::device::BlockDevice;
use ferrofs_core::error::{Error, Result};
use ferrofs_core::format::Timespec;
use ferrofs_core::fs::Filesystem;
use ferrofs_core::mkfs::{self, MkfsOptions};
use std::collections::HashMap;

pub mod model;
pub mod sync_points;

/// Granularity of the simulated media.
pub const PAGE: u64 = 4096;

/// One unflushed write.
#[derive(Clone)]
pub struct Pending {
    pub page: u64,
    pub data: Box<[u8]>,
}

/// A sparse in-memory disk with a volatile write cache.
#[derive(Clone)]
pub struct SimDev {
    size: u64,
    durable: HashMap<u64, Box<[u8]>>,
    volatile: HashMap<u64, Box<[u8]>>,
    /// Writes since the last flush, in issue order (one per page).
    pub pending: Vec<Pending>,
    /// Write calls so far.
    pub writes: u64,
    /// Lose power once this many write calls completed.
    pub cut_after: Option<u64>,
    /// Power is off: every call fails.
    pub dead: bool,
    pub bytes_written: u64,
    pub flushes: u64,
    pub fua_writes: u64,
    /// Read calls so far.
    pub reads: u64,
    /// Serve `read_ahead` (off: the trait's default, which reads nothing).
    pub read_ahead: bool,
    /// The outstanding read ahead: its offset and the bytes read.
    ahead: Option<(u64, Vec<u8>)>,
    /// Read aheads started, and taken at least in part.
    pub ahead_started: u64,
    pub ahead_taken: u64,
    /// Serve `read_pieces` (off: the trait's default, which reads nothing).
    pub batch_reads: bool,
    /// Batches read (`read_pieces`), and the pieces they held; their reads
    /// do not count in `reads`.
    pub batches: u64,
    pub batch_pieces: u64,
}

impl SimDev {
    pub fn new(size: u64) -> Self {
        SimDev {
            size,
            durable: HashMap::new(),
            volatile: HashMap::new(),
            pending: Vec::new(),
            writes: 0,
            cut_after: None,
            dead: false,
            bytes_written: 0,
            flushes: 0,
            fua_writes: 0,
            reads: 0,
            read_ahead: false,
            ahead: None,
            ahead_started: 0,
            ahead_taken: 0,
            batch_reads: true,
            batches: 0,
            batch_pieces: 0,
        }
    }

    fn check(&self, offset: u64, len: usize) -> Result<()> {
        assert!(offset.is_multiple_of(512) && len.is_multiple_of(512), "unaligned I/O at {offset} len {len}");
        assert!(offset.is_multiple_of(PAGE) && (len as u64).is_multiple_of(PAGE), "I/O not in whole 4 KiB pages at {offset} len {len}");
        if offset + len as u64 > self.size {
            return Err(Error::Io);
        }
        Ok(())
    }

    /// The disk after a crash now: durable pages plus the unflushed writes
    /// `keep` selects, applied in the order given.
    pub fn crash_image(&self, keep: &[usize]) -> SimDev {
        let mut d = SimDev::new(self.size);
        d.durable = self.durable.clone();
        for &i in keep {
            let p = &self.pending[i];
            d.durable.insert(p.page, p.data.clone());
        }
        d.volatile = d.durable.clone();
        d
    }

    /// All unflushed writes lost.
    pub fn crash_drop_all(&self) -> SimDev {
        self.crash_image(&[])
    }

    /// All unflushed writes kept.
    pub fn crash_keep_all(&self) -> SimDev {
        let all: Vec<usize> = (0..self.pending.len()).collect();
        self.crash_image(&all)
    }

    /// A random subset of unflushed writes kept, applied in random order.
    pub fn crash_random(&self, rng: &mut Rng) -> SimDev {
        let mut keep: Vec<usize> = (0..self.pending.len()).filter(|_| rng.below(2) == 0).collect();
        rng.shuffle(&mut keep);
        self.crash_image(&keep)
    }

    /// Pages in use (for figures).
    pub fn pages(&self) -> usize {
        self.volatile.len()
    }

    fn read_uncounted(&mut self, offset: u64, buf: &mut [u8]) -> Result<()> {
        if self.dead {
            return Err(Error::Io);
        }
        self.check(offset, buf.len())?;
        for (i, chunk) in buf.chunks_mut(PAGE as usize).enumerate() {
            match self.volatile.get(&(offset / PAGE + i as u64)) {
                Some(p) => chunk.copy_from_slice(p),
                None => chunk.fill(0),
            }
        }
        Ok(())
    }
}

impl BlockDevice for SimDev {
    fn size_bytes(&self) -> u64 {
        self.size
    }

    fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<()> {
        self.reads += 1;
        self.read_uncounted(offset, buf)
    }

    fn read_pieces(&mut self, offsets: &[u64], piece: usize, buf: &mut [u8]) -> Result<bool> {
        if !self.batch_reads {
            return Ok(false);
        }
        assert_eq!(buf.len(), offsets.len() * piece, "batch buffer not one piece per offset");
        self.batches += 1;
        self.batch_pieces += offsets.len() as u64;
        for (&o, b) in offsets.iter().zip(buf.chunks_exact_mut(piece)) {
            self.read_uncounted(o, b)?;
        }
        Ok(true)
    }

    fn write(&mut self, offset: u64, buf: &[u8], fua: bool) -> Result<()> {
        if self.dead {
            return Err(Error::Io);
        }
        if self.cut_after.is_some_and(|n| self.writes >= n) {
            self.dead = true;
            return Err(Error::Io);
        }
        self.check(offset, buf.len())?;
        self.writes += 1;
        self.bytes_written += buf.len() as u64;
        for (i, chunk) in buf.chunks(PAGE as usize).enumerate() {
            let page = offset / PAGE + i as u64;
            let data: Box<[u8]> = chunk.into();
            self.volatile.insert(page, data.clone());
            if fua {
                self.durable.insert(page, data);
            } else {
                self.pending.push(Pending { page, data });
            }
        }
        if fua {
            self.fua_writes += 1;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        if self.dead {
            return Err(Error::Io);
        }
        self.flushes += 1;
        for p in self.pending.drain(..) {
            self.durable.insert(p.page, p.data);
        }
        Ok(())
    }

    /// Reads at once (as a device would start to), and checks at the take
    /// that nothing wrote the blocks in between, as the caller promises.
    fn read_ahead(&mut self, offset: u64, len: usize) -> Result<()> {
        self.ahead = None;
        if !self.read_ahead {
            return Ok(());
        }
        let mut buf = vec![0u8; len];
        self.read(offset, &mut buf)?;
        self.ahead_started += 1;
        self.ahead = Some((offset, buf));
        Ok(())
    }

    fn read_ahead_take(&mut self, offset: u64, buf: &mut [u8]) -> Result<usize> {
        let Some((at, data)) = self.ahead.take() else { return Ok(0) };
        if at != offset {
            return Ok(0);
        }
        let n = data.len().min(buf.len());
        let mut now = vec![0u8; data.len()];
        self.read(at, &mut now)?;
        self.reads -= 1;
        assert!(now == data, "blocks read ahead at {at} were written before the take");
        buf[..n].copy_from_slice(&data[..n]);
        self.ahead_taken += 1;
        Ok(n)
    }

    fn read_ahead_cancel(&mut self) {
        self.ahead = None;
    }
}

/// splitmix64: small, seeded, reproducible.
#[derive(Clone)]
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next() % n
        }
    }
    pub fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = self.below(i as u64 + 1) as usize;
            v.swap(i, j);
        }
    }
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

pub fn ts(sec: i64) -> Timespec {
    Timespec { sec, nsec: 0 }
}

/// A freshly formatted simulated disk of `size` bytes.
pub fn fresh(size: u64) -> SimDev {
    let mut d = SimDev::new(size);
    let opts =
        MkfsOptions { block_size: 4096, size_bytes: size, uuid: [0x5a; 16], label: b"test", now: (1000, 0), fast_commit_blocks: None };
    mkfs::format(&mut d, &opts).expect("mkfs");
    d.flush().unwrap();
    d
}

/// A freshly formatted simulated disk of `size` bytes whose fast-commit
/// area has `area_blocks` blocks.
pub fn fresh_with_area(size: u64, area_blocks: u64) -> SimDev {
    let mut d = SimDev::new(size);
    let opts = MkfsOptions {
        block_size: 4096,
        size_bytes: size,
        uuid: [0x5b; 16],
        label: b"",
        now: (1000, 0),
        fast_commit_blocks: Some(area_blocks),
    };
    mkfs::format(&mut d, &opts).expect("mkfs");
    d
}

pub fn mount(d: SimDev) -> Filesystem<SimDev> {
    Filesystem::mount(d).expect("mount")
}

/// Seed from `FERROFS_SEED` or the given default.
pub fn seed_or(default: u64) -> u64 {
    std::env::var("FERROFS_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(default)
}

/// Full-size runs when `FERROFS_FULL` is set.
pub fn full() -> bool {
    std::env::var("FERROFS_FULL").is_ok()
}

/// FNV-1a, to describe file contents compactly.
pub fn fnv(b: &[u8]) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for &c in b {
        h = (h ^ c as u64).wrapping_mul(0x100_0000_01b3);
    }
    h
}

/// Everything visible from the root, path by path: attributes, contents,
/// targets and xattrs (times left out), into subvolumes too.
pub fn visible(fs: &mut Filesystem<SimDev>) -> std::collections::BTreeMap<String, String> {
    visible_in(fs, SV)
}

/// `visible` from the root of subvolume `sv`.
pub fn visible_in(fs: &mut Filesystem<SimDev>, sv: SubvolId) -> std::collections::BTreeMap<String, String> {
    use ferrofs_core::format::FileType;
    let mut out = std::collections::BTreeMap::new();
    let start = sv;
    let mut todo = vec![(String::from("/"), sv, fs.root_ino())];
    while let Some((path, sv, ino)) = todo.pop() {
        let a = fs.getattr(sv, ino).unwrap_or_else(|e| panic!("getattr {path}: {e:?}"));
        // Subvolumes below the start are named, so two trees compare equal
        // whichever subvolume they start in.
        let in_sv = if sv == start { String::new() } else { format!("sv {} ", sv.0) };
        let mut d = format!(
            "{in_sv}ino {} mode {:o} uid {} gid {} nlink {} size {} blocks {} rdev {}",
            ino, a.mode, a.uid, a.gid, a.nlink, a.size, a.blocks, a.rdev
        );
        match a.file_type() {
            FileType::Dir => {
                let mut ents = Vec::new();
                fs.readdir(sv, ino, 0, &mut |n, i, t, c| {
                    ents.push((n.to_vec(), i, t, c));
                    true
                })
                .unwrap_or_else(|e| panic!("readdir {path}: {e:?}"));
                for (n, i, t, c) in ents {
                    d.push_str(&format!(" [{} {} {:?} {}]", String::from_utf8_lossy(&n), i, t, c));
                    let (csv, cino) =
                        fs.lookup_at(sv, ino, &n).unwrap_or_else(|e| panic!("lookup {path}{}: {e:?}", String::from_utf8_lossy(&n)));
                    todo.push((format!("{path}{}/", String::from_utf8_lossy(&n)), csv, cino));
                }
            }
            FileType::Regular => {
                let mut buf = vec![0u8; a.size as usize];
                let n = fs.read(sv, ino, 0, &mut buf).unwrap_or_else(|e| panic!("read {path}: {e:?}"));
                assert_eq!(n as u64, a.size);
                d.push_str(&format!(" data {:x}", fnv(&buf)));
            }
            FileType::Symlink => {
                let t = fs.readlink(sv, ino).unwrap_or_else(|e| panic!("readlink {path}: {e:?}"));
                d.push_str(&format!(" target {:x}", fnv(&t)));
            }
            _ => {}
        }
        d.push_str(&xattr_summary(fs, sv, ino));
        out.insert(path, d);
    }
    out
}

/// ` x:NAME=HASH` for every xattr of an inode, by name.
pub fn xattr_summary(fs: &mut Filesystem<SimDev>, sv: SubvolId, ino: u64) -> String {
    let n = fs.list_xattr(sv, ino, &mut []).unwrap();
    let mut names = vec![0u8; n];
    fs.list_xattr(sv, ino, &mut names).unwrap();
    let mut names: Vec<&[u8]> = names.split(|&c| c == 0).filter(|s| !s.is_empty()).collect();
    names.sort();
    let mut d = String::new();
    for x in names {
        let len = fs.get_xattr(sv, ino, x, &mut []).unwrap();
        let mut v = vec![0u8; len];
        fs.get_xattr(sv, ino, x, &mut v).unwrap();
        d.push_str(&format!(" x:{}={:x}", String::from_utf8_lossy(x), fnv(&v)));
    }
    d
}

/// Panics with the problems if `check` is not clean.
pub fn assert_check_clean(fs: &mut Filesystem<SimDev>, what: &str) {
    let r = fs.check(false).unwrap_or_else(|e| panic!("{what}: check failed: {e:?}"));
    if !r.is_clean() {
        let ps: Vec<String> = r.problems.iter().map(|p| p.to_string()).collect();
        panic!("{what}: check found problems:\n{}", ps.join("\n"));
    }
}

/// Writes `data` (from file offset `offset`) to the blocks a two-step
/// write picked, zero-padded to whole blocks, as the kernel does.
pub fn write_runs(fs: &mut Filesystem<SimDev>, w: &ferrofs_core::data_write::DataWrite, offset: u64, data: &[u8]) -> Result<()> {
    for r in w.runs.iter() {
        let mut buf = vec![0u8; (r.blocks * PAGE) as usize];
        let from = (r.file_block * PAGE - offset) as usize;
        let n = buf.len().min(data.len().saturating_sub(from));
        buf[..n].copy_from_slice(&data[from..from + n]);
        fs.device().write(r.disk * PAGE, &buf, false)?;
    }
    Ok(())
}

/// The whole file, through `read` (which must fill exactly its size of a
/// larger buffer).
pub fn read_all(fs: &mut Filesystem<SimDev>, ino: u64) -> Vec<u8> {
    let size = fs.getattr(SV, ino).unwrap().size as usize;
    let mut buf = vec![0xeeu8; size + 10];
    assert_eq!(fs.read(SV, ino, 0, &mut buf).unwrap(), size);
    buf.truncate(size);
    buf
}

/// A device whose state the test keeps when a mount that failed drops
/// its handle.
pub struct SharedDev(pub std::rc::Rc<std::cell::RefCell<SimDev>>);

impl ferrofs_core::device::BlockDevice for SharedDev {
    fn size_bytes(&self) -> u64 {
        self.0.borrow().size_bytes()
    }
    fn read(&mut self, offset: u64, buf: &mut [u8]) -> ferrofs_core::error::Result<()> {
        self.0.borrow_mut().read(offset, buf)
    }
    fn write(&mut self, offset: u64, buf: &[u8], fua: bool) -> ferrofs_core::error::Result<()> {
        self.0.borrow_mut().write(offset, buf, fua)
    }
    fn flush(&mut self) -> ferrofs_core::error::Result<()> {
        self.0.borrow_mut().flush()
    }
    fn read_pieces(&mut self, offsets: &[u64], piece: usize, buf: &mut [u8]) -> ferrofs_core::error::Result<bool> {
        self.0.borrow_mut().read_pieces(offsets, piece, buf)
    }
}

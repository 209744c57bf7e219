#!/usr/bin/env python3
# O_DIRECT on a mounted ferrofs, checked from userspace against a model of
# the file's bytes: the alignment rule (EINVAL) and what statx reports,
# aligned and sub-block transfers, holes, fallocated (unwritten) ranges,
# writes past EOF, O_APPEND and RLIMIT_FSIZE, coherency with buffered I/O
# and mmap both ways. `crash-write` (then `fc-append`) and `crash-check`
# are the two halves of a power-failure test (t_36). Prints PASS/FAIL
# lines like lib.sh.
# Usage: odirect.py MNT basic|crash-write|fc-append|crash-check
import ctypes
import mmap
import os
import random
import resource
import signal
import sys

from vmcheck import check, errno_of

mnt, phase = sys.argv[1], sys.argv[2]
SECTOR = 512
BS = 4096


def path(name):
    return os.path.join(mnt, name)


def aligned(data):
    # Anonymous mappings are page-aligned: a buffer O_DIRECT accepts.
    m = mmap.mmap(-1, max(len(data), 1))
    m[: len(data)] = data
    return m


def dwrite(fd, data, off):
    buf = aligned(data)
    n = os.pwritev(fd, [memoryview(buf)[: len(data)]], off)
    buf.close()
    return n


def dread(fd, n, off):
    buf = mmap.mmap(-1, max(n, 1))
    got = os.preadv(fd, [memoryview(buf)[:n]], off)
    data = bytes(buf[:got])
    buf.close()
    return data


def buffered(name):
    with open(path(name), "rb") as f:
        return f.read()


def pattern(n, seed):
    # The same bytes for the same seed, in both halves of the crash test.
    return random.Random(seed).randbytes(n)


class Statx(ctypes.Structure):
    # struct statx up to the direct-I/O alignment fields (include/uapi/linux/stat.h).
    _fields_ = [("mask", ctypes.c_uint32), ("blksize", ctypes.c_uint32), ("attributes", ctypes.c_uint64),
                ("nlink", ctypes.c_uint32), ("uid", ctypes.c_uint32), ("gid", ctypes.c_uint32),
                ("mode", ctypes.c_uint16), ("spare0", ctypes.c_uint16), ("ino", ctypes.c_uint64),
                ("size", ctypes.c_uint64), ("blocks", ctypes.c_uint64), ("attributes_mask", ctypes.c_uint64),
                ("times", ctypes.c_uint8 * 64), ("rdev", ctypes.c_uint32 * 2), ("dev", ctypes.c_uint32 * 2),
                ("mnt_id", ctypes.c_uint64), ("dio_mem_align", ctypes.c_uint32),
                ("dio_offset_align", ctypes.c_uint32), ("spare", ctypes.c_uint64 * 14)]


def statx_dioalign(p):
    STATX_DIOALIGN, SYS_STATX, AT_FDCWD = 0x2000, 332, -100
    libc = ctypes.CDLL(None, use_errno=True)
    st = Statx()
    if libc.syscall(ctypes.c_long(SYS_STATX), ctypes.c_long(AT_FDCWD), ctypes.c_char_p(p.encode()), ctypes.c_long(0),
                    ctypes.c_long(STATX_DIOALIGN), ctypes.byref(st)) != 0:
        return None
    return st.mask & STATX_DIOALIGN != 0, st.dio_mem_align, st.dio_offset_align


def basic():
    name = "d"
    fd = os.open(path(name), os.O_RDWR | os.O_CREAT | os.O_DIRECT, 0o644)
    check("statx-dioalign", statx_dioalign(path(name)) == (True, SECTOR, SECTOR), statx_dioalign(path(name)))

    # The alignment rule: offset, length and buffer address in sectors.
    check("write-misaligned-offset", errno_of(lambda: dwrite(fd, bytes(SECTOR), 1)) == "EINVAL")
    check("write-misaligned-length", errno_of(lambda: dwrite(fd, bytes(100), 0)) == "EINVAL")
    buf = aligned(bytes(2 * SECTOR))
    check("write-misaligned-buffer",
          errno_of(lambda: os.pwritev(fd, [memoryview(buf)[1: 1 + SECTOR]], 0)) == "EINVAL")
    check("read-misaligned-buffer",
          errno_of(lambda: os.preadv(fd, [memoryview(buf)[1: 1 + SECTOR]], 0)) == "EINVAL")
    check("read-misaligned-offset", errno_of(lambda: dread(fd, SECTOR, 3)) == "EINVAL")
    check("read-misaligned-length", errno_of(lambda: dread(fd, 1000, 0)) == "EINVAL")
    check("misaligned-left-file-empty", os.fstat(fd).st_size == 0)

    # Aligned round trip, larger than one piece (1 MiB) and not a whole
    # number of pieces, in several iovec segments.
    data = os.urandom(2 * 1024 * 1024 + 3 * BS)
    segs = [aligned(data[:BS]), aligned(data[BS:3 * 1024 * 1024])]
    n = os.pwritev(fd, [memoryview(segs[0])[:BS], memoryview(segs[1])[: len(data) - BS]], 0)
    check("aligned-write", n == len(data), n)
    check("aligned-size", os.fstat(fd).st_size == len(data), os.fstat(fd).st_size)
    check("aligned-read-direct", dread(fd, len(data), 0) == data)
    check("aligned-read-buffered", buffered(name) == data)
    check("aligned-blocks", os.fstat(fd).st_blocks == len(data) // 512, os.fstat(fd).st_blocks)
    model = bytearray(data)

    # Sector-aligned, not block-aligned: the rest of each block is kept.
    for off, n in [(SECTOR, SECTOR), (BS + 3 * SECTOR, 3 * SECTOR), (5 * BS - SECTOR, 2 * SECTOR), (7 * BS + SECTOR, 9 * BS)]:
        piece = os.urandom(n)
        dwrite(fd, piece, off)
        model[off: off + n] = piece
    check("subblock-write-direct-read", dread(fd, len(model), 0) == bytes(model))
    check("subblock-write-buffered-read", buffered(name) == bytes(model))
    check("subblock-read", dread(fd, 3 * SECTOR, BS + SECTOR) == bytes(model[BS + SECTOR: BS + 4 * SECTOR]))

    # Reads stop at EOF; at or past it they return nothing.
    os.ftruncate(fd, 10000)
    del model[10000:]
    got = dread(fd, 4 * BS, 0)
    check("read-short-at-eof", got == bytes(model), len(got))
    check("read-at-eof", dread(fd, SECTOR, 10240) == b"")

    # Past EOF: the gap reads as zeros, the old tail block is kept, the
    # size grows to the end of the write.
    piece = os.urandom(SECTOR)
    dwrite(fd, piece, 10240)
    model += bytes(10240 - len(model)) + piece
    check("extend-subblock", os.fstat(fd).st_size == 10752 and buffered(name) == bytes(model), os.fstat(fd).st_size)
    piece = os.urandom(2 * BS)
    dwrite(fd, piece, 64 * BS + SECTOR)
    model += bytes(64 * BS + SECTOR - len(model)) + piece
    check("extend-far", dread(fd, len(model) + BS, 0) == bytes(model) and buffered(name) == bytes(model))
    os.close(fd)

    # Holes: a sparse file written in the middle, read around it.
    fd = os.open(path("sparse"), os.O_RDWR | os.O_CREAT | os.O_DIRECT, 0o644)
    os.ftruncate(fd, 1024 * 1024)
    check("hole-reads-zeros", dread(fd, 64 * BS, 0) == bytes(64 * BS))
    piece = os.urandom(3 * SECTOR)
    dwrite(fd, piece, 100 * BS + SECTOR)
    want = bytes(100 * BS + SECTOR) + piece
    want += bytes(1024 * 1024 - len(want))
    check("hole-write", dread(fd, 1024 * 1024, 0) == want and buffered("sparse") == want)
    check("hole-write-size", os.fstat(fd).st_size == 1024 * 1024)
    check("hole-write-allocates-one-block", os.fstat(fd).st_blocks == 8, os.fstat(fd).st_blocks)
    os.close(fd)

    # Fallocated (unwritten) ranges read as zeros and take writes.
    fd = os.open(path("prealloc"), os.O_RDWR | os.O_CREAT | os.O_DIRECT, 0o644)
    os.posix_fallocate(fd, 0, 16 * BS)
    check("unwritten-reads-zeros", dread(fd, 16 * BS, 0) == bytes(16 * BS))
    piece = os.urandom(SECTOR)
    dwrite(fd, piece, 2 * BS + SECTOR)
    big = os.urandom(4 * BS)
    dwrite(fd, big, 8 * BS)
    want = bytearray(16 * BS)
    want[2 * BS + SECTOR: 2 * BS + 2 * SECTOR] = piece
    want[8 * BS: 12 * BS] = big
    check("unwritten-write", dread(fd, 16 * BS, 0) == bytes(want) and buffered("prealloc") == bytes(want))
    os.close(fd)

    # Coherency, page cache to direct: a buffered write not yet written
    # back, and a write through a shared mapping, are seen by direct reads.
    with open(path("coh"), "wb") as f:
        f.write(pattern(8 * BS, 1))
        f.flush()
        os.fsync(f.fileno())
    pfd = os.open(path("coh"), os.O_RDWR)
    dfd = os.open(path("coh"), os.O_RDWR | os.O_DIRECT)
    os.pwrite(pfd, b"B" * 1000, 100)
    check("buffered-write-then-direct-read", dread(dfd, BS, 0)[100:1100] == b"B" * 1000)
    m = mmap.mmap(pfd, 8 * BS)
    m[2 * BS: 2 * BS + 10] = b"M" * 10
    check("mmap-write-then-direct-read", dread(dfd, BS, 2 * BS)[:10] == b"M" * 10)

    # Direct to page cache: cached pages (read, mapped) show the new data.
    before = os.pread(pfd, 8 * BS, 0)
    m[5 * BS]  # faults the page into the mapping
    new = os.urandom(2 * BS)
    dwrite(dfd, new, 4 * BS + SECTOR * 4)
    after = bytearray(before)
    after[4 * BS + 4 * SECTOR: 6 * BS + 4 * SECTOR] = new
    check("direct-write-then-buffered-read", os.pread(pfd, 8 * BS, 0) == bytes(after))
    check("direct-write-then-mmap-read", m[:] == bytes(after))
    # A dirty mapped page in the range goes to the device before the
    # direct write, which then wins.
    m[SECTOR: SECTOR + 4] = b"DIRT"
    new = os.urandom(SECTOR)
    dwrite(dfd, new, 0)
    after[SECTOR: SECTOR + 4] = b"DIRT"
    after[:SECTOR] = new
    check("dirty-mmap-kept-around-direct-write", m[:] == bytes(after) and dread(dfd, 8 * BS, 0) == bytes(after))
    m.close()
    os.close(pfd)
    os.close(dfd)

    # mtime and ctime move with a direct write.
    os.utime(path("coh"), ns=(1_000_000_000, 1_000_000_000))
    dfd = os.open(path("coh"), os.O_RDWR | os.O_DIRECT)
    dwrite(dfd, bytes(SECTOR), 0)
    check("direct-write-moves-mtime", os.fstat(dfd).st_mtime_ns > 1_000_000_000)
    os.close(dfd)

    # O_APPEND: the write goes to EOF, which must itself be aligned.
    afd = os.open(path("app"), os.O_RDWR | os.O_CREAT | os.O_DIRECT | os.O_APPEND, 0o644)
    dwrite(afd, b"a" * BS, 0)
    dwrite(afd, b"b" * SECTOR, 0)
    check("append", buffered("app") == b"a" * BS + b"b" * SECTOR)
    with open(path("app"), "ab") as f:
        f.write(b"x")
    check("append-misaligned-eof", errno_of(lambda: dwrite(afd, b"c" * SECTOR, 0)) == "EINVAL")
    os.close(afd)

    # RLIMIT_FSIZE: EFBIG past it (SIGXFSZ ignored), nothing written.
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    old = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    lfd = os.open(path("limit"), os.O_RDWR | os.O_CREAT | os.O_DIRECT, 0o644)
    resource.setrlimit(resource.RLIMIT_FSIZE, (8 * BS, hard))
    try:
        e = errno_of(lambda: dwrite(lfd, bytes(BS), 8 * BS))
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, old)
    check("rlimit-fsize-efbig", e == "EFBIG" and os.fstat(lfd).st_size == 0, e)
    os.close(lfd)

    # A read-only descriptor cannot write.
    rfd = os.open(path(name), os.O_RDONLY | os.O_DIRECT)
    check("direct-write-on-readonly-fd", errno_of(lambda: dwrite(rfd, bytes(SECTOR), 0)) == "EBADF")
    os.close(rfd)


# The power-failure halves: what O_DIRECT|O_SYNC and O_DIRECT + fsync
# wrote must survive losing every later write.
CRASH = [("sync-aligned", 0, 3 * BS + 5 * 1024 * 1024), ("sync-subblock", SECTOR, 5 * SECTOR)]


def crash_write():
    for name, off, n in CRASH:
        data = pattern(n, len(name))
        fd = os.open(path(name), os.O_RDWR | os.O_CREAT | os.O_DIRECT | os.O_SYNC, 0o644)
        dwrite(fd, data, off)
        os.close(fd)
    # Into a file whose earlier content was committed: the new blocks and
    # the old ones around a sub-block write.
    fd = os.open(path("fsynced"), os.O_RDWR | os.O_CREAT | os.O_DIRECT, 0o644)
    dwrite(fd, pattern(16 * BS, 3), 0)
    os.fsync(fd)
    dwrite(fd, pattern(2 * SECTOR, 4), 5 * BS + SECTOR)
    dwrite(fd, pattern(BS, 5), 20 * BS)
    os.fsync(fd)
    os.close(fd)


def fc_append():
    # A small direct append and fsync: t_36 checks that a fast-commit
    # record served it, as for an append written back from the cache.
    fd = os.open(path("fsynced"), os.O_RDWR | os.O_DIRECT)
    dwrite(fd, pattern(BS, 6), 21 * BS)
    os.fsync(fd)
    os.close(fd)


def crash_expect(name):
    if name == "fsynced":
        want = bytearray(pattern(16 * BS, 3))
        want[5 * BS + SECTOR: 5 * BS + 3 * SECTOR] = pattern(2 * SECTOR, 4)
        want += bytes(4 * BS) + pattern(BS, 5) + pattern(BS, 6)
        return bytes(want)
    off, n = [(o, n) for nm, o, n in CRASH if nm == name][0]
    return bytes(off) + pattern(n, len(name))


def crash_check():
    for name in [c[0] for c in CRASH] + ["fsynced"]:
        try:
            got = buffered(name)
        except OSError as e:
            got = e
        check("survives-" + name, got == crash_expect(name), "missing" if isinstance(got, OSError) else len(got))


{"basic": basic, "crash-write": crash_write, "fc-append": fc_append, "crash-check": crash_check}[phase]()

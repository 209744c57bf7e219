#!/usr/bin/env python3
# Page-cache behaviour of a mounted ferrofs, checked from userspace: mmap
# reads and shared writes, partial-block zeroing on truncate, holes, splice,
# O_DIRECT open, times kept across writeback, ENOSPC at write(2) on a
# full filesystem, cold readahead of a file in many runs, and zeros past
# EOF when the device holds other bytes there. Prints PASS/FAIL lines like
# lib.sh.
import ctypes
import errno
import fcntl
import mmap
import os
import struct
import sys
import time

from vmcheck import check, errno_of

mnt = sys.argv[1]
phase = sys.argv[2]


def path(name):
    return os.path.join(mnt, name)


def pattern(n, seed):
    return bytes((i * 131 + seed) & 0xFF for i in range(n))


def write_file(name, data):
    with open(path(name), "wb") as f:
        f.write(data)


def read_file(name):
    with open(path(name), "rb") as f:
        return f.read()


def before_remount():
    # mmap read of data written through write(2).
    data = pattern(50000, 1)
    write_file("m", data)
    with open(path("m"), "rb") as f, mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ) as m:
        check("mmap-read-sees-write", m[:] == data)
    # Shared writable mapping: stores reach the file and survive msync.
    with open(path("m"), "r+b") as f, mmap.mmap(f.fileno(), 0) as m:
        m[100:105] = b"HELLO"
        m[45000:45003] = b"END"
        m.flush()
    got = read_file("m")
    check("mmap-write-read-back", got[100:105] == b"HELLO" and got[45000:45003] == b"END" and got[:100] == data[:100])
    # A private mapping's stores stay private.
    with open(path("m"), "r+b") as f, mmap.mmap(f.fileno(), 0, flags=mmap.MAP_PRIVATE) as m:
        m[0:4] = b"PRIV"
    check("mmap-private-not-written", read_file("m")[:4] == data[:4])
    # Page cache and read(2) agree after a write at an odd offset.
    write_file("odd", pattern(10000, 2))
    fd = os.open(path("odd"), os.O_RDWR)
    os.pwrite(fd, b"xyz", 4095)
    check("pwrite-across-pages", os.pread(fd, 5, 4094) == bytes([pattern(10000, 2)[4094]]) + b"xyz" + bytes([pattern(10000, 2)[4098]]))
    # Truncate down to mid-block, then up: the tail reads as zeros even
    # though the old bytes were in the cache.
    os.ftruncate(fd, 5000)
    os.ftruncate(fd, 9000)
    tail = os.pread(fd, 4000, 5000)
    check("truncate-zeroes-partial-block", tail == bytes(4000), tail[:16])
    os.close(fd)
    # mmap store past EOF within the last page must not show after extension.
    write_file("eof", b"a" * 100)
    with open(path("eof"), "r+b") as f:
        # Python's mmap refuses to map past EOF; libc does not. A store into
        # the mapped page past EOF is allowed and is not file data.
        libc = ctypes.CDLL(None, use_errno=True)
        libc.mmap.restype = ctypes.c_void_p
        libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
        addr = libc.mmap(None, 4096, mmap.PROT_READ | mmap.PROT_WRITE, mmap.MAP_SHARED, f.fileno(), 0)
        check("mmap-eof-page", addr not in (None, ctypes.c_void_p(-1).value))
        if addr not in (None, ctypes.c_void_p(-1).value):
            ctypes.memset(addr + 200, 0x55, 1)
            libc.munmap(ctypes.c_void_p(addr), ctypes.c_size_t(4096))
        os.fsync(f.fileno())
        os.truncate(path("eof"), 300)
    check("mmap-past-eof-not-exposed", read_file("eof")[100:] == bytes(200))
    # Holes in a sparse file read as zeros through the cache and mmap.
    fd = os.open(path("sparse"), os.O_RDWR | os.O_CREAT, 0o644)
    os.pwrite(fd, b"Z", 8 * 1024 * 1024)
    with mmap.mmap(fd, 0, prot=mmap.PROT_READ) as m:
        check("hole-via-mmap", m[4096:8192] == bytes(4096) and m[8 * 1024 * 1024] == ord("Z"))
    os.close(fd)
    # splice from a pipe into a file and from a file into a pipe.
    r, w = os.pipe()
    os.write(w, b"spliced!")
    fd = os.open(path("spl"), os.O_RDWR | os.O_CREAT, 0o644)
    n = os.splice(r, fd, 8)
    check("splice-to-file", n == 8 and os.pread(fd, 8, 0) == b"spliced!")
    n = os.splice(fd, w, 8, offset_src=0)
    check("splice-from-file", n == 8 and os.read(r, 8) == b"spliced!")
    os.close(fd)
    os.close(r)
    os.close(w)
    # O_DIRECT opens (odirect.py tests its data path).
    check("odirect-opens", errno_of(lambda: os.close(os.open(path("m"), os.O_RDWR | os.O_DIRECT))) == "OK")
    # mtime set by write(2) survives writeback done long after.
    write_file("times", b"t" * 5000)
    st = os.stat(path("times"))
    with open(path("mtime.expect"), "w") as f:
        f.write("%d" % st.st_mtime_ns)
    time.sleep(1.2)
    os.sync()
    check("mtime-kept-by-writeback", os.stat(path("times")).st_mtime_ns == st.st_mtime_ns)
    check("blocks-after-sync", os.stat(path("times")).st_blocks == 16, os.stat(path("times")).st_blocks)
    # truncate(2) asks the filesystem for no time change, yet a size
    # change must move mtime and ctime.
    os.utime(path("times"), ns=(1_000_000_000, 1_000_000_000))
    os.truncate(path("times"), 100)
    st = os.stat(path("times"))
    check("truncate-down-moves-mtime", st.st_mtime_ns > 1_000_000_000 and st.st_ctime_ns >= st.st_mtime_ns, st.st_mtime_ns)
    os.utime(path("times"), ns=(1_000_000_000, 1_000_000_000))
    os.truncate(path("times"), 9000)
    check("truncate-up-moves-mtime", os.stat(path("times")).st_mtime_ns > 1_000_000_000)
    os.utime(path("times"), ns=(1_000_000_000, st.st_mtime_ns))
    with open(path("mtime.expect"), "w") as f:
        f.write("%d" % st.st_mtime_ns)
    # Big sequential write and read back (many readahead windows).
    big = os.urandom(1 << 20) * 24
    write_file("big", big)
    check("big-read-back", read_file("big") == big)
    write_layout()
    eoftail_write()


# The "layout" file, read cold after the remount: runs written at different
# times and out of order (so they lie apart on the device), a run split by
# an overwrite, a hole, an unwritten (fallocated) range, and an end of file
# 1000 bytes into a block that was full of 0xAA before it was cut there
# (the cut zeroes the block's tail; readahead zeroes it once more).
BS = 4096
LAYOUT_HOLE = (200, 260)
LAYOUT_UNWRITTEN = (300, 340)
LAYOUT_SIZE = 700 * BS + 1000


def layout_expected():
    data = bytearray(pattern(LAYOUT_SIZE, 7))
    for a, b in (LAYOUT_HOLE, LAYOUT_UNWRITTEN):
        data[a * BS:b * BS] = bytes((b - a) * BS)
    return bytes(data)


def write_layout():
    want = layout_expected()
    fd = os.open(path("layout"), os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
    # The block holding the end of file, full of 0xAA, cut mid-block below.
    os.pwrite(fd, b"\xaa" * BS, 700 * BS)
    os.fsync(fd)
    # Back to front, each piece synced on its own.
    for a, b in ((600, 700), (400, 600), (340, 400), (260, 300), (100, 200), (0, 100)):
        os.pwrite(fd, want[a * BS:b * BS], a * BS)
        os.fsync(fd)
    os.pwrite(fd, want[700 * BS:], 700 * BS)
    os.fsync(fd)
    # Splits the run 400..600 in three on the device.
    os.pwrite(fd, want[450 * BS:460 * BS], 450 * BS)
    os.fsync(fd)
    os.posix_fallocate(fd, LAYOUT_UNWRITTEN[0] * BS, (LAYOUT_UNWRITTEN[1] - LAYOUT_UNWRITTEN[0]) * BS)
    os.ftruncate(fd, LAYOUT_SIZE)
    os.fsync(fd)
    os.close(fd)
    check("layout-written", read_file("layout") == want)


def check_layout_cold():
    want = layout_expected()
    # 4 KiB reads in order: the page cache's readahead windows grow and
    # the next one starts while the last is read.
    got = bytearray()
    with open(path("layout"), "rb", buffering=0) as f:
        while chunk := f.read(BS):
            got += chunk
    bad = next((i // BS for i in range(0, len(want), BS) if got[i:i + BS] != want[i:i + BS]), None)
    check("layout-cold-small-reads", bytes(got) == want, f"first bad block {bad}, {len(got)} bytes")
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3")
    with open(path("layout"), "rb") as f, mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ) as m:
        # Faults read the file through readahead too.
        check("layout-cold-mmap", m[:] == want)
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3")
    check("layout-cold-one-read", read_file("layout") == want)
    # Past the end of file in its last page: zeros, not the old 0xAA.
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3")
    with open(path("layout"), "rb") as f:
        addr = libc.mmap(None, BS, mmap.PROT_READ, mmap.MAP_SHARED, f.fileno(), 700 * BS)
        ok = addr not in (None, ctypes.c_void_p(-1).value)
        tail = ctypes.string_at(addr + 1000, BS - 1000) if ok else b""
        if ok:
            libc.munmap(ctypes.c_void_p(addr), ctypes.c_size_t(BS))
    check("layout-cold-eof-tail-zero", tail == bytes(BS - 1000), tail[:8])


# "eoftail": 1000 bytes whose block's tail the test then overwrites with
# 0x5A on the unmounted device (t_32), as a crafted image or another
# writer could leave it: the filesystem keeps bytes past EOF zero on disk,
# so only the read side's zeroing hides them.
EOFTAIL_LEN = 1000
FS_IOC_FIEMAP = 0xC020660B


def fiemap_first_physical(name):
    """Device byte of the file's first extent (FS_IOC_FIEMAP, synced)."""
    count = 4
    buf = bytearray(32 + 56 * count)
    # struct fiemap: start, length, flags (FIEMAP_FLAG_SYNC), mapped, count.
    struct.pack_into("QQIIII", buf, 0, 0, 1 << 62, 1, 0, count, 0)
    with open(path(name), "rb") as f:
        fcntl.ioctl(f.fileno(), FS_IOC_FIEMAP, buf)
    if struct.unpack_from("I", buf, 20)[0] < 1:
        return None
    # fm_extents[0].fe_physical.
    return struct.unpack_from("Q", buf, 32 + 8)[0]


def eoftail_write():
    write_file("eoftail", pattern(EOFTAIL_LEN, 9))
    os.sync()
    phys = fiemap_first_physical("eoftail")
    check("eoftail-mapped", phys is not None and phys % BS == 0, phys)
    # t_32 reads this and writes the block's tail on the device.
    with open("/tmp/eoftail.phys", "w") as f:
        f.write("%d" % (phys + EOFTAIL_LEN if phys is not None else -1))


def eoftail_check():
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
    # Twice, caches dropped before each: a fault (readahead), and read(2)
    # then a fault on the folio the read brought in.
    for how in ("fault", "read"):
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3")
        with open(path("eoftail"), "rb") as f:
            if how == "read":
                data = f.read()
                check("eoftail-read-length", data == pattern(EOFTAIL_LEN, 9), len(data))
            addr = libc.mmap(None, BS, mmap.PROT_READ, mmap.MAP_SHARED, f.fileno(), 0)
            ok = addr not in (None, ctypes.c_void_p(-1).value)
            page = ctypes.string_at(addr, BS) if ok else b""
            if ok:
                libc.munmap(ctypes.c_void_p(addr), ctypes.c_size_t(BS))
        check(f"eoftail-{how}-data", page[:EOFTAIL_LEN] == pattern(EOFTAIL_LEN, 9))
        check(f"eoftail-{how}-past-eof-zero", page[EOFTAIL_LEN:] == bytes(BS - EOFTAIL_LEN), page[EOFTAIL_LEN:EOFTAIL_LEN + 8])


def after_remount():
    got = read_file("m")
    check("mmap-write-durable", got[100:105] == b"HELLO" and got[45000:45003] == b"END")
    check("truncated-file-after-remount", read_file("odd")[5000:9000] == bytes(4000) and len(read_file("odd")) == 9000)
    with open(path("mtime.expect")) as f:
        want = int(f.read())
    check("mtime-after-remount", os.stat(path("times")).st_mtime_ns == want, (os.stat(path("times")).st_mtime_ns, want))
    check("sparse-after-remount", os.stat(path("sparse")).st_size == 8 * 1024 * 1024 + 1)
    check_layout_cold()
    eoftail_check()


def fill():
    # Fill a small filesystem: write(2) itself reports ENOSPC, and what it
    # accepted is all there after sync.
    accepted = 0
    err = "none"
    chunk = b"F" * (1 << 20)
    fd = os.open(path("fill"), os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        while True:
            accepted += os.write(fd, chunk)
    except OSError as e:
        err = errno.errorcode.get(e.errno, str(e.errno))
    check("enospc-at-write", err == "ENOSPC", err)
    fsync = errno_of(lambda: os.fsync(fd))
    check("fsync-after-enospc-ok", fsync == "OK", fsync)
    os.close(fd)
    st = os.stat(path("fill"))
    check("accepted-bytes-present", st.st_size == accepted, (st.st_size, accepted))
    with open(path("fill"), "rb") as f:
        ok = all(c == chunk[: len(c)] for c in iter(lambda: f.read(1 << 20), b""))
    check("accepted-bytes-readable", ok)
    os.unlink(path("fill"))
    os.sync()
    write_file("after", b"x" * 100000)
    check("write-after-cleanup", read_file("after") == b"x" * 100000)


try:
    {"before": before_remount, "after": after_remount, "fill": fill}[phase]()
except Exception as e:  # a crash of the checker is a failure, not a skip
    check("pagecache-" + phase + "-completed", False, repr(e))

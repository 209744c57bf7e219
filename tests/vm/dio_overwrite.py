#!/usr/bin/env python3
# In-place O_DIRECT overwrites (t_36): an asynchronous write of whole
# blocks before EOF onto blocks the file alone holds since the last commit
# goes to the same device blocks (FIEMAP), with or without RWF_NOWAIT, and
# so does a synchronous one;
# the cached pages of its range show the new bytes after it; a dirty page
# makes the RWF_NOWAIT one EAGAIN; and blocks of the running transaction,
# a partial block, a write past EOF and a snapshot's shared blocks all go
# copy-on-write instead. `write` runs these and fsyncs; `check`, after a
# power cut and remount, checks the bytes. Prints PASS/FAIL lines like
# lib.sh.
# Usage: dio_overwrite.py MNT write|check
import ctypes
import errno
import mmap
import os
import struct
import subprocess
import sys
import threading

from vmcheck import check, physical, syscall

mnt, phase = sys.argv[1], sys.argv[2]
BS = 4096
BLOCKS = 16
path = os.path.join(mnt, "inplace")
SYS_IO_SETUP, SYS_IO_DESTROY, SYS_IO_GETEVENTS, SYS_IO_SUBMIT = 206, 207, 208, 209


class Aio:
    """Linux AIO writes: run([(offset, bytes)], flags) -> each result."""

    def __init__(self):
        ctx = ctypes.c_ulong(0)
        syscall(SYS_IO_SETUP, 32, ctypes.byref(ctx))
        self.ctx = ctx.value

    def submit(self, fd, writes, rw_flags=0):
        """Submits the writes; returns what `reap` needs."""
        bufs = [mmap.mmap(-1, max(len(data), BS)) for _, data in writes]
        iocbs = [ctypes.create_string_buffer(64) for _ in writes]
        for i, (off, data) in enumerate(writes):
            bufs[i][:len(data)] = data
            addr = ctypes.addressof(ctypes.c_char.from_buffer(bufs[i]))
            struct.pack_into("<QIIHhIQQqQII", iocbs[i], 0, i, 0, rw_flags, 1, 0, fd, addr, len(data), off, 0, 0, 0)
        ptrs = (ctypes.c_void_p * len(writes))(*[ctypes.addressof(b) for b in iocbs])
        submitted = syscall(SYS_IO_SUBMIT, self.ctx, len(writes), ptrs)
        return (len(writes), submitted, bufs, iocbs)

    def reap(self, pending):
        """Waits for the writes `submit` started; each result."""
        count, submitted, bufs, _iocbs = pending
        events = ctypes.create_string_buffer(32 * count)
        res, got = [None] * count, 0
        while got < submitted:
            n = syscall(SYS_IO_GETEVENTS, self.ctx, 1, count - got, ctypes.addressof(events), 0)
            for k in range(n):
                data, _obj, r, _r2 = struct.unpack_from("<QQqq", events, 32 * k)
                res[data] = r
            got += n
        for b in bufs:
            b.close()
        return res

    def run(self, fd, writes, rw_flags=0):
        return self.reap(self.submit(fd, writes, rw_flags))


def fill(blk, byte):
    return bytes([byte]) * BS


def model(snapshot_write=True):
    m = bytearray(b"\x11" * (BLOCKS * BS))
    for blk, byte in [(2, 0x21), (3, 0x22), (9, 0x23), (5, 0x24), (7, 0x25), (12, 0x26), (10, 0x29)]:
        m[blk * BS:(blk + 1) * BS] = fill(blk, byte)
    m[4 * BS + 512:4 * BS + 1024] = b"\x27" * 512
    if snapshot_write:
        m[1 * BS:2 * BS] = fill(1, 0x28)
    return bytes(m)


def aligned(data):
    """`data` in page-aligned memory, as O_DIRECT needs."""
    m = mmap.mmap(-1, len(data))
    m[:] = data
    return m


def read_all(p):
    with open(p, "rb") as f:
        return f.read()


def nowait_write(aio, fd, writes):
    # EAGAIN is right while the core lock is busy a moment (a background
    # commit) or a node is not cached yet: a few tries.
    res = None
    for _ in range(20):
        res = aio.run(fd, writes, os.RWF_NOWAIT)
        if -errno.EAGAIN not in res:
            break
    return res


def write():
    with open(path, "wb") as f:
        f.write(b"\x11" * (BLOCKS * BS))
    # Committed: the blocks are the last commit's, this file's alone.
    os.sync()
    aio = Aio()
    fd = os.open(path, os.O_RDWR | os.O_DIRECT)
    before = [physical(fd, b * BS) for b in range(BLOCKS)]
    res = aio.run(fd, [(2 * BS, fill(2, 0x21) + fill(3, 0x22)), (9 * BS, fill(9, 0x23))])
    check("overwrite-completes", res == [2 * BS, BS], res)
    check("overwrite-in-place", [physical(fd, b * BS) for b in (2, 3, 9)] == [before[b] for b in (2, 3, 9)])
    # Its nodes now cached: with RWF_NOWAIT it goes from the submitter.
    res = nowait_write(aio, fd, [(5 * BS, fill(5, 0x24))])
    check("overwrite-nowait-completes", res == [BS], res)
    check("overwrite-nowait-in-place", physical(fd, 5 * BS) == before[5])
    # Cached pages of the range show the new bytes once it completes.
    with open(path, "rb") as f:
        f.read()
        res = nowait_write(aio, fd, [(7 * BS, fill(7, 0x25))])
        check("overwrite-cached-page-sees-new-bytes", res == [BS] and os.pread(f.fileno(), BS, 7 * BS) == fill(7, 0x25), res)
    # A dirty page: EAGAIN with RWF_NOWAIT; without, written back first,
    # then the direct write's bytes win.
    with open(path, "r+b") as f:
        f.seek(12 * BS)
        f.write(b"dirty")
        f.flush()
        res = aio.run(fd, [(12 * BS, fill(12, 0x26))], os.RWF_NOWAIT)
        check("overwrite-nowait-dirty-eagain", res == [-errno.EAGAIN], res)
        res = aio.run(fd, [(12 * BS, fill(12, 0x26))])
        check("overwrite-over-dirty-page", res == [BS], res)
    # A synchronous one goes in place too.
    os.pwrite(fd, memoryview(aligned(fill(10, 0x29))), 10 * BS)
    check("sync-overwrite-in-place", physical(fd, 10 * BS) == before[10])
    # Copy-on-write: part of a block.
    res = aio.run(fd, [(4 * BS + 512, b"\x27" * 512)])
    check("partial-block-cow", res == [512] and physical(fd, 4 * BS) != before[4], (res, physical(fd, 4 * BS), before[4]))
    check("overwrite-bytes", read_all(path) == model(snapshot_write=False))
    # Copy-on-write: blocks written since the last commit.
    fresh = os.path.join(mnt, "fresh")
    gd = os.open(fresh, os.O_RDWR | os.O_CREAT | os.O_DIRECT, 0o644)
    os.pwrite(gd, mmap.mmap(-1, 2 * BS), 0)
    was = physical(gd, 0)
    res = aio.run(gd, [(0, fill(0, 0x31))])
    check("uncommitted-block-cow", res == [BS] and physical(gd, 0) != was, (res, was))
    # Copy-on-write: a write that ends past EOF.
    res = aio.run(gd, [(BS, fill(1, 0x32) + fill(2, 0x33))])
    check("write-past-eof-grows", res == [2 * BS] and os.fstat(gd).st_size == 3 * BS, res)
    check("fresh-bytes", read_all(fresh) == fill(0, 0x31) + fill(1, 0x32) + fill(2, 0x33))
    os.close(gd)
    # Copy-on-write: blocks a snapshot shares; the snapshot keeps its bytes.
    snap = os.path.join(mnt, "snap")
    subprocess.run(["ferrofs", "subvolume", "snapshot", mnt, snap], check=True, stdout=subprocess.DEVNULL)
    snapped = read_all(os.path.join(snap, "inplace"))
    was = physical(fd, 1 * BS)
    res = aio.run(fd, [(1 * BS, fill(1, 0x28))])
    check("snapshot-shared-cow", res == [BS] and physical(fd, 1 * BS) != was, (res, was))
    check("snapshot-keeps-bytes", read_all(os.path.join(snap, "inplace")) == snapped)
    check("overwrite-bytes-after-snapshot", read_all(path) == model())
    # Overwrites in a stream while snapshots are taken: a snapshot closes
    # the gate and waits for those in flight, they go copy-on-write until
    # it is done; neither waits forever.
    stream = os.path.join(mnt, "stream")
    with open(stream, "wb") as f:
        f.write(b"\x61" * (BLOCKS * BS))
    os.sync()
    sd = os.open(stream, os.O_RDWR | os.O_DIRECT)
    stop, results = threading.Event(), []

    def overwrite_stream():
        saio = Aio()
        k = 0
        while not stop.is_set():
            k += 1
            results.extend(saio.run(sd, [(b * BS, fill(b, 0x70 + k % 16)) for b in (k % BLOCKS, (k * 7) % BLOCKS)]))
        syscall(SYS_IO_DESTROY, saio.ctx)

    t = threading.Thread(target=overwrite_stream)
    t.start()
    for i in range(3):
        subprocess.run(["ferrofs", "subvolume", "snapshot", "-r", mnt, os.path.join(mnt, f"stream-snap{i}")], check=True, stdout=subprocess.DEVNULL)
    stop.set()
    t.join(120)
    check("overwrite-stream-with-snapshots", not t.is_alive() and results and all(r == BS for r in results), len(results))
    os.close(sd)
    os.fsync(fd)
    os.close(fd)
    syscall(SYS_IO_DESTROY, aio.ctx)


def check_after_crash():
    check("overwrite-fsynced-bytes-survive-power-cut", read_all(path) == model())


{"write": write, "check": check_after_crash}[phase]()

#!/usr/bin/env python3
# Asynchronous O_DIRECT on a mounted ferrofs through both kernel
# interfaces, called by raw system calls (fio needs System V shared
# memory, which the guest kernel lacks): Linux AIO (io_setup, io_submit,
# io_getevents: what libaio wraps) and io_uring (rings mapped from the
# io_uring fd). Each submits a batch of aligned and sector-sized writes in
# one call, then reads them back in one batch, checks every completion's
# result and the bytes, and that a misaligned request completes with
# -EINVAL; then RWF_NOWAIT through Linux AIO. Prints PASS/FAIL lines like
# lib.sh.
# Usage: aio_direct.py MNT
import ctypes
import errno
import mmap
import os
import struct
import sys

from vmcheck import check, errno_of, syscall

mnt = sys.argv[1]
SYS_IO_SETUP, SYS_IO_DESTROY, SYS_IO_GETEVENTS, SYS_IO_SUBMIT = 206, 207, 208, 209
SYS_IO_URING_SETUP, SYS_IO_URING_ENTER = 425, 426


def addr(buf):
    return ctypes.addressof(ctypes.c_char.from_buffer(buf))


# Requests: (offset, length) pairs; a sector-sized one inside a block
# makes the filesystem read the rest of that block.
REQS = [(i * 8192, 4096) for i in range(8)] + [(17 * 4096 + 512 + i * 1024, 512) for i in range(8)]


def payload(i, n):
    return bytes([(i * 37 + 1) & 0xFF]) * n


class LinuxAio:
    """io_setup/io_submit/io_getevents (struct iocb and io_event from
    include/uapi/linux/aio_abi.h)."""

    def __init__(self, depth):
        ctx = ctypes.c_ulong(0)
        syscall(SYS_IO_SETUP, depth, ctypes.byref(ctx))
        self.ctx = ctx.value

    def run(self, fd, ops, rw_flags=0):
        # ops: (write?, offset, buffer address, length); returns each res.
        iocbs = [ctypes.create_string_buffer(64) for _ in ops]
        for i, (write, off, buf, n) in enumerate(ops):
            struct.pack_into("<QIIHhIQQqQII", iocbs[i], 0, i, 0, rw_flags, 1 if write else 0, 0, fd, buf, n, off, 0, 0, 0)
        ptrs = (ctypes.c_void_p * len(ops))(*[ctypes.addressof(b) for b in iocbs])
        submitted = syscall(SYS_IO_SUBMIT, self.ctx, len(ops), ptrs)
        events = ctypes.create_string_buffer(32 * len(ops))
        got = 0
        res = [None] * len(ops)
        while got < submitted:
            n = syscall(SYS_IO_GETEVENTS, self.ctx, 1, len(ops) - got, ctypes.addressof(events), 0)
            for k in range(n):
                data, _obj, r, _r2 = struct.unpack_from("<QQqq", events, 32 * k)
                res[data] = r
            got += n
        return res

    def close(self):
        syscall(SYS_IO_DESTROY, self.ctx)


class IoUring:
    """io_uring_setup/io_uring_enter with the rings mapped (struct
    io_uring_params, io_uring_sqe, io_uring_cqe from
    include/uapi/linux/io_uring.h)."""

    OP_READ, OP_WRITE = 22, 23

    def __init__(self, depth):
        params = ctypes.create_string_buffer(120)
        self.fd = syscall(SYS_IO_URING_SETUP, depth, params)
        sq_entries, cq_entries, _flags, _cpu, _idle, features = struct.unpack_from("<6I", params, 0)
        self.sq_off = struct.unpack_from("<7I", params, 40)
        self.cq_off = struct.unpack_from("<7I", params, 80)
        prot = mmap.PROT_READ | mmap.PROT_WRITE
        sq_size = self.sq_off[6] + sq_entries * 4
        cq_size = self.cq_off[5] + cq_entries * 16
        self.sq = mmap.mmap(self.fd, max(sq_size, cq_size), mmap.MAP_SHARED | mmap.MAP_POPULATE, prot, offset=0)
        single = features & 1  # IORING_FEAT_SINGLE_MMAP
        self.cq = self.sq if single else mmap.mmap(self.fd, cq_size, mmap.MAP_SHARED | mmap.MAP_POPULATE, prot, offset=0x8000000)
        self.sqes = mmap.mmap(self.fd, sq_entries * 64, mmap.MAP_SHARED | mmap.MAP_POPULATE, prot, offset=0x10000000)

    def u32(self, ring, off, value=None):
        if value is None:
            return struct.unpack_from("<I", ring, off)[0]
        struct.pack_into("<I", ring, off, value)

    def run(self, fd, ops):
        tail, mask = self.sq_off[1], self.u32(self.sq, self.sq_off[2])
        t = self.u32(self.sq, tail)
        for i, (write, off, buf, n) in enumerate(ops):
            idx = (t + i) & mask
            sqe = bytearray(64)
            struct.pack_into("<BBHiQQIIQ", sqe, 0, self.OP_WRITE if write else self.OP_READ, 0, 0, fd, off, buf, n, 0, i)
            self.sqes[idx * 64: idx * 64 + 64] = bytes(sqe)
            self.u32(self.sq, self.sq_off[6] + idx * 4, idx)
        self.u32(self.sq, tail, (t + len(ops)) & 0xFFFFFFFF)
        syscall(SYS_IO_URING_ENTER, self.fd, len(ops), len(ops), 1, 0, 0)  # IORING_ENTER_GETEVENTS
        res = [None] * len(ops)
        got = 0
        cmask = self.u32(self.cq, self.cq_off[2])
        while got < len(ops):
            h, ct = self.u32(self.cq, self.cq_off[0]), self.u32(self.cq, self.cq_off[1])
            if h == ct:
                syscall(SYS_IO_URING_ENTER, self.fd, 0, 1, 1, 0, 0)
                continue
            data, r, _flags = struct.unpack_from("<QiI", self.cq, self.cq_off[5] + (h & cmask) * 16)
            res[data] = r
            got += 1
            self.u32(self.cq, self.cq_off[0], (h + 1) & 0xFFFFFFFF)
        return res

    def close(self):
        for m in {id(self.sq): self.sq, id(self.cq): self.cq, id(self.sqes): self.sqes}.values():
            m.close()
        os.close(self.fd)


def exercise(name, engine):
    p = os.path.join(mnt, "async-" + name)
    fd = os.open(p, os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_DIRECT, 0o644)
    bufs = [mmap.mmap(-1, 4096) for _ in REQS]
    model = bytearray()
    for i, (off, n) in enumerate(REQS):
        bufs[i][:n] = payload(i, n)
        model.extend(bytes(max(0, off + n - len(model))))
        model[off: off + n] = payload(i, n)
    res = engine.run(fd, [(True, off, addr(bufs[i]), n) for i, (off, n) in enumerate(REQS)])
    check(name + "-writes-complete", res == [n for _, n in REQS], res)
    with open(p, "rb") as f:
        check(name + "-written-bytes", f.read() == bytes(model))
    for b in bufs:
        b[:] = bytes(4096)
    res = engine.run(fd, [(False, off, addr(bufs[i]), n) for i, (off, n) in enumerate(REQS)])
    check(name + "-reads-complete", res == [n for _, n in REQS], res)
    check(name + "-read-bytes", all(bufs[i][:n] == payload(i, n) for i, (_, n) in enumerate(REQS)))
    res = engine.run(fd, [(True, 1, addr(bufs[0]), 512), (False, 0, addr(bufs[0]) + 1, 512)])
    check(name + "-misaligned-einval", res == [-errno.EINVAL, -errno.EINVAL], res)
    for b in bufs:
        b.close()
    os.close(fd)


def nowait(aio):
    """RWF_NOWAIT (what io_uring tries first): a direct read whose block
    map is in memory is queued without sleeping; one over a range with
    dirty pages gets EAGAIN (their writeback would sleep); a synchronous
    direct read gets EAGAIN; a buffered write is not supported
    (EOPNOTSUPP), as on ext4."""
    p = os.path.join(mnt, "nowait")
    with open(p, "wb") as f:
        f.write(b"".join(payload(i, 4096) for i in range(8)))
        os.fsync(f.fileno())
    fd = os.open(p, os.O_RDWR | os.O_DIRECT)
    bufs = [mmap.mmap(-1, 8192) for _ in range(2)]
    # The block map's nodes come into memory with a first, waited read.
    os.preadv(fd, [bufs[0]], 0)
    res = None
    # The core lock may be busy a moment (a background commit): EAGAIN
    # then is right, so a few tries.
    for _ in range(20):
        try:
            res = aio.run(fd, [(False, 0, addr(bufs[0]), 4096), (False, 3 * 4096, addr(bufs[1]), 8192)], os.RWF_NOWAIT)
        except OSError as e:
            res = e
            break
        if res == [4096, 8192]:
            break
    check("nowait-direct-read-queued", res == [4096, 8192], res)
    check("nowait-direct-read-bytes", bufs[0][:4096] == payload(0, 4096) and bufs[1][:] == payload(3, 4096) + payload(4, 4096))
    with open(p, "r+b") as f:
        f.seek(5 * 4096)
        f.write(b"dirty")
        f.flush()
        try:
            res = aio.run(fd, [(False, 5 * 4096, addr(bufs[0]), 4096)], os.RWF_NOWAIT)
        except OSError as e:
            res = e
        check("nowait-read-of-dirty-range-eagain", res == [-errno.EAGAIN], res)
        got = errno_of(lambda: os.preadv(fd, [bufs[0]], 0, os.RWF_NOWAIT))
        check("nowait-sync-direct-read-eagain", got == "EAGAIN", got)
        got = errno_of(lambda: os.pwritev(f.fileno(), [b"y"], 0, os.RWF_NOWAIT))
        check("nowait-buffered-write-eopnotsupp", got == errno.errorcode[errno.EOPNOTSUPP], got)
    # Without the flag the same read writes the page back and sees it.
    res = aio.run(fd, [(False, 5 * 4096, addr(bufs[0]), 4096)])
    check("read-after-nowait-sees-dirty-page", res == [4096] and bufs[0][:5] == b"dirty", res)
    for b in bufs:
        b.close()
    os.close(fd)


for name, make in [("libaio", LinuxAio), ("io_uring", IoUring)]:
    try:
        engine = make(64)
    except OSError as e:
        check(name + "-setup", False, e)
        continue
    exercise(name, engine)
    if name == "libaio":
        nowait(engine)
    engine.close()

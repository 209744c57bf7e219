#!/usr/bin/env python3
# Queued asynchronous O_DIRECT reads (t_36): a Linux AIO batch of
# block-aligned reads returns from io_submit while the device holds their
# bios, and completes only once the device lets them through. `write`
# writes whole blocks over a synced file and past its end (direct,
# synchronous), fsyncs, suspends the dm device under the mount (--noflush
# --nolockfs: bios submitted meanwhile wait for the resume), submits the
# reads, checks that io_submit returned and that nothing completed while
# the device was held, resumes it, and checks every completion and the
# bytes; `check`, after a power cut and remount, checks the fsynced bytes
# survived. Prints PASS/FAIL lines like lib.sh.
# Usage: dio_queued.py MNT DM_NAME write|check
import ctypes
import mmap
import os
import struct
import subprocess
import sys
import threading

from vmcheck import check, syscall

mnt, dm, phase = sys.argv[1], sys.argv[2], sys.argv[3]
BS = 4096
BLOCKS = 16
path = os.path.join(mnt, "queued")
SYS_IO_SETUP, SYS_IO_DESTROY, SYS_IO_GETEVENTS, SYS_IO_SUBMIT = 206, 207, 208, 209
# (block, fill byte): overwrites of mapped blocks, then two appended blocks.
WRITES = [(0, 0x41), (3, 0x42), (7, 0x43), (8, 0x44), (15, 0x45), (BLOCKS, 0x46), (BLOCKS + 1, 0x47)]


def expected():
    model = bytearray(b"\x11" * (BLOCKS * BS))
    for blk, fill in WRITES:
        model.extend(bytes(max(0, (blk + 1) * BS - len(model))))
        model[blk * BS:(blk + 1) * BS] = bytes([fill]) * BS
    return bytes(model)


def dmsetup(*args):
    subprocess.run(["dmsetup", *args, dm], check=True)


def events(ctx, want, min_nr):
    """Up to `want` completions, waiting for `min_nr`: {index: res}."""
    buf = ctypes.create_string_buffer(32 * want)
    # timeout 0 for a poll, NULL to wait.
    ts = ctypes.create_string_buffer(16) if min_nr == 0 else None
    n = syscall(SYS_IO_GETEVENTS, ctx, min_nr, want, ctypes.addressof(buf), ts)
    return {struct.unpack_from("<Q", buf, 32 * k)[0]: struct.unpack_from("<q", buf, 32 * k + 16)[0] for k in range(n)}


def held_batch(name, ctx, fd, ops):
    """Submits `ops` ((opcode, offset, buffer, length); 0 = PREAD,
    1 = PWRITE) in one io_submit while the device holds every bio; checks
    that io_submit returns and nothing completes until the device lets
    them through. Returns each op's result."""
    iocbs = [ctypes.create_string_buffer(64) for _ in ops]
    for i, (op, off, buf, n) in enumerate(ops):
        addr = ctypes.addressof(ctypes.c_char.from_buffer(buf))
        # struct iocb: data, key, rw_flags, opcode, prio, fd, buf, nbytes, offset.
        struct.pack_into("<QIIHhIQQqQII", iocbs[i], 0, i, 0, 0, op, 0, fd, addr, n, off, 0, 0, 0)
    ptrs = (ctypes.c_void_p * len(ops))(*[ctypes.addressof(b) for b in iocbs])
    submitted = []
    dmsetup("suspend", "--noflush", "--nolockfs")
    try:
        t = threading.Thread(target=lambda: submitted.append(syscall(SYS_IO_SUBMIT, ctx, len(ops), ptrs)))
        t.start()
        # A synchronous request would sit in io_submit until the resume.
        t.join(5)
        check(name + "-submit-returns-while-device-held", not t.is_alive())
        early = events(ctx, len(ops), 0) if not t.is_alive() else {}
        check(name + "-nothing-completes-while-device-held", early == {}, early)
    finally:
        dmsetup("resume")
    t.join()
    res = dict(early)
    while len(res) < len(ops):
        res.update(events(ctx, len(ops) - len(res), 1))
    check(name + "-all-submitted", submitted == [len(ops)], submitted)
    return [res.get(i) for i in range(len(ops))]


def write():
    # Mapped, durable and in the node cache first, so the requests below
    # need no metadata read while the device is held.
    with open(path, "wb") as f:
        f.write(b"\x11" * (BLOCKS * BS))
        f.flush()
        os.fsync(f.fileno())
    fd = os.open(path, os.O_RDWR | os.O_DIRECT)
    ctx = ctypes.c_ulong(0)
    syscall(SYS_IO_SETUP, 64, ctypes.byref(ctx))
    bufs = [mmap.mmap(-1, BS) for _ in WRITES]
    for i, (blk, fill) in enumerate(WRITES):
        bufs[i][:] = bytes([fill]) * BS
        os.pwritev(fd, [bufs[i]], blk * BS)
    with open(path, "rb") as f:
        check("queued-written-bytes", f.read() == expected())
    # Every data write is over and durable: a read waits for none.
    os.fsync(fd)
    # Reads: whole blocks, two blocks, and two blocks of which one is past
    # the end of file (the result stops there).
    reads = [(0, BS), (3, BS), (7, 2 * BS), (BLOCKS + 1, 2 * BS)]
    rbufs = [mmap.mmap(-1, n) for _, n in reads]
    res = held_batch("queued-reads", ctx.value, fd, [(0, blk * BS, rbufs[i], n) for i, (blk, n) in enumerate(reads)])
    model = expected()
    want = [min(n, len(model) - blk * BS) for blk, n in reads]
    check("queued-reads-complete", res == want, (res, want))
    check("queued-read-bytes", all(rbufs[i][:want[i]] == model[blk * BS: blk * BS + want[i]] for i, (blk, _) in enumerate(reads)))
    syscall(SYS_IO_DESTROY, ctx.value)
    os.close(fd)
    for b in bufs + rbufs:
        b.close()


def check_after_crash():
    with open(path, "rb") as f:
        check("queued-fsynced-bytes-survive-power-cut", f.read() == expected())


{"write": write, "check": check_after_crash}[phase]()

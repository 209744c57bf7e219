#!/usr/bin/env python3
# Blocks freed while I/O outside the core lock is in flight (t_33): they
# are kept from reuse only until the I/O that might use them has ended,
# not until no I/O at all is in flight. A chain of direct reads keeps one
# read in flight at every moment: each is a Linux AIO read of a committed
# file into a buffer mapped from a device-mapper device that is suspended,
# so the read stops in the page fault after its blocks were mapped (its
# pin held) until that device resumes, and the next one starts before it
# ends. Meanwhile a file of a quarter of the filesystem is rewritten and
# committed round after round, freeing in all several times the free
# space: with every freed block held until no read is in flight, the
# filesystem would run out of space. Each read must still return the
# file's bytes, and the rewrites must all succeed.
# Usage: held_blocks.py MNT STALL_DEV0 STALL_DEV1 (dm names under
# /dev/mapper, suspended and resumed here)
import ctypes
import fcntl
import mmap
import os
import struct
import subprocess
import sys
import time

from vmcheck import check, syscall

mnt, stall_names = sys.argv[1], sys.argv[2:4]
BS = 4096
SYS_IO_SETUP, SYS_IO_GETEVENTS, SYS_IO_SUBMIT = 206, 208, 209
ROUNDS = 8
REWRITE = 12 << 20
# Where each stalled read's buffer lies in its device: a page far from the
# others and from the first (which the kernel may read when the device
# appears), beyond the read-around of a fault (128 KiB); the device's
# cache is dropped before it is suspended (BLKFLSBUF).
STRIDE = 1 << 20
BLKFLSBUF = 0x1261


def page_offset(page):
    return (page + 1) * STRIDE
libc = ctypes.CDLL(None, use_errno=True)


def dm(*args):
    subprocess.run(["dmsetup", *args], check=True)


def stalled_reader(src, name, page, want):
    """The child's part: a direct read of the first block of `src` into a
    page of the suspended device `name`, which stops in the fault on that
    page until the device resumes; exits 0 when it returned the bytes."""
    fd = os.open(src, os.O_RDONLY | os.O_DIRECT)
    dev = os.open(f"/dev/mapper/{name}", os.O_RDWR)
    buf = mmap.mmap(dev, BS, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE, offset=page_offset(page))
    ctx = ctypes.c_ulong(0)
    syscall(SYS_IO_SETUP, 1, ctypes.byref(ctx))
    iocb = ctypes.create_string_buffer(64)
    # struct iocb: data, key, rw_flags, opcode 0 (PREAD), prio, fildes,
    # buf, nbytes, offset, reserved, flags, resfd.
    struct.pack_into("<QIIHhIQQqQII", iocb, 0, 0, 0, 0, 0, 0, fd, ctypes.addressof(ctypes.c_char.from_buffer(buf)), BS, 0, 0, 0, 0)
    ptrs = (ctypes.c_void_p * 1)(ctypes.addressof(iocb))
    syscall(SYS_IO_SUBMIT, ctx.value, 1, ptrs)
    events = ctypes.create_string_buffer(32)
    syscall(SYS_IO_GETEVENTS, ctx.value, 1, 1, ctypes.addressof(events), 0)
    res = struct.unpack_from("<QQqq", events, 0)[2]
    good = res == BS and bytes(buf[:BS]) == want
    # Nothing of the device's stays dirty to be written while it is
    # suspended again.
    buf.flush()
    return good


class StalledRead:
    """A stalled read in a process of its own: the fault holds its
    mmap_lock, which would stop every mmap of this process meanwhile."""

    def __init__(self, src, name, page, want):
        self.name = name
        dev = os.open(f"/dev/mapper/{name}", os.O_RDWR)
        fcntl.ioctl(dev, BLKFLSBUF, 0)
        os.close(dev)
        self.stack = ""
        self.status = None
        dm("suspend", "--nolockfs", name)
        self.pid = os.fork()
        if self.pid == 0:
            code = 2
            try:
                code = 0 if stalled_reader(src, name, page, want) else 1
            finally:
                os._exit(code)

    def stopped_in_fault(self, timeout=120):
        """Whether the child stops inside the read, in the fault on its
        buffer (its kernel stack shows both)."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                self.stack = open(f"/proc/{self.pid}/stack").read()
            except OSError:
                self.stack = ""
            if "ferrofs" in self.stack and "fault" in self.stack:
                return True
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.pid, self.status = None, os.waitstatus_to_exitcode(status)
                return False
            time.sleep(0.2)
        return False

    def why_not(self):
        """What the child was doing instead (for a failed check)."""
        if self.status is not None:
            return f"it exited with status {self.status}"
        return "its kernel stack: " + " / ".join(line.split("+")[0].strip("[<>] ") for line in self.stack.splitlines())

    def finish(self):
        """Resumes the device; whether the read returned the bytes."""
        dm("resume", self.name)
        if self.pid is None:
            return False
        _, status = os.waitpid(self.pid, 0)
        self.pid = None
        return os.waitstatus_to_exitcode(status) == 0


def syncfs(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        if libc.syncfs(fd) != 0:
            e = ctypes.get_errno()
            raise OSError(e, os.strerror(e))
    finally:
        os.close(fd)


def rewrite(path, byte):
    fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o644)
    try:
        chunk = bytes([byte]) * (1 << 20)
        for _ in range(REWRITE >> 20):
            os.write(fd, chunk)
        os.fsync(fd)
    finally:
        os.close(fd)
    # A commit: the blocks the truncate freed stop being pinned for the
    # last commit and are free, or held for the reads in flight. Not
    # sync(2), which would also wait on the suspended device.
    syncfs(mnt)


def main():
    src = os.path.join(mnt, "read-me")
    want = bytes(range(256)) * (BS // 256)
    with open(src, "wb") as f:
        f.write(want * 16)
    os.sync()
    victim = os.path.join(mnt, "rewritten")
    reads, stalled, bad_reads, failed_at, rounds = [], None, [], None, 0
    try:
        for k in range(ROUNDS):
            # The next read stops before the one before it ends, so one is
            # in flight at every moment.
            r = StalledRead(src, stall_names[k % 2], k // 2, want)
            reads.append(r)
            if not r.stopped_in_fault():
                stalled = f"read {k} did not stop in its fault: {r.why_not()}"
                break
            if k and not reads[k - 1].finish():
                bad_reads.append(k - 1)
            try:
                rewrite(victim, 0x40 + k)
            except OSError as e:
                failed_at = (k, e)
                break
            rounds += 1
    finally:
        for k, r in enumerate(reads):
            if r.pid is not None and not r.finish():
                bad_reads.append(k)
        # A read that never stopped left its device suspended.
        for name in stall_names:
            subprocess.run(["dmsetup", "resume", name])
    check("held-reads-stop-in-fault", stalled is None, stalled)
    check("held-reads-bytes", not bad_reads, f"reads {bad_reads} returned other bytes or failed")
    check("held-rewrites-fit", rounds == ROUNDS,
          f"round {failed_at[0]} of {ROUNDS}: {failed_at[1]}" if failed_at else f"{rounds} of {ROUNDS} rounds ran")
    if rounds == ROUNDS:
        with open(victim, "rb") as f:
            check("held-rewrite-bytes", f.read() == bytes([0x40 + ROUNDS - 1]) * REWRITE)
    with open(src, "rb") as f:
        check("held-source-intact", f.read() == want * 16)


main()

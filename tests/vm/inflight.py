#!/usr/bin/env python3
# Data writes left in flight by writeback: writeback maps a file's new
# blocks and ends the folios' writeback before the data I/O is over, so
# these checks read the data back at once from the device (O_DIRECT,
# right after sync_file_range), free blocks whose writes may
# still be running (truncate, then other files written), and keep a
# streaming writer going beside them so the device queue is never empty.
# A read must always return the bytes written, and a file written after
# another was truncated must keep its own bytes: every flush and read
# waits for the writes in flight, and freed blocks are not reused before
# their writes end.
# usage: inflight.py DIR run|verify
import ctypes
import hashlib
import json
import mmap
import os
import random
import sys
import threading

d, mode = sys.argv[1], sys.argv[2]
SFR = 1 | 2 | 4  # SYNC_FILE_RANGE_WAIT_BEFORE | WRITE | WAIT_AFTER
libc = ctypes.CDLL(None, use_errno=True)
libc.sync_file_range.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]


def sync_file_range(fd, off, n, flags):
    """Writes the range back (Python's os module lacks it)."""
    if libc.sync_file_range(fd, off, n, flags) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))


manifest = os.path.join(d, "manifest.json")
failures = []
# Enough rounds that a read racing its write was seen in 1 of 200 rounds
# when reads did not wait for writes in flight (debug kernel, TCG).
ROUNDS = int(os.environ.get("FERROFS_INFLIGHT_ROUNDS", "240"))


def check(name, ok, detail=""):
    print(("PASS " if ok else "FAIL ") + name + ("" if ok else ": " + detail))
    if not ok:
        failures.append(name)


def read_cold(path, off, n):
    """Reads the range from the device (O_DIRECT), not the page cache."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECT)
    try:
        buf = mmap.mmap(-1, n)
        got = os.preadv(fd, [buf], off)
        return bytes(buf[:got])
    finally:
        os.close(fd)


def streamer(stop):
    fd = os.open(os.path.join(d, "stream"), os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o644)
    chunk = os.urandom(1 << 20)
    pos = 0
    while not stop.is_set():
        os.pwrite(fd, chunk, pos)
        sync_file_range(fd, pos, len(chunk), 2)
        pos = (pos + len(chunk)) % (32 << 20)
    os.close(fd)


def run():
    rng = random.Random(7)
    stop = threading.Event()
    # A daemon: should a check below raise, the test still ends.
    t = threading.Thread(target=streamer, args=(stop,), daemon=True)
    t.start()
    bad_reads = 0
    path = os.path.join(d, "reread")
    fd = os.open(path, os.O_CREAT | os.O_RDWR | os.O_TRUNC, 0o644)
    for _ in range(ROUNDS):
        off = rng.randrange(0, 8 << 20, 4096)
        data = rng.randbytes(rng.randrange(1, 64) * 4096)
        os.pwrite(fd, data, off)
        sync_file_range(fd, off, len(data), SFR)
        if read_cold(path, off, len(data)) != data:
            bad_reads += 1
    os.close(fd)
    check("inflight-read-after-writeback", bad_reads == 0, "%d of %d reads returned other bytes" % (bad_reads, ROUNDS))
    # Blocks freed while their writes may run, then other files written.
    sums = {}
    bad_reuse = 0
    for i in range(ROUNDS // 6):
        a = os.path.join(d, "gone%d" % i)
        fa = os.open(a, os.O_CREAT | os.O_RDWR | os.O_TRUNC, 0o644)
        os.pwrite(fa, rng.randbytes(256 << 10), 0)
        sync_file_range(fa, 0, 0, SFR)
        os.ftruncate(fa, 0)
        os.close(fa)
        os.unlink(a)
        b = os.path.join(d, "kept%d" % i)
        data = rng.randbytes(256 << 10)
        fb = os.open(b, os.O_CREAT | os.O_RDWR | os.O_TRUNC, 0o644)
        os.pwrite(fb, data, 0)
        sync_file_range(fb, 0, 0, SFR)
        if read_cold(b, 0, len(data)) != data:
            bad_reuse += 1
        os.close(fb)
        sums[b] = hashlib.sha256(data).hexdigest()
    stop.set()
    t.join()
    os.sync()
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3")
    for b, h in sums.items():
        with open(b, "rb") as f:
            if hashlib.sha256(f.read()).hexdigest() != h:
                bad_reuse += 1
    check("inflight-freed-blocks-not-reused", bad_reuse == 0, "%d files lost bytes" % bad_reuse)
    with open(manifest, "w") as f:
        json.dump(sums, f)


def verify():
    with open(manifest) as f:
        sums = json.load(f)
    bad = [b for b, h in sums.items() if hashlib.sha256(open(b, "rb").read()).hexdigest() != h]
    check("inflight-files-after-remount", not bad, "%d of %d files differ" % (len(bad), len(sums)))


run() if mode == "run" else verify()
sys.exit(1 if failures else 0)

#!/usr/bin/env python3
# Parallel stress in one shared directory tree: several processes racing
# creates, writes, mmap stores, truncates, renames, links, unlinks, fsyncs
# and syncs on the same names. Outcomes are not compared (the races make
# them nondeterministic); the point is that the kernel stays quiet (no
# lockdep, might-sleep or hung-task report) and the result checks clean.
# With SNAPDIR, one more process snapshots the subvolume whose root holds
# SNAPDIR (its parent directory) into SNAPDIR and deletes the snapshots
# again, over and over, while they race.
# usage: parstress.py ROOT PROCS SECONDS SEED [SNAPDIR]
import errno
import mmap
import os
import random
import sys
import time

root, procs, secs, seed = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
snapdir = sys.argv[5] if len(sys.argv) > 5 else None
NAMES = ["f%d" % i for i in range(12)] + ["d%d/f%d" % (i % 3, i) for i in range(12)]
EXPECTED = {errno.ENOENT, errno.EEXIST, errno.ENOTEMPTY, errno.EISDIR, errno.ENOTDIR, errno.EINVAL, errno.ENODATA}


def one(rng, own):
    p = os.path.join(root, rng.choice(NAMES))
    q = os.path.join(root, rng.choice(NAMES))
    k = rng.randrange(10)
    if k == 0:
        os.close(os.open(p, os.O_CREAT | os.O_WRONLY, 0o644))
    elif k == 1:
        fd = os.open(p, os.O_CREAT | os.O_WRONLY, 0o644)
        try:
            os.pwrite(fd, rng.randbytes(rng.randrange(1, 30000)), rng.randrange(200000))
        finally:
            os.close(fd)
    elif k == 2:
        # A store through a mapping past a size another process just cut
        # is SIGBUS on every filesystem, so each process maps its own file;
        # the mapping still races with the others' writeback and commits.
        fd = os.open(own, os.O_CREAT | os.O_RDWR, 0o644)
        try:
            if rng.random() < 0.3:
                os.ftruncate(fd, rng.randrange(1, 100000))
            size = os.fstat(fd).st_size
            if size:
                with mmap.mmap(fd, size) as m:
                    off = rng.randrange(size)
                    m[off : off + 1] = b"m"
        finally:
            os.close(fd)
    elif k == 3:
        os.truncate(p, rng.randrange(100000))
    elif k == 4:
        os.rename(p, q)
    elif k == 5:
        os.link(p, q)
    elif k == 6:
        os.unlink(p)
    elif k == 7:
        fd = os.open(p, os.O_RDONLY)
        try:
            os.fsync(fd)
            os.read(fd, 65536)
        finally:
            os.close(fd)
    elif k == 8:
        os.setxattr(p, "user.k%d" % rng.randrange(3), rng.randbytes(rng.randrange(1, 200)))
    else:
        if rng.random() < 0.1:
            os.sync()
        else:
            os.listdir(os.path.dirname(p))


def worker(k):
    rng = random.Random(seed * 100 + k)
    own = os.path.join(root, "mapped%d" % k)
    end = time.monotonic() + secs
    n = 0
    while time.monotonic() < end:
        try:
            one(rng, own)
        except OSError as e:
            if e.errno not in EXPECTED and e.errno != errno.EOPNOTSUPP:
                print("process %d: unexpected %s" % (k, e), flush=True)
                return 1
        n += 1
    print("process %d: %d operations" % (k, n), flush=True)
    return 0


def snapshot_worker():
    """Snapshots and deletes, as fast as it can, while the others race."""
    import subprocess
    os.makedirs(snapdir, exist_ok=True)
    src = os.path.dirname(snapdir.rstrip("/"))
    end = time.monotonic() + secs
    n = 0
    while time.monotonic() < end:
        path = os.path.join(snapdir, "s%d" % n)
        for cmd in (["snapshot"] + (["-r"] if n % 2 else []) + [src, path], ["delete", path]):
            args = ["ferrofs", "subvolume"] + cmd
            p = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            if p.returncode != 0:
                print("snapshots: %s: %s" % (" ".join(args), p.stdout.strip()), flush=True)
                return 1
        n += 1
    print("snapshots: %d made and deleted" % n, flush=True)
    return 0


for d in range(3):
    os.makedirs(os.path.join(root, "d%d" % d), exist_ok=True)
pids = []
for k in range(procs):
    pid = os.fork()
    if pid == 0:
        os._exit(worker(k))
    pids.append(pid)
if snapdir:
    pid = os.fork()
    if pid == 0:
        os._exit(snapshot_worker())
    pids.append(pid)
failed = 0
for k, pid in enumerate(pids):
    status = os.waitpid(pid, 0)[1]
    if status != 0:
        print("process %d: ended with wait status %#x" % (k, status), flush=True)
        failed += 1
sys.exit(1 if failed else 0)

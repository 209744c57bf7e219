#!/usr/bin/env python3
# Randomised send round trips: random operations on a ferrofs subvolume,
# a read-only snapshot after each round, a full and an incremental stream
# of it, each applied by every receiver given and compared with the
# snapshot (treecmp.py). Prints PASS/FAIL lines per round and receiver.
# Usage: send_random.py SEED ROUNDS MNT RECEIVER...
#   RECEIVER: btrfs:DIR (btrfs receive, DIR on btrfs) or ferrofs:DIR
#   (ferrofs receive, DIR on any filesystem)
import os
import random
import subprocess
import sys

seed, rounds, mnt = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
receivers = [r.split(":", 1) for r in sys.argv[4:]]
rng = random.Random(seed)
here = os.path.dirname(os.path.abspath(__file__))
src = os.path.join(mnt, "src")
subprocess.run(["ferrofs", "subvolume", "create", src], check=True, stdout=subprocess.DEVNULL)
failures = 0


def check(name, ok, detail=""):
    global failures
    print(("PASS " if ok else "FAIL ") + name + ("" if ok or not detail else f": {detail}"), flush=True)
    failures += not ok


def entries():
    out = []
    for d, dirs, files in os.walk(src):
        for n in dirs + files:
            out.append(os.path.join(d, n))
    return out


def dirs():
    return [src] + [p for p in entries() if os.path.isdir(p) and not os.path.islink(p)]


def name(d):
    return os.path.join(d, f"n{rng.randrange(10)}")


def op():
    all_ = entries()
    files = [p for p in all_ if os.path.isfile(p) and not os.path.islink(p)]
    k = rng.randrange(14)
    try:
        if k <= 2:
            with open(name(rng.choice(dirs())), "wb") as f:
                f.seek(rng.randrange(40000))
                f.write(rng.randbytes(rng.randrange(1, 30000)))
        elif k == 3:
            os.mkdir(name(rng.choice(dirs())))
        elif k in (4, 5) and all_:
            os.rename(rng.choice(all_), name(rng.choice(dirs())))
        elif k == 6 and all_:
            p = rng.choice(all_)
            if os.path.isdir(p) and not os.path.islink(p):
                os.rmdir(p)
            else:
                os.unlink(p)
        elif k == 7 and files:
            os.link(rng.choice(files), name(rng.choice(dirs())))
        elif k == 8 and files:
            with open(rng.choice(files), "r+b") as f:
                f.seek(rng.randrange(60000))
                f.write(rng.randbytes(rng.randrange(1, 9000)))
        elif k == 9 and files:
            p = rng.choice(files)
            if rng.randrange(2):
                os.truncate(p, rng.randrange(50000))
            else:
                subprocess.run(["fallocate", "-p", "-o", str(rng.randrange(40000)), "-l", str(rng.randrange(1, 20000)), p],
                               check=False, stderr=subprocess.DEVNULL)
        elif k == 10 and all_:
            p = rng.choice(all_)
            if rng.randrange(3) == 0:
                os.removexattr(p, "user.x", follow_symlinks=False)
            else:
                os.setxattr(p, "user.x", rng.randbytes(rng.randrange(200)), follow_symlinks=False)
        elif k == 11 and all_:
            p = rng.choice(all_)
            if not os.path.islink(p):
                os.chmod(p, rng.randrange(0o1000))
                os.chown(p, rng.randrange(3), rng.randrange(3))
        elif k == 12:
            os.symlink("some/target", name(rng.choice(dirs())))
        elif k == 13 and all_:
            p = rng.choice(all_)
            t = rng.randrange(10**9)
            os.utime(p, ns=(t * 1000 + 7, t * 1000 + 13), follow_symlinks=False)
    except OSError:
        pass  # a taken name, a non-empty directory, a move into itself


prev = None
for r in range(rounds):
    for _ in range(40):
        op()
    snap = os.path.join(mnt, f"r{r}")
    subprocess.run(["ferrofs", "subvolume", "snapshot", "-r", src, snap], check=True, stdout=subprocess.DEVNULL)
    full = f"/tmp/r{r}.full"
    sent = subprocess.run(["ferrofs", "send", "-q", "-f", full, snap], stderr=subprocess.PIPE, text=True)
    check(f"send-random-seed{seed}-round{r}-send-full", sent.returncode == 0, sent.stderr)
    incr = None
    if prev:
        incr = f"/tmp/r{r}.incr"
        sent = subprocess.run(["ferrofs", "send", "-q", "-p", prev, "-f", incr, snap], stderr=subprocess.PIPE, text=True)
        check(f"send-random-seed{seed}-round{r}-send-incr", sent.returncode == 0, sent.stderr)
    if failures:
        # Keep what shows the failure: the snapshots' listings.
        subprocess.run(["ls", "-laiR", prev or snap, snap])
        break
    for kind, dest in receivers:
        # Round 0's full stream into DEST, then each round's incremental one
        # next to the previous round's copy there; each later full stream
        # into a directory of its own.
        jobs = [("full", full, dest if r == 0 else os.path.join(dest, f"full-{r}"))]
        if incr:
            jobs.append(("incr", incr, dest))
        for label, stream, where in jobs:
            os.makedirs(where, exist_ok=True)
            cmd = ["btrfs", "receive", "-f", stream, where] if kind == "btrfs" else ["ferrofs", "receive", "-f", stream, where]
            p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            ok = p.returncode == 0
            if ok:
                # --all-dirs: on tmpfs and ext4 a received directory may have
                # inode 2 or 256, which treecmp otherwise takes for a nested
                # subvolume (the source has none).
                c = subprocess.run([sys.executable, os.path.join(here, "treecmp.py"), "--all-dirs", snap, os.path.join(where, f"r{r}")],
                                   stdout=subprocess.PIPE, text=True)
                ok, detail = c.returncode == 0, c.stdout[-1500:]
            else:
                detail = p.stdout[-1500:]
            check(f"send-random-seed{seed}-round{r}-{label}-{kind}", ok, detail)
    prev = snap
sys.exit(1 if failures else 0)

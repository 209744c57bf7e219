#!/usr/bin/env python3
# fsync guarantees at every point a crash could leave the device, with
# dm-log-writes: `workload` runs fsync-family operations on a ferrofs
# mounted over a log-writes target, marking the log after each one and
# recording the tree as it must be from then on; `verify` replays the log
# onto a blank device, stopping after every flush, FUA write and mark,
# mounts what is there read-only (fast-commit records are replayed in
# memory), checks the recorded tree and runs fsck.
#
# The log's layout (the kernel's dm-log-writes): units of the device's
# logical block size S; unit 0 holds the super (le64 magic, le64 version,
# le64 entry count, le32 S); entries follow from unit 1, each a header unit
# (le64 sector, le64 unit count, le64 flags, le64 mark length, then a
# mark's text) and, for a write, its data units. Writes are logged once a
# flush covered them, so the log's order is the order data became durable.
import hashlib
import json
import os
import stat
import struct
import subprocess
import sys

MAGIC = 0x6A736677736872
FLUSH, FUA, DISCARD, MARK = 1, 2, 4, 8


def entries(log):
    """Yields (index, sector, units, flags, mark, data_offset) for every
    entry of the log device at path `log`, and its unit size first."""
    with open(log, "rb") as f:
        magic, version, count, unit = struct.unpack("<QQQI", f.read(28))
        if magic != MAGIC or version != 1 or unit not in (512, 1024, 2048, 4096):
            raise SystemExit(f"{log}: not a dm-log-writes log (magic {magic:#x}, version {version}, unit {unit})")
        yield unit
        pos = unit
        for i in range(count):
            f.seek(pos)
            sector, units, flags, length = struct.unpack("<QQQQ", f.read(32))
            mark = f.read(min(length, unit - 32)).decode(errors="replace") if flags & MARK else None
            pos += unit
            yield i, sector, units, flags, mark, pos
            if not flags & (DISCARD | MARK):
                pos += units * unit


def snapshot(root, skip=()):
    """The tree under root: path -> what fsync must keep of it."""
    out = {}
    for d, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(dirs + files):
            p = os.path.join(d, name)
            rel = os.path.relpath(p, root)
            if rel in skip:
                continue
            st = os.lstat(p)
            e = {"mode": st.st_mode, "uid": st.st_uid, "gid": st.st_gid}
            if stat.S_ISREG(st.st_mode):
                with open(p, "rb") as f:
                    e["sha"] = hashlib.sha256(f.read()).hexdigest()
                e["size"], e["nlink"] = st.st_size, st.st_nlink
            elif stat.S_ISLNK(st.st_mode):
                e["target"] = os.readlink(p)
            if not stat.S_ISLNK(st.st_mode):
                e["xattrs"] = {x: os.getxattr(p, x).hex() for x in sorted(os.listxattr(p)) if x.startswith("user.")}
            out[rel] = e
    return out


def fsync_path(p, data_only=False):
    fd = os.open(p, os.O_RDONLY)
    try:
        (os.fdatasync if data_only else os.fsync)(fd)
    finally:
        os.close(fd)


def write(p, off, data, flags=os.O_WRONLY | os.O_CREAT):
    fd = os.open(p, flags, 0o644)
    try:
        os.pwrite(fd, data, off)
    finally:
        os.close(fd)


def workload(mnt, dmdev, expect_path):
    """Each step changes the tree and fsyncs what it changed, then marks
    the log; the tree at the mark is what every later crash must keep."""
    rnd = lambda n: os.urandom(n)  # noqa: E731
    j = lambda *p: os.path.join(mnt, *p)  # noqa: E731

    def fallocate_keep(p, off, n):
        subprocess.run(["fallocate", "-n", "-o", str(off), "-l", str(n), p], check=True)

    steps = [
        ("dirs", lambda: (os.mkdir(j("a")), os.mkdir(j("b")), fsync_path(mnt))),
        ("create", lambda: (write(j("a/f1"), 0, rnd(10000)), fsync_path(j("a/f1")))),
        ("append", lambda: (write(j("a/f1"), 10000, rnd(5000)), fsync_path(j("a/f1")))),
        ("overwrite-fdatasync", lambda: (write(j("a/f1"), 4096, rnd(3000)), fsync_path(j("a/f1"), True))),
        ("create-big", lambda: (write(j("b/f2"), 0, rnd(1 << 20)), fsync_path(j("b/f2")))),
        ("shrink", lambda: (os.truncate(j("b/f2"), 100000), fsync_path(j("b/f2")))),
        ("link", lambda: (os.link(j("a/f1"), j("b/h1")), fsync_path(j("a/f1")))),
        ("rename-across", lambda: (os.rename(j("b/f2"), j("a/f2moved")), fsync_path(j("a/f2moved")))),
        ("setxattr", lambda: (os.setxattr(j("a/f1"), "user.k", b"value"), fsync_path(j("a/f1")))),
        ("unlink-fsync-dir", lambda: (os.unlink(j("b/h1")), fsync_path(j("b")))),
        ("new-dir-file", lambda: (os.mkdir(j("c")), write(j("c/f3"), 0, rnd(3000)), fsync_path(j("c/f3")))),
        ("fallocate-keep-size", lambda: (fallocate_keep(j("c/f3"), 8192, 1 << 20), fsync_path(j("c/f3")))),
        ("punch", lambda: (subprocess.run(["fallocate", "-p", "-o", "4096", "-l", "4096", j("a/f1")], check=True),
                           fsync_path(j("a/f1")))),
        ("symlink-fsync-dir", lambda: (os.symlink("../a/f1", j("c/sl")), fsync_path(j("c")))),
        ("rename-over", lambda: (os.rename(j("a/f2moved"), j("c/f3")), fsync_path(j("c/f3")))),
        ("removexattr", lambda: (os.removexattr(j("a/f1"), "user.k"), fsync_path(j("a/f1")))),
        ("one-of-three", lambda: ([write(j(f"b/u{i}"), 0, rnd(7000)) for i in range(3)], fsync_path(j("b/u1")))),
    ]
    maybe = ["b/u0", "b/u2"]
    marks = []
    for name, step in steps:
        step()
        st = os.stat(j("c/f3")) if os.path.exists(j("c/f3")) else None
        marks.append({"name": name, "tree": snapshot(mnt, maybe),
                      "f3_blocks": st.st_blocks if st and name == "fallocate-keep-size" else None})
        subprocess.run(["dmsetup", "message", dmdev, "0", "mark", name], check=True)
    with open(expect_path, "w") as f:
        json.dump({"maybe": maybe, "marks": marks}, f)


def mount_and_compare(dev, mnt, want, maybe, extra=None):
    """Mounts dev read-only; None when its tree (without `maybe`) is one of
    `want`, else why not."""
    r = subprocess.run(["mount", "-t", "ferrofs", "-o", "ro", dev, mnt], capture_output=True, text=True)
    if r.returncode:
        return f"mount failed: {r.stderr.strip()}"
    try:
        got = snapshot(mnt, maybe)
        if not any(got == w for w in want):
            w = want[-1]
            diff = sorted(set(got) ^ set(w)) or [p for p in sorted(got) if got[p] != w[p]]
            return f"tree differs at {diff[:4]}"
        return extra(mnt) if extra else None
    finally:
        subprocess.run(["umount", mnt], check=True)


def fsck(dev):
    r = subprocess.run(["fsck.ferrofs", dev], capture_output=True, text=True)
    return None if r.returncode == 0 else f"fsck: {(r.stdout + r.stderr).strip()[-300:]}"


def verify(log, target, expect_path, mnt, start_mark):
    """Replays the log onto `target` (blank), checking after each flush,
    FUA write and mark from `start_mark` on. Prints PASS/FAIL lines."""
    with open(expect_path) as f:
        expect = json.load(f)
    marks, maybe = expect["marks"], expect["maybe"]
    by_name = {m["name"]: i for i, m in enumerate(marks)}
    it = entries(log)
    unit = next(it)
    out = os.open(target, os.O_WRONLY)
    done = None          # index of the last mark passed (-1: start_mark)
    cuts = failures = 0
    first_failure = None
    log_fd = os.open(log, os.O_RDONLY)
    try:
        for i, sector, units, flags, mark, data_at in it:
            if flags & DISCARD:
                os.pwrite(out, bytes(units * unit), sector * unit)
            elif not flags & MARK and units:
                os.pwrite(out, os.pread(log_fd, units * unit, data_at), sector * unit)
            if mark == start_mark:
                done = -1
                continue
            if done is None or not (flags & (FLUSH | FUA) or mark in by_name):
                continue
            os.fsync(out)
            if mark in by_name:
                k = by_name[mark]
                want = [marks[k]["tree"]]
                extra = None
                if marks[k]["f3_blocks"] is not None:
                    blocks = marks[k]["f3_blocks"]
                    extra = lambda m, b=blocks: (None if os.stat(os.path.join(m, "c/f3")).st_blocks >= b  # noqa: E731
                                                 else "preallocated blocks lost")
                why = mount_and_compare(target, mnt, want, maybe, extra) or fsck(target)
                print(f"{'PASS' if why is None else 'FAIL'} logwrites-mark-{mark}{': ' + why if why else ''}", flush=True)
                failures += why is not None
                done = k
            else:
                # Between marks: what the last mark made durable, or the
                # next step done (each step's fsync makes it durable at once).
                want = ([marks[done]["tree"]] if done >= 0 else [{}]) + ([marks[done + 1]["tree"]] if done + 1 < len(marks) else [])
                why = mount_and_compare(target, mnt, want, maybe) or fsck(target)
                if why is not None:
                    failures += 1
                    first_failure = first_failure or f"entry {i} after mark {marks[done]['name'] if done >= 0 else start_mark}: {why}"
            cuts += 1
    finally:
        os.close(out)
        os.close(log_fd)
    seen = sum(1 for m in marks if m["name"] in by_name)
    ok = failures == 0 and done == len(marks) - 1
    print(f"{'PASS' if ok else 'FAIL'} logwrites-every-cut: {cuts} crash points checked, {seen} marks"
          f"{', ' + first_failure if first_failure else ''}{'' if done == len(marks) - 1 else ', the last mark never came'}")


def main():
    if len(sys.argv) == 5 and sys.argv[1] == "workload":
        workload(*sys.argv[2:])
    elif len(sys.argv) == 7 and sys.argv[1] == "verify":
        verify(*sys.argv[2:])
    else:
        raise SystemExit("usage: logwrites.py workload MNT DMDEV EXPECT.json | verify LOGDEV TARGET EXPECT.json MNT START_MARK")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
# The guest side and the report of scripts/bench-ab: two builds of ferrofs
# timed in turn in one VM, each on a disk of its own holding the same tree.
#
#   bench_ab.py guest OUT TAR ROUNDS PHASES NAME_A DIR_A NAME_B DIR_B
#       (in the VM) DIR_x holds that build's ferrofs.ko and mkfs.ferrofs;
#       build A gets /dev/vdb, B /dev/vdc; PHASES is a comma-separated
#       subset of PHASES below. Appends one JSON line per round and build
#       to OUT/results.jsonl.
#   bench_ab.py report OUT
#       (on the host) each round's times, and each phase's median per build.
import json
import os
import stat
import statistics
import subprocess
import sys
import time

PHASES = ("du", "find", "read1", "read2", "create", "unlink", "parappend", "randread")
# Empty files the create and unlink phases make and remove in one new
# directory (scripts/bench's createunlink does the same with 50,000).
MANY = 20000
# The parappend phase: PAR_WRITERS processes, each appending 4 KiB + fsync
# PAR_APPENDS times to a file of its own (scripts/bench's parappend).
PAR_WRITERS = 4
PAR_APPENDS = 500
# The randread phase: fio's random 4 KiB O_DIRECT reads of a file of
# RANDREAD_MIB MiB, each block once, iodepth 16 through io_uring.
RANDREAD_MIB = 128
DESCRIBE = {
    "du": "du -s of the tree",
    "find": "find | wc -l of the tree",
    "read1": "lstat + read of every file, one process",
    "read2": "the same, two processes on the two halves",
    "create": f"create {MANY} empty files in one dir + sync",
    "unlink": "unlink them + sync (caches warm)",
    "parappend": f"{PAR_WRITERS} x {PAR_APPENDS} (4 KiB append + fsync), own file each",
    "randread": f"fio: {RANDREAD_MIB} MiB of random 4 KiB O_DIRECT reads, QD 16",
}


def run(*cmd, **kw):
    subprocess.run(cmd, check=True, **kw)


def drop_caches():
    os.sync()
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3\n")


def modules():
    with open("/proc/modules") as f:
        return {line.split()[0] for line in f}


def load(build_dir):
    if "ferrofs" in modules():
        run("rmmod", "ferrofs")
    run("insmod", os.path.join(build_dir, "ferrofs.ko"))


def read_files(root, paths):
    total = 0
    for p in paths:
        full = os.path.join(root, p)
        os.lstat(full)
        with open(full, "rb") as f:
            while True:
                b = f.read(1 << 20)
                if not b:
                    break
                total += len(b)
    return total


def timed(fn):
    drop_caches()
    t = time.monotonic()
    fn()
    return time.monotonic() - t


def create_many(d):
    os.mkdir(d)
    os.sync()
    for i in range(MANY):
        os.close(os.open(f"{d}/f{i:07d}", os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
    os.sync()


def unlink_many(d):
    for i in range(MANY):
        os.unlink(f"{d}/f{i:07d}")
    os.sync()


def warm(fn):
    """Times fn without dropping caches first (an unlink right after the
    creates, as scripts/bench times it)."""
    t = time.monotonic()
    fn()
    return time.monotonic() - t


def device_counts(dev):
    """(write requests, flushes) of dev so far, from /sys/block/*/stat."""
    f = open(f"/sys/block/{os.path.basename(dev)}/stat").read().split()
    return int(f[4]), int(f[15]) if len(f) > 15 else 0


def par_appends(d, dev, counts):
    """PAR_WRITERS forked appenders started together; stores the device's
    write requests and flushes per append+fsync in counts."""
    os.mkdir(d)
    paths = [f"{d}/par{i}" for i in range(PAR_WRITERS)]
    for p in paths:
        os.close(os.open(p, os.O_CREAT | os.O_WRONLY, 0o644))
    os.sync()
    r, w = os.pipe()
    pids = []
    for p in paths:
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                os.close(w)
                fd = os.open(p, os.O_WRONLY | os.O_APPEND)
                os.read(r, 1)
                block = b"p" * 4096
                for _ in range(PAR_APPENDS):
                    os.write(fd, block)
                    os.fsync(fd)
                code = 0
            finally:
                os._exit(code)
        pids.append(pid)
    os.close(r)
    before = device_counts(dev)
    t = time.monotonic()
    # Closing the pipe's write end wakes every appender at once.
    os.close(w)
    for pid in pids:
        _, status = os.waitpid(pid, 0)
        if status != 0:
            raise OSError(0, f"an appender failed with status {status}")
    took = time.monotonic() - t
    after = device_counts(dev)
    ops = PAR_WRITERS * PAR_APPENDS
    counts["parappend_wreq_per_op"] = (after[0] - before[0]) / ops
    counts["parappend_flush_per_op"] = (after[1] - before[1]) / ops
    for p in paths:
        os.unlink(p)
    os.rmdir(d)
    return took


def random_reads(path):
    """Writes a file, then times fio reading every block of it once in
    random order, direct, 16 in flight (the file is removed after)."""
    with open(path, "wb") as f:
        for _ in range(RANDREAD_MIB):
            f.write(os.urandom(1 << 20))
    drop_caches()
    t = time.monotonic()
    run("fio", "--name=randread", f"--filename={path}", "--rw=randread", "--bs=4k", "--direct=1", "--iodepth=16",
        "--ioengine=io_uring", "--thread", f"--size={RANDREAD_MIB}m", "--randrepeat=1",
        "--output-format=terse", stdout=subprocess.DEVNULL)
    took = time.monotonic() - t
    os.unlink(path)
    return took


def two_readers(root, halves):
    pids = []
    for half in halves:
        pid = os.fork()
        if pid == 0:
            try:
                read_files(root, half)
            finally:
                os._exit(0)
        pids.append(pid)
    for pid in pids:
        _, status = os.waitpid(pid, 0)
        if status != 0:
            raise OSError(0, f"a reader failed with status {status}")


def guest(out, tar, rounds, phases, builds):
    mnt = "/mnt"
    devs = ("/dev/vdb", "/dev/vdc")
    # The tree only when a phase reads it.
    use_tree = any(p in phases for p in ("du", "find", "read1", "read2"))
    files = []
    for (name, d), dev in zip(builds, devs):
        load(d)
        run(os.path.join(d, "mkfs.ferrofs"), "-f", "-q", dev)
        if not use_tree:
            continue
        run("mount", "-t", "ferrofs", dev, mnt)
        os.mkdir(f"{mnt}/src")
        run("tar", "-xf", tar, "-C", f"{mnt}/src")
        os.sync()
        if not files:
            # Regular files only: the tree has symlinks, some dangling.
            files = sorted(os.path.relpath(os.path.join(r, f), f"{mnt}/src")
                           for r, _, fs in os.walk(f"{mnt}/src") for f in fs
                           if stat.S_ISREG(os.lstat(os.path.join(r, f)).st_mode))
        run("umount", mnt)
    half = len(files) // 2
    src = f"{mnt}/src"
    with open(os.path.join(out, "results.jsonl"), "a") as res:
        for r in range(1, rounds + 1):
            # A B, then B A: a drift of the host's speed weighs on both.
            order = list(zip(builds, devs))
            if r % 2 == 0:
                order.reverse()
            for (name, d), dev in order:
                load(d)
                run("mount", "-t", "ferrofs", dev, mnt)
                run_phase = {
                    "du": lambda: timed(lambda: run("du", "-s", src, stdout=subprocess.DEVNULL)),
                    "find": lambda: timed(lambda: run("bash", "-c", 'find "$1" | wc -l', "find", src, stdout=subprocess.DEVNULL)),
                    "read1": lambda: timed(lambda: read_files(src, files)),
                    "read2": lambda: timed(lambda: two_readers(src, (files[:half], files[half:]))),
                    "create": lambda: timed(lambda: create_many(f"{mnt}/many")),
                    "unlink": lambda: warm(lambda: unlink_many(f"{mnt}/many")),
                    "parappend": lambda: par_appends(f"{mnt}/par", dev, counts),
                    "randread": lambda: random_reads(f"{mnt}/randread"),
                }
                counts = {}
                t = {p: run_phase[p]() for p in PHASES if p in phases}
                if "create" in phases:
                    if "unlink" not in phases:
                        unlink_many(f"{mnt}/many")
                    os.rmdir(f"{mnt}/many")
                run("umount", mnt)
                line = {"round": r, "build": name, "files": len(files), **t, **counts}
                print("bench-ab:", json.dumps(line), flush=True)
                res.write(json.dumps(line) + "\n")
                res.flush()
    run("rmmod", "ferrofs")


def report(out):
    rows = [json.loads(line) for line in open(os.path.join(out, "results.jsonl"))]
    params = json.load(open(os.path.join(out, "params.json")))
    names = params["builds"]
    # Runs from before the create and unlink phases name no phases.
    phases = [p for p in PHASES if p in params.get("phases", PHASES[:4])]
    n_files = rows[0]["files"] if rows else 0
    tree = f"{n_files} files of linux-source-6.12, caches dropped before each phase" if n_files else "no tree"
    lines = [f"ferrofs A/B {os.path.basename(out)}: {params['rounds']} rounds in one VM (fast kernel, TCG), {tree}",
             "builds: " + ", ".join(f"{n} = {params['revs'][n]}" for n in names), ""]
    both_reads = "read1" in phases and "read2" in phases
    lines.append(f"  {'round':<6}{'build':<10}" + "".join(f"{p:>10}" for p in phases) + (f"{'speed-up':>10}" if both_reads else ""))
    for row in rows:
        lines.append(f"  {row['round']:<6}{row['build']:<10}" + "".join(f"{row[p]:>10.3f}" for p in phases)
                     + (f"{row['read1'] / row['read2']:>10.2f}" if both_reads else ""))
    lines.append("")
    lines.append("  median seconds (lower is faster); B/A > 1 means B is slower")
    med = {n: {p: statistics.median(r[p] for r in rows if r["build"] == n) for p in phases} for n in names}
    for p in phases:
        a, b = med[names[0]][p], med[names[1]][p]
        lines.append(f"  {DESCRIBE[p]:<45} {names[0]} {a:8.3f}   {names[1]} {b:8.3f}   B/A {b / a if a else 0:6.3f}")
    if "parappend" in phases:
        lines.append("")
        lines.append("  parappend device counts per op (median)")
        for n in names:
            wreq = statistics.median(r["parappend_wreq_per_op"] for r in rows if r["build"] == n)
            fl = statistics.median(r["parappend_flush_per_op"] for r in rows if r["build"] == n)
            lines.append(f"  {n}: {wreq:.2f} write requests, {fl:.2f} flushes")
    text = "\n".join(lines) + "\n"
    open(os.path.join(out, "table.txt"), "w").write(text)
    print(text, end="")


if __name__ == "__main__":
    if sys.argv[1:2] == ["guest"]:
        out, tar, rounds, phases = sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5].split(",")
        unknown = [p for p in phases if p not in PHASES]
        if unknown:
            sys.exit(f"bench_ab.py: unknown phases {unknown}")
        guest(out, tar, rounds, phases, [(sys.argv[6], sys.argv[7]), (sys.argv[8], sys.argv[9])])
    elif sys.argv[1:2] == ["report"]:
        report(sys.argv[2])
    else:
        sys.exit("usage: bench_ab.py guest OUT TAR ROUNDS PHASES NAME_A DIR_A NAME_B DIR_B | report OUT")

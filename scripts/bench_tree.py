#!/usr/bin/env python3
# The I/O-pattern and real-tree workloads of scripts/bench (fio random
# O_DIRECT I/O, a kernel source tree unpacked, walked and removed, and read
# by one process against two), and the host-side preparation of the tree's
# archive. scripts/bench.py runs them and makes their table.
import json
import multiprocessing as mp
import os
import subprocess
import sys
import tarfile
import threading

from bench import MIB, Phase, drop_caches, run_ok, write_pattern_file

# fio: 4 KiB random O_DIRECT I/O at this queue depth, io_uring when the
# kernel allows it and libaio otherwise.
FIO_IODEPTH = 16
FIO_ENGINES = ("io_uring", "libaio")


# --- fio ---------------------------------------------------------------------

def fio_cmd(path, rw, engine, mib, extra):
    # --thread: fio's jobs are threads, so it needs no System V shared memory.
    return ["fio", "--name=bench", f"--filename={path}", f"--rw={rw}", "--bs=4k", "--direct=1",
            f"--iodepth={FIO_IODEPTH}", f"--ioengine={engine}", "--thread", f"--size={mib}m",
            "--randrepeat=1", "--invalidate=1"] + extra


def fio_engine(path, mib):
    """The first of FIO_ENGINES that a one-block O_DIRECT read on `path`
    succeeds with, and why each one before it was refused."""
    refused = []
    for engine in FIO_ENGINES:
        p = subprocess.run(fio_cmd(path, "randread", engine, mib, ["--io_size=4k", "--output-format=terse"]),
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if p.returncode == 0:
            return engine, refused
        refused.append(f"{engine}: {' '.join(p.stdout.split())[-200:]}")
    raise OSError(0, "fio refused every engine: " + "; ".join(refused))


def fio_run(path, rw, engine, mib, seconds, json_path):
    """One timed fio job; returns what its JSON report says of it."""
    extra = ["--time_based", f"--runtime={seconds}", "--output-format=json", f"--output={json_path}"]
    if rw == "randwrite":
        # The final fsync belongs to the phase, as everywhere in the bench.
        extra.append("--end_fsync=1")
    p = subprocess.run(fio_cmd(path, rw, engine, mib, extra), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if p.returncode != 0:
        raise OSError(0, f"fio {rw} ({engine}) failed: {' '.join(p.stdout.split())[-300:]}")
    with open(json_path) as f:
        text = f.read()
    # fio puts a note before its JSON report in the file when it cannot
    # drop the file's cached pages (posix_fadvise is ENOSYS on the test
    # kernels, built without CONFIG_ADVISE_SYSCALLS); the bench has dropped
    # the caches before the phase anyway.
    start = text.find("\n{") + 1 if not text.startswith("{") else 0
    try:
        job = json.loads(text[start:])["jobs"][0]
    except (ValueError, KeyError, IndexError):
        raise OSError(0, f"fio {rw} ({engine}): no JSON report in {json_path}: {' '.join(text.split())[:300]!r}, "
                         f"output {' '.join(p.stdout.split())[-200:]!r}") from None
    side = job["read" if rw == "randread" else "write"]
    if job.get("error"):
        raise OSError(job["error"], f"fio {rw} reported error {job['error']}")
    return {"engine": engine, "total_ios": side["total_ios"], "iops": side["iops"], "runtime_ms": side["runtime"],
            "clat_p99_us": side.get("clat_ns", {}).get("percentile", {}).get("99.000000", 0) / 1000}


def wl_fio(out, dev, d, mib):
    """Random 4 KiB O_DIRECT reads, then writes, at queue depth 16 on a file
    of `mib` MiB written (and synced) beforehand; each runs for
    BENCH_FIO_SECONDS; op = one 4 KiB I/O."""
    seconds = int(os.environ.get("BENCH_FIO_SECONDS", "30"))
    path = os.path.join(d, "fio.dat")
    write_pattern_file(path, mib)
    engine, refused = fio_engine(path, mib)
    for phase, rw in (("fio-randread", "randread"), ("fio-randwrite", "randwrite")):
        drop_caches()
        with Phase(out, dev, phase, 0) as ph:
            got = fio_run(path, rw, engine, mib, seconds, f"/tmp/bench-{dev}-{phase}.json")
            ph.ops = got["total_ios"]
            ph.extra = {"fio": {**got, "refused": refused}}
            if ph.ops == 0:
                raise OSError(0, f"fio {rw} did no I/O in {seconds} s")


# --- the tree ------------------------------------------------------------------

MEMINFO_KEYS = ("Slab", "SReclaimable", "SUnreclaim")


def meminfo():
    """/proc/meminfo's slab lines, in KiB."""
    got = {}
    with open("/proc/meminfo") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in MEMINFO_KEYS:
                got[key] = int(rest.split()[0])
    return got


class SlabPeak(threading.Thread):
    """Samples /proc/meminfo every 0.2 s until stopped, keeping the sample
    with the most slab memory."""

    def __init__(self):
        super().__init__(daemon=True)
        self.peak = meminfo()
        self.done = threading.Event()

    def run(self):
        while not self.done.wait(0.2):
            m = meminfo()
            if m["Slab"] > self.peak["Slab"]:
                self.peak = m

    def finish(self):
        self.done.set()
        self.join()
        m = meminfo()
        return m if m["Slab"] > self.peak["Slab"] else self.peak


def tree_archive():
    """The archive made by `prepare` (BENCH_TREE_TAR) and its counts."""
    tar = os.environ.get("BENCH_TREE_TAR", "")
    if not tar:
        raise OSError(0, "no tree archive (BENCH_TREE_TAR)")
    with open(tar + ".json") as f:
        return tar, json.load(f)


def unpack(tar, into):
    os.mkdir(into)
    run_ok(["tar", "-xf", tar, "-C", into])
    os.sync()


def count_entries(d):
    p = subprocess.run(["bash", "-c", 'set -o pipefail; find "$1" | wc -l', "find", d],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if p.returncode != 0:
        raise OSError(0, f"find {d}: {p.stderr.strip()[-300:]}")
    return int(p.stdout)


def wl_tree(out, dev, d, members):
    """The archive unpacked (with the final sync), with the slab memory's
    peak during it and what is left after drop_caches 2; then, caches
    dropped before each, find | wc -l, du -s and rm -rf (with a sync);
    op = one archive member, then one directory entry."""
    tar, info = tree_archive()
    if info["members"] != members:
        raise OSError(0, f"the archive has {info['members']} members, the bench expected {members}")
    into = os.path.join(d, "src")
    os.sync()
    drop_caches()
    with Phase(out, dev, "tree-unpack", members) as ph:
        before = meminfo()
        sampler = SlabPeak()
        sampler.start()
        try:
            unpack(tar, into)
        finally:
            peak = sampler.finish()
        ph.stop()
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("2\n")
        ph.extra = {"mem": {"before": before, "peak": peak, "after_drop": meminfo()}}
    # Every member and the top directory: a file lost or left over shows.
    want = info["entries"] + 1
    drop_caches()
    with Phase(out, dev, "tree-find", want) as ph:
        found = count_entries(into)
        ph.stop()
        if found != want:
            raise OSError(0, f"find saw {found} entries, the archive makes {want}")
    drop_caches()
    with Phase(out, dev, "tree-du", want) as ph:
        p = subprocess.run(["du", "-s", into], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        ph.stop()
        if p.returncode != 0:
            raise OSError(0, f"du: {p.stderr.strip()[-300:]}")
        ph.extra = {"du_kib": int(p.stdout.split()[0])}
    with Phase(out, dev, "tree-rm", want):
        run_ok(["rm", "-rf", into])
        os.sync()
    if os.path.exists(into):
        raise OSError(0, f"{into} still exists after rm -rf")


def read_all(paths, start, done):
    """One reader of wl_treepar: stats and reads each of `paths` whole once
    every reader is ready; done.value = bytes read."""
    buf = bytearray(MIB)
    total = 0
    start.wait()
    for p in paths:
        os.lstat(p)
        fd = os.open(p, os.O_RDONLY)
        try:
            while True:
                n = os.readv(fd, [buf])
                if n == 0:
                    break
                total += n
        finally:
            os.close(fd)
    done.value = total


def read_in_parallel(out, dev, phase, parts, want_bytes):
    ctx = mp.get_context("fork")
    start = ctx.Barrier(len(parts) + 1)
    done = [ctx.Value("q", -1, lock=False) for _ in parts]
    procs = [ctx.Process(target=read_all, args=(p, start, c)) for p, c in zip(parts, done)]
    for p in procs:
        p.start()
    drop_caches()
    with Phase(out, dev, phase, sum(len(p) for p in parts)) as ph:
        start.wait()
        for p in procs:
            p.join()
        ph.stop()
        bad = [p.exitcode for p in procs if p.exitcode != 0]
        if bad:
            raise OSError(0, f"{len(bad)} reader(s) failed (exit {bad[0]})")
        got = sum(c.value for c in done)
        if got != want_bytes:
            raise OSError(0, f"read {got} bytes, the files hold {want_bytes}")
        ph.extra = {"bytes": got, "processes": len(parts)}


def wl_treepar(out, dev, d, members):
    """The archive unpacked (not timed); its regular files stat'ed and read
    whole by one process, then, caches dropped again, the two halves of
    the sorted list by two processes at once; op = one file."""
    tar, info = tree_archive()
    into = os.path.join(d, "src")
    unpack(tar, into)
    files, size = [], 0
    for top, dirs, names in os.walk(into):
        dirs.sort()
        for name in sorted(names):
            p = os.path.join(top, name)
            st = os.lstat(p)
            if st.st_mode & 0o170000 == 0o100000:
                files.append(p)
                size += st.st_size
    if len(files) != info["files"]:
        raise OSError(0, f"the unpacked tree has {len(files)} regular files, the archive {info['files']}")
    half = len(files) // 2
    read_in_parallel(out, dev, "treepar-1proc", [files], size)
    read_in_parallel(out, dev, "treepar-2proc", [files[:half], files[half:]], size)


# --- the archive, on the host ---------------------------------------------------

def prepare(source, members, dest):
    """Writes to `dest` an uncompressed archive of the first `members`
    members of `source` (all of them when 0), and beside it dest.json with
    its counts: members, entries it makes (members and the directories
    they imply), regular files and their bytes. Kept while newer than the
    source."""
    meta = dest + ".json"
    if os.path.exists(meta) and os.path.getmtime(meta) > os.path.getmtime(source):
        return
    entries, files, size, n = set(), 0, 0, 0
    tmp = dest + ".part"
    with tarfile.open(source, "r|*") as src, tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as dst:
        for m in src:
            if members and n == members:
                break
            if not (m.isreg() or m.isdir() or m.issym()):
                continue  # no device nodes, fifos or hard links in a tree of sources
            n += 1
            parts = m.name.rstrip("/").split("/")
            for i in range(1, len(parts) + 1):
                entries.add("/".join(parts[:i]))
            if m.isreg():
                files += 1
                size += m.size
                dst.addfile(m, src.extractfile(m))
            else:
                dst.addfile(m)
    os.replace(tmp, dest)
    with open(meta, "w") as f:
        json.dump({"source": source, "members": n, "entries": len(entries), "files": files, "bytes": size}, f)


def main():
    if len(sys.argv) != 5 or sys.argv[1] != "prepare":
        sys.exit("usage: bench_tree.py prepare SOURCE MEMBERS DEST")
    prepare(sys.argv[2], int(sys.argv[3]), sys.argv[4])
    with open(sys.argv[4] + ".json") as f:
        print(f.read())


if __name__ == "__main__":
    main()

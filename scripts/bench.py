#!/usr/bin/env python3
# The benchmark behind scripts/bench: the workloads (`run`), the driver that
# makes each filesystem and runs them inside the VM (`guest`), and the table
# made from the raw results on the host (`report`).
import argparse
import csv
import fcntl
import json
import os
import struct
import subprocess
import sys
import time

# Each configuration: how its filesystem is made and mounted. ext4 is made
# with its inode tables and journal written up front, since lazy init would
# write them from a kernel thread in the middle of a measurement; discards
# are off at mkfs everywhere, so each run starts from the same device state.
CONFIGS = {
    "ext4": {
        "label": "ext4",
        "mkfs": ["mkfs.ext4", "-F", "-q", "-E", "lazy_itable_init=0,lazy_journal_init=0,nodiscard"],
        "type": "ext4",
        "opts": None,
    },
    "ext4-fc": {
        "label": "ext4 fast_commit",
        "mkfs": ["mkfs.ext4", "-F", "-q", "-O", "fast_commit", "-E", "lazy_itable_init=0,lazy_journal_init=0,nodiscard"],
        "type": "ext4",
        "opts": None,
    },
    "btrfs": {
        "label": "btrfs",
        "mkfs": ["mkfs.btrfs", "-f", "-q", "-K"],
        "type": "btrfs",
        "opts": None,
    },
    "btrfs-notreelog": {
        "label": "btrfs notreelog",
        "mkfs": ["mkfs.btrfs", "-f", "-q", "-K"],
        "type": "btrfs",
        "opts": "notreelog",
    },
    "ferrofs": {
        "label": "ferrofs",
        "mkfs": ["mkfs.ferrofs", "-f", "-q"],
        "type": "ferrofs",
        "opts": None,
    },
}
# How the table header describes each kernel flavour (scripts/build-kernel).
KERNEL_FLAVOURS = {
    "debug": "debug test kernel: KASAN, lockdep",
    "fast": "fast test kernel: no KASAN, no lockdep",
}
REFERENCE = "ext4"
SECOND_REFERENCE = "ext4-fc"

WORKLOADS = ["append", "smallfiles", "seq", "createunlink", "snapshot", "send",
             "parappend", "renamefsync", "sqlite", "replaytime", "fio", "tree", "treepar"]
# The rows of the table: (workload, phase, unit of one op, rate unit).
PHASES = {
    "append": [("append", "append", "op", "ops/s")],
    "smallfiles": [("smallfiles", "file", "file", "ops/s")],
    "seq": [("seq-write", "MiB", "MiB", "MiB/s"), ("seq-read", "MiB", "MiB", "MiB/s")],
    "createunlink": [("create", "file", "file", "ops/s"), ("unlink", "file", "file", "ops/s")],
    "snapshot": [("snapshot-small", "snapshot", "snapshot", "ops/s"), ("snapshot-large", "snapshot", "snapshot", "ops/s"),
                 ("snapshot-ioctl", "snapshot", "snapshot", "ops/s"), ("cow-write", "write", "write", "ops/s"), ("delete", "block", "block freed", "blocks/s"),
                 ("umount-pending", "umount", "umount", "ops/s")],
    "send": [("send-full-large", "MiB", "MiB", "MiB/s"), ("send-full-small", "file", "file", "files/s"),
             ("send-incr-1", "send", "send", "ops/s"), ("send-incr-10", "send", "send", "ops/s"),
             ("recv-full-large", "MiB", "MiB", "MiB/s"), ("recv-full-small", "file", "file", "files/s")],
}
PHASES.update({
    "parappend": [("parappend", "op", "op", "ops/s")],
    "renamefsync": [("renamefsync", "op", "op", "ops/s")],
    "sqlite": [("sqlite-wal", "row", "row", "rows/s"), ("sqlite-journal", "row", "row", "rows/s")],
    "replaytime": [("replay-1x", "record", "record", "records/s"), ("replay-8x", "record", "record", "records/s")],
    "fio": [("fio-randread", "io", "4 KiB I/O", "ops/s"), ("fio-randwrite", "io", "4 KiB I/O", "ops/s")],
    "tree": [("tree-unpack", "member", "member", "members/s"), ("tree-find", "entry", "entry", "entries/s"),
             ("tree-du", "entry", "entry", "entries/s"), ("tree-rm", "entry", "entry", "entries/s")],
    "treepar": [("treepar-1proc", "file", "file", "files/s"), ("treepar-2proc", "file", "file", "files/s")],
})
# Parallel appenders of the parappend workload.
PAR_WRITERS = 4
# Phases only ferrofs has (the others report n/a).
FERROFS_ONLY = {"replay-1x", "replay-8x"}
# Phases compared with btrfs rather than ext4 (which has no send).
VS_BTRFS = {"send-full-large", "send-full-small", "send-incr-1", "send-incr-10", "recv-full-large", "recv-full-small"}

# Under /tmp (a tmpfs in the guest; /mnt is the host's, read-only), one
# per configuration, so a mount stuck after a hang leaves the others free.
MOUNT_BASE = "/tmp/bench-mnt"
BLOCK = 4096
MIB = 1 << 20


# --- workloads (run in a child process, one per cell) ---------------------

def dev_stat(dev):
    with open(f"/sys/block/{dev}/stat") as f:
        return [int(x) for x in f.read().split()]


def stat_delta(before, after):
    d = [a - b for a, b in zip(after, before)]
    # /sys/block/<dev>/stat fields (1-based): 1 read I/Os, 3 read sectors,
    # 5 write I/Os, 7 write sectors, 12 discard I/Os, 16 flush I/Os.
    return {
        "read_ios": d[0],
        "read_sectors": d[2],
        "write_ios": d[4],
        "write_sectors": d[6],
        "discard_ios": d[11] if len(d) > 11 else 0,
        "flush_ios": d[15] if len(d) > 15 else 0,
    }


def fsync_stats(dev):
    """ferrofs's /sys/fs/ferrofs/<dev>/fsync_stats as a dict of counters,
    or None on another filesystem (or with the file gone: unmounted)."""
    try:
        with open(f"/sys/fs/ferrofs/{dev}/fsync_stats") as f:
            pairs = [line.split() for line in f if line.strip()]
    except OSError:
        return None
    return {k: int(v) for k, v in pairs if v.isdigit()}


# The fsync tiers and full-commit reasons the table shows, by their keys in
# fsync_stats (Documentation/filesystems/ferrofs.rst, "Statistics in sysfs").
TIER_KEYS = ["fsync_fast_commit", "fsync_tree_log", "fsync_full_commit", "fsync_clean"]


def tier_delta(before, after):
    """What a phase added to each tier and full-commit reason (non-zero
    ones only); None when either side has no statistics."""
    if before is None or after is None:
        return None
    keys = TIER_KEYS + sorted(k for k in after if k.startswith("full_commit_"))
    return {k: after[k] - before.get(k, 0) for k in keys if after.get(k, 0) - before.get(k, 0)}


class Phase:
    """Times one phase and takes the device counters around it; the final
    sync or fsync belongs inside the phase, so its writes count."""

    def __init__(self, out, dev, name, ops):
        self.out, self.dev, self.name, self.ops = out, dev, name, ops

    def __enter__(self):
        self.stopped = None
        self.tiers0 = fsync_stats(self.dev)
        self.before = dev_stat(self.dev)
        self.t0 = time.perf_counter()
        return self

    def stop(self):
        """Ends the timing and the counters here, so that what the block
        does after it (a check, a measurement) does not count."""
        if self.stopped is None:
            self.stopped = (time.perf_counter() - self.t0, dev_stat(self.dev), fsync_stats(self.dev))

    def __exit__(self, exc_type, exc, tb):
        self.stop()
        seconds, after, stats = self.stopped
        tiers = tier_delta(self.tiers0, stats)
        if exc_type is None:
            emit(self.out, {"phase": self.name, "ops": self.ops, "seconds": seconds,
                            "dev": stat_delta(self.before, after), **({"tiers": tiers} if tiers else {}),
                            **getattr(self, "extra", {})})
        else:
            emit(self.out, {"phase": self.name, "error": describe(exc), "ops": self.ops, "seconds": seconds})
            exc.bench_reported = True  # the workload stops here, its later phases unrun
        return False


def describe(exc):
    if isinstance(exc, OSError) and exc.errno is not None:
        import errno as errno_mod
        name = errno_mod.errorcode.get(exc.errno, str(exc.errno))
        where = f" ({exc.filename})" if exc.filename else ""
        return f"{name} {exc.strerror}{where}"
    return f"{type(exc).__name__}: {exc}"


def emit(out, record):
    out.write(json.dumps(record) + "\n")
    out.flush()


def drop_caches():
    os.sync()
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3\n")


def append_fsync(fd, buf, n, done=None):
    """n times: append buf to fd, then fsync it; done(k) after the k-th
    (so an error reports how far it got)."""
    for k in range(1, n + 1):
        if os.write(fd, buf) != len(buf):
            raise OSError(0, "short write")
        os.fsync(fd)
        if done:
            done(k)


def wl_append(out, dev, d, n):
    path = os.path.join(d, "log")
    fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_APPEND, 0o644)
    try:
        os.fsync(fd)
        os.sync()
        buf = b"a" * BLOCK
        with Phase(out, dev, "append", n) as ph:
            ph.ops = 0
            append_fsync(fd, buf, n, lambda k: setattr(ph, "ops", k))
    finally:
        os.close(fd)


def wl_smallfiles(out, dev, d, n):
    sub = os.path.join(d, "small")
    os.mkdir(sub)
    os.sync()
    buf = b"s" * BLOCK
    with Phase(out, dev, "smallfiles", n) as ph:
        for i in range(n):
            ph.ops = i
            fd = os.open(os.path.join(sub, f"f{i:07d}"), os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            try:
                if os.write(fd, buf) != BLOCK:
                    raise OSError(0, "short write")
                os.fsync(fd)
            finally:
                os.close(fd)
        ph.ops = n


def pattern():
    # Not zeros and not one repeated byte, so nothing can be elided.
    return bytes(range(256)) * (MIB // 256)


def write_pattern_file(path, mib):
    """Writes `mib` MiB of pattern() to `path` 1 MiB at a time, then fsync."""
    buf = pattern()
    fd = os.open(path, os.O_CREAT | os.O_TRUNC | os.O_WRONLY, 0o644)
    try:
        for _ in range(mib):
            if os.write(fd, buf) != MIB:
                raise OSError(0, "short write")
        os.fsync(fd)
    finally:
        os.close(fd)
    return buf


def fiemap_extents(path):
    """How many extents FIEMAP reports for the file (after a sync, so
    delayed allocation has placed every block)."""
    import fcntl
    import struct
    fs_ioc_fiemap = 0xC020660B
    fiemap_flag_sync = 1
    fd = os.open(path, os.O_RDONLY)
    try:
        # struct fiemap with fm_extent_count 0: the kernel only counts.
        req = bytearray(struct.pack("=QQIIII", 0, (1 << 64) - 1, fiemap_flag_sync, 0, 0, 0))
        fcntl.ioctl(fd, fs_ioc_fiemap, req)
        return struct.unpack_from("=QQIIII", req)[3]
    finally:
        os.close(fd)


def wl_seq(out, dev, d, mib):
    path = os.path.join(d, "big")
    os.sync()
    with Phase(out, dev, "seq-write", mib) as ph:
        buf = write_pattern_file(path, mib)
        ph.stop()
        ph.extra = {"extents": fiemap_extents(path)}
    drop_caches()
    with Phase(out, dev, "seq-read", mib):
        fd = os.open(path, os.O_RDONLY)
        try:
            done = 0
            while True:
                chunk = os.read(fd, MIB)
                if not chunk:
                    break
                # Reads come back in whole MiB here (a regular file at EOF
                # aligned on MiB); compare what was written.
                if chunk != buf[:len(chunk)]:
                    raise ValueError(f"data differs in the MiB at {done}")
                done += len(chunk)
        finally:
            os.close(fd)
        if done != mib * MIB:
            raise ValueError(f"read {done} bytes, wrote {mib * MIB}")


def wl_createunlink(out, dev, d, n):
    sub = os.path.join(d, "many")
    os.mkdir(sub)
    os.sync()
    names = [os.path.join(sub, f"f{i:07d}") for i in range(n)]
    with Phase(out, dev, "create", n) as ph:
        for i, name in enumerate(names):
            ph.ops = i
            os.close(os.open(name, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
        ph.ops = n
        os.sync()
    with Phase(out, dev, "unlink", n) as ph:
        for i, name in enumerate(names):
            ph.ops = i
            os.unlink(name)
        ph.ops = n
        os.sync()


def mount_of(path):
    """(device, mount point, type, options) of the mount holding path."""
    best = None
    with open("/proc/mounts") as f:
        for line in f:
            src, mnt, fstype, opts = line.split()[:4]
            if (path == mnt or path.startswith(mnt.rstrip("/") + "/")) and (best is None or len(mnt) > len(best[1])):
                best = (src, mnt, fstype, opts)
    return best


def free_blocks(path):
    st = os.statvfs(path)
    return st.f_bfree * st.f_frsize // BLOCK


def subvolume_cli(fstype):
    """The subvolume command of each filesystem that has one."""
    return {"btrfs": ["btrfs"], "ferrofs": ["ferrofs"]}.get(fstype)


def snapshot_ioctl(fstype, src, dstdir, name):
    """A read-only snapshot of `src` named `name` in `dstdir` by the
    filesystem's own ioctl, from this process: no command's start-up in it.
    btrfs: BTRFS_IOC_SNAP_CREATE_V2 (struct btrfs_ioctl_vol_args_v2, 4096
    bytes, BTRFS_SUBVOL_RDONLY); ferrofs: FERROFS_IOC_SNAP_CREATE
    (include/uapi/linux/ferrofs.h, FERROFS_SUBVOL_RDONLY)."""
    sfd = os.open(src, os.O_RDONLY | os.O_DIRECTORY)
    dfd = os.open(dstdir, os.O_RDONLY | os.O_DIRECTORY)
    try:
        if fstype == "btrfs":
            args = struct.pack("=qQQ4Q", sfd, 0, 1 << 1, 0, 0, 0, 0) + name.encode().ljust(4040, b"\0")
            fcntl.ioctl(dfd, 0x50009417, bytearray(args))
        else:
            args = struct.pack("=qQQ5Q", sfd, 1 << 1, 0, 0, 0, 0, 0, 0) + name.encode().ljust(256, b"\0")
            fcntl.ioctl(dfd, 0xC140F502, bytearray(args))
    finally:
        os.close(sfd)
        os.close(dfd)


def run_ok(cmd):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if p.returncode != 0:
        raise OSError(0, f"{' '.join(cmd)}: {p.stdout.strip()[-300:]}")


def wait_free_settles(path, limit_s=1800):
    """Waits for a background subvolume drop: until the free block count
    has not changed for 3 s (sync in between so freed blocks show)."""
    last, since, t0 = free_blocks(path), time.time(), time.time()
    while time.time() - t0 < limit_s:
        time.sleep(0.5)
        os.sync()
        now = free_blocks(path)
        if now != last:
            last, since = now, time.time()
        elif time.time() - since >= 3:
            return last, since - t0
    raise OSError(0, f"free space still changing after {limit_s} s")


def fill_subvolume(d, files):
    for i in range(files):
        os.close(os.open(os.path.join(d, f"f{i:07d}"), os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
    fd = os.open(os.path.join(d, "data"), os.O_CREAT | os.O_WRONLY, 0o644)
    try:
        os.write(fd, pattern())
    finally:
        os.close(fd)


def wl_snapshot(out, dev, d, n):
    """Snapshot creation of subvolumes of n/10 and n files, the first 4 KiB
    overwrite after it, deletion throughput, and umount with a deletion
    pending. Filesystems without subvolumes report every phase as an error."""
    src_dev, mnt, fstype, opts = mount_of(d)
    cli = subvolume_cli(fstype)
    if cli is None:
        for phase in ("snapshot-small", "snapshot-large", "snapshot-ioctl", "cow-write", "delete", "umount-pending"):
            emit(out, {"phase": phase, "error": f"{fstype} has no subvolumes"})
        return
    for phase, files in (("snapshot-small", max(1, n // 10)), ("snapshot-large", n)):
        src = os.path.join(d, f"src-{files}")
        run_ok(cli + ["subvolume", "create", src])
        fill_subvolume(src, files)
        os.sync()
        with Phase(out, dev, phase, 1):
            run_ok(cli + ["subvolume", "snapshot", "-r", src, os.path.join(d, f"snap-{files}")])
            os.sync()
    # The large snapshot again, by the ioctl alone; then gone again (space
    # settled) so the phases after it see what they saw without it.
    big = os.path.join(d, f"src-{n}")
    again = os.path.join(d, "snap-ioctl")
    os.sync()
    with Phase(out, dev, "snapshot-ioctl", 1):
        snapshot_ioctl(fstype, big, d, "snap-ioctl")
        os.sync()
    run_ok(cli + ["subvolume", "delete", again])
    if fstype == "btrfs":
        run_ok(["btrfs", "subvolume", "sync", mnt])
    wait_free_settles(d)
    # The first overwrite of a shared block: one path of the tree copied.
    fd = os.open(os.path.join(big, "data"), os.O_WRONLY)
    try:
        with Phase(out, dev, "cow-write", 1):
            os.pwrite(fd, b"w" * BLOCK, 4 * BLOCK)
            os.fsync(fd)
    finally:
        os.close(fd)
    # Deletion: the snapshot, then its source, so the blocks really go.
    os.sync()
    before = free_blocks(d)
    with Phase(out, dev, "delete", 0) as ph:
        run_ok(cli + ["subvolume", "delete", os.path.join(d, f"snap-{n}")])
        run_ok(cli + ["subvolume", "delete", big])
        if fstype == "btrfs":
            # Its cleaner may not have started yet: wait for it to finish.
            run_ok(["btrfs", "subvolume", "sync", mnt])
        after, _ = wait_free_settles(d)
        ph.ops = max(0, after - before)
    # Unmount with a deletion just started: how long it waits.
    small = max(1, n // 10)
    run_ok(cli + ["subvolume", "delete", os.path.join(d, f"snap-{small}")])
    run_ok(cli + ["subvolume", "delete", os.path.join(d, f"src-{small}")])
    with Phase(out, dev, "umount-pending", 1):
        run_ok(["umount", mnt])
    run_ok(["mount", "-t", fstype, "-o", opts, src_dev, mnt])


def send_to_counter(cmd):
    """Runs a send command with its stream on a pipe read here; returns
    the stream's length in bytes."""
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    n = 0
    while True:
        b = p.stdout.read(1 << 20)
        if not b:
            break
        n += len(b)
    err = p.stderr.read().decode(errors="replace")
    if p.wait() != 0:
        raise OSError(0, f"{' '.join(cmd)}: {err.strip()[-300:]}")
    return n


def send_cmd(fstype, snap, parent=None):
    cmd = ["btrfs", "send", "-q"] if fstype == "btrfs" else ["ferrofs", "send", "-q"]
    return cmd + (["-p", parent] if parent else []) + [snap]


def wl_send(out, dev, d, n):
    """Full sends of BENCH_SEND_MIB MiB in 100 files and of n small files
    (2000 bytes each, 1000 per directory), then incremental sends of both
    after 1% and after 10% of each was rewritten, against the first
    snapshots. The stream goes to a pipe this process reads; caches are
    dropped before each phase, so data is read from the device."""
    src_dev, mnt, fstype, opts = mount_of(d)
    cli = subvolume_cli(fstype)
    phases = [p[0] for p in PHASES["send"]]
    if cli is None:
        for phase in phases:
            emit(out, {"phase": phase, "error": f"{fstype} has no send"})
        return
    mib = int(os.environ.get("BENCH_SEND_MIB", "1024"))
    large, small = os.path.join(d, "large"), os.path.join(d, "small")
    run_ok(cli + ["subvolume", "create", large])
    run_ok(cli + ["subvolume", "create", small])
    per_file = max(BLOCK, mib * MIB // 100 // BLOCK * BLOCK)
    block = pattern()

    def write_large(i, salt):
        with open(os.path.join(large, f"big{i:03d}"), "wb") as f:
            left = per_file
            while left > 0:
                chunk = block[: min(len(block), left)]
                f.write(bytes([salt]) + chunk[1:])
                left -= len(chunk)

    def write_small(i, salt):
        sub = os.path.join(small, f"d{i // 1000:04d}")
        if i % 1000 == 0:
            os.makedirs(sub, exist_ok=True)
        with open(os.path.join(sub, f"f{i:07d}"), "wb") as f:
            f.write(bytes([salt]) * 2000)

    for i in range(100):
        write_large(i, 0)
    for i in range(n):
        write_small(i, 1)
    os.sync()
    run_ok(cli + ["subvolume", "snapshot", "-r", large, os.path.join(d, "large-0")])
    run_ok(cli + ["subvolume", "snapshot", "-r", small, os.path.join(d, "small-0")])
    drop_caches()
    with Phase(out, dev, "send-full-large", mib) as ph:
        ph.extra = {"stream_bytes": send_to_counter(send_cmd(fstype, os.path.join(d, "large-0")))}
    drop_caches()
    with Phase(out, dev, "send-full-small", n) as ph:
        ph.extra = {"stream_bytes": send_to_counter(send_cmd(fstype, os.path.join(d, "small-0")))}
    for pct in (1, 10):
        for i in range(max(1, 100 * pct // 100)):
            write_large(i, pct)
        for i in range(0, max(1, n * pct // 100)):
            write_small(i * (100 // pct) % n, pct + 1)
        os.sync()
        run_ok(cli + ["subvolume", "snapshot", "-r", large, os.path.join(d, f"large-{pct}")])
        run_ok(cli + ["subvolume", "snapshot", "-r", small, os.path.join(d, f"small-{pct}")])
        drop_caches()
        with Phase(out, dev, f"send-incr-{pct}", 1) as ph:
            b = send_to_counter(send_cmd(fstype, os.path.join(d, f"large-{pct}"), os.path.join(d, "large-0")))
            b += send_to_counter(send_cmd(fstype, os.path.join(d, f"small-{pct}"), os.path.join(d, "small-0")))
            ph.extra = {"stream_bytes": b}
    receive_full(out, fstype, [("recv-full-large", os.path.join(d, "large-0"), mib),
                               ("recv-full-small", os.path.join(d, "small-0"), n)])


def receive_full(out, fstype, sends):
    """Receive throughput: each (phase, snapshot, ops) of `sends` is sent
    in full into a file on the receive disk (BENCH_RECV_DEV), then, caches
    dropped, received from that file beside it: by btrfs receive onto
    btrfs for btrfs, by ferrofs receive onto ext4 for ferrofs (a receiver
    that applies a stream onto any filesystem), each with a final sync.
    The device columns are the receive disk's (reading the stream and
    writing what it makes)."""
    rdev = os.environ.get("BENCH_RECV_DEV", "")
    if not rdev:
        for phase, _, _ in sends:
            emit(out, {"phase": phase, "error": "no receive disk"})
        return
    if fstype == "btrfs":
        mkfs, receive = ["mkfs.btrfs", "-q", "-f"], ["btrfs", "receive", "-q"]
    else:
        mkfs, receive = ["mkfs.ext4", "-q", "-F"], ["ferrofs", "receive"]
    mnt = MOUNT_BASE + "-receive"
    os.makedirs(mnt, exist_ok=True)
    run_ok(mkfs + [f"/dev/{rdev}"])
    run_ok(["mount", f"/dev/{rdev}", mnt])
    try:
        for phase, snap, ops in sends:
            stream = os.path.join(mnt, f"{phase}.stream")
            with open(stream, "wb") as f:
                p = subprocess.run(send_cmd(fstype, snap), stdout=f, stderr=subprocess.PIPE, text=True)
            if p.returncode != 0:
                raise OSError(0, f"{' '.join(send_cmd(fstype, snap))}: {p.stderr.strip()[-300:]}")
            into = os.path.join(mnt, phase)
            os.mkdir(into)
            drop_caches()
            with Phase(out, rdev, phase, ops) as ph:
                run_ok(receive + ["-f", stream, into])
                os.sync()
                ph.extra = {"stream_bytes": os.path.getsize(stream)}
            os.unlink(stream)
    finally:
        run_ok(["umount", mnt])


def par_writer(path, n, start, done):
    """One appender of wl_parappend: n appends of 4 KiB to its own file,
    each followed by fsync, begun when every writer is ready."""
    fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_APPEND, 0o644)
    try:
        start.wait()
        append_fsync(fd, b"p" * BLOCK, n, lambda k: setattr(done, "value", k))
    finally:
        os.close(fd)


def wl_parappend(out, dev, d, n):
    """PAR_WRITERS processes, each appending 4 KiB + fsync n times to a
    file of its own, all at once; op = one append+fsync of one writer."""
    import multiprocessing as mp
    ctx = mp.get_context("fork")
    paths = [os.path.join(d, f"par{i}") for i in range(PAR_WRITERS)]
    for p in paths:
        os.close(os.open(p, os.O_CREAT | os.O_WRONLY, 0o644))
    os.sync()
    start = ctx.Barrier(PAR_WRITERS + 1)
    done = [ctx.Value("q", 0, lock=False) for _ in paths]
    procs = [ctx.Process(target=par_writer, args=(p, n, start, c)) for p, c in zip(paths, done)]
    for p in procs:
        p.start()
    with Phase(out, dev, "parappend", n * PAR_WRITERS) as ph:
        start.wait()
        for p in procs:
            p.join()
        ph.ops = sum(c.value for c in done)
        bad = [p.exitcode for p in procs if p.exitcode != 0]
        if bad:
            raise OSError(0, f"{len(bad)} writer(s) failed (exit {bad[0]}) after {ph.ops} appends in all")


def wl_renamefsync(out, dev, d, n):
    """A file renamed back and forth between two directories, each rename
    followed by fsync of both directories; op = one rename + two fsyncs."""
    a, b = os.path.join(d, "ra"), os.path.join(d, "rb")
    os.mkdir(a)
    os.mkdir(b)
    with open(os.path.join(a, "moving"), "wb") as f:
        f.write(b"r" * BLOCK)
    os.sync()
    fa, fb = os.open(a, os.O_RDONLY | os.O_DIRECTORY), os.open(b, os.O_RDONLY | os.O_DIRECTORY)
    try:
        with Phase(out, dev, "renamefsync", n) as ph:
            for i in range(n):
                ph.ops = i
                src, dst = (a, b) if i % 2 == 0 else (b, a)
                os.rename(os.path.join(src, "moving"), os.path.join(dst, "moving"))
                os.fsync(fa)
                os.fsync(fb)
            ph.ops = n
    finally:
        os.close(fa)
        os.close(fb)


def wl_sqlite(out, dev, d, n):
    """python3's sqlite3: n single-row INSERT transactions (autocommit,
    synchronous=FULL) in WAL mode, then in rollback-journal (DELETE) mode,
    each on a database of its own; op = one committed row."""
    import sqlite3
    for phase, mode in (("sqlite-wal", "wal"), ("sqlite-journal", "delete")):
        path = os.path.join(d, f"{mode}.db")
        db = sqlite3.connect(path, isolation_level=None)
        try:
            got = db.execute(f"PRAGMA journal_mode={mode}").fetchone()[0]
            if got != mode:
                raise OSError(0, f"sqlite journal_mode {mode} refused (got {got})")
            db.execute("PRAGMA synchronous=FULL")
            db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB)")
            os.sync()
            row = b"q" * 100
            with Phase(out, dev, phase, n) as ph:
                for i in range(n):
                    ph.ops = i
                    db.execute("INSERT INTO t (v) VALUES (?)", (row,))
                ph.ops = n
        finally:
            db.close()


def replay_once(out, dev, mnt, opts, fs_bytes, records, phase):
    """mkfs a filesystem of fs_bytes with room for `records` records, make
    that many 4 KiB append + fsync records pending, shut down without a log
    flush, then time the mount that replays them."""
    # One block per record (an append's record is 500 bytes), plus slack.
    area = records + records // 8 + 64
    run_ok(["mkfs.ferrofs", "-f", "-q", "--fast-commit-blocks", str(area), f"/dev/{dev}", str(fs_bytes)])
    # No background commit: the records must be all that holds the appends.
    run_ok(["mount", "-t", "ferrofs", "-o", "commit=86400", f"/dev/{dev}", mnt])
    path = os.path.join(mnt, "log")
    fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_APPEND, 0o644)
    try:
        # The empty file committed, so that its appends are fast commits.
        os.sync()
        st0 = fsync_stats(dev)
        append_fsync(fd, b"l" * BLOCK, records)
    finally:
        os.close(fd)
    st = fsync_stats(dev)
    fast, commits = st["fsync_fast_commit"] - st0["fsync_fast_commit"], st["commits"] - st0["commits"]
    if fast != records or commits != 0:
        raise OSError(0, f"{fast} of {records} fsyncs were fast commits, {commits} commits: "
                         f"the records are not all pending")
    # FS_IOC_SHUTDOWN without FS_SHUTDOWN_FLAGS_LOGFLUSH: nothing more written.
    run_ok(["xfs_io", "-x", "-c", "shutdown", mnt])
    run_ok(["umount", mnt])
    with Phase(out, dev, phase, records) as ph:
        run_ok(["mount", "-t", "ferrofs", "-o", opts, f"/dev/{dev}", mnt])
        # The checks (a sysfs read and a stat) are inside so that a failed
        # one makes the phase an error; they cost microseconds.
        st = fsync_stats(dev)
        ph.extra = {"replay": {"replayed_records": st["replayed_records"], "replay_ns": st["replay_ns"],
                               "fs_bytes": fs_bytes, "area_blocks": area}}
        if st["replayed_records"] != records:
            raise OSError(0, f"{st['replayed_records']} records replayed, want {records}")
        if os.stat(path).st_size != records * BLOCK:
            raise OSError(0, f"replay gave {os.stat(path).st_size} bytes, want {records * BLOCK}")


def wl_replaytime(out, dev, d, n):
    """ferrofs only: mount time with n fast-commit records pending, on a
    filesystem of an eighth of the disk and on one of the whole disk (8x),
    with the same log: replay follows the log, not the filesystem."""
    src_dev, mnt, fstype, opts = mount_of(d)
    if fstype != "ferrofs":
        for phase in ("replay-1x", "replay-8x"):
            emit(out, {"phase": phase, "na": "ferrofs only (replay of its fast-commit records at mount)"})
        return
    with open(f"/sys/block/{dev}/size") as f:
        disk = int(f.read()) * 512 // MIB * MIB
    run_ok(["umount", mnt])
    for phase, size in (("replay-1x", disk // 8), ("replay-8x", disk)):
        replay_once(out, dev, mnt, opts, size, n, phase)
        run_ok(["umount", mnt])
    # Leave the cell's filesystem mounted again, as the driver expects.
    run_ok(["mkfs.ferrofs", "-f", "-q", src_dev])
    run_ok(["mount", "-t", "ferrofs", "-o", opts, src_dev, mnt])


def cmd_run(args):
    fn = {"append": wl_append, "smallfiles": wl_smallfiles, "seq": wl_seq,
          "createunlink": wl_createunlink, "snapshot": wl_snapshot, "send": wl_send,
          "parappend": wl_parappend, "renamefsync": wl_renamefsync, "sqlite": wl_sqlite,
          "replaytime": wl_replaytime}.get(args.workload)
    if fn is None:
        import bench_tree
        fn = {"fio": bench_tree.wl_fio, "tree": bench_tree.wl_tree, "treepar": bench_tree.wl_treepar}[args.workload]
    with open(args.out, "a") as out:
        try:
            fn(out, args.dev, args.dir, args.count)
        except Exception as e:
            if not getattr(e, "bench_reported", False):
                raise


# --- the driver inside the VM ----------------------------------------------

def sh(cmd, timeout):
    """Runs a command; returns (ok, text). A command the kernel holds past
    its time (an unkillable process) counts as hung."""
    try:
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return False, f"{' '.join(cmd)}: still running after {timeout} s"
    return p.returncode == 0, p.stdout.strip()


def dmesg_lines():
    ok, text = sh(["dmesg"], 60)
    return text.splitlines() if ok else []


def counts_for(params, wl):
    return {"append": params["appends"], "smallfiles": params["small_files"],
            "seq": params["seq_mib"], "createunlink": params["files"],
            "snapshot": params.get("snap_files", 100000), "send": params.get("send_files", 100000),
            "parappend": params.get("par_appends", 500), "renamefsync": params.get("renames", 300),
            "sqlite": params.get("sqlite_rows", 500), "replaytime": params.get("replay_records", 10000),
            "fio": params.get("fio_mib", 256), "tree": params.get("tree_members", 0),
            "treepar": params.get("tree_members", 0)}[wl]


def run_cell(params, cfg_name, dev, wl):
    """One workload on a freshly made filesystem. Returns one record per
    phase; a phase that did not complete carries "error"."""
    cfg = CONFIGS[cfg_name]
    phases = [p[0] for p in PHASES[wl]]
    seen = len(dmesg_lines())

    def fail_all(msg, done=()):
        got = {r["phase"] for r in done}
        return list(done) + [{"phase": p, "error": msg} for p in phases if p not in got]

    ok, text = sh(cfg["mkfs"] + [f"/dev/{dev}"], 900)
    if not ok:
        return fail_all(f"mkfs failed: {text[-300:]}"), False
    mnt = os.path.join(MOUNT_BASE, cfg_name)
    os.makedirs(mnt, exist_ok=True)
    mount = ["mount", "-t", cfg["type"]] + (["-o", cfg["opts"]] if cfg["opts"] else []) + [f"/dev/{dev}", mnt]
    ok, text = sh(mount, 300)
    if not ok:
        return fail_all(f"mount failed: {text[-300:]}"), False
    work = os.path.join(mnt, "w")
    os.mkdir(work)
    os.sync()

    rec_path = f"/tmp/bench-{cfg_name}-{wl}.jsonl"
    err_path = rec_path + ".err"
    if os.path.exists(rec_path):
        os.unlink(rec_path)
    cmd = [sys.executable, os.path.abspath(__file__), "run", wl, "--dir", work, "--dev", dev,
           "--count", str(counts_for(params, wl)), "--out", rec_path]
    hung = False
    with open(err_path, "w") as err:
        child = subprocess.Popen(cmd, stdout=err, stderr=subprocess.STDOUT)
        try:
            child.wait(timeout=params["cell_timeout"])
            timed_out = False
        except subprocess.TimeoutExpired:
            timed_out = True
            child.kill()
            try:
                child.wait(timeout=120)
            except subprocess.TimeoutExpired:
                hung = True
    records = []
    if os.path.exists(rec_path):
        with open(rec_path) as f:
            records = [json.loads(line) for line in f if line.strip()]
    with open(err_path) as f:
        stderr_text = f.read().strip()
    if timed_out:
        what = "stuck in the kernel after SIGKILL (hang)" if hung else "killed"
        records = fail_all(f"timed out after {params['cell_timeout']} s, {what}", records)
    elif child.returncode != 0:
        last = stderr_text.splitlines()[-1] if stderr_text else ""
        records = fail_all(f"exit {child.returncode}: {last[-300:]}", records)
    else:
        records = fail_all("not run (an earlier phase failed)", records)

    usable = not hung
    if usable:
        ok, text = sh(["umount", mnt], 600)
        if not ok:
            usable = False
            for r in records:
                r.setdefault("note", f"umount failed: {text[-300:]}")
    new = dmesg_lines()[seen:]
    if any("error" in r for r in records) or not usable:
        for r in records:
            r["dmesg"] = new[-60:]
        if stderr_text:
            for r in records:
                r["stderr"] = stderr_text[-2000:]
    return records, usable


def cmd_guest(args):
    with open(os.path.join(args.out, "params.json")) as f:
        params = json.load(f)
    results = os.path.join(args.out, "results.jsonl")
    # scripts/vm names the flavour of the kernel it booted.
    info = {"kernel": os.uname().release, "flavour": os.environ.get("FERROFS_KERNEL_FLAVOUR", "?"), "devices": {}}
    devs = params["devices"]
    for cfg_name, dev in zip(params["configs"], devs):
        with open(f"/sys/block/{dev}/queue/write_cache") as f:
            wc = f.read().strip()
        with open(f"/sys/block/{dev}/size") as f:
            size = int(f.read()) * 512
        info["devices"][dev] = {"config": cfg_name, "write_cache": wc, "bytes": size}
    with open(os.path.join(args.out, "guest.json"), "w") as f:
        json.dump(info, f, indent=1)

    # Workload by workload, every configuration in turn, so that the numbers
    # compared with each other are taken close together in time (the host's
    # load may change over a run); ferrofs last within each workload.
    # The send workload's data size reaches its child through the environment.
    os.environ["BENCH_SEND_MIB"] = str(params.get("send_mib", 1024))
    # And the disk its receive phases use (one for all configurations).
    os.environ["BENCH_RECV_DEV"] = params.get("recv_device", "")
    # And the fio workload's run time and the tree workloads' archive.
    os.environ["BENCH_FIO_SECONDS"] = str(params.get("fio_seconds", 30))
    os.environ["BENCH_TREE_TAR"] = params.get("tree_tar", "")
    usable = {c: True for c in params["configs"]}
    rounds = params.get("rounds", 1)
    for wl in params["workloads"]:
        for rnd, (cfg_name, dev) in ((n, c) for n in range(1, rounds + 1) for c in zip(params["configs"], devs)):
            t0 = time.time()
            if usable[cfg_name]:
                print(f"bench: {wl} on {cfg_name} (/dev/{dev}) ...", flush=True)
                records, usable[cfg_name] = run_cell(params, cfg_name, dev, wl)
            else:
                records = [{"phase": p[0], "error": "not run: the device is still busy from an earlier hang or failed umount"}
                           for p in PHASES[wl]]
            t1 = time.time()
            for r in records:
                r.update({"config": cfg_name, "workload": wl, "device": dev, "round": rnd,
                          "cell_wall_s": round(t1 - t0, 3)})
                line = {k: v for k, v in r.items() if k not in ("dmesg", "stderr")}
                print("bench:   " + json.dumps(line), flush=True)
            with open(results, "a") as f:
                for r in records:
                    f.write(json.dumps(r) + "\n")
                f.flush()
                os.fsync(f.fileno())


# --- the table on the host ---------------------------------------------------

def fmt_rate(x):
    if x >= 100:
        return f"{x:.0f}"
    if x >= 10:
        return f"{x:.1f}"
    return f"{x:.2f}"


def fmt_num(x):
    if x == 0:
        return "0"
    if abs(x) >= 100:
        return f"{x:.0f}"
    if abs(x) >= 10:
        return f"{x:.1f}"
    if abs(x) >= 0.01:
        return f"{x:.2f}"
    return f"{x:.4f}"


def describe_tiers(t):
    """A phase's fsync tier mix from ferrofs's fsync_stats deltas, e.g.
    'fast 300, tree-log 4, full 2 (not_regular 2)'."""
    reasons = ", ".join(f"{k[len('full_commit_'):]} {v}" for k, v in t.items() if k.startswith("full_commit_"))
    text = f"fast {t.get('fsync_fast_commit', 0)}, tree-log {t.get('fsync_tree_log', 0)}, full {t.get('fsync_full_commit', 0)}"
    if reasons:
        text += f" ({reasons})"
    if t.get("fsync_clean"):
        text += f", clean {t['fsync_clean']}"
    return text


def describe_fio(fo):
    """fio's own account of a phase: engine, IOPS by its clock, latency."""
    text = (f"fio {fo['engine']}: {fo['iops']:.0f} IOPS by its own clock over {fo['runtime_ms'] / 1000:.1f} s, "
            f"completion latency p99 {fo['clat_p99_us']:.0f} us")
    if fo.get("refused"):
        text += "; refused: " + "; ".join(fo["refused"])
    return text


def phase_footer(phase, configs, cells, rate):
    """Lines under a phase's rows that compare its configurations in
    another way: the slab memory of the tree unpack, and the speed-up of
    two readers over one."""
    lines = []
    if phase == "tree-unpack":
        def mib(kib):
            return f"{kib / 1024:.0f}"

        lines.append("  slab memory, MiB (/proc/meminfo Slab = SReclaimable + SUnreclaim): before the unpack; "
                     "peak during it (sampled every 0.2 s); after it and drop_caches 2")
        lines.append(f"  {'config':<17}{'before':>8}  {'peak':>6} {'(recl':>6} {'unrecl)':>8}  {'after':>6} {'(recl':>6} {'unrecl)':>8}")
        for cfg in configs:
            r = cells.get((cfg, phase))
            if r is None or "mem" not in r:
                continue
            b, p, a = r["mem"]["before"], r["mem"]["peak"], r["mem"]["after_drop"]
            lines.append(f"  {CONFIGS[cfg]['label']:<17}{mib(b['Slab']):>8}  {mib(p['Slab']):>6} {mib(p['SReclaimable']):>6} "
                         f"{mib(p['SUnreclaim']):>8}  {mib(a['Slab']):>6} {mib(a['SReclaimable']):>6} {mib(a['SUnreclaim']):>8}")
        lines.append("  ferrofs's node cache has no counter of its own (neither in fsync_stats nor, without debugfs, "
                     "by its shrinker); its nodes are kvmalloc'd, so they count in SUnreclaim")
    if phase == "treepar-2proc":
        ups = []
        for cfg in configs:
            one, two = rate(cells.get((cfg, "treepar-1proc"))), rate(cells.get((cfg, phase)))
            if one and two:
                ups.append(f"{CONFIGS[cfg]['label']} {two / one:.2f}")
        if ups:
            lines.append("  speed-up of two processes over one (one-process time / two-process time): " + ", ".join(ups))
    return lines


def cmd_report(args):
    with open(os.path.join(args.out, "params.json")) as f:
        params = json.load(f)
    guest = {}
    gpath = os.path.join(args.out, "guest.json")
    if os.path.exists(gpath):
        with open(gpath) as f:
            guest = json.load(f)
    def rate(r):
        if r is None or "error" in r or "na" in r or r["seconds"] <= 0:
            return None
        return r["ops"] / r["seconds"]

    every = {}
    rpath = os.path.join(args.out, "results.jsonl")
    if os.path.exists(rpath):
        with open(rpath) as f:
            for line in f:
                if line.strip():
                    r = json.loads(line)
                    every.setdefault((r["config"], r["phase"]), []).append(r)
    # One record per cell: the round of median rate (of an even number, the
    # slower middle one); a round that failed or was n/a stands for the cell,
    # so no error hides behind the other rounds.
    cells = {}
    for key, rs in every.items():
        bad = [r for r in rs if rate(r) is None]
        cells[key] = bad[0] if bad else sorted(rs, key=rate)[(len(rs) - 1) // 2]

    lines = []
    lines.append(f"ferrofs benchmark {params['stamp']}  ({params['mode']} run)")
    # Runs from before the flavours existed were all on the debug kernel.
    flavour = guest.get("flavour") or params.get("kernel_flavour") or "debug"
    lines.append(f"kernel {guest.get('kernel', '?')} ({KERNEL_FLAVOURS.get(flavour, flavour + ' test kernel')}), "
                 f"{params.get('accel', '?')}, "
                 f"2 vCPUs, {params['mem']} memory; each configuration on its own fresh {params['disk_size']} sparse "
                 f"virtio disk (cache=unsafe), filesystem re-made before each workload")
    if params.get("rounds", 1) > 1:
        lines.append(f"{params['rounds']} rounds: every workload ran {params['rounds']} times on each configuration, the "
                     f"configurations in turn each round; a row is its median round (of an even number, the slower "
                     f"middle one), and 'rate by round' lists every round")
    wc = {d["write_cache"] for d in guest.get("devices", {}).values()}
    if wc:
        lines.append(f"device write cache as the guest sees it: {', '.join(sorted(wc))}")
    lines.append(f"counts: appends={params['appends']}  small files={params['small_files']}  "
                 f"sequential={params['seq_mib']} MiB (1 MiB writes/reads)  create/unlink files={params['files']}")
    lines.append("fsync tiers (ferrofs rows): what the phase added to /sys/fs/ferrofs/<dev>/fsync_stats: "
                 "fast-commit records, tree-log records, full commits (by reason), clean fsyncs")
    lines.append(f"ratio columns: rate / rate of {CONFIGS[REFERENCE]['label']} (the reference, ext4 defaults) "
                 f"and / rate of {CONFIGS[SECOND_REFERENCE]['label']}; higher is faster")
    lines.append("device columns are per op, from /sys/block/<dev>/stat deltas over the phase "
                 "(fields 7, 5, 16, 3): KiB written, write requests, flushes, KiB read;")
    lines.append("  a flush with no data counts in field 5 as a write request of 0 sectors, and on a device "
                 "without FUA (virtio-blk) each FUA write is a write plus one more flush")
    titles = {
        "append": f"(1) append 4 KiB + fsync, {params['appends']} appends to one file; op = one write+fsync",
        "smallfiles": f"(2) create + write 4 KiB + fsync + close, {params['small_files']} files in one directory; op = one file",
        "seq-write": f"(3a) sequential write {params['seq_mib']} MiB + final fsync; op = 1 MiB",
        "seq-read": f"(3b) sequential read {params['seq_mib']} MiB after drop_caches; op = 1 MiB",
        "create": f"(4a) create {params['files']} empty files in one directory + sync; op = one file",
        "unlink": f"(4b) unlink those {params['files']} files + sync; op = one file",
        "snapshot-small": f"(5a) read-only snapshot of a subvolume of {max(1, params.get('snap_files', 0) // 10)} files + 1 MiB file, + sync",
        "snapshot-large": f"(5b) read-only snapshot of a subvolume of {params.get('snap_files', 0)} files + 1 MiB file, + sync",
        "snapshot-ioctl": f"(5b') the same snapshot by the ioctl alone (no command started), + sync",
        "cow-write": "(5c) first 4 KiB overwrite of the 1 MiB file after the snapshot + fsync",
        "delete": "(5d) delete the large snapshot and its source, until free space stops changing; op = one 4 KiB block freed",
        "umount-pending": "(5e) umount right after deleting the small snapshot and its source",
        "send-full-large": f"(6a) full send of {params.get('send_mib', 0)} MiB in 100 files, stream read from a pipe, caches dropped; op = 1 MiB of data",
        "send-full-small": f"(6b) full send of {params.get('send_files', 0)} files of 2000 bytes (1000 per directory); op = one file",
        "send-incr-1": "(6c) incremental sends of both after 1% of each was rewritten; op = the two sends",
        "send-incr-10": "(6d) the same after 10% was rewritten (against the same parents)",
        "recv-full-large": f"(6e) receive of (6a)'s stream from a file, caches dropped, + sync: btrfs receive onto btrfs, "
                           f"ferrofs receive onto ext4, on a disk of their own; op = 1 MiB of data",
        "recv-full-small": "(6f) the same for (6b)'s stream; op = one file",
        "parappend": f"(7) {PAR_WRITERS} parallel appenders, {params.get('par_appends', 0)} x (4 KiB append + fsync) each, "
                     f"own file each; op = one append+fsync",
        "renamefsync": f"(8) rename a 4 KiB file between two directories + fsync both, {params.get('renames', 0)} times; "
                       f"op = one rename + 2 fsyncs",
        "sqlite-wal": f"(9a) python sqlite3, journal_mode=WAL, synchronous=FULL, {params.get('sqlite_rows', 0)} "
                      f"single-row INSERT transactions; op = one row",
        "sqlite-journal": "(9b) the same with journal_mode=DELETE (rollback journal); op = one row",
        "replay-1x": f"(10a) mount replaying {params.get('replay_records', 0)} pending fast-commit records (4 KiB append + fsync "
                     f"each, then shutdown without log flush) on a filesystem of 1/8 of the disk; op = one record",
        "replay-8x": "(10b) the same on a filesystem of the whole disk (8x larger), same log",
        "fio-randread": f"(11a) fio, random 4 KiB O_DIRECT reads, iodepth 16, for {params.get('fio_seconds', 0)} s, on a "
                        f"{params.get('fio_mib', 0)} MiB file written and synced before, caches dropped; op = one read",
        "fio-randwrite": "(11b) the same with random 4 KiB O_DIRECT overwrites, + final fsync; op = one write",
        "tree-unpack": f"(12a) tar -xf of {params.get('tree_members', 0)} members of linux-source-6.12 ({params.get('tree_files', 0)} "
                       f"files, {params.get('tree_bytes', 0) / MIB:.0f} MiB), from an uncompressed copy (decompressed on the host, "
                       f"not timed) read over the 9p share, + sync; op = one member",
        "tree-find": "(12b) find DIR | wc -l of that tree after drop_caches; op = one directory entry",
        "tree-du": "(12c) du -s DIR after drop_caches; op = one directory entry",
        "tree-rm": "(12d) rm -rf DIR + sync; op = one directory entry",
        "treepar-1proc": f"(13a) lstat + read whole each of the tree's {params.get('tree_files', 0)} regular files, one process, "
                         f"caches dropped (tree unpacked untimed before); op = one file",
        "treepar-2proc": "(13b) the same by two processes at once, each with one half of the sorted list; op = one file",
    }
    header = f"  {'config':<17}{'rate':>12}  {'vs ext4':>8}  {'vs ext4fc':>9}  {'KiB wr/op':>10}  {'wr req/op':>10}  {'flush/op':>9}  {'KiB rd/op':>10}  {'time s':>8}"
    csv_rows = []
    for wl in params["workloads"]:
        for phase, _, unit, rate_unit in PHASES[wl]:
            lines.append("")
            lines.append(titles[phase] + f"  [rate in {rate_unit}]")
            lines.append(header)
            ref = rate(cells.get((REFERENCE, phase)))
            ref2 = rate(cells.get((SECOND_REFERENCE, phase)))
            for cfg in params["configs"]:
                r = cells.get((cfg, phase))
                label = CONFIGS[cfg]["label"]
                row = {"config": cfg, "workload": wl, "phase": phase, "rate_unit": rate_unit}
                if r is None:
                    msg = "error: no result (the VM ended before this cell finished)"
                    lines.append(f"  {label:<17}{msg}")
                    row["error"] = msg
                elif "na" in r:
                    lines.append(f"  {label:<17}n/a: {r['na']}")
                    row["error"] = "n/a: " + r["na"]
                elif "error" in r:
                    msg = "error: " + r["error"]
                    if r.get("ops"):
                        msg += f" (after {r['ops']} ops)"
                    lines.append(f"  {label:<17}{msg}")
                    row["error"] = msg
                else:
                    x = rate(r)
                    ops = r["ops"]
                    dv = r["dev"]
                    kw = dv["write_sectors"] * 512 / 1024 / ops
                    wr = dv["write_ios"] / ops
                    fl = dv["flush_ios"] / ops
                    kr = dv["read_sectors"] * 512 / 1024 / ops
                    vs = f"{x / ref:.2f}" if ref else "-"
                    vs2 = f"{x / ref2:.2f}" if ref2 else "-"
                    lines.append(f"  {label:<17}{fmt_rate(x):>12}  {vs:>8}  {vs2:>9}  {fmt_num(kw):>10}  "
                                 f"{fmt_num(wr):>10}  {fmt_num(fl):>9}  {fmt_num(kr):>10}  {r['seconds']:>8.2f}")
                    row.update({"rate": x, "vs_ext4": x / ref if ref else None,
                                "vs_ext4_fc": x / ref2 if ref2 else None, "ops": ops,
                                "seconds": r["seconds"], "kib_written_per_op": kw,
                                "write_ios_per_op": wr, "flushes_per_op": fl, "kib_read_per_op": kr,
                                **dv})
                if r is not None and r.get("tiers"):
                    lines.append(f"  {'':<17}fsync tiers: {describe_tiers(r['tiers'])}")
                    row["tiers"] = describe_tiers(r["tiers"])
                if r is not None and "replay" in r:
                    rp = r["replay"]
                    lines.append(f"  {'':<17}replayed {rp['replayed_records']} records in {rp['replay_ns'] / 1e6:.1f} ms "
                                 f"(replay_ns; the mount took {r['seconds'] * 1e3:.0f} ms) on a "
                                 f"{rp['fs_bytes'] / (1 << 30):.2f} GiB filesystem, area {rp['area_blocks']} blocks")
                    row["replay_ns"] = rp["replay_ns"]
                if r is not None and "stream_bytes" in r:
                    lines.append(f"  {'':<17}stream {r['stream_bytes'] / MIB:.2f} MiB")
                    row["stream_bytes"] = r["stream_bytes"]
                if r is not None and "extents" in r:
                    lines.append(f"  {'':<17}FIEMAP: {r['extents']} extents")
                    row["extents"] = r["extents"]
                if r is not None and "fio" in r:
                    lines.append(f"  {'':<17}{describe_fio(r['fio'])}")
                    row.update(fio_engine=r["fio"]["engine"], fio_iops=r["fio"]["iops"])
                if r is not None and "du_kib" in r:
                    lines.append(f"  {'':<17}du -s: {r['du_kib'] / 1024:.1f} MiB")
                    row["du_kib"] = r["du_kib"]
                if r is not None and "mem" in r:
                    row.update(slab_peak_kib=r["mem"]["peak"]["Slab"], slab_after_drop_kib=r["mem"]["after_drop"]["Slab"])
                note = r.get("note") if r else None
                if note:
                    lines.append(f"  {'':<17}note: {note}")
                csv_rows.append(row)
            lines += phase_footer(phase, params["configs"], cells, rate)
            if params.get("rounds", 1) > 1:
                per = []
                for cfg in params["configs"]:
                    rates = [rate(r) for r in sorted(every.get((cfg, phase), []), key=lambda r: r.get("round", 0))]
                    if rates and None not in rates:
                        per.append(f"{CONFIGS[cfg]['label']} " + " ".join(fmt_rate(x) for x in rates))
                if per:
                    lines.append("  rate by round: " + "; ".join(per))
                # Each round's configurations ran close together in time, so
                # a round's ratio is steadier than a ratio across rounds.
                mine = {r.get("round"): rate(r) for r in every.get(("ferrofs", phase), [])}
                for ref_cfg in (REFERENCE, SECOND_REFERENCE):
                    theirs = {r.get("round"): rate(r) for r in every.get((ref_cfg, phase), [])}
                    ratios = [mine[k] / theirs[k] for k in sorted(mine) if mine[k] and theirs.get(k)]
                    if ratios:
                        lines.append(f"  ferrofs / {CONFIGS[ref_cfg]['label']} by round: " + " ".join(f"{x:.2f}" for x in ratios))
            if phase in VS_BTRFS:
                fb = [rate(cells.get((c, phase))) for c in ("ferrofs", "btrfs")]
                if fb[0] and fb[1]:
                    lines.append(f"  ferrofs / btrfs: {fb[0] / fb[1]:.2f}")
    lines.append("")
    load_path = os.path.join(args.out, "hostload.log")
    if os.path.exists(load_path):
        # Other VMs on the same 2 cores slow every configuration, and not
        # evenly over time: say how busy the host was.
        loads, vms = [], []
        with open(load_path) as f:
            for line in f:
                parts = line.split()
                if len(parts) == 3:
                    loads.append(float(parts[1]))
                    vms.append(int(parts[2]))
        if loads:
            lines.append(f"host during the run ({len(loads)} samples): 1-min load average {min(loads):.2f}..{max(loads):.2f} "
                         f"(mean {sum(loads) / len(loads):.2f}); other QEMU processes {min(vms)}..{max(vms)}")
    if params.get("wall_s") is not None:
        lines.append(f"VM wall time {params['wall_s']} s; VM exit status {params.get('vm_status', '?')}")
    text = "\n".join(lines) + "\n"
    with open(os.path.join(args.out, "table.txt"), "w") as f:
        f.write(text)
    fields = ["config", "workload", "phase", "rate_unit", "rate", "vs_ext4", "vs_ext4_fc", "ops", "seconds",
              "kib_written_per_op", "write_ios_per_op", "flushes_per_op", "kib_read_per_op", "read_ios",
              "read_sectors", "write_ios", "write_sectors", "discard_ios", "flush_ios", "stream_bytes", "tiers",
              "replay_ns", "extents", "fio_engine", "fio_iops", "du_kib", "slab_peak_kib", "slab_after_drop_kib", "error"]
    with open(os.path.join(args.out, "results.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        for row in csv_rows:
            w.writerow(row)
    sys.stdout.write(text)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("workload", choices=WORKLOADS)
    r.add_argument("--dir", required=True)
    r.add_argument("--dev", required=True)
    r.add_argument("--count", type=int, required=True)
    r.add_argument("--out", required=True)
    g = sub.add_parser("guest")
    g.add_argument("--out", required=True)
    p = sub.add_parser("report")
    p.add_argument("--out", required=True)
    args = ap.parse_args()
    {"run": cmd_run, "guest": cmd_guest, "report": cmd_report}[args.cmd](args)


if __name__ == "__main__":
    main()

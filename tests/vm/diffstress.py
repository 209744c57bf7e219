# Differential stress: one seeded random sequence of file-system operations
# applied to two directory trees (ferrofs and a reference filesystem); every
# operation must have the same outcome (success or the same errno) on both,
# and the trees must match afterwards.
# usage: diffstress.py SEED OPS ROOT_A ROOT_B [--compare-only | --procs N [--snapshots SRC DIR]]
#   (exit 1 on the first divergence). With --procs N, N processes run at
#   once, each its own sequence (seed*1000+k) in its own subdirectory pK of
#   both roots, so the filesystems see concurrent calls while each
#   sequence's outcomes stay deterministic. With --snapshots, one more
#   process snapshots subvolume SRC (read-only, into DIR) while they run,
#   reads each snapshot twice some time apart (it must not change while
#   its source does) and deletes most of them again; the last ones are
#   read once more after the writers are done.
import errno
import mmap
import os
import random
import stat
import sys

seed, nops, roots = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3:5]
rng = random.Random(seed)
NAMES = ["a", "b", "c", "dir1", "dir2", "x" * 40, "y" * 255]


def rel_paths(root):
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            out.append(os.path.relpath(os.path.join(dirpath, n), root))
    return sorted(out)


def pick_dir(root):
    dirs = ["."] + [p for p in rel_paths(root) if os.path.isdir(os.path.join(root, p)) and not os.path.islink(os.path.join(root, p))]
    return rng.choice(dirs)


def pick_any(root):
    paths = rel_paths(root)
    return rng.choice(paths) if paths else "missing"


def new_path(root):
    return os.path.normpath(os.path.join(pick_dir(root), rng.choice(NAMES)))


def make_op(root):
    """Draws one operation (as data) from the state of the first tree."""
    kind = rng.choice(["create", "write", "write", "mmapwrite", "truncate", "mkdir", "rmdir", "unlink", "rename", "link", "symlink", "chmod", "read", "fsync", "setxattr", "removexattr"])
    if kind in ("create", "mkdir", "symlink"):
        return (kind, new_path(root), rng.randrange(1 << 30))
    if kind == "write":
        off = rng.choice([0, rng.randrange(70000), rng.randrange(1 << 22)])
        return (kind, pick_any(root), off, rng.randrange(1, 20000), rng.randrange(1 << 30))
    if kind == "setxattr":
        # ext4 keeps an inode's xattrs in one block: four values of at most
        # 600 bytes stay below that, so its ENOSPC never decides an outcome.
        return (kind, pick_any(root), "user.k%d" % rng.randrange(4), rng.randrange(1, 600), rng.randrange(1 << 30))
    if kind == "removexattr":
        return (kind, pick_any(root), "user.k%d" % rng.randrange(4))
    if kind == "mmapwrite":
        return (kind, pick_any(root), rng.random(), rng.randrange(1, 9000), rng.randrange(1 << 30))
    if kind == "truncate":
        return (kind, pick_any(root), rng.choice([0, rng.randrange(10000), rng.randrange(1 << 21)]))
    if kind in ("rename", "link"):
        return (kind, pick_any(root), new_path(root) if rng.random() < 0.6 else pick_any(root))
    if kind == "chmod":
        return (kind, pick_any(root), rng.choice([0o644, 0o600, 0o755, 0o4755, 0o2711]))
    return (kind, pick_any(root))


def apply(root, op):
    """Runs op under root; returns ('ok', detail) or ('err', errno name)."""
    p = lambda rel: os.path.join(root, rel)
    kind = op[0]
    try:
        if kind == "create":
            fd = os.open(p(op[1]), os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            os.close(fd)
        elif kind == "mkdir":
            os.mkdir(p(op[1]), 0o755)
        elif kind == "symlink":
            os.symlink("target-%d" % op[2], p(op[1]))
        elif kind == "write":
            data = random.Random(op[4]).randbytes(op[3])
            fd = os.open(p(op[1]), os.O_WRONLY | os.O_NOFOLLOW)
            try:
                os.pwrite(fd, data, op[2])
            finally:
                os.close(fd)
        elif kind == "mmapwrite":
            # A store through a shared mapping at a point inside the file
            # (the fraction op[2] of its size), clipped to the size.
            fd = os.open(p(op[1]), os.O_RDWR | os.O_NOFOLLOW)
            try:
                size = os.fstat(fd).st_size
                if size == 0:
                    return ("ok", "empty")
                off = int(op[2] * size)
                data = random.Random(op[4]).randbytes(min(op[3], size - off))
                with mmap.mmap(fd, size) as m:
                    m[off : off + len(data)] = data
                    m.flush()
            finally:
                os.close(fd)
        elif kind == "setxattr":
            os.setxattr(p(op[1]), op[2], random.Random(op[4]).randbytes(op[3]), follow_symlinks=False)
        elif kind == "removexattr":
            os.removexattr(p(op[1]), op[2], follow_symlinks=False)
        elif kind == "fsync":
            fd = os.open(p(op[1]), os.O_RDONLY | os.O_NOFOLLOW)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        elif kind == "truncate":
            if os.path.islink(p(op[1])):
                raise OSError(errno.ELOOP, "symlink")
            os.truncate(p(op[1]), op[2])
        elif kind == "rmdir":
            os.rmdir(p(op[1]))
        elif kind == "unlink":
            os.unlink(p(op[1]))
        elif kind == "rename":
            os.rename(p(op[1]), p(op[2]))
        elif kind == "link":
            os.link(p(op[1]), p(op[2]), follow_symlinks=False)
        elif kind == "chmod":
            os.chmod(p(op[1]), op[2], follow_symlinks=False)
        elif kind == "read":
            fd = os.open(p(op[1]), os.O_RDONLY | os.O_NOFOLLOW)
            try:
                return ("ok", len(os.read(fd, 1 << 20)))
            finally:
                os.close(fd)
        return ("ok", None)
    except OSError as e:
        return ("err", errno.errorcode.get(e.errno, str(e.errno)))
    except NotImplementedError:
        return ("err", "ENOTSUP")


def snapshot(root):
    """Names, types, modes, sizes, contents, link counts, symlink targets,
    user xattrs."""
    out = {}
    for rel in rel_paths(root):
        if rel.split(os.sep)[0] == "lost+found":
            continue
        full = os.path.join(root, rel)
        st = os.lstat(full)
        entry = {"mode": oct(st.st_mode)}
        if stat.S_ISREG(st.st_mode):
            with open(full, "rb") as f:
                entry["data"] = f.read()
            entry["nlink"] = st.st_nlink
            entry["size"] = st.st_size
        elif stat.S_ISLNK(st.st_mode):
            entry["target"] = os.readlink(full)
        names = sorted(n for n in os.listxattr(full, follow_symlinks=False) if n.startswith("user."))
        if names:
            entry["xattrs"] = {n: os.getxattr(full, n, follow_symlinks=False) for n in names}
        out[rel] = entry
    return out


def compare(a, b, when):
    if a == b:
        return True
    print("diverged %s (seed %d):" % (when, seed))
    for k in sorted(set(a) | set(b)):
        if a.get(k) != b.get(k):
            ea, eb = a.get(k), b.get(k)
            def short(e):
                if e is None:
                    return None
                brief = {"data": len, "xattrs": lambda xs: {n: len(v) for n, v in xs.items()}}
                return {x: brief.get(x, lambda y: y)(y) for x, y in e.items()}
            print("  %s: ferrofs %s / reference %s" % (k, short(ea), short(eb)))
    return False


def main():
    verbose = os.environ.get("FERROFS_DIFF_VERBOSE")
    for i in range(nops):
        op = make_op(roots[1])
        if verbose:
            print("op %d %r" % (i, op[:3]), file=sys.stderr, flush=True)
        ra, rb = apply(roots[0], op), apply(roots[1], op)
        if ra != rb:
            print("op %d %r: ferrofs %r, reference %r (seed %d)" % (i, op[:3], ra, rb, seed))
            return 1
    if not compare(snapshot(roots[0]), snapshot(roots[1]), "after %d ops" % nops):
        return 1
    print("seed %d: %d operations, %d paths match" % (seed, nops, len(rel_paths(roots[0]))))
    return 0


def ferrofs_cli(*args):
    import subprocess
    p = subprocess.run(["ferrofs"] + list(args), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if p.returncode != 0:
        raise RuntimeError("ferrofs %s: %s" % (" ".join(args), p.stdout.strip()))


def snapshotter(src, snapdir, stop_when_done):
    """Snapshots src over and over while the writers run; returns the kept
    snapshots with what they showed when taken."""
    kept, n = [], 0
    os.makedirs(snapdir, exist_ok=True)
    while True:
        path = os.path.join(snapdir, "s%d" % n)
        ferrofs_cli("subvolume", "snapshot", "-r", src, path)
        first = snapshot(path)
        # Some time passes, and the writers change the source meanwhile.
        for _ in range(20):
            if stop_when_done():
                break
            os.sched_yield()
        if not compare(first, snapshot(path), "snapshot s%d read again while its source changes" % n):
            raise RuntimeError("snapshot s%d changed" % n)
        kept.append((path, first))
        if len(kept) > 2:
            old, _ = kept.pop(0)
            ferrofs_cli("subvolume", "delete", old)
        n += 1
        if stop_when_done():
            return kept, n


def run_procs(n, snap=None):
    """Forks n sequences at once, each in its own subdirectory."""
    global seed, rng, roots
    base, pids = (seed, list(roots)), []
    for k in range(n):
        sub = ["%s/p%d" % (r, k) for r in base[1]]
        for d in sub:
            os.mkdir(d)
        pid = os.fork()
        if pid == 0:
            seed, roots = base[0] * 1000 + k, sub
            rng = random.Random(seed)
            os._exit(main())
        pids.append(pid)
    snaps = None
    if snap:
        # In this process: it watches the writers and stops when they are done.
        done = []

        def writers_done():
            while len(done) < len(pids):
                pid, status = os.waitpid(-1, os.WNOHANG)
                if pid == 0:
                    return False
                done.append(status)
            return True

        try:
            snaps = snapshotter(snap[0], snap[1], writers_done)
        except RuntimeError as e:
            print("snapshots: %s" % e)
            for pid in pids:
                try:
                    os.waitpid(pid, 0)
                except ChildProcessError:
                    pass
            return 1
        failed = sum(s != 0 for s in done)
    else:
        failed = sum(os.waitpid(pid, 0)[1] != 0 for pid in pids)
    seed, roots = base
    if failed or not compare(snapshot(roots[0]), snapshot(roots[1]), "after %d processes" % n):
        return 1
    if snaps is not None:
        kept, taken = snaps
        for path, first in kept:
            if not compare(first, snapshot(path), "snapshot %s after the writers finished" % path):
                return 1
            # Gone again, so the trees compare equal after a remount.
            ferrofs_cli("subvolume", "delete", path)
        os.rmdir(snap[1])
        print("%d snapshots taken while writing, each unchanged when read again" % taken)
    print("%d processes at once: trees match" % n)
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 5 and sys.argv[5] == "--compare-only":
        sys.exit(0 if compare(snapshot(roots[0]), snapshot(roots[1]), "after remount") else 1)
    if len(sys.argv) > 6 and sys.argv[5] == "--procs":
        snap = sys.argv[8:10] if len(sys.argv) > 9 and sys.argv[7] == "--snapshots" else None
        sys.exit(run_procs(int(sys.argv[6]), snap))
    sys.exit(main())

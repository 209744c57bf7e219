#!/usr/bin/env python3
# SEEK_DATA/SEEK_HOLE, fallocate modes, O_TMPFILE and FIEMAP on a mounted
# ferrofs, checked from userspace with exact offsets, sizes and errnos.
# Prints PASS/FAIL lines like lib.sh.
import ctypes
import errno
import os
import subprocess
import sys

# A mount point, or --self-test to check only the FIEMAP output parser.
mnt = sys.argv[1]
B = 4096


def check(name, cond, detail=""):
    print(("PASS " if cond else "FAIL ") + name + ("" if cond or not detail else ": " + str(detail)))


def err(fn):
    try:
        fn()
        return "OK"
    except OSError as e:
        return errno.errorcode.get(e.errno, str(e.errno))


_libc = ctypes.CDLL(None, use_errno=True)
_libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_long, ctypes.c_long]


def fallocate(fd, mode, off, length):
    """fallocate(2) with any mode (Python's os module has only posix_fallocate)."""
    if _libc.fallocate(fd, mode, off, length) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))


FIEMAP_EXTENT_LAST = 0x1


def fiemap_flags(out):
    """The FLAGS of each extent `xfs_io -c "fiemap -v"` lists, as integers,
    in order; holes (rows with "hole" and no FLAGS column) are left out.
    None when an extent row's last field is not a 0x number."""
    flags = []
    for line in out.splitlines():
        f = line.split()
        if not f or not f[0].rstrip(":").isdigit() or "hole" in f:
            continue
        if not f[-1].startswith("0x"):
            return None
        flags.append(int(f[-1], 16))
    return flags


def last_flag_ok(flags):
    """FIEMAP_EXTENT_LAST on the last extent and on no other: the bit, not
    the text (0x1000 and 0x10 start with "0x1" too)."""
    return bool(flags) and all(bool(fl & FIEMAP_EXTENT_LAST) == (i == len(flags) - 1) for i, fl in enumerate(flags))


def self_test():
    """The parser and the rule on made-up xfs_io output, so the check on the
    real output cannot pass by accepting anything."""
    head = "/mnt/f:\n EXT: FILE-OFFSET BLOCK-RANGE TOTAL FLAGS\n"
    hole = "   1: [88..159]: hole 72\n"

    def out(a, b):
        return head + "   0: [0..87]: 2048..2135 88 " + a + "\n" + hole + "   2: [160..191]: 3000..3031 32 " + b + "\n"

    cases = [
        (out("0x0", "0x1"), True),
        (out("0x0", "0x801"), True),  # UNWRITTEN | LAST
        (out("0x0", "0x1000"), False),  # MERGED only
        (out("0x0", "0x10"), False),
        (out("0x0", "0x0"), False),
        (out("0x1", "0x1"), False),  # LAST on an earlier extent too
        (out("0x1", "0x0"), False),
        (head + hole, False),  # no extents at all
        (out("0x0", "1"), False),  # not a 0x field: not parsed as flags
    ]
    bad = [(o, want) for o, want in cases if (fiemap_flags(o) is not None and last_flag_ok(fiemap_flags(o))) != want]
    check("fiemap-last-flag-self-test", not bad, bad)


def seeks(fd, off):
    out = []
    for whence in (os.SEEK_DATA, os.SEEK_HOLE):
        try:
            out.append(os.lseek(fd, off, whence))
        except OSError as e:
            out.append(errno.errorcode[e.errno])
    return out


def main():
    p = os.path.join(mnt, "sparse")
    fd = os.open(p, os.O_RDWR | os.O_CREAT, 0o644)
    os.pwrite(fd, b"a" * B, 0)
    os.pwrite(fd, b"b" * 100, 256 * B)  # dirty, not yet written back
    check("seek-data-at-0", seeks(fd, 0) == [0, B], seeks(fd, 0))
    check("seek-in-hole", seeks(fd, 2 * B) == [256 * B, 2 * B], seeks(fd, 2 * B))
    check("seek-in-last-block", seeks(fd, 256 * B + 50) == [256 * B + 50, 256 * B + 100], seeks(fd, 256 * B + 50))
    check("seek-at-eof-enxio", seeks(fd, 256 * B + 100) == ["ENXIO", "ENXIO"], seeks(fd, 256 * B + 100))
    check("seek-negative-enxio", err(lambda: os.lseek(fd, -1, os.SEEK_DATA)) in ("ENXIO", "EINVAL"))

    # fallocate: mode 0 grows the size and reads zeros; KEEP_SIZE does not.
    q = os.path.join(mnt, "falloc")
    g = os.open(q, os.O_RDWR | os.O_CREAT, 0o644)
    os.posix_fallocate(g, 0, 10 * B + 7)
    st = os.fstat(g)
    check("fallocate-grows", st.st_size == 10 * B + 7, st.st_size)
    check("fallocate-blocks", st.st_blocks == 11 * 8, st.st_blocks)
    check("fallocate-reads-zero", os.pread(g, 11 * B, 0) == bytes(10 * B + 7))
    # Unwritten blocks hold no data: SEEK_DATA finds none, SEEK_HOLE stops
    # at once (as ext4 does for unwritten extents without dirty pages).
    check("fallocate-is-hole", seeks(g, 0) == ["ENXIO", 0], seeks(g, 0))
    fallocate(g, 1, 20 * B, 4 * B)  # FALLOC_FL_KEEP_SIZE
    st = os.fstat(g)
    check("keep-size-keeps", st.st_size == 10 * B + 7 and st.st_blocks == 15 * 8, (st.st_size, st.st_blocks))
    # Punch: whole blocks freed, edges zeroed, size unchanged.
    os.pwrite(g, b"x" * (10 * B), 0)
    fallocate(g, 3, B + 100, 3 * B)  # PUNCH_HOLE | KEEP_SIZE
    data = os.pread(g, 10 * B, 0)
    want = b"x" * (B + 100) + bytes(3 * B) + b"x" * (6 * B - 100)
    check("punch-zeroes-range", data == want)
    st = os.fstat(g)
    check("punch-keeps-size", st.st_size == 10 * B + 7, st.st_size)
    check("punch-frees-blocks", st.st_blocks == (15 - 2) * 8, st.st_blocks)
    r = err(lambda: fallocate(g, 2, 0, B))
    check("punch-needs-keep-size", r in ("EOPNOTSUPP", "ENOTSUP"), r)
    fallocate(g, 0x10, 5 * B, 2 * B)  # ZERO_RANGE
    check("zero-range", os.pread(g, 2 * B, 5 * B) == bytes(2 * B) and os.pread(g, 10, 7 * B) == b"x" * 10)
    r = err(lambda: fallocate(g, 0x08, 0, B))
    check("collapse-unsupported", r in ("EOPNOTSUPP", "ENOTSUP"), r)
    check("fallocate-bad-len", err(lambda: fallocate(g, 0, 0, 0)) == "EINVAL")
    big = err(lambda: fallocate(g, 0, 0, 1 << 40))
    check("fallocate-enospc", big == "ENOSPC", big)
    check("after-enospc-unchanged", os.fstat(g).st_size == 10 * B + 7)
    os.close(g)

    # FIEMAP through xfs_io: the fallocated file's extents, the last flagged.
    out = subprocess.run(["xfs_io", "-c", "fiemap -v", q], capture_output=True, text=True).stdout
    flags = fiemap_flags(out)
    check("fiemap-lists-extents", flags is not None and len(flags) >= 2, out)
    check("fiemap-last-flag", flags is not None and last_flag_ok(flags), out)

    # O_TMPFILE: no name until linkat; space back after the last close.
    t = os.open(mnt, os.O_TMPFILE | os.O_RDWR, 0o600)
    os.write(t, b"tmp" * 1000)
    check("tmpfile-unnamed", os.fstat(t).st_nlink == 0)
    # linkat(fd, "", AT_FDCWD, name, AT_EMPTY_PATH), as O_TMPFILE users do.
    _libc.linkat.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
    rc = _libc.linkat(t, b"", -100, os.path.join(mnt, "named").encode(), 0x1000)
    check("tmpfile-linkat", rc == 0, ctypes.get_errno())
    check("tmpfile-linked", os.fstat(t).st_nlink == 1)
    os.close(t)
    with open(os.path.join(mnt, "named"), "rb") as f:
        check("tmpfile-content", f.read() == b"tmp" * 1000)
    before = os.statvfs(mnt).f_bfree
    t = os.open(mnt, os.O_TMPFILE | os.O_RDWR, 0o600)
    os.write(t, os.urandom(400 * B))
    os.fsync(t)
    os.close(t)
    os.sync()
    after = os.statvfs(mnt).f_bfree
    check("tmpfile-space-freed", after >= before - 16, (before, after))
    # An O_TMPFILE open left open over unmount would pin the mount; a
    # leftover one from a crash is covered by the core's orphan tests.


self_test()
if mnt != "--self-test":
    main()

#!/usr/bin/env python3
# SEEK_DATA/SEEK_HOLE, fallocate modes, O_TMPFILE and FIEMAP on a mounted
# ferrofs, checked from userspace with exact offsets, sizes and errnos.
# Prints PASS/FAIL lines like lib.sh.
import ctypes
import errno
import os
import subprocess
import sys

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
    check("fallocate-is-data", seeks(g, 0) == [0, 10 * B + 7], seeks(g, 0))
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
    rows = [line for line in out.splitlines() if line.strip()[:1].isdigit()]
    check("fiemap-lists-extents", len(rows) >= 2, out)
    check("fiemap-last-flag", rows and rows[-1].split()[-1] in ("0x1", "0x00000001", "0x0001", "1") or "0x1" in (rows[-1] if rows else ""), out)

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


main()

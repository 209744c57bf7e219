# Helpers shared by the VM tests' Python scripts: PASS/FAIL lines in
# lib.sh's format, the errno name of a call, and raw system calls.
import ctypes
import errno
import os

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


def check(name, cond, detail=""):
    print(("PASS " if cond else "FAIL ") + name + ("" if cond or not detail else ": " + str(detail)), flush=True)


def errno_of(fn):
    """The errno name fn() fails with, or "OK"."""
    try:
        fn()
        return "OK"
    except OSError as e:
        return errno.errorcode.get(e.errno, str(e.errno))


def syscall(*args):
    """syscall(2) with integer arguments passed as longs (others as
    ctypes takes them); OSError on a negative return."""
    r = _libc.syscall(*[ctypes.c_long(a) if isinstance(a, int) else a for a in args])
    if r < 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))
    return r


def physical(fd, offset):
    """The device byte that file byte `offset` of open file `fd` is stored
    at (FS_IOC_FIEMAP), or None in a hole."""
    import fcntl
    import struct

    count = 32
    buf = bytearray(struct.pack("=QQIIII", offset, 1, 0, 0, count, 0) + bytes(56 * count))
    fcntl.ioctl(fd, 0xC020660B, buf)
    mapped = struct.unpack_from("=I", buf, 20)[0]
    for i in range(mapped):
        logical, phys, length = struct.unpack_from("=QQQ", buf, 32 + 56 * i)
        if logical <= offset < logical + length:
            return phys + offset - logical
    return None

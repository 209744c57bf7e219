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

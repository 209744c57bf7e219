# Helpers shared by the VM tests' Python scripts: PASS/FAIL lines in
# lib.sh's format, and the errno name of a call.
import errno


def check(name, cond, detail=""):
    print(("PASS " if cond else "FAIL ") + name + ("" if cond or not detail else ": " + str(detail)), flush=True)


def errno_of(fn):
    """The errno name fn() fails with, or "OK"."""
    try:
        fn()
        return "OK"
    except OSError as e:
        return errno.errorcode.get(e.errno, str(e.errno))

# The VM side of the hostile-image campaign: for each (spec, value) line on
# stdin, edits a copy of BASE with `ferrofs debug set`, attaches it to a loop
# device, mounts it and drives it through the user's operations in this one
# process (so each case costs a few system calls, not a few hundred program
# starts under TCG), unmounts it and runs fsck. Errors are expected; a
# kernel report is not: the kernel log is scanned after every case.
# Prints a FAIL line per case with a report, then one summary line:
#   hostile: N cases, M mounted, K with a kernel report
# usage: hostile.py BASE WORKDIR MOUNTPOINT < cases
import ctypes
import errno
import fcntl
import os
import re
import shutil
import struct
import subprocess
import sys

base, work, mnt = sys.argv[1:4]
libc = ctypes.CDLL(None, use_errno=True)
REPORT = re.compile(r"BUG:|WARNING:|Oops|KASAN|soft lockup|blocked for more than|panicked|general protection|UBSAN")
FS_IOC_FIEMAP = 0xC020660B
SEEK_DATA, SEEK_HOLE = 3, 4


def quiet(fn, *args, **kwargs):
    """Runs one operation; an OSError is an answer, not a failure."""
    try:
        return fn(*args, **kwargs)
    except OSError:
        return None


def kmsg_clear():
    """The kernel log so far, cleared (kept for the harness, as lib.sh's
    mark_dmesg keeps it)."""
    out = subprocess.run(["dmesg", "-c"], capture_output=True, text=True).stdout
    with open("/tmp/ferrofs-kmsg.saved", "a") as f:
        f.write(out)
    return out


def fiemap(fd):
    hdr = struct.pack("=QQIIII", 0, 2**64 - 1, 0, 0, 32, 0)
    buf = bytearray(hdr + b"\0" * (56 * 32))
    fcntl.ioctl(fd, FS_IOC_FIEMAP, buf)


def read_file(path):
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        size = os.fstat(fd).st_size
        os.pread(fd, 70000, 0)
        os.pread(fd, 8192, max(size - 4096, 0))
        quiet(fiemap, fd)
        quiet(os.lseek, fd, 0, SEEK_DATA)
        quiet(os.lseek, fd, 0, SEEK_HOLE)
    finally:
        os.close(fd)


def xattrs(path):
    for name in os.listxattr(path, follow_symlinks=False):
        quiet(os.getxattr, path, name, follow_symlinks=False)


def drive():
    os.statvfs(mnt)
    # A bounded walk: a damaged directory may name one of its ancestors,
    # so paths can go on forever; each directory inode is entered once.
    todo, seen_dirs, visited = [mnt], set(), 0
    while todo and visited < 96:
        d = todo.pop()
        names = quiet(os.listdir, d) or []
        for name in names[:256]:
            visited += 1
            p = os.path.join(d, name)
            st = quiet(os.lstat, p)
            if st is None:
                continue
            if os.path.islink(p):
                quiet(os.readlink, p)
            elif os.path.isdir(p):
                if (st.st_dev, st.st_ino) not in seen_dirs and len(p) < 2048:
                    seen_dirs.add((st.st_dev, st.st_ino))
                    todo.append(p)
            elif os.path.isfile(p) and not name.startswith("fifo"):
                quiet(read_file, p)
            quiet(xattrs, p)
    new = os.path.join(mnt, "new")

    def create():
        with open(new, "wb") as f:
            f.write(b"n" * 10000)
            os.setxattr(new, "user.n", b"x")
            os.fsync(f.fileno())

    quiet(create)

    def rewrite():
        fd = os.open(os.path.join(mnt, "data"), os.O_WRONLY)
        try:
            os.pwrite(fd, b"w" * 6000, 4096)
            os.ftruncate(fd, 3000)
            os.fsync(fd)
        finally:
            os.close(fd)

    quiet(rewrite)
    quiet(os.rename, os.path.join(mnt, "e"), os.path.join(mnt, "d", "e"))
    quiet(os.rename, os.path.join(mnt, "ln"), os.path.join(mnt, "ln2"))
    quiet(os.unlink, os.path.join(mnt, "d", "inner"))
    quiet(os.unlink, os.path.join(mnt, "fifo"))
    os.sync()


cases = mounted = bad = 0
img = os.path.join(work, "case.img")
for line in sys.stdin:
    spec, value = line.split()
    shutil.copyfile(base, img)
    r = subprocess.run(["ferrofs", "debug", "set", img, spec, value], capture_output=True, text=True)
    if r.returncode != 0:
        print(f"FAIL hostile-vm-edit {spec}={value}: {r.stderr.strip()}", flush=True)
        continue
    cases += 1
    kmsg_clear()
    loop = subprocess.run(["losetup", "-f", "--show", img], capture_output=True, text=True).stdout.strip()
    if libc.mount(loop.encode(), mnt.encode(), b"ferrofs", 0, None) == 0:
        mounted += 1
        try:
            drive()
        except OSError:
            pass
        except Exception as e:  # a bug of this script, not of the kernel
            print(f"FAIL hostile-vm-driver {spec}={value}: {e!r}", flush=True)
        if libc.umount2(mnt.encode(), 0) != 0:
            libc.umount2(mnt.encode(), 2)  # MNT_DETACH
    subprocess.run(["losetup", "-d", loop])
    subprocess.run(["fsck.ferrofs", "-n", img], capture_output=True, timeout=300)
    log = kmsg_clear()
    hits = [l for l in log.splitlines() if REPORT.search(l)]
    if hits:
        bad += 1
        print(f"FAIL hostile-vm {spec}={value}: " + " | ".join(hits[:4]), flush=True)
print(f"hostile: {cases} cases, {mounted} mounted, {bad} with a kernel report", flush=True)

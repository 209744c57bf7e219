# Every ioctl ferrofs answers, and every mount option, tried with bad input:
# bad pointers, short and oversized lengths, unknown flags and numbers,
# unprivileged callers; malformed, duplicated and out-of-range option values.
# Each must give a clear errno and change nothing (the file's data and
# flags, the mount's state). Prints PASS/FAIL lines and a case count.
# usage: bad_calls.py DEVICE MOUNTPOINT   (DEVICE holds a fresh ferrofs)
import ctypes
import errno
import fcntl
import os
import struct
import sys

dev, mnt = sys.argv[1], sys.argv[2]
libc = ctypes.CDLL(None, use_errno=True)
cases = 0


def check(name, ok, detail=""):
    print(("PASS " if ok else "FAIL ") + name + ("" if ok else f": {detail}"))


def ioctl_errno(fd, req, arg):
    """The errno of ioctl(fd, req, arg) with arg passed as a raw number
    (a pointer the caller chose), or 0 on success."""
    global cases
    cases += 1
    r = libc.ioctl(fd, ctypes.c_ulong(req), ctypes.c_ulong(arg))
    return 0 if r >= 0 else ctypes.get_errno()


def mount_errno(opts):
    global cases
    cases += 1
    if libc.mount(dev.encode(), mnt.encode(), b"ferrofs", 0, opts.encode() if opts is not None else None) != 0:
        return ctypes.get_errno()
    return 0


def as_user(fn):
    """Runs fn() in a child that dropped to uid/gid 65534 (no capabilities);
    returns what it returned (an int)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        os.setgroups([])
        os.setgid(65534)
        os.setuid(65534)
        os.write(w, str(fn()).encode())
        os._exit(0)
    os.close(w)
    out = os.read(r, 64)
    os.waitpid(pid, 0)
    return int(out)


FS_IOC_SHUTDOWN = 0x8004587D
FS_IOC_GETFLAGS = 0x80086601
FS_IOC_SETFLAGS = 0x40086602
FS_IOC_FIEMAP = 0xC020660B
FS_IOC_FSGETXATTR = 0x801C581F
FS_IOC_FSSETXATTR = 0x401C5820
BAD_PTR = 0x10  # below mmap_min_addr: never mapped
KERNEL_PTR = 0xFFFFFFFF81000000

assert mount_errno(None) == 0, "fresh image must mount"
path = os.path.join(mnt, "victim")
data = os.urandom(20000)
with open(path, "wb") as f:
    f.write(data)
os.chmod(path, 0o666)
fd = os.open(path, os.O_RDWR)


def state():
    st = os.stat(path)
    buf = bytearray(4)
    fcntl.ioctl(fd, FS_IOC_GETFLAGS, buf)
    with open(path, "rb") as f:
        return (f.read(), st.st_size, st.st_mode, bytes(buf))


before = state()

# FS_IOC_SHUTDOWN: bad pointers, unknown flags, unprivileged callers.
for name, arg in (("null", 0), ("low", BAD_PTR), ("kernel", KERNEL_PTR)):
    e = ioctl_errno(fd, FS_IOC_SHUTDOWN, arg)
    check(f"shutdown-{name}-pointer-efault", e == errno.EFAULT, errno.errorcode.get(e, e))
flag = ctypes.c_uint32(3)
e = ioctl_errno(fd, FS_IOC_SHUTDOWN, ctypes.addressof(flag))
check("shutdown-unknown-flags-einval", e == errno.EINVAL, errno.errorcode.get(e, e))
flag = ctypes.c_uint32(0xFFFFFFFF)
e = ioctl_errno(fd, FS_IOC_SHUTDOWN, ctypes.addressof(flag))
check("shutdown-all-flags-einval", e == errno.EINVAL, errno.errorcode.get(e, e))
nolog = ctypes.c_uint32(2)
e = as_user(lambda: ioctl_errno(os.open(path, os.O_RDONLY), FS_IOC_SHUTDOWN, ctypes.addressof(nolog)))
check("shutdown-unprivileged-eperm", e == errno.EPERM, errno.errorcode.get(e, e))

# Unknown ioctl numbers.
for req in (0x0000_0000, 0xC0FF_EE00, 0x8004_58FF, 0x4008_6699):
    e = ioctl_errno(fd, req, BAD_PTR)
    check(f"unknown-ioctl-{req:#x}-enotty", e == errno.ENOTTY, errno.errorcode.get(e, e))

# Inode flags: bad pointers, unknown bits, unprivileged immutable.
for req, name in ((FS_IOC_GETFLAGS, "getflags"), (FS_IOC_SETFLAGS, "setflags"), (FS_IOC_FSGETXATTR, "fsgetxattr"), (FS_IOC_FSSETXATTR, "fssetxattr")):
    for pname, arg in (("null", 0), ("low", BAD_PTR), ("kernel", KERNEL_PTR)):
        e = ioctl_errno(fd, req, arg)
        check(f"{name}-{pname}-pointer-efault", e == errno.EFAULT, errno.errorcode.get(e, e))
bits = ctypes.c_long(0x4000_0000)  # a flag bit ferrofs does not keep
e = ioctl_errno(fd, FS_IOC_SETFLAGS, ctypes.addressof(bits))
check("setflags-unknown-bit-eopnotsupp", e == errno.EOPNOTSUPP, errno.errorcode.get(e, e))
imm = ctypes.c_long(0x10)  # FS_IMMUTABLE_FL
e = as_user(lambda: ioctl_errno(os.open(path, os.O_RDONLY), FS_IOC_SETFLAGS, ctypes.addressof(imm)))
check("setflags-immutable-unprivileged-eperm", e == errno.EPERM, errno.errorcode.get(e, e))

# FIEMAP: bad pointers, a length that wraps, an extent count past the
# buffer, unknown flags.
for pname, arg in (("null", 0), ("low", BAD_PTR), ("kernel", KERNEL_PTR)):
    e = ioctl_errno(fd, FS_IOC_FIEMAP, arg)
    check(f"fiemap-{pname}-pointer-efault", e == errno.EFAULT, errno.errorcode.get(e, e))


def fiemap(start, length, flags, count, room):
    hdr = struct.pack("=QQIIII", start, length, flags, 0, count, 0)
    buf = ctypes.create_string_buffer(hdr + b"\0" * (56 * room))
    return ioctl_errno(fd, FS_IOC_FIEMAP, ctypes.addressof(buf)), buf


e, _ = fiemap(0, 2**64 - 1, 0, 4, 4)
check("fiemap-whole-range-ok", e == 0, errno.errorcode.get(e, e))
e, _ = fiemap(2**64 - 4096, 2**64 - 1, 0, 4, 4)
check("fiemap-wrapping-range-ok-or-einval", e in (0, errno.EINVAL, errno.EFBIG), errno.errorcode.get(e, e))
e, _ = fiemap(0, 2**64 - 1, 0xFFFF_FFF0, 4, 4)
check("fiemap-unknown-flags-ebadr", e == errno.EBADR, errno.errorcode.get(e, e))
# Room claimed for 2^30 extents in a buffer with room for one: the kernel
# copies out only as many as exist, each checked by access_ok.
e, _ = fiemap(0, 2**64 - 1, 0, 2**30, 1)
check("fiemap-oversized-count-no-crash", e in (0, errno.EFAULT, errno.EINVAL), errno.errorcode.get(e, e))

# The subvolume ioctls (include/uapi/linux/ferrofs.h): bad pointers, bad
# fields of struct ferrofs_ioctl_vol_args, unknown flags, unprivileged
# callers. The mount's subvolumes and names stay as they were.
SUBVOL_CREATE, SNAP_CREATE, SUBVOL_DELETE = 0xC140F501, 0xC140F502, 0x4140F503
SUBVOL_GETFLAGS, SUBVOL_SETFLAGS, GET_SUBVOL_INFO, LIST_SUBVOLS = 0x8008F504, 0x4008F505, 0x81F8F506, 0xC038F507
dfd = os.open(mnt, os.O_RDONLY | os.O_DIRECTORY)
names_before = sorted(os.listdir(mnt))
for req, name in ((SUBVOL_CREATE, "subvol-create"), (SNAP_CREATE, "snap-create"), (SUBVOL_DELETE, "subvol-delete"),
                  (SUBVOL_GETFLAGS, "subvol-getflags"), (SUBVOL_SETFLAGS, "subvol-setflags"),
                  (GET_SUBVOL_INFO, "get-subvol-info"), (LIST_SUBVOLS, "list-subvols")):
    for pname, arg in (("null", 0), ("low", BAD_PTR), ("kernel", KERNEL_PTR)):
        e = ioctl_errno(dfd, req, arg)
        check(f"{name}-{pname}-pointer-efault", e == errno.EFAULT, errno.errorcode.get(e, e))


def vol_args(fd=0, flags=0, reserved=0, name=b"new"):
    """struct ferrofs_ioctl_vol_args: fd, flags, subvolid, reserved[5],
    name[256]. The caller keeps the buffer referenced across the call: its
    memory goes with the last reference."""
    raw = struct.pack("=qQQ5Q", fd, flags, 0, reserved, 0, 0, 0, 0) + name[:256].ljust(256, b"\0")
    return ctypes.create_string_buffer(raw, len(raw))


for name, args, want in (
    ("create-unknown-flags-einval", vol_args(flags=1 << 5), errno.EINVAL),
    ("create-rdonly-flag-einval", vol_args(flags=2), errno.EINVAL),
    ("create-fd-set-einval", vol_args(fd=dfd), errno.EINVAL),
    ("create-reserved-einval", vol_args(reserved=1), errno.EINVAL),
    ("create-empty-name-einval", vol_args(name=b""), errno.EINVAL),
    ("create-dot-einval", vol_args(name=b"."), errno.EINVAL),
    ("create-dotdot-einval", vol_args(name=b".."), errno.EINVAL),
    ("create-slash-einval", vol_args(name=b"a/b"), errno.EINVAL),
    ("create-unterminated-enametoolong", vol_args(name=b"n" * 256), errno.ENAMETOOLONG),
    ("create-existing-eexist", vol_args(name=b"victim"), errno.EEXIST),
):
    e = ioctl_errno(dfd, SUBVOL_CREATE, ctypes.addressof(args))
    check(name, e == want, errno.errorcode.get(e, e))
for name, args, want in (
    ("snap-bad-fd-ebadf", vol_args(fd=999), errno.EBADF),
    ("snap-negative-fd-ebadf", vol_args(fd=-1), errno.EBADF),
    ("snap-unknown-flags-einval", vol_args(fd=dfd, flags=1), errno.EINVAL),
    ("snap-reserved-einval", vol_args(fd=dfd, reserved=7), errno.EINVAL),
):
    e = ioctl_errno(dfd, SNAP_CREATE, ctypes.addressof(args))
    check(name, e == want, errno.errorcode.get(e, e))
args = vol_args()
e = ioctl_errno(fd, SUBVOL_CREATE, ctypes.addressof(args))
check("create-on-a-file-enotdir", e == errno.ENOTDIR, errno.errorcode.get(e, e))
args = vol_args(name=b"victim")
e = ioctl_errno(dfd, SUBVOL_DELETE, ctypes.addressof(args))
check("delete-not-a-subvolume-einval", e == errno.EINVAL, errno.errorcode.get(e, e))
args = vol_args(name=b"nosuch")
e = ioctl_errno(dfd, SUBVOL_DELETE, ctypes.addressof(args))
check("delete-missing-enoent", e == errno.ENOENT, errno.errorcode.get(e, e))
args = vol_args(name=b"nosuch", flags=1)
e = ioctl_errno(dfd, SUBVOL_DELETE, ctypes.addressof(args))
check("delete-flags-einval", e == errno.EINVAL, errno.errorcode.get(e, e))
bad_flags = ctypes.c_uint64(1 << 7)
e = ioctl_errno(dfd, SUBVOL_SETFLAGS, ctypes.addressof(bad_flags))
check("subvol-setflags-unknown-einval", e == errno.EINVAL, errno.errorcode.get(e, e))
ro = ctypes.c_uint64(2)
e = as_user(lambda: ioctl_errno(os.open(mnt, os.O_RDONLY | os.O_DIRECTORY), SUBVOL_SETFLAGS, ctypes.addressof(ro)))
check("subvol-setflags-unprivileged-eperm", e == errno.EPERM, errno.errorcode.get(e, e))
args = vol_args(name=b"victim")
e = as_user(lambda: ioctl_errno(os.open(mnt, os.O_RDONLY | os.O_DIRECTORY), SUBVOL_DELETE, ctypes.addressof(args)))
check("subvol-delete-unprivileged-eperm", e == errno.EPERM, errno.errorcode.get(e, e))
flags = ctypes.c_uint64(99)
e = ioctl_errno(dfd, SUBVOL_GETFLAGS, ctypes.addressof(flags))
check("default-subvolume-still-writable", e == 0 and flags.value == 0, f"{errno.errorcode.get(e, e)} flags={flags.value}")
check("bad-subvolume-ioctls-change-nothing", sorted(os.listdir(mnt)) == names_before, str(os.listdir(mnt)))
os.close(dfd)

check("bad-ioctls-change-nothing", state() == before)
with open(path, "ab") as f:
    f.write(b"x")
check("still-writable-after-bad-ioctls", os.path.getsize(path) == len(data) + 1)
os.close(fd)
libc.umount2(mnt.encode(), 0)

# Mount options: malformed, duplicated, out of range, unknown. A refused
# mount leaves the device as it was: it still mounts with defaults and
# holds the file.
for opts in ("commit=abc", "commit=-1", "commit=86401", "commit=99999999999999999999", "commit=", "commit",
             "commit=1x", "commit= 5", "commit=0x10", "bogus", "commit=5,bogus", "ro,commit=abc",
             "a" * 4000):
    e = mount_errno(opts)
    check(f"mount-option-{opts[:24]}-einval", e == errno.EINVAL, errno.errorcode.get(e, e))
    if e == 0:
        libc.umount2(mnt.encode(), 0)
# A repeated option: the last one wins, as on ext4. An option with an empty
# name ("=5") never reaches a filesystem: the VFS's option splitter drops it.
for opts in ("commit=5,commit=7", "commit=0", "commit=86400", "commit=1,commit=1", "=5"):
    e = mount_errno(opts)
    check(f"mount-option-{opts}-accepted", e == 0, errno.errorcode.get(e, e))
    if e == 0:
        libc.umount2(mnt.encode(), 0)
e = as_user(lambda: mount_errno(None))
check("mount-unprivileged-eperm", e == errno.EPERM, errno.errorcode.get(e, e))
assert mount_errno(None) == 0
with open(path, "rb") as f:
    check("bad-options-change-nothing", f.read() == data + b"x")
libc.umount2(mnt.encode(), 0)
print(f"bad calls tried: {cases}")

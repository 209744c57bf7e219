#!/usr/bin/env python3
# FERROFS_IOC_SEND called directly: every argument the kernel must refuse
# gets its errno and writes nothing; a signal stops a send blocked on a
# full pipe with EINTR; writers to the filesystem go on while a send
# waits on its output; a finished send leaves its snapshots deletable.
# SET_RECEIVED_SUBVOL records a sender's identity on a writable
# subvolume's root and refuses what it must.
# Usage: send_calls.py MNT SNAP1 SNAP2 SUBVOL (SNAP1, SNAP2 read-only
# snapshots, SNAP2 newer; SUBVOL a writable subvolume)
import ctypes
import errno
import fcntl
import os
import select
import signal
import struct
import sys
import threading
import time

MNT, S1, S2, RX = sys.argv[1:5]
# _IOW(0xf5, 8, struct ferrofs_ioctl_send_args), 80 bytes.
IOC_SEND = (1 << 30) | (80 << 16) | (0xF5 << 8) | 8
# _IOR(0xf5, 6, struct ferrofs_ioctl_subvol_info): subvolid is its first field.
IOC_GET_SUBVOL_INFO = (2 << 30) | (504 << 16) | (0xF5 << 8) | 6
# _IOWR(0xf5, 9, struct ferrofs_ioctl_received_subvol_args), 200 bytes.
IOC_SET_RECEIVED_SUBVOL = (3 << 30) | (200 << 16) | (0xF5 << 8) | 9
failures = 0


def check(name, ok, detail=""):
    global failures
    print(("PASS " if ok else "FAIL ") + name + ("" if ok else f": {detail}"))
    failures += not ok


def args(fd, parent=0, flags=0, version=0, clones=(0, 0), resume_crc=0, resume=0, reserved=(0, 0, 0)):
    return struct.pack("<qQQQQIIQ3Q", fd, clones[0], clones[1], parent, flags, version, resume_crc, resume, *reserved)


def subvol_id(path):
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        buf = fcntl.ioctl(fd, IOC_GET_SUBVOL_INFO, bytes(504))
    finally:
        os.close(fd)
    return struct.unpack_from("<Q", buf)[0]


def send(path, a):
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.ioctl(fd, IOC_SEND, a)
        return 0
    except OSError as e:
        return e.errno
    finally:
        os.close(fd)


def refused(name, path, make_args, want):
    r, w = os.pipe()
    got = send(path, make_args(w))
    os.close(w)
    written = os.read(r, 1 << 16)
    os.close(r)
    check(f"send-refuses-{name}", got == want and written == b"", f"errno {errno.errorcode.get(got, got)}, {len(written)} bytes written")


id1, id2 = subvol_id(S1), subvol_id(S2)
refused("writable-source", MNT, lambda w: args(w), errno.EPERM)
refused("parent-is-source", S1, lambda w: args(w, parent=id1), errno.EINVAL)
refused("writable-parent", S2, lambda w: args(w, parent=5), errno.EPERM)
refused("missing-parent", S2, lambda w: args(w, parent=99999), errno.ENOENT)
refused("unknown-flag", S1, lambda w: args(w, flags=0x100), errno.EINVAL)
refused("version-3", S1, lambda w: args(w, flags=0x8, version=3), errno.EINVAL)
refused("resume-crc-without-flag", S1, lambda w: args(w, resume_crc=1), errno.EINVAL)
refused("resume-count-without-flag", S1, lambda w: args(w, resume=3), errno.EINVAL)
refused("resume-wrong-crc", S1, lambda w: args(w, flags=0x10, resume=2, resume_crc=12345), errno.EINVAL)
refused("reserved", S1, lambda w: args(w, reserved=(0, 7, 0)), errno.EINVAL)
refused("too-many-clone-sources", S1, lambda w: args(w, clones=(65, 0)), errno.EINVAL)
refused("clone-sources-fault", S1, lambda w: args(w, clones=(1, 8)), errno.EFAULT)
refused("bad-fd", S1, lambda w: args(99999), errno.EBADF)
refused("negative-fd", S1, lambda w: args(-1), errno.EBADF)
writable_id = (ctypes.c_uint64 * 1)(5)
refused("writable-clone-source", S1, lambda w: args(w, clones=(1, ctypes.addressof(writable_id))), errno.EPERM)
missing_id = (ctypes.c_uint64 * 1)(99999)
refused("missing-clone-source", S1, lambda w: args(w, clones=(1, ctypes.addressof(missing_id))), errno.ENOENT)
ro = os.open("/dev/null", os.O_RDONLY)
refused("read-only-fd", S1, lambda w: args(ro), errno.EBADF)
os.close(ro)


def unprivileged():
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        fd = os.open(S1, os.O_RDONLY | os.O_DIRECTORY)
        os.setgid(65534)
        os.setuid(65534)
        try:
            fcntl.ioctl(fd, IOC_SEND, args(w))
            os._exit(0)
        except OSError as e:
            os._exit(e.errno)
    os.close(w)
    _, status = os.waitpid(pid, 0)
    written = os.read(r, 1 << 16)
    os.close(r)
    code = os.waitstatus_to_exitcode(status)
    check("send-refuses-unprivileged", code == errno.EPERM and written == b"", f"exit {code}, {len(written)} bytes")


unprivileged()


def set_received(path, uuid=b"\xab" * 16, stransid=77, stime=(1000, 5), flags=0, reserved=0):
    a = bytearray(uuid + struct.pack("<QQqIIqIIQ16Q", stransid, 0, stime[0], stime[1], 0, 0, 0, 0, flags, *([reserved] + [0] * 15)))
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.ioctl(fd, IOC_SET_RECEIVED_SUBVOL, a)
        return 0, a
    except OSError as e:
        return e.errno, a
    finally:
        os.close(fd)


got, out = set_received(RX)
rtransid = struct.unpack_from("<Q", out, 24)[0]
info_fd = os.open(RX, os.O_RDONLY | os.O_DIRECTORY)
info = fcntl.ioctl(info_fd, IOC_GET_SUBVOL_INFO, bytes(504))
os.close(info_fd)
# subvol_info: 9 u64 (subvolid .. rtransid), then uuid, parent_uuid, received_uuid.
stransid_seen, rtransid_seen = struct.unpack_from("<QQ", info, 56)
received_uuid = info[72 + 32:72 + 48]
check("set-received-subvol", got == 0 and received_uuid == b"\xab" * 16 and stransid_seen == 77 and rtransid_seen == rtransid > 0,
      f"errno {got}, uuid {received_uuid.hex()}, stransid {stransid_seen}, rtransid {rtransid_seen} vs {rtransid}")
os.makedirs(f"{RX}/sub", exist_ok=True)
for name, path, kw, want in [
    ("not-root", f"{RX}/sub", {}, errno.EINVAL),
    ("flags", RX, {"flags": 1}, errno.EINVAL),
    ("reserved", RX, {"reserved": 9}, errno.EINVAL),
    ("bad-nsec", RX, {"stime": (1, 1_000_000_000)}, errno.EINVAL),
    ("read-only", S1, {}, errno.EROFS),
]:
    got, _ = set_received(path, **kw)
    check(f"set-received-refuses-{name}", got == want, f"errno {errno.errorcode.get(got, got)}")

# A signal stops a send blocked on a pipe nobody reads, with EINTR.
signal.signal(signal.SIGALRM, lambda *_: None)
r, w = os.pipe()
signal.setitimer(signal.ITIMER_REAL, 0.5)
got = send(S2, args(w))
signal.setitimer(signal.ITIMER_REAL, 0)
check("send-interrupted-by-signal", got == errno.EINTR, f"errno {errno.errorcode.get(got, got)}")
os.close(r)
os.close(w)

# Writers go on while a send waits on its output: the core lock is not
# held across the write. The send is finished by reading the pipe after.
r, w = os.pipe()
result = {}
t = threading.Thread(target=lambda: result.setdefault("errno", send(S2, args(w))))
t.start()
# The send has filled the pipe once it stops being writable.
waited = 0
while select.select([], [w], [], 0)[1] and t.is_alive() and waited < 1200:
    time.sleep(0.05)
    waited += 1
os.makedirs(f"{MNT}/while-sending", exist_ok=True)
for i in range(50):
    with open(f"{MNT}/while-sending/f{i}", "wb") as f:
        f.write(b"x" * 5000)
os.sync()
check("writes-while-send-blocked", t.is_alive(), "the send finished before the writes (stream smaller than the pipe?)")
chunks = []


def drain():
    while True:
        c = os.read(r, 1 << 20)
        if not c:
            return
        chunks.append(c)


reader = threading.Thread(target=drain)
reader.start()
t.join()
os.close(w)
reader.join()
os.close(r)
stream = b"".join(chunks)
check("send-after-writes-completes", result.get("errno") == 0 and stream.startswith(b"btrfs-stream\0"), f"{result} {stream[:16]!r}")
with open("/tmp/send-calls.stream", "wb") as f:
    f.write(stream)
sys.exit(1 if failures else 0)

# Calls mount(2) and prints the errno name, or OK; unmounts after a success.
# usage: mount_errno.py DEVICE DIR [FSTYPE] [OPTIONS]
import ctypes
import errno
import sys

libc = ctypes.CDLL(None, use_errno=True)
dev, target = sys.argv[1].encode(), sys.argv[2].encode()
fstype = (sys.argv[3] if len(sys.argv) > 3 else "ferrofs").encode()
opts = sys.argv[4].encode() if len(sys.argv) > 4 else None
if libc.mount(dev, target, fstype, 0, opts) != 0:
    print(errno.errorcode.get(ctypes.get_errno(), str(ctypes.get_errno())))
else:
    libc.umount2(target, 0)
    print("OK")

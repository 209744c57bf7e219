#!/usr/bin/env python3
# The xattr system calls with exact buffer sizes and flags, for the VM tests:
# each prints its result (a length, a digest or OK) or the errno's name.
#
#   xattr_call.py get PATH NAME SIZE        getxattr with a SIZE-byte buffer
#   xattr_call.py list PATH SIZE            listxattr with a SIZE-byte buffer
#   xattr_call.py set PATH NAME VALUE [create|replace]
#                                           VALUE: text, or #N for N bytes of
#                                           a fixed pattern
#   xattr_call.py remove PATH NAME
#   xattr_call.py md5 PATH NAME             digest of the value
#   xattr_call.py pattern-md5 N             digest of #N
# A PATH starting with "nofollow:" acts on a symlink itself.
import ctypes
import errno
import hashlib
import os
import sys

libc = ctypes.CDLL(None, use_errno=True)
for f in ("getxattr", "lgetxattr", "listxattr", "llistxattr"):
    getattr(libc, f).restype = ctypes.c_ssize_t


def pattern(n):
    return bytes((i * 7 + i // 251) & 0xFF for i in range(n))


def value_of(arg):
    return pattern(int(arg[1:])) if arg.startswith("#") else arg.encode()


def fail(e):
    # 95 is both EOPNOTSUPP and ENOTSUP; print the name the kernel uses.
    print("EOPNOTSUPP" if e == errno.EOPNOTSUPP else errno.errorcode.get(e, str(e)))
    sys.exit(0)


def main(argv):
    op, args = argv[1], argv[2:]
    path, follow = args[0] if args else "", True
    if path.startswith("nofollow:"):
        path, follow = path[len("nofollow:"):], False
    try:
        if op == "get":
            size = int(args[2])
            buf = ctypes.create_string_buffer(max(size, 1))
            fn = libc.getxattr if follow else libc.lgetxattr
            r = fn(path.encode(), args[1].encode(), buf if size else None, ctypes.c_size_t(size))
            if r < 0:
                fail(ctypes.get_errno())
            print(r)
        elif op == "list":
            size = int(args[1])
            buf = ctypes.create_string_buffer(max(size, 1))
            fn = libc.listxattr if follow else libc.llistxattr
            r = fn(path.encode(), buf if size else None, ctypes.c_size_t(size))
            if r < 0:
                fail(ctypes.get_errno())
            print(r)
        elif op == "set":
            flags = {"": 0, "create": os.XATTR_CREATE, "replace": os.XATTR_REPLACE}[args[3] if len(args) > 3 else ""]
            os.setxattr(path, args[1], value_of(args[2]), flags, follow_symlinks=follow)
            print("OK")
        elif op == "remove":
            os.removexattr(path, args[1], follow_symlinks=follow)
            print("OK")
        elif op == "md5":
            print(hashlib.md5(os.getxattr(path, args[1], follow_symlinks=follow)).hexdigest())
        elif op == "pattern-md5":
            print(hashlib.md5(pattern(int(args[0]))).hexdigest())
        else:
            sys.exit(f"unknown operation {op}")
    except OSError as e:
        fail(e.errno)


main(sys.argv)

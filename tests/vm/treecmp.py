#!/usr/bin/env python3
# Compares two directory trees as a send stream must reproduce them: the
# same paths, types, permission bits, owners, modification times, sizes,
# contents, symlink targets, device numbers, xattrs and hard-link groups.
# Access times are left out (reading the copies changes them), and so are
# directory sizes and link counts, which differ between filesystems.
# Nested subvolumes (inode 256) and their stand-ins in snapshots (inode 2,
# on ferrofs as on btrfs) are left out, as send does not cross them.
# Usage: treecmp.py [--atime] [--all-dirs] A B
#   (exit 0 when equal; differences on stdout)
#   --atime     also compare access times, and the attributes of A and B
#               themselves (what a receive sets on the subvolume's root);
#               for trees on noatime mounts, so reading does not change them
#   --all-dirs  leave no directory out by its inode number: for a tree on a
#               filesystem where 2 and 256 are ordinary inodes (ext4, tmpfs)
import hashlib
import os
import stat
import sys


def entry(full, atime):
    # lstat first: reading the contents must not change what is compared.
    st = os.lstat(full)
    d = {
        "type": stat.S_IFMT(st.st_mode),
        "mode": oct(stat.S_IMODE(st.st_mode)),
        "owner": (st.st_uid, st.st_gid),
        "mtime": st.st_mtime_ns,
    }
    if atime:
        d["atime"] = st.st_atime_ns
    if stat.S_ISREG(st.st_mode):
        with open(full, "rb") as f:
            d["sha"] = hashlib.sha256(f.read()).hexdigest()
        d["size"] = st.st_size
    if stat.S_ISLNK(st.st_mode):
        d["target"] = os.readlink(full)
        del d["mode"]
    if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
        d["rdev"] = st.st_rdev
    try:
        names = sorted(os.listxattr(full, follow_symlinks=False))
    except OSError:
        names = []
    d["xattrs"] = {n: os.getxattr(full, n, follow_symlinks=False).hex() for n in names}
    return st, d


def describe(root, atime, all_dirs):
    out, groups = {}, {}
    if atime:
        out["."] = entry(root, atime)[1]
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            full = os.path.join(dirpath, name)
            rel = os.path.relpath(full, root)
            st = os.lstat(full)
            if stat.S_ISDIR(st.st_mode) and st.st_ino in (2, 256) and not all_dirs:
                dirnames[:] = [n for n in dirnames if n != name]
                continue
            st, d = entry(full, atime)
            if not stat.S_ISDIR(st.st_mode):
                groups.setdefault(st.st_ino, []).append(rel)
            out[rel] = d
    for paths in groups.values():
        for p in paths:
            out[p]["names"] = sorted(paths)
    return out


def main():
    args = sys.argv[1:]
    atime = "--atime" in args
    all_dirs = "--all-dirs" in args
    trees = [a for a in args if a not in ("--atime", "--all-dirs")]
    a, b = (describe(t, atime, all_dirs) for t in trees)
    bad = 0
    for k in sorted(set(a) | set(b)):
        if a.get(k) != b.get(k):
            bad += 1
            if bad <= 20:
                print(f"{k}:\n  {trees[0]}: {a.get(k)}\n  {trees[1]}: {b.get(k)}")
    if bad:
        print(f"{bad} paths differ")
    sys.exit(1 if bad else 0)


main()

#!/usr/bin/env python3
# Compares two directory trees as a receive must reproduce them, for the VM
# tests: prints nothing and exits 0 when equal, else one line per difference
# and exits 1.
#
#   tree_compare.py A B
#
# For every path (symlinks never followed): the file type; mode, owner and
# group; mtime (ns); atime (ns) unless COMPARE_ATIME=0; for regular files
# size, link count and content digest; symlink targets; device numbers;
# extended attributes (names and values). Hard links: the paths sharing an
# inode in A share one in B. Not compared: ctime (a receiver cannot set
# it), directory sizes and link counts (filesystems differ there: btrfs
# directories always have one link).
import hashlib
import os
import stat
import sys


def walk(root):
    out = {}
    for d, dirs, files in os.walk(root):
        for n in dirs + files:
            p = os.path.join(d, n)
            out[os.path.relpath(p, root)] = p
    out["."] = root
    return out


def digest(p):
    h = hashlib.sha256()
    with open(p, "rb") as f:
        while True:
            b = f.read(1 << 20)
            if not b:
                return h.hexdigest()
            h.update(b)


def describe(p, with_atime):
    # lstat first: reading contents must not change what is compared.
    st = os.lstat(p)
    d = {
        "type": stat.S_IFMT(st.st_mode),
        "mode": oct(stat.S_IMODE(st.st_mode)),
        "uid": st.st_uid,
        "gid": st.st_gid,
        "mtime": st.st_mtime_ns,
    }
    if with_atime:
        d["atime"] = st.st_atime_ns
    if stat.S_ISREG(st.st_mode):
        d["size"] = st.st_size
        d["nlink"] = st.st_nlink
    if stat.S_ISLNK(st.st_mode):
        d["target"] = os.readlink(p)
    if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
        d["rdev"] = (os.major(st.st_rdev), os.minor(st.st_rdev))
    x = {}
    for name in sorted(os.listxattr(p, follow_symlinks=False)):
        x[name] = os.getxattr(p, name, follow_symlinks=False)
    d["xattrs"] = x
    if stat.S_ISREG(st.st_mode):
        d["sha256"] = digest(p)
    return d, (st.st_dev, st.st_ino)


def main(a, b):
    with_atime = os.environ.get("COMPARE_ATIME", "1") != "0"
    ta, tb = walk(a), walk(b)
    bad = []
    for p in sorted(set(ta) | set(tb)):
        if p not in tb:
            bad.append(f"{p}: only in {a}")
        elif p not in ta:
            bad.append(f"{p}: only in {b}")
    groups_a, groups_b = {}, {}
    for p in sorted(set(ta) & set(tb)):
        da, ia = describe(ta[p], with_atime)
        db, ib = describe(tb[p], with_atime)
        for k in sorted(set(da) | set(db)):
            if da.get(k) != db.get(k):
                bad.append(f"{p}: {k} {da.get(k)!r} != {db.get(k)!r}")
        if da["type"] != stat.S_IFDIR:
            groups_a.setdefault(ia, []).append(p)
            groups_b.setdefault(ib, []).append(p)
    links_a = sorted(sorted(g) for g in groups_a.values() if len(g) > 1)
    links_b = sorted(sorted(g) for g in groups_b.values() if len(g) > 1)
    if links_a != links_b:
        bad.append(f"hard links differ: {links_a} != {links_b}")
    for line in bad:
        print(line)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))

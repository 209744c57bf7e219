#!/usr/bin/env python3
# The hard cases of incremental send, one scripted scenario each: a tree is
# built in a ferrofs subvolume, snapshotted read-only, changed, and
# snapshotted again; the full stream of the first snapshot and the
# incremental stream of the second are applied by every receiver given and
# each result compared with its snapshot (treecmp.py). The scenarios are
# the shapes that broke btrfs send over the years (fstests' btrfs send
# tests name them): directory hierarchies inverted, names swapped between
# files and directories, hard links taking the names of other inodes,
# directories removed while their contents move out, an inode without
# links in the snapshot. Prints one PASS/FAIL line per case and receiver.
# Usage: send_cases.py MNT RECEIVER...   (RECEIVER as in send_random.py)
import os
import subprocess
import sys

# (name, what it exercises, commands building the first snapshot's tree,
# commands turning it into the second's). Commands run with `sh -e` in
# the subvolume's top directory; every file gets some data.
CASES = [
    ("invert-chain", "a chain of directories turned upside down, parents becoming children",
     "mkdir -p a/b/c/d; echo 1 > a/f1; echo 2 > a/b/c/d/f4",
     "mv a/b/c/d d; mv a/b/c d/c; mv a/b d/c/b; mv a d/c/b/a"),
    ("rename-child-and-parent", "a directory under one with a higher inode number, both renamed in place",
     "mkdir kid; mkdir par; mv kid par/kid; echo k > par/kid/f",
     "mv par/kid par/kid2; mv par par2"),
    ("rmdir-after-contents-leave", "a directory deleted while its contents move out",
     "mkdir -p x/y/z; echo f > x/y/z/f; echo g > x/g",
     "mv x/y/z zz; mv x/g g; rmdir x/y; rmdir x; mkdir x; echo new > x/n"),
    ("move-under-moved", "a directory moved under a lower-numbered one that is moved too",
     "mkdir p1 p2; mkdir p2/q; echo a > p1/a; echo b > p2/q/b",
     "mv p1 p2/q/p1; mv p2 p3; mkdir p3/q/p1/new"),
    ("take-name-before-move", "B takes A's name, and A's move must come before C's",
     "mkdir A B C; echo a > A/f; mkdir D E; echo e > E/g; mkdir F",
     "mv C X; mv A X/Y; mv B A; mv F F2; mv E F2/E2; mv D E"),
    ("swap-subtree-roots", "the roots of two subtrees with the same path swapped",
     "mkdir -p top/m/n/k1/k2 top/w top/k1/k2; echo 1 > top/m/n/k1/k2/f; echo 2 > top/k1/k2/g",
     "mv top/k1 top/tmp; mv top/m/n/k1 top/k1; mv top/tmp top/m/n/k1; mv top/m/n top/w/n2"),
    ("same-name-new-inode", "an entry name that points to another inode, with ancestry inverted",
     "mkdir -p d/n1/n2 d/n4 d/t6/t7 d/t5 d/t7; echo 1 > d/t7/f",
     "mv d/t7 d/n4/t2; mv d/t5 d/n4/t2/t7; mv d/t6 d/n4/t2/t7/t5; mv d/n1/n2 d/n4/t2/t7/t5/n2; mv d/n1 d/n4/n1"),
    ("entries-switch-inodes", "two directory entries of one name switch the inodes they name",
     "mkdir -p d/p p; echo in > d/p/f; echo out > p/g",
     "mv d/p tmp; mv p d/p; mv tmp p"),
    ("rmdir-waits-for-move", "rmdir of a directory whose subdirectory moves out first",
     "mkdir -p a/b/c; echo f > a/b/c/f; mkdir a/e",
     "mv a/b/c c; mv a/e e; rmdir a/b; rmdir a"),
    ("rename-link-take-old-name", "A renamed and linked, B renamed to A's old name",
     "echo 1 > f1; echo 2 > f2; echo 3 > f3",
     "mv f3 f4; ln f2 f5; mv f2 f3; mv f1 f2"),
    ("file-takes-ancestor-name", "a directory renamed and a file below it given its old name",
     "mkdir -p A/sub; echo b > A/sub/B; echo c > A/sub/C",
     "mv A A2; mv A2/sub/B A; mv A2/sub/C A2/C"),
    ("file-takes-dir-name-and-links-into-it", "a directory moved, a file renamed to its old name and linked inside it",
     "mkdir -p top/mid/leaf/inner other; echo 1 > top/mid/leaf/doc",
     "mkdir top/side; mv other top/mid/leaf/inner/other2; ln top/mid/leaf/doc top/mid/leaf/inner/doc2; "
     "mv top/mid/leaf/inner top/side/inner2; mv top/mid/leaf/doc top/mid/leaf/inner"),
    ("links-renamed-onto-other-paths", "some hard links of a file renamed, one to another inode's former path",
     "mkdir -p u/v/w z; echo 1 > u/one; ln u/one u/v/w/one-b; echo 2 > u/v/two; ln u/v/two u/two-b; ln u/v/two z/two-c",
     "mv z u/v/z2; mv u/two-b z; mkdir u/two-b; ln u/one u/v/one-c; mv u/v u/two-b/v2; mv u/two-b/v2/z2 u/two-b/v2/w/z3"),
    ("invert-many-ancestors", "several ancestors become descendants of directories they used to contain",
     "mkdir -p r1/r2/r3/r4 s1 s2; echo f > r1/r2/r3/r4/f; echo g > s1/g",
     "mv r1/r2/r3/r4 r4; mv r1/r2/r3 r4/r3; mv r1/r2 r4/r3/r2; mv r1 r4/r3/r2/r1; mv s1 r4/r3/r2/r1/s1; mv s2 r4/s2"),
    ("file-and-dir-swap", "a file swapped with the directory it used to be in",
     "mkdir D; echo f > D/F; echo x > X",
     "mv D/F tmp; mv D F; mv tmp D; mv X F/X"),
    ("links-take-dir-names", "one inode's links take the names of a directory and of its parent",
     "mkdir -p P/C; echo c > P/C/inner; echo data > file",
     "mv P Q; mv Q/C Q/C2; ln file P; ln file Q/C; rm file"),
    ("links-around-dirs", "a file with several links takes a directory's old name and a file's old place",
     "mkdir d; echo f > d/f; echo x > x; ln x x2",
     "mv d d2; mv x d; mv d2/f ff; ln x2 d2/f"),
    ("unlinked-but-open", "an inode with no links in the snapshot (open, unlinked) is left out",
     "echo keep > keep; mkdir sub; echo s > sub/s",
     "python3 -c \"import os,subprocess,sys; fd=os.open('gone', os.O_CREAT|os.O_WRONLY, 0o644); os.write(fd, b'x'*5000); "
     "os.unlink('gone'); subprocess.run(['ferrofs','subvolume','snapshot','-r',os.environ['SRC'], sys.argv[1]], check=True, "
     "stdout=subprocess.DEVNULL); os.close(fd)\" \"$SNAP2\"; echo changed > keep"),
]

mnt = sys.argv[1]
receivers = [r.split(":", 1) for r in sys.argv[2:]]
here = os.path.dirname(os.path.abspath(__file__))
failures = 0


def check(name, ok, detail=""):
    global failures
    print(("PASS " if ok else "FAIL ") + name + ("" if ok or not detail else f": {detail}"), flush=True)
    failures += not ok


def sh(cmd, cwd, env=None):
    p = subprocess.run(["sh", "-ec", cmd], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                       env={**os.environ, **(env or {})})
    return p.returncode == 0, p.stdout[-800:]


def compare(snap, received):
    c = subprocess.run([sys.executable, os.path.join(here, "treecmp.py"), "--all-dirs", snap, received],
                       stdout=subprocess.PIPE, text=True)
    return c.returncode == 0, c.stdout[-1500:]


base = os.path.join(mnt, "cases")
os.makedirs(base, exist_ok=True)
for name, _, setup, change in CASES:
    src, s1, s2 = os.path.join(base, name), os.path.join(base, f"{name}-1"), os.path.join(base, f"{name}-2")
    subprocess.run(["ferrofs", "subvolume", "create", src], check=True, stdout=subprocess.DEVNULL)
    ok, out = sh(setup, src)
    ok = ok and subprocess.run(["ferrofs", "subvolume", "snapshot", "-r", src, s1], stdout=subprocess.DEVNULL).returncode == 0
    if ok:
        # A change may take the second snapshot itself (at the moment it
        # needs); otherwise it is taken after the change.
        ok, out = sh(change, src, {"SNAP2": s2, "SRC": src})
        if ok and not os.path.exists(s2):
            ok = subprocess.run(["ferrofs", "subvolume", "snapshot", "-r", src, s2], stdout=subprocess.DEVNULL).returncode == 0
    check(f"send-case-{name}-build", ok, out)
    if not ok:
        continue
    full, incr = f"/tmp/case-{name}.full", f"/tmp/case-{name}.incr"
    sent = subprocess.run(["ferrofs", "send", "-q", "-f", full, s1], stderr=subprocess.PIPE, text=True)
    sent2 = subprocess.run(["ferrofs", "send", "-q", "-p", s1, "-f", incr, s2], stderr=subprocess.PIPE, text=True)
    check(f"send-case-{name}-send", sent.returncode == 0 and sent2.returncode == 0, sent.stderr + sent2.stderr)
    if sent.returncode or sent2.returncode:
        continue
    for kind, dest in receivers:
        where = os.path.join(dest, name)
        os.makedirs(where, exist_ok=True)
        ok, detail = True, ""
        for stream, snap in ((full, s1), (incr, s2)):
            cmd = ["btrfs", "receive", "-f", stream, where] if kind == "btrfs" else ["ferrofs", "receive", "-f", stream, where]
            p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            if p.returncode:
                ok, detail = False, p.stdout[-1500:]
                break
            ok, detail = compare(snap, os.path.join(where, os.path.basename(snap)))
            if not ok:
                break
        check(f"send-case-{name}-{kind}", ok, detail)
    os.unlink(full)
    os.unlink(incr)
sys.exit(1 if failures else 0)

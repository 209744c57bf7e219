# The calls that only read run under the core lock taken for read when the
# nodes they need are cached (read_calls' "shared" count): readdir,
# readlink, getxattr, listxattr, lookups of names the dentry cache dropped, and the
# block map of direct reads, with no call falling back to the write lock
# ("locked"). After drop_caches has taken the nodes back they name the
# nodes they lack, which are read with no lock and inserted, and answer
# the same, still shared. Then readers and writers race on one directory
# (lockdep watches), and every reader's answers hold, also while commits
# write (beside_commit), those of full-commit fsyncs included.
. "$(dirname "$0")/lib.sh"
mkfs.ferrofs -q -f "$DEV1" 512M
mount -t ferrofs "$DEV1" "$MNT" || { fail shared-mount; exit 0; }
calls() { awk -v k="$1" '$1 == k { print $2 }' "/sys/fs/ferrofs/$(basename "$DEV1")/read_calls"; }
check shared-file-present test -n "$(calls shared)" -a -n "$(calls locked)"

# reads DIR ROUNDS: every read-only call the test counts, ROUNDS times;
# prints what it saw, so two runs can be compared.
reads() {
  python3 - "$@" <<'PY'
import os, sys
d, rounds = sys.argv[1], int(sys.argv[2])
seen = []
for _ in range(rounds):
    seen.append(len(os.listdir(d)))
    seen.append(os.readlink(os.path.join(d, "link")))
    seen.append(os.getxattr(os.path.join(d, "f-7"), "user.tag"))
    seen.append(sorted(os.listxattr(os.path.join(d, "f-7"))))
    fd = os.open(os.path.join(d, "big"), os.O_RDONLY | os.O_DIRECT)
    try:
        import mmap
        buf = mmap.mmap(-1, 65536)
        n = os.readv(fd, [buf])
        seen.append((n, bytes(buf[:4])))
    finally:
        os.close(fd)
print(repr(seen[:4]), len(seen))
PY
}
mkdir "$MNT/d"
for i in $(seq 0 199); do echo "file $i" > "$MNT/d/f-$i"; done
ln -s "f-7" "$MNT/d/link"
python3 -c 'import os,sys; os.setxattr(sys.argv[1], "user.tag", b"seven")' "$MNT/d/f-7"
head -c 1M /dev/urandom > "$MNT/d/big"
sync
first=$(reads "$MNT/d" 1)
s0=$(calls shared); l0=$(calls locked)
warm=$(reads "$MNT/d" 10)
s1=$(calls shared); l1=$(calls locked)
# 10 rounds of readdir, readlink, getxattr, listxattr and a direct read:
# at least 50.
check shared-answers-warm test $((s1 - s0)) -ge 50
check shared-warm-none-locked test "$l1" = "$l0"
check shared-warm-same-answers test "${warm%% *}" = "${first%% *}"

# Lookups of names the dentry cache dropped: the running transaction's
# nodes are dirty and so always cached, while drop_caches drops dentries,
# inodes and clean nodes; with no commit in between (commit=600) every
# lookup below is answered shared.
check shared-remount sh -c "umount $MNT && mount -t ferrofs -o commit=600 $DEV1 $MNT"
mkdir "$MNT/e"
for i in $(seq 0 99); do : > "$MNT/e/g-$i"; done
echo 2 > /proc/sys/vm/drop_caches
s2=$(calls shared); l2=$(calls locked)
for i in $(seq 0 99); do stat -c %i "$MNT/e/g-$i"; done > /tmp/inos1
s3=$(calls shared); l3=$(calls locked)
check shared-lookups test $((s3 - s2)) -ge 100
check shared-lookups-none-locked test "$l3" = "$l2"
# Names that are not there: a negative answer is an answer too.
for i in $(seq 0 99); do stat "$MNT/e/absent-$i" 2>/dev/null; done
s4=$(calls shared); l4=$(calls locked)
check shared-negative-lookups test $((s4 - s3)) -ge 100 -a "$l4" = "$l3"
# After a commit the nodes are clean and drop_caches takes them: the
# shared walks name the nodes they lack, which are read with no lock held
# and inserted, and still answer; nothing falls back to the write lock,
# and the same inodes are found.
sync
echo 2 > /proc/sys/vm/drop_caches
r5=$(awk '{print $1}' "/sys/block/$(basename "$DEV1")/stat")
s5=$(calls shared); l5=$(calls locked)
for i in $(seq 0 99); do stat -c %i "$MNT/e/g-$i"; done > /tmp/inos2
r6=$(awk '{print $1}' "/sys/block/$(basename "$DEV1")/stat")
s6=$(calls shared); l6=$(calls locked)
check shared-cold-reads-device test "$r6" -gt "$r5"
check shared-cold-answers test $((s6 - s5)) -ge 100 -a "$l6" = "$l5"
check shared-same-inodes cmp -s /tmp/inos1 /tmp/inos2
# A read-only snapshot is not opened by a mount (only writable subvolumes
# are, for their orphans); entering it opens it (under the write lock),
# and the names in it are then found as in its source.
check shared-snapshot ferrofs subvolume snapshot -r "$MNT" "$MNT/ro"
check shared-remount-ro-snap sh -c "umount $MNT && mount -t ferrofs $DEV1 $MNT"
check shared-snapshot-lookup test "$(stat -c %i "$MNT/ro/e/g-5")" = "$(sed -n 6p /tmp/inos1)"
cold=$(reads "$MNT/d" 10)
check shared-cold-same-answers test "${cold%% *}" = "${first%% *}"

# Readers against writers, lockdep on: two listers and a stat-er while
# two writers create, rename and unlink in the same directory.
python3 - "$MNT/e" <<'PY' > /tmp/race.log 2>&1
import os, sys, threading
d = sys.argv[1]
stop = threading.Event()
errors = []
def writer(tag):
    i = 0
    while not stop.is_set():
        p = os.path.join(d, "w%s-%d" % (tag, i % 50))
        try:
            with open(p, "w") as f:
                f.write("x" * (i % 5000))
            os.rename(p, p + ".r")
            os.unlink(p + ".r")
        except OSError as e:
            errors.append("writer %s: %s" % (tag, e))
            return
        i += 1
def lister():
    while not stop.is_set():
        names = set(os.listdir(d))
        # The hundred names nobody touches are always there.
        missing = [n for n in ("g-%d" % i for i in range(100)) if n not in names]
        if missing:
            errors.append("listing lacks %s" % missing[:3])
            return
def stater():
    while not stop.is_set():
        for i in range(100):
            try:
                os.stat(os.path.join(d, "g-%d" % i))
            except OSError as e:
                errors.append("stat: %s" % e)
                return
threads = [threading.Thread(target=f) for f in (lambda: writer("a"), lambda: writer("b"), lister, lister, stater)]
for t in threads:
    t.start()
threading.Event().wait(15)
stop.set()
for t in threads:
    t.join()
print("\n".join(errors) or "ok")
PY
check shared-race-answers-hold grep -qx ok /tmp/race.log || cat /tmp/race.log

# listings_beside_commits DIR HOW LOG: one writer makes 60 files of DIR,
# committing after each (HOW: "sync", or "fsync" of the file), while two
# listers check that every name nobody touches is listed; LOG gets "ok"
# or what went wrong.
listings_beside_commits() {
  python3 - "$1" "$2" <<'PY' > "$3" 2>&1
import os, sys, threading
d, how = sys.argv[1], sys.argv[2]
stop = threading.Event()
errors = []
def committer():
    for i in range(60):
        with open(os.path.join(d, "%s-%d" % (how, i)), "w") as f:
            f.write("c" * 3000)
            if how == "fsync":
                f.flush()
                os.fsync(f.fileno())
        if how == "sync":
            os.sync()
    stop.set()
def lister():
    while not stop.is_set():
        names = set(os.listdir(d))
        if any("g-%d" % i not in names for i in range(100)):
            errors.append("listing during %s commits lacks a name" % how)
            stop.set()
threads = [threading.Thread(target=f) for f in (committer, lister, lister)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print("\n".join(errors) or "ok")
PY
}

# A commit's writes run with the lock downgraded to read: listings of a
# directory go on while a writer's sync commits (beside_commit counts
# them), and each listing holds every name nobody touches.
b0=$(calls beside_commit)
listings_beside_commits "$MNT/e" sync /tmp/commit-race.log
b1=$(calls beside_commit)
check shared-beside-commit-answers-hold grep -qx ok /tmp/commit-race.log || cat /tmp/commit-race.log
check shared-reads-beside-commit test "$b1" -gt "$b0"

# So do the commits of fsyncs no record can serve (fast_commit=off: each
# is a full commit), with no background commit to take their place
# (commit=600): the fsync runs its commit after its hold of the lock.
check shared-remount-fc-off mount -o remount,fast_commit=off,commit=600 "$MNT"
b2=$(calls beside_commit)
listings_beside_commits "$MNT/e" fsync /tmp/fsync-race.log
b3=$(calls beside_commit)
check shared-beside-fsync-commit-answers-hold grep -qx ok /tmp/fsync-race.log || cat /tmp/fsync-race.log
check shared-reads-beside-fsync-commit test "$b3" -gt "$b2"
check shared-umount umount "$MNT"
check shared-fsck-clean fsck.ferrofs -n "$DEV1"

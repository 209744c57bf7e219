# The fsync tiers seen from outside: /sys/fs/ferrofs/<dev>/fsync_stats
# counts each fsync under its tier (and a full commit under its reason),
# the filesystem's flushes match the device's, `ferrofs stats` prints the
# same numbers as a table and as JSON; `fast_commit=off` turns every fsync
# into a counted full commit and back on remount; `norecovery` mounts
# read-only at the last full commit without replaying (or writing) the
# records, which the next plain mount still replays; each mounted device
# has its own directory, gone at unmount, also with a reader racing it.
. "$(dirname "$0")/lib.sh"
MNT2=/tmp/mnt2
mkdir -p "$MNT2"
S1=/sys/fs/ferrofs/vdb/fsync_stats
S2=/sys/fs/ferrofs/vdc/fsync_stats
# val FILE KEY: one value of a stats file.
val() { awk -v k="$2" '$1 == k { print $2 }' "$1"; }
dev_flushes() { awk '{ print $16 }' "/sys/block/$1/stat"; }
# fsync PATH (file or directory).
do_fsync() { python3 -c 'import os, sys; fd = os.open(sys.argv[1], os.O_RDONLY); os.fsync(fd)' "$1"; }
# moved FILE KEY BEFORE WANT: the key went up by exactly WANT since BEFORE.
moved() { test "$(( $(val "$1" "$2") - $3 ))" = "$4"; }

# 256 MiB filesystems, so checksumming what one may write is quick.
mkfs.ferrofs -q -f "$DEV1" 256M
mkfs.ferrofs -q -f "$DEV2" 256M
# No background commit: only fsync and sync make anything durable.
mount -t ferrofs -o commit=86400 "$DEV1" "$MNT" || { fail stats-mount; exit 0; }
check sysfs-dir-at-mount test -r "$S1"
check sysfs-file-read-only test "$(stat -c %a "$S1")" = 444
cat "$S1"
check defaults-in-file sh -c "grep -qx 'option_fast_commit on' $S1 && grep -qx 'option_norecovery off' $S1 && grep -qx 'option_commit 86400' $S1"
head -c 10000 /dev/urandom > "$MNT/log"
mkdir "$MNT/dir"
sync

# Three appends, each fsynced: three fast commits, one flush each (the
# filesystem's count and the device's agree), one record each.
fc0=$(val "$S1" fsync_fast_commit) fl0=$(val "$S1" flushes) dfl0=$(dev_flushes vdb)
b0=$(val "$S1" fast_commit_bytes) full0=$(val "$S1" fsync_full_commit) c0=$(val "$S1" commits)
for i in 1 2 3; do
  head -c 4096 /dev/urandom >> "$MNT/log"
  do_fsync "$MNT/log"
done
check three-fast-commits moved "$S1" fsync_fast_commit "$fc0" 3
check three-flushes-counted moved "$S1" flushes "$fl0" 3
check device-saw-three-flushes test "$(( $(dev_flushes vdb) - dfl0 ))" = 3
# Each record is 472 bytes plus 28 per run (one or two runs here), padded
# to 8: the area is packed, so no longer a block each.
rb=$(( $(val "$S1" fast_commit_bytes) - b0 ))
check three-records-bytes test "$rb" -ge $((3 * 504)) -a "$rb" -le $((3 * 528))
check no-full-commit moved "$S1" fsync_full_commit "$full0" 0
check no-commit moved "$S1" commits "$c0" 0

# Nothing changed since a commit: clean.
sync
cl0=$(val "$S1" fsync_clean) fc0=$(val "$S1" fsync_fast_commit)
do_fsync "$MNT/log"
check clean-fsync-counted moved "$S1" fsync_clean "$cl0" 1
check clean-is-not-fast moved "$S1" fsync_fast_commit "$fc0" 0

# Full commits, by reason: a directory that gained a subdirectory; a link
# into a directory made since the last commit. A link into an older one is
# a tree-log record.
nr0=$(val "$S1" full_commit_not_regular) np0=$(val "$S1" full_commit_new_parent)
full0=$(val "$S1" fsync_full_commit) c0=$(val "$S1" commits) tl0=$(val "$S1" fsync_tree_log)
mkdir "$MNT/dir/sub"
do_fsync "$MNT/dir"
check dir-fsync-not-regular moved "$S1" full_commit_not_regular "$nr0" 1
echo more >> "$MNT/log"
mkdir "$MNT/newdir"
ln "$MNT/log" "$MNT/newdir/log2"
do_fsync "$MNT/log"
check link-fsync-new-parent moved "$S1" full_commit_new_parent "$np0" 1
check total-is-sum moved "$S1" fsync_full_commit "$full0" 2
check two-commits moved "$S1" commits "$c0" 2
ln "$MNT/log" "$MNT/dir/log3"
do_fsync "$MNT/log"
check link-fsync-tree-log moved "$S1" fsync_tree_log "$tl0" 1
check tree-log-no-commit moved "$S1" commits "$c0" 2

# ferrofs stats: the same numbers, by mount point or device, table or JSON.
ferrofs stats "$MNT"
check stats-table-by-mountpoint sh -c "ferrofs stats $MNT | grep -Eq '^fsync_fast_commit +$(val "$S1" fsync_fast_commit)\$'"
check stats-table-by-device sh -c "ferrofs stats $DEV1 | grep -Eq '^device +vdb\$'"
check stats-table-from-subdir sh -c "ferrofs stats $MNT/dir | grep -Eq '^commits +$(val "$S1" commits)\$'"
ferrofs stats --json "$MNT" > /tmp/stats.json
check stats-json-matches-file python3 -c '
import json, sys
j = json.load(open("/tmp/stats.json"))
f = dict(l.split() for l in open(sys.argv[1]))
assert j.pop("device") == "vdb", j
assert list(j) == list(f), (list(j), list(f))
for k, v in f.items():
    want = {"on": True, "off": False}.get(v, None)
    assert j[k] == (int(v) if want is None else want), (k, j[k], v)
' "$S1"
check stats-refuses-other-fs sh -c "! ferrofs stats /tmp 2>/tmp/stats.err && grep -q 'not a mounted ferrofs' /tmp/stats.err"
check stats-refuses-unmounted-device sh -c "! ferrofs stats $DEV2 2>/tmp/stats.err && grep -q 'not a mounted ferrofs' /tmp/stats.err"

# fast_commit=off: fsyncs become full commits counted as disabled, and
# back on.
check remount-fast-commit-off mount -o remount,fast_commit=off "$MNT"
check off-in-proc-mounts grep -q "^$DEV1 $MNT ferrofs rw,relatime,commit=86400,fast_commit=off " /proc/mounts
check off-in-file grep -qx 'option_fast_commit off' "$S1"
fc0=$(val "$S1" fsync_fast_commit) d0=$(val "$S1" full_commit_disabled) c0=$(val "$S1" commits)
for i in 1 2; do
  head -c 4096 /dev/urandom >> "$MNT/log"
  do_fsync "$MNT/log"
done
check off-disabled-counted moved "$S1" full_commit_disabled "$d0" 2
check off-no-fast-commit moved "$S1" fsync_fast_commit "$fc0" 0
check off-full-commits moved "$S1" commits "$c0" 2
check remount-fast-commit-on mount -o remount,fast_commit=on "$MNT"
check on-not-in-proc-mounts sh -c "! grep -q fast_commit /proc/mounts"
fc0=$(val "$S1" fsync_fast_commit)
head -c 4096 /dev/urandom >> "$MNT/log"
do_fsync "$MNT/log"
check on-fast-again moved "$S1" fsync_fast_commit "$fc0" 1
mark_dmesg
check remount-bad-value-refused sh -c "! mount -o remount,fast_commit=maybe $MNT 2>/dev/null"
check remount-bad-value-logged sh -c "dmesg | grep -q 'ferrofs: fast_commit: expects on or off'"
check remount-norecovery-refused sh -c "! mount -o remount,norecovery $MNT 2>/dev/null"
check remount-norecovery-logged sh -c "dmesg | grep -q 'ferrofs: norecovery: only at mount'"

# Two mounted devices, two directories, separate counters.
mount -t ferrofs -o fast_commit=off "$DEV2" "$MNT2" || fail second-mount
check second-dir test -r "$S2"
check second-own-options sh -c "grep -qx 'option_fast_commit off' $S2 && grep -qx 'option_fast_commit on' $S1"
fc1=$(val "$S1" fsync_fast_commit) d2=$(val "$S2" full_commit_disabled)
echo x > "$MNT2/f" && sync && echo y >> "$MNT2/f"
do_fsync "$MNT2/f"
check second-counts-its-own moved "$S2" full_commit_disabled "$d2" 1
check first-untouched moved "$S1" fsync_fast_commit "$fc1" 0
check stats-second-device sh -c "ferrofs stats --json $MNT2 | grep -q '\"device\": \"vdc\"'"
umount "$MNT2"
check unmount-removes-dir test ! -e /sys/fs/ferrofs/vdc
check other-dir-stays test -r "$S1"
# Unmount while readers hammer the file: the read ends or fails cleanly.
for round in 1 2 3; do
  mount -t ferrofs "$DEV2" "$MNT2"
  (while cat "$S2" >/dev/null 2>&1; do :; done) &
  reader=$!
  sleep 0.2
  umount "$MNT2"
  # The reader's next cat fails (no such file) and its loop ends.
  wait "$reader"
done
check raced-unmounts-removed-dir test ! -e /sys/fs/ferrofs/vdc

# norecovery: a crash with a fsynced, uncommitted append pending.
cp "$MNT/log" /tmp/log.synced
echo tail-logged >> "$MNT/log"
cp "$MNT/log" /tmp/log.logged
do_fsync "$MNT/log"
check shutdown xfs_io -x -c shutdown "$MNT"
umount "$MNT"
mark_dmesg
sum0=$(head -c 256M "$DEV1" | md5sum)
check norecovery-mount mount -t ferrofs -o ro,norecovery "$DEV1" "$MNT"
check norecovery-in-proc-mounts grep -q "^$DEV1 $MNT ferrofs ro,relatime,norecovery " /proc/mounts
check norecovery-in-file grep -qx 'option_norecovery on' "$S1"
check norecovery-nothing-replayed grep -qx 'replayed_records 0' "$S1"
check norecovery-shows-last-commit cmp "$MNT/log" /tmp/log.synced
check norecovery-stays-ro sh -c "! mount -o remount,rw $MNT 2>/dev/null"
check norecovery-rw-logged sh -c "dmesg | grep -q 'ferrofs: norecovery: a mount without replay stays read-only'"
check norecovery-still-ro grep -q "^$DEV1 $MNT ferrofs ro," /proc/mounts
umount "$MNT"
check noload-alias sh -c "mount -t ferrofs -o ro,noload $DEV1 $MNT && grep -q ' $MNT ferrofs ro,relatime,norecovery ' /proc/mounts && cmp $MNT/log /tmp/log.synced"
umount "$MNT"
check norecovery-wrote-nothing test "$(head -c 256M "$DEV1" | md5sum)" = "$sum0"
# A plain read-only mount replays in memory (and writes nothing either).
mount -t ferrofs -o ro "$DEV1" "$MNT"
check ro-replays-in-memory cmp "$MNT/log" /tmp/log.logged
check ro-replay-counted grep -qx 'replayed_records 1' "$S1"
umount "$MNT"
check ro-wrote-nothing test "$(head -c 256M "$DEV1" | md5sum)" = "$sum0"
# The next read-write mount replays for good.
mount -t ferrofs "$DEV1" "$MNT"
check replayed-after-norecovery cmp "$MNT/log" /tmp/log.logged
check replay-counted grep -qx 'replayed_records 1' "$S1"
check replay-timed test "$(val "$S1" replay_ns)" -gt 0
check fresh-counters-per-mount grep -qx 'fsync_fast_commit 0' "$S1"
umount "$MNT"
check fsck-after fsck.ferrofs -n "$DEV1"
check no-dir-left sh -c "test -z \"\$(ls /sys/fs/ferrofs)\""

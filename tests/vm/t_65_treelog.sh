# fsync through a tree-log record in the kernel: rename, rename over an
# existing file, link, unlink and setxattr of a committed file, each
# followed by fsync, and a directory's fsync after a file was made and
# another removed in it, cost one device flush and no commit, and are
# counted under fsync_tree_log; what they made durable survives a shutdown that
# writes nothing more (xfs_io shutdown) and is replayed at the next mount,
# where fsck finds the filesystem clean.
. "$(dirname "$0")/lib.sh"
S=/sys/fs/ferrofs/vdb/fsync_stats
XC="python3 $FERROFS_ROOT/tests/vm/xattr_call.py"
val() { awk -v k="$1" '$1 == k { print $2 }' "$S"; }

mkfs.ferrofs -q -f "$DEV1" 256M
# No background commit during the test: only fsync makes anything durable.
mount -t ferrofs -o commit=86400 "$DEV1" "$MNT" || { fail tl-mount; exit 0; }
mkdir "$MNT/d1" "$MNT/d2"
head -c 20000 /dev/urandom > "$MNT/a"
echo victim > "$MNT/b"
head -c 7000 /dev/urandom > "$MNT/c"
echo two > "$MNT/d1/two"
ln "$MNT/d1/two" "$MNT/d2/two"
echo gone > "$MNT/d2/gone"
sync
cp "$MNT/a" /tmp/a.want
cp "$MNT/c" /tmp/c.want
tl0=$(val fsync_tree_log) c0=$(val commits)

mv "$MNT/a" "$MNT/d1/a2"
check rename-fsync-one-flush test "$(fsync_flushes "$MNT/d1/a2")" = 1
ln "$MNT/d1/a2" "$MNT/d2/a3"
check link-fsync-one-flush test "$(fsync_flushes "$MNT/d1/a2")" = 1
check setxattr-ok test "$($XC set "$MNT/d1/a2" user.k logged)" = OK
check setxattr-fsync-one-flush test "$(fsync_flushes "$MNT/d1/a2")" = 1
mv "$MNT/c" "$MNT/b"
check rename-over-fsync-one-flush test "$(fsync_flushes "$MNT/b")" = 1
rm "$MNT/d2/two"
check unlink-fsync-one-flush test "$(fsync_flushes "$MNT/d1/two")" = 1
head -c 3000 /dev/urandom > "$MNT/d2/fresh"
cp "$MNT/d2/fresh" /tmp/fresh.want
rm "$MNT/d2/gone"
check dir-fsync-one-flush test "$(fsync_flushes "$MNT/d2")" = 1
check six-tree-log-fsyncs test "$(( $(val fsync_tree_log) - tl0 ))" = 6
check no-commit test "$(val commits)" = "$c0"
check tree-log-bytes test "$(val tree_log_bytes)" -ge $((7 * 200))
# Not fsynced: gone after the crash.
mv "$MNT/d1/two" "$MNT/d1/unsynced"

check shutdown-without-flush xfs_io -x -c shutdown "$MNT"
umount "$MNT"
mark_dmesg
mount -t ferrofs "$DEV1" "$MNT" || { fail tl-remount; exit 0; }
# Five file records, and three from the directory's fsync: every file
# whose entry in d2 differs from the committed one and was not put back as
# it is by an earlier record (two, whose removal is logged again; fresh;
# gone, freed, as a record without names; not a3, logged by its link).
check replayed-count test "$(val replayed_records)" = 8
check renamed-data cmp "$MNT/d1/a2" /tmp/a.want
check old-name-gone test ! -e "$MNT/a"
check link-durable cmp "$MNT/d2/a3" /tmp/a.want
check link-count test "$(stat -c %h "$MNT/d1/a2")" = 2
check xattr-durable test "$($XC get "$MNT/d1/a2" user.k 64)" = 6
check rename-over-durable cmp "$MNT/b" /tmp/c.want
check rename-over-old-gone test ! -e "$MNT/c"
check unlink-durable test ! -e "$MNT/d2/two"
check unlink-link-count test "$(stat -c %h "$MNT/d1/two")" = 1
check unsynced-rename-not-replayed test ! -e "$MNT/d1/unsynced"
check dir-fsync-new-file cmp "$MNT/d2/fresh" /tmp/fresh.want
check dir-fsync-removal test ! -e "$MNT/d2/gone"
umount "$MNT"
check fsck-after-replay fsck.ferrofs -n "$DEV1"
mount -t ferrofs "$DEV1" "$MNT"
check still-there-after-second-mount cmp "$MNT/b" /tmp/c.want
umount "$MNT"

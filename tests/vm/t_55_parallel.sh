# Parallel stress: processes racing on the same names (lockdep and the
# might-sleep checks watch the kernel), with a background commit every
# second, snapshots made and deleted all along, and a freeze/thaw in the
# middle; then fsck clean and remount.
. "$(dirname "$0")/lib.sh"
mkfs.ferrofs -q -f "$DEV1"
mount -t ferrofs -o commit=1 "$DEV1" "$MNT" || { fail par-mount; exit 0; }
mkdir "$MNT/work"
python3 "$FERROFS_ROOT/tests/vm/parstress.py" "$MNT/work" 4 "${FERROFS_PAR_SECS:-40}" 1 "$MNT/snaps" > /tmp/par.log 2>&1 &
stress=$!
sleep 10
check par-freeze xfs_io -x -c freeze "$MNT"
sleep 2
check par-thaw xfs_io -x -c thaw "$MNT"
wait $stress
status=$?
cat /tmp/par.log
check par-stress-ran test "$status" = 0
check par-umount umount "$MNT"
check par-fsck-clean fsck.ferrofs -n "$DEV1"
check par-remount mount -t ferrofs "$DEV1" "$MNT"
check par-tree-readable sh -c "find $MNT -type f -exec cat {} + > /dev/null"
umount "$MNT"

# FS_IOC_SHUTDOWN (xfs_io "shutdown", as fstests' godown) and device
# errors: the filesystem stops with one dmesg line, later changes fail,
# nothing after the stop reaches the disk, and the last committed state
# mounts clean.
. "$(dirname "$0")/lib.sh"
fsync_file() { python3 -c 'import os,sys; fd=os.open(sys.argv[1], os.O_RDONLY); os.fsync(fd)' "$1"; }

for how in "shutdown" "shutdown -f"; do
  tag=${how// /}
  mkfs.ferrofs -q -f "$DEV1"
  mount -t ferrofs -o commit=3600 "$DEV1" "$MNT" || { fail "$tag-mount"; continue; }
  head -c 100000 /dev/urandom > /tmp/kept
  cp /tmp/kept "$MNT/kept" && fsync_file "$MNT/kept"
  mkdir "$MNT/committed-by-logflush"
  mark_dmesg
  check "$tag-ioctl" xfs_io -x -c "$how" "$MNT"
  check "$tag-one-line" test "$(dmesg | grep -c 'ferrofs: vdb: shut down')" = 1
  check "$tag-create-eio" sh -c "! (: > $MNT/new) 2>/tmp/err && grep -q 'Input/output error' /tmp/err"
  check "$tag-mkdir-eio" sh -c "! mkdir $MNT/d2 2>/tmp/err && grep -q 'Input/output error' /tmp/err"
  check "$tag-write-eio" sh -c "! (echo x >> $MNT/kept) 2>/tmp/err && grep -Eq 'Input/output error|I/O error' /tmp/err"
  check "$tag-read-works" cmp /tmp/kept "$MNT/kept"
  # Write requests completed on the device (field 5 of its stat file).
  before=$(awk '{print $5}' /sys/block/vdb/stat)
  umount "$MNT"
  check "$tag-nothing-written-after" test "$(awk '{print $5}' /sys/block/vdb/stat)" = "$before"
  check "$tag-fsck-clean" fsck.ferrofs -n "$DEV1"
  mount -t ferrofs "$DEV1" "$MNT" || { fail "$tag-remount"; continue; }
  check "$tag-fsynced-survives" cmp /tmp/kept "$MNT/kept"
  if [ "$how" = "shutdown -f" ]; then
    check "$tag-logflush-committed" test -d "$MNT/committed-by-logflush"
  else
    check "$tag-nologflush-dropped" test ! -e "$MNT/committed-by-logflush"
  fi
  umount "$MNT"
done
check shutdown-needs-root sh -c "mkfs.ferrofs -q -f $DEV1 && mount -t ferrofs $DEV1 $MNT && chmod 777 $MNT && ! setpriv --reuid 1000 --regid 1000 --clear-groups xfs_io -x -c shutdown $MNT 2>/dev/null; umount $MNT"

# A device that starts failing writes: the commit fails, one line says so,
# the filesystem turns read-only, and the committed state survives.
sectors=$(blockdev --getsz "$DEV1")
mkfs.ferrofs -q -f "$DEV1"
dmsetup create ferrofs-err --table "0 $sectors flakey $DEV1 0 180 0" || { fail err-create; exit 0; }
mount -t ferrofs -o commit=3600 /dev/mapper/ferrofs-err "$MNT" || { fail err-mount; dmsetup remove ferrofs-err; exit 0; }
echo safe > "$MNT/safe" && fsync_file "$MNT/safe"
dmsetup suspend ferrofs-err && dmsetup load ferrofs-err --table "0 $sectors flakey $DEV1 0 0 180 1 error_writes" && dmsetup resume ferrofs-err
mark_dmesg
mkdir "$MNT/doomed"
check err-fsync-fails sh -c "! python3 -c 'import os; fd=os.open(\"$MNT\", os.O_RDONLY); os.fsync(fd)' 2>/dev/null"
check err-one-line test "$(dmesg | grep -c 'ferrofs: dm-0: stopped after an error')" = 1
check err-now-read-only sh -c "! touch $MNT/more 2>/tmp/err && grep -q 'Read-only file system' /tmp/err"
check err-read-works test "$(cat "$MNT/safe")" = safe
umount "$MNT"
dmsetup suspend ferrofs-err && dmsetup load ferrofs-err --table "0 $sectors flakey $DEV1 0 180 0" && dmsetup resume ferrofs-err
check err-fsck-clean fsck.ferrofs -n /dev/mapper/ferrofs-err
mount -t ferrofs /dev/mapper/ferrofs-err "$MNT"
check err-committed-survives test "$(cat "$MNT/safe")" = safe
umount "$MNT"
dmsetup remove ferrofs-err

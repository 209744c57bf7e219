# Randomised send round trips (send_random.py): random operations between
# read-only snapshots, each round's full and incremental streams applied
# by btrfs receive onto btrfs and compared with the snapshot.
. "$(dirname "$0")/lib.sh"
BTR=/tmp/btr
mkfs.ferrofs -q -f "$DEV1"
mount -t ferrofs "$DEV1" "$MNT" || { fail send-random-mount; exit 0; }
mkfs.btrfs -q -f "$DEV2" >/dev/null && mkdir -p $BTR && mount "$DEV2" $BTR || { fail send-random-btrfs-mount; exit 0; }
python3 "$FERROFS_ROOT/tests/vm/send_random.py" "${SEND_RANDOM_SEED:-1}" "${SEND_RANDOM_ROUNDS:-6}" "$MNT" "btrfs:$BTR/rx" ||
  { fail send-random-driver; dmesg | grep -i ferrofs | tail -5; }
umount $BTR
umount "$MNT"
check send-random-fsck-clean fsck.ferrofs -n "$DEV1"

# Randomised send round trips (send_random.py): random operations between
# read-only snapshots, each round's full and incremental streams applied
# by btrfs receive onto btrfs and by ferrofs receive onto tmpfs, ext4 and
# ferrofs, each compared with the snapshot; then the hard cases of
# incremental send as scripted scenarios (send_cases.py).
. "$(dirname "$0")/lib.sh"
BTR=/tmp/btr
mkfs.ferrofs -q -f "$DEV1"
mount -t ferrofs "$DEV1" "$MNT" || { fail send-random-mount; exit 0; }
mkfs.btrfs -q -f "$DEV2" >/dev/null && mkdir -p $BTR && mount "$DEV2" $BTR || { fail send-random-btrfs-mount; exit 0; }
# ferrofs receive onto tmpfs, onto ext4 (an image on tmpfs) and onto
# ferrofs itself (real subvolumes), beside btrfs receive onto btrfs.
mkdir -p /tmp/t69-tmpfs /tmp/t69-ext4
truncate -s 300M /tmp/t69-ext4.img && mkfs.ext4 -q -F /tmp/t69-ext4.img && mount -o loop /tmp/t69-ext4.img /tmp/t69-ext4 ||
  fail send-random-ext4-mount
mkdir -p "$MNT/rx"
python3 "$FERROFS_ROOT/tests/vm/send_random.py" "${SEND_RANDOM_SEED:-1}" "${SEND_RANDOM_ROUNDS:-6}" "$MNT" "btrfs:$BTR/rx" \
  "ferrofs:/tmp/t69-tmpfs/rx" "ferrofs:/tmp/t69-ext4/rx" "ferrofs:$MNT/rx" ||
  { fail send-random-driver; dmesg | grep -i ferrofs | tail -5; }
# The hard cases of incremental send, one scripted scenario each
# (send_cases.py), received by btrfs onto btrfs and by ferrofs onto ext4.
mkdir -p $BTR/cases /tmp/t69-ext4/cases
python3 "$FERROFS_ROOT/tests/vm/send_cases.py" "$MNT" "btrfs:$BTR/cases" "ferrofs:/tmp/t69-ext4/cases" ||
  { fail send-cases-driver; dmesg | grep -i ferrofs | tail -5; }
umount $BTR
umount /tmp/t69-ext4
umount "$MNT"
check send-random-fsck-clean fsck.ferrofs -n "$DEV1"

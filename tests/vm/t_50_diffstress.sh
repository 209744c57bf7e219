# Differential stress against ext4: the same seeded operations on both, the
# same outcomes and trees; then four processes at once, each with its own
# sequence, while a fifth snapshots the filesystem and reads each snapshot
# back unchanged; then fsck and a remount, and the trees again.
. "$(dirname "$0")/lib.sh"
REF=/tmp/ferrofs-ref
py=$FERROFS_ROOT/tests/vm/diffstress.py
mkfs.ferrofs -q -f "$DEV1"
mkfs.ext4 -q -F "$DEV2"
mkdir -p "$REF"
mount -t ferrofs "$DEV1" "$MNT" && mount -t ext4 "$DEV2" "$REF" || { fail diffstress-mount; exit 0; }
for seed in ${FERROFS_DIFF_SEEDS:-1 2 3}; do
  mkdir "$MNT/s$seed" "$REF/s$seed"
  check "diffstress-seed-$seed" python3 "$py" "$seed" "${FERROFS_DIFF_OPS:-400}" "$MNT/s$seed" "$REF/s$seed"
done
mkdir "$MNT/par" "$REF/par"
check diffstress-4-processes-with-snapshots python3 "$py" 7 "${FERROFS_DIFF_OPS:-400}" "$MNT/par" "$REF/par" --procs 4 --snapshots "$MNT" "$MNT/snaps"
umount "$MNT"
check diffstress-fsck-clean fsck.ferrofs -n "$DEV1"
mount -t ferrofs "$DEV1" "$MNT"
check diffstress-same-after-remount python3 "$py" 0 0 "$MNT" "$REF" --compare-only
umount "$MNT" "$REF"

# Hostile images in the kernel: a seeded sample of the field edits the
# userspace campaign (rust/core/tests/hostile.rs) makes, from the list
# `ferrofs debug fields` prints, each applied to a copy of an image holding
# files of every type, mounted through a loop device and driven through the
# user's operations. Every case must end in success or a clean error: a
# kernel report (oops, BUG, WARN, KASAN, soft lockup, hung task) fails it.
#
# FERROFS_HOSTILE_VM=N sets the sample size (make check: 40; the full
# campaign: scripts/vm -- env FERROFS_HOSTILE_VM=400 bash tests/vm/t_22_hostile.sh),
# FERROFS_SEED the sample.
. "$(dirname "$0")/lib.sh"
count=${FERROFS_HOSTILE_VM:-40}
seed=${FERROFS_SEED:-22}
work=$(mktemp -d)
base=$work/base.img
img=$work/case.img

# The base image, made through the kernel: every file type, a sparse file
# with xattrs (one spread over several items), a hard link, a long symlink,
# and a directory with enough long names for a two-level fs tree.
truncate -s 16M "$base"
mkfs.ferrofs -q -f "$base"
loop=$(losetup -f --show "$base")
mount -t ferrofs "$loop" "$MNT" || { fail hostile-base-mount; exit 0; }
mkdir -p "$MNT/d/sub" "$MNT/e"
head -c 9000 /dev/urandom >"$MNT/data"
dd if=/dev/urandom of="$MNT/data" bs=1 count=5000 seek=65536 conv=notrunc status=none
setfattr -n user.small -v v "$MNT/data"
setfattr -n user.big -v "$(head -c 3000 /dev/zero | tr '\0' x)" "$MNT/data"
ln "$MNT/data" "$MNT/d/data-link"
ln -s d/sub "$MNT/ln"
ln -s "$(head -c 3000 /dev/zero | tr '\0' z)" "$MNT/longln"
mkfifo "$MNT/fifo"
mknod "$MNT/chr" c 1 3
echo inner >"$MNT/d/inner"
letters=abcdefghijklmnopqrstuvwx
for i in $(seq 0 23); do touch "$MNT/d/$(printf "%$((200 + i))s" "" | tr ' ' "${letters:$i:1}")"; done
umount "$MNT"
losetup -d "$loop"

# The cases: one line per (field, value), sampled with a fixed seed.
ferrofs debug fields "$base" | awk '{ for (i = 3; i <= NF; i++) print $1, $i }' >"$work/all"
shuf -n "$count" --random-source=<(yes "$seed") "$work/all" >"$work/sample"
total=$(wc -l <"$work/all")

# The cases, in one process (tests/vm/hostile.py): edit, loop, mount, the
# user's operations, umount, fsck, and the kernel log scanned after each.
python3 "$FERROFS_ROOT/tests/vm/hostile.py" "$base" "$work" "$MNT" <"$work/sample" | tee "$work/out"
read -r n mounted bad < <(sed -n 's/^hostile: \([0-9]*\) cases, \([0-9]*\) mounted, \([0-9]*\) with.*/\1 \2 \3/p' "$work/out")
echo "hostile images in the VM: ${n:-0} cases of $total (seed $seed), ${mounted:-0} mounted, ${bad:-0} with a kernel report"
check hostile-vm-cases-ran test "${n:-0}" -ge "$count" -a "${mounted:-0}" -gt 0
check hostile-vm-no-kernel-report test "${bad:-1}" -eq 0
rm -rf "$work"

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
truncate -s 32M "$base"
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

# The user's operations on a mounted image; errors are expected, reports not.
drive() {
  stat -f "$MNT" >/dev/null
  ls -laR "$MNT" >/dev/null
  find "$MNT" -maxdepth 3 2>/dev/null | head -64 | while read -r f; do
    stat "$f" >/dev/null
    if [ -L "$f" ]; then readlink "$f" >/dev/null; continue; fi
    if [ -f "$f" ]; then
      head -c 70000 "$f" >/dev/null
      xfs_io -r -c 'fiemap' -c 'seek -d 0' -c 'seek -h 0' "$f" >/dev/null
    fi
    getfattr -d "$f" >/dev/null
  done
  echo new >"$MNT/new" && setfattr -n user.n -v x "$MNT/new"
  dd if=/dev/zero of="$MNT/data" bs=1 count=6000 seek=4096 conv=notrunc status=none
  truncate -s 3000 "$MNT/data"
  mv "$MNT/e" "$MNT/d/e"
  mv "$MNT/ln" "$MNT/ln2"
  rm -f "$MNT/d/inner" "$MNT/fifo"
  xfs_io -c fsync "$MNT/new"
  sync
} 2>/dev/null

report() { dmesg | grep -E 'BUG:|WARNING:|Oops|KASAN|soft lockup|blocked for more than|panicked|Call Trace' | head -5; }

n=0 mounted=0 bad=0
while read -r spec value; do
  cp --sparse=always "$base" "$img"
  if ! ferrofs debug set "$img" "$spec" "$value" 2>"$work/err"; then
    fail "hostile-vm-edit $spec=$value" "$(cat "$work/err")"
    continue
  fi
  n=$((n + 1))
  mark_dmesg
  loop=$(losetup -f --show "$img")
  if mount -t ferrofs "$loop" "$MNT" 2>/dev/null; then
    mounted=$((mounted + 1))
    timeout 120 bash -c "$(declare -f drive); MNT=$MNT drive"
    umount "$MNT" 2>/dev/null || umount -l "$MNT"
  fi
  losetup -d "$loop"
  timeout 120 fsck.ferrofs -n "$img" >/dev/null 2>&1
  r=$(report)
  if [ -n "$r" ]; then
    bad=$((bad + 1))
    fail "hostile-vm $spec=$value" "$r"
  fi
done <"$work/sample"
echo "hostile images in the VM: $n cases of $total (seed $seed), $mounted mounted, $bad with a kernel report"
check hostile-vm-cases-ran test "$n" -ge "$count" -a "$mounted" -gt 0
check hostile-vm-no-kernel-report test "$bad" -eq 0
rm -rf "$work"

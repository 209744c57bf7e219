#!/usr/bin/env bash
# Runs inside the test VM (started by scripts/fstests through scripts/vm):
# prepares the guest for fstests, makes the TEST filesystem, runs ./check
# over a writable overlay of the fstests tree and leaves everything in the
# results directory, which is on the host. A test that runs past
# TEST_TIMEOUT seconds is killed and recorded as timed out, and ./check
# goes on with the next one; only a guest that cannot get past the test
# (a task stuck in the kernel) ends the run.
#
#   guest.sh RESULTS_DIR FSTESTS_DIR FSTYP TEST_TIMEOUT CHECK_ARGS...
#
# Exits 0 when ./check ran to its end, whatever the tests' outcomes; the
# outcome is in RESULTS_DIR (check.out, results/, complete).
set -uo pipefail
results=$1 fstests=$2 fs=$3 test_timeout=$4
shift 4
here=$(cd "$(dirname "$0")" && pwd)

die() { echo "fstests-guest: $*" >&2; exit 2; }

TEST_DEV=/dev/vdb
SCRATCH_DEV=/dev/vdc
work=/run/fstests
TEST_DIR=$work/test
SCRATCH_MNT=$work/scratch
tree=$work/tree

# The guest has no udevd (dmsetup would wait for cookies forever) and no
# /dev/fd (bash process substitution and several tests need it).
export DM_DISABLE_UDEV=1
[ -e /dev/fd ] || ln -s /proc/self/fd /dev/fd

# The debug test kernel has no System V IPC, so libdevmapper warns on every
# dmsetup call ("Kernel not configured for semaphores") and the warning
# lands in the output of every dm-flakey test. A dmsetup first on PATH
# drops that one line and keeps everything else, and the exit status.
real_dmsetup=$(type -P dmsetup) || die "dmsetup not found"
mkdir -p "$work/bin"
cat >"$work/bin/dmsetup" <<WRAPPER
#!/bin/bash
{ "$real_dmsetup" "\$@" 2>&1 1>&3 3>&- | grep -v '^Kernel not configured for semaphores' >&2; } 3>&1
exit \${PIPESTATUS[0]}
WRAPPER
chmod +x "$work/bin/dmsetup"

# Each test in its own process group, so that one running too long can be
# killed with everything it started. ./check runs each test in a systemd
# scope when `systemd-run --scope` works; the guest has no systemd, so
# stand-ins for the three commands check uses provide just that: a scope
# is a new session (and process group) for the test, recorded in $scopes
# as "<pid> <start time>" while it runs; stopping it kills what is left of
# the group (as systemd does; check stops each scope after its test). A
# test the watchdog killed (marked <unit>.timedout) never ran its cleanup
# trap, so stopping its scope also unmounts what it left mounted from dm
# and loop devices and removes those devices: else they would hold
# SCRATCH_DEV and fail every later test. Any other use of systemctl
# answers that systemd is not running, so tests that need systemd are
# "not run" as before.
scopes=$work/scopes
mkdir -p "$scopes"
cat >"$work/bin/systemd-run" <<STANDIN
#!/bin/bash
# ferrofs fstests runner's stand-in: systemd-run [--quiet] --unit UNIT --scope CMD...
unit=
while ((\$#)); do
  case \$1 in
    --quiet) shift ;;
    --unit) unit=\$2; shift 2 ;;
    --scope) shift; break ;;
    *) echo "systemd-run: only --scope is supported here (no systemd in the test VM)" >&2; exit 1 ;;
  esac
done
[ -n "\$unit" ] && ((\$#)) || { echo "systemd-run: usage: systemd-run --unit UNIT --scope CMD..." >&2; exit 1; }
# A background job would get /dev/null as stdin: keep the caller's.
exec 3<&0
setsid "\$@" <&3 3<&- &
pid=\$!
exec 3<&-
echo "\$pid \$(date +%s)" >"$scopes/\$unit.active"
wait "\$pid"
status=\$?
mv -f "$scopes/\$unit.active" "$scopes/\$unit.done" 2>/dev/null
exit "\$status"
STANDIN
cat >"$work/bin/systemctl" <<STANDIN
#!/bin/bash
# ferrofs fstests runner's stand-in: systemctl reset-failed|stop UNIT for
# the scopes of its systemd-run; anything else finds no systemd.
case \${1:-} in
  reset-failed|stop)
    for f in "$scopes/\${2:-}.active" "$scopes/\${2:-}.done"; do
      [ -f "\$f" ] || continue
      read -r pid _ <"\$f"
      [ "\$1" = stop ] && kill -KILL -- "-\$pid" 2>/dev/null
      rm -f "\$f"
    done
    if [ "\$1" = stop ] && [ -f "$scopes/\${2:-}.timedout" ]; then
      awk '\$1 ~ "^/dev/(mapper/|dm-|loop)" { print \$2 }' /proc/mounts | sort -r |
        while read -r m; do umount "\$m" || umount -l "\$m"; done
      "$real_dmsetup" remove_all >/dev/null 2>&1
      losetup -D 2>/dev/null
    fi
    rm -f "$scopes/\${2:-}.timedout"
    exit 0 ;;
  *) echo "systemctl: systemd is not running in the test VM" >&2; exit 1 ;;
esac
STANDIN
cat >"$work/bin/systemd-escape" <<'STANDIN'
#!/bin/bash
# ferrofs fstests runner's stand-in: a unit name from one string.
(($# == 1)) || { echo "systemd-escape: one plain string only here" >&2; exit 1; }
printf '%s\n' "$1" | sed -e 's|^/*||' -e 's|/|-|g' -e 's|[^A-Za-z0-9:_.-]|_|g'
STANDIN
chmod +x "$work/bin/systemd-run" "$work/bin/systemctl" "$work/bin/systemd-escape"
export PATH=$work/bin:$PATH

# fstests' users and group. The guest's /etc is a throwaway overlay of the
# host's (scripts/vm), so they are made here on every boot and the host's
# account files are never touched. /etc/shadow is a file bind-mounted by
# the harness, which useradd cannot replace by rename, so the entries are
# written directly.
add_group() { getent group "$1" >/dev/null || groupadd "$1" || die "groupadd $1 failed"; }
add_user() { # name [group]
  getent passwd "$1" >/dev/null && return 0
  local uid gid
  uid=$(awk -F: '$3 >= 20000 && $3 > max { max = $3 } END { print (max ? max + 1 : 20000) }' /etc/passwd)
  if [ -n "${2:-}" ]; then gid=$(getent group "$2" | cut -d: -f3); else gid=$uid; echo "$1:x:$gid:" >>/etc/group; fi
  echo "$1:x:$uid:$gid::/nonexistent:/bin/bash" >>/etc/passwd
  echo "$1:*:19000:0:99999:7:::" >>/etc/shadow
}
add_group fsgqa
add_user fsgqa fsgqa
add_user fsgqa2
add_user 123456-fsgqa

# A writable view of the fstests tree: ./check writes core files and
# scratch state into its own directory, and the tree on the host stays as
# its owner built it.
mkdir -p "$work/upper" "$work/ovl-work" "$tree" "$TEST_DIR" "$SCRATCH_MNT"
mount -t overlay fstests-tree -o "lowerdir=$fstests,upperdir=$work/upper,workdir=$work/ovl-work" "$tree" ||
  die "cannot overlay $fstests"

# Filesystems fstests' common/rc does not know get their per-filesystem
# support (mkfs of a given size or block size) from tests/fstests/<fs>.rc,
# sourced at the end of common/rc in the overlay only.
hooks=$here/$fs.rc
if [ -f "$hooks" ]; then
  printf '\n# Added by the ferrofs fstests runner, in its overlay only.\nif [ -f "%s" ]; then . "%s"; fi\n' "$hooks" "$hooks" >>"$tree/common/rc"
fi

case $fs in
  ferrofs) mkfs_test=(mkfs.ferrofs -f -q) mkfs_options=-f ;;
  ext4) mkfs_test=(mkfs.ext4 -F -q) mkfs_options= ;;
  btrfs) mkfs_test=(mkfs.btrfs -f -q) mkfs_options= ;;
  *) die "unknown filesystem $fs" ;;
esac

mkdir -p "$results/results"
sed -e "s|@FSTYP@|$fs|" -e "s|@TEST_DEV@|$TEST_DEV|" -e "s|@TEST_DIR@|$TEST_DIR|" \
  -e "s|@SCRATCH_DEV@|$SCRATCH_DEV|" -e "s|@SCRATCH_MNT@|$SCRATCH_MNT|" \
  -e "s|@RESULT_BASE@|$results/results|" -e "s|@MKFS_OPTIONS@|$mkfs_options|" \
  -e "s|@MOUNT_OPTIONS@||" "$here/local.config.in" >"$results/local.config"
export HOST_OPTIONS=$results/local.config

"${mkfs_test[@]}" "$TEST_DEV" >"$results/mkfs-test.log" 2>&1 || die "mkfs of $TEST_DEV failed: $(cat "$results/mkfs-test.log")"

# The watchdog, every 10 s. A test (its scope) running past TEST_TIMEOUT
# seconds is timed out: its name goes to timeouts.txt, its processes, the
# blocked tasks (sysrq w) and the kernel log since the test began to
# timeouts/<test>.txt, and it is killed with SIGKILL, its process group
# and every process descended from it (fsstress, for one, makes a group of
# its own). SIGKILL, not SIGTERM: a test's TERM trap runs its cleanup and
# exits with its status, which many tests set to 0 at the start, so a
# killed test would pass. ./check then records it as failed (exit status
# 137) and goes on. The run ends only when the guest cannot get past a
# test: ./check still on the same test TEST_TIMEOUT seconds after the kill
# (a task stuck in the kernel cannot be killed), or, with no scope to kill
# (an fstests without systemd scope support, or ./check itself stuck),
# 2 x TEST_TIMEOUT after the test began. Then the test's name and the
# kernel log go to hung and hung-dmesg.txt and the VM is powered off.
descendants() { # pid: it and every process descended from it
  ps -eo pid=,ppid= 2>/dev/null | awk -v root="$1" '
    { parent[$1] = $2 }
    END { for (p in parent) { q = p; while (q in parent && q != root && q > 1) q = parent[q]; if (q == root) print p } }'
}
kill_tree() { # pid
  local pid=$1 round p
  # Twice, for children forked in between; each listing comes before the
  # kill, as a child orphaned by its parent's death is no longer traceable.
  for round in 1 2; do
    for p in $(descendants "$pid"); do kill -KILL "$p" 2>/dev/null; done
    kill -KILL -- "-$pid" 2>/dev/null
    sleep 1
  done
}
time_out() { # test scope-file
  local t=$1 f=$2 pid start log
  read -r pid start <"$f" || return 0
  log=$results/timeouts/${t//\//-}.txt
  mkdir -p "$results/timeouts"
  echo "$t $test_timeout" >>"$results/timeouts.txt"
  : >"${f%.active}.timedout"
  echo "fstests-guest: $t still running after ${test_timeout}s; killing it (process group $pid) and going on" >&2
  [ -w /proc/sysrq-trigger ] && echo w >/proc/sysrq-trigger
  {
    echo "# $t ran past ${test_timeout}s and was killed; its processes then:"
    ps -o pid,pgid,stat,etime,wchan:32,args -p "$(descendants "$pid" | paste -sd, -)" 2>/dev/null
    echo "# the kernel log since the test began (sysrq w: blocked tasks):"
    # check writes "run fstests <test> at <time>" to the log at each start.
    dmesg | awk -v mark="run fstests $t at" 'index($0, mark) { n = 0 } { line[n++] = $0 } END { for (i = 0; i < n; i++) print line[i] }' | tail -n 400
  } >"$log" 2>&1
  kill_tree "$pid"
  sync
}
watchdog() {
  local last='' since=$SECONDS killed_at='' cur f name now start
  while sleep 10; do
    cur=$(grep -oE '^[a-z0-9]+/[0-9]+' "$results/check.out" 2>/dev/null | tail -n1)
    if [ "$cur" != "$last" ]; then last=$cur since=$SECONDS killed_at=''; continue; fi
    [ -n "$cur" ] || continue
    now=$(date +%s)
    for f in "$scopes"/*.active; do
      [ -f "$f" ] || continue
      read -r _ start <"$f" 2>/dev/null || continue
      if ((now - start > test_timeout)) && [ -z "$killed_at" ]; then
        time_out "$cur" "$f"
        killed_at=$SECONDS
      fi
    done
    if [ -n "$killed_at" ]; then
      ((SECONDS - killed_at > test_timeout)) || continue
      name="$cur (killed after ${test_timeout}s, yet still running ${test_timeout}s later)"
    else
      ((SECONDS - since > 2 * test_timeout)) || continue
      name="$cur (no scope to kill; ./check on it for over $((2 * test_timeout))s)"
    fi
    echo "$name" >"$results/hung"
    [ -w /proc/sysrq-trigger ] && echo w >/proc/sysrq-trigger
    dmesg >"$results/hung-dmesg.txt"
    sync
    echo "fstests-guest: $name: the guest is wedged; powering off" >&2
    busybox poweroff -f
  done
}
watchdog &
watchdog_pid=$!

excludes=(-E "$here/exclude")
[ -f "$here/exclude.$fs" ] && excludes+=(-E "$here/exclude.$fs")
cd "$tree" || die "cannot cd to $tree"
echo "fstests-guest: ./check ${excludes[*]} $*" >&2
./check "${excludes[@]}" "$@" 2>&1 | tee "$results/check.out"
status=${PIPESTATUS[0]}

kill "$watchdog_pid" 2>/dev/null
dmesg >"$results/dmesg.txt"
echo "$status" >"$results/complete"
mountpoint -q "$TEST_DIR" && umount "$TEST_DIR"
mountpoint -q "$SCRATCH_MNT" && umount "$SCRATCH_MNT"
exit 0

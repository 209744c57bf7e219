#!/usr/bin/env bash
# `make run`: a short ferrofs demo inside the test VM, each step shown.
set -e
step() { printf '\n$ %s\n' "$*"; "$@"; }
step mkfs.ferrofs -f -L demo /dev/vdb
step mount -t ferrofs /dev/vdb /mnt
step ls -la /mnt
step stat -f /mnt
step umount /mnt
step fsck.ferrofs -n /dev/vdb
step rmmod ferrofs

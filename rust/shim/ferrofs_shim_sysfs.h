/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Shim for /sys/fs/ferrofs: the kobject plumbing of the module's directory
 * and of one directory per mounted device, whose files' text Rust writes.
 * Included by ferrofs_shim.h; implemented in sysfs_shim.c.
 */
#ifndef FERROFS_SHIM_SYSFS_H
#define FERROFS_SHIM_SYSFS_H

#include <linux/types.h>

/* /sys/fs/ferrofs itself, from module init to module exit. */
int ferrofs_sysfs_init(void);
void ferrofs_sysfs_exit(void);

/*
 * /sys/fs/ferrofs/@name/ with the read-only files FERROFS_SYSFS_FILES
 * names; reading file number i calls @show(@owner, i, buf, PAGE_SIZE),
 * which fills buf and returns the length or a negative errno.
 * Returns NULL or an ERR_PTR on failure.
 */
struct ferrofs_sysfs;
struct ferrofs_sysfs *ferrofs_sysfs_add(const char *name, void *owner,
					 ssize_t (*show)(void *owner, unsigned int file, char *buf, size_t len));
/*
 * Removes the directory; on return no @show call is running or will start,
 * so @owner may go. Must not be called with a lock a @show call takes.
 */
void ferrofs_sysfs_remove(struct ferrofs_sysfs *dir);

/* File numbers passed to @show. */
extern const unsigned int FERROFS_SYSFS_FSYNC_STATS;
extern const unsigned int FERROFS_SYSFS_READ_CALLS;

#endif

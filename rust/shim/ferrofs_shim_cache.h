/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Shim for the metadata node cache: the memory it is sized from, the lock
 * around a mounted core (with the try-lock reclaim needs and the downgrade
 * a commit's writes use), and a shrinker
 * per mount. Included by ferrofs_shim.h; implemented in cache_shim.c.
 */
#ifndef FERROFS_SHIM_CACHE_H
#define FERROFS_SHIM_CACHE_H

#include <linux/mutex.h>
#include <linux/rwsem.h>
#include <linux/fs.h>

/* Pages of RAM the kernel manages (totalram_pages). */
unsigned long ferrofs_totalram_pages(void);

/*
 * The core lock: one lockdep class for every mount's core. @rw is held for
 * write by calls that may change the core, for read by calls that only
 * read its cached nodes. Every writer holds @writers first, for as long as
 * it holds @rw for write; a commit downgrades @rw to read for its writes
 * while it keeps @writers, so readers go on and no writer gets in, then
 * regains @rw for write. The try-locks return true when the lock is now
 * held; they never sleep.
 */
struct ferrofs_core_lock {
	struct mutex writers;
	struct rw_semaphore rw;
};

void ferrofs_core_lock_init(struct ferrofs_core_lock *l);
void ferrofs_core_lock_write(struct ferrofs_core_lock *l);
bool ferrofs_core_trylock_write(struct ferrofs_core_lock *l);
void ferrofs_core_unlock_write(struct ferrofs_core_lock *l);
/* Held for write: now @rw for read, @writers still held. */
void ferrofs_core_downgrade(struct ferrofs_core_lock *l);
/* Downgraded: now @rw for write again. */
void ferrofs_core_regain(struct ferrofs_core_lock *l);
/* Downgraded: releases both. */
void ferrofs_core_unlock_downgraded(struct ferrofs_core_lock *l);
void ferrofs_core_lock_read(struct ferrofs_core_lock *l);
bool ferrofs_core_trylock_read(struct ferrofs_core_lock *l);
void ferrofs_core_unlock_read(struct ferrofs_core_lock *l);

/*
 * A registered shrinker over one mount's cache. @count returns how many
 * objects could be freed, without sleeping; @scan frees up to @nr of them
 * and returns how many went, or a negative value when it cannot make
 * progress now (its lock is taken): reclaim then stops asking it.
 */
struct ferrofs_shrinker;
struct ferrofs_shrinker *ferrofs_shrinker_new(struct super_block *sb,
					      unsigned long (*count)(struct super_block *sb),
					      long (*scan)(struct super_block *sb, unsigned long nr));
/* Unregisters, waiting for callbacks in progress, and frees; NULL is ignored. */
void ferrofs_shrinker_free(struct ferrofs_shrinker *s);

#endif /* FERROFS_SHIM_CACHE_H */

/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Shim for the metadata node cache: the memory it is sized from, the lock
 * around a mounted core (with the try-lock reclaim needs), and a shrinker
 * per mount. Included by ferrofs_shim.h; implemented in cache_shim.c.
 */
#ifndef FERROFS_SHIM_CACHE_H
#define FERROFS_SHIM_CACHE_H

#include <linux/mutex.h>
#include <linux/fs.h>

/* Pages of RAM the kernel manages (totalram_pages). */
unsigned long ferrofs_totalram_pages(void);

/* The core lock: one lockdep class for every mount's core. */
void ferrofs_core_mutex_init(struct mutex *m);
void ferrofs_mutex_lock(struct mutex *m);
/* True when the lock was free and is now held; never sleeps. */
bool ferrofs_mutex_trylock(struct mutex *m);
void ferrofs_mutex_unlock(struct mutex *m);

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

/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Shim for the metadata node cache: the memory it is sized from, the lock
 * around a mounted core (with the try-lock reclaim needs and the downgrade
 * a commit's writes use), the sleeping gates of the flush group, and a shrinker
 * per mount. Included by ferrofs_shim.h; implemented in cache_shim.c.
 */
#ifndef FERROFS_SHIM_CACHE_H
#define FERROFS_SHIM_CACHE_H

#include <linux/mutex.h>
#include <linux/rwsem.h>
#include <linux/semaphore.h>
#include <linux/lockdep.h>
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
 * A sleeping lock held across device I/O (the flush group's gate around
 * the write and the flush of a batch of fsync records): a semaphore,
 * which never spins on its holder as a mutex does, so a waiter gives its
 * CPU to the tasks that would otherwise wait for one; lockdep sees it as a
 * lock all the same.
 */
struct ferrofs_gate {
	struct semaphore sem;
#ifdef CONFIG_DEBUG_LOCK_ALLOC
	struct lockdep_map dep_map;
#endif
};

void ferrofs_gate_init(struct ferrofs_gate *g);
void ferrofs_gate_enter(struct ferrofs_gate *g);
void ferrofs_gate_leave(struct ferrofs_gate *g);

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

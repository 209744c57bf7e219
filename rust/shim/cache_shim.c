// SPDX-License-Identifier: GPL-2.0
/*
 * The node cache's kernel helpers (see ferrofs_shim_cache.h): total RAM,
 * the flush group's sleeping gate, the core lock (a writers' mutex over a
 * reader-writer semaphore, with try-locks and a downgrade for a commit's
 * writes), and the shrinker that trampolines into the Rust callbacks with
 * the mount's super_block.
 */
#include <linux/mm.h>
#include <linux/mutex.h>
#include <linux/rwsem.h>
#include <linux/semaphore.h>
#include <linux/shrinker.h>
#include <linux/slab.h>
#include "ferrofs_shim.h"

unsigned long ferrofs_totalram_pages(void)
{
	return totalram_pages();
}

void ferrofs_gate_init(struct ferrofs_gate *g)
{
	sema_init(&g->sem, 1);
#ifdef CONFIG_DEBUG_LOCK_ALLOC
	{
		static struct lock_class_key key;

		lockdep_init_map(&g->dep_map, "ferrofs_fsync_gate", &key, 0);
	}
#endif
}

void ferrofs_core_lock_init(struct ferrofs_core_lock *l)
{
	static struct lock_class_key writers_key, rw_key;

	__mutex_init(&l->writers, "ferrofs_core_writers", &writers_key);
	__init_rwsem(&l->rw, "ferrofs_core", &rw_key);
}

void ferrofs_gate_enter(struct ferrofs_gate *g)
{
#ifdef CONFIG_DEBUG_LOCK_ALLOC
	lock_map_acquire(&g->dep_map);
#endif
	down(&g->sem);
}

void ferrofs_gate_leave(struct ferrofs_gate *g)
{
#ifdef CONFIG_DEBUG_LOCK_ALLOC
	lock_map_release(&g->dep_map);
#endif
	up(&g->sem);
}

void ferrofs_core_lock_write(struct ferrofs_core_lock *l)
{
	mutex_lock(&l->writers);
	down_write(&l->rw);
}

bool ferrofs_core_trylock_write(struct ferrofs_core_lock *l)
{
	if (!mutex_trylock(&l->writers))
		return false;
	if (down_write_trylock(&l->rw))
		return true;
	mutex_unlock(&l->writers);
	return false;
}

void ferrofs_core_unlock_write(struct ferrofs_core_lock *l)
{
	up_write(&l->rw);
	mutex_unlock(&l->writers);
}

void ferrofs_core_downgrade(struct ferrofs_core_lock *l)
{
	downgrade_write(&l->rw);
}

void ferrofs_core_regain(struct ferrofs_core_lock *l)
{
	/* No writer gets in between: this task still holds @writers. */
	up_read(&l->rw);
	down_write(&l->rw);
}

void ferrofs_core_unlock_downgraded(struct ferrofs_core_lock *l)
{
	up_read(&l->rw);
	mutex_unlock(&l->writers);
}

void ferrofs_core_lock_read(struct ferrofs_core_lock *l)
{
	down_read(&l->rw);
}

bool ferrofs_core_trylock_read(struct ferrofs_core_lock *l)
{
	return down_read_trylock(&l->rw);
}

void ferrofs_core_unlock_read(struct ferrofs_core_lock *l)
{
	up_read(&l->rw);
}

struct ferrofs_shrinker {
	struct shrinker *shrinker;
	struct super_block *sb;
	unsigned long (*count)(struct super_block *sb);
	long (*scan)(struct super_block *sb, unsigned long nr);
};

static unsigned long ferrofs_shrinker_count(struct shrinker *shrinker, struct shrink_control *sc)
{
	struct ferrofs_shrinker *s = shrinker->private_data;
	unsigned long n = s->count(s->sb);

	return n ? n : SHRINK_EMPTY;
}

static unsigned long ferrofs_shrinker_scan(struct shrinker *shrinker, struct shrink_control *sc)
{
	struct ferrofs_shrinker *s = shrinker->private_data;
	long freed = s->scan(s->sb, sc->nr_to_scan);

	return freed < 0 ? SHRINK_STOP : freed;
}

struct ferrofs_shrinker *ferrofs_shrinker_new(struct super_block *sb,
					      unsigned long (*count)(struct super_block *sb),
					      long (*scan)(struct super_block *sb, unsigned long nr))
{
	struct ferrofs_shrinker *s = kzalloc(sizeof(*s), GFP_KERNEL);

	if (!s)
		return NULL;
	s->shrinker = shrinker_alloc(0, "ferrofs-nodes:%s", sb->s_id);
	if (!s->shrinker) {
		kfree(s);
		return NULL;
	}
	s->sb = sb;
	s->count = count;
	s->scan = scan;
	s->shrinker->count_objects = ferrofs_shrinker_count;
	s->shrinker->scan_objects = ferrofs_shrinker_scan;
	/* Dropped nodes cost a read each to get back. */
	s->shrinker->seeks = DEFAULT_SEEKS;
	s->shrinker->private_data = s;
	shrinker_register(s->shrinker);
	return s;
}

void ferrofs_shrinker_free(struct ferrofs_shrinker *s)
{
	if (!s)
		return;
	shrinker_free(s->shrinker);
	kfree(s);
}

// SPDX-License-Identifier: GPL-2.0
/*
 * The node cache's kernel helpers (see ferrofs_shim_cache.h): total RAM,
 * the core mutex with a try-lock, and the shrinker that trampolines into
 * the Rust callbacks with the mount's super_block.
 */
#include <linux/mm.h>
#include <linux/mutex.h>
#include <linux/shrinker.h>
#include <linux/slab.h>
#include "ferrofs_shim.h"

unsigned long ferrofs_totalram_pages(void)
{
	return totalram_pages();
}

void ferrofs_core_mutex_init(struct mutex *m)
{
	static struct lock_class_key key;

	__mutex_init(m, "ferrofs_core", &key);
}

void ferrofs_mutex_lock(struct mutex *m)
{
	mutex_lock(m);
}

bool ferrofs_mutex_trylock(struct mutex *m)
{
	return mutex_trylock(m);
}

void ferrofs_mutex_unlock(struct mutex *m)
{
	mutex_unlock(m);
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

// SPDX-License-Identifier: GPL-2.0
/*
 * Data I/O left in flight (see ferrofs_shim_dwrite.h): the bios of one
 * write, its buffer, and the per-mount count a flush waits on; and the
 * bios that read page-cache folios and end them. No filesystem logic
 * lives here.
 */
#include <linux/bio.h>
#include <linux/blkdev.h>
#include <linux/highmem.h>
#include <linux/pagemap.h>
#include <linux/refcount.h>
#include <linux/slab.h>
#include <linux/vmalloc.h>
#include <linux/wait.h>
#include "ferrofs_shim.h"
#include "shim_bio.h"

/*
 * Generations: every write belongs to the generation current when it was
 * submitted, and @in_gen counts the writes in flight of the current one and
 * of the one before it, by parity. A settle waits only for the writes
 * submitted before it: it closes the current generation (a new one starts
 * for later writes) and waits until that one has drained, so writes that
 * keep arriving never hold it up. A generation is closed only once the one
 * before it has drained, so its slot is empty when the next-but-one reuses
 * it, and a generation counts as drained once @gen is two past it.
 */
struct ferrofs_dwrites {
	refcount_t refs;
	/* Writes in flight and their bytes; changed under @idle's lock, so
	 * the last put, which takes that lock, runs after every wake-up. */
	atomic_t writes;
	atomic_long_t bytes;
	/* The current generation and the writes in flight by generation
	 * parity; changed under @idle's lock. */
	u64 gen;
	atomic_t in_gen[2];
	/* Set once by a failed bio, never cleared. */
	atomic_t failed;
	/* Hold generations (ferrofs_shim_dwrite.h): the current one, changed
	 * only under the core lock, and the I/O in flight by the parity of
	 * the generation each began in; dropped under @idle's lock, as
	 * @writes. */
	u64 hold_gen;
	atomic_t holds[2];
	wait_queue_head_t idle;
	/* In-place direct writes that have ended, and how many of them the
	 * last flush to complete covers (its sample of @overwrites_done taken
	 * before it was issued): a flush covers only writes ended by then. */
	atomic64_t overwrites_done;
	atomic64_t overwrites_flushed;
	/* In-place direct writes from before their block map is taken to
	 * their end; and the snapshots under way, each of which waits until
	 * none of those is left and meanwhile turns new ones away, so no
	 * write lands in a block a snapshot shares. */
	atomic_t overwrites_in_flight;
	atomic_t overwrite_gate;
};

/*
 * One write: @pending counts its bios plus one the submitter holds until
 * all are out, so the end runs once, after the last bio.
 */
struct ferrofs_dwrite {
	struct ferrofs_dwrites *t;
	u64 gen;
	unsigned int hold_slot;
	void *buf;
	size_t len;
	atomic_t pending;
};

struct ferrofs_dwrites *ferrofs_dwrites_new(void)
{
	struct ferrofs_dwrites *t = kzalloc(sizeof(*t), GFP_KERNEL);

	if (!t)
		return NULL;
	refcount_set(&t->refs, 1);
	init_waitqueue_head(&t->idle);
	return t;
}

struct ferrofs_dwrites *ferrofs_dwrites_get(struct ferrofs_dwrites *t)
{
	refcount_inc(&t->refs);
	return t;
}

void ferrofs_dwrites_put(struct ferrofs_dwrites *t)
{
	if (!refcount_dec_and_test(&t->refs))
		return;
	wait_event(t->idle, !atomic_read(&t->writes) && !atomic_read(&t->holds[0]) && !atomic_read(&t->holds[1]) &&
				    !atomic_read(&t->overwrites_in_flight));
	/* The last write's or read's wake-up is over once its lock is dropped. */
	spin_lock_irq(&t->idle.lock);
	spin_unlock_irq(&t->idle.lock);
	kfree(t);
}

bool ferrofs_dwrites_busy(struct ferrofs_dwrites *t)
{
	return atomic_read_acquire(&t->writes) != 0;
}

int ferrofs_dwrites_drain(struct ferrofs_dwrites *t)
{
	io_wait_event(t->idle, !atomic_read_acquire(&t->writes));
	return atomic_read(&t->failed) ? -EIO : 0;
}

/* Whether generation @n has no write in flight any more. */
static bool ferrofs_dwrites_drained(struct ferrofs_dwrites *t, u64 n)
{
	return READ_ONCE(t->gen) >= n + 2 || !atomic_read_acquire(&t->in_gen[n & 1]);
}

int ferrofs_dwrites_settle(struct ferrofs_dwrites *t)
{
	u64 n;

	for (;;) {
		spin_lock_irq(&t->idle.lock);
		n = t->gen;
		if (!atomic_read(&t->in_gen[(n + 1) & 1])) {
			/* The generation before has drained: close this one,
			 * unless it is empty too (nothing to wait for). */
			bool busy = atomic_read(&t->in_gen[n & 1]);

			if (busy)
				WRITE_ONCE(t->gen, n + 1);
			spin_unlock_irq(&t->idle.lock);
			if (!busy)
				goto settled;
			break;
		}
		spin_unlock_irq(&t->idle.lock);
		/* Another settle closed the generation before: it is older
		 * than this call, so wait for it, then close this one. */
		io_wait_event(t->idle, ferrofs_dwrites_drained(t, n - 1) || READ_ONCE(t->gen) != n);
	}
	io_wait_event(t->idle, ferrofs_dwrites_drained(t, n));
settled:
	return atomic_read(&t->failed) ? -EIO : 0;
}

void ferrofs_dwrites_throttle(struct ferrofs_dwrites *t, size_t max_bytes)
{
	io_wait_event(t->idle, atomic_long_read(&t->bytes) <= (long)max_bytes);
}

static void ferrofs_dwrite_put(struct ferrofs_dwrite *w)
{
	struct ferrofs_dwrites *t = w->t;
	unsigned long flags;

	if (!atomic_dec_and_test(&w->pending))
		return;
	/* kvfree defers a vmalloc'd buffer when called from a bio's end. */
	kvfree(w->buf);
	spin_lock_irqsave(&t->idle.lock, flags);
	atomic_long_sub(w->len, &t->bytes);
	atomic_dec_return_release(&t->in_gen[w->gen & 1]);
	atomic_dec_return_release(&t->holds[w->hold_slot]);
	atomic_dec_return_release(&t->writes);
	wake_up_locked(&t->idle);
	spin_unlock_irqrestore(&t->idle.lock, flags);
	kfree(w);
}

static void ferrofs_dwrite_end_io(struct bio *bio)
{
	struct ferrofs_dwrite *w = bio->bi_private;

	if (bio->bi_status)
		atomic_set(&w->t->failed, 1);
	bio_put(bio);
	ferrofs_dwrite_put(w);
}

static void ferrofs_dwrite_piece(struct super_block *sb, struct ferrofs_dwrite *w, u64 disk, char *p, size_t len)
{
	bool vmapped = is_vmalloc_addr(w->buf);

	while (len) {
		struct bio *bio = bio_alloc(sb->s_bdev, ferrofs_bio_pages(p, len), REQ_OP_WRITE, GFP_NOFS);
		size_t added;

		bio->bi_iter.bi_sector = disk >> SECTOR_SHIFT;
		added = ferrofs_bio_add_buf(bio, p, len, vmapped);
		if (!added) {
			bio_put(bio);
			atomic_set(&w->t->failed, 1);
			return;
		}
		bio->bi_private = w;
		bio->bi_end_io = ferrofs_dwrite_end_io;
		atomic_inc(&w->pending);
		submit_bio(bio);
		p += added;
		disk += added;
		len -= added;
	}
}

/* Whether every piece lies in @len bytes of the buffer and the device, in
 * whole sectors. */
static bool ferrofs_dwrite_pieces_ok(struct super_block *sb, size_t len, const struct ferrofs_dpiece *pieces, size_t n)
{
	u64 dev_bytes = bdev_nr_bytes(sb->s_bdev);
	size_t i;

	for (i = 0; i < n; i++) {
		const struct ferrofs_dpiece *pc = &pieces[i];

		if ((pc->disk | pc->from | pc->len) & (SECTOR_SIZE - 1))
			return false;
		if (pc->from > len || pc->len > len - pc->from)
			return false;
		if (pc->disk > dev_bytes || pc->len > dev_bytes - pc->disk)
			return false;
	}
	return true;
}

int ferrofs_dwrite_submit(struct super_block *sb, struct ferrofs_dwrites *t, void *buf, size_t len,
			  const struct ferrofs_dpiece *pieces, size_t n)
{
	struct ferrofs_dwrite *w;
	struct blk_plug plug;
	unsigned long flags;
	size_t i;
	int ret = 0;

	if (((unsigned long)buf & (SECTOR_SIZE - 1)) || !ferrofs_dwrite_pieces_ok(sb, len, pieces, n)) {
		kvfree(buf);
		return -EINVAL;
	}
	if (is_vmalloc_addr(buf))
		flush_kernel_vmap_range(buf, len);
	w = kmalloc(sizeof(*w), GFP_NOFS);
	if (!w) {
		for (i = 0; i < n && !ret; i++)
			ret = ferrofs_bdev_io(sb, pieces[i].disk, (char *)buf + pieces[i].from, pieces[i].len, true, false);
		kvfree(buf);
		return ret;
	}
	w->t = t;
	w->buf = buf;
	w->len = len;
	atomic_set(&w->pending, 1);
	spin_lock_irqsave(&t->idle.lock, flags);
	w->gen = t->gen;
	atomic_inc(&t->in_gen[w->gen & 1]);
	/* Counted before the call that maps the blocks into the file, so
	 * before anything can free them. */
	w->hold_slot = ferrofs_hold_enter(t);
	atomic_inc(&t->writes);
	atomic_long_add(len, &t->bytes);
	spin_unlock_irqrestore(&t->idle.lock, flags);
	blk_start_plug(&plug);
	for (i = 0; i < n; i++)
		ferrofs_dwrite_piece(sb, w, pieces[i].disk, (char *)buf + pieces[i].from, pieces[i].len);
	blk_finish_plug(&plug);
	ferrofs_dwrite_put(w);
	return 0;
}

/*
 * Lock-free: a count taken while the generation moves on lands in the slot
 * of a generation no older than the one read, as the generation moves on
 * only once that slot is empty, and the blocks freed before the count are
 * not the ones the caller maps after it (ferrofs_shim_dwrite.h).
 */
unsigned int ferrofs_hold_enter(struct ferrofs_dwrites *t)
{
	unsigned int slot = READ_ONCE(t->hold_gen) & 1;

	atomic_inc(&t->holds[slot]);
	return slot;
}

void ferrofs_hold_enter_slot(struct ferrofs_dwrites *t, unsigned int slot)
{
	atomic_inc(&t->holds[slot & 1]);
}

void ferrofs_hold_exit(struct ferrofs_dwrites *t, unsigned int slot)
{
	atomic_t *n = &t->holds[slot & 1];
	unsigned long flags;

	/* Not the last in its slot: no waiter needs waking for this one.
	 * (A successful atomic_add_unless is fully ordered, so a release: the
	 * I/O is over before the count is seen lower.) */
	if (atomic_add_unless(n, -1, 1))
		return;
	/* Under @idle's lock, as @writes: the last put runs after the wake-up. */
	spin_lock_irqsave(&t->idle.lock, flags);
	if (!atomic_dec_return_release(n))
		wake_up_locked(&t->idle);
	spin_unlock_irqrestore(&t->idle.lock, flags);
}

int ferrofs_hold_advance(struct ferrofs_dwrites *t)
{
	int begun = 0;

	if (!atomic_read_acquire(&t->holds[0]) && !atomic_read_acquire(&t->holds[1]))
		return -1;
	/* A generation begins once the one before the current has no I/O
	 * left; new counts go to that empty slot from then on. Twice at most:
	 * the slot found empty first is the current one after two. */
	while (begun < 2 && !atomic_read_acquire(&t->holds[(t->hold_gen + 1) & 1])) {
		WRITE_ONCE(t->hold_gen, t->hold_gen + 1);
		begun++;
	}
	return begun;
}

/*
 * A folio-read bio and what its end needs: the hold slot it counts in, and
 * how many bytes of its last folio to keep (the rest, past the end of
 * file, is zeroed once the data is in). The bio comes from
 * @ferrofs_fread_bios, whose front pad holds the rest, so a bio carries it
 * with no allocation of its own; it must be the last member (its inline
 * vectors follow it).
 */
struct ferrofs_fread {
	struct ferrofs_dwrites *t;
	unsigned int slot;
	size_t last_valid;
	struct bio bio;
};

static struct bio_set ferrofs_fread_bios;

int ferrofs_fread_init(void)
{
	return bioset_init(&ferrofs_fread_bios, BIO_POOL_SIZE, offsetof(struct ferrofs_fread, bio), BIOSET_NEED_BVECS);
}

void ferrofs_fread_exit(void)
{
	bioset_exit(&ferrofs_fread_bios);
}

static void ferrofs_fread_end(struct bio *bio)
{
	struct ferrofs_fread *r = container_of(bio, struct ferrofs_fread, bio);
	struct ferrofs_dwrites *t = r->t;
	unsigned int slot = r->slot;
	bool ok = !bio->bi_status;
	struct folio *last = NULL;
	struct folio_iter fi;

	bio_for_each_folio_all(fi, bio)
		last = fi.folio;
	bio_for_each_folio_all(fi, bio) {
		/* The last folio's bytes past the end of file are not known to
		 * be zeros on the device. */
		if (ok && fi.folio == last && r->last_valid < folio_size(last))
			folio_zero_segment(last, r->last_valid, folio_size(last));
		folio_end_read(fi.folio, ok);
	}
	bio_put(bio);
	ferrofs_hold_exit(t, slot);
}

size_t ferrofs_fread_submit(struct super_block *sb, struct ferrofs_dwrites *t, u64 disk, struct folio *const *folios,
			    size_t n, unsigned int slot, size_t last_valid)
{
	u64 dev_bytes = bdev_nr_bytes(sb->s_bdev);
	struct blk_plug plug;
	size_t done = 0;
	u64 bytes = 0;
	size_t i;

	for (i = 0; i < n; i++) {
		if (!folio_test_locked(folios[i]) || folio_test_uptodate(folios[i]))
			return 0;
		bytes += folio_size(folios[i]);
	}
	if ((disk & (SECTOR_SIZE - 1)) || disk > dev_bytes || bytes > dev_bytes - disk)
		return 0;
	blk_start_plug(&plug);
	while (done < n) {
		struct bio *bio = bio_alloc_bioset(sb->s_bdev, min_t(size_t, n - done, BIO_MAX_VECS), REQ_OP_READ, GFP_NOFS,
						   &ferrofs_fread_bios);
		struct ferrofs_fread *r = container_of(bio, struct ferrofs_fread, bio);

		bio->bi_iter.bi_sector = disk >> SECTOR_SHIFT;
		while (done < n && bio_add_folio(bio, folios[done], folio_size(folios[done]), 0)) {
			disk += folio_size(folios[done]);
			done++;
		}
		if (!bio->bi_vcnt) {
			bio_put(bio);
			break;
		}
		r->t = t;
		r->slot = slot & 1;
		/* Only the bio holding the caller's last folio trims it. */
		r->last_valid = done == n ? last_valid : SIZE_MAX;
		bio->bi_end_io = ferrofs_fread_end;
		ferrofs_hold_enter_slot(t, slot);
		submit_bio(bio);
	}
	blk_finish_plug(&plug);
	return done;
}

void ferrofs_overwrite_end(struct ferrofs_dwrites *t, bool written)
{
	unsigned long flags;

	if (written)
		atomic64_inc(&t->overwrites_done);
	/* Under @idle's lock, as @writes: the last put runs after the wake-up. */
	spin_lock_irqsave(&t->idle.lock, flags);
	if (!atomic_dec_return_release(&t->overwrites_in_flight))
		wake_up_locked(&t->idle);
	spin_unlock_irqrestore(&t->idle.lock, flags);
}

bool ferrofs_overwrite_begin(struct ferrofs_dwrites *t)
{
	atomic_inc(&t->overwrites_in_flight);
	/* Pairs with the barrier in ferrofs_overwrites_close: of a write and
	 * a snapshot starting together, at least one sees the other. */
	smp_mb__after_atomic();
	if (!atomic_read(&t->overwrite_gate))
		return true;
	ferrofs_overwrite_end(t, false);
	return false;
}

void ferrofs_overwrites_close(struct ferrofs_dwrites *t)
{
	atomic_inc(&t->overwrite_gate);
	smp_mb__after_atomic();
	io_wait_event(t->idle, !atomic_read_acquire(&t->overwrites_in_flight));
}

void ferrofs_overwrites_open(struct ferrofs_dwrites *t)
{
	atomic_dec(&t->overwrite_gate);
}

int ferrofs_dwrites_flush(struct super_block *sb, struct ferrofs_dwrites *t)
{
	s64 seen = atomic64_read(&t->overwrites_done), was;
	int ret;

	/* The sample is taken before the flush is issued. */
	smp_mb();
	ret = blkdev_issue_flush(sb->s_bdev);
	if (ret)
		return ret;
	was = atomic64_read(&t->overwrites_flushed);
	while (was < seen && !atomic64_try_cmpxchg(&t->overwrites_flushed, &was, seen))
		;
	return 0;
}

bool ferrofs_overwrites_unflushed(struct ferrofs_dwrites *t)
{
	return atomic64_read(&t->overwrites_done) > atomic64_read(&t->overwrites_flushed);
}

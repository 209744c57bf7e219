/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Writes of file data that run on after writeback returns: the bios of one
 * write are submitted together and the writer goes on; a per-mount tracker
 * counts the writes in flight, so that a flush can first wait for those
 * submitted before it (settle) and the adapter knows when freed blocks may
 * be reused.
 * Included by ferrofs_shim.h; implemented in dwrite_shim.c.
 */
#ifndef FERROFS_SHIM_DWRITE_H
#define FERROFS_SHIM_DWRITE_H

#include <linux/fs.h>

/* One piece of a data write: @len bytes from @from in its buffer, to byte
 * @disk of the device (all whole sectors). */
struct ferrofs_dpiece {
	u64 disk;
	size_t from;
	size_t len;
};

/* The writes in flight of one mounted filesystem; reference counted, the
 * last put waits for the writes to end before freeing. NULL: no memory. */
struct ferrofs_dwrites;
struct ferrofs_dwrites *ferrofs_dwrites_new(void);
struct ferrofs_dwrites *ferrofs_dwrites_get(struct ferrofs_dwrites *t);
void ferrofs_dwrites_put(struct ferrofs_dwrites *t);
/* Whether a write is in flight (an acquire: after false, every write
 * counted before has ended). */
bool ferrofs_dwrites_busy(struct ferrofs_dwrites *t);
/* Waits until every write submitted before the call has ended (later ones
 * may still be in flight): 0, or -EIO once any write ever failed (its
 * blocks may hold anything, so the filesystem must stop). */
int ferrofs_dwrites_settle(struct ferrofs_dwrites *t);
/* Waits until no write at all is in flight, later ones included (as
 * settle returns). */
int ferrofs_dwrites_drain(struct ferrofs_dwrites *t);
/* Waits until at most @max_bytes are in flight. */
void ferrofs_dwrites_throttle(struct ferrofs_dwrites *t, size_t max_bytes);
/*
 * Writes @n pieces of @buf (@len bytes from kvmalloc; the write takes it
 * over and frees it after its last bio, or before returning) and returns
 * without waiting, counted in @t until the last bio ended: 0, or a negative
 * errno when nothing was submitted (bad alignment or range). Short of
 * memory for its bookkeeping it writes and waits instead.
 */
int ferrofs_dwrite_submit(struct super_block *sb, struct ferrofs_dwrites *t, void *buf, size_t len,
			  const struct ferrofs_dpiece *pieces, size_t n);

#endif

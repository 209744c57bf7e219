/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Data I/O that runs on after its caller returns: writes of file data,
 * whose bios are submitted together while writeback goes on, and reads of
 * page-cache folios, which their bios end. A per-mount tracker counts
 * both: a flush first waits for the writes submitted before it (settle),
 * and the adapter knows when freed blocks may be reused (hold
 * generations).
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
/*
 * Hold generations: I/O outside the core lock on blocks mapped under it
 * (reads, in-place writes, data writes) is counted from before its blocks
 * are mapped (or, for a data write, before they can be freed) until it
 * ends, in the generation current when it began. ferrofs_hold_enter counts
 * one and returns its generation's slot; ferrofs_hold_enter_slot counts one
 * more in the slot of a count the caller holds (I/O that carries on an
 * earlier one's map); ferrofs_hold_exit ends one (any context).
 * Called under the core lock held for write only, ferrofs_hold_advance
 * returns -1 when no such I/O is in flight (every block kept back is
 * reusable); otherwise it begins a new generation for as long as every I/O
 * of the one before the current has ended, at most twice, and returns how
 * many it began (with each, the blocks freed before the generation that
 * just ended are reusable). Its loads are acquires: I/O seen ended is
 * over.
 */
unsigned int ferrofs_hold_enter(struct ferrofs_dwrites *t);
void ferrofs_hold_enter_slot(struct ferrofs_dwrites *t, unsigned int slot);
void ferrofs_hold_exit(struct ferrofs_dwrites *t, unsigned int slot);
int ferrofs_hold_advance(struct ferrofs_dwrites *t);
/*
 * Reads @n locked, not uptodate page-cache folios, consecutive on the
 * device from byte @disk, and returns without waiting: the end of each bio
 * ends its folios' read (folio_end_read: uptodate unless the I/O failed,
 * then unlocked), and each bio is counted in @t's hold slot @slot (which
 * the caller holds a count in) until then; the last put waits for them
 * too. Of the last folio only the first @last_valid bytes are kept: the
 * rest is zeroed once the read is in (the end of file lies in it; pass
 * the folio's size or more to keep it whole). Returns how many folios,
 * from the first, went out; the rest stay the caller's: none when a folio
 * is not locked or already uptodate, or the range is not whole sectors
 * within the device. The bios come from a pool made at module load
 * (ferrofs_fread_init; ferrofs_fread_exit at unload, once no mount is
 * left).
 */
size_t ferrofs_fread_submit(struct super_block *sb, struct ferrofs_dwrites *t, u64 disk, struct folio *const *folios,
			    size_t n, unsigned int slot, size_t last_valid);
int ferrofs_fread_init(void);
void ferrofs_fread_exit(void);
/*
 * In-place direct writes. Each one is counted from before its block map is
 * taken (ferrofs_overwrite_begin: false, and not counted, while a snapshot
 * is under way: the write then goes copy-on-write) to its end
 * (ferrofs_overwrite_end, from its bio's end for a queued one; @written
 * when its data reached the device). ferrofs_overwrites_close, for a
 * snapshot, turns new ones away and waits until none is left;
 * ferrofs_overwrites_open undoes it. ferrofs_dwrites_flush flushes the
 * device and records how many written ones had ended before, so
 * ferrofs_overwrites_unflushed says whether one has ended since the last
 * flush issued after it: then an fsync must flush, though no record names
 * the data.
 */
bool ferrofs_overwrite_begin(struct ferrofs_dwrites *t);
void ferrofs_overwrite_end(struct ferrofs_dwrites *t, bool written);
void ferrofs_overwrites_close(struct ferrofs_dwrites *t);
void ferrofs_overwrites_open(struct ferrofs_dwrites *t);
int ferrofs_dwrites_flush(struct super_block *sb, struct ferrofs_dwrites *t);
bool ferrofs_overwrites_unflushed(struct ferrofs_dwrites *t);

#endif

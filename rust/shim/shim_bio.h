/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Bio helpers the shim's I/O files share (shim.c defines them). Not part of
 * the adapter's interface: bindgen never reads this header.
 */
#ifndef FERROFS_SHIM_BIO_H
#define FERROFS_SHIM_BIO_H

#include <linux/bio.h>

/* Adds the pages under @len bytes of @p (kmalloc'd, vmalloc'd or a mapped
 * folio) to @bio as far as it holds them; returns the bytes added. */
size_t ferrofs_bio_add_buf(struct bio *bio, char *p, size_t len, bool vmapped);
/* Pages a bio needs for the next piece of @len bytes at @p. */
unsigned int ferrofs_bio_pages(const char *p, size_t len);
/*
 * Around I/O this task submits and then waits for: sends what the caller's
 * plug holds (readahead's, writeback's) and takes the plug away until
 * ferrofs_plug_resume re-arms it, so the bios go to the device from this
 * task. Left in the plug, they would go out only when the task sleeps for
 * them, from kblockd (a queued work and a context switch per read).
 */
struct blk_plug *ferrofs_plug_suspend(void);
void ferrofs_plug_resume(struct blk_plug *plug);

#endif

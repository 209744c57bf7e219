/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Shim for the send ioctl: writing the stream to the caller's file, and
 * the checks a long-running ioctl makes between steps. Included by
 * ferrofs_shim.h; implemented in send_shim.c.
 */
#ifndef FERROFS_SHIM_SEND_H
#define FERROFS_SHIM_SEND_H

#include <linux/fs.h>

/*
 * Writes "len" bytes to "file" as write(2) would: at its position, which
 * then advances (a stream file such as a pipe has none). Returns the bytes
 * written or a negative errno.
 */
ssize_t ferrofs_file_append(struct file *file, const void *buf, size_t len);
/* Whether a signal waits for the current task. */
bool ferrofs_signal_pending(void);
/* Lets other tasks run between steps of a long call. */
void ferrofs_cond_resched(void);

#endif /* FERROFS_SHIM_SEND_H */

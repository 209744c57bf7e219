// SPDX-License-Identifier: GPL-2.0
/*
 * The send ioctl's kernel helpers (see ferrofs_shim_send.h): kernel_write
 * at the output file's position, and the signal and scheduling checks
 * between steps.
 */
#include <linux/fs.h>
#include <linux/sched.h>
#include <linux/sched/signal.h>
#include "ferrofs_shim.h"

ssize_t ferrofs_file_append(struct file *file, const void *buf, size_t len)
{
	loff_t pos;
	ssize_t n;

	if (file->f_mode & FMODE_STREAM)
		return kernel_write(file, buf, len, NULL);
	pos = file->f_pos;
	n = kernel_write(file, buf, len, &pos);
	if (n > 0)
		file->f_pos = pos;
	return n;
}

bool ferrofs_signal_pending(void)
{
	return signal_pending(current);
}

void ferrofs_cond_resched(void)
{
	cond_resched();
}

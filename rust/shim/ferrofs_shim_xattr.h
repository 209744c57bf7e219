/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Shim for extended attributes, POSIX ACLs and inode flags: the kernel
 * helpers the xattr handlers need that kernel::bindings lacks on 6.12.
 * Included by ferrofs_shim.h; implemented in xattr_shim.c.
 */
#ifndef FERROFS_SHIM_XATTR_H
#define FERROFS_SHIM_XATTR_H

#endif

// SPDX-License-Identifier: GPL-2.0
/*
 * Static inline kernel helpers for the xattr, ACL and inode-flag code of the
 * ferrofs adapter, wrapped as real functions (declared in
 * ferrofs_shim_xattr.h).
 */
#include "ferrofs_shim.h"

/*
 * xalloc.h - allocation that cannot fail.
 *
 * The library's out-of-memory policy: the network's tensors, the one large
 * allocation a cfg decides, are planned and refused as an error value before
 * anything is allocated (dn_net_plan, [net] max_memory=); so are the few
 * buffers whose size a data file decides (a dataset's pixels, a ZCA
 * matrix, a weights payload): checked, an error naming the file. Every
 * other allocation (strings, tables, bookkeeping, per-image scratch) goes
 * through these: on failure they print "darknet: out of memory allocating
 * N bytes" and abort(), so no caller handles, or forgets to handle, a
 * NULL. A zero-byte request allocates one byte.
 */
#ifndef DN_XALLOC_H
#define DN_XALLOC_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

void *dn_xmalloc(size_t bytes);
/* n * size, checked for overflow */
void *dn_xcalloc(size_t n, size_t size);
void *dn_xrealloc(void *p, size_t bytes);
char *dn_xstrdup(const char *s);
/* The printing and abort() behind them (bytes: what was asked for). */
void dn_out_of_memory(size_t bytes) __attribute__((noreturn));

#ifdef __cplusplus
}
#endif

#endif

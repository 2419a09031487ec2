/*
 * error.c - errors are values: a message in the caller's buffer; and the
 * allocation helpers of xalloc.h, the one place out of memory aborts.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "darknet.h"
#include "xalloc.h"

int dn_fail(dn_error *err, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* ------------------------------------------------ allocation (xalloc.h) */

void dn_out_of_memory(size_t bytes)
{
    fprintf(stderr, "darknet: out of memory allocating %zu bytes\n", bytes);
    abort();
}

void *dn_xmalloc(size_t bytes)
{
    void *p = malloc(bytes ? bytes : 1);
    if (!p)
        dn_out_of_memory(bytes);
    return p;
}

void *dn_xcalloc(size_t n, size_t size)
{
    if (size && n > SIZE_MAX / size)
        dn_out_of_memory(SIZE_MAX);
    void *p = calloc(n && size ? n : 1, n && size ? size : 1);
    if (!p)
        dn_out_of_memory(n * size);
    return p;
}

void *dn_xrealloc(void *p, size_t bytes)
{
    void *q = realloc(p, bytes ? bytes : 1);
    if (!q)
        dn_out_of_memory(bytes);
    return q;
}

char *dn_xstrdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = dn_xmalloc(n);
    memcpy(p, s, n);
    return p;
}

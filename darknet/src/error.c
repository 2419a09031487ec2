/* error.c - errors are values: a message in the caller's buffer. */
#include <stdarg.h>
#include <stdio.h>

#include "darknet.h"

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

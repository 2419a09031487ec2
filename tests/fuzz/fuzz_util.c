/* fuzz_util.c - see fuzz.h. */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz.h"

static char dir[64];

static void remove_dir(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
}

const char *fz_dir(void)
{
    if (!dir[0]) {
        snprintf(dir, sizeof dir, "/tmp/dnfuzz.XXXXXX");
        if (!mkdtemp(dir))
            abort();
        atexit(remove_dir);
    }
    return dir;
}

const char *fz_write(const char *name, const void *data, size_t n)
{
    static char paths[8][256];
    static int next;
    char *p = paths[next++ % 8];
    snprintf(p, sizeof paths[0], "%s/%s", fz_dir(), name);
    FILE *f = fopen(p, "wb");
    if (!f)
        abort();
    if (n && fwrite(data, 1, n, f) != n)
        abort();
    fclose(f);
    return p;
}

FILE *fz_null(void)
{
    static FILE *null;
    if (!null && !(null = fopen("/dev/null", "w")))
        abort();
    return null;
}

int fz_silently(int (*fn)(void *arg), void *arg)
{
    fflush(stdout);
    fflush(stderr);
    int out = dup(1), err = dup(2), null = open("/dev/null", O_WRONLY);
    dup2(null, 1);
    dup2(null, 2);
    close(null);
    int rc = fn(arg);
    fflush(stdout);
    fflush(stderr);
    dup2(out, 1);
    dup2(err, 2);
    close(out);
    close(err);
    return rc;
}

uint8_t fz_u8(fz_reader *r)
{
    if (!r->left)
        return 0;
    r->left--;
    return *r->p++;
}

uint16_t fz_u16(fz_reader *r)
{
    uint16_t lo = fz_u8(r);
    return (uint16_t)(lo | fz_u8(r) << 8);
}

const uint8_t *fz_bytes(fz_reader *r, size_t n, size_t *got)
{
    const uint8_t *p = r->p;
    *got = n < r->left ? n : r->left;
    r->p += *got;
    r->left -= *got;
    return p;
}

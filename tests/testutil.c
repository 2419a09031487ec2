/* testutil.c - temporary files and message checks for the tests. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"

static char tmpdir[256];

static void remove_tmpdir(void)
{
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmpdir);
}

const char *tu_tmpdir(void)
{
    if (!tmpdir[0]) {
        snprintf(tmpdir, sizeof tmpdir, "/tmp/dntest.XXXXXX");
        if (!mkdtemp(tmpdir)) {
            perror("mkdtemp");
            abort();
        }
        atexit(remove_tmpdir);
    }
    return tmpdir;
}

char *tu_write_file(const char *name, const char *text)
{
    static char paths[16][512];
    static int next;
    char *p = paths[next++ % 16];
    snprintf(p, 512, "%s/%s", tu_tmpdir(), name);
    FILE *f = fopen(p, "w");
    if (!f) {
        perror(p);
        abort();
    }
    fputs(text, f);
    fclose(f);
    return p;
}

void tu_assert_contains(const char *msg, const char *needle, const char *file,
                        int line)
{
    if (!strstr(msg, needle)) {
        print_error("message:  %s\nexpected: ...%s...\n", msg, needle);
        _fail(file, line);
    }
}

void tu_write_cifar_pattern(const char *path, int n, unsigned seed)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    dn_rng r;
    dn_rng_seed(&r, seed);
    unsigned char rec[3073];
    for (int i = 0; i < n; i++) {
        int label = i % 10;
        rec[0] = (unsigned char)label;
        for (int j = 0; j < 3072; j++)
            rec[1 + j] = (unsigned char)(dn_rng_u64(&r) % 80);
        int ch = label % 3, y0 = (label / 5) * 16 + 4, x0 = (label % 5) * 6;
        for (int y = y0; y < y0 + 8; y++)
            for (int x = x0; x < x0 + 6; x++)
                rec[1 + ch * 1024 + y * 32 + x] = 250;
        assert_int_equal(fwrite(rec, sizeof rec, 1, f), 1);
    }
    fclose(f);
}

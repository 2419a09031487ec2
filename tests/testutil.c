/* testutil.c - temporary files, small datasets and message checks for the
 * tests. */
#include <fcntl.h>
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

char *tu_tmp_path(const char *name)
{
    static char paths[16][512];
    static int next;
    char *p = paths[next++ % 16];
    snprintf(p, 512, "%s/%s", tu_tmpdir(), name);
    return p;
}

char *tu_write_file(const char *name, const char *text)
{
    char *p = tu_tmp_path(name);
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

dn_cfg *tu_load_cfg(const char *path, int n, const char *const *words,
                    int *strict, dn_error *err)
{
    dn_cfg *cfg;
    if (strict)
        *strict = 0;
    if (dn_cfg_load(path, &cfg, err))
        return NULL;
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < n; i++) {
            const char *word = words[i];
            if (strcmp(word, "-strict") == 0) {
                if (strict)
                    *strict = 1;
                continue;
            }
            const int set = strcmp(word, "-set") == 0;
            if (!set && strcmp(word, "-overlay") != 0)
                fail_msg("tu_load_cfg: unexpected word %s", word);
            if (++i == n)
                fail_msg("tu_load_cfg: %s without its value", word);
            if (pass != set)
                continue;
            if (set ? dn_cfg_set(cfg, words[i], err)
                    : dn_cfg_overlay(cfg, words[i], err)) {
                dn_cfg_free(cfg);
                return NULL;
            }
        }
    return cfg;
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

/* The text of a file, into buf (truncated to cap - 1 bytes). */
static void slurp_into(const char *path, char *buf, size_t cap)
{
    FILE *f = fopen(path, "rb");
    size_t n = f ? fread(buf, 1, cap - 1, f) : 0;
    buf[n] = '\0';
    if (f)
        fclose(f);
}

int tu_run_cmd(int (*cmd)(int argc, char **argv), const char *const *args,
               const char **out, const char **errs)
{
    static char out_text[1 << 16], err_text[1 << 16];
    char *argv[64], out_path[600], err_path[600];
    int argc = 0;
    for (; args[argc] && argc < 63; argc++)
        argv[argc] = (char *)args[argc];
    argv[argc] = NULL;
    snprintf(out_path, sizeof out_path, "%s/cmd.stdout", tu_tmpdir());
    snprintf(err_path, sizeof err_path, "%s/cmd.stderr", tu_tmpdir());
    fflush(stdout);
    fflush(stderr);
    int saved_out = dup(1), saved_err = dup(2);
    int fo = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int fe = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(saved_out >= 0 && saved_err >= 0 && fo >= 0 && fe >= 0);
    dup2(fo, 1);
    dup2(fe, 2);
    close(fo);
    close(fe);
    int rc = cmd(argc, argv);
    fflush(stdout);
    fflush(stderr);
    dup2(saved_out, 1);
    dup2(saved_err, 2);
    close(saved_out);
    close(saved_err);
    slurp_into(out_path, out_text, sizeof out_text);
    slurp_into(err_path, err_text, sizeof err_text);
    if (out)
        *out = out_text;
    if (errs)
        *errs = err_text;
    return rc;
}

char *tu_write_bytes(const char *name, const void *data, size_t n)
{
    char *p = tu_tmp_path(name);
    FILE *f = fopen(p, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, n, f), n);
    fclose(f);
    return p;
}

dn_dataset *tu_synthetic_dataset(long n, int c, int h, int w, int classes)
{
    dn_dataset *d = dn_dataset_alloc(n, c, h, w, classes, "synthetic");
    long D = (long)c * h * w;
    for (long r = 0; r < n; r++) {
        d->labels[r] = (int)(r % classes);
        d->pixels[r * D] = (uint8_t)r; /* record id in pixel 0 */
        for (long j = 1; j < D; j++)
            d->pixels[r * D + j] = (uint8_t)(1 + (r * 31 + j * 17) % 250);
    }
    return d;
}

int tu_parse_augment(const char *net_text, const dn_dataset *train,
                     dn_augment **a, dn_error *err)
{
    dn_cfg *cfg;
    assert_int_equal(dn_cfg_parse_string(net_text, "test.cfg", &cfg, err), 0);
    int rc = dn_augment_parse(&cfg->sections[0], train, a, err);
    dn_cfg_free(cfg);
    return rc;
}

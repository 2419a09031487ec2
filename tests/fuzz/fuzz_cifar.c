/*
 * fuzz_cifar.c - CIFAR-10 binary batches through the dataset reader as
 * training opens them, then one batch through the loader.
 *
 * Input: a flags byte (bits 0-1: the network's input, 3x32x32, 3x36x36
 * (padded), 0x0x0 or 1x32x32 (refused: colour to grey); bit 2:
 * classes=3, so that labels 3..9 are out of range; bit 3: two files, the
 * rest split in half), then the file's bytes.
 */
#include <stdlib.h>
#include <string.h>

#include "dn_data.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 1 << 18)
        return 0;
    fz_reader r = {data, size};
    const uint8_t flags = fz_u8(&r);
    static const int shapes[4][3] = {{3, 32, 32}, {3, 36, 36}, {0, 0, 0},
                                     {1, 32, 32}};
    const int *shape = shapes[flags & 3];
    size_t n1, n2;
    const uint8_t *a = fz_bytes(&r, flags & 8 ? r.left / 2 : r.left, &n1);
    const uint8_t *b = fz_bytes(&r, r.left, &n2);
    char text[1024];
    snprintf(text, sizeof text, "format=cifar\ntrain=%s", fz_write("a.bin", a, n1));
    if (flags & 8)
        snprintf(text + strlen(text), sizeof text - strlen(text), ",%s",
                 fz_write("b.bin", b, n2));
    snprintf(text + strlen(text), sizeof text - strlen(text), "\n%s",
             flags & 4 ? "classes=3\n" : "");
    dn_cfg *cfg;
    dn_error err;
    if (dn_cfg_parse_string(text, "fuzz.data", &cfg, &err))
        return 0;
    dn_dataset *d;
    if (dn_dataset_open(&cfg->sections[0], "train", shape[0], shape[1],
                        shape[2], &d, &err) == 0) {
        dn_loader *l;
        if (dn_loader_make(d, NULL, 2, 1, 1, 1, 1, &l, &err) == 0) {
            float *x = calloc((size_t)2 * d->c * d->h * d->w, sizeof *x);
            float *t = calloc((size_t)2 * d->classes, sizeof *t);
            dn_loader_get(l, 0, x, t, NULL);
            free(x);
            free(t);
            dn_loader_free(l);
        }
        dn_dataset_free(d);
    }
    dn_cfg_free(cfg);
    return 0;
}

/*
 * fuzz_idx.c - IDX files (MNIST's format), raw or gzip, through the
 * dataset reader as training opens them, then one batch through the
 * loader.
 *
 * Input: a flags byte (bits 0-1: the network's input, 0x0x0 (the file's
 * own size), 1x28x28, 1x32x32 (padded) or 3x32x32 (padded and
 * replicated); bit 2: classes=10), a little-endian u16 length L, L bytes
 * of the label file, the rest the image file. Either may be gzip: the
 * reader decides by the bytes, not the name.
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
    size_t nl, ni;
    const uint8_t *labels = fz_bytes(&r, fz_u16(&r), &nl);
    const uint8_t *images = fz_bytes(&r, r.left, &ni);
    static const int shapes[4][3] = {{0, 0, 0}, {1, 28, 28}, {1, 32, 32},
                                     {3, 32, 32}};
    const int *shape = shapes[flags & 3];
    char text[1024];
    snprintf(text, sizeof text, "format=idx\ntrain=%s\n",
             fz_write("f-images-idx3-ubyte", images, ni));
    snprintf(text + strlen(text), sizeof text - strlen(text),
             "train_labels=%s\n%s", fz_write("f-labels-idx1-ubyte", labels, nl),
             flags & 4 ? "classes=10\n" : "");
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

/*
 * layers.c - the layer registry: one table of every layer type; nothing
 * else in the framework switches on the layer type. Adding a layer means:
 *   - darknet/src/<name>_layer.c defining dn_layer_<name> (and, for a GPU
 *     twin, darknet/src/<name>_layer.cu defining dn_layer_<name>_gpu, named
 *     by .gpu = DN_GPU_TWIN(dn_layer_<name>_gpu) as the last initialiser);
 *   - its declarations in layer_util.h (dn_layer_<name>, dn_layer_<name>_gpu);
 *   - one line in the table below;
 *   - its gradient-check cases (tests/test_layers.c or a test file of its
 *     own) and, with a twin, its parity cases (tests/gpu/test_gpu_layers.c):
 *     tests/test_registry.c fails until they exist.
 */
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "layer_util.h"

static const dn_layer_type *const registry[] = {
    &dn_layer_convolutional, &dn_layer_connected, &dn_layer_batchnorm,
    &dn_layer_maxpool,       &dn_layer_avgpool,   &dn_layer_dropout,
    &dn_layer_softmax,       &dn_layer_logistic,  &dn_layer_shortcut,
    &dn_layer_route,         &dn_layer_attention, &dn_layer_layernorm,
};

#define N_TYPES (sizeof registry / sizeof *registry)

const dn_layer_type *dn_layer_type_find(const char *name)
{
    for (size_t i = 0; i < N_TYPES; i++)
        if (strcmp(registry[i]->name, name) == 0)
            return registry[i];
    return NULL;
}

int dn_layer_type_count(void) { return (int)N_TYPES; }

const dn_layer_type *dn_layer_type_at(int i)
{
    return i >= 0 && i < (int)N_TYPES ? registry[i] : NULL;
}

const char *dn_layer_type_names(void)
{
    static char buf[512];
    buf[0] = '\0';
    for (size_t i = 0; i < N_TYPES; i++) {
        size_t n = strlen(buf);
        snprintf(buf + n, sizeof buf - n, "%s%s", n ? ", " : "",
                 registry[i]->name);
    }
    return buf;
}

float *dn_calloc_floats(size_t n)
{
    /* 64-byte aligned (a cache line, an AVX-512 vector): glibc's malloc
     * returns large blocks 16 bytes into a page, and oneDNN's kernels then
     * split every vector access across two lines (ResNet-18-CIFAR's
     * 512-channel weight gradients: 35 against 26 ms) */
    void *v = NULL;
    if (posix_memalign(&v, 64, (n ? n : 1) * sizeof(float)))
        v = NULL;
    float *p = v;
    if (!p) {
        fprintf(stderr, "darknet: out of memory allocating %zu floats\n", n);
        abort();
    }
    /* explicit_bzero: a plain memset after malloc may be folded into calloc,
     * which leaves the pages untouched until the first batch */
    explicit_bzero(p, (n ? n : 1) * sizeof *p);
    return p;
}

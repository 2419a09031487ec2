/*
 * layers.c - the layer registry: one table of every layer type. Adding a
 * layer means writing its file and adding one line here; nothing else in the
 * framework switches on the layer type.
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

const dn_layer_type *dn_layer_type_at(int i)
{
    return i >= 0 && (size_t)i < N_TYPES ? registry[i] : NULL;
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
    float *p = malloc((n ? n : 1) * sizeof *p);
    if (!p) {
        fprintf(stderr, "darknet: out of memory allocating %zu floats\n", n);
        abort();
    }
    /* explicit_bzero: a plain memset after malloc may be folded into calloc,
     * which leaves the pages untouched until the first batch */
    explicit_bzero(p, (n ? n : 1) * sizeof *p);
    return p;
}

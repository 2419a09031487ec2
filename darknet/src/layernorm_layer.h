/*
 * layernorm_layer.h - [layernorm]'s private state, shared by
 * layernorm_layer.c and its GPU twin layernorm_layer.cu.
 */
#ifndef DN_LAYERNORM_LAYER_H
#define DN_LAYERNORM_LAYER_H

#include "layer_util.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct layernorm {
    float *biases, *scales; /* [C] */
    float *xhat;            /* [batch, C, N] from the last forward */
    float *inv_std;         /* [batch, N]: r */
} layernorm;

#ifdef __cplusplus
}
#endif

#endif

/*
 * attention_layer.h - [attention]'s private state, shared by
 * attention_layer.c and its GPU twin attention_layer.cu.
 */
#ifndef DN_ATTENTION_LAYER_H
#define DN_ATTENTION_LAYER_H

#include "layer_util.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct attention {
    int heads, head_dim, positional;
    int tokens;       /* N = h * w */
    float *biases;    /* [4C]: q, k, v, out */
    float *weights;   /* [4C, C]: W_qkv [3C, C] then W_o [C, C] */
    float *pos;       /* [C, N] or NULL */
    float *x;         /* [batch, C, N]: in + pos (positional=1 only) */
    float *qkv;       /* [batch, 3C, N] */
    float *probs;     /* [batch, heads, N, N]: A */
    float *stacked;   /* [batch, C, N]: O */
} attention;

#ifdef __cplusplus
}
#endif

#endif

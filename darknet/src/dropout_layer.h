/*
 * dropout_layer.h - [dropout]'s private state, shared by dropout_layer.c
 * and its GPU twin dropout_layer.cu.
 */
#ifndef DN_DROPOUT_LAYER_H
#define DN_DROPOUT_LAYER_H

#include "layer_util.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct dropout {
    float probability, scale;
    float *mask; /* [batch, inputs]: 0 or scale, from the last training forward */
} dropout;

#ifdef __cplusplus
}
#endif

#endif

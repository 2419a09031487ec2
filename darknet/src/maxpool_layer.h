/*
 * maxpool_layer.h - [maxpool]'s private state, shared by maxpool_layer.c
 * and its GPU twin maxpool_layer.cu.
 */
#ifndef DN_MAXPOOL_LAYER_H
#define DN_MAXPOOL_LAYER_H

#include "layer_util.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct maxpool {
    int size, stride, padding;
    int *argmax; /* [batch, outputs]: index into the input, -1 if none */
} maxpool;

#ifdef __cplusplus
}
#endif

#endif

/*
 * connected_layer.h - [connected]'s private state, shared by
 * connected_layer.c and its GPU twin connected_layer.cu.
 */
#ifndef DN_CONNECTED_LAYER_H
#define DN_CONNECTED_LAYER_H

#ifdef __cplusplus
extern "C" {
#endif

#include "batchnorm.h"
#include "blas.h"
#include "layer_util.h"

typedef struct connected {
    float *weights; /* [outputs, inputs] */
    float *biases;  /* [outputs] */
    dn_post post;
} connected;

#ifdef __cplusplus
}
#endif

#endif

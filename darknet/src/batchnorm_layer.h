/*
 * batchnorm_layer.h - the [batchnorm] layer's private state, shared by
 * batchnorm_layer.c and its GPU twin batchnorm_layer.cu.
 */
#ifndef DN_BATCHNORM_LAYER_H
#define DN_BATCHNORM_LAYER_H

#ifdef __cplusplus
extern "C" {
#endif

#include "batchnorm.h"
#include "blas.h"
#include "layer_util.h"

typedef struct batchnorm {
    dn_bn bn;
    float *biases; /* [c], beta */
} batchnorm;

#ifdef __cplusplus
}
#endif

#endif

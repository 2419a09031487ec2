/*
 * avgpool_layer.h - the GPU entry points of [avgpool], shared by
 * avgpool_layer.c and its GPU twin avgpool_layer.cu.
 */
#ifndef DN_AVGPOOL_LAYER_H
#define DN_AVGPOOL_LAYER_H

#include "layer_util.h"

#ifdef __cplusplus
extern "C" {
#endif

#ifdef DN_GPU
void avgpool_forward_gpu(dn_layer *l, dn_net *net);
void avgpool_backward_gpu(dn_layer *l, dn_net *net);
#endif

#ifdef __cplusplus
}
#endif

#endif

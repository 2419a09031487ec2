/*
 * shortcut_layer.h - [shortcut]'s private state, shared by shortcut_layer.c
 * and its GPU twin shortcut_layer.cu.
 */
#ifndef DN_SHORTCUT_LAYER_H
#define DN_SHORTCUT_LAYER_H

#include "layer_util.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct shortcut {
    int from; /* absolute layer index */
    float alpha, beta;
    dn_activation activation;
    float *pre; /* [batch, outputs]: pre-activation, if the activation needs it */
} shortcut;

#ifdef __cplusplus
}
#endif

#endif

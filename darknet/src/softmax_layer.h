/*
 * softmax_layer.h - [softmax]'s private state, shared by softmax_layer.c
 * and its GPU twin softmax_layer.cu.
 */
#ifndef DN_SOFTMAX_LAYER_H
#define DN_SOFTMAX_LAYER_H

#include "layer_util.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct softmax {
    int groups;
    float temperature;
    int grad_ready;   /* loss_grad holds the last training forward's gradient */
    float *loss_grad; /* [batch, outputs]: d cost / d in */
} softmax;

/* The loss applies only as the network's last layer (net->truth is sized
 * for it); elsewhere [softmax] is a plain softmax. */
static inline int dn_softmax_loss_active(const dn_layer *l, const dn_net *net)
{
    return l->is_loss && l->index == net->n - 1 && net->truths == l->outputs;
}

#ifdef DN_GPU
int softmax_make_gpu(dn_layer *l, dn_net *net, dn_error *err);
void softmax_forward_gpu(dn_layer *l, dn_net *net);
void softmax_backward_gpu(dn_layer *l, dn_net *net);
void softmax_free_gpu(dn_layer *l);
#endif

#ifdef __cplusplus
}
#endif

#endif

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

/* With [net] output_activation=sigmoid the network's final [softmax]
 * computes p = sigmoid(x / T) / sum sigmoid(x / T) per group and Keras's
 * categorical cross-entropy on it (softmax_layer.c); network.c checks at
 * build time that the last layer is a [softmax]. */
static inline int dn_softmax_is_sigmoid(const dn_layer *l, const dn_net *net)
{
    return net->output_activation == DN_OUTPUT_SIGMOID &&
           l->index == net->n - 1;
}

/* Keras's epsilon: p is clipped to [eps, 1 - eps] inside the log. */
#define DN_SIGMOID_CE_EPS 1e-7f

#ifdef __cplusplus
}
#endif

#endif

/*
 * logistic_layer.h - [logistic]'s private state, shared by logistic_layer.c
 * and its GPU twin logistic_layer.cu.
 */
#ifndef DN_LOGISTIC_LAYER_H
#define DN_LOGISTIC_LAYER_H

#include "layer_util.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct logistic {
    int grad_ready;   /* loss_grad holds the last training forward's gradient */
    float *loss_grad; /* [batch, outputs]: d cost / d in */
} logistic;

/* The loss applies only as the network's last layer. */
static inline int dn_logistic_loss_active(const dn_layer *l, const dn_net *net)
{
    return l->is_loss && l->index == net->n - 1 && net->truths == l->outputs;
}

#ifdef __cplusplus
}
#endif

#endif

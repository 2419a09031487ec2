/*
 * backend.h - where a network runs, behind one table.
 *
 * A backend is the set of functions that run a built network: its passes,
 * its optimiser step, the copies between the host tensors and wherever the
 * backend keeps its own, and the release of that state. The network
 * (network.c) calls through net->backend and never asks where it runs;
 * the backend is chosen once, when the network is placed
 * (dn_net_use_devices, backend.c):
 *
 *   dn_backend_cpu       the host tensors themselves (network.c)
 *   dn_backend_gpu       one CUDA device (network_gpu.c)
 *   dn_backend_replicas  data parallel over several devices: one
 *                        single-device replica per device, joined by a
 *                        communicator (replicas.c, comm.h)
 *
 * What every backend shares lives here too: pointing the network's
 * context at a layer's input (dn_net_enter_layer) and Adam's bias
 * corrections (dn_adam_corrections).
 */
#ifndef DN_BACKEND_H
#define DN_BACKEND_H

#include "comm.h"
#include "darknet.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct dn_backend {
    const char *name; /* "cpu", "gpu", "replicas" */
    /* dn_net_forward, dn_net_backward, dn_net_update, dn_net_zero_deltas
     * (dn_network.h gives their contracts) */
    void (*forward)(dn_net *net, int train);
    void (*backward)(dn_net *net);
    void (*update)(dn_net *net, double lr);
    void (*zero_deltas)(dn_net *net);
    /* host tensors (saved tensors, parameters, optimiser state) to the
     * backend's copies, and back */
    int (*push)(dn_net *net, dn_error *err);
    int (*pull)(const dn_net *net, dn_error *err);
    /* wait for queued work when wait is set; then, when err is not NULL,
     * return the first failure since the last call (and forget it) */
    int (*sync)(dn_net *net, int wait, dn_error *err);
    /* after an update: are the weights finite? (the host copies of a
     * device are stale; a checkpoint checks what it pulls) */
    int (*check_weights)(const dn_net *net, dn_error *err);
    const char *(*device_name)(const dn_net *net);
    /* release the backend's state; the host network stays whole */
    void (*free)(dn_net *net);
    /*
     * Training across processes (distributed.c) on the backend's own
     * tensors, one replica per process. NULL where distributed.c moves the
     * host tensors itself (the CPU) or the backend cannot take part
     * (several devices in one process).
     *   join_ranks       a communicator over host's processes whose
     *                    buffers are this backend's (one GPU: NCCL on its
     *                    device, bootstrapped over host); collective
     *   all_reduce_grads every parameter's gradient summed over c, in
     *                    place, queued after the backward pass
     *   broadcast_state  root's weights, saved tensors that are not
     *                    parameters (batch-norm statistics) and optimiser
     *                    state to every process of c; waits
     */
    int (*join_ranks)(dn_net *net, dn_comm *host, dn_comm **out,
                      dn_error *err);
    int (*all_reduce_grads)(dn_net *net, dn_comm *c, dn_error *err);
    int (*broadcast_state)(dn_net *net, dn_comm *c, int root, dn_error *err);
} dn_backend;

extern const dn_backend dn_backend_cpu;

/* net->backend, or the CPU's for a network not (yet) built by dn_net_make */
static inline const dn_backend *dn_net_backend(const dn_net *net)
{
    return net->backend ? net->backend : &dn_backend_cpu;
}

/* Point the network's context at layer i's input and at where layer i adds
 * its input gradient (net->input, net->delta and their device twins): the
 * previous layer's output and delta, or for layer 0 the input batch and
 * input_delta (NULL unless asked for). */
void dn_net_enter_layer(dn_net *net, int i);

/* Adam's bias corrections for the coming update: c1 = 1 - b1^t,
 * c2 = 1 - b2^t with t = batches done + 1 (Kingma & Ba 2015, Algorithm 1;
 * PyTorch's step counter). */
void dn_adam_corrections(const dn_net *net, float *c1, float *c2);

#ifdef DN_GPU
extern const dn_backend dn_backend_gpu, dn_backend_replicas;
/* Place net on one device (network_gpu.c) or on several (replicas.c);
 * on failure the network stays on the CPU. */
int dn_gpu_place(dn_net *net, int device, dn_error *err);
int dn_replicas_place(dn_net *net, const dn_devices *dev, dn_error *err);
#endif

#ifdef __cplusplus
}
#endif

#endif

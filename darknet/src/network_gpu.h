/*
 * network_gpu.h - the pieces of the one-device backend (network_gpu.c)
 * that replicas.c drives on each of its replicas (GPU builds only).
 *
 * A forward pass of a device-resident network is: copy the batch into
 * pinned staging, queue it (dn_gpu_queue_forward), queue the copies of its
 * results back (dn_gpu_queue_results), wait, and take them into the host
 * network (dn_gpu_take_results). The one-device backend does it for one
 * network; replicas do it for each replica's slice of one staging area.
 */
#ifndef DN_NETWORK_GPU_H
#define DN_NETWORK_GPU_H

#ifdef DN_GPU

#include "cuda.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Pinned staging for a network whose forward batch is net->batch images. */
int dn_gpu_staging_make(const dn_net *net, dn_gpu_staging *st, dn_error *err);
void dn_gpu_staging_free(dn_gpu_staging *st); /* a zeroed one is fine */

/* Queue a forward pass of device-resident net over pinned in and truth
 * ([net->batch, inputs] and [net->batch, truths]). */
void dn_gpu_queue_forward(dn_net *net, const float *in, const float *truth,
                          int train);
/* Queue the copies back: the last output into out, each loss layer's
 * per-image losses into row k of cost (row stride: stride floats). */
void dn_gpu_queue_results(dn_net *net, float *out, float *cost, long stride);
/* After the wait: st's output and per-image losses into net's host output
 * and costs (net->batch images; rows of net->batch floats). */
void dn_gpu_take_results(dn_net *net, const dn_gpu_staging *st);

enum { DN_GPU_COPY_STATE = 1, DN_GPU_COPY_GRADS = 2 };
/* Copy between host's host tensors and dev's device twins (host and dev
 * are one network, or a network and its replica: the same layers), and
 * wait. Saved tensors and parameters always; optimiser state
 * (DN_GPU_COPY_STATE) and gradients (DN_GPU_COPY_GRADS) on request. */
int dn_gpu_copy_tensors(dn_net *host, dn_net *dev, int up, int what,
                        dn_error *err);

/* dn_net_device_name's text: "GPU 0,1 (NVIDIA H200), cuDNN, TF32 allowed" */
void dn_gpu_describe(char *name, size_t size, const dn_net *net,
                     const char *devices, const char *gpu_name);

#ifdef __cplusplus
}
#endif

#endif /* DN_GPU */
#endif

/*
 * batchnorm_gpu.h - batch normalisation and the weighted layers' output
 * stage on the device: the twins of batchnorm.h, in batchnorm_layer.cu.
 * GPU builds only.
 *
 * Same conventions as batchnorm.h (biased batch variance to normalise,
 * unbiased one into the rolling variance, momentum 0.01, eps 1e-5).
 * With CUDNN=1 a training pass runs cuDNN's spatial batch norm
 * (cudnnBatchNormalizationForwardTraining / Backward, whose rolling
 * variance is the unbiased estimate, as here); inference, backward after an
 * inference forward, and builds without cuDNN use the kernels of
 * batchnorm_layer.cu.
 */
#ifndef DN_BATCHNORM_GPU_H
#define DN_BATCHNORM_GPU_H

#ifdef DN_GPU

#include "cuda.h"

#ifdef __cplusplus
extern "C" {
#endif

#include "batchnorm.h"

typedef struct dn_bn_gpu {
    int batch, channels;
    long spatial;
    float *scales, *rolling_mean, *rolling_variance; /* twins, not owned */
    float *mean, *inv_std; /* [channels]: the last forward's statistics */
    float *sums;           /* [2*channels]: backward's means */
    float momentum;        /* the host's: weight of a batch in rolling stats */
#ifdef DN_CUDNN
    cudnnTensorDescriptor_t x_desc;     /* [batch, channels, spatial, 1] */
    cudnnTensorDescriptor_t param_desc; /* [1, channels, 1, 1] */
#endif
} dn_bn_gpu;

/* Device state for bn (a tensor of layer l, whose twins it uses). */
int dn_bn_gpu_init(dn_bn_gpu *g, const dn_bn *bn, const dn_layer *l,
                   dn_error *err);
void dn_bn_gpu_free(dn_bn_gpu *g); /* safe on a zeroed one */
/* dn_bn_forward: x, y [batch, channels, spatial] (y != x), biases beta */
void dn_bn_gpu_forward(dn_net *net, dn_bn_gpu *g, const float *x, float *y,
                       const float *biases, int train);
/* dn_bn_backward, with x the forward's input: dx != dy (or NULL: only
 * the parameter gradients); accumulate adds into dx. */
void dn_bn_gpu_backward(dn_net *net, dn_bn_gpu *g, const float *x,
                        const float *dy, float *dx, int accumulate,
                        float *scales_grad, float *biases_grad, int train);

/* The output stage (dn_post) of [convolutional] and [connected]. */
typedef struct dn_post_gpu {
    const dn_post *host; /* the configuration */
    dn_bn_gpu bn;
    float *x;   /* [batch, channels, spatial]: BN's input (batch_normalize) */
    float *pre; /* the pre-activation, when the derivative needs it */
} dn_post_gpu;

int dn_post_gpu_init(dn_post_gpu *p, const dn_post *host, const dn_layer *l,
                     dn_error *err);
void dn_post_gpu_free(dn_post_gpu *p);
/* Where the layer writes its linear result: BN's input buffer with
 * batch_normalize, else the output itself (then normalised in place). */
float *dn_post_gpu_input(dn_post_gpu *p, float *out);
/* out = act(BN(x) with beta = biases) or act(out + biases) */
void dn_post_gpu_forward(dn_net *net, dn_post_gpu *p, float *out,
                         const float *biases, int train);
/* Bytes of scratch backward needs (BN's input gradient). */
size_t dn_post_gpu_scratch_bytes(const dn_post_gpu *p);
/* From dL/d(out) in delta (made dL/d(pre-activation) in place), returns
 * dL/d(stage input): delta itself, or `scratch` with batch_normalize. */
float *dn_post_gpu_backward(dn_net *net, dn_post_gpu *p, const float *y,
                            float *delta, float *scratch, float *biases_grad,
                            float *scales_grad, int train);

#ifdef __cplusplus
}
#endif

#endif /* DN_GPU */
#endif

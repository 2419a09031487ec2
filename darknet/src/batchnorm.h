/*
 * batchnorm.h - batch normalisation (Ioffe and Szegedy 2015) over the
 * channels of a [batch, channels, spatial] tensor, shared by [batchnorm],
 * [convolutional] and [connected] (spatial = 1: BN over the outputs).
 *
 * Conventions (PyTorch's, with Darknet's momentum):
 *   training:   normalise with the batch mean and the BIASED batch variance
 *               (divide by N = batch*spatial); update
 *                 rolling_mean     = (1-m) rolling_mean     + m mean
 *                 rolling_variance = (1-m) rolling_variance + m var*N/(N-1)
 *               with m = [net] bn_momentum (default 0.01, Darknet's; PyTorch
 *               uses 0.1)
 *               i.e. the running variance is the UNBIASED estimate, as in
 *               torch.nn.BatchNorm2d (Darknet divides by N-1 for both).
 *   inference:  normalise with rolling_mean and rolling_variance.
 *   eps = 1e-5 (PyTorch's default; Darknet uses 1e-6 in its CPU path).
 *   y = scales * x_hat + biases, x_hat = (x - mean) / sqrt(var + eps).
 */
#ifndef DN_BATCHNORM_H
#define DN_BATCHNORM_H

#include "layer_util.h"

#define DN_BN_EPS 1e-5f

/*
 * Sync batch norm ([net] bn_sync=1 in data-parallel training, set up by
 * distributed.c): the statistics of a training batch are those of the
 * whole batch, split among `replicas` replicas of `batch` images each.
 * sum(ctx, buf, n) replaces buf[0..n-1] by its sum over every replica
 * (a collective: every replica calls it in the same order).
 */
typedef struct dn_bn_sync {
    int (*sum)(void *ctx, float *buf, long n);
    void *ctx;
    int replicas;
} dn_bn_sync;

typedef struct dn_bn {
    int batch, channels;
    long spatial;
    float *scales;           /* [channels], gamma; a learned parameter */
    float *rolling_mean;     /* [channels] */
    float *rolling_variance; /* [channels] */
    float *mean, *inv_std;   /* [channels]: statistics of the last forward */
    float *x_hat;            /* [batch, channels, spatial] of the last forward */
    float *sums;             /* [2*channels]: backward scratch */
    float momentum;          /* weight of the new batch in the rolling stats */
    /* &net->bn_sync (the layer sets it): while *sync is set, training
     * statistics are the whole batch's, over every replica */
    dn_bn_sync *const *sync;
} dn_bn;

/* Allocates everything; scales = 1, rolling mean 0, rolling variance 1. */
void dn_bn_init(dn_bn *bn, int batch, int channels, long spatial,
                float momentum);
void dn_bn_free(dn_bn *bn); /* safe on a zeroed or freed dn_bn */
/* Channel c's training statistics from its batch mean and biased variance
 * over N values (a negative variance, rounding's, is taken as 0): mean,
 * inv_std, and the rolling update with the unbiased variance. */
void dn_bn_set_statistics(dn_bn *bn, int c, double mean, double var,
                          double N);

/*
 * in:  x [batch, channels, spatial];  out: y, the same shape (y may be x).
 * biases: [channels], beta. Training mode uses (and records) batch
 * statistics and updates the rolling ones.
 */
void dn_bn_forward(dn_bn *bn, const float *x, float *y, const float *biases,
                   int train);
/*
 * in: dy = dL/dy of the last forward. Adds dL/dgamma into scales_grad and
 * dL/dbeta into biases_grad, and writes dL/dx into dx (ADDS when accumulate
 * is set; dx may be dy when it is not; dx may be NULL). In training mode the
 * batch statistics depend on x:
 *   dx = gamma*inv_std * (dy - mean(dy) - x_hat * mean(dy * x_hat))
 * (means over the N values of a channel); in inference mode BN is the affine
 * map dx = gamma*inv_std * dy.
 */
void dn_bn_backward(dn_bn *bn, const float *dy, float *dx, int accumulate,
                    float *scales_grad, float *biases_grad, int train);

/*
 * The output stage of a weighted layer, as in Darknet's conv and connected:
 *   y = act(BN(x) with beta = biases)   when batch_normalize
 *   y = act(x + biases)                 otherwise
 * applied in place to the layer's output.
 */
typedef struct dn_post {
    int batch, channels;
    long spatial;
    int batch_normalize;
    dn_activation activation;
    dn_bn bn;   /* when batch_normalize */
    float *pre; /* pre-activation copy, when the derivative needs it */
} dn_post;

void dn_post_init(dn_post *p, int batch, int channels, long spatial,
                  int batch_normalize, dn_activation activation,
                  float bn_momentum);
/* Floats dn_bn_init and dn_post_init allocate (dn_layer_reserve). */
double dn_bn_floats(int batch, int channels, long spatial);
double dn_post_floats(int batch, int channels, long spatial,
                      int batch_normalize, dn_activation activation);
void dn_post_free(dn_post *p);
/* x: [batch, channels, spatial], in place */
void dn_post_forward(dn_post *p, float *x, const float *biases, int train);
/* y: the forward's output; delta: dL/dy in, dL/d(stage input) out (in
 * place). scales_grad is ignored without batch_normalize. */
void dn_post_backward(dn_post *p, const float *y, float *delta,
                      float *biases_grad, float *scales_grad, int train);

/*
 * The output stage with batch norm, from and to a convolution's
 * channel-blocked layout [batch][channels/k][spatial][k] (oneDNN's
 * nChw16c, nChw8c; k = 16 or 8): the same results as dn_post_forward and
 * dn_post_backward (sync batch norm included), in two passes each and
 * without the convolution's reorders (batchnorm_blocked.c). x_hat is kept
 * blocked, so a layer that uses them uses them for every pass.
 * dn_post_blocked_ok: whether p can (batch norm on, k divides the channels).
 * Forward: x, the convolution's blocked output -> y, the layer's output,
 * plain or (y_blocked) in the same blocked layout. Backward: dy = dL/dy,
 * plain or (dy_blocked) blocked -> dx blocked = dL/d(conv output); biases:
 * beta, as given to the forward.
 */
int dn_post_blocked_ok(const dn_post *p, int block);
void dn_post_forward_blocked(dn_post *p, const float *x, int k, float *y,
                             int y_blocked, const float *biases, int train);
void dn_post_backward_blocked(dn_post *p, const float *dy, int dy_blocked,
                              int k, float *dx, float *biases_grad,
                              float *scales_grad, const float *biases,
                              int train);

#endif

/*
 * batchnorm_blocked.c - a convolution's output stage with batch norm
 * (batchnorm.h's dn_post) read from and written to oneDNN's channel-blocked
 * layout, so the convolution needs no reorder of its output or of the
 * output's gradient (conv_onednn.h, dn_onednn_conv_block).
 *
 * Layout [batch][channels/k][spatial][k] (nChw16c for k = 16): value
 * (b, c, s) sits at ((b*CB + c/k)*S + s)*k + c%k, CB = channels/k. A tile
 * is one (b, c/k): S*k contiguous floats, k channels side by side, so the
 * per-channel work runs over k lanes at once.
 *
 * Passes, each a read of the convolution-sized tensors once:
 *   forward   1. statistics of x (blocked)
 *             2. x_hat = (x - mean) inv_std (kept blocked for backward),
 *                y = act(gamma x_hat + beta), written plain (the layer's
 *                output, which the next layers read)
 *   backward  1. dy' = dy act'(pre) with pre = gamma x_hat + beta (dy is
 *                plain, from the next layers): sum(dy'), sum(dy' x_hat)
 *             2. dx = gamma inv_std (dy' - mean(dy') - x_hat mean(dy' x_hat)),
 *                written blocked where the convolution's backward reads it
 * against the plain path's output reorder, statistics, normalise,
 * activation (forward) and activation, sums, dx, reorder (backward). The
 * activation's derivative is taken at pre, recomputed from x_hat, so no
 * pre-activation copy is kept. Formulas and conventions: batchnorm.h.
 * When every reader takes y as it is (network.c's choose_layouts), y and
 * dy are blocked too and nothing is transposed. Sync
 * batch norm (distributed.c) sums the same statistics over the replicas,
 * as batchnorm_layer.c does.
 *
 * With AVX2 and FMA (the default build) the plain side is read and written
 * in 8x8 squares (8 positions x 8 channels) transposed in registers, for
 * linear, relu and leaky; other activations and other CPUs take the
 * portable loops, which compute the same values.
 */
#include <math.h>
#include <stdlib.h>

#include "activation_math.h"
#include "batchnorm.h"
#include "xalloc.h"

#ifdef _OPENMP
#include <omp.h>
#endif

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define SIMD 1
#else
#define SIMD 0
#endif

/* below this many values, a loop runs on one thread */
#define PARALLEL_MIN 32768L
#define MAX_BLOCK 16
/* a lane's float sums run over at most this many positions, then go to
 * the channel's double sum */
#define RUN 256L

#define INLINE static inline __attribute__((always_inline))

int dn_post_blocked_ok(const dn_post *p, int block)
{
    return block > 0 && block <= MAX_BLOCK && block % 8 == 0 &&
           p->batch_normalize && p->channels % block == 0;
}

static int threads_for(double values)
{
#ifdef _OPENMP
    return values > PARALLEL_MIN ? omp_get_max_threads() : 1;
#else
    (void)values;
    return 1;
#endif
}

static int this_thread(void)
{
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

/* Per-channel constants of one tile: the k lanes from channel c0 on. */
typedef struct lanes {
    float mean[MAX_BLOCK], inv_std[MAX_BLOCK], gamma[MAX_BLOCK], beta[MAX_BLOCK];
} lanes;

static void lanes_of(const dn_bn *bn, const float *biases, long c0, int k,
                     lanes *ln)
{
    for (int j = 0; j < k; j++) {
        ln->mean[j] = bn->mean[c0 + j], ln->inv_std[j] = bn->inv_std[c0 + j];
        ln->gamma[j] = bn->scales[c0 + j], ln->beta[j] = biases[c0 + j];
    }
}

INLINE float act_grad_at(float pre, dn_activation a)
{
    switch (a) {
    case DN_LINEAR: return 1;
    case DN_RELU: return pre > 0 ? 1.0f : 0.0f;
    case DN_LEAKY: return pre > 0 ? 1.0f : 0.1f;
    default: return dn_act_grad(pre, dn_act(pre, a), a);
    }
}

/* ------------------------------------------------------ portable loops */

#if !SIMD
/* sum += x - shift, sq += (x - shift)^2, lane j of one tile */
static void lane_sums(const float *x, float shift, long S, int k, double *sum,
                      double *sq)
{
    for (long s0 = 0; s0 < S; s0 += RUN) {
        const long s1 = s0 + RUN < S ? s0 + RUN : S;
        float a = 0, q = 0;
        for (long s = s0; s < s1; s++) {
            const float d = x[s * k] - shift;
            a += d, q += d * d;
        }
        *sum += a, *sq += q;
    }
}
#endif

static void normalise_lane(const float *x, float *xh, float *y, long S, int k,
                           int j, const lanes *ln, dn_activation a)
{
    for (long s = 0; s < S; s++) {
        const float v = (x[s * k + j] - ln->mean[j]) * ln->inv_std[j];
        xh[s * k + j] = v;
        y[s] = dn_act(ln->gamma[j] * v + ln->beta[j], a);
    }
}

/* dy: the lane's plain plane; positions [s0, S) */
static void grad_sums_lane(const float *dy, const float *xh, long s0, long S,
                           int k, int j, const lanes *ln, dn_activation a,
                           double *sum, double *sum_x)
{
    for (long r0 = s0; r0 < S; r0 += RUN) {
        const long r1 = r0 + RUN < S ? r0 + RUN : S;
        float acc = 0, acc_x = 0;
        for (long s = r0; s < r1; s++) {
            const float v = xh[s * k + j];
            const float d = dy[s] * act_grad_at(ln->gamma[j] * v + ln->beta[j], a);
            acc += d, acc_x += d * v;
        }
        *sum += acc, *sum_x += acc_x;
    }
}

static void grad_lane(const float *dy, const float *xh, float *dx, long s0,
                      long S, int k, int j, const lanes *ln, dn_activation a,
                      float mean_dy, float mean_dyx)
{
    const float scale = ln->gamma[j] * ln->inv_std[j];
    for (long s = s0; s < S; s++) {
        const float v = xh[s * k + j];
        const float d = dy[s] * act_grad_at(ln->gamma[j] * v + ln->beta[j], a);
        dx[s * k + j] = scale * (d - mean_dy - v * mean_dyx);
    }
}

/* ------------------------------------------------- AVX2 8-lane groups */
#if SIMD

/* r[i] = row i of an 8x8 block of floats -> r[j] = its column j */
INLINE void transpose8(__m256 r[8])
{
    const __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
    const __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
    const __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
    const __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
    const __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
    const __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
    const __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
    const __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
    r[0] = _mm256_permute2f128_ps(u0, u4, 0x20), r[4] = _mm256_permute2f128_ps(u0, u4, 0x31);
    r[1] = _mm256_permute2f128_ps(u1, u5, 0x20), r[5] = _mm256_permute2f128_ps(u1, u5, 0x31);
    r[2] = _mm256_permute2f128_ps(u2, u6, 0x20), r[6] = _mm256_permute2f128_ps(u2, u6, 0x31);
    r[3] = _mm256_permute2f128_ps(u3, u7, 0x20), r[7] = _mm256_permute2f128_ps(u3, u7, 0x31);
}

/* the activations with vector forms here */
static int simd_act(dn_activation a)
{
    return a == DN_LINEAR || a == DN_RELU || a == DN_LEAKY;
}

INLINE __m256 act8(__m256 v, dn_activation a)
{
    if (a == DN_RELU)
        return _mm256_max_ps(v, _mm256_setzero_ps());
    if (a == DN_LEAKY)
        return _mm256_max_ps(v, _mm256_mul_ps(v, _mm256_set1_ps(0.1f)));
    return v;
}

/* d times the activation's derivative at pre */
INLINE __m256 grad8(__m256 d, __m256 pre, dn_activation a)
{
    if (a == DN_LINEAR)
        return d;
    const __m256 pos = _mm256_cmp_ps(pre, _mm256_setzero_ps(), _CMP_GT_OQ);
    if (a == DN_RELU)
        return _mm256_and_ps(d, pos);
    return _mm256_blendv_ps(_mm256_mul_ps(d, _mm256_set1_ps(0.1f)), d, pos);
}

INLINE void add8(double *to, __m256 v)
{
    float f[8];
    _mm256_storeu_ps(f, v);
    for (int j = 0; j < 8; j++)
        to[j] += f[j];
}

/* statistics: lanes j0..j0+7 of one tile */
static void sums8(const float *x, const float *shift, long S, int k,
                  double *sum, double *sq)
{
    const __m256 sh = _mm256_loadu_ps(shift);
    for (long s0 = 0; s0 < S; s0 += RUN) {
        const long s1 = s0 + RUN < S ? s0 + RUN : S;
        __m256 a = _mm256_setzero_ps(), q = _mm256_setzero_ps();
        for (long s = s0; s < s1; s++) {
            const __m256 d = _mm256_sub_ps(_mm256_loadu_ps(x + s * k), sh);
            a = _mm256_add_ps(a, d);
            q = _mm256_fmadd_ps(d, d, q);
        }
        add8(sum, a), add8(sq, q);
    }
}

/* forward pass 2, lanes j0..j0+7; y: lane j0's plain plane */
INLINE void normalise8(const float *x, float *xh, float *y, long S, int k,
                       int j0, const lanes *ln, dn_activation a)
{
    const __m256 m = _mm256_loadu_ps(ln->mean + j0);
    const __m256 is = _mm256_loadu_ps(ln->inv_std + j0);
    const __m256 g = _mm256_loadu_ps(ln->gamma + j0);
    const __m256 be = _mm256_loadu_ps(ln->beta + j0);
    long s = 0;
    for (; s + 8 <= S; s += 8) {
        __m256 r[8];
        for (int i = 0; i < 8; i++) {
            const long at = (s + i) * k + j0;
            const __m256 v = _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(x + at), m), is);
            _mm256_storeu_ps(xh + at, v);
            r[i] = act8(_mm256_fmadd_ps(g, v, be), a);
        }
        transpose8(r);
        for (int j = 0; j < 8; j++)
            _mm256_storeu_ps(y + j * S + s, r[j]);
    }
    for (; s < S; s++)
        for (int j = j0; j < j0 + 8; j++) {
            const float v = (x[s * k + j] - ln->mean[j]) * ln->inv_std[j];
            xh[s * k + j] = v;
            y[(j - j0) * S + s] = dn_act(ln->gamma[j] * v + ln->beta[j], a);
        }
}

/* The plain gradient of positions s..s+7 of lanes j0..j0+7 (dy: lane j0's
 * plane), as 8 vectors of lanes, times the activation's derivative;
 * v[i]: x_hat at position s+i. */
INLINE void square8(const float *dy, const float *xh, long S, long s, int k,
                    int j0, __m256 g, __m256 be, dn_activation a, __m256 d[8],
                    __m256 v[8])
{
    for (int j = 0; j < 8; j++)
        d[j] = _mm256_loadu_ps(dy + j * S + s);
    transpose8(d);
    for (int i = 0; i < 8; i++) {
        v[i] = _mm256_loadu_ps(xh + (s + i) * k + j0);
        d[i] = grad8(d[i], _mm256_fmadd_ps(g, v[i], be), a);
    }
}

/* backward pass 1, lanes j0..j0+7 (the last S % 8 positions by the
 * portable loop) */
INLINE void grad_sums8(const float *dy, const float *xh, long S, int k, int j0,
                       const lanes *ln, dn_activation a, double *sum,
                       double *sum_x)
{
    const __m256 g = _mm256_loadu_ps(ln->gamma + j0);
    const __m256 be = _mm256_loadu_ps(ln->beta + j0);
    __m256 acc = _mm256_setzero_ps(), acc_x = _mm256_setzero_ps();
    const long S8 = S / 8 * 8;
    for (long s = 0; s < S8; s += 8) {
        __m256 d[8], v[8];
        square8(dy, xh, S, s, k, j0, g, be, a, d, v);
        for (int i = 0; i < 8; i++) {
            acc = _mm256_add_ps(acc, d[i]);
            acc_x = _mm256_fmadd_ps(d[i], v[i], acc_x);
        }
        if ((s + 8) % RUN == 0 || s + 8 == S8) {
            add8(sum, acc), add8(sum_x, acc_x);
            acc = acc_x = _mm256_setzero_ps();
        }
    }
    for (int j = 0; j < 8; j++)
        grad_sums_lane(dy + j * S, xh, S8, S, k, j0 + j, ln, a, sum + j,
                       sum_x + j);
}

/* backward pass 2, lanes j0..j0+7 */
INLINE void grad8_tile(const float *dy, const float *xh, float *dx, long S,
                       int k, int j0, const lanes *ln, dn_activation a,
                       const float *mean_dy, const float *mean_dyx)
{
    const __m256 g = _mm256_loadu_ps(ln->gamma + j0);
    const __m256 be = _mm256_loadu_ps(ln->beta + j0);
    const __m256 scale = _mm256_mul_ps(g, _mm256_loadu_ps(ln->inv_std + j0));
    const __m256 mdy = _mm256_loadu_ps(mean_dy), mdyx = _mm256_loadu_ps(mean_dyx);
    const long S8 = S / 8 * 8;
    for (long s = 0; s < S8; s += 8) {
        __m256 d[8], v[8];
        square8(dy, xh, S, s, k, j0, g, be, a, d, v);
        for (int i = 0; i < 8; i++) {
            const __m256 t = _mm256_sub_ps(_mm256_sub_ps(d[i], mdy),
                                           _mm256_mul_ps(v[i], mdyx));
            _mm256_storeu_ps(dx + (s + i) * k + j0, _mm256_mul_ps(scale, t));
        }
    }
    for (int j = 0; j < 8; j++)
        grad_lane(dy + j * S, xh, dx, S8, S, k, j0 + j, ln, a, mean_dy[j],
                  mean_dyx[j]);
}

/* The same three loops with y or dy blocked as well: no transposes. */
INLINE void normalise8_blocked(const float *x, float *xh, float *y, long S,
                               int k, int j0, const lanes *ln, dn_activation a)
{
    const __m256 m = _mm256_loadu_ps(ln->mean + j0);
    const __m256 is = _mm256_loadu_ps(ln->inv_std + j0);
    const __m256 g = _mm256_loadu_ps(ln->gamma + j0);
    const __m256 be = _mm256_loadu_ps(ln->beta + j0);
    for (long s = 0; s < S; s++) {
        const long at = s * k + j0;
        const __m256 v = _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(x + at), m), is);
        _mm256_storeu_ps(xh + at, v);
        _mm256_storeu_ps(y + at, act8(_mm256_fmadd_ps(g, v, be), a));
    }
}

INLINE void grad_sums8_blocked(const float *dy, const float *xh, long S, int k,
                               int j0, const lanes *ln, dn_activation a,
                               double *sum, double *sum_x)
{
    const __m256 g = _mm256_loadu_ps(ln->gamma + j0);
    const __m256 be = _mm256_loadu_ps(ln->beta + j0);
    for (long s0 = 0; s0 < S; s0 += RUN) {
        const long s1 = s0 + RUN < S ? s0 + RUN : S;
        __m256 acc = _mm256_setzero_ps(), acc_x = _mm256_setzero_ps();
        for (long s = s0; s < s1; s++) {
            const long at = s * k + j0;
            const __m256 v = _mm256_loadu_ps(xh + at);
            const __m256 d = grad8(_mm256_loadu_ps(dy + at),
                                   _mm256_fmadd_ps(g, v, be), a);
            acc = _mm256_add_ps(acc, d);
            acc_x = _mm256_fmadd_ps(d, v, acc_x);
        }
        add8(sum, acc), add8(sum_x, acc_x);
    }
}

INLINE void grad8_blocked(const float *dy, const float *xh, float *dx, long S,
                          int k, int j0, const lanes *ln, dn_activation a,
                          const float *mean_dy, const float *mean_dyx)
{
    const __m256 g = _mm256_loadu_ps(ln->gamma + j0);
    const __m256 be = _mm256_loadu_ps(ln->beta + j0);
    const __m256 scale = _mm256_mul_ps(g, _mm256_loadu_ps(ln->inv_std + j0));
    const __m256 mdy = _mm256_loadu_ps(mean_dy), mdyx = _mm256_loadu_ps(mean_dyx);
    for (long s = 0; s < S; s++) {
        const long at = s * k + j0;
        const __m256 v = _mm256_loadu_ps(xh + at);
        const __m256 d = grad8(_mm256_loadu_ps(dy + at),
                               _mm256_fmadd_ps(g, v, be), a);
        const __m256 t = _mm256_sub_ps(_mm256_sub_ps(d, mdy),
                                       _mm256_mul_ps(v, mdyx));
        _mm256_storeu_ps(dx + at, _mm256_mul_ps(scale, t));
    }
}

/* the activation as a constant, so each body is compiled for it */
#define BY_ACT(a, CALL)                                                      \
    do {                                                                     \
        if ((a) == DN_RELU)                                                  \
            CALL(DN_RELU);                                                   \
        else if ((a) == DN_LEAKY)                                            \
            CALL(DN_LEAKY);                                                  \
        else                                                                 \
            CALL(DN_LINEAR);                                                 \
    } while (0)

#else
static int simd_act(dn_activation a)
{
    (void)a;
    return 0;
}
#endif

/* ------------------------------------------------------------ the passes */

/* Per-channel sums of x - shift and (x - shift)^2 over the tiles, summed
 * over threads in thread order (the same result from run to run) into
 * sum[C], sq[C]. shift: a value per channel, or NULL for each channel's
 * value at b = 0, s = 0. */
static void channel_sums(const dn_bn *bn, const float *x, int k,
                         const float *shift, double *sum, double *sq)
{
    const int C = bn->channels, CB = C / k;
    const long S = bn->spatial, tiles = (long)bn->batch * CB;
    const int T = threads_for((double)bn->batch * S * C);
    double *part = dn_xcalloc((size_t)T * 2 * C, sizeof *part);
#pragma omp parallel num_threads(T) if (T > 1)
    {
        double *ps = part + 2L * C * this_thread(), *pq = ps + C;
#pragma omp for schedule(static)
        for (long t = 0; t < tiles; t++) {
            const long c0 = t % CB * k;
            const float *sh = shift ? shift + c0 : x + c0 * S;
            const float *in = x + t * S * k;
#if SIMD
            for (int j = 0; j < k; j += 8)
                sums8(in + j, sh + j, S, k, ps + c0 + j, pq + c0 + j);
#else
            for (int j = 0; j < k; j++)
                lane_sums(in + j, sh[j], S, k, ps + c0 + j, pq + c0 + j);
#endif
        }
    }
    for (int c = 0; c < C; c++) {
        sum[c] = sq[c] = 0;
        for (int t = 0; t < T; t++)
            sum[c] += part[2L * C * t + c], sq[c] += part[2L * C * t + C + c];
    }
    free(part);
}

/*
 * Training statistics of a blocked tensor: sums around each channel's
 * first value (so a large mean does not cancel the variance); with sync
 * batch norm, the whole batch's over every replica in two sums of C floats
 * (the mean, then the squared deviations from it), as batchnorm_layer.c's
 * synced_statistics.
 */
static void blocked_statistics(dn_bn *bn, const float *x, int k)
{
    const int C = bn->channels;
    const long S = bn->spatial;
    const dn_bn_sync *sync = bn->sync ? *bn->sync : NULL;
    const double N = (double)bn->batch * S * (sync ? sync->replicas : 1);
    double *sum = dn_xcalloc(2L * C, sizeof *sum), *sq = sum + C;
    if (!sync) {
        channel_sums(bn, x, k, NULL, sum, sq);
        for (int c = 0; c < C; c++) {
            const double shift = x[(long)c / k * S * k + c % k];
            const double mean = sum[c] / N;
            dn_bn_set_statistics(bn, c, mean + shift,
                                 sq[c] / N - mean * mean, N);
        }
        free(sum);
        return;
    }
    float *buf = bn->sums; /* [2C] scratch, free in the forward */
    float *zero = dn_xcalloc((size_t)C, sizeof *zero);
    channel_sums(bn, x, k, zero, sum, sq);
    for (int c = 0; c < C; c++)
        buf[c] = (float)sum[c];
    sync->sum(sync->ctx, buf, C);
    for (int c = 0; c < C; c++)
        zero[c] = bn->mean[c] = (float)(buf[c] / N); /* zero: now the mean */
    channel_sums(bn, x, k, zero, sum, sq);
    for (int c = 0; c < C; c++)
        buf[C + c] = (float)sq[c];
    sync->sum(sync->ctx, buf + C, C);
    for (int c = 0; c < C; c++)
        dn_bn_set_statistics(bn, c, bn->mean[c], buf[C + c] / N, N);
    free(zero);
    free(sum);
}

/* ----------------------------- the same passes with y and dy blocked too */

INLINE void normalise_blocked(const float *x, float *xh, float *y, long S,
                              const int k, const lanes *ln, dn_activation a)
{
    for (long s = 0; s < S; s++)
        for (int j = 0; j < k; j++) {
            const long at = s * k + j;
            const float v = (x[at] - ln->mean[j]) * ln->inv_std[j];
            xh[at] = v;
            y[at] = dn_act(ln->gamma[j] * v + ln->beta[j], a);
        }
}

INLINE void grad_sums_blocked(const float *dy, const float *xh, long S,
                              const int k, const lanes *ln, dn_activation a,
                              double *sum, double *sum_x)
{
    for (long s0 = 0; s0 < S; s0 += RUN) {
        const long s1 = s0 + RUN < S ? s0 + RUN : S;
        float acc[MAX_BLOCK] = {0}, acc_x[MAX_BLOCK] = {0};
        for (long s = s0; s < s1; s++)
            for (int j = 0; j < k; j++) {
                const float v = xh[s * k + j];
                const float d = dy[s * k + j] *
                                act_grad_at(ln->gamma[j] * v + ln->beta[j], a);
                acc[j] += d, acc_x[j] += d * v;
            }
        for (int j = 0; j < k; j++)
            sum[j] += acc[j], sum_x[j] += acc_x[j];
    }
}

INLINE void grad_blocked(const float *dy, const float *xh, float *dx, long S,
                         const int k, const lanes *ln, dn_activation a,
                         const float *mean_dy, const float *mean_dyx)
{
    float scale[MAX_BLOCK];
    for (int j = 0; j < k; j++)
        scale[j] = ln->gamma[j] * ln->inv_std[j];
    for (long s = 0; s < S; s++)
        for (int j = 0; j < k; j++) {
            const long at = s * k + j;
            const float v = xh[at];
            const float d = dy[at] *
                            act_grad_at(ln->gamma[j] * v + ln->beta[j], a);
            dx[at] = scale[j] * (d - mean_dy[j] - v * mean_dyx[j]);
        }
}

/* block and activation as constants, so each loop is compiled for them */
#define BY_K_ACT(K, a, CALL)                                                 \
    do {                                                                     \
        switch (a) {                                                         \
        case DN_LINEAR: CALL(K, DN_LINEAR); break;                           \
        case DN_RELU: CALL(K, DN_RELU); break;                               \
        case DN_LEAKY: CALL(K, DN_LEAKY); break;                             \
        default: CALL(K, a); break;                                          \
        }                                                                    \
    } while (0)
#define BY_BLOCK_ACT(k, a, CALL)                                             \
    do {                                                                     \
        if ((k) == 16)                                                       \
            BY_K_ACT(16, a, CALL);                                           \
        else                                                                 \
            BY_K_ACT(8, a, CALL);                                            \
    } while (0)

/* ------------------------------------------------------------ entry points */

void dn_post_forward_blocked(dn_post *p, const float *x, int k, float *y,
                             int y_blocked, const float *biases, int train)
{
    dn_bn *bn = &p->bn;
    const int C = p->channels, CB = C / k;
    const long S = p->spatial, tiles = (long)p->batch * CB;
    if (train) {
        blocked_statistics(bn, x, k);
    } else {
        for (int c = 0; c < C; c++) {
            bn->mean[c] = bn->rolling_mean[c];
            bn->inv_std[c] = 1.0f / sqrtf(bn->rolling_variance[c] + DN_BN_EPS);
        }
    }
    const dn_activation act = p->activation;
    const int simd = simd_act(act);
#pragma omp parallel for schedule(static) if (tiles * S * k > PARALLEL_MIN)
    for (long t = 0; t < tiles; t++) {
        const long b = t / CB, c0 = t % CB * k;
        lanes ln;
        lanes_of(bn, biases, c0, k, &ln);
        const float *in = x + t * S * k;
        float *xh = bn->x_hat + t * S * k;
        if (y_blocked) {
            float *out = y + t * S * k;
            if (simd) {
#if SIMD
                for (int j0 = 0; j0 < k; j0 += 8) {
#define NORMALISE8_B(A) normalise8_blocked(in, xh, out, S, k, j0, &ln, A)
                    BY_ACT(act, NORMALISE8_B);
#undef NORMALISE8_B
                }
#endif
                continue;
            }
#define NORMALISE_B(K, A) normalise_blocked(in, xh, out, S, K, &ln, A)
            BY_BLOCK_ACT(k, act, NORMALISE_B);
#undef NORMALISE_B
            continue;
        }
        float *out = y + (b * C + c0) * S;
        if (simd) {
#if SIMD
            for (int j0 = 0; j0 < k; j0 += 8) {
#define NORMALISE(A) normalise8(in, xh, out + j0 * S, S, k, j0, &ln, A)
                BY_ACT(act, NORMALISE);
#undef NORMALISE
            }
#endif
        } else {
            for (int j = 0; j < k; j++)
                normalise_lane(in, xh, out + j * S, S, k, j, &ln, act);
        }
    }
}

void dn_post_backward_blocked(dn_post *p, const float *dy, int dy_blocked,
                              int k, float *dx, float *biases_grad,
                              float *scales_grad, const float *biases,
                              int train)
{
    dn_bn *bn = &p->bn;
    const int C = p->channels, CB = C / k;
    const long S = p->spatial, tiles = (long)p->batch * CB;
    const dn_bn_sync *sync = train && bn->sync ? *bn->sync : NULL;
    const double N = (double)p->batch * S * (sync ? sync->replicas : 1);
    const dn_activation act = p->activation;
    const int simd = simd_act(act);
    const int T = threads_for((double)p->batch * S * C);
    double *part = dn_xcalloc((size_t)T * 2 * C, sizeof *part);
#pragma omp parallel num_threads(T) if (T > 1)
    {
        double *sum = part + 2L * C * this_thread(), *sum_x = sum + C;
#pragma omp for schedule(static)
        for (long t = 0; t < tiles; t++) {
            const long b = t / CB, c0 = t % CB * k;
            lanes ln;
            lanes_of(bn, biases, c0, k, &ln);
            const float *xh = bn->x_hat + t * S * k;
            if (dy_blocked) {
                const float *d = dy + t * S * k;
                if (simd) {
#if SIMD
                    for (int j0 = 0; j0 < k; j0 += 8) {
#define SUMS8_B(A) grad_sums8_blocked(d, xh, S, k, j0, &ln, A, sum + c0 + j0, \
                                      sum_x + c0 + j0)
                        BY_ACT(act, SUMS8_B);
#undef SUMS8_B
                    }
#endif
                    continue;
                }
#define SUMS_B(K, A) grad_sums_blocked(d, xh, S, K, &ln, A, sum + c0, sum_x + c0)
                BY_BLOCK_ACT(k, act, SUMS_B);
#undef SUMS_B
                continue;
            }
            const float *d = dy + (b * C + c0) * S;
            if (simd) {
#if SIMD
                for (int j0 = 0; j0 < k; j0 += 8) {
#define SUMS(A) grad_sums8(d + j0 * S, xh, S, k, j0, &ln, A, sum + c0 + j0, \
                           sum_x + c0 + j0)
                    BY_ACT(act, SUMS);
#undef SUMS
                }
#endif
            } else {
                for (int j = 0; j < k; j++)
                    grad_sums_lane(d + j * S, xh, 0, S, k, j, &ln, act,
                                   sum + c0 + j, sum_x + c0 + j);
            }
        }
    }
    /* this replica's sums are the parameter gradients (summed over the
     * replicas later); the means are over the whole batch */
    float *mean_dy = bn->sums, *mean_dyx = bn->sums + C;
    for (int c = 0; c < C; c++) {
        double sum = 0, sum_x = 0;
        for (int t = 0; t < T; t++)
            sum += part[2L * C * t + c], sum_x += part[2L * C * t + C + c];
        biases_grad[c] += (float)sum;
        scales_grad[c] += (float)sum_x;
        mean_dy[c] = train ? (float)(sync ? sum : sum / N) : 0.0f;
        mean_dyx[c] = train ? (float)(sync ? sum_x : sum_x / N) : 0.0f;
    }
    free(part);
    if (sync) {
        sync->sum(sync->ctx, bn->sums, 2L * C);
        for (int c = 0; c < 2 * C; c++)
            bn->sums[c] = (float)(bn->sums[c] / N);
    }
#pragma omp parallel for schedule(static) if (tiles * S * k > PARALLEL_MIN)
    for (long t = 0; t < tiles; t++) {
        const long b = t / CB, c0 = t % CB * k;
        lanes ln;
        lanes_of(bn, biases, c0, k, &ln);
        const float *xh = bn->x_hat + t * S * k;
        float *out = dx + t * S * k;
        if (dy_blocked) {
            const float *d = dy + t * S * k;
            if (simd) {
#if SIMD
                for (int j0 = 0; j0 < k; j0 += 8) {
#define GRAD8_B(A) grad8_blocked(d, xh, out, S, k, j0, &ln, A,              \
                                 mean_dy + c0 + j0, mean_dyx + c0 + j0)
                    BY_ACT(act, GRAD8_B);
#undef GRAD8_B
                }
#endif
                continue;
            }
#define GRAD_B(K, A)                                                        \
    grad_blocked(d, xh, out, S, K, &ln, A, mean_dy + c0, mean_dyx + c0)
            BY_BLOCK_ACT(k, act, GRAD_B);
#undef GRAD_B
            continue;
        }
        const float *d = dy + (b * C + c0) * S;
        if (simd) {
#if SIMD
            for (int j0 = 0; j0 < k; j0 += 8) {
#define GRAD(A) grad8_tile(d + j0 * S, xh, out, S, k, j0, &ln, A,           \
                           mean_dy + c0 + j0, mean_dyx + c0 + j0)
                BY_ACT(act, GRAD);
#undef GRAD
            }
#endif
        } else {
            for (int j = 0; j < k; j++)
                grad_lane(d + j * S, xh, out, 0, S, k, j, &ln, act,
                          mean_dy[c0 + j], mean_dyx[c0 + j]);
        }
    }
}

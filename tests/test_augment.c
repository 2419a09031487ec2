/*
 * test_augment.c - preprocessing and augmentation (augment.c): shifts and
 * flips, crops, mean, normalisation, GCN, contrast stretch, ZCA and its
 * cache, errors naming the key, and the experiments' whole pipeline as the
 * network sees it.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testutil.h"

size_t __sanitizer_get_current_allocated_bytes(void); /* the ASan runtime */

/* ------------------------------------------------------------ augmentation */

static void test_shift_flip_on_tiny_image(void **state)
{
    const float in[6] = {1, 2, 3, 4, 5, 6}; /* [1, 2, 3] */
    float out[6];
    static const struct {
        int dx, dy, flip;
        float want[6];
    } cases[] = {
        {0, 0, 0, {1, 2, 3, 4, 5, 6}},  {0, 0, 1, {3, 2, 1, 6, 5, 4}},
        {1, 0, 0, {2, 3, 0, 5, 6, 0}},  {-1, 0, 0, {0, 1, 2, 0, 4, 5}},
        {0, -1, 0, {0, 0, 0, 1, 2, 3}}, {0, 1, 0, {4, 5, 6, 0, 0, 0}},
        {1, 0, 1, {0, 3, 2, 0, 6, 5}},  {-2, 1, 1, {4, 0, 0, 0, 0, 0}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        dn_image_shift_flip(in, 1, 2, 3, cases[i].dx, cases[i].dy, cases[i].flip,
                            out);
        for (int j = 0; j < 6; j++)
            if (out[j] != cases[i].want[j])
                fail_msg("case %zu (dx %d dy %d flip %d): out[%d] = %g, want %g",
                         i, cases[i].dx, cases[i].dy, cases[i].flip, j, out[j],
                         cases[i].want[j]);
    }
}

static void test_flip_keeps_or_mirrors_about_half(void **state)
{
    dn_dataset *d = tu_synthetic_dataset(200, 2, 3, 4, 5);
    dn_augment *a;
    dn_error err = {""};
    assert_int_equal(tu_parse_augment("[net]\nflip=1\n", d, &a, &err), 0);
    long D = 24, flips = 0;
    float *x = malloc(200 * D * sizeof *x), *plain = malloc(200 * D * sizeof *x);
    float *scratch = malloc(200 * D * sizeof *x), *mirror = malloc(D * sizeof *x);
    long rec[200];
    for (long r = 0; r < 200; r++)
        rec[r] = r;
    dn_augment_apply(a, d, rec, 200, 9, 0, 1, x, scratch);
    dn_augment_apply(NULL, d, rec, 200, 9, 0, 1, plain, scratch);
    for (long r = 0; r < 200; r++) {
        dn_image_shift_flip(plain + r * D, 2, 3, 4, 0, 0, 1, mirror);
        int same = memcmp(x + r * D, plain + r * D, D * sizeof *x) == 0;
        int flipped = memcmp(x + r * D, mirror, D * sizeof *x) == 0;
        assert_true(same || flipped);
        flips += flipped;
    }
    assert_in_range(flips, 60, 140);
    /* validation: the random steps are off */
    dn_augment_apply(a, d, rec, 200, 9, 0, 0, x, scratch);
    assert_memory_equal(x, plain, 200 * D * sizeof *x);
    free(x), free(plain), free(scratch), free(mirror);
    dn_augment_free(a);
    dn_dataset_free(d);
}

static void test_crop_pad_is_a_bounded_shift(void **state)
{
    dn_dataset *d = tu_synthetic_dataset(100, 1, 5, 5, 3);
    dn_augment *a;
    dn_error err = {""};
    assert_int_equal(tu_parse_augment("[net]\ncrop_pad=2\n", d, &a, &err), 0);
    long D = 25, moved = 0;
    float x[25], plain[25], shifted[25], scratch[25];
    for (long r = 0; r < 100; r++) {
        dn_augment_apply(a, d, &r, 1, 3, 1, 1, x, scratch);
        dn_augment_apply(NULL, d, &r, 1, 3, 1, 1, plain, scratch);
        int found = 0;
        for (int dy = -2; dy <= 2 && !found; dy++)
            for (int dx = -2; dx <= 2 && !found; dx++) {
                dn_image_shift_flip(plain, 1, 5, 5, dx, dy, 0, shifted);
                if (memcmp(shifted, x, D * sizeof *x) == 0) {
                    found = 1;
                    moved += dx || dy;
                }
            }
        assert_true(found);
    }
    assert_true(moved > 50); /* 24 of 25 shifts move the image */
    dn_augment_free(a);
    dn_dataset_free(d);
}

/* Mean over an unshuffled pass of the loader's outputs, per element. */
static void pass_mean(const dn_dataset *d, const dn_augment *a, double *mean)
{
    long D = (long)d->c * d->h * d->w;
    dn_loader *l;
    dn_error err = {""};
    assert_int_equal(dn_loader_make(d, a, 7, (d->n + 6) / 7, 1, 0, 0, &l, &err), 0);
    float *x = malloc(7 * D * sizeof *x), truth[7 * 16];
    memset(mean, 0, D * sizeof *mean);
    for (long b = 0; b * 7 < d->n; b++) {
        int valid = dn_loader_get(l, b, x, truth, NULL);
        for (int i = 0; i < valid; i++)
            for (long j = 0; j < D; j++)
                mean[j] += x[i * D + j] / d->n;
    }
    free(x);
    dn_loader_free(l);
}

static void test_subtract_mean_centres_every_pixel(void **state)
{
    dn_dataset *d = tu_synthetic_dataset(40, 3, 2, 2, 4);
    dn_augment *a;
    dn_error err = {""};
    assert_int_equal(tu_parse_augment("[net]\nsubtract_mean=1\n", d, &a, &err), 0);
    double mean[12];
    pass_mean(d, a, mean);
    for (int j = 0; j < 12; j++)
        assert_true(fabs(mean[j]) < 1e-6);
    float x[12], scratch[12];
    long r = 5;
    dn_augment_apply(a, d, &r, 1, 0, 0, 0, x, scratch);
    assert_float_equal(x[3], d->pixels[5 * 12 + 3] / 255.0f - a->mean_image[3], 1e-6);
    dn_augment_free(a);
    dn_dataset_free(d);
}

static void test_normalize_explicit_and_computed(void **state)
{
    dn_dataset *d = tu_synthetic_dataset(30, 2, 3, 3, 4);
    dn_augment *a;
    dn_error err = {""};
    assert_int_equal(tu_parse_augment("[net]\nnormalize=1\nmean=0.5\nstd=0.25,0.5\n", d,
                               &a, &err), 0);
    float x[18], scratch[18];
    long r = 3;
    dn_augment_apply(a, d, &r, 1, 0, 0, 0, x, scratch);
    assert_float_equal(x[2], (d->pixels[3 * 18 + 2] / 255.0f - 0.5f) / 0.25f, 1e-5);
    assert_float_equal(x[11], (d->pixels[3 * 18 + 11] / 255.0f - 0.5f) / 0.5f, 1e-5);
    dn_augment_free(a);
    /* computed: each channel has mean 0 and variance 1 over the set */
    assert_int_equal(tu_parse_augment("[net]\nnormalize=1\n", d, &a, &err), 0);
    double sum[2] = {0}, sq[2] = {0};
    for (r = 0; r < 30; r++) {
        dn_augment_apply(a, d, &r, 1, 0, 0, 0, x, scratch);
        for (int j = 0; j < 18; j++)
            sum[j / 9] += x[j], sq[j / 9] += x[j] * x[j];
    }
    for (int ch = 0; ch < 2; ch++) {
        assert_true(fabs(sum[ch] / 270) < 1e-5);
        assert_true(fabs(sq[ch] / 270 - 1) < 1e-4);
    }
    dn_augment_free(a);
    dn_dataset_free(d);
}

static void test_gcn_and_contrast_stretch(void **state)
{
    dn_dataset *d = tu_synthetic_dataset(5, 1, 4, 4, 2);
    for (long j = 0; j < 16; j++) /* record 0 spans 50..125 */
        d->pixels[j] = (uint8_t)(50 + 5 * j);
    dn_augment *a;
    dn_error err = {""};
    float x[16], scratch[16];
    long r = 0;
    assert_int_equal(tu_parse_augment("[net]\ncontrast_stretch=1\n", d, &a, &err), 0);
    dn_augment_apply(a, d, &r, 1, 0, 0, 0, x, scratch);
    assert_float_equal(x[0], 0.0f, 1e-6);
    assert_float_equal(x[15], 1.0f, 1e-6);
    assert_float_equal(x[3], 15.0f / 75.0f, 1e-6);
    dn_augment_free(a);
    assert_int_equal(tu_parse_augment("[net]\ngcn=1\ngcn_scale=2\n", d, &a, &err), 0);
    for (r = 0; r < 5; r++) {
        dn_augment_apply(a, d, &r, 1, 0, 0, 0, x, scratch);
        double s = 0, q = 0;
        for (int j = 0; j < 16; j++)
            s += x[j], q += x[j] * x[j];
        assert_true(fabs(s / 16) < 1e-5);
        assert_true(fabs(sqrt(q / 16) - 2) < 1e-4);
    }
    dn_augment_free(a);
    dn_dataset_free(d);
}

static void test_parse_errors_name_the_key(void **state)
{
    dn_dataset *d = tu_synthetic_dataset(4, 3, 2, 2, 2);
    static const struct {
        const char *cfg, *expect;
    } cases[] = {
        {"[net]\nflip=2\n", "test.cfg:2: [net] flip: expected an integer in [0, 1]"},
        {"[net]\nnormalize=1\nmean=0.1,0.2\n", "[net] mean: 2 values for 3 channels"},
        {"[net]\nnormalize=1\nstd=0\n", "[net] std: every std must be > 0"},
        {"[net]\ncontrast_stretch=1\nstretch_low=50\nstretch_high=10\n",
         "stretch_high: must be above stretch_low=50"},
        {"[net]\nzca=1\nzca_epsilon=-1\n", "[net] zca_epsilon: expected a number"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        dn_augment *a = (dn_augment *)d;
        dn_error err = {""};
        assert_int_equal(tu_parse_augment(cases[i].cfg, d, &a, &err), -1);
        assert_null(a);
        assert_contains(err.msg, cases[i].expect);
    }
    dn_augment *a;
    dn_error err = {""};
    assert_int_equal(tu_parse_augment("[net]\nzca=1\n", NULL, &a, &err), -1);
    assert_contains(err.msg, "zca=1 needs the training set");
    assert_int_equal(tu_parse_augment("[net]\nflip=1\ncrop_pad=4\n", NULL, &a, &err), 0);
    char buf[128];
    dn_augment_describe(a, buf, sizeof buf);
    assert_string_equal(buf, "crop_pad=4 flip");
    dn_augment_free(a);
    dn_augment_describe(NULL, buf, sizeof buf);
    assert_string_equal(buf, "none");
    dn_dataset_free(d);
}

/* Correlated Gaussian data, 6 dimensions: x = 128 + 12 L z, L lower ones. */
static dn_dataset *correlated(long n)
{
    dn_dataset *d = dn_dataset_alloc(n, 1, 2, 3, 2, "correlated");
    dn_rng r;
    dn_rng_seed(&r, 42);
    for (long i = 0; i < n; i++) {
        double z[6], acc = 0;
        for (int j = 0; j < 6; j++) {
            z[j] = dn_rng_normal(&r);
            acc += z[j];
            double v = 128 + 12 * acc;
            d->pixels[i * 6 + j] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : lrint(v));
        }
    }
    d->dir = strdup(tu_tmpdir());
    return d;
}

static void test_zca_whitens_to_identity_and_caches(void **state)
{
    dn_dataset *d = correlated(4000);
    dn_augment *a, *b;
    dn_error err = {""};
    assert_int_equal(tu_parse_augment("[net]\nzca=1\nzca_epsilon=1e-7\n", d, &a, &err), 0);
    assert_non_null(a->zca_cache);
    assert_int_equal(a->zca_from_cache, 0);
    assert_int_equal(access(a->zca_cache, R_OK), 0);
    /* covariance of the whitened set through the loader (validation mode) */
    dn_loader *l;
    assert_int_equal(dn_loader_make(d, a, 64, (4000 + 63) / 64, 5, 0, 0, &l, &err), 0);
    double mean[6] = {0}, cov[36] = {0};
    float x[64 * 6], truth[64 * 2];
    for (long bi = 0; bi < (4000 + 63) / 64; bi++) {
        int valid = dn_loader_get(l, bi, x, truth, NULL);
        for (int i = 0; i < valid; i++)
            for (int p = 0; p < 6; p++) {
                mean[p] += x[i * 6 + p] / 4000;
                for (int q = 0; q < 6; q++)
                    cov[p * 6 + q] += (double)x[i * 6 + p] * x[i * 6 + q] / 4000;
            }
    }
    dn_loader_free(l);
    /* tolerance: 1e-3 covers float rounding and lambda / (lambda + eps) */
    for (int p = 0; p < 6; p++) {
        assert_true(fabs(mean[p]) < 1e-4);
        for (int q = 0; q < 6; q++) {
            double c = cov[p * 6 + q] - mean[p] * mean[q];
            if (fabs(c - (p == q)) > 1e-3)
                fail_msg("whitened covariance [%d][%d] = %g", p, q, c);
        }
    }
    for (int p = 0; p < 6; p++) /* W is symmetric */
        for (int q = 0; q < 6; q++)
            assert_float_equal(a->zca_matrix[p * 6 + q], a->zca_matrix[q * 6 + p],
                               1e-5);
    /* the second fit comes from the cache, bit for bit */
    assert_int_equal(tu_parse_augment("[net]\nzca=1\nzca_epsilon=1e-7\n", d, &b, &err), 0);
    assert_int_equal(b->zca_from_cache, 1);
    assert_string_equal(a->zca_cache, b->zca_cache);
    assert_memory_equal(a->zca_matrix, b->zca_matrix, 36 * sizeof(float));
    assert_memory_equal(a->zca_mean, b->zca_mean, 6 * sizeof(float));
    char buf[128];
    dn_augment_describe(b, buf, sizeof buf);
    assert_string_equal(buf, "zca(eps=1e-07, cached)");
    dn_augment_free(b);
    /* another epsilon is another file; a corrupt file is refitted */
    assert_int_equal(tu_parse_augment("[net]\nzca=1\nzca_epsilon=0.01\n", d, &b, &err), 0);
    assert_string_not_equal(a->zca_cache, b->zca_cache);
    tu_write_bytes(strrchr(b->zca_cache, '/') + 1, "garbage", 7);
    dn_augment_free(b);
    assert_int_equal(tu_parse_augment("[net]\nzca=1\nzca_epsilon=0.01\n", d, &b, &err), 0);
    assert_int_equal(b->zca_from_cache, 0);
    dn_augment_free(b);
    /* no cache, and an unwritable cache directory (a warning, not an error) */
    assert_int_equal(tu_parse_augment("[net]\nzca=1\nzca_cache=none\n", d, &b, &err), 0);
    assert_null(b->zca_cache);
    dn_augment_free(b);
    assert_int_equal(tu_parse_augment("[net]\nzca=1\nzca_cache=/nonexistent/dir\n", d, &b,
                               &err), 0);
    assert_null(b->zca_cache);
    dn_augment_free(b);
    /* auto with a data directory nobody can write: the user's cache */
    char xdg[600], want[700];
    snprintf(xdg, sizeof xdg, "%s/xdg", tu_tmpdir());
    snprintf(want, sizeof want, "%s/darknet/zca-", xdg);
    setenv("XDG_CACHE_HOME", xdg, 1);
    free(d->dir);
    d->dir = strdup("/nonexistent/data");
    assert_int_equal(tu_parse_augment("[net]\nzca=1\n", d, &b, &err), 0);
    assert_non_null(b->zca_cache);
    assert_true(strncmp(b->zca_cache, want, strlen(want)) == 0);
    assert_int_equal(access(b->zca_cache, R_OK), 0);
    dn_augment_free(b);
    unsetenv("XDG_CACHE_HOME");
    dn_augment_free(a);
    dn_dataset_free(d);
}

/* ZCA on 3x1024x1024 inputs would need D x D matrices of 10^13 floats: an
 * error naming the key before anything is allocated (calloc of the
 * covariance failed, or aborted under ASan). */
static void test_zca_too_large_is_refused(void **state)
{
    dn_dataset *d = dn_dataset_alloc(2, 3, 1024, 1024, 10, "big");
    assert_non_null(d);
    dn_cfg *cfg;
    dn_error err = {""};
    assert_int_equal(dn_cfg_parse_string("[net]\nzca=1\nzca_cache=none\n",
                                         "z.cfg", &cfg, &err), 0);
    dn_augment *a = (dn_augment *)d;
    const size_t before = __sanitizer_get_current_allocated_bytes();
    assert_int_equal(dn_augment_parse(&cfg->sections[0], d, &a, &err), -1);
    assert_true(__sanitizer_get_current_allocated_bytes() < before + (1 << 20));
    assert_null(a);
    assert_contains(err.msg, "z.cfg:2: [net] zca: whitening 3x1024x1024 inputs");
    assert_contains(err.msg, "more than the machine's memory");
    dn_cfg_free(cfg);
    dn_dataset_free(d);
}

/* -------------------------------------------- the experiments' pipeline */

/*
 * experiments/exp1.cfg and exp2.cfg turn on the paper's whole pipeline
 * (contrast stretch, mean image, GCN, ZCA; random crop and flip in
 * training). On Fashion-MNIST-shaped data, IDX 28x28 grey, with each
 * experiment's network (experiment 2's pads to 32x32 and copies the grey
 * channel three times, so the covariance that ZCA inverts is singular),
 * one batch trains and the inputs the network sees are
 *   centred  per channel, over an epoch: |mean| <= 1e-3 of the pixels'
 *            standard deviation in validation (0 up to rounding), <= 0.02
 *            in training, where the crops shift zeros in
 *   bounded  finite and |x| < 50: no direction of the singular covariance
 *            is blown up (zca_epsilon regularises)
 *   random   each training image is its validation image shifted by (dx,
 *            dy) in [-4, 4]^2 and mirrored or not; the draws differ
 *            between seeds and between epochs (batch index / batches per
 *            epoch), both flips and most shifts occur
 *   resumable  a fresh loader (a resumed run) gives batch k of the same
 *            seed bit for bit, whatever it was asked before
 */
#define PIPE_N 320 /* images; 10 batches of 32 */

/* Grey 28x28 "garments": per image a bright region whose size and place
 * follow the label, a left-right asymmetry (so flips show) and noise. */
static void write_pipeline_idx(void)
{
    static uint8_t img[16 + PIPE_N * 784], lab[8 + PIPE_N];
    const uint32_t ih[4] = {0x803, PIPE_N, 28, 28}, lh[2] = {0x801, PIPE_N};
    for (int i = 0; i < 16; i++)
        img[i] = (uint8_t)(ih[i / 4] >> (8 * (3 - i % 4)));
    for (int i = 0; i < 8; i++)
        lab[i] = (uint8_t)(lh[i / 4] >> (8 * (3 - i % 4)));
    dn_rng r;
    dn_rng_seed(&r, 17);
    for (int n = 0; n < PIPE_N; n++) {
        int k = n % 10, top = 2 + k, left = 4 + (int)(dn_rng_u64(&r) % 6);
        lab[8 + n] = (uint8_t)k;
        for (int y = 0; y < 28; y++)
            for (int x = 0; x < 28; x++) {
                int inside = y >= top && y < 26 && x >= left && x < left + 12 + k;
                double v = (inside ? 120 + 5 * x : 10) + 25 * dn_rng_normal(&r);
                img[16 + n * 784 + y * 28 + x] =
                    (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
            }
    }
    tu_write_bytes("pipe-images-idx3-ubyte", img, sizeof img);
    tu_write_bytes("pipe-labels-idx1-ubyte", lab, sizeof lab);
}

typedef struct draw {
    int dx, dy, flip;
} draw;

/* The (dx, dy, flip) that turns validation image v into training image t,
 * or fails the test. */
static draw find_draw(const float *v, const float *t, int c, int h, int w,
                      float *tmp)
{
    for (int flip = 0; flip < 2; flip++)
        for (int dy = -4; dy <= 4; dy++)
            for (int dx = -4; dx <= 4; dx++) {
                dn_image_shift_flip(v, c, h, w, dx, dy, flip, tmp);
                if (memcmp(tmp, t, sizeof(float) * c * h * w) == 0)
                    return (draw){dx, dy, flip};
            }
    fail_msg("a training image is no shift and flip of its validation image");
    return (draw){0, 0, 0};
}

/* Per-channel mean / std and the largest |x| over an epoch of batches. */
static void epoch_stats(dn_loader *l, long batches, int batch, int c, long hw,
                        float *x, double *worst_mean, double *largest)
{
    double sum[3] = {0}, sq[3] = {0}, count = 0;
    float truth[32 * 10];
    *largest = 0;
    for (long b = 0; b < batches; b++) {
        int valid = dn_loader_get(l, b, x, truth, NULL);
        assert_int_equal(valid, batch);
        for (int i = 0; i < valid; i++)
            for (int ch = 0; ch < c; ch++)
                for (long j = 0; j < hw; j++) {
                    double v = x[((long)i * c + ch) * hw + j];
                    if (!isfinite(v))
                        fail_msg("a non-finite input");
                    sum[ch] += v, sq[ch] += v * v;
                    *largest = fmax(*largest, fabs(v));
                }
        count += (double)valid * hw;
    }
    *worst_mean = 0;
    for (int ch = 0; ch < c; ch++) {
        double m = sum[ch] / count, sd = sqrt(sq[ch] / count - m * m);
        *worst_mean = fmax(*worst_mean, fabs(m) / sd);
    }
}

static void check_experiment_pipeline(const char *overlay, const char *net_cfg,
                                      const char *data)
{
    dn_error err = {""};
    dn_cfg *cfg, *dcfg;
    dn_net *net;
    if (dn_cfg_load(net_cfg, &cfg, &err) || dn_cfg_overlay(cfg, overlay, &err) ||
        dn_cfg_set(cfg, "batch=32", &err))
        fail_msg("%s", err.msg);
    if (dn_net_make(cfg, NULL, &net, &err)) {
        dn_cfg_free(cfg);
        fail_msg("%s", err.msg);
    }
    dn_dataset *d;
    dn_augment *a;
    assert_int_equal(dn_cfg_load_flat(data, &dcfg, &err), 0);
    if (dn_dataset_open(&dcfg->sections[0], "train", net->c, net->h, net->w, &d,
                        &err) ||
        dn_augment_parse(&net->cfg->sections[0], d, &a, &err))
        fail_msg("%s: %s", overlay, err.msg);
    assert_true(a->contrast_stretch && a->subtract_mean && a->gcn && a->zca &&
                a->flip && a->crop_pad == 4);
    const int c = net->c, h = net->h, w = net->w, B = net->batch;
    const long hw = (long)h * w, D = c * hw, per_epoch = PIPE_N / B;
    float *x = malloc(B * D * sizeof *x), *y = malloc(B * D * sizeof *y);
    float *v = malloc(D * sizeof *v), *t = malloc(D * sizeof *t);
    float *scratch = malloc(D * sizeof *v), *tmp = malloc(D * sizeof *v);
    double worst, largest;
    dn_loader *l, *m;

    /* centred and bounded: validation, then a training epoch */
    assert_int_equal(dn_loader_make(d, a, B, per_epoch, 1, 0, 0, &l, &err), 0);
    epoch_stats(l, per_epoch, B, c, hw, x, &worst, &largest);
    dn_loader_free(l);
    if (worst > 1e-3 || largest >= 50)
        fail_msg("%s, validation: |mean| / std %.2e, max |x| %.1f", overlay,
                 worst, largest);
    assert_int_equal(dn_loader_make(d, a, B, per_epoch, 1, 1, 1, &l, &err), 0);
    epoch_stats(l, per_epoch, B, c, hw, x, &worst, &largest);
    if (worst > 0.02 || largest >= 50)
        fail_msg("%s, training: |mean| / std %.2e, max |x| %.1f", overlay, worst,
                 largest);
    printf("    %s on %dx%dx%d: training inputs |mean| / std %.1e per channel, "
           "max |x| %.1f\n", overlay, c, h, w, worst, largest);

    /* random: the draws of the first 40 records, seeds 1 and 2, epochs 0, 1 */
    int flips = 0, moved = 0, by_seed = 0, by_epoch = 0;
    for (long r = 0; r < 40; r++) {
        dn_augment_apply(a, d, &r, 1, 1, 0, 0, v, scratch);
        draw got[3];
        static const struct { uint64_t seed; long epoch; } when[3] =
            {{1, 0}, {2, 0}, {1, 1}};
        for (int k = 0; k < 3; k++) {
            dn_augment_apply(a, d, &r, 1, when[k].seed, when[k].epoch, 1, t,
                             scratch);
            got[k] = find_draw(v, t, c, h, w, tmp);
        }
        flips += got[0].flip;
        moved += got[0].dx || got[0].dy;
        by_seed += memcmp(&got[0], &got[1], sizeof *got) != 0;
        by_epoch += memcmp(&got[0], &got[2], sizeof *got) != 0;
    }
    if (flips < 8 || flips > 32 || moved < 30 || by_seed < 30 || by_epoch < 30)
        fail_msg("%s: of 40 images %d flipped, %d shifted, %d drawn otherwise "
                 "with another seed, %d in another epoch", overlay, flips, moved,
                 by_seed, by_epoch);
    /* the loader: batch k + per_epoch (next epoch) is drawn anew */
    long rec0[32], rec1[32];
    dn_loader_batch_records(l, 2, rec0);
    dn_loader_batch_records(l, 2 + per_epoch, rec1);
    assert_true(memcmp(rec0, rec1, sizeof(long) * B) != 0);

    /* resumable: batch 5 from a fresh loader, asked first, bit for bit */
    float truth[32 * 10];
    dn_loader_get(l, 5, x, truth, NULL);
    assert_int_equal(dn_loader_make(d, a, B, per_epoch, 1, 1, 1, &m, &err), 0);
    dn_loader_get(m, 5, y, truth, NULL);
    assert_memory_equal(x, y, B * D * sizeof *x);
    dn_loader_free(m);
    assert_int_equal(dn_loader_make(d, a, B, per_epoch, 2, 1, 1, &m, &err), 0);
    dn_loader_get(m, 5, y, truth, NULL);
    assert_true(memcmp(x, y, B * D * sizeof *x) != 0);
    dn_loader_free(m);

    /* one training step on what the network sees */
    assert_int_equal(dn_loader_get(l, 0, net->input_data, net->truth, NULL), B);
    dn_net_forward(net, 1);
    dn_net_backward(net);
    float loss = dn_net_cost(net) / B;
    if (!isfinite(loss) || loss <= 0)
        fail_msg("%s: loss %f", overlay, loss);
    dn_net_update(net, 0.01);
    dn_loader_free(l);
    free(x), free(y), free(v), free(t), free(scratch), free(tmp);
    dn_augment_free(a);
    dn_dataset_free(d);
    dn_cfg_free(dcfg);
    dn_net_free(net);
}

static void test_experiment_pipelines_on_fashion_mnist_shapes(void **state)
{
    if (access("experiments/exp1.cfg", R_OK) != 0)
        fail_msg("no experiments/exp1.cfg: run from the repository root");
    write_pipeline_idx();
    char text[1200];
    snprintf(text, sizeof text, "classes=10\ntrain=%s\n",
             tu_tmp_path("pipe-images-idx3-ubyte"));
    const char *data = tu_write_file("pipe.data", text);
    check_experiment_pipeline("experiments/exp1.cfg", "cfg/resnet-small.cfg", data);
    check_experiment_pipeline("experiments/exp2.cfg", "cfg/resnet-small-hybrid.cfg",
                              data);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_zca_too_large_is_refused),
        cmocka_unit_test(test_shift_flip_on_tiny_image),
        cmocka_unit_test(test_flip_keeps_or_mirrors_about_half),
        cmocka_unit_test(test_crop_pad_is_a_bounded_shift),
        cmocka_unit_test(test_subtract_mean_centres_every_pixel),
        cmocka_unit_test(test_normalize_explicit_and_computed),
        cmocka_unit_test(test_gcn_and_contrast_stretch),
        cmocka_unit_test(test_parse_errors_name_the_key),
        cmocka_unit_test(test_zca_whitens_to_identity_and_caches),
        cmocka_unit_test(test_experiment_pipelines_on_fashion_mnist_shapes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

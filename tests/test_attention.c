/*
 * test_attention.c - darknet/src/attention_layer.c and layernorm_layer.c.
 *  - gradient checks (a table): attention with one and two heads, with and
 *    without the positional embedding, layernorm, and composed transformer
 *    blocks (skipped with a message while a layer they need is missing);
 *  - attention's forward pass against a double-precision reference written
 *    token by token from the paper's formulas;
 *  - layernorm's forward pass normalises every position;
 *  - the parameter layout (.weights order, decay flags), FLOPs and a
 *    .weights round trip;
 *  - bad cfgs (a table, fed from a string and from a file).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gradcheck.h"
#include "testutil.h"

/* ------------------------------------------------------- building nets */

static dn_net *build(const char *text, const char *name)
{
    dn_cfg *cfg;
    dn_net *net;
    dn_error err;
    if (dn_cfg_parse_string(text, name, &cfg, &err) ||
        dn_net_make(cfg, NULL, &net, &err)) {
        print_error("%s: %s\n", name, err.msg);
        fail();
    }
    return net;
}

static void fill_uniform(float *x, long n, double lo, double hi, dn_rng *r)
{
    for (long i = 0; i < n; i++)
        x[i] = (float)(lo + (hi - lo) * dn_rng_uniform(r));
}

static const dn_param *param_named(const dn_layer *l, const char *name)
{
    for (int k = 0; k < l->n_params; k++)
        if (strcmp(l->params[k].name, name) == 0)
            return &l->params[k];
    return NULL;
}

/* ------------------------------------------------------ gradient checks */

#define NET(b, h, w, c)                                                      \
    "[net]\nbatch=" #b "\nheight=" #h "\nwidth=" #w "\nchannels=" #c "\n"

typedef struct gc_entry {
    gc_case c;
    const char *needs[4]; /* layer types the cfg uses besides ours */
} gc_entry;

/*
 * Every case runs in inference mode: both layers compute the same in training
 * and inference (test_forward_same_in_training_and_inference checks it), and so do
 * the others used here.
 *
 * Attention cases use a step of 3e-2 and a tolerance of 2e-2, not the
 * harness's 1e-2 and 1e-2. Some of attention's gradients are zero or nearly
 * so: the key biases' exactly (adding b to every key adds q . b to a whole
 * row of scores, which the softmax ignores), and a few input and positional
 * coordinates fall below 1e-3. Their finite difference is then fp32 rounding
 * of the loss, about 1e-5 / step, and the harness divides it by its 1e-3
 * floor. Measured on these shapes: worst 1.8e-2 at step 1e-2, 8.5e-3 at
 * 3e-2, where the analytic values agree with differences at steps 1e-3 to
 * 1e-1 to 4 or more digits wherever the gradient is not tiny. A wrong
 * backward pass (a missing scale, a transposed product, a dropped term)
 * gives errors of order 1e-1 to 1.
 * The encoder block keeps the step at 1e-2: through GELU and layernorm a
 * wider step costs more in truncation than it saves in rounding.
 */
#define ATT_EPS 3e-2
#define ATT_TOL 2e-2

static const gc_entry gc_cases[] = {
    {{"attention_1head", NET(2, 3, 3, 4) "[attention]\nheads=1\n", 0,
      ATT_EPS, ATT_TOL},
     {NULL}},
    {{"attention_2heads", NET(2, 3, 3, 4) "[attention]\nheads=2\n", 0,
      ATT_EPS, ATT_TOL},
     {NULL}},
    {{"attention_1head_positional",
      NET(2, 3, 3, 4) "[attention]\nheads=1\npositional=1\n", 0, ATT_EPS,
      ATT_TOL},
     {NULL}},
    {{"attention_2heads_positional",
      NET(2, 3, 3, 4) "[attention]\nheads=2\npositional=1\n", 0, ATT_EPS,
      ATT_TOL},
     {NULL}},
    {{"attention_3heads_2x3",
      NET(1, 2, 3, 6) "[attention]\nheads=3\npositional=1\n", 0, ATT_EPS,
      ATT_TOL},
     {NULL}},
    {{"layernorm", NET(2, 3, 3, 4) "[layernorm]\n", 0, 0, 0}, {NULL}},
    {{"layernorm_1x1_8ch", NET(3, 1, 1, 8) "[layernorm]\n", 0, 0, 0}, {NULL}},
    {{"attention_shortcut_layernorm",
      NET(2, 3, 3, 4) "[route]\nlayers=input\n"
                      "[attention]\nheads=2\n"
                      "[shortcut]\nfrom=-2\n"
                      "[layernorm]\n", 0, ATT_EPS, ATT_TOL},
     {"route", "shortcut", NULL}},
    {{"encoder_block",
      NET(2, 2, 2, 4) "[route]\nlayers=input\n"
                      "[attention]\nheads=2\npositional=1\n"
                      "[shortcut]\nfrom=-2\n"
                      "[layernorm]\n"
                      "[convolutional]\nfilters=8\nsize=1\nactivation=gelu\n"
                      "[convolutional]\nfilters=4\nsize=1\nactivation=linear\n"
                      "[shortcut]\nfrom=-3\n"
                      "[layernorm]\n", 0, 1e-2, ATT_TOL},
     {"route", "shortcut", "convolutional", NULL}},
};

#define N_GC (sizeof gc_cases / sizeof *gc_cases)

static void gradient_check(void **state)
{
    const gc_entry *e = *state;
    for (int i = 0; e->needs[i]; i++)
        if (!dn_layer_type_find(e->needs[i])) {
            printf("  %s: skipped: layer [%s] is not built in yet\n",
                   e->c.name, e->needs[i]);
            skip();
        }
    gc_assert(&e->c);
}

/* --------------------------------------------- attention vs a reference */

/*
 * The reference works token by token in double, straight from the paper:
 * x_n = in[:, n] + P[:, n]; q_n = W_q x_n + b_q (k, v alike);
 * for head h, a[n][m] = softmax_m(q_n,h . k_m,h / sqrt(D));
 * o_n,h = sum_m a[n][m] v_m,h; out[:, n] = W_o o_n + b_o.
 * It shares no code with the layer (no GEMM, no [C, N] layout tricks).
 */
static void reference_attention(const float *in, const float *biases,
                                const float *weights, const float *pos, int C,
                                int N, int heads, double *out)
{
    const int D = C / heads;
    double *x = calloc((size_t)N * C, sizeof *x);
    double *qkv = calloc((size_t)3 * N * C, sizeof *qkv); /* [3][N][C] */
    double *o = calloc((size_t)N * C, sizeof *o);
    double *a = calloc((size_t)N, sizeof *a);
    for (int n = 0; n < N; n++)
        for (int c = 0; c < C; c++)
            x[n * C + c] = in[c * N + n] + (pos ? pos[c * N + n] : 0.0);
    for (int p = 0; p < 3; p++)
        for (int n = 0; n < N; n++)
            for (int r = 0; r < C; r++) {
                double sum = biases[p * C + r];
                for (int j = 0; j < C; j++)
                    sum += (double)weights[((long)p * C + r) * C + j] *
                           x[n * C + j];
                qkv[((long)p * N + n) * C + r] = sum;
            }
    const double *q = qkv, *k = qkv + (long)N * C, *v = qkv + 2L * N * C;
    for (int h = 0; h < heads; h++)
        for (int n = 0; n < N; n++) {
            double max = -INFINITY, total = 0;
            for (int m = 0; m < N; m++) {
                double dot = 0;
                for (int d = 0; d < D; d++)
                    dot += q[n * C + h * D + d] * k[m * C + h * D + d];
                a[m] = dot / sqrt((double)D);
                max = fmax(max, a[m]);
            }
            for (int m = 0; m < N; m++)
                total += a[m] = exp(a[m] - max);
            for (int d = 0; d < D; d++) {
                double sum = 0;
                for (int m = 0; m < N; m++)
                    sum += a[m] / total * v[m * C + h * D + d];
                o[n * C + h * D + d] = sum;
            }
        }
    for (int n = 0; n < N; n++)
        for (int r = 0; r < C; r++) {
            double sum = biases[3 * C + r];
            for (int j = 0; j < C; j++)
                sum += (double)weights[(3L * C + r) * C + j] * o[n * C + j];
            out[r * N + n] = sum;
        }
    free(x);
    free(qkv);
    free(o);
    free(a);
}

typedef struct ref_case {
    int batch, c, h, w, heads, positional;
} ref_case;

/* |out - ref| <= REF_TOL * max(1, |ref|): fp32 GEMMs of length <= 3C or N
 * against double, on values of order 1 */
#define REF_TOL 1e-5

static void test_forward_matches_double_reference(void **state)
{
    static const ref_case cases[] = {
        {2, 4, 3, 3, 1, 0}, {2, 4, 3, 3, 2, 1}, {1, 6, 2, 3, 3, 1},
        {2, 8, 4, 4, 4, 0}, {1, 4, 1, 1, 2, 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const ref_case *rc = &cases[i];
        char text[256];
        snprintf(text, sizeof text,
                 "[net]\nbatch=%d\nheight=%d\nwidth=%d\nchannels=%d\n"
                 "[attention]\nheads=%d\npositional=%d\n",
                 rc->batch, rc->h, rc->w, rc->c, rc->heads, rc->positional);
        dn_net *net = build(text, "reference.cfg");
        dn_layer *l = &net->layers[0];
        dn_rng r;
        dn_rng_seed(&r, 7 + i);
        fill_uniform(net->input_data, net->batch * net->inputs, -1, 1, &r);
        for (int k = 0; k < l->n_params; k++)
            fill_uniform(l->params[k].w, l->params[k].n, -0.8, 0.8, &r);
        dn_net_forward(net, 0);
        const int N = rc->h * rc->w;
        const dn_param *pos = param_named(l, "positional");
        assert_true((pos != NULL) == rc->positional);
        double *ref = calloc((size_t)rc->c * N, sizeof *ref);
        double worst = 0;
        for (int b = 0; b < rc->batch; b++) {
            reference_attention(net->input_data + (long)b * rc->c * N,
                                param_named(l, "biases")->w,
                                param_named(l, "weights")->w,
                                pos ? pos->w : NULL, rc->c, N, rc->heads, ref);
            for (long j = 0; j < (long)rc->c * N; j++) {
                double got = l->output[(long)b * rc->c * N + j];
                double e = fabs(got - ref[j]) / fmax(1.0, fabs(ref[j]));
                worst = fmax(worst, e);
            }
        }
        printf("  reference batch %d, %dx%dx%d, heads %d, positional %d: "
               "max err %.2e (tol %.0e)\n", rc->batch, rc->c, rc->h, rc->w,
               rc->heads, rc->positional, worst, REF_TOL);
        free(ref);
        dn_net_free(net);
        assert_true(worst <= REF_TOL);
    }
}

/* Training and inference forward passes agree (no mode-dependent state). */
static void test_forward_same_in_training_and_inference(void **state)
{
    dn_net *net = build(NET(2, 3, 3, 4) "[attention]\nheads=2\npositional=1\n"
                                        "[layernorm]\n", "modes.cfg");
    dn_rng r;
    dn_rng_seed(&r, 3);
    fill_uniform(net->input_data, net->batch * net->inputs, -1, 1, &r);
    dn_layer *last = dn_net_output_layer(net);
    long n = net->batch * last->outputs;
    float *first = malloc(n * sizeof *first);
    dn_net_forward(net, 0);
    memcpy(first, last->output, n * sizeof *first);
    dn_net_forward(net, 1);
    assert_memory_equal(first, last->output, n * sizeof *first);
    free(first);
    dn_net_free(net);
}

/* ----------------------------------------------------------- layernorm */

/* With the initial scales (1) and biases (0) every position of every image
 * comes out with mean 0 and variance var / (var + 1e-5) over the channels. */
static void test_layernorm_normalises_each_position(void **state)
{
    dn_net *net = build(NET(2, 2, 3, 5) "[layernorm]\n", "layernorm.cfg");
    dn_rng r;
    dn_rng_seed(&r, 11);
    fill_uniform(net->input_data, net->batch * net->inputs, -3, 5, &r);
    dn_net_forward(net, 0);
    const dn_layer *l = &net->layers[0];
    const int C = 5, N = 6;
    for (int b = 0; b < 2; b++)
        for (int n = 0; n < N; n++) {
            const float *x = net->input_data + b * C * N + n;
            const float *y = l->output + b * C * N + n;
            double mx = 0, vx = 0, my = 0, vy = 0;
            for (int c = 0; c < C; c++)
                mx += x[c * N] / (double)C, my += y[c * N] / (double)C;
            for (int c = 0; c < C; c++) {
                vx += (x[c * N] - mx) * (x[c * N] - mx) / C;
                vy += (y[c * N] - my) * (y[c * N] - my) / C;
            }
            assert_true(fabs(my) < 1e-6);
            assert_true(fabs(vy - vx / (vx + 1e-5)) < 1e-5);
            for (int c = 0; c < C; c++)
                assert_true(fabs(y[c * N] - (x[c * N] - mx) / sqrt(vx + 1e-5))
                            < 1e-5);
        }
    dn_net_free(net);
}

/* -------------------------------------------------- layout and weights */

static void test_attention_params_in_weights_order(void **state)
{
    dn_net *net = build(NET(1, 3, 2, 4) "[attention]\nheads=2\npositional=1\n"
                                        "[layernorm]\n", "layout.cfg");
    const dn_layer *a = &net->layers[0], *ln = &net->layers[1];
    const long C = 4, N = 6;
    static const char *names[] = {"biases", "weights", "positional"};
    const long sizes[] = {4 * C, 4 * C * C, C * N};
    const int decay[] = {0, 1, 0};
    assert_int_equal(a->n_params, 3);
    assert_int_equal(a->n_saved, 3);
    for (int k = 0; k < 3; k++) {
        assert_string_equal(a->params[k].name, names[k]);
        assert_int_equal(a->params[k].n, sizes[k]);
        assert_int_equal(a->params[k].decay, decay[k]);
        assert_ptr_equal(a->saved[k], a->params[k].w);
        assert_int_equal(a->saved_n[k], sizes[k]);
    }
    /* biases start at 0; weights are N(0, 1/C): not all zero, modest */
    for (long j = 0; j < 4 * C; j++)
        assert_true(a->params[0].w[j] == 0.0f);
    double ss = 0;
    for (long j = 0; j < 4 * C * C; j++)
        ss += a->params[1].w[j] * a->params[1].w[j];
    assert_true(ss > 0.2 * 4 * C && ss < 5.0 * 4 * C); /* ~ 4C^2 / C */
    assert_true(a->flops == 4.0 * 2 * N * C * C + 2.0 * 2 * N * N * C);
    assert_int_equal(a->out_c, 4);
    assert_int_equal(a->out_h, 3);
    assert_int_equal(a->out_w, 2);

    assert_int_equal(ln->n_params, 2);
    assert_string_equal(ln->params[0].name, "biases");
    assert_string_equal(ln->params[1].name, "scales");
    assert_ptr_equal(ln->saved[0], ln->params[0].w);
    assert_ptr_equal(ln->saved[1], ln->params[1].w);
    for (long c = 0; c < C; c++) {
        assert_true(ln->params[0].w[c] == 0.0f);
        assert_true(ln->params[1].w[c] == 1.0f);
        assert_int_equal(ln->params[0].decay, 0);
        assert_int_equal(ln->params[1].decay, 0);
    }
    dn_net_free(net);
}

/* The initial weights are a function of the seed and the layer index. */
static void test_init_is_seeded(void **state)
{
    const char *cfg = NET(1, 2, 2, 4) "seed=5\n[attention]\npositional=1\n";
    dn_net *a = build(cfg, "seed.cfg"), *b = build(cfg, "seed.cfg");
    dn_net *c = build(NET(1, 2, 2, 4) "seed=6\n[attention]\npositional=1\n",
                      "seed6.cfg");
    for (int k = 0; k < 3; k++) {
        const dn_param *pa = &a->layers[0].params[k];
        assert_memory_equal(pa->w, b->layers[0].params[k].w,
                            pa->n * sizeof(float));
        if (k > 0)
            assert_memory_not_equal(pa->w, c->layers[0].params[k].w,
                                    pa->n * sizeof(float));
    }
    dn_net_free(a);
    dn_net_free(b);
    dn_net_free(c);
}

static void test_weights_round_trip_predicts_the_same(void **state)
{
    const char *cfg = NET(1, 3, 3, 4) "[attention]\nheads=2\npositional=1\n"
                                      "[layernorm]\n";
    dn_net *a = build(cfg, "rt.cfg"), *b = build(cfg, "rt.cfg");
    dn_rng r;
    dn_rng_seed(&r, 21);
    for (int i = 0; i < a->n; i++)
        for (int k = 0; k < a->layers[i].n_params; k++)
            fill_uniform(a->layers[i].params[k].w, a->layers[i].params[k].n,
                         -1, 1, &r);
    char path[512];
    snprintf(path, sizeof path, "%s/attention.weights", tu_tmpdir());
    dn_error err;
    if (dn_weights_save(a, path, &err) || dn_weights_load(b, path, &err)) {
        print_error("%s\n", err.msg);
        fail();
    }
    fill_uniform(a->input_data, a->inputs, -1, 1, &r);
    memcpy(b->input_data, a->input_data, a->inputs * sizeof(float));
    dn_net_forward(a, 0);
    dn_net_forward(b, 0);
    assert_memory_equal(dn_net_output_layer(a)->output,
                        dn_net_output_layer(b)->output,
                        dn_net_output_layer(a)->outputs * sizeof(float));
    dn_net_free(a);
    dn_net_free(b);
}

/* ---------------------------------------------------------- bad input */

typedef struct bad_case {
    const char *cfg;
    int line;            /* of the offending key */
    const char *prefix;  /* expected right after "path:line: " */
    const char *detail;  /* expected somewhere after it */
} bad_case;

static const bad_case bad_cases[] = {
    {NET(1, 2, 2, 4) "[attention]\nheads=3\n", 7, "[attention] heads: ",
     "3 does not divide the 4 input channels"},
    {NET(1, 2, 2, 6) "[attention]\npositional=1\nheads=4\n", 8,
     "[attention] heads: ", "4 does not divide the 6 input channels"},
    {NET(1, 2, 2, 4) "[attention]\nheads=0\n", 7, "[attention] heads: ",
     "expected an integer in [1, 65536], got \"0\""},
    {NET(1, 2, 2, 4) "[attention]\nheads=-2\n", 7, "[attention] heads: ",
     "got \"-2\""},
    {NET(1, 2, 2, 4) "[attention]\nheads=2x\n", 7, "[attention] heads: ",
     "got \"2x\""},
    {NET(1, 2, 2, 4) "[attention]\npositional=2\n", 7,
     "[attention] positional: ", "expected an integer in [0, 1], got \"2\""},
};

static void check_bad(const bad_case *bc, dn_cfg *cfg, const char *path)
{
    dn_error err = {{0}};
    dn_net *net = (dn_net *)&err; /* any non-NULL value: must become NULL */
    int rc = dn_net_make(cfg, NULL, &net, &err);
    dn_cfg_free(cfg); /* not taken on failure */
    assert_int_equal(rc, -1);
    assert_null(net);
    char where[600];
    snprintf(where, sizeof where, "%s:%d: %s", path, bc->line, bc->prefix);
    assert_contains(err.msg, where);
    assert_contains(err.msg, bc->detail);
}

static void test_bad_cfgs_fail_with_file_line_and_key(void **state)
{
    for (size_t i = 0; i < sizeof bad_cases / sizeof *bad_cases; i++) {
        const bad_case *bc = &bad_cases[i];
        dn_cfg *cfg;
        dn_error err;
        /* from a string */
        assert_int_equal(
            dn_cfg_parse_string(bc->cfg, "bad.cfg", &cfg, &err), 0);
        check_bad(bc, cfg, "bad.cfg");
        /* from a file */
        char name[32];
        snprintf(name, sizeof name, "bad%zu.cfg", i);
        const char *path = tu_write_file(name, bc->cfg);
        assert_int_equal(dn_cfg_load(path, &cfg, &err), 0);
        check_bad(bc, cfg, path);
    }
}

int main(void)
{
    struct CMUnitTest tests[N_GC + 8];
    size_t n = 0;
    for (size_t i = 0; i < N_GC; i++)
        tests[n++] = (struct CMUnitTest){gc_cases[i].c.name, gradient_check,
                                         NULL, NULL, (void *)&gc_cases[i]};
    const struct CMUnitTest fixed[] = {
        cmocka_unit_test(test_forward_matches_double_reference),
        cmocka_unit_test(test_forward_same_in_training_and_inference),
        cmocka_unit_test(test_layernorm_normalises_each_position),
        cmocka_unit_test(test_attention_params_in_weights_order),
        cmocka_unit_test(test_init_is_seeded),
        cmocka_unit_test(test_weights_round_trip_predicts_the_same),
        cmocka_unit_test(test_bad_cfgs_fail_with_file_line_and_key),
    };
    for (size_t i = 0; i < sizeof fixed / sizeof *fixed; i++)
        tests[n++] = fixed[i];
    return _cmocka_run_group_tests("attention", tests, n, NULL, NULL);
}

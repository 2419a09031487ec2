/*
 * test_weights.c - darknet/src/weights.c: the .weights format.
 *  - our own round trip is exact, a bad file changes nothing;
 *  - interop with Debian's darknet (libdarknet.so, loaded with dlopen; the
 *    tests skip when it is not installed): a file it writes loads here and
 *    predicts the same, and a file we write loads there and predicts the same.
 */
#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "testutil.h"

/* Touches conv+BN, maxpool, strided conv, avgpool, connected and softmax. */
static const char *CFG =
    "[net]\nbatch=1\nheight=12\nwidth=12\nchannels=3\n"
    "[convolutional]\nbatch_normalize=1\nfilters=8\nsize=3\nstride=1\npad=1\n"
    "activation=leaky\n"
    "[maxpool]\nsize=2\nstride=2\n"
    "[convolutional]\nfilters=6\nsize=3\nstride=2\npad=1\nactivation=relu\n"
    "[convolutional]\nbatch_normalize=1\nfilters=10\nsize=1\nstride=1\npad=0\n"
    "activation=linear\n"
    "[avgpool]\n"
    "[connected]\noutput=5\nactivation=linear\n"
    "[softmax]\n";

static dn_net *make_net(void)
{
    dn_cfg *cfg;
    dn_net *net;
    dn_error err;
    assert_int_equal(dn_cfg_parse_string(CFG, "interop.cfg", &cfg, &err), 0);
    if (dn_net_make(cfg, NULL, &net, &err)) {
        print_error("%s\n", err.msg);
        fail();
    }
    return net;
}

/* Randomise every saved tensor (variances positive). */
static void randomise(dn_net *net, uint64_t seed)
{
    dn_rng r;
    dn_rng_seed(&r, seed);
    for (int i = 0; i < net->n; i++)
        for (int k = 0; k < net->layers[i].n_saved; k++)
            for (long j = 0; j < net->layers[i].saved_n[k]; j++)
                net->layers[i].saved[k][j] = (float)(0.5 + dn_rng_uniform(&r));
    /* weights can be negative: re-randomise the params symmetrically */
    for (int i = 0; i < net->n; i++)
        for (int k = 0; k < net->layers[i].n_params; k++) {
            dn_param *p = &net->layers[i].params[k];
            for (long j = 0; j < p->n; j++)
                p->w[j] = (float)(dn_rng_uniform(&r) - 0.5);
        }
}

static void fill_input(float *x, long n)
{
    dn_rng r;
    dn_rng_seed(&r, 99);
    for (long i = 0; i < n; i++)
        x[i] = (float)dn_rng_uniform(&r);
}

static void predict(dn_net *net, float *out)
{
    fill_input(net->input_data, net->inputs);
    dn_net_forward(net, 0);
    dn_layer *l = dn_net_output_layer(net);
    memcpy(out, l->output, l->outputs * sizeof *out);
}

static char *path_in_tmp(const char *name)
{
    static char p[8][512];
    static int i;
    char *s = p[i++ % 8];
    snprintf(s, 512, "%s/%s", tu_tmpdir(), name);
    return s;
}

static void round_trip_is_exact(void **state)
{
    dn_error err;
    dn_net *a = make_net(), *b = make_net();
    randomise(a, 1);
    a->seen = 123456789012ULL;
    const char *path = path_in_tmp("rt.weights");
    assert_int_equal(dn_weights_save(a, path, &err), 0);
    assert_int_equal(dn_weights_load(b, path, &err), 0);
    assert_true(b->seen == a->seen);
    float pa[5], pb[5];
    predict(a, pa);
    predict(b, pb);
    assert_memory_equal(pa, pb, sizeof pa);
    char tmp[600];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    struct stat st;
    assert_int_not_equal(stat(tmp, &st), 0); /* no temp file left behind */
    dn_net_free(a);
    dn_net_free(b);
}

/* Copy the first `keep` bytes of src to dst (or append `extra` bytes). */
static void copy_prefix(const char *src, const char *dst, long keep, long extra)
{
    FILE *in = fopen(src, "rb"), *out = fopen(dst, "wb");
    assert_non_null(in);
    assert_non_null(out);
    int c;
    long n = 0;
    while ((keep < 0 || n < keep) && (c = fgetc(in)) != EOF) {
        fputc(c, out);
        n++;
    }
    for (long i = 0; i < extra; i++)
        fputc(0, out);
    fclose(in);
    fclose(out);
}

static void bad_files_change_nothing(void **state)
{
    dn_error err;
    dn_net *a = make_net(), *b = make_net();
    randomise(a, 2);
    randomise(b, 3);
    const char *good = path_in_tmp("good.weights");
    assert_int_equal(dn_weights_save(a, good, &err), 0);
    struct stat st;
    assert_int_equal(stat(good, &st), 0);
    float before[5], after[5];
    predict(b, before);
    static const struct {
        const char *name;
        long keep, extra;
        const char *message;
    } cases[] = {
        {"truncated.weights", -2, 0, "(truncated?)"},
        {"header-only.weights", 20, 0, "(truncated?)"},
        {"longer.weights", -1, 16, "(a different network?)"},
        {"tiny.weights", 6, 0, "truncated header"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const char *bad = path_in_tmp(cases[i].name);
        long keep = cases[i].keep == -2 ? st.st_size - 4 : cases[i].keep;
        copy_prefix(good, bad, keep, cases[i].extra);
        assert_int_equal(dn_weights_load(b, bad, &err), -1);
        assert_contains(err.msg, cases[i].name);
        assert_contains(err.msg, cases[i].message);
        if (cases[i].keep != 6) {
            char expected[64];
            snprintf(expected, sizeof expected, "expected %lld bytes",
                     (long long)st.st_size);
            assert_contains(err.msg, expected);
        }
        predict(b, after);
        assert_memory_equal(before, after, sizeof before);
    }
    assert_int_equal(dn_weights_load(b, path_in_tmp("missing.weights"), &err), -1);
    assert_contains(err.msg, "cannot open");
    dn_net_free(a);
    dn_net_free(b);
}

static void save_to_unwritable_place_fails_cleanly(void **state)
{
    dn_error err;
    dn_net *a = make_net();
    assert_int_equal(dn_weights_save(a, "/nonexistent-dir/x.weights", &err), -1);
    assert_contains(err.msg, "/nonexistent-dir/x.weights.tmp");
    dn_net_free(a);
}

static void state_round_trip(void **state)
{
    dn_error err;
    dn_net *a = make_net(), *b = make_net();
    for (int i = 0; i < a->n; i++)
        for (int k = 0; k < a->layers[i].n_params; k++)
            for (long j = 0; j < a->layers[i].params[k].n; j++)
                a->layers[i].params[k].m[j] = (float)(i * 1000 + k * 100 + j);
    const char *path = path_in_tmp("x.weights.state");
    assert_int_equal(dn_state_save(a, path, &err), 0);
    assert_int_equal(dn_state_load(b, path, &err), 0);
    for (int i = 0; i < a->n; i++)
        for (int k = 0; k < a->layers[i].n_params; k++)
            assert_memory_equal(a->layers[i].params[k].m, b->layers[i].params[k].m,
                                a->layers[i].params[k].n * sizeof(float));
    const char *cut = path_in_tmp("cut.state");
    copy_prefix(path, cut, 40, 0);
    assert_int_equal(dn_state_load(b, cut, &err), -1);
    assert_contains(err.msg, "cut.state");
    dn_net_free(a);
    dn_net_free(b);
}

/* ------------------------------------------------ Debian's darknet */

typedef void *(*load_network_fn)(char *, char *, int);
typedef void (*save_weights_fn)(void *, char *);
typedef float *(*predict_fn)(void *, float *);
typedef void (*free_network_fn)(void *);

static struct {
    void *handle;
    load_network_fn load_network;
    save_weights_fn save_weights;
    predict_fn network_predict;
    free_network_fn free_network;
} debian;

static int open_debian(void)
{
    if (debian.handle)
        return 1;
    const char *paths[] = {"/usr/lib/darknet/libdarknet.so", "libdarknet.so"};
    for (size_t i = 0; i < 2 && !debian.handle; i++)
        debian.handle = dlopen(paths[i], RTLD_NOW | RTLD_LOCAL);
    if (!debian.handle)
        return 0;
    debian.load_network = (load_network_fn)dlsym(debian.handle, "load_network");
    debian.save_weights = (save_weights_fn)dlsym(debian.handle, "save_weights");
    debian.network_predict = (predict_fn)dlsym(debian.handle, "network_predict");
    debian.free_network = (free_network_fn)dlsym(debian.handle, "free_network");
    return debian.load_network && debian.save_weights &&
           debian.network_predict && debian.free_network;
}

/* Relative difference of two probability vectors, with a floor. */
static void assert_close(const float *a, const float *b, int n, double tol)
{
    for (int i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]) / fmax(fabs(b[i]), 1e-3);
        if (d > tol) {
            print_error("output %d: ours %.7g, darknet %.7g (rel %.2e > %.0e)\n",
                        i, a[i], b[i], d, tol);
            fail();
        }
    }
}

static void debian_file_loads_here(void **state)
{
    if (!open_debian()) {
        print_message("skipped: Debian's libdarknet.so is not installed\n");
        skip();
    }
    char *cfg = tu_write_file("interop.cfg", CFG);
    char *path = path_in_tmp("from-debian.weights");
    void *theirs = debian.load_network(cfg, NULL, 0);
    assert_non_null(theirs);
    debian.save_weights(theirs, path);
    float in[12 * 12 * 3], expect[5];
    fill_input(in, 12 * 12 * 3);
    memcpy(expect, debian.network_predict(theirs, in), sizeof expect);
    debian.free_network(theirs);

    dn_error err;
    dn_net *ours = make_net();
    if (dn_weights_load(ours, path, &err)) {
        print_error("%s\n", err.msg);
        fail();
    }
    float got[5];
    predict(ours, got);
    /* fp32 with different summation orders and BN epsilons: 1e-4 */
    assert_close(got, expect, 5, 1e-4);
    dn_net_free(ours);
}

static void our_file_loads_in_debian(void **state)
{
    if (!open_debian()) {
        print_message("skipped: Debian's libdarknet.so is not installed\n");
        skip();
    }
    dn_error err;
    dn_net *ours = make_net();
    randomise(ours, 7);
    char *path = path_in_tmp("from-us.weights");
    assert_int_equal(dn_weights_save(ours, path, &err), 0);
    float expect[5];
    predict(ours, expect);
    char *cfg = tu_write_file("interop2.cfg", CFG);
    void *theirs = debian.load_network(cfg, path, 0);
    assert_non_null(theirs);
    float in[12 * 12 * 3], got[5];
    fill_input(in, 12 * 12 * 3);
    memcpy(got, debian.network_predict(theirs, in), sizeof got);
    debian.free_network(theirs);
    assert_close(expect, got, 5, 1e-4);
    dn_net_free(ours);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(round_trip_is_exact),
        cmocka_unit_test(bad_files_change_nothing),
        cmocka_unit_test(save_to_unwritable_place_fails_cleanly),
        cmocka_unit_test(state_round_trip),
        cmocka_unit_test(debian_file_loads_here),
        cmocka_unit_test(our_file_loads_in_debian),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

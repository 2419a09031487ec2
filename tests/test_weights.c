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
#include <unistd.h>

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

static void test_round_trip_is_exact(void **state)
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

static void test_bad_files_change_nothing(void **state)
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

static void test_save_to_unwritable_place_fails_cleanly(void **state)
{
    dn_error err;
    dn_net *a = make_net();
    assert_int_equal(dn_weights_save(a, "/nonexistent-dir/x.weights", &err), -1);
    assert_contains(err.msg, "/nonexistent-dir/x.weights.tmp");
    dn_net_free(a);
}

static void test_state_round_trip(void **state)
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

/* Overwrite 4 bytes at offset of path with v. */
static void poke(const char *path, long offset, const void *v)
{
    FILE *f = fopen(path, "r+b");
    assert_non_null(f);
    assert_int_equal(fseek(f, offset, SEEK_SET), 0);
    assert_int_equal(fwrite(v, 4, 1, f), 1);
    fclose(f);
}

/* Fuzzed headers: major=-2147483648 overflowed major*10 (an abort under
 * UBSan), a negative major was accepted. */
static void test_bad_headers_are_refused(void **state)
{
    dn_error err;
    dn_net *a = make_net(), *b = make_net();
    const char *good = path_in_tmp("hdr.weights");
    assert_int_equal(dn_weights_save(a, good, &err), 0);
    const struct {
        long offset;
        int32_t value;
        const char *message;
    } cases[] = {
        {0, INT32_MIN, "negative version fields"},
        {0, -2, "negative version fields"},
        {4, -1, "negative version fields"},
        {8, INT32_MIN, "negative version fields"},
        {0, INT32_MAX, "transposed layout"},
        {4, 1001, "transposed layout"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const char *bad = path_in_tmp("badhdr.weights");
        copy_prefix(good, bad, -1, 0);
        poke(bad, cases[i].offset, &cases[i].value);
        assert_int_equal(dn_weights_load(b, bad, &err), -1);
        assert_contains(err.msg, "badhdr.weights");
        assert_contains(err.msg, cases[i].message);
    }
    dn_net_free(a);
    dn_net_free(b);
}

/* A FIFO given as the weights blocked in open until a writer came (a hang):
 * it, and a directory, are refused at once. */
static void test_only_regular_files_load(void **state)
{
    dn_error err;
    dn_net *b = make_net();
    char fifo[600];
    snprintf(fifo, sizeof fifo, "%s/fifo.weights", tu_tmpdir());
    assert_int_equal(mkfifo(fifo, 0600), 0);
    alarm(20); /* a regression blocks: fail instead of hanging the suite */
    assert_int_equal(dn_weights_load(b, fifo, &err), -1);
    assert_contains(err.msg, "not a regular file (a FIFO)");
    assert_int_equal(dn_state_load(b, fifo, &err), -1);
    assert_contains(err.msg, "not a regular file (a FIFO)");
    assert_int_equal(dn_weights_load(b, tu_tmpdir(), &err), -1);
    assert_contains(err.msg, "not a regular file (a directory)");
    alarm(0);
    unlink(fifo);
    dn_net_free(b);
}

/* Weights that are not finite are never loaded (they ranked every image
 * first) nor saved; the message names the file, the layer and the tensor. */
static void test_non_finite_weights_are_refused(void **state)
{
    dn_error err;
    dn_net *a = make_net(), *b = make_net();
    randomise(a, 4);
    const char *good = path_in_tmp("fin.weights");
    assert_int_equal(dn_weights_save(a, good, &err), 0);
    struct stat st;
    assert_int_equal(stat(good, &st), 0);
    float before[5], after[5];
    predict(b, before);
    const float nan = NAN, inf = INFINITY, negative = -1;
    /* layer 0 is conv+BN: biases [8] at 20, scales [8] at 52, rolling mean
     * at 84, rolling variance at 116 */
    const struct {
        long offset;
        const float *value;
        const char *message;
    } cases[] = {
        {st.st_size - 4, &nan, "layer 5 [connected] weights[49] = nan"},
        {20, &inf, "layer 0 [convolutional] biases[0] = inf"},
        {84 + 4, &nan, "layer 0 [convolutional] rolling_mean[1] = nan"},
        {116 + 8, &negative, "layer 0 [convolutional] rolling_variance[2] = -1"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const char *bad = path_in_tmp("nan.weights");
        copy_prefix(good, bad, -1, 0);
        poke(bad, cases[i].offset, cases[i].value);
        assert_int_equal(dn_weights_load(b, bad, &err), -1);
        assert_contains(err.msg, "nan.weights: ");
        assert_contains(err.msg, cases[i].message);
        assert_contains(err.msg, "not finite");
        predict(b, after);
        assert_memory_equal(before, after, sizeof before);
    }
    /* saving refuses, and leaves no file */
    a->layers[2].params[0].w[3] = NAN;
    const char *never = path_in_tmp("never.weights");
    assert_int_equal(dn_weights_save(a, never, &err), -1);
    assert_contains(err.msg, "never.weights: not saved: layer 2 [convolutional] "
                             "biases[3] = nan is not finite");
    assert_int_not_equal(stat(never, &st), 0);
    a->layers[2].params[0].w[3] = 0;
    a->layers[5].params[1].m[5] = INFINITY;
    assert_int_equal(dn_state_save(a, never, &err), -1);
    assert_contains(err.msg, "layer 5 [connected] weights: momentum[5] = inf");
    dn_net_free(a);
    dn_net_free(b);
}

/* .state: finite, and the state of exactly the weights loaded. */
static void test_state_belongs_to_its_weights(void **state)
{
    dn_error err;
    dn_net *a = make_net(), *b = make_net();
    a->layers[0].params[0].m[0] = 0.5f;
    const char *path = path_in_tmp("pair.state");
    assert_int_equal(dn_state_save(a, path, &err), 0);
    /* b holds other weights */
    b->seen = 40;
    assert_int_equal(dn_state_load(b, path, &err), -1);
    assert_contains(err.msg, "pair.state: the optimiser state of other weights "
                             "(seen 0");
    assert_contains(err.msg, "not saved together");
    b->seen = 0;
    b->layers[5].params[1].w[0] += 1;
    assert_int_equal(dn_state_load(b, path, &err), -1);
    b->layers[5].params[1].w[0] -= 1;
    assert_int_equal(dn_state_load(b, path, &err), 0);
    assert_true(b->layers[0].params[0].m[0] == 0.5f);
    /* a NaN momentum is refused, naming the tensor */
    const float nan = NAN;
    poke(path, 40 + 4, &nan); /* the version 3 header, then m[1] */
    assert_int_equal(dn_state_load(b, path, &err), -1);
    assert_contains(err.msg, "layer 0 [convolutional] biases: momentum[1] = nan");
    dn_net_free(a);
    dn_net_free(b);
}

static int copy_file(const char *src, const char *dst)
{
    copy_prefix(src, dst, -1, 0);
    return 0;
}

/* A checkpoint is saved as one: a kill between the renames (new weights,
 * old .state, new .state.tmp) resumes with the new pair; a state of other
 * weights with no .tmp to finish is an error. */
static void test_checkpoint_survives_a_kill_between_renames(void **state)
{
    dn_error err;
    dn_net *a = make_net(), *b = make_net();
    const char *old_w = path_in_tmp("old.weights"), *new_w = path_in_tmp("new.weights");
    char old_s[700], new_s[700], w[700], ws[800], wtmp[800];
    a->seen = 100;
    a->layers[0].params[0].m[0] = 1;
    assert_int_equal(dn_checkpoint_save(a, old_w, &err), 0);
    a->seen = 200;
    a->layers[0].params[0].w[0] += 0.25f;
    a->layers[0].params[0].m[0] = 2;
    assert_int_equal(dn_checkpoint_save(a, new_w, &err), 0);
    snprintf(old_s, sizeof old_s, "%s.state", old_w);
    snprintf(new_s, sizeof new_s, "%s.state", new_w);
    snprintf(w, sizeof w, "%s/k.weights", tu_tmpdir());
    snprintf(ws, sizeof ws, "%s.state", w);
    snprintf(wtmp, sizeof wtmp, "%s.state.tmp", w);
    /* the instant between rename(weights) and rename(state) */
    copy_file(new_w, w);
    copy_file(old_s, ws);
    copy_file(new_s, wtmp);
    int loaded;
    assert_int_equal(dn_checkpoint_load(b, w, 1, &loaded, &err), 0);
    assert_int_equal(loaded, 1);
    assert_true(b->seen == 200);
    assert_true(b->layers[0].params[0].m[0] == 2);
    struct stat st;
    assert_int_not_equal(stat(wtmp, &st), 0); /* the commit was finished */
    /* the same without the .tmp: refused, not silently mixed */
    copy_file(old_s, ws);
    assert_int_equal(dn_checkpoint_load(b, w, 1, &loaded, &err), -1);
    assert_contains(err.msg, "not saved together");
    /* the instant before: the old pair, and a stale complete .tmp */
    copy_file(old_w, w);
    copy_file(new_s, wtmp);
    assert_int_equal(dn_checkpoint_load(b, w, 1, &loaded, &err), 0);
    assert_true(b->seen == 100);
    assert_true(b->layers[0].params[0].m[0] == 1);
    /* no state at all: the weights, a fresh optimiser */
    unlink(ws);
    unlink(wtmp);
    assert_int_equal(dn_checkpoint_load(b, w, 1, &loaded, &err), 0);
    assert_int_equal(loaded, 0);
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

static void test_debian_file_loads_here(void **state)
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

static void test_our_file_loads_in_debian(void **state)
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
        cmocka_unit_test(test_round_trip_is_exact),
        cmocka_unit_test(test_bad_files_change_nothing),
        cmocka_unit_test(test_save_to_unwritable_place_fails_cleanly),
        cmocka_unit_test(test_state_round_trip),
        cmocka_unit_test(test_bad_headers_are_refused),
        cmocka_unit_test(test_only_regular_files_load),
        cmocka_unit_test(test_non_finite_weights_are_refused),
        cmocka_unit_test(test_state_belongs_to_its_weights),
        cmocka_unit_test(test_checkpoint_survives_a_kill_between_renames),
        cmocka_unit_test(test_debian_file_loads_here),
        cmocka_unit_test(test_our_file_loads_in_debian),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

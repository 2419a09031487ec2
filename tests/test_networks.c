/*
 * test_networks.c - building networks (network.c): a network too large
 * for the machine or for [net] max_memory= is refused by the plan before
 * anything is allocated, naming the layer and the bytes; and every network
 * cfg in cfg/ (the ResNets and the paper's hybrid CNN + transformer
 * networks, scripts/gen_networks.py) parses, is planned (the plan must
 * match what the build allocates, and planning alone allocate almost
 * nothing), builds, reports its size, and trains: two SGD steps at batch 2
 * (batch 1 for the ResNet-50s, the slowest, so that the binary stays under
 * a minute under ASan on two cores) on generated data in the dataset's own
 * format (CIFAR-10 binary for 32x32x3 nets, IDX for the 28x28 grey demo
 * net), read through the dataset reader and the loader as training reads
 * it. The loss must be finite.
 *
 * The table pins each cfg's parameter count, so an accidental change of an
 * architecture fails here; a cfg in cfg/ that is missing from the table
 * fails too, and so does a count that results/networks.md does not show in
 * the cfg's row. Run from the repository root (as `make test` does).
 */
#include <glob.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "testutil.h"
#include "dn_data.h"

typedef struct net_case {
    const char *cfg;
    long params;  /* darknet summary's total */
    int batch;    /* images per training step here (1 for the slowest) */
} net_case;

static const net_case cases[] = {
    {"cfg/resnet-small.cfg", 77754, 2},
    {"cfg/resnet-small-hybrid.cfg", 135898, 2},
    {"cfg/resnet18-cifar.cfg", 11173962, 2},
    {"cfg/resnet34-cifar.cfg", 21282122, 2},
    {"cfg/resnet50-cifar.cfg", 23520842, 1},
    {"cfg/resnet50-hybrid.cfg", 23578698, 1},
    {"cfg/googlenet-hybrid.cfg", 6041258, 2},
    {"cfg/xception-hybrid.cfg", 20908346, 2},
    {"cfg/vgg16-hybrid.cfg", 14781898, 2},
    {"cfg/vgg16-cifar.cfg", 14724042, 2},
    {"cfg/vgg19-hybrid.cfg", 20092874, 2},
};
#define N_CASES (sizeof cases / sizeof *cases)
#define RECORDS 4 /* two batches of 2; with batch 1 two of the records */

/* CIFAR-10 binary: RECORDS records of a label byte + 3x32x32 pixels. */
static void write_cifar(const char *path)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    dn_rng r;
    dn_rng_seed(&r, 11);
    unsigned char rec[3073];
    for (int i = 0; i < RECORDS; i++) {
        rec[0] = (unsigned char)(i % 10);
        for (int j = 1; j < 3073; j++)
            rec[j] = (unsigned char)dn_rng_u64(&r);
        assert_int_equal(fwrite(rec, sizeof rec, 1, f), 1);
    }
    fclose(f);
}

/* IDX images [RECORDS, 28, 28] and labels [RECORDS], uncompressed. */
static void write_be32(FILE *f, unsigned v)
{
    unsigned char b[4] = {v >> 24, v >> 16, v >> 8, v};
    assert_int_equal(fwrite(b, 4, 1, f), 1);
}

static void write_idx(const char *images, const char *labels)
{
    FILE *f = fopen(images, "wb");
    assert_non_null(f);
    write_be32(f, 0x803), write_be32(f, RECORDS), write_be32(f, 28),
        write_be32(f, 28);
    for (int i = 0; i < RECORDS * 28 * 28; i++)
        fputc((i * 37) & 255, f);
    fclose(f);
    f = fopen(labels, "wb");
    assert_non_null(f);
    write_be32(f, 0x801), write_be32(f, RECORDS);
    for (int i = 0; i < RECORDS; i++)
        fputc(i % 10, f);
    fclose(f);
}

static char cifar_data[512], idx_data[512];

static int setup(void **state)
{
    char bin[600], img[600], lab[600], text[2048];
    snprintf(bin, sizeof bin, "%s/train.bin", tu_tmpdir());
    snprintf(img, sizeof img, "%s/train-images-idx3-ubyte", tu_tmpdir());
    snprintf(lab, sizeof lab, "%s/train-labels-idx1-ubyte", tu_tmpdir());
    write_cifar(bin);
    write_idx(img, lab);
    snprintf(text, sizeof text, "classes=10\ntrain=%s\n", bin);
    snprintf(cifar_data, sizeof cifar_data, "%s", tu_write_file("cifar.data", text));
    snprintf(text, sizeof text, "classes=10\ntrain=%s\n", img);
    snprintf(idx_data, sizeof idx_data, "%s", tu_write_file("idx.data", text));
    return 0;
}

static int is_listed(const char *path)
{
    for (size_t i = 0; i < N_CASES; i++)
        if (strcmp(cases[i].cfg, path) == 0)
            return 1;
    return 0;
}

/* Every .cfg directly in cfg/ is in the table, and every entry exists. */
static void test_table_lists_every_network_cfg(void **state)
{
    glob_t g;
    if (glob("cfg/*.cfg", 0, NULL, &g) != 0)
        fail_msg("no cfg/*.cfg: run this test from the repository root");
    for (size_t i = 0; i < g.gl_pathc; i++)
        if (!is_listed(g.gl_pathv[i]))
            fail_msg("%s is not in tests/test_networks.c's table: add it with "
                     "its parameter count (darknet summary)", g.gl_pathv[i]);
    for (size_t i = 0; i < N_CASES; i++) {
        int found = 0;
        for (size_t j = 0; j < g.gl_pathc; j++)
            found |= strcmp(cases[i].cfg, g.gl_pathv[j]) == 0;
        if (!found)
            fail_msg("%s is in the table but not in cfg/", cases[i].cfg);
    }
    globfree(&g);
}

/* results/networks.md has a row "| `<cfg name>` ..." holding the pinned
 * total in bold, with thousands separators: "**21,282,122**". */
static void test_networks_md_shows_every_count(void **state)
{
    FILE *f = fopen("results/networks.md", "r");
    if (!f)
        fail_msg("no results/networks.md: run this test from the repository root");
    char *text = NULL;
    size_t size = 0;
    FILE *out = open_memstream(&text, &size);
    int ch;
    while ((ch = fgetc(f)) != EOF)
        fputc(ch, out);
    fclose(out);
    fclose(f);
    for (size_t i = 0; i < N_CASES; i++) {
        char row[128], total[64], digits[32];
        snprintf(row, sizeof row, "\n| `%s`", strrchr(cases[i].cfg, '/') + 1);
        int n = snprintf(digits, sizeof digits, "%ld", cases[i].params), k = 0;
        total[k++] = '*', total[k++] = '*';
        for (int d = 0; d < n; d++) {
            if (d && (n - d) % 3 == 0)
                total[k++] = ',';
            total[k++] = digits[d];
        }
        total[k++] = '*', total[k++] = '*', total[k] = '\0';
        const char *at = strstr(text, row);
        if (!at)
            fail_msg("results/networks.md has no row for %s", cases[i].cfg);
        const char *end = strchr(at + 1, '\n');
        const char *hit = strstr(at, total);
        if (!hit || (end && hit > end))
            fail_msg("results/networks.md: the row of %s does not show %s",
                     cases[i].cfg, total);
    }
    free(text);
}

/* Builds the case's net at its test batch; returns NULL on failure. */
static dn_net *build(const net_case *t)
{
    dn_error err = {""};
    dn_cfg *cfg;
    char batch[32];
    snprintf(batch, sizeof batch, "batch=%d", t->batch);
    if (dn_cfg_load(t->cfg, &cfg, &err) || dn_cfg_set(cfg, batch, &err) ||
        dn_cfg_set(cfg, "subdivisions=1", &err))
        fail_msg("%s: %s", t->cfg, err.msg);
    dn_net *net;
    dn_net_options opt = {0};
    if (dn_net_make(cfg, &opt, &net, &err)) {
        dn_cfg_free(cfg);
        fail_msg("%s: %s", t->cfg, err.msg);
    }
    return net;
}

/* From the sanitizer runtime (the tests run under ASan; its header is not
 * installed with gcc everywhere) */
size_t __sanitizer_get_current_allocated_bytes(void);

/* Bytes the allocator hands out now. */
static double heap_bytes(void)
{
    return (double)__sanitizer_get_current_allocated_bytes();
}

/* The plan counts what the build allocates: within 10% (plus 8 MiB for
 * oneDNN's primitives and small structures), and planning alone
 * allocates next to nothing. Returns the built network. */
static dn_net *check_plan(const net_case *t)
{
    dn_error err = {""};
    dn_cfg *cfg;
    char batch[32];
    snprintf(batch, sizeof batch, "batch=%d", t->batch);
    if (dn_cfg_load(t->cfg, &cfg, &err) || dn_cfg_set(cfg, batch, &err) ||
        dn_cfg_set(cfg, "subdivisions=1", &err))
        fail_msg("%s: %s", t->cfg, err.msg);
    const double before = heap_bytes();
    dn_net *plan;
    if (dn_net_plan(cfg, NULL, &plan, &err))
        fail_msg("%s: %s", t->cfg, err.msg);
    const double planning = heap_bytes() - before;
    const double planned = plan->planned_bytes + 4.0 * plan->planned_workspace;
    assert_int_equal(dn_net_param_count(plan), t->params);
    plan->cfg = NULL;
    dn_net_free(plan);
    dn_net *net = build(t);
    const double built = heap_bytes() - before;
    printf("    %-28s planned %s, allocated %s (planning alone %s)\n", t->cfg,
           dn_bytes_text(planned), dn_bytes_text(built),
           dn_bytes_text(planning));
    if (planning > (1 << 20))
        fail_msg("%s: planning allocated %s", t->cfg, dn_bytes_text(planning));
    if (built > 1.1 * planned + (8 << 20) || built < 0.9 * planned)
        fail_msg("%s: planned %.0f bytes, the build allocated %.0f", t->cfg,
                 planned, built);
    dn_cfg_free(cfg);
    return net;
}

/* Networks too large for the machine (or for [net] max_memory=) are
 * refused by the plan, before anything is allocated, naming the layer
 * that crosses the limit and its bytes. Every layer type counts. */
static void test_too_large_is_refused_before_allocating(void **state)
{
#define NET_HEAD(batch, h, w, c) \
    "[net]\nbatch=" #batch "\nheight=" #h "\nwidth=" #w "\nchannels=" #c "\n"
    const struct {
        const char *cfg, *where;
    } cases[] = {
        /* the fuzzed ones: 8 aborts on out-of-memory */
        {NET_HEAD(1, 32, 32, 3) "[convolutional]\nsize=2000\npad=1\nfilters=64\n",
         "big.cfg:6: [convolutional] layer 0: error: needs "},
        {NET_HEAD(1, 224, 224, 65536) "[convolutional]\nsize=3\nfilters=64\n",
         "big.cfg:6: [convolutional] layer 0: error: needs "},
        {NET_HEAD(1, 4, 4, 1) "max_memory=1K\n[connected]\noutput=100\n",
         "big.cfg:7: [connected] layer 0: error: needs 20.7 KiB (1700 parameters"},
        {NET_HEAD(4096, 4096, 4096, 3) "[maxpool]\n",
         "big.cfg:1: [net]: error: needs 768.0 GiB (the input batch)"},
        /* 16 x 16 x 256 x 256 floats: 64 MiB a tensor */
        {NET_HEAD(16, 256, 256, 16) "max_memory=200M\n[dropout]\n",
         "big.cfg:7: [dropout] layer 0: error: needs 192.0 MiB"},
        {NET_HEAD(64, 64, 64, 256) "max_memory=1G\n[attention]\n",
         "big.cfg:7: [attention] layer 0: error: needs "},
        {NET_HEAD(16, 256, 256, 16) "max_memory=200M\n[layernorm]\n",
         "big.cfg:7: [layernorm] layer 0: error: needs "},
        {NET_HEAD(16, 256, 256, 16) "max_memory=200M\n[batchnorm]\n",
         "big.cfg:7: [batchnorm] layer 0: error: needs "},
        {NET_HEAD(16, 256, 256, 16) "max_memory=200M\n[maxpool]\nsize=1\n",
         "big.cfg:7: [maxpool] layer 0: error: needs 192.0 MiB"},
        {NET_HEAD(16, 256, 256, 16) "max_memory=200M\n[logistic]\n",
         "big.cfg:7: [logistic] layer 0: error: needs 192.0 MiB"},
        {NET_HEAD(16, 256, 256, 16) "max_memory=200M\n[softmax]\n",
         "big.cfg:7: [softmax] layer 0: error: needs 192.0 MiB"},
        {NET_HEAD(16, 256, 256, 16) "max_memory=400M\n[maxpool]\nsize=1\n"
         "[shortcut]\nfrom=-1\nactivation=mish\n",
         "big.cfg:9: [shortcut] layer 1: error: needs 192.0 MiB"},
        {NET_HEAD(16, 256, 256, 16) "max_memory=400M\n[maxpool]\nsize=1\n"
         "[route]\nlayers=-1,input\n",
         "big.cfg:9: [route] layer 1: error: needs 256.0 MiB"},
        {NET_HEAD(16, 256, 256, 16) "max_memory=2G\n[connected]\noutput=1000\n",
         "big.cfg:7: [connected] layer 0: error: needs 11.7 GiB (1048577000 "
         "parameters"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        for (int plan = 0; plan < 2; plan++) {
            dn_cfg *cfg;
            dn_net *net;
            dn_error err = {""};
            assert_int_equal(dn_cfg_parse_string(cases[i].cfg, "big.cfg", &cfg,
                                                 &err), 0);
            const double before = heap_bytes();
            int rc = plan ? dn_net_plan(cfg, NULL, &net, &err)
                          : dn_net_make(cfg, NULL, &net, &err);
            const double used = heap_bytes() - before;
            if (rc == 0)
                fail_msg("case %zu accepted:\n%s", i, cases[i].cfg);
            assert_null(net);
            dn_cfg_free(cfg);
            assert_contains(err.msg, cases[i].where);
            assert_contains(err.msg, " limit of ");
            if (used > (1 << 20))
                fail_msg("case %zu: %.0f bytes allocated before refusing", i,
                         used);
        }
    }
}

static void test_max_memory_values(void **state)
{
    const struct {
        const char *value;
        double bytes; /* 0: refused */
    } cases[] = {{"100000", 100000},  {"64K", 65536},   {"512M", 512.0 * (1 << 20)},
                 {"2g", 2.0 * (1 << 30)}, {"1T", 1099511627776.0},
                 {"1.5G", 0}, {"-1", 0}, {"2X", 0}, {"G", 0}, {"0", 0},
                 {"nan", 0}, {"12 M", 0}};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char text[256];
        snprintf(text, sizeof text, "[net]\nbatch=1\nheight=2\nwidth=2\n"
                 "channels=1\nmax_memory=%s\n[avgpool]\n", cases[i].value);
        dn_cfg *cfg;
        dn_net *net;
        dn_error err = {""};
        assert_int_equal(dn_cfg_parse_string(text, "m.cfg", &cfg, &err), 0);
        int rc = dn_net_plan(cfg, NULL, &net, &err);
        if (cases[i].bytes == 0) {
            if (rc == 0)
                fail_msg("max_memory=%s accepted", cases[i].value);
            assert_contains(err.msg, "m.cfg:6: [net] max_memory: expected a "
                                     "byte count");
            dn_cfg_free(cfg);
            continue;
        }
        if (rc)
            fail_msg("max_memory=%s: %s", cases[i].value, err.msg);
        const double want = cases[i].bytes < dn_machine_memory()
                                ? cases[i].bytes : dn_machine_memory();
        assert_true(net->max_bytes == want);
        dn_net_free(net);
    }
}

/* Summary totals, parameter count. */
static void check_summary(const net_case *t, dn_net *net)
{
    char *text = NULL;
    size_t size = 0;
    FILE *out = open_memstream(&text, &size);
    dn_net_summary(net, out);
    fclose(out);
    assert_non_null(strstr(text, "total: "));
    long params = dn_net_param_count(net);
    if (params != t->params)
        fail_msg("%s: %ld parameters, the table says %ld", t->cfg, params,
                 t->params);
    assert_true(dn_net_flops(net) > 0);
    assert_int_equal(net->truths, 10);
    free(text);
}

/* Two SGD steps on the generated data; the loss must stay finite. */
static void check_two_batches(const net_case *t, dn_net *net)
{
    dn_error err = {""};
    dn_cfg *data;
    dn_dataset *d;
    dn_loader *loader;
    const char *data_path = net->c == 3 ? cifar_data : idx_data;
    if (dn_cfg_load_flat(data_path, &data, &err) ||
        dn_dataset_open(&data->sections[0], "train", net->c, net->h, net->w, &d,
                        &err) ||
        dn_loader_make(d, NULL, net->batch, RECORDS / net->batch, net->seed, 1,
                       1, &loader, &err))
        fail_msg("%s: %s", t->cfg, err.msg);
    for (long b = 0; b < 2; b++) {
        assert_int_equal(dn_loader_get(loader, b, net->input_data, net->truth,
                                       NULL), net->batch);
        dn_net_forward(net, 1);
        dn_net_backward(net);
        float loss = dn_net_cost(net) / net->batch;
        if (!isfinite(loss) || loss <= 0)
            fail_msg("%s: batch %ld: loss %f", t->cfg, b, loss);
        dn_net_update(net, 0.01);
        net->seen += (uint64_t)net->batch;
    }
    dn_loader_free(loader);
    dn_dataset_free(d);
    dn_cfg_free(data);
    dn_net_free(net);
}

static double seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

/* Each network: planned (the plan matches the build), built, summarised,
 * trained for two batches. */
/* Deltas share buffers (network.c, assign_deltas): layer i's delta is live
 * in the backward pass from step delta_from[i] down to step i; two deltas
 * live at once never share a buffer (one with a buffer of its own, -1,
 * shares with none), and a deep network needs far fewer buffers than it
 * has layers. ASan catches a buffer too small for a delta it serves. */
static void check_delta_sharing(const net_case *c, const dn_net *net)
{
    for (int i = 0; i < net->n; i++) {
        const int fi = net->delta_from[i];
        assert_true(fi < 0 || fi > i);
        for (int j = i + 1; j < net->n; j++) {
            const int fj = net->delta_from[j];
            if (fi < 0 || fj < 0 || j <= fi)
                assert_ptr_not_equal(net->layers[i].delta,
                                     net->layers[j].delta);
        }
    }
    printf("    %-28s %3d layers, %2d delta buffers\n", c->cfg, net->n,
           net->n_delta_buffers);
    assert_true(net->n_delta_buffers <= net->n / 3 + 2);
}

static void test_every_network_builds_and_trains(void **state)
{
    for (size_t i = 0; i < N_CASES; i++) {
        double t0 = seconds();
        dn_net *net = check_plan(&cases[i]);
        check_delta_sharing(&cases[i], net);
        check_summary(&cases[i], net);
        check_two_batches(&cases[i], net);
        printf("    %-28s %9ld parameters, 2 batches of %d: %.1f s\n",
               cases[i].cfg, cases[i].params, cases[i].batch, seconds() - t0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table_lists_every_network_cfg),
        cmocka_unit_test(test_networks_md_shows_every_count),
        cmocka_unit_test(test_too_large_is_refused_before_allocating),
        cmocka_unit_test(test_max_memory_values),
        cmocka_unit_test(test_every_network_builds_and_trains),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}

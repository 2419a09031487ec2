/*
 * test_networks.c - every network cfg in cfg/ (the ResNets and the paper's
 * hybrid CNN + transformer networks, scripts/gen_networks.py) parses,
 * builds, reports its size, and trains: two SGD steps at batch 2 (batch 1
 * for the ResNet-50s, the slowest, so that the binary stays under a minute
 * under ASan on two cores) on generated data in the dataset's own format (CIFAR-10 binary for 32x32x3
 * nets, IDX for the 28x28 grey demo net), read through the dataset reader
 * and the loader as training reads it. The loss must be finite.
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

/* Parse, build, summary totals, parameter count. */
static void check_summary(const net_case *t)
{
    dn_net *net = build(t);
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
    dn_net_free(net);
}

/* Two SGD steps on the generated data; the loss must stay finite. */
static void check_two_batches(const net_case *t)
{
    dn_error err = {""};
    dn_net *net = build(t);
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

static void test_every_network_builds_and_trains(void **state)
{
    for (size_t i = 0; i < N_CASES; i++) {
        double t0 = seconds();
        check_summary(&cases[i]);
        check_two_batches(&cases[i]);
        printf("    %-28s %9ld parameters, 2 batches of %d: %.1f s\n",
               cases[i].cfg, cases[i].params, cases[i].batch, seconds() - t0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table_lists_every_network_cfg),
        cmocka_unit_test(test_networks_md_shows_every_count),
        cmocka_unit_test(test_every_network_builds_and_trains),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}

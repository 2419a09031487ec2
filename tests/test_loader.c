/*
 * test_loader.c - the batch loader (loader.c): batches are a pure function
 * of seed and batch index, epochs are permutations, short epochs, partial
 * last batches, bad arguments.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testutil.h"

/* ------------------------------------------------------------------ loader */

typedef struct fetched {
    float x[8 * 12];
    float truth[8 * 5];
    int labels[8];
    int valid;
} fetched;

static void test_loader_batches_depend_only_on_seed_and_index(void **state)
{
    dn_dataset *d = tu_synthetic_dataset(50, 3, 2, 2, 5);
    dn_augment *a;
    dn_error err = {""};
    assert_int_equal(tu_parse_augment("[net]\nflip=1\ncrop_pad=1\nsubtract_mean=1\n", d, &a,
                               &err), 0);
    enum { N = 14 };
    static fetched seq[N], other;
    dn_loader *l, *m;
    assert_int_equal(dn_loader_make(d, a, 8, 6, 77, 1, 1, &l, &err), 0);
    for (long i = 0; i < N; i++) {
        fetched *f = &seq[i];
        f->valid = dn_loader_get(l, i, f->x, f->truth, f->labels);
        assert_int_equal(f->valid, 8);
    }
    assert_true(dn_loader_wait_seconds(l) >= 0);
    dn_loader_free(l);
    /* any order, repeats, and a fresh loader asked for a late batch first */
    static const long order[] = {9, 13, 2, 3, 3, 0, 12, 1, 11, 4, 5, 10, 6, 8, 7, 9};
    assert_int_equal(dn_loader_make(d, a, 8, 6, 77, 1, 1, &m, &err), 0);
    for (size_t k = 0; k < sizeof order / sizeof *order; k++) {
        long i = order[k];
        other.valid = dn_loader_get(m, i, other.x, other.truth, other.labels);
        assert_int_equal(other.valid, seq[i].valid);
        assert_memory_equal(other.x, seq[i].x, sizeof other.x);
        assert_memory_equal(other.truth, seq[i].truth, sizeof other.truth);
        assert_memory_equal(other.labels, seq[i].labels, sizeof other.labels);
    }
    /* zero-copy access gives the same batch */
    const float *rx, *rt;
    const int *rl;
    assert_int_equal(dn_loader_get_ref(m, 5, &rx, &rt, &rl), 8);
    assert_memory_equal(rx, seq[5].x, sizeof other.x);
    dn_loader_free(m);
    /* another seed, another batch */
    assert_int_equal(dn_loader_make(d, a, 8, 6, 78, 1, 1, &m, &err), 0);
    dn_loader_get(m, 0, other.x, other.truth, other.labels);
    assert_true(memcmp(other.x, seq[0].x, sizeof other.x) != 0);
    dn_loader_free(m);
    dn_augment_free(a);
    dn_dataset_free(d);
}

static void test_loader_epoch_is_a_permutation(void **state)
{
    dn_dataset *d = tu_synthetic_dataset(48, 1, 2, 2, 5);
    dn_loader *l;
    dn_error err = {""};
    assert_int_equal(dn_loader_make(d, NULL, 8, 6, 3, 1, 1, &l, &err), 0);
    float x[8 * 4], truth[8 * 5];
    int labels[8];
    long first_epoch[48], second_epoch[8];
    for (long e = 0; e < 3; e++) {
        int seen[48] = {0};
        for (long p = 0; p < 6; p++) {
            long index = e * 6 + p, rec[8];
            assert_int_equal(dn_loader_get(l, index, x, truth, labels), 8);
            assert_int_equal(dn_loader_batch_records(l, index, rec), 8);
            for (int i = 0; i < 8; i++) {
                long r = lrintf(x[i * 4] * 255); /* pixel 0 holds the record */
                assert_int_equal(r, rec[i]);
                assert_int_equal(labels[i], d->labels[r]);
                assert_float_equal(truth[i * 5 + labels[i]], 1.0f, 0);
                seen[r]++;
                if (e == 0)
                    first_epoch[p * 8 + i] = r;
            }
        }
        for (int r = 0; r < 48; r++)
            assert_int_equal(seen[r], 1);
    }
    dn_loader_batch_records(l, 6, second_epoch);
    /* a new order each epoch */
    assert_true(memcmp(first_epoch, second_epoch, sizeof second_epoch) != 0);
    dn_loader_free(l);
    dn_dataset_free(d);
}

static void test_loader_short_epoch_and_wraparound(void **state)
{
    dn_dataset *d = tu_synthetic_dataset(10, 1, 1, 2, 3);
    dn_loader *l;
    dn_error err = {""};
    long rec[4];
    /* per_epoch * batch < n: each epoch uses distinct records */
    assert_int_equal(dn_loader_make(d, NULL, 4, 2, 3, 1, 1, &l, &err), 0);
    long a[4], b[4];
    dn_loader_batch_records(l, 0, a);
    dn_loader_batch_records(l, 1, b);
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++)
            assert_true(a[i] != b[j]);
    dn_loader_free(l);
    /* per_epoch * batch > n, shuffled: the order wraps, batches stay full */
    assert_int_equal(dn_loader_make(d, NULL, 4, 3, 3, 1, 1, &l, &err), 0);
    int seen[10] = {0};
    for (long i = 0; i < 3; i++) {
        assert_int_equal(dn_loader_batch_records(l, i, rec), 4);
        for (int k = 0; k < 4 && i * 4 + k < 10; k++)
            seen[rec[k]]++;
    }
    for (int r = 0; r < 10; r++)
        assert_int_equal(seen[r], 1);
    dn_loader_free(l);
    dn_dataset_free(d);
}

static void test_loader_partial_last_batch_unshuffled(void **state)
{
    dn_dataset *d = tu_synthetic_dataset(10, 1, 1, 2, 3);
    dn_loader *l;
    dn_error err = {""};
    assert_int_equal(dn_loader_make(d, NULL, 4, 3, 3, 0, 0, &l, &err), 0);
    float x[8], truth[12];
    int labels[4];
    assert_int_equal(dn_loader_get(l, 2, x, truth, labels), 2);
    assert_float_equal(x[0] * 255, 8, 1e-4);
    assert_float_equal(x[2] * 255, 9, 1e-4);
    for (int j = 4; j < 8; j++)
        assert_float_equal(x[j], 0, 0);
    for (int j = 6; j < 12; j++)
        assert_float_equal(truth[j], 0, 0);
    assert_int_equal(labels[1], 9 % 3);
    assert_int_equal(labels[2], -1);
    assert_int_equal(labels[3], -1);
    /* the next pass starts over */
    assert_int_equal(dn_loader_get(l, 3, x, truth, labels), 4);
    assert_float_equal(x[0] * 255, 0, 1e-4);
    assert_float_equal(x[6] * 255, 3, 1e-4);
    dn_loader_free(l);
    dn_dataset_free(d);
}

static void test_loader_rejects_bad_arguments(void **state)
{
    dn_dataset *d = tu_synthetic_dataset(10, 1, 1, 2, 3), *e = tu_synthetic_dataset(10, 1, 2, 2, 3);
    dn_augment *a;
    dn_loader *l = (dn_loader *)d;
    dn_error err = {""};
    assert_int_equal(dn_loader_make(d, NULL, 0, 3, 3, 0, 0, &l, &err), -1);
    assert_null(l);
    assert_contains(err.msg, "must be >= 1");
    assert_int_equal(tu_parse_augment("[net]\nsubtract_mean=1\n", e, &a, &err), 0);
    assert_int_equal(dn_loader_make(d, a, 2, 3, 3, 0, 0, &l, &err), -1);
    assert_contains(err.msg, "fitted for 1x2x2");
    dn_augment_free(a);
    dn_dataset_free(d);
    dn_dataset_free(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_loader_batches_depend_only_on_seed_and_index),
        cmocka_unit_test(test_loader_epoch_is_a_permutation),
        cmocka_unit_test(test_loader_short_epoch_and_wraparound),
        cmocka_unit_test(test_loader_partial_last_batch_unshuffled),
        cmocka_unit_test(test_loader_rejects_bad_arguments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

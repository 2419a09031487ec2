/*
 * test_data.c - dataset readers (data.c), preprocessing and augmentation
 * (augment.c) and the batch loader (loader.c). Small CIFAR-10 and IDX files
 * are generated in the test's temporary directory.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "testutil.h"
#include "dn_data.h"

/* -------------------------------------------------------- file writers */

static char *tmp_path(const char *name)
{
    static char paths[16][512];
    static int next;
    char *p = paths[next++ % 16];
    snprintf(p, 512, "%s/%s", tu_tmpdir(), name);
    return p;
}

static void write_bytes(const char *name, const void *data, size_t n)
{
    FILE *f = fopen(tmp_path(name), "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, n, f), n);
    fclose(f);
}

static void write_gz(const char *name, const void *data, size_t n)
{
    gzFile f = gzopen(tmp_path(name), "wb");
    assert_non_null(f);
    assert_int_equal(gzwrite(f, data, (unsigned)n), (int)n);
    gzclose(f);
}

/* CIFAR-10 pixel j of record r, and its label. */
static uint8_t cifar_pixel(long r, long j) { return (uint8_t)(r * 7 + j * 3); }
static int cifar_label(long r) { return (int)(r % 10); }

/* records [first, first + n) in CIFAR-10 binary format. */
static void write_cifar(const char *name, long first, long n)
{
    size_t size = (size_t)n * 3073;
    uint8_t *buf = malloc(size);
    for (long r = 0; r < n; r++) {
        buf[r * 3073] = (uint8_t)cifar_label(first + r);
        for (long j = 0; j < 3072; j++)
            buf[r * 3073 + 1 + j] = cifar_pixel(first + r, j);
    }
    write_bytes(name, buf, size);
    free(buf);
}

/* IDX: images [n, rows, cols] with pixel (r, j) = 10 r + j + 1, labels r % 3 */
#define IDX_N 4
#define IDX_ROWS 5
#define IDX_COLS 6
static uint8_t idx_pixel(long r, long j) { return (uint8_t)(10 * r + j + 1); }

static size_t idx_images(uint8_t *buf, long n, long header_n, uint32_t magic)
{
    uint32_t head[4] = {magic, (uint32_t)header_n, IDX_ROWS, IDX_COLS};
    size_t at = 0;
    for (int i = 0; i < 4; i++)
        for (int b = 3; b >= 0; b--)
            buf[at++] = (uint8_t)(head[i] >> (8 * b));
    for (long r = 0; r < n; r++)
        for (long j = 0; j < IDX_ROWS * IDX_COLS; j++)
            buf[at++] = idx_pixel(r, j);
    return at;
}

static size_t idx_labels(uint8_t *buf, long n, long header_n)
{
    uint32_t head[2] = {0x801, (uint32_t)header_n};
    size_t at = 0;
    for (int i = 0; i < 2; i++)
        for (int b = 3; b >= 0; b--)
            buf[at++] = (uint8_t)(head[i] >> (8 * b));
    for (long r = 0; r < n; r++)
        buf[at++] = (uint8_t)(r % 3);
    return at;
}

/* Writes the default IDX pair: NAME-images-idx3-ubyte[.gz] and labels. */
static void write_idx_pair(const char *stem, int gz)
{
    uint8_t buf[4096];
    char name[256];
    void (*put)(const char *, const void *, size_t) = gz ? write_gz : write_bytes;
    snprintf(name, sizeof name, "%s-images-idx3-ubyte%s", stem, gz ? ".gz" : "");
    put(name, buf, idx_images(buf, IDX_N, IDX_N, 0x803));
    snprintf(name, sizeof name, "%s-labels-idx1-ubyte%s", stem, gz ? ".gz" : "");
    put(name, buf, idx_labels(buf, IDX_N, IDX_N));
}

/* Loads .data text (paths written as %s are the temp dir) and opens which. */
static int open_text(const char *text, const char *which, int c, int h, int w,
                     dn_dataset **d, dn_error *err)
{
    char buf[4096];
    const char *dir = tu_tmpdir();
    snprintf(buf, sizeof buf, text, dir, dir, dir, dir);
    dn_cfg *cfg;
    if (dn_cfg_load_flat(tu_write_file("t.data", buf), &cfg, err))
        return -1;
    int rc = dn_dataset_open(&cfg->sections[0], which, c, h, w, d, err);
    dn_cfg_free(cfg);
    return rc;
}

static const char *cifar_names =
    "airplane\nautomobile\nbird\ncat\ndeer\n\ndog\nfrog\nhorse\nship\ntruck\n\n";

/* ------------------------------------------------------------- CIFAR-10 */

static void test_cifar_files_values_labels_names(void **state)
{
    write_cifar("a.bin", 0, 5);
    write_cifar("b.bin", 5, 3);
    tu_write_file("cifar.names", cifar_names);
    dn_dataset *d;
    dn_error err = {""};
    int rc = open_text("classes=10\ntrain = %s/a.bin , %s/b.bin\n"
                       "labels=%s/cifar.names\n", "train", 3, 32, 32, &d, &err);
    assert_int_equal(rc, 0);
    assert_int_equal(d->n, 8);
    assert_int_equal(d->c, 3);
    assert_int_equal(d->h, 32);
    assert_int_equal(d->w, 32);
    assert_int_equal(d->classes, 10);
    for (long r = 0; r < 8; r++) {
        assert_int_equal(d->labels[r], cifar_label(r));
        for (long j = 0; j < 3072; j += 97)
            assert_int_equal(d->pixels[r * 3072 + j], cifar_pixel(r, j));
    }
    assert_non_null(d->names);
    assert_string_equal(d->names[3], "cat");
    assert_string_equal(d->names[5], "dog");
    assert_non_null(strstr(d->source, "b.bin"));
    dn_dataset_free(d);
}

static void test_cifar_directory_train_and_valid(void **state)
{
    char *dir = tmp_path("cifar-10-batches-bin");
    mkdir(dir, 0755);
    write_cifar("cifar-10-batches-bin/data_batch_2.bin", 2, 3);
    write_cifar("cifar-10-batches-bin/data_batch_1.bin", 0, 2);
    write_cifar("cifar-10-batches-bin/test_batch.bin", 100, 4);
    const char *text = "train=%s/cifar-10-batches-bin\n"
                       "valid=%s/cifar-10-batches-bin/\n";
    dn_dataset *d;
    dn_error err = {""};
    assert_int_equal(open_text(text, "train", 3, 32, 32, &d, &err), 0);
    assert_int_equal(d->n, 5); /* batch 1 then batch 2 */
    for (long r = 0; r < 5; r++)
        assert_int_equal(d->pixels[r * 3072 + 11], cifar_pixel(r, 11));
    dn_dataset_free(d);
    assert_int_equal(open_text(text, "valid", 3, 32, 32, &d, &err), 0);
    assert_int_equal(d->n, 4);
    assert_int_equal(d->labels[0], cifar_label(100));
    assert_int_equal(d->pixels[5], cifar_pixel(100, 5));
    dn_dataset_free(d);
}

static void test_cifar_padded_to_larger_net(void **state)
{
    write_cifar("p.bin", 0, 2);
    dn_dataset *d;
    dn_error err = {""};
    assert_int_equal(open_text("train=%s/p.bin\n", "train", 3, 36, 36, &d, &err),
                     0);
    assert_int_equal(d->h, 36);
    assert_int_equal(d->native_h, 32);
    const uint8_t *img = d->pixels + 36 * 36 * 3; /* record 1 */
    for (int ch = 0; ch < 3; ch++)
        for (int y = 0; y < 36; y++)
            for (int x = 0; x < 36; x++) {
                int inside = y >= 2 && y < 34 && x >= 2 && x < 34;
                int want = inside ? cifar_pixel(1, (ch * 32 + y - 2) * 32 + x - 2)
                                  : 0;
                assert_int_equal(img[(ch * 36 + y) * 36 + x], want);
            }
    dn_dataset_free(d);
}

/* train_limit= / valid_limit=: the first N records of the set, or all. */
static void test_limit_keeps_first_records(void **state)
{
    write_cifar("lim.bin", 0, 8);
    write_idx_pair("lim", 1);
    const char *text = "classes=10\ntrain=%s/lim.bin\nvalid=%s/lim.bin\n"
                       "train_limit=3\nvalid_limit=100\n";
    dn_dataset *d;
    dn_error err = {""};
    assert_int_equal(open_text(text, "train", 3, 32, 32, &d, &err), 0);
    assert_int_equal(d->n, 3);
    for (long r = 0; r < 3; r++) {
        assert_int_equal(d->labels[r], cifar_label(r));
        assert_int_equal(d->pixels[r * 3072 + 3071], cifar_pixel(r, 3071));
    }
    dn_dataset_free(d);
    /* a limit above the set's size keeps every record */
    assert_int_equal(open_text(text, "valid", 3, 32, 32, &d, &err), 0);
    assert_int_equal(d->n, 8);
    dn_dataset_free(d);
    /* IDX, padded and replicated, then cut */
    assert_int_equal(open_text("train=%s/lim-images-idx3-ubyte.gz\n"
                               "train_limit=2\n", "train", 3, 9, 10, &d, &err), 0);
    assert_int_equal(d->n, 2);
    assert_int_equal(d->labels[1], 1);
    assert_int_equal(d->pixels[(1 * 3 * 9 + 2) * 10 + 2], idx_pixel(1, 0));
    dn_dataset_free(d);
    /* the value is checked like any other key */
    d = (dn_dataset *)&err;
    assert_int_equal(open_text("train=%s/lim.bin\ntrain_limit=5x\n", "train",
                               3, 32, 32, &d, &err), -1);
    assert_null(d);
    assert_contains(err.msg, "t.data:2: [data] train_limit: expected an integer");
}

/* ------------------------------------------------------------------ IDX */

static void check_idx_native(const dn_dataset *d)
{
    assert_int_equal(d->n, IDX_N);
    assert_int_equal(d->c, 1);
    assert_int_equal(d->h, IDX_ROWS);
    assert_int_equal(d->w, IDX_COLS);
    for (long r = 0; r < IDX_N; r++) {
        assert_int_equal(d->labels[r], r % 3);
        for (long j = 0; j < IDX_ROWS * IDX_COLS; j++)
            assert_int_equal(d->pixels[r * IDX_ROWS * IDX_COLS + j],
                             idx_pixel(r, j));
    }
}

static void test_idx_raw_and_gzip(void **state)
{
    write_idx_pair("raw", 0);
    write_idx_pair("gz", 1);
    dn_dataset *d;
    dn_error err = {""};
    assert_int_equal(open_text("classes=3\ntrain=%s/raw-images-idx3-ubyte\n"
                               "train_labels=%s/raw-labels-idx1-ubyte\n",
                               "train", 1, IDX_ROWS, IDX_COLS, &d, &err), 0);
    check_idx_native(d);
    assert_int_equal(d->classes, 3);
    dn_dataset_free(d);
    /* labels guessed from the name; classes from the largest label */
    assert_int_equal(open_text("valid=%s/gz-images-idx3-ubyte.gz\n", "valid",
                               0, 0, 0, &d, &err), 0);
    check_idx_native(d);
    assert_int_equal(d->classes, 3);
    dn_dataset_free(d);
}

static void test_idx_pad_and_replicate_from_net_shape(void **state)
{
    write_idx_pair("pr", 1);
    dn_dataset *d;
    dn_error err = {""};
    /* 5x6 -> 9x10: 2 rows above, 2 columns left */
    assert_int_equal(open_text("train=%s/pr-images-idx3-ubyte.gz\n", "train",
                               3, 9, 10, &d, &err), 0);
    assert_int_equal(d->c, 3);
    assert_int_equal(d->h, 9);
    assert_int_equal(d->w, 10);
    assert_int_equal(d->native_c, 1);
    for (long r = 0; r < IDX_N; r++)
        for (int ch = 0; ch < 3; ch++)
            for (int y = 0; y < 9; y++)
                for (int x = 0; x < 10; x++) {
                    int inside = y >= 2 && y < 7 && x >= 2 && x < 8;
                    int want = inside ? idx_pixel(r, (y - 2) * IDX_COLS + x - 2)
                                      : 0;
                    assert_int_equal(d->pixels[((r * 3 + ch) * 9 + y) * 10 + x],
                                     want);
                }
    dn_dataset_free(d);
}

static void test_idx_explicit_pad_and_replicate_keys(void **state)
{
    write_idx_pair("ek", 0);
    dn_dataset *d;
    dn_error err = {""};
    assert_int_equal(open_text("train=%s/ek-images-idx3-ubyte\npad=1\n"
                               "replicate=1\n", "train", 0, 0, 0, &d, &err), 0);
    assert_int_equal(d->c, 3);
    assert_int_equal(d->h, 7);
    assert_int_equal(d->w, 8);
    assert_int_equal(d->pixels[1 * 8 + 1], idx_pixel(0, 0));
    assert_int_equal(d->pixels[0], 0);
    dn_dataset_free(d);
    d = (dn_dataset *)&err; /* must be reset to NULL */
    assert_int_equal(open_text("train=%s/ek-images-idx3-ubyte\npad=1\n", "train",
                               1, 9, 10, &d, &err), -1);
    assert_null(d);
    assert_contains(err.msg, "images are 7x8 after pad but the network input is "
                             "9x10");
    assert_int_equal(open_text("train=%s/ek-images-idx3-ubyte\nreplicate=0\n",
                               "train", 3, 5, 6, &d, &err), -1);
    assert_contains(err.msg, "images have 1 channel but the network input has 3");
    assert_int_equal(open_text("train=%s/ek-images-idx3-ubyte\npad=0\n",
                               "train", 1, 9, 10, &d, &err), -1);
    assert_contains(err.msg, "use pad=auto");
}

/* ------------------------------------------------------- bad input table */

typedef struct bad_case {
    const char *what;
    void (*setup)(void);
    const char *data; /* .data text, %s = temp dir */
    int c, h, w;
    const char *expect[3];
} bad_case;

static void bad_cifar_truncated(void)
{
    write_cifar("trunc.bin", 0, 3);
    truncate(tmp_path("trunc.bin"), 2 * 3073 + 100);
}

static void bad_cifar_label(void)
{
    write_cifar("label.bin", 0, 3);
    FILE *f = fopen(tmp_path("label.bin"), "r+b");
    fseek(f, 3073, SEEK_SET);
    fputc(10, f);
    fclose(f);
}

static void bad_cifar_empty(void) { write_bytes("empty.bin", "", 0); }
static void bad_cifar_small(void) { write_cifar("small.bin", 0, 1); }

static void bad_idx_magic(void)
{
    uint8_t buf[4096];
    write_bytes("magic-images-idx3-ubyte", buf, idx_images(buf, IDX_N, IDX_N, 0x801));
    write_bytes("magic-labels-idx1-ubyte", buf, idx_labels(buf, IDX_N, IDX_N));
}

static void bad_idx_truncated(int gz)
{
    uint8_t buf[4096];
    size_t n = idx_images(buf, IDX_N, IDX_N, 0x803) - 7;
    (gz ? write_gz : write_bytes)(gz ? "cut-images-idx3-ubyte.gz"
                                     : "cut-images-idx3-ubyte", buf, n);
    (gz ? write_gz : write_bytes)(gz ? "cut-labels-idx1-ubyte.gz"
                                     : "cut-labels-idx1-ubyte", buf,
                                  idx_labels(buf, IDX_N, IDX_N));
}
static void bad_idx_truncated_raw(void) { bad_idx_truncated(0); }
static void bad_idx_truncated_gz(void) { bad_idx_truncated(1); }

/* A gzip stream cut short: zlib reports the damage. */
static void bad_idx_gz_stream_cut(void)
{
    write_idx_pair("zcut", 1);
    struct stat st;
    stat(tmp_path("zcut-images-idx3-ubyte.gz"), &st);
    truncate(tmp_path("zcut-images-idx3-ubyte.gz"), st.st_size - 12);
}

/* Only the gzip trailer (CRC and size) cut: every record is there, and it
 * trained without complaint. */
static void bad_idx_gz_trailer_cut(void)
{
    write_idx_pair("tcut", 1);
    struct stat st;
    stat(tmp_path("tcut-images-idx3-ubyte.gz"), &st);
    truncate(tmp_path("tcut-images-idx3-ubyte.gz"), st.st_size - 6);
}

/* A damaged byte in the stored CRC. */
static void bad_idx_gz_crc(void)
{
    write_idx_pair("crc", 1);
    struct stat st;
    stat(tmp_path("crc-images-idx3-ubyte.gz"), &st);
    FILE *f = fopen(tmp_path("crc-images-idx3-ubyte.gz"), "r+b");
    fseek(f, st.st_size - 8, SEEK_SET);
    int c = fgetc(f);
    fseek(f, st.st_size - 8, SEEK_SET);
    fputc(c ^ 0x5a, f);
    fclose(f);
}

/* Bytes after the end of the gzip stream (zlib's gzread ignores them). */
static void bad_idx_gz_trailing(void)
{
    write_idx_pair("gztrail", 1);
    FILE *f = fopen(tmp_path("gztrail-images-idx3-ubyte.gz"), "ab");
    fputs("junk", f);
    fclose(f);
}

/* A header claiming 4294967295 records (SEGV in memmove with gzip): the
 * file's size refuses it before anything is allocated. */
static void bad_idx_huge_count(int gz)
{
    uint8_t buf[4096];
    write_idx_pair(gz ? "hugez" : "huge", gz);
    size_t n = idx_labels(buf, IDX_N, IDX_N);
    buf[4] = buf[5] = buf[6] = buf[7] = 0xff;
    (gz ? write_gz : write_bytes)(gz ? "hugez-labels-idx1-ubyte.gz"
                                     : "huge-labels-idx1-ubyte", buf, n);
    n = idx_images(buf, IDX_N, IDX_N, 0x803);
    buf[4] = buf[5] = buf[6] = buf[7] = 0xff;
    (gz ? write_gz : write_bytes)(gz ? "hugez-images-idx3-ubyte.gz"
                                     : "huge-images-idx3-ubyte", buf, n);
}
static void bad_idx_huge_raw(void) { bad_idx_huge_count(0); }
static void bad_idx_huge_gz(void) { bad_idx_huge_count(1); }

/* A line of 5000 characters was split silently into two. */
static void bad_long_names(void)
{
    write_cifar("long.bin", 0, 2);
    char text[6000];
    memset(text, 'a', 5000);
    snprintf(text + 5000, sizeof text - 5000, "\nb\n");
    tu_write_file("long.names", text);
}

static void bad_idx_label_range(void)
{
    write_idx_pair("range", 0);
    FILE *f = fopen(tmp_path("range-labels-idx1-ubyte"), "r+b");
    fseek(f, 8 + 2, SEEK_SET);
    fputc(5, f);
    fclose(f);
}

static void bad_idx_count(void)
{
    uint8_t buf[4096];
    write_bytes("count-images-idx3-ubyte", buf, idx_images(buf, IDX_N, IDX_N, 0x803));
    write_bytes("count-labels-idx1-ubyte", buf, idx_labels(buf, IDX_N - 1, IDX_N - 1));
}

static void bad_idx_trailing(void)
{
    uint8_t buf[4096];
    size_t n = idx_images(buf, IDX_N, IDX_N, 0x803);
    buf[n] = 9; /* one byte too many */
    write_bytes("trail-images-idx3-ubyte", buf, n + 1);
    write_bytes("trail-labels-idx1-ubyte", buf, idx_labels(buf, IDX_N, IDX_N));
}

static void bad_idx_only_images(void)
{
    uint8_t buf[4096];
    write_bytes("lonely-images-idx3-ubyte", buf, idx_images(buf, IDX_N, IDX_N, 0x803));
}

static void bad_names(void)
{
    write_cifar("names.bin", 0, 2);
    tu_write_file("three.names", "a\nb\nc\n");
}

static void bad_list(void) { tu_write_file("train.list", "img/cat/1.png\n"); }

static const bad_case bad_cases[] = {
    {"cifar truncated record", bad_cifar_truncated, "train=%s/trunc.bin\n", 3, 32, 32,
     {"trunc.bin", "record 2 is truncated: 100 of 3073 bytes"}},
    {"cifar label out of range", bad_cifar_label, "classes=10\ntrain=%s/label.bin\n",
     3, 32, 32, {"label.bin: record 1: label 10 out of range [0, 10)"}},
    {"cifar empty file", bad_cifar_empty, "train=%s/empty.bin\n", 3, 32, 32,
     {"empty.bin: empty file"}},
    {"cifar missing file", NULL, "train=%s/nothere.bin\n", 3, 32, 32,
     {"nothere.bin: cannot open"}},
    {"cifar net smaller", bad_cifar_small, "train=%s/small.bin\n", 3, 28, 28,
     {"small.bin", "images are 32x32 but the network input is 28x28",
      "never shrunk"}},
    {"cifar colour to grey net", bad_cifar_small, "train=%s/small.bin\n", 1, 32, 32,
     {"images have 3 channels but the network input has 1"}},
    {"idx bad magic", bad_idx_magic, "train=%s/magic-images-idx3-ubyte\n", 1, 5, 6,
     {"magic-images-idx3-ubyte: bad IDX magic 0x00000801"}},
    {"idx truncated raw", bad_idx_truncated_raw, "train=%s/cut-images-idx3-ubyte\n",
     1, 5, 6, {"cut-images-idx3-ubyte: truncated: record 3 of 4 is incomplete"}},
    {"idx truncated gz", bad_idx_truncated_gz, "train=%s/cut-images-idx3-ubyte.gz\n",
     1, 5, 6, {"cut-images-idx3-ubyte.gz: truncated: record 3 of 4"}},
    {"idx gzip stream cut", bad_idx_gz_stream_cut,
     "train=%s/zcut-images-idx3-ubyte.gz\n", 1, 5, 6,
     {"zcut-images-idx3-ubyte.gz: ", "record"}},
    {"idx gzip trailer cut", bad_idx_gz_trailer_cut,
     "train=%s/tcut-images-idx3-ubyte.gz\n", 1, 5, 6,
     {"tcut-images-idx3-ubyte.gz: truncated gzip stream: it ends at byte",
      "before its end marker"}},
    {"idx gzip bad crc", bad_idx_gz_crc, "train=%s/crc-images-idx3-ubyte.gz\n",
     1, 5, 6, {"crc-images-idx3-ubyte.gz: corrupt gzip stream near byte",
               "incorrect data check"}},
    {"idx gzip trailing bytes", bad_idx_gz_trailing,
     "train=%s/gztrail-images-idx3-ubyte.gz\n", 1, 5, 6,
     {"gztrail-images-idx3-ubyte.gz: unexpected bytes after the gzip stream"}},
    {"idx huge count raw", bad_idx_huge_raw, "train=%s/huge-images-idx3-ubyte\n",
     1, 5, 6, {"huge-labels-idx1-ubyte: truncated: record 4 of 4294967295 is "
               "missing"}},
    {"idx huge count gz", bad_idx_huge_gz, "train=%s/hugez-images-idx3-ubyte.gz\n",
     1, 5, 6, {"hugez-labels-idx1-ubyte.gz: the IDX header claims 4294967295 "
               "records", "more than a gzip file of"}},
    {"names long line", bad_long_names, "train=%s/long.bin\nlabels=%s/long.names\n",
     3, 32, 32, {"long.names:1: a line longer than 4096 characters"}},
    {"idx label out of range", bad_idx_label_range,
     "classes=3\ntrain=%s/range-images-idx3-ubyte\n", 1, 5, 6,
     {"range-labels-idx1-ubyte: record 2: label 5 out of range [0, 3)"}},
    {"idx count mismatch", bad_idx_count, "train=%s/count-images-idx3-ubyte\n", 1, 5, 6,
     {"count-images-idx3-ubyte has 4 images but", "count-labels-idx1-ubyte has 3 "
                                                  "labels"}},
    {"idx trailing bytes", bad_idx_trailing, "train=%s/trail-images-idx3-ubyte\n",
     1, 5, 6, {"trail-images-idx3-ubyte: unexpected bytes after the last record"}},
    {"idx missing labels", bad_idx_only_images,
     "train=%s/lonely-images-idx3-ubyte\n", 1, 5, 6,
     {"lonely-labels-idx1-ubyte: cannot open"}},
    {"idx labels not guessable", NULL,
     "format=idx\ntrain=%s/trail-images.bin\n", 1, 5, 6, {"set train_labels="}},
    {"names count", bad_names, "classes=5\ntrain=%s/names.bin\nlabels=%s/three.names\n",
     3, 32, 32, {"t.data:1: [data] classes: classes=5 but the label names file has 3"}},
    {"no train key", NULL, "valid=%s/names.bin\n", 3, 32, 32,
     {"t.data: no train= key"}},
    {"bad format", NULL, "train=%s/names.bin\nformat=png\n", 3, 32, 32,
     {"format: unknown value \"png\"; valid: auto, cifar, idx, list"}},
#ifndef DN_OPENCV
    {"image list without OpenCV", bad_list,
     "train=%s/train.list\nlabels=%s/three.names\n", 3, 32, 32,
     {"train.list: image lists are decoded with OpenCV", "OPENCV=1"}},
#endif
};

size_t __sanitizer_get_current_allocated_bytes(void); /* the ASan runtime */

static void test_bad_inputs_fail_cleanly(void **state)
{
    for (size_t i = 0; i < sizeof bad_cases / sizeof *bad_cases; i++) {
        const bad_case *t = &bad_cases[i];
        if (t->setup)
            t->setup();
        dn_dataset *d = (dn_dataset *)t; /* must come back NULL */
        dn_error err = {""};
        const size_t before = __sanitizer_get_current_allocated_bytes();
        int rc = open_text(t->data, "train", t->c, t->h, t->w, &d, &err);
        /* what a failure leaves allocated; nothing large on the way */
        if (__sanitizer_get_current_allocated_bytes() > before + (1 << 20))
            fail_msg("case \"%s\": memory left allocated", t->what);
        if (rc != -1 || d != NULL)
            fail_msg("case \"%s\": expected failure, got rc %d", t->what, rc);
        for (int k = 0; k < 3 && t->expect[k]; k++)
            if (!strstr(err.msg, t->expect[k]))
                fail_msg("case \"%s\":\n  message:  %s\n  expected: ...%s...",
                         t->what, err.msg, t->expect[k]);
    }
}

/* ------------------------------------------------------------ image lists */

static void test_label_of_path_darknet_rule(void **state)
{
    char *labels[] = {"cat", "dog", "category"};
    int a = -1, b = -1;
    assert_int_equal(dn_label_of_path("data/train/12_dog.png", labels, 2, &a, &b), 1);
    assert_int_equal(dn_label_of_path("data/cat/1.png", labels, 2, &a, &b), 0);
    assert_int_equal(dn_label_of_path("data/bird/1.png", labels, 2, &a, &b), -1);
    assert_int_equal(dn_label_of_path("data/category/1.png", labels, 3, &a, &b), -2);
    assert_int_equal(a, 0);
    assert_int_equal(b, 2);
}

/* A FIFO (a hang: it blocks until a writer comes), a directory or a
 * device named as a data file, a label-names file or an image list is
 * refused at once. */
static void test_only_regular_files_are_read(void **state)
{
    char fifo[600];
    snprintf(fifo, sizeof fifo, "%s/fifo-images-idx3-ubyte", tu_tmpdir());
    assert_int_equal(mkfifo(fifo, 0600), 0);
    write_cifar("ok.bin", 0, 2);
    const struct {
        const char *data, *message;
    } cases[] = {
        {"format=idx\ntrain=%s/fifo-images-idx3-ubyte\ntrain_labels=%s/"
         "fifo-images-idx3-ubyte\n", "not a regular file (a FIFO)"},
        {"train=%s/fifo-images-idx3-ubyte\n", "not a regular file (a FIFO)"},
        {"format=cifar\ntrain=%s/fifo-images-idx3-ubyte\n", "not a regular file (a FIFO)"},
        {"train=%s/ok.bin\nlabels=%s/fifo-images-idx3-ubyte\n",
         "cannot open label names: not a regular file (a FIFO)"},
        {"format=cifar\ntrain=/dev/zero\n", "not a regular file (a character device)"},
        {"format=idx\ntrain=%s/ok.bin\ntrain_labels=%s\n", "not a regular file (a directory)"},
    };
    alarm(20); /* a regression blocks: fail instead of hanging the suite */
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        dn_dataset *d = NULL;
        dn_error err = {""};
        assert_int_equal(open_text(cases[i].data, "train", 3, 32, 32, &d, &err), -1);
        assert_null(d);
        if (!strstr(err.msg, cases[i].message))
            fail_msg("case %zu: %s", i, err.msg);
    }
    char **paths;
    int *labs;
    long n;
    char *labels[] = {"cat"};
    dn_error err = {""};
    assert_int_equal(dn_image_list_read(fifo, labels, 1, &paths, &labs, &n,
                                        &err), -1);
    assert_contains(err.msg, "cannot open image list: not a regular file");
    alarm(0);
    unlink(fifo);
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

static void test_image_list_labels_and_errors(void **state)
{
    char *labels[] = {"cat", "dog", "category"};
    char **paths;
    int *labs;
    long n;
    dn_error err = {""};
    char *list = tu_write_file("ok.list", "img/cat/1.png\n\n  img/dog/2.png \n");
    assert_int_equal(dn_image_list_read(list, labels, 2, &paths, &labs, &n, &err), 0);
    assert_int_equal(n, 2);
    assert_string_equal(paths[1], "img/dog/2.png");
    assert_int_equal(labs[0], 0);
    assert_int_equal(labs[1], 1);
    for (long i = 0; i < n; i++)
        free(paths[i]);
    free(paths);
    free(labs);
    list = tu_write_file("none.list", "img/cat/1.png\n\nimg/bird/3.png\n");
    assert_int_equal(dn_image_list_read(list, labels, 2, &paths, &labs, &n, &err), -1);
    assert_contains(err.msg, "none.list:3: no label name is part of the path "
                             "\"img/bird/3.png\"");
    list = tu_write_file("two.list", "img/category/1.png\n");
    assert_int_equal(dn_image_list_read(list, labels, 3, &paths, &labs, &n, &err), -1);
    assert_contains(err.msg, "two.list:1: the path \"img/category/1.png\" matches "
                             "several labels (\"cat\" and \"category\")");
    assert_int_equal(dn_image_list_read(tmp_path("absent.list"), labels, 2, &paths,
                                        &labs, &n, &err), -1);
    assert_contains(err.msg, "absent.list: cannot open image list");
    char long_line[6000] = "img/cat/";
    memset(long_line + 8, 'x', 5000);
    snprintf(long_line + 5008, sizeof long_line - 5008, ".png\n");
    const char *lpath = tu_write_file("long.list", long_line);
    assert_int_equal(dn_image_list_read(lpath, labels, 2, &paths, &labs, &n,
                                        &err), -1);
    assert_contains(err.msg, "long.list:1: a line longer than 4096 characters");
}

/* ------------------------------------------------------------ augmentation */

static int parse_aug(const char *net_text, const dn_dataset *train,
                     dn_augment **a, dn_error *err)
{
    dn_cfg *cfg;
    assert_int_equal(dn_cfg_parse_string(net_text, "test.cfg", &cfg, err), 0);
    int rc = dn_augment_parse(&cfg->sections[0], train, a, err);
    dn_cfg_free(cfg);
    return rc;
}

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

/* Records r of n with distinct, non-zero pixels; label r % classes. */
static dn_dataset *synthetic(long n, int c, int h, int w, int classes)
{
    dn_dataset *d = dn_dataset_alloc(n, c, h, w, classes, "synthetic");
    long D = (long)c * h * w;
    for (long r = 0; r < n; r++) {
        d->labels[r] = (int)(r % classes);
        d->pixels[r * D] = (uint8_t)r; /* record id in pixel 0 */
        for (long j = 1; j < D; j++)
            d->pixels[r * D + j] = (uint8_t)(1 + (r * 31 + j * 17) % 250);
    }
    return d;
}

static void test_flip_keeps_or_mirrors_about_half(void **state)
{
    dn_dataset *d = synthetic(200, 2, 3, 4, 5);
    dn_augment *a;
    dn_error err = {""};
    assert_int_equal(parse_aug("[net]\nflip=1\n", d, &a, &err), 0);
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
    dn_dataset *d = synthetic(100, 1, 5, 5, 3);
    dn_augment *a;
    dn_error err = {""};
    assert_int_equal(parse_aug("[net]\ncrop_pad=2\n", d, &a, &err), 0);
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
    dn_dataset *d = synthetic(40, 3, 2, 2, 4);
    dn_augment *a;
    dn_error err = {""};
    assert_int_equal(parse_aug("[net]\nsubtract_mean=1\n", d, &a, &err), 0);
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
    dn_dataset *d = synthetic(30, 2, 3, 3, 4);
    dn_augment *a;
    dn_error err = {""};
    assert_int_equal(parse_aug("[net]\nnormalize=1\nmean=0.5\nstd=0.25,0.5\n", d,
                               &a, &err), 0);
    float x[18], scratch[18];
    long r = 3;
    dn_augment_apply(a, d, &r, 1, 0, 0, 0, x, scratch);
    assert_float_equal(x[2], (d->pixels[3 * 18 + 2] / 255.0f - 0.5f) / 0.25f, 1e-5);
    assert_float_equal(x[11], (d->pixels[3 * 18 + 11] / 255.0f - 0.5f) / 0.5f, 1e-5);
    dn_augment_free(a);
    /* computed: each channel has mean 0 and variance 1 over the set */
    assert_int_equal(parse_aug("[net]\nnormalize=1\n", d, &a, &err), 0);
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
    dn_dataset *d = synthetic(5, 1, 4, 4, 2);
    for (long j = 0; j < 16; j++) /* record 0 spans 50..125 */
        d->pixels[j] = (uint8_t)(50 + 5 * j);
    dn_augment *a;
    dn_error err = {""};
    float x[16], scratch[16];
    long r = 0;
    assert_int_equal(parse_aug("[net]\ncontrast_stretch=1\n", d, &a, &err), 0);
    dn_augment_apply(a, d, &r, 1, 0, 0, 0, x, scratch);
    assert_float_equal(x[0], 0.0f, 1e-6);
    assert_float_equal(x[15], 1.0f, 1e-6);
    assert_float_equal(x[3], 15.0f / 75.0f, 1e-6);
    dn_augment_free(a);
    assert_int_equal(parse_aug("[net]\ngcn=1\ngcn_scale=2\n", d, &a, &err), 0);
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
    dn_dataset *d = synthetic(4, 3, 2, 2, 2);
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
        assert_int_equal(parse_aug(cases[i].cfg, d, &a, &err), -1);
        assert_null(a);
        assert_contains(err.msg, cases[i].expect);
    }
    dn_augment *a;
    dn_error err = {""};
    assert_int_equal(parse_aug("[net]\nzca=1\n", NULL, &a, &err), -1);
    assert_contains(err.msg, "zca=1 needs the training set");
    assert_int_equal(parse_aug("[net]\nflip=1\ncrop_pad=4\n", NULL, &a, &err), 0);
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
    assert_int_equal(parse_aug("[net]\nzca=1\nzca_epsilon=1e-7\n", d, &a, &err), 0);
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
    assert_int_equal(parse_aug("[net]\nzca=1\nzca_epsilon=1e-7\n", d, &b, &err), 0);
    assert_int_equal(b->zca_from_cache, 1);
    assert_string_equal(a->zca_cache, b->zca_cache);
    assert_memory_equal(a->zca_matrix, b->zca_matrix, 36 * sizeof(float));
    assert_memory_equal(a->zca_mean, b->zca_mean, 6 * sizeof(float));
    char buf[128];
    dn_augment_describe(b, buf, sizeof buf);
    assert_string_equal(buf, "zca(eps=1e-07, cached)");
    dn_augment_free(b);
    /* another epsilon is another file; a corrupt file is refitted */
    assert_int_equal(parse_aug("[net]\nzca=1\nzca_epsilon=0.01\n", d, &b, &err), 0);
    assert_string_not_equal(a->zca_cache, b->zca_cache);
    write_bytes(strrchr(b->zca_cache, '/') + 1, "garbage", 7);
    dn_augment_free(b);
    assert_int_equal(parse_aug("[net]\nzca=1\nzca_epsilon=0.01\n", d, &b, &err), 0);
    assert_int_equal(b->zca_from_cache, 0);
    dn_augment_free(b);
    /* no cache, and an unwritable cache directory (a warning, not an error) */
    assert_int_equal(parse_aug("[net]\nzca=1\nzca_cache=none\n", d, &b, &err), 0);
    assert_null(b->zca_cache);
    dn_augment_free(b);
    assert_int_equal(parse_aug("[net]\nzca=1\nzca_cache=/nonexistent/dir\n", d, &b,
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
    assert_int_equal(parse_aug("[net]\nzca=1\n", d, &b, &err), 0);
    assert_non_null(b->zca_cache);
    assert_true(strncmp(b->zca_cache, want, strlen(want)) == 0);
    assert_int_equal(access(b->zca_cache, R_OK), 0);
    dn_augment_free(b);
    unsetenv("XDG_CACHE_HOME");
    dn_augment_free(a);
    dn_dataset_free(d);
}

/* ------------------------------------------------------------------ loader */

typedef struct fetched {
    float x[8 * 12];
    float truth[8 * 5];
    int labels[8];
    int valid;
} fetched;

static void test_loader_batches_depend_only_on_seed_and_index(void **state)
{
    dn_dataset *d = synthetic(50, 3, 2, 2, 5);
    dn_augment *a;
    dn_error err = {""};
    assert_int_equal(parse_aug("[net]\nflip=1\ncrop_pad=1\nsubtract_mean=1\n", d, &a,
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
    dn_dataset *d = synthetic(48, 1, 2, 2, 5);
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
    dn_dataset *d = synthetic(10, 1, 1, 2, 3);
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
    dn_dataset *d = synthetic(10, 1, 1, 2, 3);
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
    dn_dataset *d = synthetic(10, 1, 1, 2, 3), *e = synthetic(10, 1, 2, 2, 3);
    dn_augment *a;
    dn_loader *l = (dn_loader *)d;
    dn_error err = {""};
    assert_int_equal(dn_loader_make(d, NULL, 0, 3, 3, 0, 0, &l, &err), -1);
    assert_null(l);
    assert_contains(err.msg, "must be >= 1");
    assert_int_equal(parse_aug("[net]\nsubtract_mean=1\n", e, &a, &err), 0);
    assert_int_equal(dn_loader_make(d, a, 2, 3, 3, 0, 0, &l, &err), -1);
    assert_contains(err.msg, "fitted for 1x2x2");
    dn_augment_free(a);
    dn_dataset_free(d);
    dn_dataset_free(e);
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
    write_bytes("pipe-images-idx3-ubyte", img, sizeof img);
    write_bytes("pipe-labels-idx1-ubyte", lab, sizeof lab);
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
             tmp_path("pipe-images-idx3-ubyte"));
    const char *data = tu_write_file("pipe.data", text);
    check_experiment_pipeline("experiments/exp1.cfg", "cfg/resnet-small.cfg", data);
    check_experiment_pipeline("experiments/exp2.cfg", "cfg/resnet-small-hybrid.cfg",
                              data);
}

/* --------------------------------------------------- Fashion-MNIST (real) */

#define FASHION "/usr/share/datasets/fashion-mnist/"

static void test_fashion_mnist_if_installed(void **state)
{
    if (access(FASHION "train-images-idx3-ubyte.gz", R_OK) != 0) {
        print_message("Fashion-MNIST not installed (dataset-fashion-mnist): "
                      "skipped\n");
        skip();
    }
    const char *data = access("cfg/fashion-mnist.data", R_OK) == 0
                           ? "cfg/fashion-mnist.data"
                           : tu_write_file("fm.data", "classes=10\n"
                                           "train=" FASHION "train-images-idx3-ubyte.gz\n"
                                           "valid=" FASHION "t10k-images-idx3-ubyte.gz\n");
    dn_cfg *cfg;
    dn_error err = {""};
    assert_int_equal(dn_cfg_load_flat(data, &cfg, &err), 0);
    dn_dataset *train, *valid;
    if (dn_dataset_open(&cfg->sections[0], "train", 1, 28, 28, &train, &err))
        fail_msg("%s", err.msg);
    assert_int_equal(train->n, 60000);
    assert_int_equal(train->classes, 10);
    assert_int_equal(train->h, 28);
    long count[10] = {0};
    for (long i = 0; i < train->n; i++)
        count[train->labels[i]]++;
    for (int k = 0; k < 10; k++)
        assert_int_equal(count[k], 6000);
    dn_dataset_free(train);
    /* the CIFAR network shape: padded and replicated */
    if (dn_dataset_open(&cfg->sections[0], "valid", 3, 32, 32, &valid, &err))
        fail_msg("%s", err.msg);
    assert_int_equal(valid->n, 10000);
    assert_int_equal(valid->c, 3);
    assert_int_equal(valid->h, 32);
    assert_int_equal(valid->pixels[0], 0);
    if (valid->names)
        assert_string_equal(valid->names[9], "Ankle boot");
    dn_dataset_free(valid);
    dn_cfg_free(cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cifar_files_values_labels_names),
        cmocka_unit_test(test_cifar_directory_train_and_valid),
        cmocka_unit_test(test_cifar_padded_to_larger_net),
        cmocka_unit_test(test_limit_keeps_first_records),
        cmocka_unit_test(test_idx_raw_and_gzip),
        cmocka_unit_test(test_idx_pad_and_replicate_from_net_shape),
        cmocka_unit_test(test_idx_explicit_pad_and_replicate_keys),
        cmocka_unit_test(test_bad_inputs_fail_cleanly),
        cmocka_unit_test(test_label_of_path_darknet_rule),
        cmocka_unit_test(test_image_list_labels_and_errors),
        cmocka_unit_test(test_only_regular_files_are_read),
        cmocka_unit_test(test_zca_too_large_is_refused),
        cmocka_unit_test(test_shift_flip_on_tiny_image),
        cmocka_unit_test(test_flip_keeps_or_mirrors_about_half),
        cmocka_unit_test(test_crop_pad_is_a_bounded_shift),
        cmocka_unit_test(test_subtract_mean_centres_every_pixel),
        cmocka_unit_test(test_normalize_explicit_and_computed),
        cmocka_unit_test(test_gcn_and_contrast_stretch),
        cmocka_unit_test(test_parse_errors_name_the_key),
        cmocka_unit_test(test_zca_whitens_to_identity_and_caches),
        cmocka_unit_test(test_loader_batches_depend_only_on_seed_and_index),
        cmocka_unit_test(test_loader_epoch_is_a_permutation),
        cmocka_unit_test(test_loader_short_epoch_and_wraparound),
        cmocka_unit_test(test_loader_partial_last_batch_unshuffled),
        cmocka_unit_test(test_loader_rejects_bad_arguments),
        cmocka_unit_test(test_experiment_pipelines_on_fashion_mnist_shapes),
        cmocka_unit_test(test_fashion_mnist_if_installed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

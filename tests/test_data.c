/*
 * test_data.c - the dataset readers (data.c): CIFAR-10 binary files, IDX
 * (raw and gzip), image lists, bad input, and Fashion-MNIST where Debian's
 * package is installed. Small files are generated in the test's temporary
 * directory.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "testutil.h"

/* -------------------------------------------------------- file writers */

static char *write_gz(const char *name, const void *data, size_t n)
{
    char *p = tu_tmp_path(name);
    gzFile f = gzopen(p, "wb");
    assert_non_null(f);
    assert_int_equal(gzwrite(f, data, (unsigned)n), (int)n);
    gzclose(f);
    return p;
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
    tu_write_bytes(name, buf, size);
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
    char *(*put)(const char *, const void *, size_t) = gz ? write_gz : tu_write_bytes;
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
    char *dir = tu_tmp_path("cifar-10-batches-bin");
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
    truncate(tu_tmp_path("trunc.bin"), 2 * 3073 + 100);
}

static void bad_cifar_label(void)
{
    write_cifar("label.bin", 0, 3);
    FILE *f = fopen(tu_tmp_path("label.bin"), "r+b");
    fseek(f, 3073, SEEK_SET);
    fputc(10, f);
    fclose(f);
}

static void bad_cifar_empty(void) { tu_write_bytes("empty.bin", "", 0); }
static void bad_cifar_small(void) { write_cifar("small.bin", 0, 1); }

static void bad_idx_magic(void)
{
    uint8_t buf[4096];
    tu_write_bytes("magic-images-idx3-ubyte", buf, idx_images(buf, IDX_N, IDX_N, 0x801));
    tu_write_bytes("magic-labels-idx1-ubyte", buf, idx_labels(buf, IDX_N, IDX_N));
}

static void bad_idx_truncated(int gz)
{
    uint8_t buf[4096];
    size_t n = idx_images(buf, IDX_N, IDX_N, 0x803) - 7;
    (gz ? write_gz : tu_write_bytes)(gz ? "cut-images-idx3-ubyte.gz"
                                     : "cut-images-idx3-ubyte", buf, n);
    (gz ? write_gz : tu_write_bytes)(gz ? "cut-labels-idx1-ubyte.gz"
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
    stat(tu_tmp_path("zcut-images-idx3-ubyte.gz"), &st);
    truncate(tu_tmp_path("zcut-images-idx3-ubyte.gz"), st.st_size - 12);
}

/* Only the gzip trailer (CRC and size) cut: every record is there, and it
 * trained without complaint. */
static void bad_idx_gz_trailer_cut(void)
{
    write_idx_pair("tcut", 1);
    struct stat st;
    stat(tu_tmp_path("tcut-images-idx3-ubyte.gz"), &st);
    truncate(tu_tmp_path("tcut-images-idx3-ubyte.gz"), st.st_size - 6);
}

/* A damaged byte in the stored CRC. */
static void bad_idx_gz_crc(void)
{
    write_idx_pair("crc", 1);
    struct stat st;
    stat(tu_tmp_path("crc-images-idx3-ubyte.gz"), &st);
    FILE *f = fopen(tu_tmp_path("crc-images-idx3-ubyte.gz"), "r+b");
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
    FILE *f = fopen(tu_tmp_path("gztrail-images-idx3-ubyte.gz"), "ab");
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
    (gz ? write_gz : tu_write_bytes)(gz ? "hugez-labels-idx1-ubyte.gz"
                                     : "huge-labels-idx1-ubyte", buf, n);
    n = idx_images(buf, IDX_N, IDX_N, 0x803);
    buf[4] = buf[5] = buf[6] = buf[7] = 0xff;
    (gz ? write_gz : tu_write_bytes)(gz ? "hugez-images-idx3-ubyte.gz"
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
    FILE *f = fopen(tu_tmp_path("range-labels-idx1-ubyte"), "r+b");
    fseek(f, 8 + 2, SEEK_SET);
    fputc(5, f);
    fclose(f);
}

static void bad_idx_count(void)
{
    uint8_t buf[4096];
    tu_write_bytes("count-images-idx3-ubyte", buf, idx_images(buf, IDX_N, IDX_N, 0x803));
    tu_write_bytes("count-labels-idx1-ubyte", buf, idx_labels(buf, IDX_N - 1, IDX_N - 1));
}

static void bad_idx_trailing(void)
{
    uint8_t buf[4096];
    size_t n = idx_images(buf, IDX_N, IDX_N, 0x803);
    buf[n] = 9; /* one byte too many */
    tu_write_bytes("trail-images-idx3-ubyte", buf, n + 1);
    tu_write_bytes("trail-labels-idx1-ubyte", buf, idx_labels(buf, IDX_N, IDX_N));
}

static void bad_idx_only_images(void)
{
    uint8_t buf[4096];
    tu_write_bytes("lonely-images-idx3-ubyte", buf, idx_images(buf, IDX_N, IDX_N, 0x803));
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
    assert_int_equal(dn_image_list_read(tu_tmp_path("absent.list"), labels, 2, &paths,
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
        cmocka_unit_test(test_fashion_mnist_if_installed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * data.c - dataset readers. A dataset is read whole into memory as bytes,
 * [n, c, h, w] channel-planar, converted once to the network's input shape
 * (zero padding, grey replicated to colour) so that batches never convert.
 *
 * Formats (chosen by format= in the .data file, or detected):
 *  - CIFAR-10 binary batches: records of 1 label byte + 3072 pixel bytes
 *    (R, G, B planes of 32x32), 3073 bytes each, no header.
 *  - IDX (the MNIST format): big-endian header, magic 0x00000803 for an
 *    unsigned-byte image file [n, rows, cols], 0x00000801 for a label file
 *    [n]; raw or gzip-compressed (zlib's gzread reads both).
 *  - Darknet image lists: one image path per line; the label is the one
 *    class name of labels= that is a substring of the path (Darknet's rule).
 *    Decoded through OpenCV.
 *
 * Every failure names the file and, where there is one, the record (from
 * 0) or list line (from 1); nothing half-loaded is ever returned.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "dn_data.h"
#include "file.h"
#include "keys.h"
#include "xalloc.h"

#define CIFAR_SIDE 32
#define CIFAR_PIXELS (3 * CIFAR_SIDE * CIFAR_SIDE)
#define CIFAR_RECORD (1 + CIFAR_PIXELS)
#define MAX_FILES 256
#define MAX_SIDE 65536
/* deflate never compresses by more than this (RFC 1951: 258 bytes of
 * output per 2 bits), so a gzip file of S bytes holds at most about
 * 1032 S bytes: a header claiming more is a lie, refused before allocating */
#define MAX_DEFLATE_RATIO 1032
/* longest line of a label-names file or an image list */
#define MAX_LINE 4096

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

static int is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Directory part of path ("." when there is none). */
static char *dir_of(const char *path)
{
    if (is_dir(path))
        return dn_xstrdup(path);
    const char *slash = strrchr(path, '/');
    if (!slash)
        return dn_xstrdup(".");
    if (slash == path)
        return dn_xstrdup("/");
    char *d = dn_xmalloc(slash - path + 1);
    memcpy(d, path, slash - path);
    d[slash - path] = '\0';
    return d;
}

static void free_strings(char **s, long n)
{
    if (!s)
        return;
    for (long i = 0; i < n; i++)
        free(s[i]);
    free(s);
}

/* ----------------------------------------------------------- dataset */

dn_dataset *dn_dataset_alloc(long n, int c, int h, int w, int classes,
                             const char *source)
{
    dn_dataset *d = dn_xcalloc(1, sizeof *d);
    d->n = n;
    d->c = d->native_c = c;
    d->h = d->native_h = h;
    d->w = d->native_w = w;
    d->classes = classes;
    /* sized by the data: refused as an error (NULL), not aborted */
    d->pixels = calloc((size_t)n * c * h * w + 1, 1);
    d->labels = calloc((size_t)n + 1, sizeof *d->labels);
    d->source = dn_xstrdup(source ? source : "(memory)");
    if (!d->pixels || !d->labels) {
        dn_dataset_free(d);
        return NULL;
    }
    return d;
}

void dn_dataset_free(dn_dataset *d)
{
    if (!d)
        return;
    free(d->pixels);
    free(d->labels);
    free_strings(d->names, d->names ? d->classes : 0);
    free(d->source);
    free(d->dir);
    free(d);
}

/* A multiply-rotate hash over 8-byte words (fast enough for 180 MB). */
static uint64_t hash_bytes(uint64_t h, const void *data, size_t n)
{
    const unsigned char *p = data;
    const uint64_t k1 = 0x9e3779b97f4a7c15ULL, k2 = 0xc2b2ae3d27d4eb4fULL;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        h ^= w * k1;
        h = ((h << 31) | (h >> 33)) * k2;
    }
    uint64_t tail = 0;
    memcpy(&tail, p + i, n - i);
    h ^= (tail + n) * k1;
    return dn_hash3(h, n, 0);
}

uint64_t dn_dataset_hash(const dn_dataset *d)
{
    uint64_t h = dn_hash3((uint64_t)d->n, (uint64_t)d->c << 40 |
                          (uint64_t)d->h << 20 | (uint64_t)d->w, d->classes);
    h = hash_bytes(h, d->pixels, (size_t)d->n * d->c * d->h * d->w);
    return hash_bytes(h, d->labels, (size_t)d->n * sizeof *d->labels);
}

/* ------------------------------------------------------------- names */

/* dn_fopen_regular's message without its "PATH: [cannot open: ]". */
static const char *reason_of(const dn_error *why, const char *path)
{
    const char *r = why->msg;
    size_t n = strlen(path);
    if (strncmp(r, path, n) == 0 && strncmp(r + n, ": ", 2) == 0)
        r += n + 2;
    if (strncmp(r, "cannot open: ", 13) == 0)
        r += 13;
    return r;
}

/* One name per non-blank line (CIFAR's batches.meta.txt, Darknet's labels). */
static int read_names(const char *path, char ***out, int *count, dn_error *err)
{
    dn_error why;
    FILE *f = dn_fopen_regular(path, NULL, &why);
    if (!f)
        return dn_fail(err, "%s: cannot open label names: %s", path,
                       reason_of(&why, path));
    char **names = NULL;
    int n = 0, lineno = 0;
    char line[MAX_LINE + 2];
    while (fgets(line, sizeof line, f)) {
        lineno++;
        if (!strchr(line, '\n') && !feof(f)) {
            fclose(f);
            free_strings(names, n);
            return dn_fail(err, "%s:%d: a line longer than %d characters",
                           path, lineno, MAX_LINE);
        }
        char *t = dn_trim(line);
        if (*t == '\0')
            continue;
        names = dn_xrealloc(names, (n + 1) * sizeof *names);
        names[n++] = dn_xstrdup(t);
    }
    fclose(f);
    if (n == 0) {
        free(names);
        return dn_fail(err, "%s: no label names in file", path);
    }
    *out = names;
    *count = n;
    return 0;
}

/* ------------------------------------------------------ shape options */

/* How file images become stored images: zero padding, grey replicated. */
typedef struct shape_plan {
    int nc, nh, nw; /* in the file */
    int c, h, w;    /* stored */
    int top, left;  /* padding before the first row / column */
} shape_plan;

static const char *const formats[] = {"auto", "cifar", "idx", "list", NULL};
static const char *const rep_choices[] = {"auto", "0", "1", NULL};

/* The keys of a .data file (docs/data.md); train.c reads classes, backup
 * and top through this table too. */
const dn_key dn_data_keys[] = {
    DN_STRING("train", "", "the training set: CIFAR files or directory, an IDX "
              "file, or an image list (comma-separated files)"),
    DN_STRING("valid", "", "the validation set, as train="),
    DN_INT("train_limit", "0", 0, 1L << 40,
           "keep the first N training records (0: all)"),
    DN_INT("valid_limit", "0", 0, 1L << 40,
           "keep the first N validation records (0: all)"),
    DN_STRING("train_labels", "", "IDX: the training labels file (absent: "
              "guessed from the images' name)"),
    DN_STRING("valid_labels", "", "IDX: the validation labels file"),
    DN_INT("classes", "(labels)", 1, 1 << 24,
           "classes (absent: the count of labels=, or the data's)"),
    DN_CHOICE("format", "auto", formats, "the files' format (auto: detected)"),
    DN_STRING("pad", "auto", "zeros each side of every image (0..65536), or "
              "auto: centred up to the network's size"),
    DN_CHOICE("replicate", "auto", rep_choices,
              "1: grey images copied into 3 channels (auto: when the network "
              "wants 3)"),
    DN_STRING("labels", "", "file of the strings matched against image paths "
              "(one per line)"),
    DN_STRING("names", "", "file of readable class names (one per line)"),
    DN_STRING("backup", "backup", "directory of the weights written in training"),
    DN_INT("top", "5", 1, 1 << 20, "k of the top-k accuracy"),
    DN_KEYS_END,
};

/*
 * pad=auto|N and replicate=auto|0|1 in the .data file. auto pads (centred)
 * and replicates exactly when the network asks for a larger or 3-channel
 * input; anything else that does not fit is an error.
 */
static int plan_shape(dn_section *data, const char *src, int nc, int nh,
                      int nw, int c, int h, int w, shape_plan *p,
                      dn_error *err)
{
    const char *pad_text;
    long pad = -1;
    int rep;
    dn_key_string(data, dn_data_keys, "pad", &pad_text, NULL);
    if (strcmp(pad_text, "auto") != 0 &&
        dn_sec_int(data, "pad", 0, 0, MAX_SIDE, &pad, err))
        return -1;
    if (dn_key_choice(data, dn_data_keys, "replicate", &rep, err))
        return -1;
    *p = (shape_plan){nc, nh, nw, nc, nh, nw, 0, 0};
    if (pad > 0) {
        p->h = nh + 2 * (int)pad, p->w = nw + 2 * (int)pad;
        p->top = p->left = (int)pad;
    }
    if (h > 0 && w > 0 && (h != p->h || w != p->w)) {
        if (pad >= 0 || h < nh || w < nw)
            return dn_fail(err, "%s: images are %dx%d%s but the network input "
                           "is %dx%d (height x width); %s", src, p->h, p->w,
                           pad > 0 ? " after pad" : "", h, w,
                           h < nh || w < nw
                               ? "images are never shrunk: raise height/width"
                               : "use pad=auto or a matching pad=");
        p->h = h, p->w = w;
        p->top = (h - nh) / 2, p->left = (w - nw) / 2;
    }
    if (rep == 2 && nc != 1)
        return dn_fail(err, "%s: replicate=1 needs 1-channel images, these "
                       "have %d", src, nc);
    if (rep == 2 && c <= 0)
        c = 3;
    if (c > 0 && c != nc) {
        if (nc != 1 || rep == 1)
            return dn_fail(err, "%s: images have %d channel%s but the network "
                           "input has %d%s", src, nc, nc == 1 ? "" : "s", c,
                           nc == 1 ? " (replicate=0 is set)"
                                   : ": set channels to match");
        p->c = c;
    }
    return 0;
}

/* src [nc, nh, nw] -> dst [c, h, w] (dst already zero). */
static void convert_record(const shape_plan *p, const uint8_t *src,
                           uint8_t *dst)
{
    for (int ch = 0; ch < p->c; ch++) {
        int sch = p->nc == 1 ? 0 : ch;
        for (int y = 0; y < p->nh; y++)
            memcpy(dst + ((size_t)ch * p->h + y + p->top) * p->w + p->left,
                   src + ((size_t)sch * p->nh + y) * p->nw, p->nw);
    }
}

static dn_dataset *alloc_planned(long n, const shape_plan *p, int classes,
                                 const char *source, dn_error *err)
{
    /* the stored images and labels, within the machine's memory */
    const double bytes = (double)n * p->c * p->h * p->w + 4.0 * n;
    if (bytes > dn_machine_memory()) {
        dn_fail(err, "%s: %ld images of %dx%dx%d need %s, more than the "
                "machine's memory (%s)", source, n, p->c, p->h, p->w,
                dn_bytes_text(bytes), dn_bytes_text(dn_machine_memory()));
        return NULL;
    }
    dn_dataset *d = dn_dataset_alloc(n, p->c, p->h, p->w, classes, source);
    if (!d) {
        dn_fail(err, "%s: out of memory for %ld images of %dx%dx%d", source, n,
                p->c, p->h, p->w);
        return NULL;
    }
    d->native_c = p->nc, d->native_h = p->nh, d->native_w = p->nw;
    return d;
}

/* ------------------------------------------------------------ CIFAR-10 */

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* dir/data_batch_*.bin (train) or dir/test_batch.bin (anything else). */
static int cifar_dir_files(const char *dir, const char *which, char ***files,
                           int *n, dn_error *err)
{
    int train = strcmp(which, "train") == 0;
    DIR *dp = opendir(dir);
    if (!dp)
        return dn_fail(err, "%s: cannot open directory: %s", dir,
                       strerror(errno));
    char **list = dn_xcalloc(MAX_FILES, sizeof *list);
    int count = 0;
    struct dirent *e;
    while ((e = readdir(dp)) && count < MAX_FILES) {
        int want = train ? strncmp(e->d_name, "data_batch_", 11) == 0 &&
                               ends_with(e->d_name, ".bin")
                         : strcmp(e->d_name, "test_batch.bin") == 0;
        if (!want)
            continue;
        list[count] = dn_xmalloc(strlen(dir) + strlen(e->d_name) + 2);
        sprintf(list[count++], "%s/%s", dir, e->d_name);
    }
    closedir(dp);
    if (count == 0) {
        free(list);
        return dn_fail(err, "%s: no %s in this directory (CIFAR-10 binary "
                       "version; see scripts/get_cifar10.sh)", dir,
                       train ? "data_batch_*.bin files" : "test_batch.bin");
    }
    qsort(list, count, sizeof *list, cmp_str);
    *files = list;
    *n = count;
    return 0;
}

/* Comma-separated paths, trimmed; empty items are an error. */
static int split_paths(const char *spec, const char *what, char ***files,
                       int *n, dn_error *err)
{
    char *copy = dn_xstrdup(spec), *save = NULL;
    char **list = dn_xcalloc(MAX_FILES, sizeof *list);
    int count = 0, rc = 0;
    for (char *tok = strtok_r(copy, ",", &save); tok && !rc;
         tok = strtok_r(NULL, ",", &save)) {
        char *t = dn_trim(tok);
        if (*t == '\0')
            continue;
        if (count == MAX_FILES)
            rc = dn_fail(err, "%s: more than %d files", what, MAX_FILES);
        else
            list[count++] = dn_xstrdup(t);
    }
    free(copy);
    if (!rc && count == 0)
        rc = dn_fail(err, "%s: no file named", what);
    if (rc) {
        free_strings(list, count);
        return -1;
    }
    *files = list;
    *n = count;
    return 0;
}

static int read_cifar(dn_section *data, char **files, int n_files,
                      int classes, int c, int h, int w, dn_dataset **out,
                      dn_error *err)
{
    long n = 0;
    for (int i = 0; i < n_files; i++) {
        long long size;
        FILE *f = dn_fopen_regular(files[i], &size, err);
        if (!f)
            return -1;
        fclose(f);
        long records = (long)(size / CIFAR_RECORD);
        long extra = (long)(size % CIFAR_RECORD);
        if (size == 0)
            return dn_fail(err, "%s: empty file (expected 3073-byte CIFAR-10 "
                           "records)", files[i]);
        if (extra)
            return dn_fail(err, "%s: record %ld is truncated: %ld of %d bytes "
                           "(file size %lld is not a multiple of the %d-byte "
                           "CIFAR-10 record)", files[i], records, extra,
                           CIFAR_RECORD, size, CIFAR_RECORD);
        n += records;
    }
    shape_plan p;
    if (plan_shape(data, files[0], 3, CIFAR_SIDE, CIFAR_SIDE, c, h, w, &p, err))
        return -1;
    char source[4096] = "";
    for (int i = 0; i < n_files; i++) {
        size_t used = strlen(source);
        snprintf(source + used, sizeof source - used, "%s%s", i ? "," : "",
                 files[i]);
    }
    dn_dataset *d = alloc_planned(n, &p, classes, source, err);
    if (!d)
        return -1;
    size_t stored = (size_t)p.c * p.h * p.w;
    unsigned char *rec = dn_xmalloc(CIFAR_RECORD);
    long at = 0;
    int rc = 0;
    for (int i = 0; i < n_files && !rc; i++) {
        FILE *f = dn_fopen_regular(files[i], NULL, err);
        if (!f) {
            rc = -1;
            break;
        }
        for (long r = 0; !rc; r++, at++) {
            size_t got = fread(rec, 1, CIFAR_RECORD, f);
            if (got == 0 && feof(f))
                break;
            if (got != CIFAR_RECORD || at >= n)
                rc = dn_fail(err, "%s: record %ld: %s", files[i], r,
                             ferror(f) ? strerror(errno)
                                       : "file changed while reading");
            else if (rec[0] >= classes)
                rc = dn_fail(err, "%s: record %ld: label %d out of range "
                             "[0, %d)", files[i], r, rec[0], classes);
            else {
                d->labels[at] = rec[0];
                convert_record(&p, rec + 1, d->pixels + (size_t)at * stored);
            }
        }
        fclose(f);
    }
    free(rec);
    if (!rc && at != n)
        rc = dn_fail(err, "%s: file changed while reading", source);
    if (rc) {
        dn_dataset_free(d);
        return -1;
    }
    *out = d;
    return 0;
}

/* ---------------------------------------------------------------- IDX */

static uint32_t be32(const unsigned char *b)
{
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 |
           b[3];
}

/*
 * An IDX file, raw or gzip: its bytes read in order, with every way it can
 * end checked. A raw file must hold exactly what its header claims; a gzip
 * stream must end cleanly (a truncated one is an error naming the file and
 * the compressed offset; zlib checks the CRC), with nothing after it.
 */
typedef struct idx_stream {
    const char *path;
    FILE *f;
    long long size;    /* of the file */
    int gz, ended;     /* gzip; its stream end was reached */
    z_stream z;
    unsigned char in[1 << 16];
} idx_stream;

static int stream_open(idx_stream *s, const char *path, dn_error *err)
{
    memset(s, 0, sizeof *s);
    s->path = path;
    if (!(s->f = dn_fopen_regular(path, &s->size, err)))
        return -1;
    unsigned char magic[2];
    s->gz = fread(magic, 1, 2, s->f) == 2 && magic[0] == 0x1f && magic[1] == 0x8b;
    rewind(s->f);
    if (s->gz && inflateInit2(&s->z, 16 + MAX_WBITS) != Z_OK) {
        fclose(s->f);
        return dn_fail(err, "%s: zlib: out of memory", path);
    }
    return 0;
}

static void stream_close(idx_stream *s)
{
    if (s->gz)
        inflateEnd(&s->z);
    if (s->f)
        fclose(s->f);
    s->f = NULL;
}

/* Bytes of compressed input consumed so far. */
static long long stream_offset(const idx_stream *s)
{
    return (long long)ftello(s->f) - s->z.avail_in;
}

/* Up to n bytes into buf; returns how many (fewer only at the end of the
 * data), or -1 with err set for a truncated or corrupt gzip stream. */
static long stream_read(idx_stream *s, void *buf, size_t n, dn_error *err)
{
    if (!s->gz)
        return (long)fread(buf, 1, n, s->f);
    size_t done = 0;
    while (done < n && !s->ended) {
        if (s->z.avail_in == 0) {
            size_t got = fread(s->in, 1, sizeof s->in, s->f);
            if (got == 0)
                return dn_fail(err, "%s: truncated gzip stream: it ends at "
                               "byte %lld (compressed) before its end marker",
                               s->path, (long long)ftello(s->f));
            s->z.next_in = s->in;
            s->z.avail_in = (uInt)got;
        }
        size_t chunk = n - done > (1u << 30) ? 1u << 30 : n - done;
        s->z.next_out = (Bytef *)buf + done;
        s->z.avail_out = (uInt)chunk;
        int rc = inflate(&s->z, Z_NO_FLUSH);
        done += chunk - s->z.avail_out;
        if (rc == Z_STREAM_END)
            s->ended = 1;
        else if (rc != Z_OK && rc != Z_BUF_ERROR)
            return dn_fail(err, "%s: corrupt gzip stream near byte %lld "
                           "(compressed): %s", s->path, stream_offset(s),
                           s->z.msg ? s->z.msg : "inflate failed");
    }
    return (long)done;
}

/* Nothing may follow the last record, in the data or in the file. */
static int stream_end(idx_stream *s, long records, dn_error *err)
{
    unsigned char extra;
    long got = stream_read(s, &extra, 1, err);
    if (got < 0)
        return -1;
    if (got > 0)
        return dn_fail(err, "%s: unexpected bytes after the last record (%ld "
                       "records in the header)", s->path, records);
    if (s->gz && (s->z.avail_in > 0 || fread(&extra, 1, 1, s->f) == 1))
        return dn_fail(err, "%s: unexpected bytes after the gzip stream, at "
                       "byte %lld", s->path, stream_offset(s));
    return 0;
}

/* Opens an IDX file and checks its header; dims[ndims] from the header.
 * payload is the bytes of one record (1 for labels); the count is checked
 * against what the file can hold before anything is allocated. */
static int idx_open(idx_stream *st, const char *path, int ndims, uint32_t *dims,
                    const char *what, dn_error *err)
{
    if (stream_open(st, path, err))
        return -1;
    unsigned char head[4 + 4 * 3];
    long got = stream_read(st, head, 4 + 4 * (size_t)ndims, err);
    if (got < 0) {
        stream_close(st);
        return -1;
    }
    if (got != 4 + 4 * ndims) {
        dn_fail(err, "%s: truncated IDX header (file too short)", path);
    } else if (head[0] || head[1] || head[2] != 0x08 || head[3] != ndims) {
        dn_fail(err, "%s: bad IDX magic 0x%02x%02x%02x%02x: expected "
                "0x000008%02x (%s)", path, head[0], head[1], head[2], head[3],
                ndims, what);
    } else {
        double bytes = 1;
        for (int i = 0; i < ndims; i++) {
            dims[i] = be32(head + 4 + 4 * i);
            bytes *= dims[i];
        }
        const double room = st->gz ? (double)st->size * MAX_DEFLATE_RATIO + 4096
                                   : (double)st->size - 4 - 4 * ndims;
        const double record = dims[0] ? bytes / dims[0] : 1;
        if (st->gz ? bytes <= room : bytes == room)
            return 0;
        if (st->gz)
            dn_fail(err, "%s: the IDX header claims %lu records (%.0f bytes), "
                    "more than a gzip file of %lld bytes can hold", path,
                    (unsigned long)dims[0], bytes, st->size);
        else if (bytes > room)
            dn_fail(err, "%s: truncated: record %.0f of %lu is %s (the header "
                    "claims %.0f bytes of records, the file holds %.0f)", path,
                    floor(room / record), (unsigned long)dims[0],
                    ndims == 1 ? "missing" : "incomplete", bytes, room);
        else
            dn_fail(err, "%s: unexpected bytes after the last record (%lu "
                    "records in the header)", path, (unsigned long)dims[0]);
    }
    stream_close(st);
    return -1;
}

static int idx_read_labels(const char *path, long *n, uint8_t **labels,
                           dn_error *err)
{
    uint32_t dims[1];
    idx_stream st;
    if (idx_open(&st, path, 1, dims, "IDX unsigned-byte labels, 1 dimension",
                 err))
        return -1;
    uint8_t *lab = malloc((size_t)dims[0] + 1); /* sized by the file */
    long got = lab ? stream_read(&st, lab, dims[0], err) : -1;
    int rc = 0;
    if (!lab)
        rc = dn_fail(err, "%s: out of memory for %lu labels", path,
                     (unsigned long)dims[0]);
    else if (got < 0)
        rc = -1;
    else if (got < (long)dims[0])
        rc = dn_fail(err, "%s: truncated: record %ld of %lu is missing (end "
                     "of data)", path, got, (unsigned long)dims[0]);
    else
        rc = stream_end(&st, dims[0], err);
    stream_close(&st);
    if (rc) {
        free(lab);
        return -1;
    }
    *n = dims[0];
    *labels = lab;
    return 0;
}

/* images: train=...-images-idx3-ubyte[.gz]; labels from <which>_labels= or
 * the same name with "images-idx3" replaced by "labels-idx1". */
static int labels_path_for(dn_section *data, const char *which,
                           const char *images, char *buf, size_t size,
                           dn_error *err)
{
    char key[64];
    snprintf(key, sizeof key, "%s_labels", which);
    const char *given;
    dn_key_string(data, dn_data_keys, key, &given, NULL);
    if (given) {
        snprintf(buf, size, "%s", given);
        return 0;
    }
    const char *at = strstr(images, "images-idx3");
    if (!at)
        return dn_fail(err, "%s: IDX images need a label file: set %s= in %s "
                       "(or name the images *images-idx3* to have "
                       "*labels-idx1* guessed)", images, key, data->path);
    snprintf(buf, size, "%.*slabels-idx1%s", (int)(at - images), images,
             at + strlen("images-idx3"));
    return 0;
}

static int read_idx(dn_section *data, const char *which, const char *images,
                    int classes, int c, int h, int w, dn_dataset **out,
                    dn_error *err)
{
    char labels_path[4096];
    if (labels_path_for(data, which, images, labels_path, sizeof labels_path,
                        err))
        return -1;
    long n_labels;
    uint8_t *lab;
    if (idx_read_labels(labels_path, &n_labels, &lab, err))
        return -1;
    uint32_t dims[3];
    idx_stream st;
    if (idx_open(&st, images, 3, dims, "IDX unsigned-byte images, 3 dimensions",
                 err)) {
        free(lab);
        return -1;
    }
    long n = dims[0];
    int rc = 0, max_label = 0;
    shape_plan p = {0};
    if (n != n_labels)
        rc = dn_fail(err, "%s has %ld images but %s has %ld labels", images, n,
                     labels_path, n_labels);
    else if (n == 0 || dims[1] == 0 || dims[2] == 0 || dims[1] > MAX_SIDE ||
             dims[2] > MAX_SIDE)
        rc = dn_fail(err, "%s: implausible IDX shape %lu x %lu x %lu", images,
                     (unsigned long)dims[0], (unsigned long)dims[1],
                     (unsigned long)dims[2]);
    for (long i = 0; i < n && !rc; i++) {
        if (classes > 0 && lab[i] >= classes)
            rc = dn_fail(err, "%s: record %ld: label %d out of range [0, %d)",
                         labels_path, i, lab[i], classes);
        max_label = lab[i] > max_label ? lab[i] : max_label;
    }
    if (!rc)
        rc = plan_shape(data, images, 1, dims[1], dims[2], c, h, w, &p, err);
    dn_dataset *d = NULL;
    char source[8300];
    snprintf(source, sizeof source, "%s,%s", images, labels_path);
    if (!rc && !(d = alloc_planned(n, &p, classes > 0 ? classes : max_label + 1,
                                   source, err)))
        rc = -1;
    size_t rec = (size_t)dims[1] * dims[2], stored = (size_t)p.c * p.h * p.w;
    const long chunk = 1024;
    uint8_t *buf = rc ? NULL : malloc(chunk * rec); /* sized by the file */
    if (!rc && !buf)
        rc = dn_fail(err, "%s: out of memory", images);
    for (long at = 0; at < n && !rc; at += chunk) {
        long want = n - at < chunk ? n - at : chunk;
        long got = stream_read(&st, buf, want * rec, err);
        if (got < 0) {
            char why[DN_ERROR_MAX];
            snprintf(why, sizeof why, "%s", err->msg);
            rc = dn_fail(err, "%s (in records %ld..%ld of %ld)", why, at,
                         at + want - 1, n);
            break;
        }
        if (got < (long)(want * rec)) {
            rc = dn_fail(err, "%s: truncated: record %ld of %ld is incomplete "
                         "(end of data)", images, at + got / (long)rec, n);
            break;
        }
        for (long i = 0; i < want; i++) {
            d->labels[at + i] = lab[at + i];
            convert_record(&p, buf + i * rec, d->pixels + (at + i) * stored);
        }
    }
    if (!rc)
        rc = stream_end(&st, n, err);
    free(buf);
    free(lab);
    stream_close(&st);
    if (rc) {
        dn_dataset_free(d);
        return -1;
    }
    *out = d;
    return 0;
}

/* ---------------------------------------------------------- image lists */

int dn_label_of_path(const char *path, char *const *labels, int classes,
                     int *first, int *second)
{
    int found = -1;
    for (int i = 0; i < classes; i++) {
        if (!strstr(path, labels[i]))
            continue;
        if (found >= 0) {
            if (first)
                *first = found;
            if (second)
                *second = i;
            return -2;
        }
        found = i;
    }
    return found;
}

int dn_image_list_read(const char *list, char *const *labels, int classes,
                       char ***paths, int **labs, long *n, dn_error *err)
{
    dn_error why;
    FILE *f = dn_fopen_regular(list, NULL, &why);
    if (!f)
        return dn_fail(err, "%s: cannot open image list: %s", list,
                       reason_of(&why, list));
    long count = 0, cap = 0;
    char **ps = NULL;
    int *ls = NULL, rc = 0, lineno = 0;
    char line[MAX_LINE + 2];
    while (!rc && fgets(line, sizeof line, f)) {
        lineno++;
        if (!strchr(line, '\n') && !feof(f)) {
            rc = dn_fail(err, "%s:%d: a line longer than %d characters", list,
                         lineno, MAX_LINE);
            break;
        }
        char *t = dn_trim(line);
        if (*t == '\0')
            continue;
        int a = 0, b = 0;
        int label = dn_label_of_path(t, labels, classes, &a, &b);
        if (label == -1)
            rc = dn_fail(err, "%s:%d: no label name is part of the path \"%s\"",
                         list, lineno, t);
        else if (label == -2)
            rc = dn_fail(err, "%s:%d: the path \"%s\" matches several labels "
                         "(\"%s\" and \"%s\"): exactly one must be part of it",
                         list, lineno, t, labels[a], labels[b]);
        if (rc)
            break;
        if (count == cap) {
            cap = cap ? 2 * cap : 1024;
            ps = dn_xrealloc(ps, cap * sizeof *ps);
            ls = dn_xrealloc(ls, cap * sizeof *ls);
        }
        ps[count] = dn_xstrdup(t);
        ls[count++] = label;
    }
    fclose(f);
    if (!rc && count == 0)
        rc = dn_fail(err, "%s: image list is empty", list);
    if (rc) {
        free_strings(ps, count);
        free(ls);
        return -1;
    }
    *paths = ps;
    *labs = ls;
    *n = count;
    return 0;
}

#ifndef DN_OPENCV
/* Without OpenCV the decoder exists but only explains what is missing. */
int dn_image_read_u8(const char *path, int c, int h, int w, uint8_t *out,
                     char *msg, size_t msg_size)
{
    (void)c, (void)h, (void)w, (void)out;
    snprintf(msg, msg_size, "%s: decoding images needs OpenCV: rebuild with "
             "OPENCV=1 (Debian package libopencv-dev)", path);
    return -1;
}
#endif

static int read_list(const char *list, char *const *labels, int classes,
                     int c, int h, int w, dn_dataset **out, dn_error *err)
{
#ifndef DN_OPENCV
    (void)labels, (void)classes, (void)c, (void)h, (void)w, (void)out;
    return dn_fail(err, "%s: image lists are decoded with OpenCV: rebuild "
                   "with OPENCV=1 (Debian package libopencv-dev)", list);
#else
    if (!labels)
        return dn_fail(err, "%s: an image list needs labels= (one class name "
                       "per line, matched against each path)", list);
    if (h <= 0 || w <= 0)
        return dn_fail(err, "%s: an image list needs the network's height "
                       "and width to resize to", list);
    if (c <= 0)
        c = 3;
    if (c != 1 && c != 3)
        return dn_fail(err, "%s: images load as 1 or 3 channels, the network "
                       "wants %d", list, c);
    char **paths;
    int *labs;
    long n;
    if (dn_image_list_read(list, labels, classes, &paths, &labs, &n, err))
        return -1;
    shape_plan p = {c, h, w, c, h, w, 0, 0};
    dn_dataset *d = alloc_planned(n, &p, classes, list, err);
    long bad = -1;
    char msg[512] = "";
    size_t stored = (size_t)c * h * w;
    if (d) {
#pragma omp parallel for schedule(dynamic, 16)
        for (long i = 0; i < n; i++) {
            char m[512];
            d->labels[i] = labs[i];
            if (dn_image_read_u8(paths[i], c, h, w, d->pixels + i * stored, m,
                                 sizeof m)) {
#pragma omp critical(dn_list_error)
                if (bad < 0 || i < bad) {
                    bad = i;
                    snprintf(msg, sizeof msg, "%s", m);
                }
            }
        }
    }
    int rc = 0;
    if (!d)
        rc = -1;
    else if (bad >= 0)
        rc = dn_fail(err, "%s: record %ld: %s", list, bad, msg);
    free_strings(paths, n);
    free(labs);
    if (rc) {
        dn_dataset_free(d);
        return -1;
    }
    *out = d;
    return 0;
#endif
}

/* ---------------------------------------------------------------- open */

enum { FMT_AUTO, FMT_CIFAR, FMT_IDX, FMT_LIST };

/* A directory or *.bin is CIFAR, an IDX magic is IDX, else an image list. */
static int detect_format(const char *first, dn_error *err)
{
    if (is_dir(first))
        return FMT_CIFAR;
    idx_stream st;
    if (stream_open(&st, first, err))
        return -1;
    unsigned char head[4];
    long got = stream_read(&st, head, 4, err);
    stream_close(&st);
    if (got < 0)
        return -1; /* a gzip file that does not decompress */
    if (got == 4 && head[0] == 0 && head[1] == 0 && head[2] == 0x08)
        return FMT_IDX;
    if (ends_with(first, ".bin"))
        return FMT_CIFAR;
    return FMT_LIST;
}

/*
 * Darknet's two lists: labels= holds the strings matched against image
 * paths (for CIFAR and IDX: the class names), names= optional readable
 * names in the same order. Either one alone serves as both.
 */
static int load_names(dn_section *data, char ***labels, int *n_labels,
                      char ***names, int *n_names, dn_error *err)
{
    const char *lpath, *npath;
    dn_key_string(data, dn_data_keys, "labels", &lpath, NULL);
    dn_key_string(data, dn_data_keys, "names", &npath, NULL);
    *labels = *names = NULL;
    *n_labels = *n_names = 0;
    if (lpath && read_names(lpath, labels, n_labels, err))
        return -1;
    if (npath && read_names(npath, names, n_names, err)) {
        free_strings(*labels, *n_labels);
        *labels = NULL;
        return -1;
    }
    if (lpath && npath && *n_labels != *n_names) {
        dn_sec_fail(data, "names", err, "%s has %d names but labels file %s "
                    "has %d", npath, *n_names, lpath, *n_labels);
        free_strings(*labels, *n_labels);
        free_strings(*names, *n_names);
        *labels = *names = NULL;
        return -1;
    }
    if (!lpath)
        *labels = *names, *n_labels = *n_names, *names = NULL, *n_names = 0;
    return 0;
}

static int open_format(dn_section *data, const char *which, int fmt,
                       char **files, int n_files, char **names, int classes,
                       int c, int h, int w, dn_dataset **out, dn_error *err)
{
    if (fmt == FMT_IDX) {
        if (n_files != 1)
            return dn_fail(err, "%s: %s= names %d IDX image files; give one "
                           "(and its labels in %s_labels=)", data->path, which,
                           n_files, which);
        return read_idx(data, which, files[0], classes, c, h, w, out, err);
    }
    if (fmt == FMT_LIST) {
        if (n_files != 1)
            return dn_fail(err, "%s: %s= names %d image lists; give one",
                           data->path, which, n_files);
        return read_list(files[0], names, classes, c, h, w, out, err);
    }
    if (n_files == 1 && is_dir(files[0])) {
        char **list = NULL;
        int n = 0;
        if (cifar_dir_files(files[0], which, &list, &n, err))
            return -1;
        int rc = read_cifar(data, list, n, classes > 0 ? classes : 10, c, h,
                            w, out, err);
        free_strings(list, n);
        return rc;
    }
    return read_cifar(data, files, n_files, classes > 0 ? classes : 10, c, h,
                      w, out, err);
}

/*
 * <which>_limit=N keeps the first N records (all of them when the set has
 * fewer; 0, the default, keeps all): a reproducible subset for short runs.
 * The whole set is read and checked first, so a limit never hides a bad file.
 */
static void keep_first(dn_dataset *d, long limit)
{
    if (limit <= 0 || limit >= d->n)
        return;
    size_t image = (size_t)d->c * d->h * d->w;
    d->n = limit;
    uint8_t *pixels = realloc(d->pixels, (size_t)limit * image + 1);
    int *labs = realloc(d->labels, ((size_t)limit + 1) * sizeof *labs);
    if (pixels) /* a failed shrink keeps the larger block: still valid */
        d->pixels = pixels;
    if (labs)
        d->labels = labs;
}

int dn_dataset_open(dn_section *data, const char *which, int c, int h, int w,
                    dn_dataset **out, dn_error *err)
{
    const dn_key *t = dn_data_keys;
    *out = NULL;
    const char *spec;
    long classes;
    int fmt, n_labels = 0, n_names = 0, n_files = 0;
    char **labels = NULL, **names = NULL, **files = NULL;
    char limit_key[64];
    long limit;
    dn_key_string(data, t, which, &spec, NULL);
    if (!spec)
        return dn_fail(err, "%s: no %s= key: which file(s) hold the %s set?",
                       data->path, which, which);
    snprintf(limit_key, sizeof limit_key, "%s_limit", which);
    if (dn_key_int(data, t, limit_key, &limit, err) ||
        dn_key_int_def(data, t, "classes", 0, &classes, err) ||
        dn_key_choice(data, t, "format", &fmt, err) ||
        load_names(data, &labels, &n_labels, &names, &n_names, err))
        return -1;
    int rc = 0;
    if (classes > 0 && n_labels > 0 && n_labels != classes)
        rc = dn_sec_fail(data, "classes", err, "classes=%ld but the label "
                         "names file has %d names", classes, n_labels);
    if (!classes)
        classes = n_labels;
    if (!rc)
        rc = split_paths(spec, data->path, &files, &n_files, err);
    if (!rc && fmt == FMT_AUTO && (fmt = detect_format(files[0], err)) < 0)
        rc = -1;
    dn_dataset *d = NULL;
    if (!rc)
        rc = open_format(data, which, fmt, files, n_files, labels,
                         (int)classes, c, h, w, &d, err);
    if (!rc && n_labels > 0 && d->classes != n_labels)
        rc = dn_fail(err, "%s: %d classes but the label names file has %d "
                     "names", d->source, d->classes, n_labels);
    if (!rc) {
        /* the readable names when given, else the labels */
        if (names) {
            d->names = names, names = NULL;
        } else {
            d->names = labels, labels = NULL;
        }
        d->dir = dir_of(files[0]);
        keep_first(d, limit);
        *out = d;
    } else {
        dn_dataset_free(d);
    }
    free_strings(labels, n_labels);
    free_strings(names, n_names);
    free_strings(files, n_files);
    return rc;
}

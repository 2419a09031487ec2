/*
 * augment.c - preprocessing and augmentation of image batches.
 *
 * Per image, in this order (each step off unless its [net] key is set):
 *   1. contrast stretch  bytes: percentiles [low, high] -> [0, 1], clipped
 *   2. scale             /255 (skipped by 1, which already maps to [0, 1])
 *   3. normalize         per channel: (x - mean[c]) / std[c]
 *   4. subtract_mean     per pixel: x - (training mean image)
 *   5. gcn               global contrast normalisation (Coates, Lee, Ng 2011;
 *                        Goodfellow et al. 2013): x -= mean(x);
 *                        x *= scale / max(eps, sqrt(lambda + mean(x^2)))
 *   6. zca               ZCA whitening (Bell and Sejnowski 1997; Krizhevsky
 *                        2009, appendix): y = (x - mu) W with
 *                        W = U diag(1 / sqrt(lambda_i + epsilon)) U^T, from
 *                        the eigen-decomposition C = U diag(lambda) U^T of
 *                        the training covariance of the output of steps 1-5
 * and, in training only, the random steps, drawn per (seed, epoch, record):
 *   7. crop_pad          shift by (dx, dy) in [-P, P]^2, zeros shifted in:
 *                        a random h x w crop of the image padded by P
 *   8. flip              mirror left-right with probability 1/2
 * Zero padding happens after preprocessing, so "zero" is the mean colour
 * when a mean is subtracted and black otherwise.
 *
 * The ZCA matrix is fitted once and cached next to the data (or in the
 * user's cache directory when the data's is read-only) in a file named by
 * a hash of the dataset, epsilon and steps 1-5. The other statistics (the
 * mean image, normalize's means and deviations) take one pass over the
 * training set when the run starts (about 0.2 s for 60000 images).
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cblas.h>

#include "dn_data.h"
#include "keys.h"
#include "xalloc.h"

#define MAX_NORM_CHANNELS 64
#define ZCA_MAGIC "DNZCA01\n"
#define AUG_TAG 0x61756730617567ULL

enum { STEP_STRETCH = 1, STEP_NORMALIZE = 2, STEP_MEAN = 4, STEP_GCN = 8 };

static unsigned steps_of(const dn_augment *a)
{
    return (a->contrast_stretch ? STEP_STRETCH : 0) |
           (a->normalize ? STEP_NORMALIZE : 0) |
           (a->subtract_mean ? STEP_MEAN : 0) | (a->gcn ? STEP_GCN : 0);
}

/* ------------------------------------------------------ per-image steps */

/* Smallest byte value v with at least q% of the pixels <= v. */
static int percentile(const long *hist, long total, double q)
{
    long target = (long)ceil(q / 100.0 * (double)total);
    if (target < 1)
        target = 1;
    long cum = 0;
    for (int v = 0; v < 256; v++)
        if ((cum += hist[v]) >= target)
            return v;
    return 255;
}

static void stretch(const dn_augment *a, const uint8_t *px, long n, float *out)
{
    long hist[256] = {0};
    for (long i = 0; i < n; i++)
        hist[px[i]]++;
    int lo = percentile(hist, n, a->stretch_low);
    int hi = percentile(hist, n, a->stretch_high);
    if (hi <= lo) { /* flat image: nothing to stretch */
        for (long i = 0; i < n; i++)
            out[i] = px[i] / 255.0f;
        return;
    }
    float scale = 1.0f / (float)(hi - lo);
    for (long i = 0; i < n; i++) {
        float v = (float)(px[i] - lo) * scale;
        out[i] = v < 0 ? 0 : v > 1 ? 1 : v;
    }
}

static void gcn(const dn_augment *a, float *x, long n)
{
    double sum = 0, sq = 0;
    for (long i = 0; i < n; i++)
        sum += x[i];
    float mean = (float)(sum / n);
    for (long i = 0; i < n; i++) {
        x[i] -= mean;
        sq += (double)x[i] * x[i];
    }
    double norm = sqrt(a->gcn_lambda + sq / n);
    double f = norm > a->gcn_eps ? a->gcn_scale / norm
               : a->gcn_eps > 0  ? a->gcn_scale / a->gcn_eps
                                 : 0;
    for (long i = 0; i < n; i++)
        x[i] = (float)(x[i] * f);
}

/* Steps 1-5 (those in mask) on one image: bytes [c, h, w] -> out floats. */
static void prep_image(const dn_augment *a, unsigned mask, const uint8_t *px,
                       int c, long hw, float *out)
{
    long n = c * hw;
    if (mask & STEP_STRETCH)
        stretch(a, px, n, out);
    else
        for (long i = 0; i < n; i++)
            out[i] = px[i] * (1.0f / 255.0f);
    if (mask & STEP_NORMALIZE)
        for (int ch = 0; ch < c; ch++) {
            float m = a->norm_mean[ch], inv = 1.0f / a->norm_std[ch];
            float *o = out + ch * hw;
            for (long i = 0; i < hw; i++)
                o[i] = (o[i] - m) * inv;
        }
    if (mask & STEP_MEAN)
        for (long i = 0; i < n; i++)
            out[i] -= a->mean_image[i];
    if (mask & STEP_GCN)
        gcn(a, out, n);
}

void dn_image_shift_flip(const float *in, int c, int h, int w, int dx, int dy,
                         int flip, float *out)
{
    for (int ch = 0; ch < c; ch++)
        for (int y = 0; y < h; y++) {
            float *o = out + ((long)ch * h + y) * w;
            int sy = y + dy;
            if (sy < 0 || sy >= h) {
                memset(o, 0, w * sizeof *o);
                continue;
            }
            const float *row = in + ((long)ch * h + sy) * w;
            for (int x = 0; x < w; x++) {
                int sx = (flip ? w - 1 - x : x) + dx;
                o[x] = sx >= 0 && sx < w ? row[sx] : 0.0f;
            }
        }
}

/* ------------------------------------------------------------- apply */

void dn_augment_apply(const dn_augment *a, const dn_dataset *d,
                      const long *records, int count, uint64_t seed,
                      long epoch, int train, float *out, float *scratch)
{
    long hw = (long)d->h * d->w, D = d->c * hw;
    if (count <= 0)
        return;
    if (!a) {
        for (int i = 0; i < count; i++)
            for (long j = 0; j < D; j++)
                out[i * D + j] = d->pixels[records[i] * D + j] * (1.0f / 255.0f);
        return;
    }
    int geom = train && (a->flip || a->crop_pad);
    unsigned mask = steps_of(a);
    /* steps 1-5 land in out, or in scratch when a later step reads them */
    float *stage = a->zca || !geom ? out : scratch;
    for (int i = 0; i < count; i++)
        prep_image(a, mask, d->pixels + records[i] * D, d->c, hw,
                   stage + i * D);
    const float *src = stage;
    if (a->zca) {
        for (int i = 0; i < count; i++)
            for (long j = 0; j < D; j++)
                out[i * D + j] -= a->zca_mean[j];
        /* scratch [count, D] = out [count, D] x W [D, D] */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, count, (int)D,
                    (int)D, 1.0f, out, (int)D, a->zca_matrix, (int)D, 0.0f,
                    scratch, (int)D);
        src = scratch;
    }
    for (int i = 0; i < count; i++) {
        if (geom) {
            dn_rng r;
            dn_rng_seed(&r, dn_hash3(seed ^ AUG_TAG, (uint64_t)epoch,
                                     (uint64_t)records[i]));
            int span = 2 * a->crop_pad + 1;
            int dx = (int)(dn_rng_u64(&r) % span) - a->crop_pad;
            int dy = (int)(dn_rng_u64(&r) % span) - a->crop_pad;
            int flip = a->flip && (dn_rng_u64(&r) >> 63);
            dn_image_shift_flip(src + i * D, d->c, d->h, d->w, dx, dy, flip,
                                out + i * D);
        } else if (src != out) {
            memcpy(out + i * D, src + i * D, D * sizeof *out);
        }
    }
}

/* --------------------------------------------------------------- fitting */

/* Per-channel mean and std of steps before normalize (step 1 and /255). */
static void fit_normalize(const dn_augment *a, const dn_dataset *d,
                          double *mean, double *std)
{
    long hw = (long)d->h * d->w, D = d->c * hw;
    float *buf = dn_xmalloc(D * sizeof *buf);
    double *sum = dn_xcalloc(d->c, sizeof *sum), *sq = dn_xcalloc(d->c, sizeof *sq);
    for (long r = 0; r < d->n; r++) {
        prep_image(a, steps_of(a) & STEP_STRETCH, d->pixels + r * D, d->c, hw,
                   buf);
        for (int ch = 0; ch < d->c; ch++)
            for (long i = 0; i < hw; i++) {
                double v = buf[ch * hw + i];
                sum[ch] += v;
                sq[ch] += v * v;
            }
    }
    for (int ch = 0; ch < d->c; ch++) {
        double count = (double)d->n * hw;
        mean[ch] = sum[ch] / count;
        double var = sq[ch] / count - mean[ch] * mean[ch];
        std[ch] = var > 1e-12 ? sqrt(var) : 1.0; /* a constant channel */
    }
    free(buf);
    free(sum);
    free(sq);
}

/* Mean over the training set of steps in mask, into mean[D]. */
static void mean_of(const dn_augment *a, unsigned mask, const dn_dataset *d,
                    double *mean)
{
    long hw = (long)d->h * d->w, D = d->c * hw;
    float *buf = dn_xmalloc(D * sizeof *buf);
    memset(mean, 0, D * sizeof *mean);
    for (long r = 0; r < d->n; r++) {
        prep_image(a, mask, d->pixels + r * D, d->c, hw, buf);
        for (long j = 0; j < D; j++)
            mean[j] += buf[j];
    }
    for (long j = 0; j < D; j++)
        mean[j] /= d->n;
    free(buf);
}

#ifdef DN_BLAS_OPENBLAS
/* LAPACK's symmetric eigensolver (divide and conquer), as OpenBLAS exports
 * it; the trailing arguments are the Fortran lengths of jobz and uplo. */
extern void dsyevd_(const char *jobz, const char *uplo, const int *n,
                    double *a, const int *lda, double *w, double *work,
                    const int *lwork, int *iwork, const int *liwork, int *info,
                    size_t jobz_len, size_t uplo_len);

/* Eigen-decomposition in place: a [n, n] symmetric -> eigenvectors as
 * columns (column-major), w [n] ascending eigenvalues. */
static int eigen_sym(double *a, int n, double *w, dn_error *err)
{
    int info = 0, lwork = -1, liwork = -1, iwork_size;
    double work_size;
    dsyevd_("V", "U", &n, a, &n, w, &work_size, &lwork, &iwork_size, &liwork,
            &info, 1, 1);
    if (info)
        return dn_fail(err, "zca: LAPACK dsyevd workspace query failed "
                       "(info %d)", info);
    lwork = (int)work_size;
    liwork = iwork_size;
    double *work = malloc((size_t)lwork * sizeof *work);
    int *iwork = malloc((size_t)liwork * sizeof *iwork);
    if (!work || !iwork) {
        free(work);
        free(iwork);
        return dn_fail(err, "zca: out of memory for the eigensolver (n=%d)", n);
    }
    dsyevd_("V", "U", &n, a, &n, w, work, &lwork, iwork, &liwork, &info, 1, 1);
    free(work);
    free(iwork);
    if (info)
        return dn_fail(err, "zca: LAPACK dsyevd did not converge (info %d)",
                       info);
    return 0;
}
#else
static int eigen_sym(double *a, int n, double *w, dn_error *err)
{
    (void)a, (void)n, (void)w;
    return dn_fail(err, "zca=1 needs LAPACK: build with BLAS=openblas");
}
#endif

/*
 * Covariance of the output of steps 1-5 over the training set (two passes:
 * the mean, then chunks of centred images through syrk, summed in double).
 */
static double *covariance(const dn_augment *a, const dn_dataset *d,
                          const double *mu)
{
    long hw = (long)d->h * d->w, D = d->c * hw;
    const long chunk = 2048;
    unsigned mask = steps_of(a);
    double *cov = calloc((size_t)D * D, sizeof *cov);
    float *x = malloc((size_t)chunk * D * sizeof *x);
    float *part = malloc((size_t)D * D * sizeof *part);
    if (!cov || !x || !part) {
        free(cov), free(x), free(part);
        return NULL;
    }
    for (long start = 0; start < d->n; start += chunk) {
        long m = d->n - start < chunk ? d->n - start : chunk;
#pragma omp parallel for
        for (long i = 0; i < m; i++) {
            float *row = x + i * D;
            prep_image(a, mask, d->pixels + (start + i) * D, d->c, hw, row);
            for (long j = 0; j < D; j++)
                row[j] -= (float)mu[j];
        }
        /* part = x^T x, upper triangle: [D, m] x [m, D] */
        cblas_ssyrk(CblasRowMajor, CblasUpper, CblasTrans, (int)D, (int)m,
                    1.0f, x, (int)D, 0.0f, part, (int)D);
#pragma omp parallel for
        for (long i = 0; i < D; i++)
            for (long j = i; j < D; j++)
                cov[i * D + j] += part[i * D + j];
    }
    for (long i = 0; i < D; i++)
        for (long j = i; j < D; j++)
            cov[j * D + i] = cov[i * D + j] /= d->n;
    free(x);
    free(part);
    return cov;
}

/* W = U diag((lambda + eps)^-1/2) U^T, into a->zca_matrix. */
static int zca_fit(dn_augment *a, const dn_dataset *d, dn_error *err)
{
    long D = (long)d->c * d->h * d->w;
    double *mu = dn_xmalloc(D * sizeof *mu);
    double *lambda = dn_xmalloc(D * sizeof *lambda);
    double *cov = NULL, *w = NULL;
    int rc = 0;
    mean_of(a, steps_of(a), d, mu);
    if (!(cov = covariance(a, d, mu)))
        rc = dn_fail(err, "zca: out of memory for a %ldx%ld covariance", D, D);
    if (!rc)
        rc = eigen_sym(cov, (int)D, lambda, err);
    if (!rc && !(w = calloc((size_t)D * D, sizeof *w)))
        rc = dn_fail(err, "zca: out of memory for a %ldx%ld matrix", D, D);
    if (!rc) {
        /* column j of cov is eigenvector j: scale it by (lambda+eps)^-1/4 */
        for (long j = 0; j < D; j++) {
            double l = lambda[j] > 0 ? lambda[j] : 0; /* rounding below 0 */
            double s = pow(l + a->zca_epsilon, -0.25);
            for (long i = 0; i < D; i++)
                cov[j * D + i] *= s;
        }
        cblas_dsyrk(CblasColMajor, CblasUpper, CblasNoTrans, (int)D, (int)D,
                    1.0, cov, (int)D, 0.0, w, (int)D);
        for (long j = 0; j < D; j++) /* column-major upper -> full */
            for (long i = 0; i <= j; i++)
                a->zca_matrix[i * D + j] = a->zca_matrix[j * D + i] =
                    (float)w[j * D + i];
        for (long j = 0; j < D; j++)
            a->zca_mean[j] = (float)mu[j];
    }
    free(mu);
    free(lambda);
    free(cov);
    free(w);
    return rc;
}

/* ------------------------------------------------------------ ZCA cache */

static uint64_t hash_double(uint64_t h, double v)
{
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits);
    return dn_hash3(h, bits, 0x7a6361);
}

/* What the matrix depends on: the data, epsilon, and steps 1-5. */
static uint64_t zca_key(const dn_augment *a, const dn_dataset *d)
{
    uint64_t h = dn_hash3(dn_dataset_hash(d), steps_of(a), 1);
    h = hash_double(h, a->zca_epsilon);
    if (a->contrast_stretch)
        h = hash_double(hash_double(h, a->stretch_low), a->stretch_high);
    for (int ch = 0; a->normalize && ch < d->c; ch++)
        h = hash_double(hash_double(h, a->norm_mean[ch]), a->norm_std[ch]);
    if (a->gcn)
        h = hash_double(hash_double(hash_double(h, a->gcn_scale),
                                    a->gcn_lambda), a->gcn_eps);
    return h;
}

static uint64_t payload_hash(const dn_augment *a, long D)
{
    uint64_t h = 0;
    const float *parts[2] = {a->zca_mean, a->zca_matrix};
    long sizes[2] = {D, D * D};
    for (int p = 0; p < 2; p++)
        for (long i = 0; i < sizes[p]; i++) {
            uint32_t bits;
            memcpy(&bits, &parts[p][i], sizeof bits);
            h = (h ^ bits) * 0x100000001b3ULL;
        }
    return h;
}

/*
 * File layout (host byte order): magic[8] "DNZCA01\n", u64 key, u64 D,
 * f64 epsilon, f32 mean[D], f32 W[D*D], u64 hash of mean and W.
 * Returns 1 when loaded, 0 when absent or unusable (a warning says why).
 */
static int zca_cache_read(dn_augment *a, const char *path, uint64_t key,
                          long D)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return 0;
    char magic[8];
    uint64_t k = 0, dim = 0, check = 0;
    double eps = 0;
    int ok = fread(magic, 8, 1, f) == 1 && memcmp(magic, ZCA_MAGIC, 8) == 0 &&
             fread(&k, 8, 1, f) == 1 && fread(&dim, 8, 1, f) == 1 &&
             fread(&eps, 8, 1, f) == 1 && k == key && dim == (uint64_t)D &&
             eps == a->zca_epsilon &&
             fread(a->zca_mean, sizeof(float), D, f) == (size_t)D &&
             fread(a->zca_matrix, sizeof(float), D * D, f) == (size_t)(D * D) &&
             fread(&check, 8, 1, f) == 1 && check == payload_hash(a, D) &&
             fgetc(f) == EOF;
    fclose(f);
    if (!ok)
        fprintf(stderr, "warning: %s: not a valid ZCA cache for this data; "
                "refitting\n", path);
    return ok;
}

/* Written to path.tmp, then renamed: a reader never sees half a file.
 * Returns 0, or -1 after a warning. */
static int zca_cache_write(const dn_augment *a, const char *path,
                            uint64_t key, long D)
{
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        fprintf(stderr, "warning: cannot write ZCA cache %s: %s (continuing "
                "without a cache)\n", path, strerror(errno));
        return -1;
    }
    uint64_t dim = D, check = payload_hash(a, D);
    int ok = fwrite(ZCA_MAGIC, 8, 1, f) == 1 && fwrite(&key, 8, 1, f) == 1 &&
             fwrite(&dim, 8, 1, f) == 1 &&
             fwrite(&a->zca_epsilon, 8, 1, f) == 1 &&
             fwrite(a->zca_mean, sizeof(float), D, f) == (size_t)D &&
             fwrite(a->zca_matrix, sizeof(float), D * D, f) == (size_t)(D * D) &&
             fwrite(&check, 8, 1, f) == 1;
    int saved_errno = errno;
    if (fclose(f) != 0 && ok)
        ok = 0, saved_errno = errno;
    if (!ok || rename(tmp, path) != 0) {
        fprintf(stderr, "warning: cannot write ZCA cache %s: %s (continuing "
                "without a cache)\n", path, strerror(ok ? errno : saved_errno));
        remove(tmp);
        return -1;
    }
    return 0;
}

/*
 * zca_cache=auto: the data's directory where this user may write, else
 * $XDG_CACHE_HOME/darknet or ~/.cache/darknet (created): a dataset installed
 * read-only (Debian's /usr/share/datasets) is then fitted once per user
 * rather than once per run. Returns d->dir or buf.
 */
static const char *auto_cache_dir(const dn_dataset *d, char *buf, size_t n)
{
    if (!d->dir || access(d->dir, W_OK) == 0)
        return d->dir;
    const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    if (xdg && *xdg)
        snprintf(buf, n, "%s/darknet", xdg);
    else if (home && *home)
        snprintf(buf, n, "%s/.cache/darknet", home);
    else
        return d->dir; /* the write fails with a warning */
    char *slash = strrchr(buf, '/');
    *slash = '\0';
    mkdir(buf, 0777); /* ~/.cache itself may be missing */
    *slash = '/';
    mkdir(buf, 0777);
    return access(buf, W_OK) == 0 ? buf : d->dir;
}

/* zca_cache=auto (next to the data, see above) | none | DIR */
static int zca_setup(dn_augment *a, dn_section *net, const dn_dataset *d,
                     dn_error *err)
{
    long D = (long)d->c * d->h * d->w;
    const char *where;
    char user_dir[1024];
    dn_key_string(net, dn_augment_keys, "zca_cache", &where, NULL);
    /* the fit holds the matrix, a covariance in double, a partial sum and
     * the eigenvectors: about 28 bytes per entry of the D x D matrix */
    const double bytes = 28.0 * (double)D * (double)D;
    if (bytes > dn_machine_memory())
        return dn_sec_fail(net, "zca", err, "whitening %ldx%ldx%ld inputs "
                           "needs %ldx%ld matrices (%s), more than the "
                           "machine's memory (%s)", (long)d->c, (long)d->h,
                           (long)d->w, D, D, dn_bytes_text(bytes),
                           dn_bytes_text(dn_machine_memory()));
    a->zca_mean = malloc(D * sizeof *a->zca_mean);
    a->zca_matrix = malloc((size_t)D * D * sizeof *a->zca_matrix);
    if (!a->zca_mean || !a->zca_matrix)
        return dn_fail(err, "zca: out of memory for a %ldx%ld matrix", D, D);
    const char *dir = strcmp(where, "auto") == 0
                          ? auto_cache_dir(d, user_dir, sizeof user_dir)
                      : strcmp(where, "none") == 0 ? NULL
                                                   : where;
    uint64_t key = dir ? zca_key(a, d) : 0;
    if (dir) {
        char path[4096];
        snprintf(path, sizeof path, "%s/zca-%016llx.bin", dir,
                 (unsigned long long)key);
        a->zca_cache = dn_xstrdup(path);
        if (zca_cache_read(a, path, key, D)) {
            a->zca_from_cache = 1;
            return 0;
        }
    }
    if (zca_fit(a, d, err))
        return -1;
    if (a->zca_cache && zca_cache_write(a, a->zca_cache, key, D)) {
        free(a->zca_cache);
        a->zca_cache = NULL;
    }
    return 0;
}

/* --------------------------------------------------------------- parse */

/* The preprocessing and augmentation keys of [net] (docs/data.md). */
const dn_key dn_augment_keys[] = {
    DN_INT("flip", "0", 0, 1, "training: mirror left-right with probability 1/2"),
    DN_INT("crop_pad", "0", 0, 4096,
           "training: pad this many zeros each side, crop at random"),
    DN_INT("contrast_stretch", "0", 0, 1,
           "1: map the stretch_low/high percentiles of each image to 0 and 1"),
    DN_FLOAT("stretch_low", "0", 0, 100, "contrast_stretch: lower percentile"),
    DN_FLOAT("stretch_high", "100", 0, 100,
             "contrast_stretch: upper percentile (above stretch_low)"),
    DN_INT("normalize", "0", 0, 1, "1: per-channel (x - mean) / std"),
    DN_FLOATS("mean", "normalize: 1 or channels values (absent: fitted on the "
              "training set)"),
    DN_FLOATS("std", "normalize: 1 or channels values > 0 (absent: fitted)"),
    DN_INT("subtract_mean", "0", 0, 1,
           "1: subtract the training set's per-pixel mean image"),
    DN_INT("gcn", "0", 0, 1, "1: global contrast normalisation per image"),
    DN_FLOAT("gcn_scale", "1", 1e-12, 1e12, "gcn: the scale s"),
    DN_FLOAT("gcn_lambda", "0", 0, 1e12, "gcn: the regulariser lambda"),
    DN_FLOAT("gcn_eps", "1e-8", 0, 1e12, "gcn: the floor of the divisor"),
    DN_INT("zca", "0", 0, 1, "1: ZCA whitening fitted on the training set"),
    DN_FLOAT("zca_epsilon", "0.01", 1e-12, 1e12, "zca: added to the eigenvalues"),
    DN_STRING("zca_cache", "auto",
              "zca: where the fitted matrix is cached: auto, none or a directory"),
    DN_KEYS_END,
};

static int parse_normalize(dn_augment *a, dn_section *net, const dn_dataset *d,
                           int c, dn_error *err)
{
    double mean[MAX_NORM_CHANNELS], std[MAX_NORM_CHANNELS];
    int n_mean, n_std;
    if (dn_key_doubles(net, dn_augment_keys, "mean", mean, MAX_NORM_CHANNELS,
                       &n_mean, err) ||
        dn_key_doubles(net, dn_augment_keys, "std", std, MAX_NORM_CHANNELS,
                       &n_std, err))
        return -1;
    if (n_mean > 1 && c > 0 && n_mean != c)
        return dn_sec_fail(net, "mean", err, "%d values for %d channels (give "
                           "1 or %d)", n_mean, c, c);
    if (n_std > 1 && c > 0 && n_std != c)
        return dn_sec_fail(net, "std", err, "%d values for %d channels (give "
                           "1 or %d)", n_std, c, c);
    for (int i = 0; i < n_std; i++)
        if (!(std[i] > 0))
            return dn_sec_fail(net, "std", err, "every std must be > 0");
    if (c <= 0) /* no training set: the lists give the channel count */
        a->c = c = n_mean > n_std ? n_mean : n_std;
    if (c <= 0 || (!d && (!n_mean || !n_std)))
        return dn_fail(err, "normalize=1 without mean= and std= needs the "
                       "training set to compute them");
    a->norm_mean = dn_xcalloc(c, sizeof *a->norm_mean);
    a->norm_std = dn_xcalloc(c, sizeof *a->norm_std);
    double fit_mean[MAX_NORM_CHANNELS], fit_std[MAX_NORM_CHANNELS];
    if (!n_mean || !n_std)
        fit_normalize(a, d, fit_mean, fit_std);
    for (int ch = 0; ch < c; ch++) {
        a->norm_mean[ch] = (float)(n_mean ? mean[n_mean > 1 ? ch : 0]
                                          : fit_mean[ch]);
        a->norm_std[ch] = (float)(n_std ? std[n_std > 1 ? ch : 0]
                                        : fit_std[ch]);
    }
    return 0;
}

static int parse_keys(dn_augment *a, dn_section *net, dn_error *err)
{
    const dn_key *t = dn_augment_keys;
    long flip, crop_pad, cs, norm, sub, g, zca;
    if (dn_key_int(net, t, "flip", &flip, err) ||
        dn_key_int(net, t, "crop_pad", &crop_pad, err) ||
        dn_key_int(net, t, "contrast_stretch", &cs, err) ||
        dn_key_int(net, t, "normalize", &norm, err) ||
        dn_key_int(net, t, "subtract_mean", &sub, err) ||
        dn_key_int(net, t, "gcn", &g, err) ||
        dn_key_int(net, t, "zca", &zca, err))
        return -1;
    a->flip = (int)flip, a->crop_pad = (int)crop_pad;
    a->contrast_stretch = (int)cs, a->normalize = (int)norm;
    a->subtract_mean = (int)sub, a->gcn = (int)g, a->zca = (int)zca;
    if (cs && (dn_key_double(net, t, "stretch_low", &a->stretch_low, err) ||
               dn_key_double(net, t, "stretch_high", &a->stretch_high, err)))
        return -1;
    if (cs && a->stretch_low >= a->stretch_high)
        return dn_sec_fail(net, "stretch_high", err, "must be above "
                           "stretch_low=%g", a->stretch_low);
    if (g && (dn_key_double(net, t, "gcn_scale", &a->gcn_scale, err) ||
              dn_key_double(net, t, "gcn_lambda", &a->gcn_lambda, err) ||
              dn_key_double(net, t, "gcn_eps", &a->gcn_eps, err)))
        return -1;
    if (zca && dn_key_double(net, t, "zca_epsilon", &a->zca_epsilon, err))
        return -1;
    return 0;
}

int dn_augment_parse(dn_section *net, const dn_dataset *train,
                     dn_augment **out, dn_error *err)
{
    *out = NULL;
    dn_augment *a = dn_xcalloc(1, sizeof *a);
    int rc = parse_keys(a, net, err);
    if (!rc && !train && (a->subtract_mean || a->zca))
        rc = dn_fail(err, "%s:%d: [%s] %s=1 needs the training set to fit",
                     net->path, net->line, net->type,
                     a->zca ? "zca" : "subtract_mean");
    if (!rc && train) {
        a->c = train->c, a->h = train->h, a->w = train->w;
        if (train->n < 1 && (a->subtract_mean || a->zca || a->normalize))
            rc = dn_fail(err, "%s: empty training set", train->source);
    }
    if (!rc && a->normalize)
        rc = parse_normalize(a, net, train, a->c, err);
    if (!rc && a->subtract_mean) {
        long D = (long)a->c * a->h * a->w;
        double *m = dn_xmalloc(D * sizeof *m);
        a->mean_image = dn_xmalloc(D * sizeof *a->mean_image);
        mean_of(a, steps_of(a) & (STEP_STRETCH | STEP_NORMALIZE), train, m);
        for (long j = 0; j < D; j++)
            a->mean_image[j] = (float)m[j];
        free(m);
    }
    if (!rc && a->zca)
        rc = zca_setup(a, net, train, err);
    if (rc) {
        dn_augment_free(a);
        return -1;
    }
    *out = a;
    return 0;
}

int dn_augment_check(dn_section *net, dn_error *err)
{
    dn_augment a = {0};
    if (parse_keys(&a, net, err))
        return -1;
    if (!a.normalize)
        return 0;
    double mean[MAX_NORM_CHANNELS], std[MAX_NORM_CHANNELS];
    int n_mean, n_std;
    if (dn_key_doubles(net, dn_augment_keys, "mean", mean, MAX_NORM_CHANNELS,
                       &n_mean, err) ||
        dn_key_doubles(net, dn_augment_keys, "std", std, MAX_NORM_CHANNELS,
                       &n_std, err))
        return -1;
    for (int i = 0; i < n_std; i++)
        if (!(std[i] > 0))
            return dn_sec_fail(net, "std", err, "every std must be > 0");
    return 0;
}

void dn_augment_free(dn_augment *a)
{
    if (!a)
        return;
    free(a->norm_mean);
    free(a->norm_std);
    free(a->mean_image);
    free(a->zca_mean);
    free(a->zca_matrix);
    free(a->zca_cache);
    free(a);
}

void dn_augment_describe(const dn_augment *a, char *buf, size_t size)
{
    size_t used = 0;
    buf[0] = '\0';
#define ADD(...)                                                              \
    do {                                                                      \
        if (used < size)                                                      \
            used += snprintf(buf + used, size - used, "%s", used ? " " : ""); \
        if (used < size)                                                      \
            used += snprintf(buf + used, size - used, __VA_ARGS__);           \
    } while (0)
    if (a && a->contrast_stretch)
        ADD("contrast_stretch(%g-%g%%)", a->stretch_low, a->stretch_high);
    if (a && a->normalize)
        ADD("normalize");
    if (a && a->subtract_mean)
        ADD("subtract_mean");
    if (a && a->gcn)
        ADD("gcn(scale=%g)", a->gcn_scale);
    if (a && a->zca)
        ADD("zca(eps=%g%s)", a->zca_epsilon, a->zca_from_cache ? ", cached" : "");
    if (a && a->crop_pad)
        ADD("crop_pad=%d", a->crop_pad);
    if (a && a->flip)
        ADD("flip");
#undef ADD
    if (used == 0)
        snprintf(buf, size, "none");
}

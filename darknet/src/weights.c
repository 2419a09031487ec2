/*
 * weights.c - Darknet's .weights format, the optimiser-state sidecar, and
 * checkpoints made of the two.
 *
 * .weights layout (little-endian, as Darknet writes it on x86):
 *   int32 major, int32 minor, int32 revision,
 *   seen: uint64 if major*10 + minor >= 2, else uint32,
 *   then, layer by layer, the float32 tensors each layer lists in saved[]
 *   (for a convolution: biases, [scales, rolling mean, rolling variance],
 *   weights).
 * We write version 0.2.0, as Debian's darknet does.
 *
 * Saving writes PATH.tmp, fsyncs it and renames it over PATH, so a crash or a
 * signal never leaves a half-written file. Loading opens only a regular file
 * (a FIFO would block), checks the header and the exact size first, reads
 * everything into scratch memory and checks every float is finite (and
 * every rolling variance >= 0) before touching the network: a bad file
 * changes nothing. A network whose tensors are not finite is never saved.
 *
 * A network on a device (GPU builds) keeps its tensors there: saving pulls
 * them to the host copies first, loading pushes them afterwards (with the
 * rest of the state pulled first, so that only what the file holds
 * changes).
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "darknet.h"
#include "dn_train.h"
#include "file.h"

#define MAJOR 0
#define MINOR 2
#define REVISION 0
/* Darknet's version fields above this are its transposed layout (or not
 * a .weights file at all) */
#define MAX_VERSION_FIELD 1000

static long net_saved_floats(const dn_net *net)
{
    long n = 0;
    for (int i = 0; i < net->n; i++)
        for (int k = 0; k < net->layers[i].n_saved; k++)
            n += net->layers[i].saved_n[k];
    return n;
}

/* ------------------------------------------------------ finite tensors */

/* The name of saved tensor k, whichever parameter it is. */
static const char *tensor_name(const dn_layer *l, int k)
{
    for (int p = 0; p < l->n_params; p++)
        if (l->params[p].w == l->saved[k])
            return l->params[p].name;
    int stats = 0;
    for (int j = 0; j < k; j++) {
        int param = 0;
        for (int p = 0; p < l->n_params; p++)
            param |= l->params[p].w == l->saved[j];
        stats += !param;
    }
    return stats == 0 ? "rolling_mean" : "rolling_variance";
}

/* Index of the first value of x[n] that is not finite (or, with
 * nonnegative, below 0), or -1. A sum first: cheap when all is well. */
static long first_bad(const float *x, long n, int nonnegative)
{
    float acc = 0;
    for (long i = 0; i < n; i++)
        acc += x[i] * 0.0f;
    if (acc == 0 && !nonnegative)
        return -1;
    for (long i = 0; i < n; i++)
        if (!isfinite(x[i]) || (nonnegative && x[i] < 0))
            return i;
    return -1;
}

/* tensors[] in saved[] order (the file's, or the network's own when
 * NULL): -1 with "layer 3 [convolutional] weights[17] = nan" in what. */
static int check_saved(const dn_net *net, const float *tensors, char *what,
                       size_t n)
{
    long at = 0; /* offset in tensors */
    for (int i = 0; i < net->n; i++) {
        const dn_layer *l = &net->layers[i];
        for (int k = 0; k < l->n_saved; k++) {
            const float *x = tensors ? tensors + at : l->saved[k];
            const char *name = tensor_name(l, k);
            long bad = first_bad(x, l->saved_n[k],
                                 strcmp(name, "rolling_variance") == 0);
            if (bad >= 0) {
                snprintf(what, n, "layer %d [%s] %s[%ld] = %g", i,
                         l->type->name, name, bad, (double)x[bad]);
                return -1;
            }
            at += l->saved_n[k];
        }
    }
    return 0;
}

int dn_net_check_finite(const dn_net *net, dn_error *err)
{
    char what[256];
    if (check_saved(net, NULL, what, sizeof what))
        return dn_fail(err, "%s is not finite", what);
    for (int i = 0; i < net->n; i++)
        for (int k = 0; k < net->layers[i].n_params; k++) {
            const dn_param *p = &net->layers[i].params[k];
            const float *bufs[2] = {p->m, net->adam ? p->v : NULL};
            const char *names[2] = {net->adam ? "first moment" : "momentum",
                                    "second moment"};
            for (int b = 0; b < 2; b++) {
                long bad = bufs[b] ? first_bad(bufs[b], p->n, b == 1) : -1;
                if (bad >= 0)
                    return dn_fail(err, "layer %d [%s] %s: %s[%ld] = %g is not "
                                   "finite", i, net->layers[i].type->name,
                                   p->name, names[b], bad, (double)bufs[b][bad]);
            }
        }
    return 0;
}

/* 64-bit hash of the weights as a checkpoint holds them: seen, then every
 * saved tensor in order (a multiply-rotate hash over 32-bit words). */
uint64_t dn_weights_checksum(const dn_net *net)
{
    const uint64_t k1 = 0x9e3779b97f4a7c15ULL, k2 = 0xc2b2ae3d27d4eb4fULL;
    uint64_t h = dn_hash3(net->seen, (uint64_t)net_saved_floats(net), 0x57);
    for (int i = 0; i < net->n; i++) {
        const dn_layer *l = &net->layers[i];
        for (int k = 0; k < l->n_saved; k++) {
            const uint32_t *w = (const uint32_t *)l->saved[k];
            for (long j = 0; j < l->saved_n[k]; j++) {
                h ^= w[j] * k1;
                h = ((h << 29) | (h >> 35)) * k2;
            }
        }
    }
    return dn_hash3(h, 0, 0);
}

/* ------------------------------------------------------- atomic files */

/* fsync the directory holding path, so that a rename survives a crash. */
static void sync_dir(const char *path)
{
    char copy[4096];
    snprintf(copy, sizeof copy, "%s", path);
    int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

/* Writes PATH.tmp with write(f), flushed and fsynced; tmp gets its name. */
static int write_temp(const char *path, char *tmp, size_t n,
                      int (*write)(FILE *f, const void *arg), const void *arg,
                      dn_error *err)
{
    if (dn_path_format(tmp, n, err, "%s.tmp", path))
        return -1;
    FILE *f = fopen(tmp, "wb");
    if (!f)
        return dn_fail(err, "%s: cannot write: %s", tmp, strerror(errno));
    int bad = write(f, arg);
    int e = bad ? errno : 0;
    if (!bad && (fflush(f) != 0 || fsync(fileno(f)) != 0))
        bad = 1, e = errno;
    if (fclose(f) != 0 && !bad)
        bad = 1, e = errno;
    if (bad) {
        unlink(tmp);
        return dn_fail(err, "%s: write failed: %s", tmp,
                       e ? strerror(e) : "short write");
    }
    return 0;
}

static int commit_temp(const char *tmp, const char *path, dn_error *err)
{
    if (rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        return dn_fail(err, "%s: cannot rename to %s: %s", tmp, path,
                       strerror(e));
    }
    sync_dir(path);
    return 0;
}

static int atomic_write(const char *path, int (*write)(FILE *f, const void *arg),
                        const void *arg, dn_error *err)
{
    char tmp[4096];
    if (write_temp(path, tmp, sizeof tmp, write, arg, err))
        return -1;
    return commit_temp(tmp, path, err);
}

/* ------------------------------------------------------------ weights */

static int write_weights(FILE *f, const void *arg)
{
    const dn_net *net = arg;
    int32_t header[3] = {MAJOR, MINOR, REVISION};
    uint64_t seen = net->seen;
    if (fwrite(header, sizeof header, 1, f) != 1 ||
        fwrite(&seen, sizeof seen, 1, f) != 1)
        return 1;
    for (int i = 0; i < net->n; i++) {
        const dn_layer *l = &net->layers[i];
        for (int k = 0; k < l->n_saved; k++)
            if (fwrite(l->saved[k], sizeof(float), l->saved_n[k], f) !=
                (size_t)l->saved_n[k])
                return 1;
    }
    return 0;
}

/* A network with non-finite tensors is never saved. */
static int check_savable(const dn_net *net, const char *path, dn_error *err)
{
    dn_error why;
    if (dn_net_check_finite(net, &why))
        return dn_fail(err, "%s: not saved: %s", path, why.msg);
    return 0;
}

int dn_weights_save(const dn_net *net, const char *path, dn_error *err)
{
    if (dn_net_pull(net, err) || check_savable(net, path, err))
        return -1;
    return atomic_write(path, write_weights, net, err);
}

int dn_weights_load(dn_net *net, const char *path, dn_error *err)
{
    long long size;
    FILE *f = dn_fopen_regular(path, &size, err);
    if (!f)
        return -1;
    int32_t header[3];
    if (size < (long long)sizeof header || fread(header, sizeof header, 1, f) != 1) {
        fclose(f);
        return dn_fail(err, "%s: truncated header (%lld bytes)", path, size);
    }
    if (header[0] < 0 || header[1] < 0 || header[2] < 0) {
        fclose(f);
        return dn_fail(err, "%s: version %d.%d.%d: negative version fields; "
                       "not a .weights file", path, header[0], header[1],
                       header[2]);
    }
    if (header[0] > MAX_VERSION_FIELD || header[1] > MAX_VERSION_FIELD) {
        fclose(f);
        return dn_fail(err, "%s: version %d.%d.%d (transposed layout) is not "
                       "supported", path, header[0], header[1], header[2]);
    }
    long seen_bytes = header[0] * 10 + header[1] >= 2 ? 8 : 4;
    long payload = net_saved_floats(net);
    long long expected = 12 + seen_bytes + 4LL * payload;
    if (size != expected) {
        fclose(f);
        return dn_fail(err, "%s: expected %lld bytes for %s (%ld floats in %d "
                       "layers, version %d.%d.%d), found %lld%s", path, expected,
                       net->cfg ? net->cfg->path : "this network", payload,
                       net->n, header[0], header[1], header[2], size,
                       size < expected ? " (truncated?)" :
                       " (a different network?)");
    }
    uint64_t seen = 0;
    uint32_t seen32 = 0;
    int ok = seen_bytes == 8 ? fread(&seen, 8, 1, f) == 1
                             : (fread(&seen32, 4, 1, f) == 1 && ((seen = seen32), 1));
    float *buf = malloc((payload ? payload : 1) * sizeof *buf);
    if (!buf) {
        fclose(f);
        return dn_fail(err, "%s: out of memory for %ld floats", path, payload);
    }
    if (ok)
        ok = fread(buf, sizeof(float), payload, f) == (size_t)payload;
    fclose(f);
    if (!ok) {
        free(buf);
        return dn_fail(err, "%s: read error", path);
    }
    char what[256];
    if (check_saved(net, buf, what, sizeof what)) {
        free(buf);
        return dn_fail(err, "%s: %s: the weights are not finite (a damaged "
                       "file, or one saved after training diverged); nothing "
                       "was loaded", path, what);
    }
    if (dn_net_pull(net, err)) {
        free(buf);
        return -1;
    }
    const float *p = buf;
    for (int i = 0; i < net->n; i++) {
        dn_layer *l = &net->layers[i];
        for (int k = 0; k < l->n_saved; k++) {
            memcpy(l->saved[k], p, l->saved_n[k] * sizeof(float));
            p += l->saved_n[k];
        }
    }
    free(buf);
    net->seen = seen;
    return dn_net_push(net, err);
}

/* ------------------------------------------------- optimiser state sidecar */

/*
 * PATH.state, version 3: "DNST", int32 version, int32 adam, int64 floats,
 * uint64 seen and uint64 dn_weights_checksum of the weights it belongs to,
 * int32 world size (the processes that trained it data-parallel, 1 alone),
 * then each parameter's momentum buffer (and Adam second moment) in layer
 * order. With the weights (which hold seen and the batch-norm statistics)
 * and the loader's pure (seed, index) data order, this is everything a
 * resumed run needs to continue exactly as an uninterrupted one. Version 1
 * (no seen, no checksum) still loads, unchecked; version 2 (no world size)
 * loads as it did.
 */
#define STATE_VERSION 3
#define STATE_HEADER_V1 20
#define STATE_HEADER_V2 36
#define STATE_HEADER_V3 40

static long state_floats(const dn_net *net)
{
    long n = 0;
    for (int i = 0; i < net->n; i++)
        for (int k = 0; k < net->layers[i].n_params; k++)
            n += net->layers[i].params[k].n * (net->adam ? 2 : 1);
    return n;
}

static int write_state(FILE *f, const void *arg)
{
    const dn_net *net = arg;
    int32_t head[2] = {STATE_VERSION, net->adam};
    int64_t n = state_floats(net);
    uint64_t pair[2] = {net->seen, dn_weights_checksum(net)};
    int32_t world = net->world_size > 1 ? net->world_size : 1;
    if (fwrite("DNST", 4, 1, f) != 1 || fwrite(head, sizeof head, 1, f) != 1 ||
        fwrite(&n, sizeof n, 1, f) != 1 || fwrite(pair, sizeof pair, 1, f) != 1 ||
        fwrite(&world, sizeof world, 1, f) != 1)
        return 1;
    for (int i = 0; i < net->n; i++)
        for (int k = 0; k < net->layers[i].n_params; k++) {
            const dn_param *p = &net->layers[i].params[k];
            if (fwrite(p->m, sizeof(float), p->n, f) != (size_t)p->n)
                return 1;
            if (net->adam && fwrite(p->v, sizeof(float), p->n, f) != (size_t)p->n)
                return 1;
        }
    return 0;
}

int dn_state_save(const dn_net *net, const char *path, dn_error *err)
{
    if (dn_net_pull(net, err) || check_savable(net, path, err))
        return -1;
    return atomic_write(path, write_state, net, err);
}

/* Reads a state file into a new buffer [state_floats]; checks its size,
 * that it belongs to the weights now in net (version 2), and that it is
 * finite. mismatch is set when only the pairing is wrong. */
static float *read_state(const dn_net *net, const char *path, int *mismatch,
                         int *world, dn_error *err)
{
    *mismatch = 0;
    *world = 0;
    long long size;
    FILE *f = dn_fopen_regular(path, &size, err);
    if (!f)
        return NULL;
    char magic[4];
    int32_t head[2];
    int64_t n;
    uint64_t pair[2] = {0, 0};
    int32_t world32 = 0;
    const long expected = state_floats(net);
    int ok = fread(magic, 4, 1, f) == 1 && memcmp(magic, "DNST", 4) == 0 &&
             fread(head, sizeof head, 1, f) == 1 &&
             fread(&n, sizeof n, 1, f) == 1 &&
             head[0] >= 1 && head[0] <= STATE_VERSION;
    if (ok && head[0] >= 2)
        ok = fread(pair, sizeof pair, 1, f) == 1;
    if (ok && head[0] >= 3)
        ok = fread(&world32, sizeof world32, 1, f) == 1 && world32 >= 1;
    if (!ok) {
        fclose(f);
        dn_fail(err, "%s: not an optimiser state file", path);
        return NULL;
    }
    const long long header = head[0] == 1   ? STATE_HEADER_V1
                             : head[0] == 2 ? STATE_HEADER_V2
                                            : STATE_HEADER_V3;
    if (head[1] != net->adam || n != expected) {
        fclose(f);
        dn_fail(err, "%s: state for %s with %lld floats, this network needs "
                "%s with %ld", path, head[1] ? "adam" : "sgd", (long long)n,
                net->adam ? "adam" : "sgd", expected);
        return NULL;
    }
    if (size != header + 4LL * expected) {
        fclose(f);
        dn_fail(err, "%s: expected %lld bytes of state, found %lld", path,
                header + 4LL * expected, size);
        return NULL;
    }
    if (head[0] >= 2 &&
        (pair[0] != net->seen || pair[1] != dn_weights_checksum(net))) {
        fclose(f);
        *mismatch = 1;
        dn_fail(err, "%s: the optimiser state of other weights (seen %llu, "
                "checksum %016llx), not of those loaded (seen %llu, checksum "
                "%016llx): the two files were not saved together", path,
                (unsigned long long)pair[0], (unsigned long long)pair[1],
                (unsigned long long)net->seen,
                (unsigned long long)dn_weights_checksum(net));
        return NULL;
    }
    *world = world32;
    float *buf = malloc((expected ? expected : 1) * sizeof *buf);
    size_t got = buf ? fread(buf, sizeof(float), expected, f) : 0;
    fclose(f);
    if (got != (size_t)expected) {
        free(buf);
        dn_fail(err, "%s: read error", path);
        return NULL;
    }
    const float *p = buf;
    for (int i = 0; i < net->n; i++)
        for (int k = 0; k < net->layers[i].n_params; k++) {
            const dn_param *pr = &net->layers[i].params[k];
            for (int b = 0; b < 1 + net->adam; b++, p += pr->n) {
                long bad = first_bad(p, pr->n, b == 1);
                if (bad >= 0) {
                    dn_fail(err, "%s: layer %d [%s] %s: %s[%ld] = %g: the "
                            "optimiser state is not finite; nothing was "
                            "loaded", path, i, net->layers[i].type->name,
                            pr->name, b ? "second moment" : net->adam
                            ? "first moment" : "momentum", bad, (double)p[bad]);
                    free(buf);
                    return NULL;
                }
            }
        }
    return buf;
}

static int apply_state(dn_net *net, float *buf, int world, dn_error *err)
{
    net->loaded_world_size = world;
    if (dn_net_pull(net, err)) {
        free(buf);
        return -1;
    }
    const float *p = buf;
    for (int i = 0; i < net->n; i++)
        for (int k = 0; k < net->layers[i].n_params; k++) {
            dn_param *pr = &net->layers[i].params[k];
            memcpy(pr->m, p, pr->n * sizeof(float));
            p += pr->n;
            if (net->adam) {
                memcpy(pr->v, p, pr->n * sizeof(float));
                p += pr->n;
            }
        }
    free(buf);
    return dn_net_push(net, err);
}

int dn_state_load(dn_net *net, const char *path, dn_error *err)
{
    int mismatch, world;
    float *buf = read_state(net, path, &mismatch, &world, err);
    return buf ? apply_state(net, buf, world, err) : -1;
}

/* ---------------------------------------------------------- checkpoints */

int dn_checkpoint_save(const dn_net *net, const char *path, dn_error *err)
{
    char state[4096], wtmp[4096], stmp[4096];
    if (dn_path_format(state, sizeof state, err, "%s.state", path) ||
        dn_net_pull(net, err) || check_savable(net, path, err))
        return -1;
    /* both complete on disk before either is renamed: from here on, a
     * kill leaves the old pair, or the new weights with their state in
     * PATH.state.tmp (dn_checkpoint_load finishes that commit) */
    if (write_temp(path, wtmp, sizeof wtmp, write_weights, net, err))
        return -1;
    if (write_temp(state, stmp, sizeof stmp, write_state, net, err)) {
        unlink(wtmp);
        return -1;
    }
    if (commit_temp(wtmp, path, err)) {
        unlink(stmp);
        return -1;
    }
    return commit_temp(stmp, state, err);
}

int dn_checkpoint_load(dn_net *net, const char *path, int with_state,
                       int *state_loaded, dn_error *err)
{
    char state[4096], tmp[4096];
    *state_loaded = 0;
    if (dn_path_format(state, sizeof state, err, "%s.state", path) ||
        dn_path_format(tmp, sizeof tmp, err, "%s.state.tmp", path) ||
        dn_weights_load(net, path, err))
        return -1;
    if (!with_state)
        return 0;
    struct stat st;
    const int have_state = stat(state, &st) == 0;
    int mismatch = 0, world = 0;
    dn_error why = {{0}};
    float *buf = have_state ? read_state(net, state, &mismatch, &world, &why)
                            : NULL;
    if (!buf && (mismatch || !have_state) && stat(tmp, &st) == 0) {
        /* killed between the two renames: the new state is complete */
        int tmp_mismatch;
        dn_error ignored;
        buf = read_state(net, tmp, &tmp_mismatch, &world, &ignored);
        if (buf && rename(tmp, state) != 0) {
            free(buf);
            return dn_fail(err, "%s: cannot rename to %s: %s", tmp, state,
                           strerror(errno));
        }
    }
    if (!buf && have_state)
        return dn_fail(err, "%s", why.msg);
    if (!buf)
        return 0; /* weights alone: a fresh optimiser */
    *state_loaded = 1;
    return apply_state(net, buf, world, err);
}

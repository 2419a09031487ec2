/*
 * weights.c - Darknet's .weights format, and the optimiser-state sidecar.
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
 * signal never leaves a half-written file. Loading checks the exact size
 * first and reads everything into scratch memory before touching the
 * network: a bad file changes nothing.
 *
 * A network on a device (GPU builds) keeps its tensors there: saving pulls
 * them to the host copies first, loading pushes them afterwards (with the
 * rest of the state pulled first, so that only what the file holds
 * changes).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "darknet.h"
#include "dn_train.h"

#define MAJOR 0
#define MINOR 2
#define REVISION 0

static long net_saved_floats(const dn_net *net)
{
    long n = 0;
    for (int i = 0; i < net->n; i++)
        for (int k = 0; k < net->layers[i].n_saved; k++)
            n += net->layers[i].saved_n[k];
    return n;
}

/* Write with fwrite, fsync and rename; write(f) does the payload. */
static int atomic_write(const char *path, int (*write)(FILE *f, const void *arg),
                        const void *arg, dn_error *err)
{
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "wb");
    if (!f)
        return dn_fail(err, "%s: cannot write: %s", tmp, strerror(errno));
    int bad = write(f, arg);
    if (fflush(f) != 0 || fsync(fileno(f)) != 0)
        bad = 1;
    if (fclose(f) != 0)
        bad = 1;
    if (bad) {
        int e = errno;
        unlink(tmp);
        return dn_fail(err, "%s: write failed: %s", tmp, strerror(e));
    }
    if (rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        return dn_fail(err, "%s: cannot rename to %s: %s", tmp, path,
                       strerror(e));
    }
    return 0;
}

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

int dn_weights_save(const dn_net *net, const char *path, dn_error *err)
{
    if (dn_net_pull(net, err))
        return -1;
    return atomic_write(path, write_weights, net, err);
}

int dn_weights_load(dn_net *net, const char *path, dn_error *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return dn_fail(err, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    int32_t header[3];
    if (fstat(fileno(f), &st) != 0 || fread(header, sizeof header, 1, f) != 1) {
        fclose(f);
        return dn_fail(err, "%s: truncated header (%lld bytes)", path,
                       (long long)st.st_size);
    }
    if (header[0] > 1000 || header[1] > 1000) {
        fclose(f);
        return dn_fail(err, "%s: version %d.%d.%d (transposed layout) is not "
                       "supported", path, header[0], header[1], header[2]);
    }
    long seen_bytes = header[0] * 10 + header[1] >= 2 ? 8 : 4;
    long payload = net_saved_floats(net);
    long long expected = 12 + seen_bytes + 4LL * payload;
    if ((long long)st.st_size != expected) {
        fclose(f);
        return dn_fail(err, "%s: expected %lld bytes for %s (%ld floats in %d "
                       "layers, version %d.%d.%d), found %lld%s", path, expected,
                       net->cfg ? net->cfg->path : "this network", payload,
                       net->n, header[0], header[1], header[2],
                       (long long)st.st_size,
                       (long long)st.st_size < expected ? " (truncated?)" :
                       " (a different network?)");
    }
    uint64_t seen = 0;
    uint32_t seen32 = 0;
    int ok = seen_bytes == 8 ? fread(&seen, 8, 1, f) == 1
                             : (fread(&seen32, 4, 1, f) == 1 && ((seen = seen32), 1));
    float *buf = malloc((payload ? payload : 1) * sizeof *buf);
    if (ok)
        ok = fread(buf, sizeof(float), payload, f) == (size_t)payload;
    fclose(f);
    if (!ok) {
        free(buf);
        return dn_fail(err, "%s: read error", path);
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
 * PATH.state: "DNST", int32 version 1, int32 adam, int64 floats, then each
 * parameter's momentum buffer (and Adam second moment) in layer order. With
 * the weights (which hold seen and the batch-norm statistics) and the
 * loader's pure (seed, index) data order, this is everything a resumed run
 * needs to continue exactly as an uninterrupted one.
 */
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
    int32_t head[2] = {1, net->adam};
    int64_t n = state_floats(net);
    if (fwrite("DNST", 4, 1, f) != 1 || fwrite(head, sizeof head, 1, f) != 1 ||
        fwrite(&n, sizeof n, 1, f) != 1)
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
    if (dn_net_pull(net, err))
        return -1;
    return atomic_write(path, write_state, net, err);
}

int dn_state_load(dn_net *net, const char *path, dn_error *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return dn_fail(err, "%s: cannot open: %s", path, strerror(errno));
    char magic[4];
    int32_t head[2];
    int64_t n;
    long expected = state_floats(net);
    if (fread(magic, 4, 1, f) != 1 || memcmp(magic, "DNST", 4) ||
        fread(head, sizeof head, 1, f) != 1 || fread(&n, sizeof n, 1, f) != 1) {
        fclose(f);
        return dn_fail(err, "%s: not an optimiser state file", path);
    }
    if (head[0] != 1 || head[1] != net->adam || n != expected) {
        fclose(f);
        return dn_fail(err, "%s: state for %s with %lld floats, this network "
                       "needs %s with %ld", path, head[1] ? "adam" : "sgd",
                       (long long)n, net->adam ? "adam" : "sgd", expected);
    }
    float *buf = malloc((expected ? expected : 1) * sizeof *buf);
    size_t got = fread(buf, sizeof(float), expected, f);
    int extra = fgetc(f) != EOF;
    fclose(f);
    if (got != (size_t)expected || extra) {
        free(buf);
        return dn_fail(err, "%s: expected %ld bytes of state, found %s", path,
                       expected * 4 + 16, extra ? "more" : "fewer");
    }
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

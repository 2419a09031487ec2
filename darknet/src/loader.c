/*
 * loader.c - mini-batches from a dataset, prepared in a background thread.
 *
 * A batch is a pure function of (seed, index): epoch = index / per_epoch
 * picks the epoch's order (a Fisher-Yates shuffle seeded from (seed, epoch)),
 * position = index % per_epoch picks batch records [position * batch, ...)
 * of that order, and each record's random augmentation is drawn from
 * (seed, epoch, record). So a resumed run sees exactly the batches an
 * uninterrupted one would, whatever was prefetched.
 *
 * Double buffering: two slots, each with its own output and scratch
 * buffers, allocated and touched once. While the caller holds one slot, the
 * worker fills the other with index + 1. A request for anything else is
 * filled in the caller's thread into the slot the worker is not writing.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dn_data.h"
#include "xalloc.h"

#define PERM_TAG 0x7065726d75746521ULL

enum { SLOT_EMPTY, SLOT_FILLING, SLOT_READY };

typedef struct slot {
    float *x;       /* [batch, D] */
    float *truth;   /* [batch, classes] */
    int *labels;    /* [batch] */
    float *scratch; /* [batch, D] for the preprocessing */
    long *records;  /* [batch] */
    int *order;     /* [n] the order of order_epoch (shuffled passes) */
    long order_epoch;
    long index; /* batch held, or being filled; -1 none */
    int state;
    int valid;
} slot;

struct dn_loader {
    const dn_dataset *d;
    const dn_augment *aug;
    int batch, shuffle, train;
    long per_epoch, D;
    uint64_t seed;
    slot slots[2];
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int started, quit;
    long pending_index; /* the worker's next job, when pending_slot >= 0 */
    int pending_slot;
    int worker_slot; /* being filled by the worker; -1 idle */
    double waited;
};

static double now_seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

/* Uniform in [0, bound) by a 128-bit multiply (Lemire): bias < bound/2^64. */
static long below(dn_rng *r, long bound)
{
    return (long)(((unsigned __int128)dn_rng_u64(r) * (uint64_t)bound) >> 64);
}

static void epoch_order(uint64_t seed, long epoch, long n, int *order)
{
    dn_rng r;
    dn_rng_seed(&r, dn_hash3(seed, (uint64_t)epoch, PERM_TAG));
    for (long i = 0; i < n; i++)
        order[i] = (int)i;
    for (long i = n - 1; i > 0; i--) {
        long j = below(&r, i + 1);
        int t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
}

/* Records of batch index into records[batch] (-1 past the end); returns the
 * count. order is the epoch's order when shuffling (else unused). */
static int records_of(const dn_loader *l, long index, const int *order,
                      long *records)
{
    long n = l->d->n, position = index % l->per_epoch;
    int count = 0;
    for (int i = 0; i < l->batch; i++) {
        long k = position * l->batch + i;
        if (l->shuffle)
            records[count++] = order[k % n];
        else if (k < n)
            records[count++] = k;
    }
    for (int i = count; i < l->batch; i++)
        records[i] = -1;
    return count;
}

/* Fills s with batch index; touches nothing shared. */
static void fill(const dn_loader *l, slot *s, long index)
{
    const dn_dataset *d = l->d;
    long epoch = index / l->per_epoch;
    if (l->shuffle && s->order_epoch != epoch) {
        epoch_order(l->seed, epoch, d->n, s->order);
        s->order_epoch = epoch;
    }
    int count = records_of(l, index, s->order, s->records);
    dn_augment_apply(l->aug, d, s->records, count, l->seed, epoch, l->train,
                     s->x, s->scratch);
    memset(s->x + (size_t)count * l->D, 0,
           (size_t)(l->batch - count) * l->D * sizeof *s->x);
    memset(s->truth, 0, (size_t)l->batch * d->classes * sizeof *s->truth);
    for (int i = 0; i < l->batch; i++) {
        int label = i < count ? d->labels[s->records[i]] : -1;
        s->labels[i] = label;
        if (label >= 0)
            s->truth[(size_t)i * d->classes + label] = 1.0f;
    }
    s->valid = count;
}

static void *worker(void *arg)
{
    dn_loader *l = arg;
    pthread_mutex_lock(&l->mu);
    while (!l->quit) {
        if (l->pending_slot < 0) {
            pthread_cond_wait(&l->cv, &l->mu);
            continue;
        }
        int k = l->pending_slot;
        long index = l->pending_index;
        l->pending_slot = -1;
        l->slots[k].index = index;
        l->slots[k].state = SLOT_FILLING;
        l->worker_slot = k;
        pthread_mutex_unlock(&l->mu);
        fill(l, &l->slots[k], index);
        pthread_mutex_lock(&l->mu);
        l->slots[k].state = SLOT_READY;
        l->worker_slot = -1;
        pthread_cond_broadcast(&l->cv);
    }
    pthread_mutex_unlock(&l->mu);
    return NULL;
}

/* Aborts on out-of-memory (xalloc.h); written once now so no page fault
 * lands in a batch. */
static void *alloc_touched(size_t bytes)
{
    void *p = dn_xmalloc(bytes);
    memset(p, 0, bytes);
    return p;
}

static void slot_init(const dn_loader *l, slot *s)
{
    size_t b = (size_t)l->batch;
    s->x = alloc_touched(b * l->D * sizeof *s->x);
    s->scratch = alloc_touched(b * l->D * sizeof *s->scratch);
    s->truth = alloc_touched(b * l->d->classes * sizeof *s->truth);
    s->labels = alloc_touched(b * sizeof *s->labels);
    s->records = alloc_touched(b * sizeof *s->records);
    s->order = l->shuffle ? alloc_touched(l->d->n * sizeof *s->order) : NULL;
    s->order_epoch = -1;
    s->index = -1;
    s->state = SLOT_EMPTY;
}

static void slot_free(slot *s)
{
    free(s->x);
    free(s->scratch);
    free(s->truth);
    free(s->labels);
    free(s->records);
    free(s->order);
}

static int check_args(const dn_dataset *d, const dn_augment *a, int batch,
                      long per_epoch, dn_error *err)
{
    if (!d || d->n < 1)
        return dn_fail(err, "loader: empty dataset");
    if (d->n > 0x7fffffffL)
        return dn_fail(err, "%s: %ld records: at most 2^31-1", d->source, d->n);
    if (d->classes < 1)
        return dn_fail(err, "%s: no classes", d->source);
    if (batch < 1 || per_epoch < 1)
        return dn_fail(err, "loader: batch (%d) and batches per epoch (%ld) "
                       "must be >= 1", batch, per_epoch);
    if (a && ((a->c && a->c != d->c) || (a->h && a->h != d->h) ||
              (a->w && a->w != d->w)))
        return dn_fail(err, "%s: images are %dx%dx%d but the preprocessing "
                       "was fitted for %dx%dx%d", d->source, d->c, d->h, d->w,
                       a->c, a->h, a->w);
    return 0;
}

int dn_loader_make(const dn_dataset *d, const dn_augment *aug, int batch,
                   long per_epoch, uint64_t seed, int shuffle, int train,
                   dn_loader **out, dn_error *err)
{
    *out = NULL;
    if (check_args(d, aug, batch, per_epoch, err))
        return -1;
    dn_loader *l = dn_xcalloc(1, sizeof *l);
    l->d = d, l->aug = aug, l->batch = batch, l->per_epoch = per_epoch;
    l->seed = seed, l->shuffle = shuffle, l->train = train;
    l->D = (long)d->c * d->h * d->w;
    for (int k = 0; k < 2; k++)
        slot_init(l, &l->slots[k]);
    pthread_mutex_init(&l->mu, NULL);
    pthread_cond_init(&l->cv, NULL);
    l->worker_slot = -1;
    l->pending_index = 0; /* most runs start at batch 0 */
    l->pending_slot = 0;
    if (pthread_create(&l->thread, NULL, worker, l) != 0) {
        dn_loader_free(l);
        return dn_fail(err, "loader: cannot start the prefetch thread");
    }
    l->started = 1;
    *out = l;
    return 0;
}

/* Slot k holds index, ready; -1 if none is ready or coming. Waits for a
 * slot being filled or queued with index. Called with the lock held. */
static int wait_for(dn_loader *l, long index)
{
    for (;;) {
        int coming = l->pending_slot >= 0 && l->pending_index == index;
        for (int k = 0; k < 2; k++) {
            if (l->slots[k].index != index)
                continue;
            if (l->slots[k].state == SLOT_READY)
                return k;
            if (l->slots[k].state == SLOT_FILLING && l->worker_slot == k)
                coming = 1;
        }
        if (!coming)
            return -1;
        pthread_cond_wait(&l->cv, &l->mu);
    }
}

int dn_loader_get_ref(dn_loader *l, long index, const float **x,
                      const float **truth, const int **labels)
{
    double t0 = now_seconds();
    pthread_mutex_lock(&l->mu);
    int k = wait_for(l, index);
    if (k < 0) {
        /* not prefetched (first call, resume, random access): fill it here,
         * in the slot the worker is not writing; drop its stale queue */
        l->pending_slot = -1;
        k = l->worker_slot >= 0 ? 1 - l->worker_slot : 0;
        l->slots[k].index = index;
        l->slots[k].state = SLOT_FILLING;
        pthread_mutex_unlock(&l->mu);
        fill(l, &l->slots[k], index);
        pthread_mutex_lock(&l->mu);
        l->slots[k].state = SLOT_READY;
    }
    l->waited += now_seconds() - t0;
    /* prefetch index + 1 into the other slot unless it is there already */
    slot *next = &l->slots[1 - k];
    if (next->index != index + 1 || next->state == SLOT_EMPTY) {
        l->pending_index = index + 1;
        l->pending_slot = 1 - k;
        pthread_cond_signal(&l->cv);
    }
    pthread_mutex_unlock(&l->mu);
    slot *s = &l->slots[k];
    *x = s->x;
    *truth = s->truth;
    if (labels)
        *labels = s->labels;
    return s->valid;
}

int dn_loader_get(dn_loader *l, long index, float *x, float *truth,
                  int *labels)
{
    const float *sx, *st;
    const int *sl;
    int valid = dn_loader_get_ref(l, index, &sx, &st, &sl);
    memcpy(x, sx, (size_t)l->batch * l->D * sizeof *x);
    memcpy(truth, st, (size_t)l->batch * l->d->classes * sizeof *truth);
    if (labels)
        memcpy(labels, sl, (size_t)l->batch * sizeof *labels);
    return valid;
}

int dn_loader_batch_records(const dn_loader *l, long index, long *records)
{
    int *order = NULL;
    if (l->shuffle) {
        order = dn_xmalloc(l->d->n * sizeof *order);
        epoch_order(l->seed, index / l->per_epoch, l->d->n, order);
    }
    int count = records_of(l, index, order, records);
    free(order);
    return count;
}

double dn_loader_wait_seconds(const dn_loader *l) { return l->waited; }

void dn_loader_free(dn_loader *l)
{
    if (!l)
        return;
    if (l->started) {
        pthread_mutex_lock(&l->mu);
        l->quit = 1;
        pthread_cond_broadcast(&l->cv);
        pthread_mutex_unlock(&l->mu);
        pthread_join(l->thread, NULL);
    }
    pthread_mutex_destroy(&l->mu);
    pthread_cond_destroy(&l->cv);
    for (int k = 0; k < 2; k++)
        slot_free(&l->slots[k]);
    free(l);
}

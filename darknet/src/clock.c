/*
 * clock.c - the training clock, computed here and nowhere else.
 *
 *   batch b = seen / images_per_batch       (Darknet: seen / (batch*subdivisions))
 *   epoch e = b / batches_per_epoch         (fractional)
 *
 * Schedulers receive the clock and never recompute it. The length of a run
 * (batches per epoch and the updates in all) is derived here too, for
 * training and for `darknet lr` alike.
 */
#include <math.h>

#include "darknet.h"

dn_clock dn_clock_at(uint64_t seen, long images_per_batch,
                     long batches_per_epoch, long max_batches)
{
    dn_clock c;
    if (images_per_batch < 1)
        images_per_batch = 1;
    if (batches_per_epoch < 1)
        batches_per_epoch = 1;
    c.seen = seen;
    c.images_per_batch = images_per_batch;
    c.batch = (long)(seen / (uint64_t)images_per_batch);
    c.batches_per_epoch = batches_per_epoch;
    c.max_batches = max_batches;
    c.epoch = (double)c.batch / (double)batches_per_epoch;
    c.batch_epochs = 1.0 / (double)batches_per_epoch;
    return c;
}

/* Images the clock counts at most: seen is a uint64_t, and 2^62 leaves
 * room for one more batch past the end. */
#define MAX_IMAGES (1L << 62)

/*
 *   batches_per_epoch = max(1, floor(train_images / images_per_batch))
 *                       (Darknet's N / (batch * subdivisions): a last
 *                       partial batch does not make an update of its own)
 *   max_batches       = ceil(epochs * batches_per_epoch) when epochs > 0,
 *                       else [net] max_batches
 * The ceiling's 1e-9 keeps a product that rounding lifted just above an
 * integer (0.1 * 10 = 1.0000000000000002) on that integer.
 */
int dn_train_length(const dn_length_inputs *in, dn_run_length *out,
                    dn_error *err)
{
    const long per_batch = in->images_per_batch;
    if (per_batch < 1)
        return dn_fail(err, "a batch of %ld images: expected >= 1", per_batch);
    long per_epoch = in->batches_per_epoch;
    if (per_epoch < 1)
        per_epoch = in->train_images / per_batch > 0
                        ? in->train_images / per_batch : 1;
    /* in double first: epochs=1e30 must not overflow */
    const double batches = in->epochs > 0
        ? ceil(in->epochs * (double)per_epoch - 1e-9)
        : (double)in->max_batches;
    if (!(batches >= 1))
        return dn_fail(err, "[net] needs max_batches or epochs");
    if (batches > (double)(MAX_IMAGES / per_batch))
        return dn_fail(err, "%.4g batches (%.4g epochs of %ld) of %ld images: "
                       "more images than the clock counts", batches,
                       batches / (double)per_epoch, per_epoch, per_batch);
    out->images_per_batch = per_batch;
    out->batches_per_epoch = per_epoch;
    out->max_batches = (long)batches;
    return 0;
}

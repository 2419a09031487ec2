/*
 * clock.c - the training clock, computed here and nowhere else.
 *
 *   batch b = seen / images_per_batch       (Darknet: seen / (batch*subdivisions))
 *   epoch e = b / batches_per_epoch         (fractional)
 *
 * Schedulers receive the clock and never recompute it.
 */
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

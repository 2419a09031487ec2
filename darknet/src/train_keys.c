/*
 * train_keys.c - the trainer's [net] keys, in one table for training and
 * for the commands that only read a cfg (summary, lr): each validates
 * what training would refuse, and none reports a training key as unknown.
 */
#include "darknet.h"
#include "dn_data.h"
#include "keys.h"

const dn_key dn_train_keys[] = {
    DN_INT("epochs", "0", 0, 1L << 40,
           "epochs to train for (0: max_batches decides)"),
    DN_FLOAT("halt_loss", "0", 0, 1e30,
             "stop when the epoch's mean loss is above this (0: off)"),
    DN_INT("halt_after_epochs", "0", 0, 1L << 40,
           "halt_loss is checked only after this many epochs"),
    DN_INT("bn_sync", "0", 0, 1,
           "data-parallel training: 1 computes batch norm statistics over "
           "every process's share of the batch (0: each its own; 1 on CPU "
           "ranks only)"),
    DN_KEYS_END,
};

int dn_trainer_keys_read(dn_section *net, dn_trainer_keys *out, dn_error *err)
{
    const dn_key *t = dn_train_keys;
    return dn_key_int(net, t, "epochs", &out->epochs, err) ||
                   dn_key_double(net, t, "halt_loss", &out->halt_loss, err) ||
                   dn_key_int(net, t, "halt_after_epochs",
                              &out->halt_after_epochs, err) ||
                   dn_key_int(net, t, "bn_sync", &out->bn_sync, err)
               ? -1
               : 0;
}

int dn_trainer_keys_check(dn_section *net, dn_error *err)
{
    dn_trainer_keys keys;
    if (dn_trainer_keys_read(net, &keys, err) || dn_augment_check(net, err))
        return -1;
    return 0;
}

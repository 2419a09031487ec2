/*
 * train_keys.c - the trainer's [net] keys, in one table for training and
 * for the commands that only read a cfg (summary, lr): each validates
 * what training would refuse, and none reports a training key as unknown.
 */
#include "darknet.h"
#include "dn_data.h"

int dn_trainer_keys_read(dn_section *net, dn_trainer_keys *out, dn_error *err)
{
    return dn_sec_int(net, "epochs", 0, 0, 1L << 40, &out->epochs, err) ||
                   dn_sec_double(net, "halt_loss", 0, 0, 1e30, &out->halt_loss,
                                 err) ||
                   dn_sec_int(net, "halt_after_epochs", 0, 0, 1L << 40,
                              &out->halt_after_epochs, err) ||
                   dn_sec_int(net, "bn_sync", 0, 0, 1, &out->bn_sync, err)
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

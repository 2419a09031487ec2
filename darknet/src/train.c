/*
 * train.c - training and evaluating classifiers: the loop a reader can follow
 * top to bottom.
 *
 *   for each weight update b (until max_batches or epochs):
 *       lr = schedule(clock(seen))           one clock, computed in clock.c
 *       for each of the subdivisions:        gradient accumulation
 *           x, truth = loader(seed, index)   a pure function: exact resume
 *           forward, backward
 *           seen += mini-batch
 *       update(lr)
 *       at each epoch end: validate, log a CSV row, checkpoint, halting rule
 *
 * (train_loop, train_step and forward_backward; end_epoch.) The run's
 * length comes from dn_train_length, as `darknet lr`'s does. The rate of
 * update b is the schedule at seen = b * batch, i.e. the row `darknet lr`
 * prints for batch b. (Darknet evaluates it after incrementing seen, one
 * batch later; we keep the schedule and its plot identical.)
 *
 * The library's side of the command line: it receives options structs and
 * a parsed cfg (dn_train_args), never argv, and prints no usage.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "darknet.h"
#include "distributed.h"
#include "dn_data.h"
#include "file.h"
#include "layer_util.h"

/* The flags of dn_loader_make (shuffle, train), dn_net_forward and
 * dn_augment_apply (train), by name. */
enum { IN_ORDER = 0, SHUFFLED = 1 };
enum { EVALUATING = 0, TRAINING = 1 };

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

/* Everything a run holds; freed by session_free. */
typedef struct session {
    dn_cfg *data;
    dn_section *data_sec;
    dn_net *net;
    dn_dataset *train, *valid;
    dn_augment *aug;
    dn_loader *train_loader, *valid_loader;
    int *labels;
    /* the trainer's [net] keys and the .data file's top=, read once */
    long epochs, halt_after, top;
    double halt_loss;
    char base[256];   /* cfg basename without extension */
    char backup[4096];
    int saved_last;   /* <base>_last.weights was saved by this run */
    const char *start_weights; /* the weights the run started from */
    dn_dist *dist;    /* training across processes, or NULL */
} session;

static void session_free(session *s)
{
    dn_loader_free(s->train_loader);
    dn_loader_free(s->valid_loader);
    dn_augment_free(s->aug);
    dn_dataset_free(s->train);
    dn_dataset_free(s->valid);
    dn_net_free(s->net);
    dn_cfg_free(s->data);
    free(s->labels);
}

static int cfg_basename(const char *path, char *out, size_t n, dn_error *err)
{
    const char *b = strrchr(path, '/');
    b = b ? b + 1 : path;
    if (dn_path_format(out, n, err, "%s", b))
        return -1;
    char *dot = strrchr(out, '.');
    if (dot && dot != out)
        *dot = '\0';
    return 0;
}

static int mkdir_p(const char *dir, dn_error *err)
{
    char tmp[4096];
    if (dn_path_format(tmp, sizeof tmp, err, "%s", dir))
        return -1;
    for (char *p = tmp + 1; *p; p++)
        if (*p == '/') {
            *p = '\0';
            mkdir(tmp, 0777);
            *p = '/';
        }
    if (mkdir(tmp, 0777) != 0 && errno != EEXIST)
        return dn_fail(err, "%s: cannot create directory: %s", dir,
                       strerror(errno));
    return 0;
}

/* What a command opens: the model (see dn_train_args) and what it needs of
 * the data. */
typedef struct session_options {
    const char *data_path;
    const dn_cfg *cfg;
    int strict;
    int need_train;     /* open the training set (augmentation fits on it) */
    int need_valid;     /* the validation set must exist */
    int batch_override; /* images per forward pass; 0: the cfg's batch */
    dn_dist *dist;      /* training across processes, or NULL */
} session_options;

/*
 * The .data file's keys and datasets, checked against the network's planned
 * shape (input c, h, w and truths) before its tensors are allocated.
 */
static int open_data(session *s, const session_options *o, const dn_net *plan,
                     dn_error *err)
{
    const char *cfg_path = o->cfg->path;
    long classes;
    const char *backup;
    if (dn_key_int_def(s->data_sec, dn_data_keys, "classes", 0, &classes,
                       err) ||
        dn_key_string(s->data_sec, dn_data_keys, "backup", &backup, err))
        return -1;
    if (classes != plan->truths)
        return dn_sec_fail(s->data_sec, "classes", err,
                           "%ld classes, but the network's last layer (%s) has "
                           "%ld outputs", classes, cfg_path, plan->truths);
    if (dn_path_format(s->backup, sizeof s->backup, err, "%s", backup) ||
        cfg_basename(cfg_path, s->base, sizeof s->base, err))
        return -1;
    /* the training set is opened whenever preprocessing may need fitting */
    if ((o->need_train || dn_sec_has(s->data_sec, "train")) &&
        dn_dataset_open(s->data_sec, "train", plan->c, plan->h, plan->w,
                        &s->train, err))
        return -1;
    if ((o->need_valid || dn_sec_has(s->data_sec, "valid")) &&
        dn_dataset_open(s->data_sec, "valid", plan->c, plan->h, plan->w,
                        &s->valid, err))
        return -1;
    return 0;
}

/* The network from a copy of the caller's cfg, planned first: the data are
 * checked against it before its tensors are allocated. */
static int open_network(session *s, const session_options *o, dn_error *err)
{
    dn_net_options opt = {.batch_override = o->batch_override};
    dn_cfg *cfg = dn_cfg_clone(o->cfg);
    dn_net *plan;
    if (dn_net_plan(cfg, &opt, &plan, err)) {
        dn_cfg_free(cfg);
        return -1;
    }
    const int share = dn_dist_check_batch(o->dist, plan, o->cfg->path, err);
    int rc = share < 0 ? -1 : open_data(s, o, plan, err);
    plan->cfg = NULL; /* the cfg is the network's below */
    dn_net_free(plan);
    if (share > 0) /* this process's share of every forward batch */
        opt.batch_override = share;
    if (rc || dn_net_make(cfg, &opt, &s->net, err)) {
        dn_cfg_free(cfg);
        return -1;
    }
    return 0;
}

/*
 * The keys read beyond the network's: preprocessing, the trainer's [net]
 * keys and the .data file's top=, all read before the unused-key check so
 * that it knows them.
 */
static int read_keys(session *s, int strict, dn_error *err)
{
    dn_net *net = s->net;
    dn_section *net_section = &net->cfg->sections[0];
    dn_trainer_keys keys;
    if (dn_augment_parse(net_section, s->train, &s->aug, err) ||
        dn_trainer_keys_read(net_section, &keys, err) ||
        dn_key_int(s->data_sec, dn_data_keys, "top", &s->top, err))
        return -1;
    s->epochs = keys.epochs;
    s->halt_loss = keys.halt_loss;
    s->halt_after = keys.halt_after_epochs;
    if (s->top > net->truths)
        s->top = net->truths;
    dn_key_kv(s->data_sec, dn_data_keys, "labels");
    dn_key_kv(s->data_sec, dn_data_keys, "names");
    if (dn_cfg_check_unused(net->cfg, strict, stderr, err) ||
        dn_cfg_check_unused(s->data, strict, stderr, err))
        return -1;
    return 0;
}

/* The data description, the network, the datasets and preprocessing. */
static int session_open(session *s, const session_options *o, dn_error *err)
{
    memset(s, 0, sizeof *s);
    s->dist = o->dist;
    if (dn_cfg_load_flat(o->data_path, &s->data, err))
        return -1;
    s->data_sec = &s->data->sections[0];
    if (open_network(s, o, err) || read_keys(s, o->strict, err))
        return -1;
    s->labels = calloc(s->net->batch, sizeof *s->labels);
    return 0;
}

/* Top-1 correct count and whether label is in the top k of row p. A NaN
 * score anywhere in the row ranks the image wrong (NaN compares false,
 * which would rank it first). */
static void rank_of(const float *p, long n, int label, int k, int *top1,
                    int *topk)
{
    long higher = 0;
    for (long j = 0; j < n; j++) {
        if (isnan(p[j])) {
            higher = n;
            break;
        }
        if (p[j] > p[label] || (p[j] == p[label] && j < label))
            higher++;
    }
    *top1 = higher == 0;
    *topk = higher < k;
}

typedef struct eval_acc {
    long images, top1, topk;
    long nonfinite; /* images whose scores were not all finite */
    double loss;
} eval_acc;

static int evaluate(session *s, int k, eval_acc *acc, dn_error *err)
{
    dn_net *net = s->net;
    memset(acc, 0, sizeof *acc);
    if (!s->valid_loader) {
        long per_epoch = (s->valid->n + net->batch - 1) / net->batch;
        if (dn_loader_make(s->valid, s->aug, net->batch, per_epoch, net->seed,
                           IN_ORDER, EVALUATING, &s->valid_loader, err))
            return -1;
    }
    long batches = (s->valid->n + net->batch - 1) / net->batch;
    dn_layer *out = dn_net_output_layer(net);
    for (long b = 0; b < batches; b++) {
        int count = dn_loader_get(s->valid_loader, b, net->input_data,
                                  net->truth, s->labels);
        dn_net_forward(net, EVALUATING);
        if (dn_net_check(net, err))
            return -1;
        for (int i = 0; i < count; i++) {
            int t1, tk;
            const float *row = out->output + (long)i * out->outputs;
            rank_of(row, out->outputs, s->labels[i], k, &t1, &tk);
            acc->top1 += t1;
            acc->topk += tk;
            float sum = 0;
            for (long j = 0; j < out->outputs; j++)
                sum += row[j] * 0.0f;
            acc->nonfinite += sum != 0;
        }
        acc->images += count;
        acc->loss += dn_net_cost(net);
    }
    return 0;
}

/* Where a stopped run can resume from: a checkpoint that exists and is
 * finite (saving refuses anything else). */
static void last_good(const session *s, const char *weights, char *buf,
                      size_t n)
{
    if (s->saved_last)
        snprintf(buf, n, "the last good checkpoint is %s/%s_last.weights",
                 s->backup, s->base);
    else if (weights)
        snprintf(buf, n, "no checkpoint was saved yet; %s, the weights it "
                 "started from, is unchanged", weights);
    else
        snprintf(buf, n, "no checkpoint was saved yet");
}

/* <base>_<suffix>.weights and its .state, saved as one checkpoint */
static int checkpoint(session *s, const char *suffix, dn_error *err)
{
    char path[4096];
    if (!dn_dist_is_writer(s->dist)) /* rank 0 writes */
        return 0;
    if (dn_path_format(path, sizeof path, err, "%s/%s_%s.weights", s->backup,
                       s->base, suffix) ||
        dn_checkpoint_save(s->net, path, err)) {
        char good[4600];
        last_good(s, s->start_weights, good, sizeof good);
        size_t used = strlen(err->msg);
        snprintf(err->msg + used, sizeof err->msg - used, "; %s", good);
        return -1;
    }
    s->saved_last |= strcmp(suffix, "last") == 0;
    return 0;
}


/* The CSV log, holding the rows of the epochs done (train_log.c). */
static FILE *open_log(session *s, long epochs_done, dn_error *err)
{
    char path[4096];
    if (dn_path_format(path, sizeof path, err, "%s/%s.log.csv", s->backup,
                       s->base))
        return NULL;
    return dn_train_log_open(path, "epoch,batches,images,mean_lr,train_loss,"
                             "train_top1,valid_top1,valid_loss,seconds",
                             epochs_done, err);
}

/* What one epoch's updates added up to. */
typedef struct epoch_acc {
    long batches, images, correct;
    double lr_sum, loss_sum, t0;
} epoch_acc;

/* A training run in progress: its session and what the loop carries. */
typedef struct run {
    session s;
    const dn_train_args *args;
    FILE *out, *log;
    dn_run_length length;
    double t_start;     /* when the first update began */
    double avg_loss;    /* Darknet's running average; < 0 before the first */
    int warned_rate;    /* an implausible rate is warned about once */
    epoch_acc epoch;
    dn_dist *dist;      /* training across processes, or NULL */
    long forward_batch; /* images of a forward pass over every process */
} run;

/* err = "<what>: training stopped; <where the run can resume from>" */
static int training_stopped(const run *r, const char *what, dn_error *err)
{
    char good[4600];
    last_good(&r->s, r->s.start_weights, good, sizeof good);
    return dn_fail(err, "%s: training stopped; %s", what, good);
}

/* The starting weights (a checkpoint's optimiser state too, unless -clear)
 * and the devices; on a device the weights stay there. */
static int load_start(run *r, dn_error *err)
{
    const dn_train_args *a = r->args;
    dn_net *net = r->s.net;
    r->s.start_weights = a->weights;
    if (a->weights) {
        int with_state;
        if (dn_checkpoint_load(net, a->weights, !a->clear, &with_state, err))
            return -1;
        if (a->clear)
            net->seen = 0;
    }
    return dn_net_use_devices(net, &a->devices, err) ||
                   dn_dist_start(r->dist, net, r->out, err)
               ? -1
               : 0;
}

/* Batches per epoch and the updates of the run (dn_train_length), errors
 * naming the cfg. */
static int derive_length(run *r, dn_error *err)
{
    const dn_net *net = r->s.net;
    const dn_length_inputs inputs = {
        .train_images = r->s.train->n,
        .images_per_batch = net->images_per_batch,
        .epochs = (double)r->s.epochs, .max_batches = net->max_batches};
    if (dn_train_length(&inputs, &r->length, err) == 0)
        return 0;
    char why[DN_ERROR_MAX];
    snprintf(why, sizeof why, "%s", err->msg);
    return dn_fail(err, "%s: %s", r->args->cfg->path, why);
}

/* The first lines of the output: the run, the data pipeline, the network. */
static void print_banner(const run *r)
{
    const dn_net *net = r->s.net;
    const dn_run_length *n = &r->length;
    fprintf(r->out, "%s: %ld training images, batch %ld (%d x %d), %ld "
            "batches per epoch, %ld batches (%.2f epochs), policy %s, on %s\n",
            r->args->cfg->path, r->s.train->n, n->images_per_batch,
            (int)r->forward_batch, net->subdivisions, n->batches_per_epoch, n->max_batches,
            (double)n->max_batches / n->batches_per_epoch,
            dn_schedule_policy(net->schedule), dn_net_device_name(net));
    char pipeline[256];
    dn_augment_describe(r->s.aug, pipeline, sizeof pipeline);
    fprintf(r->out, "preprocessing and augmentation: %s\n", pipeline);
    dn_net_summary(net, r->out);
    fflush(r->out);
}

/* Everything before the first update (r->dist is set). */
static int run_open(run *r, const dn_train_args *a, dn_error *err)
{
    r->args = a;
    r->out = dn_dist_out(r->dist, a->out ? a->out : stdout);
    r->avg_loss = -1;
    const session_options open = {.data_path = a->data_path, .cfg = a->cfg,
                                  .strict = a->strict, .need_train = 1,
                                  .dist = r->dist};
    if (session_open(&r->s, &open, err))
        return -1;
    session *s = &r->s;
    dn_net *net = s->net;
    if ((a->backup && dn_path_format(s->backup, sizeof s->backup, err, "%s",
                                     a->backup)) ||
        mkdir_p(s->backup, err) || load_start(r, err) ||
        derive_length(r, err))
        return -1;
    const long per_epoch = r->length.batches_per_epoch;
    r->forward_batch = dn_dist_forward_batch(r->dist, net);
    if (dn_loader_make(s->train, s->aug, (int)r->forward_batch,
                       per_epoch * net->subdivisions, net->seed, SHUFFLED,
                       TRAINING, &s->train_loader, err))
        return -1;
    long epochs_done =
        (long)(net->seen / (uint64_t)r->length.images_per_batch) / per_epoch;
    if (dn_dist_is_writer(r->dist) && /* rank 0 logs */
        !(r->log = open_log(s, epochs_done, err)))
        return -1;
    print_banner(r);
    r->t_start = r->epoch.t0 = now();
    return 0;
}

static void run_close(run *r)
{
    if (r->log)
        fclose(r->log);
    session_free(&r->s);
}

/* Forward and backward over the subdivisions of one batch (gradients
 * accumulate; across processes, over this one's share of each forward
 * batch); returns the summed loss, *correct the top-1 hits. */
static double forward_backward(run *r, long *correct)
{
    dn_net *net = r->s.net;
    const dn_layer *last = dn_net_output_layer(net);
    double loss = 0;
    *correct = 0;
    for (int sub = 0; sub < net->subdivisions; sub++) {
        long index = (long)(net->seen / (uint64_t)r->forward_batch);
        dn_dist_take_share(r->dist, r->s.train_loader, index, net,
                           r->s.labels);
        dn_net_forward(net, TRAINING);
        dn_net_backward(net);
        loss += dn_net_cost(net);
        for (int i = 0; i < net->batch; i++) {
            int top1, topk;
            rank_of(last->output + (long)i * last->outputs, last->outputs,
                    r->s.labels[i], 1, &top1, &topk);
            *correct += top1;
        }
        net->seen += (uint64_t)r->forward_batch;
    }
    return loss;
}

/* One weight update at clock: its rate, the gradients, the update. *lr and
 * *loss (mean per image) are set; a non-finite rate, loss or weight stops
 * training with where it can resume from. */
static int train_step(run *r, const dn_clock *clock, double *lr, double *loss,
                      dn_error *err)
{
    dn_net *net = r->s.net;
    char what[DN_ERROR_MAX + 100];
    int rate = dn_schedule_rate_checked(net->schedule, clock, lr, err);
    if (rate < 0) {
        snprintf(what, sizeof what, "%s", err->msg);
        return training_stopped(r, what, err);
    }
    if (rate > 0 && !r->warned_rate++)
        fprintf(stderr, "warning: %s\n", err->msg);
    long correct;
    *loss = forward_backward(r, &correct);
    if (dn_net_check(net, err) || /* a device error, before its NaNs */
        dn_dist_all_reduce_gradients(r->dist, net, loss, &correct, err))
        return -1;
    r->epoch.correct += correct;
    *loss /= (double)r->length.images_per_batch;
    if (!isfinite(*loss)) {
        snprintf(what, sizeof what, "loss is %f at batch %ld (lr %g)", *loss,
                 clock->batch, *lr);
        return training_stopped(r, what, err);
    }
    dn_net_update(net, *lr);
    /* a NaN can hide behind a ReLU and never reach the loss: the weights
     * themselves (device nets: at each checkpoint) */
    dn_error why;
    if (dn_net_check_weights(net, &why)) {
        snprintf(what, sizeof what, "after the update of batch %ld (lr %g): "
                 "%s", clock->batch, *lr, why.msg);
        return training_stopped(r, what, err);
    }
    return 0;
}

/* The update's line of progress (every print_every batches and the last),
 * and its share of the epoch's means. batch counts from 1. */
static void account_update(run *r, long batch, double lr, double loss,
                           double seconds)
{
    const dn_train_args *a = r->args;
    const long every = a->print_every > 0 ? a->print_every : 1;
    if (a->on_update)
        a->on_update(a->on_update_ctx, batch - 1, lr, loss);
    r->avg_loss = r->avg_loss < 0 ? loss : r->avg_loss * 0.9 + loss * 0.1;
    r->epoch.batches++;
    r->epoch.images += r->length.images_per_batch;
    r->epoch.lr_sum += lr;
    r->epoch.loss_sum += loss;
    if (batch % every == 0 || batch == r->length.max_batches)
        fprintf(r->out, "%ld, %.3f: %f, %f avg, %g rate, %lf seconds, %llu "
                "images\n", batch,
                (double)batch / r->length.batches_per_epoch, loss, r->avg_loss,
                lr, seconds, (unsigned long long)r->s.net->seen);
}

/* The epoch's CSV row and line of output; valid: its validation, if any. */
static int report_epoch(run *r, long epoch, const eval_acc *valid,
                        dn_error *err)
{
    const epoch_acc *ep = &r->epoch;
    const double mean_loss = ep->loss_sum / ep->batches;
    const double mean_lr = ep->lr_sum / ep->batches;
    const double train_top1 = (double)ep->correct / ep->images;
    const double seconds = now() - ep->t0;
    char valid_top1[32] = "", valid_loss[32] = "";
    if (valid->images) {
        snprintf(valid_top1, sizeof valid_top1, "%.4f",
                 (double)valid->top1 / valid->images);
        snprintf(valid_loss, sizeof valid_loss, "%.6f",
                 valid->loss / valid->images);
    }
    if (r->log && /* rank 0 logs */
        dn_train_log_row(r->log, err, "%ld,%ld,%ld,%.9g,%.6f,%.4f,%s,%s,%.2f\n",
                         epoch, ep->batches, ep->images, mean_lr, mean_loss,
                         train_top1, valid_top1, valid_loss, seconds))
        return -1;
    fprintf(r->out, "epoch %ld: train loss %.4f, train top-1 %.4f%s%s, mean "
            "lr %g, %.1f s (data wait %.1f s)\n", epoch, mean_loss, train_top1,
            valid->images ? ", valid top-1 " : "", valid_top1, mean_lr,
            seconds, dn_loader_wait_seconds(r->s.train_loader));
    fflush(r->out);
    return 0;
}

/*
 * The end of an epoch (batch: the updates so far): validate, log its row,
 * checkpoint, and apply the paper's halting rule. Returns 1 when training
 * halts, 0 when it goes on, -1 on error.
 */
static int end_epoch(run *r, long batch, dn_error *err)
{
    session *s = &r->s;
    const long per_epoch = r->length.batches_per_epoch;
    const long epoch = (batch + per_epoch - 1) / per_epoch;
    eval_acc valid = {0};
    if ((s->valid && dn_dist_is_writer(r->dist) && /* rank 0 validates */
         evaluate(s, 1, &valid, err)) ||
        report_epoch(r, epoch, &valid, err) || checkpoint(s, "last", err))
        return -1;
    if (r->args->save_every_epoch) {
        char suffix[32];
        snprintf(suffix, sizeof suffix, "%ld", epoch);
        if (checkpoint(s, suffix, err))
            return -1;
    }
    /* The paper's rule, "halt iff T_t < T_n and loss > 4.5": epochs count
     * from 1, so T_t = halt_after_epochs = 2 first checks the end of
     * epoch 3. */
    const double mean_loss = r->epoch.loss_sum / r->epoch.batches;
    if (s->halt_loss > 0 && epoch > s->halt_after &&
        mean_loss > s->halt_loss) {
        fprintf(r->out, "halting: epoch %ld mean loss %.4f > halt_loss %g "
                "(after epoch %ld): saving %s/%s_halt.weights\n", epoch,
                mean_loss, s->halt_loss, s->halt_after, s->backup, s->base);
        return 1;
    }
    memset(&r->epoch, 0, sizeof r->epoch);
    r->epoch.t0 = now();
    return 0;
}

/* Updates until the run's length, a stop request or the halting rule. */
static int train_loop(run *r, dn_train_outcome *outcome, dn_error *err)
{
    const dn_run_length *n = &r->length;
    dn_net *net = r->s.net;
    *outcome = DN_TRAIN_DONE;
    for (;;) {
        dn_clock clock = dn_clock_at(net->seen, n->images_per_batch,
                                     n->batches_per_epoch, n->max_batches);
        if (clock.batch >= n->max_batches)
            return 0;
        int stop; /* any process asked to stop: every one stops */
        if (dn_dist_batch_begin(r->dist, r->args->stop && *r->args->stop,
                                &stop, err))
            return -1;
        if (stop) {
            *outcome = DN_TRAIN_INTERRUPTED;
            fprintf(r->out, "interrupted at batch %ld: saving "
                    "%s/%s_last.weights\n", clock.batch, r->s.backup,
                    r->s.base);
            return 0;
        }
        const double t0 = now();
        double lr = 0, loss = 0;
        if (train_step(r, &clock, &lr, &loss, err))
            return -1;
        const long batch = clock.batch + 1;
        account_update(r, batch, lr, loss, now() - t0);
        if (batch % n->batches_per_epoch != 0 && batch != n->max_batches)
            continue;
        int halt = end_epoch(r, batch, err);
        if (halt < 0)
            return -1;
        if (halt) {
            *outcome = DN_TRAIN_HALTED;
            return 0;
        }
    }
}

int dn_train_classifier(const dn_train_args *a, dn_train_outcome *outcome,
                        dn_error *err)
{
    run r;
    memset(&r, 0, sizeof r);
    int rc = -1;
    if (dn_dist_make(a->comm, &r.dist, err) || run_open(&r, a, err) ||
        train_loop(&r, outcome, err))
        goto done;
    const char *suffix = *outcome == DN_TRAIN_DONE ? "final"
                         : *outcome == DN_TRAIN_HALTED ? "halt" : "last";
    if (checkpoint(&r.s, suffix, err))
        goto done;
    fprintf(r.out, "saved %s/%s_%s.weights after %.1f s\n", r.s.backup,
            r.s.base, suffix, now() - r.t_start);
    rc = 0;
done:
    rc = dn_dist_finish(r.dist, rc, r.out ? r.out : stdout, err);
    run_close(&r);
    dn_dist_free(r.dist);
    return rc;
}

int dn_eval_classifier(const dn_eval_args *a, dn_eval_result *res,
                       dn_error *err)
{
    session s;
    int rc = -1;
    const session_options open = {.data_path = a->data_path, .cfg = a->cfg,
                                  .strict = a->strict, .need_valid = 1};
    if (session_open(&s, &open, err))
        goto done;
    if ((a->weights && dn_weights_load(s.net, a->weights, err)) ||
        dn_net_use_devices(s.net, &a->devices, err))
        goto done;
    const long top = s.top;
    eval_acc acc;
    if (evaluate(&s, (int)top, &acc, err))
        goto done;
    res->images = acc.images;
    res->k = (int)top;
    res->top1 = acc.images ? (double)acc.top1 / acc.images : 0;
    res->topk = acc.images ? (double)acc.topk / acc.images : 0;
    res->loss = acc.images ? acc.loss / acc.images : 0;
    res->nonfinite = acc.nonfinite;
    rc = 0;
done:
    session_free(&s);
    return rc;
}

/* Load one image (OpenCV) or one valid record into a 1-image dataset. */
static int predict_input(session *s, const dn_predict_args *p, dn_dataset **one,
                         dn_error *err)
{
    dn_net *net = s->net;
    *one = NULL;
    if (p->image) {
        dn_dataset *d = dn_dataset_alloc(1, net->c, net->h, net->w,
                                         (int)net->truths, p->image);
        char msg[512];
        if (dn_image_read_u8(p->image, net->c, net->h, net->w, d->pixels, msg,
                             sizeof msg)) {
            dn_dataset_free(d);
            return dn_fail(err, "%s", msg);
        }
        *one = d;
        return 0;
    }
    if (!s->valid)
        return dn_fail(err, "%s: -index needs a valid= set", p->data_path);
    if (p->index >= s->valid->n)
        return dn_fail(err, "-index %ld: the valid set has %ld records",
                       p->index, s->valid->n);
    dn_dataset *d = dn_dataset_alloc(1, s->valid->c, s->valid->h, s->valid->w,
                                     s->valid->classes, s->valid->source);
    long size = (long)d->c * d->h * d->w;
    memcpy(d->pixels, s->valid->pixels + p->index * size, size);
    d->labels[0] = s->valid->labels[p->index];
    *one = d;
    return 0;
}

/* The top classes of prob [classes], best first: "93.20%: label" (or the
 * class number without names). */
static void print_top(FILE *out, const float *prob, long classes, long top,
                      char **names)
{
    int *used = calloc(classes, sizeof *used);
    for (long k = 0; k < top; k++) {
        long best = -1;
        for (long j = 0; j < classes; j++)
            if (!used[j] && (best < 0 || prob[j] > prob[best]))
                best = j;
        used[best] = 1;
        if (names)
            fprintf(out, "%5.2f%%: %s\n", 100.0 * prob[best], names[best]);
        else
            fprintf(out, "%5.2f%%: %ld\n", 100.0 * prob[best], best);
    }
    free(used);
}

int dn_predict_classifier(const dn_predict_args *p, FILE *out, dn_error *err)
{
    session s;
    dn_dataset *one = NULL;
    float *scratch = NULL;
    int rc = -1;
    const session_options open = {.data_path = p->data_path, .cfg = p->cfg,
                                  .strict = p->strict,
                                  .need_valid = p->index >= 0,
                                  .batch_override = 1};
    if (session_open(&s, &open, err))
        goto done;
    dn_net *net = s.net;
    if (dn_weights_load(net, p->weights, err) ||
        dn_net_use_devices(net, &p->devices, err) ||
        predict_input(&s, p, &one, err))
        goto done;
    long top = p->top > 0 ? p->top : s.top;
    if (top > net->truths)
        top = net->truths;
    double t0 = now();
    long record = 0;
    scratch = dn_calloc_floats(net->inputs);
    const long epoch = 0;
    dn_augment_apply(s.aug, one, &record, 1, net->seed, epoch, EVALUATING,
                     net->input_data, scratch);
    dn_net_forward(net, EVALUATING);
    if (dn_net_check(net, err))
        goto done;
    const float *prob = dn_net_output_layer(net)->output;
    if (p->image)
        fprintf(out, "%s: Predicted in %f seconds.\n", p->image, now() - t0);
    else
        fprintf(out, "valid record %ld (label %s): Predicted in %f seconds.\n",
                p->index, s.valid->names ? s.valid->names[one->labels[0]] : "?",
                now() - t0);
    print_top(out, prob, net->truths, top,
              s.train ? s.train->names : s.valid ? s.valid->names : NULL);
    rc = 0;
done:
    free(scratch);
    dn_dataset_free(one);
    session_free(&s);
    return rc;
}

int dn_predict_check(const dn_predict_args *p, dn_error *err)
{
    session s;
    int rc = -1;
    const session_options open = {.data_path = p->data_path, .cfg = p->cfg,
                                  .strict = p->strict, .batch_override = 1};
    if (!session_open(&s, &open, err) &&
        !dn_weights_load(s.net, p->weights, err))
        rc = 0;
    session_free(&s);
    return rc;
}

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
 * The rate of update b is the schedule at seen = b * batch, i.e. the row
 * `darknet lr` prints for batch b. (Darknet evaluates it after incrementing
 * seen, one batch later; we keep the schedule and its plot identical.)
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "cli.h"
#include "darknet.h"
#include "distributed.h"
#include "dn_data.h"
#include "file.h"
#include "layer_util.h"

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

/*
 * Load the data description, the network (with -set/-overlay), the datasets
 * and preprocessing. need_train: open the training set (augmentation fits on
 * it); need_valid: the validation set must exist.
 */
static int session_open(session *s, const char *data_path, const char *cfg_path,
                        int argc, char **argv, int need_train, int need_valid,
                        int batch_override, dn_dist *dist, dn_error *err)
{
    memset(s, 0, sizeof *s);
    s->dist = dist;
    int strict = 0;
    dn_cfg *cfg;
    if (dn_cfg_load_flat(data_path, &s->data, err))
        return -1;
    s->data_sec = &s->data->sections[0];
    if (dn_cli_load_cfg(cfg_path, argc, argv, &cfg, &strict, err))
        return -1;
    /* the network planned first: the .data file and the datasets are
     * checked against its shape before its tensors are allocated */
    dn_net_options opt = {.batch_override = batch_override};
    dn_net *plan;
    if (dn_net_plan(cfg, &opt, &plan, err)) {
        dn_cfg_free(cfg);
        return -1;
    }
    const int c = plan->c, h = plan->h, w = plan->w;
    const long truths = plan->truths;
    const int share = dn_dist_check_batch(dist, plan, cfg_path, err);
    plan->cfg = NULL;
    dn_net_free(plan);
    if (share < 0) {
        dn_cfg_free(cfg);
        return -1;
    }
    if (share > 0) /* this process's share of every forward batch */
        opt.batch_override = share;
    long classes;
    const char *backup;
    int rc = 0;
    if (dn_sec_int(s->data_sec, "classes", 0, 1, 1 << 20, &classes, err) ||
        dn_sec_string(s->data_sec, "backup", "backup", &backup, err))
        rc = -1;
    else if (classes != truths)
        rc = dn_sec_fail(s->data_sec, "classes", err,
                         "%ld classes, but the network's last layer (%s) has "
                         "%ld outputs", classes, cfg_path, truths);
    else if (dn_path_format(s->backup, sizeof s->backup, err, "%s", backup) ||
             cfg_basename(cfg_path, s->base, sizeof s->base, err))
        rc = -1;
    /* the training set is opened whenever preprocessing may need fitting */
    else if ((need_train || dn_sec_has(s->data_sec, "train")) &&
             dn_dataset_open(s->data_sec, "train", c, h, w, &s->train, err))
        rc = -1;
    else if ((need_valid || dn_sec_has(s->data_sec, "valid")) &&
             dn_dataset_open(s->data_sec, "valid", c, h, w, &s->valid, err))
        rc = -1;
    if (rc || dn_net_make(cfg, &opt, &s->net, err)) {
        dn_cfg_free(cfg);
        return -1;
    }
    dn_net *net = s->net;
    if (dn_augment_parse(&net->cfg->sections[0], s->train, &s->aug, err))
        return -1;
    /* read before the unused-key check, so that it knows them */
    dn_section *ns = &net->cfg->sections[0];
    dn_trainer_keys keys;
    if (dn_trainer_keys_read(ns, &keys, err) ||
        dn_sec_int(s->data_sec, "top", 5, 1, 1 << 20, &s->top, err))
        return -1;
    s->epochs = keys.epochs;
    s->halt_loss = keys.halt_loss;
    s->halt_after = keys.halt_after_epochs;
    if (s->top > net->truths)
        s->top = net->truths;
    dn_sec_kv(s->data_sec, "labels");
    dn_sec_kv(s->data_sec, "names");
    if (dn_cfg_check_unused(net->cfg, strict, stderr, err) ||
        dn_cfg_check_unused(s->data, strict, stderr, err))
        return -1;
    s->labels = calloc(net->batch, sizeof *s->labels);
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
                           0, 0, &s->valid_loader, err))
            return -1;
    }
    long batches = (s->valid->n + net->batch - 1) / net->batch;
    dn_layer *out = dn_net_output_layer(net);
    for (long b = 0; b < batches; b++) {
        int count = dn_loader_get(s->valid_loader, b, net->input_data,
                                  net->truth, s->labels);
        dn_net_forward(net, 0);
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
    if (!dn_dist_is_writer(s->dist))
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


typedef struct epoch_acc {
    long batches, images, correct;
    double lr_sum, loss_sum, t0;
} epoch_acc;

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

int dn_train_classifier(const dn_train_args *a, dn_train_outcome *outcome,
                        dn_error *err)
{
    session s;
    dn_dist *dist = NULL;
    FILE *out = a->out ? a->out : stdout;
    FILE *log = NULL;
    int rc = -1;
    memset(&s, 0, sizeof s); /* session_free after a failed dn_dist_make */
    if (dn_dist_make(a->comm, &dist, err))
        goto done;
    out = dn_dist_out(dist, out);
    if (session_open(&s, a->data_path, a->cfg_path, a->argc, a->argv, 1, 0, 0,
                     dist, err))
        goto done;
    dn_net *net = s.net;
    if ((a->backup && dn_path_format(s.backup, sizeof s.backup, err, "%s",
                                     a->backup)) ||
        mkdir_p(s.backup, err))
        goto done;
    s.start_weights = a->weights;
    if (a->weights) {
        int with_state;
        if (dn_checkpoint_load(net, a->weights, !a->clear, &with_state, err))
            goto done;
        if (a->clear)
            net->seen = 0;
    }
    /* on a device the weights stay there; the loop below is the same */
    if (dn_net_use_devices(net, &a->devices, err) ||
        dn_dist_start(dist, net, out, err))
        goto done;
    const long epochs = s.epochs, halt_after = s.halt_after;
    const double halt_loss = s.halt_loss;
    const long ipb = net->images_per_batch;
    const long bpe = s.train->n / ipb > 0 ? s.train->n / ipb : 1;
    if (epochs > 0 && epochs > (1L << 62) / ipb / bpe) {
        rc = dn_fail(err, "%s: [net] epochs=%ld of %ld batches of %ld images: "
                     "more images than the clock counts", a->cfg_path, epochs,
                     bpe, ipb);
        goto done;
    }
    long max_batches = epochs > 0 ? epochs * bpe : net->max_batches;
    if (max_batches <= 0) {
        rc = dn_fail(err, "%s: [net] needs max_batches or epochs", a->cfg_path);
        goto done;
    }
    /* the images of a forward pass over every process */
    const long forward_batch = dn_dist_forward_batch(dist, net);
    if (dn_loader_make(s.train, s.aug, (int)forward_batch,
                       bpe * net->subdivisions, net->seed, 1, 1,
                       &s.train_loader, err))
        goto done;
    if (dn_dist_is_writer(dist) &&
        !(log = open_log(&s, (long)(net->seen / (uint64_t)ipb) / bpe, err)))
        goto done;

    fprintf(out, "%s: %ld training images, batch %ld (%d x %d), %ld batches "
            "per epoch, %ld batches (%.2f epochs), policy %s, on %s\n",
            a->cfg_path, s.train->n, ipb, (int)forward_batch, net->subdivisions, bpe,
            max_batches, (double)max_batches / bpe,
            dn_schedule_policy(net->schedule), dn_net_device_name(net));
    char pipeline[256];
    dn_augment_describe(s.aug, pipeline, sizeof pipeline);
    fprintf(out, "preprocessing and augmentation: %s\n", pipeline);
    dn_net_summary(net, out);
    fflush(out);

    const int every = a->print_every > 0 ? a->print_every : 1;
    const double t_start = now();
    double avg_loss = -1;
    epoch_acc ep = {.t0 = now()};
    dn_layer *last = dn_net_output_layer(net);
    int warned_rate = 0;
    *outcome = DN_TRAIN_DONE;
    for (;;) {
        dn_clock clock = dn_clock_at(net->seen, ipb, bpe, max_batches);
        if (clock.batch >= max_batches)
            break;
        int stop;
        if (dn_dist_batch_begin(dist, a->stop && *a->stop, &stop, err))
            goto done;
        if (stop) {
            *outcome = DN_TRAIN_INTERRUPTED;
            fprintf(out, "interrupted at batch %ld: saving %s/%s_last.weights\n",
                    clock.batch, s.backup, s.base);
            break;
        }
        double t0 = now();
        double lr;
        int rate = dn_schedule_rate_checked(net->schedule, &clock, &lr, err);
        if (rate < 0) {
            char good[4600], why[DN_ERROR_MAX];
            last_good(&s, a->weights, good, sizeof good);
            snprintf(why, sizeof why, "%s", err->msg);
            rc = dn_fail(err, "%s: training stopped; %s", why, good);
            goto done;
        }
        if (rate > 0 && !warned_rate++)
            fprintf(stderr, "warning: %s\n", err->msg);
        double loss = 0;
        long correct = 0;
        for (int sub = 0; sub < net->subdivisions; sub++) {
            long index = (long)(net->seen / (uint64_t)forward_batch);
            dn_dist_take_share(dist, s.train_loader, index, net, s.labels);
            dn_net_forward(net, 1);
            dn_net_backward(net);
            loss += dn_net_cost(net);
            for (int i = 0; i < net->batch; i++) {
                int t1, tk;
                rank_of(last->output + (long)i * last->outputs, last->outputs,
                        s.labels[i], 1, &t1, &tk);
                correct += t1;
            }
            net->seen += (uint64_t)forward_batch;
        }
        if (dn_net_check(net, err) || /* a device error, before its NaNs */
            dn_dist_all_reduce_gradients(dist, net, &loss, &correct, err))
            goto done;
        ep.correct += correct;
        loss /= (double)ipb;
        if (!isfinite(loss)) {
            char good[4600];
            last_good(&s, a->weights, good, sizeof good);
            rc = dn_fail(err, "loss is %f at batch %ld (lr %g): training "
                         "stopped; %s", loss, clock.batch, lr, good);
            goto done;
        }
        dn_net_update(net, lr);
        /* a NaN can hide behind a ReLU and never reach the loss: the
         * weights themselves (device nets: at each checkpoint) */
        dn_error why;
        if (dn_net_check_weights(net, &why)) {
            char good[4600];
            last_good(&s, a->weights, good, sizeof good);
            rc = dn_fail(err, "after the update of batch %ld (lr %g): %s: "
                         "training stopped; %s", clock.batch, lr, why.msg,
                         good);
            goto done;
        }
        if (a->on_update)
            a->on_update(a->on_update_ctx, clock.batch, lr, loss);
        avg_loss = avg_loss < 0 ? loss : avg_loss * 0.9 + loss * 0.1;
        ep.batches++;
        ep.images += ipb;
        ep.lr_sum += lr;
        ep.loss_sum += loss;
        long b = clock.batch + 1;
        if (b % every == 0 || b == max_batches)
            fprintf(out, "%ld, %.3f: %f, %f avg, %g rate, %lf seconds, %llu "
                    "images\n", b, (double)b / bpe, loss, avg_loss, lr,
                    now() - t0, (unsigned long long)net->seen);
        if (b % bpe != 0 && b != max_batches)
            continue;

        /* epoch end */
        long epoch = (b + bpe - 1) / bpe;
        eval_acc va = {0};
        if (s.valid && dn_dist_is_writer(dist) && evaluate(&s, 1, &va, err))
            goto done;
        double mean_loss = ep.loss_sum / ep.batches;
        double secs = now() - ep.t0;
        char vtop[32] = "", vloss[32] = "";
        if (va.images) {
            snprintf(vtop, sizeof vtop, "%.4f", (double)va.top1 / va.images);
            snprintf(vloss, sizeof vloss, "%.6f", va.loss / va.images);
        }
        if (log && dn_train_log_row(log, err, "%ld,%ld,%ld,%.9g,%.6f,%.4f,%s,%s,%.2f\n",
                             epoch, ep.batches, ep.images, ep.lr_sum / ep.batches,
                             mean_loss, (double)ep.correct / ep.images, vtop,
                             vloss, secs))
            goto done;
        fprintf(out, "epoch %ld: train loss %.4f, train top-1 %.4f%s%s%s, "
                "mean lr %g, %.1f s (data wait %.1f s)\n", epoch, mean_loss,
                (double)ep.correct / ep.images, va.images ? ", valid top-1 " : "",
                vtop, va.images ? "" : "", ep.lr_sum / ep.batches, secs,
                dn_loader_wait_seconds(s.train_loader));
        fflush(out);
        if (checkpoint(&s, "last", err))
            goto done;
        if (a->save_every_epoch) {
            char suffix[32];
            snprintf(suffix, sizeof suffix, "%ld", epoch);
            if (checkpoint(&s, suffix, err))
                goto done;
        }
        /* The paper's rule, "halt iff T_t < T_n and loss > 4.5": epochs
         * count from 1, so T_t = halt_after_epochs = 2 first checks the
         * end of epoch 3. */
        if (halt_loss > 0 && epoch > halt_after && mean_loss > halt_loss) {
            *outcome = DN_TRAIN_HALTED;
            fprintf(out, "halting: epoch %ld mean loss %.4f > halt_loss %g "
                    "(after epoch %ld): saving %s/%s_halt.weights\n", epoch,
                    mean_loss, halt_loss, halt_after, s.backup, s.base);
            break;
        }
        memset(&ep, 0, sizeof ep);
        ep.t0 = now();
    }
    const char *suffix = *outcome == DN_TRAIN_DONE ? "final"
                         : *outcome == DN_TRAIN_HALTED ? "halt" : "last";
    if (checkpoint(&s, suffix, err))
        goto done;
    fprintf(out, "saved %s/%s_%s.weights after %.1f s\n", s.backup, s.base,
            suffix, now() - t_start);
    rc = 0;
done:
    rc = dn_dist_finish(dist, rc, out, err);
    if (log)
        fclose(log);
    session_free(&s);
    dn_dist_free(dist);
    return rc;
}

int dn_eval_classifier(const char *data_path, const char *cfg_path,
                       const char *weights, int argc, char **argv,
                       const dn_devices *devices, dn_eval_result *res,
                       dn_error *err)
{
    session s;
    int rc = -1;
    if (session_open(&s, data_path, cfg_path, argc, argv, 0, 1, 0, NULL, err))
        goto done;
    if ((weights && dn_weights_load(s.net, weights, err)) ||
        dn_net_use_devices(s.net, devices, err))
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

int dn_predict_classifier(const dn_predict_args *p, FILE *out, dn_error *err)
{
    session s;
    dn_dataset *one = NULL;
    float *scratch = NULL;
    int rc = -1;
    if (session_open(&s, p->data_path, p->cfg_path, p->argc, p->argv, 0,
                     p->index >= 0, 1, NULL, err))
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
    dn_augment_apply(s.aug, one, &record, 1, net->seed, 0, 0, net->input_data,
                     scratch);
    dn_net_forward(net, 0);
    if (dn_net_check(net, err))
        goto done;
    const float *prob = dn_net_output_layer(net)->output;
    if (p->image)
        fprintf(out, "%s: Predicted in %f seconds.\n", p->image, now() - t0);
    else
        fprintf(out, "valid record %ld (label %s): Predicted in %f seconds.\n",
                p->index, s.valid->names ? s.valid->names[one->labels[0]] : "?",
                now() - t0);
    char **names = s.train ? s.train->names : s.valid ? s.valid->names : NULL;
    int *used = calloc(net->truths, sizeof *used);
    for (long k = 0; k < top; k++) {
        long best = -1;
        for (long j = 0; j < net->truths; j++)
            if (!used[j] && (best < 0 || prob[j] > prob[best]))
                best = j;
        used[best] = 1;
        if (names)
            fprintf(out, "%5.2f%%: %s\n", 100.0 * prob[best], names[best]);
        else
            fprintf(out, "%5.2f%%: %ld\n", 100.0 * prob[best], best);
    }
    free(used);
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
    if (!session_open(&s, p->data_path, p->cfg_path, p->argc, p->argv, 0, 0,
                      1, NULL, err) &&
        !dn_weights_load(s.net, p->weights, err))
        rc = 0;
    session_free(&s);
    return rc;
}

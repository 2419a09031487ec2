/*
 * mpitest.c - the helpers of the tests of training under mpirun (see
 * mpitest.h).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mpitest.h"

mt_env mt;

const char *const mt_net =
    "[net]\nbatch=16\nsubdivisions=1\nheight=32\nwidth=32\nchannels=3\n"
    "learning_rate=0.05\nmomentum=0.9\ndecay=0.0005\npolicy=constant\n"
    "max_batches=5\nseed=7\n"
    "[convolutional]\nbatch_normalize=1\nfilters=4\nsize=3\nstride=2\npad=1\n"
    "activation=relu\n"
    "[maxpool]\nsize=2\nstride=2\n"
    "[convolutional]\nbatch_normalize=1\nfilters=8\nsize=3\nstride=1\npad=1\n"
    "activation=leaky\n"
    "[connected]\noutput=10\nactivation=linear\n"
    "[softmax]\n";

void mt_setup(const char *env_var, const char *what, const char *why_not,
              int with_valid)
{
    const char *d = getenv(env_var);
    memset(&mt, 0, sizeof mt);
    if (why_not)
        snprintf(mt.skip_why, sizeof mt.skip_why, "%s", why_not);
    else if (system("command -v mpirun > /dev/null 2>&1") != 0)
        snprintf(mt.skip_why, sizeof mt.skip_why, "no mpirun (apt-get "
                 "install openmpi-bin libopenmpi-dev)");
    else if (!d || access(d, X_OK) != 0)
        snprintf(mt.skip_why, sizeof mt.skip_why, "%s (%s) is not set or "
                 "not built", env_var, what);
    else if (d[0] == '/')
        snprintf(mt.darknet, sizeof mt.darknet, "%s", d);
    else {
        char cwd[512];
        snprintf(mt.darknet, sizeof mt.darknet, "%s/%s",
                 getcwd(cwd, sizeof cwd), d);
    }
    snprintf(mt.dir, sizeof mt.dir, "%s", tu_tmpdir());
    char path[700], valid[700] = "", text[2400];
    snprintf(path, sizeof path, "%s/train.bin", mt.dir);
    tu_write_cifar_pattern(path, 96, 1);
    if (with_valid) {
        snprintf(path, sizeof path, "%s/valid.bin", mt.dir);
        tu_write_cifar_pattern(path, 16, 2);
        snprintf(valid, sizeof valid, "valid=%s\n", path);
    }
    snprintf(text, sizeof text, "classes=10\ntrain=%s/train.bin\n%s"
             "backup=%s/unused\n", mt.dir, valid, mt.dir);
    tu_write_file("m.data", text);
    tu_write_file("m.cfg", mt_net);
    setenv("OMPI_ALLOW_RUN_AS_ROOT", "1", 1);
    setenv("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1", 1);
    setenv("OMP_NUM_THREADS", "1", 1);
    setenv("OPENBLAS_NUM_THREADS", "1", 1);
    setenv("OMP_WAIT_POLICY", "passive", 1);
}

int mt_train(int ranks, int timeout_s, const char *out, const char *extra)
{
    char launch[128] = "", cmd[4096];
    if (ranks > 1)
        snprintf(launch, sizeof launch, "mpirun --oversubscribe -np %d ",
                 ranks);
    snprintf(cmd, sizeof cmd, "cd %s && timeout %d %s%s classifier train "
             "m.data m.cfg -backup %s %s > %s.txt 2>&1", mt.dir, timeout_s,
             launch, mt.darknet, out, extra, out);
    int rc = system(cmd);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : 128;
}

const char *mt_output_of(const char *out)
{
    static char text[65536];
    char path[700];
    snprintf(path, sizeof path, "%s/%s.txt", mt.dir, out);
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(text, 1, sizeof text - 1, f) : 0;
    text[n] = '\0';
    if (f)
        fclose(f);
    return text;
}

void mt_expect_ok(int rc, const char *out)
{
    if (rc != 0)
        print_error("exit %d:\n%s\n", rc, mt_output_of(out));
    assert_int_equal(rc, 0);
}

int mt_exists(const char *name)
{
    char path[700];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s", mt.dir, name);
    return stat(path, &st) == 0;
}

dn_net *mt_load_net(const char *weights)
{
    dn_error err;
    dn_cfg *cfg;
    dn_net *net;
    char path[700];
    snprintf(path, sizeof path, "%s/m.cfg", mt.dir);
    assert_int_equal(dn_cfg_load(path, &cfg, &err), 0);
    if (dn_net_make(cfg, NULL, &net, &err)) {
        print_error("%s\n", err.msg);
        fail();
    }
    snprintf(path, sizeof path, "%s/%s", mt.dir, weights);
    if (dn_weights_load(net, path, &err)) {
        print_error("%s\n", err.msg);
        fail();
    }
    return net;
}

static int is_param(const dn_layer *l, const float *t)
{
    for (int p = 0; p < l->n_params; p++)
        if (l->params[p].w == t)
            return 1;
    return 0;
}

void mt_assert_weights_close(const char *a_path, const char *b_path,
                             int stats, double bound)
{
    dn_net *a = mt_load_net(a_path), *b = mt_load_net(b_path);
    assert_true(a->seen == b->seen);
    double worst = 0;
    long compared = 0;
    for (int i = 0; i < a->n; i++) {
        const dn_layer *la = &a->layers[i], *lb = &b->layers[i];
        for (int k = 0; k < la->n_saved; k++) {
            if (!stats && !is_param(la, la->saved[k]))
                continue;
            for (long j = 0; j < la->saved_n[k]; j++) {
                double x = la->saved[k][j], y = lb->saved[k][j];
                double dev = fabs(x - y) / (fabs(x) + 0.01);
                if (!(dev <= bound))
                    print_error("%s vs %s: layer %d tensor %d [%ld]: %.9g vs "
                                "%.9g\n", a_path, b_path, i, k, j, x, y);
                assert_true(dev <= bound);
                worst = dev > worst ? dev : worst;
                compared++;
            }
        }
    }
    print_message("%s vs %s: %ld values, largest |a-b|/(|a|+0.01) = %.2g "
                  "(bound %g)\n", a_path, b_path, compared, worst, bound);
    dn_net_free(a);
    dn_net_free(b);
}

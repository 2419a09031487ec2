/*
 * darknet_peer.c - the same measurement as train_bench.c, on Debian's
 * darknet (libdarknet.so and its header): a peer for the benchmark table,
 * not part of the product. Random inputs, one-hot labels, train_network().
 *
 *   darknet_peer CFG BATCH [TIMED] [WARMUP]
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "bench_util.h"

#include "darknet.h"


int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: darknet_peer CFG BATCH [TIMED] [WARMUP]\n");
        return 2;
    }
    int batch = atoi(argv[2]);
    int timed = argc > 3 ? atoi(argv[3]) : 3, warmup = argc > 4 ? atoi(argv[4]) : 1;
    network *net = load_network(argv[1], NULL, 0);
    set_batch_network(net, batch);
    int inputs = net->inputs, classes = net->outputs;
    data d = {0};
    d.X = make_matrix(batch, inputs);
    d.y = make_matrix(batch, classes);
    srand(1);
    for (int i = 0; i < batch; i++) {
        for (int j = 0; j < inputs; j++)
            d.X.vals[i][j] = rand() / (float)RAND_MAX;
        d.y.vals[i][i % classes] = 1;
    }
    double *t = malloc(sizeof *t * timed);
    for (int i = 0; i < warmup + timed; i++) {
        double t0 = bench_now();
        train_network(net, d);
        if (i >= warmup)
            t[i - warmup] = bench_now() - t0;
    }
    double med = bench_median(t, timed);
    printf("images/s %.2f  median batch %.3f s  (batch %d, %d timed)\n",
           batch / med, med, batch, timed);
    return 0;
}

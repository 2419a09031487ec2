/*
 * gemm_bench.c - the machine's SGEMM ceiling through the same BLAS the
 * framework links: GFLOP/s for convolution-shaped products (the shapes of
 * ResNet-18-CIFAR's 3x3 layers at batch 1 per image, M = filters,
 * N = output pixels, K = channels x 9) and one large square product.
 * Prints the median of repeated runs.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "bench_util.h"

#include "blas.h"


static double gflops(int M, int N, int K)
{
    float *A = malloc(sizeof(float) * M * K), *B = malloc(sizeof(float) * K * N);
    float *C = malloc(sizeof(float) * M * N);
    for (long i = 0; i < (long)M * K; i++)
        A[i] = (float)(i % 7) * 0.1f;
    for (long i = 0; i < (long)K * N; i++)
        B[i] = (float)(i % 5) * 0.1f;
    double flop = 2.0 * M * N * K, t[9];
    int reps = (int)(2e9 / flop) + 1;
    for (int r = 0; r < 9; r++) {
        double t0 = bench_now();
        for (int i = 0; i < reps; i++)
            dn_gemm(0, 0, M, N, K, 1.0f, A, K, B, N, 0.0f, C, N);
        t[r] = (bench_now() - t0) / reps;
    }
    
    free(A);
    free(B);
    free(C);
    return flop / bench_median(t, 9) / 1e9;
}

int main(void)
{
    static const int shapes[][3] = {
        {64, 1024, 576}, {128, 256, 1152}, {256, 64, 2304}, {512, 16, 4608},
        /* batched: 64 images side by side */
        {64, 65536, 576}, {128, 16384, 1152}, {256, 4096, 2304},
        {2048, 2048, 2048},
    };
    printf("%-22s %10s\n", "sgemm M x N x K", "GFLOP/s");
    double best = 0;
    for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++) {
        double g = gflops(shapes[i][0], shapes[i][1], shapes[i][2]);
        if (g > best)
            best = g;
        char name[64];
        snprintf(name, sizeof name, "%d x %d x %d", shapes[i][0], shapes[i][1],
                 shapes[i][2]);
        printf("%-22s %10.1f\n", name, g);
    }
    printf("SGEMM ceiling (best of the above): %.1f GFLOP/s\n", best);
    return 0;
}

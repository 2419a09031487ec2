/*
 * convolutional_layer.h - [convolutional]'s private state, shared by
 * convolutional_layer.c and its GPU twin convolutional_layer.cu.
 */
#ifndef DN_CONVOLUTIONAL_LAYER_H
#define DN_CONVOLUTIONAL_LAYER_H

#ifdef __cplusplus
extern "C" {
#endif

#include "batchnorm.h"
#include "blas.h"
#include "conv_onednn.h"
#include "layer_util.h"

typedef struct conv {
    int filters, size, stride, padding, dilation, groups;
    int images_per_gemm; /* images per chunk */
    int chunks;          /* ceil(batch / images_per_gemm) */
    int threads;         /* threads the workspace was sized for */
    int direct;          /* 1x1/1, no padding, one image a chunk */
    dn_conv_geom geom;
    size_t col_floats;   /* per-thread scratch: col ... */
    size_t rows_floats;  /* ... out or delta as [filters, n*hw] ... */
    size_t scratch_floats; /* ... and the weight gradient: their sum */
    float *weights;      /* [filters, c/groups, size, size] */
    float *biases;       /* [filters] */
    dn_post post;        /* bias or BN, then activation */
    dn_onednn_conv *onednn; /* oneDNN runs the convolution; NULL: im2col */
    size_t onednn_floats;   /* oneDNN's part of the workspace, first */
    int block;              /* with oneDNN: the output's channel block when
                               batch norm runs on it blocked; 0: plain */
    int writes_in_delta;    /* the input blocked and read by this layer
                               alone: oneDNN writes its delta, not adds */
} conv;

#ifdef __cplusplus
}
#endif

#endif

/*
 * dn_data.h - datasets, preprocessing/augmentation and the batch loader.
 *
 *   dn_dataset_open   reads a whole dataset into memory as bytes (CIFAR-10
 *                     binary batches, IDX/MNIST files, Darknet image lists)
 *   dn_augment_parse  reads preprocessing and augmentation keys from [net]
 *                     and fits what needs the training set (means, ZCA)
 *   dn_loader_*       turns (seed, mini-batch index) into float batches, in
 *                     a background thread that prefetches the next batch
 *
 * The .data keys, [net] keys and the order of the preprocessing steps are
 * documented in docs/data.md.
 */
#ifndef DN_DATA_H
#define DN_DATA_H

#include <stddef.h>
#include <stdint.h>

#include "darknet.h"

#ifdef __cplusplus
extern "C" {
#endif

/* --------------------------------------------------------------- dataset */

typedef struct dn_dataset {
    long n;          /* records */
    int c, h, w;     /* stored image shape (after pad/replicate options) */
    int classes;
    uint8_t *pixels; /* [n, c, h, w] bytes 0..255, channel-planar like CIFAR */
    int *labels;     /* [n], 0..classes-1 */
    char **names;    /* [classes] label names, or NULL */
    char *source;    /* description for messages, e.g. file path(s) */
    /* additions */
    char *dir;       /* directory of the first data file (ZCA cache); may be NULL */
    int native_c, native_h, native_w; /* shape in the file, before conversion */
} dn_dataset;

/*
 * data: the .data section (dn_cfg_load_flat); which: "train" or "valid";
 * c, h, w: the network input shape ([net] channels/height/width); a value
 * <= 0 keeps the file's own size in that dimension (image lists need h, w).
 * Returns 0 with *out set, or -1 with *out = NULL and a message naming the
 * file and record (records are counted from 0).
 */
int dn_dataset_open(dn_section *data, const char *which, int c, int h, int w,
                    dn_dataset **out, dn_error *err);
/* A zeroed dataset with every array allocated (names = NULL, source = desc). */
dn_dataset *dn_dataset_alloc(long n, int c, int h, int w, int classes,
                             const char *source);
void dn_dataset_free(dn_dataset *d);
/* A 64-bit hash of shape, pixels and labels (keys the ZCA cache). */
uint64_t dn_dataset_hash(const dn_dataset *d);

/*
 * Darknet's rule for image lists: the label of an image is the one entry of
 * labels[] that is a substring of its path. Returns the index, -1 when none
 * matches, -2 when several do (then *first and *second name two of them).
 */
int dn_label_of_path(const char *path, char *const *labels, int classes,
                     int *first, int *second);
/*
 * Reads an image list (one path per line; blank lines skipped) and labels
 * every line by dn_label_of_path. Needs no image library. On success *paths
 * ([*n] strings, each to free, then the array) and *labs ([*n]) are set.
 * Errors read "list:line: ...".
 */
int dn_image_list_read(const char *list, char *const *labels, int classes,
                       char ***paths, int **labs, long *n, dn_error *err);

/*
 * Decodes an image file and resizes it (bilinear) to w x h, channel-planar
 * bytes [c, h, w] (RGB order for c == 3, grey for c == 1). Defined in
 * image_cv.cpp when built with OpenCV (DN_OPENCV); without it, always fails
 * with a message saying so. Returns 0, or -1 with a message in msg.
 */
int dn_image_read_u8(const char *path, int c, int h, int w, uint8_t *out,
                     char *msg, size_t msg_size);

/* --------------------------------------------------- augmentation setup */

/*
 * Preprocessing and augmentation, from [net]. Deterministic steps, in this
 * order, apply in training and validation alike:
 *   contrast stretch (bytes) -> /255 -> per-channel normalize ->
 *   per-pixel mean subtraction -> global contrast normalisation -> ZCA
 * then, in training only, the random steps:
 *   random crop with zero padding -> horizontal flip
 * Every step is off by default.
 */
typedef struct dn_augment {
    int c, h, w; /* shape fitted for; 0 when nothing was fitted */
    /* random (training only) */
    int flip;     /* flip=1: mirror left-right with probability 1/2 */
    int crop_pad; /* crop_pad=P: pad P zeros each side, crop h x w at random */
    /* deterministic */
    int contrast_stretch;            /* contrast_stretch=1 */
    double stretch_low, stretch_high; /* percentiles mapped to 0 and 1 */
    int normalize;                   /* normalize=1 */
    float *norm_mean, *norm_std;     /* [c] */
    int subtract_mean;               /* subtract_mean=1 */
    float *mean_image;               /* [c*h*w] training mean */
    int gcn;                         /* gcn=1 */
    double gcn_scale, gcn_lambda, gcn_eps;
    int zca;                         /* zca=1 */
    double zca_epsilon;
    float *zca_mean;   /* [D] mean of the ZCA input, D = c*h*w */
    float *zca_matrix; /* [D, D] symmetric: y = (x - zca_mean) W */
    char *zca_cache;   /* cache file read or written, or NULL */
    int zca_from_cache;
} dn_augment;

/*
 * Reads the keys above from [net] and fits, on train, whatever needs the
 * training set. train may be NULL only when nothing needs fitting. A ZCA
 * cache that cannot be written is a warning on stderr, not an error.
 */
int dn_augment_parse(dn_section *net, const dn_dataset *train,
                     dn_augment **out, dn_error *err);
void dn_augment_free(dn_augment *a);
/* The keys above, read and checked (ranges, mean/std lists) without a
 * training set and without fitting anything. */
int dn_augment_check(dn_section *net, dn_error *err);
/* One line such as "flip crop_pad=4 zca(eps=0.01)" or "none". */
void dn_augment_describe(const dn_augment *a, char *buf, size_t size);

/*
 * Preprocesses records[0..count) of d into out [count, c*h*w]; with train
 * set, also applies the random steps, drawn from (seed, epoch, record).
 * scratch holds at least count*c*h*w floats. a may be NULL (pixels/255).
 */
void dn_augment_apply(const dn_augment *a, const dn_dataset *d,
                      const long *records, int count, uint64_t seed,
                      long epoch, int train, float *out, float *scratch);
/*
 * The geometric step on one image [c, h, w]: out(y, x) = in(y + dy, x + dx)
 * (0 outside), then mirrored left-right when flip is set.
 */
void dn_image_shift_flip(const float *in, int c, int h, int w, int dx, int dy,
                         int flip, float *out);

/* ---------------------------------------------------------------- loader */

typedef struct dn_loader dn_loader;

/*
 * batch: images per call; per_epoch: mini-batches per epoch; shuffle: a new
 * order every epoch; train: apply the random augmentation. aug may be NULL.
 * A shuffled pass wraps around the epoch's order when per_epoch*batch > n;
 * an unshuffled pass ends with a partial batch instead.
 */
int dn_loader_make(const dn_dataset *d, const dn_augment *aug, int batch,
                   long per_epoch, uint64_t seed, int shuffle, int train,
                   dn_loader **out, dn_error *err);
/*
 * Fills x [batch, c*h*w] and truth [batch, classes] (one-hot) for global
 * mini-batch index; labels (may be NULL) gets [batch] ints (-1 past the
 * end). A pure function of (seed, index). Returns the number of valid images;
 * the rest are zero. Not for concurrent callers on one loader.
 */
int dn_loader_get(dn_loader *l, long index, float *x, float *truth,
                  int *labels);
/*
 * As dn_loader_get without the copy: the pointers stay valid until the next
 * call on this loader.
 */
int dn_loader_get_ref(dn_loader *l, long index, const float **x,
                      const float **truth, const int **labels);
/* The dataset records of batch index (-1 past the end); returns the count. */
int dn_loader_batch_records(const dn_loader *l, long index, long *records);
double dn_loader_wait_seconds(const dn_loader *l); /* time callers waited */
void dn_loader_free(dn_loader *l);

#ifdef __cplusplus
}
#endif

#endif

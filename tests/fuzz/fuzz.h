/*
 * fuzz.h - what the fuzz targets share (tests/fuzz/fuzz_*.c).
 *
 * Each target defines LLVMFuzzerTestOneInput. `make fuzz` links it with
 * libFuzzer (clang, -fsanitize=fuzzer,address,undefined); `make test`
 * links the same file with tests/fuzz/replay.c in the plain ASan build
 * and replays every seed (tests/fuzz/corpus/TARGET/) and every crasher
 * ever found (tests/fuzz/regress/TARGET/). An input must never crash,
 * hang, leak or allocate more than the target's budget: everything bad is
 * an error value.
 */
#ifndef DN_FUZZ_H
#define DN_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "darknet.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Memory a target lets a network plan take (libFuzzer's limit is 2 GiB). */
#define FZ_MAX_BYTES (64.0 * (1 << 20))

/* A private temporary directory, made once per process, removed at exit. */
const char *fz_dir(void);
/* Writes data to fz_dir()/name; returns the path (one of 8 static
 * buffers, reused in turn). */
const char *fz_write(const char *name, const void *data, size_t n);
/* /dev/null, for what commands print. */
FILE *fz_null(void);
/* Runs fn(arg) with stdout and stderr sent to /dev/null. */
int fz_silently(int (*fn)(void *arg), void *arg);

/* Reads input as fields: a byte, a little-endian u16, or the rest. */
typedef struct fz_reader {
    const uint8_t *p;
    size_t left;
} fz_reader;
uint8_t fz_u8(fz_reader *r);
uint16_t fz_u16(fz_reader *r);
/* The next n bytes (fewer at the end); *got says how many. */
const uint8_t *fz_bytes(fz_reader *r, size_t n, size_t *got);

#endif

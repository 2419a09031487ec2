/* testutil.h - helpers shared by the cmocka tests. */
#ifndef TESTUTIL_H
#define TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "darknet.h"
#include "dn_data.h"

/* A fresh temporary directory for this test binary (removed at exit). */
const char *tu_tmpdir(void);
/* tu_tmpdir()/name: the one way tests name a temporary file (static
 * storage, 16 in turn). */
char *tu_tmp_path(const char *name);
/* Write text (or n bytes) to tu_tmp_path(name); returns that path. */
char *tu_write_file(const char *name, const char *text);
char *tu_write_bytes(const char *name, const void *data, size_t n);
/* n records of c x h x w with distinct, non-zero pixels (pixel 0 holds the
 * record's number), label r % classes; free with dn_dataset_free. */
dn_dataset *tu_synthetic_dataset(long n, int c, int h, int w, int classes);
/* dn_augment_parse on the [net] section of net_text (a cfg as a string). */
int tu_parse_augment(const char *net_text, const dn_dataset *train,
                     dn_augment **a, dn_error *err);
/* n CIFAR-10 binary records (label byte + 3x32x32 bytes) at path, with a
 * learnable pattern: noise 0..79, and for label k = i % 10 a bright 8x6
 * square in channel k % 3 at a place of its own. */
void tu_write_cifar_pattern(const char *path, int n, unsigned seed);
/*
 * Runs a command of darknet/src/cli/cmd_*.c in this process, as bin/darknet
 * would: args is NULL-terminated, args[0] the command's name (a writable
 * copy is passed; commands NULL what they consume). stdout and stderr go to
 * files whose text is returned in *out and *errs (static storage, valid
 * until the next call; either may be NULL). Returns the command's status.
 */
int tu_run_cmd(int (*cmd)(int argc, char **argv), const char *const *args,
               const char **out, const char **errs);
/*
 * The cfg at path with overrides written as on the command line ("-set",
 * "key=value", "-overlay", FILE, "-strict"; n words), applied as the
 * command line applies them: every overlay, then every -set. *strict (may
 * be NULL) is set by "-strict". NULL with err set on a bad cfg or override.
 */
dn_cfg *tu_load_cfg(const char *path, int n, const char *const *words,
                    int *strict, dn_error *err);
/* Assert that msg contains needle, printing both when not. */
#define assert_contains(msg, needle) tu_assert_contains((msg), (needle), __FILE__, __LINE__)
void tu_assert_contains(const char *msg, const char *needle, const char *file, int line);

#endif

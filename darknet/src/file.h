/*
 * file.h - opening input files safely, and paths that are never cut.
 *
 * Every reader of the framework (cfg, .data, .weights, .state, datasets,
 * label names, image lists) opens its file here: only a regular file is
 * read, so a FIFO, a directory or a device given by mistake is refused at
 * once instead of blocking or being read forever, and the caller learns the
 * file's real size, against which it checks every length or count the file
 * claims before it allocates anything.
 */
#ifndef DN_FILE_H
#define DN_FILE_H

#include <stdio.h>

#include "darknet.h"

/* Opens path for reading (fopen mode "rb") when it is a regular file.
 * *size (may be NULL) gets its size in bytes. NULL with err set ("PATH:
 * cannot open: ...", "PATH: not a regular file (a FIFO)") otherwise. */
FILE *dn_fopen_regular(const char *path, long long *size, dn_error *err);
/* The same as a file descriptor (O_RDONLY | O_CLOEXEC); -1 on failure. */
int dn_open_regular(const char *path, long long *size, dn_error *err);

/* snprintf into out[cap] that fails instead of cutting: a result that does
 * not fit (or exceeds the system's PATH_MAX) is an error naming what it
 * would have been ("path too long: 4100 characters, the limit is 4095"). */
int dn_path_format(char *out, size_t cap, dn_error *err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif

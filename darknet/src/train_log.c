/*
 * train_log.c - the per-epoch CSV log of a training run. Its rows are
 * those of the checkpoint the run started from: a resumed run first drops
 * every row past the checkpoint's epoch (the rows of epochs a kill
 * interrupted before their checkpoint was saved), a fresh run starts the
 * file anew. The trainer writes each epoch's row, fsynced, before that
 * epoch's checkpoint, so the file never lacks the row of a saved epoch.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "darknet.h"
#include "dn_train.h"
#include "file.h"

/* The epoch number a data row starts with, or -1. */
static long row_epoch(const char *line)
{
    char *end;
    errno = 0;
    long e = strtol(line, &end, 10);
    return end == line || *end != ',' || errno || e < 1 ? -1 : e;
}

FILE *dn_train_log_open(const char *path, const char *header, long epochs,
                        dn_error *err)
{
    char tmp[4096];
    if (dn_path_format(tmp, sizeof tmp, err, "%s.tmp", path))
        return NULL;
    FILE *out = fopen(tmp, "w");
    if (!out) {
        dn_fail(err, "%s: cannot write: %s", tmp, strerror(errno));
        return NULL;
    }
    fprintf(out, "%s\n", header);
    dn_error ignored;
    FILE *in = epochs > 0 ? dn_fopen_regular(path, NULL, &ignored) : NULL;
    if (in) {
        char line[4096];
        int first = 1;
        while (fgets(line, sizeof line, in)) {
            if (first && strncmp(line, header, strlen(header)) == 0) {
                first = 0;
                continue; /* the header, written above */
            }
            first = 0;
            long e = row_epoch(line);
            if (e >= 1 && e <= epochs && strchr(line, '\n'))
                fputs(line, out);
        }
        fclose(in);
    }
    if (fflush(out) != 0 || fsync(fileno(out)) != 0 || ferror(out)) {
        dn_fail(err, "%s: write failed: %s", tmp, strerror(errno));
        fclose(out);
        unlink(tmp);
        return NULL;
    }
    if (rename(tmp, path) != 0) {
        dn_fail(err, "%s: cannot rename to %s: %s", tmp, path, strerror(errno));
        fclose(out);
        unlink(tmp);
        return NULL;
    }
    return out; /* still open on the renamed file: rows append */
}

int dn_train_log_row(FILE *log, dn_error *err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfprintf(log, fmt, ap);
    va_end(ap);
    if (fflush(log) != 0 || fsync(fileno(log)) != 0 || ferror(log))
        return dn_fail(err, "the CSV log: write failed: %s", strerror(errno));
    return 0;
}

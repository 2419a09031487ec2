/*
 * file.c - see file.h. A FIFO opened for reading blocks until a writer
 * appears, so the file is opened with O_NONBLOCK, checked with fstat, and
 * only then switched back to blocking reads.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "file.h"

static const char *kind_of(mode_t m)
{
    return S_ISDIR(m)    ? "a directory"
           : S_ISFIFO(m) ? "a FIFO"
           : S_ISCHR(m)  ? "a character device"
           : S_ISBLK(m)  ? "a block device"
           : S_ISSOCK(m) ? "a socket"
                         : "not a plain file";
}

int dn_open_regular(const char *path, long long *size, dn_error *err)
{
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return dn_fail(err, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return dn_fail(err, "%s: cannot open: %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return dn_fail(err, "%s: not a regular file (%s)", path,
                       kind_of(st.st_mode));
    }
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0 || fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) < 0) {
        int e = errno;
        close(fd);
        return dn_fail(err, "%s: cannot open: %s", path, strerror(e));
    }
    if (size)
        *size = (long long)st.st_size;
    return fd;
}

FILE *dn_fopen_regular(const char *path, long long *size, dn_error *err)
{
    int fd = dn_open_regular(path, size, err);
    if (fd < 0)
        return NULL;
    FILE *f = fdopen(fd, "rb");
    if (!f) {
        dn_fail(err, "%s: cannot open: %s", path, strerror(errno));
        close(fd);
    }
    return f;
}

int dn_path_format(char *out, size_t cap, dn_error *err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out, cap, fmt, ap);
    va_end(ap);
    if (n < 0)
        return dn_fail(err, "cannot format a path from \"%s\"", fmt);
    const long limit = (long)(cap - 1 < PATH_MAX - 1 ? cap - 1 : PATH_MAX - 1);
    if ((size_t)n >= cap || n > limit) {
        const int shown = 60;
        out[0] = '\0';
        char head[64];
        va_start(ap, fmt);
        vsnprintf(head, sizeof head, fmt, ap);
        va_end(ap);
        return dn_fail(err, "path too long: %d characters, the limit is %ld "
                       "(%.*s...)", n, limit, shown, head);
    }
    return 0;
}

/*
 * keys_doc.c - writes the key reference (docs/keys.md) from the key tables
 * of darknet/src/keys.h: `make keys-doc`. tests/test_keys.c fails when the
 * committed file differs from what this writes.
 *
 *   keys_doc [OUT]   (stdout without OUT; OUT is written under a
 *                    temporary name and renamed)
 */
#include <stdio.h>

#include "keys.h"

int main(int argc, char **argv)
{
    if (argc < 2) {
        dn_keys_markdown(stdout);
        return fflush(stdout) ? 1 : 0;
    }
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", argv[1]);
    FILE *f = fopen(tmp, "w");
    if (!f) {
        perror(tmp);
        return 1;
    }
    dn_keys_markdown(f);
    if (ferror(f) | fclose(f) || rename(tmp, argv[1])) {
        perror(argv[1]);
        remove(tmp);
        return 1;
    }
    printf("wrote %s\n", argv[1]);
    return 0;
}

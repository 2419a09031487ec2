#include <stdio.h>
#include "cli.h"
int dn_cmd_summary(int argc, char **argv)
{
    fprintf(stderr, "darknet summary: not built yet\n");
    return 2;
}

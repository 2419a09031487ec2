#include <stdio.h>
#include "cli.h"
int dn_cmd_lr(int argc, char **argv)
{
    fprintf(stderr, "darknet lr: not built yet\n");
    return 2;
}

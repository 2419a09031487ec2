/*
 * fuzz_imagelist.c - a Darknet image list (one path per line, labelled by
 * the label name each path contains) and the images it names, decoded and
 * resized through OpenCV in builds that have it (make fuzz; the replay in
 * make test reads the lists only).
 *
 * Input: a little-endian u16 length L, L bytes of list text, the rest the
 * bytes of an image file, written as img/_cat_/1.png and img/_dog_/2.jpg in
 * the fuzzing directory; a line of the list not starting with '/' is taken
 * relative to that directory. Labels: _cat_, _dog_, _bird_ (underscores
 * never occur in the directory's own name).
 */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "dn_data.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 1 << 18)
        return 0;
    static char labels[300];
    if (!labels[0]) {
        char d[300];
        snprintf(d, sizeof d, "%s/img", fz_dir());
        mkdir(d, 0755);
        snprintf(d, sizeof d, "%s/img/_cat_", fz_dir());
        mkdir(d, 0755);
        snprintf(d, sizeof d, "%s/img/_dog_", fz_dir());
        mkdir(d, 0755);
        const char *names = "_cat_\n_dog_\n_bird_\n";
        snprintf(labels, sizeof labels, "%s",
                 fz_write("labels.txt", names, strlen(names)));
    }
    fz_reader r = {data, size};
    size_t nl, ni;
    const uint8_t *list = fz_bytes(&r, fz_u16(&r), &nl);
    const uint8_t *image = fz_bytes(&r, r.left, &ni);
    fz_write("img/_cat_/1.png", image, ni);
    fz_write("img/_dog_/2.jpg", image, ni);
    /* the list, its relative lines made absolute */
    const size_t dir_len = strlen(fz_dir());
    char *text = malloc(nl * (dir_len + 2) + 1), *t = text;
    for (size_t i = 0; i < nl; i++) {
        if ((i == 0 || list[i - 1] == '\n') && list[i] != '/' &&
            list[i] != '\n') {
            memcpy(t, fz_dir(), dir_len);
            t += dir_len;
            *t++ = '/';
        }
        *t++ = (char)list[i];
    }
    const char *list_path = fz_write("train.list", text, (size_t)(t - text));
    free(text);
    char data_text[1024];
    snprintf(data_text, sizeof data_text, "format=list\ntrain=%s\nlabels=%s\n",
             list_path, labels);
    dn_cfg *cfg;
    dn_error err;
    if (dn_cfg_parse_string(data_text, "fuzz.data", &cfg, &err))
        return 0;
    dn_dataset *d;
    if (dn_dataset_open(&cfg->sections[0], "train", 3, 16, 16, &d, &err) == 0)
        dn_dataset_free(d);
    dn_cfg_free(cfg);
    return 0;
}

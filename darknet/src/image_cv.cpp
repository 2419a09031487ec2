/*
 * image_cv.cpp - image decoding through OpenCV, for Darknet image lists.
 * Built only with OpenCV (make OPENCV=1, the default when Debian's
 * libopencv-dev is installed). Exposes one C function; no C++ exception
 * leaves this file.
 *
 * OpenCV decodes to BGR (or grey); we store RGB planes like CIFAR, resized
 * bilinearly to the network's size as Darknet's resize_image does.
 */
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <exception>
#include <vector>

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "dn_data.h"

extern "C" int dn_image_read_u8(const char *path, int c, int h, int w,
                                uint8_t *out, char *msg, size_t msg_size)
{
    if (c != 1 && c != 3) {
        std::snprintf(msg, msg_size, "%d channels requested (1 or 3)", c);
        return -1;
    }
    /* OpenCV only warns on stderr about a missing file: say why here */
    std::FILE *f = std::fopen(path, "rb");
    if (!f) {
        std::snprintf(msg, msg_size, "%s: cannot open: %s", path,
                      std::strerror(errno));
        return -1;
    }
    std::fclose(f);
    try {
        cv::Mat img = cv::imread(path, c == 1 ? cv::IMREAD_GRAYSCALE
                                              : cv::IMREAD_COLOR);
        if (img.empty()) {
            std::snprintf(msg, msg_size, "%s: cannot decode: not an image "
                          "format OpenCV reads", path);
            return -1;
        }
        if (img.rows != h || img.cols != w) {
            cv::Mat resized;
            cv::resize(img, resized, cv::Size(w, h), 0, 0, cv::INTER_LINEAR);
            img = resized;
        }
        if (c == 3)
            cv::cvtColor(img, img, cv::COLOR_BGR2RGB);
        /* interleaved [h, w, c] -> planar [c, h, w] */
        std::vector<cv::Mat> planes;
        for (int ch = 0; ch < c; ch++)
            planes.emplace_back(h, w, CV_8UC1, out + (size_t)ch * h * w);
        cv::split(img, planes);
        for (int ch = 0; ch < c; ch++) /* in case split reallocated */
            if (planes[ch].data != out + (size_t)ch * h * w)
                planes[ch].copyTo(cv::Mat(h, w, CV_8UC1,
                                          out + (size_t)ch * h * w));
        return 0;
    } catch (const std::exception &e) {
        std::snprintf(msg, msg_size, "%s: %s", path, e.what());
        return -1;
    }
}

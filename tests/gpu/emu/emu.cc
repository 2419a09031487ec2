/*
 * emu.cc - the CPU emulation of CUDA, cuBLAS and NCCL behind
 * tests/gpu/emu/{cuda_runtime.h,cublas_v2.h,nccl.h}; the model is
 * described at the top of cuda_runtime.h.
 */
#include <cblas.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#include <deque>
#include <map>
#include <vector>

#include "cublas_v2.h"
#include "cuda_runtime.h"
#include "nccl.h"

#ifdef DN_MPI
#include <limits.h>
/* MPI's C interface alone: Open MPI's and MPICH's headers would also
 * declare their C++ bindings, which need a library we do not link */
#define OMPI_SKIP_MPICXX 1
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>
#endif

/* ------------------------------------------------------------ errors */

static void vsay(const char *fmt, va_list ap)
{
    fprintf(stderr, "CUDA emulator: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
}

void dn_emu_die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsay(fmt, ap);
    va_end(ap);
    fflush(NULL);
    abort();
}

static cudaError_t last_error = cudaSuccess;
static struct dn_emu_counts counts;

void dn_emu_counts_get(struct dn_emu_counts *out) { *out = counts; }

/* a CUDA error, as CUDA reports it: returned and kept for cudaGetLastError */
static cudaError_t fail(cudaError_t e, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsay(fmt, ap);
    va_end(ap);
    last_error = e;
    return e;
}

cudaError_t cudaGetLastError(void)
{
    cudaError_t e = last_error;
    last_error = cudaSuccess;
    return e;
}

cudaError_t cudaPeekAtLastError(void) { return last_error; }

const char *cudaGetErrorName(cudaError_t e)
{
    switch (e) {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
    case cudaErrorInvalidConfiguration: return "cudaErrorInvalidConfiguration";
    case cudaErrorInvalidDevicePointer: return "cudaErrorInvalidDevicePointer";
    case cudaErrorInvalidMemcpyDirection: return "cudaErrorInvalidMemcpyDirection";
    case cudaErrorNoDevice: return "cudaErrorNoDevice";
    case cudaErrorInvalidDevice: return "cudaErrorInvalidDevice";
    case cudaErrorLaunchFailure: return "cudaErrorLaunchFailure";
    }
    return "cudaErrorUnknown";
}

const char *cudaGetErrorString(cudaError_t e)
{
    switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorInvalidDevicePointer: return "invalid device pointer";
    case cudaErrorInvalidMemcpyDirection: return "invalid copy direction for memcpy";
    case cudaErrorNoDevice: return "no CUDA-capable device is detected";
    case cudaErrorInvalidDevice: return "invalid device ordinal";
    case cudaErrorLaunchFailure: return "unspecified launch failure";
    }
    return "unknown error";
}

/* ----------------------------------------------------------- devices */

static int device_count(void)
{
    const char *s = getenv("DN_EMU_DEVICES");
    int n = s ? atoi(s) : 2;
    return n < 0 ? 0 : n > 8 ? 8 : n;
}

static thread_local int current_device = 0;

cudaError_t cudaGetDeviceCount(int *count)
{
    *count = device_count();
    return *count ? cudaSuccess : fail(cudaErrorNoDevice, "no emulated device (DN_EMU_DEVICES=0)");
}

cudaError_t cudaSetDevice(int device)
{
    if (device < 0 || device >= device_count())
        return fail(cudaErrorInvalidDevice, "cudaSetDevice(%d): %d devices", device, device_count());
    current_device = device;
    return cudaSuccess;
}

cudaError_t cudaGetDevice(int *device)
{
    *device = current_device;
    return cudaSuccess;
}

cudaError_t cudaGetDeviceProperties(struct cudaDeviceProp *prop, int device)
{
    if (device < 0 || device >= device_count())
        return fail(cudaErrorInvalidDevice, "cudaGetDeviceProperties(%d)", device);
    memset(prop, 0, sizeof *prop);
    snprintf(prop->name, sizeof prop->name, "CUDA emulator on the CPU (device %d)", device);
    prop->totalGlobalMem = (size_t)16 << 30;
    prop->major = 9;
    prop->multiProcessorCount = 1;
    prop->maxThreadsPerBlock = 1024;
    prop->warpSize = 32;
    return cudaSuccess;
}

cudaError_t cudaMemGetInfo(size_t *free_bytes, size_t *total_bytes)
{
    *total_bytes = (size_t)16 << 30;
    *free_bytes = (size_t)12 << 30;
    return cudaSuccess;
}

/* ------------------------------------------------------- allocations */

/* base -> size, for device memory and for pinned host memory */
static std::map<const char *, size_t> device_allocs, pinned_allocs;

static int inside(const std::map<const char *, size_t> &m, const void *p, size_t bytes)
{
    const char *c = (const char *)p;
    auto it = m.upper_bound(c);
    if (it == m.begin())
        return 0;
    --it;
    return c >= it->first && c + bytes <= it->first + it->second;
}

int dn_emu_is_device(const void *p, size_t bytes)
{
    return inside(device_allocs, p, bytes ? bytes : 1);
}

static int is_pinned(const void *p, size_t bytes)
{
    return inside(pinned_allocs, p, bytes ? bytes : 1);
}

cudaError_t cudaMalloc(void **p, size_t bytes)
{
    /* fresh device memory holds garbage: so does this, up to 64 MiB (past
     * that, touching every page costs more than the test) */
    char *m = (char *)malloc(bytes ? bytes : 1);
    if (!m)
        return fail(cudaErrorMemoryAllocation, "cudaMalloc(%zu)", bytes);
    if (bytes <= (64u << 20))
        memset(m, 0xA5, bytes);
    device_allocs[m] = bytes ? bytes : 1;
    counts.allocations++;
    *p = m;
    return cudaSuccess;
}

cudaError_t cudaFree(void *p)
{
    if (!p)
        return cudaSuccess;
    dn_emu_drain(); /* cudaFree waits for the device */
    auto it = device_allocs.find((const char *)p);
    if (it == device_allocs.end())
        return fail(cudaErrorInvalidDevicePointer, "cudaFree(%p): not the start of a device allocation", p);
    device_allocs.erase(it);
    free(p);
    return cudaSuccess;
}

cudaError_t cudaHostAlloc(void **p, size_t bytes, unsigned flags)
{
    char *m = (char *)malloc(bytes ? bytes : 1);
    if (!m)
        return fail(cudaErrorMemoryAllocation, "cudaHostAlloc(%zu)", bytes);
    pinned_allocs[m] = bytes ? bytes : 1;
    counts.allocations++;
    *p = m;
    return cudaSuccess;
}

cudaError_t cudaMallocHost(void **p, size_t bytes) { return cudaHostAlloc(p, bytes, 0); }

cudaError_t cudaFreeHost(void *p)
{
    if (!p)
        return cudaSuccess;
    dn_emu_drain();
    auto it = pinned_allocs.find((const char *)p);
    if (it == pinned_allocs.end())
        return fail(cudaErrorInvalidValue, "cudaFreeHost(%p): not pinned memory", p);
    pinned_allocs.erase(it);
    free(p);
    return cudaSuccess;
}

/* ------------------------------------------------------------ queues */

struct dn_emu_stream {
    int device;
};

/* Every stream's work in issue order: one valid order of CUDA's. */
static std::deque<std::function<void()>> queue;
static int draining = 0;

static void enqueue_body(std::function<void()> body)
{
    queue.push_back(std::move(body));
}

void dn_emu_enqueue_library_call(cudaStream_t stream, std::function<void()> body)
{
    counts.library_calls++;
    enqueue_body(std::move(body));
}

static void check_collectives(void);

void dn_emu_drain(void)
{
    if (draining)
        dn_emu_die("the host waited for the device from inside device work");
    check_collectives();
    draining = 1;
    while (!queue.empty()) {
        std::function<void()> work = std::move(queue.front());
        queue.pop_front();
        work();
    }
    draining = 0;
}

/* the host waits for the device: counted, then everything queued runs */
static void host_wait(void)
{
    counts.host_waits++;
    dn_emu_drain();
}

cudaError_t cudaStreamCreate(cudaStream_t *stream)
{
    *stream = new dn_emu_stream{current_device};
    return cudaSuccess;
}

cudaError_t cudaStreamDestroy(cudaStream_t stream)
{
    dn_emu_drain();
    delete stream;
    return cudaSuccess;
}

cudaError_t cudaStreamSynchronize(cudaStream_t stream)
{
    host_wait();
    return cudaSuccess;
}

cudaError_t cudaDeviceSynchronize(void)
{
    host_wait();
    return cudaSuccess;
}

/* ------------------------------------------------------------ copies */

static const char *kind_name(enum cudaMemcpyKind k)
{
    static const char *names[] = {"HostToHost", "HostToDevice", "DeviceToHost",
                                  "DeviceToDevice", "Default"};
    return (unsigned)k < 5 ? names[k] : "?";
}

/* The pointers must be what kind says they are: dst_bytes from dst,
 * src_bytes from src. */
static cudaError_t check_spans(void *dst, size_t dst_bytes, const void *src,
                               size_t src_bytes, enum cudaMemcpyKind kind,
                               const char *call)
{
    if (kind == cudaMemcpyDefault || dst_bytes == 0)
        return cudaSuccess;
    int dst_dev = dn_emu_is_device(dst, dst_bytes), src_dev = dn_emu_is_device(src, src_bytes);
    int want_dst = kind == cudaMemcpyHostToDevice || kind == cudaMemcpyDeviceToDevice;
    int want_src = kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyDeviceToDevice;
    if (dst_dev != want_dst || src_dev != want_src)
        return fail(cudaErrorInvalidValue,
                    "%s(%p <- %p, %zu / %zu bytes, %s): the destination %s "
                    "device memory, the source %s",
                    call, dst, src, dst_bytes, src_bytes, kind_name(kind),
                    dst_dev ? "is" : "is not (all)",
                    src_dev ? "is" : "is not (all)");
    return cudaSuccess;
}

static cudaError_t check_copy(void *dst, const void *src, size_t bytes,
                              enum cudaMemcpyKind kind, const char *call)
{
    return check_spans(dst, bytes, src, bytes, kind, call);
}

static void count_copy(enum cudaMemcpyKind kind, size_t bytes)
{
    if (kind == cudaMemcpyHostToDevice)
        counts.h2d_bytes += (long)bytes;
    else if (kind == cudaMemcpyDeviceToHost)
        counts.d2h_bytes += (long)bytes;
    else if (kind == cudaMemcpyDeviceToDevice)
        counts.d2d_bytes += (long)bytes;
}

cudaError_t cudaMemcpy(void *dst, const void *src, size_t bytes, enum cudaMemcpyKind kind)
{
    cudaError_t e = check_copy(dst, src, bytes, kind, "cudaMemcpy");
    if (e)
        return e;
    count_copy(kind, bytes);
    host_wait();
    if (bytes)
        memmove(dst, src, bytes);
    return cudaSuccess;
}

cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t bytes,
                            enum cudaMemcpyKind kind, cudaStream_t stream)
{
    cudaError_t e = check_copy(dst, src, bytes, kind, "cudaMemcpyAsync");
    if (e || bytes == 0)
        return e;
    count_copy(kind, bytes);
    if (kind == cudaMemcpyHostToDevice && !is_pinned(src, bytes)) {
        /* pageable source: CUDA stages it before returning */
        std::vector<char> staged((const char *)src, (const char *)src + bytes);
        enqueue_body([dst, staged]() { memcpy(dst, staged.data(), staged.size()); });
    } else if (kind == cudaMemcpyDeviceToHost && !is_pinned(dst, bytes)) {
        /* pageable destination: CUDA returns after the copy */
        host_wait();
        memcpy(dst, src, bytes);
    } else {
        enqueue_body([dst, src, bytes]() { memmove(dst, src, bytes); });
    }
    return cudaSuccess;
}

cudaError_t cudaMemcpy2DAsync(void *dst, size_t dpitch, const void *src,
                              size_t spitch, size_t width, size_t height,
                              enum cudaMemcpyKind kind, cudaStream_t stream)
{
    if (width > dpitch || width > spitch)
        return fail(cudaErrorInvalidValue, "cudaMemcpy2DAsync: width %zu "
                    "over pitch %zu / %zu", width, dpitch, spitch);
    if (width == 0 || height == 0)
        return cudaSuccess;
    /* each span, its first row to the end of its last, must be what kind
     * says */
    cudaError_t e = check_spans(dst, (height - 1) * dpitch + width, src,
                                (height - 1) * spitch + width, kind,
                                "cudaMemcpy2DAsync");
    if (e)
        return e;
    if (kind != cudaMemcpyDeviceToDevice)
        dn_emu_die("cudaMemcpy2DAsync: the emulator copies device to device only");
    count_copy(kind, height * width);
    enqueue_body([=]() {
        for (size_t r = 0; r < height; r++)
            memmove((char *)dst + r * dpitch, (const char *)src + r * spitch, width);
    });
    return cudaSuccess;
}

cudaError_t cudaMemsetAsync(void *p, int value, size_t bytes, cudaStream_t stream)
{
    if (bytes && !dn_emu_is_device(p, bytes))
        return fail(cudaErrorInvalidValue, "cudaMemset(%p, %zu bytes): not a device range", p, bytes);
    if (bytes)
        enqueue_body([p, value, bytes]() { memset(p, value, bytes); });
    return cudaSuccess;
}

cudaError_t cudaMemset(void *p, int value, size_t bytes)
{
    cudaError_t e = cudaMemsetAsync(p, value, bytes, NULL);
    host_wait();
    return e;
}

/* ------------------------------------------------------------ kernels */

enum { RUN, AT_WARP, AT_BLOCK, DONE };

/* A GPU thread. Fibers live as long as the program: each loops "run the
 * current kernel body, report DONE, wait", and switches with
 * GCC's __builtin_setjmp/__builtin_longjmp (a few registers: no signal
 * mask, no unwinding, unlike swapcontext or longjmp);
 * ucontext only starts a fiber the first time. */
struct dn_emu_fiber {
    void *jb[5];
    ucontext_t start;
    char *stack;
    int started;
    uint3 idx;
    int state;
    uint64_t shfl;
    void *fake; /* ASan's fake stack of this fiber while it waits */
};

dn_emu_block_state dn_emu_now;

/* AddressSanitizer follows the switches between the scheduler's stack and
 * the fibers' when told (a build with ASan checks every kernel's loads and
 * stores against the device allocations' bounds). */
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/common_interface_defs.h>
#define SWITCH_START(save, bottom, size) __sanitizer_start_switch_fiber(save, bottom, size)
#define SWITCH_DONE(save, bottom, size) __sanitizer_finish_switch_fiber(save, bottom, size)
#else
#define SWITCH_START(save, bottom, size) ((void)(save), (void)(bottom), (void)(size))
#define SWITCH_DONE(save, bottom, size) ((void)(save), (void)(bottom), (void)(size))
#endif
/* the scheduler's stack, as ASan reports it when a fiber first switches back */
static const void *main_bottom;
static size_t main_size;
static void *scheduler_fake; /* ASan's fake stack of the scheduler */

static void *scheduler[5];

/* (not in the function that set the buffer: GCC's rule). The switches are
 * not instrumented: ASan would clear the shadow of the whole stack left
 * behind at every jump, megabytes each time. */
#define NO_ASAN __attribute__((no_sanitize("address")))
NO_ASAN __attribute__((noinline, noreturn)) static void jump(void **buf)
{
    __builtin_longjmp(buf, 1);
}
/* (on the heap and never destroyed: the fibers live as long as the
 * program, and a destroyed vector would make them look leaked at exit) */
static std::vector<dn_emu_fiber *> &fibers = *new std::vector<dn_emu_fiber *>;
static const size_t STACK = 64 << 10;
static const std::function<void()> *running_body;
static const char *running_name;

uint3 dn_emu_thread_idx(void)
{
    if (!dn_emu_now.self)
        dn_emu_die("threadIdx read outside a kernel");
    return dn_emu_now.self->idx;
}

/* Kernels that never reached a barrier in their first launch run their
 * later launches "direct": each thread a plain call on this stack, without
 * fibers (ten times faster). A direct thread cannot wait; one that reaches
 * a barrier all the same stops the program with the kernel's name. */
static std::map<const char *, int> kernel_waits; /* name -> ever waited */
static int running_direct, running_waited;

NO_ASAN static void wait_at(int state)
{
    dn_emu_fiber *self = dn_emu_now.self;
    if (!self)
        dn_emu_die("a barrier outside a kernel");
    if (running_direct)
        dn_emu_die("kernel %s reached a barrier in a launch run without "
                   "fibers (its first launch reached none); DN_EMU_FIBERS=1 "
                   "runs every launch with fibers", running_name);
    if (state != DONE)
        running_waited = 1;
    self->state = state;
    if (!__builtin_setjmp(self->jb)) {
        SWITCH_START(&self->fake, main_bottom, main_size);
        jump(scheduler);
    }
    SWITCH_DONE(self->fake, NULL, NULL); /* back on this fiber's stack */
}

static void fiber_main(void)
{
    SWITCH_DONE(NULL, &main_bottom, &main_size); /* first entry */
    for (;;) {
        (*running_body)();
        wait_at(DONE);
    }
}

/* Run f until it waits or finishes. */
NO_ASAN static void resume(dn_emu_fiber *f)
{
    dn_emu_now.self = f;
    if (!__builtin_setjmp(scheduler)) {
        SWITCH_START(&scheduler_fake, f->stack, STACK);
        if (f->started)
            jump(f->jb);
        f->started = 1;
        setcontext(&f->start);
    }
    SWITCH_DONE(scheduler_fake, NULL, NULL); /* back on the scheduler's stack */
    dn_emu_now.self = NULL;
}

static dn_emu_fiber *fiber_make(void)
{
    dn_emu_fiber *f = new dn_emu_fiber();
    void *s = mmap(NULL, STACK, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    if (s == MAP_FAILED)
        dn_emu_die("out of memory for thread stacks");
    f->stack = (char *)s;
    getcontext(&f->start);
    f->start.uc_stack.ss_sp = f->stack;
    f->start.uc_stack.ss_size = STACK;
    f->start.uc_link = NULL; /* fiber_main never returns */
    makecontext(&f->start, fiber_main, 0);
    return f;
}

void __syncthreads(void) { wait_at(AT_BLOCK); }

uint64_t dn_emu_shfl_down(unsigned mask, uint64_t bits, unsigned delta, int width)
{
    dn_emu_fiber *self = dn_emu_now.self;
    if (mask != 0xffffffffu)
        dn_emu_die("kernel %s: __shfl_down_sync with mask %#x: the emulator "
                   "knows full warps only", running_name, mask);
    if (width <= 0 || width > 32 || (width & (width - 1)))
        dn_emu_die("kernel %s: __shfl_down_sync width %d", running_name, width);
    self->shfl = bits;
    wait_at(AT_WARP); /* every lane has published */
    const long me = (long)self->idx.x + (long)self->idx.y * blockDim.x +
                    (long)self->idx.z * blockDim.x * blockDim.y;
    const int lane = (int)(me & 31);
    uint64_t r = bits;
    if (lane % width + (int)delta < width)
        r = fibers[me + delta]->shfl;
    wait_at(AT_WARP); /* every lane has read */
    return r;
}

static int reverse_order(void)
{
    const char *s = getenv("DN_EMU_ORDER");
    if (s && strcmp(s, "forward") && strcmp(s, "reverse"))
        dn_emu_die("DN_EMU_ORDER=%s: expected forward or reverse", s);
    return s && !strcmp(s, "reverse");
}

static void run_block_direct(const dn_emu_config &cfg, uint3 block, int rev)
{
    const int n = (int)(cfg.block.x * cfg.block.y * cfg.block.z);
    dn_emu_fiber self;
    dn_emu_now.block_idx = block;
    dn_emu_now.self = &self;
    for (int k = 0; k < n; k++) {
        const int t = rev ? n - 1 - k : k;
        self.idx = uint3{(unsigned)t % cfg.block.x,
                         (unsigned)t / cfg.block.x % cfg.block.y,
                         (unsigned)t / (cfg.block.x * cfg.block.y)};
        (*running_body)();
    }
    dn_emu_now.self = NULL;
}

static void run_block(const dn_emu_config &cfg, uint3 block, int rev)
{
    const int n = (int)(cfg.block.x * cfg.block.y * cfg.block.z);
    while ((int)fibers.size() < n)
        fibers.push_back(fiber_make());
    dn_emu_now.block_idx = block;
    for (int t = 0; t < n; t++) {
        dn_emu_fiber *f = fibers[t];
        f->idx = uint3{(unsigned)t % cfg.block.x,
                       (unsigned)t / cfg.block.x % cfg.block.y,
                       (unsigned)t / (cfg.block.x * cfg.block.y)};
        f->state = RUN;
    }
    for (;;) {
        for (int k = 0; k < n; k++) {
            dn_emu_fiber *f = fibers[rev ? n - 1 - k : k];
            if (f->state == RUN)
                resume(f);
        }
        int done = 0, at_block = 0, released = 0;
        for (int t = 0; t < n; t++) {
            done += fibers[t]->state == DONE;
            at_block += fibers[t]->state == AT_BLOCK;
        }
        if (done == n)
            return;
        /* a shuffle completes when all 32 lanes of the warp are at it */
        for (int w = 0; w * 32 < n; w++) {
            int lanes = n - w * 32 < 32 ? n - w * 32 : 32, waiting = 0;
            for (int t = w * 32; t < w * 32 + lanes; t++)
                waiting += fibers[t]->state == AT_WARP;
            if (waiting == 32) {
                for (int t = w * 32; t < w * 32 + 32; t++)
                    fibers[t]->state = RUN;
                released = 1;
            } else if (waiting) {
                int exited = 0;
                for (int t = w * 32; t < w * 32 + lanes; t++)
                    exited += fibers[t]->state == DONE;
                dn_emu_die("kernel %s, block (%u,%u,%u): __shfl_down_sync with "
                           "a full mask reached by %d lanes of warp %d; %d lanes "
                           "exist, %d returned, the rest wait at __syncthreads",
                           running_name, block.x, block.y, block.z, waiting, w,
                           lanes, exited);
            }
        }
        if (released)
            continue;
        if (at_block == n) {
            for (int t = 0; t < n; t++)
                fibers[t]->state = RUN;
            continue;
        }
        dn_emu_die("kernel %s, block (%u,%u,%u): __syncthreads reached by %d of "
                   "%d threads; %d returned before it",
                   running_name, block.x, block.y, block.z, at_block, n, done);
    }
}

void dn_emu_launch_body(const dn_emu_config &cfg, const char *name,
                        std::function<void()> body)
{
    const dim3 g = cfg.grid, b = cfg.block;
    const unsigned long threads = (unsigned long)b.x * b.y * b.z;
    if (!g.x || !g.y || !g.z || !threads || threads > 1024 || b.z > 64 ||
        g.x > 2147483647u || g.y > 65535 || g.z > 65535) {
        fail(cudaErrorInvalidConfiguration,
             "kernel %s: grid (%u,%u,%u), block (%u,%u,%u)", name, g.x, g.y,
             g.z, b.x, b.y, b.z);
        return;
    }
    if (cfg.shared > 48 * 1024) {
        fail(cudaErrorInvalidValue, "kernel %s: %zu bytes of dynamic shared memory",
             name, cfg.shared);
        return;
    }
    dn_emu_config c = cfg;
    counts.launches++;
    enqueue_body([c, name, body]() {
        running_body = &body;
        running_name = name;
        dn_emu_now.block_dim = c.block;
        dn_emu_now.grid_dim = c.grid;
        auto seen = kernel_waits.find(name);
        const char *fibers_always = getenv("DN_EMU_FIBERS");
        running_direct = seen != kernel_waits.end() && !seen->second &&
                         !(fibers_always && !strcmp(fibers_always, "1"));
        running_waited = 0;
        const unsigned long nb = (unsigned long)c.grid.x * c.grid.y * c.grid.z;
        const int rev = reverse_order();
        for (unsigned long k = 0; k < nb; k++) {
            unsigned long i = rev ? nb - 1 - k : k;
            const uint3 block = {(unsigned)(i % c.grid.x),
                                 (unsigned)(i / c.grid.x % c.grid.y),
                                 (unsigned)(i / ((unsigned long)c.grid.x * c.grid.y))};
            if (running_direct)
                run_block_direct(c, block, rev);
            else
                run_block(c, block, rev);
        }
        if (!running_direct)
            kernel_waits[name] |= running_waited;
        running_direct = 0;
        running_body = NULL;
    });
}

/* ------------------------------------------------------------ cuBLAS */

struct dn_emu_cublas {
    cudaStream_t stream;
    cublasMath_t math;
};

cublasStatus_t cublasCreate(cublasHandle_t *h)
{
    *h = new dn_emu_cublas{NULL, CUBLAS_DEFAULT_MATH};
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasDestroy(cublasHandle_t h)
{
    dn_emu_drain();
    delete h;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetStream(cublasHandle_t h, cudaStream_t s)
{
    h->stream = s;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetMathMode(cublasHandle_t h, cublasMath_t m)
{
    h->math = m;
    return CUBLAS_STATUS_SUCCESS;
}

const char *cublasGetStatusString(cublasStatus_t s)
{
    switch (s) {
    case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
    case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
    default: return "CUBLAS_STATUS_UNKNOWN";
    }
}

/* A column-major rows x cols matrix with leading dimension ld must lie in
 * device memory (cuBLAS would fault otherwise). */
static void check_matrix(const char *call, char which, const float *p, int rows,
                         int cols, int ld, long stride, int count)
{
    if (rows == 0 || cols == 0)
        return;
    size_t span = ((size_t)(cols - 1) * ld + rows) * sizeof(float);
    for (int i = 0; i < count; i += count > 1 ? count - 1 : 1)
        if (!dn_emu_is_device(p + (long)i * stride, span))
            dn_emu_die("%s: matrix %c (%p + %d x %ld floats, %d x %d, ld %d) "
                       "is not inside one device allocation",
                       call, which, (const void *)p, i, stride, rows, cols, ld);
}

static cublasStatus_t gemm(const char *call, cublasHandle_t h,
                           cublasOperation_t ta, cublasOperation_t tb, int m,
                           int n, int k, const float *alpha, const float *A,
                           int lda, long sa, const float *B, int ldb, long sb,
                           const float *beta, float *C, int ldc, long sc,
                           int count)
{
    if (!h)
        return CUBLAS_STATUS_NOT_INITIALIZED;
    const int ar = ta == CUBLAS_OP_N ? m : k, ac = ta == CUBLAS_OP_N ? k : m;
    const int br = tb == CUBLAS_OP_N ? k : n, bc = tb == CUBLAS_OP_N ? n : k;
    if (m < 0 || n < 0 || k < 0 || count < 0 || lda < (ar > 1 ? ar : 1) ||
        ldb < (br > 1 ? br : 1) || ldc < (m > 1 ? m : 1) ||
        (ta != CUBLAS_OP_N && ta != CUBLAS_OP_T) ||
        (tb != CUBLAS_OP_N && tb != CUBLAS_OP_T)) {
        fprintf(stderr, "CUDA emulator: %s: m %d n %d k %d lda %d ldb %d ldc %d: "
                "invalid\n", call, m, n, k, lda, ldb, ldc);
        return CUBLAS_STATUS_INVALID_VALUE;
    }
    if (m == 0 || n == 0 || count == 0)
        return CUBLAS_STATUS_SUCCESS;
    check_matrix(call, 'A', A, ar, ac, lda, sa, count);
    check_matrix(call, 'B', B, br, bc, ldb, sb, count);
    check_matrix(call, 'C', C, m, n, ldc, sc, count);
    const float al = *alpha, be = *beta; /* host pointer mode */
    counts.library_calls++;
    enqueue_body([=]() {
        for (int i = 0; i < count; i++)
            cblas_sgemm(CblasColMajor,
                        ta == CUBLAS_OP_N ? CblasNoTrans : CblasTrans,
                        tb == CUBLAS_OP_N ? CblasNoTrans : CblasTrans, m, n, k,
                        al, A + (long)i * sa, lda, B + (long)i * sb, ldb, be,
                        C + (long)i * sc, ldc);
    });
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSgemm(cublasHandle_t h, cublasOperation_t ta,
                           cublasOperation_t tb, int m, int n, int k,
                           const float *alpha, const float *A, int lda,
                           const float *B, int ldb, const float *beta, float *C,
                           int ldc)
{
    return gemm("cublasSgemm", h, ta, tb, m, n, k, alpha, A, lda, 0, B, ldb,
                0, beta, C, ldc, 0, 1);
}

cublasStatus_t cublasSgemmStridedBatched(
    cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n,
    int k, const float *alpha, const float *A, int lda, long long sa,
    const float *B, int ldb, long long sb, const float *beta, float *C, int ldc,
    long long sc, int count)
{
    return gemm("cublasSgemmStridedBatched", h, ta, tb, m, n, k, alpha, A, lda,
                (long)sa, B, ldb, (long)sb, beta, C, ldc, (long)sc, count);
}

/* -------------------------------------------------------------- NCCL */

/* The ranks of one ncclCommInitAll, and the collective they are in. */
struct clique {
    int n;
    std::vector<const float *> send;
    std::vector<float *> recv;
    size_t count;
    int joined;
    const char *call; /* of the collective being joined */
    int root;         /* a broadcast's */
};

struct dn_emu_nccl {
    clique *c; /* the ranks, all in this process; NULL: ranks in others */
    int rank;
    int nranks; /* (c NULL) */
#ifdef DN_MPI
    MPI_Comm mpi; /* (c NULL) the processes of the id, ordered by rank */
#endif
};

static std::vector<clique *> &cliques = *new std::vector<clique *>;

static void check_collectives(void)
{
    for (clique *c : cliques)
        if (c->joined)
            dn_emu_die("the host waited for the device while %s "
                       "had %d of its %d ranks (NCCL would hang)",
                       c->call, c->joined, c->n);
}

ncclResult_t ncclCommInitAll(ncclComm_t *comms, int n, const int *devices)
{
    if (n < 1)
        return ncclInvalidArgument;
    clique *c = new clique{n, std::vector<const float *>(n), std::vector<float *>(n), 0, 0,
                           nullptr, 0};
    cliques.push_back(c);
    for (int r = 0; r < n; r++) {
        if (devices && (devices[r] < 0 || devices[r] >= device_count()))
            return ncclInvalidArgument;
        comms[r] = new dn_emu_nccl{c, r};
    }
    return ncclSuccess;
}

/* An id: a text no other process or call draws (a GPU's holds an address
 * to connect to; this one only has to tell communicators apart). */
ncclResult_t ncclGetUniqueId(ncclUniqueId *id)
{
    static unsigned serial;
    memset(id, 0, sizeof *id);
    snprintf(id->internal, sizeof id->internal, "dn-emu-nccl %ld %u %ld",
             (long)getpid(), ++serial, (long)time(NULL));
    return ncclSuccess;
}

static void say(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsay(fmt, ap);
    va_end(ap);
}

ncclResult_t ncclCommInitRank(ncclComm_t *comm, int nranks, ncclUniqueId id,
                              int rank)
{
    *comm = nullptr;
    if (nranks < 1 || rank < 0 || rank >= nranks)
        return ncclInvalidArgument;
    if (strncmp(id.internal, "dn-emu-nccl ", 12) != 0) {
        say("ncclCommInitRank: the id was not drawn by ncclGetUniqueId");
        return ncclInvalidArgument;
    }
    if (nranks == 1) {
        int device = current_device;
        return ncclCommInitAll(comm, 1, &device);
    }
#ifndef DN_MPI
    say("ncclCommInitRank: %d ranks live in other processes, and this "
        "emulator was built without MPI (make MPI=1)", nranks);
    return ncclInvalidUsage;
#else
    int up = 0, down = 0;
    MPI_Initialized(&up);
    MPI_Finalized(&down);
    if (!up || down) {
        say("ncclCommInitRank: %d ranks need MPI, and MPI is not running",
            nranks);
        return ncclInvalidUsage;
    }
    /* every process of the job joins the processes that passed its id
     * (MPI_Comm_split is collective over MPI_COMM_WORLD), ranked by rank */
    unsigned hash = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < sizeof id.internal; i++)
        hash = (hash ^ (unsigned char)id.internal[i]) * 16777619u;
    MPI_Comm mc;
    if (MPI_Comm_split(MPI_COMM_WORLD, (int)(hash & 0x7fffffff), rank,
                       &mc) != MPI_SUCCESS)
        return ncclSystemError;
    int size = 0, me = 0;
    MPI_Comm_size(mc, &size);
    MPI_Comm_rank(mc, &me);
    if (size != nranks || me != rank) {
        say("ncclCommInitRank(rank %d of %d): %d process(es) passed this id, "
            "this one as rank %d (did every process get rank 0's id, and "
            "its own rank?)", rank, nranks, size, me);
        MPI_Comm_free(&mc);
        return ncclInvalidArgument;
    }
    MPI_Comm_set_errhandler(mc, MPI_ERRORS_RETURN);
    *comm = new dn_emu_nccl{nullptr, rank, nranks, mc};
    return ncclSuccess;
#endif
}

ncclResult_t ncclCommDestroy(ncclComm_t comm)
{
#ifdef DN_MPI
    int down = 0;
    MPI_Finalized(&down);
    if (comm && !comm->c && !down)
        MPI_Comm_free(&comm->mpi);
#endif
    delete comm;
    return ncclSuccess;
}

ncclResult_t ncclGroupStart(void) { return ncclSuccess; }
ncclResult_t ncclGroupEnd(void) { return ncclSuccess; }

const char *ncclGetErrorString(ncclResult_t r)
{
    switch (r) {
    case ncclSuccess: return "no error";
    case ncclSystemError: return "system error (emulator: an MPI call failed)";
    case ncclInvalidArgument: return "invalid argument (emulator)";
    case ncclInvalidUsage: return "invalid usage (emulator)";
    }
    return "unknown result (emulator)";
}

/* A collective of ranks in several processes (root < 0: an all-reduce):
 * the work queued before it, then MPI on the emulated device memory. */
static ncclResult_t across_processes(const char *call, ncclComm_t comm,
                                     const void *send, void *recv,
                                     size_t count, int root)
{
    if (!dn_emu_is_device(send, count * 4) || !dn_emu_is_device(recv, count * 4))
        dn_emu_die("%s: buffers of %zu floats not in device memory", call, count);
#ifdef DN_MPI
    counts.library_calls++;
    dn_emu_drain();
    const float *from = (const float *)send;
    float *to = (float *)recv;
    for (size_t off = 0; off < count; off += INT_MAX) {
        int n = count - off > INT_MAX ? INT_MAX : (int)(count - off);
        int rc;
        if (root < 0) {
            rc = MPI_Allreduce(from == to ? MPI_IN_PLACE : from + off,
                               to + off, n, MPI_FLOAT, MPI_SUM, comm->mpi);
        } else {
            if (comm->rank == root && from != to)
                memcpy(to + off, from + off, sizeof(float) * (size_t)n);
            rc = MPI_Bcast(to + off, n, MPI_FLOAT, root, comm->mpi);
        }
        if (rc != MPI_SUCCESS) {
            say("%s: MPI error %d", call, rc);
            return ncclSystemError;
        }
    }
    return ncclSuccess;
#else
    return ncclInvalidUsage; /* no such communicator is made */
#endif
}

/* Rank comm->rank joins collective `call` of its clique; true when it was
 * the last rank in (the caller then queues the work and calls reset). */
static bool join(const char *call, ncclComm_t comm, const void *send,
                 void *recv, size_t count, int root)
{
    clique *c = comm->c;
    if (!dn_emu_is_device(send, count * 4) || !dn_emu_is_device(recv, count * 4))
        dn_emu_die("%s: buffers of %zu floats not in device memory", call, count);
    if (c->joined && strcmp(c->call, call) != 0)
        dn_emu_die("%s: rank %d joins while the others are in %s", call,
                   comm->rank, c->call);
    if (c->joined && (c->count != count || c->root != root))
        dn_emu_die("%s: rank %d gives %zu floats (root %d), others %zu "
                   "(root %d)", call, comm->rank, count, root, c->count,
                   c->root);
    if (c->send[comm->rank])
        dn_emu_die("%s: rank %d joined twice", call, comm->rank);
    c->send[comm->rank] = (const float *)send;
    c->recv[comm->rank] = (float *)recv;
    c->count = count;
    c->call = call;
    c->root = root;
    if (++c->joined < c->n)
        return false;
    counts.library_calls++;
    return true;
}

static void reset(clique *c)
{
    std::fill(c->send.begin(), c->send.end(), nullptr);
    c->joined = 0;
}

ncclResult_t ncclAllReduce(const void *send, void *recv, size_t count,
                           ncclDataType_t type, ncclRedOp_t op, ncclComm_t comm,
                           cudaStream_t stream)
{
    if (type != ncclFloat || op != ncclSum)
        return ncclInvalidArgument;
    if (!comm->c)
        return across_processes("ncclAllReduce", comm, send, recv, count, -1);
    if (!join("ncclAllReduce", comm, send, recv, count, 0))
        return ncclSuccess;
    /* every rank is in: queue the reduction after all their work */
    clique *c = comm->c;
    std::vector<const float *> s = c->send;
    std::vector<float *> r = c->recv;
    enqueue_body([s, r, count]() {
        std::vector<float> sum(count, 0.0f);
        for (const float *p : s)
            for (size_t i = 0; i < count; i++)
                sum[i] += p[i];
        for (float *p : r)
            memcpy(p, sum.data(), count * sizeof(float));
    });
    reset(c);
    return ncclSuccess;
}

ncclResult_t ncclBroadcast(const void *send, void *recv, size_t count,
                           ncclDataType_t type, int root, ncclComm_t comm,
                           cudaStream_t stream)
{
    if (type != ncclFloat || root < 0 ||
        root >= (comm->c ? comm->c->n : comm->nranks))
        return ncclInvalidArgument;
    if (!comm->c)
        return across_processes("ncclBroadcast", comm, send, recv, count, root);
    if (!join("ncclBroadcast", comm, send, recv, count, root))
        return ncclSuccess;
    /* every rank is in: queue the copies of root's buffer after all work */
    clique *c = comm->c;
    const float *from = c->send[root];
    std::vector<float *> r = c->recv;
    enqueue_body([from, r, count]() {
        std::vector<float> data(from, from + count);
        for (float *p : r)
            memcpy(p, data.data(), count * sizeof(float));
    });
    reset(c);
    return ncclSuccess;
}

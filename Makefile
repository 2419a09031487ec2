# Darknet-style framework with warm-restart LR schedulers.
#   make                      bin/darknet, build/libdarknet.a, plugins (CPU, OpenBLAS)
#   make GPU=1 CUDNN=1        CUDA backend (CUDA_DIR, CUDNN_DIR; NCCL=0 without NCCL)
#   make GPU=1 EMU=1          the CUDA backend on a CPU emulation (tests only;
#                             EMU_SAN=1 adds ASan and UBSan)
#   make OPENCV=1             image lists through OpenCV
#   make MPI=1                data-parallel training across processes under
#                             mpirun (MPICC: the MPI compiler wrapper); with
#                             GPU=1 one GPU per rank, NCCL bootstrapped over MPI
#   make DEBUG=1              -O0 -g
#   make BLAS=openblas|blis   CPU GEMM library
#   make ONEDNN=0             convolutions through im2col + GEMM only, no oneDNN
#   make test | bench | bench-mpi | demo | figure1 | experiment | plugins | test-gpu | test-gpu-emu | deps | clean
#   make keys-doc             docs/keys.md from the key tables (darknet/src/keys.h)
#   make fuzz [FUZZ_SECONDS=60]  libFuzzer targets (clang), each for FUZZ_SECONDS

GPU     ?= 0
CUDNN   ?= 0
NCCL    ?= 1
EMU     ?= 0
EMU_SAN ?= 0
OPENCV  ?= 1
MPI     ?= 0
MPICC   ?= mpicc
DEBUG   ?= 0
BLAS    ?= openblas
ONEDNN  ?= 1
CUDA_DIR  ?= /usr/local/cuda
CUDNN_DIR ?= $(CUDA_DIR)
NCCL_DIR  ?= $(CUDA_DIR)
ARCH    ?= -gencode arch=compute_90,code=sm_90 -gencode arch=compute_90,code=compute_90

BUILD   ?= build
BIN     ?= bin
CC      ?= cc
NVCC    ?= $(CUDA_DIR)/bin/nvcc
CFLAGS  := -std=gnu11 -Wall -Wextra -Wno-unused-parameter -fPIC -fopenmp \
           -Idarknet/include -Idarknet/src -Iplugins -MMD -MP
LDLIBS  := -lm -lpthread -ldl -lz -fopenmp

ifeq ($(DEBUG),1)
CFLAGS  += -O0 -g
else
CFLAGS  += -O3 -march=x86-64-v3 -g
endif

# DEPS_ROOT: a folder holding Debian packages unpacked (tests/gpu/device-deps.sh)
# where the machine has no such libraries installed and nothing to install
# them with: its headers and libraries come first
ifneq ($(DEPS_ROOT),)
CFLAGS  += -isystem $(DEPS_ROOT)/usr/include \
           -isystem $(DEPS_ROOT)/usr/include/x86_64-linux-gnu/openblas-pthread
LDLIBS  += -L$(DEPS_ROOT)/usr/lib/x86_64-linux-gnu \
           -L$(DEPS_ROOT)/usr/lib/x86_64-linux-gnu/openblas-pthread
endif

ifeq ($(BLAS),openblas)
CFLAGS  += -DDN_BLAS_OPENBLAS -isystem /usr/include/x86_64-linux-gnu/openblas-pthread
LDLIBS  += -lopenblas
else ifeq ($(BLAS),blis)
CFLAGS  += -DDN_BLAS_BLIS -isystem /usr/include/x86_64-linux-gnu/blis-openmp
LDLIBS  += -lblis
else
$(error BLAS must be openblas or blis)
endif

# oneDNN (Debian's libdnnl-dev) runs [convolutional] on the CPU; without its
# header the build says so and keeps the im2col + GEMM path alone
ifeq ($(ONEDNN),1)
ifneq ($(wildcard /usr/include/oneapi/dnnl/dnnl.h),)
CFLAGS  += -DDN_ONEDNN
LDLIBS  += -ldnnl
else
$(warning oneDNN not found (apt-get install libdnnl-dev): convolutions use im2col + GEMM)
endif
endif

# MPI (Debian's libopenmpi-dev): the flags of the MPI compiler wrapper
# (Open MPI's --showme, MPICH's -compile_info / -link_info)
ifeq ($(MPI),1)
MPI_CFLAGS := $(or $(shell $(MPICC) --showme:compile 2>/dev/null),$(filter -I% -D% -pthread,$(shell $(MPICC) -compile_info 2>/dev/null)))
MPI_LIBS   := $(or $(shell $(MPICC) --showme:link 2>/dev/null),$(filter -L% -l% -Wl% -pthread,$(shell $(MPICC) -link_info 2>/dev/null)))
ifeq ($(MPI_LIBS)$(filter deps clean,$(MAKECMDGOALS)),)
$(error MPI=1: $(MPICC) not found (make deps MPI=1 installs Open MPI))
endif
CFLAGS  += -DDN_MPI $(MPI_CFLAGS)
LDLIBS  += $(MPI_LIBS)
endif

OPENCV_OK := $(shell pkg-config --exists opencv4 2>/dev/null && echo 1)
ifeq ($(OPENCV)$(OPENCV_OK),11)
CFLAGS  += -DDN_OPENCV
CXXFLAGS_CV := $(shell pkg-config --cflags opencv4)
LDLIBS  += -lopencv_imgcodecs -lopencv_imgproc -lopencv_core -lstdc++
endif

ifeq ($(GPU)$(EMU),11)
# The GPU backend on tests/gpu/emu, a CPU emulation of CUDA, cuBLAS, cuDNN
# and NCCL: runs the GPU tests where there is no GPU. A test tool only.
CFLAGS  += -DDN_GPU -Itests/gpu/emu
LDLIBS  += -lstdc++
ifeq ($(CUDNN),1)
CFLAGS  += -DDN_CUDNN
endif
# EMU_SAN=1: AddressSanitizer and UBSan over the library and every kernel
# (a load or store outside a device allocation stops the test with it)
ifeq ($(EMU_SAN),1)
EMU_SAN_FLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
CFLAGS  += $(EMU_SAN_FLAGS)
LDLIBS  += $(EMU_SAN_FLAGS)
endif
ifeq ($(NCCL),1)
CFLAGS  += -DDN_NCCL
endif
else ifeq ($(GPU),1)
CFLAGS  += -DDN_GPU -I$(CUDA_DIR)/include
LDLIBS  += -L$(CUDA_DIR)/lib64 -Wl,-rpath,$(CUDA_DIR)/lib64 -lcudart -lcublas
NVFLAGS := $(ARCH) -O3 -MMD -MP -Xcompiler -fPIC,-Wall -DDN_GPU -Idarknet/include -Idarknet/src -Iplugins -I$(CUDA_DIR)/include
ifeq ($(CUDNN),1)
CFLAGS  += -DDN_CUDNN -I$(CUDNN_DIR)/include
NVFLAGS += -DDN_CUDNN -I$(CUDNN_DIR)/include
LDLIBS  += -L$(CUDNN_DIR)/lib -L$(CUDNN_DIR)/lib64 -lcudnn
endif
# NCCL: all-reduce for -gpus 0,1,... and for GPU ranks under mpirun;
# NCCL=0 builds without it (one GPU)
ifeq ($(NCCL),1)
CFLAGS  += -DDN_NCCL -I$(NCCL_DIR)/include
LDLIBS  += -L$(NCCL_DIR)/lib -L$(NCCL_DIR)/lib64 -lnccl
endif
# MPI=1: nvcc sees what the C compiler sees of MPI (no .cu file calls it
# today); the wrapper's other flags (-pthread) are gcc's, not nvcc's
ifeq ($(MPI),1)
NVFLAGS += -DDN_MPI $(filter -I% -D%,$(MPI_CFLAGS))
endif
endif

LIB_SRC   := $(wildcard darknet/src/*.c) $(wildcard plugins/*.c)
# The command line (darknet/src/cli/): a client of the library, linked into
# bin/darknet and into the tests, fuzz targets and benchmarks that run it;
# never part of libdarknet.a. CLI_SRC is all of it but main.c.
CLI_MAIN  := darknet/src/cli/main.c
CLI_SRC   := $(filter-out $(CLI_MAIN), $(wildcard darknet/src/cli/*.c))
CLI_OBJ   := $(CLI_SRC:%.c=$(BUILD)/%.o)
LIB_CXX   := $(wildcard darknet/src/*.cpp)
CU_SRC    := $(wildcard darknet/src/*.cu)
LIB_OBJ   := $(LIB_SRC:%.c=$(BUILD)/%.o)
ifneq ($(filter -DDN_OPENCV,$(CFLAGS)),)
LIB_OBJ   += $(LIB_CXX:%.cpp=$(BUILD)/%.o)
endif
ifeq ($(GPU),1)
LIB_OBJ   += $(CU_SRC:%.cu=$(BUILD)/%.cu.o)
endif
ifeq ($(GPU)$(EMU),11)
EMU_OBJ   := $(BUILD)/tests/gpu/emu/emu.o $(BUILD)/tests/gpu/emu/emu_cudnn.o
LIB_OBJ   += $(EMU_OBJ)
endif

EXT_PLUGINS := $(BUILD)/plugins/libdn_sched_linear.so

all: $(BIN)/darknet plugins

$(BIN)/darknet: $(CLI_MAIN:%.c=$(BUILD)/%.o) $(CLI_OBJ) $(BUILD)/libdarknet.a
	@mkdir -p $(BIN)
	$(CC) -o $@ $^ $(LDLIBS) -rdynamic

# The library never parses argv nor prints usage: building it fails when
# it defines a command-line symbol (main, the commands, the option helpers
# of darknet/src/cli/cli.h) or a source of it includes cli.h.
# Built afresh, also when the Makefile changes, so that no member of an
# older layout (a file since moved out) lingers in it.
CLI_SYMBOLS := main 'cmd_.*' 'dn_cmd_.*' 'dn_cli_.*' 'dn_arg_.*' dn_positional \
               dn_check_options dn_devices_parse

$(BUILD)/libdarknet.a: $(LIB_OBJ) Makefile
	@rm -f $@ $@.tmp
	ar rcs $@.tmp $(filter-out Makefile,$^)
	@bad=$$(nm -g --defined-only $@.tmp | awk 'NF == 3 { print $$3 }' | \
	        grep -x $(CLI_SYMBOLS:%=-e %)); \
	 inc=$$(grep -l '^#include "\(cli/\)\?cli\.h"' $(LIB_SRC) $(LIB_CXX) $(CU_SRC) 2>/dev/null); \
	 if [ -n "$$bad$$inc" ]; then \
	     echo "$@: command-line code in the library (it belongs in darknet/src/cli/):" \
	          $$bad $$inc >&2; rm -f $@.tmp; exit 1; fi
	@mv $@.tmp $@

# Objects depend on the flags they were built with. $(BUILD)/flags holds
# the compilers, flags and libraries of this build directory and is
# rewritten only when they change (a switch such as ONEDNN=0, a library
# found or not), so every object built under other flags is rebuilt rather
# than linked stale. The wrappers that install packages and then run a
# fresh make (test, demo, bench, ...) leave it to that make.
FLAGS_FILE := $(BUILD)/flags
FLAGS_NOW  := $(CC) $(CFLAGS) | $(CXX) $(CXXFLAGS_CV) | $(NVCC) $(NVFLAGS) | $(LDLIBS)
WRAPPERS   := test demo bench bench-mpi fuzz figure1 test-gpu test-gpu-emu deps clean
ifneq ($(filter-out $(WRAPPERS),$(or $(MAKECMDGOALS),all)),)
$(shell mkdir -p $(BUILD) && \
    if [ "$$(cat $(FLAGS_FILE) 2>/dev/null)" != '$(subst ','\'',$(FLAGS_NOW))' ]; then \
        printf '%s\n' '$(subst ','\'',$(FLAGS_NOW))' > $(FLAGS_FILE); fi)
endif
$(FLAGS_FILE):
	@mkdir -p $(dir $@) && touch $@

$(BUILD)/%.o: %.c $(FLAGS_FILE)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/%.o: %.cpp $(FLAGS_FILE)
	@mkdir -p $(dir $@)
	$(CXX) -O2 -fPIC -MMD -MP -Idarknet/include -Idarknet/src $(CXXFLAGS_CV) -c $< -o $@

ifeq ($(EMU),1)
EMU_CXXFLAGS := -std=c++17 -O2 -g -MMD -MP \
    $(filter-out -std=% -Wextra -O% -march=% -g -MMD -MP,$(CFLAGS))
$(BUILD)/%.cu.o: %.cu tests/gpu/emu/launch.pl $(FLAGS_FILE)
	@mkdir -p $(dir $@)
	perl tests/gpu/emu/launch.pl $< > $(BUILD)/$*.emu.cc
	$(CXX) $(EMU_CXXFLAGS) -DDN_EMU_DEVICE_CODE -c $(BUILD)/$*.emu.cc -o $@

$(BUILD)/tests/gpu/emu/%.o: tests/gpu/emu/%.cc $(FLAGS_FILE)
	@mkdir -p $(dir $@)
	$(CXX) $(EMU_CXXFLAGS) -c $< -o $@
else
$(BUILD)/%.cu.o: %.cu $(FLAGS_FILE)
	@mkdir -p $(dir $@)
	$(NVCC) $(NVFLAGS) -c $< -o $@
endif

libdarknet.a: $(BUILD)/libdarknet.a
	cp $< $@

plugins: $(EXT_PLUGINS)

$(BUILD)/plugins/libdn_sched_%.so: plugins/external/%.c darknet/include/dn_scheduler.h
	@mkdir -p $(dir $@)
	$(CC) -std=gnu11 -Wall -Wextra -O2 -fPIC -shared -Idarknet/include $< -o $@ -lm

# Test fixtures (tests/test_schedule.c): deliberately broken scheduler
# plugins, one per kind, from tests/fixtures/bad_plugin.c.
BAD_PLUGINS := $(patsubst %,$(BUILD)/plugins/libdn_bad_%.so,abi size noentry nullentry norate \
               nofree dupname badname dataentry badptr badnameptr datarate nanrate negrate)

$(BUILD)/plugins/libdn_bad_%.so: tests/fixtures/bad_plugin.c darknet/include/dn_scheduler.h
	@mkdir -p $(dir $@)
	$(CC) -std=gnu11 -Wall -Wextra -O2 -fPIC -shared -Idarknet/include -DDN_BAD_$* $< -o $@

# ------------------------------------------------------------------- tests
# Tests build with AddressSanitizer and UBSan into build/asan.
TEST_SRC  := $(wildcard tests/test_*.c)
TEST_BIN  := $(TEST_SRC:tests/%.c=$(BUILD)/asan/tests/%)
# the fuzz targets (tests/fuzz/, see fuzzing below), replayed by make test
FUZZ_TARGETS := cfg cli weights idx cifar imagelist plugin
FUZZ_REPLAY_BIN := $(FUZZ_TARGETS:%=$(BUILD)/asan/tests/fuzz_%)
ASAN_FLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
TEST_HELPERS := $(filter-out tests/test_%.c,$(wildcard tests/*.c))
ASAN_OBJ  := $(LIB_SRC:%.c=$(BUILD)/asan/%.o) $(TEST_HELPERS:%.c=$(BUILD)/asan/%.o)
# the tests of the command line (test_cli, test_cmd_*, test_keys) link it too
ASAN_CLI_OBJ := $(CLI_SRC:%.c=$(BUILD)/asan/%.o)
CLI_TEST_BIN := $(filter $(BUILD)/asan/tests/test_cli $(BUILD)/asan/tests/test_cmd_% $(BUILD)/asan/tests/test_keys,$(TEST_BIN))
# (always a CPU build: the GPU tests are tests/gpu, run by test-gpu)
ASAN_CFLAGS := $(filter-out -O3 -DDN_OPENCV -DDN_GPU -DDN_CUDNN -DDN_NCCL,$(CFLAGS)) -O1 -g $(ASAN_FLAGS)
ASAN_LIBS := $(filter-out -lopencv_imgcodecs -lopencv_imgproc -lopencv_core -lstdc++ -lcudart -lcublas -lcudnn -lnccl,$(LDLIBS)) -lcmocka

$(BUILD)/asan/%.o: %.c $(FLAGS_FILE)
	@mkdir -p $(dir $@)
	$(CC) $(ASAN_CFLAGS) -c $< -o $@

# tests find the plugins of this build (BUILD may be overridden)
$(BUILD)/asan/tests/%.o: ASAN_CFLAGS += -DDN_TEST_PLUGIN_DIR='"$(BUILD)/plugins"'

$(BUILD)/asan/tests/%: $(BUILD)/asan/tests/%.o $(ASAN_OBJ)
	$(CC) $(ASAN_FLAGS) -o $@ $^ $(ASAN_LIBS) -rdynamic

$(CLI_TEST_BIN) $(BUILD)/asan/tests/fuzz_cli: $(ASAN_CLI_OBJ)

# test, demo and bench first install what is missing (deps), then run a
# fresh make: the switches above (OpenCV found or not) are decided after the
# install, not before it.
test: deps
	@$(MAKE) --no-print-directory run-tests

# tests/fault/run.sh: training under SIGKILL, injected kills at every
# fsync (strace), a full disk, a read-only backup directory and SIGINT
# tests/test_mpi.c runs the MPI build of bin/darknet under mpirun: built
# into $(BUILD)/mpi where mpicc exists (else its tests are skipped)
MPI_DARKNET := $(if $(shell command -v $(MPICC) 2>/dev/null),$(BUILD)/mpi/bin/darknet)

run-tests: $(BIN)/darknet plugins $(BAD_PLUGINS) $(TEST_BIN) $(FUZZ_REPLAY_BIN) \
           $(if $(MPI_DARKNET),mpi-darknet)
	@tests/gpu/run.sh --if-gpu
	@DARKNET=$(BIN)/darknet DARKNET_MPI=$(MPI_DARKNET) tests/run_all.sh \
	    $(TEST_BIN) $(FUZZ_REPLAY_BIN) tests/fault/run.sh

mpi-darknet:
	@$(MAKE) --no-print-directory MPI=1 BUILD=$(BUILD)/mpi BIN=$(BUILD)/mpi/bin \
	    $(BUILD)/mpi/bin/darknet

# ------------------------------------------------------------------- fuzzing
# libFuzzer targets (tests/fuzz/fuzz_*.c; clang, -fsanitize=fuzzer,address,
# undefined). make fuzz runs each for FUZZ_SECONDS from its seeds in
# tests/fuzz/corpus/TARGET/ (new inputs go to build/fuzz/work/TARGET/,
# crashes to build/fuzz/artifacts/TARGET/). make test replays every seed and
# every input in tests/fuzz/regress/TARGET/ (a crasher, once fixed, is
# committed there) in the plain ASan build: no clang needed.
FUZZ_SECONDS ?= 60
FUZZ_CC ?= clang
FUZZ_CXX ?= clang++
FUZZ_HDR := tests/fuzz/fuzz.h

$(BUILD)/asan/tests/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/replay.c tests/fuzz/fuzz_util.c \
        $(FUZZ_HDR) $(ASAN_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(filter-out -MMD -MP,$(ASAN_CFLAGS)) -Itests/fuzz -DFUZZ_TARGET='"$*"' \
	    -o $@ tests/fuzz/fuzz_$*.c tests/fuzz/replay.c tests/fuzz/fuzz_util.c \
	    $(filter %.o,$^) $(ASAN_LIBS) -rdynamic

FUZZ_SAN    := -fsanitize=address,undefined -fno-sanitize-recover=undefined \
               -fno-omit-frame-pointer
FUZZ_CFLAGS := $(filter-out -O3 -march=% -fopenmp -DDN_GPU -DDN_CUDNN -DDN_NCCL,$(CFLAGS)) \
               -O1 -g -Wno-unknown-pragmas $(FUZZ_SAN) -fsanitize=fuzzer-no-link
FUZZ_OBJ    := $(LIB_SRC:%.c=$(BUILD)/fuzz/%.o)
ifneq ($(filter -DDN_OPENCV,$(CFLAGS)),)
FUZZ_OBJ    += $(BUILD)/fuzz/darknet/src/image_cv.o
endif
FUZZ_LIBS   := $(filter-out -fopenmp -lcudart -lcublas -lcudnn -lnccl,$(LDLIBS))
FUZZ_BIN    := $(FUZZ_TARGETS:%=$(BUILD)/fuzz/fuzz_%)

$(BUILD)/fuzz/fuzz_cli: $(CLI_SRC:%.c=$(BUILD)/fuzz/%.o)

$(BUILD)/fuzz/%.o: %.c $(FLAGS_FILE)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -c $< -o $@

$(BUILD)/fuzz/darknet/src/image_cv.o: darknet/src/image_cv.cpp
	@mkdir -p $(dir $@)
	$(FUZZ_CXX) -O1 -g -fPIC $(FUZZ_SAN) -fno-sanitize=vptr -fsanitize=fuzzer-no-link \
	    -Idarknet/include -Idarknet/src $(CXXFLAGS_CV) -c $< -o $@

$(BUILD)/fuzz/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz_util.c $(FUZZ_HDR) $(FUZZ_OBJ)
	$(FUZZ_CC) $(filter-out -MMD -MP,$(FUZZ_CFLAGS)) -fsanitize=fuzzer -Itests/fuzz \
	    -o $@ tests/fuzz/fuzz_$*.c tests/fuzz/fuzz_util.c $(filter %.o,$^) $(FUZZ_LIBS)

fuzz:
	@scripts/deps.sh clang libclang-rt-14-dev
	@$(MAKE) --no-print-directory run-fuzz

run-fuzz: $(FUZZ_BIN) plugins $(BAD_PLUGINS)
	@FUZZ_SECONDS=$(FUZZ_SECONDS) tests/fuzz/run.sh $(FUZZ_BIN)

# CPU/GPU parity and GPU training tests (tests/gpu), built with GPU=1:
# test-gpu builds them in build/gpu (GPU=1 CUDNN=1) and runs them on a GPU;
# test-gpu-emu builds them in build/emu (GPU=1 EMU=1) and runs them on the
# CUDA emulator of tests/gpu/emu (make test does so where there is no GPU).
test-gpu:
	@tests/gpu/run.sh

test-gpu-emu:
	@tests/gpu/run.sh --emu

GPU_TEST_BIN := $(patsubst tests/gpu/%.c,$(BUILD)/tests/gpu/%,$(wildcard tests/gpu/test_*.c))
GPU_TEST_HELPERS := $(TEST_HELPERS) tests/gpu/gpu_testutil.c

$(BUILD)/tests/gpu/%: tests/gpu/%.c $(GPU_TEST_HELPERS) tests/gpu/gpu_testutil.h $(BUILD)/libdarknet.a
	@mkdir -p $(dir $@)
	$(CC) $(filter-out -MMD -MP,$(CFLAGS)) -Itests -o $@ $< $(GPU_TEST_HELPERS) $(BUILD)/libdarknet.a $(LDLIBS) -lcmocka -rdynamic

# the registry walk (tests/test_registry.c) once more in the GPU build, where
# the layer types' twins are set and each needs its parity cases
GPU_TEST_BIN += $(BUILD)/tests/gpu/test_registry
$(BUILD)/tests/gpu/test_registry: tests/test_registry.c $(GPU_TEST_HELPERS) tests/gpu/gpu_testutil.h $(BUILD)/libdarknet.a
	@mkdir -p $(dir $@)
	$(CC) $(filter-out -MMD -MP,$(CFLAGS)) -Itests -o $@ $< $(GPU_TEST_HELPERS) $(BUILD)/libdarknet.a $(LDLIBS) -lcmocka -rdynamic

ifeq ($(GPU)$(EMU),11)
# the emulator's own test (tests/gpu/emu/test_emu.cu)
GPU_TEST_BIN += $(BUILD)/tests/gpu/test_emu
$(BUILD)/tests/gpu/test_emu: tests/gpu/emu/test_emu.cu tests/gpu/emu/launch.pl $(EMU_OBJ)
	@mkdir -p $(dir $@)
	perl tests/gpu/emu/launch.pl $< > $(BUILD)/tests/gpu/emu/test_emu.emu.cc
	$(CXX) $(filter-out -MMD -MP,$(EMU_CXXFLAGS)) -o $@ $(BUILD)/tests/gpu/emu/test_emu.emu.cc \
	    $(EMU_OBJ) $(LDLIBS) -lcmocka
endif

gpu-tests: $(GPU_TEST_BIN)

BENCH_BIN := $(BUILD)/bench/train_bench $(BUILD)/bench/gemm_bench
DARKNET_PEER := $(if $(wildcard /usr/lib/darknet/libdarknet.so),$(BUILD)/bench/darknet_peer)

$(BUILD)/bench/%: bench/%.c $(BUILD)/libdarknet.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $(filter %.c,$^) $(filter %.o,$^) $(filter %.a,$^) $(LDLIBS)

# -gpus LIST, parsed as the command line parses it
$(BUILD)/bench/train_bench: $(BUILD)/darknet/src/cli/cli.o

# Debian's darknet, as a peer in the benchmark table only
$(BUILD)/bench/darknet_peer: bench/darknet_peer.c
	@mkdir -p $(dir $@)
	$(CC) -O2 -I/usr/lib/darknet/include -o $@ $< -L/usr/lib/darknet -ldarknet \
	    -Wl,-rpath,/usr/lib/darknet -lm

bench:
	@scripts/deps.sh python3-torch
	@$(MAKE) --no-print-directory run-bench

# NETS="resnet18 vgg16", BENCH_TIMED, BENCH_WARMUP, BENCH_REPEATS, BENCH_OUT:
# see bench/run.sh (bench/run.sh --estimate: the expected duration)
run-bench: $(BIN)/darknet $(BENCH_BIN) $(DARKNET_PEER)
	@BUILD=$(BUILD) DARKNET=$(BIN)/darknet bench/run.sh

# data-parallel training across processes (bench/mpi.sh): results/bench/mpi.md
bench-mpi:
	@scripts/deps.sh libopenmpi-dev openmpi-bin
	@$(MAKE) --no-print-directory run-bench-mpi

run-bench-mpi: mpi-darknet
	@DARKNET_MPI=$(BUILD)/mpi/bin/darknet bench/mpi.sh

demo: deps
	@$(MAKE) --no-print-directory run-demo

run-demo: $(BIN)/darknet
	@DARKNET=$(BIN)/darknet scripts/demo.sh

figure1: deps
	@$(MAKE) --no-print-directory run-figure1

run-figure1: $(BIN)/darknet
	@DARKNET=$(BIN)/darknet scripts/figure1.sh

# One run of the paper's experiments (experiments/README.md), e.g.
#   make experiment NET=resnet34 SCHED=log EXP=1 SEED=2 EPOCHS=3 DATA=cfg/fashion-mnist.data
experiment: $(BIN)/darknet
	@test -n "$(NET)" -a -n "$(SCHED)" || { echo "usage: make experiment NET=resnet34 SCHED=none|step|cosine|log|log-reference [EXP=1|2] [SEED=K] [EPOCHS=N] [DATA=file]"; exit 2; }
	@DARKNET=$(BIN)/darknet experiments/run $(NET) $(SCHED) --exp $(or $(EXP),1) \
	    $(if $(SEED),--seed $(SEED)) $(if $(EPOCHS),--epochs $(EPOCHS)) $(if $(DATA),--data $(DATA))

# docs/keys.md, the reference of every cfg key, written from the key tables
# (darknet/src/keys.h) by scripts/keys_doc.c; tests/test_keys.c fails when
# the committed file is stale
keys-doc: $(BUILD)/scripts/keys_doc
	$(BUILD)/scripts/keys_doc docs/keys.md

$(BUILD)/scripts/keys_doc: scripts/keys_doc.c $(BUILD)/libdarknet.a
	@mkdir -p $(dir $@)
	$(CC) $(filter-out -MMD -MP,$(CFLAGS)) -o $@ $< $(BUILD)/libdarknet.a $(LDLIBS)

deps:
	@scripts/deps.sh $(if $(filter 1,$(MPI)),libopenmpi-dev openmpi-bin)

clean:
	rm -rf $(BUILD) $(BIN) libdarknet.a

.PHONY: all plugins test run-tests mpi-darknet bench-mpi run-bench-mpi test-gpu test-gpu-emu gpu-tests bench run-bench demo run-demo \
        figure1 run-figure1 experiment deps clean libdarknet.a fuzz run-fuzz keys-doc
.SECONDARY:

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)

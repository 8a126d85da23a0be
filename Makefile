# Two commands for a fresh machine: `make run` and `make test`. Both build .venv from the lock file
# when it is missing or stale, so nothing needs installing by hand.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
UV_VERSION := 0.13.9

.PHONY: run test router prometheus kube-assets kube-node container-engine base-image images lock bench bench-tools lint golden \
	clean fetch-mnist
SHARED := ../shared
# The container engine's settings for this machine's rootful podman (runtime_images/podman); yours win if set.
export CONTAINERS_CONF ?= $(CURDIR)/runtime_images/podman/containers.conf
LOCK_IMAGE = $(BIN)/uv pip compile --quiet pyproject.toml -c requirements.lock --python-version 3.11 \
	--custom-compile-command "make lock"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(BIN)/python requirements.lock pyproject.toml
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	$(BIN)/uv pip sync --quiet --python $(BIN)/python requirements.lock
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps -e .
	touch $(STAMP)

## run: the local train-to-serve pipeline (kfp.local) on this machine
run: $(STAMP) router prometheus
	$(BIN)/meshserve run

## test: every test
test: $(STAMP) router prometheus kube-assets kube-node base-image
	$(BIN)/python -m pytest -q --durations=20

## router: nginx (with the stream module, for the L4 comparison), the local platform's router
router:
	@command -v nginx >/dev/null && test -f /usr/lib/nginx/modules/ngx_stream_module.so || { \
	  command -v apt-get >/dev/null || { echo "install nginx (with its stream module) with your package manager"; exit 1; }; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light libnginx-mod-stream; }

## prometheus: Debian's Prometheus: the local platform's live guard and the metrics tests start it on 127.0.0.1 (never as a service)
prometheus:
	@command -v prometheus >/dev/null || test -x /usr/bin/prometheus || { \
	  command -v apt-get >/dev/null || { echo "install prometheus with your package manager"; exit 1; }; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus; }

## kube-assets: a real kube-apiserver and etcd for the Kubernetes tests, built once from Debian's packages
## (6 to 10 minutes on 2 cores) and cached outside the repo ($$KUBE_ASSETS or ~/.cache/kube-assets)
kube-assets:
	@if [ -f $(SHARED)/kube/build-apiserver.sh ]; then \
	  echo "kube-apiserver assets: $$(bash $(SHARED)/kube/build-apiserver.sh)"; \
	else echo "$(SHARED)/kube is absent: the Kubernetes tests will skip"; fi

## kube-node: a real single-node cluster for the real-cluster tests (../shared/kube-node): its Debian packages, and
## kubelet, the controllers, the scheduler, kube-proxy and kubectl built once (about 11 minutes on 2 cores), cached
## outside the repo ($$KUBE_NODE or ~/.cache/kube-node); the tests start the node and stop it. Where it cannot be
## built, the real-cluster tests skip and say why.
KUBE_NODE ?= $(HOME)/.cache/kube-node
kube-node: kube-assets
	@if [ -f $(SHARED)/kube-node/setup.sh ]; then \
	  { mkdir -p $(KUBE_NODE) && bash $(SHARED)/kube-node/setup.sh && \
	    { test -x $(KUBE_NODE)/bin/kubectl || WHAT="cmd/kubelet cmd/kube-controller-manager cmd/kube-scheduler \
	      cmd/kube-proxy cmd/kubectl" bash /tmp/kn/build-node.sh $(KUBE_NODE) >$(KUBE_NODE).build.log 2>&1; } && \
	    { test -f /tmp/kn/pause-docker.tar || (cd /tmp/kn/app && bash build-image.sh $(KUBE_NODE)/src/k8s \
	      $(KUBE_NODE)/root/usr/lib/go-1.19 >/dev/null); } && echo "kube-node binaries: $(KUBE_NODE)/bin"; } || \
	  echo "the single-node cluster could not be built (see $(KUBE_NODE).build.log): the real-cluster tests will skip"; \
	else echo "$(SHARED)/kube-node is absent: the real-cluster tests will skip"; fi

## container-engine: Debian's rootful podman (with runc, iptables, and debootstrap for the base image's stand-in);
## where it cannot be installed, the image tests skip and say why
container-engine:
	@command -v podman >/dev/null && command -v runc >/dev/null && command -v debootstrap >/dev/null || { \
	  command -v apt-get >/dev/null && apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq podman runc iptables debootstrap; } || \
	  echo "podman could not be installed: the image tests will skip"

## base-image: python:3.11-slim in podman's store, pulled, or where no registry answers built once from Debian's
## packages (1 minute; cached in ~/.cache/meshserve-images)
base-image: container-engine
	@command -v podman >/dev/null && echo "base image: $$(sh runtime_images/base-image.sh)" || \
	  echo "no podman: the image tests will skip"

## images: the three runtime images (runtime_images/Dockerfile), tagged REGISTRY/TARGET:VERSION
## (REGISTRY defaults to ghcr.io/meshserve)
images: base-image
	sh runtime_images/build.sh $(REGISTRY)

## lock: recompile the images' locks from pyproject's extras, at requirements.lock's versions
lock: $(STAMP)
	$(LOCK_IMAGE) --extra serving -o runtime_images/locks/model-server-sklearn.lock
	$(LOCK_IMAGE) --extra serving --extra tensorflow -o runtime_images/locks/model-server-tensorflow.lock
	$(LOCK_IMAGE) --extra train --extra storage --extra pipelines --extra steps -o runtime_images/locks/steps.lock
	sed -n '/^# Added by hand/,$$p' requirements.lock >> runtime_images/locks/steps.lock

## bench: the benchmark scripts under tests/bench, printing figures (installs nginx, hey, wrk if missing)
bench: $(STAMP) bench-tools router prometheus base-image
	$(BIN)/python tests/bench/bench_train.py
	$(BIN)/python tests/bench/bench_upload.py
	$(BIN)/python tests/bench/bench_loadgen.py
	$(BIN)/python tests/bench/bench_gate.py
	$(BIN)/python tests/bench/bench_local_platform.py
	$(BIN)/python tests/bench/bench_serving.py
	$(BIN)/python tests/bench/bench_gate_aa.py
	$(BIN)/python tests/bench/bench_analysis.py
	$(BIN)/python tests/bench/bench_progressive.py
	$(BIN)/python tests/bench/bench_autoscaling.py --html .meshserve/autoscaling-ramp.html
	$(BIN)/python tests/bench/bench_model_mesh.py
	$(BIN)/python tests/bench/bench_images.py

bench-tools:
	@command -v nginx >/dev/null && command -v hey >/dev/null && command -v wrk >/dev/null || { \
	  command -v apt-get >/dev/null || { echo "install nginx, hey and wrk with your package manager"; exit 1; }; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light hey wrk; }

lint: $(STAMP)
	$(BIN)/ruff check .

## golden: regenerate the committed component YAML and compiled pipelines (never in CI)
golden: $(STAMP)
	MESHSERVE_REGEN_GOLDEN=1 $(BIN)/python -m pytest -q tests/test_golden.py tests/test_cli_reference.py

fetch-mnist: $(STAMP)
	$(BIN)/meshserve datasets fetch mnist

clean:
	rm -rf $(VENV) .meshserve .pytest_cache

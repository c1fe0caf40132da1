# Set-up and checks on a fresh Debian machine (run as root for the apt-get steps).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DEBIAN_PACKAGES := bind9 bind9-utils bind9-dnsutils knot knot-dnsutils knot-dnssecutils \
	unbound ldnsutils nsd postfix pebble softhsm2 ansible openssl iproute2 swaks faketime
PYTEST_ARGS ?=

.PHONY: demo test lab bench lint debian-packages venv clean

venv: $(BIN)/provisioner

$(BIN)/provisioner: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test,route53,ansible,acme]'
	touch $@

# The main job on the bundled example: keys, certificates, TLSA/SMIMEA, signed zone files.
demo: venv
	cd examples/nccoe && ../../$(BIN)/provisioner apply provisioner.yaml
	@echo "zone files: examples/nccoe/out/zones/, certificates: examples/nccoe/out/certs/ and out/smime/"

debian-packages:
	@if [ "$$(id -u)" = 0 ]; then \
		missing=""; \
		for p in $(DEBIAN_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
		if [ -n "$$missing" ]; then \
			apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing; \
		fi; \
	else \
		echo "not root: skipping apt-get; tests needing missing servers will be skipped"; \
	fi

test: debian-packages venv
	$(BIN)/pytest -q $(PYTEST_ARGS)

lab: debian-packages venv
	$(BIN)/pytest -q -m lab tests/lab

bench: venv
	$(BIN)/python benchmarks/bench_zone_build.py
	$(BIN)/python benchmarks/bench_sign.py --users 10000,100000
	$(BIN)/python benchmarks/bench_rfc2136.py --users 20000
	$(BIN)/python benchmarks/bench_apply.py --users 5000

lint: venv
	$(BIN)/ruff check provisioner tests benchmarks
	$(BIN)/ruff format --check provisioner tests benchmarks

clean:
	rm -rf $(VENV) examples/nccoe/out examples/nccoe/.provisioner

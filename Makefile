# ferrofs build entry points. `make` installs what is missing, builds the
# test kernel (cached), the module and the tools; `make run` shows a short
# demo in the VM; `make check` runs every test. `make KDIR=/path` builds the
# module against another Rust-enabled 6.12 tree instead of the cached one.
# `make module-fast` builds build/fast/ferrofs.ko against the fast kernel
# (no debug checkers; built once by `make setup-fast`), which scripts/bench
# and scripts/fstests boot; make check stays on the debug kernel.

SHELL := /bin/bash
export KDIR
# rustup's cargo, also when the caller's PATH lacks it (CI's plain environment).
export PATH := $(if $(shell command -v cargo),$(PATH),$(HOME)/.cargo/bin:$(PATH))
CARGO ?= cargo
TOOLS := mkfs.ferrofs fsck.ferrofs ferrofs

.PHONY: all setup module tools run check clean setup-fast module-fast
all: setup module tools

setup:
	@KDIR_USER="$(KDIR)" scripts/setup

module: setup
	@echo "==> building ferrofs.ko against $$(scripts/kdir)" >&2
	@scripts/build-module

setup-fast:
	@scripts/setup --flavour fast

module-fast: setup-fast
	@echo "==> building build/fast/ferrofs.ko against $$(scripts/kdir --flavour fast)" >&2
	@scripts/build-module --flavour fast

tools:
	@echo "==> building the tools (cargo build --release)" >&2
	@$(CARGO) build --release --quiet --bins
	@mkdir -p build/bin
	@ln -sf ../../target/release/mkfs-ferrofs build/bin/mkfs.ferrofs
	@ln -sf ../../target/release/fsck-ferrofs build/bin/fsck.ferrofs
	@ln -sf ../../target/release/ferrofs build/bin/ferrofs

run: all
	@scripts/vm -- bash tests/demo.sh

check: all
	@scripts/check

clean:
	@$(MAKE) -s -C "$$(scripts/kdir)" M=$(CURDIR) clean 2>/dev/null || true
	@rm -rf build rust/vfs/bindings_generated.rs
	@$(CARGO) clean --quiet


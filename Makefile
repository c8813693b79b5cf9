# rvh: the two commands of the README, and their parts.
#
#   make demo       set up (Debian packages + .venv), build the guests, run the hello guest
#   make test       set up, build the guests, run the whole test suite (what CI runs); any skip
#                   not listed in pyproject.toml's allowed_skips fails it
#   make test-fast  the edit loop: the unit tests (not tests/system/), without the tests marked
#                   slow or qemu
#   make bench      rvh bench mips (rvh beside QEMU 7.2)

PYTHON  := .venv/bin/python
RVH     := .venv/bin/rvh

.PHONY: all setup guests demo test test-fast bench lint clean

all: guests

setup:
	@tools/setup.sh

guests: setup
	@$(MAKE) -s -C guests -j2
	@$(MAKE) -s -C guests/linux appliance PYTHON=$(CURDIR)/$(PYTHON)
	@$(MAKE) -s -C firmware/hyp

demo: guests
	$(RVH) run guests/build/hello/hello.elf --stats
	$(RVH) run guests/build/bench/intmem.elf --stats

# both cores (pytest-xdist, a file's tests on one worker: some run in file order)
test: guests
	$(PYTHON) -m pytest -q -n 2 --dist loadfile

# the unit tier on both cores, without the slow and QEMU tests
test-fast: guests
	$(PYTHON) -m pytest -q -n 2 -m "not slow and not qemu" --ignore=tests/system

bench: guests
	$(RVH) bench mips

lint: setup
	.venv/bin/ruff check rvh tests
	.venv/bin/ruff format --check rvh tests
	.venv/bin/mypy

clean:
	$(MAKE) -s -C guests clean
	rm -rf build

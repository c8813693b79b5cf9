# firmware/common/common.mk - included by every Makefile that builds C for rvh's board
# (guests/Makefile, guests/hext/Makefile, and the firmware's).  It provides:
#
#   FW_COMMON          this directory
#   FW_INCLUDE         -I flag for <rvh/...> headers (the generated rvh/encoding.h among them)
#   ENCODING_H         the generated header: python -m rvh.isa.cheader writes it from rvh/isa,
#                      rvh/config.py and the device modules, so C and Python share one source
#
# The header is regenerated on every make run (a fraction of a second); the generator leaves an
# unchanged file untouched, so nothing is recompiled unless a number really changed.  Make every
# object depend on $(ENCODING_H).

# the including Makefile's first target stays its default goal
RVH_SAVED_GOAL := $(.DEFAULT_GOAL)

FW_COMMON  := $(abspath $(dir $(lastword $(MAKEFILE_LIST))))
RVH_ROOT   := $(abspath $(FW_COMMON)/../..)
FW_INCLUDE := -I$(FW_COMMON)/include
ENCODING_H := $(FW_COMMON)/include/rvh/encoding.h
# the project's virtualenv when there is one (make setup), else the python3 on PATH
PYTHON     ?= $(firstword $(wildcard $(RVH_ROOT)/.venv/bin/python) python3)

$(ENCODING_H): rvh-encoding-force
	@cd $(RVH_ROOT) && PYTHONPATH=$(RVH_ROOT) $(PYTHON) -m rvh.isa.cheader $@

.PHONY: rvh-encoding-force
rvh-encoding-force:

.DEFAULT_GOAL := $(RVH_SAVED_GOAL)

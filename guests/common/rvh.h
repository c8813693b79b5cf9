/*
 * rvh.h - what every M-mode guest includes: firmware/common's libc, board helpers and the
 * generated rvh/encoding.h (through rvh/libc.h), plus the reports of the assembler tests
 * (rvh.c).  Link with firmware/common's start.S and libc.c.
 */
#ifndef RVH_H
#define RVH_H

#include "rvh/libc.h"

/* used by the assembler test epilogue (test.h) */
void rvh_test_pass(const char *name) __attribute__((noreturn));
void rvh_test_fail(const char *name, long testnum) __attribute__((noreturn));
void rvh_test_trap_fail(const char *name, long testnum, unsigned long mcause,
                        unsigned long mepc, unsigned long mtval)
    __attribute__((noreturn));

#endif /* RVH_H */

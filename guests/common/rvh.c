/*
 * rvh.c - the reports of the self-checking assembler tests (test.h); the libc and console they
 * use are firmware/common's (libc.c).
 */
#include "rvh.h"

void rvh_test_pass(const char *name)
{
    printf("PASS %s\n", name);
    rvh_exit(0);
}

void rvh_test_fail(const char *name, long testnum)
{
    printf("FAIL %s test %ld\n", name, testnum);
    rvh_exit(testnum ? (int)testnum : 1);
}

void rvh_test_trap_fail(const char *name, long testnum, unsigned long mcause,
                        unsigned long mepc, unsigned long mtval)
{
    printf("FAIL %s test %ld: unexpected trap mcause=0x%lx mepc=0x%lx "
           "mtval=0x%lx\n", name, testnum, mcause, mepc, mtval);
    rvh_exit(testnum ? (int)testnum : 0x7f);
}

/*
 * rvh/start.h - what sstart.S and slink.ld agree on: the harts that get a stack of their own.
 * slink.ld reserves RVH_MAX_HARTS stacks of RVH_SECONDARY_STACK_SIZE bytes at __sec_stacks
 * (keep its SEC_STACK_HARTS and SEC_STACK_SIZE equal to these).  Usable from assembler.
 */
#ifndef RVH_START_H
#define RVH_START_H

#define RVH_MAX_HARTS            8
#define RVH_SECONDARY_STACK_SIZE 0x4000

#endif /* RVH_START_H */

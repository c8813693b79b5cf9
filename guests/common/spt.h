/*
 * spt.h - page tables of the S-mode guests: firmware/common's builder (rvh/pt.h) over one pool
 * of tables in .bss shared by every address space (spt.c).  The guests identity-map their own
 * image, so a table's virtual address equals its physical address whether or not translation
 * is on.
 */
#ifndef SPT_H
#define SPT_H

#include "rvh/pt.h"
#include "smode.h"

#define SPT_POOL_PAGES 64

/* empty address space with 3 (Sv39), 4 (Sv48) or 5 (Sv57) levels, from the shared pool */
void spt_init(struct pt *pt, int levels);
/* identity-map the guest image (0x8020_0000.._end) with 2 MiB RWX A D pages */
void pt_map_image(struct pt *pt);

extern char __image_start[], _end[];

#endif /* SPT_H */

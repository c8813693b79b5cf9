/*
 * rvh/csr.h - CSR access for firmware and guests.
 *
 * The argument is a CSR name (csr_read(mstatus)) or a number from rvh/encoding.h
 * (csr_read(CSR_MSTATUS)): it is macro-expanded, then pasted into the instruction, and the
 * assembler takes either a name or a number as the CSR operand.
 */
#ifndef RVH_CSR_H
#define RVH_CSR_H

#include "rvh/encoding.h"

#define RVH_STRINGIFY_(x) #x
#define RVH_STRINGIFY(x)  RVH_STRINGIFY_(x)

#define csr_read(csr) ({                                                        \
    unsigned long __v;                                                          \
    __asm__ __volatile__("csrr %0, " RVH_STRINGIFY(csr) : "=r"(__v) :: "memory"); \
    __v; })
#define csr_write(csr, val) ({                                                  \
    unsigned long __v = (unsigned long)(val);                                   \
    __asm__ __volatile__("csrw " RVH_STRINGIFY(csr) ", %0" :: "r"(__v) : "memory"); })
#define csr_swap(csr, val) ({                                                   \
    unsigned long __v = (unsigned long)(val);                                   \
    __asm__ __volatile__("csrrw %0, " RVH_STRINGIFY(csr) ", %0"                 \
                         : "+r"(__v) :: "memory");                              \
    __v; })
#define csr_set(csr, val) ({                                                    \
    unsigned long __v = (unsigned long)(val);                                   \
    __asm__ __volatile__("csrs " RVH_STRINGIFY(csr) ", %0" :: "r"(__v) : "memory"); })
#define csr_clear(csr, val) ({                                                  \
    unsigned long __v = (unsigned long)(val);                                   \
    __asm__ __volatile__("csrc " RVH_STRINGIFY(csr) ", %0" :: "r"(__v) : "memory"); })
#define csr_read_set(csr, val) ({                                               \
    unsigned long __v = (unsigned long)(val);                                   \
    __asm__ __volatile__("csrrs %0, " RVH_STRINGIFY(csr) ", %0"                 \
                         : "+r"(__v) :: "memory");                              \
    __v; })
#define csr_read_clear(csr, val) ({                                             \
    unsigned long __v = (unsigned long)(val);                                   \
    __asm__ __volatile__("csrrc %0, " RVH_STRINGIFY(csr) ", %0"                 \
                         : "+r"(__v) :: "memory");                              \
    __v; })

static inline void wfi(void) { __asm__ __volatile__("wfi" ::: "memory"); }
static inline void fence(void) { __asm__ __volatile__("fence" ::: "memory"); }
static inline void fence_i(void) { __asm__ __volatile__("fence.i" ::: "memory"); }
static inline void sfence_vma_all(void)
{
    __asm__ __volatile__("sfence.vma zero, zero" ::: "memory");
}
static inline void sfence_vma_va(unsigned long va)
{
    __asm__ __volatile__("sfence.vma %0, zero" :: "r"(va) : "memory");
}

#endif /* RVH_CSR_H */

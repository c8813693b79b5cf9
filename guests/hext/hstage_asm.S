/*
 * hstage_asm.S - accesses with exactly known encodings for hstage.c (the
 * transformed instruction in mtinst/htinst is checked against them).
 * All are called as fn(a0, a1) through hx_run, or directly from M-mode.
 */
    .option norelax
    .text

/* long hs_ld(long, addr - 8): ld a0, 8(a1)               = 0x0085b503 */
    .globl hs_ld
    .balign 4
hs_ld:
    .option push
    .option norvc
    ld a0, 8(a1)
    .option pop
    ret

/* void hs_sd(val, addr - 16): sd a0, 16(a1)              = 0x00a5b823 */
    .globl hs_sd
    .balign 4
hs_sd:
    .option push
    .option norvc
    sd a0, 16(a1)
    .option pop
    ret

/* long hs_cld(long, addr - 8): c.ld a0, 8(a1)            = 0x6588 */
    .globl hs_cld
    .balign 4
hs_cld:
    .option push
    .option rvc
    c.ld a0, 8(a1)
    .option pop
    ret

/* void hs_csd(val, addr - 8): c.sd a0, 8(a1)             = 0xe588 */
    .globl hs_csd
    .balign 4
hs_csd:
    .option push
    .option rvc
    c.sd a0, 8(a1)
    .option pop
    ret

/* long hs_amoadd(val, addr): amoadd.d a0, a0, (a1)      = 0x00a5b52f */
    .globl hs_amoadd
    .balign 4
hs_amoadd:
    .option push
    .option norvc
    amoadd.d a0, a0, (a1)
    .option pop
    ret

/* long hs_lr(long, addr): lr.d a0, (a1)                  = 0x1005b52f */
    .globl hs_lr
    .balign 4
hs_lr:
    .option push
    .option norvc
    lr.d a0, (a1)
    .option pop
    ret

/* long hs_sc(val, addr): sc.d a0, a0, (a1)               = 0x18a5b52f */
    .globl hs_sc
    .balign 4
hs_sc:
    .option push
    .option norvc
    sc.d a0, a0, (a1)
    .option pop
    ret

/* long hs_call(long, target): call target (a fetch fault resumes at ra) */
    .globl hs_call
    .balign 4
hs_call:
    addi sp, sp, -16
    sd ra, 8(sp)
    jalr a1
    ld ra, 8(sp)
    addi sp, sp, 16
    ret

/*
 * long hs_mprv_ld(bits, addr - 8), M-mode only: set mstatus bits (MPRV and
 * MPP/MPV, cleared first), ld a0, 8(a1), clear MPRV.
 */
    .globl hs_mprv_ld
    .balign 4
hs_mprv_ld:
    li t0, (3 << 11)
    csrc mstatus, t0
    li t0, 1
    slli t0, t0, 39
    csrc mstatus, t0
    csrs mstatus, a0
    .option push
    .option norvc
    ld a0, 8(a1)
    .option pop
    li t0, (1 << 17)
    csrc mstatus, t0
    ret

/* code copied into guest pages: li a0, 42; ret */
    .globl hs_code42
    .balign 4
hs_code42:
    .option push
    .option norvc
    li a0, 42
    ret
    .option pop
    .globl hs_code42_end
hs_code42_end:

/* long hs_m_hlvx_mpp3(addr), M-mode: mstatus.MPP=3 (as inside a trap
 * handler), then hlvx.hu a0, (a0) -- MPP must not matter (MPRV=0) */
    .globl hs_m_hlvx_mpp3
    .balign 4
hs_m_hlvx_mpp3:
    li t0, (3 << 11)
    csrs mstatus, t0
    .option push
    .option arch, +h
    .option norvc
    hlvx.hu a0, (a0)
    .option pop
    ret

/* long hs_m_hlv_mpp3(addr), M-mode: the same with hlv.d */
    .globl hs_m_hlv_mpp3
    .balign 4
hs_m_hlv_mpp3:
    li t0, (3 << 11)
    csrs mstatus, t0
    .option push
    .option arch, +h
    .option norvc
    hlv.d a0, (a0)
    .option pop
    ret

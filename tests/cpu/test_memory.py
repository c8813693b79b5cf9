"""Loads and stores (unprivileged spec 2.6, 5.3; privileged spec 3.6 PMAs, 3.7 traps).

LB/LH/LW sign-extend, LBU/LHU/LWU zero-extend, stores write only their width.  Misaligned
accesses to RAM complete (as on QEMU 7.2, which performs them in software), even across a
4 KiB page.  An access to a physical address where nothing is mapped raises a load (5) or
store/AMO (7) access fault with mtval = the address.  A store over instructions is seen by the
next fetch of those instructions.
"""

import pytest
from support import needs_toolchain, run_asm

pytestmark = needs_toolchain

DATA = 0x8010_0000  # 1 MiB into the snippet's 16 MiB of RAM
ONES = 0xFFFF_FFFF_FFFF_FFFF
PATTERN = bytes(range(0x80, 0x90))  # 0x80 0x81 ... 0x8F
POSITIVE = bytes(range(0x70, 0x80))  # 0x70 ... 0x7F

# Records a trap: s9 = mepc, s10 = mcause, s11 = mtval, then ends the snippet.
HANDLER = """
        .option norvc
        la t0, 90f
        csrw mtvec, t0
        li t0, 0xdead
        csrw mtval, t0
        j 91f
        .balign 4
    90: csrr s9, mepc
        csrr s10, mcause
        csrr s11, mtval
        j __snippet_end
    91:
"""


def run(source: str, *, align: int = 8, **kwargs):
    """run_asm, padding the snippet so that its final wfi ends the binary: run_asm finds
    the wfi from the binary's length, which the linker rounds up to the section alignment
    (``align``, the largest .balign the snippet uses)."""
    pad = f"\n.balign {align}\n.fill {align // 4 - 1}, 4, 0x00000013\n"
    return run_asm(source + pad, **kwargs)


# (instruction, offset, data at DATA, expected rd)
LOAD_CASES = [
    ("lb", 0, PATTERN, 0xFFFF_FFFF_FFFF_FF80),
    ("lb", 7, PATTERN, 0xFFFF_FFFF_FFFF_FF87),
    ("lb", 0, POSITIVE, 0x70),
    ("lbu", 0, PATTERN, 0x80),
    ("lbu", 15, PATTERN, 0x8F),
    ("lh", 0, PATTERN, 0xFFFF_FFFF_FFFF_8180),
    ("lh", 6, PATTERN, 0xFFFF_FFFF_FFFF_8786),
    ("lh", 2, POSITIVE, 0x7372),
    ("lhu", 0, PATTERN, 0x8180),
    ("lhu", 14, PATTERN, 0x8F8E),
    ("lw", 0, PATTERN, 0xFFFF_FFFF_8382_8180),
    ("lw", 4, PATTERN, 0xFFFF_FFFF_8786_8584),
    ("lw", 8, POSITIVE, 0x7B7A_7978),
    ("lwu", 0, PATTERN, 0x8382_8180),
    ("lwu", 12, PATTERN, 0x8F8E_8D8C),
    ("ld", 0, PATTERN, 0x8786_8584_8382_8180),
    ("ld", 8, POSITIVE, 0x7F7E_7D7C_7B7A_7978),
    # base + negative offset (the base register points 16 bytes past the data)
    ("lb", -16, PATTERN, 0xFFFF_FFFF_FFFF_FF80),
    ("lw", -8, PATTERN, 0xFFFF_FFFF_8B8A_8988),
    ("ld", -8, POSITIVE, 0x7F7E_7D7C_7B7A_7978),
]


@pytest.mark.parametrize(("mnemonic", "offset", "data", "expected"), LOAD_CASES)
def test_load_extension(mnemonic, offset, data, expected):
    base = DATA + 16 if offset < 0 else DATA
    s = run(f".option norvc\n{mnemonic} a0, {offset}(a1)", regs={11: base}, data={DATA: data})
    assert s.x(10) == expected


# (instruction, offset, expected 16 bytes after the store of 0x1234_5678_9ABC_DEF0)
STORE_CASES = [
    ("sb", 0, 0xAAAA_AAAA_AAAA_AAF0),
    ("sb", 3, 0xAAAA_AAAA_F0AA_AAAA),
    ("sb", 7, 0xF0AA_AAAA_AAAA_AAAA),
    ("sh", 0, 0xAAAA_AAAA_AAAA_DEF0),
    ("sh", 2, 0xAAAA_AAAA_DEF0_AAAA),
    ("sh", 6, 0xDEF0_AAAA_AAAA_AAAA),
    ("sw", 0, 0xAAAA_AAAA_9ABC_DEF0),
    ("sw", 4, 0x9ABC_DEF0_AAAA_AAAA),
    ("sd", 0, 0x1234_5678_9ABC_DEF0),
]


@pytest.mark.parametrize(("mnemonic", "offset", "expected"), STORE_CASES)
def test_store_writes_only_its_width(mnemonic, offset, expected):
    s = run(
        f".option norvc\n{mnemonic} a2, {offset}(a1)",
        regs={11: DATA + 8, 12: 0x1234_5678_9ABC_DEF0},
        data={DATA: b"\x55" * 8 + b"\xaa" * 8 + b"\x55" * 8},
    )
    assert s.read(DATA + 8, 8) == expected
    assert s.read(DATA, 8) == 0x5555_5555_5555_5555
    assert s.read(DATA + 16, 8) == 0x5555_5555_5555_5555


def test_store_then_load_back():
    s = run(
        """
        li a1, 0x80100000
        li a2, -2
        sd a2, 0(a1)
        sw zero, 4(a1)
        lb a3, 0(a1)
        lhu a4, 0(a1)
        lwu a5, 0(a1)
        ld a6, 0(a1)
        """
    )
    assert s.x(13) == 0xFFFF_FFFF_FFFF_FFFE
    assert s.x(14) == 0xFFFE
    assert s.x(15) == 0xFFFF_FFFE
    assert s.x(16) == 0x0000_0000_FFFF_FFFE


MISALIGNED_LOADS = [
    ("lh", 1, 0xFFFF_FFFF_FFFF_8281),
    ("lhu", 3, 0x8483),
    ("lw", 1, 0xFFFF_FFFF_8483_8281),
    ("lw", 2, 0xFFFF_FFFF_8584_8382),
    ("lwu", 3, 0x8685_8483),
    ("ld", 1, 0x8887_8685_8483_8281),
    ("ld", 4, 0x8B8A_8988_8786_8584),
    ("ld", 7, 0x8E8D_8C8B_8A89_8887),
]


@pytest.mark.parametrize(("mnemonic", "offset", "expected"), MISALIGNED_LOADS)
def test_misaligned_load(mnemonic, offset, expected):
    s = run(HANDLER + f"{mnemonic} a0, {offset}(a1)", regs={11: DATA}, data={DATA: PATTERN})
    assert s.x(26) == 0, f"trapped: mcause={s.x(26)}"
    assert s.x(10) == expected


@pytest.mark.parametrize(
    ("mnemonic", "offset", "expected"),
    [
        ("sh", 1, 0x5555_5555_5555_5555_5555_5555_55DE_F055),
        ("sw", 2, 0x5555_5555_5555_5555_5555_9ABC_DEF0_5555),
        ("sw", 7, 0x5555_5555_559A_BCDE_F055_5555_5555_5555),
        ("sd", 3, 0x5555_5555_5512_3456_789A_BCDE_F055_5555),
        ("sd", 1, 0x5555_5555_5555_5512_3456_789A_BCDE_F055),
    ],
)
def test_misaligned_store(mnemonic, offset, expected):
    s = run(
        HANDLER + f"{mnemonic} a2, {offset}(a1)",
        regs={11: DATA, 12: 0x1234_5678_9ABC_DEF0},
        data={DATA: b"\x55" * 16},
    )
    assert s.x(26) == 0, f"trapped: mcause={s.x(26)}"
    assert s.read(DATA, 16) == expected


@pytest.mark.parametrize(
    ("mnemonic", "address", "expected"),
    [
        # PATTERN is placed at 0x8010_0FF8, so the page boundary falls after its 8th byte
        ("lh", 0x8010_0FFF, 0xFFFF_FFFF_FFFF_8887),
        ("lw", 0x8010_0FFE, 0xFFFF_FFFF_8988_8786),
        ("lwu", 0x8010_0FFD, 0x8887_8685),
        ("ld", 0x8010_0FFD, 0x8C8B_8A89_8887_8685),
        ("ld", 0x8010_0FF9, 0x8887_8685_8483_8281),
    ],
)
def test_misaligned_load_across_page_boundary(mnemonic, address, expected):
    s = run(
        HANDLER + f"{mnemonic} a0, 0(a1)",
        regs={11: address},
        data={0x8010_0FF8: PATTERN},
    )
    assert s.x(26) == 0, f"trapped: mcause={s.x(26)}"
    assert s.x(10) == expected


@pytest.mark.parametrize(
    ("mnemonic", "address", "expected"),
    [
        ("sh", 0x8010_1FFF, 0x5555_5555_5555_55DE_F055_5555_5555_5555),
        ("sw", 0x8010_1FFE, 0x5555_5555_5555_9ABC_DEF0_5555_5555_5555),
        ("sd", 0x8010_1FFB, 0x5555_5555_5512_3456_789A_BCDE_F055_5555),
    ],
)
def test_misaligned_store_across_page_boundary(mnemonic, address, expected):
    # 16 bytes of 0x55 at 0x8010_1FF8; the page boundary falls after the 8th
    s = run(
        HANDLER + f"{mnemonic} a2, 0(a1)",
        regs={11: address, 12: 0x1234_5678_9ABC_DEF0},
        data={0x8010_1FF8: b"\x55" * 16},
    )
    assert s.x(26) == 0, f"trapped: mcause={s.x(26)}"
    assert s.read(0x8010_1FF8, 16) == expected


def test_misaligned_load_then_store_round_trip_across_page():
    s = run(
        HANDLER
        + """
        li a1, 0x80102ffc
        li a2, 0x0102030405060708
        sd a2, 0(a1)
        ld a3, 0(a1)
        lw a4, 2(a1)
        """
    )
    assert s.x(26) == 0
    assert s.x(13) == 0x0102_0304_0506_0708
    assert s.x(14) == 0x0304_0506  # bytes 2..5 of the little-endian doubleword


@pytest.mark.parametrize(
    ("access", "address", "cause"),
    [
        ("lb a0, 0(a1)", 0x0, 5),
        ("lw a0, 0(a1)", 0x0, 5),
        ("ld a0, 0(a1)", 0x2000_0000, 5),
        ("lhu a0, 0(a1)", 0x2000_0002, 5),
        ("lwu a0, 0(a1)", 0x4000_0000, 5),
        ("sb a2, 0(a1)", 0x0, 7),
        ("sw a2, 0(a1)", 0x2000_0000, 7),
        ("sd a2, 0(a1)", 0x2000_0000, 7),
        ("sh a2, 0(a1)", 0x4000_0010, 7),
        # past the end of the 16 MiB of RAM
        ("ld a0, 0(a1)", 0x8100_0000, 5),
        ("sd a2, 0(a1)", 0x8100_0000, 7),
        # RAM's address plus high bits: no aliasing onto RAM (checked against QEMU 7.2)
        ("ld a0, 0(a1)", 0xFFFF_FFFF_8000_0000, 5),
        ("sw a2, 0(a1)", 0xFFFF_FFFF_8000_0000, 7),
        ("lw a0, 0(a1)", 0x1_8000_0000, 5),
        ("ld a0, 0(a1)", 0x0100_0000_8000_0000, 5),
        ("sb a2, 0(a1)", 0x8000_0000_8000_0000, 7),
    ],
)
def test_access_to_unmapped_address_faults(access, address, cause):
    s = run(
        HANDLER
        + f"""
        li a0, 0x77
        la s8, 1f
    1:  {access}
        li a3, 1
        """,
        regs={11: address, 12: 0x1122_3344},
    )
    assert s.x(26) == cause
    assert s.x(27) == address
    assert s.x(25) == s.x(24), "mepc is the faulting instruction"
    assert s.x(13) == 0, "execution continued after the fault"
    assert s.x(10) == 0x77, "a faulting load does not write rd"


def test_access_fault_with_base_and_offset_reports_effective_address():
    s = run(HANDLER + "li a1, 0x20000100\nlw a0, -256(a1)")
    assert s.x(26) == 5
    assert s.x(27) == 0x2000_0000


def test_misaligned_load_straddling_end_of_ram_faults():
    s = run(HANDLER + "li a1, 0x80fffffc\nld a0, 0(a1)")
    assert s.x(26) == 5
    # 3.1.16: mtval is the access's address or that of the portion that faulted
    assert s.x(27) in (0x80FF_FFFC, 0x8100_0000)


# addi a0, zero, 42
ADDI_A0_42 = 0x02A0_0513
NOP = 0x0000_0013


@pytest.mark.parametrize("fence", ["", "fence.i"], ids=["no-fence", "fence.i"])
@pytest.mark.parametrize(
    "patch",
    [
        "sw a2, 0(a1)",
        "sd a3, 0(a1)",
        "srli t1, a2, 16\nsh a2, 0(a1)\nsh t1, 2(a1)",
        "srli t1, a2, 8\nsrli t2, a2, 16\nsrli t3, a2, 24\n"
        "sb a2, 0(a1)\nsb t1, 1(a1)\nsb t2, 2(a1)\nsb t3, 3(a1)",
        "amoswap.w zero, a2, (a1)",
    ],
    ids=["sw", "sd", "sh", "sb", "amoswap"],
)
def test_self_modifying_code_is_seen_by_next_fetch(patch, fence):
    # The instruction at 1: runs once as "addi a0, a0, 1" (so it has been fetched and
    # decoded), is overwritten with "addi a0, zero, 42", and runs again.
    s = run(
        f"""
        .option norvc
        li a0, 0
        li s0, 0
        la a1, 1f
        li a2, {ADDI_A0_42:#x}
        li a3, {(NOP << 32) | ADDI_A0_42:#x}
        .balign 8
    1:  addi a0, a0, 1
        nop
        bnez s0, 2f
        li s0, 1
        {patch}
        {fence}
        j 1b
    2:
        """
    )
    assert s.x(10) == 42


def test_self_modifying_code_changes_instruction_length():
    # a 32-bit instruction already executed is replaced by two compressed ones:
    # c.li a0, 7 (0x451d) then c.nop (0x0001)
    s = run(
        """
        .option norvc
        li a0, 0
        li s0, 0
        la a1, 1f
        li a2, 0x0001451d
    1:  addi a0, a0, 1
        bnez s0, 2f
        li s0, 1
        sw a2, 0(a1)
        j 1b
    2:
        """
    )
    assert s.x(10) == 7


def test_self_modifying_code_next_instruction():
    # the store rewrites the instruction right after it
    s = run(
        """
        .option norvc
        la a1, 1f
        li a2, 0x02a00513
        li a0, 0
        sw a2, 0(a1)
    1:  addi a0, a0, 1
        """
    )
    assert s.x(10) == 42


def test_self_modifying_loop_body_in_every_iteration():
    # the loop rewrites the immediate of its own first instruction on every pass:
    # "addi a0, a0, k" with k = 1, 2, 3, 4 -> a0 = 10
    s = run(
        """
        .option norvc
        li a0, 0
        li s0, 4
        la a1, 1f
        li a2, 0x00150513
        li a3, 0x00100000
    1:  addi a0, a0, 1
        add a2, a2, a3
        sw a2, 0(a1)
        addi s0, s0, -1
        bnez s0, 1b
        """
    )
    assert s.x(10) == 10


def test_self_modifying_code_immediate_half_only():
    # only the upper halfword (the immediate) of the executed "addi a0, a0, 1" changes:
    # 0x0015 -> 0x02a5 makes it "addi a0, a0, 42"
    s = run(
        """
        .option norvc
        li a0, 0
        li s0, 0
        la a1, 1f
        li a2, 0x02a5
    1:  addi a0, a0, 1
        bnez s0, 2f
        li s0, 1
        sh a2, 2(a1)
        j 1b
    2:
        """
    )
    assert s.x(10) == 43


def test_instruction_straddling_page_boundary():
    # a 32-bit instruction whose second half lies on the next page executes, and a store
    # to that second half is seen by the next fetch: "addi a0, a0, 1" -> "addi a0, a0, 42"
    s = run(
        """
        .option norvc
        li a0, 0
        li s0, 0
        la a1, 1f
        li a2, 0x02a5
        j 1f
        .org 0xffe
    1:  addi a0, a0, 1
        bnez s0, 2f
        li s0, 1
        sh a2, 2(a1)
        j 1b
    2:  la a3, 1b
        """
    )
    assert s.x(13) == 0x8000_0FFE
    assert s.x(10) == 43


def test_load_to_x0_still_faults():
    s = run(HANDLER + "li a1, 0x20000000\nla s8, 1f\n1: lw zero, 0(a1)")
    assert s.x(26) == 5
    assert s.x(27) == 0x2000_0000
    assert s.x(25) == s.x(24)


def test_load_from_boot_rom_region_succeeds():
    s = run(HANDLER + "li a1, 0x1000\nli a0, -1\nlw a0, 0(a1)")
    assert s.x(26) == 0
    assert s.x(10) != ONES


def test_self_modifying_misaligned_store_across_two_instructions():
    # A misaligned sw at 1:+2 rewrites the upper half of "addi a0, a0, 1" (-> imm 42) and
    # the lower half of "addi a1, a1, 1" (-> rd = a2): 0x8613_02a5.
    s = run(
        """
        .option norvc
        li a0, 0
        li a1, 0
        li a2, 0
        li s0, 0
        la t1, 1f
        li t2, 0x861302a5
    1:  addi a0, a0, 1
        addi a1, a1, 1
        bnez s0, 2f
        li s0, 1
        sw t2, 2(t1)
        j 1b
    2:
        """
    )
    assert s.x(10) == 1 + 42
    assert s.x(11) == 1
    assert s.x(12) == 2

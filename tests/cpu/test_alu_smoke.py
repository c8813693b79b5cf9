from support import needs_toolchain, run_asm

pytestmark = needs_toolchain


def test_addi_and_loop():
    s = run_asm("""
        li a0, 0
        li a1, 10
    1:  addi a0, a0, 3
        addi a1, a1, -1
        bnez a1, 1b
    """)
    assert s.x(10) == 30
    assert s.x(11) == 0

"""rule_budget.py covers the deviation catalogue exactly, and classifies instructions right."""

from __future__ import annotations

import pytest
from rule_budget import ANY, CLASSES, RULE_CLASSES, WHY_ANY, instruction_class, violations

from rvh.diff import DEVIATIONS
from rvh.isa.disasm import encode


def test_every_rule_has_a_budget_and_every_budget_a_rule():
    names = {deviation.name for deviation in DEVIATIONS}
    assert names == set(RULE_CLASSES), names ^ set(RULE_CLASSES)


def test_budgets_name_known_classes():
    for rule, classes in RULE_CLASSES.items():
        assert classes is ANY or classes <= CLASSES, rule
        assert (classes is ANY) == (rule in WHY_ANY), rule


@pytest.mark.parametrize(
    ("name", "operands", "expected"),
    [
        ("csrrs", {"rd": 5, "rs1": 0, "csr": 0x300}, "csr"),
        ("amoswap.w", {"rd": 5, "rs1": 6, "rs2": 7}, "amo"),
        ("sc.d", {"rd": 5, "rs1": 6, "rs2": 7}, "sc"),
        ("lr.w", {"rd": 5, "rs1": 6}, "lr"),
        ("lw", {"rd": 5, "rs1": 6, "imm": 4}, "load"),
        ("c.sd", {"rs1": 8, "rs2": 9, "imm": 8}, "store"),
        ("mret", {}, "xret"),
        ("sret", {}, "xret"),
        ("wfi", {}, "wfi"),
        ("sfence.vma", {"rs1": 1, "rs2": 2}, "sfence"),
        ("hfence.gvma", {"rs1": 1, "rs2": 2}, "hfence"),
        ("hlvx.wu", {"rd": 5, "rs1": 6}, "hlv"),
        ("hsv.d", {"rs1": 6, "rs2": 7}, "hsv"),
        ("beq", {"rs1": 1, "rs2": 2, "imm": 8}, "branch"),
        ("c.j", {"imm": 8}, "jump"),
        ("addi", {"rd": 1, "rs1": 2, "imm": 3}, "alu"),
        ("ecall", {}, "ecall"),
    ],
)
def test_instruction_class(name, operands, expected):
    assert instruction_class(encode(name, **operands)) == expected


def test_undecodable_and_reset():
    assert instruction_class(0xFFFFFFFF) == "illegal"
    assert instruction_class(None) == "illegal"
    assert instruction_class(0x13, reset=True) == "reset"


def test_violations():
    assert violations([("amo-misaligned-cause", "amo"), ("m-trap-gva", "alu")]) == []
    assert violations([("amo-misaligned-cause", "csr")]) == [
        "amo-misaligned-cause fired on a csr instruction (allowed: ['amo', 'sc'])"
    ]
    assert violations([("no-such-rule", "csr")]) == [
        "no-such-rule: a rule with no budget in rule_budget.py"
    ]

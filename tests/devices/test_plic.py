"""PLIC behaviour (RISC-V PLIC specification 1.0.0): gateways, claim/complete, priorities,
thresholds, and the MEIP/SEIP lines it drives into the machine array."""

import numpy as np

from rvh.cpu import layout as L
from rvh.devices import plic as P
from rvh.isa.csrs import IP_MEIP, IP_SEIP


def make(harts=1):
    machine = np.zeros(L.MACHINE_SIZE, dtype=np.int64)
    return P.Plic(harts, machine), machine


def enable(plic, context, *sources):
    words = {}
    for source in sources:
        words[source // 32] = words.get(source // 32, 0) | 1 << (source % 32)
    for word, bits in words.items():
        plic.write(P.ENABLE_BASE + P.ENABLE_STRIDE * context + 4 * word, 4, bits)


def claim(plic, context):
    return plic.read(P.CONTEXT_BASE + P.CONTEXT_STRIDE * context + P.CLAIM_COMPLETE, 4)


def complete(plic, context, source):
    plic.write(P.CONTEXT_BASE + P.CONTEXT_STRIDE * context + P.CLAIM_COMPLETE, 4, source)


def test_level_interrupt_claim_and_complete():
    plic, machine = make()
    plic.write(4 * 10, 4, 1)  # priority of source 10
    enable(plic, 1, 10)  # S-mode context of hart 0
    plic.set_level(10, True)
    assert machine[L.M_EXT_IP] == IP_SEIP
    assert plic.read(P.PENDING_BASE, 4) == 1 << 10
    assert claim(plic, 1) == 10
    assert machine[L.M_EXT_IP] == 0  # in service: no longer pending
    assert claim(plic, 1) == 0  # nothing else
    complete(plic, 1, 10)  # the line is still high: pending again
    assert machine[L.M_EXT_IP] == IP_SEIP
    plic.set_level(10, False)
    assert claim(plic, 1) == 10
    complete(plic, 1, 10)
    assert machine[L.M_EXT_IP] == 0 and plic.read(P.PENDING_BASE, 4) == 0


def test_priority_zero_never_interrupts_and_threshold_masks():
    plic, machine = make()
    enable(plic, 0, 3)
    plic.set_level(3, True)
    assert machine[L.M_EXT_IP] == 0  # priority 0 means "never interrupt"
    plic.write(4 * 3, 4, 2)
    assert machine[L.M_EXT_IP] == IP_MEIP
    plic.write(P.CONTEXT_BASE + P.THRESHOLD, 4, 2)  # priority must exceed the threshold
    assert machine[L.M_EXT_IP] == 0
    assert claim(plic, 0) == 0
    plic.write(P.CONTEXT_BASE + P.THRESHOLD, 4, 1)
    assert claim(plic, 0) == 3


def test_highest_priority_then_lowest_id_wins():
    plic, _ = make()
    for source, priority in ((5, 3), (7, 6), (9, 6)):
        plic.write(4 * source, 4, priority)
        plic.set_level(source, True)
    enable(plic, 0, 5, 7, 9)
    assert [claim(plic, 0), claim(plic, 0), claim(plic, 0)] == [7, 9, 5]


def test_contexts_of_two_harts_are_independent():
    plic, machine = make(harts=2)
    plic.write(4 * 1, 4, 1)
    enable(plic, 3, 1)  # hart 1, S-mode
    plic.set_level(1, True)
    assert machine[L.M_EXT_IP + 0] == 0
    assert machine[L.M_EXT_IP + 1] == IP_SEIP
    assert plic.read(P.ENABLE_BASE + P.ENABLE_STRIDE * 3, 4) == 1 << 1


def test_priority_is_warl_and_completion_of_a_disabled_source_is_ignored():
    plic, _ = make()
    plic.write(4 * 2, 4, 0xFF)
    assert plic.read(4 * 2, 4) == P.PRIORITY_MASK
    plic.write(4 * 2, 4, 1)
    enable(plic, 0, 2)
    plic.set_level(2, True)
    assert claim(plic, 0) == 2
    plic.write(P.ENABLE_BASE, 4, 0)  # disable everything
    complete(plic, 0, 2)  # ignored: source 2 stays in service
    enable(plic, 0, 2)
    assert claim(plic, 0) == 0
    complete(plic, 0, 2)
    assert claim(plic, 0) == 2

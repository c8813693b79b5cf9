"""The Hart's Python views of its state array."""

import pytest

from rvh.config import MachineConfig
from rvh.cpu import layout as L
from rvh.machine import Machine


@pytest.mark.parametrize(
    ("privilege", "virtual", "name"),
    [
        (L.PRIV_M, 0, "M"),
        (L.PRIV_S, 0, "HS"),
        (L.PRIV_U, 0, "U"),
        (L.PRIV_S, 1, "VS"),
        (L.PRIV_U, 1, "VU"),
    ],
)
def test_mode_names_the_five_levels(privilege, virtual, name):
    hart = Machine(MachineConfig(memory=1 << 20), output=lambda _: None).harts[0]
    assert hart.mode == "M"  # reset
    hart.state[L.PRIV], hart.state[L.VIRT] = privilege, virtual
    assert hart.mode == name

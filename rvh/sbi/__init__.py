"""rvh's built-in M-mode firmware: the SBI implemented by the emulator (``rvh run --sbi``)."""

from rvh.sbi.firmware import BuiltinSbi

__all__ = ["BuiltinSbi"]

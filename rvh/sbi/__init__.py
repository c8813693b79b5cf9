"""rvh's built-in M-mode firmware: the SBI implemented by the emulator (``rvh run --sbi``).

It sees the board only through :class:`SbiPlatform`, so it imports nothing of the machine."""

from rvh.sbi.firmware import BuiltinSbi, SbiPlatform

__all__ = ["BuiltinSbi", "SbiPlatform"]

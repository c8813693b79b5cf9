"""NS16550A UART, as on QEMU's virt board (one byte register per address, reg-shift 0).

Reference: National Semiconductor PC16550D data sheet, "Register description".  Only what
software uses is modelled: THR/RBR, the divisor latch (stored, no timing), IER, IIR/FCR with the
FIFO-enabled bits, LCR, MCR (loopback), LSR, MSR, SCR.  Transmission is instant, so THR is
always empty; the THR-empty interrupt follows the data sheet: raised when THR empties or when
ETBEI is enabled, cleared by reading IIR while it is the reported source, or by writing THR.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

RBR_THR_DLL = 0
IER_DLM = 1
IIR_FCR = 2
LCR = 3
MCR = 4
LSR = 5
MSR = 6
SCR = 7

IER_RX_AVAILABLE = 0x01
IER_THR_EMPTY = 0x02
IER_LINE_STATUS = 0x04

IIR_NONE = 0x01
IIR_THR_EMPTY = 0x02
IIR_RX_AVAILABLE = 0x04
IIR_FIFO_ENABLED = 0xC0

LCR_DLAB = 0x80
MCR_LOOPBACK = 0x10
LSR_DATA_READY = 0x01
LSR_THR_EMPTY = 0x20
LSR_TRANSMITTER_EMPTY = 0x40

RX_FIFO_DEPTH = 16


class Uart16550:
    name = "uart0"

    def __init__(
        self, output: Callable[[bytes], None], set_irq: Callable[[bool], None] | None = None
    ) -> None:
        self.output = output
        self.set_irq = set_irq or (lambda level: None)
        self.rx: deque[int] = deque()
        self.ier = 0
        self.lcr = 0
        self.mcr = 0
        self.scr = 0
        self.fcr = 0
        self.divisor = 0
        self.thr_interrupt = False
        self.bytes_out = 0
        self.bytes_in = 0
        self._irq_level = False

    # -- host side ---------------------------------------------------------------------------
    def feed(self, data: bytes) -> None:
        """Bytes typed on the host console arrive in the receive FIFO."""
        self.rx.extend(data)
        self._update_irq()

    @property
    def rx_space(self) -> int:
        return max(0, RX_FIFO_DEPTH - len(self.rx))

    # -- guest side --------------------------------------------------------------------------
    def read(self, offset: int, size: int) -> int:
        if offset == RBR_THR_DLL:
            if self.lcr & LCR_DLAB:
                return self.divisor & 0xFF
            value = self.rx.popleft() if self.rx else 0
            if self.rx or value:
                self.bytes_in += 1
            self._update_irq()
            return value
        if offset == IER_DLM:
            return (self.divisor >> 8) & 0xFF if self.lcr & LCR_DLAB else self.ier
        if offset == IIR_FCR:
            iir = self._iir()
            if iir == IIR_THR_EMPTY:
                self.thr_interrupt = False  # reading IIR acknowledges THR empty
                self._update_irq()
            return iir | (IIR_FIFO_ENABLED if self.fcr & 1 else 0)
        if offset == LCR:
            return self.lcr
        if offset == MCR:
            return self.mcr
        if offset == LSR:
            return LSR_THR_EMPTY | LSR_TRANSMITTER_EMPTY | (LSR_DATA_READY if self.rx else 0)
        if offset == MSR:
            return 0xB0 if not self.mcr & MCR_LOOPBACK else 0  # CTS, DSR, DCD asserted
        if offset == SCR:
            return self.scr
        return 0

    def write(self, offset: int, size: int, value: int) -> None:
        value &= 0xFF
        if offset == RBR_THR_DLL:
            if self.lcr & LCR_DLAB:
                self.divisor = (self.divisor & 0xFF00) | value
                return
            if self.mcr & MCR_LOOPBACK:
                self.rx.append(value)
            else:
                self.output(bytes((value,)))
            self.bytes_out += 1
            self.thr_interrupt = True  # transmission is instant: THR is empty again
            self._update_irq()
        elif offset == IER_DLM:
            if self.lcr & LCR_DLAB:
                self.divisor = (self.divisor & 0xFF) | (value << 8)
                return
            if value & IER_THR_EMPTY and not self.ier & IER_THR_EMPTY:
                self.thr_interrupt = True
            self.ier = value & 0x0F
            self._update_irq()
        elif offset == IIR_FCR:
            self.fcr = value & 0xC9
            if value & 0x02:
                self.rx.clear()
            self._update_irq()
        elif offset == LCR:
            self.lcr = value
        elif offset == MCR:
            self.mcr = value & 0x1F
        elif offset == SCR:
            self.scr = value

    def _iir(self) -> int:
        if self.ier & IER_RX_AVAILABLE and self.rx:
            return IIR_RX_AVAILABLE
        if self.ier & IER_THR_EMPTY and self.thr_interrupt:
            return IIR_THR_EMPTY
        return IIR_NONE

    def _update_irq(self) -> None:
        level = self._iir() != IIR_NONE
        if level != self._irq_level:
            self._irq_level = level
            self.set_irq(level)

    # -- VM files (rvh/snapshot.py) ------------------------------------------------------------
    def save_state(self) -> dict[str, object]:
        return {
            "rx": list(self.rx),
            "registers": [self.ier, self.lcr, self.mcr, self.scr, self.fcr, self.divisor],
            "thr_interrupt": self.thr_interrupt,
            "irq_level": self._irq_level,
            "bytes": [self.bytes_out, self.bytes_in],
        }

    def restore_state(self, saved: dict) -> None:
        """The registers as saved; the interrupt line is the PLIC's saved level already."""
        rx = [int(byte) & 0xFF for byte in saved["rx"]]
        self.ier, self.lcr, self.mcr, self.scr, self.fcr, self.divisor = (
            int(value) for value in saved["registers"]
        )
        self.rx = deque(rx)
        self.thr_interrupt = bool(saved["thr_interrupt"])
        self._irq_level = bool(saved["irq_level"])
        self.bytes_out, self.bytes_in = (int(value) for value in saved["bytes"])

    def statistics(self) -> dict[str, int]:
        return {"bytes_out": self.bytes_out, "bytes_in": self.bytes_in, "rx_queued": len(self.rx)}

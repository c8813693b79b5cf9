"""16550A register behaviour (PC16550D data sheet) as guests and Linux's 8250 driver use it."""

from rvh.devices import uart16550 as U


def make():
    out = bytearray()
    irqs = []
    uart = U.Uart16550(out.extend, irqs.append)
    return uart, out, irqs


def test_transmit_goes_to_output_and_thr_is_always_empty():
    uart, out, _ = make()
    uart.write(U.RBR_THR_DLL, 1, ord("A"))
    uart.write(U.RBR_THR_DLL, 1, 0x10A)  # only the low byte is a character
    assert out == b"A\n"
    lsr = uart.read(U.LSR, 1)
    assert lsr & U.LSR_THR_EMPTY and lsr & U.LSR_TRANSMITTER_EMPTY
    assert not lsr & U.LSR_DATA_READY


def test_receive_fifo_and_data_ready():
    uart, _, _ = make()
    uart.feed(b"hi")
    assert uart.read(U.LSR, 1) & U.LSR_DATA_READY
    assert uart.read(U.RBR_THR_DLL, 1) == ord("h")
    assert uart.read(U.RBR_THR_DLL, 1) == ord("i")
    assert not uart.read(U.LSR, 1) & U.LSR_DATA_READY


def test_divisor_latch_does_not_transmit():
    uart, out, _ = make()
    uart.write(U.LCR, 1, U.LCR_DLAB | 3)
    uart.write(U.RBR_THR_DLL, 1, 0x01)
    uart.write(U.IER_DLM, 1, 0x02)
    assert uart.read(U.RBR_THR_DLL, 1) == 0x01 and uart.read(U.IER_DLM, 1) == 0x02
    uart.write(U.LCR, 1, 3)
    assert out == b"" and uart.read(U.IER_DLM, 1) == 0


def test_rx_interrupt_raised_and_cleared():
    uart, _, irqs = make()
    uart.write(U.IER_DLM, 1, U.IER_RX_AVAILABLE)
    assert uart.read(U.IIR_FCR, 1) & 0x0F == U.IIR_NONE
    uart.feed(b"x")
    assert irqs == [True]
    assert uart.read(U.IIR_FCR, 1) & 0x0F == U.IIR_RX_AVAILABLE
    uart.read(U.RBR_THR_DLL, 1)
    assert irqs == [True, False]


def test_thr_empty_interrupt_follows_the_data_sheet():
    uart, _, irqs = make()
    uart.write(U.IER_DLM, 1, U.IER_THR_EMPTY)  # enabling it with THR empty raises it
    assert irqs == [True]
    assert uart.read(U.IIR_FCR, 1) & 0x0F == U.IIR_THR_EMPTY  # reading IIR clears it
    assert irqs == [True, False]
    assert uart.read(U.IIR_FCR, 1) & 0x0F == U.IIR_NONE
    uart.write(U.RBR_THR_DLL, 1, ord("z"))  # THR empties again after the write
    assert irqs[-1] is True


def test_fifo_enabled_bits_and_loopback():
    uart, out, _ = make()
    uart.write(U.IIR_FCR, 1, 0x07)
    assert uart.read(U.IIR_FCR, 1) & U.IIR_FIFO_ENABLED == U.IIR_FIFO_ENABLED
    uart.write(U.MCR, 1, U.MCR_LOOPBACK)
    uart.write(U.RBR_THR_DLL, 1, 0x55)
    assert out == b"" and uart.read(U.RBR_THR_DLL, 1) == 0x55


def test_scratch_register():
    uart, _, _ = make()
    uart.write(U.SCR, 1, 0xA5)
    assert uart.read(U.SCR, 1) == 0xA5

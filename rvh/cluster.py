"""What the runs that may go to a Dask cluster share (``rvh bench overhead --dask``,
``tools/fuzz --dask``, rvh/diff/campaign_runner.py)."""

from __future__ import annotations

import socket

from rvh.errors import ConfigError


def check_scheduler(address: str, timeout: float = 5.0) -> None:
    """Fail with one line unless a Dask scheduler answers at ``address``, within ``timeout``
    seconds: a client waits without end on a server that accepts the connection and never
    answers (distributed's connect reads the handshake with no deadline)."""
    import asyncio

    from distributed.comm import connect
    from distributed.comm.addressing import get_address_host_port, parse_address

    try:
        scheme, _ = parse_address(address)
        host, port = get_address_host_port(address)
    except ValueError as error:
        raise ConfigError(f"--dask {address}: {error}") from None
    unreachable = f"--dask {address}: cannot reach the scheduler"
    if scheme == "tcp":  # refused at once, not after connect's retries
        try:
            socket.create_connection((host, port), timeout=timeout).close()
        except OSError as error:
            raise ConfigError(f"{unreachable}: {error}") from None

    async def handshake() -> None:
        comm = await asyncio.wait_for(connect(address, timeout=timeout), timeout)
        await comm.close()

    try:
        asyncio.run(handshake())
    except TimeoutError:
        raise ConfigError(f"{unreachable}: no handshake within {timeout:g} s") from None
    except (OSError, ValueError) as error:
        raise ConfigError(f"{unreachable}: {error}") from None

"""What the runs that may go to a Dask cluster share (``rvh bench overhead --dask``,
``tools/fuzz --dask``, rvh/diff/campaign_runner.py)."""

from __future__ import annotations

import contextlib
import logging
import socket
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, TypeVar

from rvh.errors import ConfigError

if TYPE_CHECKING:
    from distributed import Client, Future

Item = TypeVar("Item")


def as_they_finish(
    client: Client,
    task: Callable[[Item], object],
    items: Sequence[Item],
    name: Callable[[Item], str],
) -> Iterator[tuple[Item, Future]]:
    """Submit ``task(item)`` for each item, as a task called ``name(item)``, and yield each
    item with its future as they finish.  pure=False: a run is an experiment, never served
    from Dask's cache."""
    from distributed import as_completed

    futures = [client.submit(task, item, key=name(item), pure=False) for item in items]
    by_future = dict(zip(futures, items, strict=True))
    for future in as_completed(futures):
        yield by_future[future], future


@contextlib.contextmanager
def dask_client(address: str, workers: int) -> Iterator[Client]:
    """A client of the scheduler at ``address`` (its handshake checked first:
    ``check_scheduler``), or, for an empty address, of a LocalCluster of ``workers``
    single-threaded processes; the client, and the cluster, are closed on the way out."""
    from distributed import Client, LocalCluster

    cluster = None
    if address:
        check_scheduler(address)  # else a silent server would keep Client waiting for good
        try:
            client = Client(address, timeout="30s")
        except (OSError, TimeoutError) as error:
            raise ConfigError(f"--dask {address}: {error}") from None
    else:
        cluster = LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            silence_logs=logging.ERROR,
        )
        client = Client(cluster)
    try:
        yield client
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


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

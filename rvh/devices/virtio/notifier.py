"""Wake a device's trio task from an MMIO access, whichever thread makes it.

A guest's QueueNotify write reaches the device synchronously, from the task that runs the harts:
today that is the trio thread, later a worker thread of ``trio.to_thread.run_sync``.  The write
must only *signal* the device's worker, never do the work, so ``Notifier.notify`` is cheap and
safe from both: on the trio thread it sets a ``trio.Event`` directly; from any other thread it
asks the run loop to do so through the run's ``TrioToken`` (``run_sync_soon`` is the one trio
entry point documented as safe from any thread, and needs no trio context in the caller).

Signals coalesce: any number of notifications before the worker runs wake it once, and the
worker then looks at everything the guest has made available.  One task waits per notifier.
``TrioRun`` is the reach-the-run-from-any-thread part, shared with the hub's held-back senders.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import trio


class TrioRun:
    """The trio run some waiters live in, reachable from any thread: on the run's own thread
    (or before ``bind``) a callback runs at once, from elsewhere through ``run_sync_soon``."""

    def __init__(self) -> None:
        self._token: trio.lowlevel.TrioToken | None = None
        self._thread: int | None = None

    def bind(self) -> None:
        """Remember the current run (call from inside it)."""
        self._token = trio.lowlevel.current_trio_token()
        self._thread = threading.get_ident()

    def here(self) -> bool:
        """Is the caller on the run's thread (or is there no run yet)?"""
        return self._token is None or threading.get_ident() == self._thread

    def call_soon(self, callback: Callable[[], object]) -> bool:
        """Have the run call ``callback``; False when the run is over."""
        assert self._token is not None
        try:
            self._token.run_sync_soon(callback)
        except trio.RunFinishedError:
            return False
        return True


class Notifier:
    def __init__(self) -> None:
        self._pending = False
        self._event: trio.Event | None = None
        self._run = TrioRun()
        self._scheduled = False
        self.notifications = 0
        self.wakeups = 0

    def bind(self) -> None:
        """Attach to the current trio run (called by the device's ``serve`` before it reports
        itself started).  Notifications that came earlier are kept."""
        self._run.bind()
        self._event = trio.Event()
        if self._pending:
            self._event.set()

    def notify(self) -> None:
        """Wake the waiting task; callable from the trio thread or any other thread."""
        self.notifications += 1
        if self._run.here():
            self._wake()
            return
        if self._scheduled:
            return  # a wake-up is already on its way to the run loop
        self._scheduled = True
        if not self._run.call_soon(self._wake_from_thread):
            self._scheduled = False

    def _wake_from_thread(self) -> None:
        # clear the flag first: a notify() racing with this callback schedules another one,
        # which at worst wakes the worker once more for nothing
        self._scheduled = False
        self._wake()

    def _wake(self) -> None:
        self._pending = True
        if self._event is not None:
            self._event.set()

    @property
    def pending(self) -> bool:
        return self._pending

    def take(self) -> bool:
        """Consume a pending notification without a task (virtual I/O timing: the run loop
        serves the device itself); returns whether there was one."""
        pending, self._pending = self._pending, False
        if pending and self._event is not None and self._event.is_set():
            self._event = trio.Event()
        return pending

    async def wait(self) -> None:
        """Return once a notification has arrived since the previous ``wait`` returned."""
        if self._event is None:
            self.bind()
        assert self._event is not None
        if self._pending:
            await trio.lowlevel.checkpoint()
        else:
            await self._event.wait()
        self._pending = False
        self._event = trio.Event()
        self.wakeups += 1

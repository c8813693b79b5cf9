"""The Python side of the translating tier: compile hot blocks, install them, keep count.

Between two kernel calls ``Tier.service`` takes the blocks the kernel queued as hot
(rvh/tier/dispatch.py), reads each from the decode cache (rvh/tier/translate.py) and hands the
new ones, as one batch, to a worker thread that compiles them into one LLVM module with
llvmlite's MCJIT; at a later kernel return their addresses go into the jump table.  The
interpreter goes on meanwhile, so a burst of new code never stalls the hart; results do not
depend on when a block is installed, only speed does.  A block's code is kept by what it was
read from (host offset, pc and its instructions), so a block the kernel dropped after a write
to a code page is reinstalled without compiling when it comes back unchanged.  The code cache
is bounded: past ``capacity`` blocks the oldest batches are dropped with their execution
engines (MCJIT frees a module's code only with its engine).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import llvmlite.binding as llvm
import numpy as np

from rvh.cpu.layout import M_CODE_WRITES, PAGE_FLAG_TRANSLATED, PAGE_SHIFT
from rvh.tier.layout import (
    COUNT_MASK,
    J_CALLS,
    J_COUNTS,
    J_EPOCH,
    J_EXECUTED,
    J_FLUSHES,
    J_PAGE_FLUSHES,
    J_QUEUE,
    J_QUEUE_LEN,
    J_TABLE,
    J_THRESHOLD,
    JIT_SIZE,
    JT_ADDRESS,
    JT_FIELDS,
    JT_HOST,
    JT_LENGTH,
    JT_PC,
    JT_SHIFT,
    TABLE_MASK,
)
from rvh.tier.translate import Instruction, block_ir, read_block, still_decoded

TIERS = ("interp", "jit")
DEFAULT_THRESHOLD = 64  # entries before a block is compiled
DEFAULT_CAPACITY = 8192  # compiled blocks kept

BlockKey = tuple[int, int, tuple[Instruction, ...]]


@dataclass
class _Batch:
    engine: llvm.ExecutionEngine
    keys: list[BlockKey] = field(default_factory=list)
    code_bytes: int = 0


_Compiled = tuple[_Batch, list[int], float]


def _target() -> llvm.TargetMachine:
    """A target machine for the host CPU: a new one for each engine, which owns it and
    frees it with itself (llvmlite's create_mcjit_compiler)."""
    llvm.initialize_native_target()
    llvm.initialize_native_asmprinter()
    return llvm.Target.from_default_triple().create_target_machine(
        cpu=llvm.get_host_cpu_name(),
        features=llvm.get_host_cpu_features().flatten(),
        opt=2,
        jit=True,
    )


def _compile(batch_id: int, keys: list[BlockKey]) -> _Compiled:
    """Compile blocks as one module; returns the batch, each block's address and the
    seconds it took.  Touches nothing shared, so it may run in the worker thread (llvmlite
    releases the GIL while LLVM works)."""
    start = time.perf_counter()
    names = [f"rvh_block_{batch_id}_{i}" for i in range(len(keys))]
    text = "\n\n".join(
        block_ir(name, pc, host, instructions)
        for name, (host, pc, instructions) in zip(names, keys, strict=True)
    )
    module = llvm.parse_assembly(text)
    module.verify()
    machine = _target()
    options = llvm.create_pipeline_tuning_options(speed_level=2)
    builder = llvm.create_pass_builder(machine, options)
    builder.getModulePassManager().run(module, builder)
    # one code generation: the object file gives the code's size, then the engine loads it
    code = machine.emit_object(module)
    engine = llvm.create_mcjit_compiler(llvm.parse_assembly(""), machine)
    engine.add_object_file(llvm.ObjectFileRef.from_data(code))
    engine.finalize_object()
    batch = _Batch(engine, list(keys), len(code))
    addresses = [engine.get_function_address(name) for name in names]
    return batch, addresses, time.perf_counter() - start


class Tier:
    """The translating tier of one machine (its harts share the jump table, as they share
    the decode cache)."""

    def __init__(
        self,
        decode_cache: np.ndarray,
        machine: np.ndarray,
        page_flags: np.ndarray,
        *,
        threshold: int = DEFAULT_THRESHOLD,
        capacity: int = DEFAULT_CAPACITY,
        synchronous: bool = False,
    ) -> None:
        """``synchronous``: compile in the kernel's thread, so that a block hot at one kernel
        return runs compiled from the next (tests); else a worker thread compiles while the
        interpreter goes on."""
        self.decode_cache = decode_cache
        self.machine = machine
        self.page_flags = page_flags
        self.capacity = capacity
        self.jit = np.zeros(JIT_SIZE, dtype=np.int64)
        self.jit[J_TABLE + JT_HOST :: JT_FIELDS] = -1
        self.jit[J_THRESHOLD] = threshold
        self.jit[J_EPOCH] = machine[M_CODE_WRITES]
        self.code: dict[BlockKey, tuple[int, int]] = {}  # -> (address, batch id)
        self.batches: OrderedDict[int, _Batch] = OrderedDict()
        self.next_batch = 0
        self.compiling: set[BlockKey] = set()  # waiting or in flight
        self.waiting: list[BlockKey] = []
        self.in_flight: list[tuple[int, list[BlockKey], Future[_Compiled]]] = []
        self.worker = None if synchronous else ThreadPoolExecutor(1, "rvh-tier")
        self.blocks_compiled = 0
        self.blocks_evicted = 0
        self.compile_seconds = 0.0

    def forget_installed(self) -> None:
        """Empty the jump table, the hot counts and the queue: the machine's memory, decode
        cache and page flags were replaced wholesale (a snapshot restored).  Compiled code is
        kept: a block comes back only where the decode cache holds its instructions again."""
        self.jit[J_TABLE + JT_HOST :: JT_FIELDS] = -1
        self.jit[J_COUNTS : J_COUNTS + COUNT_MASK + 1] = 0
        self.jit[J_QUEUE_LEN] = 0
        self.page_flags &= np.uint8(~PAGE_FLAG_TRANSLATED & 0xFF)
        self.jit[J_EPOCH] = self.machine[M_CODE_WRITES]

    # ---- between kernel calls ----------------------------------------------------------
    def pending(self) -> bool:
        """Whether the kernel has queued hot blocks."""
        return bool(self.jit[J_QUEUE_LEN])

    def service(self) -> None:
        """Install the blocks compiled since the last call, and start compiling the blocks
        the kernel queued as hot (in the worker thread, or here when synchronous)."""
        self._collect(wait=False)
        queued = int(self.jit[J_QUEUE_LEN])
        pending: list[BlockKey] = []
        for i in range(queued):
            host = int(self.jit[J_QUEUE + 2 * i])
            pc = int(self.jit[J_QUEUE + 2 * i + 1])
            instructions = read_block(self.decode_cache, host, pc)
            if not instructions:
                continue  # its counter stays past the threshold until the next flush
            key = (host, pc, instructions)
            if key in self.code:
                self._install(key, self.code[key][0])  # compiled before a flush or eviction
            elif key not in self.compiling and key not in pending:
                pending.append(key)
        self.jit[J_QUEUE_LEN] = 0
        self.compiling.update(pending)
        self.waiting += pending
        if self.waiting and not self.in_flight:
            # one batch at a time: what gets hot meanwhile waits and goes as the next batch
            # (a module's fixed costs are paid once for many blocks)
            batch_id = self.next_batch
            self.next_batch += 1
            batch, self.waiting = self.waiting, []
            if self.worker is None:
                self._finish(batch_id, batch, _compile(batch_id, batch))
            else:
                future = self.worker.submit(_compile, batch_id, batch)
                self.in_flight.append((batch_id, batch, future))
        self._evict()

    def finish(self) -> None:
        """Wait for the blocks being compiled and install them."""
        self._collect(wait=True)

    def _collect(self, wait: bool) -> None:
        still: list[tuple[int, list[BlockKey], Future[_Compiled]]] = []
        for batch_id, keys, future in self.in_flight:
            if wait or future.done():
                self._finish(batch_id, keys, future.result())
            else:
                still.append((batch_id, keys, future))
        self.in_flight = still

    def _finish(self, batch_id: int, keys: list[BlockKey], compiled: _Compiled) -> None:
        """Keep a compiled batch, and install each block whose instructions are still the
        ones in the decode cache (a store may have changed them while it compiled)."""
        batch, addresses, seconds = compiled
        self.batches[batch_id] = batch
        self.compile_seconds += seconds
        self.blocks_compiled += len(keys)
        for key, address in zip(keys, addresses, strict=True):
            self.compiling.discard(key)
            self.code[key] = (address, batch_id)
            host, pc, instructions = key
            if still_decoded(self.decode_cache, host, instructions):
                self._install(key, address)
            else:  # let it get hot again, to be read anew
                self.jit[J_COUNTS + ((host >> 1) & COUNT_MASK)] = 0

    def _install(self, key: BlockKey, address: int) -> None:
        host, pc, instructions = key
        slot = J_TABLE + (((host >> 1) & TABLE_MASK) << JT_SHIFT)
        # from now on a change to the page's decoded code is reported (dispatch.flush_page)
        self.page_flags[host >> PAGE_SHIFT] |= PAGE_FLAG_TRANSLATED
        self.jit[slot + JT_HOST] = host
        self.jit[slot + JT_PC] = pc
        self.jit[slot + JT_ADDRESS] = address
        self.jit[slot + JT_LENGTH] = len(instructions)
        self.jit[J_COUNTS + ((host >> 1) & COUNT_MASK)] = 0  # a colliding block may get hot

    def _evict(self) -> None:
        """Drop the oldest batches while more than ``capacity`` blocks are compiled."""
        while len(self.code) > self.capacity and len(self.batches) > 1:
            _, batch = self.batches.popitem(last=False)
            for key in batch.keys:
                address, _ = self.code.pop(key)
                slot = J_TABLE + (((key[0] >> 1) & TABLE_MASK) << JT_SHIFT)
                if self.jit[slot + JT_ADDRESS] == address:
                    self.jit[slot + JT_HOST] = -1
                self.blocks_evicted += 1
            # the engine (and its code) goes with the last reference to the batch

    # ---- statistics --------------------------------------------------------------------
    def statistics(self) -> dict[str, int | float]:
        return {
            "blocks_compiled": self.blocks_compiled,
            "blocks_cached": len(self.code),
            "blocks_evicted": self.blocks_evicted,
            "compile_seconds": self.compile_seconds,
            "code_bytes": sum(batch.code_bytes for batch in self.batches.values()),
            "entries": int(self.jit[J_CALLS]),
            "instructions": int(self.jit[J_EXECUTED]),
            "flushes": int(self.jit[J_FLUSHES]),
            "page_flushes": int(self.jit[J_PAGE_FLUSHES]),
        }

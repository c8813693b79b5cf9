"""The Python side of the translating tier: compile hot regions, install them, keep count.

Between two kernel calls ``Tier.service`` takes the pcs the kernel queued as hot
(rvh/tier/dispatch.py), reads the region at each from the decode cache (rvh/tier/translate.py:
the loops through it, stopping where installed regions start) and hands the new ones as one
batch to a worker thread that compiles them into one LLVM module with llvmlite's MCJIT; at a
later kernel return their addresses go into the jump table.  The interpreter goes on
meanwhile, so a burst of new code never stalls the hart; results do not depend on when a
region is installed, only speed does.  (A region is called a block below where the kernel's
view is the same: a function the jump table holds for one pc.)

Two levels: a block is first compiled ``QUICK`` (SROA and CFG simplification, then LLVM's
fast instruction selector with the optimizing register allocator: cheap to compile, and code
that keeps the guest registers in host registers; the code counts its entries), and when the
worker is idle the quick blocks that ran ``optimize_after`` times are compiled again
``OPTIMIZED`` (the same IR passes, full code generation) and their jump-table entries switched
to the new code; the quick code is freed with its engine when no block uses it.  With a code
cache, the quick blocks that ran ``save_after`` times are compiled optimized for the next run:
while the worker is idle, and what is left when the run ends (``Tier.close``, in a bounded
time).  The worker generates code in an LLVM context of its own, outside llvmlite's lock, so
that the hart's thread, loading code from the cache, does not wait for it.

Compiled code is named by a digest (``block_digest``) of the IR it was compiled from, the
level and the host (the LLVM version, the CPU and its features): the IR holds the block's
instructions, its virtual pc and host offset (a comment names both), and the layout constants
of the arrays it reads, so the same digest can only name the same code.  The on-disk code
cache (``CodeCache``) lets a second run of the same program start with its blocks compiled.
In memory, blocks are kept by (host offset, pc, region), so a block dropped after a
write to a code page is reinstalled without compiling when it comes back unchanged; past
``capacity`` blocks the oldest batches are dropped with their execution engines (MCJIT frees
a module's code only with its engine).
"""

from __future__ import annotations

import contextlib
import functools
import gc
import hashlib
import json
import os
import re
import shutil
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import llvmlite
import llvmlite.binding as llvm
import numpy as np

from rvh.cpu.layout import M_CODE_WRITES, PAGE_FLAG_TRANSLATED, PAGE_FLAGS_OF_THE_TIER, PAGE_SHIFT
from rvh.tier.baseline import CodeArena, region_code
from rvh.tier.baseline import available as baseline_available
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
from rvh.tier.translate import (
    SHARED_IR,
    Instruction,
    Node,
    Op,
    Region,
    continuation,
    decoded_check,
    entry_length,
    fields_unchanged,
    load_region_reader,
    read_region,
    region_ir,
    straight_line_length,
)

TIERS = ("interp", "jit")
# entries before a block is looked for among the compiled ones (in memory, then in the code
# cache on disk) and installed if found (see docs/performance.md, Linux)
DEFAULT_THRESHOLD = 2000
# entries before a block found nowhere is compiled (``rvh run --tier jit`` and the benchmarks;
# ``Tier`` itself compiles at the threshold unless told): on Linux's first boot, half the
# blocks hot at 2000 entries ran too few times more to pay for their compile (about 2 ms of
# CPU each), while a second boot loads them from the code cache for nearly nothing
DEFAULT_COMPILE_AFTER = 8000
DEFAULT_CAPACITY = 8192  # compiled blocks kept
# entries of a block's quick code before it is compiled again optimized.  An O2 compile of a
# block costs about what 2 million entries of a 10-instruction block lose by running quick
# code, and what ran N times is taken to run about N times more; 8 million leaves margin for
# a loaded host, where the worker's compile takes the CPU from the hart instead of from an
# idle core, and for runs that end before the optimized code arrives (the bench workloads)
DEFAULT_OPTIMIZE_AFTER = 1 << 23
# entries of a quick block in a run before, at its end, it is compiled optimized into the
# code cache for the next run (``Tier.close``): what a later run loads is then O2 code.  On
# Linux's boot no region reaches 2^20 entries; at 2^14 its 128 hottest went optimized into
# the cache for 2.7 s at the first boot's end, and the next boots took 4.8 s instead of 5.4
DEFAULT_SAVE_AFTER = 1 << 14
# CPU seconds ``Tier.close`` spends at most compiling them (at 128 blocks it took 1.4-2.2 s
# after every boot, a wait longer than half the boot itself): the hottest go first, in
# batches of SAVE_BATCH; the rest are still quick code in the cache, hot again in the next
# run, and go then (while the worker is idle, below, or at its end)
SAVE_SECONDS = 0.5
SAVE_BATCH = 8
# while a run goes on, a worker with no quick block to compile for IDLE_SAVE_QUIET seconds
# compiles the hottest of those blocks optimized, IDLE_SAVE_BATCH at a time (a quick block
# that gets hot meanwhile waits for at most one such batch, some 30-80 ms), installs them
# and writes them to the code cache: on a boot from the cache the worker is idle most of
# the time, and what it saves then is not left for the run's end
IDLE_SAVE_QUIET = 0.2
IDLE_SAVE_BATCH = 4
# instructions (the harts' virtual time) within which a block waiting for compile_after
# entries must get them to be compiled; else it waits for as many again.  On Linux's first
# boot the blocks that took longer (about 280 of 940) were a quarter of the compile work and
# ran about 1% of the instructions the compiled blocks ran after it (docs/performance.md)
DEFAULT_SLOW_AFTER = 1 << 28
# entries of a region's baseline code before it is compiled quick (``Tier(baseline=True)``):
# a region hot at the threshold runs baseline code at once, and LLVM's milliseconds go only
# to those that run on
DEFAULT_PROMOTE_AFTER = 6000
BASELINE_BY_DEFAULT = baseline_available()  # ``rvh run --tier jit``: where the host runs it
# thresholds' worth of entries before a pc whose region was empty (its first instruction is
# not translated) is queued again: its counter may be shared with code that can be
UNTRANSLATED_WAIT = 8
# regions after a straight line cut at its length limit given baseline code with the region
# (``Tier._baseline_continuations``); ChaCha20's loop body is 16 such pieces
MAX_CONTINUATIONS = 16
# with baseline code, a pc hot once whose straight line runs N instructions waits for
# compile_after * LONG_LINE / N entries in all before it is read (``_wait_unread``), not
# compile_after: on Linux's first boot, 92 regions of 24 or more instructions ran 47 million
# instructions on the interpreter while they waited for 8,000 entries
LONG_LINE = 12
# object files from the code cache loaded into one engine before the next gets its own: an
# engine costs about half a millisecond to make and a Linux boot loads some 350 objects,
# while one engine's code is freed only with all of it (what eviction frees is bounded so)
SHARED_ENGINE_OBJECTS = 64
OPTIMIZE_POLL = 0.05  # seconds between looks at the quick blocks' entry counts
CACHE_FORMAT = 3  # of the on-disk code cache's files; part of every digest
DEFAULT_CACHE_LIMIT = 256 << 20  # bytes of object files the on-disk code cache keeps
LOG_SUFFIX = ".log"  # of the code cache's index files (CodeCache)
MERGE_LOGS_OVER = 16  # index logs a prune leaves before merging them into one
LOG_QUIET_SECONDS = 600  # a log unchanged this long is no longer written to: it may be merged
_LOG_LINE = re.compile(rb"([0-9a-f]{40}) ([0-9a-f]{64}) (-|[0-9a-f]{24}/[0-9a-f]{40})")
_PLACEHOLDER = "rvh_block"  # the function's name in a block's IR, before it gets its own

# a compiled region: its host offset, its virtual pc, its code as it was read
BlockKey = tuple[int, int, Region]
# what says a region's instructions are still decoded as read (translate.decoded_check)
_Check = tuple[np.ndarray, np.ndarray]


@dataclass(frozen=True)
class Level:
    """How a batch is compiled: LLVM's IR pipeline for O-level ``pipeline``, or (None) the
    IR passes ``passes`` (llvmlite's ``add_<name>_pass``) in order; then code generation at
    ``codegen`` (0: the fast instruction selector)."""

    name: str
    pipeline: int | None
    passes: tuple[str, ...]
    codegen: int


# Measured on the three bench workloads and Linux's boot (docs/performance.md, "fifth
# round"): the region IR keeps the registers a region writes in stack slots, which SROA makes
# SSA values.  LLVM's fast register allocator spills every value live across a basic block,
# and a region's memory accesses split its nodes into many; with the optimizing allocator
# (OPTIMIZE_REGISTER_ALLOCATION) after SROA, quick code ran bytes 1.6x and recursion 2x
# faster, for 1.6x the compile (bench workloads) to 2.3x (Linux's small regions).  The O2
# pipeline's IR passes cost 2.7x the compile of these two, made the bench workloads' code no
# faster, but Linux's boot from the code cache 8% faster: the optimized level keeps them.
QUICK = Level("quick", None, ("sroa", "simplify_cfg"), 0)
OPTIMIZED = Level("optimized", 2, (), 2)
# a region's first code, written without LLVM (rvh/tier/baseline.py); never in the code cache
BASELINE = Level("baseline", None, (), -1)
LEVELS = {level.name: level for level in (QUICK, OPTIMIZED)}
# LLVM's switch for the optimizing register allocator at code generation level 0, a
# process-wide option (it changes nothing at the levels numba compiles at)
OPTIMIZE_REGISTER_ALLOCATION = "-optimize-regalloc"


_llvm_setup = threading.Lock()


@functools.cache
def _initialize_llvm() -> None:
    """The native target, and the register allocator's option, once per process (two
    threads may both get here first: they take turns, and setting the option twice is
    harmless)."""
    with _llvm_setup:
        llvm.initialize_native_target()
        llvm.initialize_native_asmprinter()
        llvm.set_option("rvh", OPTIMIZE_REGISTER_ALLOCATION)


@functools.cache
def host_fingerprint() -> str:
    """What compiled code depends on besides its IR: the compiler, its options and the host
    it targets."""
    _initialize_llvm()
    parts = [
        f"format {CACHE_FORMAT}",
        OPTIMIZE_REGISTER_ALLOCATION,
        f"llvmlite {llvmlite.__version__}",
        "llvm {}.{}.{}".format(*llvm.llvm_version_info),
        llvm.get_process_triple(),
        llvm.get_host_cpu_name(),
        llvm.get_host_cpu_features().flatten(),
    ]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def block_digest(ir: str, level: Level) -> str:
    """The name of a block's compiled code: a digest of its IR (with the placeholder name),
    the level it is compiled at and the host (``host_fingerprint``)."""
    digest = hashlib.sha256(f"{host_fingerprint()}\n{level}\n{SHARED_IR}\n".encode())
    digest.update(ir.encode())
    return digest.hexdigest()[:40]


def symbol(digest: str) -> str:
    return f"rvh_{digest}"


@functools.cache
def translator_fingerprint() -> str:
    """A digest of rvh's Python sources: everything a region's IR can depend on besides the
    region itself (the translator, the layouts, the instruction and CSR tables)."""
    digest = hashlib.sha256(f"format {CACHE_FORMAT}\n".encode())
    package = Path(__file__).resolve().parent.parent
    for path in sorted(package.rglob("*.py")):
        digest.update(f"{path.relative_to(package)}\n".encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def region_key(key: BlockKey, level: Level) -> str:
    """A name for the code a region compiles to at ``level``, found without writing its IR:
    its place (``place_key``), then a digest of the region as read (every field of every
    instruction), its pc, its host offset, the level and the translator
    (``translator_fingerprint``).  The code cache maps it to the block's digest
    (``CodeCache.resolve``), so that a later run looks a hot region up for the price of a
    hash and a file read instead of generating its IR twice (about half a millisecond each)."""
    digest = hashlib.sha256(f"{level.name}\n{_region_text(key)}".encode()).hexdigest()[:40]
    return f"{place_key(key[0], key[1])}/{digest}"


@functools.lru_cache(maxsize=1 << 14)
def place_key(host: int, pc: int) -> str:
    """A name for where regions start (a host offset and a virtual pc, with the translator):
    the code cache keeps region keys under their place, so that a run learns whether any run
    compiled a region there without reading one (``CodeCache.knows_place``)."""
    return hashlib.sha256(f"{translator_fingerprint()}\n{host}\n{pc}".encode()).hexdigest()[:24]


@functools.lru_cache(maxsize=1 << 14)
def _region_text(key: BlockKey) -> str:
    """What ``region_key`` hashes besides the level (one text for both levels' keys)."""
    host, pc, region = key
    shape = tuple(
        (
            node.pc,
            tuple(instruction.fields() for instruction in node.instructions),
        )
        for node in region
    )
    return f"{translator_fingerprint()}\n{host}\n{pc}\n{shape!r}"


def _target(level: Level) -> llvm.TargetMachine:
    """A target machine for the host CPU: a new one for each engine, which owns it and
    frees it with itself (llvmlite's create_mcjit_compiler)."""
    cpu, features = _host_cpu()
    return llvm.Target.from_default_triple().create_target_machine(
        cpu=cpu, features=features, opt=level.codegen, jit=True
    )


_emitters = threading.local()


def _emitter(level: Level) -> llvm.TargetMachine:
    """The target machine a thread emits ``level``'s object code with, made once per thread
    (a quarter of a millisecond each) and used by that thread only."""
    machines = getattr(_emitters, "machines", None)
    if machines is None:
        machines = _emitters.machines = {}
    if level not in machines:
        machines[level] = _target(level)
    return machines[level]


@functools.cache
def _host_cpu() -> tuple[str, str]:
    """The host CPU's name and features, asked of LLVM once (two target machines a batch)."""
    _initialize_llvm()
    return llvm.get_host_cpu_name(), llvm.get_host_cpu_features().flatten()


class _ThreadState(threading.local):
    outside_lock = False  # llvmlite calls of this thread skip its lock (``_own_context``)
    held_by_collector = False  # what outside_lock was when the garbage collector began
    context: llvm.context.ContextRef | None = None  # this thread's LLVM context


_thread_state = _ThreadState()


def _collector_takes_the_lock(phase: str, info: dict[str, int]) -> None:
    """While Python's garbage collector runs in a thread outside llvmlite's lock, that
    thread's calls take the lock again: what the collector frees may be any thread's."""
    if phase == "start":
        _thread_state.held_by_collector = _thread_state.outside_lock
        _thread_state.outside_lock = False
    else:
        _thread_state.outside_lock = _thread_state.held_by_collector


gc.callbacks.append(_collector_takes_the_lock)


@functools.cache
def _lock_can_be_skipped() -> bool:
    """Let a thread's llvmlite calls skip llvmlite's process-wide lock while it works in an
    LLVM context of its own (``_own_context``); whether that could be done.

    llvmlite serializes every call into LLVM with one lock, so that the hart's thread, when
    it loaded a block from the code cache, waited for the worker's code generation to end:
    0.12-0.15 s of a 3.2 s boot of Linux from the cache, and 0.3 s when the worker also
    compiled optimized code.  LLVM itself lets threads work at once in different contexts
    (its manual's "Threads and LLVM"), which is what the worker does with a module of its own
    context and a target machine of its own; everything else (loading objects, the global
    context numba uses) stays behind the lock.  If llvmlite's lock is not what is expected,
    nothing changes: the calls stay locked, only slower."""
    lock = getattr(getattr(llvm.ffi, "lib", None), "_lock", None)
    locked = type(lock)
    if lock is None or not hasattr(locked, "__enter__") or not hasattr(locked, "__exit__"):
        return False

    class SkippableLock(locked):  # type: ignore[misc, valid-type]
        def __enter__(self) -> None:
            if not _thread_state.outside_lock:
                super().__enter__()

        def __exit__(self, *details: object) -> None:
            if not _thread_state.outside_lock:
                super().__exit__(*details)

    try:
        lock.__class__ = SkippableLock
    except TypeError:
        return False
    return True


@contextlib.contextmanager
def _own_context() -> Iterator[llvm.context.ContextRef]:
    """This thread's LLVM context, its llvmlite calls outside llvmlite's lock meanwhile (if
    ``_lock_can_be_skipped``): for work on modules of that context and this thread's own
    target machines only."""
    if _thread_state.context is None:
        _thread_state.context = llvm.create_context()
    _thread_state.outside_lock = _lock_can_be_skipped()
    try:
        yield _thread_state.context
    finally:
        _thread_state.outside_lock = False


def _load(code: bytes, level: Level) -> llvm.ExecutionEngine:
    """An engine holding one object file's code, relocated and ready to call."""
    engine = llvm.create_mcjit_compiler(llvm.parse_assembly(""), _target(level))
    engine.add_object_file(llvm.ObjectFileRef.from_data(code))
    engine.finalize_object()
    return engine


@dataclass
class _Compiled:
    """A compiled batch: its object file, the engine it is loaded in, each block's address."""

    level: Level
    digests: list[str]
    code: bytes
    engine: llvm.ExecutionEngine
    addresses: list[int]
    seconds: float


def compile_blocks(
    digests: list[str],
    irs: list[str],
    level: Level,
    cache: CodeCache | None = None,
    aliases: list[str] | None = None,
    shapes: list[Shape] | None = None,
) -> _Compiled:
    """Compile blocks as one module (one code generation, one engine for all) and write it
    to ``cache``; touches nothing else shared, so it may run in the worker thread (llvmlite
    releases the GIL while LLVM works)."""
    start = time.thread_time()  # CPU: the figure that holds on a loaded host
    names = [symbol(digest) for digest in digests]
    text = "\n\n".join(
        [
            SHARED_IR,
            *(
                ir.replace(f"@{_PLACEHOLDER}(", f"@{name}(", 1)
                for name, ir in zip(names, irs, strict=True)
            ),
        ]
    )
    machine = _emitter(level)
    with _own_context() as context:
        module = llvm.parse_assembly(text, context)
        try:
            module.verify()
            _optimize(module, machine, level)
            code = machine.emit_object(module)
        finally:
            module.close()  # here, not by whichever thread would drop it last
    engine = _load(code, level)
    addresses = [engine.get_function_address(name) for name in names]
    if cache is not None:
        cache.store(digests, code, aliases, shapes)
    return _Compiled(level, list(digests), code, engine, addresses, time.thread_time() - start)


def _optimize(module: llvm.ModuleRef, machine: llvm.TargetMachine, level: Level) -> None:
    """Run ``level``'s IR passes over ``module``; what it makes is freed here, by the thread
    the module belongs to (``_own_context``)."""
    if level.pipeline is None and not level.passes:
        return
    if level.pipeline is not None:
        options = llvm.create_pipeline_tuning_options(speed_level=level.pipeline)
        builder = llvm.create_pass_builder(machine, options)
        passes = builder.getModulePassManager()
    else:
        options = llvm.create_pipeline_tuning_options()
        builder = llvm.create_pass_builder(machine, options)
        passes = llvm.create_new_module_pass_manager()
        for name in level.passes:
            getattr(passes, f"add_{name}_pass")()
    try:
        passes.run(module, builder)
    finally:
        for made in (passes, builder, options):
            made.close()


class CodeCache:
    """Compiled batches on disk, found by block digest and by region key.

    ``objects/<sha256 of the file>.o`` holds a batch's object code followed by the digests of
    its blocks (``_pack``).  The index is ``index/*.log``: each process appends to a log of its
    own one line per block it stores, ``<digest> <object> <region key>`` (``region_key``, or
    "-"), a batch's lines in one write, and a run reads every log once, at its first question
    (what other processes store after that is not seen: compiled again, no matter).  Not a
    file per block: on the ext4 disk of our CI machines a small file's creation costs 30 µs
    to 1 ms of CPU, and a Linux first boot stored some 2,600 of them (0.3-2.5 s of the
    worker's CPU, docs/performance.md).  Objects are written whole under a temporary name,
    then renamed, so a reader (another rvh process) sees one complete or not at all; a log
    line is read only when whole and well formed, and an object loaded only when its bytes
    still hash to its name.  Nothing here is needed for results: a missing or damaged entry
    is compiled again.  The first store of each process prunes (``prune``): the least
    recently used objects beyond ``limit`` bytes, and the logs, merged when there are many."""

    def __init__(self, directory: Path, limit: int = DEFAULT_CACHE_LIMIT) -> None:
        self.directory = directory
        self.limit = limit
        self.errors = 0  # files that could not be written or were damaged
        self.pruned = False
        self._objects: dict[str, str] | None = None  # digest -> object name, read on first use
        self._aliases: dict[str, str] = {}  # region key -> digest
        self._at_place: dict[str, list[str]] = {}  # place -> its region keys (``knows_place``)
        self._regions: dict[str, tuple[Region, ...]] = {}  # place -> ``regions_at``, as read
        self._shapes: dict[str, dict[str, Shape]] = {}  # object name -> its manifest's shapes
        self._log: Path | None = None  # this process's log, named at its first store
        self._made: set[Path] = set()  # directories known to exist

    def _directory(self, name: str) -> Path:
        path = self.directory / name
        if path not in self._made:
            path.mkdir(parents=True, exist_ok=True)
            self._made.add(path)
        return path

    def _write(self, path: Path, data: bytes) -> None:
        temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        temporary.write_bytes(data)
        os.replace(temporary, path)

    def _index(self) -> dict[str, str]:
        """Digest -> object name, from every log (read once)."""
        if self._objects is None:
            self._objects = {}
            try:
                logs = sorted((self.directory / "index").glob(f"*{LOG_SUFFIX}"))
            except OSError:
                logs = []
            for path in logs:
                try:
                    self._note(_log_lines(path.read_bytes()))
                except OSError:
                    continue  # merged away by another process meanwhile
        return self._objects

    def _note(self, lines: Iterable[tuple[str, str, str]]) -> None:
        assert self._objects is not None
        for digest, name, alias in lines:
            self._objects[digest] = name
            if alias != "-":
                self._aliases[alias] = digest
                place = alias.partition("/")[0]
                self._at_place.setdefault(place, []).append(alias)
                self._regions.pop(place, None)

    def store(
        self,
        digests: list[str],
        code: bytes,
        aliases: list[str] | None = None,
        shapes: list[Shape] | None = None,
    ) -> None:
        """Keep a batch's object file, found by each of its ``digests`` and, when given,
        by each block's region key (``aliases``, in the same order), with each region's
        ``shape`` (``regions_at``)."""
        self._index()
        stored = {}
        if aliases is not None and shapes is not None:
            stored = dict(zip(aliases, shapes, strict=True))
        data = _pack(code, digests, stored)
        name = hashlib.sha256(data).hexdigest()
        named = aliases if aliases is not None else ["-"] * len(digests)
        lines = [(digest, name, alias) for digest, alias in zip(digests, named, strict=True)]
        try:
            self._write(self._directory("objects") / f"{name}.o", data)
            if self._log is None:
                self._log = self._directory("index") / f"{os.getpid()}-{os.urandom(4).hex()}.log"
            descriptor = os.open(self._log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(descriptor, _log_text(lines))
            finally:
                os.close(descriptor)
        except OSError:
            self.errors += 1
            return
        self._note(lines)
        if not self.pruned:
            self.pruned = True
            self.prune()

    def prune(self) -> int:
        """Delete the least recently used objects (by modification time, which ``find``
        renews) while all of them take more than ``limit`` bytes, then merge the logs
        (``_merge_logs``); returns how many objects went."""
        entries = [(info.st_mtime, info.st_size, path) for path, info in self._object_files()]
        total = sum(size for _, size, _ in entries)
        removed = 0
        for _, size, path in sorted(entries):
            if total <= self.limit:
                break
            path.unlink(missing_ok=True)
            total -= size
            removed += 1
        self._merge_logs()
        self._drop_format_2()
        return removed

    def _drop_format_2(self) -> None:
        """Delete what rvh's code cache format 2 kept beside the objects: a file per block
        in ``index/`` and ``regions/`` (its objects go as the least recently used)."""
        shutil.rmtree(self.directory / "regions", ignore_errors=True)
        try:
            names = os.listdir(self.directory / "index")
        except OSError:
            return
        for name in names:
            if len(name) == 40 and name.isalnum():
                (self.directory / "index" / name).unlink(missing_ok=True)

    def _merge_logs(self) -> None:
        """Past MERGE_LOGS_OVER logs, write the lines of those no process wrote to lately
        (LOG_QUIET_SECONDS) whose objects are still there as one log, and delete them (a
        process still appending to one loses those lines: compiled again)."""
        index = self.directory / "index"
        now = time.time()
        quiet = []
        for path in index.glob(f"*{LOG_SUFFIX}"):
            try:
                if path != self._log and now - path.stat().st_mtime > LOG_QUIET_SECONDS:
                    quiet.append(path)
            except OSError:
                continue
        if len(quiet) <= MERGE_LOGS_OVER:
            return
        present = {path.stem for path in (self.directory / "objects").glob("*.o")}
        kept: dict[tuple[str, str, str], None] = {}
        for path in sorted(quiet):
            try:
                lines = _log_lines(path.read_bytes())
            except OSError:
                continue
            kept.update((line, None) for line in lines if line[1] in present)
        try:
            self._write(index / f"{os.getpid()}-{os.urandom(4).hex()}{LOG_SUFFIX}", _log_text(kept))
        except OSError:
            self.errors += 1
            return
        for path in quiet:
            path.unlink(missing_ok=True)

    def _object_files(self) -> list[tuple[Path, os.stat_result]]:
        """The object files there are now, each with its size and time."""
        found = []
        for path in (self.directory / "objects").glob("*.o"):
            try:
                found.append((path, path.stat()))
            except OSError:
                continue  # another process pruned it
        return found

    def summary(self) -> dict[str, int]:
        """What the cache holds: its object files and their bytes, the blocks and region keys
        the index names (in objects still there) and at how many places, the index logs."""
        sizes = {path.stem: info.st_size for path, info in self._object_files()}
        index = self._index()
        keys = [alias for alias, digest in self._aliases.items() if index.get(digest) in sizes]
        return {
            "objects": len(sizes),
            "bytes": sum(sizes.values()),
            "limit": self.limit,
            "blocks": sum(1 for name in index.values() if name in sizes),
            "region_keys": len(keys),
            "places": len({alias.partition("/")[0] for alias in keys}),
            "logs": len(list((self.directory / "index").glob(f"*{LOG_SUFFIX}"))),
        }

    def clear(self) -> int:
        """Delete everything the cache keeps (its objects, index and format 2's files), and
        nothing else in its directory; returns how many files went."""
        removed = 0
        for name in ("objects", "index", "regions"):
            path = self.directory / name
            if path.is_dir():
                removed += sum(1 for item in path.rglob("*") if item.is_file())
                shutil.rmtree(path, ignore_errors=True)
        self._objects = None
        self._aliases.clear()
        self._at_place.clear()
        self._regions.clear()
        self._shapes.clear()
        self._made.clear()
        return removed

    def knows_place(self, place: str) -> bool:
        """Whether a region starting at ``place`` (``place_key``) was stored, by this run or
        by one before it started."""
        self._index()
        return place in self._at_place

    def regions_at(self, place: str) -> tuple[Region, ...]:
        """The regions stored at ``place`` (``place_key``) by this run or one before it, as
        they were read then (each once, whatever its levels), the latest first: what a
        region read now in another shape (it stops at the regions installed when it is read)
        may take instead, if the decode cache still holds its instructions."""
        self._index()
        regions = self._regions.get(place)
        if regions is None:
            found: dict[Region, None] = {}
            for alias in reversed(tuple(self._at_place.get(place, ()))):
                region = self._stored_region(alias)
                if region is not None:
                    found[region] = None
            regions = self._regions[place] = tuple(found)
        return regions

    def _stored_region(self, alias: str) -> Region | None:
        """The region a region key was stored with, from its object's manifest; None when the
        object is gone or older than shapes.  (A damaged shape loads nothing: its code is
        found by the region key of the region it makes, ``Tier._load_stored``.)"""
        digest = self._aliases.get(alias)
        name = self._index().get(digest) if digest is not None else None
        if name is None:
            return None
        shapes = self._shapes.get(name)
        if shapes is None:
            shapes = self._shapes[name] = self._read_shapes(name)
        return region_of(shapes[alias]) if alias in shapes else None

    def _read_shapes(self, name: str) -> dict[str, Shape]:
        """The shapes in an object's manifest, read from the end of its file alone (no hash
        of the whole file: a damaged shape loads nothing, see ``_stored_region``)."""
        try:
            with open(self.directory / "objects" / f"{name}.o", "rb") as file:
                size = file.seek(0, os.SEEK_END)
                file.seek(max(size - 8, 0))
                length = int.from_bytes(file.read(8), "little")
                file.seek(max(size - 8 - length, 0))
                manifest = _manifest(file.read())  # the manifest and its length
        except OSError:
            return {}
        shapes = manifest.get("shapes") if manifest is not None else None
        return shapes if isinstance(shapes, dict) else {}

    def resolve(self, alias: str) -> str | None:
        """The digest of the code a region key names, if a run stored one (``find`` then
        checks the object as for any digest)."""
        self._index()
        return self._aliases.get(alias)

    def find(self, digest: str) -> tuple[bytes, list[str]] | None:
        """The object file holding the code named ``digest`` (``block_digest``), and the
        digests of all the code in it; None when there is none."""
        name = self._index().get(digest)
        if name is None:
            return None
        path = self.directory / "objects" / f"{name}.o"
        try:
            data = path.read_bytes()
        except OSError:
            return None  # pruned (by this process or another)
        unpacked = _unpack(data) if hashlib.sha256(data).hexdigest() == name else None
        if unpacked is None or digest not in unpacked[1]:
            self.errors += 1  # damaged, or overwritten by another version
            return None
        try:
            os.utime(path)  # used: the last to go when pruning
        except OSError:
            pass
        return unpacked


def _pack(code: bytes, digests: list[str], shapes: dict[str, Shape] | None = None) -> bytes:
    """A cache object's file: the object code, then a JSON manifest, then the manifest's
    length (8 bytes, little-endian): one file, hashed whole.  The manifest holds the blocks'
    digests (which an engine sharing objects must know before it loads one:
    ``Tier._load_shared``) and, by region key, the shape of each region (``regions_at``)."""
    contents: dict[str, object] = {"digests": digests}
    if shapes:
        contents["shapes"] = shapes
    manifest = json.dumps(contents, separators=(",", ":")).encode()
    return code + manifest + len(manifest).to_bytes(8, "little")


def _manifest(data: bytes) -> dict[str, object] | None:
    """The manifest of a cache object's file (``_pack``), None if malformed."""
    if len(data) < 8:
        return None
    length = int.from_bytes(data[-8:], "little")
    if length > len(data) - 8:
        return None
    try:
        manifest = json.loads(data[-8 - length : -8])
    except ValueError:
        return None
    return manifest if isinstance(manifest, dict) else None


def _unpack(data: bytes) -> tuple[bytes, list[str]] | None:
    """The object code and digests of a cache object's file (``_pack``), None if malformed."""
    manifest = _manifest(data)
    digests = manifest.get("digests") if manifest is not None else None
    if not isinstance(digests, list) or not all(isinstance(d, str) for d in digests):
        return None
    length = int.from_bytes(data[-8:], "little")
    return data[: -8 - length], digests


# a region as the code cache keeps it: [[node pc, [[op, rd, rs1, rs2, imm, length, bits],
# ...]], ...], the entry node first (JSON)
Shape = list[list[object]]


def shape(region: Region) -> Shape:
    """What ``region_of`` makes the region again from."""
    return [
        [node.pc, [list(instruction.fields()) for instruction in node.instructions]]
        for node in region
    ]


def region_of(stored: object) -> Region | None:
    """The region a ``shape`` was made from; None if ``stored`` is not one."""
    try:
        region = tuple(
            Node(int(pc), tuple(Instruction(*(int(v) for v in fields)) for fields in body))
            for pc, body in stored  # type: ignore[attr-defined, misc]
        )
    except (TypeError, ValueError):
        return None
    if not region or not all(node.instructions for node in region):
        return None
    return region


def _log_text(lines: Iterable[tuple[str, str, str]]) -> bytes:
    """Index log lines (``CodeCache``) as written: ``<digest> <object> <region key or ->``."""
    return "".join(f"{digest} {name} {alias}\n" for digest, name, alias in lines).encode()


def _log_lines(data: bytes) -> list[tuple[str, str, str]]:
    """The whole, well-formed lines of an index log (a line being written by another process
    has no newline yet; anything else damaged is skipped)."""
    lines = []
    for line in data.split(b"\n")[:-1]:
        match = _LOG_LINE.fullmatch(line)
        if match is not None:
            digest, name, alias = (field.decode() for field in match.groups())
            lines.append((digest, name, alias))
    return lines


def default_cache_directory() -> Path:
    """Beside numba's cache (rvh/__init__.py): $RVH_CACHE_DIR, else ~/.cache/rvh, /tier."""
    base = os.environ.get("RVH_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "rvh"
    )
    return Path(base) / "tier"


def code_cache(option: str) -> CodeCache | None:
    """The cache ``--tier-cache`` names: "" the default directory, "off" none."""
    if option == "off":
        return None
    return CodeCache(Path(option) if option else default_cache_directory())


@dataclass
class _Batch:
    """An engine, the blocks whose current code is in it and the code loaded from the disk
    cache not claimed yet (the engine is freed when neither is left)."""

    engine: llvm.ExecutionEngine | None  # None: baseline code, in the tier's arena
    code_bytes: int
    live: set[BlockKey] = field(default_factory=set)
    pooled: set[str] = field(default_factory=set)


@dataclass
class _Code:
    address: int
    batch: int
    level: Level


_InFlight = tuple[int, list[BlockKey], Future[_Compiled]]


def _ir(key: BlockKey, level: Level) -> str:
    host, pc, region = key
    return region_ir(_PLACEHOLDER, pc, host, region, count_entries=level is QUICK)


def compile_regions(keys: list[BlockKey], level: Level, cache: CodeCache | None) -> _Compiled:
    """Write the regions' IR and compile it as one batch (``compile_blocks``), naming each in
    the code cache by its region key: all of it work for the worker thread, which runs while
    the kernel (which holds no GIL) runs the hart.  Its seconds include writing the IR."""
    start = time.thread_time()
    irs = [_ir(key, level) for key in keys]
    digests = [block_digest(ir, level) for ir in irs]
    aliases = shapes = None
    if cache is not None:
        aliases = [region_key(key, level) for key in keys]
        shapes = [shape(region) for _, _, region in keys]
    writing = time.thread_time() - start
    compiled = compile_blocks(digests, irs, level, cache, aliases, shapes)
    compiled.seconds += writing
    return compiled


_warmed_up = threading.Event()  # a worker was given _warm_up in this process


def _warm_up() -> None:
    """Compile a small region twice and drop it: LLVM's first region code generation in a
    process costs 10 ms more than later ones and its second 3 ms more (its lazy
    initialization; a four-instruction region took 11, 6.7, then 3.3 ms), paid so in a
    worker while the interpreter starts instead of by the first hot regions."""
    pc = 0x8000_0000
    loop = (
        Instruction(Op.LD, 5, 10, 0, 8, 4, 0),
        Instruction(Op.SD, 0, 10, 5, 16, 4, 0),
        Instruction(Op.ADDI, 10, 10, 0, 8, 4, 0),
        Instruction(Op.BNE, 0, 10, 11, -12, 4, 0),
    )
    for _ in range(2):
        compile_regions([(0, pc, (Node(pc, loop),))], QUICK, None)


def _counter(host: int) -> int:
    return J_COUNTS + ((host >> 1) & COUNT_MASK)


class _Compiling:
    """The regions waiting to be compiled or being compiled, with the places of their nodes
    and of their heads counted: the questions ``service`` asks of them at every kernel
    return cost a lookup, not a pass over every node of every region in the queue (which,
    with hundreds queued on Linux's first boot, took a fifth of the boot)."""

    def __init__(self) -> None:
        self.keys: set[BlockKey] = set()
        self.nodes: Counter[tuple[int, int]] = Counter()  # (host offset, pc) of each node
        self.starts: dict[int, Counter[int]] = {}  # page -> pcs where regions start

    def __contains__(self, key: object) -> bool:
        return key in self.keys

    def __len__(self) -> int:
        return len(self.keys)

    def add(self, key: BlockKey) -> None:
        if key in self.keys:
            return
        self.keys.add(key)
        host, pc, region = key
        for node in region:
            self.nodes[(host - pc + node.pc, node.pc)] += 1
        self.starts.setdefault(host >> PAGE_SHIFT, Counter())[pc] += 1

    def update(self, keys: Iterable[BlockKey]) -> None:
        for key in keys:
            self.add(key)

    def discard(self, key: BlockKey) -> None:
        if key not in self.keys:
            return
        self.keys.remove(key)
        host, pc, region = key
        for node in region:
            place = (host - pc + node.pc, node.pc)
            self.nodes[place] -= 1
            if not self.nodes[place]:
                del self.nodes[place]
        starts = self.starts[host >> PAGE_SHIFT]
        starts[pc] -= 1
        if not starts[pc]:
            del starts[pc]
            if not starts:
                del self.starts[host >> PAGE_SHIFT]

    def covers(self, host: int, pc: int) -> bool:
        """Whether a region in the queue holds the instruction at ``pc`` (``host``)."""
        return (host, pc) in self.nodes

    def heads(self, page: int) -> Iterable[int]:
        """The pcs where regions in the queue start in host page ``page``."""
        return self.starts.get(page, ())


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
        cache: CodeCache | None = None,
        optimize_after: int | None = DEFAULT_OPTIMIZE_AFTER,
        save_after: int | None = DEFAULT_SAVE_AFTER,
        compile_after: int | None = None,
        slow_after: int | None = DEFAULT_SLOW_AFTER,
        baseline: bool = False,
        promote_after: int = DEFAULT_PROMOTE_AFTER,
    ) -> None:
        """``synchronous``: compile in the kernel's thread, so that a block hot at one kernel
        return runs compiled from the next (tests); else a worker thread compiles while the
        interpreter goes on.  ``cache``: the on-disk code cache, if any.
        ``optimize_after``: entries of a quick block before it is compiled again optimized
        (None: never).  ``save_after``: entries in a run of a quick block before ``close``
        compiles it optimized into the code cache (None: never).  ``compile_after``: entries
        of a block with no compiled code (in memory or in ``cache``) before it is compiled
        (None: at ``threshold``, as soon as it is hot), within ``slow_after`` instructions
        of the harts' time (None: however long they take), else it waits for as many
        again.  ``baseline``: a region that would now be queued for a quick compile gets
        baseline code at once instead (rvh/tier/baseline.py, where the host runs it), and
        is compiled quick once that code counted ``promote_after`` entries."""
        self.decode_cache = decode_cache
        self.machine = machine
        self.page_flags = page_flags
        self.capacity = capacity
        self.cache = cache
        self.optimize_after = optimize_after
        self.save_after = save_after
        self.compile_after = threshold if compile_after is None else max(compile_after, threshold)
        # hot once, not compiled, waiting for more entries: each region with what says it is
        # still decoded as read, so that the second time it is not read again
        # (None: waiting unread, ``_wait_unread``)
        self.awaiting_compile: dict[tuple[int, int], tuple[BlockKey, _Check] | None] = {}
        # ... and the harts' time when it began to wait (``slow_after``)
        self.waiting_since: dict[tuple[int, int], int] = {}
        self.slow_after = slow_after
        self.clock = 0  # the harts' virtual time at the last ``service``
        self.jit = np.zeros(JIT_SIZE, dtype=np.int64)
        self.jit[J_TABLE + JT_HOST :: JT_FIELDS] = -1
        self.jit[J_THRESHOLD] = threshold
        self.jit[J_EPOCH] = machine[M_CODE_WRITES]
        self.code: dict[BlockKey, _Code] = {}
        self.pool: dict[str, tuple[int, int]] = {}  # digest -> (batch, address), from disk
        self.batches: OrderedDict[int, _Batch] = OrderedDict()
        self.next_batch = 0
        self.compiling = _Compiling()  # waiting or in flight
        # (host offset, pc) of the nodes after the first of every region compiled, loaded or
        # being compiled, and those of them that got hot once (``service``)
        self.inner: set[tuple[int, int]] = set()
        self.deferred: set[tuple[int, int]] = set()
        # the region last installed at each (host offset, pc), with what says it is still
        # decoded and its entry length: a region dropped (a write to its page, a flush)
        # that gets hot again unchanged is installed again without being read anew
        self.latest: dict[tuple[int, int], BlockKey] = {}
        self.installs: dict[BlockKey, tuple[_Check, int]] = {}
        self.waiting: list[BlockKey] = []
        self.in_flight: list[_InFlight] = []
        self.hot_quick: dict[BlockKey, None] = {}  # installed quick code (ordered)
        # when the code's entry counts are next looked at, by what they are looked at for
        # (``_time_to_look``): optimizing quick code, promoting baseline code
        self.next_look: dict[str, float] = {}
        self.quick_busy = 0.0  # perf_counter when a quick batch last started or ended
        self.worker = None if synchronous else ThreadPoolExecutor(1, "rvh-tier")
        load_region_reader()  # now, not in the run's first look at a region
        if self.worker is not None and not _warmed_up.is_set():
            _warmed_up.set()
            self.worker.submit(_warm_up)
        self.blocks_compiled = 0
        self.blocks_optimized = 0
        self.blocks_loaded = 0
        self.blocks_evicted = 0
        self.batches_compiled = 0
        self.compile_seconds = 0.0
        self.load_seconds = 0.0
        # the engine objects from the code cache are loaded into, and the digests in it
        self.shared_engine: llvm.ExecutionEngine | None = None
        self.shared_digests: set[str] = set()
        self.shared_objects = 0
        self.blocks_saved = 0  # compiled optimized for the code cache at the end (close)
        self.blocks_saved_running = 0  # ... and by the idle worker during the run (of optimized)
        self.saving_batches: set[int] = set()  # the idle worker's batches for the code cache
        self.save_seconds = 0.0
        self.arena = CodeArena() if baseline else None
        self.promote_after = promote_after
        self.hot_baseline: dict[BlockKey, None] = {}  # installed baseline code (ordered)
        self.promote_keys: list[BlockKey] = []  # hot_baseline's keys at the last look...
        self.promote_counters: np.ndarray | None = None  # ... their counters (None: changed)
        self.blocks_baseline = 0
        self.baseline_seconds = 0.0

    def forget_installed(self) -> None:
        """Empty the jump table, the hot counts and the queue: the machine's memory, decode
        cache and page flags were replaced wholesale (a snapshot restored).  Compiled code is
        kept: a block comes back only where the decode cache holds its instructions again."""
        self.jit[J_TABLE + JT_HOST :: JT_FIELDS] = -1
        self.jit[J_COUNTS : J_COUNTS + COUNT_MASK + 1] = 0
        self.jit[J_QUEUE_LEN] = 0
        self.hot_quick.clear()  # none of it is installed any more
        self.hot_baseline.clear()
        self.awaiting_compile.clear()
        self.waiting_since.clear()
        self.clock = 0  # the harts' time may have gone back with the snapshot
        self.deferred.clear()
        self.page_flags &= np.uint8(~PAGE_FLAGS_OF_THE_TIER & 0xFF)
        self.jit[J_EPOCH] = self.machine[M_CODE_WRITES]

    # ---- between kernel calls ----------------------------------------------------------
    def pending(self) -> bool:
        """Whether the kernel has queued hot blocks."""
        return bool(self.jit[J_QUEUE_LEN])

    @property
    def polling(self) -> bool:
        """Whether the kernel should return every so often (hart.TIER_POLL_INSTRUCTIONS)
        even with nothing new hot: a batch is compiling, or installed baseline code may have
        counted enough entries to be compiled (its counts are looked at only here)."""
        return bool(self.in_flight) or bool(self.hot_baseline)

    def service(self, now: int = 0) -> None:
        """Install the blocks compiled since the last call, and start compiling the blocks
        the kernel queued as hot (in the worker thread, or here when synchronous); ``now``:
        the calling hart's virtual time (its instructions retired, with idle time)."""
        self.clock = max(self.clock, now)
        queued = int(self.jit[J_QUEUE_LEN])
        if not (queued or self.in_flight or self.waiting or self._look_due()):
            return  # most calls (Linux's boot: 30,000, mostly after a console write)
        self._collect(wait=False)
        for i in range(queued):
            host = int(self.jit[J_QUEUE + 2 * i])
            pc = int(self.jit[J_QUEUE + 2 * i + 1])
            known = self.latest.get((host, pc))
            if known in self.code and self._still_decoded(known):
                # any region whose instructions are still decoded as read is exact; one read
                # now might stop at other places (regions installed since), no matter
                self._install(known)
                continue
            if self.compiling.covers(host, pc):
                # the rest of a loop gets hot while the loop's region compiles: left to it,
                # unread (on Linux's first boot such pcs came back some 4,500 times, each
                # read for nothing while their loop's batch compiled)
                self.jit[_counter(host)] = 0  # should it be entered on its own later
                continue
            stored = self._load_stored(host, pc)
            if stored is not None:
                self._install(stored)
                continue
            if self._wait_unread(host, pc):
                continue
            waited = self.awaiting_compile.get((host, pc))
            if waited is not None and fields_unchanged(self.decode_cache, waited[1]):
                region = waited[0][2]
            else:
                region = read_region(self.decode_cache, host, pc, self._heads(host))
            if not region:
                # its first instruction is not translated: counted again much later (the
                # counter may be shared with translatable code, which must still get hot)
                self.jit[_counter(host)] = -UNTRANSLATED_WAIT * int(self.jit[J_THRESHOLD])
                continue
            key = (host, pc, region)
            if key in self.code:
                self._install(key)  # compiled before a flush or an eviction
            elif (host, pc) in self.inner and (host, pc) not in self.deferred:
                # inside a region compiled before: a loop's inner pcs count an entry where a
                # kernel call resumes after its budget, and the region runs them, so such a
                # pc gets its own only if it gets hot again (its count starts again)
                self.deferred.add((host, pc))
                self.jit[_counter(host)] = 0
            elif key not in self.compiling:
                self._load_cached(key)  # compiled by an earlier run
                if key in self.code:
                    self._install(key)
                elif self._baseline(key):
                    self._baseline_continuations(key)
                elif not self._defer(key):
                    self.compiling.add(key)
                    self.waiting.append(key)
                    self._note_nodes(key)
        self.jit[J_QUEUE_LEN] = 0
        self._promote_hot()
        if not self.in_flight:
            # one batch at a time: what gets hot meanwhile waits and goes as the next batch
            # (a module's fixed costs are paid once for many blocks); new blocks come first
            if self.waiting:
                batch, self.waiting = self.waiting, []
                self._start(batch, QUICK)
            else:
                self._optimize_hot()
        self._evict()

    def _baseline(self, key: BlockKey) -> bool:
        """Give a hot region baseline code and install it; False if it gets none (the
        baseline is off, the region starts with an instruction the baseline does not write,
        the arena is full)."""
        if self.arena is None:
            return False
        start = time.thread_time()
        host, _, region = key
        code = region_code(region, host)
        address = None if code is None else self.arena.place(code)
        self.baseline_seconds += time.thread_time() - start
        if code is None or address is None:
            return False
        self.awaiting_compile.pop(key[:2], None)  # (its wait, if any, is over)
        self.waiting_since.pop(key[:2], None)
        batch_id = self.next_batch
        self.next_batch += 1
        self.batches[batch_id] = _Batch(None, len(code))
        self._replace(key, _Code(address, batch_id, BASELINE))
        self._install(key)
        self.blocks_baseline += 1
        return True

    def _baseline_continuations(self, key: BlockKey) -> None:
        """Give baseline code at once to the code after the region's straight line, where it
        was cut at MAX_BLOCK instructions, and so on (at most MAX_CONTINUATIONS regions).
        That code ran about as often as the line's end, but counted no entries of its own:
        the kernel counts them only where a jump, a taken branch or a block leaves off. So
        a long straight line (Linux's ChaCha20 and BLAKE2s rounds, some 1,000 instructions)
        otherwise gets code one 64-instruction piece after another, each waiting for
        ``compile_after`` entries once the piece before it has code, and most of it never."""
        for _ in range(MAX_CONTINUATIONS):
            host, pc, region = key
            after = continuation(region)
            if after is None:
                return
            host += after - pc
            if (host, after) in self.latest or self.compiling.covers(host, after):
                return  # it has code, or will have
            region = read_region(self.decode_cache, host, after, self._heads(host))
            if not region:
                return
            key = (host, after, region)
            if key in self.compiling:
                return
            self._load_cached(key)  # (quick or optimized code from an earlier run)
            if key in self.code:
                self._install(key)
            elif not self._baseline(key):
                return

    def _promote_hot(self) -> None:
        """Queue for a quick compile the regions whose baseline code counted
        ``promote_after`` entries; looked at every OPTIMIZE_POLL seconds."""
        if not self.hot_baseline or self._time_to_look("promote") is None:
            return
        if self.promote_counters is None:
            # one gather per look (Linux holds some 2,000 baseline regions): the counters'
            # places, worked out again only when the regions installed changed
            self.promote_keys = list(self.hot_baseline)
            self.promote_counters = np.array(
                [_counter(key[0]) for key in self.promote_keys], dtype=np.int64
            )
        hot = np.flatnonzero(self.jit[self.promote_counters] >= self.promote_after)
        for index in hot.tolist():
            key = self.promote_keys[index]
            if key in self.hot_baseline:
                del self.hot_baseline[key]
                self.compiling.add(key)
                self.waiting.append(key)
        if hot.size:
            self.promote_counters = None

    def _defer(self, key: BlockKey) -> bool:
        """Whether a hot block without compiled code waits for more entries before it is
        compiled (``compile_after``, ``_wait``); the second time it is compiled, unless its
        code changed while it waited (it waits again, as read now) or its entries took more
        than ``slow_after`` instructions to come (it waits again: lukewarm code)."""
        host, pc, region = key
        if (host, pc) in self.awaiting_compile:
            waited = self.awaiting_compile.pop((host, pc))
            since = self.waiting_since.pop((host, pc), self.clock)
            slow = self.slow_after is not None and self.clock - since > self.slow_after
            if waited is None:  # it waited unread (``_wait_unread``)
                if slow:
                    return self._wait(host, pc, (key, decoded_check(host, region)))
                return False
            if waited[0] == key:  # checked as still decoded when it came back: not again
                if slow:
                    return self._wait(host, pc, waited)
                self.installs.setdefault(key, (waited[1], entry_length(region)))
                return False
        return self._wait(host, pc, (key, decoded_check(host, region)))

    def _wait_unread(self, host: int, pc: int) -> bool:
        """Whether a hot pc where no region was ever compiled (none in memory, none in the
        code cache) waits for ``compile_after`` entries before its region is read at all: on
        Linux's first boot about two of three pcs hot once never get that hot, and reading
        a region is the costliest part of ``service`` (Python, an instruction at a time)."""
        if self.compile_after <= int(self.jit[J_THRESHOLD]):
            return False  # no waiting: compiled at the threshold
        if (host, pc) in self.awaiting_compile or (host, pc) in self.latest:
            return False  # its second time, or code was compiled here
        if (host, pc) in self.inner:
            return False  # inside a region: ``service`` decides with the region read
        if self.cache is not None and self.cache.knows_place(place_key(host, pc)):
            return False
        after = self.compile_after
        if self.arena is not None:
            # reading a region and writing its baseline code cost about what interpreting
            # 70,000 instructions does: a long straight line pays for it after fewer entries
            length = straight_line_length(self.decode_cache, host)
            after = min(after, after * LONG_LINE // max(length, 1))
        return self._wait(host, pc, None, after)

    def _wait(
        self,
        host: int,
        pc: int,
        read: tuple[BlockKey, _Check] | None,
        after: int | None = None,
    ) -> bool:
        """Set the pc's counter back so that the kernel queues it again after ``after``
        entries in all (None: ``compile_after``), keeping the region as ``read`` (None: not
        read), unless it is compiled at the threshold (``after`` not above it)."""
        more = (self.compile_after if after is None else after) - int(self.jit[J_THRESHOLD])
        if more <= 0:
            return False
        self.awaiting_compile[(host, pc)] = read
        self.waiting_since[(host, pc)] = self.clock
        self.jit[_counter(host)] = self.jit[J_THRESHOLD] - more
        return True

    def finish(self) -> None:
        """Wait for the blocks being compiled and install them."""
        self._collect(wait=True)

    def close(self) -> None:
        """End the tier: drop the compiles not started and wait for the one running (it
        still goes to the code cache), so that a tier that will not run again leaves no work
        behind; then, with a code cache, compile optimized into it the quick blocks that ran
        ``save_after`` times in this run (``save_optimized``)."""
        if self.worker is not None:
            self.worker.shutdown(wait=True, cancel_futures=True)
        self.save_optimized()

    def save_optimized(self) -> None:
        """Compile optimized in this thread, the hottest first, for at most SAVE_SECONDS of
        CPU, the quick blocks whose code counted ``save_after`` entries, and keep it only in
        the code cache: this run is over, the next one of the same program loads O2 code for
        them (``_load_cached`` looks for it first) instead of quick code that would not run
        long enough to be optimized."""
        if self.cache is None or self.save_after is None:
            return
        for batch_id, keys, future in self.in_flight:
            if future.done() and not future.cancelled():
                self._finish(batch_id, keys, future.result())
        self.in_flight = []
        hot = self._worth_saving(self.code)
        # the hottest first, and not so long that the process's end drags (O2: 7-20 ms each)
        spent = 0.0
        while hot and spent < SAVE_SECONDS:
            batch, hot = hot[:SAVE_BATCH], hot[SAVE_BATCH:]
            spent += compile_regions(batch, OPTIMIZED, self.cache).seconds
            self.blocks_saved += len(batch)
        self.save_seconds += spent

    def _worth_saving(self, keys: Iterable[BlockKey]) -> list[BlockKey]:
        """Those of ``keys`` that are quick or baseline code which counted ``save_after``
        entries in this run, the hottest first: with a code cache, worth compiling optimized
        for the next (baseline code so hot ran in a run too short to promote it: a benchmark,
        a guest that ends soon; the code cache never holds baseline code)."""
        if self.cache is None or self.save_after is None:
            return []
        hot = [
            key
            for key in keys
            if self.code[key].level in (QUICK, BASELINE)
            and self.jit[_counter(key[0])] >= self.save_after
        ]
        hot.sort(key=lambda key: -int(self.jit[_counter(key[0])]))
        return hot

    def _heads(self, host: int) -> frozenset[int]:
        """The pcs where the regions installed or being compiled in host offset ``host``'s
        page start: a new region stops there and leaves for them, instead of holding a copy
        of their code."""
        page = host >> PAGE_SHIFT
        first = J_TABLE + (((page << 11) & TABLE_MASK) << JT_SHIFT)
        slots = self.jit[first : first + (2048 << JT_SHIFT)].reshape(-1, JT_FIELDS)
        heads = set(slots[slots[:, JT_HOST] >> PAGE_SHIFT == page, JT_PC].tolist())
        heads.update(self.compiling.heads(page))
        return frozenset(heads)

    def _look_due(self) -> bool:
        """Whether installed code's entry counts are due to be looked at (``_promote_hot``,
        ``_optimize_hot``)."""
        if self.worker is None:
            return True  # at every call
        now = time.perf_counter()
        return bool(self.hot_baseline and now >= self.next_look.get("promote", 0.0)) or bool(
            self.hot_quick and now >= self.next_look.get("optimize", 0.0)
        )

    def _time_to_look(self, purpose: str) -> float | None:
        """The time now if the entry counts are due to be looked at for ``purpose`` (every
        OPTIMIZE_POLL seconds with a worker, at every call without one: tests), else None."""
        now = time.perf_counter()
        if self.worker is not None and now < self.next_look.get(purpose, 0.0):
            return None
        self.next_look[purpose] = now + OPTIMIZE_POLL
        return now

    def _optimize_hot(self) -> None:
        """Compile again, optimized, the quick blocks that ran ``optimize_after`` times
        (their code counts its entries); looked at every OPTIMIZE_POLL seconds."""
        if not self.hot_quick:
            return
        now = self._time_to_look("optimize")
        if now is None:
            return
        hot = []
        if self.optimize_after is not None:
            hot = [k for k in self.hot_quick if self.jit[_counter(k[0])] >= self.optimize_after]
        if not hot and self.worker is not None and now - self.quick_busy >= IDLE_SAVE_QUIET:
            hot = self._worth_saving(self.hot_quick)[:IDLE_SAVE_BATCH]
            if hot:
                self.saving_batches.add(self.next_batch)  # (counted apart, when it is done)
        for key in hot:
            del self.hot_quick[key]
        if hot:
            self.compiling.update(hot)
            self._start(hot, OPTIMIZED)

    def _start(self, keys: list[BlockKey], level: Level) -> None:
        batch_id = self.next_batch
        self.next_batch += 1
        if level is QUICK:
            self.quick_busy = time.perf_counter()
        if self.worker is None:
            self._finish(batch_id, keys, compile_regions(keys, level, self.cache))
        else:
            future = self.worker.submit(compile_regions, keys, level, self.cache)
            self.in_flight.append((batch_id, keys, future))

    def _collect(self, wait: bool) -> None:
        still: list[_InFlight] = []
        for batch_id, keys, future in self.in_flight:
            if wait or future.done():
                self._finish(batch_id, keys, future.result())
            else:
                still.append((batch_id, keys, future))
        self.in_flight = still

    def _finish(self, batch_id: int, keys: list[BlockKey], compiled: _Compiled) -> None:
        """Keep a compiled batch (and write it to the disk cache).  Install each new block
        whose instructions are still the ones in the decode cache (a store may have changed
        them while it compiled); move the jump-table entries of optimized ones over."""
        self.compile_seconds += compiled.seconds
        self.batches_compiled += 1
        if compiled.level is QUICK:
            self.blocks_compiled += len(keys)
            self.quick_busy = time.perf_counter()
        else:
            self.blocks_optimized += len(keys)
            if batch_id in self.saving_batches:
                self.saving_batches.discard(batch_id)
                self.blocks_saved_running += len(keys)
        self.batches[batch_id] = _Batch(compiled.engine, len(compiled.code))
        for key, address in zip(keys, compiled.addresses, strict=True):
            self.compiling.discard(key)
            self._replace(key, _Code(address, batch_id, compiled.level))
            host, _, region = key
            if compiled.level is not QUICK:
                self.jit[_counter(host)] = 0
            elif self._still_decoded(key):
                self._install(key)
            else:  # let it get hot again, to be read anew
                self.jit[_counter(host)] = 0

    def _note_nodes(self, key: BlockKey) -> None:
        host, pc, region = key
        self.inner.update((host - pc + node.pc, node.pc) for node in region[1:])

    def _replace(self, key: BlockKey, code: _Code) -> None:
        """Make ``code`` the block's code: jump-table entries holding the old address move
        to the new one, and a batch left with no code in use is freed."""
        old = self.code.get(key)
        self.code[key] = code
        self._note_nodes(key)
        self.batches[code.batch].live.add(key)
        if old is None:
            return
        addresses = self.jit[J_TABLE + JT_ADDRESS :: JT_FIELDS]
        addresses[addresses == old.address] = code.address
        batch = self.batches.get(old.batch)
        if batch is not None:
            batch.live.discard(key)
            if not batch.live and not batch.pooled:
                del self.batches[old.batch]  # its engine and code go with it

    def _load_cached(self, key: BlockKey) -> None:
        """Find the block's code in the on-disk cache, optimized first, by its region key
        (no IR is written to look); the object holding it is loaded into a new engine, the
        other blocks in it wait in ``pool`` for the kernel to find them hot."""
        if self.cache is None or not self.cache.knows_place(place_key(key[0], key[1])):
            return  # (no region's text hashed for nothing: every key is under its place)
        for level in (OPTIMIZED, QUICK):
            digest = self.cache.resolve(region_key(key, level))
            if digest is None:
                continue
            if digest not in self.pool:
                start = time.thread_time()
                found = self.cache.find(digest)
                if found is None:
                    continue
                code, digests = found
                engine = self._load_shared(code, digests, level)
                batch_id = self.next_batch
                self.next_batch += 1
                self.batches[batch_id] = _Batch(engine, len(code), pooled=set(digests))
                for other in digests:
                    address = engine.get_function_address(symbol(other))
                    self.pool[other] = (batch_id, address)
                self.load_seconds += time.thread_time() - start
            batch_id, address = self.pool.pop(digest)
            self.batches[batch_id].pooled.discard(digest)
            self._replace(key, _Code(address, batch_id, level))
            self.blocks_loaded += 1
            return

    def _load_stored(self, host: int, pc: int) -> BlockKey | None:
        """The longest region a run stored at this pc (``CodeCache.regions_at``) whose
        instructions the decode cache still holds as they were read then, its code loaded;
        None if there is none.  It is exact as any region read now, whatever it overlaps, and
        a region read now may have a shape no run compiled: it stops at the heads of the
        regions installed when it is read, which differ from run to run (a second boot of
        Linux compiled 100-170 regions for that)."""
        if self.cache is None:
            return None
        best, most = None, 0
        for region in self.cache.regions_at(place_key(host, pc)):
            key = (host, pc, region)
            if region[0].pc != pc or key in self.compiling:
                continue
            size = sum(len(node.instructions) for node in region)
            if size > most and self._still_decoded(key):
                best, most = key, size
        if best is not None and best not in self.code:
            self._load_cached(best)
        return best if best in self.code else None

    def _load_shared(self, code: bytes, digests: list[str], level: Level) -> llvm.ExecutionEngine:
        """An engine holding an object file from the code cache: the shared one, unless it
        is full or already defines one of the object's functions (two runs may have put a
        block in different objects), which an engine must not do twice."""
        if not self.shared_digests.isdisjoint(digests):
            return _load(code, level)
        if self.shared_engine is None or self.shared_objects >= SHARED_ENGINE_OBJECTS:
            self.shared_engine = _load(code, level)
            self.shared_digests = set(digests)
            self.shared_objects = 1
            return self.shared_engine
        self.shared_engine.add_object_file(llvm.ObjectFileRef.from_data(code))
        self.shared_engine.finalize_object()
        self.shared_digests.update(digests)
        self.shared_objects += 1
        return self.shared_engine

    def _install_record(self, key: BlockKey) -> tuple[_Check, int]:
        """What installing the region needs and checks, worked out once: its
        ``decoded_check`` and its ``entry_length``."""
        record = self.installs.get(key)
        if record is None:
            host, _, region = key
            record = self.installs[key] = (decoded_check(host, region), entry_length(region))
        return record

    def _still_decoded(self, key: BlockKey) -> bool:
        """Whether the decode cache still holds the region's instructions as it was read (a
        store may have changed them while it compiled, or since it was dropped)."""
        return fields_unchanged(self.decode_cache, self._install_record(key)[0])

    def _install(self, key: BlockKey) -> None:
        host, pc, _ = key
        code = self.code[key]
        install = self._install_record(key)
        self.latest[(host, pc)] = key
        slot = J_TABLE + (((host >> 1) & TABLE_MASK) << JT_SHIFT)
        # from now on a change to the page's decoded code is reported (dispatch.flush_page)
        self.page_flags[host >> PAGE_SHIFT] |= PAGE_FLAG_TRANSLATED
        self.jit[slot + JT_HOST] = host
        self.jit[slot + JT_PC] = pc
        self.jit[slot + JT_ADDRESS] = code.address
        # what the kernel (or a chain) checks against its budget before the call
        self.jit[slot + JT_LENGTH] = install[1]
        self.jit[_counter(host)] = 0  # a colliding block may get hot; quick code counts here
        if code.level is QUICK and key not in self.compiling:
            self.hot_quick[key] = None
        elif code.level is BASELINE and key not in self.compiling:
            self.hot_baseline[key] = None
            self.promote_counters = None

    def _evict(self) -> None:
        """Drop the oldest batches while more than ``capacity`` blocks are compiled."""
        while len(self.code) > self.capacity and len(self.batches) > 1:
            batch_id, batch = self.batches.popitem(last=False)
            addresses = self.jit[J_TABLE + JT_ADDRESS :: JT_FIELDS]
            hosts = self.jit[J_TABLE + JT_HOST :: JT_FIELDS]
            for key in batch.live:
                code = self.code.pop(key)
                self.installs.pop(key, None)
                if self.latest.get(key[:2]) == key:
                    del self.latest[key[:2]]
                hosts[addresses == code.address] = -1
                self.jit[_counter(key[0])] = 0
                self.hot_quick.pop(key, None)
                self.hot_baseline.pop(key, None)
                self.blocks_evicted += 1
            for digest in batch.pooled:
                del self.pool[digest]
            # the engine (and its code) goes with the last reference to the batch

    # ---- statistics --------------------------------------------------------------------
    def statistics(self) -> dict[str, int | float]:
        return {
            "blocks_baseline": self.blocks_baseline,
            "baseline_seconds": self.baseline_seconds,
            "blocks_compiled": self.blocks_compiled,
            "blocks_optimized": self.blocks_optimized,
            "blocks_loaded": self.blocks_loaded,
            "blocks_cached": len(self.code),
            "blocks_evicted": self.blocks_evicted,
            "batches": self.batches_compiled,
            "compile_seconds": self.compile_seconds,
            "load_seconds": self.load_seconds,
            "blocks_saved": self.blocks_saved,
            "blocks_saved_running": self.blocks_saved_running,
            "save_seconds": self.save_seconds,
            "code_bytes": sum(batch.code_bytes for batch in self.batches.values()),
            "entries": int(self.jit[J_CALLS]),
            "instructions": int(self.jit[J_EXECUTED]),
            "flushes": int(self.jit[J_FLUSHES]),
            "page_flushes": int(self.jit[J_PAGE_FLUSHES]),
        }

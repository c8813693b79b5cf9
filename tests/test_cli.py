"""The rvh command: exit statuses, one-line errors, never a traceback."""

import os
import re
import subprocess
import sys

import pytest
from support import GUESTS, ROOT, needs_toolchain, require_dtc, require_guest

from rvh.errors import (
    EXIT_BROKEN_PIPE,
    EXIT_DEADLOCK,
    EXIT_EMULATOR_ERROR,
    EXIT_INSN_LIMIT,
    EXIT_LOAD_ERROR,
    EXIT_USAGE,
)
from rvh.trace import REFERENCE_MAGIC


def rvh(*args, timeout=120):
    return subprocess.run(
        [sys.executable, "-m", "rvh.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env=dict(os.environ),
    )


def assert_one_line_error(done, status, phrase):
    assert done.returncode == status, done.stderr
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("rvh: ")
    assert phrase in lines[0]


def test_version():
    done = rvh("--version")
    assert done.returncode == 0 and done.stdout.startswith("rvh ")


def test_help_lists_commands():
    done = rvh("--help")
    assert done.returncode == 0
    for word in ("run", "dtb", "bench", "Exit status"):
        assert word in done.stdout


def test_unknown_flag_is_one_line():
    assert_one_line_error(rvh("run", "--bogus", "x.elf"), EXIT_USAGE, "unrecognized arguments")


def test_bad_memory_size():
    assert_one_line_error(rvh("run", "--memory", "lots", "x.elf"), EXIT_USAGE, "memory size")


def test_smp_out_of_range():
    assert_one_line_error(rvh("run", "--smp", "9", "x.elf"), EXIT_USAGE, "between 1 and 8")


@pytest.mark.parametrize(
    "content, phrase",
    [
        (b"hello world\n", "not an ELF file"),
        (b"", "not an ELF file"),
        (b"\x7fELF\x01\x01\x01" + bytes(60), "32-bit"),
    ],
)
def test_bad_files(tmp_path, content, phrase):
    path = tmp_path / "bad.elf"
    path.write_bytes(content)
    assert_one_line_error(rvh("run", str(path)), EXIT_LOAD_ERROR, phrase)


def test_missing_file(tmp_path):
    assert_one_line_error(rvh("run", str(tmp_path / "nope.elf")), EXIT_LOAD_ERROR, "no such file")


def test_foreign_architecture():
    assert_one_line_error(rvh("run", sys.executable), EXIT_LOAD_ERROR, "not RISC-V")


def test_truncated_elf(tmp_path):
    elf = GUESTS / "hello" / "hello.elf"
    require_guest(elf)
    data = elf.read_bytes()
    path = tmp_path / "cut.elf"
    path.write_bytes(data[: len(data) // 3])
    done = rvh("run", str(path))
    assert done.returncode == EXIT_LOAD_ERROR
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1


@needs_toolchain
def test_does_not_fit_in_ram(tmp_path):
    # a program whose bss is larger than the RAM it is given
    source = tmp_path / "big.S"
    source.write_text(".text\n.globl _start\n_start: j _start\n.bss\n.space 0x1200000\n")
    elf = tmp_path / "big.elf"
    subprocess.run(
        [
            "riscv64-unknown-elf-gcc",
            "-march=rv64i",
            "-mabi=lp64",
            "-nostdlib",
            "-Wl,-Ttext=0x80000000",
            "-o",
            str(elf),
            str(source),
        ],
        check=True,
    )
    assert_one_line_error(
        rvh("run", "--memory", "16M", str(elf)), EXIT_LOAD_ERROR, "does not fit in RAM"
    )


def test_device_tree_never_overwrites_the_program(tmp_path):
    # 1 MiB of RAM: QEMU's placement (2 MiB aligned below the end) would land on the program
    elf = GUESTS / "hello" / "hello.elf"
    require_guest(elf)
    done = rvh("run", "--memory", "1M", "--max-insns", "1000000", str(elf))
    assert done.returncode == 0, done.stderr
    assert "Hello from rvh guest!" in done.stdout


def test_guest_exit_code_and_stats():
    elf = GUESTS / "htif" / "htif_fail.elf"
    require_guest(elf)
    done = rvh("run", "--stats", str(elf))
    assert done.returncode == 3
    assert "instructions retired:" in done.stderr and "MIPS" in done.stderr


@pytest.mark.slow  # a virtio run of about 16 s
def test_stats_sum_up_each_device():
    elf = GUESTS / "virtio" / "net.elf"
    require_guest(elf)
    done = rvh(
        "run", "--sbi", str(elf), "--netdev", "hub,id=h0", "--netdev", "hub,id=h0", "--stats"
    )
    assert done.returncode == 0, done.stderr
    lines = {line.split(":")[0]: line for line in done.stderr.splitlines()}
    # the guest's two NICs swap frames through the hub: what one sends the other receives
    tx0 = int(lines["virtio-net0"].split("tx ")[1].split()[0])
    rx1 = int(lines["virtio-net1"].split("rx ")[1].split(",")[0])
    assert tx0 > 100 and rx1 == tx0
    assert "0 dropped" in lines["virtio-net0"]
    assert lines["hub h0"].split(":")[1].split()[0] == str(2 * tx0)


def test_max_insns_stops_a_spinning_guest(tmp_path):
    elf = GUESTS / "bench" / "intmem.elf"
    require_guest(elf)
    done = rvh("run", "--max-insns", "100000", str(elf))
    assert_one_line_error(done, EXIT_INSN_LIMIT, "instruction limit")


def test_dtb_is_accepted_by_dtc(tmp_path):

    out = tmp_path / "virt.dtb"
    assert rvh("dtb", "-o", str(out), "--smp", "2").returncode == 0
    require_dtc()
    dts = subprocess.run(
        ["dtc", "-I", "dtb", "-O", "dts", str(out)], capture_output=True, text=True, check=True
    ).stdout
    assert "cpu@1" in dts and "serial@10000000" in dts


def test_disasm_words_and_elf():
    done = rvh("disasm", "00000297", "8082")
    assert done.returncode == 0
    assert done.stdout.splitlines() == ["00000297  auipc t0, 0x0", "00008082  c.jr ra"]
    elf = GUESTS / "hello" / "hello.elf"
    if elf.exists():
        done = rvh("disasm", str(elf))
        assert done.returncode == 0 and "<_start>:" in done.stdout
    bad = rvh("disasm", "xyz")
    assert bad.returncode == EXIT_USAGE and "not a hexadecimal instruction" in bad.stderr


@pytest.mark.parametrize(
    "command, phrase",
    [
        (["run", "{elf}", "--trace", "{missing}"], "cannot write (No such file or directory)"),
        (["run", "{elf}", "--trace", "{folder}"], "cannot write (Is a directory)"),
        (["dtb", "-o", "{missing}"], "cannot write (No such file or directory)"),
        (["diff", "{elf}", "--save-reference", "{missing}"], "cannot write there"),
        (["diff", "{elf}", "--reference", "{missing}"], "cannot read (No such file or directory)"),
        (["diff", "{elf}", "--reference", "{elf}"], "not an rvh reference trace"),
        (["diff", "{elf}", "--reference", "{malformed}"], "malformed rvh reference trace"),
    ],
)
def test_unusable_paths_are_one_line(tmp_path, command, phrase):
    # files rvh writes or reads besides the program: a clear line, never a traceback, and
    # for diff before QEMU is started
    elf = GUESTS / "hello" / "hello.elf"
    require_guest(elf)
    malformed = tmp_path / "malformed.ref"
    malformed.write_text(f"{REFERENCE_MAGIC}\nfields pc x1\npc=80000000 zz=1\n")
    where = {
        "elf": str(elf),
        "missing": str(tmp_path / "no" / "file"),
        "folder": str(tmp_path),
        "malformed": str(malformed),
    }
    done = rvh(*(part.format(**where) for part in command))
    assert done.returncode != 0
    assert_one_line_error(done, done.returncode, phrase)
    assert not (tmp_path / "no").exists()


# ---- every failure a new user hit ------------------------------------------------------------


@pytest.mark.parametrize(
    "command",
    [
        ["run", "{special}"],
        ["run", "--sbi", "{special}"],
        ["run", "--firmware", "{special}"],
        ["run", "--firmware", "{elf}", "--kernel", "{special}"],
        ["disasm", "{special}"],
    ],
)
@pytest.mark.parametrize("special", ["/dev/zero", "fifo"])
def test_only_regular_files_are_read(tmp_path, command, special):
    # /dev/zero would be read until the host runs out of memory, a pipe with no writer would
    # block forever: both are refused before a byte is read
    if special == "fifo":
        special = str(tmp_path / "pipe")
        os.mkfifo(special)
    kind = "character device" if special == "/dev/zero" else "named pipe"
    where = {"special": special, "elf": str(GUESTS / "hello" / "hello.elf")}
    done = rvh(*(part.format(**where) for part in command), timeout=60)
    assert_one_line_error(done, EXIT_LOAD_ERROR, f"{special}: a {kind}, not a regular file")


def test_disasm_of_a_missing_file_says_so():
    assert_one_line_error(
        rvh("disasm", "/nonexistent"), EXIT_LOAD_ERROR, "/nonexistent: no such file"
    )
    assert_one_line_error(rvh("disasm", "missing.elf"), EXIT_LOAD_ERROR, "no such file")


PRINT_FOREVER = """
    li t0, 0x10000000
1:  li t1, 'y'
    sb t1, 0(t0)
    li t1, 10
    sb t1, 0(t0)
    j 1b
"""


@needs_toolchain
def test_a_closed_stdout_ends_the_run_quietly(tmp_path):
    # rvh run ... | head -1: the reader goes away, rvh stops without a word, status 141 as for a
    # program killed by SIGPIPE
    from support import build_elf

    elf = build_elf(PRINT_FOREVER, tmp_path / "yes.elf")
    child = subprocess.Popen(
        [sys.executable, "-m", "rvh.cli", "run", str(elf)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
    )
    assert child.stdout.readline() == b"y\n"
    child.stdout.close()
    errors = child.stderr.read()
    assert child.wait(timeout=60) == EXIT_BROKEN_PIPE
    assert errors == b""


def test_a_closed_stdout_ends_disasm_quietly():
    elf = GUESTS / "hello" / "hello.elf"
    child = subprocess.Popen(
        [sys.executable, "-m", "rvh.cli", "disasm", str(elf)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    child.stdout.readline()
    child.stdout.close()
    errors = child.stderr.read()
    assert child.wait(timeout=60) == EXIT_BROKEN_PIPE
    assert errors == b""


@pytest.mark.parametrize(
    "option, phrase",
    [
        (["--trace", "/dev/full"], "--trace /dev/full: cannot write (No space left on device)"),
        (["--serial", "file:/dev/full"], "--serial file:/dev/full: cannot write (No space left"),
    ],
)
def test_output_the_host_refuses_is_one_line_and_stats_still_print(option, phrase):
    elf = GUESTS / "hello" / "hello.elf"
    done = rvh("run", *option, "--stats", str(elf))
    assert done.returncode == EXIT_EMULATOR_ERROR, done.stderr
    assert "Traceback" not in done.stderr
    lines = done.stderr.splitlines()
    assert lines[0].startswith(f"rvh: {phrase}")
    assert lines[1].startswith("instructions retired:")
    assert any(line.startswith("ended by:             " + phrase) for line in lines)


def test_trace_to_stdout_and_trace_to_nothing():
    elf = GUESTS / "hello" / "hello.elf"
    done = rvh("run", "--trace", "-", str(elf))
    assert done.returncode == 0, done.stderr
    assert not (ROOT / "-").exists()
    first = done.stdout.splitlines()[0]
    assert first == "core   0: 3 0x0000000000001000 (0x00000297) x5  0x0000000000001000"
    # the console shares stdout: its bytes come between the records written so far
    console = re.sub(r"core +0: [^\n]*\n", "", done.stdout)
    assert "Hello from rvh guest!" in console
    assert_one_line_error(rvh("run", "--trace", "", str(elf)), EXIT_USAGE, "--trace needs a file")


def test_guest_ram_the_host_cannot_allocate_is_one_line():
    import resource

    def small_address_space() -> None:
        limit = 3 << 30  # room for Python, numba and numpy, not for 4 GiB of guest RAM
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "rvh.cli",
            "run",
            "--memory",
            "4G",
            str(GUESTS / "hello" / "hello.elf"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        preexec_fn=small_address_space,
    )
    assert_one_line_error(done, EXIT_LOAD_ERROR, "cannot allocate guest RAM (4 GiB)")


def test_memory_limit_is_given_in_binary_units():
    assert_one_line_error(
        rvh("run", "--memory", "32G", "x.elf"), EXIT_USAGE, "memory size 32 GiB out of range"
    )


@pytest.mark.parametrize(
    "netdevs, phrase",
    [
        (["hub,id=a,pcap={pcap}", "hub,id=a,pcap={pcap}"], "is already virtio-net0's pcap file"),
        (["hub,id=a,pcap={pcap}", "hub,id=b,pcap={pcap_alias}"], "is already virtio-net0's pcap"),
        (["hub,id=a,pcap={image}"], "is already a --drive image"),
        (
            ["socket,id=s,udp=127.0.0.1:9,localaddr=127.0.0.1:0", "hub,id=s"],
            "id 's' is already in use",
        ),
        (
            [
                "socket,id=s,udp=127.0.0.1:9,localaddr=127.0.0.1:0",
                "socket,id=s,udp=127.0.0.1:9,localaddr=127.0.0.1:0",
            ],
            "id 's' is already in use",
        ),
        (["hub,id=a,mac=52:54:00:00:00:01", "hub,id=a,mac=52:54:00:00:00:01"], "MAC 52:54:00:00"),
        (["hub,id=a", "hub,id=a,mac=52:54:00:12:34:56"], "is already virtio-net0's"),  # default
    ],
)
def test_netdevs_that_would_collide_are_refused(tmp_path, netdevs, phrase):
    image = tmp_path / "disk.img"
    image.write_bytes(bytes(4096))
    (tmp_path / "sub").mkdir()
    where = {
        "pcap": str(tmp_path / "frames.pcap"),
        "pcap_alias": str(tmp_path / "sub" / ".." / "frames.pcap"),
        "image": str(image),
    }
    options = [arg for text in netdevs for arg in ("--netdev", text.format(**where))]
    done = rvh(
        "run", "--sbi", *options, "--drive", f"file={image}", str(GUESTS / "hello" / "hello.elf")
    )
    assert_one_line_error(done, EXIT_USAGE, phrase)
    assert image.read_bytes() == bytes(4096)  # a pcap header never landed on the disk


def test_hub_ids_repeat_to_join_nics():
    # two NICs on hub h0 (each says hub,id=h0) with their default MACs: accepted
    elf = GUESTS / "virtio" / "net.elf"
    done = rvh("run", "--sbi", str(elf), "--netdev", "hub,id=h0", "--netdev", "hub,id=h0")
    assert done.returncode == 0, done.stderr


def test_bench_repeat_options_say_what_they_do():
    for benchmark in ("mips", "mmu", "hext", "virtio"):
        done = rvh("bench", benchmark, "--help")
        assert done.returncode == 0
        assert "--repeat N" in done.stdout and "median" in done.stdout, benchmark


def test_sigterm_stops_a_benchmark_with_a_message():
    import signal
    import time

    child = subprocess.Popen(
        [sys.executable, "-m", "rvh.cli", "bench", "mips", "--no-qemu"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert child.stdout.readline().startswith("rvh bench mips:")  # under way
    time.sleep(1)
    child.send_signal(signal.SIGTERM)
    _, errors = child.communicate(timeout=60)
    assert child.returncode == 143
    assert errors.splitlines() == ["rvh: terminated"]


def test_bench_mips_says_why_qemu_is_not_run():
    done = rvh("bench", "mips", "--quick", timeout=300)
    assert done.returncode == 0, done.stderr
    first = done.stdout.splitlines()[0]
    assert first.endswith("(QEMU not run: --quick is a smoke test, not a comparison)")


@pytest.mark.parametrize(
    "command, phrase",
    [
        (["run", "{smode}"], "in M-mode; did you mean --sbi? "),
        (["run", "--sbi", "{mmode}"], "in HS-mode; did you mean to run it without --sbi? "),
    ],
)
def test_a_program_booted_the_wrong_way_gets_a_hint(command, phrase):
    where = {
        "smode": str(GUESTS / "smode" / "hello.elf"),
        "mmode": str(GUESTS / "hello" / "hello.elf"),
    }
    done = rvh(*(part.format(**where) for part in command))
    assert_one_line_error(done, EXIT_DEADLOCK, phrase)
    assert done.stderr.startswith("rvh: trap loop: hart 0 retired nothing")


def test_cache_shows_and_clears_the_tiers_code_cache(tmp_path):
    elf = GUESTS / "bench" / "recursion.elf"
    require_guest(elf)
    cache = tmp_path / "tier"
    empty = rvh("cache", "--dir", str(cache))
    assert empty.returncode == 0 and "objects:     0 files" in empty.stdout
    assert not cache.exists()  # looking creates nothing
    done = rvh("run", "--max-insns", "20000000", "--tier-cache", str(cache), str(elf))
    assert done.returncode == 124, done.stderr  # stopped by the limit, mid-run
    shown = rvh("cache", "--dir", str(cache))
    assert shown.returncode == 0, shown.stderr
    objects = len(list((cache / "objects").glob("*.o")))
    assert objects >= 1 and f"objects:     {objects} files" in shown.stdout
    blocks = re.search(r"blocks:\s+(\d+) compiled, found by (\d+) region keys", shown.stdout)
    assert blocks and int(blocks[1]) >= 1 and int(blocks[2]) >= 1
    (cache / "notes.txt").write_text("mine")  # not the cache's: kept
    cleared = rvh("cache", "--dir", str(cache), "--clear")
    assert cleared.returncode == 0 and "files deleted" in cleared.stdout
    assert sorted(path.name for path in cache.iterdir()) == ["notes.txt"]
    assert "objects:     0 files" in rvh("cache", "--dir", str(cache)).stdout


def test_cache_of_a_file_is_one_line(tmp_path):
    path = tmp_path / "file"
    path.write_text("")
    assert_one_line_error(rvh("cache", "--dir", str(path)), 2, "is not a directory")

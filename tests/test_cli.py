"""The rvh command: exit statuses, one-line errors, never a traceback."""

import os
import subprocess
import sys

import pytest
from support import GUESTS, ROOT, needs_toolchain

from rvh.errors import EXIT_INSN_LIMIT, EXIT_LOAD_ERROR, EXIT_USAGE
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
    if not elf.exists():
        pytest.skip("guests not built")
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
    if not elf.exists():
        pytest.skip("guests not built")
    done = rvh("run", "--memory", "1M", "--max-insns", "1000000", str(elf))
    assert done.returncode == 0, done.stderr
    assert "Hello from rvh guest!" in done.stdout


def test_guest_exit_code_and_stats():
    elf = GUESTS / "htif" / "htif_fail.elf"
    if not elf.exists():
        pytest.skip("guests not built")
    done = rvh("run", "--stats", str(elf))
    assert done.returncode == 3
    assert "instructions retired:" in done.stderr and "MIPS" in done.stderr


def test_stats_sum_up_each_device():
    elf = GUESTS / "virtio" / "net.elf"
    if not elf.exists():
        pytest.skip("guests not built")
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
    if not elf.exists():
        pytest.skip("guests not built")
    done = rvh("run", "--max-insns", "100000", str(elf))
    assert_one_line_error(done, EXIT_INSN_LIMIT, "instruction limit")


def test_dtb_is_accepted_by_dtc(tmp_path):
    import shutil

    out = tmp_path / "virt.dtb"
    assert rvh("dtb", "-o", str(out), "--smp", "2").returncode == 0
    if shutil.which("dtc") is None:
        pytest.skip("dtc not installed")
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
    if not elf.exists():
        pytest.skip("guests not built")
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

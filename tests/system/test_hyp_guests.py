"""The rvh hypervisor (firmware/hyp) running the S-mode guests as hw VMs, on rvh and on QEMU 7.2.

Each guest in guests/smode runs natively on the built-in SBI and as a VM (VS-mode, G-stage)
under the hypervisor, and must print the same thing: only what a guest measures (counter
values, timer latency, the SBI implementation it talks to) may differ, and those lines are
compared with their numbers masked.  The same hypervisor, tree and images then run on QEMU 7.2
under OpenSBI, so the hypervisor is shown to work on hardware rvh did not write.
"""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
from support import GUESTS, ROOT

from rvh.boot import HypervisorBoot
from rvh.config import MachineConfig
from rvh.errors import EXIT_LOAD_ERROR, EXIT_USAGE
from rvh.hyp import GuestSpec, export_for_qemu, host_memory_needed
from rvh.machine import Machine

SMODE = GUESTS / "smode"
GUESTS_ONE_HART = ["hello", "sbi", "sv39", "sv48", "timer", "umode", "smp"]
MEASURED = re.compile(r"ticks|cycle|instret|implementation")
FW_JUMP = "/usr/lib/riscv64-linux-gnu/opensbi/generic/fw_jump.elf"


def rvh(*args: str, timeout: int = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rvh.cli", "run", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )


def comparable(output: str) -> list[str]:
    """The guest's lines, numbers masked where they are measurements; no hypervisor summary."""
    lines = []
    for line in output.splitlines():
        if line.startswith("hyp:"):
            continue
        if MEASURED.search(line):
            line = re.sub(r"0x[0-9a-f]+|\d+", "N", line)
        lines.append(line)
    return lines


def summary(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("hyp:")]


@pytest.mark.parametrize("name", GUESTS_ONE_HART)
def test_guest_as_hw_vm_prints_what_it_prints_natively(name):
    elf = str(SMODE / f"{name}.elf")
    native = rvh("--sbi", elf)
    # the VM gets the native machine's 256 MiB, so its device tree lands where the native one does
    vm = rvh("--memory", "512M", "--hyp", "--guest", f"{elf},mem=256M")
    assert native.returncode == 0, native.stdout + native.stderr
    assert vm.returncode == 0, vm.stdout + vm.stderr
    assert comparable(vm.stdout) == comparable(native.stdout)
    assert f"PASS smode/{name}" in vm.stdout
    assert summary(vm.stdout)[0] == "hyp: vm 0 (hw): status 0 (shutdown)"


def test_smp_vm_runs_both_vcpus_on_one_hart():
    elf = str(SMODE / "smp.elf")
    native = rvh("--sbi", "--smp", "2", elf)
    vm = rvh("--memory", "512M", "--hyp", "--guest", f"{elf},mem=256M,vcpus=2")
    assert native.returncode == vm.returncode == 0, vm.stdout + vm.stderr
    assert "one hart" not in vm.stdout  # the multi-hart part ran
    assert comparable(vm.stdout) == comparable(native.stdout)
    assert re.search(r"hyp:   sbi .*HSM \d+", vm.stdout)


def test_three_vms_at_once_each_line_names_its_vm():
    result = rvh(
        "--hyp",
        "--guest", str(SMODE / "hello.elf"),
        "--guest", str(SMODE / "timer.elf"),
        "--guest", str(SMODE / "sv39.elf"),
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    for index, name in enumerate(["hello", "timer", "sv39"]):
        assert f"[vm{index}] PASS smode/{name}" in result.stdout
        assert f"hyp: vm {index} (hw): status 0 (shutdown)" in result.stdout
    guest_lines = [line for line in result.stdout.splitlines() if not line.startswith("hyp:")]
    assert all(re.match(r"\[vm[012]\] ", line) for line in guest_lines)


def test_exit_counts_are_the_same_run_to_run():
    args = ("--hyp", "--guest", str(SMODE / "timer.elf"), "--guest", str(SMODE / "sbi.elf"))
    first, second = rvh(*args, "--stats"), rvh(*args, "--stats")
    assert first.returncode == second.returncode == 0
    assert summary(first.stdout) == summary(second.stdout)
    assert re.search(r"hyp:   exits \d+: ecall \d+", first.stdout)
    retired = [re.search(r"instructions retired: +(\d+)", r.stderr) for r in (first, second)]
    assert retired[0] and retired[1] and retired[0].group(1) == retired[1].group(1)


def test_guest_device_accesses_are_emulated_or_fault():
    # sv39 probes a guest-physical address with nothing behind it: the VM must see an access
    # fault there (the test checks it), which the hypervisor counts as an injected fault
    result = rvh("--hyp", "--guest", str(SMODE / "sv39.elf"))
    assert result.returncode == 0
    assert re.search(r"injected_faults 1,", result.stdout)


@pytest.mark.parametrize(
    ("args", "status", "message"),
    [
        (["--guest", "x.elf"], EXIT_USAGE, "--guest goes with --hyp"),
        (["--hyp"], EXIT_USAGE, "--hyp needs at least one --guest"),
        (["--hyp", "--guest", "missing.elf"], EXIT_LOAD_ERROR, "missing.elf: no such file"),
        (["--hyp", "--guest", "x.elf,virt=vmware"], EXIT_USAGE, "virt=vmware"),
        (["--hyp", "--guest", "x.elf,size=1"], EXIT_USAGE, "unknown suboption 'size=1'"),
        (
            ["--cpu", "rv64,h=off", "--hyp", "--guest", f"{SMODE / 'hello.elf'},virt=hw"],
            EXIT_USAGE,
            "virt=hw needs a hart with the H extension",
        ),
        (
            ["--memory", "128M", "--hyp", "--guest", str(SMODE / "hello.elf")],
            EXIT_USAGE,
            "the VMs need 130 MiB of host RAM",
        ),
        (
            ["--hyp", "--sbi", "--guest", "x.elf"],
            EXIT_USAGE,
            "give no ELF, --sbi, --kernel or --initrd",
        ),
        (
            ["--hyp", "--initrd", "x.cpio", "--guest", "x.elf"],
            EXIT_USAGE,
            "give no ELF, --sbi, --kernel or --initrd",
        ),
    ],
)
def test_bad_hypervisor_command_lines_are_one_line(args, status, message):
    result = rvh(*args)
    assert result.returncode == status, result.stderr
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def run_on_qemu(names: list[str], tmp_path) -> subprocess.CompletedProcess[str]:
    """The hypervisor, host tree and VM images exactly as rvh prepares them, on QEMU 7.2."""
    specs = [GuestSpec.parse(str(SMODE / f"{name}.elf")) for name in names]
    command = export_for_qemu(specs, tmp_path, FW_JUMP)
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


@pytest.mark.qemu
def test_the_same_hypervisor_runs_on_qemu(tmp_path):
    qemu = run_on_qemu(["hello", "sv39"], tmp_path)
    tool = subprocess.run(
        [sys.executable, "tools/hyp_qemu.py", "--out", str(tmp_path / "tool"),
         "--guest", str(SMODE / "hello.elf"), "--guest", str(SMODE / "sv39.elf")],
        capture_output=True, text=True, cwd=ROOT, timeout=120,
    )  # fmt: skip
    assert tool.returncode == 0, tool.stderr
    assert tool.stdout.startswith("qemu-system-riscv64 -machine virt -cpu rv64,h=true")
    ours = rvh("--hyp", "--guest", str(SMODE / "hello.elf"), "--guest", str(SMODE / "sv39.elf"))
    assert qemu.returncode == 0, qemu.stdout[-2000:] + qemu.stderr
    assert "OpenSBI" in qemu.stdout  # it really went through QEMU's firmware path
    # the two machines' clocks differ, so the VMs' lines interleave differently: compare each
    # VM's own lines, its status, and its SBI calls (which depend only on the guest)
    for vm in ("vm0", "vm1"):
        assert per_vm(qemu.stdout, vm) == per_vm(ours.stdout, vm)
    for out in (qemu.stdout, ours.stdout):
        assert "hyp: vm 0 (hw): status 0 (shutdown)" in out
        assert "hyp: vm 1 (hw): status 0 (shutdown)" in out
    # vm0's SBI calls are the same call for call (vm1 prints a different Sv57 line, so its
    # console calls differ by that line's length)
    assert (
        re.findall(r"hyp:   sbi .*", qemu.stdout)[0] == re.findall(r"hyp:   sbi .*", ours.stdout)[0]
    )


def per_vm(output: str, vm: str) -> list[str]:
    # the one line where the two harts differ: QEMU 7.2 implements Sv57, rvh does not
    return [
        line for line in output.splitlines() if line.startswith(f"[{vm}] ") and "(Sv57)" not in line
    ]


def test_stats_prints_a_block_per_vm_from_the_stats_page():
    result = rvh(
        "--hyp", "--guest", str(SMODE / "hello.elf"), "--guest", str(SMODE / "umode.elf"), "--stats"
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    blocks = result.stderr[result.stderr.index("vm 0 (hw):") :].splitlines()
    assert blocks[0] == "vm 0 (hw): shut down, status 0"
    assert blocks[4] == "vm 1 (hw): shut down, status 0"
    # the page and the hypervisor's own console summary agree, figure for figure
    console = re.search(r"hyp: vm 1 \(hw\).*\nhyp:   exits (\d+): (.*)\n", result.stdout)
    assert console is not None
    assert blocks[5] == f"  exits {console.group(1)}: {console.group(2)}"
    assert re.fullmatch(r"  exits by scause: 10: \d+, 22: \d+", blocks[7])  # umode's U-mode traps


HYP_GUESTS = GUESTS / "hyp"


def hypervisor_text() -> tuple[int, bytes]:
    """The hypervisor's code as built: (address, bytes) of its .text section."""
    from elftools.elf.elffile import ELFFile

    from rvh.hyp import hypervisor_elf

    with open(hypervisor_elf(), "rb") as file:
        text = ELFFile(file).get_section_by_name(".text")
        return text["sh_addr"], text.data()


def test_a_hostile_vm_gets_architectural_answers_and_touches_nobody():
    # the hostile VM runs between a victim's checks of its own memory, beside a third VM
    specs = [
        GuestSpec.parse(str(HYP_GUESTS / "victim.elf")),
        GuestSpec.parse(str(HYP_GUESTS / "hostile.elf")),
        GuestSpec.parse(str(SMODE / "hello.elf")),
    ]
    output = bytearray()
    config = MachineConfig(memory=host_memory_needed(specs), max_instructions=400_000_000)
    machine = Machine(config, output.extend)
    machine.boot(HypervisorBoot(specs))
    result = machine.run_sync()
    text = output.decode()
    assert result.status == 0, text
    assert "[vm1] PASS hyp/hostile" in text  # every wild access got its architectural answer
    assert re.search(r"\[vm1\] hostile: 60 access faults, \d+ illegal instructions, 24 SBI", text)
    assert "[vm0] victim: 1 MiB intact after 8 rounds" in text
    assert "[vm2] PASS smode/hello" in text
    # and the hypervisor's own code is what was loaded
    address, code = hypervisor_text()
    assert machine.bus.read_bytes(address, len(code)) == code
    hostile = re.search(r"hyp: vm 1 \(hw\).*\nhyp:   exits \d+: (.*)", text)
    assert hostile is not None and "injected_faults 61" in hostile.group(1)


def test_a_spinning_vm_does_not_starve_the_others():
    result = rvh(
        "--hyp",
        "--guest", str(HYP_GUESTS / "spin.elf"),
        "--guest", str(SMODE / "timer.elf"),
        "--guest", str(SMODE / "hello.elf"),
        "--max-insns", "60000000",
    )  # fmt: skip
    assert result.returncode == 124  # the spinner never ends, so the limit does
    assert "[vm0] spin: spinning" in result.stdout
    assert "[vm1] PASS smode/timer" in result.stdout
    assert "[vm2] PASS smode/hello" in result.stdout

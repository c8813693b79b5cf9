"""rvh/hyp.py: the --guest SPEC, where VMs go in host RAM, and the tree that tells the hypervisor.

The hypervisor itself (firmware/hyp) is tested by running it: tests/system/test_hyp_guests.py.
"""

import pytest
from support import GUESTS

from rvh.config import RAM_BASE, MachineConfig
from rvh.errors import ConfigError, LoadError
from rvh.fdt import DeviceTree, parse_dtb
from rvh.hyp import (
    HOST_TREE_RESERVED,
    HYPERVISOR_RESERVED,
    GuestSpec,
    VmDrive,
    add_hypervisor_node,
    attach_vm_devices,
    host_memory_needed,
    place_vm,
    plan_vms,
)

HELLO = str(GUESTS / "smode" / "hello.elf")


def test_spec_defaults():
    spec = GuestSpec.parse("guest.elf")
    assert (spec.path, spec.virt, spec.memory, spec.vcpus) == ("guest.elf", "hw", 64 << 20, 1)
    assert (spec.append, spec.drives, spec.netdevs, spec.io) == (None, [], [], "emulated")


def test_spec_suboptions():
    spec = GuestSpec.parse("g.elf,virt=trap,mem=128M,vcpus=2,drive=d.img,readonly=on,netdev=n0")
    assert (spec.virt, spec.memory, spec.vcpus) == ("trap", 128 << 20, 2)
    assert (spec.drives, spec.netdevs) == ([VmDrive("d.img", True)], ["n0"])


def test_drives_and_netdevs_repeat_and_readonly_is_for_the_drive_before_it():
    spec = GuestSpec.parse("g.elf,drive=a.img,drive=b.img,readonly=on,netdev=h0,netdev=h1")
    assert spec.drives == [VmDrive("a.img", False), VmDrive("b.img", True)]
    assert spec.netdevs == ["h0", "h1"]
    assert spec.device_count == 4


def test_append_takes_commas_up_to_the_next_known_key():
    spec = GuestSpec.parse("k,append=console=ttyS0,115200 root=/dev/vda,rw,mem=32M")
    assert spec.append == "console=ttyS0,115200 root=/dev/vda,rw"
    assert spec.memory == 32 << 20


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (",virt=hw", "starts with no guest file"),
        ("g.elf,virt=xen", "virt=xen: use one of hw, trap, pv"),
        ("g.elf,colour=blue", "unknown suboption 'colour=blue'"),
        ("g.elf,mem", "unknown suboption 'mem'"),
        ("g.elf,mem=3M", "a multiple of 2 MiB"),
        ("g.elf,mem=lots", "bad memory size"),
        ("g.elf,vcpus=0", "vcpus=0: a number from 1 to 8"),
        ("g.elf,vcpus=9", "vcpus=9"),
        ("g.elf,readonly=yes", "readonly=yes: on or off"),
        ("g.elf,io=magic", "io=magic"),
        ("g.elf,mem=8M,mem=16M", "mem= given twice"),
        ("g.elf,readonly=on,drive=a.img", "readonly= goes after the drive=PATH it is for"),
        ("g.elf,drive=", "drive= needs an image file"),
        ("g.elf,netdev=", "netdev=''"),
        ("g.elf,mac=52:54:00:00:00:01,netdev=h", "mac= goes after the netdev=ID it is for"),
        ("g.elf,netdev=h,mac=52:54:00:00:00:01,mac=52:54:00:00:00:02", "a second mac="),
        ("g.elf,netdev=h,mac=52:54:00", "mac=52:54:00: expected six hex bytes"),
        ("g.elf,netdev=h,mac=01:00:00:00:00:01", "mac=01:00:00:00:00:01"),
    ],
)
def test_bad_spec_is_one_line(text, message):
    with pytest.raises(ConfigError, match=message) as raised:
        GuestSpec.parse(text)
    assert "\n" not in str(raised.value)


def test_vms_are_placed_above_the_hypervisor_one_after_another():
    specs = [GuestSpec.parse(f"{HELLO},mem=32M"), GuestSpec.parse(f"{HELLO},mem=16M")]
    plans = plan_vms(specs, 256 << 20, has_h=True)
    assert [p.host_base for p in plans] == [RAM_BASE + HYPERVISOR_RESERVED, RAM_BASE + (96 << 20)]
    assert [p.name for p in plans] == ["vm0", "vm1"]
    assert host_memory_needed(specs) == HYPERVISOR_RESERVED + (48 << 20) + HOST_TREE_RESERVED


def test_too_little_host_memory_says_how_much():
    specs = [GuestSpec.parse(f"{HELLO},mem=128M")] * 2
    with pytest.raises(ConfigError, match=r"need 322 MiB .* has 256 MiB: give --memory 322M"):
        plan_vms(specs, 256 << 20, has_h=True)


def test_hw_needs_the_h_extension():
    with pytest.raises(ConfigError, match="virt=hw needs a hart with the H extension"):
        plan_vms([GuestSpec.parse(f"{HELLO},virt=hw")], 256 << 20, has_h=False)


def test_every_mode_is_planned_as_given():
    specs = [GuestSpec.parse(f"{HELLO},virt={mode}") for mode in ("hw", "trap", "pv")]
    plans = plan_vms(specs, 512 << 20, has_h=True)
    assert [plan.spec.virt for plan in plans] == ["hw", "trap", "pv"]
    # trap and pv need no H extension
    plans = plan_vms([GuestSpec.parse(f"{HELLO},virt=pv")], 256 << 20, has_h=False)
    assert plans[0].spec.virt == "pv"


def test_trap_mode_is_planned_with_or_without_h():
    for has_h in (True, False):
        plans = plan_vms([GuestSpec.parse(f"{HELLO},virt=trap")], 256 << 20, has_h=has_h)
        assert plans[0].spec.virt == "trap"
    # without H the default is trap
    assert plan_vms([GuestSpec.parse(HELLO)], 256 << 20, has_h=False)[0].spec.virt == "trap"


def test_missing_and_foreign_guest_files(tmp_path):
    with pytest.raises(LoadError, match="no such file"):
        plan_vms([GuestSpec.parse(str(tmp_path / "none.elf"))], 256 << 20, has_h=True)
    text = tmp_path / "notes.txt"
    text.write_text("not an ELF")
    with pytest.raises(LoadError, match="not an ELF file"):
        plan_vms([GuestSpec.parse(str(text))], 256 << 20, has_h=True)


def test_guest_must_fit_its_own_ram():
    with pytest.raises(LoadError, match=r"does not fit in the VM's RAM .* larger mem="):
        plan_vms([GuestSpec.parse(f"{HELLO},mem=2M")], 256 << 20, has_h=True)


def test_vm_image_and_tree_land_in_its_host_ram():
    (plan,) = plan_vms([GuestSpec.parse(f"{HELLO},mem=16M,append=quiet")], 256 << 20, True)
    writes: dict[int, bytes] = {}
    place_vm(lambda address, data: writes.__setitem__(address, data), plan)
    first = plan.elf.segments[0]
    assert writes[plan.host_base + (first.address - RAM_BASE)] == first.data
    # the VM's own tree: at the top 2 MiB boundary of its RAM, its RAM and no H in its harts
    assert plan.dtb_address == RAM_BASE + (16 << 20) - (2 << 20)
    tree = parse_dtb(writes[plan.host(plan.dtb_address)])
    assert tree["/memory@80000000"].get_cells("reg") == [0, RAM_BASE, 0, 16 << 20]
    assert "h" not in tree["/cpus/cpu@0"].get_str("riscv,isa").split("_")[0][4:]
    assert tree["/chosen"].get_str("bootargs") == "quiet"


def fake_linux_image(image_size: int) -> bytes:
    """The 64-byte header of a RISC-V Linux Image (docs/linux.md) and a little code."""
    header = bytearray(64)
    header[0:4] = (0x0400006F).to_bytes(4, "little")  # jal x0, +64
    header[16:24] = image_size.to_bytes(8, "little")
    header[0x30:0x38] = b"RISCV\0\0\0"
    header[0x38:0x3C] = b"RSC\x05"
    return bytes(header) + bytes(4096)


def test_a_linux_image_and_its_initrd_go_where_qemu_puts_them(tmp_path):
    image, initrd = tmp_path / "Image", tmp_path / "initrd.cpio"
    image.write_bytes(fake_linux_image(0x40_0000))
    initrd.write_bytes(b"070701" + bytes(10_000))
    spec = GuestSpec.parse(f"{image},initrd={initrd},mem=64M,append=console=ttyS0")
    (plan,) = plan_vms([spec], 256 << 20, has_h=True)
    # the Image at RAM + 2 MiB (the hypervisor is its SBI), entered at its first byte
    assert plan.elf.entry == RAM_BASE + (2 << 20)
    assert plan.elf.segments[0].memory_size == 0x40_0000
    # the initrd at the kernel's start plus half the VM's RAM (less than 128 MiB)
    assert plan.initrd is not None
    start = RAM_BASE + (2 << 20) + (32 << 20)
    assert (plan.initrd.segments[0].address, plan.initrd.end) == (start, start + 10_006)
    writes: dict[int, bytes] = {}
    place_vm(lambda address, data: writes.__setitem__(address, data), plan)
    assert writes[plan.host(start)] == initrd.read_bytes()
    chosen = parse_dtb(writes[plan.host(plan.dtb_address)])["/chosen"]
    assert chosen.get_str("bootargs") == "console=ttyS0"
    assert chosen.get_u64("linux,initrd-start") == start
    assert chosen.get_u64("linux,initrd-end") == start + 10_006


def test_an_initrd_that_reaches_the_vms_tree_is_one_line(tmp_path):
    image, initrd = tmp_path / "Image", tmp_path / "big.cpio"
    image.write_bytes(fake_linux_image(0x40_0000))
    initrd.write_bytes(bytes(2 << 20))
    spec = GuestSpec.parse(f"{image},initrd={initrd},mem=8M")
    with pytest.raises(LoadError, match=r"initrd=.* do not fit below the VM's device tree"):
        plan_vms([spec], 256 << 20, has_h=True)


@pytest.mark.parametrize("virt", ["hw", "trap", "pv"])
def test_vms_of_every_mode_have_f_and_d(virt):
    (plan,) = plan_vms([GuestSpec.parse(f"{HELLO},virt={virt}")], 256 << 20, has_h=True)
    place_vm(lambda address, data: None, plan)
    isa = parse_dtb(plan.dtb)["/cpus/cpu@0"].get_str("riscv,isa")
    assert isa == "rv64imafdcsu_zicsr_zifencei_sstc"


def test_hypervisor_node_describes_each_vm():
    plans = plan_vms(
        [GuestSpec.parse(HELLO), GuestSpec.parse(f"{HELLO},vcpus=2,mem=32M")], 256 << 20, True
    )
    for plan in plans:
        plan.dtb_address = 0x8120_0000
    tree = DeviceTree()
    add_hypervisor_node(tree, plans)
    tree = parse_dtb(tree.to_dtb())  # as the hypervisor reads it
    vm1 = tree["/hypervisor/vm@1"]
    assert tree["/hypervisor"].get_str("compatible") == "rvh,hypervisor"
    assert vm1.get_cells("reg") == [0, plans[1].host_base, 0, 32 << 20]
    assert vm1.get_u64("rvh,entry") == plans[1].elf.entry
    assert vm1.get_u64("rvh,guest-base") == RAM_BASE
    assert vm1.get_u64("rvh,dtb") == 0x8120_0000
    assert vm1.get_u32("rvh,vcpus") == 2
    assert vm1.get_str("rvh,virt") == "hw"
    assert vm1.get_str("rvh,name") == "vm1"


def test_stats_page_layout_round_trips():
    import struct

    from rvh.hyp import (
        SBI_EXTENSIONS,
        STATS_COUNTERS,
        STATS_SBI,
        STATS_SCAUSE,
        STATS_SIZE,
        STATS_SLOT_WORDS,
        VM_COUNTERS,
        hyp_stats_header,
        read_stats,
    )

    words = [0] * (STATS_SIZE // 8)
    slot = 2 * STATS_SLOT_WORDS  # vm 2 only: 0 and 1 absent
    words[slot : slot + 3] = [2, (1 << 64) - 1, 0]  # shut down, status -1, hw
    words[slot + STATS_COUNTERS + VM_COUNTERS.index("ecall")] = 7
    words[slot + STATS_SBI + SBI_EXTENSIONS.index("DBCN")] = 5
    words[slot + STATS_SCAUSE + 22] = 3
    (vm,) = read_stats(struct.pack(f"<{len(words)}Q", *words))
    assert (vm.index, vm.state, vm.mode, vm.status) == (2, "shut down", "hw", -1)
    assert vm.counters["ecall"] == 7 and vm.sbi["DBCN"] == 5 and vm.scause == {22: 3}
    header = hyp_stats_header()
    assert f"#define HYP_STAT_ECALL                {STATS_COUNTERS + 1}" in header
    assert f"#define HYP_STAT_SBI          {STATS_SBI}" in header


def test_vm_devices_become_machine_devices_in_the_slots_the_machine_gives_them(tmp_path):
    # the machine numbers drives first, then NICs, from slot 7 down; VM devices follow the
    # native ones, and each VM's node lists its machine slots in its own device order
    config = MachineConfig(drives=["file=native.img"], netdevs=["hub,id=n"])
    specs = [
        GuestSpec.parse("a.elf,drive=a.img,netdev=h0"),
        GuestSpec.parse("b.elf,netdev=h0,drive=b1.img,readonly=on,drive=b2.img"),
    ]
    attach_vm_devices(config, specs)
    assert config.drives == [
        "file=native.img",
        "file=a.img,format=raw",
        "file=b1.img,format=raw,readonly=on",
        "file=b2.img,format=raw",
    ]
    assert config.netdevs == ["hub,id=n", "hub,id=h0", "hub,id=h0"]
    # drives 1..3 are slots 6..4; NICs 1 and 2 (machine devices 5, 6) are slots 2 and 1
    assert specs[0].machine_slots == [6, 2]
    assert specs[1].machine_slots == [5, 4, 1]


def test_a_vm_netdev_takes_a_native_socket_netdev_of_that_id():
    socket = "socket,id=up,udp=127.0.0.1:5001,localaddr=127.0.0.1:5000"
    config = MachineConfig(netdevs=[socket])
    spec = GuestSpec.parse("a.elf,netdev=up")
    attach_vm_devices(config, [spec])
    assert config.netdevs == [socket]  # no new NIC: the VM owns that one
    assert spec.machine_slots == [7]
    with pytest.raises(ConfigError, match="netdev=up: that socket has one VM already"):
        attach_vm_devices(MachineConfig(netdevs=[socket]), [spec, GuestSpec.parse("b,netdev=up")])


def test_more_devices_than_slots_is_one_line():
    spec = GuestSpec.parse("a.elf" + ",netdev=h" * 9)
    with pytest.raises(ConfigError, match="8 virtio-mmio slots; .* need 9"):
        attach_vm_devices(MachineConfig(), [spec])


def test_the_host_tree_names_each_vms_machine_slots():
    spec = GuestSpec.parse(f"{HELLO},netdev=h0")
    attach_vm_devices(MachineConfig(), [spec])
    plans = plan_vms([spec], 256 << 20, has_h=True)
    tree = DeviceTree()
    add_hypervisor_node(tree, plans)
    tree = parse_dtb(tree.to_dtb())
    assert tree["/hypervisor/vm@0"].props["rvh,virtio-slots"] == (7).to_bytes(4, "big")


def test_an_io_pv_vm_gets_machine_pv_devices_and_the_host_tree_names_them(tmp_path):
    disk = tmp_path / "d.img"
    disk.write_bytes(bytes(4096))
    config = MachineConfig(drives=[f"file={disk}"])  # a native virtio disk takes slot 7
    specs = [
        GuestSpec.parse(f"{HELLO},drive={disk},netdev=h0"),
        GuestSpec.parse(f"{HELLO},drive={disk},readonly=on,netdev=h1,io=pv"),
    ]
    attach_vm_devices(config, specs)
    assert config.drives[2].endswith(",readonly=on,if=pv")
    assert config.netdevs == ["hub,id=h0", "hub,id=h1,if=pv"]
    # virtio slots count the virtio devices only, pv devices are numbered apart
    assert specs[0].machine_slots == [6, 5] and specs[0].machine_pv_devices is None
    assert specs[1].machine_slots == [] and specs[1].machine_pv_devices == [0, 1]
    plans = plan_vms(specs, 256 << 20, has_h=True)
    tree = DeviceTree()
    add_hypervisor_node(tree, plans)
    vm = parse_dtb(tree.to_dtb())["/hypervisor/vm@1"]
    assert vm.props["rvh,pv-devices"] == bytes.fromhex("0000000000000001")
    assert vm.props["rvh,io"] == b"pv\0"
    assert "rvh,virtio-slots" not in vm.props
    # trap VMs may have the pv path too
    plan_vms([GuestSpec.parse(f"{HELLO},drive={disk},io=pv,virt=trap")], 256 << 20, has_h=True)


def test_a_vm_nic_gets_the_mac_given_after_it():
    config = MachineConfig()
    spec = GuestSpec.parse("a.elf,netdev=h0,netdev=h0,mac=52:54:00:00:00:07")
    assert spec.macs == {1: "52:54:00:00:00:07"}
    attach_vm_devices(config, [spec])
    assert config.netdevs == ["hub,id=h0", "hub,id=h0,mac=52:54:00:00:00:07"]
    socket = "socket,id=up,udp=127.0.0.1:5001,localaddr=127.0.0.1:5000"
    with pytest.raises(ConfigError, match="the socket's MAC is its --netdev's"):
        attach_vm_devices(
            MachineConfig(netdevs=[socket]), [GuestSpec.parse("a,netdev=up,mac=52:54:00:00:00:01")]
        )


@pytest.mark.parametrize("virt", ["trap", "pv"])
def test_trap_and_pv_vms_get_emulated_devices_but_not_passthrough(tmp_path, virt):
    disk = tmp_path / "d.img"
    disk.write_bytes(bytes(4096))
    plans = plan_vms(
        [GuestSpec.parse(f"{HELLO},virt={virt},drive={disk},netdev=h0")], 256 << 20, has_h=True
    )
    assert plans[0].spec.device_count == 2
    with pytest.raises(ConfigError, match="io=passthrough needs virt=hw: a .* VM has no G-stage"):
        spec = GuestSpec.parse(f"{HELLO},virt={virt},netdev=h0,io=passthrough")
        plan_vms([spec], 256 << 20, has_h=True)
    # on a hart without H the default mode is trap: passthrough is refused the same way
    with pytest.raises(ConfigError, match="io=passthrough needs virt=hw: a trap VM"):
        plan_vms([GuestSpec.parse(f"{HELLO},netdev=h0,io=passthrough")], 256 << 20, has_h=False)


def test_a_passthrough_vm_gets_the_iommu_and_its_node_says_so():
    config = MachineConfig()
    specs = [GuestSpec.parse(f"{HELLO},netdev=h0"), GuestSpec.parse(f"{HELLO},io=passthrough")]
    attach_vm_devices(config, specs)
    assert not config.iommu  # a passthrough VM without devices needs no IOMMU
    specs[1] = GuestSpec.parse(f"{HELLO},io=passthrough,netdev=h0")
    attach_vm_devices(config := MachineConfig(), specs)
    assert config.iommu
    tree = DeviceTree()
    add_hypervisor_node(tree, plan_vms(specs, 256 << 20, has_h=True))
    tree = parse_dtb(tree.to_dtb())
    assert tree["/hypervisor/vm@0"].get_str("rvh,io") == "emulated"
    assert tree["/hypervisor/vm@1"].get_str("rvh,io") == "passthrough"

"""Secondary harts from the host's side: images with the smp library boot
and exit normally with several harts. The in-kernel checks (IPIs, stacks,
TLB shootdown) run as ktest cases under 1, 2 and 4 harts (test_ktest.py)."""


def test_helloworld_with_four_harts_starts_them_and_exits_0(build, machine):
    image = build("helloworld", fragments=["configs/smp4.config"])
    assert "CONFIG_LIB_SMP=y" in image.config and "CONFIG_PLAT_HARTS=4" in image.config
    assert image.qemu["harts"] == 4
    m = machine(image).start()
    m.expect(r"smp: 4 harts online")
    m.expect(r"machine: .*, 4 hart\(s\)")
    m.expect(r"libraries: .*\bsmp\b")
    m.expect(r"Goodbye\.")
    assert m.wait_exit() == 0


def test_smp_library_on_one_hart_starts_nothing(build, machine):
    image = build("helloworld", extra=["CONFIG_LIB_SMP=y"])
    m = machine(image).start()
    m.expect(r"machine: .*, 1 hart\(s\)")
    m.expect(r"Goodbye\.")
    assert m.wait_exit() == 0
    assert "harts online" not in m.serial_text()


def test_harts_sent_to_the_kernel_entry_with_no_argument_still_check_in(build, machine):
    """OpenSBI 1.1 (QEMU 7.2's) publishes START_PENDING before it writes the
    start address and argument, so a hart finishing its warm boot at that
    moment leaves for the kernel's first address with the DTB in a1. One in
    ~150 four-hart boots on a loaded host lost a hart that way (it parked in
    _start and smp.start timed out). The test option starts every hart so,
    deliberately: each must find its start block by hart id, check in, and
    run the per-hart cases."""
    image = build("ktest", fragments=["configs/smp4.config"], extra=["CONFIG_SMP_START_AT_KERNEL_ENTRY=y"])
    m = machine(image, append="ktest.filter=smp.*").start()
    m.expect(r"smp: 4 harts online \(3 came in at the kernel entry: the firmware's start race\)", timeout=60)
    assert m.wait_exit(timeout=120) == 0

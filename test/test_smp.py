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

"""The default app boots, says hello, shows its configuration, exits 0."""
import re


def test_helloworld_banner_config_and_clean_exit(build, machine):
    image = build("helloworld")
    m = machine(image).start()
    m.expect(r"Hello from Tessera! app=helloworld")
    m.expect(r"libraries: base fdt klog\r?\n")
    m.expect(r"CONFIG_APP_NAME=helloworld")
    m.expect(r"Goodbye\.")
    assert m.wait_exit() == 0


def test_machine_shape_comes_from_the_device_tree(build, machine):
    """The same image adapts to -m/-smp: nothing about the machine is baked in."""
    image = build("helloworld")
    m = machine(image, extra_args=["-m", "256M", "-smp", "2"]).start()
    m.expect(r"machine: riscv-virtio,qemu, 2 hart\(s\), 256 MiB RAM, timebase 10000000 Hz, sstc")
    assert m.wait_exit() == 0


def test_timer_falls_back_to_sbi_without_sstc(build, machine):
    image = build("helloworld", fragments=["configs/nosstc.config"])
    m = machine(image).start()
    line = m.expect(r"machine: .*\r?\n").group(0).decode()
    assert "sstc" not in line
    assert m.wait_exit() == 0


def test_size_optimized_image_boots(build, machine):
    image = build("helloworld", fragments=["configs/size.config"])
    assert "CONFIG_OPTIMIZE_OS=y" in image.config
    m = machine(image).start()
    m.expect(r"CONFIG_OPTIMIZE_OS=y")
    assert m.wait_exit() == 0


def test_boot_reaches_main_quickly(build, machine):
    """A sanity bound only (the figure itself is in make bench): entry to
    main() within 100k instructions = 1000 ticks under -icount shift=0."""
    image = build("helloworld")
    m = machine(image, icount=True).start()
    ticks = int(m.expect(r"boot: (\d+) ticks from kernel entry to main").group(1))
    assert 0 < ticks < 1000
    assert m.wait_exit() == 0

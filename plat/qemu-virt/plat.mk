# plat/qemu-virt: devices found through the device tree.
SRCS-y += src/boot.cpp src/machine.cpp src/uart.cpp src/plic.cpp src/timer.cpp src/power.cpp
TESTS-y += tests/plat_test.cpp
USES += klog fdt

# Init steps run in a build-time sorted order (make boot-order). Each step
# `plat.x` calls tessera::plat::init_x().
INIT += plat.irq plat.timer plat.console_rx
INIT-AFTER-plat.console_rx := plat.irq

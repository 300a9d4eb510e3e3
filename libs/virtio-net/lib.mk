# libs/virtio-net: the virtio-net driver, registered as netdev interface eth0.
SRCS-y += src/virtio_net.cpp
TESTS-y += tests/virtio_net_test.cpp
USES += virtio netdev sched time
INIT += virtio_net.probe
INIT-AFTER-virtio_net.probe := sched.start plat.irq mm_buddy.memory ?mmu.enable

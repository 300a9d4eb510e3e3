# libs/virtio: virtio-mmio transport and split virtqueues.
SRCS-y += src/device.cpp src/queue.cpp
TESTS-y += tests/virtio_test.cpp
USES += mm-buddy

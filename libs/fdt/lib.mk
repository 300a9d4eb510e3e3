# libs/fdt: flattened device tree parser (Devicetree Specification v0.4, ch. 5).
SRCS-y += src/fdt.cpp
TESTS-y += tests/fdt_test.cpp

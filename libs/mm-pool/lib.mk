# libs/mm-pool: object pools, kmalloc, operator new/delete.
SRCS-y += src/pool.cpp src/kmalloc.cpp
TESTS-y += tests/pool_test.cpp tests/kmalloc_test.cpp
USES += mm-buddy

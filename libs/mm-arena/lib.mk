# libs/mm-arena: bump allocation, released all at once.
SRCS-y += src/arena.cpp
TESTS-y += tests/arena_test.cpp
USES += mm-buddy

# libs/mm-buddy: physical pages.
SRCS-y += src/buddy.cpp
TESTS-y += tests/buddy_test.cpp
INIT += mm_buddy.memory

# libs/base: the vocabulary types every component uses.
SRCS-y += src/runtime.cpp src/format.cpp src/error.cpp src/string.cpp
TESTS-y += tests/result_test.cpp tests/format_test.cpp tests/list_test.cpp \
           tests/string_test.cpp tests/runtime_test.cpp

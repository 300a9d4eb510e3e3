# libs/ubsan: -fsanitize=undefined for every object of the image, and the
# runtime its checks call.
#
# vptr is left out: it needs RTTI. Panic mode compiles the checks with
# -fno-sanitize-recover, so they call the noreturn _abort handlers and the
# code after a failed check need not be kept runnable (smaller).
KERNEL_CXXFLAGS-y += -fsanitize=undefined -fno-sanitize=vptr
KERNEL_CXXFLAGS-$(CONFIG_UBSAN_MODE_PANIC) += -fno-sanitize-recover=undefined

SRCS-y += src/handlers.cpp src/describe.cpp
TESTS-y += tests/ubsan_test.cpp

# The runtime must not check itself: a failed check in a handler would call
# the handler again.
CXXFLAGS-$(LIBDIR)/src/handlers.cpp := -fno-sanitize=all
CXXFLAGS-$(LIBDIR)/src/describe.cpp := -fno-sanitize=all

# libs/tcp: the TCP engine and its direct API.
SRCS-y += src/engine.cpp src/output.cpp src/input.cpp src/listen.cpp src/icmp_errors.cpp src/timers.cpp src/api.cpp src/segment.cpp src/congestion.cpp src/isn.cpp src/ranges.cpp src/syn_cookie.cpp
TESTS-y += tests/units_test.cpp tests/wire.cpp tests/tcp_test.cpp tests/fuzz_test.cpp tests/syn_cookie_test.cpp
USES += netdev ipv4 sched time sync lockdep fdt

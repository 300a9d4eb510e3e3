# libs/time: timer events, callouts, histograms.
SRCS-y += src/events.cpp src/callout.cpp src/histogram.cpp
TESTS-y += tests/events_test.cpp tests/callout_test.cpp tests/histogram_test.cpp
INIT += time.start
INIT-AFTER-time.start := plat.timer

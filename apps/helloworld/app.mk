SRCS-y += main.cpp

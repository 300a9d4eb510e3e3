SRCS-y += main.cpp
USES += mm-buddy mm-pool mm-arena mmu

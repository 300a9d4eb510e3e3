SRCS-y += main.cpp
USES += $(if $(filter y,$(CONFIG_LIB_UBSAN)),ubsan)

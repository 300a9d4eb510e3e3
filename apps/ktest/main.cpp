// Runs every registered in-kernel test and turns the verdict into the exit
// status (and so into QEMU's).
#include <ktest/ktest.hpp>

int main() { return tessera::ktest::main_from_boot_options(); }

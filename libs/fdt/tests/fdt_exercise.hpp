#pragma once
// Calls every query of the parser on every node of `blob` and returns the
// number of nodes. Shared by the in-kernel corruption test and the host
// ASan/UBSan driver (test/host/fdt_host.cpp): on a corrupt tree each call
// must return (an error or a value), never read out of bounds.
#include <fdt/fdt.hpp>

namespace tessera::fdt::testing {

inline unsigned exercise(const Blob& blob) {
    unsigned nodes = 0;
    (void)blob.walk([&](const Node& n, unsigned) {
        ++nodes;
        (void)n.reg(0);
        (void)n.reg(1);
        (void)n.phandle();
        (void)n.is_compatible("ns16550a");
        (void)n.for_each_property([](const Property& p) {
            (void)p.as_string();
            (void)p.as_u64();
            (void)p.name();
            return true;
        });
        (void)n.for_each_child([](const Node&) { return true; });
        return true;
    });
    (void)blob.walk_properties([](const Node&, unsigned, const Property& p) { return !p.name_is("x"); });
    (void)blob.find_path("/soc/serial");
    (void)blob.find_compatible("virtio,mmio");
    (void)blob.find_phandle(1);
    (void)blob.for_each_reservation([](const Region&) { return true; });
    return nodes;
}

} // namespace tessera::fdt::testing

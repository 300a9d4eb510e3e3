#include <cstring>
#include <fdt/fdt.hpp>
#include "fdt_exercise.hpp"
#include <klog/klog.hpp>
#include <ktest/ktest.hpp>
#include <plat/machine.hpp>

using namespace tessera;
using base::Error;
using fdt::testing::exercise;

namespace {

fdt::Blob boot_blob() { return fdt::Blob::from_address(plat::machine().dtb).value(); }

// A copy of the boot DTB to corrupt (QEMU's is about 4-8 KiB).
alignas(8) std::uint8_t g_copy[64 * 1024];

ktest::Random g_random(0x9e3779b97f4a7c15ull);
std::uint64_t next_random() { return g_random.next(); }

void put_be32(std::uint8_t* p, std::uint32_t v) {
    p[0] = std::uint8_t(v >> 24); p[1] = std::uint8_t(v >> 16); p[2] = std::uint8_t(v >> 8); p[3] = std::uint8_t(v);
}

} // namespace

KTEST(fdt, parses_boot_tree) {
    auto blob = fdt::Blob::from_address(plat::machine().dtb);
    ASSERT_OK(blob);
    auto root = blob.value().root();
    ASSERT_OK(root);
    EXPECT_EQ(root.value().name(), std::string_view(""));
    EXPECT_EQ(root.value().child_address_cells(), 2u);
    auto cpus = blob.value().find_path("/cpus");
    ASSERT_OK(cpus);
    EXPECT_EQ(cpus.value().property("timebase-frequency").value().as_u32().value(), 10000000u);
    auto uart = blob.value().find_compatible("ns16550a");
    ASSERT_OK(uart);
    EXPECT_EQ(uart.value().reg().value().base, 0x10000000u);
    EXPECT_EQ(uart.value().reg().value().size, 0x100u);
    EXPECT_ERROR(uart.value().reg(1), Error::OutOfRange);
    // Unit-address-less lookup: "serial" matches "serial@10000000".
    EXPECT_EQ(blob.value().find_path("/soc/serial").value().offset(), uart.value().offset());
    EXPECT_ERROR(blob.value().find_path("/soc/nonexistent"), Error::NotFound);
    EXPECT_ERROR(blob.value().find_compatible("no,such-device"), Error::NotFound);
}

KTEST(fdt, phandles_and_string_lists) {
    fdt::Blob blob = boot_blob();
    auto plic = blob.find_compatible("riscv,plic0");
    ASSERT_OK(plic);
    auto ph = plic.value().phandle();
    ASSERT_OK(ph);
    EXPECT_EQ(blob.find_phandle(ph.value()).value().offset(), plic.value().offset());
    auto compat = plic.value().property("compatible");
    ASSERT_OK(compat);
    EXPECT_TRUE(compat.value().contains_string("riscv,plic0"));
    EXPECT_FALSE(compat.value().contains_string("riscv,plic"));
    unsigned slots = 0;
    const fdt::Node* cursor = nullptr;
    fdt::Node n;
    while (true) {
        auto next = blob.find_compatible("virtio,mmio", cursor);
        if (!next.ok()) break;
        n = next.value();
        cursor = &n;
        ++slots;
    }
    EXPECT_EQ(slots, 8u);
}

KTEST(fdt, rejects_bad_headers) {
    fdt::Blob blob = boot_blob();
    std::size_t size = blob.total_size();
    ASSERT_LE(size, sizeof(g_copy));
    memcpy(g_copy, plat::machine().dtb, size);
    EXPECT_OK(fdt::Blob::from_bytes({g_copy, size}));
    EXPECT_ERROR(fdt::Blob::from_bytes({g_copy, 39}), Error::Malformed);   // shorter than a header
    EXPECT_ERROR(fdt::Blob::from_bytes({g_copy, size - 1}), Error::Malformed); // totalsize lies
    g_copy[0] ^= 0xff;                                                     // magic
    EXPECT_ERROR(fdt::Blob::from_bytes({g_copy, size}), Error::Malformed);
    g_copy[0] ^= 0xff;
    put_be32(g_copy + 8, 0xfffffff0);                                      // struct offset past the end
    EXPECT_ERROR(fdt::Blob::from_bytes({g_copy, size}), Error::Malformed);
    memcpy(g_copy, plat::machine().dtb, size);
    put_be32(g_copy + 20, 15);                                              // version too old
    EXPECT_ERROR(fdt::Blob::from_bytes({g_copy, size}), Error::NotSupported);
    EXPECT_ERROR(fdt::Blob::from_address(nullptr), Error::InvalidArgument);
    // Regression: a version-16 header (no struct size) whose struct offset
    // lies past totalsize once made the computed size wrap around.
    memcpy(g_copy, plat::machine().dtb, size);
    put_be32(g_copy + 20, 16);
    put_be32(g_copy + 8, static_cast<std::uint32_t>(size + 64));
    EXPECT_ERROR(fdt::Blob::from_bytes({g_copy, size}), Error::Malformed);
    put_be32(g_copy + 8, static_cast<std::uint32_t>(size));
    auto empty = fdt::Blob::from_bytes({g_copy, size}); // struct block of size 0
    if (empty.ok()) EXPECT_ERROR(empty.value().root(), Error::Malformed);
}

KTEST(fdt, survives_random_corruption) {
    fdt::Blob good = boot_blob();
    std::size_t size = good.total_size();
    ASSERT_LE(size, sizeof(g_copy));
    unsigned expected_nodes = exercise(good);
    EXPECT_GT(expected_nodes, 20u);
    unsigned parsed = 0, rejected = 0;
    for (unsigned round = 0; round < 1500; ++round) {
        memcpy(g_copy, plat::machine().dtb, size);
        unsigned flips = 1 + next_random() % 4;
        for (unsigned f = 0; f < flips; ++f) {
            std::size_t at = next_random() % size;
            // Half the time write a "dangerous" value (huge length/offset).
            g_copy[at] = (next_random() & 1) ? std::uint8_t(next_random()) : 0xff;
        }
        auto blob = fdt::Blob::from_bytes({g_copy, size});
        if (!blob.ok()) {
            ++rejected;
            continue;
        }
        exercise(blob.value()); // must return, whatever it finds
        ++parsed;
    }
    klog::print("        # corrupted trees: {} parsed, {} rejected at the header\n", parsed, rejected);
    EXPECT_EQ(parsed + rejected, 1500u);
}

KTEST(fdt, excessive_nesting_is_malformed) {
    // Header + 40 nested BEGIN_NODE tokens with empty names, no END.
    alignas(8) static std::uint8_t blob[40 + 16 + 8 * 40 + 8];
    memset(blob, 0, sizeof(blob));
    std::uint32_t off_struct = 56, size_struct = 8 * 40 + 4;
    put_be32(blob + 0, 0xd00dfeed);
    put_be32(blob + 4, sizeof(blob));
    put_be32(blob + 8, off_struct);
    put_be32(blob + 12, off_struct + size_struct); // empty strings block at the end
    put_be32(blob + 16, 40);
    put_be32(blob + 20, 17);
    put_be32(blob + 24, 16);
    put_be32(blob + 32, 0);
    put_be32(blob + 36, size_struct);
    for (unsigned i = 0; i < 40; ++i) put_be32(blob + off_struct + 8 * i, 1); // BEGIN_NODE, name ""
    put_be32(blob + off_struct + 8 * 40, 9);
    auto parsed = fdt::Blob::from_bytes(blob);
    ASSERT_OK(parsed);
    EXPECT_ERROR(parsed.value().walk([](const fdt::Node&, unsigned) { return true; }), Error::Malformed);
}

KTEST(fdt, default_node_is_inert) {
    fdt::Node none;
    EXPECT_ERROR(none.property("reg"), Error::InvalidArgument);
    EXPECT_ERROR(none.reg(), Error::InvalidArgument);
    EXPECT_ERROR(none.phandle(), Error::NotFound);
    EXPECT_FALSE(none.is_compatible("x"));
    EXPECT_EQ(none.child_address_cells(), 2u);
    EXPECT_ERROR(none.for_each_child([](const fdt::Node&) { return true; }), Error::InvalidArgument);
    EXPECT_ERROR(none.for_each_property([](const fdt::Property&) { return true; }), Error::InvalidArgument);
}

// Host driver for the FDT parser: parses a DTB file, walks it, and (with
// --mutate N) parses N randomly corrupted copies. Under ASan/UBSan any
// out-of-bounds read in the parser aborts the run.
#include <fdt/fdt.hpp>
#include "fdt_exercise.hpp"
#include <cstdio>
#include <cstdlib>
#include <string>
#include <cstring>
#include <vector>

using namespace tessera;
using fdt::testing::exercise;

int main(int argc, char** argv) {
    if (argc < 2) { std::fprintf(stderr, "usage: fdt_host file.dtb [--mutate N | --walk-only N]\n"); return 2; }
    std::FILE* f = std::fopen(argv[1], "rb");
    if (!f) { std::perror(argv[1]); return 2; }
    std::vector<std::uint8_t> bytes;
    std::uint8_t buf[65536];
    std::size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) bytes.insert(bytes.end(), buf, buf + n);
    std::fclose(f);
    auto blob = fdt::Blob::from_bytes(bytes);
    if (!blob.ok()) { std::printf("rejected: %s\n", std::string(base::error_name(blob.error())).c_str()); return 1; }
    if (argc == 4 && std::strcmp(argv[2], "--walk-only") == 0) {
        unsigned nodes = 0;
        for (int i = 0; i < std::atoi(argv[3]); ++i)
            (void)blob.value().walk([&](const fdt::Node&, unsigned) { ++nodes; return true; });
        std::printf("nodes %u\n", nodes);
        return 0;
    }
    std::printf("nodes %u\n", exercise(blob.value()));
    if (argc == 4 && std::strcmp(argv[2], "--mutate") == 0) {
        std::uint64_t seed = 12345;
        auto rnd = [&] { seed ^= seed << 13; seed ^= seed >> 7; seed ^= seed << 17; return seed; };
        std::size_t used = 0x2000 < bytes.size() ? 0x2000 : bytes.size(); // the populated part
        unsigned parsed = 0;
        for (int round = 0; round < std::atoi(argv[3]); ++round) {
            std::vector<std::uint8_t> copy = bytes;
            for (int k = 0, flips = 1 + rnd() % 6; k < flips; ++k) copy[rnd() % used] = std::uint8_t(rnd());
            // Every fourth mutant is a version-16 blob (no struct size in the
            // header), whose block bounds are derived differently.
            if (round % 4 == 0) copy[23] = 16;
            auto b = fdt::Blob::from_bytes(copy);
            if (b.ok()) { exercise(b.value()); ++parsed; }
        }
        std::printf("mutated: %u parsed\n", parsed);
    }
    return 0;
}

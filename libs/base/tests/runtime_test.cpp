#include <cstring>
#include <ktest/ktest.hpp>

namespace {
// Compare against a byte-by-byte reference over every small alignment and
// length combination, where word-at-a-time fast paths go wrong.
alignas(8) unsigned char g_src[160], g_dst[160], g_ref[160];

void fill(unsigned char* p, std::size_t n, unsigned seed) {
    for (std::size_t i = 0; i < n; ++i) p[i] = static_cast<unsigned char>(seed * 31 + i * 7);
}

int g_constructed = 0;
int make_value() { return ++g_constructed; }
int& function_static() {
    static int value = make_value(); // guard variable path
    return value;
}
} // namespace

KTEST(base_runtime, memcpy_memmove_memset_all_alignments) {
    // Lengths past 32 + 7 reach the unrolled aligned loop and the merge
    // loop's last word at every source alignment.
    for (std::size_t so = 0; so < 8; ++so)
        for (std::size_t dof = 0; dof < 8; ++dof)
            for (std::size_t n = 0; n < 140; ++n) {
                fill(g_src, sizeof(g_src), unsigned(so + n));
                fill(g_dst, sizeof(g_dst), 99);
                fill(g_ref, sizeof(g_ref), 99);
                for (std::size_t i = 0; i < n; ++i) g_ref[dof + i] = g_src[so + i];
                memcpy(g_dst + dof, g_src + so, n);
                ASSERT_EQ(memcmp(g_dst, g_ref, sizeof(g_dst)), 0);
            }
    // Overlapping moves in both directions.
    for (std::size_t shift = 1; shift < 12; ++shift) {
        fill(g_dst, sizeof(g_dst), 5);
        fill(g_ref, sizeof(g_ref), 5);
        memmove(g_dst + shift, g_dst, 50);
        for (std::size_t i = 50; i-- > 0;) g_ref[shift + i] = g_ref[i];
        ASSERT_EQ(memcmp(g_dst, g_ref, sizeof(g_dst)), 0);
        memmove(g_dst, g_dst + shift, 50);
        for (std::size_t i = 0; i < 50; ++i) g_ref[i] = g_ref[shift + i];
        ASSERT_EQ(memcmp(g_dst, g_ref, sizeof(g_dst)), 0);
    }
    for (std::size_t o = 0; o < 8; ++o)
        for (std::size_t n = 0; n < 40; ++n) {
            fill(g_dst, sizeof(g_dst), 1);
            fill(g_ref, sizeof(g_ref), 1);
            for (std::size_t i = 0; i < n; ++i) g_ref[o + i] = 0xA5;
            memset(g_dst + o, 0xA5, n);
            ASSERT_EQ(memcmp(g_dst, g_ref, sizeof(g_dst)), 0);
        }
}

KTEST(base_runtime, strings_and_compare) {
    EXPECT_EQ(strlen(""), 0u);
    EXPECT_EQ(strlen("tessera"), 7u);
    EXPECT_LT(memcmp("abc", "abd", 3), 0);
    EXPECT_GT(strcmp("b", "a"), 0);
    EXPECT_EQ(strcmp("same", "same"), 0);
    const char* hay = "kernel";
    EXPECT_EQ(static_cast<const char*>(memchr(hay, 'n', 6)), hay + 3);
    EXPECT_EQ(memchr(hay, 'z', 6), nullptr);
}

KTEST(base_runtime, function_local_static_initialized_once) {
    int first = function_static();
    EXPECT_EQ(function_static(), first);
    EXPECT_EQ(g_constructed, 1);
}

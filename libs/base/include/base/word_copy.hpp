#pragma once
// A byte copy done a word at a time at any relative alignment of source
// and destination, with a hook that sees every byte and word as it is
// stored: memcpy passes no-op hooks, and the Internet checksum folds its
// sum into the same pass (ipv4::checksum_copy), so a payload is read once.
//
// Packet payloads sit at odd offsets behind their headers, so the
// unaligned case is the common one. The destination is aligned first;
// a source at another alignment is merged from the two aligned words that
// hold each destination word. Every load is an aligned word holding at
// least one source byte, so none reaches into a page the source does not
// touch. Little-endian (RISC-V): earlier bytes are the low ones.
#include <cstddef>
#include <cstdint>

// For the functions built on these loops that run over every byte of
// every packet (memcpy, the Internet checksums). Under QEMU's TCG a
// translated block jumps straight to the next one only within one 4 KiB
// page; across a page each pass of a loop costs a lookup of the next
// block. One build with more inlining put checksum_copy's loop across a
// page boundary: 89 more lookups per 1,448-byte segment sent. The linker
// script keeps this section within one page (and fails the link if it
// outgrows it).
#define HOT_LOOP [[gnu::section(".text.hot_loop")]]

namespace tessera::base {

// Word access to byte buffers: may_alias keeps it legal whatever the
// buffers hold.
using Word [[gnu::may_alias]] = std::uint64_t;
inline constexpr std::uintptr_t kWordMask = sizeof(Word) - 1;

// Copies n bytes from s to d (not overlapping). on_byte(unsigned char)
// is called for each byte copied singly and on_word(Word) for each word,
// in address order. Short copies go bytewise: aligning costs more than
// it saves there.
template <typename OnByte, typename OnWord>
inline void copy_words(unsigned char* __restrict d, const unsigned char* __restrict s, std::size_t n,
                       OnByte&& on_byte, OnWord&& on_word) {
    if (n >= 16) {
        for (; reinterpret_cast<std::uintptr_t>(d) & kWordMask; --n) {
            on_byte(*s);
            *d++ = *s++;
        }
        auto* dw = reinterpret_cast<Word*>(d);
        const std::uintptr_t offset = reinterpret_cast<std::uintptr_t>(s) & kWordMask;
        if (offset == 0) {
            auto* sw = reinterpret_cast<const Word*>(s);
            for (; n >= 32; n -= 32, dw += 4, sw += 4) {
                Word a = sw[0], b = sw[1], c = sw[2], e = sw[3];
                dw[0] = a, dw[1] = b, dw[2] = c, dw[3] = e;
                on_word(a), on_word(b), on_word(c), on_word(e);
            }
            for (; n >= 8; n -= 8) {
                Word w = *sw++;
                *dw++ = w;
                on_word(w);
            }
            s = reinterpret_cast<const unsigned char*>(sw);
        } else {
            const unsigned right = static_cast<unsigned>(offset) * 8, left = 64 - right;
            auto* sw = reinterpret_cast<const Word*>(s - offset);
            Word low = *sw++;
            for (; n >= 32; n -= 32, dw += 4, sw += 4) {
                Word w0 = sw[0], w1 = sw[1], w2 = sw[2], w3 = sw[3];
                Word a = low >> right | w0 << left, b = w0 >> right | w1 << left;
                Word c = w1 >> right | w2 << left, e = w2 >> right | w3 << left;
                dw[0] = a, dw[1] = b, dw[2] = c, dw[3] = e;
                on_word(a), on_word(b), on_word(c), on_word(e);
                low = w3;
            }
            for (; n >= 8; n -= 8) {
                Word high = *sw++;
                Word w = low >> right | high << left;
                *dw++ = w;
                on_word(w);
                low = high;
            }
            s = reinterpret_cast<const unsigned char*>(sw) - sizeof(Word) + offset;
        }
        d = reinterpret_cast<unsigned char*>(dw);
    }
    for (; n; --n) {
        on_byte(*s);
        *d++ = *s++;
    }
}

} // namespace tessera::base

#pragma once
// The wire the TCP ktests run their connections over (ktest only). Both
// ends live in this image: the engine's output hook carries every segment
// through a queue to the network thread, which hands it back with
// inject(). The test controls it: drop, hold and release later, refuse as
// a full driver queue would, corrupt, craft. The client is 10.9.0.1, the
// server 10.9.0.2; both connections live in the one connection table.
// One wire per image: cases use it one at a time (Net).
#include <arch/spinlock.hpp>
#include <base/verify.hpp>
#include <cstring>
#include <netdev/interface.hpp>
#include <netdev/packet.hpp>
#include <span>
#include <tcp/segment.hpp>
#include <tcp/tcp.hpp>
#include <time/time.hpp>

namespace tessera::tcp::test_wire {

inline constexpr ipv4::Address kClient = ipv4::Address::from(10, 9, 0, 1);
inline constexpr ipv4::Address kServer = ipv4::Address::from(10, 9, 0, 2);
inline constexpr std::uint16_t kPort = 7000;

// Pass: delivered. Drop: lost on the wire. Hold: kept until
// release_held(). Full: refused as a full driver queue would (Overloaded).
enum class Verdict { Pass, Drop, Hold, Full };

struct Wire {
    arch::Spinlock lock;
    netdev::Packet* head = nullptr;
    netdev::Packet* tail = nullptr;
    netdev::Packet* held = nullptr; // held back, released by release_held()
    netdev::Work work{};
    // Called for each segment (under the TCP lock); may modify it.
    Verdict (*filter)(Segment& s, ipv4::Address src, ipv4::Address dst, void* ctx) = nullptr;
    void* filter_context = nullptr;
    // What the last segment client->server carried (for crafting).
    Seq client_next, server_next;
    std::uint32_t segments = 0;
};
extern Wire g_wire;

// Hands every held segment to the wire, in no particular order.
void release_held();

[[nodiscard]] time::Ticks in_ms(std::uint64_t ms);

// Per-case setup and teardown: the wire, a listener, and the pool check
// (no packet leaked once every connection is gone).
class Net {
public:
    Net();
    ~Net();
    Listener* listen(unsigned backlog = 4);
    // A listener on kPort and an established pair of connections to it.
    bool open(Connection*& client, Connection*& server);
    // The same, then `bytes` sent client to server so that the client's
    // congestion window has grown past slow start's first flights.
    bool open_warm(Connection*& client, Connection*& server, std::uint32_t bytes);
    std::uint32_t free_at_start() const { return m_free_at_start; }

private:
    Listener* m_listener = nullptr;
    std::uint32_t m_free_at_start;
};

// Connects from the client's address (with `o`'s other options), giving
// up after 5 s.
base::Result<Connection*> dial(std::uint16_t port = kPort, ConnectOptions o = {});
// Connects and accepts: client and server ends.
bool open_pair(Listener* l, Connection*& client, Connection*& server, const ConnectOptions& o = {});

// A byte pattern that shows where in a stream a byte belongs.
void fill_pattern(std::span<std::byte> b, std::uint32_t start);
[[nodiscard]] bool check_pattern(std::span<const std::byte> b, std::uint32_t start);

extern std::byte g_out[8192];
extern std::byte g_in[8192];

// Sends `total` pattern bytes from `from` while reading them at `to`
// (one thread: non-blocking sends interleaved with blocking receives),
// checking each byte's place. `between`, if given, runs after every send
// attempt: a case's chance to act while data is in flight.
bool transfer(Connection* from, Connection* to, std::uint32_t total, time::Ticks deadline,
              void (*between)(void*) = nullptr, void* context = nullptr);

// Builds `seg` with `payload` behind it, fills the checksum, lets
// `mutate` damage the bytes (it must refill the checksum itself if it wants
// one), and hands the result to the engine as if ipv4 delivered it.
template <typename Mutate>
void inject_crafted(const Segment& seg, std::span<const std::byte> payload, ipv4::Address from, ipv4::Address to,
                    Mutate mutate) {
    auto p = netdev::allocate();
    VERIFY(p.ok());
    std::size_t header = kHeaderLength + options_length(seg.options);
    std::byte* out = p.value()->put(header + payload.size());
    VERIFY(out);
    build(seg, {out, header});
    if (!payload.empty()) std::memcpy(out + header, payload.data(), payload.size()); // data() may be null
    fill_checksum(from.value, to.value, {out, header + payload.size()});
    mutate(out);
    inject(from, to, std::move(p.value()));
}

// What the client would send next from `client_port` (SEQ its next, ACK
// the server's next), for cases that forge it and then alter a field.
[[nodiscard]] Segment next_from_client(std::uint16_t client_port, std::uint8_t flags);

// A SYN from client_port with ISN `isn` and options `o`, as a peer the
// test plays would send it (window 65535, no payload).
[[nodiscard]] Segment syn_from(std::uint16_t client_port, Seq isn, const Options& o);

// A bare segment from `from` to the server's port.
void inject_to_server(std::uint16_t client_port, Seq seq, Seq ack, std::uint8_t flags,
                      std::uint16_t window = 1000, ipv4::Address from = kClient);

} // namespace tessera::tcp::test_wire

// Devicetree Specification v0.4, chapter 5 ("Flattened Devicetree (DTB)
// Format"): a 40-byte big-endian header, a memory reservation block, a
// structure block of 4-byte-aligned tokens and a strings block.
#include <fdt/fdt.hpp>

namespace tessera::fdt {

namespace {

constexpr std::uint32_t kMagic = 0xd00dfeed;
constexpr std::uint32_t kHeaderSize = 40;
constexpr unsigned kMaxDepth = 32;     // deeper trees are treated as corrupt
constexpr unsigned kMaxReservations = 256;

std::uint32_t be32(const std::uint8_t* p) {
    return (std::uint32_t(p[0]) << 24) | (std::uint32_t(p[1]) << 16) | (std::uint32_t(p[2]) << 8) | p[3];
}

std::uint64_t be64(const std::uint8_t* p) { return (std::uint64_t(be32(p)) << 32) | be32(p + 4); }

constexpr std::uint64_t align4(std::uint64_t v) { return (v + 3) & ~std::uint64_t(3); }

// Length of the NUL-terminated string at p[0..max), or max if unterminated.
std::size_t bounded_strlen(const std::uint8_t* p, std::size_t max) {
    std::size_t i = 0;
    while (i < max && p[i] != 0) ++i;
    return i;
}

// Header field offsets (spec 5.2).
enum HeaderField : std::uint32_t {
    Magic = 0, TotalSize = 4, OffStruct = 8, OffStrings = 12, OffRsvmap = 16, Version = 20,
    LastCompVersion = 24, BootCpu = 28, SizeStrings = 32, SizeStruct = 36,
};

} // namespace

std::string_view Property::name() const { return name_chars ? std::string_view(name_chars) : std::string_view(); }

bool Property::name_is(std::string_view s) const {
    if (!name_chars) return s.empty();
    // Safe to read up to the NUL: Blob::from_bytes checked that the strings
    // block ends with one.
    std::size_t i = 0;
    for (; i < s.size(); ++i)
        if (name_chars[i] != s[i] || name_chars[i] == 0) return false;
    return name_chars[i] == 0;
}

Result<std::uint32_t> Property::as_u32() const {
    if (value.size() != 4) return Error::Malformed;
    return be32(value.data());
}

Result<std::uint64_t> Property::as_u64() const {
    if (value.size() == 4) return std::uint64_t(be32(value.data()));
    if (value.size() == 8) return be64(value.data());
    return Error::Malformed;
}

Result<std::string_view> Property::as_string() const {
    std::size_t n = bounded_strlen(value.data(), value.size());
    if (n == value.size()) return Error::Malformed;
    return std::string_view(reinterpret_cast<const char*>(value.data()), n);
}

Result<std::size_t> Property::match_string(std::span<const std::string_view> candidates) const {
    const auto* text = reinterpret_cast<const char*>(value.data());
    for (std::size_t i = 0; i < value.size();) {
        std::size_t n = bounded_strlen(value.data() + i, value.size() - i);
        if (i + n == value.size()) break; // unterminated tail: ignore
        std::string_view item(text + i, n);
        for (std::size_t k = 0; k < candidates.size(); ++k)
            if (item == candidates[k]) return k;
        i += n + 1;
    }
    return Error::NotFound;
}

bool Property::contains_string(std::string_view s) const { return match_string({&s, 1}).ok(); }

Result<std::uint32_t> Property::cell(std::size_t n) const {
    if (n >= cell_count()) return Error::OutOfRange;
    return be32(value.data() + 4 * n);
}

Result<Blob> Blob::from_address(const void* address, std::size_t limit) {
    if (address == nullptr || reinterpret_cast<std::uintptr_t>(address) % 8 != 0) return Error::InvalidArgument;
    if (limit < kHeaderSize) return Error::Malformed;
    auto* p = static_cast<const std::uint8_t*>(address);
    if (be32(p + Magic) != kMagic) return Error::Malformed;
    std::uint32_t total = be32(p + TotalSize);
    if (total > limit) return Error::Malformed;
    return from_bytes({p, total});
}

Result<Blob> Blob::from_bytes(std::span<const std::uint8_t> bytes) {
    if (bytes.size() < kHeaderSize) return Error::Malformed;
    const std::uint8_t* h = bytes.data();
    if (be32(h + Magic) != kMagic) return Error::Malformed;
    std::uint64_t total = be32(h + TotalSize);
    if (total < kHeaderSize || total > bytes.size()) return Error::Malformed;
    std::uint32_t version = be32(h + Version);
    if (version < 16 || be32(h + LastCompVersion) > 17) return Error::NotSupported;
    std::uint64_t off_struct = be32(h + OffStruct);
    std::uint64_t off_strings = be32(h + OffStrings);
    std::uint64_t size_strings = be32(h + SizeStrings);
    if (off_struct > total) return Error::Malformed; // also guards the v16 subtraction below
    // Version 16 headers have no struct size: the block runs to the end of
    // the blob (rounded down to whole tokens).
    std::uint64_t size_struct = version >= 17 ? be32(h + SizeStruct) : (total - off_struct) & ~std::uint64_t(3);
    std::uint64_t rsvmap = be32(h + OffRsvmap);
    if (off_struct % 4 || off_struct + size_struct > total || size_struct % 4) return Error::Malformed;
    if (off_strings + size_strings > total) return Error::Malformed;
    // Every property name is then NUL-terminated inside the block, which
    // lets names be compared in place without measuring them first.
    if (size_strings > 0 && bytes[off_strings + size_strings - 1] != 0) return Error::Malformed;
    if (rsvmap % 8 || rsvmap + 16 > total) return Error::Malformed;
    Blob blob;
    blob.m_bytes = bytes.first(total);
    blob.m_struct = bytes.subspan(off_struct, size_struct);
    blob.m_strings = bytes.subspan(off_strings, size_strings);
    blob.m_rsvmap = static_cast<std::uint32_t>(rsvmap);
    return blob;
}

bool Blob::step(std::uint32_t offset, Cursor& c) const {
    std::uint64_t size = m_struct.size();
    if (offset % 4 || std::uint64_t(offset) + 4 > size) return false;
    const std::uint8_t* p = m_struct.data();
    c.token = static_cast<Token>(be32(p + offset));
    c.offset = offset;
    c.next = offset + 4;
    switch (c.token) {
    case Token::BeginNode: {
        std::uint64_t i = offset + 4 + bounded_strlen(p + offset + 4, size - offset - 4);
        if (i >= size) return false;
        c.name = std::string_view(reinterpret_cast<const char*>(p) + offset + 4, i - offset - 4);
        c.next = static_cast<std::uint32_t>(align4(i + 1));
        break;
    }
    case Token::Prop: {
        if (std::uint64_t(offset) + 12 > size) return false;
        std::uint64_t len = be32(p + offset + 4);
        if (offset + 12 + len > size) return false;
        std::uint32_t name_offset = be32(p + offset + 8);
        if (name_offset >= m_strings.size()) return false;
        c.prop_name = reinterpret_cast<const char*>(m_strings.data()) + name_offset;
        c.value = {p + offset + 12, static_cast<std::size_t>(len)};
        c.next = static_cast<std::uint32_t>(align4(offset + 12 + len));
        break;
    }
    case Token::EndNode:
    case Token::Nop:
    case Token::End:
        break;
    default:
        return false;
    }
    return c.next <= size || c.token == Token::End;
}

Result<Node> Blob::make_node(std::uint32_t offset, std::uint32_t parent_body) const {
    Cursor c;
    if (!step(offset, c) || c.token != Token::BeginNode) return Error::Malformed;
    Node n;
    n.m_blob = this;
    n.m_offset = offset;
    n.m_body = c.next;
    n.m_name = c.name;
    n.m_parent_body = parent_body;
    return n;
}

void Blob::cells_at(std::uint32_t body, std::uint32_t& address_cells, std::uint32_t& size_cells) const {
    address_cells = 2;
    size_cells = 1;
    // Values above 4 are clamped; reg() rejects anything above 2 anyway.
    auto clamp = [](const std::span<const std::uint8_t>& v, std::uint32_t fallback) {
        if (v.size() != 4) return fallback;
        std::uint32_t x = be32(v.data());
        return x <= 4 ? x : 4u;
    };
    Cursor c;
    for (std::uint32_t offset = body; step(offset, c); offset = c.next) {
        if (c.token == Token::Prop) {
            Property prop{c.value, c.prop_name};
            if (prop.name_is("#address-cells")) address_cells = clamp(c.value, 2);
            else if (prop.name_is("#size-cells")) size_cells = clamp(c.value, 1);
        } else if (c.token != Token::Nop) {
            return;
        }
    }
}

Result<Node> Blob::root() const {
    std::uint32_t offset = 0;
    for (;;) { // skip leading NOPs
        Cursor c;
        if (!step(offset, c)) return Error::Malformed;
        if (c.token == Token::BeginNode) return make_node(offset, Node::kNoParent);
        if (c.token != Token::Nop) return Error::Malformed;
        offset = c.next;
    }
}

Result<void> Blob::walk_impl(void* ctx, VisitNode visit, VisitNodeProp visit_prop) const {
    std::uint32_t parents[kMaxDepth + 1]; // body offsets of the open nodes
    parents[0] = Node::kNoParent;
    unsigned depth = 0;
    Node current;
    std::uint32_t offset = 0;
    Cursor c;
    for (;;) {
        if (!step(offset, c)) return Error::Malformed;
        switch (c.token) {
        case Token::BeginNode: {
            if (depth >= kMaxDepth) return Error::Malformed;
            // Built from the token just read: no second parse of the name.
            current.m_blob = this;
            current.m_offset = c.offset;
            current.m_body = c.next;
            current.m_name = c.name;
            current.m_parent_body = parents[depth];
            parents[depth + 1] = c.next;
            if (visit && !visit(ctx, current, depth)) return {};
            ++depth;
            break;
        }
        case Token::Prop:
            if (depth == 0) return Error::Malformed; // a property outside any node
            if (visit_prop && !visit_prop(ctx, current, depth - 1, Property{c.value, c.prop_name})) return {};
            break;
        case Token::EndNode:
            if (depth == 0) return Error::Malformed;
            --depth;
            break;
        case Token::End:
            return depth == 0 ? Result<void>() : Result<void>(Error::Malformed);
        default:
            break;
        }
        offset = c.next; // strictly increasing: the walk always terminates
    }
}

Result<void> Blob::properties_impl(const Node& node, void* ctx, VisitProp visit) const {
    std::uint32_t offset = node.m_body;
    Cursor c;
    for (;;) {
        if (!step(offset, c)) return Error::Malformed;
        if (c.token == Token::Prop) {
            if (!visit(ctx, Property{c.value, c.prop_name})) return {};
        } else if (c.token != Token::Nop) {
            return {}; // properties come before subnodes (spec 5.4.2)
        }
        offset = c.next;
    }
}

Result<void> Blob::children_impl(const Node& node, void* ctx, VisitNode visit) const {
    unsigned depth = 0;
    std::uint32_t offset = node.m_body;
    Cursor c;
    for (;;) {
        if (!step(offset, c)) return Error::Malformed;
        switch (c.token) {
        case Token::BeginNode:
            if (depth == 0) {
                Node child = TRY(make_node(offset, node.m_body));
                if (!visit(ctx, child, 0)) return {};
            }
            if (++depth > kMaxDepth) return Error::Malformed;
            break;
        case Token::EndNode:
            if (depth == 0) return {}; // end of `node` itself
            --depth;
            break;
        case Token::End:
            return Error::Malformed;
        default:
            break;
        }
        offset = c.next;
    }
}

Result<void> Blob::reservations_impl(void* ctx, bool (*visit)(void*, const Region&)) const {
    for (unsigned i = 0; i < kMaxReservations; ++i) {
        std::uint64_t at = m_rsvmap + 16ull * i;
        if (at + 16 > m_bytes.size()) return Error::Malformed;
        Region r{be64(m_bytes.data() + at), be64(m_bytes.data() + at + 8)};
        if (r.base == 0 && r.size == 0) return {};
        if (!visit(ctx, r)) return {};
    }
    return Error::Malformed;
}

Result<Node> Blob::find_path(std::string_view path) const {
    Node node = TRY(root());
    if (path.empty() || path[0] != '/') return Error::InvalidArgument;
    path.remove_prefix(1);
    while (!path.empty()) {
        std::size_t slash = path.find('/');
        std::string_view part = path.substr(0, slash);
        path = slash == std::string_view::npos ? std::string_view{} : path.substr(slash + 1);
        if (part.empty()) continue;
        bool found = false;
        Node match;
        TRY(node.for_each_child([&](const Node& child) {
            std::string_view name = child.name();
            bool hit = name == part ||
                       (part.find('@') == std::string_view::npos && name.size() > part.size() &&
                        name.substr(0, part.size()) == part && name[part.size()] == '@');
            if (hit) { match = child; found = true; }
            return !hit;
        }));
        if (!found) return Error::NotFound;
        node = match;
    }
    return node;
}

Result<Node> Blob::find_compatible(std::string_view compatible, const Node* after) const {
    std::uint32_t start = after ? after->m_offset : 0;
    bool skipping = after != nullptr;
    Node match;
    bool found = false;
    TRY(walk([&](const Node& n, unsigned) {
        if (skipping) {
            skipping = n.offset() <= start;
            if (skipping) return true;
        }
        if (n.is_compatible(compatible)) { match = n; found = true; }
        return !found;
    }));
    if (!found) return Error::NotFound;
    return match;
}

Result<Node> Blob::find_phandle(std::uint32_t phandle) const {
    Node match;
    bool found = false;
    TRY(walk([&](const Node& n, unsigned) {
        auto p = n.phandle();
        if (p.ok() && p.value() == phandle) { match = n; found = true; }
        return !found;
    }));
    if (!found) return Error::NotFound;
    return match;
}

Result<Property> Node::property(std::string_view name) const {
    if (!m_blob) return Error::InvalidArgument;
    Property found{};
    bool hit = false;
    TRY(for_each_property([&](const Property& p) {
        hit = p.name_is(name);
        if (hit) found = p;
        return !hit;
    }));
    if (!hit) return Error::NotFound;
    return found;
}

bool Node::is_compatible(std::string_view compatible) const {
    auto p = property("compatible");
    return p.ok() && p.value().contains_string(compatible);
}

std::uint32_t Node::child_address_cells() const {
    std::uint32_t ac = 2, sc = 1;
    if (m_blob) m_blob->cells_at(m_body, ac, sc);
    return ac;
}

std::uint32_t Node::child_size_cells() const {
    std::uint32_t ac = 2, sc = 1;
    if (m_blob) m_blob->cells_at(m_body, ac, sc);
    return sc;
}

Result<std::uint32_t> Node::phandle() const {
    auto p = property("phandle");
    if (!p.ok()) p = property("linux,phandle");
    if (!p.ok()) return Error::NotFound;
    return p.value().as_u32();
}

Result<Region> Node::reg(std::size_t index) const {
    Property p = TRY(property("reg")); // InvalidArgument on a default Node
    std::uint32_t ac = 2, sc = 1;
    if (m_parent_body != kNoParent) m_blob->cells_at(m_parent_body, ac, sc);
    if (ac == 0 || ac > 2 || sc > 2) return Error::NotSupported;
    std::size_t stride = ac + sc;
    if ((index + 1) * stride > p.cell_count()) return Error::OutOfRange;
    auto read = [&](std::size_t first, std::size_t count) {
        std::uint64_t v = 0;
        for (std::size_t i = 0; i < count; ++i) v = (v << 32) | p.cell(first + i).value();
        return v;
    };
    return Region{read(index * stride, ac), read(index * stride + ac, sc)};
}

} // namespace tessera::fdt

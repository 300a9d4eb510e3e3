#pragma once
// Read-only parser for flattened device trees (Devicetree Specification
// v0.4, chapter 5). Nothing is copied or allocated: nodes and properties are
// views into the blob. Every read is bounds-checked against the header, so
// a corrupt blob produces Error::Malformed rather than a wild access.
// Stateless after validation, hence safe to use from any hart.
#include <base/result.hpp>
#include <cstdint>
#include <span>
#include <string_view>

namespace tessera::fdt {

using base::Error;
using base::Result;

class Blob;

struct Property {
    std::span<const std::uint8_t> value;
    // The name lives in the strings block and is measured only on request:
    // most lookups reject a property on its first character (name_is).
    const char* name_chars = nullptr;

    [[nodiscard]] std::string_view name() const;
    [[nodiscard]] bool name_is(std::string_view s) const;

    [[nodiscard]] Result<std::uint32_t> as_u32() const;
    [[nodiscard]] Result<std::uint64_t> as_u64() const; // one or two cells
    // A NUL-terminated string (the first, for string lists).
    [[nodiscard]] Result<std::string_view> as_string() const;
    // Iterates a string list; returns false from `f` to stop.
    template <typename F> void for_each_string(F&& f) const;
    [[nodiscard]] bool contains_string(std::string_view s) const;
    // Index in `candidates` of the first list entry equal to one of them
    // (one scan of the list for all candidates), or NotFound.
    [[nodiscard]] Result<std::size_t> match_string(std::span<const std::string_view> candidates) const;
    // The n-th 32-bit big-endian cell.
    [[nodiscard]] Result<std::uint32_t> cell(std::size_t n) const;
    [[nodiscard]] std::size_t cell_count() const { return value.size() / 4; }
};

struct Region {
    std::uint64_t base;
    std::uint64_t size;
};

class Node {
public:
    Node() = default;
    [[nodiscard]] std::string_view name() const { return m_name; }
    [[nodiscard]] Result<Property> property(std::string_view name) const;
    [[nodiscard]] bool is_compatible(std::string_view compatible) const;
    // The index-th (address, size) pair of "reg", using the parent's
    // #address-cells / #size-cells.
    [[nodiscard]] Result<Region> reg(std::size_t index = 0) const;
    [[nodiscard]] Result<std::uint32_t> phandle() const;
    [[nodiscard]] std::uint32_t offset() const { return m_offset; }
    // Cells this node declares for its children (defaults 2 and 1).
    [[nodiscard]] std::uint32_t child_address_cells() const;
    [[nodiscard]] std::uint32_t child_size_cells() const;

    // Calls f(Property) for each property; f returns false to stop.
    template <typename F> Result<void> for_each_property(F&& f) const;
    // Calls f(Node) for each direct child; f returns false to stop.
    template <typename F> Result<void> for_each_child(F&& f) const;

private:
    friend class Blob;
    const Blob* m_blob = nullptr;
    std::uint32_t m_offset = 0;      // offset of the FDT_BEGIN_NODE token
    std::uint32_t m_body = 0;        // first token after the name
    // The parent's body, read only by reg() for #address-cells/#size-cells,
    // so that walking the tree never scans properties it does not need.
    std::uint32_t m_parent_body = kNoParent;
    std::string_view m_name;
    static constexpr std::uint32_t kNoParent = ~0u;
};

class Blob {
public:
    // Validates the header and the block bounds. `limit` caps how many bytes
    // may be read at `address` (the blob's own totalsize must fit in it).
    static Result<Blob> from_address(const void* address, std::size_t limit = 1u << 20);
    static Result<Blob> from_bytes(std::span<const std::uint8_t> bytes);

    [[nodiscard]] std::size_t total_size() const { return m_bytes.size(); }
    [[nodiscard]] Result<Node> root() const;
    // "/" or "/cpus" or "/soc/serial@10000000"; a component without '@'
    // matches a node whose name is that component followed by '@unit'.
    [[nodiscard]] Result<Node> find_path(std::string_view path) const;
    // The first node after `after` (or from the start) that is compatible.
    [[nodiscard]] Result<Node> find_compatible(std::string_view compatible, const Node* after = nullptr) const;
    [[nodiscard]] Result<Node> find_phandle(std::uint32_t phandle) const;
    // Depth-first visit of every node: f(Node, depth) returns false to stop.
    template <typename F> Result<void> walk(F&& f) const;
    // One pass that also hands over each property as it is passed:
    // f(Node, depth, Property) for each property of each node, in tree
    // order. Cheapest way to look at everything (each token read once).
    template <typename F> Result<void> walk_properties(F&& f) const;
    // Memory reservation block entries (firmware regions to keep out of use).
    template <typename F> Result<void> for_each_reservation(F&& f) const;

private:
    friend class Node;
    enum class Token : std::uint32_t { BeginNode = 1, EndNode = 2, Prop = 3, Nop = 4, End = 9 };
    struct Cursor {
        Token token;
        std::uint32_t offset; // of the token
        std::uint32_t next;   // offset of the following token
        std::string_view name;              // BeginNode
        const char* prop_name;              // Prop: NUL-terminated (checked at load)
        std::span<const std::uint8_t> value; // Prop
    };
    using VisitNode = bool (*)(void*, const Node&, unsigned depth);
    using VisitProp = bool (*)(void*, const Property&);
    using VisitNodeProp = bool (*)(void*, const Node&, unsigned depth, const Property&);

    // Decodes the token at `offset` into `out`; false if it is malformed.
    // The inner loops' primitive: a plain bool, because wrapping every
    // token in a Result costs more than the decoding itself.
    [[nodiscard]] bool step(std::uint32_t offset, Cursor& out) const;
    [[nodiscard]] Result<Node> make_node(std::uint32_t offset, std::uint32_t parent_body) const;
    // #address-cells and #size-cells declared by the node whose properties
    // start at `body` (defaults 2 and 1), in one pass.
    void cells_at(std::uint32_t body, std::uint32_t& address_cells, std::uint32_t& size_cells) const;
    Result<void> walk_impl(void* ctx, VisitNode visit, VisitNodeProp visit_prop) const;
    Result<void> properties_impl(const Node& node, void* ctx, VisitProp visit) const;
    Result<void> children_impl(const Node& node, void* ctx, VisitNode visit) const;
    Result<void> reservations_impl(void* ctx, bool (*visit)(void*, const Region&)) const;

    std::span<const std::uint8_t> m_bytes;
    std::span<const std::uint8_t> m_struct;
    std::span<const std::uint8_t> m_strings;
    std::uint32_t m_rsvmap = 0;
};

// Template members: thin adaptors over the out-of-line walkers.

template <typename F>
void Property::for_each_string(F&& f) const {
    std::size_t i = 0;
    while (i < value.size()) {
        std::size_t end = i;
        while (end < value.size() && value[end] != 0) ++end;
        if (end == value.size()) return; // unterminated tail: ignore
        if (!f(std::string_view(reinterpret_cast<const char*>(value.data()) + i, end - i))) return;
        i = end + 1;
    }
}

template <typename F>
Result<void> Node::for_each_property(F&& f) const {
    if (!m_blob) return Error::InvalidArgument; // a default-constructed Node
    return m_blob->properties_impl(*this, &f, [](void* ctx, const Property& p) {
        return (*static_cast<F*>(ctx))(p);
    });
}

template <typename F>
Result<void> Node::for_each_child(F&& f) const {
    if (!m_blob) return Error::InvalidArgument;
    return m_blob->children_impl(*this, &f, [](void* ctx, const Node& n, unsigned) {
        return (*static_cast<F*>(ctx))(n);
    });
}

template <typename F>
Result<void> Blob::walk(F&& f) const {
    return walk_impl(&f, [](void* ctx, const Node& n, unsigned depth) {
        return (*static_cast<F*>(ctx))(n, depth);
    }, nullptr);
}

template <typename F>
Result<void> Blob::walk_properties(F&& f) const {
    return walk_impl(&f, nullptr, [](void* ctx, const Node& n, unsigned depth, const Property& p) {
        return (*static_cast<F*>(ctx))(n, depth, p);
    });
}

template <typename F>
Result<void> Blob::for_each_reservation(F&& f) const {
    return reservations_impl(&f, [](void* ctx, const Region& r) { return (*static_cast<F*>(ctx))(r); });
}

} // namespace tessera::fdt

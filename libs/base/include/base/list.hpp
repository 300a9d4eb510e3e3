#pragma once
// Intrusive doubly linked list. The node lives inside the object (a Thread
// embeds its run-queue node), so linking never allocates and unlinking is
// O(1). Not synchronized: the owner of the list provides the lock.
#include <base/container_of.hpp>
#include <base/verify.hpp>
#include <cstddef>

namespace tessera::base {

class ListNode {
public:
    constexpr ListNode() = default;
    ListNode(const ListNode&) = delete;
    ListNode& operator=(const ListNode&) = delete;
    [[nodiscard]] bool is_linked() const { return m_next != nullptr; }

private:
    template <typename T, ListNode T::*> friend class IntrusiveList;
    ListNode* m_prev = nullptr;
    ListNode* m_next = nullptr;
};

template <typename T, ListNode T::*Member>
class IntrusiveList {
public:
    // All-zero is a valid empty list (the head links itself on the first
    // insertion): lists can be constinit globals, live in .bss, or sit in
    // arrays. (GCC 12 evaluates arrays of objects whose constexpr
    // constructor stores their own address as all-zero, so a self-linked
    // head cannot be relied on there.)
    constexpr IntrusiveList() = default;
    IntrusiveList(const IntrusiveList&) = delete;
    IntrusiveList& operator=(const IntrusiveList&) = delete;

    [[nodiscard]] bool is_empty() const { return m_head.m_next == nullptr || m_head.m_next == &m_head; }
    [[nodiscard]] std::size_t size() const { return m_size; }

    void push_back(T& item) {
        link_head();
        insert_before(m_head, node_of(item));
    }
    void push_front(T& item) {
        link_head();
        insert_before(*m_head.m_next, node_of(item));
    }

    // Inserts `item` before `position` (which must be in this list).
    void insert_before(T& position, T& item) { insert_before(node_of(position), node_of(item)); }

    void remove(T& item) {
        ListNode& n = node_of(item);
        VERIFY(n.is_linked());
        n.m_prev->m_next = n.m_next;
        n.m_next->m_prev = n.m_prev;
        n.m_prev = n.m_next = nullptr;
        --m_size;
    }

    T* first() { return is_empty() ? nullptr : &item_of(*m_head.m_next); }
    T* last() { return is_empty() ? nullptr : &item_of(*m_head.m_prev); }
    T* next(T& item) {
        ListNode* n = node_of(item).m_next;
        return n == &m_head ? nullptr : &item_of(*n);
    }
    T* previous(T& item) {
        ListNode* n = node_of(item).m_prev;
        return n == &m_head ? nullptr : &item_of(*n);
    }

    T* pop_front() {
        T* item = first();
        if (item) remove(*item);
        return item;
    }

    class Iterator {
    public:
        Iterator(ListNode* n) : m_node(n) {}
        T& operator*() const { return item_of(*m_node); }
        T* operator->() const { return &item_of(*m_node); }
        Iterator& operator++() { m_node = m_node->m_next; return *this; }
        bool operator==(const Iterator& o) const { return m_node == o.m_node; }

    private:
        ListNode* m_node;
    };
    Iterator begin() { return {is_empty() ? &m_head : m_head.m_next}; }
    Iterator end() { return {&m_head}; }

private:
    static ListNode& node_of(T& item) { return item.*Member; }
    static T& item_of(ListNode& node) { return container_of(node, Member); }
    void link_head() {
        if (!m_head.m_next) m_head.m_prev = m_head.m_next = &m_head;
    }
    void insert_before(ListNode& position, ListNode& n) {
        VERIFY(!n.is_linked()); // a node is on at most one list
        n.m_next = &position;
        n.m_prev = position.m_prev;
        position.m_prev->m_next = &n;
        position.m_prev = &n;
        ++m_size;
    }

    ListNode m_head;
    std::size_t m_size = 0;
};

} // namespace tessera::base

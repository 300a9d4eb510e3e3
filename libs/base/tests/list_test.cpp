#include <base/list.hpp>
#include <ktest/ktest.hpp>

using namespace tessera;

namespace {
struct Item {
    int value;
    base::ListNode node;
};
using List = base::IntrusiveList<Item, &Item::node>;
constinit List g_global_list; // must need no run-time constructor
constinit List g_list_array[4]; // arrays too (zero-initialized is valid)
} // namespace

KTEST(base_list, lists_in_arrays_work) {
    Item a{1, {}}, b{2, {}};
    EXPECT_TRUE(g_list_array[2].is_empty());
    g_list_array[2].push_back(a);
    g_list_array[3].push_front(b);
    EXPECT_EQ(g_list_array[2].first(), &a);
    EXPECT_EQ(g_list_array[3].last(), &b);
    int visited = 0;
    for (Item& i : g_list_array[1]) visited += i.value; // empty, never linked
    EXPECT_EQ(visited, 0);
    g_list_array[2].remove(a);
    g_list_array[3].remove(b);
    EXPECT_TRUE(g_list_array[2].is_empty() && g_list_array[3].is_empty());
}

KTEST(base_list, constinit_global_list_works) {
    Item a{7, {}};
    EXPECT_TRUE(g_global_list.is_empty());
    g_global_list.push_back(a);
    EXPECT_EQ(g_global_list.first()->value, 7);
    g_global_list.remove(a);
    EXPECT_TRUE(g_global_list.is_empty());
}

KTEST(base_list, push_pop_order) {
    Item a{1, {}}, b{2, {}}, c{3, {}};
    List list;
    EXPECT_TRUE(list.is_empty());
    list.push_back(a);
    list.push_back(b);
    list.push_front(c);
    EXPECT_EQ(list.size(), 3u);
    int expected[] = {3, 1, 2};
    int i = 0;
    for (Item& item : list) EXPECT_EQ(item.value, expected[i++]);
    EXPECT_EQ(list.pop_front()->value, 3);
    EXPECT_EQ(list.first()->value, 1);
    EXPECT_EQ(list.last()->value, 2);
}

KTEST(base_list, remove_middle_and_relink) {
    Item a{1, {}}, b{2, {}}, c{3, {}};
    List list;
    list.push_back(a);
    list.push_back(b);
    list.push_back(c);
    list.remove(b);
    EXPECT_FALSE(b.node.is_linked());
    EXPECT_EQ(list.next(a), &c);
    list.insert_before(c, b);
    EXPECT_EQ(list.next(a), &b);
    EXPECT_EQ(list.size(), 3u);
    while (list.pop_front()) {}
    EXPECT_TRUE(list.is_empty());
    EXPECT_EQ(list.first(), nullptr);
}

// The accept4(3) interposed by accept_abort_test.cpp for the whole of
// weft_test_net: every call (from the epoll backend or a plain thread) is
// counted, and armed calls fail with ECONNABORTED.
#pragma once

#include <atomic>

namespace weft::test {

/// accept4 calls so far in this process (relaxed; a count, not an order).
extern std::atomic<long> g_accept4_calls;
/// accept4 calls still to fail with ECONNABORTED; 0 = pass through.
extern std::atomic<int> g_accept4_abort_next;

}  // namespace weft::test

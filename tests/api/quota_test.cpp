// weft::MemoryQuota and QuotaAllocator (include/weft/quota.hpp): exact
// accounting, all-or-nothing charges through nested quotas, containers that
// throw QuotaExceeded at their limit and give everything back, and
// concurrent charges from many fibers that never pass a limit.
#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <string>
#include <vector>

#include "common/test_util.hpp"
#include "weft/weft.hpp"

namespace {

using weft::MemoryQuota;
using weft::QuotaAllocator;
using weft::QuotaExceeded;
using weft::QuotaString;
using weft::QuotaVector;

TEST(MemoryQuota, ChargesAndReleasesExactlyAndKeepsThePeak) {
  MemoryQuota q(1000);
  EXPECT_TRUE(q.try_charge(600));
  EXPECT_TRUE(q.try_charge(400));  // exactly at the limit
  EXPECT_EQ(q.used(), 1000u);
  EXPECT_EQ(q.available(), 0u);
  EXPECT_FALSE(q.try_charge(1));  // one past it
  EXPECT_EQ(q.refusals(), 1u);
  EXPECT_EQ(q.used(), 1000u) << "a refused charge takes nothing";
  q.release(1000);
  EXPECT_EQ(q.used(), 0u);
  EXPECT_EQ(q.peak(), 1000u);
  EXPECT_FALSE(q.try_charge(1001));
  EXPECT_FALSE(q.try_charge(SIZE_MAX)) << "no overflow past the limit";
  EXPECT_EQ(q.used(), 0u);
}

TEST(MemoryQuota, ChargeThrowsQuotaExceededNamingTheQuota) {
  MemoryQuota q(100, nullptr, "request");
  q.charge(60);
  try {
    q.charge(50);
    FAIL() << "no throw";
  } catch (const QuotaExceeded& e) {
    EXPECT_STREQ(e.what(),
                 "weft: memory quota 'request' exceeded: 50 bytes requested, 60 of 100 bytes "
                 "in use");
    EXPECT_EQ(e.requested(), 50u);
    EXPECT_EQ(e.limit(), 100u);
    EXPECT_EQ(e.used(), 60u);
  }
  // A std::bad_alloc for code that handles running out of memory.
  EXPECT_THROW(q.charge(41), std::bad_alloc);
  EXPECT_EQ(q.used(), 60u);
}

TEST(MemoryQuota, NestedChargesAreAllOrNothing) {
  MemoryQuota tenant(1000, nullptr, "tenant");
  MemoryQuota conn_a(800, tenant, "a");
  MemoryQuota conn_b(800, tenant, "b");
  MemoryQuota request(300, conn_a, "request");
  ASSERT_TRUE(request.try_charge(300));
  EXPECT_EQ(conn_a.used(), 300u);
  EXPECT_EQ(tenant.used(), 300u);
  ASSERT_TRUE(conn_b.try_charge(600));
  EXPECT_EQ(tenant.used(), 900u);
  // conn_a has room (500) but the tenant has only 100: refused at the
  // tenant, and conn_a is not left charged.
  try {
    conn_a.charge(200);
    FAIL() << "no throw";
  } catch (const QuotaExceeded& e) {
    EXPECT_NE(std::string(e.what()).find("'tenant'"), std::string::npos) << e.what();
  }
  EXPECT_EQ(conn_a.used(), 300u);
  EXPECT_EQ(tenant.used(), 900u);
  EXPECT_EQ(tenant.refusals(), 1u);
  EXPECT_EQ(conn_a.refusals(), 0u);
  request.release(300);
  EXPECT_EQ(conn_a.used(), 0u);
  EXPECT_EQ(tenant.used(), 600u);
}

TEST(MemoryQuota, AChildDestroyedWithChargesReturnsThemToItsAncestors) {
  MemoryQuota parent(1000);
  {
    MemoryQuota child(500, parent);
    child.charge(400);
    EXPECT_EQ(parent.used(), 400u);
  }
  EXPECT_EQ(parent.used(), 0u);
}

TEST(MemoryQuota, LoweringTheLimitRefusesNewChargesOnly) {
  MemoryQuota q(1000);
  q.charge(800);
  q.set_limit(500);
  EXPECT_EQ(q.used(), 800u);
  EXPECT_EQ(q.available(), 0u);
  EXPECT_FALSE(q.try_charge(1));
  q.release(400);
  EXPECT_TRUE(q.try_charge(100));
}

TEST(QuotaAllocator, AVectorGrowingPastItsQuotaThrowsAndGivesEverythingBack) {
  MemoryQuota q(64 * 1024, nullptr, "vector");
  {
    QuotaVector<std::uint64_t> v{QuotaAllocator<std::uint64_t>(q)};
    bool threw = false;
    try {
      for (std::uint64_t i = 0;; ++i) v.push_back(i);
    } catch (const QuotaExceeded&) {
      threw = true;
    }
    ASSERT_TRUE(threw);
    // The vector is intact (strong guarantee of push_back) and within its
    // quota; what it holds is exactly what is charged.
    EXPECT_EQ(q.used(), v.capacity() * sizeof(std::uint64_t));
    EXPECT_LE(q.used(), q.limit());
    for (std::uint64_t i = 0; i < v.size(); ++i) ASSERT_EQ(v[i], i);
    EXPECT_GE(q.refusals(), 1u);
  }
  EXPECT_EQ(q.used(), 0u) << "destroying the vector returns its memory to the quota";
  EXPECT_GT(q.peak(), 0u);
}

TEST(QuotaAllocator, AStringBombIsStoppedAtTheQuota) {
  MemoryQuota q(1 << 20, nullptr, "body");
  QuotaString s{QuotaAllocator<char>(q)};
  s = "ab";
  // Doubling by self-append, as an attacker's input might make a naive
  // parser do: stops at the quota instead of exhausting memory.
  EXPECT_THROW(
      {
        for (;;) s += s;
      },
      QuotaExceeded);
  EXPECT_LE(s.size(), std::size_t{1} << 20);
  EXPECT_LE(q.used(), q.limit());
  s.clear();
  s.shrink_to_fit();
  EXPECT_EQ(q.used(), 0u);
}

TEST(QuotaAllocator, ContainersMoveAndSwapWithTheirQuota) {
  MemoryQuota a(1 << 16), b(1 << 16);
  QuotaVector<int> va(100, 7, QuotaAllocator<int>(a));
  QuotaVector<int> vb(10, 1, QuotaAllocator<int>(b));
  const std::size_t a0 = a.used(), b0 = b.used();
  va.swap(vb);  // allocators propagate: each buffer stays charged where it was
  EXPECT_EQ(a.used(), a0);
  EXPECT_EQ(b.used(), b0);
  EXPECT_EQ(&va.get_allocator().quota(), &b);
  QuotaVector<int> moved(std::move(va));
  EXPECT_EQ(b.used(), b0);
  moved.clear();
  moved.shrink_to_fit();
  EXPECT_EQ(b.used(), 0u);
  EXPECT_THROW(QuotaVector<int>(SIZE_MAX / 2, QuotaAllocator<int>(a)), std::length_error);
}

TEST(QuotaAllocator, AnOverflowingSizeIsRefusedWithoutACharge) {
  MemoryQuota q(SIZE_MAX);
  QuotaAllocator<std::uint64_t> alloc(q);
  EXPECT_THROW((void)alloc.allocate(SIZE_MAX / 4), std::bad_array_new_length);
  EXPECT_EQ(q.used(), 0u);
}

// Many fibers on every worker charge and release one shared quota: the
// limit holds at every moment (the peak never passes it) and the usage
// returns to zero.
TEST(MemoryQuota, ConcurrentFibersNeverPassTheLimit) {
  weft::Runtime rt(weft::test::workers_config(4));
  MemoryQuota parent(10'000, nullptr, "parent");
  std::vector<std::unique_ptr<MemoryQuota>> children;
  for (int i = 0; i < 4; ++i) children.push_back(std::make_unique<MemoryQuota>(4'000, parent));
  std::atomic<std::uint64_t> granted{0};
  rt.block_on([&] {
    std::vector<weft::JoinHandle<void>> hs;
    for (int f = 0; f < 64; ++f) {
      hs.push_back(weft::spawn([&, f] {
        MemoryQuota& q = *children[static_cast<std::size_t>(f) % children.size()];
        for (int i = 0; i < 500; ++i) {
          const std::size_t bytes = 100 + static_cast<std::size_t>((f * 31 + i * 17) % 900);
          if (q.try_charge(bytes)) {
            granted.fetch_add(1, std::memory_order_relaxed);
            if (i % 7 == 0) weft::this_fiber::yield();
            q.release(bytes);
          }
        }
      }));
    }
    for (auto& h : hs) h.join();
  });
  EXPECT_GT(granted.load(), 0u);
  EXPECT_LE(parent.peak(), parent.limit());
  EXPECT_EQ(parent.used(), 0u);
  for (auto& c : children) {
    EXPECT_LE(c->peak(), c->limit());
    EXPECT_EQ(c->used(), 0u);
  }
}

}  // namespace

// Generators driven by fibers on a multi-worker Runtime. A body may park (the
// documented decision, docs/design/generators.md): it parks the driving
// fiber together with the generator's stack, and may come back on another
// worker. These tests are also the ones that exercise the sanitizer identity
// a fiber lends to the generator it runs.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "common/test_util.hpp"
#include "gen/gen_util.hpp"
#include "weft/generator.hpp"
#include "weft/weft.hpp"

namespace {

using namespace std::chrono_literals;
using weft::Generator;
using weft::JoinHandle;
using weft::Runtime;
using weft::Yield;
using weft::test::current_message;
using weft::test::scaled;
using weft::test::Tracker;
using weft::test::workers_config;

TEST(GeneratorInFibers, ManyFibersEachDriveTheirOwnGenerators) {
  Runtime rt(workers_config(2));
  const int fibers = static_cast<int>(scaled(400, 40));
  std::atomic<int> failures{0};
  rt.block_on([&] {
    std::vector<JoinHandle<void>> hs;
    for (int f = 0; f < fibers; ++f) {
      hs.push_back(weft::spawn([f, &failures] {
        for (int round = 0; round < 5; ++round) {
          const int n = 1 + (f * 7 + round) % 23;
          Generator<int> squares([n](Yield<int>& yield) {
            for (int i = 0; i < n; ++i) yield(i * i);
          });
          Generator<int> evens([](Yield<int>& yield) {
            for (int i = 0;; i += 2) yield(i);
          });
          long sum = 0;
          for (int v : squares) {
            sum += v + *evens.next();
            weft::this_fiber::yield();  // the driver moves between resumes
          }
          const long want =
              static_cast<long>(n - 1) * n * (2L * n - 1) / 6 + static_cast<long>(n) * (n - 1);
          if (sum != want) failures.fetch_add(1);
        }
      }));
    }
    for (auto& h : hs) h.join();
  });
  EXPECT_EQ(failures.load(), 0);
  weft::test::expect_no_live_fibers(rt);
}

struct Step {
  int value;
  int worker_before_park;
  int worker_after_park;
  weft::FiberId fiber;
};

// A body that parks (sleep or yield) between its own yields and records where
// it ran before and after each park.
Generator<Step> parking_body(int steps, int salt) {
  return Generator<Step>([steps, salt](Yield<Step>& yield) {
    for (int i = 0; i < steps; ++i) {
      const int before = weft::this_fiber::worker_index();
      if ((i + salt) % 3 == 0) {
        weft::this_fiber::sleep_for(1ms);
      } else {
        weft::this_fiber::yield();
      }
      yield(Step{i, before, weft::this_fiber::worker_index(), weft::this_fiber::id()});
    }
  });
}

TEST(GeneratorInFibers, BodyMayParkAndMigratesWithItsFiber) {
  Runtime rt(workers_config(2));
  std::atomic<int> failures{0};
  bool migrated = false;
  const auto deadline = std::chrono::steady_clock::now() + weft::test::kPatience;
  while (!migrated && std::chrono::steady_clock::now() < deadline) {
    std::atomic<int> moves{0};
    rt.block_on([&] {
      std::vector<JoinHandle<void>> hs;
      for (int f = 0; f < 32; ++f) {
        hs.push_back(weft::spawn([f, &failures, &moves] {
          auto g = parking_body(12, f);
          int expect = 0;
          for (const Step& s : g) {
            if (s.value != expect++) failures.fetch_add(1);
            if (s.fiber != weft::this_fiber::id()) failures.fetch_add(1);
            if (s.worker_before_park != s.worker_after_park) moves.fetch_add(1);
          }
          if (expect != 12) failures.fetch_add(1);
        }));
      }
      for (auto& h : hs) h.join();
    });
    migrated = moves.load() > 0;
  }
  EXPECT_EQ(failures.load(), 0);
  EXPECT_TRUE(migrated) << "no generator body ever resumed on another worker after a park";
}

TEST(GeneratorInFibers, BodyReceivesFromAChannel) {
  // A generator that adapts a channel: the body parks in recv().
  Runtime rt(workers_config(2));
  const int n = static_cast<int>(scaled(5000, 500));
  long sum = rt.block_on([count = n] {
    auto [tx, rx] = weft::channel<int>(0);  // rendezvous: every recv parks or meets a sender
    auto producer = weft::spawn([tx = tx, count] {
      for (int i = 1; i <= count; ++i) (void)tx.send(i);
      tx.close();
    });
    Generator<int> doubled([rx = rx](Yield<int>& yield) {
      while (auto v = rx.recv()) yield(*v * 2);
    });
    long s = 0;
    for (int v : doubled) s += v;
    producer.join();
    return s;
  });
  EXPECT_EQ(sum, static_cast<long>(n) * (n + 1));
}

TEST(GeneratorInFibers, ExceptionStateSurvivesParksInsideTheBody) {
  Runtime rt(workers_config(2));
  const int fibers = static_cast<int>(scaled(64, 16));
  std::atomic<int> failures{0};
  rt.block_on([&] {
    std::vector<JoinHandle<void>> hs;
    for (int f = 0; f < fibers; ++f) {
      hs.push_back(weft::spawn([f, &failures] {
        const std::string mine = "body " + std::to_string(f);
        Generator<std::string> g([mine](Yield<std::string>& yield) {
          try {
            throw std::runtime_error(mine);
          } catch (...) {
            for (int i = 0; i < 6; ++i) {
              weft::this_fiber::sleep_for(i % 2 == 0 ? 1ms : 0ms);
              weft::this_fiber::yield();
              yield(current_message());
            }
          }
        });
        const std::string theirs = "driver " + std::to_string(f);
        for (int i = 0; i < 6; ++i) {
          try {
            throw std::logic_error(theirs);
          } catch (...) {
            if (*g.next() != mine) failures.fetch_add(1);
            weft::this_fiber::yield();
            if (current_message() != theirs) failures.fetch_add(1);
          }
          if (std::current_exception() != nullptr) failures.fetch_add(1);
        }
      }));
    }
    for (auto& h : hs) h.join();
  });
  EXPECT_EQ(failures.load(), 0);
}

TEST(GeneratorInFibers, HandedFromFiberToFiberThroughAChannel) {
  Runtime rt(workers_config(2));
  const int gens = static_cast<int>(scaled(200, 20));
  std::atomic<int> failures{0};
  rt.block_on([&] {
    auto [tx, rx] = weft::channel<Generator<int>>(4);
    auto consumer = weft::spawn([rx = rx, &failures] {
      while (auto g = rx.recv()) {
        // The first value was taken by the producer fiber.
        for (int want = 1; want < 5; ++want) {
          auto v = g->next();
          if (!v || *v != want) failures.fetch_add(1);
        }
        if (g->next().has_value()) failures.fetch_add(1);
      }
    });
    for (int i = 0; i < gens; ++i) {
      Generator<int> g([](Yield<int>& yield) {
        for (int k = 0; k < 5; ++k) {
          weft::this_fiber::yield();  // parks whichever fiber drives it now
          yield(k);
        }
      });
      if (g.next() != 0) failures.fetch_add(1);
      (void)tx.send(std::move(g));
    }
    tx.close();
    consumer.join();
  });
  EXPECT_EQ(failures.load(), 0);
}

TEST(GeneratorInFibers, NestedGeneratorsWithParksInTheInnerBody) {
  Runtime rt(workers_config(2));
  std::atomic<int> failures{0};
  rt.block_on([&] {
    std::vector<JoinHandle<void>> hs;
    for (int f = 0; f < 16; ++f) {
      hs.push_back(weft::spawn([&failures] {
        Generator<int> outer([](Yield<int>& yield) {
          for (int r = 0; r < 3; ++r) {
            Generator<int> inner([r](Yield<int>& y) {
              for (int i = 0; i < 4; ++i) {
                weft::this_fiber::sleep_for(i % 2 == 0 ? 1ms : 0ms);
                weft::this_fiber::yield();
                y(r * 10 + i);
              }
            });
            for (int v : inner) {
              weft::this_fiber::yield();
              yield(v);
            }
          }
        });
        std::vector<int> got;
        for (int v : outer) got.push_back(v);
        const std::vector<int> want{0, 1, 2, 3, 10, 11, 12, 13, 20, 21, 22, 23};
        if (got != want) failures.fetch_add(1);
      }));
    }
    for (auto& h : hs) h.join();
  });
  EXPECT_EQ(failures.load(), 0);
}

TEST(GeneratorInFibers, DestroyingASuspendedGeneratorInAFiberUnwindsIt) {
  Runtime rt(workers_config(2));
  std::atomic<int> dtors{0};
  const int fibers = 32;
  rt.block_on([&] {
    std::vector<JoinHandle<void>> hs;
    for (int f = 0; f < fibers; ++f) {
      hs.push_back(weft::spawn([&dtors] {
        Generator<int> g([&dtors](Yield<int>& yield) {
          Tracker t(dtors);
          for (int i = 0;; ++i) {
            weft::this_fiber::sleep_for(1ms);
            yield(i);
          }
        });
        (void)g.next();
        (void)g.next();
        weft::this_fiber::yield();
      }));
    }
    for (auto& h : hs) h.join();
  });
  EXPECT_EQ(dtors.load(), fibers);
}

TEST(GeneratorInFibers, CancellationOfTheDrivingFiberUnwindsTheParkedBody) {
  // Destroying the runtime cancels every fiber: a fiber parked inside a
  // generator body gets weft::Cancelled there; it propagates out of the
  // body, out of next(), and ends the fiber.
  std::atomic<int> dtors{0};
  std::atomic<int> cancelled_in_driver{0};
  std::atomic<int> parked{0};
  {
    Runtime rt(workers_config(2));
    for (int f = 0; f < 8; ++f) {
      rt.spawn([&] {
          Generator<int> g([&](Yield<int>& yield) {
            Tracker t(dtors);
            parked.fetch_add(1);
            weft::this_fiber::sleep_for(1h);
            yield(1);
          });
          try {
            (void)g.next();
          } catch (const weft::Cancelled&) {
            cancelled_in_driver.fetch_add(1);
          }
        }).detach();
    }
    EXPECT_TRUE(weft::test::eventually([&] { return parked.load() == 8; }));
  }
  EXPECT_EQ(cancelled_in_driver.load(), 8);
  EXPECT_EQ(dtors.load(), 8);
}

}  // namespace

namespace {

// A cancel scope opened by the body cannot stay open across a yield; one
// closed before the yield is fine, and cancellation of the driving fiber
// reaches a body parked inside the generator.
TEST(GeneratorInFibers, CancelScopesInsideTheBody) {
  Runtime rt(workers_config(2));
  rt.block_on([] {
    Generator<int> ok([](Yield<int>& yield) {
      auto r = weft::move_on_after(1ms, [] { weft::this_fiber::sleep_for(1h); });
      yield(r ? 1 : 0);
    });
    auto first = ok.next();
    ASSERT_TRUE(first.has_value());
    EXPECT_EQ(*first, 0);

    Generator<int> bad([](Yield<int>& yield) { weft::shield([&] { yield(1); }); });
    EXPECT_THROW(bad.next(), std::logic_error);
    EXPECT_FALSE(weft::this_fiber::is_cancelled());

    auto h = weft::spawn([] {
      Generator<int> g([](Yield<int>& yield) {
        weft::this_fiber::sleep_for(1h);
        yield(1);
      });
      g.next();
    });
    weft::this_fiber::sleep_for(5ms);
    h.cancel();
    EXPECT_THROW(h.join(), weft::Cancelled);
  });
}

}  // namespace

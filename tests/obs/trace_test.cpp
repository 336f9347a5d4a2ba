// The scheduler trace (issue 15 §4; docs/observability.md, "Tracing"):
// Runtime::start_trace / stop_trace and WEFT_TRACE write Chrome trace-event
// JSON with one track per worker, matching B/E slices, park reasons and
// flows from each waker to the fiber it woke.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <system_error>
#include <vector>

#include "common/io_util.hpp"
#include "common/test_util.hpp"
#include "weft/metrics.hpp"
#include "weft/weft.hpp"

namespace weft {
namespace {

using json = nlohmann::json;
using test::IoTest;

/// A counter's value in the metrics snapshot (0 if absent).
double counter(const std::string& name) {
  for (const metrics::Metric& m : metrics::snapshot()) {
    if (m.name == name && !m.series.empty()) return m.series.front().value;
  }
  ADD_FAILURE() << "no metric " << name;
  return -1;
}

/// Every "B" has its "E" on the same track, in order: the open-slice depth
/// of each tid never goes below zero and ends at zero; "B"s counted.
std::size_t expect_balanced(const json& trace) {
  std::map<int, int> depth;
  std::size_t begins = 0;
  for (const json& e : trace["traceEvents"]) {
    const std::string ph = e["ph"];
    const int tid = e["tid"];
    if (ph == "B") {
      ++depth[tid];
      ++begins;
      EXPECT_LE(depth[tid], 1) << "nested slices on track " << tid;
    } else if (ph == "E") {
      --depth[tid];
      EXPECT_GE(depth[tid], 0) << "an E without its B on track " << tid;
    }
  }
  for (const auto& [tid, d] : depth) EXPECT_EQ(d, 0) << "a B without its E on track " << tid;
  return begins;
}

/// Runs `fn` as the root fiber with a trace recording; returns the parsed trace.
template <class F>
json traced(Runtime& rt, F&& fn, TraceSummary* summary = nullptr) {
  std::string text;
  rt.start_trace([&text](std::string_view j) { text.assign(j); });
  rt.block_on(std::forward<F>(fn));
  const TraceSummary s = rt.stop_trace();
  if (summary != nullptr) *summary = s;
  json parsed = json::parse(text);  // throws (failing the test) if not JSON
  return parsed;
}

/// The name of the slice open on `tid` at `ts` (from its "B"), or "".
struct Slices {
  explicit Slices(const json& trace) {
    for (const json& e : trace["traceEvents"]) {
      const std::string ph = e["ph"];
      if (ph == "B") open[e["tid"].get<int>()].push_back({e["ts"].get<double>(), e["name"]});
    }
  }
  std::string at(int tid, double ts) const {
    auto it = open.find(tid);
    if (it == open.end()) return "";
    std::string name;
    for (const auto& [begin, n] : it->second) {
      if (begin <= ts) name = n;
    }
    return name;
  }
  std::map<int, std::vector<std::pair<double, std::string>>> open;
};

TEST(Trace, ChannelPingPongHasSlicesParksAndFlows) {
  Runtime rt(test::workers_config(2));
  constexpr int kRounds = 200;
  const json trace = traced(rt, [] {
    // Pairs, not structured bindings: clang 14 cannot capture those.
    auto ping = channel<int>(0);
    auto pong = channel<int>(0);
    FiberOptions po;
    po.name = "ponger";
    auto ponger = spawn(po, [&] {
      for (int i = 0; i < kRounds; ++i) (void)pong.first.send(*ping.second.recv() + 1);
    });
    FiberOptions pi;
    pi.name = "pinger";
    auto pinger = spawn(pi, [&] {
      for (int i = 0; i < kRounds; ++i) {
        (void)ping.first.send(i);
        EXPECT_EQ(*pong.second.recv(), i + 1);
      }
    });
    pinger.join();
    ponger.join();
  });

  EXPECT_EQ(trace["otherData"]["dropped_events"], 0);
  EXPECT_EQ(trace["otherData"]["workers"], 2);
  EXPECT_GT(expect_balanced(trace), 0u);

  std::set<int> worker_tracks;
  std::map<std::string, int> begins;
  std::map<std::string, std::set<std::string>> park_reasons;  // fiber name -> reasons
  std::map<std::uint64_t, std::string> name_of;
  for (const json& e : trace["traceEvents"]) {
    if (e["ph"] == "M" && e["name"] == "thread_name") {
      const std::string n = e["args"]["name"];
      if (n.rfind("worker ", 0) == 0) worker_tracks.insert(e["tid"].get<int>());
    }
    if (e["ph"] == "B") {
      ++begins[e["name"]];
      name_of[e["args"]["fiber"]] = e["args"]["name"];
    }
  }
  EXPECT_EQ(worker_tracks, (std::set<int>{0, 1}));
  EXPECT_GE(begins["pinger"], kRounds);
  EXPECT_GE(begins["ponger"], kRounds);
  for (const json& e : trace["traceEvents"]) {
    if (e["ph"] == "i" && e["name"] == "park") {
      park_reasons[name_of[e["args"]["fiber"]]].insert(e["args"]["reason"]);
    }
  }
  // Which side waits depends on who comes first (on one worker, each send
  // finds no receiver yet and parks); either way it is a channel wait.
  for (const char* fiber : {"pinger", "ponger"}) {
    const std::set<std::string>& r = park_reasons[fiber];
    EXPECT_TRUE(r.count("chan_recv") != 0 || r.count("chan_send") != 0)
        << fiber << " never parked on a channel: " << json(park_reasons).dump();
  }

  // Flows: every arrow's tail ("s") has its head ("f") later, and they link
  // the two fibers both ways: waker's slice -> woken fiber's next slice.
  const Slices slices(trace);
  std::map<std::uint64_t, std::pair<int, double>> tails;
  std::map<std::string, int> arrows;  // "pinger->ponger" -> count
  for (const json& e : trace["traceEvents"]) {
    if (e["ph"] == "s") tails[e["id"]] = {e["tid"].get<int>(), e["ts"].get<double>()};
  }
  for (const json& e : trace["traceEvents"]) {
    if (e["ph"] != "f") continue;
    auto it = tails.find(e["id"]);
    ASSERT_NE(it, tails.end()) << "a flow head without its tail: " << e.dump();
    EXPECT_LE(it->second.second, e["ts"].get<double>());
    EXPECT_EQ(e["bp"], "e");
    const std::string from = slices.at(it->second.first, it->second.second);
    const std::string to = slices.at(e["tid"], e["ts"]);
    ++arrows[from + "->" + to];
  }
  EXPECT_GE(arrows["pinger->ponger"], kRounds / 2) << "flows from the sender to the woken receiver";
  EXPECT_GE(arrows["ponger->pinger"], kRounds / 2);
}

TEST(Trace, SpawnUnparkAndTimerEvents) {
  Runtime rt(test::workers_config(2));
  const json trace = traced(rt, [] {
    std::vector<JoinHandle<void>> hs;
    for (int i = 0; i < 50; ++i) {
      hs.push_back(spawn([] { this_fiber::sleep_for(std::chrono::milliseconds(2)); }));
    }
    for (auto& h : hs) h.join();
  });
  std::map<std::string, int> instants;
  for (const json& e : trace["traceEvents"]) {
    if (e["ph"] == "i") ++instants[e["name"]];
  }
  EXPECT_EQ(instants["spawn"], 50 + 1);  // the root fiber and its 50 children
  EXPECT_GE(instants["timer_fire"], 1);
  EXPECT_GE(instants["unpark"], 50);
  expect_balanced(trace);
}

class TraceIo : public IoTest {};

TEST_P(TraceIo, SubmitAndCompletion) {
  WEFT_IO_RUNTIME(rt);
  const std::filesystem::path path = std::filesystem::temp_directory_path() /
                                     ("weft_trace_io_" + std::to_string(::getpid()) + ".txt");
  const json trace = traced(rt, [&] {
    fs::write_file(path, "hello");
    EXPECT_EQ(fs::read_file(path), "hello");
  });
  std::filesystem::remove(path);
  std::set<std::string> submitted, completed;
  for (const json& e : trace["traceEvents"]) {
    if (e["ph"] != "i") continue;
    if (e["name"] == "io_submit") submitted.insert(e["args"]["op"]);
    if (e["name"] == "io_complete") {
      completed.insert(e["args"]["op"]);
      if (e["args"]["op"] == "read" && e["args"]["result"].get<std::int64_t>() > 0) {
        EXPECT_EQ(e["args"]["result"], 5);
      }
    }
  }
  for (const char* op : {"openat", "write", "read"}) {
    EXPECT_TRUE(submitted.count(op)) << op;
    EXPECT_TRUE(completed.count(op)) << op;
  }
}
WEFT_INSTANTIATE_IO_BACKENDS(TraceIo);

TEST(Trace, FullBufferCountsDropsAndStillParses) {
  Config c = test::workers_config(2);
  c.trace_buffer_events = 64;
  Runtime rt(c);
  const double before = counter("weft_trace_dropped_events_total");
  const double events_before = counter("weft_trace_events_total");
  TraceSummary sum;
  const json trace = traced(
      rt,
      [] {
        std::vector<JoinHandle<void>> hs;
        for (int i = 0; i < 20; ++i) {
          hs.push_back(spawn([] {
            for (int k = 0; k < 50; ++k) this_fiber::yield();
          }));
        }
        for (auto& h : hs) h.join();
      },
      &sum);
  EXPECT_GT(sum.dropped, 0u);
  EXPECT_LE(sum.events, 3u * 64u);  // two workers' buffers and the shared one
  EXPECT_EQ(trace["otherData"]["dropped_events"], sum.dropped);
  EXPECT_EQ(trace["otherData"]["events"], sum.events);
  EXPECT_EQ(counter("weft_trace_dropped_events_total") - before, static_cast<double>(sum.dropped));
  EXPECT_EQ(counter("weft_trace_events_total") - events_before, static_cast<double>(sum.events));
  expect_balanced(trace);
}

TEST(Trace, StartAndStopTwice) {
  Runtime rt(test::workers_config(2));
  for (int round = 0; round < 2; ++round) {
    const json trace = traced(rt, [] {
      auto h = spawn([] { this_fiber::yield(); });
      h.join();
    });
    EXPECT_GT(expect_balanced(trace), 0u) << "round " << round;
  }
  EXPECT_THROW(rt.stop_trace(), std::logic_error);
  rt.start_trace([](std::string_view) {});
  EXPECT_THROW(rt.start_trace([](std::string_view) {}), std::logic_error);
  Runtime other(test::workers_config(1));
  EXPECT_THROW(other.start_trace([](std::string_view) {}), std::logic_error)
      << "one trace at a time per process";
  rt.stop_trace();
  other.start_trace([](std::string_view) {});  // now it may
  other.stop_trace();
}

TEST(Trace, InvalidPathIsAClearError) {
  Runtime rt(test::workers_config(1));
  const std::string bad = "/nonexistent-weft-dir/trace.json";
  try {
    rt.start_trace(bad);
    FAIL() << "start_trace accepted " << bad;
  } catch (const std::system_error& e) {
    EXPECT_NE(std::string(e.what()).find(bad), std::string::npos) << e.what();
    EXPECT_EQ(e.code().value(), ENOENT);
  }
  EXPECT_THROW(rt.start_trace(std::string()), std::invalid_argument);
  EXPECT_THROW(rt.start_trace(TraceSink()), std::invalid_argument);
  // Nothing is left recording: a good start works.
  rt.start_trace([](std::string_view) {});
  rt.stop_trace();
}

TEST(Trace, FileAndWeftTraceVariable) {
  const std::filesystem::path dir = std::filesystem::temp_directory_path();
  const std::string pid = std::to_string(::getpid());
  const std::filesystem::path api = dir / ("weft_trace_api_" + pid + ".json");
  const std::filesystem::path env = dir / ("weft_trace_env_" + pid + ".json");
  auto parse_file = [](const std::filesystem::path& p) {
    std::ifstream in(p);
    std::stringstream ss;
    ss << in.rdbuf();
    return json::parse(ss.str());
  };
  {
    Runtime rt(test::workers_config(2));
    rt.start_trace(api.string());
    rt.block_on([] { spawn([] {}).join(); });
    const TraceSummary s = rt.stop_trace();
    const json trace = parse_file(api);
    EXPECT_EQ(trace["otherData"]["events"], s.events);
    expect_balanced(trace);
  }
  ASSERT_EQ(::setenv("WEFT_TRACE", env.c_str(), 1), 0);
  {
    Runtime rt(test::workers_config(2));  // starts recording
    rt.block_on([] { spawn([] {}).join(); });
  }  // writes the file
  {
    const json trace = parse_file(env);
    EXPECT_GT(expect_balanced(trace), 0u);
  }
  ASSERT_EQ(::setenv("WEFT_TRACE", "/nonexistent-weft-dir/t.json", 1), 0);
  try {
    Runtime rt(test::workers_config(1));
    ADD_FAILURE() << "a bad WEFT_TRACE was accepted";
  } catch (const std::system_error& e) {
    EXPECT_NE(std::string(e.what()).find("WEFT_TRACE"), std::string::npos) << e.what();
  }
  ::unsetenv("WEFT_TRACE");
  std::filesystem::remove(api);
  std::filesystem::remove(env);
}

}  // namespace
}  // namespace weft

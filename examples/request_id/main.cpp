// weft-request-id: request-scoped context with fiber-local storage.
//
//   weft-request-id [requests]
//
// Each request is handled by a fiber that sets two FiberLocals: the request
// id (Propagation::copy: every fiber and blocking task the handler starts,
// at any depth, gets its own copy) and a per-request counter of backend
// calls (Propagation::share: one object for the whole request, so the
// handler sees the calls its sub-fibers made). log() reads the id without
// anyone passing it along. Requests run concurrently on every worker; each
// line shows the id of the request it belongs to. Exits 1 if any fiber saw
// another request's id or a count went missing.
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <vector>

#include "weft/weft.hpp"

namespace {

weft::FiberLocal<std::string> request_id{weft::Propagation::copy};
weft::FiberLocal<std::atomic<int>> backend_calls{weft::Propagation::share};

std::mutex out_mu;  // only so that lines do not interleave
std::atomic<int> wrong{0};

void log(const std::string& expected, const char* what) {
  const std::string& id = request_id.get();
  if (id != expected) ++wrong;
  std::lock_guard g(out_mu);
  std::printf("[%s] %-28s (fiber %llu, worker %d)\n", id.c_str(), what,
              static_cast<unsigned long long>(weft::this_fiber::id()),
              weft::this_fiber::worker_index());
}

// A backend call: counts itself in the request's shared counter.
void query(const std::string& expected, const char* what) {
  weft::this_fiber::sleep_for(std::chrono::milliseconds(1));
  ++backend_calls.get();
  log(expected, what);
}

int handle(int n) {
  const std::string id = "req-" + std::to_string(n);
  request_id.set(id);
  backend_calls.get() = 0;  // this request's counter, shared with its children
  log(id, "handler start");
  std::vector<weft::JoinHandle<void>> parts;
  parts.push_back(weft::spawn([id] { query(id, "user lookup"); }));
  parts.push_back(weft::spawn([id] {
    query(id, "cart lookup");
    // Nested: the grandchild gets a copy of the child's id.
    weft::spawn([id] { query(id, "price lookup (nested)"); }).join();
  }));
  // A blocking call (file I/O, a legacy client): runs on a pool thread and
  // still sees the request's values.
  parts.push_back(weft::spawn_blocking([id] {
    ++backend_calls.get();
    log(id, "audit write (blocking)");
  }));
  for (auto& p : parts) p.join();
  const int calls = backend_calls.get();
  log(id, ("handler done: " + std::to_string(calls) + " calls").c_str());
  return calls;
}

}  // namespace

int main(int argc, char** argv) {
  const int requests = argc > 1 ? std::atoi(argv[1]) : 4;
  weft::Runtime rt;
  const int total = rt.block_on([requests] {
    std::vector<weft::JoinHandle<int>> hs;
    for (int n = 0; n < requests; ++n) hs.push_back(weft::spawn([n] { return handle(n); }));
    int sum = 0;
    for (auto& h : hs) sum += h.join();
    return sum;
  });
  std::printf("%d requests, %d backend calls, %d lines with a wrong id\n", requests, total,
              wrong.load());
  return wrong == 0 && total == 4 * requests ? 0 : 1;
}

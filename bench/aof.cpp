// weft-bench-aof: weft-kv's append-only file with appendfsync always, as
// the server drives it: each fiber appends one record ("SET key:<n>
// <64-byte value>") and waits for it to be durable (write + fdatasync)
// before the next, like a connection that sends one write and waits for
// its reply. Group commit lets one fdatasync cover the records of every
// fiber that waited meanwhile, so the rate should grow with the fibers.
//
//   aof_always_<F>f_appends_per_s   records made durable per second with F
//                                   concurrent fibers (median of reps runs
//                                   of `ms` milliseconds each, fresh file
//                                   per run)
//   aof_always_<F>f_us_per_append   the wait of one fiber for one record
//                                   (F / rate), microseconds
//
// The "#" lines give the records per fdatasync (on io_uring, where every
// round is one write and one fdatasync request: records / (requests / 2)).
// Check: the file replays to exactly the records made durable (else exits 1).
//   weft-bench-aof [fibers=1,50,1000] [ms=1000] [reps=5] [dir=/tmp] [workers=N]
#include "aof.hpp"

#include <cstdlib>
#include <filesystem>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "common.hpp"

namespace {

struct Run {
  double ns = 0;
  std::uint64_t records = 0;
  std::uint64_t io_requests = 0;
};

// One timed run with `fibers` fibers on a fresh AOF in `dir`.
Run run_once(weft::Runtime& rt, const std::filesystem::path& dir, long fibers, long ms) {
  std::filesystem::remove(dir / "appendonly.aof");
  Run out;
  rt.block_on([&] {
    auto aof = kv::Aof::open(dir, kv::FsyncPolicy::always);
    aof->replay([](auto) {});
    const std::string value(64, 'v');
    std::atomic<std::uint64_t> records{0};
    std::atomic<bool> stop{false};
    const std::uint64_t io0 = rt.stats().io_requests;
    const auto t0 = wb::clock::now();
    std::vector<weft::JoinHandle<void>> hs;
    for (long f = 0; f < fibers; ++f) {
      hs.push_back(weft::spawn([&, f] {
        for (long i = 0; !stop.load(std::memory_order_relaxed); ++i) {
          const std::string key = "key:" + std::to_string(f) + ":" + std::to_string(i);
          const std::string_view argv[] = {"SET", key, value};
          aof->wait_durable(aof->append(argv));
          records.fetch_add(1, std::memory_order_relaxed);
        }
      }));
    }
    weft::this_fiber::sleep_for(std::chrono::milliseconds(ms));
    stop.store(true);
    for (auto& h : hs) h.join();
    out.ns = wb::ns_since(t0);
    out.io_requests = rt.stats().io_requests - io0;
    out.records = records.load();
    aof->flush_and_sync();
  });
  // Check: the file holds exactly the records counted.
  std::uint64_t replayed = 0;
  rt.block_on([&] {
    auto aof = kv::Aof::open(dir, kv::FsyncPolicy::no);
    const kv::ReplayResult r = aof->replay([&](auto) { ++replayed; });
    if (r.truncated_bytes != 0)
      wb::die("replay truncated %llu bytes", (unsigned long long)r.truncated_bytes);
  });
  if (replayed != out.records) {
    wb::die("%llu records counted, %llu replayed", (unsigned long long)out.records,
            (unsigned long long)replayed);
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  return wb::run_main([&] {
    wb::Args a{argc, argv};
    a.check({"fibers", "ms", "reps", "dir", "workers"});
    const long ms = a.num("ms", 1000);
    const int reps = static_cast<int>(a.num("reps", 5));
    std::vector<long> counts;
    {
      std::stringstream ss(a.str("fibers", "1,50,1000"));
      for (std::string item; std::getline(ss, item, ',');) counts.push_back(std::stol(item));
    }
    std::string tmpl = a.str("dir", "/tmp") + std::string("/weft-bench-aof-XXXXXX");
    if (::mkdtemp(tmpl.data()) == nullptr) wb::die("mkdtemp %s failed", tmpl.c_str());
    const std::filesystem::path dir = tmpl;

    weft::Config cfg = weft::Config::from_env();
    if (const long w = a.num("workers", 0); w > 0) cfg.workers = static_cast<std::size_t>(w);
    weft::Runtime rt(cfg);
    wb::comment("%s io_backend=%s dir=%s", wb::shape(rt).c_str(),
                rt.io_backend() == weft::IoBackend::io_uring ? "io_uring" : "epoll", dir.c_str());

    for (long fibers : counts) {
      std::vector<Run> runs;
      const wb::Series s = wb::repeat(reps, [&] {
        const Run r = run_once(rt, dir, fibers, ms);
        runs.push_back(r);
        return r.ns / double(r.records);  // ns per record
      });
      const double rate = 1e9 / s.med;
      const std::string name = "aof_always_" + std::to_string(fibers) + "f";
      wb::line(name + "_appends_per_s", rate, "1/s");
      wb::line(name + "_us_per_append", double(fibers) * s.med / 1000.0, "us");
      std::uint64_t records = 0, requests = 0;
      for (const Run& r : runs) {
        records += r.records;
        requests += r.io_requests;
      }
      if (rt.io_backend() == weft::IoBackend::io_uring && requests > 0) {
        wb::comment("%s: %.1f records per fdatasync (%llu records, %llu io requests); %s",
                    name.c_str(), double(records) / (double(requests) / 2.0),
                    (unsigned long long)records, (unsigned long long)requests,
                    wb::spread(s, 1.0, "ns/record").c_str());
      } else {
        wb::comment("%s: %s", name.c_str(), wb::spread(s, 1.0, "ns/record").c_str());
      }
    }
    std::filesystem::remove_all(dir);
    return 0;
  });
}

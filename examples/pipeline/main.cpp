// weft-pipeline: a file-processing pipeline of fibers and channels.
//
//   weft-pipeline --in DIR --out DIR [--readers R] [--writers W] [--batch B]
//                 [--workers N] [--io KIND]
//
// Every regular file of DIR (not recursing) is read, transformed and
// written to the output directory under the same name. The transformation
// upper-cases ASCII letters and counts lines, words and bytes (as wc does),
// and the program prints the totals:
//
//   processed 200 files: 4000 lines, 31200 words, 187000 bytes
//
// The stages, each its own fibers, joined by bounded channels (so a slow
// stage holds the ones before it back instead of letting memory grow):
//
//   read_dir ──paths──▶ read ×R ──contents──▶ transform ──results──▶ write ×W
//   (lazy listing)      (weft::stage)          (batches of B files     (weft::fan_out)
//                                               on weft::par_map)
//
// A Ticker prints a progress line on stderr every 100 ms. Everything runs in
// one nursery (weft::scope): an error in any stage (an unreadable file, a
// full disk) cancels the others, and the program reports it and exits 1.
// Built on the public API only.
#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "../common/cli.hpp"
#include "weft/fs.hpp"
#include "weft/parallel.hpp"
#include "weft/pipeline.hpp"
#include "weft/ticker.hpp"
#include "weft/weft.hpp"

namespace {

using namespace std::chrono_literals;

constexpr const char* kUsage =
    "usage: weft-pipeline --in DIR --out DIR [--readers R] [--writers W] [--batch B]\n"
    "                     [--workers N] [--io KIND]\n"
    "  --in DIR      directory whose regular files are processed\n"
    "  --out DIR     directory the results are written to (must exist)\n"
    "  --readers R   fibers reading files (default 4)\n"
    "  --writers W   fibers writing results (default 4)\n"
    "  --batch B     files transformed together on the workers (default 16)\n"
    "  --workers N   worker threads (default: one per core)\n"
    "  --io KIND     auto, io_uring or epoll\n";

struct Contents {
  std::string name;
  std::string data;
};

struct Output {
  std::string name;
  std::string data;
  long lines = 0, words = 0;
};

/// The transformation: ASCII upper case, and wc's line and word counts.
Output transform(const Contents& in) {
  Output out{in.name, in.data, 0, 0};
  bool in_word = false;
  for (char& c : out.data) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '\n') ++out.lines;
    const bool space = std::isspace(u) != 0;
    if (!space && !in_word) ++out.words;
    in_word = !space;
    if (u >= 'a' && u <= 'z') c = static_cast<char>(u - 'a' + 'A');
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  examples::Cli cli(argc, argv, "weft-pipeline", kUsage);
  const std::filesystem::path in_dir = cli.text("--in", "");
  const std::filesystem::path out_dir = cli.text("--out", "");
  const auto readers = static_cast<std::size_t>(cli.number("--readers", 1, 10'000, 4));
  const auto writers = static_cast<std::size_t>(cli.number("--writers", 1, 10'000, 4));
  const auto batch = static_cast<std::size_t>(cli.number("--batch", 1, 100'000, 16));
  const weft::Config config = cli.config();
  cli.done();
  if (in_dir.empty() || out_dir.empty()) cli.fail("--in and --out are required");

  weft::Runtime rt(config);
  return rt.block_on([&] {
    std::atomic<long> files{0}, lines{0}, words{0}, bytes{0};
    // Stops the progress line. Outside the nursery's body, which returns
    // before the fibers it spawned have ended.
    weft::CancellationSource progress_done;
    try {
      weft::scope([&](weft::Scope& s) {
        // read_dir: one fiber lists the directory lazily.
        auto [paths_tx, paths_rx] = weft::channel<std::filesystem::path>(64);
        s.spawn([&, tx = std::move(paths_tx)] {
           for (const weft::fs::DirEntry& e : weft::fs::read_dir(in_dir)) {
             if (e.type == weft::fs::FileType::regular && !tx.send(e.path).ok()) return;
           }
         }).detach();

        // read: R fibers.
        weft::Receiver<Contents> contents = weft::stage(
            s, std::move(paths_rx), 64,
            [](const std::filesystem::path& p) {
              return Contents{p.filename().string(), weft::fs::read_file(p)};
            },
            readers);

        // transform: batches on par_map, which spreads them over the workers.
        auto [results_tx, results_rx] = weft::channel<Output>(64);
        s.spawn([&, rx = std::move(contents), tx = std::move(results_tx)] {
           std::vector<Contents> pending;
           while (std::optional<Contents> c = rx.recv()) {
             pending.push_back(std::move(*c));
             while (pending.size() < batch) {  // whatever is there already
               std::optional<Contents> more = rx.try_recv().take();
               if (!more) break;
               pending.push_back(std::move(*more));
             }
             for (Output& o : weft::par_map(pending, transform)) {
               if (!tx.send(std::move(o)).ok()) return;
             }
             pending.clear();
           }
         }).detach();

        // progress line, until the writers are done.
        s.spawn([&] {
           weft::with_cancellation(progress_done.token(), [&] {
             weft::Ticker t = weft::interval(100ms);
             for (;;) {
               t.tick();
               std::fprintf(stderr, "\rweft-pipeline: %ld files, %ld bytes", files.load(),
                            bytes.load());
             }
           });
         }).detach();

        // write: W fibers.
        weft::fan_out(results_rx, writers, [&](Output o) {
          weft::fs::write_file(out_dir / o.name, o.data);
          lines.fetch_add(o.lines);
          words.fetch_add(o.words);
          bytes.fetch_add(static_cast<long>(o.data.size()));
          files.fetch_add(1);
        });
        progress_done.cancel();
      });
    } catch (const std::exception& e) {
      std::fprintf(stderr, "\nweft-pipeline: %s\n", e.what());
      return 1;
    }
    std::fprintf(stderr, "\rweft-pipeline: %ld files, %ld bytes\n", files.load(), bytes.load());
    std::printf("processed %ld files: %ld lines, %ld words, %ld bytes\n", files.load(),
                lines.load(), words.load(), bytes.load());
    return 0;
  });
}

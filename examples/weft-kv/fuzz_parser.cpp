// libFuzzer target for weft-kv's RESP2 request parser (resp.cpp).
//
//   make fuzz    builds build-fuzz/fuzz_parser and runs it for FUZZ_SECONDS; by hand:
//   clang++ -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -I examples/weft-kv
//           examples/weft-kv/fuzz_parser.cpp examples/weft-kv/resp.cpp
//
// The input is the byte stream a client sends. It is parsed twice per set of
// limits: in one read, and in reads of sizes drawn from a generator seeded
// with a hash of the input (a byte at a time, small, medium or arbitrary
// pieces, and varying prepare() sizes, so the buffer grows, compacts and
// shrinks at different points). Checked, besides "no crash, no leak, no UB"
// (ASan, UBSan):
//  - both runs yield the same commands, the same final status, the same
//    error text and the same buffered() count;
//  - prepare() gives at least what was asked; next() clears argv unless it
//    returns complete, and a complete command has at least one argument;
//  - every argument lies inside the bytes received so far, the arguments of a
//    command follow one another without overlap, and each byte is read (so
//    ASan sees a view that leaves the buffer);
//  - an error is one of Redis's protocol errors, and it is sticky;
//  - buffered() never exceeds the bytes received;
//  - each command, encoded back with Reply and parsed again, is the same
//    command (when the limits allow it).
// Two sets of limits: the defaults, except bulks up to 1 MiB (a 512 MB bulk
// header would make every such input reserve 512 MB, slowing the search
// without reaching new code; bulks of 32 KiB and more are still reserved
// ahead), and tiny ones, so the length limits are reached by small inputs.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "resp.hpp"

namespace {

using Command = std::vector<std::string>;

struct Outcome {
  std::vector<Command> commands;
  kv::ParseStatus status = kv::ParseStatus::incomplete;
  std::string error;
  std::size_t buffered = 0;
};

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "fuzz_parser: invariant broken: %s\n", what);
    std::abort();
  }
}

// splitmix64: the read sizes, reproducible from the input alone.
class Rng {
 public:
  explicit Rng(std::uint64_t seed) : state_(seed) {}
  std::uint64_t next() {
    std::uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  std::size_t below(std::size_t n) { return static_cast<std::size_t>(next() % n); }

 private:
  std::uint64_t state_;
};

std::uint64_t fnv1a(const std::uint8_t* data, std::size_t size) {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  for (std::size_t i = 0; i < size; ++i) h = (h ^ data[i]) * 0x100000001b3ULL;
  return h;
}

bool is_redis_protocol_error(const std::string& e) {
  static constexpr std::string_view kKnown[] = {
      "ERR Protocol error: too big inline request",
      "ERR Protocol error: unbalanced quotes in request",
      "ERR Protocol error: too big mbulk count string",
      "ERR Protocol error: invalid multibulk length",
      "ERR Protocol error: too big bulk count string",
      "ERR Protocol error: invalid bulk length",
  };
  if (std::find(std::begin(kKnown), std::end(kKnown), e) != std::end(kKnown)) return true;
  constexpr std::string_view kDollar = "ERR Protocol error: expected '$', got '";
  return e.size() == kDollar.size() + 2 && e.starts_with(kDollar) && e.back() == '\'' &&
         e[kDollar.size()] != '$' && e[kDollar.size()] != '\r' && e[kDollar.size()] != '\n' &&
         e[kDollar.size()] != '\0';
}

// Parses what was received so far; records the commands and the final status.
void drain(kv::RequestParser& parser, std::vector<std::string_view>& argv, Outcome& out,
           const char* data_end, std::size_t received) {
  for (;;) {
    argv.assign(1, std::string_view("stale"));
    const kv::ParseStatus status = parser.next(argv);
    out.status = status;
    check(parser.buffered() <= received, "buffered() exceeds the bytes received");
    if (status != kv::ParseStatus::complete) {
      check(argv.empty(), "argv not cleared on incomplete or error");
      break;
    }
    check(!argv.empty(), "a complete command without arguments");
    // Addresses as integers: data_end - received may lie before the buffer.
    const auto end = reinterpret_cast<std::uintptr_t>(data_end);
    std::uintptr_t previous_end = end - received;
    Command command;
    command.reserve(argv.size());
    for (const std::string_view a : argv) {
      const auto begin = reinterpret_cast<std::uintptr_t>(a.data());
      check(begin >= previous_end, "argument before the received bytes or overlapping");
      check(begin <= end && a.size() <= end - begin, "argument past the received bytes");
      previous_end = begin + a.size();
      command.emplace_back(a);  // reads every byte: ASan checks the view
    }
    out.commands.push_back(std::move(command));
  }
  if (out.status == kv::ParseStatus::error) {
    const std::string first = parser.error();
    check(is_redis_protocol_error(first), "an error text Redis does not send");
    check(parser.next(argv) == kv::ParseStatus::error && argv.empty(), "error not sticky");
    check(parser.error() == first, "error text changed");
  } else {
    check(parser.error().empty(), "error text without an error");
  }
}

// Feeds data[0, size) in one read (rng == nullptr) or in pieces.
Outcome run(const std::uint8_t* data, std::size_t size, const kv::ParseLimits& limits, Rng* rng) {
  kv::RequestParser parser(limits);
  std::vector<std::string_view> argv;
  Outcome out;
  // Tiny pieces only for small inputs: a 70 KB input a byte at a time would
  // take most of the fuzzing time.
  const std::size_t mode = rng == nullptr ? 0 : size <= 4096 ? rng->below(4) : 2 + rng->below(2);
  std::size_t fed = 0;
  do {
    std::size_t piece = size - fed;
    std::size_t ask = piece;
    if (rng != nullptr) {
      switch (mode) {
        case 0:
          piece = std::min<std::size_t>(piece, 1);
          break;
        case 1:
          piece = std::min(piece, 1 + rng->below(8));
          break;
        case 2:
          piece = std::min(piece, 1 + rng->below(512));
          break;
        default:
          piece = std::min(piece, 1 + rng->below(size + 1));
          break;
      }
      static constexpr std::size_t kAsks[] = {0, 1, 7, 64, 4096, 16 * 1024, 70 * 1024};
      ask = std::max(piece, kAsks[rng->below(std::size(kAsks))]);
    }
    const std::span<char> room = parser.prepare(ask);
    check(room.size() >= ask, "prepare() gave less than asked");
    if (piece > 0) std::memcpy(room.data(), data + fed, piece);
    parser.commit(piece);
    fed += piece;
    drain(parser, argv, out, room.data() + piece, fed);
  } while (fed < size);
  out.error = parser.error();
  out.buffered = parser.buffered();
  return out;
}

// A command encoded as a multibulk request parses back to itself.
void check_round_trip(const Command& command, const kv::ParseLimits& limits) {
  if (command.size() > limits.max_multibulk_len) return;
  for (const auto& a : command) {
    if (a.size() > limits.max_bulk_len) return;
  }
  std::string wire;
  kv::Reply::array_header(wire, command.size());
  for (const auto& a : command) kv::Reply::bulk(wire, a);
  kv::RequestParser parser(limits);
  const std::span<char> room = parser.prepare(wire.size());
  std::memcpy(room.data(), wire.data(), wire.size());
  parser.commit(wire.size());
  std::vector<std::string_view> argv;
  check(parser.next(argv) == kv::ParseStatus::complete, "re-encoded command does not parse");
  check(argv.size() == command.size() && std::equal(argv.begin(), argv.end(), command.begin()),
        "re-encoded command parses differently");
  check(parser.next(argv) == kv::ParseStatus::incomplete && parser.buffered() == 0,
        "re-encoded command leaves bytes behind");
}

void check_limits(const std::uint8_t* data, std::size_t size, const kv::ParseLimits& limits,
                  Rng& rng) {
  const Outcome whole = run(data, size, limits, nullptr);
  const Outcome pieces = run(data, size, limits, &rng);
  check(whole.commands == pieces.commands, "split input gives other commands");
  check(whole.status == pieces.status, "split input gives another final status");
  check(whole.error == pieces.error, "split input gives another error");
  check(whole.buffered == pieces.buffered, "split input leaves another buffered() count");
  for (const auto& command : whole.commands) check_round_trip(command, limits);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  Rng rng(fnv1a(data, size));

  kv::ParseLimits defaults;
  defaults.max_bulk_len = std::size_t{1} << 20;
  check_limits(data, size, defaults, rng);

  kv::ParseLimits tiny;
  tiny.max_bulk_len = 16;
  tiny.max_multibulk_len = 4;
  tiny.max_inline_len = 32;
  check_limits(data, size, tiny, rng);

  // The integer encoder against the bytes' first 8 as a number.
  if (size >= 8) {
    std::int64_t v;
    std::memcpy(&v, data, sizeof v);
    std::string out;
    kv::Reply::integer(out, v);
    check(out == ":" + std::to_string(v) + "\r\n", "Reply::integer");
  }
  return 0;
}

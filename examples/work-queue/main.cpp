// weft-work-queue: a job queue with retries and deadlines.
//
//   weft-work-queue [--jobs N] [--consumers C] [--capacity Q] [--attempts A]
//                   [--attempt-timeout-ms T] [--job-deadline-ms D]
//                   [--workers W] [--io KIND]
//
// A producer submits N jobs to a bounded queue (a weft channel of capacity
// Q: when the consumers fall behind, the producer waits). C consumers take
// jobs off it (weft::fan_out). Each job is run by weft::retry with an
// exponential, jittered Backoff of at most A attempts and an overall
// deadline D; each attempt runs under fail_after(T), which cancels the
// attempt's blocking calls when it runs late. Results go to a collector on
// another channel; a Ticker prints a progress line on stderr.
//
// The jobs simulate three kinds of trouble, so every path is exercised and
// the outcome is known in advance:
//   * job i fails its first i % 4 attempts with a transient error (retried);
//   * job i with i % 20 == 13 hangs (each attempt times out, retried until
//     the attempts or the deadline run out: "timed out");
//   * job i with i % 50 == 37 fails with a permanent error: not retried.
// With the defaults (100 jobs) the summary on stdout is
//
//   jobs 100: 93 done (68 after a retry, 141 retries), 2 failed, 5 timed out
//
// The exit status is 0. Built on the public API only.
#include <atomic>
#include <chrono>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <variant>

#include "../common/cli.hpp"
#include "weft/pipeline.hpp"
#include "weft/ticker.hpp"
#include "weft/weft.hpp"

namespace {

using namespace std::chrono_literals;

constexpr const char* kUsage =
    "usage: weft-work-queue [--jobs N] [--consumers C] [--capacity Q] [--attempts A]\n"
    "                       [--attempt-timeout-ms T] [--job-deadline-ms D]\n"
    "                       [--workers W] [--io KIND]\n"
    "  --jobs N                jobs to run (default 100)\n"
    "  --consumers C           fibers taking jobs off the queue (default 4)\n"
    "  --capacity Q            jobs the queue holds before the producer waits (default 8)\n"
    "  --attempts A            attempts per job, the first included (default 4)\n"
    "  --attempt-timeout-ms T  deadline of one attempt (default 300)\n"
    "  --job-deadline-ms D     deadline of a job, all attempts and waits (default 10000)\n"
    "  --workers W             worker threads (default: one per core)\n"
    "  --io KIND               auto, io_uring or epoll\n";

struct Job {
  long id = 0;
};

/// An error that retrying cannot fix.
struct PermanentError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// One attempt of job `j` (attempt = 1, 2, ...): the simulated work.
/// @throws std::runtime_error (transient), PermanentError, weft::Cancelled.
void attempt_job(const Job& j, std::size_t attempt) {
  if (j.id % 50 == 37) throw PermanentError("job " + std::to_string(j.id) + ": bad input");
  if (j.id % 20 == 13) weft::this_fiber::sleep_for(1h);  // hangs: its deadline cancels it
  weft::this_fiber::sleep_for(1ms);                      // the "work"
  if (attempt <= static_cast<std::size_t>(j.id % 4)) {
    throw std::runtime_error("job " + std::to_string(j.id) + ": transient failure");
  }
}

enum class Outcome { done, failed, timed_out };

struct Result {
  long id = 0;
  Outcome outcome = Outcome::done;
  std::size_t attempts = 0;
};

/// Runs one job to its outcome: retried on transient errors and timeouts,
/// never on a permanent error, within the attempts and the job's deadline.
Result run_job(const Job& j, const weft::Backoff& backoff,
               std::chrono::milliseconds attempt_timeout, std::chrono::milliseconds job_deadline) {
  Result r{j.id, Outcome::done, 0};
  try {
    const auto last = weft::retry(
        [&](std::size_t attempt) -> std::variant<std::monostate, PermanentError> {
          r.attempts = attempt;
          try {
            weft::fail_after(attempt_timeout, [&] { attempt_job(j, attempt); });
          } catch (const PermanentError& e) {
            return e;  // a value, not an exception: retry() stops here
          }
          return std::monostate{};
        },
        backoff, weft::Deadline::after(job_deadline));
    if (std::holds_alternative<PermanentError>(last)) r.outcome = Outcome::failed;
  } catch (const weft::TimedOut&) {
    r.outcome = Outcome::timed_out;  // the last attempt ran out of time
  } catch (const weft::Cancelled&) {
    throw;
  } catch (const std::exception&) {
    r.outcome = Outcome::failed;  // transient failures outlasted the attempts
  }
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  examples::Cli cli(argc, argv, "weft-work-queue", kUsage);
  const long jobs = cli.number("--jobs", 0, 10'000'000, 100);
  const auto consumers = static_cast<std::size_t>(cli.number("--consumers", 1, 100'000, 4));
  const auto capacity = static_cast<std::size_t>(cli.number("--capacity", 1, 1'000'000, 8));
  weft::Backoff backoff;
  backoff.initial = 2ms;
  backoff.max = 50ms;
  backoff.multiplier = 2.0;
  backoff.jitter = 0.2;
  backoff.max_attempts = static_cast<std::size_t>(cli.number("--attempts", 1, 1000, 4));
  const auto attempt_timeout =
      std::chrono::milliseconds(cli.number("--attempt-timeout-ms", 1, 3'600'000, 300));
  const auto job_deadline =
      std::chrono::milliseconds(cli.number("--job-deadline-ms", 1, 86'400'000, 10'000));
  const weft::Config config = cli.config();
  cli.done();

  weft::Runtime rt(config);
  rt.block_on([&] {
    // Pairs, not structured bindings: the fibers below capture them (clang 14
    // cannot capture a structured binding in a lambda).
    auto queue = weft::channel<Job>(capacity);
    auto results = weft::channel<Result>(capacity);
    std::atomic<long> finished{0};
    long done = 0, failed = 0, timed_out = 0, after_retry = 0, retries = 0;
    weft::scope([&](weft::Scope& s) {
      s.spawn([&, tx = std::move(queue.first)] {
         for (long i = 0; i < jobs; ++i) {
           if (!tx.send(Job{i}).ok()) return;  // the consumers are gone
         }
       }).detach();  // closing: tx dies with the fiber
      s.spawn([&, rx = std::move(queue.second), tx = std::move(results.first)] {
         weft::fan_out(rx, consumers, [&](Job j) {
           (void)tx.send(run_job(j, backoff, attempt_timeout, job_deadline));
         });
       }).detach();  // closing: tx dies with the fiber, the collector sees the end
      s.spawn([&] {
         weft::Ticker progress = weft::interval(100ms);
         for (;;) {  // until the collector cancels the scope
           progress.tick();
           std::fprintf(stderr, "\rweft-work-queue: %ld/%ld jobs", finished.load(), jobs);
         }
       }).detach();
      while (std::optional<Result> r = results.second.recv()) {
        finished.fetch_add(1);
        switch (r->outcome) {
          case Outcome::done:
            ++done;
            if (r->attempts > 1) {
              ++after_retry;
              retries += static_cast<long>(r->attempts - 1);
            }
            break;
          case Outcome::failed:
            ++failed;
            break;
          case Outcome::timed_out:
            ++timed_out;
            break;
        }
      }
      s.cancel();  // stops the progress line
    });
    std::fprintf(stderr, "\rweft-work-queue: %ld/%ld jobs\n", finished.load(), jobs);
    std::printf("jobs %ld: %ld done (%ld after a retry, %ld retries), %ld failed, %ld timed out\n",
                jobs, done, after_retry, retries, failed, timed_out);
  });
  return 0;
}

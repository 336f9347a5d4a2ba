// Channel pipelines (seed 000 §5.3): fan-out to workers, fan-in of several
// receivers, and bounded map stages, all as fibers of a weft::Scope so that
// cancellation and failures flow through the whole pipeline (the scope's
// rules: the first failure cancels every stage and is rethrown by scope()).
//
//   weft::scope([&](weft::Scope& s) {
//     auto lines  = weft::stage(s, paths, 16, [](std::string p) { return read(p); }, 4);
//     auto merged = weft::merge(s, 16, std::move(lines), std::move(extra));
//     weft::fan_out(merged, 8, [](Line l) { index(l); });   // waits for the workers
//   });
#pragma once

#include <cstddef>
#include <memory>
#include <stdexcept>
#include <type_traits>
#include <utility>
#include <vector>

#include "weft/channel.hpp"
#include "weft/scope.hpp"

namespace weft {

/// Runs `workers` fibers that each receive from `rx` and call fn(value)
/// until the channel is closed and drained, and waits for all of them (in
/// a nested scope). A failing fn cancels the other workers and its
/// exception is rethrown here; cancelling the caller cancels the workers.
/// @throws std::invalid_argument for workers == 0 ("weft: fan_out needs at
/// least one worker"); what fn throws; weft::Cancelled.
template <class T, class F>
void fan_out(const Receiver<T>& rx, std::size_t workers, F fn) {
  if (workers == 0) throw std::invalid_argument("weft: fan_out needs at least one worker");
  weft::scope([&](Scope& s) {
    for (std::size_t i = 0; i < workers; ++i) {
      s.spawn([&rx, &fn] {
        while (std::optional<T> v = rx.recv()) fn(std::move(*v));
      });
    }
  });
}

/// Fan-in: a receiver of everything the `inputs` deliver, in the order it
/// arrives, closed once every input is closed and drained. One forwarding
/// fiber per input runs in `s`; if the returned receiver is dropped, they
/// stop (their sends fail) and close their inputs.
/// @throws as Scope::spawn; std::bad_alloc.
template <class T, class... Rx>
Receiver<T> merge(Scope& s, std::size_t capacity, Receiver<T> first, Rx... rest) {
  auto [tx, out] = channel<T>(capacity);
  auto forward = [&s, tx = tx](Receiver<T> in) {
    s.spawn([in = std::move(in), tx]() {
      while (std::optional<T> v = in.recv()) {
        if (!tx.send(std::move(*v)).ok()) {
          in.close();
          return;
        }
      }
    });
  };
  forward(std::move(first));
  (forward(Receiver<T>(std::move(rest))), ...);
  return out;  // tx copies live in the forwarders: the last one out closes it
}

/// A bounded map stage: `workers` fibers in `s` receive from `in`, call
/// fn(value) and send the result on a channel of `capacity`, which is
/// returned; it closes once `in` is closed and drained and every worker is
/// done. With several workers the output order is not the input order. A
/// dropped output receiver stops the workers and closes `in`. A failing fn
/// fails the scope (which cancels the other stages).
/// @throws std::invalid_argument for workers == 0 ("weft: stage needs at
/// least one worker"); as Scope::spawn.
template <class T, class F>
auto stage(Scope& s, Receiver<T> in, std::size_t capacity, F fn, std::size_t workers = 1)
    -> Receiver<std::invoke_result_t<F&, T&&>> {
  using U = std::invoke_result_t<F&, T&&>;
  if (workers == 0) throw std::invalid_argument("weft: stage needs at least one worker");
  auto [tx, out] = channel<U>(capacity);
  auto shared_fn = std::make_shared<F>(std::move(fn));
  for (std::size_t i = 0; i < workers; ++i) {
    s.spawn([in, tx = tx, shared_fn]() {
      while (std::optional<T> v = in.recv()) {
        if (!tx.send((*shared_fn)(std::move(*v))).ok()) {
          in.close();
          return;
        }
      }
    });
  }
  return out;
}

}  // namespace weft

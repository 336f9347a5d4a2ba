// weft::Synchronized<T>: a value reachable only with its weft::Mutex held
// (part of weft/sync.hpp).
#pragma once

#include <chrono>
#include <mutex>  // std::lock_guard
#include <optional>
#include <utility>

#include "weft/mutex.hpp"

namespace weft {

/// A value that can only be reached with its Mutex held.
///
///   weft::Synchronized<std::map<int, int>> m;
///   m.lock()->emplace(1, 2);
///   m.with_lock([](auto& map) { map.clear(); });
template <class T>
class Synchronized {
 public:
  /// Holds the lock; gives access to the value. Move-only; unlocks when
  /// destroyed.
  template <class V>
  class Guard {
   public:
    /// Takes over o's lock.
    Guard(Guard&& o) noexcept : m_(std::exchange(o.m_, nullptr)), v_(o.v_) {}
    Guard& operator=(Guard&&) = delete;
    ~Guard() {
      if (m_ != nullptr) m_->unlock();
    }
    /// The protected value (valid while the guard lives).
    V& operator*() const noexcept { return *v_; }
    /// The protected value (valid while the guard lives).
    V* operator->() const noexcept { return v_; }

   private:
    friend class Synchronized;
    Guard(Mutex* m, V* v) noexcept : m_(m), v_(v) {}
    Mutex* m_;
    V* v_;
  };

  /// Constructs the protected value from args.
  template <class... Args>
  explicit Synchronized(Args&&... args) : value_(std::forward<Args>(args)...) {}

  /// Locks and returns a guard. @throws weft::Cancelled.
  Guard<T> lock() {
    mutex_.lock();
    return Guard<T>(&mutex_, &value_);
  }
  /// A guard if the lock is free now.
  std::optional<Guard<T>> try_lock() noexcept {
    if (!mutex_.try_lock()) return std::nullopt;
    return Guard<T>(&mutex_, &value_);
  }
  /// A guard if the lock could be taken within `timeout`.
  template <class Rep, class Period>
  std::optional<Guard<T>> try_lock_for(std::chrono::duration<Rep, Period> timeout) {
    if (!mutex_.try_lock_for(timeout)) return std::nullopt;
    return Guard<T>(&mutex_, &value_);
  }
  /// Runs fn(value) with the lock held and returns its result.
  template <class F>
  decltype(auto) with_lock(F&& fn) {
    std::lock_guard g(mutex_);
    return std::forward<F>(fn)(value_);
  }

 private:
  Mutex mutex_;
  T value_;
};

}  // namespace weft

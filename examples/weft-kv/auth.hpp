// weft-kv: the `requirepass` password (Redis's default user without ACLs).
#pragma once

#include <atomic>
#include <mutex>
#include <string>
#include <string_view>

namespace kv {

/// The password every client must give (AUTH, HELLO AUTH) before other
/// commands, as Redis's `requirepass`: empty means none (Redis's default
/// user is then "nopass" and accepts any password). Set at start
/// (--requirepass) and by CONFIG SET; read by every command's NOAUTH check
/// (required(), one relaxed load) and by AUTH. Thread- and fiber-safe.
class Password {
 public:
  explicit Password(std::string initial = {})
      : required_(!initial.empty()), text_(std::move(initial)) {}
  Password(const Password&) = delete;
  Password& operator=(const Password&) = delete;

  /// True while a password is set. Relaxed: a client connecting while
  /// CONFIG SET changes it sees either value, as in Redis (where the
  /// change is atomic with respect to the one thread that serves both).
  bool required() const noexcept { return required_.load(std::memory_order_relaxed); }
  /// The password ("" when none). @throws std::bad_alloc.
  std::string get() const {
    std::lock_guard lk(mu_);
    return text_;
  }
  /// Replaces it ("" removes it). @throws std::bad_alloc (nothing changed).
  void set(std::string_view p) {
    std::string copy(p);
    std::lock_guard lk(mu_);
    text_.swap(copy);
    required_.store(!text_.empty(), std::memory_order_relaxed);
  }
  /// Whether `user`/`pass` authenticate as Redis's default user: the user
  /// must be "default"; with no password set any password is accepted
  /// (ACLAuthenticateUser on a nopass user).
  bool accepts(std::string_view user, std::string_view pass) const {
    if (user != "default") return false;
    std::lock_guard lk(mu_);
    return text_.empty() || text_ == pass;
  }

 private:
  std::atomic<bool> required_;  // == !text_.empty(), stored under mu_
  mutable std::mutex mu_;       // guards text_
  std::string text_;
};

}  // namespace kv

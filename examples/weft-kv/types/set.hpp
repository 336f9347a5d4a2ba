// weft-kv: the set value type (Redis 7.0's OBJ_SET, src/t_set.c).
//
// Two encodings, as Redis 7.0 reports them (OBJECT ENCODING; the listpack
// encoding of small sets came with Redis 7.2):
//  - "intset" while every member is an integer in Redis's canonical form
//    (string2ll: no '+', no leading zeros, fits 64 bits) and there are at
//    most set-max-intset-entries of them: a sorted vector of int64, so
//    SMEMBERS, SSCAN and the set algebra answer in ascending order as
//    Redis's intset does;
//  - "hashtable" otherwise: a Dict of members (dict.hpp).
// A set becomes a hashtable when a non-integer is added or the intset
// grows past the limit, and never goes back — except that SPOP with a
// count rebuilds the rest as Redis does, which may make an intset again.
//
// Not thread-safe: the keyspace shard's lock guards it (Object).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "dict.hpp"
#include "keyspace.hpp"

namespace kv {

class SetObject final : public Object {
 public:
  /// An empty intset (Redis's createIntsetObject: where the set algebra
  /// builds its results).
  SetObject() = default;
  /// An empty set in the encoding Redis's setTypeCreate picks for a first
  /// member: intset for an integer, else hashtable.
  explicit SetObject(std::string_view first_member);
  /// A deep copy, in the same encoding (COPY). @throws std::bad_alloc.
  SetObject(const SetObject& o);

  // Object.
  Type type() const noexcept override { return Type::set; }
  std::int64_t bytes() const noexcept override { return bytes_; }
  const char* encoding() const noexcept override { return intset_ ? "intset" : "hashtable"; }
  std::unique_ptr<Object> clone() const override { return std::make_unique<SetObject>(*this); }
  void for_each_member(const std::function<void(std::string_view)>& visit) const override {
    for_each(visit);
  }

  /// Number of members.
  std::size_t size() const noexcept { return intset_ ? ints_.size() : table_.size(); }
  /// True while encoded as an intset.
  bool intset() const noexcept { return intset_; }

  /// True if `member` is in the set (for an intset: only a canonical
  /// integer can be).
  bool contains(std::string_view member) const noexcept;
  /// Adds member; true if it is new. `max_intset` is set-max-intset-entries.
  /// @throws std::bad_alloc.
  bool add(std::string_view member, std::int64_t max_intset);
  /// Removes member; true if it was there.
  bool remove(std::string_view member) noexcept;

  /// Calls fn(member) for every member, in the encoding's order (ascending
  /// for an intset). fn must not change the set.
  template <class F>
  void for_each(F&& fn) const {
    if (intset_) {
      char buf[24];
      for (std::int64_t v : ints_) fn(format(v, buf));
    } else {
      table_.for_each([&](const Node& n) { fn(std::string_view(n.key)); });
    }
  }

  /// A member chosen at random (the set must not be empty), as text.
  template <class Rng>
  std::string random(Rng& rng) const {
    if (intset_) {
      char buf[24];
      return std::string(format(ints_[static_cast<std::size_t>(rng()) % ints_.size()], buf));
    }
    return table_.random(rng)->key;
  }

  /// One SSCAN step (Dict::scan) over a hashtable; an intset is returned
  /// whole with cursor 0, as in Redis.
  template <class F>
  std::uint64_t scan(std::uint64_t cursor, F&& fn) const {
    if (intset_) {
      for_each(fn);
      return 0;
    }
    return table_.scan(cursor, [&](const Node& n) { fn(std::string_view(n.key)); });
  }

 private:
  struct Node {
    Node* next = nullptr;
    std::uint64_t hash = 0;
    std::string key;
  };
  static constexpr std::int64_t kIntOverhead = 8;
  static constexpr std::int64_t kNodeOverhead = 64;

  static std::string_view format(std::int64_t v, char (&buf)[24]) noexcept;
  void convert();  // intset -> hashtable
  void insert_node(std::string_view member, std::uint64_t h);

  bool intset_ = true;
  std::vector<std::int64_t> ints_;  // intset, ascending
  Dict<Node> table_;                // hashtable
  std::int64_t bytes_ = 0;
};

}  // namespace kv

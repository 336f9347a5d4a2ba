// weft-kv: the hash value type (Redis's OBJ_HASH, src/t_hash.c).
//
// Two encodings, as Redis reports them (OBJECT ENCODING):
//  - "listpack" while the hash has at most hash-max-listpack-entries fields
//    and no field or value longer than hash-max-listpack-value bytes: the
//    pairs in insertion order in one vector, looked up linearly (Redis's
//    listpack is a byte array scanned the same way). HGETALL, HKEYS, HSCAN
//    then answer in the order Redis does.
//  - "hashtable" otherwise: a Dict of nodes (dict.hpp), so HSCAN's cursor
//    keeps Redis's guarantee across resizes.
// The conversion is one-way, as in Redis: a hash that became a hashtable
// stays one however small it gets.
//
// Not thread-safe: the keyspace shard's lock guards it (Object).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "dict.hpp"
#include "keyspace.hpp"

namespace kv {

class HashObject final : public Object {
 public:
  /// The listpack thresholds (Settings' hash-max-listpack-entries and
  /// hash-max-listpack-value) in force for a change.
  struct Limits {
    std::int64_t max_entries = 512;
    std::int64_t max_value = 64;
  };

  /// An empty listpack.
  HashObject() = default;
  /// A deep copy, in the same encoding (COPY). @throws std::bad_alloc.
  HashObject(const HashObject& o);

  // Object.
  Type type() const noexcept override { return Type::hash; }
  std::int64_t bytes() const noexcept override { return bytes_; }
  const char* encoding() const noexcept override { return listpack_ ? "listpack" : "hashtable"; }
  std::unique_ptr<Object> clone() const override { return std::make_unique<HashObject>(*this); }

  /// Number of fields.
  std::size_t size() const noexcept { return listpack_ ? pairs_.size() : table_.size(); }
  /// True while encoded as a listpack.
  bool listpack() const noexcept { return listpack_; }

  /// The value of `field`, or nullptr (valid until the next change).
  const std::string* get(std::string_view field) const noexcept;

  /// Converts to a hashtable now if one of `args` (fields and values about
  /// to be set) is longer than the limit (Redis's hashTypeTryConversion).
  /// @throws std::bad_alloc (unchanged).
  void prepare(std::span<const std::string_view> args, const Limits& limits);

  /// Sets field to value; true if the field is new. Converts when the
  /// field or value is too long for a listpack or the listpack grows past
  /// its entry limit (Redis's hashTypeSet). @throws std::bad_alloc.
  bool set(std::string_view field, std::string_view value, const Limits& limits);

  /// Removes field; true if it was there.
  bool erase(std::string_view field) noexcept;

  /// Calls fn(field, value) for every pair, in the encoding's order.
  template <class F>
  void for_each(F&& fn) const {
    if (listpack_) {
      for (const auto& [f, v] : pairs_) fn(std::string_view(f), std::string_view(v));
    } else {
      table_.for_each(
          [&](const Node& n) { fn(std::string_view(n.key), std::string_view(n.value)); });
    }
  }

  /// A pair chosen at random (the hash must not be empty).
  template <class Rng>
  std::pair<std::string_view, std::string_view> random(Rng& rng) const {
    if (listpack_) {
      const auto& p = pairs_[static_cast<std::size_t>(rng()) % pairs_.size()];
      return {p.first, p.second};
    }
    const Node* n = table_.random(rng);
    return {n->key, n->value};
  }

  /// One HSCAN step over a hashtable (Dict::scan): fn(field, value) for a
  /// bucket's pairs, returns the next cursor. For a listpack, every pair
  /// and cursor 0 (as Redis: small encodings are returned whole).
  template <class F>
  std::uint64_t scan(std::uint64_t cursor, F&& fn) const {
    if (listpack_) {
      for_each(fn);
      return 0;
    }
    return table_.scan(
        cursor, [&](const Node& n) { fn(std::string_view(n.key), std::string_view(n.value)); });
  }

 private:
  struct Node {
    Node* next = nullptr;
    std::uint64_t hash = 0;
    std::string key;
    std::string value;
  };
  // Estimated bytes of one pair in each encoding (the strings' headers and
  // the node or vector slot; the characters are added).
  static constexpr std::int64_t kPairOverhead = 64;
  static constexpr std::int64_t kNodeOverhead = 96;

  void convert();  // listpack -> hashtable

  bool listpack_ = true;
  std::vector<std::pair<std::string, std::string>> pairs_;  // listpack
  Dict<Node> table_;                                        // hashtable
  std::int64_t bytes_ = 0;
};

}  // namespace kv

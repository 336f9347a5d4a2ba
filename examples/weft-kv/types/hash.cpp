// weft-kv: the hash value type (types/hash.hpp).
#include "types/hash.hpp"

namespace kv {

HashObject::HashObject(const HashObject& o)
    : Object(), listpack_(o.listpack_), pairs_(o.pairs_), bytes_(o.bytes_) {
  o.table_.for_each([&](const Node& n) {
    auto copy = std::make_unique<Node>();
    copy->hash = n.hash;
    copy->key = n.key;
    copy->value = n.value;
    table_.insert(std::move(copy));
  });
}

const std::string* HashObject::get(std::string_view field) const noexcept {
  if (listpack_) {
    for (const auto& p : pairs_)
      if (p.first == field) return &p.second;
    return nullptr;
  }
  const Node* n = table_.find(field, hash_bytes(field));
  return n != nullptr ? &n->value : nullptr;
}

void HashObject::prepare(std::span<const std::string_view> args, const Limits& limits) {
  if (!listpack_) return;
  for (std::string_view a : args) {
    if (static_cast<std::int64_t>(a.size()) > limits.max_value) return convert();
  }
}

bool HashObject::set(std::string_view field, std::string_view value, const Limits& limits) {
  if (listpack_ && (static_cast<std::int64_t>(field.size()) > limits.max_value ||
                    static_cast<std::int64_t>(value.size()) > limits.max_value))
    convert();
  if (listpack_) {
    for (auto& p : pairs_) {
      if (p.first == field) {
        bytes_ +=
            static_cast<std::int64_t>(value.size()) - static_cast<std::int64_t>(p.second.size());
        p.second.assign(value);
        return false;
      }
    }
    pairs_.emplace_back(field, value);
    bytes_ += kPairOverhead + static_cast<std::int64_t>(field.size() + value.size());
    if (static_cast<std::int64_t>(pairs_.size()) > limits.max_entries) convert();
    return true;
  }
  const std::uint64_t h = hash_bytes(field);
  if (Node* n = table_.find(field, h)) {
    bytes_ += static_cast<std::int64_t>(value.size()) - static_cast<std::int64_t>(n->value.size());
    n->value.assign(value);
    return false;
  }
  auto n = std::make_unique<Node>();
  n->hash = h;
  n->key.assign(field);
  n->value.assign(value);
  table_.insert(std::move(n));
  bytes_ += kNodeOverhead + static_cast<std::int64_t>(field.size() + value.size());
  return true;
}

bool HashObject::erase(std::string_view field) noexcept {
  if (listpack_) {
    for (auto it = pairs_.begin(); it != pairs_.end(); ++it) {
      if (it->first == field) {
        bytes_ -= kPairOverhead + static_cast<std::int64_t>(it->first.size() + it->second.size());
        pairs_.erase(it);
        return true;
      }
    }
    return false;
  }
  Node* n = table_.find(field, hash_bytes(field));
  if (n == nullptr) return false;
  bytes_ -= kNodeOverhead + static_cast<std::int64_t>(n->key.size() + n->value.size());
  table_.unlink(n);
  return true;
}

void HashObject::convert() {
  // Built aside first: a bad_alloc leaves the listpack as it was.
  Dict<Node> table;
  std::int64_t bytes = 0;
  for (const auto& [f, v] : pairs_) {
    auto n = std::make_unique<Node>();
    n->hash = hash_bytes(f);
    n->key = f;
    n->value = v;
    bytes += kNodeOverhead + static_cast<std::int64_t>(f.size() + v.size());
    table.insert(std::move(n));
  }
  table_.swap(table);
  std::vector<std::pair<std::string, std::string>>().swap(pairs_);
  bytes_ = bytes;
  listpack_ = false;
}

}  // namespace kv

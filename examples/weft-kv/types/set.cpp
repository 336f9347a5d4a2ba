// weft-kv: the set value type (types/set.hpp).
#include "types/set.hpp"

#include <algorithm>
#include <charconv>

#include "numbers.hpp"

namespace kv {

namespace {
// Redis's string2ll (the intset test: isSdsRepresentableAsLongLong).
bool as_int(std::string_view s, std::int64_t& v) noexcept {
  long long n = 0;
  if (!parse_ll(s, n)) return false;
  v = n;
  return true;
}
}  // namespace

SetObject::SetObject(std::string_view first_member) {
  std::int64_t v = 0;
  intset_ = as_int(first_member, v);
}

SetObject::SetObject(const SetObject& o)
    : Object(), intset_(o.intset_), ints_(o.ints_), bytes_(o.bytes_) {
  o.table_.for_each([&](const Node& n) { insert_node(n.key, n.hash); });
}

std::string_view SetObject::format(std::int64_t v, char (&buf)[24]) noexcept {
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  return std::string_view(buf, static_cast<std::size_t>(r.ptr - buf));
}

bool SetObject::contains(std::string_view member) const noexcept {
  if (intset_) {
    std::int64_t v = 0;
    return as_int(member, v) && std::binary_search(ints_.begin(), ints_.end(), v);
  }
  return table_.find(member, hash_bytes(member)) != nullptr;
}

void SetObject::insert_node(std::string_view member, std::uint64_t h) {
  auto n = std::make_unique<Node>();
  n->hash = h;
  n->key.assign(member);
  table_.insert(std::move(n));
}

bool SetObject::add(std::string_view member, std::int64_t max_intset) {
  if (intset_) {
    std::int64_t v = 0;
    if (as_int(member, v)) {
      const auto it = std::lower_bound(ints_.begin(), ints_.end(), v);
      if (it != ints_.end() && *it == v) return false;
      ints_.insert(it, v);
      bytes_ += kIntOverhead;
      if (static_cast<std::int64_t>(ints_.size()) > max_intset) convert();
      return true;
    }
    convert();
  }
  const std::uint64_t h = hash_bytes(member);
  if (table_.find(member, h) != nullptr) return false;
  insert_node(member, h);
  bytes_ += kNodeOverhead + static_cast<std::int64_t>(member.size());
  return true;
}

bool SetObject::remove(std::string_view member) noexcept {
  if (intset_) {
    std::int64_t v = 0;
    if (!as_int(member, v)) return false;
    const auto it = std::lower_bound(ints_.begin(), ints_.end(), v);
    if (it == ints_.end() || *it != v) return false;
    ints_.erase(it);
    bytes_ -= kIntOverhead;
    return true;
  }
  Node* n = table_.find(member, hash_bytes(member));
  if (n == nullptr) return false;
  bytes_ -= kNodeOverhead + static_cast<std::int64_t>(n->key.size());
  table_.unlink(n);
  return true;
}

void SetObject::convert() {
  // Built aside first: a bad_alloc leaves the intset as it was.
  Dict<Node> table;
  std::int64_t bytes = 0;
  char buf[24];
  for (std::int64_t v : ints_) {
    const std::string_view s = format(v, buf);
    auto n = std::make_unique<Node>();
    n->hash = hash_bytes(s);
    n->key.assign(s);
    bytes += kNodeOverhead + static_cast<std::int64_t>(s.size());
    table.insert(std::move(n));
  }
  table_.swap(table);
  std::vector<std::int64_t>().swap(ints_);
  bytes_ = bytes;
  intset_ = false;
}

}  // namespace kv

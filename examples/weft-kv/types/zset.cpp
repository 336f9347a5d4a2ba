// weft-kv: the sorted-set value (zset.hpp). The skip list follows Redis's
// src/t_zset.c (zslInsert, zslDeleteNode, zslUpdateScore, zslGetRank,
// zslGetElementByRank, zsl{First,Last}In{,Lex}Range) step for step, so that
// ranks, spans and the order of equal scores are Redis's.
#include "types/zset.hpp"

#include <charconv>
#include <climits>
#include <cmath>
#include <cstdio>
#include <new>

namespace kv {
namespace {

constexpr std::size_t kMinBuckets = 4;

// Redis's zslRandomLevel: each further level with probability 1/4 (the
// test of 16 random bits against 0xFFFF / 4), at most 32. A per-thread
// xorshift64 supplies the bits: the level only shapes the list, so any
// reasonable generator keeps the O(log n) expectation.
int random_level() noexcept {
  thread_local std::uint64_t state =
      0x9E3779B97F4A7C15ull ^ reinterpret_cast<std::uintptr_t>(&state);
  int level = 1;
  for (;;) {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    if ((state & 0xFFFF) >= 0xFFFF / 4 || level == 32) return level;
    ++level;
  }
}

// Redis's double2ll (7.0, util.h): the value as a long long when it is
// integral and within +-LLONG_MAX/2, where the cast is exact.
bool double_to_ll(double d, long long& out) noexcept {
  if (!(d >= static_cast<double>(-LLONG_MAX / 2) && d <= static_cast<double>(LLONG_MAX / 2)))
    return false;
  const auto ll = static_cast<long long>(d);
  if (static_cast<double>(ll) != d) return false;
  out = ll;
  return true;
}

std::string g17(double d) {
  char buf[64];
  const int n = std::snprintf(buf, sizeof buf, "%.17g", d);
  return std::string(buf, static_cast<std::size_t>(n));
}

}  // namespace

// --- lexicographic bounds -----------------------------------------------------

int LexBound::compare_member(std::string_view m) const noexcept {
  switch (kind) {
    case Kind::minus:
      return 1;
    case Kind::plus:
      return -1;
    case Kind::value:
      break;
  }
  const int c = m.compare(value);
  return c < 0 ? -1 : c > 0 ? 1 : 0;
}

int LexBound::compare(const LexBound& a, const LexBound& b) noexcept {
  // Redis's sdscmplex, where "-" and "+" are the shared min/max strings.
  if (a.kind != Kind::value || b.kind != Kind::value) {
    if (a.kind == b.kind) return 0;
    if (a.kind == Kind::minus || b.kind == Kind::plus) return -1;
    return 1;
  }
  const int c = a.value.compare(b.value);
  return c < 0 ? -1 : c > 0 ? 1 : 0;
}

// --- nodes ------------------------------------------------------------------------

ZSet::Node* ZSet::make_node(int height, double score, std::string_view member) {
  void* mem = ::operator new(sizeof(Node) + static_cast<std::size_t>(height) * sizeof(Node::Level));
  Node* n = new (mem) Node;
  try {
    n->member_.assign(member);
  } catch (...) {
    n->~Node();
    ::operator delete(mem);
    throw;
  }
  n->score_ = score;
  n->height_ = height;
  for (int i = 0; i < height; ++i) n->levels()[i] = {nullptr, 0};
  return n;
}

void ZSet::free_node(Node* n) noexcept {
  n->~Node();
  ::operator delete(static_cast<void*>(n));
}

std::int64_t ZSet::node_cost(const Node* n) noexcept {
  const std::size_t heap = n->member_.capacity() > 15 ? n->member_.capacity() + 1 : 0;
  // + one bucket slot of the index and an allocator header.
  return static_cast<std::int64_t>(sizeof(Node) +
                                   static_cast<std::size_t>(n->height_) * sizeof(Node::Level) +
                                   heap + sizeof(Node*) + 16);
}

// --- the set ----------------------------------------------------------------------

ZSet::ZSet(Limits limits, std::size_t first_member, bool skiplist)
    : limits_(limits),
      listpack_(!skiplist && limits.entries != 0 && first_member <= limits.value),
      header_(make_node(kMaxLevel, 0, {})),
      buckets_(kMinBuckets, nullptr) {}

ZSet::~ZSet() {
  Node* x = header_->levels()[0].forward;
  while (x != nullptr) {
    Node* next = x->levels()[0].forward;
    free_node(x);
    x = next;
  }
  free_node(header_);
}

std::unique_ptr<Object> ZSet::clone() const {
  // Built as a skip list, so that the scores go in as they are, then given
  // this set's encoding.
  auto z = std::make_unique<ZSet>(limits_, 0, true);
  for (const Node* x = first(); x != nullptr; x = x->next()) z->insert(x->member_, x->score_);
  z->listpack_ = listpack_;
  return z;
}

std::int64_t ZSet::bytes() const noexcept {
  return static_cast<std::int64_t>(sizeof(ZSet) + node_cost(header_) +
                                   buckets_.size() * sizeof(Node*)) +
         node_bytes_;
}

double ZSet::listpack_score(double s) noexcept {
  // An integral score is stored as an integer, which only changes -0
  // (every other integral double casts back to itself).
  return s == 0 ? 0.0 : s;
}

std::string ZSet::scan_text(double score) const {
  long long ll = 0;
  if (listpack_ && double_to_ll(score, ll)) {
    char buf[24];
    const auto r = std::to_chars(buf, buf + sizeof buf, ll);
    return std::string(buf, r.ptr);
  }
  return format_score(score);
}

std::string format_score(double score) {
  if (std::isinf(score)) return score > 0 ? "inf" : "-inf";
  return g17(score);
}

const ZSet::Node* ZSet::find(std::string_view member) const noexcept {
  const std::uint64_t h = Keyspace::hash(member);
  for (const Node* n = buckets_[h & (buckets_.size() - 1)]; n != nullptr; n = n->chain_) {
    if (n->hash_ == h && n->member_ == member) return n;
  }
  return nullptr;
}

void ZSet::rehash(std::size_t n) {
  std::vector<Node*> fresh(n, nullptr);  // may throw: index unchanged
  for (Node* head : buckets_) {
    while (head != nullptr) {
      Node* next = head->chain_;
      Node*& slot = fresh[head->hash_ & (n - 1)];
      head->chain_ = slot;
      slot = head;
      head = next;
    }
  }
  buckets_.swap(fresh);
}

void ZSet::index_add(Node* x) {
  if (length_ + 1 > buckets_.size()) rehash(buckets_.size() * 2);
  x->hash_ = Keyspace::hash(x->member_);
  Node*& head = buckets_[x->hash_ & (buckets_.size() - 1)];
  x->chain_ = head;
  head = x;
}

void ZSet::index_remove(const Node* x) noexcept {
  Node** link = &buckets_[x->hash_ & (buckets_.size() - 1)];
  while (*link != x) link = &(*link)->chain_;
  *link = x->chain_;
  if (buckets_.size() > kMinBuckets && length_ * 8 < buckets_.size()) {
    try {
      rehash(buckets_.size() / 2);
    } catch (const std::bad_alloc&) {
      // Keep the larger array: shrinking is an optimisation.
    }
  }
}

void ZSet::find_path(double score, std::string_view member, Node** update,
                     std::size_t* ranks) const noexcept {
  Node* x = header_;
  for (int i = level_ - 1; i >= 0; --i) {
    ranks[i] = i == level_ - 1 ? 0 : ranks[i + 1];
    for (;;) {
      const Node* f = x->levels()[i].forward;
      if (f == nullptr || !(f->score_ < score || (f->score_ == score && f->member_ < member)))
        break;
      ranks[i] += x->levels()[i].span;
      x = x->levels()[i].forward;
    }
    update[i] = x;
  }
}

void ZSet::link(Node* x) noexcept {
  Node* update[kMaxLevel];
  std::size_t ranks[kMaxLevel];
  find_path(x->score_, x->member_, update, ranks);
  const int height = x->height_;
  if (height > level_) {
    for (int i = level_; i < height; ++i) {
      ranks[i] = 0;
      update[i] = header_;
      header_->levels()[i].span = length_;
    }
    level_ = height;
  }
  for (int i = 0; i < height; ++i) {
    Node::Level& before = update[i]->levels()[i];
    Node::Level& mine = x->levels()[i];
    mine.forward = before.forward;
    before.forward = x;
    // The span `before` had now splits around x.
    mine.span = before.span - (ranks[0] - ranks[i]);
    before.span = (ranks[0] - ranks[i]) + 1;
  }
  for (int i = height; i < level_; ++i) ++update[i]->levels()[i].span;
  x->backward_ = update[0] == header_ ? nullptr : update[0];
  if (Node* next = x->levels()[0].forward)
    next->backward_ = x;
  else
    tail_ = x;
  ++length_;
}

void ZSet::unlink(Node* x, Node** update) noexcept {
  for (int i = 0; i < level_; ++i) {
    Node::Level& before = update[i]->levels()[i];
    if (before.forward == x) {
      before.span += x->levels()[i].span - 1;
      before.forward = x->levels()[i].forward;
    } else {
      --before.span;
    }
  }
  if (Node* next = x->levels()[0].forward)
    next->backward_ = x->backward_;
  else
    tail_ = x->backward_;
  while (level_ > 1 && header_->levels()[level_ - 1].forward == nullptr) --level_;
  --length_;
}

const ZSet::Node* ZSet::insert(std::string_view member, double score) {
  const bool convert =
      listpack_ && (length_ + 1 > limits_.entries || member.size() > limits_.value);
  const bool as_listpack = listpack_ && !convert;
  Node* x = make_node(random_level(), as_listpack ? listpack_score(score) : score, member);
  try {
    index_add(x);
  } catch (...) {
    free_node(x);
    throw;
  }
  if (convert) to_skiplist();
  link(x);
  node_bytes_ += node_cost(x);
  return x;
}

const ZSet::Node* ZSet::update(const Node* node, double score) noexcept {
  auto* x = const_cast<Node*>(node);
  if (listpack_) score = listpack_score(score);
  const Node* next = x->levels()[0].forward;
  if ((x->backward_ == nullptr || x->backward_->score_ < score) &&
      (next == nullptr || next->score_ > score)) {
    x->score_ = score;  // still in the same place
    return x;
  }
  Node* update[kMaxLevel];
  std::size_t ranks[kMaxLevel];
  find_path(x->score_, x->member_, update, ranks);
  unlink(x, update);
  x->score_ = score;
  link(x);
  return x;
}

void ZSet::erase(const Node* node) noexcept {
  auto* x = const_cast<Node*>(node);
  Node* update[kMaxLevel];
  std::size_t ranks[kMaxLevel];
  find_path(x->score_, x->member_, update, ranks);
  unlink(x, update);
  index_remove(x);
  node_bytes_ -= node_cost(x);
  free_node(x);
}

std::size_t ZSet::rank(const Node* node) const noexcept {
  std::size_t rank = 0;
  const Node* x = header_;
  for (int i = level_ - 1; i >= 0; --i) {
    for (;;) {
      const Node* f = x->levels()[i].forward;
      if (f == nullptr ||
          !(f->score_ < node->score_ || (f->score_ == node->score_ && f->member_ <= node->member_)))
        break;
      rank += x->levels()[i].span;
      x = f;
    }
    if (x == node) break;
  }
  return rank - 1;
}

const ZSet::Node* ZSet::at_rank(std::size_t r) const noexcept {
  const std::size_t want = r + 1;
  std::size_t traversed = 0;
  const Node* x = header_;
  for (int i = level_ - 1; i >= 0; --i) {
    while (x->levels()[i].forward != nullptr && traversed + x->levels()[i].span <= want) {
      traversed += x->levels()[i].span;
      x = x->levels()[i].forward;
    }
    if (traversed == want) return x;
  }
  return nullptr;
}

// Range searches (Redis's zsl{First,Last}In{,Lex}Range and their listpack
// twins), for score and lexicographic ranges alike: `key` reads what the
// range bounds (the score or the member). Both first check, as Redis's
// zsl{Is}In{,Lex}Range, that the last member is not below the range and
// the first not above it.
//
// Lexicographic ranges are only meaningful when every score is equal; with
// mixed scores Redis still answers, from a linear walk of the listpack
// (zzl{First,Last}InLexRange) or from the skip list's descent (which then
// depends on the random levels). A listpack-encoded set walks linearly
// here too, so such answers match Redis's byte for byte; for scores, which
// the order keeps monotonic, both ways find the same member.
template <class Range, class Key>
const ZSet::Node* ZSet::first_in_range(const Range& r, Key key) const noexcept {
  if (r.empty() || tail_ == nullptr || !r.above_min(key(tail_)) || !r.below_max(key(first())))
    return nullptr;
  const Node* x = header_;
  if (listpack_) {
    for (x = first(); x != nullptr; x = x->next()) {
      if (r.above_min(key(x))) return r.below_max(key(x)) ? x : nullptr;
    }
    return nullptr;
  }
  for (int i = level_ - 1; i >= 0; --i) {
    while (x->levels()[i].forward != nullptr && !r.above_min(key(x->levels()[i].forward)))
      x = x->levels()[i].forward;
  }
  x = x->levels()[0].forward;
  return x != nullptr && r.below_max(key(x)) ? x : nullptr;
}

template <class Range, class Key>
const ZSet::Node* ZSet::last_in_range(const Range& r, Key key) const noexcept {
  if (r.empty() || tail_ == nullptr || !r.above_min(key(tail_)) || !r.below_max(key(first())))
    return nullptr;
  const Node* x = header_;
  if (listpack_) {
    for (x = last(); x != nullptr; x = x->prev()) {
      if (r.below_max(key(x))) return r.above_min(key(x)) ? x : nullptr;
    }
    return nullptr;
  }
  for (int i = level_ - 1; i >= 0; --i) {
    while (x->levels()[i].forward != nullptr && r.below_max(key(x->levels()[i].forward)))
      x = x->levels()[i].forward;
  }
  return x != header_ && r.above_min(key(x)) ? x : nullptr;
}

namespace {
double score_of(const ZSet::Node* n) noexcept {
  return n->score();
}
std::string_view member_of(const ZSet::Node* n) noexcept {
  return n->member();
}
}  // namespace

const ZSet::Node* ZSet::first_in(const ScoreRange& r) const noexcept {
  return first_in_range(r, score_of);
}
const ZSet::Node* ZSet::last_in(const ScoreRange& r) const noexcept {
  return last_in_range(r, score_of);
}
const ZSet::Node* ZSet::first_in(const LexRange& r) const noexcept {
  return first_in_range(r, member_of);
}
const ZSet::Node* ZSet::last_in(const LexRange& r) const noexcept {
  return last_in_range(r, member_of);
}

void ZSet::shrink_encoding() noexcept {
  if (listpack_ || length_ > limits_.entries) return;
  for (const Node* x = first(); x != nullptr; x = x->next())
    if (x->member_.size() > limits_.value) return;
  listpack_ = true;
  // Converting rewrites every score as the listpack stores it; only -0
  // changes, and it sorts as 0 already, so nothing moves.
  for (Node* x = header_->levels()[0].forward; x != nullptr; x = x->levels()[0].forward)
    x->score_ = listpack_score(x->score_);
}

}  // namespace kv

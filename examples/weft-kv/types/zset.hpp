// weft-kv: the sorted-set value (ZADD, ZRANGE, ZPOPMIN, ...).
//
// Redis keeps a sorted set in two structures at once (src/t_zset.c): a
// skip list ordered by (score, member) whose links carry spans, so that a
// member's rank and the member at a rank are found in O(log n) (Pugh,
// "Skip Lists: A Probabilistic Alternative to Balanced Trees", 1990, with
// the span extension of his "Skip List Cookbook"), and a hash table from
// member to node for O(1) ZSCORE and membership. ZSet is the same: the skip
// list is Redis's zskiplist (levels drawn with p = 1/4, at most 32), and the
// hash index is a chained table with a power-of-two bucket array, so ZSCAN
// can use the keyspace's reverse-binary cursor (every member present for a
// whole scan is returned at least once, however the table resizes).
//
// Redis stores small sorted sets as a listpack instead and converts to the
// skip list past zset-max-listpack-entries members or a member longer than
// zset-max-listpack-value bytes. One structure serves both here; what the
// encoding changes that a client can see is kept: OBJECT ENCODING's name,
// and the way a listpack stores scores — an integral score within
// +-LLONG_MAX/2 is stored as that integer (so -0 becomes 0, and ZSCAN
// prints 1e17 as "100000000000000000"), any other score as its %.17g text,
// which reads back exactly.
//
// Every function requires the owning shard's lock (keyspace.hpp); none is
// thread-safe on its own.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "keyspace.hpp"

namespace kv {

/// A ZRANGEBYSCORE interval (Redis's zrangespec): "(1.5" is exclusive.
struct ScoreRange {
  double min = 0;
  double max = 0;
  bool minex = false;  ///< min itself excluded
  bool maxex = false;  ///< max itself excluded

  bool above_min(double s) const noexcept { return minex ? s > min : s >= min; }
  bool below_max(double s) const noexcept { return maxex ? s < max : s <= max; }
  /// True when no score can lie in it (Redis: the zslIsInRange pre-check).
  bool empty() const noexcept { return min > max || (min == max && (minex || maxex)); }
};

/// One end of a ZRANGEBYLEX interval (Redis's zlexrangespec item): "-" is
/// below every member, "+" above every member, "[m" includes m, "(m"
/// excludes it.
struct LexBound {
  enum class Kind : std::uint8_t { value, minus, plus };
  Kind kind = Kind::value;
  bool exclusive = false;
  std::string_view value;  ///< for Kind::value; a view of the argument

  /// Redis's sdscmplex: <0, 0, >0 as `m` sorts before, equal to or after
  /// this bound (bytewise, a prefix first).
  int compare_member(std::string_view m) const noexcept;
  /// Compares two bounds the same way ("-" equals "-").
  static int compare(const LexBound& a, const LexBound& b) noexcept;
};

/// A ZRANGEBYLEX interval.
struct LexRange {
  LexBound min, max;

  bool above_min(std::string_view m) const noexcept {
    const int c = min.compare_member(m);
    return min.exclusive ? c > 0 : c >= 0;
  }
  bool below_max(std::string_view m) const noexcept {
    const int c = max.compare_member(m);
    return max.exclusive ? c < 0 : c <= 0;
  }
  /// True when no member can lie in it (Redis: the zslIsInLexRange pre-check).
  bool empty() const noexcept {
    const int c = LexBound::compare(min, max);
    return c > 0 || (c == 0 && (min.exclusive || max.exclusive));
  }
};

/// The sorted-set Object. Members are unique byte strings; scores are
/// doubles, never NaN (the caller checks).
class ZSet final : public Object {
 public:
  /// The thresholds that decide the encoding Redis would report
  /// (zset-max-listpack-entries, zset-max-listpack-value; Redis 7's
  /// defaults).
  struct Limits {
    std::size_t entries = 128;
    std::size_t value = 64;
  };

  /// One member: a node of the skip list. Stable while it is in the set
  /// (update() may move a member to another node: use its return value).
  class Node {
   public:
    const std::string& member() const noexcept { return member_; }
    double score() const noexcept { return score_; }
    /// The next member in (score, member) order, or nullptr.
    const Node* next() const noexcept { return levels()[0].forward; }
    /// The previous member, or nullptr.
    const Node* prev() const noexcept { return backward_; }

   private:
    friend class ZSet;
    struct Level {
      Node* forward;
      std::size_t span;  // members passed by following `forward` (Redis: span)
    };
    Level* levels() noexcept { return reinterpret_cast<Level*>(this + 1); }
    const Level* levels() const noexcept { return reinterpret_cast<const Level*>(this + 1); }

    double score_ = 0;
    Node* backward_ = nullptr;
    Node* chain_ = nullptr;  // next node in the same hash bucket
    std::uint64_t hash_ = 0;
    std::string member_;
    int height_ = 0;  // number of Levels after this object
  };

  /// An empty set, listpack-encoded unless `limits.entries` is 0 or
  /// `first_member` (the length of the member about to be added) exceeds
  /// `limits.value` (Redis's ZADD on a new key), or `skiplist` is true.
  explicit ZSet(Limits limits, std::size_t first_member = 0, bool skiplist = false);
  ~ZSet() override;
  ZSet(const ZSet&) = delete;
  ZSet& operator=(const ZSet&) = delete;

  Type type() const noexcept override { return Type::zset; }
  std::int64_t bytes() const noexcept override;
  const char* encoding() const noexcept override { return listpack_ ? "listpack" : "skiplist"; }
  std::unique_ptr<Object> clone() const override;
  /// True while Redis would keep this set as a listpack.
  bool listpack() const noexcept { return listpack_; }

  std::size_t size() const noexcept { return length_; }
  /// The node of `member`, or nullptr.
  const Node* find(std::string_view member) const noexcept;
  /// Adds a member that is not in the set (Redis: zsetAdd's insert path,
  /// converting to a skip list first when the listpack would grow past its
  /// limits). @throws std::bad_alloc (set unchanged).
  const Node* insert(std::string_view member, double score);
  /// Changes a member's score, moving it if its place changes (Redis:
  /// zslUpdateScore). Returns its node. Never throws.
  const Node* update(const Node* node, double score) noexcept;
  /// Removes a member; `node` is gone afterwards. Never throws.
  void erase(const Node* node) noexcept;

  /// The first and last member in order, or nullptr when empty.
  const Node* first() const noexcept { return header_->levels()[0].forward; }
  const Node* last() const noexcept { return tail_; }
  /// The 0-based rank of a member in ascending order (Redis zslGetRank - 1).
  std::size_t rank(const Node* node) const noexcept;
  /// The member at 0-based rank r < size() (Redis zslGetElementByRank).
  const Node* at_rank(std::size_t r) const noexcept;
  /// The first / last member within the range, or nullptr.
  const Node* first_in(const ScoreRange& r) const noexcept;
  const Node* last_in(const ScoreRange& r) const noexcept;
  const Node* first_in(const LexRange& r) const noexcept;
  const Node* last_in(const LexRange& r) const noexcept;

  /// Calls fn(const Node&) for the members in the hash buckets that cursor
  /// `v` covers and returns the next cursor, 0 when done (Redis dictScan).
  template <class F>
  std::uint64_t scan(std::uint64_t v, F&& fn) const {
    const std::uint64_t mask = buckets_.size() - 1;
    for (const Node* n = buckets_[v & mask]; n != nullptr; n = n->chain_) fn(*n);
    return Table::next_cursor(v, mask);
  }

  /// Redis's zsetConvertToListpackIfNeeded for a freshly computed result
  /// (ZUNIONSTORE and friends): back to a listpack when it fits.
  void shrink_encoding() noexcept;

  /// The score as a listpack stores it: integral values within
  /// +-LLONG_MAX/2 become that integer (-0 becomes 0), others are kept.
  static double listpack_score(double s) noexcept;
  /// The score as ZSCAN prints it: a listpack's stored text (an integer, or
  /// %.17g), or %.17g from the skip list; inf and -inf by name.
  std::string scan_text(double score) const;

 private:
  static constexpr int kMaxLevel = 32;  // Redis ZSKIPLIST_MAXLEVEL
  static Node* make_node(int height, double score, std::string_view member);
  static void free_node(Node* n) noexcept;
  static std::int64_t node_cost(const Node* n) noexcept;
  // The last node at each level before (score, member); ranks[i] counts the
  // members passed at level i (Redis: update[] and rank[]).
  void find_path(double score, std::string_view member, Node** update,
                 std::size_t* ranks) const noexcept;
  void link(Node* x) noexcept;                   // into the skip list
  void unlink(Node* x, Node** update) noexcept;  // from the skip list
  void index_add(Node* x);                       // into the hash index; may grow it
  void index_remove(const Node* x) noexcept;     // may shrink it
  void rehash(std::size_t n);
  template <class Range, class Key>
  const Node* first_in_range(const Range& r, Key key) const noexcept;
  template <class Range, class Key>
  const Node* last_in_range(const Range& r, Key key) const noexcept;
  void to_skiplist() noexcept { listpack_ = false; }

  Limits limits_;
  bool listpack_;
  Node* header_;
  Node* tail_ = nullptr;
  std::size_t length_ = 0;
  int level_ = 1;
  std::vector<Node*> buckets_;
  std::int64_t node_bytes_ = 0;
};

/// A score as Redis replies it (addReplyDouble, RESP2): "inf", "-inf",
/// else %.17g ("1.1000000000000001", "-0", "1e+17").
std::string format_score(double score);

}  // namespace kv

// weft-kv commands: the bit operations on strings (SETBIT, GETBIT,
// BITCOUNT, BITPOS, BITOP, BITFIELD, BITFIELD_RO), as Redis 7.0's
// src/bitops.c.
//
// Bit numbering is Redis's: bit 0 is the most significant bit of byte 0,
// so a bitmap reads left to right; BITFIELD's integers are big-endian over
// that numbering at any bit offset. A write past the end zero-pads the
// string first. The result of a write is StringForm::raw (Redis's
// dbUnshareStringValue), and only a write that changed something is
// propagated (verbatim: given the same string, each is deterministic).
#include <algorithm>
#include <climits>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "commands/groups.hpp"
#include "commands/util.hpp"
#include "notify.hpp"

namespace kv::cmd {
namespace {

constexpr std::string_view kBitOffsetError = "ERR bit offset is not an integer or out of range";

// Redis's getBitOffsetFromArgument: a non-negative bit offset whose byte is
// below proto-max-bulk-len; with `bits` > 0, "#n" means n * bits.
bool parse_bit_offset(Context& c, std::string_view arg, std::uint64_t& out, int bits = 0) {
  const bool hash = bits > 0 && !arg.empty() && arg[0] == '#';
  long long v = 0;
  if (!parse_ll(arg.substr(hash ? 1 : 0), v)) return err(c, kBitOffsetError), false;
  if (hash) v *= bits;  // wraps as in Redis for absurd n; the checks below catch the rest
  if (v < 0 || (!c.host.loading() &&
                static_cast<std::uint64_t>(v >> 3) >= c.host.options().limits.max_bulk_len))
    return err(c, kBitOffsetError), false;
  out = static_cast<std::uint64_t>(v);
  return true;
}

// Redis's lookupStringForBitCommand: the string at key (created empty, or
// WRONGTYPE) grown with zeros so that bit `maxbit` exists, now raw.
// `dirty` tells whether it was created or grown. nullptr after a reply.
Entry* string_for_bits(Context& c, Locked& k, std::uint64_t maxbit, bool& dirty) {
  const std::size_t need = static_cast<std::size_t>(maxbit >> 3) + 1;
  Entry* e = k.find(c.now);
  if (e != nullptr && e->type() != Type::string) return err(c, kWrongType), nullptr;
  dirty = false;
  if (e == nullptr) {
    e = k.shard.insert(k.key, k.h);
    k.shard.assign(e, std::string(need, '\0'), StringForm::raw);
    dirty = true;
    return e;
  }
  e->set_form(StringForm::raw);
  if (e->value.size() < need) {
    e->value.resize(need, '\0');
    dirty = true;
  }
  k.shard.recharge(e);
  return e;
}

int bit_at(std::string_view s, std::uint64_t offset) noexcept {
  const std::uint64_t byte = offset >> 3;
  if (byte >= s.size()) return 0;
  return (static_cast<unsigned char>(s[byte]) >> (7 - (offset & 7))) & 1;
}

void cmd_setbit(Context& c) {
  std::uint64_t offset = 0;
  if (!parse_bit_offset(c, c.argv[2], offset)) return;
  long long on = 0;
  constexpr std::string_view kBitError = "ERR bit is not an integer or out of range";
  if (!parse_ll(c.argv[3], on) || (on & ~1LL)) return err(c, kBitError);
  Locked k(c.host.keyspace(), c.argv[1]);
  bool dirty = false;
  Entry* e = string_for_bits(c, k, offset, dirty);
  if (e == nullptr) return;
  auto& byte = reinterpret_cast<unsigned char&>(e->value[offset >> 3]);
  const unsigned mask = 1u << (7 - (offset & 7));
  const bool old = (byte & mask) != 0;
  if (dirty || old != (on != 0)) {
    byte = static_cast<unsigned char>(on ? (byte | mask) : (byte & ~mask));
    c.host.propagate(c, c.argv);
    notify(c, kNotifyString, "setbit", c.argv[1]);
  }
  Reply::integer(c.out, old ? 1 : 0);
}

void cmd_getbit(Context& c) {
  std::uint64_t offset = 0;
  if (!parse_bit_offset(c, c.argv[2], offset)) return;
  Locked k(c.host.keyspace(), c.argv[1]);
  const Entry* e = k.read(c);
  if (e == nullptr) return Reply::integer(c.out, 0);
  if (e->type() != Type::string) return err(c, kWrongType);
  Reply::integer(c.out, bit_at(e->value, offset));
}

// Set bits in bytes [from, to) of s.
std::uint64_t popcount(const unsigned char* p, std::size_t n) noexcept {
  std::uint64_t count = 0;
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    std::uint64_t w;
    std::memcpy(&w, p + i, 8);
    count += static_cast<std::uint64_t>(__builtin_popcountll(w));
  }
  for (; i < n; ++i) count += static_cast<std::uint64_t>(__builtin_popcount(p[i]));
  return count;
}

// A BITCOUNT / BITPOS range after Redis's clamping: in bytes, or in bits
// when `bits`. Returns false when it is empty.
struct BitRange {
  long long start, end;
};
void clamp(BitRange& r, long long total) noexcept {
  if (r.start < 0) r.start += total;
  if (r.end < 0) r.end += total;
  if (r.start < 0) r.start = 0;
  if (r.end < 0) r.end = 0;
  if (r.end >= total) r.end = total - 1;
}

bool parse_unit(Context& c, std::string_view arg, bool& bits) {
  if (eq_ci(arg, "bit"))
    bits = true;
  else if (eq_ci(arg, "byte"))
    bits = false;
  else
    return err(c, kSyntax), false;
  return true;
}

// BITCOUNT key [start end [BYTE|BIT]].
void cmd_bitcount(Context& c) {
  Locked k(c.host.keyspace(), c.argv[1]);
  const Entry* e = k.read(c);
  if (e == nullptr) return Reply::integer(c.out, 0);
  if (e->type() != Type::string) return err(c, kWrongType);
  const std::string_view s = e->value;
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const auto len = static_cast<long long>(s.size());
  BitRange r{0, len - 1};
  bool bits = false;
  if (c.argv.size() == 4 || c.argv.size() == 5) {
    if (!parse_ll(c.argv[2], r.start) || !parse_ll(c.argv[3], r.end)) return err(c, kNotInt);
    if (r.start < 0 && r.end < 0 && r.start > r.end) return Reply::integer(c.out, 0);
    if (c.argv.size() == 5 && !parse_unit(c, c.argv[4], bits)) return;
    clamp(r, bits ? len * 8 : len);
  } else if (c.argv.size() != 2) {
    return err(c, kSyntax);
  }
  if (r.start > r.end) return Reply::integer(c.out, 0);
  if (!bits)
    return Reply::integer(c.out, static_cast<std::int64_t>(popcount(
                                     p + r.start, static_cast<std::size_t>(r.end - r.start + 1))));
  // Whole bytes, less the bits before start in the first and after end in
  // the last.
  const long long first = r.start >> 3, last = r.end >> 3;
  std::uint64_t n = popcount(p + first, static_cast<std::size_t>(last - first + 1));
  const unsigned head = 0xFFu << (8 - (r.start & 7)) & 0xFFu;  // bits before start
  const unsigned tail = (1u << (7 - (r.end & 7))) - 1;         // bits after end
  n -= static_cast<std::uint64_t>(__builtin_popcount(p[first] & head));
  n -= static_cast<std::uint64_t>(__builtin_popcount(p[last] & tail));
  Reply::integer(c.out, static_cast<std::int64_t>(n));
}

// BITPOS key bit [start [end [BYTE|BIT]]]: the first bit equal to `bit` in
// the range; when none, -1, except that looking for a 0 without an end
// finds the first bit past the range (the string reads as zero-padded).
void cmd_bitpos(Context& c) {
  long long bit = 0;
  if (!parse_ll(c.argv[2], bit)) return err(c, kNotInt);
  if (bit != 0 && bit != 1) return err(c, "ERR The bit argument must be 1 or 0.");
  Locked k(c.host.keyspace(), c.argv[1]);
  const Entry* e = k.read(c);
  if (e == nullptr) return Reply::integer(c.out, bit ? -1 : 0);
  if (e->type() != Type::string) return err(c, kWrongType);
  const std::string_view s = e->value;
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const auto len = static_cast<long long>(s.size());
  BitRange r{0, len - 1};
  bool bits = false, end_given = false;
  const std::size_t argc = c.argv.size();
  if (argc >= 4 && argc <= 6) {
    if (!parse_ll(c.argv[3], r.start)) return err(c, kNotInt);
    if (argc == 6 && !parse_unit(c, c.argv[5], bits)) return;
    if (argc >= 5) {
      if (!parse_ll(c.argv[4], r.end)) return err(c, kNotInt);
      end_given = true;
    } else {
      r.end = bits ? len * 8 + 7 : len - 1;
    }
    clamp(r, bits ? len * 8 : len);
  } else if (argc != 3) {
    return err(c, kSyntax);
  }
  if (r.start > r.end) return Reply::integer(c.out, -1);
  // The range in bits.
  const long long from = bits ? r.start : r.start * 8;
  const long long to = bits ? r.end : r.end * 8 + 7;  // inclusive
  const unsigned char skip = bit ? 0x00 : 0xFF;       // a byte without the bit sought
  for (long long byte = from >> 3; byte <= (to >> 3); ++byte) {
    unsigned v = p[byte];
    // Make the bits outside the range read as "not found".
    if (byte == (from >> 3)) {
      const unsigned head = 0xFFu << (8 - (from & 7)) & 0xFFu;
      v = bit ? (v & ~head) : (v | head);
    }
    if (byte == (to >> 3)) {
      const unsigned tail = (1u << (7 - (to & 7))) - 1;
      v = bit ? (v & ~tail) : (v | tail);
    }
    v &= 0xFFu;
    if (v == skip) continue;
    const unsigned target = bit ? v : (~v & 0xFFu);
    const int within = __builtin_clz(target) - (32 - 8);  // first set bit from the left
    return Reply::integer(c.out, byte * 8 + within);
  }
  if (bit == 1 || end_given) return Reply::integer(c.out, -1);
  Reply::integer(c.out, ((to >> 3) + 1) * 8);
}

// BITOP AND|OR|XOR|NOT destkey key [key ...]: the result has the length of
// the longest source (the others read as zero-padded); an empty result
// deletes destkey. Atomic across shards.
void cmd_bitop(Context& c) {
  const std::string_view op = c.argv[1];
  enum class Op { and_, or_, xor_, not_ } kind;
  if (eq_ci(op, "and"))
    kind = Op::and_;
  else if (eq_ci(op, "or"))
    kind = Op::or_;
  else if (eq_ci(op, "xor"))
    kind = Op::xor_;
  else if (eq_ci(op, "not"))
    kind = Op::not_;
  else
    return err(c, kSyntax);
  if (kind == Op::not_ && c.argv.size() != 4)
    return err(c, "ERR BITOP NOT must be called with a single source key.");
  Keyspace& ks = c.host.keyspace();
  MultiLock lock(ks, c.argv.subspan(2));
  const auto sources = c.argv.subspan(3);
  std::vector<std::string_view> src;
  src.reserve(sources.size());
  std::size_t maxlen = 0;
  for (std::string_view key : sources) {
    const std::uint64_t h = Keyspace::hash(key);
    const Entry* e = ks.shard_of(h).find(key, h, c.now);
    if (e == nullptr) key_miss(c, key);
    if (e != nullptr && e->type() != Type::string) return err(c, kWrongType);
    src.push_back(e != nullptr ? std::string_view(e->value) : std::string_view());
    maxlen = std::max(maxlen, src.back().size());
  }
  const std::string_view dest = c.argv[2];
  const std::uint64_t hd = Keyspace::hash(dest);
  Shard& sd = ks.shard_of(hd);
  if (maxlen == 0) {
    if (Entry* d = sd.find(dest, hd, c.now)) {
      sd.erase(d);
      c.host.propagate(c, c.argv);
      notify(c, kNotifyGeneric, "del", dest);
    }
    return Reply::integer(c.out, 0);
  }
  std::string res(maxlen, '\0');
  auto byte_of = [](std::string_view s, std::size_t j) -> unsigned {
    return j < s.size() ? static_cast<unsigned char>(s[j]) : 0u;
  };
  for (std::size_t j = 0; j < maxlen; ++j) {
    unsigned out = byte_of(src[0], j);
    if (kind == Op::not_) out = ~out;
    for (std::size_t i = 1; i < src.size(); ++i) {
      const unsigned b = byte_of(src[i], j);
      if (kind == Op::and_)
        out &= b;
      else if (kind == Op::or_)
        out |= b;
      else
        out ^= b;
    }
    res[j] = static_cast<char>(out & 0xFFu);
  }
  store(sd, dest, hd, res, c.now, /*keep_ttl=*/false, StringForm::raw);
  c.host.propagate(c, c.argv);
  notify(c, kNotifyString, "set", dest);
  Reply::integer(c.out, static_cast<std::int64_t>(maxlen));
}

// --- BITFIELD -----------------------------------------------------------------

enum class Overflow { wrap, sat, fail };

struct FieldOp {
  enum Code { get, set, incrby } code;
  Overflow overflow;
  bool sign;
  int bits;
  std::uint64_t offset;
  std::int64_t value;
};

std::uint64_t get_unsigned(const unsigned char* p, std::uint64_t offset, int bits) noexcept {
  std::uint64_t v = 0;
  for (int j = 0; j < bits; ++j, ++offset)
    v = (v << 1) | ((p[offset >> 3] >> (7 - (offset & 7))) & 1u);
  return v;
}

std::int64_t get_signed(const unsigned char* p, std::uint64_t offset, int bits) noexcept {
  std::uint64_t v = get_unsigned(p, offset, bits);
  if (bits < 64 && (v & (std::uint64_t{1} << (bits - 1)))) v |= ~std::uint64_t{0} << bits;
  return static_cast<std::int64_t>(v);
}

void set_bits(unsigned char* p, std::uint64_t offset, int bits, std::uint64_t v) noexcept {
  for (int j = 0; j < bits; ++j, ++offset) {
    const unsigned bit = (v >> (bits - 1 - j)) & 1u;
    const unsigned shift = 7 - (offset & 7);
    p[offset >> 3] = static_cast<unsigned char>((p[offset >> 3] & ~(1u << shift)) | (bit << shift));
  }
}

// Redis's checkUnsignedBitfieldOverflow: 0 fits, 1 overflow, -1 underflow;
// `limit` is the wrapped or saturated result.
int unsigned_overflow(std::uint64_t value, std::int64_t incr, int bits, Overflow ow,
                      std::uint64_t& limit) noexcept {
  const std::uint64_t max = bits == 64 ? UINT64_MAX : (std::uint64_t{1} << bits) - 1;
  const auto maxincr = static_cast<std::int64_t>(max - value);
  const auto minincr = static_cast<std::int64_t>(-value);
  auto wrap = [&] {
    const std::uint64_t mask = bits == 64 ? 0 : ~std::uint64_t{0} << bits;
    limit = (value + static_cast<std::uint64_t>(incr)) & ~mask;
  };
  if (value > max || (incr > 0 && incr > maxincr)) {
    if (ow == Overflow::wrap)
      wrap();
    else if (ow == Overflow::sat)
      limit = max;
    return 1;
  }
  if (incr < 0 && incr < minincr) {
    if (ow == Overflow::wrap) {
      wrap();
      return 1;  // as Redis: a wrapped underflow reports 1 too
    }
    if (ow == Overflow::sat) limit = 0;
    return -1;
  }
  return 0;
}

// Redis's checkSignedBitfieldOverflow.
int signed_overflow(std::int64_t value, std::int64_t incr, int bits, Overflow ow,
                    std::int64_t& limit) noexcept {
  const std::int64_t max = bits == 64 ? INT64_MAX : (std::int64_t{1} << (bits - 1)) - 1;
  const std::int64_t min = -max - 1;
  const auto maxincr = static_cast<std::int64_t>(static_cast<std::uint64_t>(max) -
                                                 static_cast<std::uint64_t>(value));
  const auto minincr = static_cast<std::int64_t>(static_cast<std::uint64_t>(min) -
                                                 static_cast<std::uint64_t>(value));
  auto wrap = [&] {
    std::uint64_t r = static_cast<std::uint64_t>(value) + static_cast<std::uint64_t>(incr);
    if (bits < 64) {
      const std::uint64_t mask = ~std::uint64_t{0} << bits;
      r = (r & (std::uint64_t{1} << (bits - 1))) ? (r | mask) : (r & ~mask);
    }
    limit = static_cast<std::int64_t>(r);
  };
  if (value > max || (bits != 64 && incr > maxincr) || (value >= 0 && incr > 0 && incr > maxincr)) {
    if (ow == Overflow::wrap)
      wrap();
    else if (ow == Overflow::sat)
      limit = max;
    return 1;
  }
  if (value < min || (bits != 64 && incr < minincr) || (value < 0 && incr < 0 && incr < minincr)) {
    if (ow == Overflow::wrap) {
      wrap();
      return 1;
    }
    if (ow == Overflow::sat) limit = min;
    return -1;
  }
  return 0;
}

// BITFIELD key [GET type offset] [SET type offset value] [INCRBY type
// offset increment] [OVERFLOW WRAP|SAT|FAIL] ... (Redis's bitfieldGeneric):
// every operation is parsed first; the key is then read (GETs only) or
// created and grown to the highest bit written.
void bitfield(Context& c, bool readonly_command) {
  std::vector<FieldOp> ops;
  Overflow overflow = Overflow::wrap;
  bool readonly = true;
  std::uint64_t highest = 0;
  const auto& a = c.argv;
  for (std::size_t j = 2; j < a.size(); ++j) {
    const std::size_t rest = a.size() - j - 1;
    const std::string_view sub = a[j];
    FieldOp op{};
    if (eq_ci(sub, "get") && rest >= 2) {
      op.code = FieldOp::get;
    } else if (eq_ci(sub, "set") && rest >= 3) {
      op.code = FieldOp::set;
    } else if (eq_ci(sub, "incrby") && rest >= 3) {
      op.code = FieldOp::incrby;
    } else if (eq_ci(sub, "overflow") && rest >= 1) {
      const std::string_view t = a[++j];
      if (eq_ci(t, "wrap"))
        overflow = Overflow::wrap;
      else if (eq_ci(t, "sat"))
        overflow = Overflow::sat;
      else if (eq_ci(t, "fail"))
        overflow = Overflow::fail;
      else
        return err(c, "ERR Invalid OVERFLOW type specified");
      continue;
    } else {
      return err(c, kSyntax);
    }
    const std::string_view type = a[j + 1];
    long long bits = 0;
    if (type.empty() || (type[0] != 'i' && type[0] != 'u') || !parse_ll(type.substr(1), bits) ||
        bits < 1 || (type[0] == 'i' && bits > 64) || (type[0] == 'u' && bits > 63))
      return err(c,
                 "ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not "
                 "supported but i64 is.");
    op.sign = type[0] == 'i';
    op.bits = static_cast<int>(bits);
    if (!parse_bit_offset(c, a[j + 2], op.offset, op.bits)) return;
    if (op.code != FieldOp::get) {
      readonly = false;
      highest = std::max(highest, op.offset + static_cast<std::uint64_t>(op.bits) - 1);
      long long v = 0;
      if (!parse_ll(a[j + 3], v)) return err(c, kNotInt);
      op.value = v;
    }
    op.overflow = overflow;
    ops.push_back(op);
    j += op.code == FieldOp::get ? 2 : 3;
  }
  Locked k(c.host.keyspace(), a[1]);
  Entry* e = nullptr;
  bool dirty = false;
  if (readonly) {
    e = k.read(c);
    if (e != nullptr && e->type() != Type::string) return err(c, kWrongType);
  } else {
    if (readonly_command) return err(c, "ERR BITFIELD_RO only supports the GET subcommand");
    e = string_for_bits(c, k, highest, dirty);
    if (e == nullptr) return;
  }
  Reply::array_header(c.out, ops.size());
  std::size_t changes = 0;
  for (const FieldOp& op : ops) {
    if (op.code == FieldOp::get) {
      // Read through a 9-byte window, zero past the end of the string.
      unsigned char buf[9] = {};
      const std::uint64_t byte = op.offset >> 3;
      if (e != nullptr)
        for (std::uint64_t i = 0; i < 9 && byte + i < e->value.size(); ++i)
          buf[i] = static_cast<unsigned char>(e->value[byte + i]);
      const std::uint64_t at = op.offset - byte * 8;
      if (op.sign)
        Reply::integer(c.out, get_signed(buf, at, op.bits));
      else
        Reply::integer(c.out, static_cast<std::int64_t>(get_unsigned(buf, at, op.bits)));
      continue;
    }
    auto* p = reinterpret_cast<unsigned char*>(e->value.data());
    if (op.sign) {
      const std::int64_t old = get_signed(p, op.offset, op.bits);
      std::int64_t wrapped = 0, next = 0, ret = 0;
      int over = 0;
      if (op.code == FieldOp::incrby) {
        over = signed_overflow(old, op.value, op.bits, op.overflow, wrapped);
        next = over ? wrapped
                    : static_cast<std::int64_t>(static_cast<std::uint64_t>(old) +
                                                static_cast<std::uint64_t>(op.value));
        ret = next;
      } else {
        next = op.value;
        over = signed_overflow(next, 0, op.bits, op.overflow, wrapped);
        if (over) next = wrapped;
        ret = old;
      }
      if (over && op.overflow == Overflow::fail) {
        null_bulk(c);
        continue;
      }
      Reply::integer(c.out, ret);
      set_bits(p, op.offset, op.bits, static_cast<std::uint64_t>(next));
      if (dirty || old != next) ++changes;
    } else {
      const std::uint64_t old = get_unsigned(p, op.offset, op.bits);
      std::uint64_t wrapped = 0, next = 0, ret = 0;
      int over = 0;
      if (op.code == FieldOp::incrby) {
        next = old + static_cast<std::uint64_t>(op.value);
        over = unsigned_overflow(old, op.value, op.bits, op.overflow, wrapped);
        if (over) next = wrapped;
        ret = next;
      } else {
        next = static_cast<std::uint64_t>(op.value);
        over = unsigned_overflow(next, 0, op.bits, op.overflow, wrapped);
        if (over) next = wrapped;
        ret = old;
      }
      if (over && op.overflow == Overflow::fail) {
        null_bulk(c);
        continue;
      }
      Reply::integer(c.out, static_cast<std::int64_t>(ret));
      set_bits(p, op.offset, op.bits, next);
      if (dirty || old != next) ++changes;
    }
  }
  // Propagated when the string was created, grown or changed (Redis
  // propagates on changes only, so a key created by a failed INCRBY would
  // be missing after a replay; verbatim replay reproduces it exactly).
  if (dirty || changes != 0) {
    c.host.propagate(c, c.argv);
    notify(c, kNotifyString, "setbit", c.argv[1]);
  }
}

void cmd_bitfield(Context& c) {
  bitfield(c, false);
}
void cmd_bitfield_ro(Context& c) {
  bitfield(c, true);
}

}  // namespace

std::span<const Command> bitmap_commands() noexcept {
  static constexpr Command kTable[] = {
      {"setbit",
       4,
       kWrite | kDenyOom,
       "@write @bitmap @slow",
       "",
       {"RW access update", 1, 0},
       cmd_setbit},
      {"getbit", 3, kReadonly | kFast, "@read @bitmap @fast", "", {"RO access", 1, 0}, cmd_getbit},
      {"bitcount", -2, kReadonly, "@read @bitmap @slow", "", {"RO access", 1, 0}, cmd_bitcount},
      {"bitpos", -3, kReadonly, "@read @bitmap @slow", "", {"RO access", 1, 0}, cmd_bitpos},
      {"bitop",
       -4,
       kWrite | kDenyOom,
       "@write @bitmap @slow",
       "",
       {{"OW update", 2, 0}, {"RO access", 3, -1}},
       cmd_bitop},
      {"bitfield",
       -2,
       kWrite | kDenyOom,
       "@write @bitmap @slow",
       "",
       {"RW access update variable_flags", 1, 0, 1, 0,
        "This command allows both access and modification of the key"},
       cmd_bitfield},
      {"bitfield_ro",
       -2,
       kReadonly | kFast,
       "@read @bitmap @fast",
       "",
       {"RO access", 1, 0},
       cmd_bitfield_ro},
  };
  return kTable;
}

}  // namespace kv::cmd

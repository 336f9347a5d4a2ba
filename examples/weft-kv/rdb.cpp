// weft-kv: the RDB format; see rdb.hpp.
#include "rdb.hpp"

#include <array>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "numbers.hpp"
#include "types/hash.hpp"
#include "types/list.hpp"
#include "types/set.hpp"
#include "types/zset.hpp"

namespace kv {

// --- CRC-64 -------------------------------------------------------------------

namespace {

// The reflected table of the Jones polynomial (0xad93d23594c935a9 reversed
// is 0x95ac9329ac4bc9b5), one byte at a time, as Redis's crc64.c computes
// it (its faster slicing-by-8 gives the same values).
constexpr std::array<std::uint64_t, 256> make_crc64_table() {
  std::array<std::uint64_t, 256> t{};
  for (std::uint64_t i = 0; i < 256; ++i) {
    std::uint64_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) != 0 ? (c >> 1) ^ 0x95ac9329ac4bc9b5ull : c >> 1;
    t[i] = c;
  }
  return t;
}
constexpr std::array<std::uint64_t, 256> kCrc64Table = make_crc64_table();

}  // namespace

std::uint64_t crc64(std::uint64_t crc, std::string_view data) noexcept {
  for (const char ch : data)
    crc = kCrc64Table[(crc ^ static_cast<unsigned char>(ch)) & 0xff] ^ (crc >> 8);
  return crc;
}

// --- constants (src/rdb.h) ------------------------------------------------------

namespace {

constexpr int kRdbVersion = 10;

enum RdbType : unsigned {
  kString = 0,
  kList = 1,
  kSet = 2,
  kZset = 3,
  kHash = 4,
  kZset2 = 5,
  kModule = 6,
  kModule2 = 7,
  kHashZipmap = 9,
  kListZiplist = 10,
  kSetIntset = 11,
  kZsetZiplist = 12,
  kHashZiplist = 13,
  kListQuicklist = 14,
  kStreamListpacks = 15,
  kHashListpack = 16,
  kZsetListpack = 17,
  kListQuicklist2 = 18,
  kStreamListpacks2 = 19,
};

enum Opcode : unsigned {
  kFunction2 = 245,
  kFunctionPreGa = 246,
  kModuleAux = 247,
  kIdle = 248,
  kFreq = 249,
  kAux = 250,
  kResizeDb = 251,
  kExpireTimeMs = 252,
  kExpireTime = 253,
  kSelectDb = 254,
  kEof = 255,
};

constexpr unsigned kEncInt8 = 0, kEncInt16 = 1, kEncInt32 = 2, kEncLzf = 3;
constexpr unsigned kQuicklistPlain = 1, kQuicklistPacked = 2;

void put_le(std::string& out, std::uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

}  // namespace

// --- writer -------------------------------------------------------------------

void RdbWriter::length(std::uint64_t n) {
  if (n < (1u << 6)) {
    byte(static_cast<unsigned char>(n));
  } else if (n < (1u << 14)) {
    byte(static_cast<unsigned char>(0x40 | (n >> 8)));
    byte(static_cast<unsigned char>(n & 0xff));
  } else if (n <= 0xffffffffull) {
    byte(0x80);
    for (int i = 3; i >= 0; --i) byte(static_cast<unsigned char>((n >> (8 * i)) & 0xff));
  } else {
    byte(0x81);
    for (int i = 7; i >= 0; --i) byte(static_cast<unsigned char>((n >> (8 * i)) & 0xff));
  }
}

void RdbWriter::string(std::string_view s) {
  // Redis's rdbTryIntegerEncoding: a canonical integer of at most 11
  // characters that fits 32 bits is stored as 1, 2 or 4 bytes.
  long long v = 0;
  if (!s.empty() && s.size() <= 11 && parse_ll(s, v) && v >= INT32_MIN && v <= INT32_MAX) {
    if (v >= INT8_MIN && v <= INT8_MAX) {
      byte(0xC0 | kEncInt8);
      put_le(buf_, static_cast<std::uint64_t>(v), 1);
    } else if (v >= INT16_MIN && v <= INT16_MAX) {
      byte(0xC0 | kEncInt16);
      put_le(buf_, static_cast<std::uint64_t>(v), 2);
    } else {
      byte(0xC0 | kEncInt32);
      put_le(buf_, static_cast<std::uint64_t>(v), 4);
    }
    return;
  }
  length(s.size());
  buf_.append(s);
}

void RdbWriter::aux(std::string_view key, std::string_view value) {
  byte(kAux);
  string(key);
  string(value);
}

void RdbWriter::header(std::int64_t now_ms, std::int64_t used_mem, std::uint64_t keys,
                       std::uint64_t expires) {
  char magic[10];
  std::snprintf(magic, sizeof magic, "REDIS%04d", kRdbVersion);
  buf_.append(magic, 9);
  aux("redis-ver", "7.0.15");
  aux("redis-bits", "64");
  aux("ctime", std::to_string(now_ms / 1000));
  aux("used-mem", std::to_string(used_mem));
  aux("aof-base", "0");
  byte(kSelectDb);
  length(0);
  byte(kResizeDb);
  length(keys);
  length(expires);
}

void RdbWriter::entry(std::string_view key, std::string_view value, const Object* object,
                      std::int64_t expire_at) {
  if (expire_at >= 0) {
    byte(kExpireTimeMs);
    put_le(buf_, static_cast<std::uint64_t>(expire_at), 8);
  }
  if (object == nullptr) {
    byte(kString);
    string(key);
    string(value);
    return;
  }
  switch (object->type()) {
    case Type::list: {
      const auto& l = static_cast<const List&>(*object);
      byte(kList);
      string(key);
      length(l.size());
      for (std::size_t i = 0; i < l.size(); ++i) string(l.at(i));
      return;
    }
    case Type::set: {
      const auto& s = static_cast<const SetObject&>(*object);
      byte(kSet);
      string(key);
      length(s.size());
      s.for_each([&](std::string_view m) { string(m); });
      return;
    }
    case Type::zset: {
      const auto& z = static_cast<const ZSet&>(*object);
      byte(kZset2);
      string(key);
      length(z.size());
      for (const ZSet::Node* n = z.first(); n != nullptr; n = n->next()) {
        string(n->member());
        std::uint64_t bits;
        const double d = n->score();
        std::memcpy(&bits, &d, sizeof bits);
        put_le(buf_, bits, 8);
      }
      return;
    }
    case Type::hash: {
      const auto& h = static_cast<const HashObject&>(*object);
      byte(kHash);
      string(key);
      length(h.size());
      h.for_each([&](std::string_view f, std::string_view v) {
        string(f);
        string(v);
      });
      return;
    }
    case Type::string:
      break;
  }
  byte(kString);
  string(key);
  string(value);
}

void RdbWriter::finish() {
  byte(kEof);
  crc_ = crc64(crc_, buf_);
  put_le(buf_, crc_, 8);
  finished_ = true;
}

std::string RdbWriter::take() {
  if (!finished_) crc_ = crc64(crc_, buf_);
  std::string out;
  out.swap(buf_);
  return out;
}

// --- loader -------------------------------------------------------------------

namespace {

const char* type_label(unsigned t) noexcept {
  switch (t) {
    case kModule:
    case kModule2:
      return "module";
    case kStreamListpacks:
    case kStreamListpacks2:
      return "stream";
    case kHashZipmap:
      return "zipmap hash (Redis < 2.6)";
    default:
      return "unknown";
  }
}

std::string number(long long v) {
  return std::to_string(v);
}

std::string score_text(double d) {
  if (std::isinf(d)) return d > 0 ? "inf" : "-inf";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.17g", d);
  return buf;
}

// Reads the file front to back; every read checks the bounds, so a
// truncated or malformed file throws instead of reading past the end.
class Reader {
 public:
  Reader(std::string_view data, std::size_t base = 0) : d_(data), base_(base) {}

  [[noreturn]] void fail(const std::string& what) const {
    throw RdbFormatError(what + " at offset " + std::to_string(base_ + pos_));
  }
  void need(std::size_t n) const {
    if (d_.size() - pos_ < n) {
      if (base_ == 0) throw RdbFormatError("truncated at offset " + std::to_string(pos_));
      fail("encoded value ends early");
    }
  }
  bool done() const noexcept { return pos_ == d_.size(); }
  std::size_t pos() const noexcept { return pos_; }
  unsigned u8() {
    need(1);
    return static_cast<unsigned char>(d_[pos_++]);
  }
  std::uint64_t le(int bytes) {
    need(static_cast<std::size_t>(bytes));
    std::uint64_t v = 0;
    for (int i = 0; i < bytes; ++i)
      v |= std::uint64_t{static_cast<unsigned char>(d_[pos_ + static_cast<std::size_t>(i)])}
           << (8 * i);
    pos_ += static_cast<std::size_t>(bytes);
    return v;
  }
  std::uint64_t be(int bytes) {
    need(static_cast<std::size_t>(bytes));
    std::uint64_t v = 0;
    for (int i = 0; i < bytes; ++i)
      v = (v << 8) | static_cast<unsigned char>(d_[pos_ + static_cast<std::size_t>(i)]);
    pos_ += static_cast<std::size_t>(bytes);
    return v;
  }
  std::string_view bytes(std::size_t n) {
    need(n);
    std::string_view v = d_.substr(pos_, n);
    pos_ += n;
    return v;
  }

  // Redis's rdbLoadLen; `encoded` tells an RDB_ENCVAL special encoding.
  std::uint64_t length(bool* encoded = nullptr) {
    const unsigned b = u8();
    if (encoded != nullptr) *encoded = false;
    switch (b >> 6) {
      case 0:
        return b & 0x3f;
      case 1:
        return (std::uint64_t{b & 0x3f} << 8) | u8();
      case 2:
        if (b == 0x80) return be(4);
        if (b == 0x81) return be(8);
        fail("bad length encoding " + std::to_string(b));
      default:
        if (encoded == nullptr) fail("unexpected string encoding for a length");
        *encoded = true;
        return b & 0x3f;
    }
  }
  // A collection's length, bounded by what the rest of the file could hold
  // (each element takes at least one byte), so a corrupt length cannot
  // make us reserve gigabytes.
  std::uint64_t count(std::uint64_t min_bytes_each = 1) {
    const std::uint64_t n = length();
    if (n > (d_.size() - pos_) / min_bytes_each) fail("collection length " + std::to_string(n));
    return n;
  }

  // Redis's rdbGenericLoadStringObject: plain, integer or LZF.
  std::string string() {
    bool enc = false;
    const std::uint64_t n = length(&enc);
    if (!enc) return std::string(bytes(n));
    switch (n) {
      case kEncInt8:
        return number(static_cast<std::int8_t>(le(1)));
      case kEncInt16:
        return number(static_cast<std::int16_t>(le(2)));
      case kEncInt32:
        return number(static_cast<std::int32_t>(le(4)));
      case kEncLzf: {
        const std::uint64_t clen = length();
        const std::uint64_t len = length();
        const std::string_view in = bytes(clen);
        if (len > (std::uint64_t{512} << 20))
          fail("LZF string of " + std::to_string(len) + " bytes");
        return lzf(in, static_cast<std::size_t>(len));
      }
      default:
        fail("unknown string encoding " + std::to_string(n));
    }
  }

  // liblzf's lzf_decompress (lzf_d.c), with every bound checked.
  std::string lzf(std::string_view in, std::size_t len) const {
    std::string out;
    out.reserve(len);
    std::size_t i = 0;
    while (i < in.size()) {
      unsigned ctrl = static_cast<unsigned char>(in[i++]);
      if (ctrl < 32) {  // a literal run of ctrl + 1 bytes
        const std::size_t run = ctrl + 1;
        if (in.size() - i < run || len - out.size() < run) fail("corrupt LZF data");
        out.append(in.substr(i, run));
        i += run;
      } else {  // a back reference
        std::size_t n = ctrl >> 5;
        if (n == 7) {
          if (i >= in.size()) fail("corrupt LZF data");
          n += static_cast<unsigned char>(in[i++]);
        }
        if (i >= in.size()) fail("corrupt LZF data");
        const std::size_t back = ((ctrl & 0x1f) << 8) + static_cast<unsigned char>(in[i++]) + 1;
        n += 2;
        if (back > out.size() || len - out.size() < n) fail("corrupt LZF data");
        std::size_t from = out.size() - back;
        for (std::size_t k = 0; k < n; ++k) out.push_back(out[from + k]);
      }
    }
    if (out.size() != len) fail("LZF data of the wrong length");
    return out;
  }

  // RDB_TYPE_ZSET's text score: a length byte, 253 nan, 254 inf, 255 -inf.
  double text_double() {
    const unsigned n = u8();
    if (n == 253) return std::numeric_limits<double>::quiet_NaN();
    if (n == 254) return std::numeric_limits<double>::infinity();
    if (n == 255) return -std::numeric_limits<double>::infinity();
    const std::string t(bytes(n));
    char* end = nullptr;
    const double d = std::strtod(t.c_str(), &end);
    if (end != t.c_str() + t.size()) fail("bad score text");
    return d;
  }
  double binary_double() {
    const std::uint64_t bits = le(8);
    double d;
    std::memcpy(&d, &bits, sizeof d);
    return d;
  }

 private:
  std::string_view d_;
  std::size_t base_;  // offset of d_ in the file (0 for the file itself)
  std::size_t pos_ = 0;
};

// The elements of a listpack (src/listpack.c), integers as their decimal
// text. `blob` is one RDB string; `at` its offset for messages.
std::vector<std::string> listpack_elements(std::string_view blob, std::size_t at) {
  Reader r(blob, at);
  const std::uint64_t total = r.le(4);
  if (total != blob.size()) r.fail("listpack size mismatch");
  (void)r.le(2);  // element count (65535: unknown); the terminator ends it
  std::vector<std::string> out;
  for (;;) {
    const unsigned b = r.u8();
    if (b == 0xff) break;
    std::size_t header = 1, data = 0;
    if ((b & 0x80) == 0) {  // 7-bit unsigned
      out.push_back(number(b & 0x7f));
    } else if ((b & 0xc0) == 0x80) {  // 6-bit string length
      data = b & 0x3f;
      out.emplace_back(r.bytes(data));
    } else if ((b & 0xe0) == 0xc0) {  // 13-bit signed
      header = 2;
      long long v = (static_cast<long long>(b & 0x1f) << 8) | r.u8();
      if (v >= (1 << 12)) v -= (1 << 13);
      out.push_back(number(v));
    } else if ((b & 0xf0) == 0xe0) {  // 12-bit string length
      header = 2;
      data = (std::size_t{b & 0x0f} << 8) | r.u8();
      out.emplace_back(r.bytes(data));
    } else if (b == 0xf0) {  // 32-bit string length
      header = 5;
      data = static_cast<std::size_t>(r.le(4));
      out.emplace_back(r.bytes(data));
    } else if (b >= 0xf1 && b <= 0xf4) {  // 16, 24, 32, 64-bit signed
      static constexpr int kWidth[] = {2, 3, 4, 8};
      const int w = kWidth[b - 0xf1];
      const std::uint64_t u = r.le(w);
      long long v;
      if (w == 8) {
        v = static_cast<long long>(u);
      } else {
        const std::uint64_t sign = std::uint64_t{1} << (8 * w - 1);
        v = (u & sign) != 0 ? static_cast<long long>(u) - (1ll << (8 * w))
                            : static_cast<long long>(u);
      }
      out.push_back(number(v));
      data = static_cast<std::size_t>(w);
    } else {
      r.fail("bad listpack entry encoding");
    }
    // The back-length: how many bytes encode header + data (lpEncodeBacklen).
    const std::size_t l = header + data;
    const std::size_t backlen = l <= 127        ? 1
                                : l < 16383     ? 2
                                : l < 2097151   ? 3
                                : l < 268435455 ? 4
                                                : 5;
    (void)r.bytes(backlen);
  }
  if (!r.done()) r.fail("bytes after the listpack's end");
  return out;
}

// The elements of a ziplist (src/ziplist.c, Redis 3.2 - 6.2).
std::vector<std::string> ziplist_elements(std::string_view blob, std::size_t at) {
  Reader r(blob, at);
  if (r.le(4) != blob.size()) r.fail("ziplist size mismatch");
  (void)r.le(4);  // tail offset
  (void)r.le(2);  // element count
  std::vector<std::string> out;
  for (;;) {
    const unsigned first = r.u8();
    if (first == 0xff) break;
    if (first == 0xfe) (void)r.le(4);  // a 5-byte previous length
    const unsigned b = r.u8();
    switch (b >> 6) {
      case 0:
        out.emplace_back(r.bytes(b & 0x3f));
        continue;
      case 1:
        out.emplace_back(r.bytes((std::size_t{b & 0x3f} << 8) | r.u8()));
        continue;
      case 2:
        out.emplace_back(r.bytes(static_cast<std::size_t>(r.be(4))));
        continue;
      default:
        break;
    }
    switch (b) {
      case 0xc0:
        out.push_back(number(static_cast<std::int16_t>(r.le(2))));
        break;
      case 0xd0:
        out.push_back(number(static_cast<std::int32_t>(r.le(4))));
        break;
      case 0xe0:
        out.push_back(number(static_cast<std::int64_t>(r.le(8))));
        break;
      case 0xf0: {
        const std::uint64_t u = r.le(3);
        out.push_back(number((u & 0x800000) != 0 ? static_cast<long long>(u) - (1ll << 24)
                                                 : static_cast<long long>(u)));
        break;
      }
      case 0xfe:
        out.push_back(number(static_cast<std::int8_t>(r.le(1))));
        break;
      default:
        if (b >= 0xf1 && b <= 0xfd) {
          out.push_back(number((b & 0x0f) - 1));
          break;
        }
        r.fail("bad ziplist entry encoding");
    }
  }
  if (!r.done()) r.fail("bytes after the ziplist's end");
  return out;
}

// The members of an intset (src/intset.c): encoding, length, values (LE).
std::vector<std::string> intset_elements(std::string_view blob, std::size_t at) {
  Reader r(blob, at);
  const std::uint64_t width = r.le(4);
  const std::uint64_t n = r.le(4);
  if (width != 2 && width != 4 && width != 8) r.fail("bad intset encoding");
  if (n * width != blob.size() - 8) r.fail("intset size mismatch");
  std::vector<std::string> out;
  out.reserve(n);
  for (std::uint64_t i = 0; i < n; ++i) {
    const std::uint64_t u = r.le(static_cast<int>(width));
    long long v = width == 2   ? static_cast<std::int16_t>(u)
                  : width == 4 ? static_cast<std::int32_t>(u)
                               : static_cast<std::int64_t>(u);
    out.push_back(number(v));
  }
  return out;
}

// One key's value, as the command that rebuilds it and its arguments.
struct Value {
  const char* command = nullptr;  // "SET", "RPUSH", "SADD", "ZADD", "HSET"
  std::vector<std::string> args;  // after the key; pairs for ZADD (score member) and HSET
  std::size_t group = 1;          // arguments per element
};

Value read_value(Reader& r, unsigned type) {
  Value v;
  const auto add_pairs_from = [&](std::vector<std::string> flat, bool zset) {
    if (flat.size() % 2 != 0) r.fail("odd number of elements in a pair encoding");
    v.group = 2;
    for (std::size_t i = 0; i < flat.size(); i += 2) {
      if (zset) {  // stored member, score; ZADD wants score, member
        v.args.push_back(std::move(flat[i + 1]));
        v.args.push_back(std::move(flat[i]));
      } else {
        v.args.push_back(std::move(flat[i]));
        v.args.push_back(std::move(flat[i + 1]));
      }
    }
  };
  switch (type) {
    case kString:
      v.command = "SET";
      v.args.push_back(r.string());
      return v;
    case kList: {
      v.command = "RPUSH";
      for (std::uint64_t n = r.count(); n != 0; --n) v.args.push_back(r.string());
      return v;
    }
    case kSet: {
      v.command = "SADD";
      for (std::uint64_t n = r.count(); n != 0; --n) v.args.push_back(r.string());
      return v;
    }
    case kZset:
    case kZset2: {
      v.command = "ZADD";
      v.group = 2;
      for (std::uint64_t n = r.count(); n != 0; --n) {
        std::string member = r.string();
        const double d = type == kZset ? r.text_double() : r.binary_double();
        if (std::isnan(d)) r.fail("sorted set with a NaN score");
        v.args.push_back(score_text(d));
        v.args.push_back(std::move(member));
      }
      return v;
    }
    case kHash: {
      v.command = "HSET";
      v.group = 2;
      for (std::uint64_t n = r.count(2); n != 0; --n) {
        v.args.push_back(r.string());
        v.args.push_back(r.string());
      }
      return v;
    }
    case kListZiplist: {
      v.command = "RPUSH";
      const std::size_t at = r.pos();
      v.args = ziplist_elements(r.string(), at);
      return v;
    }
    case kSetIntset: {
      v.command = "SADD";
      const std::size_t at = r.pos();
      v.args = intset_elements(r.string(), at);
      return v;
    }
    case kZsetZiplist:
    case kZsetListpack: {
      v.command = "ZADD";
      const std::size_t at = r.pos();
      const std::string blob = r.string();
      add_pairs_from(
          type == kZsetZiplist ? ziplist_elements(blob, at) : listpack_elements(blob, at), true);
      for (std::size_t i = 0; i < v.args.size(); i += 2) {
        char* end = nullptr;
        const double d = std::strtod(v.args[i].c_str(), &end);
        if (v.args[i].empty() || end != v.args[i].c_str() + v.args[i].size() || std::isnan(d))
          r.fail("bad score in a sorted set");
        v.args[i] = score_text(d);
      }
      return v;
    }
    case kHashZiplist:
    case kHashListpack: {
      v.command = "HSET";
      const std::size_t at = r.pos();
      const std::string blob = r.string();
      add_pairs_from(
          type == kHashZiplist ? ziplist_elements(blob, at) : listpack_elements(blob, at), false);
      return v;
    }
    case kListQuicklist:
    case kListQuicklist2: {
      v.command = "RPUSH";
      for (std::uint64_t n = r.count(); n != 0; --n) {
        const unsigned container =
            type == kListQuicklist2 ? static_cast<unsigned>(r.length()) : kQuicklistPacked;
        const std::size_t at = r.pos();
        std::string blob = r.string();
        if (container == kQuicklistPlain) {
          v.args.push_back(std::move(blob));
        } else if (container == kQuicklistPacked) {
          auto elems =
              type == kListQuicklist2 ? listpack_elements(blob, at) : ziplist_elements(blob, at);
          for (auto& e : elems) v.args.push_back(std::move(e));
        } else {
          r.fail("bad quicklist container " + std::to_string(container));
        }
      }
      return v;
    }
    default:
      r.fail(std::string("unsupported value type ") + std::to_string(type) + " (" +
             type_label(type) + ")");
  }
}

// Reads every record after the header; calls `key` for each key (its
// expiry or -1, name and value). Returns the offset just past EOF.
template <class OnKey>
std::size_t walk(Reader& r, OnKey&& key) {
  std::int64_t expire = -1;
  for (;;) {
    const unsigned op = r.u8();
    switch (op) {
      case kEof:
        return r.pos();
      case kSelectDb: {
        const std::uint64_t db = r.length();
        if (db != 0) r.fail("database " + std::to_string(db) + " (weft-kv has only database 0)");
        continue;
      }
      case kResizeDb:
        (void)r.length();
        (void)r.length();
        continue;
      case kAux:
        (void)r.string();
        (void)r.string();
        continue;
      case kExpireTimeMs:
        expire = static_cast<std::int64_t>(r.le(8));
        continue;
      case kExpireTime:
        expire = static_cast<std::int64_t>(r.le(4)) * 1000;
        continue;
      case kIdle:
        (void)r.length();
        continue;
      case kFreq:
        (void)r.u8();
        continue;
      case kModuleAux:
        r.fail("module data (weft-kv has no modules)");
      case kFunction2:
      case kFunctionPreGa:
        r.fail("a function library (weft-kv has no functions)");
      default:
        break;
    }
    std::string name = r.string();
    Value v = read_value(r, op);
    key(expire, std::move(name), std::move(v));
    expire = -1;
  }
}

}  // namespace

RdbLoadResult rdb_load(std::string_view file, std::int64_t now_ms,
                       const std::function<void(std::span<const std::string_view>)>& apply) {
  if (file.size() < 9 || file.substr(0, 5) != "REDIS")
    throw RdbFormatError("not an RDB file (no REDIS signature)");
  int version = 0;
  for (char c : file.substr(5, 4)) {
    if (c < '0' || c > '9') throw RdbFormatError("not an RDB file (bad version)");
    version = version * 10 + (c - '0');
  }
  if (version < 1 || version > kRdbVersion)
    throw RdbFormatError("can't handle RDB format version " + std::to_string(version));

  // Pass 1: the structure, without applying anything.
  Reader check(file);
  (void)check.bytes(9);
  const std::size_t end = walk(check, [](std::int64_t, std::string&&, Value&&) {});
  if (version >= 5) {
    if (file.size() - end < 8) throw RdbFormatError("truncated at offset " + std::to_string(end));
    Reader tail(file.substr(end, 8));
    const std::uint64_t stored = tail.le(8);
    if (stored != 0 && stored != crc64(0, file.substr(0, end)))
      throw RdbFormatError("checksum mismatch (stored CRC-64 does not match the data)");
  }

  // Pass 2: apply.
  RdbLoadResult result;
  Reader r(file);
  (void)r.bytes(9);
  std::vector<std::string_view> argv;
  std::string at_text;
  walk(r, [&](std::int64_t expire, std::string&& name, Value&& v) {
    if (expire >= 0 && expire <= now_ms) {
      ++result.expired;
      return;
    }
    if (v.args.empty()) return;  // an empty collection: Redis drops those too
    constexpr std::size_t kBatch = 1024;
    for (std::size_t i = 0; i < v.args.size();) {
      argv.clear();
      argv.push_back(v.command);
      argv.push_back(name);
      const std::size_t n = std::min(v.args.size() - i, kBatch * v.group);
      for (std::size_t k = 0; k < n; ++k) argv.push_back(v.args[i + k]);
      i += n;
      apply(argv);
    }
    if (expire >= 0) {
      at_text = std::to_string(expire);
      argv.assign({"PEXPIREAT", name, at_text});
      apply(argv);
    }
    ++result.keys;
  });
  return result;
}

}  // namespace kv

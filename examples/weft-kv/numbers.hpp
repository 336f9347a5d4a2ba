// weft-kv: Redis's integer text rules, shared by the value types and the
// command layer.
#pragma once

#include <string_view>

namespace kv {

/// Redis's string2ll (src/util.c): no spaces, no '+', no leading zeros, no
/// "-0", at most 20 characters, no overflow. False (out unchanged)
/// otherwise. It is also the test for an integer member of an intset and
/// for the "int" string encoding.
bool parse_ll(std::string_view s, long long& out) noexcept;

}  // namespace kv

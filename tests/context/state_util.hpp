// Helpers for tests of per-context machine state: callee-saved registers and
// floating-point control state.
#pragma once

#include <cfenv>
#include <cstdint>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace weft::test {

/// Evolves 6 integers and 6 doubles for `rounds` rounds, calling sw() in each
/// round while they are live. The empty asm statements force the values into
/// registers right before and after the call, so the compiler keeps them in
/// callee-saved registers (or spills them): a switch that loses either is
/// visible in the checksum. With sw a no-op it gives the reference checksum.
template <class Switch>
[[gnu::noinline]] inline std::uint64_t churn_registers(std::uint64_t seed, int rounds,
                                                       Switch&& sw) {
  std::uint64_t a = seed ^ 0x9E3779B97F4A7C15ull, b = seed * 3 + 1, c = seed * 5 + 2;
  std::uint64_t d = seed * 7 + 3, e = seed * 11 + 4, f = seed * 13 + 5;
  double x = static_cast<double>(seed % 1000) + 0.5, y = x * 1.25, z = x * 0.75;
  double u = x + 3.0, v = x - 7.0, w = x * 2.0;
  for (int i = 0; i < rounds; ++i) {
    a = a * 6364136223846793005ull + 1442695040888963407ull;
    b ^= a >> 17;
    c += b * 31;
    d = (d << 7) | (d >> 57);
    e += d ^ c;
    f -= e * 3;
    x = x * 1.0000001 + 1.0;
    y = y * 0.9999999 + x * 1e-3;
    z += y / 7.0;
    u -= z / 11.0;
    v += u * 1e-6;
    w = w * 0.5 + v;
    asm volatile("" : "+r"(a), "+r"(b), "+r"(c), "+r"(d), "+r"(e), "+r"(f));
#if defined(__x86_64__)
    asm volatile("" : "+x"(x), "+x"(y), "+x"(z), "+x"(u), "+x"(v), "+x"(w));
#endif
    sw();
    asm volatile("" : "+r"(a), "+r"(b), "+r"(c), "+r"(d), "+r"(e), "+r"(f));
#if defined(__x86_64__)
    asm volatile("" : "+x"(x), "+x"(y), "+x"(z), "+x"(u), "+x"(v), "+x"(w));
#endif
  }
  auto bits = [](double q) {
    std::uint64_t r;
    __builtin_memcpy(&r, &q, sizeof r);
    return r;
  };
  return a ^ (b * 3) ^ (c * 5) ^ (d * 7) ^ (e * 11) ^ (f * 13) ^ bits(x) ^ (bits(y) << 1) ^
         (bits(z) << 2) ^ (bits(u) << 3) ^ (bits(v) << 4) ^ (bits(w) << 5);
}

/// The SSE rounding mode (MXCSR.RC) as an FE_* constant; fegetround() reads
/// the x87 control word, so the two are checked separately.
inline int sse_rounding() {
#if defined(__x86_64__)
  switch ((_mm_getcsr() >> 13) & 3) {
    case 0:
      return FE_TONEAREST;
    case 1:
      return FE_DOWNWARD;
    case 2:
      return FE_UPWARD;
    default:
      return FE_TOWARDZERO;
  }
#else
  return fegetround();
#endif
}

/// 1/3 computed at run time in the current rounding mode.
[[gnu::noinline]] inline double one_third() {
  volatile double one = 1.0, three = 3.0;
  return one / three;
}

}  // namespace weft::test

// The guide's examples (docs/guide/) check what they demonstrate: each runs
// as a test, and a wrong result ends it with exit status 1 and the reason.
#pragma once

#include <cstdio>
#include <cstdlib>

namespace guide {

inline void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "guide example: check failed: %s\n", what);
    std::exit(1);
  }
}

}  // namespace guide

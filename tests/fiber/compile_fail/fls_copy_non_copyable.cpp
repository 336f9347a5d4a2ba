// Must not compile: a Propagation::copy key of a move-only type (the
// FiberLocal constructor's static_assert). Built by ctest twice: as is,
// expecting the static_assert's message, and with -DWEFT_COMPILE_OK (share
// instead of copy), which must compile, so the failure has no other cause.
#include <memory>

#include "weft/fls.hpp"

#ifdef WEFT_COMPILE_OK
weft::FiberLocal<std::unique_ptr<int>> key{weft::Propagation::share};
#else
weft::FiberLocal<std::unique_ptr<int>> key{weft::Propagation::copy};
#endif

int main() {
  return key.has_value() ? 1 : 0;
}

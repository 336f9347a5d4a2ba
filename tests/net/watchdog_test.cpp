// Puts every test of weft_test_net under a Watchdog (a hang aborts the
// binary naming the test). Once per binary: each expansion of the macro adds
// another listener, so it lives here and in no other file of tests/net.
#include "common/test_util.hpp"

namespace {
WEFT_WATCHDOG_EVERY_TEST();
}  // namespace

// Helpers of the configuration tests: the message of an expected exception,
// and a fixture that runs each test with no WEFT_* variable set.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <exception>
#include <string>
#include <vector>

extern char** environ;

namespace weft::test {

/// Runs fn, which must throw E, and returns the message ("" if it did not).
template <class E, class F>
std::string message_of(F&& fn) {
  try {
    fn();
  } catch (const E& e) {
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "threw the wrong exception type: " << e.what();
    return "";
  }
  ADD_FAILURE() << "did not throw";
  return "";
}

/// Clears every WEFT_* variable before and after each test so that tests do
/// not see each other's (or the caller's) settings.
class CleanEnvTest : public ::testing::Test {
 protected:
  void SetUp() override { clear(); }
  void TearDown() override { clear(); }
  static void clear() {
    std::vector<std::string> names;
    for (char** e = environ; *e != nullptr; ++e) {
      std::string kv = *e;
      if (kv.rfind("WEFT_", 0) == 0) names.push_back(kv.substr(0, kv.find('=')));
    }
    for (const auto& n : names) unsetenv(n.c_str());
  }
  static void set(const char* name, const char* value) { ASSERT_EQ(setenv(name, value, 1), 0); }
};

}  // namespace weft::test

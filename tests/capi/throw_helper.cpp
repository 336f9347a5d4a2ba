// C++ helpers for the C tests: code that throws through C frames, as a C++
// callback called from a C fiber body would.
#include <new>
#include <stdexcept>
#include <system_error>

#include "weft/errors.hpp"

extern "C" void capi_test_throw(int kind) {
  switch (kind) {
    case 0:
      throw std::runtime_error("capi_test_throw: boom");
    case 1:
      throw weft::TimedOut();
    case 2:
      throw std::bad_alloc();
    case 3:
      throw std::system_error(EMFILE, std::generic_category(), "capi_test_throw: no fds");
    default:
      throw 42;  // not a std::exception
  }
}

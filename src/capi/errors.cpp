// weft.h: version, error codes and messages, the clock.
#include "weft/errors.hpp"

#include <cstring>
#include <exception>
#include <new>
#include <stdexcept>
#include <string>
#include <system_error>

#include "capi/capi.hpp"
#include "weft/fls.hpp"
#include "weft/quota.hpp"

namespace weft::capi {
namespace {

// The caller's last error message: per fiber (a fiber may resume on another
// thread, so a thread_local would hand it to whichever fiber runs there
// next), per spawn_blocking task, per plain thread.
FiberLocal<std::string>& last_error() noexcept {
  static FiberLocal<std::string> key;  // Propagation::none: children start with ""
  return key;
}

}  // namespace

void set_last_error(const char* message) noexcept {
  try {
    last_error().get().assign(message);
  } catch (...) {
    // No memory for the message: the code alone has to do.
  }
}

int current_error(int logic_error_code) noexcept {
  try {
    throw;
  } catch (const Cancelled&) {
    return -ECANCELED;
  } catch (const TimedOut&) {
    return -ETIMEDOUT;
  } catch (const std::system_error& e) {
    set_last_error(e.what());
    const std::error_category& cat = e.code().category();
    const int v = e.code().value();
    if ((cat == std::generic_category() || cat == std::system_category()) && v > 0) return -v;
    return -EIO;
  } catch (const QuotaExceeded& e) {
    set_last_error(e.what());  // names the quota, its usage and its limit
    return -ENOMEM;
  } catch (const std::bad_alloc&) {
    set_last_error("weft: out of memory");
    return -ENOMEM;
  } catch (const std::invalid_argument& e) {
    set_last_error(e.what());
    return -EINVAL;
  } catch (const std::logic_error& e) {
    set_last_error(e.what());
    return logic_error_code;
  } catch (const std::exception& e) {
    set_last_error(e.what());
    return -ENOTRECOVERABLE;
  } catch (...) {
    set_last_error("weft: a C++ exception that is not a std::exception");
    return -ENOTRECOVERABLE;
  }
}

}  // namespace weft::capi

#define WEFT_STRINGIFY2(x) #x
#define WEFT_STRINGIFY(x) WEFT_STRINGIFY2(x)

extern "C" {

uint32_t weft_version(void) {
  return WEFT_VERSION;
}

const char* weft_version_string(void) {
  return WEFT_STRINGIFY(WEFT_VERSION_MAJOR) "." WEFT_STRINGIFY(
      WEFT_VERSION_MINOR) "." WEFT_STRINGIFY(WEFT_VERSION_PATCH);
}

const char* weft_strerror(int err) {
  if (err == 0) return "success";
  if (err < 0) err = err == INT32_MIN ? 0 : -err;
  switch (err) {
    case ECANCELED:
      return "cancelled: the fiber or its scope was cancelled, and the call did nothing";
    case ETIMEDOUT:
      return "timed out: the timeout or deadline passed first, and the call did nothing";
    case EAGAIN:
      return "would wait: the call was asked not to wait (timeout 0) and could not complete; "
             "or a spawn reached a runtime limit (max_fibers, max_stack_memory)";
    case EPIPE:
      return "closed: the channel is closed (and drained), or the peer closed the connection";
    case ENOTRECOVERABLE:
      return "a fiber ended with a C++ exception (weft_last_error() has its message)";
    case EPERM:
      return "not permitted: the call needs a weft fiber or runtime (or the system refused)";
    default:
      break;
  }
  const char* s = err > 0 ? strerrordesc_np(err) : nullptr;
  return s != nullptr ? s : "unknown error";
}

const char* weft_last_error(void) {
  const std::string* s = weft::capi::last_error().try_get();
  return s != nullptr ? s->c_str() : "";
}

int64_t weft_now_ns(void) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // extern "C"

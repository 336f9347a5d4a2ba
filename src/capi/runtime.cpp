// weft.h: runtime, fibers, spawn_blocking, sleeping, and the observability
// calls (metrics as Prometheus text or JSON, the fiber dump).
//
// A weft_fiber* is the task pointer of a weft::JoinHandle<void*> that gave
// up its ownership (JoinHandle::release): no allocation beyond the C++
// spawn's own. Each call adopts it back into a JoinHandle, acts through the
// C++ API, and releases it again if the C handle stays valid.
#include "weft/runtime.hpp"

#include <cmath>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>

#include "capi/capi.hpp"
#include "weft/errors.hpp"
#include "weft/fiber.hpp"
#include "weft/metrics.hpp"
#include "weft/this_fiber.hpp"

struct weft_runtime {
  explicit weft_runtime(const weft::Config& c) : rt(c) {}
  weft::Runtime rt;
};

namespace weft::capi {
namespace {

using Handle = JoinHandle<void*>;

// The closure a C fiber runs. Trivially copyable, two words.
struct CallC {
  void* (*fn)(void*);
  void* arg;
  void* operator()() const { return fn(arg); }
};

weft_fiber* to_c(Handle&& h) noexcept {
  return reinterpret_cast<weft_fiber*>(h.release());
}

Handle adopt(weft_fiber* f) noexcept {
  return Handle(reinterpret_cast<detail::ResultTask<void*>*>(f));
}

// Hands a new fiber's handle to the caller, or detaches it (out NULL).
void hand_out(Handle&& h, weft_fiber** out) noexcept {
  if (out != nullptr) {
    *out = to_c(std::move(h));
  } else {
    h.detach();
  }
}

// v1's weft_spawn_options ends with `name`.
constexpr std::size_t kSpawnOptionsV1 =
    offsetof(weft_spawn_options, name) + sizeof(weft_spawn_options::name);
constexpr std::size_t kConfigV1 =
    offsetof(weft_config, stack_size) + sizeof(weft_config::stack_size);
// v1's weft_limits ends with max_stack_memory.
constexpr std::size_t kLimitsV1 =
    offsetof(weft_limits, max_stack_memory) + sizeof(weft_limits::max_stack_memory);

// The *_init functions' source: the environment's values, or the
// defaults if a WEFT_* variable is invalid (weft_runtime_new, which reads
// the environment again, reports it).
Config env_or_defaults() noexcept {
  try {
    return Config::from_env();
  } catch (...) {
    return Config{};
  }
}

int to_options(const weft_spawn_options* o, FiberOptions& out) {
  if (o == nullptr) return 0;
  if (o->struct_size < kSpawnOptionsV1) {
    set_last_error(
        "weft: weft_spawn_options.struct_size is too small (use weft_spawn_options_init)");
    return -EINVAL;
  }
  if (o->priority > WEFT_PRIORITY_CRITICAL) {
    set_last_error("weft: weft_spawn_options.priority must be a WEFT_PRIORITY_* value");
    return -EINVAL;
  }
  out.priority = static_cast<Priority>(o->priority);
  out.stack_size = o->stack_size;  // checked by the spawn
  if (o->name != nullptr) out.name = o->name;
  return 0;
}

}  // namespace
}  // namespace weft::capi

using weft::capi::CallC;
using weft::capi::guarded;
using weft::capi::Handle;

extern "C" {

void weft_config_init(weft_config* cfg) {
  if (cfg == nullptr) return;
  const weft::Config c = weft::capi::env_or_defaults();
  cfg->struct_size = sizeof(weft_config);
  cfg->workers = static_cast<uint32_t>(c.workers);
  cfg->stack_size = c.stack_size;
}

int weft_runtime_new(const weft_config* cfg, weft_runtime** out) {
  return weft_runtime_new_ex(cfg, nullptr, out);
}

void weft_limits_init(weft_limits* limits) {
  if (limits == nullptr) return;
  const weft::Config c = weft::capi::env_or_defaults();
  limits->struct_size = sizeof(weft_limits);
  limits->max_fibers = c.max_fibers;
  limits->max_stack_memory = c.max_stack_memory;
}

int weft_runtime_new_ex(const weft_config* cfg, const weft_limits* limits, weft_runtime** out) {
  if (out == nullptr) return -EINVAL;
  *out = nullptr;
  if (cfg != nullptr && cfg->struct_size < weft::capi::kConfigV1) {
    weft::capi::set_last_error("weft: weft_config.struct_size is too small (use weft_config_init)");
    return -EINVAL;
  }
  if (limits != nullptr && limits->struct_size < weft::capi::kLimitsV1) {
    weft::capi::set_last_error("weft: weft_limits.struct_size is too small (use weft_limits_init)");
    return -EINVAL;
  }
  return guarded([&] {
    weft::Config c = weft::Config::from_env();
    if (cfg != nullptr) {
      c.workers = cfg->workers;
      c.stack_size = cfg->stack_size;
    }
    if (limits != nullptr) {
      c.max_fibers = static_cast<std::size_t>(limits->max_fibers);
      c.max_stack_memory = static_cast<std::size_t>(limits->max_stack_memory);
    }
    *out = new weft_runtime(c);
    return 0;
  });
}

void weft_runtime_free(weft_runtime* rt) {
  if (rt == nullptr) return;
  if (weft::this_fiber::in_fiber()) {
    std::fputs(
        "weft: weft_runtime_free called from a fiber (it waits for every fiber to end, so it "
        "could wait for itself forever); call it from a thread that is not a fiber\n",
        stderr);
    std::abort();
  }
  delete rt;
}

int weft_block_on(weft_runtime* rt, void* (*fn)(void*), void* arg, void** result) {
  if (rt == nullptr || fn == nullptr) return -EINVAL;
  return guarded([&] {
    void* r = rt->rt.block_on(CallC{fn, arg});
    if (result != nullptr) *result = r;
    return 0;
  });
}

int weft_runtime_set_memory_limit(weft_runtime* rt, uint64_t bytes) {
  if (rt == nullptr) return -EINVAL;
  return guarded([&] {
    rt->rt.set_memory_limit(bytes == UINT64_MAX ? weft::Config::memory_limit_auto
                                                : static_cast<std::size_t>(bytes));
    return 0;
  });
}

uint64_t weft_runtime_memory_limit(const weft_runtime* rt) {
  return rt != nullptr ? rt->rt.memory_limit() : 0;
}

uint64_t weft_runtime_memory_used(const weft_runtime* rt) {
  return rt != nullptr ? rt->rt.memory_usage().used : 0;
}

uint64_t weft_runtime_memory_refusals(const weft_runtime* rt) {
  return rt != nullptr ? rt->rt.memory_usage().refusals : 0;
}

int weft_runtime_on_memory_pressure(weft_runtime* rt,
                                    void (*fn)(uint64_t charged, uint64_t limit, void* arg),
                                    void* arg, uint64_t* id) {
  if (rt == nullptr || fn == nullptr || id == nullptr) return -EINVAL;
  return guarded([&] {
    *id = rt->rt.on_memory_pressure(
        [fn, arg](std::uint64_t charged, std::uint64_t limit) { fn(charged, limit, arg); });
    return 0;
  });
}

int weft_runtime_remove_memory_pressure(weft_runtime* rt, uint64_t id) {
  if (rt == nullptr) return -EINVAL;
  return guarded([&] { return rt->rt.remove_memory_pressure_callback(id) ? 0 : -ENOENT; });
}

void weft_spawn_options_init(weft_spawn_options* opts) {
  if (opts == nullptr) return;
  opts->struct_size = sizeof(weft_spawn_options);
  opts->priority = WEFT_PRIORITY_NORMAL;
  opts->stack_size = 0;
  opts->name = nullptr;
}

int weft_spawn(weft_runtime* rt, void* (*fn)(void*), void* arg, weft_fiber** out) {
  if (out != nullptr) *out = nullptr;
  if (fn == nullptr) return -EINVAL;
  return guarded(
      [&] {
        Handle h = rt != nullptr ? rt->rt.spawn(CallC{fn, arg}) : weft::spawn(CallC{fn, arg});
        weft::capi::hand_out(std::move(h), out);
        return 0;
      },
      -EPERM);
}

int weft_spawn_ex(weft_runtime* rt, const weft_spawn_options* opts, void* (*fn)(void*), void* arg,
                  weft_fiber** out) {
  if (out != nullptr) *out = nullptr;
  if (fn == nullptr) return -EINVAL;
  return guarded(
      [&] {
        weft::FiberOptions o;
        if (const int rc = weft::capi::to_options(opts, o)) return rc;
        Handle h = rt != nullptr ? rt->rt.spawn(o, CallC{fn, arg}) : weft::spawn(o, CallC{fn, arg});
        weft::capi::hand_out(std::move(h), out);
        return 0;
      },
      -EPERM);
}

int weft_join(weft_fiber* f, void** result) {
  if (f == nullptr) return -EINVAL;
  Handle h = weft::capi::adopt(f);
  try {
    void* r = h.join();
    if (result != nullptr) *result = r;
    return 0;
  } catch (...) {
    // The fiber's own exception (the handle is consumed), or the joining
    // fiber's cancellation (it is not: h detaches it on the way out, so
    // that the C handle is consumed in every case and -ECANCELED cannot
    // mean two things for its validity).
    return weft::capi::current_error(-EINVAL);
  }
}

int weft_cancel(weft_fiber* f) {
  if (f == nullptr) return -EINVAL;
  Handle h = weft::capi::adopt(f);
  h.cancel();
  (void)h.release();
  return 0;
}

void weft_detach(weft_fiber* f) {
  if (f != nullptr) weft::capi::adopt(f).detach();
}

uint64_t weft_fiber_id(const weft_fiber* f) {
  if (f == nullptr) return 0;
  Handle h = weft::capi::adopt(const_cast<weft_fiber*>(f));
  const uint64_t id = h.id();
  (void)h.release();
  return id;
}

uint64_t weft_self_id(void) {
  return weft::this_fiber::id();
}

int weft_in_fiber(void) {
  return weft::this_fiber::in_fiber() ? 1 : 0;
}

void weft_yield(void) {
  weft::this_fiber::yield();
}

int weft_sleep_ns(int64_t ns) {
  if (ns <= 0) return 0;
  return guarded([&] {
    // Through Deadline::after, which saturates: now + ns cannot overflow.
    weft::this_fiber::sleep_until(weft::capi::deadline_after(ns));
    return 0;
  });
}

int weft_sleep_until_ns(int64_t deadline_ns) {
  if (deadline_ns < -1) return -EINVAL;
  return guarded([&] {
    weft::this_fiber::sleep_until(weft::capi::deadline_at(deadline_ns));
    return 0;
  });
}

int weft_spawn_blocking(void* (*fn)(void*), void* arg, weft_fiber** out) {
  if (out != nullptr) *out = nullptr;
  if (fn == nullptr) return -EINVAL;
  return guarded(
      [&] {
        weft::capi::hand_out(weft::spawn_blocking(CallC{fn, arg}), out);
        return 0;
      },
      -EPERM);
}

}  // extern "C"

namespace weft::capi {
namespace {

// *out = a malloc'ed NUL-terminated copy of text (weft_free frees it).
int give_string(const std::string& text, char** out, size_t* len) noexcept {
  *out = static_cast<char*>(std::malloc(text.size() + 1));
  if (*out == nullptr) return -ENOMEM;
  std::memcpy(*out, text.c_str(), text.size() + 1);
  if (len != nullptr) *len = text.size();
  return 0;
}

// weft::metrics::snapshot() as the JSON array weft.h documents.
std::string metrics_json() {
  nlohmann::json all = nlohmann::json::array();
  for (const metrics::Metric& m : metrics::snapshot()) {
    nlohmann::json series = nlohmann::json::array();
    for (const metrics::Series& s : m.series) {
      nlohmann::json labels = nlohmann::json::object();
      for (const auto& [k, v] : s.labels) labels[k] = v;
      nlohmann::json one = {{"labels", std::move(labels)}};
      if (m.type == metrics::MetricType::histogram) {
        nlohmann::json buckets = nlohmann::json::array();
        for (const metrics::Bucket& b : s.buckets) {
          // JSON has no infinity: the +Inf bucket's bound is null.
          nlohmann::json le =
              std::isinf(b.upper_bound) ? nlohmann::json(nullptr) : nlohmann::json(b.upper_bound);
          buckets.push_back({{"le", std::move(le)}, {"count", b.cumulative_count}});
        }
        one["buckets"] = std::move(buckets);
        one["sum"] = s.sum;
        one["count"] = s.count;
      } else {
        one["value"] = s.value;
      }
      series.push_back(std::move(one));
    }
    all.push_back({{"name", m.name},
                   {"type", metrics::to_string(m.type)},
                   {"unit", m.unit},
                   {"help", m.help},
                   {"series", std::move(series)}});
  }
  return all.dump();
}

}  // namespace
}  // namespace weft::capi

int weft_metrics_write(int format, char** out, size_t* len) {
  if (out == nullptr || (format != WEFT_FORMAT_TEXT && format != WEFT_FORMAT_JSON)) return -EINVAL;
  *out = nullptr;
  return guarded([&] {
    std::string text;
    if (format == WEFT_FORMAT_TEXT) {
      weft::metrics::write_prometheus(text);
    } else {
      text = weft::capi::metrics_json();
    }
    return weft::capi::give_string(text, out, len);
  });
}

int weft_runtime_dump(const weft_runtime* rt, int format, char** out, size_t* len) {
  if (rt == nullptr || out == nullptr || (format != WEFT_FORMAT_TEXT && format != WEFT_FORMAT_JSON))
    return -EINVAL;
  *out = nullptr;
  return guarded([&] {
    return weft::capi::give_string(
        rt->rt.dump(format == WEFT_FORMAT_TEXT ? weft::DumpFormat::text : weft::DumpFormat::json),
        out, len);
  });
}

void weft_free(void* p) {
  std::free(p);
}

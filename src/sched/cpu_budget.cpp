// The default worker count from the affinity mask and the cgroup CPU
// bandwidth limits (see cpu_budget.hpp for the rules and their sources).
#include "sched/cpu_budget.hpp"

#include <sched.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <exception>
#include <fstream>
#include <new>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

namespace weft::detail {
namespace {

constexpr std::size_t kMaxWorkers = 1024;

/// One cgroup hierarchy that can limit a resource (CPU time, memory): where
/// it is mounted and which cgroup of it the process is in.
struct Hierarchy {
  bool v2 = false;
  std::string mount_root;   // the hierarchy's path shown at the mount point
  std::string mount_point;  // where that path is mounted
  std::string cgroup;       // the process's cgroup, from /proc/self/cgroup
};

/// A limit found in one cgroup directory: its amount (CPUs, bytes) and
/// where, e.g. "cpu.max 150000 100000 in <dir>".
struct Limit {
  double amount = 0;
  std::string text;
};

/// Reads the limit a cgroup directory sets, if any.
using LimitReader = std::optional<Limit> (*)(const Hierarchy& h, const std::string& dir);

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::string cur;
  std::istringstream in(s);
  while (std::getline(in, cur, sep)) out.push_back(cur);
  return out;
}

// mountinfo escapes space, tab, newline and backslash as \ooo.
std::string unescape(const std::string& s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size() && s[i + 1] >= '0' && s[i + 1] <= '3') {
      out += static_cast<char>((s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0'));
      i += 3;
    } else {
      out += s[i];
    }
  }
  return out;
}

bool has_token(const std::string& list, const std::string& token) {
  for (const std::string& t : split(list, ',')) {
    if (t == token) return true;
  }
  return false;
}

// The cgroup v2 mount and the v1 mount carrying `controller`, from
// mountinfo lines "id parent dev root mountpoint opts [optional...] - fstype source superopts".
void find_mounts(const std::string& mountinfo, const char* controller, std::optional<Hierarchy>& v2,
                 std::optional<Hierarchy>& v1) {
  std::ifstream in(mountinfo);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::vector<std::string> f;
    std::string w;
    while (fields >> w) f.push_back(w);
    std::size_t dash = 0;
    while (dash < f.size() && f[dash] != "-") ++dash;
    if (dash < 5 || dash + 2 >= f.size()) continue;
    const std::string& fstype = f[dash + 1];
    const std::string superopts = dash + 3 < f.size() ? f[dash + 3] : "";
    Hierarchy h;
    h.mount_root = unescape(f[3]);
    h.mount_point = unescape(f[4]);
    if (fstype == "cgroup2" && !v2) {
      h.v2 = true;
      v2 = h;
    } else if (fstype == "cgroup" && has_token(superopts, controller) && !v1) {
      v1 = h;
    }
  }
}

// The process's cgroup in each hierarchy: "0::path" (v2), "id:...<controller>...:path" (v1).
void find_cgroups(const std::string& self_cgroup, const char* controller,
                  std::optional<Hierarchy>& v2, std::optional<Hierarchy>& v1) {
  std::ifstream in(self_cgroup);
  std::string line;
  while (std::getline(in, line)) {
    const std::size_t a = line.find(':');
    const std::size_t b = a == std::string::npos ? a : line.find(':', a + 1);
    if (b == std::string::npos) continue;
    const std::string id = line.substr(0, a);
    const std::string controllers = line.substr(a + 1, b - a - 1);
    const std::string path = line.substr(b + 1);
    if (id == "0" && controllers.empty()) {
      if (v2) v2->cgroup = path;
    } else if (has_token(controllers, controller)) {
      if (v1) v1->cgroup = path;
    }
  }
}

std::optional<std::string> read_line(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  if (!in || !std::getline(in, line)) return std::nullopt;
  return line;
}

std::optional<long long> to_number(const std::string& s) {
  if (s.empty()) return std::nullopt;
  std::size_t used = 0;
  try {
    const long long v = std::stoll(s, &used);
    if (used != s.size()) return std::nullopt;
    return v;
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

// The CPU quota set in one cgroup directory, if any (amount in CPUs).
std::optional<Limit> quota_in(const Hierarchy& h, const std::string& dir) {
  long long quota = 0;
  long long period = 0;
  std::string text;
  if (h.v2) {
    const auto line = read_line(dir + "/cpu.max");  // "max 100000" or "150000 100000"
    if (!line) return std::nullopt;
    const std::vector<std::string> f = split(*line, ' ');
    if (f.size() != 2 || f[0] == "max") return std::nullopt;
    const auto q = to_number(f[0]);
    const auto p = to_number(f[1]);
    if (!q || !p) return std::nullopt;
    quota = *q;
    period = *p;
    text = "cpu.max " + *line + " in " + dir;
  } else {
    const auto ql = read_line(dir + "/cpu.cfs_quota_us");  // -1: no limit
    const auto pl = read_line(dir + "/cpu.cfs_period_us");
    if (!ql || !pl) return std::nullopt;
    const auto q = to_number(*ql);
    const auto p = to_number(*pl);
    if (!q || !p) return std::nullopt;
    quota = *q;
    period = *p;
    text = "cpu.cfs_quota_us " + *ql + " / cpu.cfs_period_us " + *pl + " in " + dir;
  }
  if (quota <= 0 || period <= 0) return std::nullopt;
  return Limit{static_cast<double>(quota) / static_cast<double>(period), text};
}

// The memory limit set in one cgroup directory, if any (amount in bytes).
std::optional<Limit> memory_in(const Hierarchy& h, const std::string& dir) {
  // v2 memory.max: "max" or bytes; v1 memory.limit_in_bytes: bytes, with
  // "no limit" shown as a huge page-rounded number (LONG_MAX rounded down).
  const std::string file = dir + (h.v2 ? "/memory.max" : "/memory.limit_in_bytes");
  const auto line = read_line(file);
  if (!line || *line == "max") return std::nullopt;
  const auto bytes = to_number(*line);
  if (!bytes || *bytes <= 0 || *bytes >= (1LL << 62)) return std::nullopt;
  return Limit{static_cast<double>(*bytes),
               (h.v2 ? "memory.max " : "memory.limit_in_bytes ") + *line + " in " + dir};
}

// The tightest limit of h's cgroup and its ancestors up to the mount point.
std::optional<Limit> tightest_in(const Hierarchy& h, LimitReader read_limit) {
  if (h.cgroup.empty() || h.cgroup.front() != '/') return std::nullopt;
  // The process's cgroup relative to the mounted subtree; a cgroup outside
  // it (another namespace's view) cannot be read here.
  std::string rel;
  if (h.mount_root == "/") {
    rel = h.cgroup;
  } else if (h.cgroup.compare(0, h.mount_root.size(), h.mount_root) == 0 &&
             (h.cgroup.size() == h.mount_root.size() || h.cgroup[h.mount_root.size()] == '/')) {
    rel = h.cgroup.substr(h.mount_root.size());
  } else {
    return std::nullopt;
  }
  while (!rel.empty() && rel.back() == '/') rel.pop_back();
  std::optional<Limit> best;
  for (;;) {
    if (auto l = read_limit(h, h.mount_point + rel); l && (!best || l->amount < best->amount)) {
      best = l;
    }
    if (rel.empty()) break;
    rel.erase(rel.rfind('/'));
  }
  return best;
}

// The tightest limit over both hierarchies (v2, and v1's `controller`).
std::optional<Limit> tightest_limit(const CpuBudgetSources& sources, const char* controller,
                                    LimitReader read_limit) {
  std::optional<Hierarchy> v2;
  std::optional<Hierarchy> v1;
  find_mounts(sources.mountinfo, controller, v2, v1);
  find_cgroups(sources.self_cgroup, controller, v2, v1);
  std::optional<Limit> limit;
  for (const auto* h : {&v2, &v1}) {
    if (!*h) continue;
    if (auto l = tightest_in(**h, read_limit); l && (!limit || l->amount < limit->amount)) {
      limit = l;
    }
  }
  return limit;
}

std::string format_cpus(double cpus) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", cpus);
  return buf;
}

}  // namespace

std::vector<int> affinity_cpus() {
  std::vector<int> cpus;
  for (std::size_t n = 1024; n <= (std::size_t{1} << 20); n *= 2) {
    cpu_set_t* set = CPU_ALLOC(n);
    if (set == nullptr) throw std::bad_alloc();
    const std::size_t size = CPU_ALLOC_SIZE(n);
    CPU_ZERO_S(size, set);
    if (sched_getaffinity(0, size, set) == 0) {
      try {
        for (std::size_t cpu = 0; cpu < n; ++cpu) {
          if (CPU_ISSET_S(cpu, size, set)) cpus.push_back(static_cast<int>(cpu));
        }
      } catch (...) {
        CPU_FREE(set);
        throw;
      }
      CPU_FREE(set);
      return cpus;
    }
    const int err = errno;
    CPU_FREE(set);
    if (err != EINVAL) return cpus;
  }
  return cpus;
}

std::size_t affinity_cpu_count() noexcept {
  try {
    const std::size_t n = affinity_cpus().size();
    return n > 0 ? n : 1;
  } catch (...) {
    return 1;
  }
}

int set_thread_affinity(pthread_t thread, const std::vector<int>& cpus) noexcept {
  int highest = 0;
  for (int cpu : cpus) highest = cpu > highest ? cpu : highest;
  const auto n = static_cast<std::size_t>(highest) + 1;
  cpu_set_t* set = CPU_ALLOC(n);
  if (set == nullptr) return ENOMEM;
  const std::size_t size = CPU_ALLOC_SIZE(n);
  CPU_ZERO_S(size, set);
  for (int cpu : cpus) CPU_SET_S(static_cast<std::size_t>(cpu), size, set);
  const int err = pthread_setaffinity_np(thread, size, set);
  CPU_FREE(set);
  return err;
}

CpuBudget cpu_budget(const CpuBudgetSources& sources) {
  const std::size_t affinity =
      sources.affinity_cpus != 0 ? sources.affinity_cpus : affinity_cpu_count();
  CpuBudget out;
  out.workers = affinity;
  out.why = std::to_string(affinity) + (affinity == 1 ? " CPU" : " CPUs") + " in the affinity mask";

  if (const std::optional<Limit> limit = tightest_limit(sources, "cpu", &quota_in)) {
    const auto cpus = static_cast<std::size_t>(std::ceil(limit->amount));
    out.why += "; cgroup " + limit->text + " (" + format_cpus(limit->amount) + " CPUs" +
               (static_cast<double>(cpus) != limit->amount ? ", rounded up)" : ")");
    if (cpus < out.workers) out.workers = cpus;
  }
  if (out.workers < 1) out.workers = 1;
  if (out.workers > kMaxWorkers) out.workers = kMaxWorkers;
  return out;
}

}  // namespace weft::detail

namespace weft::detail {

std::optional<MemoryBudget> memory_budget(const CpuBudgetSources& sources) {
  const std::optional<Limit> limit = tightest_limit(sources, "memory", &memory_in);
  if (!limit) return std::nullopt;
  const auto max = static_cast<std::uint64_t>(limit->amount);
  MemoryBudget out;
  out.cgroup_bytes = max;
  out.limit_bytes = max / 10 * 9 + max % 10 * 9 / 10;  // 90 %, without overflow
  out.why = "90 % of cgroup " + limit->text;
  return out;
}

}  // namespace weft::detail

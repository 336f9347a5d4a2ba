// The default worker count: the CPUs this process may actually use; and,
// read the same way, the memory limit for memory_limit = auto (the end of
// this file).
//
// Two things bound it below the machine's CPU count. The affinity mask
// (sched_getaffinity: taskset, cpusets, container runtimes) says which CPUs
// the threads may run on. The CPU bandwidth limit of the cgroups the process
// belongs to (cgroup v2 cpu.max "quota period", cgroup v1
// cpu.cfs_quota_us / cpu.cfs_period_us) says how much CPU time per period
// they may use together: a container limited to 1.5 CPUs on a 64-CPU host
// gains nothing from 64 workers but preemption by the kernel's throttle.
//
// The limit that applies is the tightest over the process's own cgroup and
// every ancestor up to the hierarchy's mount root: a parent's quota bounds
// all its children, and systemd or a container runtime often sets it on a
// parent slice rather than on the leaf. Reading only the leaf (as early
// container-aware runtimes did) misses it. Both hierarchies are read on a
// hybrid system (v1 cpu controller plus a v2 unified mount); the tightest
// wins.
//
// Workers = min(CPUs in the affinity mask, ceil(quota / period)), at least 1
// and at most 1024 (Config's range). Rounding up follows Go 1.25's
// cgroup-aware GOMAXPROCS and the JVM's container support: a fractional
// limit still leaves bursts that one more worker can use.
#pragma once

#include <pthread.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace weft::detail {

/// Where cpu_budget() reads from. The defaults are the kernel's files;
/// tests point them at a fake tree (the mount points named in the fake
/// mountinfo are directories of the test).
struct CpuBudgetSources {
  std::string self_cgroup = "/proc/self/cgroup";   ///< "id:controllers:path" lines
  std::string mountinfo = "/proc/self/mountinfo";  ///< proc(5) mountinfo lines
  std::size_t affinity_cpus = 0;                   ///< 0: ask sched_getaffinity
};

/// The default worker count and where it came from.
struct CpuBudget {
  std::size_t workers = 1;  ///< 1..1024
  /// For Config::describe(), e.g. "2 CPUs in the affinity mask; cgroup
  /// cpu.max 150000 100000 in /sys/fs/cgroup/app (1.5 CPUs, rounded up)".
  std::string why;
};

/// Computes the default worker count (see the top of this file). Never
/// throws for missing or malformed cgroup files: a hierarchy that cannot be
/// read imposes no limit. Allocates; any thread.
CpuBudget cpu_budget(const CpuBudgetSources& sources = {});

/// The CPU numbers of the calling thread's affinity mask, ascending; sized
/// for any number of CPUs (CPU_ALLOC, grown while the kernel says EINVAL).
/// Empty if the mask cannot be read. @throws std::bad_alloc.
std::vector<int> affinity_cpus();

/// CPUs in the calling thread's affinity mask (at least 1).
std::size_t affinity_cpu_count() noexcept;

/// memory_limit = auto (Config::memory_limit_auto): the tightest memory
/// limit of the process's cgroup and every ancestor (v2 memory.max, v1
/// memory.limit_in_bytes), found the same way as the CPU limit above.
struct MemoryBudget {
  std::uint64_t cgroup_bytes = 0;  ///< the tightest limit found
  std::uint64_t limit_bytes = 0;   ///< 90 % of it: the runtime's memory_limit
  /// For Config::describe(), e.g. "90 % of cgroup memory.max 1073741824 in
  /// /sys/fs/cgroup/app".
  std::string why;
};

/// The memory budget for memory_limit = auto, or nullopt if no cgroup of
/// the process (nor an ancestor) sets a memory limit or none can be read.
/// Never throws for missing or malformed files. Allocates; any thread.
std::optional<MemoryBudget> memory_budget(const CpuBudgetSources& sources = {});

/// Sets the affinity mask of `thread` to exactly `cpus` (not empty).
/// Returns 0, or the errno of pthread_setaffinity_np (EINVAL: no CPU of
/// `cpus` is online or allowed by the thread's cpuset), ENOMEM.
int set_thread_affinity(pthread_t thread, const std::vector<int>& cpus) noexcept;

}  // namespace weft::detail

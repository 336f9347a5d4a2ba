// The default worker count from a fake cgroup tree (test directories named
// by a fake mountinfo) and a given affinity count: cgroup v2 cpu.max, v1
// cfs quota, the tightest over ancestors, hybrid systems, and files that are
// missing or malformed.
#include "sched/cpu_budget.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "common/io_util.hpp"
#include "weft/weft.hpp"

namespace {

namespace fs = std::filesystem;
using weft::detail::cpu_budget;
using weft::detail::CpuBudgetSources;
using weft::detail::memory_budget;

/// A fake /proc/self/{cgroup,mountinfo} and cgroup mounts in a temp dir.
class FakeCgroups : public ::testing::Test {
 protected:
  /// Writes `text` to `rel` under the scratch directory (creating folders).
  void write(const std::string& rel, const std::string& text) {
    const fs::path p = dir_.path() / rel;
    fs::create_directories(p.parent_path());
    std::ofstream(p) << text;
  }
  std::string path(const std::string& rel) const { return (dir_.path() / rel).string(); }
  /// A mountinfo line mounting `root` of a cgroup hierarchy at `rel`.
  std::string mount_line(int id, const std::string& root, const std::string& rel,
                         const std::string& fstype, const std::string& superopts) const {
    return std::to_string(id) + " 1 0:" + std::to_string(id) + " " + root + " " + path(rel) +
           " rw,relatime shared:9 - " + fstype + " cgroup " + superopts + "\n";
  }
  CpuBudgetSources sources(std::size_t affinity) const {
    CpuBudgetSources s;
    s.self_cgroup = path("proc/cgroup");
    s.mountinfo = path("proc/mountinfo");
    s.affinity_cpus = affinity;
    return s;
  }
  /// A v2 system: the process in /app/web, mounted at sys/cgroup.
  void v2_tree() {
    write("proc/cgroup", "0::/app/web\n");
    write("proc/mountinfo", "22 1 8:1 / / rw - ext4 /dev/sda1 rw\n" +
                                mount_line(30, "/", "sys/cgroup", "cgroup2", "rw,nsdelegate"));
    write("sys/cgroup/cpu.max", "max 100000\n");
    write("sys/cgroup/app/cpu.max", "max 100000\n");
    write("sys/cgroup/app/web/cpu.max", "max 100000\n");
  }

 private:
  weft::test::TempDir dir_;
};

TEST_F(FakeCgroups, NoLimitLeavesTheAffinityCount) {
  v2_tree();
  const auto b = cpu_budget(sources(8));
  EXPECT_EQ(b.workers, 8u);
  EXPECT_EQ(b.why, "8 CPUs in the affinity mask");
}

TEST_F(FakeCgroups, V2LeafLimitRoundsUp) {
  v2_tree();
  write("sys/cgroup/app/web/cpu.max", "150000 100000\n");
  const auto b = cpu_budget(sources(8));
  EXPECT_EQ(b.workers, 2u);
  EXPECT_EQ(b.why, "8 CPUs in the affinity mask; cgroup cpu.max 150000 100000 in " +
                       path("sys/cgroup/app/web") + " (1.5 CPUs, rounded up)");
}

TEST_F(FakeCgroups, V2AncestorLimitIsTheTightest) {
  // The leaf allows 4 CPUs, its parent 3, the root none: 3 applies.
  v2_tree();
  write("sys/cgroup/app/web/cpu.max", "400000 100000\n");
  write("sys/cgroup/app/cpu.max", "300000 100000\n");
  const auto b = cpu_budget(sources(8));
  EXPECT_EQ(b.workers, 3u);
  EXPECT_EQ(b.why, "8 CPUs in the affinity mask; cgroup cpu.max 300000 100000 in " +
                       path("sys/cgroup/app") + " (3 CPUs)");
}

TEST_F(FakeCgroups, V2LimitAtTheMountRootCounts) {
  v2_tree();
  write("sys/cgroup/cpu.max", "100000 100000\n");
  EXPECT_EQ(cpu_budget(sources(8)).workers, 1u);
}

TEST_F(FakeCgroups, AffinityTighterThanTheLimit) {
  v2_tree();
  write("sys/cgroup/app/cpu.max", "600000 100000\n");
  EXPECT_EQ(cpu_budget(sources(2)).workers, 2u);
}

TEST_F(FakeCgroups, TinyQuotaStillGivesOneWorker) {
  v2_tree();
  write("sys/cgroup/app/web/cpu.max", "1000 100000\n");
  EXPECT_EQ(cpu_budget(sources(4)).workers, 1u);
}

TEST_F(FakeCgroups, V1CfsQuotaWithMountRootSubtree) {
  // A v1 cpu,cpuacct hierarchy whose mount shows only /docker/abc (as in a
  // container without a cgroup namespace); the process is in /docker/abc/x.
  write("proc/cgroup", "4:memory:/docker/abc\n3:cpu,cpuacct:/docker/abc/x\n");
  write("proc/mountinfo",
        mount_line(31, "/docker/abc", "sys/fs/cgroup/cpu,cpuacct", "cgroup", "rw,cpu,cpuacct"));
  write("sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us", "250000\n");
  write("sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us", "100000\n");
  write("sys/fs/cgroup/cpu,cpuacct/x/cpu.cfs_quota_us", "-1\n");
  write("sys/fs/cgroup/cpu,cpuacct/x/cpu.cfs_period_us", "100000\n");
  const auto b = cpu_budget(sources(16));
  EXPECT_EQ(b.workers, 3u);
  EXPECT_EQ(b.why,
            "16 CPUs in the affinity mask; cgroup cpu.cfs_quota_us 250000 / "
            "cpu.cfs_period_us 100000 in " +
                path("sys/fs/cgroup/cpu,cpuacct") + " (2.5 CPUs, rounded up)");
}

TEST_F(FakeCgroups, HybridTakesTheTightestOfBothHierarchies) {
  write("proc/cgroup", "1:cpu:/svc\n0::/svc\n");
  write("proc/mountinfo", mount_line(32, "/", "v1cpu", "cgroup", "rw,cpu") +
                              mount_line(41, "/", "unified", "cgroup2", "rw"));
  write("v1cpu/svc/cpu.cfs_quota_us", "500000\n");
  write("v1cpu/svc/cpu.cfs_period_us", "100000\n");
  write("unified/svc/cpu.max", "200000 100000\n");
  EXPECT_EQ(cpu_budget(sources(8)).workers, 2u);
}

TEST_F(FakeCgroups, MountPointWithEscapedSpace) {
  write("proc/cgroup", "0::/a\n");
  write("proc/mountinfo", "30 1 0:30 / " + path("my") + "\\040cg rw - cgroup2 cgroup2 rw\n");
  write("my cg/a/cpu.max", "200000 100000\n");
  EXPECT_EQ(cpu_budget(sources(8)).workers, 2u);
}

TEST_F(FakeCgroups, MissingOrMalformedFilesImposeNoLimit) {
  EXPECT_EQ(cpu_budget(sources(5)).workers, 5u);  // no files at all
  v2_tree();
  write("sys/cgroup/app/web/cpu.max", "garbage\n");
  write("sys/cgroup/app/cpu.max", "100000 0\n");  // a zero period
  write("sys/cgroup/cpu.max", "-5 100000\n");
  EXPECT_EQ(cpu_budget(sources(5)).workers, 5u);
  write("proc/cgroup", "0::relative/path\n");
  EXPECT_EQ(cpu_budget(sources(5)).workers, 5u);
}

TEST_F(FakeCgroups, CgroupOutsideTheMountedSubtreeIsIgnored) {
  write("proc/cgroup", "0::/other/x\n");
  write("proc/mountinfo", mount_line(30, "/mine", "cg", "cgroup2", "rw"));
  write("cg/cpu.max", "100000 100000\n");
  EXPECT_EQ(cpu_budget(sources(4)).workers, 4u);
}

TEST_F(FakeCgroups, CappedAtTheConfigMaximum) {
  EXPECT_EQ(cpu_budget(sources(4096)).workers, 1024u);
}

TEST(CpuBudget, AffinityCountMatchesTheMask) {
  cpu_set_t set;
  CPU_ZERO(&set);
  ASSERT_EQ(sched_getaffinity(0, sizeof set, &set), 0);
  EXPECT_EQ(weft::detail::affinity_cpu_count(), static_cast<std::size_t>(CPU_COUNT(&set)));
}

TEST(CpuBudget, AffinityMaskOfOneCpuGivesOneWorker) {
  // Narrow this thread's mask to one CPU: the real files, the real mask.
  cpu_set_t old;
  ASSERT_EQ(sched_getaffinity(0, sizeof old, &old), 0);
  int first = 0;
  while (!CPU_ISSET(first, &old)) ++first;
  cpu_set_t one;
  CPU_ZERO(&one);
  CPU_SET(first, &one);
  ASSERT_EQ(sched_setaffinity(0, sizeof one, &one), 0);
  const auto b = cpu_budget();
  weft::Config c;
  const std::size_t resolved = c.resolved_workers();
  ASSERT_EQ(sched_setaffinity(0, sizeof old, &old), 0);
  EXPECT_EQ(b.workers, 1u);
  EXPECT_EQ(b.why.rfind("1 CPU in the affinity mask", 0), 0u) << b.why;
  EXPECT_EQ(resolved, 1u);
}

// --- memory_limit = auto: the same tree walk over the memory controller.

TEST_F(FakeCgroups, MemoryV2NoLimitIsNone) {
  v2_tree();
  write("sys/cgroup/app/web/memory.max", "max\n");
  write("sys/cgroup/app/memory.max", "max\n");
  EXPECT_FALSE(memory_budget(sources(1)).has_value());
}

TEST_F(FakeCgroups, MemoryV2AncestorLimitIsTheTightest) {
  // The leaf allows 4 GiB, its parent 1 GiB, the root nothing: 1 GiB applies.
  v2_tree();
  write("sys/cgroup/app/web/memory.max", "4294967296\n");
  write("sys/cgroup/app/memory.max", "1073741824\n");
  write("sys/cgroup/memory.max", "max\n");
  const auto m = memory_budget(sources(1));
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(m->cgroup_bytes, 1073741824u);
  EXPECT_EQ(m->limit_bytes, 966367641u);  // 90 %, rounded down
  EXPECT_EQ(m->why, "90 % of cgroup memory.max 1073741824 in " + path("sys/cgroup/app"));
}

TEST_F(FakeCgroups, MemoryV1LimitAndItsNoLimitValue) {
  // cgroup v1 (this machine's layout): the memory controller mounted on its
  // own; "no limit" is LONG_MAX rounded down to a page.
  write("proc/cgroup", "4:memory:/svc/one\n1:cpu:/\n0::/\n");
  write("proc/mountinfo", mount_line(35, "/", "v1mem", "cgroup", "rw,memory") +
                              mount_line(41, "/", "unified", "cgroup2", "rw"));
  write("v1mem/memory.limit_in_bytes", "9223372036854771712\n");
  write("v1mem/svc/memory.limit_in_bytes", "9223372036854771712\n");
  write("v1mem/svc/one/memory.limit_in_bytes", "9223372036854771712\n");
  EXPECT_FALSE(memory_budget(sources(1)).has_value());
  write("v1mem/svc/memory.limit_in_bytes", "536870912\n");
  const auto m = memory_budget(sources(1));
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(m->limit_bytes, 483183820u);
  EXPECT_EQ(m->why, "90 % of cgroup memory.limit_in_bytes 536870912 in " + path("v1mem/svc"));
}

TEST_F(FakeCgroups, MemoryMalformedOrMissingFilesImposeNothing) {
  v2_tree();
  write("sys/cgroup/app/web/memory.max", "lots\n");
  write("sys/cgroup/app/memory.max", "-1\n");
  EXPECT_FALSE(memory_budget(sources(1)).has_value());
  CpuBudgetSources none;
  none.self_cgroup = path("missing/cgroup");
  none.mountinfo = path("missing/mountinfo");
  EXPECT_FALSE(memory_budget(none).has_value());
}

TEST(CpuBudget, RuntimeDescribesWhereItsWorkerCountCameFrom) {
  weft::Config c;
  c.workers = 0;
  weft::Runtime rt(c);
  const std::string d = rt.describe();
  EXPECT_NE(d.find("workers = " + std::to_string(rt.workers()) +
                   "  (derived: " + std::to_string(weft::detail::affinity_cpu_count())),
            std::string::npos)
      << d;
}

}  // namespace

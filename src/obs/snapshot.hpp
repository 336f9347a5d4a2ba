// Internal: the snapshot functions behind weft/snapshot.hpp, for the rest of
// the runtime (the fiber dump of the observability layer builds its
// document from these, so that the dump and the public snapshots share one
// schema: docs/design/snapshots.md).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "weft/snapshot.hpp"

namespace weft::detail {

struct Fiber;
class CancelNode;

/// The fiber `f` now. The caller keeps `f` alive for the call (holds its
/// registry shard lock, or is `f`). @throws std::bad_alloc.
FiberSnapshot snapshot_fiber(const Fiber& f);

/// The tree under `node` (which the caller keeps alive), within `limits`;
/// deadline_in_ns is computed against `now_ns` (CLOCK_MONOTONIC).
/// @throws std::invalid_argument for limits out of range ("weft:
/// SnapshotLimits::max_depth must be at most 64", "weft:
/// SnapshotLimits::max_nodes must be at least 1"); std::bad_alloc.
CancelNodeSnapshot snapshot_cancel_tree(CancelNode& node, const SnapshotLimits& limits,
                                        std::int64_t now_ns);

/// The JSON value that to_json() prints, for embedding in a larger
/// document. @throws std::bad_alloc.
nlohmann::json snapshot_json(const FiberSnapshot& s);
/// Appends the JSON text that to_json() prints for `s` to `out` (written
/// directly: a dump's tree has a node per fiber). @throws std::bad_alloc.
void append_json(const CancelNodeSnapshot& s, std::string& out);

}  // namespace weft::detail

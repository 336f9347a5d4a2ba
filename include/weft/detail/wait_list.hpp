// The intrusive FIFO of blocked operations that channels and sync primitives
// embed. Public only for layout; the nodes and operations live in src/sync.
#pragma once

namespace weft::detail {

struct WaitNode;

/// Head and tail of a doubly linked list of WaitNodes, guarded by the lock of
/// the primitive that owns it.
struct WaitList {
  WaitNode* head = nullptr;
  WaitNode* tail = nullptr;
};

}  // namespace weft::detail

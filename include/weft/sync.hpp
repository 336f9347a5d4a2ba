// Fiber-aware synchronization: Mutex, SharedMutex, Semaphore, CondVar,
// Barrier, Latch, WaitGroup, Event, Notify, Once/call_once, OnceCell,
// Synchronized.
//
// Every blocking call parks the calling fiber (its worker runs other fibers)
// or, from a plain thread, blocks the thread, so fibers and threads can share
// one primitive. Every blocking call has a timed form, and every blocking
// call is a cancellation point: it throws weft::Cancelled when the waiting
// fiber is cancelled, leaving the primitive as if the call had not been made.
// All of them park through the one Waiter mechanism (docs/design/parking.md);
// docs/design/sync.md describes each protocol.
#pragma once

// One header per primitive; this umbrella includes them all.
#include "weft/barrier.hpp"
#include "weft/condvar.hpp"
#include "weft/event.hpp"
#include "weft/latch.hpp"
#include "weft/mutex.hpp"
#include "weft/notify.hpp"
#include "weft/once.hpp"
#include "weft/semaphore.hpp"
#include "weft/shared_mutex.hpp"
#include "weft/synchronized.hpp"
#include "weft/wait_group.hpp"

// Clang thread-safety annotations (-Wthread-safety), in the style of abseil's
// absl/base/thread_annotations.h, with a WEFT_ prefix. They let the compiler
// check who may touch a field: WEFT_GUARDED_BY(lock_) on the data,
// WEFT_REQUIRES(lock_) on functions that expect the lock held,
// WEFT_ACQUIRE / WEFT_RELEASE on functions that take or drop it. Other
// compilers see nothing. `make clang` builds with -Wthread-safety -Werror.
// Internal: included by weft's headers for their lock members, not an API.
#pragma once

#if defined(__clang__)
#define WEFT_THREAD_ANNOTATION(x) __attribute__((x))
#else
#define WEFT_THREAD_ANNOTATION(x)
#endif

/// On a class: it is a lock ("capability") the analysis tracks.
#define WEFT_CAPABILITY(name) WEFT_THREAD_ANNOTATION(capability(name))
/// On an RAII class that holds a lock for its lifetime.
#define WEFT_SCOPED_CAPABILITY WEFT_THREAD_ANNOTATION(scoped_lockable)
/// On a field: read or written only with `lock` held.
#define WEFT_GUARDED_BY(lock) WEFT_THREAD_ANNOTATION(guarded_by(lock))
/// On a pointer field: the pointee is accessed only with `lock` held.
#define WEFT_PT_GUARDED_BY(lock) WEFT_THREAD_ANNOTATION(pt_guarded_by(lock))
/// On a function: the caller must hold the locks.
#define WEFT_REQUIRES(...) WEFT_THREAD_ANNOTATION(requires_capability(__VA_ARGS__))
/// On a function: the caller must not hold the locks (it takes them).
#define WEFT_EXCLUDES(...) WEFT_THREAD_ANNOTATION(locks_excluded(__VA_ARGS__))
/// On a function: it takes the locks (no argument: `this`).
#define WEFT_ACQUIRE(...) WEFT_THREAD_ANNOTATION(acquire_capability(__VA_ARGS__))
/// On a function: it takes the locks when it returns `result`.
#define WEFT_TRY_ACQUIRE(...) WEFT_THREAD_ANNOTATION(try_acquire_capability(__VA_ARGS__))
/// On a function: it drops the locks (no argument: `this`).
#define WEFT_RELEASE(...) WEFT_THREAD_ANNOTATION(release_capability(__VA_ARGS__))
/// On a function: it returns a reference to the given lock.
#define WEFT_RETURN_CAPABILITY(x) WEFT_THREAD_ANNOTATION(lock_returned(x))
/// On a function: after it returns, the lock is known to be held (a check
/// that aborts otherwise, or a precondition the analysis cannot follow).
#define WEFT_ASSERT_CAPABILITY(x) WEFT_THREAD_ANNOTATION(assert_capability(x))
/// Turns the analysis off for one function whose locking is correct but
/// beyond what it can follow (a lock handed between functions, a lock of an
/// object found by lookup); say why at the function.
#define WEFT_NO_THREAD_SAFETY_ANALYSIS WEFT_THREAD_ANNOTATION(no_thread_safety_analysis)

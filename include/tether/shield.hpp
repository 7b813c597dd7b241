// tether/shield.hpp — shield (DESIGN.md §5; Trio's shielded cancel scope).
#pragma once

#include <tether/config.hpp>
#include <tether/detail/scoped_await.hpp>
#include <tether/task.hpp>

#include <utility>

namespace tether {

/// Awaits `work` protected from cancellation coming from outside: it runs to
/// completion even if the caller is cancelled meanwhile, and its result is
/// returned (never discarded).
///
/// `work` is a `task<T>` (moved in) or any tether awaitable; it runs in place,
/// in a shielded scope (no coroutine frame). Compose a bounded clean-up as
/// `co_await shield(with_timeout(5s, commit()))`: the timeout inside the shield
/// still fires.
///
/// @par Cancellation
/// Not a cancellation point itself. A cancellation of an enclosing scope that
/// arrives while the work runs stays pending and surfaces at the caller's next
/// cancellation point after the shield (level-triggered). Scopes inside the
/// shield (timeouts, task groups) are cancelled as usual. A result that was
/// complete before the shield was awaited is returned at once.
/// @par Exceptions
/// Whatever the work throws, unchanged: an error beats the pending cancellation.
/// @par Example
/// @code
/// try {
///     co_await serve(conn);
/// } catch (const tether::cancelled_error&) {
///     failed = true; // no co_await in a handler: clean up after it
/// }
/// if (failed) co_await tether::shield(tether::with_timeout(5s, conn.goodbye()));
/// @endcode
template <class A>
    requires detail::scope_awaitable<A> detail::scoped_awaitable<detail::scope_mode::shield, A>
    shield(A&& work) {
        return {static_cast<A&&>(work), clock::time_point::max()};
    }

} // namespace tether

// tether/timeout.hpp — with_timeout, with_deadline, move_on_after, move_on_at
// (DESIGN.md §5). timeout_error is declared in <tether/errors.hpp>.
#pragma once

#include <tether/config.hpp>
#include <tether/detail/scoped_await.hpp>
#include <tether/errors.hpp>
#include <tether/task.hpp>

#include <chrono>
#include <utility>

namespace tether {

/// Awaits `work` with a time limit: returns its result, or throws
/// `tether::timeout_error` if the deadline, `d` after the moment it is awaited,
/// cancelled it.
///
/// `work` is a `task<T>` (moved in) or any tether awaitable (`q.pop()`,
/// `sem.acquire()`, a `child<T>`, another scope such as `with_task_group(…)`).
/// It runs in place, inside a new cancel scope whose deadline is a heap entry of
/// the scheduler: no coroutine frame, no timer operation per call. A zero or
/// negative `d` means already expired.
///
/// @par Cancellation
/// Inside, the work sees `cancelled_error` at its cancellation points once the
/// deadline passes (level-triggered); only the caller sees `timeout_error`, whose
/// nested exception (`std::rethrow_if_nested`) is that cancellation. Work that
/// completes although the deadline passed (it reached no further cancellation
/// point) returns its value, and no cancellation is left behind. A cancellation
/// of an enclosing scope passes through as `cancelled_error` — also when it
/// arrives together with the deadline (the outer scope wins a tie). Nested
/// timeouts: the one whose deadline fired raises.
/// @par Exceptions
/// Whatever the work throws passes through unchanged, including an error thrown
/// by its clean-up after the deadline cancelled it.
/// @par Example
/// @code
/// try {
///     auto page = co_await tether::with_timeout(5s, fetch(url));
/// } catch (const tether::timeout_error&) { … }
/// auto item = co_await tether::with_timeout(100ms, queue.pop());
/// @endcode
template <class Rep, class Period, class A>
    requires detail::scope_awaitable<A> detail::scoped_awaitable<detail::scope_mode::timeout, A>
    with_timeout(std::chrono::duration<Rep, Period> d, A&& work) {
        return {static_cast<A&&>(work), detail::saturating_duration(d)};
    }

/// Like with_timeout, with an absolute deadline of tether's clock
/// (`tether::clock`; virtual under `testing::virtual_clock`). A deadline in the
/// past means already expired; `clock::time_point::max()` means none.
template <class A>
    requires detail::scope_awaitable<A> detail::scoped_awaitable<detail::scope_mode::timeout, A>
    with_deadline(clock::time_point tp, A&& work) {
        return {static_cast<A&&>(work), tp};
    }

/// Awaits `work` with a time limit, and moves on when it passes: returns
/// `std::optional<T>` holding the result, empty if the deadline (`d` after the
/// moment it is awaited) cancelled the work; for `void` work, `bool` (true when
/// the work completed). Trio's `move_on_after`.
///
/// @par Cancellation
/// As with_timeout: inside, the work sees `cancelled_error`; the caller sees an
/// empty result instead of `timeout_error`. An enclosing cancellation passes
/// through as `cancelled_error`.
/// @par Example
/// @code
/// if (auto reply = co_await tether::move_on_after(200ms, ask(peer))) use(*reply);
/// @endcode
template <class Rep, class Period, class A>
    requires detail::scope_awaitable<A> detail::scoped_awaitable<detail::scope_mode::move_on, A>
    move_on_after(std::chrono::duration<Rep, Period> d, A&& work) {
        return {static_cast<A&&>(work), detail::saturating_duration(d)};
    }

/// Like move_on_after, with an absolute deadline of tether's clock.
template <class A>
    requires detail::scope_awaitable<A> detail::scoped_awaitable<detail::scope_mode::move_on, A>
    move_on_at(clock::time_point tp, A&& work) {
        return {static_cast<A&&>(work), tp};
    }

} // namespace tether

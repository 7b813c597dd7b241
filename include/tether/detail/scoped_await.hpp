// tether/detail/scoped_await.hpp — awaits a task or any tether awaitable inside a
// new scope, in place: the machinery of with_timeout, with_deadline,
// move_on_after, move_on_at and shield.
//
// No coroutine frame is created: the scope lives in the awaitable (in the
// awaiting frame), the work's own awaiter is driven directly (its await_suspend
// receives the caller's handle, so its completion resumes the caller), and the
// scope is left in await_resume before the result is handed over.
#pragma once

#include <tether/cancel_scope.hpp>
#include <tether/config.hpp>
#include <tether/detail/scope.hpp>
#include <tether/errors.hpp>
#include <tether/task.hpp>

#include <chrono>
#include <concepts>
#include <coroutine>
#include <exception>
#include <optional>
#include <ratio>
#include <type_traits>
#include <utility>

namespace tether::detail {

template <class A>
concept has_member_co_await = requires(A&& a) {
    static_cast<A&&>(a).operator co_await();
};

/// The awaiter that `co_await static_cast<A&&>(a)` uses.
template <class A>
struct awaiter_for {
    using type = std::remove_cvref_t<A>; // A is its own awaiter
};
template <class A>
    requires has_member_co_await<A>
struct awaiter_for<A> {
    using type = decltype(std::declval<A>().operator co_await());
};
template <class A>
using awaiter_for_t = typename awaiter_for<A>::type;

template <class T>
struct is_task : std::false_type {};
template <class T>
struct is_task<task<T>> : std::true_type {};

/// What a scope can run in place: a task (by value) or an awaitable whose
/// await_suspend returns void or bool (every tether awaitable).
template <class A>
concept scope_awaitable = !(is_task<std::remove_cvref_t<A>>::value &&
                            std::is_lvalue_reference_v<A>)&&requires(awaiter_for_t<A> & w) {
    { w.await_ready() } -> std::convertible_to<bool>;
    w.await_resume();
};

/// Converts any std::chrono duration to clock::duration, saturating instead of
/// overflowing (`with_timeout(std::chrono::hours::max(), …)` means "never").
template <class Rep, class Period>
constexpr clock::duration saturating_duration(std::chrono::duration<Rep, Period> d) noexcept {
    using from = std::chrono::duration<Rep, Period>;
    if constexpr (std::ratio_greater_v<Period, clock::period> ||
                  std::chrono::treat_as_floating_point_v<Rep>) {
        constexpr from hi = std::chrono::duration_cast<from>(clock::duration::max());
        constexpr from lo = std::chrono::duration_cast<from>(clock::duration::min());
        if (d >= hi) return clock::duration::max();
        if (d <= lo) return clock::duration::min();
    }
    return std::chrono::duration_cast<clock::duration>(d);
}

/// What a scoped_awaitable turns its own cancellation into.
enum class scope_mode {
    timeout, // timeout_error (with_timeout, with_deadline)
    move_on, // an empty optional / false (move_on_after, move_on_at)
    shield,  // nothing: a shield is never cancelled itself
};

/// Runs the work `A` inside a fresh scope (with a deadline, or shielded).
///
/// Invariant: between await_suspend and await_resume the awaiting chain's
/// innermost scope is scope_ or a scope nested in it; await_resume leaves scope_
/// exactly once, after the work's own await_resume (which leaves the work's
/// nested scopes), and before the result is returned.
template <scope_mode Mode, class A>
class [[nodiscard]] scoped_awaitable {
    using awaiter_type = awaiter_for_t<A>;
    static constexpr bool separate_awaiter = has_member_co_await<A>;
    using inner_result = decltype(std::declval<awaiter_type&>().await_resume());

public:
    /// The work's result, decayed (a reference result is copied out).
    using value_type = std::remove_cvref_t<inner_result>;
    using result_type =
        std::conditional_t<Mode == scope_mode::move_on, optional_result_t<value_type>, value_type>;

    /// A shield, or a deadline of `tp`.
    scoped_awaitable(A&& work,
                     clock::time_point tp) noexcept(std::is_nothrow_constructible_v<A, A&&>)
        : work_(static_cast<A&&>(work)), deadline_(tp) {}
    /// A deadline of `d` after the moment the work is awaited.
    scoped_awaitable(A&& work, clock::duration d) noexcept(std::is_nothrow_constructible_v<A, A&&>)
        : work_(static_cast<A&&>(work)), delay_(d), relative_(true) {}

    // Movable only before await_suspend (a fresh scope is made); a bound chain
    // moves along.
    scoped_awaitable(scoped_awaitable&& o) noexcept(std::is_nothrow_constructible_v<A, A&&>)
        : work_(static_cast<A&&>(o.work_)), deadline_(o.deadline_), delay_(o.delay_),
          relative_(o.relative_), ctx_(o.ctx_) {}
    scoped_awaitable& operator=(scoped_awaitable&&) = delete;
    ~scoped_awaitable() = default;

    void bind_context(task_ctx& c) noexcept {
        ctx_ = &c;
    }
    bool await_ready() const noexcept {
        return false;
    }

    template <class Promise>
    bool await_suspend(std::coroutine_handle<Promise> parent) {
        if constexpr (is_task<std::remove_cvref_t<A>>::value) {
            if (!work_) throw usage_error("tether: awaited an empty task (moved from)");
        }
        if constexpr (Mode == scope_mode::shield) {
            scope_.shield_ = true;
            scope_.enter(*ctx_);
        } else {
            scope_.enter(*ctx_);
            arm_deadline();
        }
        try {
            if constexpr (separate_awaiter)
                inner_.emplace(static_cast<A&&>(work_).operator co_await());
            awaiter_type& w = inner();
            if constexpr (context_bindable<awaiter_type>) w.bind_context(*ctx_);
            if (w.await_ready()) return false;
            using suspend_result = decltype(w.await_suspend(parent));
            if constexpr (std::is_void_v<suspend_result>) {
                w.await_suspend(parent);
                return true;
            } else {
                static_assert(std::is_same_v<suspend_result, bool>,
                              "tether: a scope can run awaitables whose await_suspend returns "
                              "void or bool");
                return w.await_suspend(parent);
            }
        } catch (...) {
            // Reported by await_resume, after the scope is left (a cancellation at
            // the first cancellation point is this scope's own, e.g. timeout(0)).
            early_ = std::current_exception();
            return false;
        }
    }

    result_type await_resume() {
        if (early_) {
            leave();
            return on_error(std::exchange(early_, nullptr));
        }
        try {
            if constexpr (std::is_void_v<inner_result>) {
                inner().await_resume();
                leave();
                if constexpr (Mode == scope_mode::move_on) {
                    return true;
                } else {
                    return;
                }
            } else {
                auto&& r = inner().await_resume();
                leave();
                if constexpr (Mode == scope_mode::move_on) {
                    return result_type(std::in_place, static_cast<decltype(r)&&>(r));
                } else {
                    return static_cast<decltype(r)&&>(r);
                }
            }
        } catch (...) {
            leave();
            return on_error(std::current_exception());
        }
    }

    /// Converts the awaitable into a task (to spawn it, store it, …).
    operator task<result_type>() && {
        return awaitable_as_task<result_type>(std::move(*this));
    }

private:
    awaiter_type& inner() noexcept {
        if constexpr (separate_awaiter) {
            return *inner_;
        } else {
            return work_;
        }
    }

    // The deadline is computed on entry (Trio >= 0.27), reading the clock once: a
    // clock read costs ~50 ns on a VM, arming is a heap push (no timer operation).
    void arm_deadline() {
        scheduler& sched = *ctx_->sched_;
        if (!relative_ && deadline_ == clock::time_point::max()) return;
        const clock::time_point now = sched.now();
        const clock::time_point tp = relative_ ? deadline_after(now, delay_) : deadline_;
        scope_.deadline_when_ = tp;
        if (tp == clock::time_point::max()) return;
        if (tp <= now) { // zero, negative or past: already expired
            scope_.deadline_expired_ = true;
            scope_.cancel();
            return;
        }
        scope_.deadline_.when_ = tp;
        sched.add_timer(scope_.deadline_);
    }

    void leave() noexcept {
        if (left_) return;
        left_ = true;
        scope_.exit(*ctx_);
    }

    // Trio's rule: the scope absorbs a cancelled_error only if it was cancelled
    // itself and no enclosing cancellation is visible (the outer scope wins a tie,
    // an enclosing cancellation is never swallowed).
    result_type on_error(std::exception_ptr e) {
        if constexpr (Mode != scope_mode::shield) {
            const bool own =
                scope_.cancel_called_ && !scope_.enclosing_cancelled() && is_cancelled_error(e);
            if (own) {
                if constexpr (Mode == scope_mode::move_on) {
                    return result_type{};
                } else {
                    // timeout_error, with the cancellation as its nested cause.
                    try {
                        std::rethrow_exception(e);
                    } catch (...) {
                        std::throw_with_nested(timeout_error());
                    }
                }
            }
        }
        std::rethrow_exception(std::move(e));
    }

    A work_;
    std::conditional_t<separate_awaiter, std::optional<awaiter_type>, char> inner_{};
    scope_state scope_;
    clock::time_point deadline_{};
    clock::duration delay_{};
    bool relative_ = false;
    bool left_ = false;
    task_ctx* ctx_ = nullptr;
    std::exception_ptr early_;
};

} // namespace tether::detail

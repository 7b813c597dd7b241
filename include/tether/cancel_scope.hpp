// tether/cancel_scope.hpp — cancel_scope, with_cancel_scope, with_cancellation
// (DESIGN.md §3), and the machinery every scope-opening awaitable shares
// (timeouts, shield, task_group).
#pragma once

#include <tether/cancellation.hpp>
#include <tether/config.hpp>
#include <tether/detail/scope.hpp>
#include <tether/task.hpp>

#include <functional>
#include <memory>
#include <optional>
#include <type_traits>
#include <utility>

namespace tether {

namespace detail {

inline bool is_cancelled_error(const std::exception_ptr& e) noexcept {
    try {
        std::rethrow_exception(e);
    } catch (const cancelled_error&) {
        return true;
    } catch (...) {
        return false;
    }
}

/// `std::optional<T>`, or `bool` for void: the result of a scope that may absorb
/// its own cancellation (with_cancel_scope, move_on_after, move_on_at).
template <class T>
struct optional_result {
    using type = std::optional<T>;
};
template <>
struct optional_result<void> {
    using type = bool;
};
template <class T>
using optional_result_t = typename optional_result<T>::type;

/// Runs a body task inline on the awaiting chain, inside `scope`.
///
/// `start` enters the scope and resumes the body; a body that finishes without
/// suspending lets the parent continue without a resumption (see task_awaiter).
/// `finish` leaves the scope and tells whether the body ended with this scope's
/// own cancellation — Trio's rule: a scope absorbs a cancelled_error only if it
/// was cancelled itself and no enclosing cancellation is visible to it (so the
/// outer scope wins a tie and an enclosing cancellation is never swallowed).
template <class T>
struct scoped_body {
    static bool start(task<T>& body, scope_state& scope, task_ctx& ctx,
                      std::coroutine_handle<> parent) {
        if (!body) throw usage_error("tether: awaited an empty task (moved from)");
        scope.enter(ctx);
        task_handle<T> h = body.release();
        body = task<T>(h);
        promise<T>& p = h.promise();
        p.ctx_ = &ctx;
        h.resume();
        if (h.done()) return false;
        p.continuation_ = parent;
        return true;
    }

    /// Leaves the scope. True if the body ended with the scope's own cancellation.
    static bool finish(task<T>& body, scope_state& scope, task_ctx& ctx) noexcept {
        scope.exit(ctx);
        task_handle<T> h = body.release();
        body = task<T>(h);
        const std::exception_ptr& e = h.promise().exception_;
        return e && scope.cancel_called_ && !scope.enclosing_cancelled() && is_cancelled_error(e);
    }

    static T take(task<T>& body) {
        task_handle<T> h = body.release();
        body = task<T>(h);
        return h.promise().take_result();
    }

    static optional_result_t<T> take_optional(task<T>& body, bool absorbed) {
        if constexpr (std::is_void_v<T>) {
            if (absorbed) return false;
            take(body);
            return true;
        } else {
            if (absorbed) return std::nullopt;
            return std::optional<T>(take(body));
        }
    }
};

/// Converts a scope awaitable into a task (to spawn it, store it, …).
template <class R, class Awaitable>
task<R> awaitable_as_task(Awaitable a) {
    co_return co_await std::move(a);
}

struct cancel_scope_access;

} // namespace detail

/// A Trio-style cancel scope: cancel the work inside it, from inside or outside,
/// at once or at a deadline. Obtain one from `with_cancel_scope`.
///
/// @par Cancellation
/// Cancelling a scope makes every cancellation point inside it throw
/// `cancelled_error` (level-triggered) until control leaves the scope, which then
/// absorbs its own cancellation. A cancellation of an enclosing scope passes
/// through. Shielded regions inside are not affected.
/// @par Thread safety
/// Use from the task tree's thread only; to cancel from another thread use a
/// cancellation_source with `with_cancellation`.
class cancel_scope {
public:
    cancel_scope() = default;
    cancel_scope(const cancel_scope&) = delete;
    cancel_scope& operator=(const cancel_scope&) = delete;

    /// Cancel the scope. Idempotent. Cancelling before entry is allowed: the
    /// first cancellation point inside then throws.
    void cancel() noexcept {
        state_.cancel();
    }
    /// True once cancel() was called or the deadline passed.
    bool cancel_called() const noexcept {
        return state_.cancel_called_;
    }
    /// True if the scope ended by absorbing its own cancellation.
    bool cancelled_caught() const noexcept {
        return caught_;
    }
    /// The deadline, or `clock::time_point::max()` when none.
    clock::time_point deadline() const noexcept {
        return state_.deadline_when_;
    }
    /// Move the deadline (earlier or later, also while the scope is active). A
    /// deadline already past cancels the scope at once.
    void set_deadline(clock::time_point tp) {
        state_.set_deadline(tp);
    }
    /// Set the deadline to `d` from now (tether's clock; virtual under tests).
    /// Before the scope is entered, "now" is the moment of entry: until then
    /// `deadline()` reads `clock::time_point::max()`.
    void reschedule(clock::duration d) {
        if (!state_.sched_) {
            state_.deadline_when_ = clock::time_point::max();
            state_.relative_delay_ = d;
            state_.relative_pending_ = true;
            return;
        }
        state_.set_deadline(detail::deadline_after(state_.sched_->now(), d));
    }
    /// True if the deadline passed (rather than a cancel() call) cancelled the scope.
    bool deadline_expired() const noexcept {
        return state_.deadline_expired_;
    }

private:
    friend struct detail::cancel_scope_access;

    detail::scope_state state_;
    bool caught_ = false;
};

namespace detail {

struct cancel_scope_access {
    static scope_state& state(cancel_scope& s) noexcept {
        return s.state_;
    }
    static void set_caught(cancel_scope& s, bool v) noexcept {
        s.caught_ = v;
    }
};

template <class F>
class [[nodiscard]] cancel_scope_awaitable {
public:
    using body_task = std::invoke_result_t<F&, cancel_scope&>;
    using value_type = typename body_task::value_type;
    using result_type = optional_result_t<value_type>;

    explicit cancel_scope_awaitable(F fn, cancel_scope* external = nullptr)
        : fn_(std::move(fn)), external_(external) {}
    // Movable only before await_suspend (a fresh scope is made); a bound chain
    // moves along.
    cancel_scope_awaitable(cancel_scope_awaitable&& o) noexcept(
        std::is_nothrow_move_constructible_v<F>)
        : fn_(std::move(o.fn_)), external_(o.external_), ctx_(o.ctx_) {}

    void bind_context(task_ctx& c) noexcept {
        ctx_ = &c;
    }
    bool await_ready() const noexcept {
        return false;
    }
    template <class Promise>
    bool await_suspend(std::coroutine_handle<Promise> parent) {
        cancel_scope& s = scope();
        body_ = std::invoke(fn_, s);
        return scoped_body<value_type>::start(body_, cancel_scope_access::state(s), *ctx_, parent);
    }
    result_type await_resume() {
        cancel_scope& s = scope();
        const bool absorbed =
            scoped_body<value_type>::finish(body_, cancel_scope_access::state(s), *ctx_);
        cancel_scope_access::set_caught(s, absorbed);
        return scoped_body<value_type>::take_optional(body_, absorbed);
    }

    operator task<result_type>() && {
        return awaitable_as_task<result_type>(std::move(*this));
    }

private:
    cancel_scope& scope() noexcept {
        return external_ ? *external_ : own_;
    }

    F fn_;
    cancel_scope own_;
    cancel_scope* external_ = nullptr;
    task<value_type> body_;
    task_ctx* ctx_ = nullptr;
};

} // namespace detail

/// Runs `body(scope)` inside a new cancel scope.
///
/// `co_await with_cancel_scope([&](tether::cancel_scope& s) -> tether::task<T> {…})`
/// returns `std::optional<T>` (`bool` for `task<void>`): empty/false when the
/// scope's own cancellation (cancel() or its deadline) ended the body.
///
/// @par Cancellation
/// The scope absorbs its own cancellation; a cancellation of an enclosing scope
/// propagates as `cancelled_error` (if both trigger, the outer one wins).
/// @par Example
/// @code
/// auto r = co_await tether::with_cancel_scope([&](tether::cancel_scope& s) -> tether::task<int> {
///     s.reschedule(2s);
///     co_return co_await fetch();
/// });
/// @endcode
template <std::invocable<cancel_scope&> F>
detail::cancel_scope_awaitable<F> with_cancel_scope(F body) {
    return detail::cancel_scope_awaitable<F>(std::move(body));
}

/// Runs `body(scope)` inside `scope`, a cancel scope the caller owns — so it can
/// be cancelled before entry, or inspected (`cancelled_caught()`) afterwards.
/// A scope can be entered once: entering it again throws `usage_error`.
template <std::invocable<cancel_scope&> F>
detail::cancel_scope_awaitable<F> with_cancel_scope(cancel_scope& scope, F body) {
    return detail::cancel_scope_awaitable<F>(std::move(body), &scope);
}

namespace detail {

// Shared between a with_cancellation awaiter and the handlers its token callback
// posts: the callback may run on any thread and its handler after the scope is gone.
struct cancellation_bridge {
    scope_state* scope_ = nullptr; // only touched on the task tree's thread
    scheduler* sched_ = nullptr;
};

template <class T>
class [[nodiscard]] with_cancellation_awaitable {
public:
    with_cancellation_awaitable(cancellation_token token, task<T> body)
        : token_(std::move(token)), body_(std::move(body)) {}
    // Movable only before await_suspend; the bound chain moves along (see above).
    with_cancellation_awaitable(with_cancellation_awaitable&& o) noexcept
        : token_(std::move(o.token_)), body_(std::move(o.body_)), ctx_(o.ctx_) {}

    void bind_context(task_ctx& c) noexcept {
        ctx_ = &c;
    }
    bool await_ready() const noexcept {
        return false;
    }

    template <class Promise>
    bool await_suspend(std::coroutine_handle<Promise> parent) {
        if (token_.is_cancelled()) {
            scope_.cancel(token_.reason());
        } else if (token_.can_be_cancelled()) {
            bridge_ = std::make_shared<cancellation_bridge>();
            bridge_->scope_ = &scope_;
            bridge_->sched_ = ctx_->sched_;
            callback_.emplace(token_, forwarder{bridge_, token_});
        }
        return scoped_body<T>::start(body_, scope_, *ctx_, parent);
    }

    T await_resume() {
        callback_.reset(); // waits for a callback running on another thread
        if (bridge_) bridge_->scope_ = nullptr;
        const bool absorbed = scoped_body<T>::finish(body_, scope_, *ctx_);
        if (absorbed) throw cancelled_error(token_.reason());
        return scoped_body<T>::take(body_);
    }

    operator task<T>() && {
        return awaitable_as_task<T>(std::move(*this));
    }

private:
    struct forwarder {
        std::shared_ptr<cancellation_bridge> bridge;
        cancellation_token token;
        void operator()() const noexcept {
            // Runs on the requesting thread: hop to the task tree's thread.
            scheduler* sched = bridge->sched_;
            asio::post(sched->executor(), [b = bridge, reason = token.reason()]() mutable {
                b->sched_->run_as_handler([&] {
                    if (b->scope_) b->scope_->cancel(std::move(reason));
                });
            });
        }
    };

    cancellation_token token_;
    task<T> body_;
    scope_state scope_;
    std::shared_ptr<cancellation_bridge> bridge_;
    std::optional<cancellation_callback<forwarder>> callback_;
    task_ctx* ctx_ = nullptr;
};

} // namespace detail

/// Runs `body` and cancels it when `token` is cancelled (from any thread).
///
/// Returns the body's value. If the token's cancellation ended the body, throws
/// `cancelled_error` (carrying the token's reason) — the request came from
/// outside, so nothing inside absorbs it.
///
/// @par Cancellation
/// The token's request is delivered on the task tree's thread, never inside the
/// requesting thread's call. Enclosing scopes cancel the body as usual.
template <class T>
detail::with_cancellation_awaitable<T> with_cancellation(cancellation_token token, task<T> body) {
    return detail::with_cancellation_awaitable<T>(std::move(token), std::move(body));
}

} // namespace tether

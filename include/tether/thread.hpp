// tether/thread.hpp — to_thread: run blocking work on a thread pool and resume on
// the task's own executor (DESIGN.md §7; asyncio.to_thread, trio.to_thread.run_sync).
#pragma once

#include <tether/config.hpp>
#include <tether/detail/scheduler.hpp>
#include <tether/detail/scope.hpp>
#include <tether/detail/waiter_list.hpp>
#include <tether/errors.hpp>
#include <tether/task.hpp>

#include <algorithm>
#include <atomic>
#include <concepts>
#include <coroutine>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <thread>
#include <type_traits>
#include <utility>

namespace tether {

/// The pool `to_thread(fn)` runs on: one `asio::thread_pool` per process,
/// created on first use with min(32, hardware threads + 4) threads (the size of
/// asyncio's default executor — the work is expected to block, not to compute),
/// joined at static destruction. Pass your own pool to `to_thread(pool, fn)` for
/// CPU-bound work or to bound the threads a component may use.
inline asio::thread_pool& default_thread_pool() {
    static asio::thread_pool pool(static_cast<std::size_t>(
        std::min(32u, std::max(1u, std::thread::hardware_concurrency()) + 4u)));
    return pool;
}

namespace detail {

template <class F>
using thread_result_t = std::invoke_result_t<F>;

// Shared by the awaiter (home thread) and the job (pool thread). The pool thread
// touches fn_, value_, error_ and phase_ only; the result crosses back through the
// asio::post to the home executor, which orders it before the home thread's reads.
template <class F>
struct to_thread_state {
    using result_type = thread_result_t<F>;
    using stored_type = std::conditional_t<std::is_void_v<result_type>, bool, result_type>;

    enum phase : int { queued, running, abandoned };

    template <class G>
    explicit to_thread_state(G&& g) : fn_(std::in_place, std::forward<G>(g)) {}

    void run() noexcept {
        try {
            if constexpr (std::is_void_v<result_type>) {
                std::invoke(std::move(*fn_));
                value_.emplace(true);
            } else {
                value_.emplace(std::invoke(std::move(*fn_)));
            }
        } catch (...) {
            error_ = std::current_exception();
        }
    }

    // Destroyed on the home thread by complete(), before the waiter resumes.
    std::optional<F> fn_;
    std::optional<stored_type> value_;
    std::exception_ptr error_;
    // queued → running (pool thread, before fn_) or queued → abandoned (home
    // thread, on cancellation: fn_ never runs). acq_rel on both CASes: whoever
    // loses must see the winner's state.
    std::atomic<int> phase_{queued};
    // Home thread only: the waiting awaiter (null once it no longer waits here).
    wait_node* waiter_ = nullptr;
    scheduler* sched_ = nullptr;
};

template <class Executor, class F>
class [[nodiscard]] to_thread_awaiter : private wait_node {
    using state = to_thread_state<F>;

public:
    using result_type = typename state::result_type;

    template <class G>
    to_thread_awaiter(Executor ex, G&& fn)
        : ex_(std::move(ex)), state_(std::make_shared<state>(std::forward<G>(fn))) {}
    to_thread_awaiter(to_thread_awaiter&& o) noexcept
        : wait_node(), ex_(o.ex_), state_(std::move(o.state_)) {
        ctx_ = o.ctx_; // g++ may move the awaitable after bind_context
    }
    to_thread_awaiter& operator=(to_thread_awaiter&&) = delete;
    ~to_thread_awaiter() {
        // The frame may be destroyed while the job runs (its io_context was
        // abandoned): the job's completion must then find nobody to resume.
        if (state_) state_->waiter_ = nullptr;
    }

    void bind_context(task_ctx& c) noexcept {
        ctx_ = &c;
    }

    bool await_ready() const {
        detail::cancellation_point(*ctx_);
        return false;
    }

    void await_suspend(std::coroutine_handle<> h) {
        handle_ = h;
        state_->waiter_ = this;
        state_->sched_ = ctx_->sched_;
        ctx_->begin_wait(*this, &on_cancel);
        try {
            // The tracked executor keeps the io_context's run() alive while fn runs.
            auto home =
                asio::require(ctx_->sched_->executor(), asio::execution::outstanding_work.tracked);
            asio::post(ex_, [st = state_, home = std::move(home)]() mutable {
                int expected = state::queued;
                if (st->phase_.compare_exchange_strong(expected, state::running,
                                                       std::memory_order_acq_rel))
                    st->run();
                // The tracked work moves into the completion, which the home thread
                // destroys: once the completion is queued this thread touches the
                // io_context no more (the task may finish and destroy it at once).
                auto untracked = asio::require(home, asio::execution::outstanding_work.untracked);
                asio::post(untracked, [st = std::move(st), work = std::move(home)]() mutable {
                    complete(*st);
                });
            });
        } catch (...) {
            ctx_->end_wait();
            state_->waiter_ = nullptr;
            throw;
        }
    }

    result_type await_resume() {
        state& st = *state_;
        if (cancel_requested_) {
            // Cancelled while fn ran (its result is discarded) or before it started.
            ctx_->check_cancelled();
            throw cancelled_error();
        }
        if (st.error_) std::rethrow_exception(st.error_);
        if constexpr (!std::is_void_v<result_type>) return std::move(*st.value_);
    }

private:
    // Home thread: the job finished (or was skipped); resume the waiter, if any.
    static void complete(state& st) noexcept {
        st.fn_.reset(); // on the task's thread, and before it resumes
        wait_node* w = std::exchange(st.waiter_, nullptr);
        if (!w) return;
        if (w->ctx_->waiting_ == w) w->ctx_->end_wait();
        st.sched_->resume_from_handler(*w);
    }

    // Home thread, at most once: a scope around the waiting task was cancelled.
    static void on_cancel(wait_node& n) noexcept {
        auto& self = static_cast<to_thread_awaiter&>(n);
        self.cancel_requested_ = true;
        int expected = state::queued;
        if (self.state_->phase_.compare_exchange_strong(expected, state::abandoned,
                                                        std::memory_order_acq_rel)) {
            // fn never started and never will: the operation did not happen.
            self.state_->waiter_ = nullptr;
            self.ctx_->sched_->schedule(self);
        }
        // Otherwise fn is running and cannot be interrupted: complete() resumes us.
    }

    Executor ex_;
    std::shared_ptr<state> state_;
    bool cancel_requested_ = false;
};

template <class E>
concept thread_executor = asio::execution::is_executor<E>::value || asio::is_executor<E>::value;

} // namespace detail

/// `co_await to_thread(ex, fn)` → the result of `fn()`: runs `fn` on executor
/// `ex` (a thread pool's) and resumes the task on its own executor afterwards.
/// `fn`'s result or exception (the same exception object) crosses back safely.
///
/// @par Cancellation
/// A cancellation point. If the task is cancelled before `fn` starts, `fn` never
/// runs and the call throws `cancelled_error` at once. Once `fn` runs it cannot
/// be interrupted: the task waits for it to return, then throws
/// `cancelled_error` — `fn`'s result (or exception) is discarded. Work whose
/// result must not be lost belongs in a `shield`.
/// @par Thread safety
/// `fn` runs on another thread: it must not touch the task tree's objects
/// (queues, scopes, …) without synchronisation. `fn` is destroyed on the task's
/// thread. The task's io_context must outlive the call.
/// @par Exceptions
/// Whatever `fn` throws; `cancelled_error` as above.
/// @par Example
/// @code
/// std::string text = co_await tether::to_thread(pool, [&path] { return read_file(path); });
/// @endcode
template <class Executor, class F>
    requires detail::thread_executor<Executor> && std::invocable<std::decay_t<F>>
        detail::to_thread_awaiter<Executor, std::decay_t<F>> to_thread(const Executor& ex, F&& fn) {
        static_assert(
            !std::is_reference_v<std::invoke_result_t<std::decay_t<F>>>,
            "tether::to_thread: fn must return by value (a reference would cross threads)");
        // fn is moved from (not copied), which also keeps a temporary lambda harmless
        // under g++ 12's double destruction of co_await temporaries (NOTES.md).
        return detail::to_thread_awaiter<Executor, std::decay_t<F>>(ex, std::forward<F>(fn));
    }

/// `co_await to_thread(pool, fn)`: as above, on an execution context such as an
/// `asio::thread_pool`.
template <class ExecutionContext, class F>
    requires std::is_convertible_v<ExecutionContext&, asio::execution_context&> &&
        std::invocable<std::decay_t<F>>
auto to_thread(ExecutionContext& ctx, F&& fn) {
    return tether::to_thread(ctx.get_executor(), std::forward<F>(fn));
}

/// `co_await to_thread(fn)`: as above, on `default_thread_pool()`.
template <class F>
    requires std::invocable<std::decay_t<F>>
auto to_thread(F&& fn) {
    return tether::to_thread(default_thread_pool().get_executor(), std::forward<F>(fn));
}

} // namespace tether

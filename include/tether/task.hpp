// tether/task.hpp — task<T>, run(), spawn(), use_task, this_task, yield_now,
// sleep_for, sleep_until (DESIGN.md §2).
#pragma once

#include <tether/config.hpp>
#include <tether/detail/frame_allocator.hpp>
#include <tether/detail/scheduler.hpp>
#include <tether/detail/scope.hpp>
#include <tether/errors.hpp>

#include <concepts>
#include <coroutine>
#include <exception>
#include <new>
#include <optional>
#include <system_error>
#include <tuple>
#include <type_traits>
#include <utility>

namespace tether {

template <class T = void>
class task;

namespace detail {

/// Awaitables that need the awaiting chain (for cancellation checks, the
/// scheduler, …) expose `bind_context`; every tether coroutine passes its chain
/// through `await_transform` before awaiting. Other awaitables pass unchanged.
template <class A>
concept context_bindable = requires(A& a, task_ctx& c) {
    a.bind_context(c);
};

/// What await_transform returns for a context-bindable awaitable: a reference
/// to it. g++ 12 gives the awaitable that await_transform returns its own frame
/// slot beside the operand's temporary (two copies of an event wait, 88 B each,
/// in every frame that waits); returning this 8-byte handle instead keeps the
/// one copy, the temporary, which lives to the end of the full-expression.
template <class A>
struct bound_awaitable {
    A& a_;

    decltype(auto) await_ready() noexcept(noexcept(a_.await_ready())) {
        return a_.await_ready();
    }
    template <class Promise>
    decltype(auto)
    await_suspend(std::coroutine_handle<Promise> h) noexcept(noexcept(a_.await_suspend(h))) {
        return a_.await_suspend(h);
    }
    decltype(auto) await_resume() noexcept(noexcept(a_.await_resume())) {
        return a_.await_resume();
    }
};

struct promise_base {
    task_ctx* ctx_ = nullptr; // the chain this coroutine runs on
    std::exception_ptr exception_;
    // Set for chains started by run/spawn/task_group instead of a continuation:
    // called at final_suspend, returns what to resume next. May destroy the frame.
    std::coroutine_handle<> (*on_done_)(promise_base&) noexcept = nullptr;
    // Invariant: on_done_ != nullptr iff owner_ is the member in use. An awaited
    // coroutine has a continuation and no owner; a chain's first coroutine has an
    // owner and is never awaited (starting it released its task), so the two share
    // storage: every frame is 8 bytes smaller.
    union {
        std::coroutine_handle<> continuation_{}; // resumed at final_suspend, when set
        void* owner_;                            // the root/group that started this chain
    };
    // The chain's context when this coroutine starts one: constructed by
    // adopt_as_chain only, so that an awaited coroutine's frame (the common case)
    // does not initialise it. Trivially destructible.
    union {
        task_ctx own_ctx_;
    };

    promise_base() noexcept {}
    static_assert(std::is_trivially_destructible_v<task_ctx>);

    static void* operator new(std::size_t n) {
        return frame_pool::allocate(n);
    }
    static void operator delete(void* p, std::size_t n) noexcept {
        frame_pool::deallocate(p, n);
    }

    std::suspend_always initial_suspend() const noexcept {
        return {};
    }

    struct final_awaiter {
        bool await_ready() const noexcept {
            return false;
        }
        template <class Promise>
        std::coroutine_handle<> await_suspend(std::coroutine_handle<Promise> h) const noexcept {
            promise_base& p = h.promise();
            if (p.on_done_) return p.on_done_(p); // *this frame may be gone now
            if (p.continuation_) return p.continuation_;
            return std::noop_coroutine();
        }
        void await_resume() const noexcept {}
    };
    final_awaiter final_suspend() const noexcept {
        return {};
    }

    void unhandled_exception() noexcept {
        exception_ = std::current_exception();
    }

    template <class A>
    decltype(auto) await_transform(A&& a) noexcept {
        if constexpr (context_bindable<std::remove_reference_t<A>>) {
            a.bind_context(*ctx_);
            return bound_awaitable<std::remove_reference_t<A>>{a};
        } else {
            return static_cast<A&&>(a);
        }
    }

    /// Start this coroutine as a new chain in `scope` (not yet scheduled).
    void adopt_as_chain(scope_state& scope, std::coroutine_handle<> self) noexcept {
        ::new (static_cast<void*>(&own_ctx_)) task_ctx();
        scope.adopt(own_ctx_);
        own_ctx_.start_.handle_ = self;
        ctx_ = &own_ctx_;
    }
};

template <class T>
struct promise final : promise_base {
    task<T> get_return_object() noexcept;

    template <class U = T>
        requires std::convertible_to<U&&, T>
    void return_value(U&& v) noexcept(std::is_nothrow_constructible_v<T, U&&>) {
        value_.emplace(std::forward<U>(v));
    }

    T take_result() {
        if (exception_) std::rethrow_exception(exception_);
        return std::move(*value_);
    }

    std::optional<T> value_;
};

template <>
struct promise<void> final : promise_base {
    task<void> get_return_object() noexcept;
    void return_void() const noexcept {}
    void take_result() const {
        if (exception_) std::rethrow_exception(exception_);
    }
};

template <class T>
using task_handle = std::coroutine_handle<promise<T>>;

/// Starts `child` inline on the awaiting chain. A child that finishes without
/// suspending is not resumed by its final_suspend (its continuation is still
/// unset), so `await_suspend` returns false and the parent continues in the same
/// stack frame: synchronous completion never nests, at any optimisation level.
template <class T>
struct task_awaiter {
    task_handle<T> child_;

    bool await_ready() const noexcept {
        return false;
    }

    template <class Promise>
    bool await_suspend(std::coroutine_handle<Promise> parent) noexcept {
        promise<T>& cp = child_.promise();
        cp.ctx_ = parent.promise().ctx_;
        child_.resume();
        if (child_.done()) return false;
        cp.continuation_ = parent;
        return true;
    }

    T await_resume() {
        return child_.promise().take_result();
    }
};

} // namespace detail

/// A lazy, move-only coroutine producing a `T`.
///
/// A task starts when it is awaited (`co_await std::move(t)` or `co_await f()`),
/// spawned into a task_group, or passed to run()/spawn(); it runs on the executor
/// of whoever started it. Destroying a task that never started destroys its frame
/// without running it.
///
/// @par Cancellation
/// Awaiting a task is not itself a cancellation point; the awaited task runs in
/// the caller's cancellation scopes.
/// @par Thread safety
/// A task tree runs on one thread at a time (see run()).
template <class T>
class [[nodiscard]] task {
public:
    using promise_type = detail::promise<T>;
    using value_type = T;

    task() noexcept = default;
    task(task&& other) noexcept : h_(std::exchange(other.h_, {})) {}
    task& operator=(task&& other) noexcept {
        if (this != &other) {
            reset();
            h_ = std::exchange(other.h_, {});
        }
        return *this;
    }
    task(const task&) = delete;
    task& operator=(const task&) = delete;
    ~task() {
        reset();
    }

    /// True if this task holds a coroutine (was not moved from).
    explicit operator bool() const noexcept {
        return static_cast<bool>(h_);
    }

    /// Await the task: runs it on the awaiting chain, returns its value or
    /// rethrows its exception (same exception object).
    detail::task_awaiter<T> operator co_await() && noexcept {
        return {h_};
    }

    // Machinery for run/spawn/task_group: release ownership of the frame.
    detail::task_handle<T> release() noexcept {
        return std::exchange(h_, {});
    }
    explicit task(detail::task_handle<T> h) noexcept : h_(h) {}

private:
    void reset() noexcept {
        if (h_) std::exchange(h_, {}).destroy();
    }

    detail::task_handle<T> h_;
};

namespace detail {
template <class T>
task<T> promise<T>::get_return_object() noexcept {
    return task<T>(task_handle<T>::from_promise(*this));
}
inline task<void> promise<void>::get_return_object() noexcept {
    return task<void>(task_handle<void>::from_promise(*this));
}
} // namespace detail

/// Runs `io` until `t` ends and returns its value or rethrows its exception.
///
/// The entry point of a program (`int main() { return tether::run(io, amain()); }`)
/// and of every test. Other work on `io` runs meanwhile; work left when `t` ends
/// stays queued in `io`.
///
/// @par Exceptions
/// Whatever `t` throws; `usage_error` if `io` runs out of work (or is stopped)
/// before `t` ends — every task is waiting for something that cannot happen.
/// @par Thread safety
/// Call from one thread; nothing else may run `io` concurrently.
template <class T>
T run(asio::io_context& io, task<T> t) {
    if (!t) throw usage_error("tether::run: the task is empty (moved from)");
    detail::scheduler& sched = detail::scheduler_for(io);
    detail::scope_state root_scope;
    root_scope.sched_ = &sched;
    root_scope.entered_ = true;

    auto h = t.release();
    task<T> owner(h); // destroys the frame on every path out of run()
    detail::promise<T>& p = h.promise();
    bool done = false;
    p.adopt_as_chain(root_scope, h);
    p.owner_ = &done;
    p.on_done_ = [](detail::promise_base& pb) noexcept -> std::coroutine_handle<> {
        pb.own_ctx_.unlink();
        *static_cast<bool*>(pb.owner_) = true;
        return std::noop_coroutine();
    };
    sched.schedule(p.own_ctx_.start_);

    io.restart();
    while (!done && io.run_one() != 0) {
    }
    if (!done)
        throw usage_error(
            "tether::run: the io_context ran out of work (or was stopped) before the task "
            "finished; every task is waiting for something that can no longer happen");
    return p.take_result();
}

namespace detail {

inline asio::io_context& io_context_of(const asio::io_context::executor_type& ex) noexcept {
    return asio::query(ex, asio::execution::context);
}

inline asio::io_context& io_context_of(const asio::any_io_executor& ex) {
    if (const auto* io_ex = ex.target<asio::io_context::executor_type>())
        return asio::query(*io_ex, asio::execution::context);
    throw usage_error(
        "tether::spawn: the executor must be an asio::io_context executor (tether runs each task "
        "tree on one io_context driven by one thread)");
}

template <class Executor>
requires std::same_as<decltype(asio::query(std::declval<const Executor&>(),
                                           asio::execution::context)),
                      asio::io_context&>
    asio::io_context& io_context_of(const Executor& ex) {
    return asio::query(ex, asio::execution::context);
}

template <class T>
struct spawn_signature {
    using type = void(std::exception_ptr, T);
};
template <>
struct spawn_signature<void> {
    using type = void(std::exception_ptr);
};

// A root started by spawn(): the frame, its root scope and the completion handler.
template <class T, class Handler>
class spawn_state {
public:
    spawn_state(scheduler& sched, task_handle<T> h, Handler handler)
        : sched_(sched), h_(h), handler_(std::move(handler)),
          work_(asio::make_work_guard(asio::get_associated_executor(handler_, sched.executor()))) {
        scope_.sched_ = &sched;
        scope_.entered_ = true;
        promise<T>& p = h_.promise();
        p.adopt_as_chain(scope_, h_);
        p.owner_ = this;
        p.on_done_ = &spawn_state::on_done;

        auto slot = asio::get_associated_cancellation_slot(handler_);
        if (slot.is_connected()) {
            slot_ = slot;
            slot.template emplace<canceller>(this);
        }
    }

    void start() {
        // Queued behind tasks that are already ready (FIFO across roots).
        asio::post(sched_.executor(), [this] { sched_.schedule(h_.promise().own_ctx_.start_); });
    }

private:
    struct canceller {
        explicit canceller(spawn_state* s) noexcept : self(s) {}
        spawn_state* self;
        void operator()(asio::cancellation_type) const {
            spawn_state* s = self;
            if (s->sched_.executor().running_in_this_thread())
                s->sched_.run_as_handler([s] { s->scope_.cancel(); });
            else
                asio::post(s->sched_.executor(),
                           [s] { s->sched_.run_as_handler([s] { s->scope_.cancel(); }); });
        }
    };

    static std::coroutine_handle<> on_done(promise_base& pb) noexcept {
        auto* self = static_cast<spawn_state*>(pb.owner_);
        pb.own_ctx_.unlink();
        if (self->slot_.is_connected()) self->slot_.clear();
        promise<T>& p = self->h_.promise();
        std::exception_ptr e = p.exception_;
        auto handler = std::move(self->handler_);
        auto work = std::move(self->work_);
        auto ex = work.get_executor();
        if constexpr (std::is_void_v<T>) {
            self->h_.destroy(); // the frame is suspended at final_suspend: safe
            delete self;
            asio::post(ex, [handler = std::move(handler), e]() mutable { std::move(handler)(e); });
        } else {
            T value = e ? T{} : std::move(*p.value_);
            self->h_.destroy();
            delete self;
            asio::post(ex, [handler = std::move(handler), e, value = std::move(value)]() mutable {
                std::move(handler)(e, std::move(value));
            });
        }
        work.reset();
        return std::noop_coroutine();
    }

    scheduler& sched_;
    task_handle<T> h_;
    Handler handler_;
    asio::executor_work_guard<asio::associated_executor_t<Handler, asio::io_context::executor_type>>
        work_;
    scope_state scope_;
    asio::cancellation_slot slot_;
};

template <class Executor>
struct initiate_spawn {
    Executor ex;

    template <class Handler, class T>
    void operator()(Handler&& handler, task<T> t) const {
        if (!t) throw usage_error("tether::spawn: the task is empty (moved from)");
        scheduler& sched = scheduler_for(io_context_of(ex));
        auto* state = new spawn_state<T, std::decay_t<Handler>>(sched, t.release(),
                                                                std::forward<Handler>(handler));
        state->start();
    }
};

} // namespace detail

/// Launches `t` from plain Asio code as the root of a new task tree.
///
/// Completes with `void(std::exception_ptr, T)` (`void(std::exception_ptr)` for
/// `task<void>`), like `asio::co_spawn`, through any completion token:
/// `asio::use_future`, a callback, `asio::use_awaitable`, `tether::use_task`, ….
///
/// @par Cancellation
/// If the token has a cancellation slot, emitting on it cancels the task tree.
/// @par Thread safety
/// May be called from any thread; the task runs on `ex`'s io_context.
template <class Executor, class T, class CompletionToken>
auto spawn(const Executor& ex, task<T> t, CompletionToken&& token) {
    return asio::async_initiate<CompletionToken, typename detail::spawn_signature<T>::type>(
        detail::initiate_spawn<Executor>{ex}, token, std::move(t));
}

/// Overload taking the io_context itself.
template <class T, class CompletionToken>
auto spawn(asio::io_context& io, task<T> t, CompletionToken&& token) {
    return tether::spawn(io.get_executor(), std::move(t), std::forward<CompletionToken>(token));
}

// ---------------------------------------------------------------------------
// use_task: await any Asio asynchronous operation inside a task.

/// Completion token that makes an Asio operation awaitable in a task:
/// `std::size_t n = co_await sock.async_read_some(buf, tether::use_task);`
///
/// @par Cancellation
/// A cancellation point. If the chain is already cancelled the operation is not
/// started. Cancelling the chain while the operation is pending emits
/// `cancellation_type::all` on the operation's slot; an operation that then
/// completes successfully returns its result (nothing is lost) and the
/// cancellation surfaces at the next cancellation point; one that completes with
/// `operation_aborted` throws `cancelled_error`.
/// @par Exceptions
/// A non-zero leading `error_code` throws `std::system_error`; a leading
/// `std::exception_ptr` is rethrown.
struct use_task_t {
    constexpr use_task_t() noexcept = default;
};
inline constexpr use_task_t use_task{};

namespace detail {

template <class... Ts>
struct op_result {
    using type = std::tuple<Ts...>;
    static type make(std::tuple<Ts...>&& t) {
        return std::move(t);
    }
};
template <>
struct op_result<> {
    using type = void;
    static void make(std::tuple<>&&) noexcept {}
};
template <class T>
struct op_result<T> {
    using type = T;
    static T make(std::tuple<T>&& t) {
        return std::move(std::get<0>(t));
    }
};

template <class Tuple, std::size_t... I>
auto tail_of(Tuple&& t, std::index_sequence<I...>) {
    return std::make_tuple(std::move(std::get<I + 1>(t))...);
}

template <class... Args>
class async_op_base : public wait_node {
public:
    using args_tuple = std::tuple<Args...>;

    struct handler {
        async_op_base* op_;

        using executor_type = asio::io_context::executor_type;
        executor_type get_executor() const noexcept {
            return op_->ctx_->sched_->executor();
        }
        using cancellation_slot_type = asio::cancellation_slot;
        cancellation_slot_type get_cancellation_slot() const noexcept {
            return op_->signal_.slot();
        }

        void operator()(Args... args) {
            async_op_base* op = op_;
            op->result_.emplace(std::move(args)...);
            if (op->ctx_->waiting_ == op) op->ctx_->end_wait();
            op->ctx_->sched_->resume_from_handler(*op);
        }
    };

    async_op_base() = default;
    // Asio's async_initiate may move the awaitable before it is awaited; nothing
    // but the (empty) state is moved then.
    async_op_base(async_op_base&& o) noexcept : wait_node() {
        ctx_ = o.ctx_;
    }
    async_op_base& operator=(async_op_base&&) = delete;

    void bind_context(task_ctx& c) noexcept {
        ctx_ = &c;
    }

    bool await_ready() const {
        ctx_->check_cancelled();
        return false;
    }

    auto await_resume() {
        args_tuple& r = *result_;
        using first = std::tuple_element_t<0, args_tuple>;
        constexpr std::size_t n = sizeof...(Args);
        if constexpr (std::is_same_v<first, std::error_code>) {
            const std::error_code ec = std::get<0>(r);
            if (ec) {
                if (ec == asio::error::operation_aborted && ctx_->cancelled_)
                    ctx_->check_cancelled();
                throw std::system_error(ec);
            }
            return make_tail(r, std::make_index_sequence<n - 1>{});
        } else if constexpr (std::is_same_v<first, std::exception_ptr>) {
            if (std::get<0>(r)) std::rethrow_exception(std::get<0>(r));
            return make_tail(r, std::make_index_sequence<n - 1>{});
        } else {
            return op_result<Args...>::make(std::move(r));
        }
    }

protected:
    static void on_cancel(wait_node& w) noexcept {
        static_cast<async_op_base&>(w).signal_.emit(asio::cancellation_type::all);
    }

    template <std::size_t... I>
    static auto make_tail(args_tuple& r, std::index_sequence<I...>) {
        using tail = op_result<std::tuple_element_t<I + 1, args_tuple>...>;
        return tail::make(std::tuple<std::tuple_element_t<I + 1, args_tuple>...>(
            std::move(std::get<I + 1>(r))...));
    }

    asio::cancellation_signal signal_;
    std::optional<args_tuple> result_;
};

template <class Initiation, class Signature, class... InitArgs>
class async_op;

template <class Initiation, class R, class... Args, class... InitArgs>
class [[nodiscard]] async_op<Initiation, R(Args...), InitArgs...>
    : public async_op_base<std::decay_t<Args>...> {
    using base = async_op_base<std::decay_t<Args>...>;

public:
    template <class I, class... A>
    async_op(std::in_place_t, I&& init, A&&... args)
        : init_(std::forward<I>(init)), args_(std::forward<A>(args)...) {}

    void await_suspend(std::coroutine_handle<> h) {
        this->handle_ = h;
        this->ctx_->begin_wait(*this, &base::on_cancel);
        try {
            std::apply(
                [&](auto&... a) {
                    std::move(init_)(typename base::handler{this}, std::move(a)...);
                },
                args_);
        } catch (...) {
            this->ctx_->end_wait();
            throw;
        }
    }

private:
    Initiation init_;
    std::tuple<InitArgs...> args_;
};

} // namespace detail

// ---------------------------------------------------------------------------
// this_task, yield_now, sleep_for, sleep_until

namespace detail {

struct executor_awaiter {
    task_ctx* ctx_ = nullptr;
    void bind_context(task_ctx& c) noexcept {
        ctx_ = &c;
    }
    bool await_ready() const noexcept {
        return true;
    }
    void await_suspend(std::coroutine_handle<>) const noexcept {}
    asio::io_context::executor_type await_resume() const noexcept {
        return ctx_->sched_->executor();
    }
};

struct now_awaiter {
    task_ctx* ctx_ = nullptr;
    void bind_context(task_ctx& c) noexcept {
        ctx_ = &c;
    }
    bool await_ready() const noexcept {
        return true;
    }
    void await_suspend(std::coroutine_handle<>) const noexcept {}
    clock::time_point await_resume() const noexcept {
        return ctx_->sched_->now();
    }
};

class [[nodiscard]] yield_awaiter {
public:
    void bind_context(task_ctx& c) noexcept {
        ctx_ = &c;
    }
    bool await_ready() const {
        ctx_->check_cancelled();
        return false;
    }
    void await_suspend(std::coroutine_handle<> h) noexcept {
        node_.handle_ = h;
        ctx_->sched_->schedule(node_);
    }
    void await_resume() const noexcept {}

private:
    task_ctx* ctx_ = nullptr;
    ready_node node_;
};

class [[nodiscard]] sleep_awaiter : public wait_node {
public:
    explicit sleep_awaiter(clock::time_point until) noexcept : until_(until), relative_(false) {}
    explicit sleep_awaiter(clock::duration d) noexcept : delay_(d), relative_(true) {}

    void bind_context(task_ctx& c) noexcept {
        ctx_ = &c;
    }

    bool await_ready() {
        ctx_->check_cancelled();
        if (relative_) until_ = deadline_after(ctx_->sched_->now(), delay_);
        return false;
    }

    void await_suspend(std::coroutine_handle<> h) {
        handle_ = h;
        scheduler& s = *ctx_->sched_;
        if (until_ <= s.now()) { // an elapsed deadline still yields once
            s.schedule(*this);
            return;
        }
        timer_.self_ = this;
        timer_.when_ = until_;
        timer_.fire_ = &on_fire;
        ctx_->begin_wait(*this, &on_cancel);
        s.add_timer(timer_);
    }

    void await_resume() const {
        if (cancelled_) ctx_->check_cancelled();
    }

private:
    struct timer : timer_node {
        sleep_awaiter* self_ = nullptr;
    };

    static void on_fire(timer_node& t) noexcept {
        sleep_awaiter& self = *static_cast<timer&>(t).self_;
        self.ctx_->end_wait();
        self.ctx_->sched_->schedule(self);
    }

    static void on_cancel(wait_node& w) noexcept {
        auto& self = static_cast<sleep_awaiter&>(w);
        self.ctx_->sched_->remove_timer(self.timer_);
        self.cancelled_ = true;
        self.ctx_->sched_->schedule(self);
    }

    clock::time_point until_{};
    clock::duration delay_{};
    timer timer_;
    bool relative_;
    bool cancelled_ = false;
};

} // namespace detail

namespace this_task {
/// `co_await this_task::executor()`: the executor the current task tree runs on.
/// Never suspends.
inline detail::executor_awaiter executor() noexcept {
    return {};
}
/// `co_await this_task::now()`: the current time of tether's clock (virtual time
/// under `testing::virtual_clock`). Never suspends.
inline detail::now_awaiter now() noexcept {
    return {};
}
} // namespace this_task

/// `co_await yield_now()`: let every other ready task run once, then continue.
///
/// @par Cancellation
/// A cancellation point: throws `cancelled_error` if the task is in a cancelled
/// scope.
inline detail::yield_awaiter yield_now() noexcept {
    return {};
}

/// `co_await sleep_for(d)`: suspend for `d` of tether's clock (virtual time under
/// `testing::virtual_clock`). A non-positive `d` yields once.
///
/// @par Cancellation
/// A cancellation point; a cancelled sleep ends at once with `cancelled_error`.
template <class Rep, class Period>
detail::sleep_awaiter sleep_for(std::chrono::duration<Rep, Period> d) noexcept {
    return detail::sleep_awaiter(std::chrono::duration_cast<clock::duration>(d));
}

/// `co_await sleep_until(tp)`: suspend until `tp`; an elapsed `tp` yields once.
///
/// @par Cancellation
/// A cancellation point; a cancelled sleep ends at once with `cancelled_error`.
inline detail::sleep_awaiter sleep_until(clock::time_point tp) noexcept {
    return detail::sleep_awaiter(tp);
}

} // namespace tether

template <class R, class... Args>
struct asio::async_result<tether::use_task_t, R(Args...)> {
    template <class Initiation, class... InitArgs>
    static auto initiate(Initiation&& init, tether::use_task_t, InitArgs&&... args) {
        return tether::detail::async_op<std::decay_t<Initiation>, R(Args...),
                                        std::decay_t<InitArgs>...>(
            std::in_place, std::forward<Initiation>(init), std::forward<InitArgs>(args)...);
    }
};

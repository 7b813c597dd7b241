// tether/bounded_queue.hpp — bounded_queue<T>: a FIFO with backpressure between
// tasks of one task tree (DESIGN.md §7; scenarios Q-* in SEMANTICS.md).
#pragma once

#include <tether/config.hpp>
#include <tether/detail/ring_buffer.hpp>
#include <tether/detail/scope.hpp>
#include <tether/detail/waiter_list.hpp>
#include <tether/errors.hpp>
#include <tether/task.hpp>

#include <coroutine>
#include <cstddef>
#include <exception>
#include <limits>
#include <optional>
#include <type_traits>
#include <utility>

namespace tether {

/// A FIFO queue of at most `capacity()` items with backpressure: `push` waits
/// while the queue is full, `pop` waits while it is empty. The asyncio.Queue /
/// Trio memory-channel of tether.
///
/// - **Strict FIFO hand-off.** An item pushed while tasks wait in `pop` goes
///   straight to the oldest of them; a slot freed while tasks wait in `push`
///   goes straight to the oldest of those (its item is moved in). So `try_push`
///   and `try_pop` never overtake a blocked task, and blocked tasks are served in
///   arrival order.
/// - **Capacity 0 is a rendezvous** (Go's unbuffered channel, Trio's
///   `open_memory_channel(0)`): `push` waits until a `pop` takes the item
///   directly from it; `try_push` succeeds only if a task is already waiting in
///   `pop`. (asyncio reads `maxsize=0` as "unbounded"; here that is
///   `bounded_queue<T>::unbounded`, which a queue built for backpressure should
///   rarely need.) A zero capacity is useful as a hand-off point; it is not an
///   error.
/// - **Closing.** `close()` is graceful: pushes fail with `queue_closed`, pops
///   drain what is buffered and then see the end (an empty optional).
///   `close_and_discard()` drops the buffered items at once. Both wake every
///   waiter and are idempotent.
/// - **Join.** Each accepted item counts as unfinished until `task_done()` is
///   called for it; `co_await join()` waits until none is. `pop_tracked()`
///   returns the item in a `tracked_item` that calls `task_done()` when it goes
///   out of scope, so a forgotten `task_done()` cannot hang `join()`.
///
/// `T` must be move-constructible. If moving a `T` throws, the operation that
/// was moving it fails with that exception and did not happen.
///
/// @par Cancellation
/// Every `co_await` on the queue (`push`, `pop`, `pop_tracked`, `join`) is a
/// cancellation point, also when it completes at once. A cancelled operation did
/// not happen: no item moved, no count changed. A task whose operation already
/// completed (it was handed an item, or its item was taken) returns normally;
/// the cancellation surfaces at its next cancellation point. Nothing is lost,
/// duplicated or reordered.
/// @par Thread safety
/// None: use a queue from the tasks of one task tree (one thread). To feed it
/// from another thread, post to the tree's executor.
/// @par Example
/// @code
/// tether::bounded_queue<job> q(64);
/// // producer
/// for (auto& j : jobs) co_await q.push(std::move(j));
/// q.close();
/// // consumers
/// while (auto j = co_await q.pop()) co_await handle(*j);
/// @endcode
///
/// The queue must outlive every task waiting in it and every `tracked_item` of it.
template <class T>
class bounded_queue {
    static_assert(std::is_object_v<T> && !std::is_const_v<T> && !std::is_array_v<T>,
                  "tether::bounded_queue<T>: T must be a non-const object type");
    static_assert(std::is_move_constructible_v<T>,
                  "tether::bounded_queue<T>: T must be move-constructible");
    static_assert(std::is_nothrow_destructible_v<T>,
                  "tether::bounded_queue<T>: T's destructor must not throw");

public:
    using value_type = T;

    /// The capacity of a queue without a limit (`push` never waits).
    static constexpr std::size_t unbounded = std::numeric_limits<std::size_t>::max();

    class push_awaiter;
    class pop_awaiter;
    class pop_tracked_awaiter;
    class join_awaiter;
    class tracked_item;

    /// A queue holding at most `capacity` items; 0 makes it a rendezvous and
    /// `unbounded` removes the limit. Storage for min(capacity, 1024) items is
    /// allocated now; a larger queue grows its storage geometrically as it fills.
    explicit bounded_queue(std::size_t capacity) : buf_(capacity), capacity_(capacity) {}

    bounded_queue(const bounded_queue&) = delete;
    bounded_queue& operator=(const bounded_queue&) = delete;
    /// Precondition: no task waits in the queue.
    ~bounded_queue() = default;

    /// `co_await q.push(v)`: appends `v`, waiting while the queue is full.
    ///
    /// @par Cancellation
    /// A cancellation point. If cancelled while waiting, `v` was not enqueued.
    /// @par Exceptions
    /// `queue_closed` if the queue is closed, or is closed while waiting (the
    /// item is then not enqueued).
    [[nodiscard]] push_awaiter push(T value) noexcept(std::is_nothrow_move_constructible_v<T>) {
        return push_awaiter(*this, std::move(value));
    }

    /// `co_await q.pop()` → `std::optional<T>`: removes the oldest item, waiting
    /// while the queue is empty; an empty optional once the queue is closed and
    /// drained: `while (auto item = co_await q.pop()) { … }`.
    ///
    /// @par Cancellation
    /// A cancellation point. If cancelled while waiting, nothing was removed.
    [[nodiscard]] pop_awaiter pop() noexcept {
        return pop_awaiter(*this);
    }

    /// `co_await q.pop_tracked()` → `tracked_item`: like `pop()`, but the item
    /// calls `task_done()` when it is destroyed (or on `done()`), so `join()`
    /// cannot be left waiting for a forgotten `task_done()`:
    /// `while (auto job = co_await q.pop_tracked()) { handle(*job); }`.
    [[nodiscard]] pop_tracked_awaiter pop_tracked() noexcept {
        return pop_tracked_awaiter(*this);
    }

    /// Appends `v` without waiting. Returns false (and leaves `v` untouched) if
    /// the queue is full — also when the freed slot already belongs to a task
    /// waiting in `push`. With capacity 0, succeeds only if a task waits in `pop`.
    /// @par Exceptions
    /// `queue_closed` if the queue is closed.
    [[nodiscard]] bool try_push(const T& v) requires std::is_copy_constructible_v<T> {
        return offer(v);
    }
    /// Moves from `v` only if it returns true.
    [[nodiscard]] bool try_push(T&& v) {
        return offer(std::move(v));
    }

    /// Removes the oldest item without waiting; an empty optional if there is
    /// none (an item a waiting `pop` owns is not available) or the queue is
    /// closed and drained (`closed()` tells them apart).
    [[nodiscard]] std::optional<T> try_pop() {
        return take_now();
    }

    /// `try_pop()` returning a `tracked_item` (see `pop_tracked()`).
    [[nodiscard]] tracked_item try_pop_tracked() {
        std::optional<T> v;
        take(v);
        return tracked_item(v ? this : nullptr, std::move(v));
    }

    /// Graceful close: pushes waiting now and later fail with `queue_closed`;
    /// pops drain the buffered items, then return an empty optional (tasks waiting
    /// in `pop` on an empty queue wake up with it now). Idempotent.
    void close() noexcept {
        if (closed_) return;
        closed_ = true;
        putters_.wake_all(detail::wait_outcome::closed); // their items were never accepted
        getters_.wake_all(detail::wait_outcome::closed); // only waiting if nothing is buffered
    }

    /// Immediate close: like `close()`, and the buffered items are destroyed now;
    /// they no longer count as unfinished for `join()` (items already popped
    /// still do). Idempotent.
    void close_and_discard() noexcept {
        close();
        unfinished_ -= buf_.size();
        buf_.clear();
        if (unfinished_ == 0) joiners_.wake_all(detail::wait_outcome::done);
    }

    /// Marks one popped item as processed (asyncio's `Queue.task_done`).
    /// @par Exceptions
    /// `usage_error` if every popped item was already marked done.
    void task_done() {
        if (unfinished_ == buf_.size())
            throw usage_error(
                "tether::bounded_queue::task_done() called more times than items were popped; "
                "call it once per popped item, or pop with pop_tracked() which does it for you");
        finish_one();
    }

    /// `co_await q.join()`: waits until every item pushed so far has been popped
    /// and marked done (`task_done()` or a destroyed `tracked_item`). Returns at
    /// once if none is unfinished.
    /// @par Cancellation
    /// A cancellation point.
    [[nodiscard]] join_awaiter join() noexcept {
        return join_awaiter(*this);
    }

    /// Buffered items (not counting items held by tasks waiting in `push`).
    std::size_t size() const noexcept {
        return buf_.size();
    }
    std::size_t capacity() const noexcept {
        return capacity_;
    }
    bool empty() const noexcept {
        return buf_.size() == 0;
    }
    /// True when no item fits in the buffer (always, for capacity 0).
    bool full() const noexcept {
        return buf_.size() >= capacity_;
    }
    bool closed() const noexcept {
        return closed_;
    }

private:
    // Small trivially copyable items are buffered as the std::optional<T> that
    // pop() returns. g++ 12 builds an optional with two narrow stores (value,
    // flag) and then copies it whole; read back at once, that is a
    // store-forwarding stall, which made a pop twice as slow. A buffered optional
    // was written when it was pushed, long before, and is copied whole.
    static constexpr bool small_item =
        std::is_trivially_copyable_v<T> && sizeof(std::optional<T>) <= 2 * sizeof(void*);
    using slot = std::conditional_t<small_item, std::optional<T>, T>;

    class pop_wait; // the base of pop_awaiter and pop_tracked_awaiter

    // A task waiting in pop: the item is moved into slot_ when it is handed over.
    struct pop_node : detail::waiter {
        std::optional<T> slot_;
    };

    // A task waiting in push: its item waits in *value_ (in the awaiter) until a
    // freed slot or a popper takes it. error_ (only for a T whose move may throw)
    // holds the exception that moving it into a freed slot threw.
    struct push_node_base : detail::waiter {
        explicit push_node_base(T& value) noexcept : value_(&value) {}
        T* value_;
    };
    struct push_node_with_error : push_node_base {
        using push_node_base::push_node_base;
        std::exception_ptr error_; // set with wait_outcome::failed
    };
    static constexpr bool nothrow_move = std::is_nothrow_move_constructible_v<T>;
    using push_node = std::conditional_t<nothrow_move, push_node_base, push_node_with_error>;

    // Offers v to the oldest waiting popper, else to the buffer. True if accepted
    // (v moved from); false if full. If moving v throws, nothing happened.
    template <class U>
    bool offer(U&& v) {
        // Fast path: room in the buffer and nobody to hand to.
        // (!getters_.empty() implies an empty buffer, but capacity 0 has room for none.)
        if (buf_.size() < capacity_ && getters_.empty() && !closed_) [[likely]] {
            buf_.push_back(std::forward<U>(v));
            ++unfinished_;
            return true;
        }
        return offer_slow(std::forward<U>(v));
    }

    template <class U>
    bool offer_slow(U&& v) {
        if (closed_) throw queue_closed();
        if (!getters_.empty()) {
            auto& g = static_cast<pop_node&>(*getters_.front());
            g.slot_.emplace(std::forward<U>(v));
            getters_.pop_front();
            ++unfinished_;
            detail::waiter_list::wake(g, detail::wait_outcome::done);
            return true;
        }
        return false; // full (the oldest waiting pusher owns the next free slot)
    }

    // True if take() would not have to wait: an item is buffered, a pusher waits
    // (capacity 0), or the queue is closed (the end).
    bool can_take() const noexcept {
        return buf_.size() != 0 || !putters_.empty() || closed_;
    }

    // take() into a fresh optional. Out of line on purpose: see TETHER_NOINLINE.
    TETHER_NOINLINE std::optional<T> take_now() {
        if constexpr (std::is_nothrow_move_constructible_v<T>) {
            if (buf_.size() != 0) [[likely]] {
                // Build the result in the return statement, then pop (a named
                // optional costs g++ a spill through memory).
                pop_front_after_return guard{*this};
                return std::optional<T>(std::in_place, std::move(front_item()));
            }
        }
        std::optional<T> out;
        take(out);
        return out;
    }

    // Removes the front item and returns it as pop()'s result, with no call.
    // Precondition: buf_.size() != 0.
    std::optional<T> take_front() noexcept requires small_item {
        if (putters_.empty()) [[likely]] {
            // Two copies of the same lines: with the refill call on this path,
            // g++ spills v to the stack around it on both.
            std::optional<T> v = buf_.front(); // one whole-object copy
            buf_.pop_front();
            return v;
        }
        std::optional<T> v = buf_.front();
        buf_.pop_front();
        refill();
        return v;
    }
    T& front_item() noexcept {
        if constexpr (small_item)
            return *buf_.front();
        else
            return buf_.front();
    }

    struct pop_front_after_return {
        bounded_queue& q;
        ~pop_front_after_return() {
            q.buf_.pop_front();
            if (!q.putters_.empty()) q.refill();
        }
    };

    // Takes the next item into out. False if the caller must wait; true with an
    // empty out at the end of a closed queue. If moving throws, nothing happened.
    bool take(std::optional<T>& out) {
        if (buf_.size() != 0) [[likely]] {
            out.emplace(std::move(front_item()));
            buf_.pop_front();
            if (!putters_.empty()) refill();
            return true;
        }
        return take_slow(out);
    }

    bool take_slow(std::optional<T>& out) {
        if (!putters_.empty()) { // capacity 0: straight from the oldest pusher
            auto& p = static_cast<push_node&>(*putters_.front());
            out.emplace(std::move(*p.value_));
            putters_.pop_front();
            ++unfinished_;
            detail::waiter_list::wake(p, detail::wait_outcome::done);
            return true;
        }
        return closed_;
    }

    // A slot was freed while pushers wait: it belongs to the oldest of them.
    // Invariant restored: !putters_.empty() implies the buffer is full.
    void refill() noexcept {
        while (!putters_.empty()) {
            auto& p = static_cast<push_node&>(putters_.pop_front());
            if constexpr (nothrow_move) {
                buf_.push_back(std::move(*p.value_)); // never grows: a slot is free
            } else {
                try {
                    buf_.push_back(std::move(*p.value_));
                } catch (...) {
                    p.error_ = std::current_exception(); // that push fails; try the next
                    detail::waiter_list::wake(p, detail::wait_outcome::failed);
                    continue;
                }
            }
            ++unfinished_;
            detail::waiter_list::wake(p, detail::wait_outcome::done);
            return;
        }
    }

    // One popped item is done; wakes join() at zero. Caller checked there is one.
    void finish_one() noexcept {
        if (--unfinished_ == 0) joiners_.wake_all(detail::wait_outcome::done);
    }

    // Invariants:
    //  - !getters_.empty() implies buf_.size() == 0 and putters_.empty();
    //  - !putters_.empty() implies buf_.size() == capacity_ and getters_.empty();
    //  - closed_ implies getters_.empty() and putters_.empty();
    //  - unfinished_ >= buf_.size(): the difference is the popped items not yet done.
    detail::ring_buffer<slot> buf_;
    std::size_t capacity_;
    std::size_t unfinished_ = 0;
    detail::waiter_list getters_;
    detail::waiter_list putters_;
    detail::waiter_list joiners_;
    bool closed_ = false;
};

/// A popped item that marks itself done (`task_done()`) when destroyed, moved
/// from into another tracked_item, or when `done()` is called — whichever comes
/// first. Optional-like: empty at the end of a closed queue.
/// `while (auto job = co_await q.pop_tracked()) { co_await handle(*job); }`
///
/// Must not outlive its queue. Do not also call `q.task_done()` for it.
template <class T>
class bounded_queue<T>::tracked_item {
public:
    /// An empty item (tracks nothing).
    tracked_item() noexcept = default;
    tracked_item(tracked_item&& o) noexcept(std::is_nothrow_move_constructible_v<T>)
        : q_(std::exchange(o.q_, nullptr)), value_(std::move(o.value_)) {}
    tracked_item& operator=(tracked_item&& o) noexcept(
        std::is_nothrow_move_assignable_v<T>&& std::is_nothrow_move_constructible_v<T>) {
        if (this != &o) {
            done();
            value_ = std::move(o.value_);
            q_ = std::exchange(o.q_, nullptr);
        }
        return *this;
    }
    ~tracked_item() {
        done();
    }

    /// True if it holds an item (false at the end of a closed queue).
    explicit operator bool() const noexcept {
        return value_.has_value();
    }
    bool has_value() const noexcept {
        return value_.has_value();
    }

    T& operator*() & noexcept {
        return *value_;
    }
    const T& operator*() const& noexcept {
        return *value_;
    }
    T* operator->() noexcept {
        return &*value_;
    }
    const T* operator->() const noexcept {
        return &*value_;
    }
    T& value() & {
        return value_.value();
    }
    const T& value() const& {
        return value_.value();
    }

    /// Marks the item done now (idempotent); the value stays accessible.
    void done() noexcept {
        // Ignores an item the user already counted with q.task_done() (never below
        // the popped-but-unfinished count).
        if (bounded_queue* q = std::exchange(q_, nullptr); q && q->unfinished_ > q->buf_.size())
            q->finish_one();
    }

    /// True while the item still counts as unfinished.
    bool pending() const noexcept {
        return q_ != nullptr;
    }

private:
    friend class bounded_queue;
    tracked_item(bounded_queue* q,
                 std::optional<T>&& v) noexcept(std::is_nothrow_move_constructible_v<T>)
        : q_(q), value_(std::move(v)) {}

    bounded_queue* q_ = nullptr;
    std::optional<T> value_;
};

/// The awaitable of `push()`. Holds the item until the queue accepts it.
template <class T>
class [[nodiscard]] bounded_queue<T>::push_awaiter {
public:
    push_awaiter(bounded_queue& q, T&& v) noexcept(std::is_nothrow_move_constructible_v<T>)
        : q_(&q), value_(std::move(v)) {}

    void bind_context(detail::task_ctx& c) noexcept {
        ctx_ = &c;
    }

    bool await_ready() {
        detail::cancellation_point(*ctx_);
        return q_->offer(std::move(value_));
    }
    void await_suspend(std::coroutine_handle<> h) noexcept {
        q_->putters_.suspend(node_.emplace(value_), *ctx_, h);
    }
    void await_resume() const {
        if (!node_.engaged()) return; // completed in await_ready
        switch (node_->outcome_) {
        case detail::wait_outcome::closed:
            throw queue_closed();
        case detail::wait_outcome::failed:
            if constexpr (!nothrow_move) std::rethrow_exception(node_->error_);
            break;
        default:
            node_->throw_if_cancelled();
        }
    }

private:
    bounded_queue* q_;
    detail::task_ctx* ctx_ = nullptr;
    T value_;
    detail::lazy_node<push_node> node_;
};

/// What `pop()` and `pop_tracked()` share: waiting for an item (or the end).
template <class T>
class bounded_queue<T>::pop_wait {
public:
    explicit pop_wait(bounded_queue& q) noexcept : q_(&q) {}

    void bind_context(detail::task_ctx& c) noexcept {
        ctx_ = &c;
    }

    bool await_ready() {
        detail::cancellation_point(*ctx_);
        return q_->can_take();
    }
    void await_suspend(std::coroutine_handle<> h) noexcept {
        q_->getters_.suspend(node_.emplace(), *ctx_, h);
    }

protected:
    // After resumption: the node's item (empty at the end of a closed queue), or
    // cancelled_error. Precondition: node_.engaged().
    std::optional<T>& woken_slot() {
        node_->throw_if_cancelled();
        return node_->slot_;
    }

    bounded_queue* q_;
    detail::task_ctx* ctx_ = nullptr;
    detail::lazy_node<pop_node> node_;
};

/// The awaitable of `pop()`.
template <class T>
class [[nodiscard]] bounded_queue<T>::pop_awaiter : public pop_wait {
public:
    using pop_wait::pop_wait;

    std::optional<T> await_resume() {
        // Not suspended: await_ready saw an item (or the end) and nothing ran since,
        // so take it now, straight into the result.
        if (!this->node_.engaged()) {
            if constexpr (small_item) {
                if (this->q_->buf_.size() != 0) [[likely]]
                    return this->q_->take_front();
            }
            return this->q_->take_now();
        }
        return std::move(this->woken_slot());
    }
};

/// The awaitable of `pop_tracked()`.
template <class T>
class [[nodiscard]] bounded_queue<T>::pop_tracked_awaiter : public pop_wait {
public:
    using pop_wait::pop_wait;

    tracked_item await_resume() {
        if (!this->node_.engaged()) return this->q_->try_pop_tracked();
        std::optional<T>& slot = this->woken_slot();
        return tracked_item(slot ? this->q_ : nullptr, std::move(slot));
    }
};

/// The awaitable of `join()`.
template <class T>
class [[nodiscard]] bounded_queue<T>::join_awaiter {
public:
    explicit join_awaiter(bounded_queue& q) noexcept : q_(&q) {}

    void bind_context(detail::task_ctx& c) noexcept {
        ctx_ = &c;
    }

    bool await_ready() const {
        detail::cancellation_point(*ctx_);
        return q_->unfinished_ == 0;
    }
    void await_suspend(std::coroutine_handle<> h) noexcept {
        q_->joiners_.suspend(node_.emplace(), *ctx_, h);
    }
    void await_resume() const {
        if (node_.engaged()) node_->throw_if_cancelled();
    }

private:
    bounded_queue* q_;
    detail::task_ctx* ctx_ = nullptr;
    detail::lazy_node<detail::waiter> node_;
};

} // namespace tether

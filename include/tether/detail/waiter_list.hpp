// tether/detail/waiter_list.hpp — the intrusive FIFO of suspended tasks that every
// blocking primitive (bounded_queue, semaphore, event) waits in.
//
// A `waiter` is the awaiter's own node (it lives in the suspended frame, so waiting
// allocates nothing). The list gives the three things a primitive needs:
//  - `suspend(w, ctx, h)`: append w and register it as the chain's cancellable wait;
//  - `wake(w, outcome)`: the primitive completed the operation (it has already moved
//    the item/permit into the node and unlinked it): end the wait, queue the task;
//  - the cancel hook: a cancelled scope unlinks w (the operation did not happen) and
//    queues the task with `outcome::cancelled`, so that its await_resume throws.
// Once woken or cancelled a node is unlinked; the two never both happen, because
// `wake` calls `end_wait()` first (the core then never calls the hook) and the
// hook unlinks the node (the primitive then never finds it).
//
// Thread safety: none; a primitive belongs to one task tree's thread.
#pragma once

#include <tether/config.hpp>
#include <tether/detail/scheduler.hpp>
#include <tether/detail/scope.hpp>
#include <tether/errors.hpp>

#include <cassert>
#include <coroutine>
#include <cstddef>
#include <new>
#include <type_traits>
#include <utility>

namespace tether::detail {

class waiter_list;

/// The cancellation point at the start of every primitive's await_ready. Tests
/// the chain's flag inline; the throwing path stays out of line (g++ does not
/// inline task_ctx::check_cancelled, and a call on every fast path costs more
/// than the rest of an uncontended acquire).
inline void cancellation_point(const task_ctx& ctx) {
    if (ctx.cancelled_) [[unlikely]]
        ctx.check_cancelled();
}

/// How a wait ended; read by the awaiter's await_resume.
enum class wait_outcome : unsigned char {
    pending,   // still in the list
    done,      // the operation happened (item/permit moved, event set)
    closed,    // the primitive was closed: the operation did not happen
    failed,    // the operation failed (the primitive's node holds the exception)
    cancelled, // a scope was cancelled: the operation did not happen
};

/// A task suspended in a primitive. Lives in the awaiter (see lazy_node).
struct waiter : wait_node {
    waiter* prev_waiter_ = nullptr;
    waiter* next_waiter_ = nullptr;
    waiter_list* list_ = nullptr; // the list it is linked into, while pending
    wait_outcome outcome_ = wait_outcome::pending;

    /// After resumption: throws cancelled_error if the wait was cancelled.
    void throw_if_cancelled() const {
        if (outcome_ != wait_outcome::cancelled) return;
        ctx_->check_cancelled();
        throw cancelled_error(); // not reached: a cancelled wait implies a cancelled chain
    }
};

/// Intrusive doubly-linked FIFO of waiters, O(1) push, pop and removal.
/// Invariant: head_ == nullptr iff tail_ == nullptr; every linked node has
/// list_ == this and outcome_ == pending.
class waiter_list {
public:
    waiter_list() = default;
    waiter_list(const waiter_list&) = delete;
    waiter_list& operator=(const waiter_list&) = delete;
    ~waiter_list() {
        assert(empty() && "a task is still waiting in a destroyed primitive");
    }

    bool empty() const noexcept {
        return head_ == nullptr;
    }
    waiter* front() const noexcept {
        return head_;
    }
    std::size_t size() const noexcept {
        std::size_t n = 0;
        for (waiter* w = head_; w; w = w->next_waiter_) ++n;
        return n;
    }

    /// Suspends the chain `ctx` in this list (call from await_suspend).
    void suspend(waiter& w, task_ctx& ctx, std::coroutine_handle<> h) noexcept {
        w.handle_ = h;
        w.outcome_ = wait_outcome::pending;
        push_back(w);
        ctx.begin_wait(w, &on_cancel);
    }

    /// Unlinks and returns the oldest waiter. Precondition: !empty().
    waiter& pop_front() noexcept {
        waiter& w = *head_;
        unlink(w);
        return w;
    }

    /// Completes an unlinked waiter's wait with `o` and queues its task.
    static void wake(waiter& w, wait_outcome o) noexcept {
        w.outcome_ = o;
        w.ctx_->end_wait();
        // *w may be destroyed once its task runs; it is only queued here.
        w.ctx_->sched_->schedule(w);
    }

    /// Wakes every waiter, oldest first, with `o`.
    void wake_all(wait_outcome o) noexcept {
        while (!empty()) wake(pop_front(), o);
    }

private:
    void push_back(waiter& w) noexcept {
        w.list_ = this;
        w.next_waiter_ = nullptr;
        w.prev_waiter_ = tail_;
        if (tail_)
            tail_->next_waiter_ = &w;
        else
            head_ = &w;
        tail_ = &w;
    }

    void unlink(waiter& w) noexcept {
        if (w.prev_waiter_)
            w.prev_waiter_->next_waiter_ = w.next_waiter_;
        else
            head_ = w.next_waiter_;
        if (w.next_waiter_)
            w.next_waiter_->prev_waiter_ = w.prev_waiter_;
        else
            tail_ = w.prev_waiter_;
        w.prev_waiter_ = w.next_waiter_ = nullptr;
        w.list_ = nullptr;
    }

    // The core calls this at most once, only while the node is still the chain's
    // wait (i.e. pending in this list): withdraw it — the operation did not happen.
    static void on_cancel(wait_node& n) noexcept {
        auto& w = static_cast<waiter&>(n);
        w.list_->unlink(w);
        w.outcome_ = wait_outcome::cancelled;
        w.ctx_->sched_->schedule(w);
    }

    waiter* head_ = nullptr;
    waiter* tail_ = nullptr;
};

/// Storage for an awaiter's waiter node, constructed only when the task really
/// suspends. An operation that completes on its fast path then pays nothing for
/// the node, and copying the awaitable (to store it, to wrap it in a task)
/// copies no node. Never copies a node: copies happen only before
/// await_suspend.
template <class Node>
class lazy_node {
public:
    lazy_node() noexcept {}
    lazy_node(const lazy_node&) noexcept {}
    lazy_node& operator=(const lazy_node&) = delete;
#if defined(__cpp_concepts) && __cpp_concepts >= 202002L
    // Trivial for a trivial Node (P0848). clang 14 lacks P0848 (__cpp_concepts
    // 201907): it would pick this deleted destructor for a non-trivial Node.
    ~lazy_node() requires std::is_trivially_destructible_v<Node>
    = default;
#endif
    ~lazy_node() {
        if (engaged_) node_.~Node();
    }

    template <class... Args>
    Node& emplace(Args&&... args) {
        ::new (static_cast<void*>(&node_)) Node(std::forward<Args>(args)...);
        engaged_ = true;
        return node_;
    }

    /// True once the task suspended (the node exists).
    bool engaged() const noexcept {
        return engaged_;
    }
    Node& operator*() noexcept {
        return node_;
    }
    const Node& operator*() const noexcept {
        return node_;
    }
    Node* operator->() noexcept {
        return &node_;
    }
    const Node* operator->() const noexcept {
        return &node_;
    }

private:
    union {
        Node node_;
    };
    bool engaged_ = false;
};

} // namespace tether::detail

// tether/detail/scheduler.hpp — the per-io_context run queue and deadline heap.
//
// Every resumption of a tether task goes through one `scheduler` per io_context:
//  - resumable tasks wait in an intrusive FIFO (`ready_queue`); one Asio handler
//    drains it, up to `drain_budget` resumptions, then re-posts itself so that
//    Asio's own I/O and timers are never starved;
//  - a wake-up from a tether primitive is a push onto that queue, never an
//    `asio::post`;
//  - deadlines (sleeps, timeouts, scope deadlines) live in one binary heap; a
//    single `asio::steady_timer` is armed for the earliest, lazily, when the run
//    queue goes quiet — so arming and disarming a deadline that never fires costs
//    a heap push and pop, not a timer operation or a syscall;
//  - the clock is a seam: `testing::virtual_clock` replaces `now()` and the wait
//    for the earliest deadline (autojump when every task is blocked).
//
// Thread safety: a scheduler belongs to one io_context driven by one thread at a
// time. Only `post_external` may be called from other threads.
#pragma once

#include <tether/config.hpp>

#include <atomic>
#include <chrono>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <limits>
#include <thread>
#include <utility>
#include <vector>

namespace tether {

/// The clock of every tether deadline (`sleep_until`, `with_deadline`, …).
using clock = std::chrono::steady_clock;

namespace detail {

/// A resumable coroutine waiting for its turn in a scheduler's run queue.
struct ready_node {
    ready_node* next_ = nullptr;
    std::coroutine_handle<> handle_;
};

/// Intrusive FIFO of ready nodes. Invariant: head_ == nullptr iff tail_ == nullptr.
class ready_queue {
public:
    bool empty() const noexcept {
        return head_ == nullptr;
    }

    void push(ready_node& n) noexcept {
        n.next_ = nullptr;
        if (tail_)
            tail_->next_ = &n;
        else
            head_ = &n;
        tail_ = &n;
    }

    ready_node* pop() noexcept {
        ready_node* n = head_;
        if (n) {
            head_ = n->next_;
            if (!head_) tail_ = nullptr;
        }
        return n;
    }

private:
    ready_node* head_ = nullptr;
    ready_node* tail_ = nullptr;
};

/// `now + d`, saturating: a zero or negative `d` is `now` (already expired), one
/// too large for the clock is `time_point::max()` (never).
inline clock::time_point deadline_after(clock::time_point now, clock::duration d) noexcept {
    if (d <= clock::duration::zero()) return now;
    if (d >= clock::time_point::max() - now) return clock::time_point::max();
    return now + d;
}

/// A deadline in the scheduler's heap. Lives in the awaiter or scope that owns it.
struct timer_node {
    static constexpr std::size_t not_armed = std::numeric_limits<std::size_t>::max();

    clock::time_point when_{};
    std::uint64_t seq_ = 0;         // FIFO order among equal deadlines
    std::size_t index_ = not_armed; // position in the heap
    void (*fire_)(timer_node&) noexcept = nullptr;

    bool armed() const noexcept {
        return index_ != not_armed;
    }
};

/// Binary min-heap of timer nodes ordered by (when_, seq_), with O(log n) removal.
class timer_heap {
public:
    bool empty() const noexcept {
        return nodes_.empty();
    }
    std::size_t size() const noexcept {
        return nodes_.size();
    }
    timer_node& top() const noexcept {
        return *nodes_.front();
    }

    void push(timer_node& t) {
        t.index_ = nodes_.size();
        nodes_.push_back(&t);
        sift_up(t.index_);
    }

    void remove(timer_node& t) noexcept {
        const std::size_t i = t.index_;
        t.index_ = timer_node::not_armed;
        timer_node* last = nodes_.back();
        nodes_.pop_back();
        if (last == &t) return;
        nodes_[i] = last;
        last->index_ = i;
        sift_down(i);
        sift_up(last->index_);
    }

private:
    static bool before(const timer_node* a, const timer_node* b) noexcept {
        return a->when_ < b->when_ || (a->when_ == b->when_ && a->seq_ < b->seq_);
    }

    void place(std::size_t i, timer_node* t) noexcept {
        nodes_[i] = t;
        t->index_ = i;
    }

    void sift_up(std::size_t i) noexcept {
        timer_node* t = nodes_[i];
        while (i > 0) {
            const std::size_t parent = (i - 1) / 2;
            if (!before(t, nodes_[parent])) break;
            place(i, nodes_[parent]);
            i = parent;
        }
        place(i, t);
    }

    void sift_down(std::size_t i) noexcept {
        timer_node* t = nodes_[i];
        const std::size_t n = nodes_.size();
        for (;;) {
            std::size_t child = 2 * i + 1;
            if (child >= n) break;
            if (child + 1 < n && before(nodes_[child + 1], nodes_[child])) ++child;
            if (!before(nodes_[child], t)) break;
            place(i, nodes_[child]);
            i = child;
        }
        place(i, t);
    }

    std::vector<timer_node*> nodes_;
};

/// Virtual time installed by `testing::virtual_clock`.
struct virtual_time {
    clock::time_point now_{};
    std::chrono::nanoseconds autojump_threshold_{0};
    bool autojump_ = true;
    // Test seam (virtual_clock::on_each_resumption): called after every
    // resumption from the ready queue, between two steps of the task tree.
    void (*after_resume_)(void*) noexcept = nullptr;
    void* after_resume_arg_ = nullptr;
};

class scheduler {
public:
    /// Resumptions per drain before the drain re-posts itself (lets Asio poll I/O).
    static constexpr int drain_budget = 256;

    explicit scheduler(asio::io_context& io) : io_(io), timer_(io) {}
    scheduler(const scheduler&) = delete;
    scheduler& operator=(const scheduler&) = delete;

    asio::io_context& context() const noexcept {
        return io_;
    }
    asio::io_context::executor_type executor() const noexcept {
        return io_.get_executor();
    }

    /// Queue `n` for resumption. Never resumes inline.
    void schedule(ready_node& n) noexcept {
        ready_.push(n);
        if (!is_running() && !drain_posted_) post_drain();
    }

    /// Queue `n` and, unless a drain is already on the stack, drain now. For Asio
    /// completion handlers that run on this scheduler's thread.
    void resume_from_handler(ready_node& n) noexcept {
        const bool nested = is_running();
        if (nested) check_drain_thread();
        ready_.push(n);
        if (!nested) run_ready();
    }

    /// Run `fn` as scheduler code (inside a drain), then drain. For handlers posted
    /// to this scheduler's thread from elsewhere (foreign cancellation requests).
    template <class F>
    void run_as_handler(F&& fn) {
        if (is_running()) {
            std::forward<F>(fn)();
            return;
        }
        drain_guard guard(*this);
        std::forward<F>(fn)();
        drain_loop();
    }

    clock::time_point now() const noexcept {
        return vtime_ ? vtime_->now_ : clock::now();
    }

    /// Resumptions run so far. While it is unchanged, the running task has not
    /// suspended and no other task has run (only plain code ran), so a time read
    /// earlier in that stretch is still current up to CPU time. rate_limiter uses
    /// it to read the clock once per stretch, as nginx caches its time per
    /// event-loop iteration (a real clock read costs 25-60 ns on a VM).
    std::uint64_t resumptions() const noexcept {
        return resumptions_;
    }

    /// Arms `t` (which must not be armed) for `t.when_`.
    void add_timer(timer_node& t) {
        t.seq_ = next_seq_++;
        heap_.push(t);
        if (&heap_.top() == &t && (!armed_ || t.when_ < armed_when_)) request_timer_sync();
    }

    /// Disarms `t` if it is armed. The Asio timer stays armed (it fires early at
    /// worst and re-arms), except that an empty heap releases it, so that
    /// io_context::run() can return.
    void remove_timer(timer_node& t) noexcept {
        if (!t.armed()) return;
        heap_.remove(t);
        if (heap_.empty() && armed_) request_timer_sync();
    }

    /// Resume queued tasks until the queue is empty or the budget is spent.
    void run_ready() noexcept {
        if (is_running()) {
            check_drain_thread();
            return;
        }
        drain_guard guard(*this);
        drain_loop();
    }

    bool idle() const noexcept {
        return ready_.empty() && heap_.empty();
    }
    std::size_t pending_timers() const noexcept {
        return heap_.size();
    }

    // --- virtual time (testing::virtual_clock) ---
    void install_virtual_time(virtual_time* vt) noexcept {
        vtime_ = vt;
        request_timer_sync();
    }
    virtual_time* installed_virtual_time() const noexcept {
        return vtime_;
    }

    /// Virtual time only: moves time forward to `tp` and fires what expired.
    void advance_virtual_to(clock::time_point tp) {
        if (!vtime_ || tp <= vtime_->now_) return;
        run_as_handler([&] {
            vtime_->now_ = tp;
            fire_expired(tp);
        });
    }

    /// Called by the io_context's service on shutdown.
    void shutdown() noexcept {
        asio::error_code ignored;
        timer_.cancel();
        (void)ignored;
    }

private:
    // Marks the scheduler as running for the duration of a drain; on the way out
    // (also by exception from a completion handler) re-posts leftover work and
    // re-syncs the Asio timer.
    struct drain_guard {
        scheduler& s;
        explicit drain_guard(scheduler& sch) noexcept : s(sch) {
            // A second thread draining the same scheduler means the io_context is
            // run by several threads: tether's primitives are not synchronised
            // for that (DESIGN.md §2). Fail loudly instead of corrupting state.
            // acquire/release: pairs the end of one drain with the start of the
            // next when a single-threaded io_context changes threads.
            if (s.running_.exchange(true, std::memory_order_acquire)) concurrent_drain();
            s.drain_thread_.store(std::this_thread::get_id(), std::memory_order_relaxed);
        }
        ~drain_guard() {
            s.running_.store(false, std::memory_order_release);
            if (!s.ready_.empty()) {
                if (!s.drain_posted_) s.post_drain();
            } else if (s.timer_dirty_ || (s.vtime_ && !s.heap_.empty())) {
                s.sync_timer();
            }
        }
    };

    bool is_running() const noexcept {
        return running_.load(std::memory_order_relaxed);
    }

    // Called with a drain on the stack: from a handler nested in it, fine; from
    // another thread, the io_context is being run by two threads at once.
    void check_drain_thread() const noexcept {
        if (drain_thread_.load(std::memory_order_relaxed) != std::this_thread::get_id())
            concurrent_drain();
    }

    [[noreturn]] static void concurrent_drain() noexcept {
        std::fputs("tether: an io_context running tether tasks is being run by more than one "
                   "thread at once; run each io_context on one thread (use to_thread for other "
                   "cores)\n",
                   stderr);
        std::abort();
    }

    void drain_loop() {
        for (int i = 0; i < drain_budget; ++i) {
            ready_node* n = ready_.pop();
            if (!n) return;
            ++resumptions_;
            // *n may be destroyed by resume(); touch nothing of it afterwards.
            n->handle_.resume();
            if (vtime_ && vtime_->after_resume_) [[unlikely]]
                vtime_->after_resume_(vtime_->after_resume_arg_);
        }
    }

    void post_drain() noexcept {
        drain_posted_ = true;
        asio::post(io_.get_executor(), [this] {
            drain_posted_ = false;
            run_ready();
        });
    }

    void request_timer_sync() noexcept {
        timer_dirty_ = true;
        if (!is_running() && !drain_posted_) post_drain();
    }

    void fire_expired(clock::time_point now) noexcept {
        while (!heap_.empty() && heap_.top().when_ <= now) {
            timer_node& t = heap_.top();
            heap_.remove(t);
            t.fire_(t);
        }
    }

    void sync_timer() noexcept {
        timer_dirty_ = false;
        if (vtime_) {
            sync_virtual();
            return;
        }
        if (heap_.empty()) {
            if (armed_) {
                armed_ = false;
                timer_.cancel();
            }
            return;
        }
        const clock::time_point top = heap_.top().when_;
        if (armed_ && armed_when_ <= top) return;
        armed_ = true;
        armed_when_ = top;
        timer_.expires_at(top);
        timer_.async_wait([this](const asio::error_code& ec) {
            if (ec == asio::error::operation_aborted) return;
            armed_ = false;
            // Deadlines left in the heap (later ones, or ones that replaced a
            // removed earlier top) need the timer armed again on the way out.
            timer_dirty_ = true;
            run_as_handler([this] { fire_expired(clock::now()); });
        });
    }

    // Autojump: when nothing is runnable, jump virtual time to the earliest
    // deadline — after Asio handlers that are already queued (and, with a
    // threshold, after that much real time) have had their turn.
    void sync_virtual() noexcept {
        if (heap_.empty() || !ready_.empty() || jump_pending_ || !vtime_->autojump_) return;
        jump_pending_ = true;
        auto jump = [this](const asio::error_code& ec) {
            jump_pending_ = false;
            if (ec || !vtime_) return;
            if (!ready_.empty() || heap_.empty()) {
                request_timer_sync();
                return;
            }
            const clock::time_point target = heap_.top().when_;
            run_as_handler([&] {
                if (target > vtime_->now_) vtime_->now_ = target;
                fire_expired(vtime_->now_);
            });
        };
        if (vtime_->autojump_threshold_.count() == 0) {
            asio::post(io_.get_executor(), [jump] { jump(asio::error_code{}); });
        } else {
            timer_.expires_after(vtime_->autojump_threshold_);
            timer_.async_wait(jump);
        }
    }

    asio::io_context& io_;
    ready_queue ready_;
    timer_heap heap_;
    asio::steady_timer timer_;
    clock::time_point armed_when_{};
    std::uint64_t next_seq_ = 0;
    std::uint64_t resumptions_ = 0;
    virtual_time* vtime_ = nullptr;
    // A drain is on the stack. Atomic only to detect misuse (two threads running
    // the io_context); its owner thread reads it relaxed.
    std::atomic<bool> running_{false};
    std::atomic<std::thread::id> drain_thread_{}; // the thread of the drain on the stack
    bool drain_posted_ = false;                   // a drain handler is queued in the io_context
    bool timer_dirty_ = false;                    // heap top changed since the Asio timer was armed
    bool armed_ = false;                          // an async_wait on timer_ is outstanding
    bool jump_pending_ = false;                   // an autojump handler is queued
};

/// Owns the scheduler of one io_context.
class scheduler_service : public asio::execution_context::service {
public:
    using key_type = scheduler_service;
    static inline asio::execution_context::id id;

    explicit scheduler_service(asio::execution_context& ctx)
        : asio::execution_context::service(ctx), scheduler_(static_cast<asio::io_context&>(ctx)) {}

    scheduler& get() noexcept {
        return scheduler_;
    }

private:
    void shutdown() override {
        scheduler_.shutdown();
    }

    scheduler scheduler_;
};

/// The scheduler of `io`, created on first use.
inline scheduler& scheduler_for(asio::io_context& io) {
    return asio::use_service<scheduler_service>(io).get();
}

} // namespace detail
} // namespace tether

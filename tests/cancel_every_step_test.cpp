// Cancellation at every step (issue 8): each scenario runs once to count its
// suspension points, then once per point cancelled right there — from outside
// and by a deadline — and, for scenarios on virtual time, at every instant of
// their timeline too; its invariants are checked after every run: nothing lost or duplicated, no
// permit or token leaked, every child joined, clean-up that began has finished, the right exception
// outside. The harness is tests/support/cancel_every_step.hpp; run_test adds "no task or deadline
// left behind", and ASan/LSan (the asan-ubsan preset) "no frame leaked".
#include "support/cancel_every_step.hpp"

#include <tether/bounded_queue.hpp>
#include <tether/cancel_scope.hpp>
#include <tether/resilience/circuit_breaker.hpp>
#include <tether/resilience/rate_limiter.hpp>
#include <tether/semaphore.hpp>
#include <tether/shield.hpp>
#include <tether/task_group.hpp>
#include <tether/timeout.hpp>
#include <tether/when.hpp>

#include "support/catch.hpp"
#include "support/run.hpp"

#include <algorithm>
#include <chrono>
#include <map>
#include <memory>
#include <stdexcept>
#include <vector>

using namespace std::chrono_literals;
using tether::task;
using tether::task_group;
using tether::with_task_group;
using tether_test::cancel_at_every_instant;
using tether_test::cancel_at_every_step;

namespace {

struct scenario_error : std::runtime_error {
    scenario_error() : std::runtime_error("scenario_error") {}
};

// Increments a counter when it goes out of scope, however the frame ends.
struct on_exit {
    int& n;
    ~on_exit() {
        ++n;
    }
};

// --- bounded_queue: 3 producers, 2 consumers, capacity 2 ----------------------------
// Items are unique_ptr (ASan proves none leaks). Invariant: every successful push
// is popped or still buffered, exactly once, in FIFO order per producer.
struct queue_scenario {
    static constexpr int producers = 3;
    static constexpr int items_each = 4;
    tether::bounded_queue<std::unique_ptr<int>> q{2};
    std::vector<int> pushed;
    std::vector<int> popped;

    task<void> producer(int id) {
        for (int i = 0; i < items_each; ++i) {
            const int v = id * 100 + i;
            co_await q.push(std::make_unique<int>(v));
            pushed.push_back(v); // no cancellation point between: the push happened
            co_await tether::yield_now();
        }
    }
    task<void> consumer() {
        while (auto item = co_await q.pop()) {
            popped.push_back(**item);
            co_await tether::yield_now();
        }
    }
    task<void> run() {
        auto make_producers = [this](task_group& tg) -> task<void> {
            for (int p = 0; p < producers; ++p) tg.spawn(producer(p));
            co_return;
        };
        auto body = [&](task_group& tg) -> task<void> {
            tg.spawn(consumer());
            tg.spawn(consumer());
            co_await with_task_group(make_producers);
            q.close();
        };
        co_await with_task_group(body);
    }
    void check(bool completed) {
        std::vector<int> seen = popped;
        while (auto item = q.try_pop()) seen.push_back(**item);
        std::map<int, int> last_of_producer;
        for (int v : seen) { // FIFO per producer
            auto [it, fresh] = last_of_producer.try_emplace(v / 100, v);
            if (!fresh) {
                CHECK(v > it->second);
                it->second = v;
            }
        }
        std::vector<int> a = seen;
        std::vector<int> b = pushed;
        std::sort(a.begin(), a.end());
        std::sort(b.begin(), b.end());
        CHECK(a == b); // nothing lost, nothing duplicated
        if (completed) {
            CHECK(pushed.size() == std::size_t{producers * items_each});
            CHECK(popped.size() == pushed.size());
        }
    }
};

// --- bounded_queue: join / task_done through tracked items --------------------------
struct join_scenario {
    tether::bounded_queue<int> q{1};
    int handled = 0;
    bool joined = false;

    task<void> worker() {
        while (auto item = co_await q.pop_tracked()) {
            co_await tether::yield_now();
            ++handled; // the item marks itself done when it goes out of scope
        }
    }
    task<void> run() {
        auto body = [&](task_group& tg) -> task<void> {
            tg.spawn(worker());
            tg.spawn(worker());
            for (int i = 0; i < 6; ++i) co_await q.push(i);
            co_await q.join();
            joined = true;
            q.close();
        };
        co_await with_task_group(body);
    }
    void check(bool completed) {
        if (completed) {
            CHECK(joined);
            CHECK(handled == 6);
        }
        CHECK(handled <= 6);
    }
};

// --- semaphore: 5 users of 2 permits, two rounds each ---------------------------------
struct semaphore_scenario {
    tether::semaphore sem{2};
    int inside = 0;
    int peak = 0;
    int rounds_done = 0;

    task<void> user() {
        for (int r = 0; r < 2; ++r) {
            tether::semaphore_permit permit = co_await sem.acquire();
            ++inside;
            struct leave {
                int& n;
                ~leave() {
                    --n;
                }
            } guard{inside};
            peak = std::max(peak, inside);
            co_await tether::yield_now();
            co_await tether::yield_now();
            ++rounds_done;
        }
    }
    task<void> run() {
        auto body = [this](task_group& tg) -> task<void> {
            for (int i = 0; i < 5; ++i) tg.spawn(user());
            co_return;
        };
        co_await with_task_group(body);
    }
    void check(bool completed) {
        CHECK(peak <= 2);
        CHECK(inside == 0);
        CHECK(sem.available() == 2); // no permit lost or double-counted
        if (completed) CHECK(rounds_done == 10);
    }
};

// --- task_group: a tree of children, one of which fails ----------------------------------
struct group_scenario {
    int started = 0;
    int finished = 0;
    bool failure_thrown = false;
    std::size_t group_errors = 0;
    bool failure_kept = false;
    std::exception_ptr failure;

    task<void> leaf(int depth, bool fails) {
        ++started;
        on_exit done{finished};
        co_await tether::yield_now();
        if (depth > 0) {
            auto grandchildren = [this, depth](task_group& tg) -> task<void> {
                tg.spawn(leaf(depth - 1, false));
                tg.spawn(leaf(depth - 1, false));
                co_return;
            };
            co_await with_task_group(grandchildren);
        }
        co_await tether::yield_now();
        if (fails) {
            failure_thrown = true;
            failure = std::make_exception_ptr(scenario_error());
            std::rethrow_exception(failure);
        }
    }
    task<void> run() {
        auto body = [this](task_group& tg) -> task<void> {
            tg.spawn(leaf(2, false));
            tg.spawn(leaf(1, false));
            tg.spawn(leaf(2, true)); // fails after its subtree finished
            co_return;
        };
        try {
            co_await with_task_group(body);
        } catch (const tether::task_group_error& e) {
            group_errors = e.exceptions().size();
            failure_kept = e.exceptions().front() == failure;
        }
    }
    void check(bool completed) {
        CHECK(started == finished);                        // every child joined
        CHECK(group_errors == (failure_thrown ? 1u : 0u)); // never a cancelled_error member
        if (failure_thrown) CHECK(failure_kept);
        if (completed) CHECK(failure_thrown);
    }
};

// --- when_all / when_any -------------------------------------------------------------------
struct when_scenario {
    int started = 0;
    int finished = 0;
    int sum = -1;
    int winner = -1;

    task<int> steps(int n, int v) {
        ++started;
        on_exit done{finished};
        for (int i = 0; i < n; ++i) co_await tether::yield_now();
        co_return v;
    }
    task<void> run() {
        auto all = co_await tether::when_all(steps(3, 1), steps(5, 2), steps(1, 4));
        sum = std::get<0>(all) + std::get<1>(all) + std::get<2>(all);
        auto any = co_await tether::when_any(steps(4, 10), steps(2, 20));
        winner = static_cast<int>(any.index());
    }
    void check(bool completed) {
        CHECK(started == finished); // losers and cancelled tasks were joined
        if (completed) {
            CHECK(sum == 7);
            CHECK(winner == 1);
        }
    }
};

// --- shield: a commit that began always finishes ---------------------------------------------
struct shield_scenario {
    int began = 0;
    int committed = 0;

    task<void> commit() {
        ++began;
        co_await tether::yield_now();
        co_await tether::yield_now();
        ++committed;
    }
    task<void> run() {
        for (int i = 0; i < 3; ++i) {
            co_await tether::yield_now();
            co_await tether::shield(commit());
        }
    }
    void check(bool completed) {
        CHECK(began == committed);
        if (completed) CHECK(committed == 3);
    }
};

// --- timeouts (virtual time): nested, expiring and not --------------------------------------
struct timeout_scenario {
    int ok = 0;
    int timeouts = 0;
    int moved_on = 0;

    task<int> sleep_then(tether::clock::duration d, int v) {
        co_await tether::sleep_for(d);
        co_return v;
    }
    task<void> run() {
        for (int i = 0; i < 3; ++i) {
            try {
                ok += co_await tether::with_timeout(5ms, sleep_then(i * 3ms, 1)); // 0, 3, 6 ms
            } catch (const tether::timeout_error&) {
                ++timeouts;
            }
        }
        auto inner = tether::with_timeout(20ms, sleep_then(15ms, 1));
        auto r = co_await tether::move_on_after(10ms, std::move(inner));
        if (!r) ++moved_on;
    }
    void check(bool completed) {
        CHECK(ok + timeouts <= 3);
        CHECK(timeouts <= 1);
        if (completed) {
            CHECK(ok == 2);
            CHECK(timeouts == 1);
            CHECK(moved_on == 1);
        }
    }
};

// --- rate_limiter (virtual time): 4 tasks share 50/s with a burst of 2 ------------------------
struct rate_limiter_scenario {
    tether::rate_limiter rl{50.0, 2};
    std::vector<tether::clock::duration> at; // when each acquisition succeeded
    tether::clock::time_point t0{};

    task<void> user() {
        for (int i = 0; i < 3; ++i) {
            co_await rl.acquire();
            at.push_back((co_await tether::this_task::now()) - t0);
        }
    }
    task<void> run() {
        t0 = co_await tether::this_task::now();
        auto body = [this](task_group& tg) -> task<void> {
            for (int i = 0; i < 4; ++i) tg.spawn(user());
            co_return;
        };
        co_await with_task_group(body);
    }
    void check(bool completed) {
        CHECK(rl.waiting() == 0);
        // A cancelled waiter took nothing: by time t at most burst + rate * t.
        for (std::size_t i = 0; i < at.size(); ++i) {
            const double allowed = 2.0 + 50.0 * std::chrono::duration<double>(at[i]).count();
            CHECK(static_cast<double>(i + 1) <= allowed + 1e-6);
        }
        if (completed) CHECK(at.size() == 12);
    }
};

// --- circuit_breaker (virtual time): cancellations are never failures ----------------------------
struct breaker_scenario {
    tether::circuit_breaker cb{2, 50ms};
    int ok = 0;

    task<int> work(tether::clock::duration d) {
        co_await tether::sleep_for(d);
        co_return 1;
    }
    task<void> run() {
        for (int i = 0; i < 4; ++i) ok += co_await cb.call(work(2ms));
        auto body = [this](task_group& tg) -> task<void> {
            auto caller = [this]() -> task<void> { ok += co_await cb.call(work(3ms)); };
            tg.spawn(caller());
            tg.spawn(caller());
            co_return;
        };
        co_await with_task_group(body);
    }
    void check(bool completed) {
        CHECK(cb.state() == tether::circuit_state::closed);
        CHECK(cb.consecutive_failures() == 0);
        if (completed) CHECK(ok == 6);
    }
};

} // namespace

TEST_CASE("cancelling a queue pipeline at every step loses and duplicates nothing",
          "[cancel_every_step][bounded_queue]") {
    CHECK(cancel_at_every_step<queue_scenario>("queue pipeline") > 5);
}

TEST_CASE("cancelling join/task_done at every step", "[cancel_every_step][bounded_queue]") {
    CHECK(cancel_at_every_step<join_scenario>("queue join") > 5);
}

TEST_CASE("cancelling semaphore users at every step leaks no permit",
          "[cancel_every_step][semaphore]") {
    CHECK(cancel_at_every_step<semaphore_scenario>("semaphore") > 5);
}

TEST_CASE("cancelling a task group tree at every step joins every child and keeps the error",
          "[cancel_every_step][task_group]") {
    CHECK(cancel_at_every_step<group_scenario>("task_group tree") > 5);
}

TEST_CASE("cancelling when_all / when_any at every step joins every task",
          "[cancel_every_step][when]") {
    CHECK(cancel_at_every_step<when_scenario>("when_all/when_any") > 5);
}

TEST_CASE("cancelling around shielded commits at every step never interrupts one",
          "[cancel_every_step][shield]") {
    CHECK(cancel_at_every_step<shield_scenario>("shield") > 5);
}

TEST_CASE("cancelling nested timeouts at every step and every instant",
          "[cancel_every_step][timeout]") {
    CHECK(cancel_at_every_step<timeout_scenario>("timeouts") > 5);
    CHECK(cancel_at_every_instant<timeout_scenario>("timeouts", 1ms) > 10);
}

TEST_CASE("cancelling rate-limited users at every step and instant takes no token",
          "[cancel_every_step][rate_limiter]") {
    CHECK(cancel_at_every_step<rate_limiter_scenario>("rate_limiter") > 5);
    CHECK(cancel_at_every_instant<rate_limiter_scenario>("rate_limiter", 10ms) > 10);
}

TEST_CASE("cancelling circuit-breaker calls at every step and instant records no failure",
          "[cancel_every_step][circuit_breaker]") {
    CHECK(cancel_at_every_step<breaker_scenario>("circuit_breaker") > 5);
    CHECK(cancel_at_every_instant<breaker_scenario>("circuit_breaker", 1ms) > 10);
}

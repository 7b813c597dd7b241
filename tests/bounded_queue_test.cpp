// Tests for <tether/bounded_queue.hpp>: scenarios Q-01 … Q-18 of SEMANTICS.md,
// capacity 0 (rendezvous), pop_tracked, move-only and throwing items, and the
// matrix buffered/unbuffered × fast path/suspended × cancelled before/after
// wake-up. Everything runs on virtual time; a "tick" is one yield_now().
#include <tether/bounded_queue.hpp>

#include <tether/cancel_scope.hpp>
#include <tether/task_group.hpp>
#include <tether/timeout.hpp>

#include "support/catch.hpp"
#include "support/run.hpp"

#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

using namespace std::chrono_literals;
using tether::bounded_queue;
using tether::cancel_scope;
using tether::cancelled_error;
using tether::queue_closed;
using tether::task;
using tether::task_group;
using tether::usage_error;
using tether_test::counted;
using tether_test::run_test;

using int_queue = bounded_queue<int>;

static_assert(!std::is_copy_constructible_v<int_queue>);
static_assert(!std::is_move_constructible_v<int_queue>);
static_assert(!std::is_copy_constructible_v<bounded_queue<std::unique_ptr<int>>::tracked_item>);
static_assert(std::is_nothrow_move_constructible_v<int_queue::tracked_item>);
static_assert(std::is_nothrow_move_constructible_v<int_queue::pop_awaiter>);
static_assert(std::is_same_v<decltype(std::declval<int_queue&>().try_pop()), std::optional<int>>);

namespace {

constexpr auto tick = 10ms; // a unit of virtual time for the timing scenarios

task<void> ticks(int n) {
    for (int i = 0; i < n; ++i) co_await tether::yield_now();
}

/// What happened to one operation run by a child task.
struct op_log {
    bool completed = false;        // the operation returned normally
    bool cancelled = false;        // the operation threw cancelled_error
    bool closed = false;           // the push threw queue_closed
    bool next_point_threw = false; // the cancellation point after it threw
    std::optional<int> value;      // what a pop returned
};

/// Pops once, then reaches one more cancellation point.
task<void> pop_op(int_queue& q, op_log& log) {
    try {
        log.value = co_await q.pop();
        log.completed = true;
    } catch (const cancelled_error&) {
        log.cancelled = true;
        throw;
    }
    try {
        co_await tether::yield_now();
    } catch (const cancelled_error&) {
        log.next_point_threw = true;
        throw;
    }
}

/// Pushes v once, then reaches one more cancellation point.
task<void> push_op(int_queue& q, int v, op_log& log) {
    try {
        co_await q.push(v);
        log.completed = true;
    } catch (const cancelled_error&) {
        log.cancelled = true;
        throw;
    } catch (const queue_closed&) {
        log.closed = true;
        co_return;
    }
    try {
        co_await tether::yield_now();
    } catch (const cancelled_error&) {
        log.next_point_threw = true;
        throw;
    }
}

/// Pops everything until the end of the stream.
task<void> drain(int_queue& q, std::vector<int>& out) {
    while (auto v = co_await q.pop()) out.push_back(*v);
}

/// True if pushing v throws queue_closed.
template <class Q, class V>
task<bool> push_fails_closed(Q& q, V v) {
    try {
        co_await q.push(std::move(v));
    } catch (const queue_closed&) {
        co_return true;
    }
    co_return false;
}

task<void> join_op(int_queue& q, bool& returned) {
    co_await q.join();
    returned = true;
}

} // namespace

// ---------------------------------------------------------------------------
// Basics

TEST_CASE("Q-01 items come out in the order they were pushed", "[bounded_queue][Q-01]") {
    run_test([]() -> task<void> {
        int_queue q(10);
        co_await q.push(1);
        co_await q.push(3);
        co_await q.push(2);
        CHECK(q.size() == 3);
        {
            auto r0_ = co_await q.pop();
            CHECK(*r0_ == 1);
        }
        {
            auto r1_ = co_await q.pop();
            CHECK(*r1_ == 3);
        }
        {
            auto r2_ = co_await q.pop();
            CHECK(*r2_ == 2);
        }
        CHECK(q.empty());
    });
}

TEST_CASE("Q-02 a full queue suspends the producer until a slot frees up",
          "[bounded_queue][Q-02]") {
    run_test([]() -> task<void> {
        int_queue q(2);
        std::vector<int> recorded;
        auto producer = [&]() -> task<void> {
            for (int i = 0; i < 3; ++i) {
                co_await q.push(i);
                recorded.push_back(i);
            }
        };
        auto body = [&](task_group& tg) -> task<void> {
            tg.spawn(producer());
            co_await ticks(2);
            CHECK(recorded == std::vector<int>{0, 1}); // suspended in push(2)
            CHECK(q.full());
            {
                auto r3_ = co_await q.pop();
                CHECK(*r3_ == 0);
            }
            co_await ticks(1);
            CHECK(recorded == std::vector<int>{0, 1, 2});
            {
                auto r4_ = co_await q.pop();
                CHECK(*r4_ == 1);
            }
            {
                auto r5_ = co_await q.pop();
                CHECK(*r5_ == 2);
            }
        };
        co_await tether::with_task_group(body);
    });
}

TEST_CASE("Q-02 a capacity-1 producer/consumer pair passes 5 items without deadlock",
          "[bounded_queue][Q-02]") {
    run_test([]() -> task<void> {
        int_queue q(1);
        std::vector<int> got;
        auto producer = [&]() -> task<void> {
            for (int i = 0; i < 5; ++i) co_await q.push(i);
            q.close();
        };
        auto body = [&](task_group& tg) -> task<void> {
            tg.spawn(drain(q, got));
            tg.spawn(producer());
            co_return;
        };
        co_await tether::with_task_group(body);
        CHECK(got == std::vector<int>{0, 1, 2, 3, 4});
    });
}

TEST_CASE("Q-03 try_push on a full queue and try_pop on an empty one change nothing",
          "[bounded_queue][Q-03]") {
    run_test([]() -> task<void> {
        int_queue q(1);
        REQUIRE(q.try_push(1));
        CHECK_FALSE(q.try_push(2));
        CHECK(q.size() == 1);
        CHECK(q.full());
        // The join count did not change: one task_done() for the one item.
        CHECK(*q.try_pop() == 1);
        q.task_done();
        CHECK_THROWS_AS(q.task_done(), usage_error);

        int_queue empty(3);
        CHECK_FALSE(empty.try_pop().has_value());
        CHECK(empty.empty());
        CHECK_FALSE(empty.closed());
        co_await empty.join(); // nothing unfinished
    });
}

TEST_CASE("Q-04 an unbounded queue accepts everything and drains in order",
          "[bounded_queue][Q-04]") {
    run_test([]() -> task<void> {
        int_queue q(int_queue::unbounded);
        CHECK(q.capacity() == int_queue::unbounded);
        for (int i = 0; i < 10; ++i) {
            CHECK(q.try_push(i));
            CHECK_FALSE(q.full());
        }
        for (int i = 0; i < 10; ++i) {
            auto v = co_await q.pop();
            CHECK(*v == i);
        }
        // Beyond the initial storage, with the ring wrapped when it grows.
        for (int i = 0; i < 700; ++i) REQUIRE(q.try_push(i));
        for (int i = 0; i < 500; ++i) REQUIRE(*q.try_pop() == i);
        for (int i = 700; i < 5000; ++i) REQUIRE(q.try_push(i));
        CHECK(q.size() == 4500);
        for (int i = 500; i < 5000; ++i) REQUIRE(*q.try_pop() == i);
        CHECK(q.empty());
    });
}

// ---------------------------------------------------------------------------
// Cancellation races (C-03 applied to the queue)

TEST_CASE("Q-05 a cancelled waiting getter does not consume the next item",
          "[bounded_queue][Q-05][cancellation]") {
    run_test([]() -> task<void> {
        int_queue q(4);
        op_log t1, t2;
        auto body = [&](task_group& tg) -> task<void> {
            auto h1 = tg.spawn(pop_op(q, t1));
            tg.spawn(pop_op(q, t2));
            co_await ticks(1); // both wait, t1 first
            h1.cancel();
            co_await ticks(1);
            CHECK(q.try_push('a'));
        };
        co_await tether::with_task_group(body);
        CHECK(t1.cancelled);
        CHECK_FALSE(t1.value);
        CHECK(t2.value == 'a');
        CHECK(q.empty());
    });
}

TEST_CASE("Q-06 a getter woken and cancelled in the same tick keeps its item",
          "[bounded_queue][Q-06][cancellation]") {
    run_test([]() -> task<void> {
        int_queue q(4);
        op_log r;
        auto body = [&](task_group& tg) -> task<void> {
            auto h = tg.spawn(pop_op(q, r));
            co_await ticks(1);
            // One tick: put 1, put 2, cancel R. 1 was handed straight to R.
            CHECK(q.try_push(1));
            CHECK(q.try_push(2));
            h.cancel();
            co_return;
        };
        co_await tether::with_task_group(body);
        // Outcome (i): R returns 1 and the cancellation arrives at its next point.
        CHECK(r.completed);
        CHECK(r.value == 1);
        CHECK(r.next_point_threw);
        CHECK(q.size() == 1);
        CHECK(*q.try_pop() == 2); // nothing lost, duplicated or reordered
    });
}

TEST_CASE("Q-06 a getter cancelled before the puts leaves both items queued",
          "[bounded_queue][Q-06][cancellation]") {
    run_test([]() -> task<void> {
        int_queue q(4);
        op_log r;
        auto body = [&](task_group& tg) -> task<void> {
            auto h = tg.spawn(pop_op(q, r));
            co_await ticks(1);
            h.cancel(); // same tick, but before the puts
            CHECK(q.try_push(1));
            CHECK(q.try_push(2));
            co_return;
        };
        co_await tether::with_task_group(body);
        // Outcome (ii): R ends cancelled and the queue still holds [1, 2].
        CHECK(r.cancelled);
        CHECK_FALSE(r.value);
        CHECK(*q.try_pop() == 1);
        CHECK(*q.try_pop() == 2);
    });
}

TEST_CASE("Q-06 three readers: items 1 and 2 are received exactly once between them",
          "[bounded_queue][Q-06][cancellation]") {
    run_test([]() -> task<void> {
        int_queue q(4);
        op_log r1, r2, r3;
        auto body = [&](task_group& tg) -> task<void> {
            auto h1 = tg.spawn(pop_op(q, r1));
            tg.spawn(pop_op(q, r2));
            auto h3 = tg.spawn(pop_op(q, r3));
            co_await ticks(1);
            CHECK(q.try_push(1));
            CHECK(q.try_push(2));
            h1.cancel();
            co_await ticks(3);
            h3.cancel(); // R3 got nothing; let the group end
        };
        co_await tether::with_task_group(body);
        std::vector<int> received;
        for (op_log* r : {&r1, &r2, &r3})
            if (r->value) received.push_back(*r->value);
        CHECK(received == std::vector<int>{1, 2});
        CHECK(r3.cancelled);
        CHECK(q.empty());
    });
}

TEST_CASE("Q-07 a putter woken and cancelled in the same tick puts exactly once",
          "[bounded_queue][Q-07][cancellation]") {
    run_test([]() -> task<void> {
        int_queue q(1);
        REQUIRE(q.try_push(1));
        op_log w;
        auto body = [&](task_group& tg) -> task<void> {
            auto h = tg.spawn(push_op(q, 2, w));
            co_await ticks(1);
            CHECK(*q.try_pop() == 1); // W's 2 moves into the freed slot
            h.cancel();
            co_return;
        };
        co_await tether::with_task_group(body);
        CHECK(w.completed); // W returns normally ...
        CHECK(w.next_point_threw);
        CHECK(q.size() == 1); // ... and 2 is in the queue exactly once
        CHECK(*q.try_pop() == 2);
        CHECK(q.empty());
    });
}

TEST_CASE("Q-07 a putter cancelled before the slot frees up puts nothing",
          "[bounded_queue][Q-07][cancellation]") {
    run_test([]() -> task<void> {
        int_queue q(1);
        REQUIRE(q.try_push(1));
        op_log w;
        auto body = [&](task_group& tg) -> task<void> {
            auto h = tg.spawn(push_op(q, 2, w));
            co_await ticks(1);
            h.cancel();
            CHECK(*q.try_pop() == 1);
            co_return;
        };
        co_await tether::with_task_group(body);
        CHECK(w.cancelled);
        CHECK(q.size() == 0);
        CHECK(q.try_push(2)); // the retry
        CHECK(*q.try_pop() == 2);
        CHECK(q.empty());
    });
}

TEST_CASE("Q-08 a cancelled blocked putter leaves the others' order intact",
          "[bounded_queue][Q-08][cancellation]") {
    run_test([]() -> task<void> {
        bounded_queue<char> q(1);
        co_await q.push('a');
        bool b_done = false;
        bool x_cancelled = false;
        auto put_b = [&]() -> task<void> {
            co_await q.push('b');
            b_done = true;
        };
        auto put_x = [&]() -> task<void> {
            try {
                co_await q.push('X');
            } catch (const cancelled_error&) {
                x_cancelled = true;
                throw;
            }
        };
        std::vector<char> got;
        auto body = [&](task_group& tg) -> task<void> {
            tg.spawn(put_b());
            auto hx = tg.spawn(put_x());
            co_await ticks(1);
            hx.cancel();
            co_await ticks(1);
            got.push_back(*co_await q.pop());
            co_await ticks(1);
            got.push_back(*co_await q.pop());
        };
        co_await tether::with_task_group(body);
        CHECK(got == std::vector<char>{'a', 'b'});
        CHECK(b_done);
        CHECK(x_cancelled);
        CHECK(q.empty()); // 'X' was never enqueued
    });
}

TEST_CASE("Q-09 a putter woken by a freed slot and then cancelled has put its item",
          "[bounded_queue][Q-09][cancellation]") {
    // Direct hand-off: the freed slot went to P1 together with P1's item, so
    // P1's put happened (it returns normally; its next point throws) and the
    // queue is full again — P2 rightly stays blocked until the next get.
    run_test([]() -> task<void> {
        int_queue q(1);
        REQUIRE(q.try_push(0));
        op_log p1, p2;
        auto body = [&](task_group& tg) -> task<void> {
            auto h1 = tg.spawn(push_op(q, 1, p1));
            tg.spawn(push_op(q, 2, p2));
            co_await ticks(1);
            CHECK(*q.try_pop() == 0);
            h1.cancel();
            co_await ticks(2);
            CHECK(p1.completed);
            CHECK(p1.next_point_threw);
            CHECK_FALSE(p2.completed);
            CHECK(q.full()); // no task is blocked while its condition holds
            {
                auto r6_ = co_await q.pop();
                CHECK(*r6_ == 1);
            }
            co_await ticks(1);
            CHECK(p2.completed);
            {
                auto r7_ = co_await q.pop();
                CHECK(*r7_ == 2);
            }
        };
        co_await tether::with_task_group(body);
        CHECK(q.empty());
    });
}

TEST_CASE("Q-09 mirror: a getter woken by a put and then cancelled keeps the item",
          "[bounded_queue][Q-09][cancellation]") {
    run_test([]() -> task<void> {
        int_queue q(1);
        op_log g1, g2;
        auto body = [&](task_group& tg) -> task<void> {
            auto h1 = tg.spawn(pop_op(q, g1));
            tg.spawn(pop_op(q, g2));
            co_await ticks(1);
            CHECK(q.try_push(7)); // handed to G1
            h1.cancel();
            co_await ticks(2);
            CHECK(g1.value == 7);
            CHECK(g1.next_point_threw);
            CHECK_FALSE(g2.completed); // the queue is empty: G2 rightly waits
            CHECK(q.try_push(8));
        };
        co_await tether::with_task_group(body);
        CHECK(g2.value == 8);
    });
}

TEST_CASE("Q-10 a slot freed while a putter waits belongs to it; try_push cannot barge",
          "[bounded_queue][Q-10]") {
    SECTION("(a) one try_pop, then try_push in the same tick") {
        run_test([]() -> task<void> {
            int_queue q(2);
            REQUIRE(q.try_push(1));
            REQUIRE(q.try_push(2));
            op_log p3;
            auto body = [&](task_group& tg) -> task<void> {
                tg.spawn(push_op(q, 3, p3));
                co_await ticks(1);
                CHECK(*q.try_pop() == 1);
                CHECK_FALSE(q.try_push(4)); // the freed slot belongs to P3
                co_return;
            };
            co_await tether::with_task_group(body);
            CHECK(*q.try_pop() == 2);
            CHECK(*q.try_pop() == 3);
            CHECK(q.empty());
        });
    }
    SECTION("(b) two try_pops, then try_push: 4 never overtakes 3") {
        run_test([]() -> task<void> {
            int_queue q(2);
            REQUIRE(q.try_push(1));
            REQUIRE(q.try_push(2));
            op_log p3;
            auto body = [&](task_group& tg) -> task<void> {
                tg.spawn(push_op(q, 3, p3));
                co_await ticks(1);
                CHECK(*q.try_pop() == 1);
                CHECK(*q.try_pop() == 2);
                CHECK(q.try_push(4));
                co_return;
            };
            co_await tether::with_task_group(body);
            CHECK(*q.try_pop() == 3);
            CHECK(*q.try_pop() == 4);
        });
    }
}

TEST_CASE("Q-11 a waiting getter owns the next item", "[bounded_queue][Q-11]") {
    run_test([]() -> task<void> {
        int_queue q(4);
        op_log g;
        auto body = [&](task_group& tg) -> task<void> {
            tg.spawn(pop_op(q, g));
            co_await ticks(1);
            CHECK(q.try_push(2));
            CHECK_FALSE(q.try_pop().has_value());
            co_return;
        };
        co_await tether::with_task_group(body);
        CHECK(g.value == 2);
    });
}

TEST_CASE("Q-12 a get that timed out leaves no waiter behind", "[bounded_queue][Q-12]") {
    run_test([]() -> task<void> {
        int_queue q(1);
        auto r = co_await tether::move_on_after(100ms, q.pop());
        CHECK_FALSE(r.has_value());
        // (c) a later push is buffered, not handed to the dead getter.
        CHECK(q.try_push(5));
        CHECK(q.size() == 1);
        {
            auto r8_ = co_await q.pop();
            CHECK(*r8_ == 5);
        }
    });
}

TEST_CASE("Q-12 a cancelled put leaves no waiter behind, also after its slot was taken",
          "[bounded_queue][Q-12][cancellation]") {
    run_test([]() -> task<void> {
        int_queue q(1);
        REQUIRE(q.try_push(1));
        auto r = co_await tether::move_on_after(100ms, q.push(2));
        CHECK_FALSE(r);
        CHECK(q.size() == 1);
        CHECK(*q.try_pop() == 1);
        CHECK(q.try_push(3)); // the slot is free again: nobody else claims it
        CHECK_FALSE(q.try_push(4));
        CHECK(*q.try_pop() == 3);
    });
}

TEST_CASE("Q-13 pop under a timeout in a loop loses nothing (with_timeout)",
          "[bounded_queue][Q-13][timeout]") {
    run_test([]() -> task<void> {
        int_queue q(int_queue::unbounded);
        constexpr int sentinel = -1;
        std::vector<int> got;
        int timeouts = 0;
        auto producer = [&]() -> task<void> {
            for (int i = 0; i < 6; ++i) {
                co_await q.push(i);
                co_await tether::sleep_for(i * tick);
            }
            co_await q.push(sentinel);
        };
        auto consumer = [&]() -> task<void> {
            for (;;) {
                try {
                    auto v = co_await tether::with_timeout(3 * tick, q.pop());
                    got.push_back(*v);
                    if (*v == sentinel) co_return;
                } catch (const tether::timeout_error&) {
                    ++timeouts;
                }
            }
        };
        auto body = [&](task_group& tg) -> task<void> {
            tg.spawn(consumer());
            tg.spawn(producer());
            co_return;
        };
        co_await tether::with_task_group(body);
        CHECK(got == std::vector<int>{0, 1, 2, 3, 4, 5, sentinel});
        CHECK(timeouts > 0);
    });
}

TEST_CASE("Q-13 pop under a rescheduled cancel scope in a loop loses nothing",
          "[bounded_queue][Q-13][cancellation]") {
    // The same race with a deadline that fires in the very tick an item arrives.
    run_test([]() -> task<void> {
        int_queue q(int_queue::unbounded);
        std::vector<int> got;
        auto producer = [&]() -> task<void> {
            for (int i = 0; i < 50; ++i) {
                co_await tether::sleep_for((i % 4) * tick);
                co_await q.push(i);
            }
            q.close();
        };
        auto consumer = [&]() -> task<void> {
            for (;;) {
                std::optional<int> item;
                bool end = false;
                auto attempt = [&](cancel_scope& s) -> task<void> {
                    s.reschedule(2 * tick);
                    item = co_await q.pop();
                    end = !item;
                };
                co_await tether::with_cancel_scope(attempt);
                if (end) co_return;
                if (item) got.push_back(*item);
            }
        };
        auto body = [&](task_group& tg) -> task<void> {
            tg.spawn(consumer());
            tg.spawn(producer());
            co_return;
        };
        co_await tether::with_task_group(body);
        REQUIRE(got.size() == 50);
        for (int i = 0; i < 50; ++i) CHECK(got[static_cast<std::size_t>(i)] == i);
    });
}

// ---------------------------------------------------------------------------
// join / task_done

TEST_CASE("Q-14 join on a fresh queue returns at once, twice", "[bounded_queue][Q-14]") {
    run_test([]() -> task<void> {
        int_queue q(4);
        auto t0 = co_await tether::this_task::now();
        co_await q.join();
        co_await q.join();
        {
            auto r9_ = co_await tether::this_task::now();
            CHECK((r9_) == t0);
        }
    });
}

TEST_CASE("Q-14 join waits for task_done of every item", "[bounded_queue][Q-14]") {
    run_test([]() -> task<void> {
        int_queue q(int_queue::unbounded);
        long sum = 0;
        auto worker = [&]() -> task<void> {
            while (auto v = co_await q.pop()) {
                co_await tether::sleep_for(1ms);
                sum += *v;
                q.task_done();
            }
        };
        bool joined = false;
        auto body = [&](task_group& tg) -> task<void> {
            tg.spawn(worker());
            tg.spawn(worker());
            for (int i = 0; i < 100; ++i) co_await q.push(i);
            co_await q.join();
            joined = true;
            CHECK(sum == 4950);
            q.close();
        };
        co_await tether::with_task_group(body);
        CHECK(joined);
    });
}

TEST_CASE("Q-14 items popped but not marked done keep join waiting", "[bounded_queue][Q-14]") {
    run_test([]() -> task<void> {
        int_queue q(4);
        co_await q.push(1);
        co_await q.push(2);
        {
            auto r10_ = co_await q.pop();
            CHECK(*r10_ == 1);
        }
        {
            auto r11_ = co_await q.pop();
            CHECK(*r11_ == 2);
        }
        {
            auto r12_ = co_await tether::move_on_after(1s, q.join());
            CHECK_FALSE(r12_); // get alone does not count
        }
        q.task_done();
        {
            auto r13_ = co_await tether::move_on_after(1s, q.join());
            CHECK_FALSE(r13_);
        }
        q.task_done();
        {
            auto r14_ = co_await tether::move_on_after(1s, q.join());
            CHECK(r14_);
        }
    });
}

TEST_CASE("Q-15 task_done called too many times is a usage_error and changes nothing",
          "[bounded_queue][Q-15]") {
    run_test([]() -> task<void> {
        int_queue q(2);
        CHECK_THROWS_AS(q.task_done(), usage_error);
        CHECK_THROWS_WITH(q.task_done(), Catch::Matchers::ContainsSubstring("pop_tracked"));
        co_await q.push(1);
        // A buffered item has not been popped: it cannot be done yet.
        CHECK_THROWS_AS(q.task_done(), usage_error);
        {
            auto r15_ = co_await q.pop();
            CHECK(*r15_ == 1);
        }
        q.task_done();
        co_await q.join();
    });
}

TEST_CASE("Q-14 join waiters all wake when the last item is done", "[bounded_queue][Q-14]") {
    run_test([]() -> task<void> {
        int_queue q(2);
        co_await q.push(1);
        bool j1 = false, j2 = false;
        auto body = [&](task_group& tg) -> task<void> {
            tg.spawn(join_op(q, j1));
            tg.spawn(join_op(q, j2));
            co_await ticks(1);
            CHECK_FALSE(j1);
            (void)co_await q.pop();
            q.task_done();
            co_await ticks(1);
            CHECK(j1);
            CHECK(j2);
        };
        co_await tether::with_task_group(body);
    });
}

TEST_CASE("a cancelled join leaves the other joiners and the count intact",
          "[bounded_queue][Q-14][cancellation]") {
    run_test([]() -> task<void> {
        int_queue q(2);
        co_await q.push(1);
        bool j1 = false, j2 = false;
        auto body = [&](task_group& tg) -> task<void> {
            auto h1 = tg.spawn(join_op(q, j1));
            tg.spawn(join_op(q, j2));
            co_await ticks(1);
            h1.cancel();
            co_await ticks(1);
            (void)co_await q.pop();
            q.task_done();
        };
        co_await tether::with_task_group(body);
        CHECK_FALSE(j1);
        CHECK(j2);
    });
}

// ---------------------------------------------------------------------------
// close / close_and_discard

TEST_CASE("Q-16 graceful close drains the buffer, fails pushes, keeps join honest",
          "[bounded_queue][Q-16][close]") {
    run_test([]() -> task<void> {
        bounded_queue<std::string> q(1);
        co_await q.push("data");
        bool joined = false;
        bool put_failed = false;
        auto joiner = [&]() -> task<void> {
            co_await q.join();
            joined = true;
        };
        auto putter = [&]() -> task<void> {
            try {
                co_await q.push("data2");
            } catch (const queue_closed&) {
                put_failed = true;
            }
        };
        auto body = [&](task_group& tg) -> task<void> {
            tg.spawn(joiner());
            tg.spawn(putter());
            co_await ticks(1);
            q.close();
            CHECK(q.closed());
            co_await ticks(1);
            CHECK(put_failed); // "data2" was not enqueued
            CHECK(q.size() == 1);
            {
                auto r16_ = co_await q.pop();
                CHECK(*r16_ == "data");
            }
            co_await ticks(1);
            CHECK_FALSE(joined);
            {
                auto r0_ = co_await push_fails_closed(q, std::string("late"));
                CHECK(r0_);
            }
            CHECK_THROWS_AS((void)q.try_push(std::string("late")), queue_closed);
            {
                auto r17_ = co_await q.pop();
                CHECK_FALSE((r17_).has_value()); // the end, at once
            }
            CHECK_FALSE(q.try_pop().has_value());
            q.task_done();
            co_await ticks(1);
            CHECK(joined);
            CHECK_THROWS_AS(q.task_done(), usage_error);
        };
        co_await tether::with_task_group(body);
    });
}

TEST_CASE("Q-17 close wakes every waiting getter; a second close is a no-op",
          "[bounded_queue][Q-17][close]") {
    run_test([]() -> task<void> {
        int_queue q(2);
        op_log g1, g2, g3;
        bool joined = false;
        auto body = [&](task_group& tg) -> task<void> {
            tg.spawn(pop_op(q, g1));
            tg.spawn(pop_op(q, g2));
            tg.spawn(pop_op(q, g3));
            tg.spawn(join_op(q, joined));
            co_await ticks(1);
            q.close();
            q.close();
            co_return;
        };
        co_await tether::with_task_group(body);
        for (op_log* g : {&g1, &g2, &g3}) {
            CHECK(g->completed);
            CHECK_FALSE(g->value.has_value());
        }
        CHECK(joined);
    });
}

TEST_CASE("Q-18 close_and_discard drops buffered items and releases join",
          "[bounded_queue][Q-18][close]") {
    run_test([]() -> task<void> {
        bounded_queue<std::string> q(4);
        co_await q.push("data");
        bool joined = false;
        auto joiner = [&]() -> task<void> {
            co_await q.join();
            joined = true;
        };
        auto body = [&](task_group& tg) -> task<void> {
            tg.spawn(joiner());
            co_await ticks(1);
            q.close_and_discard();
            CHECK(q.size() == 0);
            co_await ticks(1);
            CHECK(joined);
            {
                auto r1_ = co_await push_fails_closed(q, std::string("x"));
                CHECK(r1_);
            }
            {
                auto r18_ = co_await q.pop();
                CHECK_FALSE((r18_).has_value());
            }
            CHECK_THROWS_AS(q.task_done(), usage_error);
        };
        co_await tether::with_task_group(body);
    });
}

TEST_CASE("Q-18 close_and_discard keeps counting items already popped",
          "[bounded_queue][Q-18][close]") {
    run_test([]() -> task<void> {
        int_queue q(4);
        co_await q.push(1);
        co_await q.push(2);
        {
            auto r19_ = co_await q.pop();
            CHECK(*r19_ == 1); // popped, not yet done
        }
        bool joined = false;
        auto body = [&](task_group& tg) -> task<void> {
            tg.spawn(join_op(q, joined));
            co_await ticks(1);
            q.close_and_discard();
            co_await ticks(1);
            CHECK_FALSE(joined);
            q.task_done();
            co_await ticks(1);
            CHECK(joined);
            CHECK_THROWS_AS(q.task_done(), usage_error);
            q.close_and_discard(); // idempotent
        };
        co_await tether::with_task_group(body);
    });
}

TEST_CASE("close_and_discard wakes blocked pushers with queue_closed and getters with the end",
          "[bounded_queue][close]") {
    run_test([]() -> task<void> {
        int_queue full(1);
        REQUIRE(full.try_push(1));
        int_queue empty(1);
        op_log p, g;
        auto body = [&](task_group& tg) -> task<void> {
            tg.spawn(push_op(full, 2, p));
            tg.spawn(pop_op(empty, g));
            co_await ticks(1);
            full.close_and_discard();
            empty.close_and_discard();
            co_return;
        };
        co_await tether::with_task_group(body);
        CHECK(p.closed);
        CHECK(g.completed);
        CHECK_FALSE(g.value);
        CHECK(full.empty());
    });
}

// ---------------------------------------------------------------------------
// Capacity 0: a rendezvous

TEST_CASE("capacity 0 is a rendezvous: push waits for a pop that takes the item from it",
          "[bounded_queue][rendezvous]") {
    run_test([]() -> task<void> {
        int_queue q(0);
        CHECK(q.capacity() == 0);
        CHECK(q.full());
        CHECK(q.empty());
        CHECK_FALSE(q.try_push(1)); // nobody waits to receive
        op_log p;
        auto body = [&](task_group& tg) -> task<void> {
            tg.spawn(push_op(q, 5, p));
            co_await ticks(2);
            CHECK_FALSE(p.completed); // still waiting for a receiver
            CHECK(q.size() == 0);
            {
                auto r20_ = co_await q.pop();
                CHECK(*r20_ == 5); // straight from the pusher
            }
            co_await ticks(1);
            CHECK(p.completed);
        };
        co_await tether::with_task_group(body);
    });
}

TEST_CASE("capacity 0: try_push succeeds only when a pop is waiting",
          "[bounded_queue][rendezvous]") {
    run_test([]() -> task<void> {
        int_queue q(0);
        op_log g;
        auto body = [&](task_group& tg) -> task<void> {
            tg.spawn(pop_op(q, g));
            co_await ticks(1);
            CHECK(q.try_push(9));
            CHECK_FALSE(q.try_push(10));
            co_return;
        };
        co_await tether::with_task_group(body);
        CHECK(g.value == 9);
        // join counts rendezvous items too.
        {
            auto r21_ = co_await tether::move_on_after(1s, q.join());
            CHECK_FALSE(r21_);
        }
        q.task_done();
        co_await q.join();
    });
}

TEST_CASE("capacity 0: pushers are served FIFO and close fails the waiting ones",
          "[bounded_queue][rendezvous][close]") {
    run_test([]() -> task<void> {
        int_queue q(0);
        op_log p1, p2, p3;
        auto body = [&](task_group& tg) -> task<void> {
            tg.spawn(push_op(q, 1, p1));
            tg.spawn(push_op(q, 2, p2));
            tg.spawn(push_op(q, 3, p3));
            co_await ticks(1);
            CHECK(*q.try_pop() == 1);
            {
                auto r22_ = co_await q.pop();
                CHECK(*r22_ == 2);
            }
            q.close();
            {
                auto r23_ = co_await q.pop();
                CHECK_FALSE((r23_).has_value());
            }
        };
        co_await tether::with_task_group(body);
        CHECK(p1.completed);
        CHECK(p2.completed);
        CHECK(p3.closed);
    });
}

// ---------------------------------------------------------------------------
// The matrix: buffered / unbuffered × fast path / suspended × cancelled
// before / after wake-up

TEST_CASE("matrix: pop in a cancelled scope throws at once and takes nothing",
          "[bounded_queue][matrix][cancellation]") {
    const std::size_t capacity = GENERATE(0u, 2u);
    CAPTURE(capacity);
    run_test([&]() -> task<void> {
        int_queue q(capacity);
        op_log p;
        auto body = [&](task_group& tg) -> task<void> {
            if (capacity == 0)
                tg.spawn(push_op(q, 7, p)); // an item is available from a pusher
            else
                REQUIRE(q.try_push(7)); // an item is buffered
            co_await ticks(1);
            bool threw = false;
            auto attempt = [&](cancel_scope& s) -> task<void> {
                s.cancel();
                try {
                    (void)co_await q.pop(); // the fast path would succeed
                } catch (const cancelled_error&) {
                    threw = true;
                    throw;
                }
            };
            {
                auto r24_ = co_await tether::with_cancel_scope(attempt);
                CHECK_FALSE(r24_);
            }
            CHECK(threw);
            CHECK(*q.try_pop() == 7); // still there
        };
        co_await tether::with_task_group(body);
    });
}

TEST_CASE("matrix: pop suspended and cancelled before wake-up did not happen",
          "[bounded_queue][matrix][cancellation]") {
    const std::size_t capacity = GENERATE(0u, 2u);
    CAPTURE(capacity);
    run_test([&]() -> task<void> {
        int_queue q(capacity);
        op_log g;
        auto body = [&](task_group& tg) -> task<void> {
            auto h = tg.spawn(pop_op(q, g));
            co_await ticks(1);
            h.cancel();
            // The waiter is gone: a push is not handed to it.
            if (capacity == 0) {
                CHECK_FALSE(q.try_push(7));
            } else {
                CHECK(q.try_push(7));
                CHECK(q.size() == 1);
            }
            co_return;
        };
        co_await tether::with_task_group(body);
        CHECK(g.cancelled);
        CHECK_FALSE(g.value);
    });
}

TEST_CASE("matrix: pop woken and then cancelled returns its item; the next point throws",
          "[bounded_queue][matrix][cancellation]") {
    const std::size_t capacity = GENERATE(0u, 2u);
    CAPTURE(capacity);
    run_test([&]() -> task<void> {
        int_queue q(capacity);
        op_log g;
        auto body = [&](task_group& tg) -> task<void> {
            auto h = tg.spawn(pop_op(q, g));
            co_await ticks(1);
            CHECK(q.try_push(7)); // handed to the waiting pop
            h.cancel();           // before it runs
            co_return;
        };
        co_await tether::with_task_group(body);
        CHECK(g.completed);
        CHECK(g.value == 7);
        CHECK(g.next_point_threw);
        CHECK(q.empty());
    });
}

TEST_CASE("matrix: push in a cancelled scope throws at once and puts nothing",
          "[bounded_queue][matrix][cancellation]") {
    const std::size_t capacity = GENERATE(0u, 2u);
    CAPTURE(capacity);
    run_test([&]() -> task<void> {
        int_queue q(capacity);
        op_log g;
        auto body = [&](task_group& tg) -> task<void> {
            if (capacity == 0) tg.spawn(pop_op(q, g)); // room: a waiting receiver
            co_await ticks(1);
            auto attempt = [&](cancel_scope& s) -> task<void> {
                s.cancel();
                co_await q.push(7); // the fast path would succeed
            };
            {
                auto r25_ = co_await tether::with_cancel_scope(attempt);
                CHECK_FALSE(r25_);
            }
            CHECK(q.size() == 0);
            if (capacity == 0) CHECK(q.try_push(8)); // the receiver still waits
        };
        co_await tether::with_task_group(body);
        if (capacity == 0) {
            CHECK(g.value == 8);
            q.task_done(); // for 8
        }
        CHECK_THROWS_AS(q.task_done(), usage_error); // the count never saw 7
    });
}

TEST_CASE("matrix: push suspended and cancelled before wake-up did not happen",
          "[bounded_queue][matrix][cancellation]") {
    const std::size_t capacity = GENERATE(0u, 2u);
    CAPTURE(capacity);
    run_test([&]() -> task<void> {
        int_queue q(capacity);
        for (std::size_t i = 0; i < capacity; ++i) REQUIRE(q.try_push(100 + static_cast<int>(i)));
        op_log p;
        auto body = [&](task_group& tg) -> task<void> {
            auto h = tg.spawn(push_op(q, 7, p));
            co_await ticks(1);
            h.cancel();
            std::vector<int> rest;
            while (auto v = q.try_pop()) rest.push_back(*v);
            CHECK(rest.size() == capacity); // 7 is not among them
            for (int v : rest) CHECK(v != 7);
            co_return;
        };
        co_await tether::with_task_group(body);
        CHECK(p.cancelled);
    });
}

TEST_CASE("matrix: push woken and then cancelled has put its item exactly once",
          "[bounded_queue][matrix][cancellation]") {
    const std::size_t capacity = GENERATE(0u, 2u);
    CAPTURE(capacity);
    run_test([&]() -> task<void> {
        int_queue q(capacity);
        for (std::size_t i = 0; i < capacity; ++i) REQUIRE(q.try_push(100 + static_cast<int>(i)));
        op_log p;
        std::vector<int> got;
        auto body = [&](task_group& tg) -> task<void> {
            auto h = tg.spawn(push_op(q, 7, p));
            co_await ticks(1);
            got.push_back(*q.try_pop()); // frees a slot (or takes 7 directly)
            h.cancel();
            co_return;
        };
        co_await tether::with_task_group(body);
        CHECK(p.completed);
        CHECK(p.next_point_threw);
        while (auto v = q.try_pop()) got.push_back(*v);
        std::vector<int> expected;
        for (std::size_t i = 0; i < capacity; ++i) expected.push_back(100 + static_cast<int>(i));
        expected.push_back(7);
        CHECK(got == expected);
    });
}

// ---------------------------------------------------------------------------
// pop_tracked: task_done that cannot be forgotten

TEST_CASE("pop_tracked marks each item done when it goes out of scope",
          "[bounded_queue][tracked]") {
    run_test([]() -> task<void> {
        int_queue q(int_queue::unbounded);
        long sum = 0;
        auto worker = [&]() -> task<void> {
            while (auto job = co_await q.pop_tracked()) {
                co_await tether::sleep_for(1ms);
                sum += *job; // no task_done(): the item does it
            }
        };
        auto body = [&](task_group& tg) -> task<void> {
            tg.spawn(worker());
            tg.spawn(worker());
            for (int i = 1; i <= 10; ++i) co_await q.push(i);
            co_await q.join();
            CHECK(sum == 55);
            q.close();
        };
        co_await tether::with_task_group(body);
    });
}

TEST_CASE("a tracked item is done once: on done(), on move, or at destruction",
          "[bounded_queue][tracked]") {
    run_test([]() -> task<void> {
        int_queue q(4);
        co_await q.push(1);
        co_await q.push(2);
        co_await q.push(3);
        {
            auto a = co_await q.pop_tracked();
            CHECK(a.pending());
            a.done();
            CHECK_FALSE(a.pending());
            CHECK(*a == 1); // still readable
            a.done();       // idempotent
            auto b = co_await q.pop_tracked();
            auto c = std::move(b); // the obligation moves with the item
            CHECK_FALSE(b.pending());
            CHECK(c.pending());
            CHECK(c.value() == 2);
            auto d = q.try_pop_tracked();
            CHECK(*d == 3);
            d = int_queue::tracked_item(); // assigning over marks the old item done
            {
                auto r26_ = co_await tether::move_on_after(1s, q.join());
                CHECK_FALSE(r26_); // c still pending
            }
        }
        co_await q.join();
        CHECK_THROWS_AS(q.task_done(), usage_error); // none counted twice
        q.close();
        auto end = co_await q.pop_tracked();
        CHECK_FALSE(end);
        CHECK_FALSE(end.pending());
        CHECK_FALSE(q.try_pop_tracked());
    });
}

TEST_CASE("a tracked item popped in a cancelled scope never existed",
          "[bounded_queue][tracked][cancellation]") {
    run_test([]() -> task<void> {
        int_queue q(2);
        co_await q.push(1);
        auto attempt = [&](cancel_scope& s) -> task<void> {
            s.cancel();
            auto item = co_await q.pop_tracked();
            FAIL("unreachable");
        };
        {
            auto r27_ = co_await tether::with_cancel_scope(attempt);
            CHECK_FALSE(r27_);
        }
        CHECK(q.size() == 1);
        auto item = co_await q.pop_tracked();
        CHECK(*item == 1);
    });
}

// ---------------------------------------------------------------------------
// Item types

TEST_CASE("move-only items pass through without copies or leaks", "[bounded_queue][types]") {
    counted::reset();
    run_test([]() -> task<void> {
        bounded_queue<std::unique_ptr<counted>> q(2);
        std::vector<int> got;
        auto consumer = [&]() -> task<void> {
            while (auto p = co_await q.pop()) got.push_back((*p)->value);
        };
        auto body = [&](task_group& tg) -> task<void> {
            tg.spawn(consumer());
            for (int i = 0; i < 10; ++i) co_await q.push(std::make_unique<counted>(i));
            auto item = std::make_unique<counted>(10);
            while (!q.try_push(std::move(item))) {
                CHECK(item); // a failed try_push leaves the item with the caller
                co_await tether::yield_now();
            }
            CHECK_FALSE(item);
            q.close();
        };
        co_await tether::with_task_group(body);
        CHECK(got == std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10});
    });
    CHECK(counted::live == 0);
    CHECK(counted::copies == 0);
}

TEST_CASE("buffered items are destroyed by close_and_discard and by the queue's destructor",
          "[bounded_queue][types]") {
    counted::reset();
    run_test([]() -> task<void> {
        {
            bounded_queue<counted> q(8);
            for (int i = 0; i < 5; ++i) co_await q.push(counted(i));
            CHECK(counted::live == 5);
            q.close_and_discard();
            CHECK(counted::live == 0);
        }
        {
            bounded_queue<counted> q(3);
            for (int i = 0; i < 3; ++i) co_await q.push(counted(i));
            (void)co_await q.pop();
            co_await q.push(counted(9)); // wraps around the ring
        }
        CHECK(counted::live == 0);
    });
    CHECK(counted::copies == 0);
}

TEST_CASE("a temporary std::string pushed under co_await is neither lost nor freed twice",
          "[bounded_queue][types][regression]") {
    // g++ 12 (PR 100611) destroys some co_await temporaries twice; the item
    // parameter of push() must survive it (run under ASan).
    run_test([]() -> task<void> {
        bounded_queue<std::string> q(2);
        co_await q.push(std::string(100, 'x'));
        co_await q.push("a string literal long enough to live on the heap, not in SSO");
        {
            auto r28_ = co_await q.pop();
            CHECK(*r28_ == std::string(100, 'x'));
        }
        {
            auto r29_ = co_await q.pop();
            CHECK(r29_ == "a string literal long enough to live on the heap, not in SSO");
        }
    });
}

namespace {
/// A payload whose move constructor throws if it is poisoned and moves are armed.
struct fragile {
    static inline bool armed = false;
    int v = 0;
    bool poison = false;
    explicit fragile(int x, bool p = false) : v(x), poison(p) {}
    fragile(const fragile&) = delete;
    fragile(fragile&& o) : v(o.v), poison(o.poison) {
        if (armed && poison) throw std::runtime_error("fragile move");
    }
    fragile& operator=(fragile&&) = default;
};

task<void> push_fragile(bounded_queue<fragile>& q, int v, bool poison, op_log& log) {
    try {
        co_await q.push(fragile(v, poison));
        log.completed = true;
    } catch (const std::runtime_error&) {
        log.closed = true; // here: "failed with the move's exception"
    }
}
} // namespace

TEST_CASE("an item whose move throws: the failing push or pop did not happen",
          "[bounded_queue][types]") {
    fragile::armed = false;
    run_test([]() -> task<void> {
        bounded_queue<fragile> q(2);
        REQUIRE(q.try_push(fragile(1, true)));
        fragile::armed = true;
        CHECK_THROWS_AS(q.try_pop(), std::runtime_error); // moving 1 out throws
        CHECK(q.size() == 1);
        fragile x(2, true);
        CHECK_THROWS_AS((void)q.try_push(std::move(x)), std::runtime_error);
        CHECK(q.size() == 1);
        CHECK(x.v == 2); // still the caller's
        fragile::armed = false;
        CHECK(q.try_pop()->v == 1);
        CHECK(q.empty());
        q.task_done();
        CHECK_THROWS_AS(q.task_done(), usage_error); // the failed push was never counted
        co_return;
    });
}

TEST_CASE("a pusher whose item cannot move into the freed slot fails; the next one gets it",
          "[bounded_queue][types]") {
    fragile::armed = false;
    run_test([]() -> task<void> {
        bounded_queue<fragile> q(1);
        REQUIRE(q.try_push(fragile(1)));
        op_log p2, p3;
        auto body = [&](task_group& tg) -> task<void> {
            tg.spawn(push_fragile(q, 2, true, p2));
            tg.spawn(push_fragile(q, 3, false, p3));
            co_await ticks(1);
            fragile::armed = true;
            auto first = q.try_pop(); // 1 moves out; P2's item cannot move in
            fragile::armed = false;
            REQUIRE(first);
            CHECK(first->v == 1);
            CHECK(q.size() == 1); // the slot went on to P3
            co_return;
        };
        co_await tether::with_task_group(body);
        CHECK(p2.closed); // P2's push threw the move's exception
        CHECK_FALSE(p2.completed);
        CHECK(p3.completed);
        CHECK(q.try_pop()->v == 3);
    });
}

// ---------------------------------------------------------------------------
// Fast paths and volume

TEST_CASE("ten million synchronous operations do not grow the stack", "[bounded_queue][stack]") {
    run_test([]() -> task<void> {
        int_queue q(16);
        long long sum = 0;
        for (int round = 0; round < 625'000; ++round) {
            for (int i = 0; i < 8; ++i) co_await q.push(i);
            for (int i = 0; i < 8; ++i) sum += *co_await q.pop();
        }
        CHECK(sum == 625'000LL * 28);
    });
}

TEST_CASE("many producers and consumers: every item exactly once, per-producer order kept",
          "[bounded_queue][stress]") {
    const std::size_t capacity = GENERATE(0u, 1u, 16u);
    CAPTURE(capacity);
    run_test([&]() -> task<void> {
        int_queue q(capacity);
        constexpr int producers = 4, consumers = 4, per = 2000;
        std::vector<std::vector<int>> seen(consumers);
        auto producer = [&](int id) -> task<void> {
            for (int i = 0; i < per; ++i) {
                co_await q.push(id * per + i);
                if (i % 7 == 0) co_await tether::yield_now();
            }
        };
        auto consumer = [&](std::size_t id) -> task<void> {
            while (auto v = co_await q.pop_tracked()) {
                seen[id].push_back(*v);
                if (*v % 5 == 0) co_await tether::yield_now();
            }
        };
        auto closer = [&]() -> task<void> {
            co_await tether::sleep_for(1ms); // after every producer finished
            co_await q.join();
            q.close();
        };
        auto body = [&](task_group& tg) -> task<void> {
            for (std::size_t c = 0; c < consumers; ++c) tg.spawn(consumer(c));
            for (int p = 0; p < producers; ++p) tg.spawn(producer(p));
            tg.spawn(closer());
            co_return;
        };
        co_await tether::with_task_group(body);
        std::vector<int> count(producers * per, 0);
        for (auto& s : seen) {
            std::vector<int> last(producers, -1);
            for (int v : s) {
                ++count[static_cast<std::size_t>(v)];
                const int p = v / per;
                CHECK(v > last[static_cast<std::size_t>(p)]); // FIFO per producer
                last[static_cast<std::size_t>(p)] = v;
            }
        }
        for (int c : count) REQUIRE(c == 1);
    });
}

// Tests for <tether/event.hpp>: a one-shot, level-triggered flag; waiting is a
// cancellation point and a cancelled wait leaves nothing behind.
#include <tether/event.hpp>

#include <tether/cancel_scope.hpp>
#include <tether/task_group.hpp>
#include <tether/timeout.hpp>

#include "support/catch.hpp"
#include "support/run.hpp"

#include <type_traits>
#include <vector>

using namespace std::chrono_literals;
using tether::cancel_scope;
using tether::cancelled_error;
using tether::event;
using tether::task;
using tether::task_group;
using tether_test::run_test;

static_assert(!std::is_copy_constructible_v<event>);
static_assert(!std::is_move_constructible_v<event>);
static_assert(std::is_nothrow_default_constructible_v<event>);

namespace {

task<void> ticks(int n) {
    for (int i = 0; i < n; ++i) co_await tether::yield_now();
}

struct wait_log {
    bool woke = false;
    bool cancelled = false;
    bool next_point_threw = false;
};

task<void> wait_op(event& e, wait_log& log, std::vector<int>* order = nullptr, int id = 0) {
    try {
        co_await e.wait();
        log.woke = true;
        if (order) order->push_back(id);
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

} // namespace

TEST_CASE("set wakes every waiter, oldest first", "[event]") {
    run_test([]() -> task<void> {
        event e;
        CHECK_FALSE(e.is_set());
        std::vector<int> order;
        wait_log w1, w2, w3;
        auto body = [&](task_group& tg) -> task<void> {
            tg.spawn(wait_op(e, w1, &order, 1));
            tg.spawn(wait_op(e, w2, &order, 2));
            tg.spawn(wait_op(e, w3, &order, 3));
            co_await ticks(2);
            CHECK(order.empty());
            e.set();
            CHECK(e.is_set());
            co_return;
        };
        co_await tether::with_task_group(body);
        CHECK(order == std::vector<int>{1, 2, 3});
    });
}

TEST_CASE("once set, wait returns at once, also after a later set", "[event]") {
    run_test([]() -> task<void> {
        event e;
        e.set();
        e.set(); // idempotent
        auto t0 = co_await tether::this_task::now();
        co_await e.wait();
        co_await e.wait();
        auto t1 = co_await tether::this_task::now();
        CHECK(t1 == t0);
        CHECK(e.is_set());
    });
}

TEST_CASE("wait is a cancellation point even when the event is set",
          "[event][matrix][cancellation]") {
    run_test([]() -> task<void> {
        event e;
        e.set();
        auto attempt = [&](cancel_scope& s) -> task<void> {
            s.cancel();
            co_await e.wait();
            FAIL("unreachable");
        };
        auto r = co_await tether::with_cancel_scope(attempt);
        CHECK_FALSE(r);
    });
}

TEST_CASE("a waiter cancelled before set leaves the others waiting and nothing behind",
          "[event][matrix][cancellation]") {
    run_test([]() -> task<void> {
        event e;
        wait_log w1, w2;
        auto body = [&](task_group& tg) -> task<void> {
            auto h1 = tg.spawn(wait_op(e, w1));
            tg.spawn(wait_op(e, w2));
            co_await ticks(1);
            h1.cancel();
            co_await ticks(1);
            CHECK(w1.cancelled);
            CHECK_FALSE(w2.woke);
            e.set();
        };
        co_await tether::with_task_group(body);
        CHECK_FALSE(w1.woke);
        CHECK(w2.woke);
    });
}

TEST_CASE("a waiter woken by set and then cancelled returns normally; its next point throws",
          "[event][matrix][cancellation]") {
    run_test([]() -> task<void> {
        event e;
        wait_log w;
        auto body = [&](task_group& tg) -> task<void> {
            auto h = tg.spawn(wait_op(e, w));
            co_await ticks(1);
            e.set();
            h.cancel(); // before the waiter runs
            co_return;
        };
        co_await tether::with_task_group(body);
        CHECK(w.woke);
        CHECK(w.next_point_threw);
    });
}

TEST_CASE("wait under a timeout: expires without the event, returns with it", "[event][timeout]") {
    run_test([]() -> task<void> {
        event e;
        auto r1 = co_await tether::move_on_after(100ms, e.wait());
        CHECK_FALSE(r1);
        auto setter = [&]() -> task<void> {
            co_await tether::sleep_for(50ms);
            e.set();
        };
        bool r2 = false;
        auto body = [&](task_group& tg) -> task<void> {
            tg.spawn(setter());
            r2 = co_await tether::move_on_after(100ms, e.wait());
        };
        co_await tether::with_task_group(body);
        CHECK(r2);
    });
}

TEST_CASE("an event starts a crowd together (a starting gun)", "[event]") {
    run_test([]() -> task<void> {
        event go;
        int started = 0;
        auto runner = [&]() -> task<void> {
            co_await go.wait();
            ++started;
        };
        auto body = [&](task_group& tg) -> task<void> {
            for (int i = 0; i < 100; ++i) tg.spawn(runner());
            co_await ticks(1);
            CHECK(started == 0);
            go.set();
            co_await ticks(1);
            CHECK(started == 100);
        };
        co_await tether::with_task_group(body);
    });
}

// Tests for <tether/task_group.hpp>: scenarios TG-01 … TG-19 of SEMANTICS.md,
// child<T> handles, task_group_error and its except* equivalent, frame lifetime.
#include <tether/task_group.hpp>

#include <tether/cancel_scope.hpp>
#include <tether/cancellation.hpp>
#include <tether/shield.hpp>
#include <tether/timeout.hpp>

#include "support/catch.hpp"
#include "support/run.hpp"

#include <chrono>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

using namespace std::chrono_literals;
using tether::cancel_scope;
using tether::cancelled_error;
using tether::child;
using tether::task;
using tether::task_group;
using tether::task_group_error;
using tether::usage_error;
using tether::with_task_group;
using tether_test::counted;
using tether_test::now_minus;
using tether_test::run_test;

namespace {

struct error_a : std::runtime_error {
    explicit error_a(int i = 0) : std::runtime_error("error_a " + std::to_string(i)), id(i) {}
    int id;
};
struct error_b : std::runtime_error {
    error_b() : std::runtime_error("error_b") {}
};

task<int> sleep_then(tether::clock::duration d, int v) {
    co_await tether::sleep_for(d);
    co_return v;
}

task<void> sleep_then_throw(tether::clock::duration d, int id = 0) {
    co_await tether::sleep_for(d);
    throw error_a(id);
}

task<void> throw_now(int id = 0) {
    throw error_a(id);
    co_return;
}

// Sleeps for `d`; counts a cancellation and rethrows it.
task<void> sleeper(tether::clock::duration d, int& cancelled) {
    try {
        co_await tether::sleep_for(d);
    } catch (const cancelled_error&) {
        ++cancelled;
        throw;
    }
}

task<void> forever(int& cancelled) {
    return sleeper(24h * 365, cancelled);
}

// Keeps a counted object in its frame: counted::live proves the frame is gone.
task<void> holds_counted(counted c, bool& ran) {
    ran = true;
    (void)c;
    co_await tether::sleep_for(1s);
}

task<void> no_op() {
    co_return;
}

} // namespace

static_assert(!std::is_copy_constructible_v<child<int>>);
static_assert(std::is_nothrow_move_constructible_v<child<int>>);
static_assert(std::is_nothrow_move_assignable_v<child<int>>);
static_assert(!std::is_copy_constructible_v<task_group>);
static_assert(!std::is_move_constructible_v<task_group>);
static_assert(std::is_base_of_v<std::exception, task_group_error>);
static_assert(std::is_nothrow_copy_constructible_v<task_group_error>);
static_assert(std::is_base_of_v<std::logic_error, usage_error>);

// --- TG-01 -------------------------------------------------------------------

TEST_CASE("TG-01 children's results; the body's end does not cancel children",
          "[task_group][TG-01]") {
    SECTION("body spawns both and waits at the group exit") {
        run_test([]() -> task<void> {
            const auto t0 = co_await tether::this_task::now();
            child<int> h1, h2;
            std::size_t size_after_first = 99;
            auto body = [&](task_group& tg) -> task<void> {
                h1 = tg.spawn(sleep_then(100ms, 42));
                h2 = tg.spawn(sleep_then(200ms, 11));
                CHECK(tg.size() == 2);
                co_await h1;
                size_after_first = tg.size(); // finished children leave the live set
            };
            co_await with_task_group(body);
            {
                auto awaited = co_await now_minus(t0);
                CHECK(awaited == 200ms);
            }
            CHECK(size_after_first == 1);
            REQUIRE(h1.done());
            REQUIRE(h2.done());
            CHECK(h1.result() == 42);
            CHECK(h2.result() == 11);
        });
    }
    SECTION("the second child is spawned after the body slept 0.15") {
        run_test([]() -> task<void> {
            const auto t0 = co_await tether::this_task::now();
            child<int> h1, h2;
            auto body = [&](task_group& tg) -> task<void> {
                h1 = tg.spawn(sleep_then(100ms, 42));
                co_await tether::sleep_for(150ms);
                h2 = tg.spawn(sleep_then(200ms, 11));
            };
            co_await with_task_group(body);
            {
                auto awaited = co_await now_minus(t0);
                CHECK(awaited == 350ms);
            }
            CHECK(h1.result() == 42);
            CHECK(h2.result() == 11);
        });
    }
    SECTION("the body returns a value at once; the group still waits for the children") {
        run_test([]() -> task<void> {
            const auto t0 = co_await tether::this_task::now();
            child<int> h1, h2;
            auto body = [&](task_group& tg) -> task<int> {
                h1 = tg.spawn(sleep_then(100ms, 42));
                h2 = tg.spawn(sleep_then(200ms, 11));
                co_return 7;
            };
            const int v = co_await with_task_group(body);
            CHECK(v == 7);
            {
                auto awaited = co_await now_minus(t0);
                CHECK(awaited == 200ms);
            }
            CHECK(h1.result() + h2.result() == 53);
        });
    }
}

// --- TG-02 -------------------------------------------------------------------

TEST_CASE("TG-02 cancelling one child does not affect the group", "[task_group][TG-02]") {
    run_test([]() -> task<void> {
        child<int> h1, h2;
        auto body = [&](task_group& tg) -> task<void> {
            h1 = tg.spawn(sleep_then(1s, 42));
            co_await tether::sleep_for(150ms);
            h1.cancel();
            h2 = tg.spawn(sleep_then(200ms, 11));
            co_await tether::yield_now(); // the body itself is not cancelled
        };
        co_await with_task_group(body);
        REQUIRE(h1.done());
        CHECK_THROWS_AS(h1.result(), cancelled_error);
        CHECK(h2.result() == 11);
        co_await tether::yield_now(); // nothing leaked out
    });
}

// --- TG-03 -------------------------------------------------------------------

TEST_CASE("TG-03 a child failure cancels its siblings and the body", "[task_group][TG-03]") {
    int foo2_cancelled = 0;
    int body_cancelled = 0;
    bool x_ran = false;
    std::optional<task_group_error> caught;
    run_test([&]() -> task<void> {
        child<void> foo2;
        auto body = [&](task_group& tg) -> task<void> {
            for (int i = 0; i < 3; ++i) tg.spawn(sleep_then_throw(100ms, i));
            foo2 = tg.spawn(sleeper(5s, foo2_cancelled));
            co_await sleeper(10s, body_cancelled);
        };
        try {
            co_await with_task_group(body);
            x_ran = true;
        } catch (const task_group_error& e) {
            caught = e;
        }
        REQUIRE(foo2.done());
        CHECK_THROWS_AS(foo2.result(), cancelled_error);
    });
    CHECK(foo2_cancelled == 1);
    CHECK(body_cancelled == 1);
    CHECK_FALSE(x_ran);
    REQUIRE(caught);
    REQUIRE(!caught->exceptions().empty());
    for (const auto& e : caught->exceptions()) CHECK_THROWS_AS(std::rethrow_exception(e), error_a);
    CHECK_FALSE(caught->contains<cancelled_error>());
}

// --- TG-04 -------------------------------------------------------------------

TEST_CASE("TG-04 one failure is still wrapped, with its identity preserved",
          "[task_group][TG-04]") {
    std::exception_ptr thrown;
    auto failing = [&]() -> task<void> {
        co_await tether::yield_now();
        thrown = std::make_exception_ptr(error_a(7));
        std::rethrow_exception(thrown);
    };
    run_test([&]() -> task<void> {
        auto body = [&](task_group& tg) -> task<void> {
            tg.spawn(failing());
            co_return;
        };
        try {
            co_await with_task_group(body);
            FAIL("no exception");
        } catch (const error_a&) {
            FAIL("a bare error escaped");
        } catch (const task_group_error& e) {
            REQUIRE(e.exceptions().size() == 1);
            CHECK(e.exceptions()[0] == thrown); // the same exception object
            CHECK(std::string(e.what()).find("error_a 7") != std::string::npos);
        }
    });
}

TEST_CASE("TG-04 two failures in the same tick are both kept", "[task_group][TG-04]") {
    run_test([]() -> task<void> {
        auto body = [](task_group& tg) -> task<void> {
            tg.spawn(sleep_then_throw(10ms, 1));
            tg.spawn([]() -> task<void> {
                co_await tether::sleep_for(10ms);
                throw error_b();
            }());
            co_return;
        };
        try {
            co_await with_task_group(body);
            FAIL("no exception");
        } catch (const task_group_error& e) {
            REQUIRE(e.exceptions().size() == 2);
            int a = 0, b = 0;
            for (const auto& x : e.exceptions()) {
                try {
                    std::rethrow_exception(x);
                } catch (const error_a&) {
                    ++a;
                } catch (const error_b&) {
                    ++b;
                }
            }
            CHECK(a == 1);
            CHECK(b == 1);
        }
    });
}

// --- TG-05 -------------------------------------------------------------------

TEST_CASE("TG-05 a body failure cancels the children", "[task_group][TG-05]") {
    SECTION("(a) the body fails after a sleep") {
        int cancelled = 0;
        run_test([&]() -> task<void> {
            std::exception_ptr thrown;
            child<void> c1, c2;
            auto body = [&](task_group& tg) -> task<void> {
                c1 = tg.spawn(sleeper(1s, cancelled));
                c2 = tg.spawn(sleeper(2s, cancelled));
                co_await tether::sleep_for(100ms);
                thrown = std::make_exception_ptr(error_a(5));
                std::rethrow_exception(thrown);
            };
            try {
                co_await with_task_group(body);
            } catch (const task_group_error& e) {
                REQUIRE(e.exceptions().size() == 1);
                CHECK(e.exceptions()[0] == thrown);
            }
            CHECK_THROWS_AS(c1.result(), cancelled_error);
            CHECK_THROWS_AS(c2.result(), cancelled_error);
        });
        CHECK(cancelled == 2);
    }
    SECTION("(b) the body fails before the children ran: none runs past its first "
            "cancellation point") {
        int passed = 0;
        auto child_fn = [&]() -> task<void> {
            co_await tether::yield_now();
            ++passed;
        };
        run_test([&]() -> task<void> {
            auto body = [&](task_group& tg) -> task<void> {
                tg.spawn(child_fn());
                tg.spawn(child_fn());
                throw error_a(1);
                co_return;
            };
            CHECK_THROWS_AS(co_await with_task_group(body), task_group_error);
        });
        CHECK(passed == 0);
    }
}

// --- TG-06 -------------------------------------------------------------------

TEST_CASE("TG-06 the body and a child both fail: both are kept", "[task_group][TG-06]") {
    run_test([]() -> task<void> {
        auto body = [](task_group& tg) -> task<void> {
            tg.spawn(sleep_then_throw(100ms, 1));
            bool cancelled = false;
            try {
                co_await tether::sleep_for(10s);
            } catch (const cancelled_error&) {
                cancelled = true;
            }
            if (cancelled) throw error_b(); // "finally: raise MyExc"
        };
        try {
            co_await with_task_group(body);
            FAIL("no exception");
        } catch (const task_group_error& e) {
            CHECK(e.exceptions().size() == 2);
            CHECK(e.contains<error_a>());
            CHECK(e.contains<error_b>());
        }
    });
}

// --- TG-07 / TG-08 / TG-09 / TG-10: external cancellation ------------------------

namespace {

// Runs `runner` under a cancellation source that a sibling cancels with reason
// "test" after `after`; returns what the runner ended with.
template <class Runner>
task<std::exception_ptr> cancel_externally(Runner& runner, tether::clock::duration after) {
    tether::cancellation_source src;
    std::exception_ptr outcome;
    auto killer = [&]() -> task<void> {
        co_await tether::sleep_for(after);
        src.request_cancel("test");
    };
    auto body = [&](task_group& tg) -> task<void> {
        tg.spawn(killer());
        try {
            co_await tether::with_cancellation(src.token(), runner());
        } catch (...) {
            outcome = std::current_exception();
        }
    };
    co_await with_task_group(body);
    co_return outcome;
}

} // namespace

TEST_CASE("TG-07 an external cancellation cancels body and children and passes through",
          "[task_group][TG-07]") {
    SECTION("with children") {
        int cancelled = 0;
        auto runner = [&]() -> task<void> {
            auto body = [&](task_group& tg) -> task<void> {
                for (int i = 0; i < 5; ++i) tg.spawn(sleeper(5s, cancelled));
                co_await sleeper(10s, cancelled);
            };
            co_await with_task_group(body);
            FAIL("unreachable");
        };
        std::exception_ptr e = run_test([&] { return cancel_externally(runner, 100ms); });
        CHECK(cancelled == 6);
        REQUIRE(e);
        try {
            std::rethrow_exception(e);
        } catch (const cancelled_error& c) {
            CHECK(c.reason() == "test");
        } catch (...) {
            FAIL("not a cancelled_error");
        }
    }
    SECTION("body only") {
        int cancelled = 0;
        auto runner = [&]() -> task<void> {
            auto body = [&](task_group&) -> task<void> { co_await sleeper(10s, cancelled); };
            co_await with_task_group(body);
        };
        std::exception_ptr e = run_test([&] { return cancel_externally(runner, 100ms); });
        CHECK(cancelled == 1);
        REQUIRE(e);
        CHECK_THROWS_AS(std::rethrow_exception(e), cancelled_error);
    }
    SECTION("the body already returned; children still sleeping") {
        int cancelled = 0;
        auto runner = [&]() -> task<void> {
            auto body = [&](task_group& tg) -> task<void> {
                for (int i = 0; i < 5; ++i) tg.spawn(sleeper(5s, cancelled));
                co_return;
            };
            co_await with_task_group(body);
            co_await tether::yield_now(); // the external cancellation surfaces here at the latest
        };
        std::exception_ptr e = run_test([&] { return cancel_externally(runner, 100ms); });
        CHECK(cancelled == 5);
        REQUIRE(e);
        CHECK_THROWS_AS(std::rethrow_exception(e), cancelled_error);
    }
}

TEST_CASE("TG-08 errors raised while cancelling win; the external cancel is not lost",
          "[task_group][TG-08]") {
    int groups = 0;
    int errors = 0;
    bool after_yield = false;
    auto failing_cleanup = []() -> task<void> {
        try {
            co_await tether::sleep_for(10s);
        } catch (...) {
            throw error_a(3); // "finally: raise"
        }
    };
    auto runner = [&]() -> task<void> {
        auto body = [&](task_group& tg) -> task<void> {
            for (int i = 0; i < 5; ++i) tg.spawn(failing_cleanup());
            co_await tether::sleep_for(10s);
        };
        try {
            co_await with_task_group(body);
        } catch (const task_group_error& e) {
            ++groups;
            errors = static_cast<int>(e.exceptions().size());
        }
        co_await tether::yield_now(); // still cancelled: throws
        after_yield = true;
    };
    std::exception_ptr e = run_test([&] { return cancel_externally(runner, 100ms); });
    CHECK(groups == 1);
    CHECK(errors == 5);
    CHECK_FALSE(after_yield);
    REQUIRE(e);
    CHECK_THROWS_AS(std::rethrow_exception(e), cancelled_error);
}

TEST_CASE("TG-09 the body turns its cancellation into another error", "[task_group][TG-09]") {
    auto runner = []() -> task<void> {
        auto body = [](task_group&) -> task<void> {
            bool cancelled = false;
            try {
                co_await tether::sleep_for(10s);
            } catch (const cancelled_error&) {
                cancelled = true;
            }
            if (cancelled) throw error_b();
        };
        co_await with_task_group(body);
    };
    std::exception_ptr e = run_test([&] { return cancel_externally(runner, 100ms); });
    REQUIRE(e);
    try {
        std::rethrow_exception(e);
    } catch (const task_group_error& g) {
        REQUIRE(g.exceptions().size() == 1);
        CHECK_THROWS_AS(std::rethrow_exception(g.exceptions()[0]), error_b);
    } catch (...) {
        FAIL("expected task_group_error");
    }
}

TEST_CASE("TG-10 a child error raised during its cancellation clean-up is reported, and the "
          "exit waits for that clean-up",
          "[task_group][TG-10]") {
    tether::clock::duration exit_at{};
    bool pending_cancel_seen = false;
    int group_errors = 0;
    auto slow_cleanup = []() -> task<void> {
        bool cancelled = false;
        try {
            co_await tether::sleep_for(10s);
        } catch (const cancelled_error&) {
            cancelled = true;
        }
        if (cancelled) {
            co_await tether::shield(tether::sleep_for(200ms));
            throw error_a(9);
        }
    };
    auto runner = [&]() -> task<void> {
        const auto t0 = co_await tether::this_task::now();
        auto body = [&](task_group& tg) -> task<void> {
            tg.spawn(slow_cleanup());
            co_await tether::sleep_for(10s);
        };
        try {
            co_await with_task_group(body);
        } catch (const task_group_error& e) {
            group_errors = static_cast<int>(e.exceptions().size());
            CHECK(e.contains<error_a>());
        }
        exit_at = co_await now_minus(t0);
        try {
            co_await tether::yield_now();
        } catch (const cancelled_error&) {
            pending_cancel_seen = true;
            throw;
        }
    };
    std::exception_ptr e = run_test([&] { return cancel_externally(runner, 100ms); });
    CHECK(exit_at == 300ms);
    CHECK(group_errors == 1);
    CHECK(pending_cancel_seen);
    REQUIRE(e);
    CHECK_THROWS_AS(std::rethrow_exception(e), cancelled_error);
}

// --- TG-11 -------------------------------------------------------------------

TEST_CASE("TG-11 the group's internal cancellation never leaks", "[task_group][TG-11]") {
    SECTION("(a) a child fails at once") {
        run_test([]() -> task<void> {
            auto body = [](task_group& tg) -> task<void> {
                tg.spawn(throw_now(1));
                co_await tether::sleep_for(1s);
            };
            CHECK_THROWS_AS(co_await with_task_group(body), task_group_error);
            co_await tether::yield_now(); // not cancelled
            co_await tether::sleep_for(1s);
        });
    }
    SECTION("(b) the body swallows the internal cancellation") {
        run_test([]() -> task<void> {
            auto body = [](task_group& tg) -> task<void> {
                tg.spawn(throw_now(1));
                try {
                    co_await tether::sleep_for(1s);
                } catch (const cancelled_error&) {
                }
            };
            try {
                co_await with_task_group(body);
                FAIL("no exception");
            } catch (const task_group_error& e) {
                CHECK(e.exceptions().size() == 1);
                CHECK(e.contains<error_a>());
            }
            co_await tether::yield_now();
        });
    }
    SECTION("(c) an awaited clean-up in the body fails while the cancellation unwinds it") {
        run_test([]() -> task<void> {
            auto cleanup = []() -> task<void> {
                co_await tether::sleep_for(10ms);
                throw error_a(2);
            };
            auto body = [&](task_group& tg) -> task<void> {
                tg.spawn(throw_now(1));
                bool cancelled = false;
                try {
                    co_await tether::sleep_for(1s);
                } catch (const cancelled_error&) {
                    cancelled = true;
                }
                if (cancelled) co_await tether::shield(cleanup()); // async __aexit__
            };
            try {
                co_await with_task_group(body);
                FAIL("no exception");
            } catch (const task_group_error& e) {
                REQUIRE(e.exceptions().size() == 2);
                int ids = 0;
                for (const auto& x : e.exceptions()) {
                    try {
                        std::rethrow_exception(x);
                    } catch (const error_a& a) {
                        ids += a.id;
                    }
                }
                CHECK(ids == 3);
            }
            co_await tether::yield_now();
        });
    }
}

// --- TG-12 / TG-13 / TG-14: nested groups ------------------------------------------

TEST_CASE("TG-12 an inner group's failure is nested in the outer one, not flattened",
          "[task_group][TG-12]") {
    int outer_child_cancelled = 0;
    run_test([&]() -> task<void> {
        std::exception_ptr inner_error;
        auto outer_body = [&](task_group& g1) -> task<void> {
            g1.spawn(sleeper(10s, outer_child_cancelled));
            auto inner_body = [](task_group& g2) -> task<void> {
                g2.spawn(sleep_then_throw(100ms, 4));
                co_await tether::sleep_for(10s);
            };
            try {
                co_await with_task_group(inner_body);
            } catch (...) {
                inner_error = std::current_exception();
                throw;
            }
        };
        try {
            co_await with_task_group(outer_body);
            FAIL("no exception");
        } catch (const task_group_error& outer) {
            REQUIRE(outer.exceptions().size() == 1);
            CHECK(outer.exceptions()[0] == inner_error);
            try {
                std::rethrow_exception(outer.exceptions()[0]);
            } catch (const task_group_error& inner) {
                REQUIRE(inner.exceptions().size() == 1);
                CHECK_THROWS_AS(std::rethrow_exception(inner.exceptions()[0]), error_a);
            }
            CHECK(outer.contains<error_a>()); // contains<> looks inside nested groups
        }
    });
    CHECK(outer_child_cancelled == 1);
}

TEST_CASE("TG-13 the outer child fails first; the inner group's cancellation is absorbed",
          "[task_group][TG-13]") {
    int inner_cancelled = 0;
    bool inner_saw_cancelled = false;
    run_test([&]() -> task<void> {
        auto outer_body = [&](task_group& g1) -> task<void> {
            g1.spawn(sleep_then_throw(100ms, 1));
            auto inner_body = [&](task_group& g2) -> task<void> {
                g2.spawn(sleeper(10s, inner_cancelled));
                co_await sleeper(10s, inner_cancelled);
            };
            try {
                co_await with_task_group(inner_body);
            } catch (const cancelled_error&) {
                inner_saw_cancelled = true;
                throw;
            }
        };
        try {
            co_await with_task_group(outer_body);
            FAIL("no exception");
        } catch (const task_group_error& e) {
            REQUIRE(e.exceptions().size() == 1); // no nested empty group, no cancelled member
            CHECK_THROWS_AS(std::rethrow_exception(e.exceptions()[0]), error_a);
        }
    });
    CHECK(inner_cancelled == 2);
    CHECK(inner_saw_cancelled);
}

TEST_CASE("TG-14 nested groups failing in the same tick; the outer cancellation survives the "
          "inner group",
          "[task_group][TG-14]") {
    bool inner_group_error = false;
    bool body_cancelled_after = false;
    run_test([&]() -> task<void> {
        auto outer_body = [&](task_group& outer) -> task<void> {
            auto inner_body = [&](task_group& inner) -> task<void> {
                inner.spawn(throw_now(1));
                outer.spawn(throw_now(2));
                co_await tether::sleep_for(1s);
            };
            try {
                co_await with_task_group(inner_body);
            } catch (const task_group_error& e) {
                inner_group_error = e.exceptions().size() == 1 && e.contains<error_a>();
                try {
                    std::rethrow_exception(e.exceptions()[0]);
                } catch (const error_a& a) {
                    CHECK(a.id == 1);
                }
            }
            try {
                co_await tether::yield_now(); // still cancelled by the outer group
            } catch (const cancelled_error&) {
                body_cancelled_after = true;
                throw;
            }
        };
        try {
            co_await with_task_group(outer_body);
            FAIL("no exception");
        } catch (const task_group_error& e) {
            REQUIRE(e.exceptions().size() == 1);
            try {
                std::rethrow_exception(e.exceptions()[0]);
            } catch (const error_a& a) {
                CHECK(a.id == 2);
            }
        }
        co_await tether::yield_now(); // nothing pending afterwards
    });
    CHECK(inner_group_error);
    CHECK(body_cancelled_after);
}

// --- TG-15 / TG-16 / TG-17: spawning ------------------------------------------------

TEST_CASE("TG-15 spawning into a failing group is refused and the task never runs",
          "[task_group][TG-15]") {
    counted::reset();
    bool ran = false;
    bool refused = false;
    std::string message;
    run_test([&]() -> task<void> {
        auto child2 = [&](task_group& tg) -> task<void> {
            bool cancelled = false;
            try {
                co_await tether::sleep_for(1s);
            } catch (const cancelled_error&) {
                cancelled = true;
            }
            if (cancelled) {
                try {
                    tg.spawn(holds_counted(counted(1), ran));
                } catch (const usage_error& e) {
                    refused = true;
                    message = e.what();
                }
                CHECK(counted::live == 0); // the frame is already gone
            }
        };
        auto body = [&](task_group& tg) -> task<void> {
            tg.spawn(sleep_then_throw(1ms, 1));
            tg.spawn(child2(tg));
            co_return;
        };
        try {
            co_await with_task_group(body);
            FAIL("no exception");
        } catch (const task_group_error& e) {
            CHECK(e.exceptions().size() == 1);
            CHECK(e.contains<error_a>());
        }
    });
    CHECK(refused);
    CHECK_FALSE(ran);
    CHECK(message.find("shutting down") != std::string::npos);
    CHECK(counted::live == 0);
}

TEST_CASE("TG-15 spawning after tg.cancel() is refused", "[task_group][TG-15]") {
    counted::reset();
    bool ran = false;
    run_test([&]() -> task<void> {
        auto body = [&](task_group& tg) -> task<void> {
            tg.cancel();
            CHECK(tg.cancel_called());
            CHECK_THROWS_AS(tg.spawn(holds_counted(counted(1), ran)), usage_error);
            co_return;
        };
        co_await with_task_group(body);
    });
    CHECK_FALSE(ran);
    CHECK(counted::live == 0);
}

TEST_CASE("TG-16 spawning while the group is joining is allowed", "[task_group][TG-16]") {
    SECTION("late spawns from a child") {
        run_test([]() -> task<void> {
            const auto t0 = co_await tether::this_task::now();
            int done = 0;
            auto leaf = [&]() -> task<void> {
                co_await tether::sleep_for(100ms);
                ++done;
            };
            auto root = [&](task_group& tg) -> task<void> {
                co_await tether::sleep_for(100ms);
                tg.spawn(leaf());
                tg.spawn(leaf());
            };
            auto body = [&](task_group& tg) -> task<void> {
                tg.spawn(root(tg));
                co_return; // the body ends at once; the group is joining
            };
            co_await with_task_group(body);
            CHECK(done == 2);
            {
                auto awaited = co_await now_minus(t0);
                CHECK(awaited == 200ms);
            }
        });
    }
    SECTION("hydra: every child spawns two more until a sibling fails") {
        int spawned = 0;
        run_test([&]() -> task<void> {
            struct hydra_fn {
                int& spawned;
                task<void> operator()(task_group& tg) const {
                    co_await tether::yield_now();
                    for (int i = 0; i < 2; ++i) {
                        tg.spawn((*this)(tg));
                        ++spawned;
                    }
                }
            };
            hydra_fn hydra{spawned};
            auto hercules = [&]() -> task<void> {
                while (spawned < 10) co_await tether::yield_now();
                throw error_a(10);
            };
            auto body = [&](task_group& tg) -> task<void> {
                tg.spawn(hydra(tg));
                tg.spawn(hercules());
                co_return;
            };
            try {
                co_await with_task_group(body);
                FAIL("no exception");
            } catch (const task_group_error& e) {
                REQUIRE(e.exceptions().size() == 1);
                CHECK(e.contains<error_a>());
            }
        });
        CHECK(spawned >= 10);
    }
}

TEST_CASE("TG-17 misuse: spawning an empty task; entering twice is impossible by construction",
          "[task_group][TG-17]") {
    // A group is opened by a call (with_task_group) and lives only while it runs,
    // so "spawn before entry", "enter twice" and "enter outside a task" cannot be
    // written; spawning a moved-from task is the misuse left.
    run_test([]() -> task<void> {
        auto body = [](task_group& tg) -> task<void> {
            task<void> t = no_op();
            task<void> moved = std::move(t);
            CHECK_THROWS_AS(tg.spawn(std::move(t)), usage_error);
            tg.spawn(std::move(moved));
            co_return;
        };
        co_await with_task_group(body);
        auto empty_body = [](task_group&) -> task<void> { return task<void>(); };
        CHECK_THROWS_AS(co_await with_task_group(empty_body), usage_error);
    });
}

// --- TG-18 / TG-19 --------------------------------------------------------------

TEST_CASE("TG-18 a child that spawns a failing sibling is itself cancelled",
          "[task_group][TG-18]") {
    bool ran = false;
    run_test([&]() -> task<void> {
        auto second = [&](task_group& tg) -> task<void> {
            tg.spawn(throw_now(3));
            try {
                co_await tether::yield_now();
                co_await tether::yield_now();
            } catch (const cancelled_error&) {
                ran = true;
            }
        };
        auto body = [&](task_group& tg) -> task<void> {
            tg.spawn(second(tg));
            co_return;
        };
        try {
            co_await with_task_group(body);
            FAIL("no exception");
        } catch (const task_group_error& e) {
            REQUIRE(e.exceptions().size() == 1);
            CHECK(e.contains<error_a>());
        }
    });
    CHECK(ran);
}

TEST_CASE("TG-19 tg.cancel() cancels every descendant and the group ends normally",
          "[task_group][TG-19]") {
    SECTION("children and grandchildren; cancel called twice") {
        int cancelled = 0;
        bool after = false;
        run_test([&]() -> task<void> {
            auto nested = [&]() -> task<void> {
                auto inner = [&](task_group& g2) -> task<void> {
                    g2.spawn(forever(cancelled));
                    co_await forever(cancelled);
                };
                co_await with_task_group(inner);
            };
            auto body = [&](task_group& tg) -> task<void> {
                tg.spawn(forever(cancelled));
                tg.spawn(nested());
                co_await tether::sleep_for(10ms);
                tg.cancel();
                tg.cancel(); // idempotent
                co_await forever(cancelled);
            };
            co_await with_task_group(body);
            co_await tether::yield_now();
            after = true;
        });
        CHECK(cancelled == 4);
        CHECK(after);
    }
    SECTION("cancel from a child while the body waits") {
        run_test([]() -> task<void> {
            int cancelled = 0;
            auto canceller = [](task_group& tg) -> task<void> {
                co_await tether::sleep_for(10ms);
                tg.cancel();
            };
            auto body = [&](task_group& tg) -> task<void> {
                tg.spawn(canceller(tg));
                co_await forever(cancelled);
            };
            co_await with_task_group(body);
            CHECK(cancelled == 1);
        });
    }
    SECTION("an enclosing timeout that fires meanwhile still propagates") {
        run_test([]() -> task<void> {
            int cancelled = 0;
            auto canceller = [](task_group& tg) -> task<void> {
                co_await tether::shield(tether::sleep_for(10ms)); // same instant as the timeout
                tg.cancel();
            };
            auto body = [&](task_group& tg) -> task<void> {
                tg.spawn(canceller(tg));
                co_await forever(cancelled);
            };
            CHECK_THROWS_AS(co_await tether::with_timeout(10ms, with_task_group(body)),
                            tether::timeout_error);
            CHECK(cancelled == 1);
        });
    }
    SECTION("an external cancellation during tg.cancel() is not swallowed") {
        auto runner = []() -> task<void> {
            auto body = [](task_group& tg) -> task<void> {
                int ignored = 0;
                tg.spawn(forever(ignored));
                co_await tether::sleep_for(10ms);
                tg.cancel();
                co_await tether::shield(tether::sleep_for(100ms)); // cancelled externally at 50ms
                co_await tether::yield_now();
            };
            co_await with_task_group(body);
        };
        std::exception_ptr e = run_test([&] { return cancel_externally(runner, 50ms); });
        REQUIRE(e);
        CHECK_THROWS_AS(std::rethrow_exception(e), cancelled_error);
    }
    SECTION("a body that returns a value and is ended by tg.cancel() has none to return") {
        run_test([]() -> task<void> {
            auto body = [](task_group& tg) -> task<int> {
                tg.cancel();
                co_await tether::yield_now();
                co_return 1;
            };
            CHECK_THROWS_AS(co_await with_task_group(body), cancelled_error);
            co_await tether::yield_now(); // and it is not cancelled
            auto fallback = [](task_group& tg) -> task<int> {
                tg.cancel();
                try {
                    co_await tether::yield_now();
                } catch (const cancelled_error&) {
                    co_return -1;
                }
                co_return 1;
            };
            {
                auto awaited = co_await with_task_group(fallback);
                CHECK(awaited == -1);
            }
        });
    }
}

// --- child<T> handles -------------------------------------------------------------

TEST_CASE("a dropped handle does not keep the frame alive", "[task_group][child]") {
    counted::reset();
    run_test([]() -> task<void> {
        bool ran1 = false, ran2 = false;
        int live_midway = -1;
        auto body = [&](task_group& tg) -> task<void> {
            tg.spawn(holds_counted(counted(1), ran1)); // handle dropped at once
            {
                child<void> kept = tg.spawn(holds_counted(counted(2), ran2));
                CHECK(counted::live == 2);
            } // dropped while running
            co_await tether::sleep_for(2s);
            live_midway = counted::live; // both ended and freed their frames
        };
        co_await with_task_group(body);
        CHECK(ran1);
        CHECK(ran2);
        CHECK(live_midway == 0);
    });
    CHECK(counted::live == 0);
}

TEST_CASE("a handle keeps a finished child's result after the group ended", "[task_group][child]") {
    counted::reset();
    run_test([]() -> task<void> {
        child<counted> h;
        auto make = []() -> task<counted> {
            co_await tether::yield_now();
            co_return counted(5);
        };
        auto body = [&](task_group& tg) -> task<void> {
            h = tg.spawn(make());
            co_return;
        };
        co_await with_task_group(body);
        REQUIRE(h.done());
        CHECK(h.result().value == 5);
        CHECK(counted::live == 1);
        counted moved = std::move(h).result();
        CHECK(moved.value == 5);
        h = child<counted>(); // releases the frame
        CHECK(counted::live == 1);
    });
    CHECK(counted::live == 0);
    CHECK(counted::copies == 0);
}

TEST_CASE("co_await on a child handle", "[task_group][child]") {
    run_test([]() -> task<void> {
        auto body = [](task_group& tg) -> task<void> {
            child<int> a = tg.spawn(sleep_then(10ms, 1));
            child<int> b = tg.spawn(sleep_then(5ms, 2));
            int& ra = co_await a; // a reference to the value held by the handle
            CHECK(ra == 1);
            CHECK(&ra == &a.result());
            {
                auto awaited = co_await std::move(b);
                CHECK(awaited == 2);
            } // finished already: no suspension
            child<void> f = tg.spawn(throw_now(8));
            try {
                co_await f;
                FAIL("no exception");
            } catch (const error_a& e) {
                CHECK(e.id == 8); // the child's own exception
            }
        };
        CHECK_THROWS_AS(co_await with_task_group(body), task_group_error);
    });
}

TEST_CASE("result() before the child finished is a usage_error", "[task_group][child]") {
    run_test([]() -> task<void> {
        auto body = [](task_group& tg) -> task<void> {
            child<int> a = tg.spawn(sleep_then(10ms, 1));
            CHECK_FALSE(a.done());
            CHECK_THROWS_AS(a.result(), usage_error);
            child<int> empty;
            CHECK_THROWS_AS(empty.result(), usage_error);
            CHECK_THROWS_AS(co_await empty, usage_error);
            co_return;
        };
        co_await with_task_group(body);
    });
}

TEST_CASE("a moved handle still receives its child's completion", "[task_group][child]") {
    run_test([]() -> task<void> {
        std::vector<child<int>> handles;
        auto body = [&](task_group& tg) -> task<void> {
            for (int i = 0; i < 20; ++i) handles.push_back(tg.spawn(sleep_then(1ms * i, i)));
            co_return; // the vector reallocates: each handle moves while its child runs
        };
        co_await with_task_group(body);
        for (int i = 0; i < 20; ++i) CHECK(handles[static_cast<std::size_t>(i)].result() == i);
    });
}

TEST_CASE("cancelling one child cancels its nested group too, and nothing else",
          "[task_group][child]") {
    int grand_cancelled = 0;
    int sibling_cancelled = 0;
    run_test([&]() -> task<void> {
        auto parent_child = [&]() -> task<int> {
            auto inner = [&](task_group& g2) -> task<void> {
                g2.spawn(forever(grand_cancelled));
                g2.spawn(forever(grand_cancelled));
                co_await tether::with_timeout(1h, tether::sleep_for(2h)); // nested scope
            };
            bool cancelled = false;
            try {
                co_await with_task_group(inner);
            } catch (const cancelled_error&) {
                cancelled = true;
            }
            // Level-triggered: the handle's cancellation outlives the nested group.
            if (cancelled) co_await tether::yield_now();
            co_return 1;
        };
        auto body = [&](task_group& tg) -> task<void> {
            child<int> victim = tg.spawn(parent_child());
            child<int> sibling = tg.spawn(sleep_then(50ms, 2));
            tg.spawn(sleeper(50ms, sibling_cancelled));
            co_await tether::sleep_for(10ms);
            victim.cancel();
            victim.cancel(); // no effect the second time
            CHECK_THROWS_AS(co_await victim, cancelled_error);
            {
                auto awaited = co_await sibling;
                CHECK(awaited == 2);
            }
        };
        co_await with_task_group(body);
    });
    CHECK(grand_cancelled == 2);
    CHECK(sibling_cancelled == 0);
}

TEST_CASE("cancelling a child before it started", "[task_group][child]") {
    int passed = 0;
    run_test([&]() -> task<void> {
        auto c = [&]() -> task<void> {
            co_await tether::yield_now();
            ++passed;
        };
        auto body = [&](task_group& tg) -> task<void> {
            child<void> h = tg.spawn(c());
            h.cancel();
            CHECK_THROWS_AS(co_await h, cancelled_error);
            tg.spawn(c()); // the group is not cancelled
        };
        co_await with_task_group(body);
    });
    CHECK(passed == 1);
}

TEST_CASE("cancelling a finished child has no effect", "[task_group][child]") {
    run_test([]() -> task<void> {
        auto body = [](task_group& tg) -> task<void> {
            child<int> h = tg.spawn(sleep_then(1ms, 3));
            co_await tether::sleep_for(5ms);
            h.cancel();
            CHECK(h.result() == 3);
        };
        co_await with_task_group(body);
    });
}

TEST_CASE("a cancelled wait on a child leaves the child running (shield mode H)",
          "[task_group][child][SH-01]") {
    run_test([]() -> task<void> {
        child<int> h;
        bool waiter_cancelled = false;
        auto body = [&](task_group& tg) -> task<void> {
            h = tg.spawn(sleep_then(100ms, 42));
            auto r = co_await tether::move_on_after(10ms, h);
            CHECK_FALSE(r);
            waiter_cancelled = true;
            CHECK_FALSE(h.done()); // still running under its group
        };
        co_await with_task_group(body);
        CHECK(waiter_cancelled);
        CHECK(h.result() == 42); // the group joined it
    });
}

TEST_CASE("a handle destroyed while another task awaits it", "[task_group][child]") {
    run_test([]() -> task<void> {
        std::optional<child<int>> h;
        bool got_usage_error = false;
        auto waiter = [&]() -> task<void> {
            try {
                co_await *h;
            } catch (const usage_error&) {
                got_usage_error = true;
            }
        };
        auto body = [&](task_group& tg) -> task<void> {
            h.emplace(tg.spawn(sleep_then(100ms, 1)));
            tg.spawn(waiter());
            co_await tether::sleep_for(10ms);
            h.reset();
        };
        co_await with_task_group(body);
        CHECK(got_usage_error);
    });
}

TEST_CASE("two tasks cannot await the same handle at once", "[task_group][child]") {
    run_test([]() -> task<void> {
        child<int> h;
        bool second_refused = false;
        auto waiter = [&](bool& refused) -> task<void> {
            try {
                co_await h;
            } catch (const usage_error&) {
                refused = true;
            }
        };
        bool first_refused = false;
        auto body = [&](task_group& tg) -> task<void> {
            h = tg.spawn(sleep_then(10ms, 1));
            tg.spawn(waiter(first_refused));
            tg.spawn(waiter(second_refused));
            co_return;
        };
        co_await with_task_group(body);
        CHECK_FALSE(first_refused);
        CHECK(second_refused);
    });
}

// --- failures after a caught cancellation -----------------------------------------

namespace {
struct throwing_destructor {
    bool armed = true;
    ~throwing_destructor() noexcept(false) {
        if (armed) throw error_b();
    }
};
} // namespace

TEST_CASE("errors raised by a child after it caught cancelled_error are reported",
          "[task_group][cancellation]") {
    run_test([]() -> task<void> {
        auto after_catch = []() -> task<void> {
            try {
                co_await tether::sleep_for(1h);
            } catch (const cancelled_error&) {
            }
            throw error_a(1);
        };
        auto destructor_throws = []() -> task<void> {
            bool cancelled = false;
            try {
                co_await tether::sleep_for(1h);
            } catch (const cancelled_error&) {
                cancelled = true;
            }
            if (cancelled) {
                throwing_destructor d; // throws when this block ends (not unwinding)
            }
        };
        auto body = [&](task_group& tg) -> task<void> {
            tg.spawn(after_catch());
            tg.spawn(destructor_throws());
            co_await tether::sleep_for(10ms);
            tg.cancel(); // the group's own cancellation, yet the errors are kept
        };
        try {
            co_await with_task_group(body);
            FAIL("no exception");
        } catch (const task_group_error& e) {
            CHECK(e.exceptions().size() == 2);
            CHECK(e.contains<error_a>());
            CHECK(e.contains<error_b>());
        }
    });
}

// --- task_group_error: except* --------------------------------------------------------

namespace {
task_group_error make_group(std::vector<std::exception_ptr> v) {
    return task_group_error(std::move(v));
}
} // namespace

TEST_CASE("task_group_error::handle is the except* of Python", "[task_group][errors]") {
    const auto a1 = std::make_exception_ptr(error_a(1));
    const auto a2 = std::make_exception_ptr(error_a(2));
    const auto b = std::make_exception_ptr(error_b());
    const auto t = std::make_exception_ptr(tether::timeout_error());
    const auto nested = std::make_exception_ptr(make_group({a2, t}));
    const task_group_error group = make_group({a1, b, nested});

    CHECK(group.contains<error_a>());
    CHECK(group.contains<tether::timeout_error>()); // inside the nested group
    CHECK(group.contains<std::runtime_error>());
    CHECK_FALSE(group.contains<cancelled_error>());

    // except* error_a: both error_a members are handled, also inside the nested group.
    std::vector<int> handled;
    std::optional<task_group_error> rest =
        group.handle<error_a>([&](error_a& e) { handled.push_back(e.id); });
    CHECK(handled == std::vector<int>{1, 2});
    REQUIRE(rest);
    REQUIRE(rest->exceptions().size() == 2);
    CHECK(rest->exceptions()[0] == b); // identity kept
    // The nested group lost its error_a: a new, smaller nested group with the same timeout_error.
    try {
        std::rethrow_exception(rest->exceptions()[1]);
    } catch (const task_group_error& inner) {
        REQUIRE(inner.exceptions().size() == 1);
        CHECK(inner.exceptions()[0] == t);
    }

    // except* timeout_error, then except* error_b: nothing is left.
    int timeouts = 0;
    rest = rest->handle<tether::timeout_error>([&](tether::timeout_error&) { ++timeouts; });
    REQUIRE(rest);
    rest = rest->handle<error_b>([](error_b&) {});
    CHECK_FALSE(rest);
    CHECK(timeouts == 1);

    // Nothing matches: the same group comes back (same members).
    auto same = group.handle<cancelled_error>([](cancelled_error&) {});
    REQUIRE(same);
    CHECK(same->exceptions() == group.exceptions());

    // handle<task_group_error> treats nested groups as members.
    int groups = 0;
    auto flat = group.handle<task_group_error>([&](task_group_error&) { ++groups; });
    CHECK(groups == 1);
    REQUIRE(flat);
    CHECK(flat->exceptions().size() == 2);
}

TEST_CASE("task_group_error::split returns both halves", "[task_group][errors]") {
    const auto a = std::make_exception_ptr(error_a(1));
    const auto b = std::make_exception_ptr(error_b());
    const auto nested_all_a = std::make_exception_ptr(make_group({a}));
    const task_group_error group = make_group({a, b, nested_all_a});
    auto [match, rest] = group.split<error_a>();
    REQUIRE(match);
    REQUIRE(rest);
    CHECK(match->exceptions() == std::vector<std::exception_ptr>{a, nested_all_a});
    CHECK(rest->exceptions() == std::vector<std::exception_ptr>{b});
    auto [none, all] = group.split<cancelled_error>();
    CHECK_FALSE(none);
    REQUIRE(all);
    CHECK(all->exceptions() == group.exceptions());
}

TEST_CASE("an except* handler can rethrow what is left", "[task_group][errors]") {
    // The example of task_group_error's documentation, end to end.
    int connection_errors = 0;
    run_test([&]() -> task<void> {
        auto body = [](task_group& tg) -> task<void> {
            tg.spawn(throw_now(1));
            tg.spawn([]() -> task<void> {
                throw error_b();
                co_return;
            }());
            co_return;
        };
        try {
            try {
                co_await with_task_group(body);
            } catch (const task_group_error& group) {
                auto rest = group.handle<error_a>([&](error_a&) { ++connection_errors; });
                if (rest) throw *rest;
            }
            FAIL("the rest was not rethrown");
        } catch (const task_group_error& rest) {
            REQUIRE(rest.exceptions().size() == 1);
            CHECK_THROWS_AS(std::rethrow_exception(rest.exceptions()[0]), error_b);
        }
    });
    CHECK(connection_errors == 1);
}

// --- misc ---------------------------------------------------------------------------

TEST_CASE("spawning a scope awaitable converts it into a child", "[task_group]") {
    run_test([]() -> task<void> {
        auto body = [](task_group& tg) -> task<void> {
            child<int> fast = tg.spawn(tether::with_timeout(1s, sleep_then(10ms, 1)));
            child<std::optional<int>> moved_on =
                tg.spawn(tether::move_on_after(10ms, sleep_then(1s, 3)));
            {
                auto awaited = co_await fast;
                CHECK(awaited == 1);
            }
            {
                auto awaited = co_await moved_on;
                CHECK_FALSE(awaited);
            }
            tg.spawn(tether::with_timeout(10ms, sleep_then(1s, 2))); // its timeout is a failure
        };
        try {
            co_await with_task_group(body);
            FAIL("no exception");
        } catch (const task_group_error& e) {
            REQUIRE(e.exceptions().size() == 1);
            CHECK_THROWS_AS(std::rethrow_exception(e.exceptions()[0]), tether::timeout_error);
        }
    });
}

TEST_CASE("children that never ran are destroyed without leaks", "[task_group][lifetime]") {
    counted::reset();
    bool ran = false;
    run_test([&]() -> task<void> {
        // A group whose body fails at once: children run at most to their first
        // cancellation point (D-10), and every frame is freed.
        auto body = [&](task_group& tg) -> task<void> {
            for (int i = 0; i < 10; ++i) tg.spawn(holds_counted(counted(i), ran));
            CHECK(counted::live == 10);
            throw error_a(0);
            co_return;
        };
        CHECK_THROWS_AS(co_await with_task_group(body), task_group_error);
        CHECK(counted::live == 0);
        // An awaitable that is never awaited destroys its body callable only.
        { auto unused = with_task_group(body); }
    });
    CHECK(counted::live == 0);
}

TEST_CASE("many groups completing synchronously do not grow the stack", "[task_group]") {
    run_test([]() -> task<void> {
        auto empty = [](task_group&) -> task<int> { co_return 1; };
        long sum = 0;
        for (int i = 0; i < 200000; ++i) sum += co_await with_task_group(empty);
        CHECK(sum == 200000);
        auto with_child = [](task_group& tg) -> task<void> {
            tg.spawn(no_op());
            co_return;
        };
        for (int i = 0; i < 20000; ++i) co_await with_task_group(with_child);
    });
}

TEST_CASE("a large fan-out joins every child", "[task_group]") {
    run_test([]() -> task<void> {
        int done = 0;
        auto c = [&]() -> task<void> {
            co_await tether::yield_now();
            ++done;
        };
        auto body = [&](task_group& tg) -> task<void> {
            for (int i = 0; i < 10000; ++i) tg.spawn(c());
            co_return;
        };
        co_await with_task_group(body);
        CHECK(done == 10000);
    });
}

// --- regressions ----------------------------------------------------------------------

TEST_CASE("an enclosing cancellation that ends the children while the group joins is not "
          "swallowed",
          "[task_group][cancellation][regression]") {
    run_test([]() -> task<void> {
        int cancelled = 0;
        bool group_threw = false;
        auto body = [&](task_group& tg) -> task<void> {
            tg.spawn(forever(cancelled));
            co_return; // the body is done: the group only joins
        };
        auto region = [&](cancel_scope& s) -> task<void> {
            s.reschedule(10ms);
            try {
                co_await with_task_group(body);
            } catch (const cancelled_error&) {
                group_threw = true;
                throw;
            }
            FAIL("with_task_group returned normally although its children were cancelled");
        };
        cancel_scope scope;
        const bool completed = co_await tether::with_cancel_scope(scope, region);
        CHECK_FALSE(completed);
        CHECK(group_threw);
        CHECK(cancelled == 1);
        CHECK(scope.cancelled_caught());
    });
}

TEST_CASE("a group opened inside a cancelled scope accepts children; they start cancelled",
          "[task_group][cancellation][regression]") {
    run_test([]() -> task<void> {
        int started = 0;
        int cancelled = 0;
        auto child_task = [&]() -> task<void> {
            ++started; // plain code before the first cancellation point runs
            try {
                co_await tether::yield_now();
            } catch (const cancelled_error&) {
                ++cancelled;
                throw;
            }
        };
        auto body = [&](task_group& tg) -> task<void> {
            tg.spawn(child_task()); // no usage_error: the group is not shutting down
            tg.spawn(child_task());
            co_return;
        };
        auto region = [&](cancel_scope& s) -> task<void> {
            s.cancel();
            co_await with_task_group(body);
        };
        const bool completed = co_await tether::with_cancel_scope(region);
        CHECK_FALSE(completed);
        CHECK(started == 2);
        CHECK(cancelled == 2);
    });
}

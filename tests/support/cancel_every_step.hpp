// tests/support/cancel_every_step.hpp — run a scenario once to count its steps,
// then again cancelling it at each step, checking its invariants after every run.
//
// A scenario is a default-constructible type with
//     tether::task<void> run();        // the work; lets cancelled_error through
//     void check(bool completed);      // invariants, after the run
// and a fresh object is made for every run. `completed` is false when the
// harness's cancellation ended the run (the cancel scope around run() absorbed
// it). Every run happens under run_test, which also fails on left-over tasks or
// deadlines.
//
//  - cancel_at_every_step<S>(name): for scenarios driven by the ready queue. A
//    reference run counts K, the rounds of the ready queue the scenario takes (a
//    sibling that yields once per round); then for k = 0 … K a sibling cancels the
//    scenario's scope from outside after k rounds. Scenarios must not sleep.
//  - cancel_at_every_instant<S>(name, grain): for scenarios driven by virtual
//    time. A reference run measures the duration D; then for every d = 0, grain/2,
//    grain, … D + grain the scenario is cancelled at t0 + d, once by a deadline
//    (move_on_after) and once from outside (a sibling that sleeps until then):
//    ties between the cancellation and the scenario's own timers are hit on
//    purpose.
// Both return the number of cancelled runs, for the report.
#pragma once

#include <tether/cancel_scope.hpp>
#include <tether/task.hpp>
#include <tether/task_group.hpp>
#include <tether/timeout.hpp>

#include "support/catch.hpp"
#include "support/run.hpp"

#include <cstdio>

namespace tether_test {

template <class Scenario>
int cancel_at_every_step(const char* name) {
    int rounds = 0;
    {
        Scenario s;
        run_test([&]() -> tether::task<void> {
            bool done = false;
            auto counter = [&]() -> tether::task<void> {
                while (!done) {
                    co_await tether::yield_now();
                    ++rounds;
                }
            };
            auto body = [&](tether::task_group& tg) -> tether::task<void> {
                tg.spawn(counter());
                const auto t0 = co_await tether::this_task::now();
                co_await s.run();
                const auto t1 = co_await tether::this_task::now();
                REQUIRE(t1 == t0); // a step scenario must not sleep
                done = true;
            };
            co_await tether::with_task_group(body);
        });
        INFO(name << ": the reference run");
        s.check(true);
    }
    REQUIRE(rounds > 0);
    int runs = 0;
    for (int k = 0; k <= rounds; ++k) {
        Scenario s;
        bool completed = false;
        run_test([&]() -> tether::task<void> {
            tether::cancel_scope scope;
            auto region = [&](tether::cancel_scope&) -> tether::task<void> { co_await s.run(); };
            auto canceller = [&]() -> tether::task<void> {
                for (int i = 0; i < k; ++i) co_await tether::yield_now();
                scope.cancel();
            };
            auto body = [&](tether::task_group& tg) -> tether::task<void> {
                tg.spawn(canceller());
                completed = co_await tether::with_cancel_scope(scope, region);
            };
            co_await tether::with_task_group(body);
        });
        INFO(name << ": cancelled from outside after " << k << " of " << rounds << " rounds");
        s.check(completed);
        ++runs;
    }
    std::printf("cancel_at_every_step: %s: %d rounds, %d cancelled runs\n", name, rounds, runs);
    return runs;
}

template <class Scenario>
int cancel_at_every_instant(const char* name, tether::clock::duration grain) {
    tether::clock::duration total{};
    {
        Scenario s;
        run_test([&]() -> tether::task<void> {
            const auto t0 = co_await tether::this_task::now();
            co_await s.run();
            total = (co_await tether::this_task::now()) - t0;
        });
        INFO(name << ": the reference run");
        s.check(true);
    }
    int runs = 0;
    const auto step = grain / 2;
    for (auto d = tether::clock::duration::zero(); d <= total + grain; d += step) {
        {
            Scenario s;
            bool completed = false;
            run_test([&]() -> tether::task<void> {
                completed = co_await tether::move_on_after(d, s.run());
            });
            INFO(name << ": a deadline at +" << d.count() << " ns of " << total.count());
            s.check(completed);
            ++runs;
        }
        {
            Scenario s;
            bool completed = false;
            run_test([&]() -> tether::task<void> {
                tether::cancel_scope scope;
                auto region = [&](tether::cancel_scope&) -> tether::task<void> {
                    co_await s.run();
                };
                auto canceller = [&]() -> tether::task<void> {
                    co_await tether::sleep_for(d);
                    scope.cancel();
                };
                auto body = [&](tether::task_group& tg) -> tether::task<void> {
                    tg.spawn(canceller());
                    completed = co_await tether::with_cancel_scope(scope, region);
                };
                co_await tether::with_task_group(body);
            });
            INFO(name << ": cancelled from outside at +" << d.count() << " ns of "
                      << total.count());
            s.check(completed);
            ++runs;
        }
    }
    std::printf("cancel_at_every_instant: %s: %lld ns, %d cancelled runs\n", name,
                static_cast<long long>(total.count()), runs);
    return runs;
}

} // namespace tether_test

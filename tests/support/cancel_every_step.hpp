// tests/support/cancel_every_step.hpp — run a scenario once to count its steps,
// then again cancelling it at each step, checking its invariants after every run.
//
// A scenario is a default-constructible type with
//     tether::task<void> run();        // the work; lets cancelled_error through
//     void check(bool completed);      // invariants, after the run
// and a fresh object is made for every run. `completed` is false when the
// harness's cancellation ended the run (the cancel scope around run() absorbed
// it). Every run happens on a fresh io_context with a virtual clock and also
// fails on left-over tasks or deadlines.
//
//  - cancel_at_every_step<S>(name): a reference run counts K, the resumptions of
//    tasks from the ready queue while the scenario runs (virtual_clock's
//    on_each_resumption seam); then for k = 1 … K the scenario is cancelled
//    right after the k-th resumption, once by cancel() and once by moving its
//    scope's deadline to now — at every suspension point, exactly.
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
#include <tether/testing/virtual_clock.hpp>
#include <tether/timeout.hpp>

#include "support/catch.hpp"
#include "support/run.hpp"

#include <cstdio>

namespace tether_test {

namespace detail {

// Counts resumptions; after the `cancel_at`-th, cancels `scope` (by cancel(), or
// by a deadline of now).
struct step_probe {
    long count = 0;
    long cancel_at = 0; // 0: never
    bool by_deadline = false;
    tether::cancel_scope* scope = nullptr;
    tether::testing::virtual_clock* clock = nullptr;

    static void after_resume(void* self) noexcept {
        auto& p = *static_cast<step_probe*>(self);
        if (++p.count != p.cancel_at || !p.scope) return;
        if (p.by_deadline) {
            p.scope->set_deadline(p.clock->now()); // already expired: cancels now
        } else {
            p.scope->cancel();
        }
    }
};

// Runs scenario `s` inside `scope` on a fresh io_context with a virtual clock and
// `probe` installed; returns true if the run completed (the scope did not absorb
// a cancellation).
template <class Scenario>
bool run_probed(Scenario& s, step_probe& probe) {
    asio::io_context io;
    tether::testing::virtual_clock clock(io);
    tether::cancel_scope scope;
    probe.scope = &scope;
    probe.clock = &clock;
    clock.on_each_resumption(&step_probe::after_resume, &probe);
    auto region = [&](tether::cancel_scope&) -> tether::task<void> { co_await s.run(); };
    auto body = [&]() -> tether::task<bool> {
        co_return co_await tether::with_cancel_scope(scope, region);
    };
    const bool completed = tether::run(io, body());
    clock.on_each_resumption(nullptr, nullptr);
    io.restart();
    io.poll();
    CHECK(tether::detail::scheduler_for(io).idle()); // no task or deadline left behind
    return completed;
}

} // namespace detail

template <class Scenario>
int cancel_at_every_step(const char* name) {
    long steps = 0;
    {
        Scenario s;
        detail::step_probe probe;
        const bool completed = detail::run_probed(s, probe);
        INFO(name << ": the reference run");
        REQUIRE(completed);
        s.check(true);
        steps = probe.count;
    }
    REQUIRE(steps > 0);
    int runs = 0;
    for (long k = 1; k <= steps; ++k) {
        for (const bool by_deadline : {false, true}) {
            Scenario s;
            detail::step_probe probe;
            probe.cancel_at = k;
            probe.by_deadline = by_deadline;
            const bool completed = detail::run_probed(s, probe);
            INFO(name << ": cancelled " << (by_deadline ? "by a deadline" : "from outside")
                      << " after resumption " << k << " of " << steps);
            s.check(completed);
            ++runs;
        }
    }
    std::printf("cancel_at_every_step: %s: %ld suspension points, %d cancelled runs\n", name, steps,
                runs);
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

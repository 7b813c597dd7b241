// Randomised interleavings (issue 8): seeded random pipelines — random queue
// capacities, numbers of producers and consumers, random yields between steps,
// random consumer cancellations and random deadlines — checked for the queue's
// invariants after every run: every accepted item is delivered or still
// buffered, exactly once, in FIFO order per producer; join() returns once every
// delivered item is done. A failure names its seed.
//
// CI runs a fixed set of seeds; TETHER_RANDOM_SEEDS=N runs N more, starting at
// TETHER_RANDOM_SEED_BASE (default: the time), e.g.
//   TETHER_RANDOM_SEEDS=10000 ./tests/random_schedule_test
#include <tether/bounded_queue.hpp>

#include <tether/cancel_scope.hpp>
#include <tether/semaphore.hpp>
#include <tether/task_group.hpp>
#include <tether/timeout.hpp>

#include "support/catch.hpp"
#include "support/run.hpp"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <random>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using tether::task;
using tether::task_group;
using tether::with_task_group;
using tether_test::run_test;

namespace {

// One seeded pipeline. All randomness comes from rng_, so a seed replays a run.
class random_pipeline {
public:
    explicit random_pipeline(std::uint64_t seed)
        : rng_(seed), q_(static_cast<std::size_t>(pick(0, 4))),
          sem_(static_cast<std::ptrdiff_t>(pick(1, 3))) {}

    task<void> run() {
        const int producers = pick(1, 4);
        const int consumers = pick(1, 4);
        items_each_ = pick(0, 12);
        auto make_producers = [&](task_group& tg) -> task<void> {
            for (int p = 0; p < producers; ++p) tg.spawn(producer(p));
            co_return;
        };
        auto body = [&](task_group& tg) -> task<void> {
            delivered_by_.resize(static_cast<std::size_t>(consumers) + 1);
            for (int c = 0; c < consumers; ++c)
                tg.spawn(consumer_with_random_cancel(delivered_by_[static_cast<std::size_t>(c)]));
            // A consumer that cannot be cancelled, so the pipeline always drains.
            tg.spawn(consumer(delivered_by_.back()));
            co_await with_task_group(make_producers);
            q_.close();
        };
        co_await with_task_group(body);
        produced_all_ = true;
    }

    void check() {
        // FIFO per producer, as each consumer saw it (several consumers may record
        // their items in another order than they were dequeued), and for what is
        // left in the queue, which was pushed after everything dequeued.
        std::map<int, int> last_delivered;
        for (const auto& mine : delivered_by_) {
            std::map<int, int> last;
            for (int v : mine) {
                auto [it, fresh] = last.try_emplace(v / 1000, v);
                if (!fresh) {
                    CHECK(v > it->second);
                    it->second = v;
                }
                int& m = last_delivered.try_emplace(v / 1000, v).first->second;
                m = std::max(m, v);
            }
        }
        std::vector<int> seen;
        for (const auto& mine : delivered_by_) seen.insert(seen.end(), mine.begin(), mine.end());
        std::map<int, int> last_left;
        while (auto v = q_.try_pop()) {
            auto d = last_delivered.find(*v / 1000);
            if (d != last_delivered.end()) CHECK(*v > d->second);
            auto [it, fresh] = last_left.try_emplace(*v / 1000, *v);
            if (!fresh) {
                CHECK(*v > it->second);
                it->second = *v;
            }
            seen.push_back(*v);
        }
        std::sort(seen.begin(), seen.end());
        std::vector<int> accepted = accepted_;
        std::sort(accepted.begin(), accepted.end());
        CHECK(seen == accepted); // nothing lost, nothing duplicated
        CHECK(std::adjacent_find(seen.begin(), seen.end()) == seen.end());
        CHECK(in_critical_ == 0);
        CHECK(static_cast<std::size_t>(peak_critical_) <= max_critical_);
        CHECK(sem_.available() == max_critical_);
        CHECK(produced_all_);
    }

private:
    int pick(int lo, int hi) {
        return std::uniform_int_distribution<int>(lo, hi)(rng_);
    }

    task<void> random_yields() {
        for (int n = pick(0, 3); n > 0; --n) co_await tether::yield_now();
    }

    task<void> producer(int id) {
        for (int i = 0; i < items_each_; ++i) {
            co_await random_yields();
            const int v = id * 1000 + i;
            if (pick(0, 3) == 0) {
                if (q_.try_push(v)) {
                    accepted_.push_back(v);
                    continue;
                }
            }
            // A push under a random deadline: a timed-out push did not happen.
            const bool pushed = co_await tether::move_on_after(pick(0, 3) * 1ms, q_.push(v));
            if (pushed) {
                accepted_.push_back(v);
            } else {
                co_await q_.push(v); // retry without a deadline: the item is not lost
                accepted_.push_back(v);
            }
        }
    }

    // Pops until the end of the stream, holding a semaphore permit while it
    // "handles" an item.
    task<void> consumer(std::vector<int>& delivered) {
        for (;;) {
            auto v = co_await q_.pop();
            if (!v) co_return;
            delivered.push_back(*v);
            auto permit = co_await sem_.acquire();
            ++in_critical_;
            peak_critical_ = std::max(peak_critical_, in_critical_);
            co_await random_yields();
            --in_critical_;
        }
    }

    // Like consumer, but inside a cancel scope that a random deadline cancels.
    task<void> consumer_with_random_cancel(std::vector<int>& delivered) {
        const auto limit = pick(0, 5) * 1ms;
        auto body = [&](tether::cancel_scope&) -> task<void> {
            for (;;) {
                auto v = co_await q_.pop();
                if (!v) co_return;
                delivered.push_back(*v); // delivered: the pop happened
                auto permit = co_await sem_.acquire();
                ++in_critical_;
                struct leave {
                    int& n;
                    ~leave() {
                        --n;
                    }
                } guard{in_critical_};
                peak_critical_ = std::max(peak_critical_, in_critical_);
                co_await random_yields();
            }
        };
        tether::cancel_scope scope;
        auto deadline = [&]() -> task<void> {
            co_await tether::sleep_for(limit);
            scope.cancel();
        };
        auto group = [&](task_group& tg) -> task<void> {
            tg.spawn(deadline());
            co_await tether::with_cancel_scope(scope, body);
            tg.cancel(); // the deadline need not fire any more
        };
        co_await with_task_group(group);
    }

    std::mt19937_64 rng_;
    tether::bounded_queue<int> q_;
    tether::semaphore sem_;
    std::size_t max_critical_ = sem_.available();
    int items_each_ = 0;
    std::vector<int> accepted_;
    std::vector<std::vector<int>> delivered_by_; // per consumer
    int in_critical_ = 0;
    int peak_critical_ = 0;
    bool produced_all_ = false;
};

void run_seed(std::uint64_t seed) {
    INFO("seed " << seed << " (replay: TETHER_RANDOM_SEEDS=1 TETHER_RANDOM_SEED_BASE=" << seed
                 << ")");
    random_pipeline p(seed);
    run_test([&]() -> task<void> { co_await p.run(); });
    p.check();
}

std::uint64_t env_or(const char* name, std::uint64_t fallback) {
    const char* v = std::getenv(name);
    return v && *v ? std::strtoull(v, nullptr, 10) : fallback;
}

} // namespace

TEST_CASE("random pipelines keep every item exactly once, in order (fixed seeds)",
          "[random][bounded_queue][semaphore]") {
    for (std::uint64_t seed = 1; seed <= 1000; ++seed) run_seed(seed);
    std::printf("random_schedule: 1000 fixed seeds\n");
}

TEST_CASE("random pipelines with seeds from the environment", "[random][bounded_queue]") {
    const std::uint64_t n = env_or("TETHER_RANDOM_SEEDS", 0);
    const auto now =
        static_cast<std::uint64_t>(std::chrono::system_clock::now().time_since_epoch().count());
    const std::uint64_t base = env_or("TETHER_RANDOM_SEED_BASE", now);
    for (std::uint64_t i = 0; i < n; ++i) run_seed(base + i);
    if (n > 0) {
        std::printf("random_schedule: %llu seeds from %llu\n", static_cast<unsigned long long>(n),
                    static_cast<unsigned long long>(base));
    }
}

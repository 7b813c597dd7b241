// shield_commit: a commit that must finish even when the request around it is
// cancelled, with a bounded clean-up — `shield(with_timeout(…, commit()))` — and
// the pitfall of swallowing cancelled_error.
//   BROKEN  an unshielded commit is cut off halfway by the request's timeout.
//   FIXED   shield(with_timeout(2s, commit())): it finishes; the request's
//           cancellation surfaces at the next cancellation point after it.
//   BROKEN  catch (cancelled_error&) { return fallback; }: the caller cannot tell
//           that the work never happened.
//   FIXED   clean up, then `throw;` — and tether's level-triggered cancellation
//           re-throws at every later await, so a swallowed one cannot hang a scope.
//
// Mirrors the seeds' shield lessons (seed 004 critical_section, seed 000 "shield
// protects from the caller being cancelled, not from failing"; "don't swallow
// CancelledError").
#include <tether/shield.hpp>
#include <tether/task.hpp>
#include <tether/testing/virtual_clock.hpp>
#include <tether/timeout.hpp>

#include <chrono>
#include <cstdio>

using namespace std::chrono_literals;

namespace {

struct database {
    int rows = 0;
    tether::task<> commit(int n, std::chrono::milliseconds per_row) {
        rows = 0;
        for (int i = 0; i < n; ++i) {
            co_await tether::sleep_for(per_row); // a cancellation point per row
            ++rows;
        }
        std::printf("    commit: %d/%d rows written\n", rows, n);
    }
};

// The request: 800ms of work, then a commit of 5 rows (60ms each); the client
// allows 1s, so the timeout fires in the middle of the commit.
tether::task<> request(database& db, bool shielded, std::chrono::milliseconds per_row) {
    co_await tether::sleep_for(800ms);
    if (shielded)
        co_await tether::shield(tether::with_timeout(2s, db.commit(5, per_row)));
    else
        co_await db.commit(5, per_row);
    std::printf("    after the commit: the request's cancellation is pending\n");
    co_await tether::yield_now(); // the pending cancellation surfaces here
}

tether::task<const char*> outcome_of(database& db, bool shielded,
                                     std::chrono::milliseconds per_row) {
    try {
        co_await tether::with_timeout(1s, request(db, shielded, per_row));
        co_return "completed";
    } catch (const tether::timeout_error&) {
        co_return "timeout_error";
    }
}

// --- swallowing cancelled_error -------------------------------------------
int saved = 0;

tether::task<bool> save_swallowing() {
    try {
        co_await tether::sleep_for(5s); // the save
        ++saved;
        co_return true;
    } catch (const tether::cancelled_error&) {
        co_return true; // BROKEN: "it's fine" — the caller sees success
    }
}

tether::task<bool> save_correctly() {
    try {
        co_await tether::sleep_for(5s);
        ++saved;
        co_return true;
    } catch (const tether::cancelled_error&) {
        std::printf("    cancelled: clean up, then rethrow\n");
        throw; // FIXED
    }
}

tether::task<int> stubborn_loop() {
    int swallowed = 0;
    for (;;) {
        try {
            co_await tether::sleep_for(1s);
        } catch (const tether::cancelled_error&) {
            if (++swallowed == 3) throw; // every await of the cancelled scope throws again
        }
    }
}

tether::task<int> amain() {
    int errors = 0;
    database db;

    std::printf("BROKEN: unshielded commit under a 1s request timeout\n");
    const char* r1 = co_await outcome_of(db, false, 60ms);
    std::printf("    request: %s; rows written: %d/5 (half a commit)\n", r1, db.rows);
    if (db.rows != 3) ++errors;

    std::printf("FIXED: shield(with_timeout(2s, commit()))\n");
    const char* r2 = co_await outcome_of(db, true, 60ms);
    std::printf("    request: %s; rows written: %d/5\n", r2, db.rows);
    if (db.rows != 5) ++errors;

    std::printf("BOUNDED: the database hangs (10s per row); the shield's own timeout ends it\n");
    const tether::clock::time_point t0 = co_await tether::this_task::now();
    const char* r3 = co_await outcome_of(db, true, 10s);
    const double took =
        std::chrono::duration<double>(co_await tether::this_task::now() - t0).count();
    std::printf("    request: %s after %.1fs (0.8s of work + 2s clean-up cap)\n", r3, took);
    if (took != 2.8) ++errors;

    std::printf("BROKEN: swallowing cancelled_error\n");
    std::optional<bool> s1 = co_await tether::move_on_after(1s, save_swallowing());
    std::printf("    move_on_after says %s, saved=%d: the work did not happen\n",
                s1 ? "completed" : "timed out", saved);
    if (!s1) ++errors;

    std::printf("FIXED: rethrow it\n");
    std::optional<bool> s2 = co_await tether::move_on_after(1s, save_correctly());
    std::printf("    move_on_after says %s, saved=%d\n", s2 ? "completed" : "timed out", saved);
    if (s2 || saved != 0) ++errors;

    std::printf("level-triggered: a loop that swallows it is cancelled again at each await\n");
    std::optional<int> s3 = co_await tether::move_on_after(1500ms, stubborn_loop());
    std::printf("    ended: %s (gave up after the third cancelled_error)\n",
                s3 ? "value" : "cancelled");

    std::printf("%s\n", errors == 0 ? "OK" : "UNEXPECTED");
    co_return errors == 0 ? 0 : 1;
}

} // namespace

int main() {
    asio::io_context io;
    tether::testing::virtual_clock clock(io);
    return tether::run(io, amain());
}

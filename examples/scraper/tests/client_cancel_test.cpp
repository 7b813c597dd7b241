// The scraper's request path under cancellation at every step (issue 8): one
// fetch through http_client against a loopback server in the same io_context
// (connect, write the request, read the response, return the connection to
// the keep-alive pool; a request on a pooled connection; the one retry after
// a dead pooled connection; a redirect followed on the kept-alive
// connection), cancelled after the k-th resumption of the io_context's task
// tree for every k, by cancel() and by a deadline of "now" — the idea of
// tests/support/cancel_every_step.hpp, whose harness cannot be used as it is:
// it runs on virtual time with autojump, which would fire the client's
// connect/header timeouts while the test waits for real socket I/O, and it
// has no room for a server in the same io_context. Here virtual time stands
// still (no timeout can fire; a deadline of "now" still cancels at once).
//
// Real I/O makes the number of resumptions vary a little from run to run
// (which completion comes first, client or server), so a reference run counts
// K, and the runs for k = 1 .. K + 2 assert invariants that hold whatever the
// outcome:
//  - the fetch ends with the scope's cancellation, or completes with the right
//    response; nothing else (no fetch_error from a cancelled exchange);
//  - no connection is leaked: once the client is idle, every connection the
//    server still has open is one in the pool (and the pool holds at most
//    one), and after the run the process has exactly the file descriptors it
//    had before;
//  - a pooled connection is intact: the next request on the same client
//    works, and if it used the pooled connection, that was not found dead;
//  - no task or deadline is left behind (ASan/LSan in the asan builds: no
//    frame or object leaked).
// Covered (g++ 12 Debug, 20 runs of each on this machine, all alike): a fresh
// exchange 7 resumptions, on a pooled connection 4, the stale retry 9, the
// redirect 11 — each cancelled after every one of them and 2 past the end,
// by cancel() and by a deadline: 78 runs, 62 of them ended cancelled (the
// test prints the counts of each run).
#include <tether/cancel_scope.hpp>
#include <tether/event.hpp>
#include <tether/task.hpp>
#include <tether/task_group.hpp>
#include <tether/testing/virtual_clock.hpp>

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

#include "catch_shim.hpp"
#include "http_client.hpp"
#include "net_support.hpp"

using namespace std::chrono_literals;
using scraper::fetch_error;
using scraper::http_client;
using scraper::http_response;

namespace {

using tcp = asio::ip::tcp;

// Open file descriptors of this process.
std::size_t open_fds() {
    std::size_t n = 0;
    for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator("/proc/self/fd"))
        ++n;
    return n;
}

// A keep-alive server in the test's io_context:
//   GET /a      200 "hello"
//   GET /r      301 to /a
//   GET /close  200 "bye", then closes the connection without saying so
// It counts the connections it has open and tells waiters when that changes.
class loopback_server {
public:
    explicit loopback_server(asio::io_context& io)
        : acceptor_(io, tcp::endpoint(asio::ip::make_address_v4("127.0.0.1"), 0)) {}

    scraper::url url(const std::string& path) const {
        auto u = scraper::url::parse(
            "http://127.0.0.1:" + std::to_string(acceptor_.local_endpoint().port()) + path);
        REQUIRE(u);
        return std::move(u).value();
    }

    tether::task<void> serve() {
        auto body = [this](tether::task_group& tg) -> tether::task<void> {
            for (;;) {
                tcp::socket s = co_await acceptor_.async_accept(tether::use_task);
                tg.spawn(serve_connection(std::move(s)));
            }
        };
        co_await tether::with_task_group(body);
    }

    /// Connections accepted and not yet closed (by the client, or by /close).
    std::size_t open() const noexcept {
        return open_;
    }
    /// Set at the next change of open(); take a copy before waiting.
    std::shared_ptr<tether::event> changed() const {
        return changed_;
    }

private:
    void notify() {
        const std::shared_ptr<tether::event> e =
            std::exchange(changed_, std::make_shared<tether::event>());
        e->set();
    }

    tether::task<void> serve_connection(tcp::socket s) {
        ++open_;
        notify();
        struct on_exit {
            loopback_server& self;
            ~on_exit() {
                --self.open_;
                self.notify();
            }
        } closed{*this};
        std::string buffer;
        std::string head;
        while (co_await scraper_test::read_head(s, buffer, &head)) {
            std::string_view reply = "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n";
            const bool close_after = head.starts_with("GET /close ");
            if (head.starts_with("GET /a "))
                reply = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
            else if (head.starts_with("GET /r "))
                reply =
                    "HTTP/1.1 301 Moved Permanently\r\nLocation: /a\r\nContent-Length: 0\r\n\r\n";
            else if (close_after)
                reply = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nbye";
            try {
                co_await asio::async_write(s, asio::buffer(reply.data(), reply.size()),
                                           tether::use_task);
            } catch (const std::system_error&) {
                co_return;
            }
            if (close_after) co_return; // the socket closes with this frame
        }
    }

    tcp::acceptor acceptor_;
    std::size_t open_ = 0;
    std::shared_ptr<tether::event> changed_ = std::make_shared<tether::event>();
};

// Waits until `cond()` holds, woken by the server's changes; false if it did
// not within 5 s of real time (virtual time stands still in these tests).
template <class Cond>
tether::task<bool> settle(asio::io_context& io, loopback_server& server, Cond cond) {
    struct watch {
        tether::cancel_scope scope;
        bool armed = true;
        bool fired = false;
    };
    const auto w = std::make_shared<watch>();
    asio::steady_timer watchdog(io, 5s);
    // The handler may run after this frame is gone: it holds `w`.
    watchdog.async_wait([w](const asio::error_code& ec) {
        if (ec || !w->armed) return;
        w->fired = true;
        w->scope.cancel();
    });
    auto wait = [&](tether::cancel_scope&) -> tether::task<void> {
        while (!cond()) {
            const std::shared_ptr<tether::event> e = server.changed();
            co_await e->wait();
        }
    };
    const bool done = co_await tether::with_cancel_scope(w->scope, wait);
    w->armed = false;
    watchdog.cancel();
    co_return done && !w->fired;
}

enum class scenario {
    fresh,       // exchange on a new client: connect, write, read, back to the pool
    pooled,      // exchange on the connection a first exchange left in the pool
    stale_retry, // the pooled connection is dead (the server closed it): one retry on a new one
    redirect,    // fetch: 301 to /a, followed on the kept-alive connection
};

const char* name_of(scenario s) {
    switch (s) {
    case scenario::fresh:
        return "fresh exchange";
    case scenario::pooled:
        return "exchange on a pooled connection";
    case scenario::stale_retry:
        return "exchange retried after a dead pooled connection";
    case scenario::redirect:
        return "fetch with a redirect";
    }
    return "?";
}

// Counts the resumptions of the io_context's tasks while `active`; after the
// `cancel_at`-th, cancels `scope` (by cancel(), or by a deadline of now).
struct step_probe {
    long count = 0;
    long cancel_at = 0; // 0: never
    bool by_deadline = false;
    bool active = false;
    tether::cancel_scope* scope = nullptr;
    tether::testing::virtual_clock* clock = nullptr;

    static void after_resume(void* self) noexcept {
        auto& p = *static_cast<step_probe*>(self);
        if (!p.active || ++p.count != p.cancel_at) return;
        if (p.by_deadline)
            p.scope->set_deadline(p.clock->now()); // already past: cancels at once
        else
            p.scope->cancel();
    }
};

struct run_result {
    long steps = 0;         // resumptions counted while the fetch ran
    bool completed = false; // the fetch returned (the scope absorbed no cancellation)
};

scraper::client_options client_options() {
    scraper::client_options o;
    // Virtual time stands still: these never fire; they only must not be zero.
    o.connect_timeout = 10s;
    o.header_timeout = 10s;
    o.idle_timeout = 10s;
    o.request_timeout = 10s;
    return o;
}

// One run of `sc`, cancelled after resumption `cancel_at` (0: never), with
// every invariant checked.
run_result run_scenario(scenario sc, long cancel_at, bool by_deadline) {
    const std::size_t fds_before = open_fds();
    run_result out;
    {
        asio::io_context io;
        tether::testing::virtual_clock clock(io);
        clock.set_autojump(false);
        loopback_server server(io);
        http_client client(client_options());
        tether::cancel_scope scope;
        step_probe probe;
        probe.cancel_at = cancel_at;
        probe.by_deadline = by_deadline;
        probe.scope = &scope;
        probe.clock = &clock;
        clock.on_each_resumption(&step_probe::after_resume, &probe);

        auto group = [&](tether::task_group& tg) -> tether::task<void> {
            tether::child<void> srv = tg.spawn(server.serve());
            co_await tether::yield_now(); // the server is listening

            // Set-up, not counted: a connection in the pool (dead for stale_retry).
            if (sc == scenario::pooled || sc == scenario::stale_retry) {
                const bool stale = sc == scenario::stale_retry;
                const http_response warm =
                    co_await client.exchange(server.url(stale ? "/close" : "/a"));
                CHECK(warm.body == (stale ? "bye" : "hello"));
                REQUIRE(client.pool().idle_count() == 1);
                if (stale) {
                    // (g++ 12: a lambda temporary inside a co_await expression is
                    // destroyed twice; name it.)
                    const auto server_closed_it = [&] { return server.open() == 0; };
                    const bool closed = co_await settle(io, server, server_closed_it);
                    REQUIRE(closed);
                }
            }
            const std::uint64_t stale_before = client.stats().stale_retries;

            // The fetch under test.
            std::optional<http_response> got;
            std::string failure;
            auto region = [&](tether::cancel_scope&) -> tether::task<void> {
                try {
                    if (sc == scenario::redirect) {
                        http_response r = co_await client.fetch(server.url("/r"));
                        got = std::move(r);
                    } else {
                        http_response r = co_await client.exchange(server.url("/a"));
                        got = std::move(r);
                    }
                } catch (const fetch_error& e) {
                    failure = e.what();
                }
            };
            probe.active = true;
            const bool completed = co_await tether::with_cancel_scope(scope, region);
            probe.active = false;
            out.completed = completed;
            out.steps = probe.count;

            INFO(name_of(sc) << ": cancelled " << (by_deadline ? "by a deadline" : "by cancel()")
                             << " after resumption " << cancel_at << " of " << probe.count);
            CHECK(failure.empty()); // cancellation or success, never a fetch_error
            if (completed) {
                REQUIRE(got);
                CHECK(got->status == 200);
                CHECK(got->body == "hello");
                if (sc == scenario::redirect) CHECK(got->redirects == 1);
                if (sc == scenario::stale_retry)
                    CHECK(client.stats().stale_retries == stale_before + 1);
            } else {
                CHECK_FALSE(got);
                CHECK(scope.cancelled_caught());
            }

            // No connection leaked: once the client is idle, each connection
            // the server has open is in the pool.
            const std::size_t idle = client.pool().idle_count();
            CHECK(idle <= 1);
            const auto only_pooled_open = [&] {
                return server.open() == client.pool().idle_count();
            };
            const bool settled = co_await settle(io, server, only_pooled_open);
            CHECK(settled);

            // The pooled connection (if any) is intact, and the client still works.
            const std::uint64_t stale_before_next = client.stats().stale_retries;
            const http_response next = co_await client.exchange(server.url("/a"));
            CHECK(next.status == 200);
            CHECK(next.body == "hello");
            CHECK(next.reused_connection == (idle == 1));
            CHECK(client.stats().stale_retries == stale_before_next);
            CHECK(client.pool().idle_count() == 1);
            srv.cancel();
        };
        auto body = [&]() -> tether::task<void> { co_await tether::with_task_group(group); };
        tether::run(io, body());
        clock.on_each_resumption(nullptr, nullptr);
        io.restart();
        io.poll();
        CHECK(tether::detail::scheduler_for(io).idle()); // no task or deadline left behind
    }
    CHECK(open_fds() == fds_before); // every socket closed
    return out;
}

// The reference run, then k = 1 .. K + 2 cancelled both ways.
void cancel_at_every_step(scenario sc) {
    const run_result reference = run_scenario(sc, 0, false);
    REQUIRE(reference.completed);
    const long steps = reference.steps;
    CHECK(steps >= 3);
    int runs = 0;
    int cancelled = 0;
    for (long k = 1; k <= steps + 2; ++k) {
        for (const bool by_deadline : {false, true}) {
            const run_result r = run_scenario(sc, k, by_deadline);
            ++runs;
            if (!r.completed) ++cancelled;
            // Cancelled after the first step: the fetch cannot have finished.
            if (k == 1) CHECK_FALSE(r.completed);
        }
    }
    CHECK(cancelled > 0);
    std::printf("client cancel at every step: %s: %ld resumptions, %d runs, %d ended cancelled\n",
                name_of(sc), steps, runs, cancelled);
}

} // namespace

TEST_CASE("client under cancellation at every step: a fresh exchange", "[client][cancellation]") {
    cancel_at_every_step(scenario::fresh);
}

TEST_CASE("client under cancellation at every step: an exchange on a pooled connection",
          "[client][cancellation]") {
    cancel_at_every_step(scenario::pooled);
}

TEST_CASE("client under cancellation at every step: the retry after a dead pooled connection",
          "[client][cancellation]") {
    cancel_at_every_step(scenario::stale_retry);
}

TEST_CASE("client under cancellation at every step: a fetch that follows a redirect",
          "[client][cancellation]") {
    cancel_at_every_step(scenario::redirect);
}

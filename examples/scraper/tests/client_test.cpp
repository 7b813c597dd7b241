// The HTTP client against scripted servers on 127.0.0.1 (in the same task
// tree): keep-alive reuse, the one retry on a pooled connection the server
// closed, connect / header / idle / request deadlines, a server that closes
// mid-body; plus Retry-After and redirect-chain rules. Events are ordered with
// tether::event, never by sleeping.
#include <tether/event.hpp>
#include <tether/task.hpp>
#include <tether/task_group.hpp>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "catch_shim.hpp"
#include "http_client.hpp"
#include "net_support.hpp"

using namespace std::chrono_literals;
using scraper::fetch_errc;
using scraper::fetch_error;
using scraper::http_client;
using scraper::http_response;

namespace {

using tcp = asio::ip::tcp;

constexpr std::string_view ok_response = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";

tcp::acceptor listen_loopback(asio::io_context& io) {
    tcp::acceptor a(io, tcp::endpoint(asio::ip::make_address_v4("127.0.0.1"), 0));
    return a;
}

scraper::url url_of(const tcp::acceptor& a, const std::string& path = "/") {
    auto u =
        scraper::url::parse("http://127.0.0.1:" + std::to_string(a.local_endpoint().port()) + path);
    REQUIRE(u);
    return std::move(u).value();
}

tether::task<void> write_all(tcp::socket& s, std::string_view data) {
    co_await asio::async_write(s, asio::buffer(data.data(), data.size()), tether::use_task);
}

scraper::client_options fast_options() {
    scraper::client_options o;
    o.connect_timeout = 2s;
    o.header_timeout = 2s;
    o.idle_timeout = 2s;
    o.request_timeout = 2s;
    return o;
}

// The error code of `t`'s fetch_error; nullopt if it succeeded.
tether::task<std::optional<fetch_errc>> error_of(tether::task<http_response> t) {
    try {
        (void)co_await std::move(t);
    } catch (const fetch_error& e) {
        co_return e.code();
    }
    co_return std::nullopt;
}

} // namespace

TEST_CASE("client: keep-alive reuse, and one retry when the pooled connection was closed",
          "[client]") {
    asio::io_context io;
    tcp::acceptor acceptor = listen_loopback(io);
    const scraper::url target = url_of(acceptor);
    http_client client(fast_options());
    tether::event first_closed;
    std::size_t accepted = 0;

    // Connection 1: two requests answered, then closed without saying so.
    // Connection 2: answers whatever comes.
    auto server = [&]() -> tether::task<void> {
        {
            tcp::socket s = co_await acceptor.async_accept(tether::use_task);
            ++accepted;
            std::string buf;
            for (int k = 0; k < 2; ++k) {
                if (!co_await scraper_test::read_head(s, buf)) co_return;
                co_await write_all(s, ok_response);
            }
            s.close();
            first_closed.set();
        }
        tcp::socket s = co_await acceptor.async_accept(tether::use_task);
        ++accepted;
        std::string buf;
        while (co_await scraper_test::read_head(s, buf)) co_await write_all(s, ok_response);
    };
    auto body = [&]() -> tether::task<void> {
        co_await tether::with_task_group([&](tether::task_group& tg) -> tether::task<void> {
            tether::child<void> srv = tg.spawn(server());
            const http_response r1 = co_await client.exchange(target);
            const http_response r2 = co_await client.exchange(target);
            CHECK(r1.body == "hello");
            CHECK_FALSE(r1.reused_connection);
            CHECK(r2.body == "hello");
            CHECK(r2.reused_connection);
            co_await first_closed.wait();
            // The pooled connection is dead: the client notices before any
            // response byte and retries once, on a new connection.
            const http_response r3 = co_await client.exchange(target);
            CHECK(r3.status == 200);
            CHECK(r3.body == "hello");
            srv.cancel();
        });
    };
    tether::run(io, body());
    CHECK(accepted == 2);
    CHECK(client.stats().requests == 3);
    CHECK(client.stats().connections_opened == 2);
    CHECK(client.stats().stale_retries == 1);
}

TEST_CASE("client: a server that closes mid-body fails the request, not the next one", "[client]") {
    asio::io_context io;
    tcp::acceptor acceptor = listen_loopback(io);
    const scraper::url target = url_of(acceptor);
    http_client client(fast_options());

    auto server = [&]() -> tether::task<void> {
        for (int k = 0;; ++k) {
            tcp::socket s = co_await acceptor.async_accept(tether::use_task);
            std::string buf;
            if (!co_await scraper_test::read_head(s, buf)) continue;
            if (k == 0)
                co_await write_all(s, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly part");
            else
                co_await write_all(s, ok_response);
        }
    };
    auto body = [&]() -> tether::task<void> {
        co_await tether::with_task_group([&](tether::task_group& tg) -> tether::task<void> {
            tether::child<void> srv = tg.spawn(server());
            const std::optional<fetch_errc> e = co_await error_of(client.exchange(target));
            CHECK(e == fetch_errc::connection_closed);
            const http_response r = co_await client.exchange(target);
            CHECK(r.body == "hello");
            srv.cancel();
        });
    };
    tether::run(io, body());
    CHECK(client.stats().stale_retries == 0);
}

TEST_CASE("client: header, idle and request deadlines", "[client]") {
    asio::io_context io;
    tcp::acceptor acceptor = listen_loopback(io);
    tether::event finished;

    scraper::client_options o = fast_options();
    o.header_timeout = 100ms;
    o.idle_timeout = 100ms;
    o.request_timeout = 300ms;
    http_client client(o);

    // /head: never answers. /idle: a head, then silence. /drip: a byte per
    // 40 ms (never idle 100 ms, but never finished either).
    auto serve_one = [&](tcp::socket s) -> tether::task<void> {
        std::string buf;
        std::array<char, 4096> chunk{};
        while (buf.find("\r\n\r\n") == std::string::npos) {
            const std::size_t n = co_await s.async_read_some(asio::buffer(chunk), tether::use_task);
            buf.append(chunk.data(), n);
        }
        if (buf.starts_with("GET /idle ")) {
            co_await write_all(s, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nab");
        } else if (buf.starts_with("GET /drip ")) {
            co_await write_all(s, "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n");
            for (;;) {
                co_await tether::sleep_for(40ms);
                co_await write_all(s, "x");
            }
        }
        co_await finished.wait();
    };
    auto body = [&]() -> tether::task<void> {
        co_await tether::with_task_group([&](tether::task_group& tg) -> tether::task<void> {
            auto accept_loop = [&]() -> tether::task<void> {
                for (;;) {
                    tcp::socket s = co_await acceptor.async_accept(tether::use_task);
                    tg.spawn(serve_one(std::move(s)));
                }
            };
            tether::child<void> acc = tg.spawn(accept_loop());
            const std::optional<fetch_errc> head =
                co_await error_of(client.exchange(url_of(acceptor, "/head")));
            const std::optional<fetch_errc> idle =
                co_await error_of(client.exchange(url_of(acceptor, "/idle")));
            const std::optional<fetch_errc> drip =
                co_await error_of(client.exchange(url_of(acceptor, "/drip")));
            CHECK(head == fetch_errc::header_timeout);
            CHECK(idle == fetch_errc::idle_timeout);
            CHECK(drip == fetch_errc::request_timeout);
            finished.set();
            tg.cancel();
        });
    };
    tether::run(io, body());
}

TEST_CASE("client: connection refused is connect_failed", "[client]") {
    asio::io_context io;
    std::optional<scraper::url> target;
    {
        tcp::acceptor a = listen_loopback(io);
        target = url_of(a);
    } // closed: nothing listens on the port any more
    http_client client(fast_options());
    const std::optional<fetch_errc> e = tether::run(io, error_of(client.exchange(*target)));
    CHECK(e == fetch_errc::connect_failed);
}

TEST_CASE("Retry-After: delay-seconds and HTTP-dates", "[client]") {
    using std::chrono::seconds;
    const auto now = std::chrono::system_clock::from_time_t(784111777); // 1994-11-06 08:49:37 UTC
    CHECK(scraper::parse_retry_after("120", now) == seconds(120));
    CHECK(scraper::parse_retry_after(" 0 ", now) == seconds(0));
    CHECK(scraper::parse_retry_after("Sun, 06 Nov 1994 08:50:37 GMT", now) == seconds(60));
    CHECK(scraper::parse_retry_after("Sunday, 06-Nov-94 08:49:47 GMT", now) == seconds(10));
    CHECK(scraper::parse_retry_after("Sun Nov  6 08:49:39 1994", now) == seconds(2));
    CHECK(scraper::parse_retry_after("Sat, 05 Nov 1994 08:49:37 GMT", now) == seconds(0));
    CHECK(scraper::parse_retry_after("99999999999999999999", now) == seconds(365LL * 86400));
    CHECK_FALSE(scraper::parse_retry_after("", now));
    CHECK_FALSE(scraper::parse_retry_after("-5", now));
    CHECK_FALSE(scraper::parse_retry_after("soon", now));
    CHECK_FALSE(scraper::parse_retry_after("Sun, 06 Foo 1994 08:49:37 GMT", now));
}

TEST_CASE("redirect_chain: relative Location, cap, loops, missing Location", "[client]") {
    const auto start = scraper::url::parse("http://127.0.0.1:1/a");
    REQUIRE(start);
    auto headers_with = [](std::string location) {
        scraper::http_headers h;
        h.add("Location", std::move(location));
        return h;
    };

    SECTION("a 200 ends the chain") {
        scraper::redirect_chain chain(*start, scraper::http_method::get, 5);
        CHECK_FALSE(chain.next(200, headers_with("/b")));
        CHECK(chain.redirects() == 0);
        // Until a redirect, current() is the first URL itself, not a copy.
        CHECK(&chain.current() == &*start);
    }
    SECTION("a redirect to the first URL is a loop") {
        scraper::redirect_chain chain(*start, scraper::http_method::get, 5);
        try {
            (void)chain.next(302, headers_with("/a"));
            FAIL("no exception");
        } catch (const fetch_error& e) {
            CHECK(e.code() == fetch_errc::redirect_loop);
        }
    }
    SECTION("relative and cross-host Locations are followed") {
        scraper::redirect_chain chain(*start, scraper::http_method::get, 5);
        const auto b = chain.next(301, headers_with("b?x=1"));
        REQUIRE(b);
        CHECK(b->str() == "http://127.0.0.1:1/b?x=1");
        const auto c = chain.next(307, headers_with("http://127.0.0.2:2/c"));
        REQUIRE(c);
        CHECK(chain.current().str() == "http://127.0.0.2:2/c");
        CHECK(chain.redirects() == 2);
        CHECK(chain.method() == scraper::http_method::get);
    }
    SECTION("the cap") {
        scraper::redirect_chain chain(*start, scraper::http_method::get, 2);
        CHECK(chain.next(302, headers_with("/1")));
        CHECK(chain.next(302, headers_with("/2")));
        try {
            (void)chain.next(302, headers_with("/3"));
            FAIL("no exception");
        } catch (const fetch_error& e) {
            CHECK(e.code() == fetch_errc::too_many_redirects);
        }
    }
    SECTION("a loop") {
        scraper::redirect_chain chain(*start, scraper::http_method::get, 10);
        CHECK(chain.next(302, headers_with("/b")));
        try {
            (void)chain.next(302, headers_with("/a"));
            FAIL("no exception");
        } catch (const fetch_error& e) {
            CHECK(e.code() == fetch_errc::redirect_loop);
        }
    }
    SECTION("no Location, or an unusable one") {
        scraper::redirect_chain chain(*start, scraper::http_method::get, 10);
        try {
            (void)chain.next(301, scraper::http_headers{});
            FAIL("no exception");
        } catch (const fetch_error& e) {
            CHECK(e.code() == fetch_errc::bad_redirect);
        }
        try {
            (void)chain.next(301, headers_with("ftp://127.0.0.1/x"));
            FAIL("no exception");
        } catch (const fetch_error& e) {
            CHECK(e.code() == fetch_errc::bad_redirect);
        }
    }
}

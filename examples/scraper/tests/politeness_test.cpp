// Politeness, asserted from the server's side (issue 6): a crawl of a small
// recording server on 127.0.0.1 never has more than `per_host` connections or
// requests open at once, spends its token bucket no faster than `rate` after
// a burst of `burst`, spaces its requests by robots.txt's Crawl-delay, and
// waits out a 429/503's Retry-After before asking again.
//
// The server runs on its own thread (its own io_context and task tree), the
// crawl on the test's thread, as in crawl_test.cpp. It records when each
// request was sent by the kernel's receive timestamp (SO_TIMESTAMPNS; on
// loopback the packet is stamped inside the client's send call), so that the
// server thread's own scheduling delays do not move the times measured. The
// time assertions are lower bounds. Those measured from the crawl's start or
// from the server's response are exact, as a slow machine can only delay the
// later event (a token is granted before its request is sent; the bucket
// starts full after the crawl began). Those between two requests (bucket
// windows, Crawl-delay gaps) allow 5-10 ms for a client descheduled between
// a token's grant and the send. Nothing is ordered by sleeping: the
// connection-cap test holds its responses at a gate that opens when
// `per_host` requests are open at once.
//
// The robots.txt request counts against Crawl-delay: the first page request
// waits one interval after it.
#include <tether/cancel_scope.hpp>
#include <tether/cancellation.hpp>
#include <tether/event.hpp>
#include <tether/task.hpp>
#include <tether/task_group.hpp>
#include <tether/timeout.hpp>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstring>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "catch_shim.hpp"
#include "crawler.hpp"
#include "net_support.hpp"

namespace {

using namespace std::chrono_literals;
using scraper_test::crawl;
using tcp = asio::ip::tcp;
// Kernel receive timestamps are CLOCK_REALTIME, as system_clock is.
using wall_clock = std::chrono::system_clock;

double seconds_between(wall_clock::time_point from, wall_clock::time_point to) {
    return std::chrono::duration<double>(to - from).count();
}

// What the server answers to one request.
struct reply {
    std::string bytes; // the whole response
    /// Held until `gate_at` requests are open at once (or 2 s passed).
    bool gated = false;
    /// Then held this long.
    std::chrono::milliseconds hold{0};
};

std::string http_response(int status, std::string_view reason, const std::string& body,
                          std::string_view extra_headers = {}) {
    return "HTTP/1.1 " + std::to_string(status) + " " + std::string(reason) +
           "\r\nContent-Type: text/html\r\nContent-Length: " + std::to_string(body.size()) +
           "\r\n" + std::string(extra_headers) + "\r\n" + body;
}

std::string index_page(std::size_t pages) {
    std::string body = "<html><body>";
    for (std::size_t i = 0; i < pages; ++i)
        body += "<a href=\"/page/" + std::to_string(i) + "\">" + std::to_string(i) + "</a> ";
    return body + "</body></html>";
}

const std::string not_found = http_response(404, "Not Found", "");

struct request_record {
    std::string path;
    /// When the request's first bytes were sent (the kernel's timestamp), or
    /// when the server read them if the kernel gave none.
    wall_clock::time_point arrival;
    /// Just before the response was written.
    wall_clock::time_point responded;
    std::size_t connection = 0;
    bool kernel_timestamp = false;
};

// `path` -> reply; `nth` counts earlier requests for the same path.
using handler_fn = std::function<reply(const std::string& path, std::size_t nth)>;

// One read from `s` with recvmsg, and the kernel's receive timestamp if any.
struct received {
    std::size_t size = 0;
    bool closed = false; // end of stream or an error
    bool again = false;  // nothing to read yet
    std::optional<wall_clock::time_point> stamp;
};

received receive(tcp::socket& s, char* data, std::size_t capacity) {
    received out;
    iovec iov{data, capacity};
    alignas(cmsghdr) std::array<char, CMSG_SPACE(sizeof(timespec))> control{};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.data();
    msg.msg_controllen = control.size();
    const ssize_t n = ::recvmsg(s.native_handle(), &msg, MSG_DONTWAIT);
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
            out.again = true;
        else
            out.closed = true;
        return out;
    }
    if (n == 0) {
        out.closed = true;
        return out;
    }
    out.size = static_cast<std::size_t>(n);
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS) {
            timespec ts{};
            std::memcpy(&ts, CMSG_DATA(c), sizeof ts);
            out.stamp = wall_clock::time_point(std::chrono::duration_cast<wall_clock::duration>(
                std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec)));
        }
    }
    return out;
}

// The kernel turns packet timestamping on asynchronously (a deferred work
// item) when the first socket of the system asks for it: until then TCP
// segments arrive unstamped (UDP would not tell: it stamps at recvmsg when
// the packet has no stamp). This loopback TCP pair asks too, keeps it on
// while it lives, and wait_until_stamped() sends itself bytes until one
// comes back stamped.
class stamp_probe {
public:
    stamp_probe() = default;
    stamp_probe(const stamp_probe&) = delete;
    stamp_probe& operator=(const stamp_probe&) = delete;
    ~stamp_probe() {
        for (const int fd : {client_, accepted_})
            if (fd >= 0) ::close(fd);
    }

    bool wait_until_stamped() {
        if (!connect_pair()) return false;
        const int one = 1;
        if (::setsockopt(accepted_, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof one) != 0)
            return false;
        const auto give_up = std::chrono::steady_clock::now() + 2s;
        while (std::chrono::steady_clock::now() < give_up) {
            const char byte = 'x';
            if (::send(client_, &byte, 1, 0) != 1) return false;
            char in = 0;
            iovec iov{&in, 1};
            alignas(cmsghdr) std::array<char, CMSG_SPACE(sizeof(timespec))> control{};
            msghdr msg{};
            msg.msg_iov = &iov;
            msg.msg_iovlen = 1;
            msg.msg_control = control.data();
            msg.msg_controllen = control.size();
            if (::recvmsg(accepted_, &msg, 0) != 1) return false;
            for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c))
                if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS) return true;
            std::this_thread::yield();
        }
        return false;
    }

private:
    bool connect_pair() {
        const int listener = ::socket(AF_INET, SOCK_STREAM, 0);
        if (listener < 0) return false;
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t len = sizeof addr;
        bool ok = ::bind(listener, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0 &&
                  ::listen(listener, 1) == 0 &&
                  ::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len) == 0;
        if (ok) {
            client_ = ::socket(AF_INET, SOCK_STREAM, 0);
            ok = client_ >= 0 &&
                 ::connect(client_, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0;
        }
        if (ok) {
            accepted_ = ::accept(listener, nullptr, nullptr);
            ok = accepted_ >= 0;
        }
        ::close(listener);
        return ok;
    }

    int client_ = -1;
    int accepted_ = -1;
};

// A keep-alive HTTP/1.1 server on 127.0.0.1 that logs every request and
// counts the connections and requests open at once. On its own thread.
class recording_server {
public:
    explicit recording_server(handler_fn handler, std::size_t gate_at = 0)
        : acceptor_(io_, tcp::endpoint(asio::ip::make_address_v4("127.0.0.1"), 0)),
          handler_(std::move(handler)), gate_at_(gate_at) {
        // Set on the listener before any client connects (accepted sockets
        // inherit it); then wait until the kernel stamps loopback packets.
        const int one = 1;
        kernel_stamps_ = ::setsockopt(acceptor_.native_handle(), SOL_SOCKET, SO_TIMESTAMPNS, &one,
                                      sizeof one) == 0 &&
                         stamp_probe_.wait_until_stamped();
        thread_ = std::thread([this] {
            try {
                tether::run(io_,
                            tether::task<void>(tether::with_cancellation(stop_.token(), serve())));
            } catch (const tether::cancelled_error&) {
                // stopped
            }
        });
    }
    recording_server(const recording_server&) = delete;
    recording_server& operator=(const recording_server&) = delete;
    ~recording_server() {
        stop_.request_cancel("test over");
        thread_.join();
    }

    std::string base_url() const {
        return "http://127.0.0.1:" + std::to_string(acceptor_.local_endpoint().port());
    }
    std::vector<request_record> requests() const {
        const std::lock_guard lock(mu_);
        return log_;
    }
    std::size_t max_connections() const {
        const std::lock_guard lock(mu_);
        return max_connections_;
    }
    std::size_t max_in_flight() const {
        const std::lock_guard lock(mu_);
        return max_in_flight_;
    }
    /// SO_TIMESTAMPNS was accepted and every request so far carried a stamp.
    bool kernel_stamps() const {
        const std::lock_guard lock(mu_);
        return kernel_stamps_ && std::all_of(log_.begin(), log_.end(), [](const request_record& r) {
                   return r.kernel_timestamp;
               });
    }

private:
    tether::task<void> serve() {
        auto body = [this](tether::task_group& tg) -> tether::task<void> {
            for (std::size_t id = 0;; ++id) {
                tcp::socket s = co_await acceptor_.async_accept(tether::use_task);
                tg.spawn(serve_connection(std::move(s), id));
            }
        };
        co_await tether::with_task_group(body);
    }

    tether::task<void> serve_connection(tcp::socket s, std::size_t id) {
        {
            const std::lock_guard lock(mu_);
            max_connections_ = std::max(max_connections_, ++connections_);
        }
        struct on_exit {
            recording_server& self;
            ~on_exit() {
                const std::lock_guard lock(self.mu_);
                --self.connections_;
            }
        } closed{*this};

        std::string buffer;
        std::array<char, 4096> chunk{};
        for (;;) {
            // One request head (the crawler sends GETs without a body).
            std::optional<wall_clock::time_point> first_byte;
            bool stamped = false;
            std::size_t end = 0;
            while ((end = buffer.find("\r\n\r\n")) == std::string::npos) {
                try {
                    co_await s.async_wait(tcp::socket::wait_read, tether::use_task);
                } catch (const std::system_error&) {
                    co_return;
                }
                const received r = receive(s, chunk.data(), chunk.size());
                if (r.closed) co_return;
                if (r.again) continue;
                if (!first_byte) {
                    stamped = r.stamp.has_value();
                    first_byte = stamped ? *r.stamp : wall_clock::now();
                }
                buffer.append(chunk.data(), r.size);
            }
            const std::string head = buffer.substr(0, end);
            buffer.erase(0, end + 4);
            // "GET /path HTTP/1.1"
            const std::size_t sp1 = head.find(' ');
            const std::size_t sp2 = head.find(' ', sp1 + 1);
            const std::string path = sp1 == std::string::npos || sp2 == std::string::npos
                                         ? std::string()
                                         : head.substr(sp1 + 1, sp2 - sp1 - 1);
            std::size_t nth = 0;
            bool open_gate = false;
            {
                const std::lock_guard lock(mu_);
                nth = seen_[path]++;
                max_in_flight_ = std::max(max_in_flight_, ++in_flight_);
                open_gate = gate_at_ != 0 && in_flight_ >= gate_at_;
            }
            if (open_gate) gate_.set();
            const reply rp = handler_(path, nth);
            if (rp.gated) co_await tether::move_on_after(2s, gate_.wait());
            if (rp.hold > 0ms) co_await tether::sleep_for(rp.hold);
            {
                // Counted out before the write: the client cannot start its
                // next request before it has the response, so the server's
                // count never exceeds the client's.
                const std::lock_guard lock(mu_);
                --in_flight_;
                log_.push_back(request_record{path, *first_byte, wall_clock::now(), id, stamped});
            }
            try {
                co_await asio::async_write(s, asio::buffer(rp.bytes), tether::use_task);
            } catch (const std::system_error&) {
                co_return;
            }
        }
    }

    stamp_probe stamp_probe_; // before the acceptor: set up first
    asio::io_context io_;
    tcp::acceptor acceptor_;
    handler_fn handler_;
    std::size_t gate_at_;
    bool kernel_stamps_ = false;
    tether::event gate_; // server thread only
    tether::cancellation_source stop_;
    std::thread thread_;

    mutable std::mutex mu_;
    std::vector<request_record> log_;
    std::map<std::string, std::size_t> seen_;
    std::size_t connections_ = 0;
    std::size_t max_connections_ = 0;
    std::size_t in_flight_ = 0;
    std::size_t max_in_flight_ = 0;
};

scraper::crawl_config polite_config(const recording_server& server) {
    scraper::crawl_config c;
    c.seeds = {server.base_url() + "/"};
    c.db = ":memory:";
    c.concurrency = 12;
    c.per_host = 8;
    c.rate = 0;
    c.max_depth = 1;
    c.retries = 2;
    c.retry_initial_delay = 5ms;
    c.retry_max_delay = 50ms;
    c.retry_budget = 10s;
    c.client.connect_timeout = 5s;
    c.client.header_timeout = 5s;
    c.client.idle_timeout = 5s;
    c.client.request_timeout = 10s;
    c.progress = scraper::progress_mode::quiet;
    return c;
}

// The arrival times of the requests for paths other than robots.txt, sorted.
std::vector<wall_clock::time_point> page_arrivals(const std::vector<request_record>& log) {
    std::vector<wall_clock::time_point> out;
    for (const request_record& r : log)
        if (r.path != "/robots.txt") out.push_back(r.arrival);
    std::sort(out.begin(), out.end());
    return out;
}

} // namespace

TEST_CASE("politeness: the server never sees more than per_host connections or requests at once",
          "[politeness]") {
    constexpr std::size_t per_host = 3;
    constexpr std::size_t pages = 12;
    // Page responses wait until `per_host` requests are open at once, then
    // 20 ms more: requests beyond the cap would overlap them and be counted.
    recording_server server(
        [](const std::string& path, std::size_t) {
            if (path == "/") return reply{http_response(200, "OK", index_page(pages))};
            if (path.starts_with("/page/"))
                return reply{http_response(200, "OK", "<p>" + path + "</p>"), true, 20ms};
            return reply{not_found};
        },
        per_host);
    scraper::crawl_config cfg = polite_config(server);
    cfg.per_host = per_host;
    const scraper::crawl_stats stats = crawl(cfg);

    const std::vector<request_record> log = server.requests();
    CHECK(stats.ok == pages + 1);
    CHECK(log.size() == pages + 2); // robots.txt, the index, the pages
    CHECK(server.max_in_flight() <= per_host);
    CHECK(server.max_connections() <= per_host);
    // The cap was reached (the gate opened at once, not after its 2 s).
    CHECK(server.max_in_flight() == per_host);
}

TEST_CASE("politeness: N requests to one host take at least (N - burst) / rate", "[politeness]") {
    constexpr double rate = 40;      // tokens per second
    constexpr std::size_t burst = 2; // bucket size
    constexpr std::size_t pages = 8; // N = 9 with the index: >= 175 ms
    recording_server server([](const std::string& path, std::size_t) {
        if (path == "/") return reply{http_response(200, "OK", index_page(pages))};
        if (path.starts_with("/page/")) return reply{http_response(200, "OK", "<p>x</p>")};
        return reply{not_found};
    });
    scraper::crawl_config cfg = polite_config(server);
    cfg.rate = rate;
    cfg.burst = burst;
    cfg.respect_robots = false; // every request is a page, each takes one token
    // One connection, kept alive: every page is sent on it within the
    // resumption that got its token (no connect between grant and send), so
    // send times track grant times closely. One request at a time does not
    // limit the rate: the server answers in well under a token interval.
    cfg.per_host = 1;

    const wall_clock::time_point start = wall_clock::now();
    const scraper::crawl_stats stats = crawl(cfg);
    const std::vector<wall_clock::time_point> t = page_arrivals(server.requests());
    CHECK(stats.ok == pages + 1);
    REQUIRE(t.size() == pages + 1);
    CHECK(server.kernel_stamps());

    // The bucket starts full after `start`: the k-th request (1-based) needs k
    // tokens, so it is sent no earlier than (k - burst) / rate after `start`.
    // 2 ms allows for the limiter's cached clock reading (one stretch of code).
    constexpr double slack = 0.002;
    for (std::size_t k = burst + 1; k <= t.size(); ++k) {
        const double bound = static_cast<double>(k - burst) / rate;
        INFO("request " << k << " of " << t.size());
        CHECK(seconds_between(start, t[k - 1]) >= bound - slack);
    }
    // Every window of requests respects the bucket: j - i + 1 requests span at
    // least (j - i + 1 - burst) / rate. Windows start after the index, whose
    // send waited for the connect after its token (bounded from `start`
    // above); 10 ms allows for the time between a token's grant and the
    // kernel's timestamp of the send (a client descheduled in between).
    constexpr double window_slack = 0.010;
    for (std::size_t i = 1; i < t.size(); ++i)
        for (std::size_t j = i + burst; j < t.size(); ++j) {
            const double needed = static_cast<double>(j - i + 1 - burst) / rate;
            INFO("requests " << i + 1 << " to " << j + 1 << " of " << t.size());
            CHECK(seconds_between(t[i], t[j]) >= needed - window_slack);
        }
}

namespace {

constexpr double crawl_delay = 0.100;        // seconds, announced in robots.txt
constexpr std::size_t crawl_delay_pages = 3; // 4 requests after robots.txt: >= 300 ms

// A crawl of a site whose robots.txt says Crawl-delay: 0.1; returns the
// server's log.
std::vector<request_record> crawl_with_crawl_delay(double configured_rate) {
    recording_server server([](const std::string& path, std::size_t) {
        if (path == "/robots.txt")
            return reply{http_response(200, "OK", "User-agent: *\nCrawl-delay: 0.1\n",
                                       "Content-Type: text/plain\r\n")};
        if (path == "/") return reply{http_response(200, "OK", index_page(crawl_delay_pages))};
        if (path.starts_with("/page/")) return reply{http_response(200, "OK", "<p>x</p>")};
        return reply{not_found};
    });
    scraper::crawl_config cfg = polite_config(server);
    cfg.rate = configured_rate;
    cfg.burst = 4;
    const scraper::crawl_stats stats = crawl(cfg);
    CHECK(stats.ok == crawl_delay_pages + 1);
    CHECK(server.kernel_stamps());
    return server.requests();
}

} // namespace

TEST_CASE("politeness: robots.txt's Crawl-delay spaces the requests to its host", "[politeness]") {
    // Crawl-delay lowers a faster configured rate and allows no burst.
    const double configured_rate = GENERATE(0.0, 50.0);
    CAPTURE(configured_rate);
    const std::vector<wall_clock::time_point> t =
        page_arrivals(crawl_with_crawl_delay(configured_rate));
    REQUIRE(t.size() == crawl_delay_pages + 1);
    // Consecutive request starts are >= 100 ms apart; 5 ms for clock
    // granularity and the path from the token's grant to the send.
    constexpr double slack = 0.005;
    for (std::size_t k = 1; k < t.size(); ++k) {
        INFO("requests " << k << " and " << k + 1 << " after robots.txt");
        CHECK(seconds_between(t[k - 1], t[k]) >= crawl_delay - slack);
    }
}

// The crawler learns Crawl-delay from robots.txt and charges that request to
// the host's limiter: the first page request comes Crawl-delay after it (it
// came ~0.3 ms after it before the crawler did so).
TEST_CASE("politeness: the first page request waits Crawl-delay after robots.txt", "[politeness]") {
    const double configured_rate = GENERATE(0.0, 50.0);
    CAPTURE(configured_rate);
    std::vector<request_record> log = crawl_with_crawl_delay(configured_rate);
    std::sort(log.begin(), log.end(), [](const request_record& a, const request_record& b) {
        return a.arrival < b.arrival;
    });
    REQUIRE(log.size() == crawl_delay_pages + 2);
    CHECK(log[0].path == "/robots.txt");
    CHECK(seconds_between(log[0].arrival, log[1].arrival) >= crawl_delay - 0.005);
}

TEST_CASE("politeness: a 429 or 503 with Retry-After delays the next attempt by that much",
          "[politeness]") {
    // The first request for each path fails with Retry-After: 1 (delay-seconds
    // have a granularity of one second); the retry succeeds. The backoff of
    // the config (5..50 ms) is far shorter, so only Retry-After explains a wait.
    recording_server server([](const std::string& path, std::size_t nth) {
        if (path == "/busy" && nth == 0)
            return reply{http_response(429, "Too Many Requests", "", "Retry-After: 1\r\n")};
        if (path == "/unavailable" && nth == 0)
            return reply{http_response(503, "Service Unavailable", "", "Retry-After: 1\r\n")};
        if (path == "/busy" || path == "/unavailable")
            return reply{http_response(200, "OK", "<p>x</p>")};
        return reply{not_found};
    });
    scraper::crawl_config cfg = polite_config(server);
    cfg.seeds = {server.base_url() + "/busy", server.base_url() + "/unavailable"};
    cfg.max_depth = 0;
    cfg.respect_robots = false;

    const scraper::crawl_stats stats = crawl(cfg);
    const std::vector<request_record> log = server.requests();
    CHECK(stats.ok == 2);
    CHECK(stats.retries == 2);
    CHECK(server.kernel_stamps());
    for (const std::string path : {"/busy", "/unavailable"}) {
        std::vector<request_record> attempts;
        for (const request_record& r : log)
            if (r.path == path) attempts.push_back(r);
        INFO(path);
        REQUIRE(attempts.size() == 2);
        std::sort(
            attempts.begin(), attempts.end(),
            [](const request_record& a, const request_record& b) { return a.arrival < b.arrival; });
        // The retry is sent no earlier than 1 s after the failure was written
        // (1 ms: the wall clock may be slewed while tether sleeps on the
        // steady clock).
        CHECK(seconds_between(attempts[0].responded, attempts[1].arrival) >= 1.0 - 0.001);
    }
}

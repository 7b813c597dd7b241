// One client connection (plain TCP or TLS) and the keep-alive pool that keeps
// idle ones per (scheme, host, port).
#pragma once

#include <tether/task.hpp>

#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "http_parser.hpp"
#include "tls.hpp"
#include "url.hpp"

namespace scraper {

/// A connected stream to one origin, with its read buffer and response parser
/// (both reused across the requests of a keep-alive connection).
///
/// @par Thread safety
/// None: used by one task at a time (it is taken out of the pool while in use).
class connection {
public:
    connection(asio::io_context::executor_type ex, host_key key, http_parser_limits limits = {});
    connection(const connection&) = delete;
    connection& operator=(const connection&) = delete;
    ~connection();

    /// Resolves `u`'s host (skipped for IP literals), connects, and for https
    /// performs the TLS handshake with SNI and host-name verification.
    ///
    /// @par Cancellation
    /// A cancellation point; wrap it in a deadline (the client does).
    /// @par Exceptions
    /// `fetch_error` (resolve_failed, connect_failed, tls_failed, tls_unavailable).
    static tether::task<std::unique_ptr<connection>> open(const url& u, tls_context* tls,
                                                          http_parser_limits limits = {});

    /// Reads what is available (at least one byte). Throws std::system_error
    /// (asio::error::eof at the end of the stream).
    tether::task<std::size_t> read_some(char* data, std::size_t size);
    /// Writes all of `data`. Throws std::system_error.
    tether::task<void> write(std::string_view data);
    /// Closes the socket (no TLS close_notify: the connection is dropped).
    void close() noexcept;

    [[nodiscard]] const host_key& key() const noexcept {
        return key_;
    }
    [[nodiscard]] http_response_parser& parser() noexcept {
        return parser_;
    }
    [[nodiscard]] char* buffer() noexcept {
        return buffer_.get();
    }
    static constexpr std::size_t buffer_size = 32 * 1024;

    /// When the connection went back to the pool.
    std::chrono::steady_clock::time_point idle_since{};
    /// Completed requests on this connection.
    std::size_t requests = 0;

private:
    host_key key_;
    asio::ip::tcp::socket tcp_;
#if SCRAPER_HAVE_TLS
    std::unique_ptr<asio::ssl::stream<asio::ip::tcp::socket&>> tls_;
#endif
    http_response_parser parser_;
    std::unique_ptr<char[]> buffer_;
};

/// Idle keep-alive connections per (scheme, host, port), most recently used
/// first. An idle connection older than `idle_timeout` is closed instead of
/// reused (servers close idle connections too; the client retries once on a
/// reused connection that fails before any response byte).
class connection_pool {
public:
    connection_pool(std::size_t max_idle_per_host, std::chrono::steady_clock::duration idle_timeout)
        : max_idle_per_host_(max_idle_per_host), idle_timeout_(idle_timeout) {}

    /// An idle connection to `key` that is fresh enough, or null.
    std::unique_ptr<connection> take(const host_key& key,
                                     std::chrono::steady_clock::time_point now);
    /// Returns a connection that can carry another request.
    void put(std::unique_ptr<connection> c, std::chrono::steady_clock::time_point now);
    /// Closes every idle connection.
    void clear() noexcept;
    [[nodiscard]] std::size_t idle_count() const noexcept;

private:
    std::size_t max_idle_per_host_;
    std::chrono::steady_clock::duration idle_timeout_;
    std::unordered_map<host_key, std::vector<std::unique_ptr<connection>>> idle_;
};

} // namespace scraper

#include "connection.hpp"

#include <algorithm>
#include <string>
#include <system_error>
#include <utility>

#include "fetch_error.hpp"

namespace scraper {

namespace {

std::string describe(const std::system_error& e) {
    return e.code().message();
}

} // namespace

connection::connection(asio::io_context::executor_type ex, host_key key, http_parser_limits limits)
    : key_(std::move(key)), tcp_(ex), parser_(http_method::get, limits),
      buffer_(new char[buffer_size]) {}

connection::~connection() {
    close();
}

tether::task<std::unique_ptr<connection>> connection::open(const url& u, tls_context* tls,
                                                           http_parser_limits limits) {
    if (u.is_https() && (!tls_available || tls == nullptr))
        throw fetch_error(fetch_errc::tls_unavailable,
                          "cannot fetch " + u.str() + ": this build has no TLS support (OpenSSL)");
    const asio::io_context::executor_type ex = co_await tether::this_task::executor();
    auto c = std::make_unique<connection>(ex, u.key(), limits);
    const std::string host(u.hostname());

    asio::error_code ec;
    const asio::ip::address address = asio::ip::make_address(host, ec);
    const bool ip_literal = !ec;
    if (ip_literal) {
        // An IP literal: no resolver (whose async_resolve runs on a helper thread).
        try {
            co_await c->tcp_.async_connect(asio::ip::tcp::endpoint(address, u.port()),
                                           tether::use_task);
        } catch (const std::system_error& e) {
            throw fetch_error(fetch_errc::connect_failed,
                              "connect to " + u.key().to_string() + ": " + describe(e));
        }
    } else {
        asio::ip::tcp::resolver resolver(ex);
        asio::ip::tcp::resolver::results_type endpoints;
        try {
            endpoints =
                co_await resolver.async_resolve(host, std::to_string(u.port()), tether::use_task);
        } catch (const std::system_error& e) {
            throw fetch_error(fetch_errc::resolve_failed, "resolve " + host + ": " + describe(e));
        }
        try {
            co_await asio::async_connect(c->tcp_, endpoints, tether::use_task);
        } catch (const std::system_error& e) {
            throw fetch_error(fetch_errc::connect_failed,
                              "connect to " + u.key().to_string() + ": " + describe(e));
        }
    }
    c->tcp_.set_option(asio::ip::tcp::no_delay(true), ec); // best effort

#if SCRAPER_HAVE_TLS
    if (u.is_https()) {
        c->tls_ = std::make_unique<asio::ssl::stream<asio::ip::tcp::socket&>>(c->tcp_, *tls);
        SSL* ssl = c->tls_->native_handle();
        if (!ip_literal) // SNI carries names only (RFC 6066 §3)
            SSL_set_tlsext_host_name(ssl, host.c_str());
        if ((SSL_CTX_get_verify_mode(tls->native_handle()) & SSL_VERIFY_PEER) != 0)
            c->tls_->set_verify_callback(asio::ssl::host_name_verification(host));
        try {
            co_await c->tls_->async_handshake(asio::ssl::stream_base::client, tether::use_task);
        } catch (const std::system_error& e) {
            std::string detail = describe(e);
            const long verify = SSL_get_verify_result(ssl);
            if (verify != X509_V_OK) {
                detail += " (certificate: ";
                detail += X509_verify_cert_error_string(verify);
                detail += ')';
            }
            throw fetch_error(fetch_errc::tls_failed,
                              "TLS handshake with " + u.key().to_string() + ": " + detail);
        }
    }
#endif
    co_return c;
}

tether::task<std::size_t> connection::read_some(char* data, std::size_t size) {
#if SCRAPER_HAVE_TLS
    if (tls_) co_return co_await tls_->async_read_some(asio::buffer(data, size), tether::use_task);
#endif
    co_return co_await tcp_.async_read_some(asio::buffer(data, size), tether::use_task);
}

tether::task<void> connection::write(std::string_view data) {
#if SCRAPER_HAVE_TLS
    if (tls_) {
        co_await asio::async_write(*tls_, asio::buffer(data.data(), data.size()), tether::use_task);
        co_return;
    }
#endif
    co_await asio::async_write(tcp_, asio::buffer(data.data(), data.size()), tether::use_task);
}

void connection::close() noexcept {
    asio::error_code ignored;
    tcp_.shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
    tcp_.close(ignored);
}

// --- connection_pool ------------------------------------------------------------

std::unique_ptr<connection> connection_pool::take(const host_key& key,
                                                  std::chrono::steady_clock::time_point now) {
    auto it = idle_.find(key);
    if (it == idle_.end()) return nullptr;
    auto& stack = it->second;
    while (!stack.empty()) {
        std::unique_ptr<connection> c = std::move(stack.back());
        stack.pop_back();
        if (now - c->idle_since <= idle_timeout_) return c;
        // Too old: the server has probably closed it; everything below is older.
        stack.clear();
    }
    return nullptr;
}

void connection_pool::put(std::unique_ptr<connection> c,
                          std::chrono::steady_clock::time_point now) {
    if (!c || max_idle_per_host_ == 0) return;
    c->idle_since = now;
    auto& stack = idle_[c->key()];
    if (stack.size() >= max_idle_per_host_) stack.erase(stack.begin()); // drop the oldest
    stack.push_back(std::move(c));
}

void connection_pool::clear() noexcept {
    idle_.clear();
}

std::size_t connection_pool::idle_count() const noexcept {
    std::size_t n = 0;
    for (const auto& [key, stack] : idle_) n += stack.size();
    return n;
}

} // namespace scraper

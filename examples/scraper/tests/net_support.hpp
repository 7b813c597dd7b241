// Helpers shared by the scraper's network tests (one test binary,
// scraper_net_test): reading a request head in a test server, and running a
// crawl to the end on a fresh io_context.
#pragma once

#include "crawler.hpp"

#include <tether/task.hpp>

#include <asio/buffer.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>

#include <array>
#include <cstddef>
#include <sstream>
#include <string>
#include <system_error>
#include <utility>

namespace scraper_test {

/// Reads one request head (up to CRLF CRLF) from `s`, consuming it from
/// `buffer` (which keeps any bytes read past it); stores it, without the blank
/// line, in *head when given. False at the end of the stream or on an error.
inline tether::task<bool> read_head(asio::ip::tcp::socket& s, std::string& buffer,
                                    std::string* head = nullptr) {
    std::array<char, 4096> chunk{};
    for (;;) {
        const std::size_t end = buffer.find("\r\n\r\n");
        if (end != std::string::npos) {
            if (head) *head = buffer.substr(0, end);
            buffer.erase(0, end + 4);
            co_return true;
        }
        try {
            const std::size_t n = co_await s.async_read_some(asio::buffer(chunk), tether::use_task);
            buffer.append(chunk.data(), n);
        } catch (const std::system_error&) {
            co_return false;
        }
    }
}

/// Runs a crawl of `cfg` to its end on a fresh io_context (its log discarded).
inline scraper::crawl_stats crawl(scraper::crawl_config cfg) {
    std::ostringstream log;
    asio::io_context io;
    scraper::crawler c(std::move(cfg), log);
    return tether::run(io, c.run());
}

} // namespace scraper_test

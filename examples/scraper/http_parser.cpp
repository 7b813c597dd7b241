#include "http_parser.hpp"

#include <algorithm>
#include <cstring>
#include <limits>
#include <utility>

namespace scraper {

std::string_view to_string(http_errc code) noexcept {
    switch (code) {
    case http_errc::none:
        return "none";
    case http_errc::not_http:
        return "not_http";
    case http_errc::bad_status_line:
        return "bad_status_line";
    case http_errc::unsupported_version:
        return "unsupported_version";
    case http_errc::unexpected_status:
        return "unexpected_status";
    case http_errc::bad_header:
        return "bad_header";
    case http_errc::header_block_too_large:
        return "header_block_too_large";
    case http_errc::too_many_headers:
        return "too_many_headers";
    case http_errc::too_many_interim_responses:
        return "too_many_interim_responses";
    case http_errc::bad_content_length:
        return "bad_content_length";
    case http_errc::content_length_overflow:
        return "content_length_overflow";
    case http_errc::conflicting_content_length:
        return "conflicting_content_length";
    case http_errc::unsupported_transfer_coding:
        return "unsupported_transfer_coding";
    case http_errc::bad_transfer_encoding:
        return "bad_transfer_encoding";
    case http_errc::bad_chunk_size:
        return "bad_chunk_size";
    case http_errc::chunk_size_overflow:
        return "chunk_size_overflow";
    case http_errc::bad_chunk:
        return "bad_chunk";
    case http_errc::body_too_large:
        return "body_too_large";
    case http_errc::eof_before_response:
        return "eof_before_response";
    case http_errc::premature_eof:
        return "premature_eof";
    }
    return "unknown";
}

namespace {

constexpr std::string_view http_prefix = "HTTP/";

// Parses an RFC 9110 Content-Length field value (possibly a list of
// identical values, §8.6) into `out`. Returns the error code, or none.
http_errc parse_content_length_value(std::string_view value, std::optional<std::uint64_t>& out) {
    // An empty field value is not a number either.
    if (trim_ows(value).empty()) return http_errc::bad_content_length;
    http_errc err = http_errc::none;
    // Elements are checked one by one; an empty element ("5,,5") is malformed.
    std::string_view rest = value;
    while (err == http_errc::none) {
        const std::size_t comma = rest.find(',');
        const std::string_view element = trim_ows(rest.substr(0, comma));
        if (element.empty()) return http_errc::bad_content_length;
        std::uint64_t n = 0;
        for (char c : element) {
            if (!is_digit_ascii(c)) return http_errc::bad_content_length;
            const auto d = static_cast<std::uint64_t>(c - '0');
            if (n > (std::numeric_limits<std::uint64_t>::max() - d) / 10) {
                err = http_errc::content_length_overflow; // keep scanning for non-digits first
            }
            n = n * 10 + d; // unsigned wrap is harmless: the value is discarded on overflow
        }
        if (err == http_errc::none) {
            if (out && *out != n) return http_errc::conflicting_content_length;
            out = n;
        }
        if (comma == std::string_view::npos) break;
        rest.remove_prefix(comma + 1);
    }
    return err;
}

// RFC 9112 §7.1.1 chunk-ext, after the chunk size:
//   *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] )
// with chunk-ext-val = token / quoted-string. Trailing BWS is tolerated.
bool valid_chunk_extensions(std::string_view s) {
    std::size_t i = 0;
    const auto skip_bws = [&] {
        while (i < s.size() && is_ows(s[i])) ++i;
    };
    const auto token = [&] {
        const std::size_t start = i;
        while (i < s.size() && is_tchar(s[i])) ++i;
        return i > start;
    };
    for (;;) {
        skip_bws();
        if (i == s.size()) return true;
        if (s[i] != ';') return false;
        ++i;
        skip_bws();
        if (!token()) return false;
        skip_bws();
        if (i == s.size() || s[i] != '=') continue;
        ++i;
        skip_bws();
        if (i < s.size() && s[i] == '"') {
            ++i;
            bool closed = false;
            while (i < s.size()) {
                const char c = s[i];
                if (c == '"') {
                    ++i;
                    closed = true;
                    break;
                }
                if (c == '\\') { // quoted-pair = "\" ( HTAB / SP / VCHAR / obs-text )
                    ++i;
                    if (i == s.size() || !is_field_value_char(s[i])) return false;
                    ++i;
                    continue;
                }
                if (!is_field_value_char(c)) return false;
                ++i;
            }
            if (!closed) return false;
        } else if (!token()) {
            return false;
        }
    }
}

} // namespace

http_response_parser::http_response_parser(http_method request_method, http_parser_limits limits)
    : limits_(limits), method_(request_method) {}

void http_response_parser::reset(http_method request_method) {
    const http_parser_limits limits = limits_;
    std::string line = std::move(line_); // keeps its capacity for the next response
    line.clear();
    *this = http_response_parser(request_method, limits);
    line_ = std::move(line);
}

void http_response_parser::fail(http_errc code, std::string message) {
    state_ = state::failed;
    keep_alive_ = false;
    error_ = http_error{code, std::move(message)};
    // A partial body is useless and would depend on how the input was split.
    body_.clear();
    body_.shrink_to_fit();
}

http_response_parser::line_status http_response_parser::take_line(const char*& p, const char* end,
                                                                  std::size_t limit) {
    // Precondition: p != end.
    const auto available = static_cast<std::size_t>(end - p);
    const void* lf = std::memchr(p, '\n', available);
    const std::size_t n =
        lf != nullptr ? static_cast<std::size_t>(static_cast<const char*>(lf) - p) + 1 : available;
    // The check precedes the append, so a hostile peer cannot grow line_ past
    // the budget, and the verdict does not depend on how the input was split.
    if (n > limit || line_.size() > limit - n) return line_status::too_long;
    line_.append(p, n);
    p += n;
    if (lf == nullptr) return line_status::partial;
    line_wire_size_ = line_.size();
    line_.pop_back(); // LF
    // RFC 9112 §2.2: a bare LF is accepted as a line terminator.
    if (!line_.empty() && line_.back() == '\r') line_.pop_back();
    return line_status::ready;
}

bool http_response_parser::append_body(const char* p, std::size_t n) {
    if (n > limits_.max_body_bytes || body_.size() > limits_.max_body_bytes - n) {
        fail(http_errc::body_too_large, "response body exceeds the limit of " +
                                            std::to_string(limits_.max_body_bytes) + " bytes");
        return false;
    }
    body_.append(p, n);
    return true;
}

std::size_t http_response_parser::feed(std::string_view data) {
    const char* const begin = data.data();
    const char* const end = begin + data.size();
    const char* p = begin;
    if (p != end && !done()) received_any_ = true;

    while (p != end) {
        switch (state_) {
        case state::complete:
        case state::failed:
            return static_cast<std::size_t>(p - begin);

        case state::status_line: {
            if (line_.empty() && (*p == '\r' || *p == '\n')) {
                // Tolerate stray empty lines before a status line (some servers
                // send an extra CRLF after a body); they count against the budget.
                if (header_bytes_ == limits_.max_header_bytes) {
                    fail(http_errc::header_block_too_large,
                         "too many empty lines before the status line");
                    break;
                }
                ++header_bytes_;
                ++p;
                break;
            }
            // Reject non-HTTP peers (TLS alerts, SSH banners, HTML) on their
            // first bytes rather than after a whole line. Only bytes within the
            // header budget are checked: a byte past it is header_block_too_large
            // first, however the input is split (found by the fuzzer).
            const std::size_t budget = limits_.max_header_bytes - header_bytes_;
            const std::size_t checked = std::min(http_prefix.size(), budget);
            bool mismatch = false;
            for (std::size_t i = line_.size(), j = 0; i < checked && p + j != end; ++i, ++j) {
                if (p[j] != http_prefix[i]) {
                    mismatch = true;
                    break;
                }
            }
            if (mismatch) {
                fail(http_errc::not_http, "the response does not start with \"HTTP/\"");
                break;
            }
            switch (take_line(p, end, budget)) {
            case line_status::partial:
                break;
            case line_status::too_long:
                fail(http_errc::header_block_too_large,
                     "status line exceeds the header limit of " +
                         std::to_string(limits_.max_header_bytes) + " bytes");
                break;
            case line_status::ready:
                header_bytes_ += line_wire_size_;
                on_status_line();
                line_.clear();
                break;
            }
            break;
        }

        case state::header_line:
            switch (take_line(p, end, limits_.max_header_bytes - header_bytes_)) {
            case line_status::partial:
                break;
            case line_status::too_long:
                fail(http_errc::header_block_too_large,
                     "header section exceeds the limit of " +
                         std::to_string(limits_.max_header_bytes) + " bytes");
                break;
            case line_status::ready:
                header_bytes_ += line_wire_size_;
                on_header_line();
                line_.clear();
                break;
            }
            break;

        case state::body_length: {
            const auto n = static_cast<std::size_t>(
                std::min<std::uint64_t>(remaining_, static_cast<std::uint64_t>(end - p)));
            if (!append_body(p, n)) break;
            p += n;
            remaining_ -= n;
            if (remaining_ == 0) state_ = state::complete;
            break;
        }

        case state::body_until_close: {
            const auto n = static_cast<std::size_t>(end - p);
            if (!append_body(p, n)) break;
            p += n;
            break;
        }

        case state::chunk_size:
            switch (take_line(p, end, limits_.max_chunk_line_bytes)) {
            case line_status::partial:
                break;
            case line_status::too_long:
                fail(http_errc::bad_chunk_size, "chunk-size line longer than " +
                                                    std::to_string(limits_.max_chunk_line_bytes) +
                                                    " bytes");
                break;
            case line_status::ready:
                on_chunk_size_line();
                line_.clear();
                break;
            }
            break;

        case state::chunk_data: {
            const auto n = static_cast<std::size_t>(
                std::min<std::uint64_t>(remaining_, static_cast<std::uint64_t>(end - p)));
            if (!append_body(p, n)) break;
            p += n;
            remaining_ -= n;
            if (remaining_ == 0) state_ = state::chunk_data_cr;
            break;
        }

        case state::chunk_data_cr:
            if (*p == '\r') {
                state_ = state::chunk_data_lf;
            } else if (*p == '\n') {
                state_ = state::chunk_size;
            } else {
                fail(http_errc::bad_chunk, "chunk data is not followed by CRLF");
                break;
            }
            ++p;
            break;

        case state::chunk_data_lf:
            if (*p != '\n') {
                fail(http_errc::bad_chunk, "chunk data is not followed by CRLF");
                break;
            }
            ++p;
            state_ = state::chunk_size;
            break;

        case state::trailer_line:
            switch (take_line(p, end, limits_.max_header_bytes - header_bytes_)) {
            case line_status::partial:
                break;
            case line_status::too_long:
                fail(http_errc::header_block_too_large,
                     "trailer section exceeds the limit of " +
                         std::to_string(limits_.max_header_bytes) + " bytes");
                break;
            case line_status::ready:
                header_bytes_ += line_wire_size_;
                on_trailer_line();
                line_.clear();
                break;
            }
            break;
        }
    }
    return static_cast<std::size_t>(p - begin);
}

void http_response_parser::on_status_line() {
    // status-line = HTTP-version SP status-code SP [ reason-phrase ]   (RFC 9112 §4)
    // HTTP-version = "HTTP/" DIGIT "." DIGIT; the "HTTP/" prefix is already checked.
    const std::string_view line = line_;
    if (line.size() < 8 || !is_digit_ascii(line[5]) || line[6] != '.' || !is_digit_ascii(line[7])) {
        fail(http_errc::bad_status_line, "malformed HTTP version in the status line");
        return;
    }
    if (line[5] != '1') {
        fail(http_errc::unsupported_version,
             "unsupported HTTP version " + std::string(line.substr(0, 8)) + " (only HTTP/1.x)");
        return;
    }
    if (line.size() < 12 || line[8] != ' ' || !is_digit_ascii(line[9]) ||
        !is_digit_ascii(line[10]) || !is_digit_ascii(line[11]) ||
        (line.size() > 12 && line[12] != ' ')) {
        fail(http_errc::bad_status_line,
             "malformed status line (expected \"HTTP/1.x NNN reason\")");
        return;
    }
    const int code = (line[9] - '0') * 100 + (line[10] - '0') * 10 + (line[11] - '0');
    if (code < 100 || code > 599) {
        fail(http_errc::bad_status_line,
             "status code " + std::to_string(code) + " is outside 100-599");
        return;
    }
    // A missing SP + reason is tolerated ("HTTP/1.1 200"): RFC 9112 §4 says
    // clients should ignore the reason phrase.
    const std::string_view reason = line.size() > 13 ? line.substr(13) : std::string_view{};
    for (char c : reason) {
        if (!is_field_value_char(c)) {
            fail(http_errc::bad_status_line, "control character in the reason phrase");
            return;
        }
    }
    status_ = code;
    version_minor_ = line[7] == '0' ? 0 : 1;
    reason_.assign(reason);
    // Room for a typical header section at once rather than growing 1, 2, 4, 8, 16.
    headers_.fields_.reserve(16);
    state_ = state::header_line;
}

bool http_response_parser::add_field_line(http_headers& target, bool trailer) {
    const std::string_view line = line_;
    const char* const section = trailer ? "trailer" : "header";
    if (is_ows(line.front())) {
        // obs-fold (RFC 9112 §5.2): a user agent replaces it with SP.
        if (target.empty()) {
            fail(http_errc::bad_header,
                 std::string("whitespace before the first ") + section + " field");
            return false;
        }
        const std::string_view more = trim_ows(line);
        for (char c : more) {
            if (!is_field_value_char(c)) {
                fail(http_errc::bad_header,
                     std::string("control character in a folded ") + section + " line");
                return false;
            }
        }
        std::string& value = target.fields_.back().value;
        if (!more.empty()) {
            if (!value.empty()) value += ' ';
            value.append(more);
        }
        return true;
    }
    const std::size_t colon = line.find(':');
    if (colon == std::string_view::npos) {
        fail(http_errc::bad_header, std::string(section) + " line without a colon");
        return false;
    }
    const std::string_view name = line.substr(0, colon);
    if (!is_token(name)) {
        // Also rejects "Name : value" (RFC 9112 §5.1 forbids whitespace before the colon).
        fail(http_errc::bad_header, std::string("invalid ") + section + " field name");
        return false;
    }
    const std::string_view value = trim_ows(line.substr(colon + 1));
    for (char c : value) {
        if (!is_field_value_char(c)) {
            fail(http_errc::bad_header, "control character in the value of " +
                                            std::string(section) + " field " + std::string(name));
            return false;
        }
    }
    if (target.size() >= limits_.max_headers) {
        fail(http_errc::too_many_headers, std::string("more than ") +
                                              std::to_string(limits_.max_headers) + " " + section +
                                              " fields");
        return false;
    }
    target.add(std::string(name), std::string(value));
    return true;
}

void http_response_parser::on_header_line() {
    if (line_.empty()) {
        on_end_of_headers();
        return;
    }
    add_field_line(headers_, false);
}

void http_response_parser::on_end_of_headers() {
    if (status_ < 200) {
        if (status_ == 101) {
            fail(http_errc::unexpected_status,
                 "101 Switching Protocols, but no upgrade was requested");
            return;
        }
        // Interim response (RFC 9110 §15.2): skip it, the final one follows.
        if (++interim_ > limits_.max_interim_responses) {
            fail(http_errc::too_many_interim_responses,
                 "more than " + std::to_string(limits_.max_interim_responses) +
                     " interim (1xx) responses");
            return;
        }
        status_ = 0;
        reason_.clear();
        headers_.clear();
        header_bytes_ = 0;
        state_ = state::status_line;
        return;
    }

    headers_complete_ = true;
    keep_alive_ = version_minor_ >= 1 ? !headers_.has_token("Connection", "close")
                                      : headers_.has_token("Connection", "keep-alive");

    // RFC 9112 §6.3 rule 1: these responses never have content, whatever the headers say.
    if (method_ == http_method::head || status_ == 204 || status_ == 304) {
        framing_ = body_framing::none;
        state_ = state::complete;
        return;
    }

    // Rule 4: Transfer-Encoding overrides Content-Length.
    bool chunked = false;
    if (headers_.contains("Transfer-Encoding")) {
        for (const http_field& f : headers_) {
            if (!iequals(f.name, "Transfer-Encoding")) continue;
            http_errc err = http_errc::none;
            std::string what;
            for_each_list_element(f.value, [&](std::string_view coding) {
                if (err != http_errc::none) return;
                if (chunked) {
                    err = http_errc::bad_transfer_encoding;
                    what = "chunked is not the final transfer coding";
                } else if (iequals(coding, "chunked")) {
                    chunked = true;
                } else if (!iequals(coding, "identity")) {
                    err = http_errc::unsupported_transfer_coding;
                    what = "unsupported transfer coding \"" + std::string(coding) + "\"";
                }
            });
            if (err != http_errc::none) {
                fail(err, std::move(what));
                return;
            }
        }
    }
    if (chunked) {
        framing_ = body_framing::chunked;
        // RFC 9112 §6.1/§6.3: TE with Content-Length, or TE in HTTP/1.0, may be a
        // smuggling attempt: process the message, then close the connection.
        if (headers_.contains("Content-Length") || version_minor_ == 0) keep_alive_ = false;
        header_bytes_ = 0; // the trailer section gets its own budget
        state_ = state::chunk_size;
        return;
    }

    std::optional<std::uint64_t> length;
    for (const http_field& f : headers_) {
        if (!iequals(f.name, "Content-Length")) continue;
        switch (parse_content_length_value(f.value, length)) {
        case http_errc::none:
            break;
        case http_errc::content_length_overflow:
            fail(http_errc::content_length_overflow, "Content-Length does not fit in 64 bits");
            return;
        case http_errc::conflicting_content_length:
            fail(http_errc::conflicting_content_length, "conflicting Content-Length values");
            return;
        default:
            fail(http_errc::bad_content_length,
                 "Content-Length \"" + f.value + "\" is not a decimal number");
            return;
        }
    }
    if (length) {
        if (*length > limits_.max_body_bytes) {
            fail(http_errc::body_too_large, "Content-Length " + std::to_string(*length) +
                                                " exceeds the limit of " +
                                                std::to_string(limits_.max_body_bytes) + " bytes");
            return;
        }
        framing_ = body_framing::content_length;
        content_length_ = length;
        remaining_ = *length;
        // Reserve for honest servers, but not so much that a lying Content-Length
        // pins memory for a body that never comes.
        body_.reserve(static_cast<std::size_t>(std::min<std::uint64_t>(*length, 1u << 20)));
        state_ = *length == 0 ? state::complete : state::body_length;
        return;
    }

    // Rule 8: read until the server closes the connection.
    framing_ = body_framing::until_close;
    keep_alive_ = false;
    state_ = state::body_until_close;
}

void http_response_parser::on_chunk_size_line() {
    const std::string_view line = line_;
    std::uint64_t size = 0;
    std::size_t i = 0;
    for (; i < line.size(); ++i) {
        const int h = hex_value(line[i]);
        if (h < 0) break;
        if (size > (std::numeric_limits<std::uint64_t>::max() >> 4)) {
            fail(http_errc::chunk_size_overflow, "chunk size does not fit in 64 bits");
            return;
        }
        size = (size << 4) | static_cast<std::uint64_t>(h);
    }
    if (i == 0) {
        fail(http_errc::bad_chunk_size, "chunk size is not a hexadecimal number");
        return;
    }
    if (!valid_chunk_extensions(line.substr(i))) {
        fail(http_errc::bad_chunk_size, "malformed chunk extension");
        return;
    }
    if (size == 0) {
        state_ = state::trailer_line;
        return;
    }
    if (size > limits_.max_body_bytes - body_.size()) {
        fail(http_errc::body_too_large, "chunked body exceeds the limit of " +
                                            std::to_string(limits_.max_body_bytes) + " bytes");
        return;
    }
    remaining_ = size;
    state_ = state::chunk_data;
}

void http_response_parser::on_trailer_line() {
    if (line_.empty()) {
        state_ = state::complete;
        return;
    }
    add_field_line(trailers_, true);
}

void http_response_parser::finish() {
    switch (state_) {
    case state::complete:
    case state::failed:
        return;
    case state::body_until_close:
        state_ = state::complete;
        return;
    case state::status_line:
        if (!received_any_) {
            fail(http_errc::eof_before_response, "connection closed before any response byte");
        } else {
            fail(http_errc::premature_eof, "connection closed inside the status line");
        }
        return;
    case state::header_line:
        fail(http_errc::premature_eof, "connection closed inside the header section");
        return;
    case state::body_length:
        fail(http_errc::premature_eof, "connection closed after " + std::to_string(body_.size()) +
                                           " of " + std::to_string(content_length_.value_or(0)) +
                                           " body bytes");
        return;
    case state::chunk_size:
    case state::chunk_data:
    case state::chunk_data_cr:
    case state::chunk_data_lf:
        fail(http_errc::premature_eof, "connection closed inside the chunked body");
        return;
    case state::trailer_line:
        fail(http_errc::premature_eof, "connection closed inside the trailer section");
        return;
    }
}

} // namespace scraper

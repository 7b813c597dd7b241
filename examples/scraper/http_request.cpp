#include "http_request.hpp"

#include <stdexcept>
#include <string_view>

#include "text_util.hpp"

namespace scraper {

namespace {

void check_field(std::string_view name, std::string_view value) {
    if (!is_token(name))
        throw std::invalid_argument("invalid HTTP header name \"" + std::string(name) + "\"");
    for (char c : value)
        if (!is_field_value_char(c))
            throw std::invalid_argument("control character in the value of HTTP header \"" +
                                        std::string(name) + "\"");
    if (trim_ows(value).size() != value.size())
        throw std::invalid_argument(
            "leading or trailing whitespace in the value of HTTP header \"" + std::string(name) +
            "\"");
}

void append_field(std::string& out, std::string_view name, std::string_view value) {
    out.append(name);
    out += ": ";
    out.append(value);
    out += "\r\n";
}

} // namespace

std::string serialize_request(http_method method, const url& target,
                              const request_options& options) {
    check_field("User-Agent", options.user_agent);
    for (const http_field& f : options.extra_headers) check_field(f.name, f.value);

    std::string out;
    out.reserve(128 + target.str().size() + options.user_agent.size());
    out.append(to_string(method));
    out += ' ';
    // A normalised url holds no spaces or controls: the target is safe as is.
    out.append(target.path());
    if (!target.query().empty()) {
        out += '?';
        out.append(target.query());
    }
    out += " HTTP/1.1\r\n";
    append_field(out, "Host", target.authority());
    if (!options.user_agent.empty()) append_field(out, "User-Agent", options.user_agent);
    if (options.accept_gzip) append_field(out, "Accept-Encoding", "gzip");
    append_field(out, "Connection", options.keep_alive ? "keep-alive" : "close");
    for (const http_field& f : options.extra_headers) append_field(out, f.name, f.value);
    out += "\r\n";
    return out;
}

} // namespace scraper

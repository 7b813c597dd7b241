#include "url.hpp"

#include <array>
#include <charconv>
#include <optional>
#include <utility>

#include "text_util.hpp"

namespace scraper {

namespace {

constexpr bool is_unreserved(char c) noexcept {
    return is_alpha_ascii(c) || is_digit_ascii(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

constexpr bool is_sub_delim(char c) noexcept {
    switch (c) {
    case '!':
    case '$':
    case '&':
    case '\'':
    case '(':
    case ')':
    case '*':
    case '+':
    case ',':
    case ';':
    case '=':
        return true;
    default:
        return false;
    }
}

// pchar / "/" / "?" minus '%', which is handled separately.
constexpr bool is_component_char(char c) noexcept {
    return is_unreserved(c) || is_sub_delim(c) || c == ':' || c == '@' || c == '/' || c == '?';
}

// is_component_char as a table: URL components are scanned byte by byte.
constexpr auto component_chars = [] {
    std::array<bool, 256> t{};
    for (std::size_t i = 0; i < t.size(); ++i) t[i] = is_component_char(static_cast<char>(i));
    return t;
}();

// True if normalize_percent_encoding would return `s` unchanged because it
// holds nothing but component characters (no '%' either).
bool only_component_chars(std::string_view s) noexcept {
    for (char c : s)
        if (!component_chars[static_cast<unsigned char>(c)]) return false;
    return true;
}

// A reference split into its RFC 3986 §3 components (fragment discarded).
struct reference_parts {
    std::optional<std::string_view> scheme;
    std::optional<std::string_view> authority;
    std::string_view path;
    std::optional<std::string_view> query;
};

// RFC 3986 Appendix B, by hand.
reference_parts split_reference(std::string_view s) {
    reference_parts r;
    if (!s.empty() && is_alpha_ascii(s[0])) {
        std::size_t i = 1;
        while (i < s.size() && (is_alpha_ascii(s[i]) || is_digit_ascii(s[i]) || s[i] == '+' ||
                                s[i] == '-' || s[i] == '.'))
            ++i;
        if (i < s.size() && s[i] == ':') {
            r.scheme = s.substr(0, i);
            s.remove_prefix(i + 1);
        }
    }
    if (const std::size_t hash = s.find('#'); hash != std::string_view::npos) s = s.substr(0, hash);
    if (s.substr(0, 2) == "//") {
        s.remove_prefix(2);
        const std::size_t end = s.find_first_of("/?");
        r.authority = s.substr(0, end);
        s = end == std::string_view::npos ? std::string_view{} : s.substr(end);
    }
    const std::size_t q = s.find('?');
    r.path = s.substr(0, q);
    if (q != std::string_view::npos) r.query = s.substr(q + 1);
    return r;
}

// WHATWG-style cleanup of text copied from documents: strip leading and
// trailing C0 controls and spaces, remove ASCII tab and newlines. The usual
// input needs no removal inside: the result is then a view of `s` itself, else
// of `storage`.
std::string_view clean_input(std::string_view s, std::string& storage) {
    while (!s.empty() && static_cast<unsigned char>(s.front()) <= 0x20) s.remove_prefix(1);
    while (!s.empty() && static_cast<unsigned char>(s.back()) <= 0x20) s.remove_suffix(1);
    // A plain loop: string_view::find_first_of calls memchr once per byte.
    bool clean = true;
    for (char c : s)
        if (c == '\t' || c == '\n' || c == '\r') {
            clean = false;
            break;
        }
    if (clean) return s; // the usual case
    storage.clear();
    storage.reserve(s.size());
    for (char c : s)
        if (c != '\t' && c != '\n' && c != '\r') storage += c;
    return storage;
}

std::string quoted(std::string_view s) {
    constexpr std::size_t max_shown = 200;
    std::string out = "\"";
    out.append(s.substr(0, max_shown));
    if (s.size() > max_shown) out += "...";
    out += '"';
    return out;
}

// RFC 3986 §5.2.3 merge, for a base URI with an authority.
std::string merge_paths(std::string_view base_path, std::string_view ref_path) {
    // Built by append: g++ 12 -O3 reports a false -Wrestrict on `"/" + std::string(...)`
    // (GCC PR 105651).
    const std::size_t slash = base_path.rfind('/');
    std::string out(slash == std::string_view::npos ? std::string_view("/")
                                                    : base_path.substr(0, slash + 1));
    out.append(ref_path);
    return out;
}

} // namespace

std::uint16_t default_port(std::string_view scheme) noexcept {
    if (scheme == "http") return 80;
    if (scheme == "https") return 443;
    return 0;
}

std::string normalize_percent_encoding(std::string_view s) {
    if (only_component_chars(s)) return std::string(s); // already normal: the usual case
    std::string out;
    out.reserve(s.size());
    const auto encode = [&out](unsigned char b) {
        out += '%';
        out += hex_digit_upper(b >> 4);
        out += hex_digit_upper(b & 0xFu);
    };
    for (std::size_t i = 0; i < s.size(); ++i) {
        const char c = s[i];
        if (c == '%') {
            if (i + 2 < s.size() && hex_value(s[i + 1]) >= 0 && hex_value(s[i + 2]) >= 0) {
                const auto v =
                    static_cast<unsigned char>(hex_value(s[i + 1]) * 16 + hex_value(s[i + 2]));
                if (is_unreserved(static_cast<char>(v))) {
                    out += static_cast<char>(v);
                } else {
                    encode(v);
                }
                i += 2;
            } else {
                out += "%25";
            }
        } else if (is_component_char(c)) {
            out += c;
        } else {
            encode(static_cast<unsigned char>(c));
        }
    }
    return out;
}

std::string remove_dot_segments(std::string_view in) {
    // Every dot segment starts the input or follows a '/': without either
    // there is nothing to remove (the usual case).
    if ((in.empty() || in.front() != '.') && in.find("/.") == std::string_view::npos)
        return std::string(in);
    std::string out;
    out.reserve(in.size());
    const auto drop_last_segment = [&out] {
        const std::size_t slash = out.rfind('/');
        out.erase(slash == std::string::npos ? 0 : slash);
    };
    while (!in.empty()) {
        if (in.substr(0, 3) == "../") {
            in.remove_prefix(3);
        } else if (in.substr(0, 2) == "./") {
            in.remove_prefix(2);
        } else if (in.substr(0, 3) == "/./") {
            in.remove_prefix(2);
        } else if (in == "/.") {
            in = "/";
        } else if (in.substr(0, 4) == "/../") {
            in.remove_prefix(3);
            drop_last_segment();
        } else if (in == "/..") {
            in = "/";
            drop_last_segment();
        } else if (in == "." || in == "..") {
            in = {};
        } else {
            const std::size_t next = in.find('/', in.front() == '/' ? 1 : 0);
            out.append(in.substr(0, next));
            in = next == std::string_view::npos ? std::string_view{} : in.substr(next);
        }
    }
    return out;
}

std::string host_key::to_string() const {
    return scheme + "://" + host + ":" + std::to_string(port);
}

std::string_view url::hostname() const noexcept {
    std::string_view h = host_;
    if (h.size() >= 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
    return h;
}

std::string url::target() const {
    return query_.empty() ? path_ : path_ + "?" + query_;
}

std::string url::authority() const {
    std::string out;
    append_authority(out);
    return out;
}

void url::append_authority(std::string& out) const {
    out += host_;
    if (port_ != default_port(scheme_)) {
        char digits[8];
        const auto [end, ec] = std::to_chars(digits, digits + sizeof digits, port_);
        (void)ec; // a uint16_t always fits
        out += ':';
        out.append(digits, end);
    }
}

// Builds normalised URLs from components; the only way to make a url.
struct url_builder {
    static result<url, url_error> build(std::string_view scheme_in, std::string_view authority,
                                        std::string_view path,
                                        std::optional<std::string_view> query) {
        url u;
        u.scheme_ = to_lower_ascii(scheme_in);
        if (u.scheme_ != "http" && u.scheme_ != "https")
            return url_error{url_errc::unsupported_scheme,
                             "unsupported scheme " + quoted(scheme_in) + " (only http and https)"};

        if (authority.find('@') != std::string_view::npos)
            return url_error{url_errc::userinfo,
                             "credentials in URLs (user:password@) are not supported"};

        std::string_view host;
        std::optional<std::string_view> port_text;
        if (!authority.empty() && authority.front() == '[') {
            const std::size_t close = authority.find(']');
            if (close == std::string_view::npos)
                return url_error{url_errc::invalid_host,
                                 "unterminated IPv6 literal in " + quoted(authority)};
            host = authority.substr(0, close + 1);
            const std::string_view rest = authority.substr(close + 1);
            if (!rest.empty()) {
                if (rest.front() != ':')
                    return url_error{url_errc::invalid_host,
                                     "unexpected characters after IPv6 literal in " +
                                         quoted(authority)};
                port_text = rest.substr(1);
            }
            const std::string_view inner = host.substr(1, host.size() - 2);
            if (inner.empty()) return url_error{url_errc::invalid_host, "empty IPv6 literal"};
            for (char c : inner)
                if (hex_value(c) < 0 && c != ':' && c != '.')
                    return url_error{url_errc::invalid_host,
                                     "invalid IPv6 literal " + quoted(host)};
        } else {
            const std::size_t colon = authority.rfind(':');
            host = authority.substr(0, colon);
            if (colon != std::string_view::npos) port_text = authority.substr(colon + 1);
            for (char c : host)
                if (!is_unreserved(c))
                    return url_error{
                        url_errc::invalid_host,
                        "invalid host " + quoted(host) +
                            " (letters, digits, '-', '.', '_', '~' only; give IDNs in punycode)"};
        }
        if (host.empty()) return url_error{url_errc::missing_host, "URL has no host"};
        u.host_ = to_lower_ascii(host);

        u.port_ = default_port(u.scheme_);
        if (port_text && !port_text->empty()) {
            unsigned long value = 0;
            for (char c : *port_text) {
                if (!is_digit_ascii(c) || value > 65535)
                    return url_error{url_errc::invalid_port, "invalid port " + quoted(*port_text)};
                value = value * 10 + static_cast<unsigned long>(c - '0');
            }
            if (value == 0 || value > 65535)
                return url_error{url_errc::invalid_port,
                                 "port " + quoted(*port_text) + " is outside 1-65535"};
            u.port_ = static_cast<std::uint16_t>(value);
        }

        // Percent-encoding normalisation before dot-segment removal (RFC 3986
        // §6.2.2 order), so "%2E%2E" is a dot segment too.
        u.path_ = remove_dot_segments(normalize_percent_encoding(path));
        if (u.path_.empty()) u.path_ = "/";
        if (query) u.query_ = normalize_percent_encoding(*query);

        u.href_.reserve(u.scheme_.size() + 3 + u.host_.size() + 6 + u.path_.size() + 1 +
                        u.query_.size());
        u.href_ += u.scheme_;
        u.href_ += "://";
        u.append_authority(u.href_);
        u.href_ += u.path_;
        if (!u.query_.empty()) {
            u.href_ += '?';
            u.href_ += u.query_;
        }
        return u;
    }
};

result<url, url_error> url::parse(std::string_view text) {
    std::string storage;
    const std::string_view cleaned = clean_input(text, storage);
    if (cleaned.empty()) return url_error{url_errc::empty, "empty URL"};
    const reference_parts r = split_reference(cleaned);
    if (!r.scheme)
        return url_error{url_errc::not_absolute,
                         "relative URL " + quoted(cleaned) + " needs a base URL"};
    if (!r.authority) {
        if (!iequals(*r.scheme, "http") && !iequals(*r.scheme, "https"))
            return url_error{url_errc::unsupported_scheme,
                             "unsupported scheme " + quoted(*r.scheme) + " (only http and https)"};
        return url_error{url_errc::missing_host, "URL " + quoted(cleaned) + " has no host"};
    }
    return url_builder::build(*r.scheme, *r.authority, r.path, r.query);
}

result<url, url_error> url::resolve(std::string_view reference) const {
    std::string storage;
    const std::string_view cleaned = clean_input(reference, storage);
    const reference_parts r = split_reference(cleaned);
    // RFC 3986 §5.2.2 (strict: a reference with a scheme is absolute).
    if (r.scheme) {
        if (!r.authority) {
            if (!iequals(*r.scheme, "http") && !iequals(*r.scheme, "https"))
                return url_error{url_errc::unsupported_scheme, "unsupported scheme " +
                                                                   quoted(*r.scheme) +
                                                                   " (only http and https)"};
            return url_error{url_errc::missing_host, "URL " + quoted(cleaned) + " has no host"};
        }
        return url_builder::build(*r.scheme, *r.authority, remove_dot_segments(r.path), r.query);
    }
    if (r.authority)
        return url_builder::build(scheme_, *r.authority, remove_dot_segments(r.path), r.query);

    const std::string base_authority = authority();
    if (r.path.empty()) {
        // Same document: base path, and the base query unless the reference has one.
        return url_builder::build(scheme_, base_authority, path_,
                                  r.query ? r.query : std::optional<std::string_view>(query_));
    }
    if (r.path.front() == '/')
        return url_builder::build(scheme_, base_authority, remove_dot_segments(r.path), r.query);
    return url_builder::build(scheme_, base_authority,
                              remove_dot_segments(merge_paths(path_, r.path)), r.query);
}

} // namespace scraper

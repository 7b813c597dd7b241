// ASCII text helpers shared by the scraper's sans-I/O parts.
//
// Everything here is locale-independent and works on bytes: HTTP field names,
// URL schemes and hosts, robots.txt keys and HTML tag names are ASCII
// case-insensitive by their specifications, whatever the process locale says.
#pragma once

#include <array>
#include <cstddef>
#include <string>
#include <string_view>

namespace scraper {

/// Returns `c` lower-cased if it is an ASCII upper-case letter, else `c`.
[[nodiscard]] constexpr char to_lower_ascii(char c) noexcept {
    return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

/// Returns a copy of `s` with ASCII letters lower-cased.
[[nodiscard]] inline std::string to_lower_ascii(std::string_view s) {
    std::string out(s);
    for (char& c : out) c = to_lower_ascii(c);
    return out;
}

/// ASCII case-insensitive equality.
[[nodiscard]] constexpr bool iequals(std::string_view a, std::string_view b) noexcept {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (to_lower_ascii(a[i]) != to_lower_ascii(b[i])) return false;
    return true;
}

/// ASCII case-insensitive prefix test.
[[nodiscard]] constexpr bool istarts_with(std::string_view s, std::string_view prefix) noexcept {
    return s.size() >= prefix.size() && iequals(s.substr(0, prefix.size()), prefix);
}

[[nodiscard]] constexpr bool is_alpha_ascii(char c) noexcept {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

[[nodiscard]] constexpr bool is_digit_ascii(char c) noexcept {
    return c >= '0' && c <= '9';
}

/// Value of a hexadecimal digit, or -1.
[[nodiscard]] constexpr int hex_value(char c) noexcept {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/// Upper-case hexadecimal digit for a value in [0, 15].
[[nodiscard]] constexpr char hex_digit_upper(unsigned v) noexcept {
    return "0123456789ABCDEF"[v & 0xFu];
}

/// RFC 9110 §5.6.2 `tchar`: the characters of a token (field names, codings).
[[nodiscard]] constexpr bool is_tchar(char c) noexcept {
    if (is_alpha_ascii(c) || is_digit_ascii(c)) return true;
    switch (c) {
    case '!':
    case '#':
    case '$':
    case '%':
    case '&':
    case '\'':
    case '*':
    case '+':
    case '-':
    case '.':
    case '^':
    case '_':
    case '`':
    case '|':
    case '~':
        return true;
    default:
        return false;
    }
}

/// is_tchar as a table: header names are checked byte by byte on every response.
inline constexpr auto tchar_table = [] {
    std::array<bool, 256> t{};
    for (std::size_t i = 0; i < t.size(); ++i) t[i] = is_tchar(static_cast<char>(i));
    return t;
}();

/// True if `s` is a non-empty RFC 9110 token.
[[nodiscard]] constexpr bool is_token(std::string_view s) noexcept {
    if (s.empty()) return false;
    for (char c : s)
        if (!tchar_table[static_cast<unsigned char>(c)]) return false;
    return true;
}

/// RFC 9110 §5.5 field-value octet: HTAB, SP, VCHAR or obs-text (0x80-0xFF).
[[nodiscard]] constexpr bool is_field_value_char(char c) noexcept {
    const auto u = static_cast<unsigned char>(c);
    return u == '\t' || (u >= 0x20 && u != 0x7F);
}

/// Optional whitespace (RFC 9110 §5.6.3): SP or HTAB.
[[nodiscard]] constexpr bool is_ows(char c) noexcept {
    return c == ' ' || c == '\t';
}

/// `s` without leading and trailing SP/HTAB.
[[nodiscard]] constexpr std::string_view trim_ows(std::string_view s) noexcept {
    while (!s.empty() && is_ows(s.front())) s.remove_prefix(1);
    while (!s.empty() && is_ows(s.back())) s.remove_suffix(1);
    return s;
}

/// HTML/WHATWG ASCII whitespace: SP, HTAB, LF, FF, CR.
[[nodiscard]] constexpr bool is_html_space(char c) noexcept {
    return c == ' ' || c == '\t' || c == '\n' || c == '\f' || c == '\r';
}

/// Calls `f(element)` for each element of an RFC 9110 comma-separated list,
/// trimmed of OWS; empty elements are skipped (RFC 9110 §5.6.1.2).
template <class F>
constexpr void for_each_list_element(std::string_view list, F&& f) {
    while (!list.empty()) {
        const std::size_t comma = list.find(',');
        const std::string_view element = trim_ows(list.substr(0, comma));
        if (!element.empty()) f(element);
        if (comma == std::string_view::npos) break;
        list.remove_prefix(comma + 1);
    }
}

} // namespace scraper

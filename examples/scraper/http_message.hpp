// HTTP/1.1 message vocabulary shared by the response parser and the request
// serialiser: methods and an ordered, case-insensitive header list.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "text_util.hpp"

namespace scraper {

/// The request methods the scraper sends. Both are safe and idempotent
/// (RFC 9110 §9.2.2), so any request may be retried.
enum class http_method : unsigned char { get, head };

/// "GET" or "HEAD".
[[nodiscard]] constexpr std::string_view to_string(http_method m) noexcept {
    return m == http_method::head ? "HEAD" : "GET";
}

/// One header (or trailer) field as received: name as spelled by the peer,
/// value with leading/trailing whitespace removed.
struct http_field {
    std::string name;
    std::string value;

    friend bool operator==(const http_field&, const http_field&) = default;
};

/// An ordered list of header fields. Lookup is ASCII case-insensitive on the
/// name; repeated fields are kept in arrival order (RFC 9110 §5.3).
class http_headers {
public:
    using const_iterator = std::vector<http_field>::const_iterator;

    /// Appends a field. No validation: the parser validates what it adds.
    void add(std::string name, std::string value) {
        // A response has about ten fields: one allocation for them, not four.
        if (fields_.capacity() == 0) fields_.reserve(typical_fields);
        fields_.push_back(http_field{std::move(name), std::move(value)});
    }

    /// Value of the first field named `name`, if any.
    [[nodiscard]] std::optional<std::string_view> find(std::string_view name) const noexcept {
        for (const http_field& f : fields_)
            if (iequals(f.name, name)) return std::string_view(f.value);
        return std::nullopt;
    }

    /// Values of every field named `name`, in arrival order.
    [[nodiscard]] std::vector<std::string_view> find_all(std::string_view name) const {
        std::vector<std::string_view> out;
        for (const http_field& f : fields_)
            if (iequals(f.name, name)) out.emplace_back(f.value);
        return out;
    }

    /// Number of fields named `name`.
    [[nodiscard]] std::size_t count(std::string_view name) const noexcept {
        std::size_t n = 0;
        for (const http_field& f : fields_)
            if (iequals(f.name, name)) ++n;
        return n;
    }

    [[nodiscard]] bool contains(std::string_view name) const noexcept {
        return find(name).has_value();
    }

    /// True if any field named `name` holds `token` as an element of its
    /// comma-separated list, compared case-insensitively
    /// (e.g. `has_token("Connection", "close")`).
    [[nodiscard]] bool has_token(std::string_view name, std::string_view token) const noexcept {
        for (const http_field& f : fields_) {
            if (!iequals(f.name, name)) continue;
            bool found = false;
            for_each_list_element(f.value,
                                  [&](std::string_view e) { found = found || iequals(e, token); });
            if (found) return true;
        }
        return false;
    }

    [[nodiscard]] std::size_t size() const noexcept {
        return fields_.size();
    }
    [[nodiscard]] bool empty() const noexcept {
        return fields_.empty();
    }
    [[nodiscard]] const_iterator begin() const noexcept {
        return fields_.begin();
    }
    [[nodiscard]] const_iterator end() const noexcept {
        return fields_.end();
    }
    [[nodiscard]] const http_field& operator[](std::size_t i) const {
        return fields_[i];
    }
    void clear() noexcept {
        fields_.clear();
    }

private:
    friend class http_response_parser; // appends obs-fold continuation lines
    static constexpr std::size_t typical_fields = 12;
    std::vector<http_field> fields_;
};

} // namespace scraper

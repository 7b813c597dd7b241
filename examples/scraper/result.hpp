// A value-or-error return type: the scraper's sans-I/O parts report expected
// failures (bad input from the network) as values, never as exceptions.
#pragma once

#include <stdexcept>
#include <type_traits>
#include <utility>
#include <variant>

namespace scraper {

/// Thrown by `result::value()` when the result holds an error: a caller bug.
class bad_result_access : public std::logic_error {
public:
    bad_result_access() : std::logic_error("scraper::result: value() called on an error result") {}
};

/// Either a `T` or an `E` (a small `std::expected` for C++20).
///
/// `T` and `E` must be distinct types. Construct implicitly from either.
/// @par Exceptions
/// `value()` throws `bad_result_access` if there is no value; `error()` throws
/// `std::logic_error` if there is no error. Nothing else throws beyond what
/// moving `T`/`E` throws.
template <class T, class E>
class result {
    static_assert(!std::is_same_v<T, E>, "result<T, E> needs distinct T and E");

public:
    result(T value) : v_(std::in_place_index<0>, std::move(value)) {} // NOLINT: implicit by design
    result(E error) : v_(std::in_place_index<1>, std::move(error)) {} // NOLINT: implicit by design

    [[nodiscard]] bool has_value() const noexcept {
        return v_.index() == 0;
    }
    explicit operator bool() const noexcept {
        return has_value();
    }

    [[nodiscard]] T& value() & {
        check_value();
        return std::get<0>(v_);
    }
    [[nodiscard]] const T& value() const& {
        check_value();
        return std::get<0>(v_);
    }
    [[nodiscard]] T&& value() && {
        check_value();
        return std::get<0>(std::move(v_));
    }

    [[nodiscard]] const E& error() const& {
        if (has_value())
            throw std::logic_error("scraper::result: error() called on a value result");
        return std::get<1>(v_);
    }

    T& operator*() & {
        return value();
    }
    const T& operator*() const& {
        return value();
    }
    T* operator->() {
        return &value();
    }
    const T* operator->() const {
        return &value();
    }

private:
    void check_value() const {
        if (!has_value()) throw bad_result_access();
    }

    std::variant<T, E> v_;
};

} // namespace scraper

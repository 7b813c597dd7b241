// tether/detail/ring_buffer.hpp — the FIFO storage of bounded_queue.
//
// A power-of-two circular buffer of uninitialised slots. It starts with room for
// min(limit, 1024) items (rounded up to a power of two) and doubles when full, so
// a small queue never allocates after construction and an unbounded (or huge)
// queue does not reserve its whole capacity up front. The owner checks the
// capacity limit; the buffer only grows when asked to append to a full storage.
#pragma once

#include <tether/config.hpp>

#include <algorithm>
#include <bit>
#include <cstddef>
#include <memory>
#include <new>
#include <type_traits>
#include <utility>

namespace tether::detail {

template <class T>
class ring_buffer {
public:
    static constexpr std::size_t initial_limit = 1024;

    explicit ring_buffer(std::size_t limit) {
        const std::size_t n = std::min(limit, initial_limit);
        if (n != 0) allocate_storage(std::bit_ceil(n));
    }
    ring_buffer(const ring_buffer&) = delete;
    ring_buffer& operator=(const ring_buffer&) = delete;
    ~ring_buffer() {
        clear();
        if (slots_) std::allocator<T>().deallocate(slots_, mask_ + 1);
    }

    std::size_t size() const noexcept {
        return size_;
    }

    /// Precondition: size() != 0.
    T& front() noexcept {
        return slots_[head_];
    }

    /// Appends; grows the storage first if it is full. Strong guarantee.
    template <class U>
    void push_back(U&& v) {
        // Storage exists whenever the limit is non-zero (a zero limit buffers nothing).
        if (size_ == mask_ + 1) [[unlikely]]
            grow();
        ::new (static_cast<void*>(slots_ + ((head_ + size_) & mask_))) T(std::forward<U>(v));
        ++size_;
    }

    /// Destroys the front item. Precondition: size() != 0.
    void pop_front() noexcept {
        slots_[head_].~T();
        head_ = (head_ + 1) & mask_;
        --size_;
    }

    void clear() noexcept {
        while (size_ != 0) pop_front();
        head_ = 0;
    }

private:
    void allocate_storage(std::size_t n) {
        slots_ = std::allocator<T>().allocate(n);
        mask_ = n - 1;
    }

    TETHER_NOINLINE void grow() {
        const std::size_t old_n = slots_ ? mask_ + 1 : 0;
        const std::size_t n = old_n ? old_n * 2 : 1;
        T* fresh = std::allocator<T>().allocate(n);
        std::size_t moved = 0;
        try {
            for (; moved < size_; ++moved)
                ::new (static_cast<void*>(fresh + moved))
                    T(std::move_if_noexcept(slots_[(head_ + moved) & mask_]));
        } catch (...) {
            for (std::size_t i = 0; i < moved; ++i) fresh[i].~T();
            std::allocator<T>().deallocate(fresh, n);
            throw;
        }
        const std::size_t count = size_;
        clear();
        if (slots_) std::allocator<T>().deallocate(slots_, old_n);
        slots_ = fresh;
        mask_ = n - 1;
        head_ = 0;
        size_ = count;
    }

    T* slots_ = nullptr;
    std::size_t mask_ = 0; // storage size - 1 (a power of two minus one)
    std::size_t head_ = 0;
    std::size_t size_ = 0;
};

} // namespace tether::detail

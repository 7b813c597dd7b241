// tether/detail/frame_allocator.hpp — recycling of coroutine frames.
//
// Task frames are allocated from per-thread free lists, one per 16-byte size class,
// so that a spawn in steady state reuses warm memory instead of calling malloc (and
// touching new pages). Frames larger than the biggest class go to operator new.
// Under AddressSanitizer pooling is disabled so that use-after-free of a frame is
// still reported.
#pragma once

#include <tether/config.hpp>

#include <cstddef>
#include <new>

namespace tether::detail {

class frame_pool {
public:
    // Class c holds blocks of (c + 1) * granule - header bytes: glibc's malloc
    // carves 16-byte-aligned chunks with an 8-byte header, so such a block fills
    // its chunk exactly (a 248-byte frame takes a 256-byte chunk; a 16k-byte
    // class would take 16k + 16).
    static constexpr std::size_t granule = 16;
    static constexpr std::size_t header = 8;
    static constexpr std::size_t class_count = 64; // frames up to 1 KiB are pooled
    static constexpr std::size_t max_cached_bytes = std::size_t{64} << 20;

    static void* allocate(std::size_t n) {
#if !defined(TETHER_ASAN)
        const std::size_t c = size_class(n);
        if (c < class_count) {
            frame_pool& pool = local();
            if (free_block* b = pool.heads_[c]) {
                pool.heads_[c] = b->next;
                pool.cached_bytes_ -= block_size(c);
                return b;
            }
            return ::operator new(block_size(c));
        }
#endif
        return ::operator new(n);
    }

    static void deallocate(void* p, std::size_t n) noexcept {
#if !defined(TETHER_ASAN)
        const std::size_t c = size_class(n);
        if (c < class_count) {
            frame_pool& pool = local();
            const std::size_t bytes = block_size(c);
            // Invariant: cached_bytes_ <= max_cached_bytes, so a burst of a million
            // frames does not pin their memory for the thread's lifetime.
            if (pool.cached_bytes_ + bytes <= max_cached_bytes) {
                auto* b = static_cast<free_block*>(p);
                b->next = pool.heads_[c];
                pool.heads_[c] = b;
                pool.cached_bytes_ += bytes;
                return;
            }
            ::operator delete(p);
            return;
        }
#endif
        ::operator delete(p);
        (void)n;
    }

    frame_pool() = default;
    frame_pool(const frame_pool&) = delete;
    frame_pool& operator=(const frame_pool&) = delete;
    ~frame_pool() {
        for (free_block*& head : heads_) {
            while (head) {
                free_block* next = head->next;
                ::operator delete(head);
                head = next;
            }
        }
    }

private:
    struct free_block {
        free_block* next;
    };

    static std::size_t size_class(std::size_t n) noexcept {
        return (n + header - 1) / granule;
    }
    static std::size_t block_size(std::size_t c) noexcept {
        return (c + 1) * granule - header;
    }

    static frame_pool& local() noexcept {
        // Frames are allocated and freed on the thread that runs their task tree; a
        // frame freed on another thread simply joins that thread's list.
        static thread_local frame_pool pool;
        return pool;
    }

    free_block* heads_[class_count] = {};
    std::size_t cached_bytes_ = 0;
};

} // namespace tether::detail

// Mistakes the type system catches (issue 8). Each TETHER_MISUSE_<name> block
// must fail to compile with the diagnostic tests/CMakeLists.txt expects; with no
// block selected the file compiles (the control), which proves that a failure
// comes from the misuse and not from the set-up.
#include <tether/tether.hpp>

#include <chrono>
#include <utility>

using namespace std::chrono_literals;

tether::task<int> answer() {
    co_return 42;
}

tether::task<void> control() {
    tether::semaphore sem(1);
    tether::semaphore_permit permit = co_await sem.acquire();
    tether::semaphore_permit moved = std::move(permit); // moving is fine
    tether::task<int> t = answer();
    const int v = co_await std::move(t);
    (void)v;
    (void)moved;

#if defined(TETHER_MISUSE_discard_task)
    answer(); // a task that is never awaited never runs: [[nodiscard]]
#endif
#if defined(TETHER_MISUSE_copy_task)
    tether::task<int> a = answer();
    tether::task<int> b = a; // tasks are move-only
#endif
#if defined(TETHER_MISUSE_copy_permit)
    tether::semaphore_permit p2 = co_await sem.acquire();
    tether::semaphore_permit p3 = p2; // a permit is released once: move-only
#endif
#if defined(TETHER_MISUSE_copy_event)
    tether::event e;
    tether::event f = e;
#endif
#if defined(TETHER_MISUSE_timeout_lvalue_task)
    tether::task<int> c = answer();
    (void)co_await tether::with_timeout(1s, c); // must be moved in: std::move(c)
#endif
#if defined(TETHER_MISUSE_copy_queue)
    tether::bounded_queue<int> q(4);
    tether::bounded_queue<int> q2 = q;
#endif
}

int main() {
    asio::io_context io;
    tether::run(io, control());
}

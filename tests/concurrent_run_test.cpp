// An io_context that runs tether tasks must be run by one thread at a time
// (DESIGN.md §2): tether's primitives are not synchronised. A second thread that
// enters the scheduler while a drain is on another thread's stack aborts the
// process with a message that says what is wrong, instead of corrupting state.
//
// The scenario runs in a forked child (the abort is the expected outcome). It is
// ordered without sleeps: the first thread's drain is blocked inside a task
// (until the abort) when the second thread starts, and the only ready handler
// left is an Asio completion that resumes a tether task.
#include <tether/task.hpp>
#include <tether/task_group.hpp>

#include "support/catch.hpp"

#include <asio/steady_timer.hpp>

#include <csignal>
#include <string>
#include <thread>

#include <sys/wait.h>
#include <unistd.h>

namespace {

tether::task<> wait_on(asio::steady_timer& timer) {
    co_await timer.async_wait(tether::use_task);
}

tether::task<> block_while_second_thread_runs(asio::io_context& io, asio::steady_timer& timer,
                                              std::thread& second) {
    co_await tether::with_task_group([&](tether::task_group& tg) -> tether::task<> {
        tg.spawn(wait_on(timer));
        co_await tether::yield_now(); // the child now waits in the Asio timer
        // This drain stays on this thread's stack; the second thread runs the
        // timer's completion, which enters the same scheduler.
        second = std::thread([&io] { io.run(); });
        for (;;) pause(); // until the abort (SIGABRT ends the process)
    });
}

[[noreturn]] void run_from_two_threads() {
    asio::io_context io;
    asio::steady_timer timer(io); // expiry: the epoch, so its wait completes at once
    std::thread second;
    tether::run(io, block_while_second_thread_runs(io, timer, second));
    _exit(0); // not reached
}

} // namespace

TEST_CASE("an io_context run by two threads at once aborts with a clear message",
          "[thread][death]") {
    int err[2];
    REQUIRE(pipe(err) == 0);
    const pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        std::signal(SIGABRT, SIG_DFL);
        alarm(20); // a hang (no detection) ends with SIGALRM, not SIGABRT
        dup2(err[1], STDERR_FILENO);
        close(err[0]);
        close(err[1]);
        run_from_two_threads();
    }
    close(err[1]);
    std::string output;
    char buf[512];
    for (ssize_t n; (n = read(err[0], buf, sizeof buf)) > 0;)
        output.append(buf, static_cast<std::size_t>(n));
    close(err[0]);
    int status = 0;
    REQUIRE(waitpid(pid, &status, 0) == pid);
    INFO("child's stderr: " << output);
    CHECK(WIFSIGNALED(status));
    CHECK(WTERMSIG(status) == SIGABRT);
    CHECK(output.find("being run by more than one thread at once") != std::string::npos);
}

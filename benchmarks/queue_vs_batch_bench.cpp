// benchmarks/queue_vs_batch_bench.cpp — the seeds' central question: run N jobs
// at width W as a worker pool, as chunks joined with when_all ("gather per
// chunk"), or as a sliding window; which finishes first, and how close to the
// zero-overhead ideal?
//
// Seeds (000): "batching 200 URLs at a time with gather() bounds tasks similarly
// to a queue, but a queue/worker pool keeps throughput steadier when durations
// vary (workers immediately pull next items instead of waiting for the slowest
// in a batch)". This measures it.
//
// A job is `co_await tether::sleep_for(d)`, d drawn from one of four seedable
// distributions with the same mean:
//   fixed        every job lasts `mean`
//   exponential  mean `mean`
//   lognormal    sigma 1, mean `mean`
//   bimodal      90 % of jobs last mean/2, 10 % last 5.5 × mean
// Strategies, all at width W:
//   pool     bounded_queue<duration>(W) fed by the body, W workers popping until
//            the queue is closed and drained (Queue + workers, as the seeds write it)
//   batch    chunks of W jobs, each chunk awaited with when_all before the next
//   window   a semaphore of W: acquire a permit, spawn the job holding it into
//            one task_group (a new job starts the moment any job ends)
// Ideal (zero overhead, exact): pool and window are greedy list scheduling of
// the jobs in order on W machines; batch is the sum over chunks of the longest
// job. `bound` is max(sum / W, longest job), the floor for any strategy.
//
// --clock real uses tether's real timers; --clock virtual runs the same code on
// tether::testing::virtual_clock, where the makespan must equal the ideal
// exactly and the wall time is pure CPU overhead.
//
// Every measurement runs in a forked child process (a clean heap for the peak;
// see measure_isolated). Output: CSV on stdout (see `header` below). Durations are written to
// --durations-dir as <dist>.txt (microseconds, one per line) so that the Python
// peer runs the very same jobs.
#include <tether/task.hpp>
#include <tether/testing/virtual_clock.hpp>

#include <asio/experimental/channel.hpp>

#if __has_include(<tether/task_group.hpp>) && __has_include(<tether/when.hpp>) && \
    __has_include(<tether/bounded_queue.hpp>) && __has_include(<tether/semaphore.hpp>)
#include <tether/bounded_queue.hpp>
#include <tether/semaphore.hpp>
#include <tether/task_group.hpp>
#include <tether/when.hpp>
#define TETHER_BENCH_HAVE_STRATEGIES 1
#endif

#include <malloc.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <functional>
#include <new>
#include <numeric>
#include <optional>
#include <queue>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

// --- peak heap tracking (single-threaded binary) -----------------------------------------

namespace {
long long g_live = 0;
long long g_peak = 0;

void* tracked_alloc(std::size_t n, std::size_t align) {
    void* p = align > alignof(std::max_align_t)
                  ? std::aligned_alloc(align, (n + align - 1) / align * align)
                  : std::malloc(n == 0 ? 1 : n);
    if (!p) throw std::bad_alloc();
    g_live += static_cast<long long>(malloc_usable_size(p));
    if (g_live > g_peak) g_peak = g_live;
    return p;
}
void tracked_free(void* p) noexcept {
    if (!p) return;
    g_live -= static_cast<long long>(malloc_usable_size(p));
    std::free(p);
}
} // namespace

void* operator new(std::size_t n) {
    return tracked_alloc(n, 0);
}
void* operator new[](std::size_t n) {
    return tracked_alloc(n, 0);
}
void* operator new(std::size_t n, std::align_val_t a) {
    return tracked_alloc(n, static_cast<std::size_t>(a));
}
void* operator new[](std::size_t n, std::align_val_t a) {
    return tracked_alloc(n, static_cast<std::size_t>(a));
}
void operator delete(void* p) noexcept {
    tracked_free(p);
}
void operator delete[](void* p) noexcept {
    tracked_free(p);
}
void operator delete(void* p, std::size_t) noexcept {
    tracked_free(p);
}
void operator delete[](void* p, std::size_t) noexcept {
    tracked_free(p);
}
void operator delete(void* p, std::align_val_t) noexcept {
    tracked_free(p);
}
void operator delete[](void* p, std::align_val_t) noexcept {
    tracked_free(p);
}
void operator delete(void* p, std::size_t, std::align_val_t) noexcept {
    tracked_free(p);
}
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept {
    tracked_free(p);
}

namespace {

using us = std::chrono::microseconds;
using std::chrono::duration_cast;

// --- job durations -----------------------------------------------------------------------

const std::vector<std::string> all_distributions = {"fixed", "exponential", "lognormal", "bimodal"};

/// N durations in whole microseconds (at least 1). The transforms are written
/// out rather than taken from <random>'s distributions, whose output differs
/// between standard libraries: a seed gives the same jobs everywhere.
std::vector<std::int64_t> make_durations(const std::string& dist, std::size_t n, double mean_us,
                                         std::uint64_t seed) {
    std::uint64_t salt = 1469598103934665603u; // FNV-1a of the name: one stream per distribution
    for (char c : dist) salt = (salt ^ static_cast<unsigned char>(c)) * 1099511628211u;
    std::mt19937_64 rng(seed ^ salt);
    auto uniform = [&] { return (static_cast<double>(rng() >> 11) + 0.5) * 0x1.0p-53; }; // (0, 1)
    std::vector<std::int64_t> out;
    out.reserve(n);
    constexpr double pi = 3.14159265358979323846;
    for (std::size_t i = 0; i < n; ++i) {
        double d = mean_us;
        if (dist == "fixed") {
            d = mean_us;
        } else if (dist == "exponential") {
            d = -mean_us * std::log(uniform());
        } else if (dist == "lognormal") {
            constexpr double sigma = 1.0;
            const double mu = std::log(mean_us) - sigma * sigma / 2;
            const double z = std::sqrt(-2 * std::log(uniform())) * std::cos(2 * pi * uniform());
            d = std::exp(mu + sigma * z);
        } else if (dist == "bimodal") {
            d = uniform() < 0.9 ? 0.5 * mean_us : 5.5 * mean_us;
        } else {
            throw std::invalid_argument("unknown distribution: " + dist);
        }
        out.push_back(std::max<std::int64_t>(1, std::llround(d)));
    }
    return out;
}

// --- exact ideals ---------------------------------------------------------------------------

std::int64_t ideal_list_schedule(const std::vector<std::int64_t>& d, std::size_t w) {
    std::priority_queue<std::int64_t, std::vector<std::int64_t>, std::greater<>> free_at;
    for (std::size_t i = 0; i < w; ++i) free_at.push(0);
    std::int64_t makespan = 0;
    for (std::int64_t x : d) {
        const std::int64_t start = free_at.top();
        free_at.pop();
        free_at.push(start + x);
        makespan = std::max(makespan, start + x);
    }
    return makespan;
}

std::int64_t ideal_chunks(const std::vector<std::int64_t>& d, std::size_t w) {
    std::int64_t total = 0;
    for (std::size_t i = 0; i < d.size(); i += w)
        total +=
            *std::max_element(d.begin() + static_cast<std::ptrdiff_t>(i),
                              d.begin() + static_cast<std::ptrdiff_t>(std::min(d.size(), i + w)));
    return total;
}

double lower_bound_us(const std::vector<std::int64_t>& d, std::size_t w) {
    const double sum = static_cast<double>(std::accumulate(d.begin(), d.end(), std::int64_t{0}));
    return std::max(sum / static_cast<double>(w),
                    static_cast<double>(*std::max_element(d.begin(), d.end())));
}

// --- the three strategies ---------------------------------------------------------------------

#if defined(TETHER_BENCH_HAVE_STRATEGIES)

tether::task<> job(std::int64_t d) {
    co_await tether::sleep_for(us(d));
}

tether::task<> pool_worker(tether::bounded_queue<std::int64_t>& q) {
    while (auto d = co_await q.pop()) co_await tether::sleep_for(us(*d));
}

tether::task<> run_pool(const std::vector<std::int64_t>& durations, std::size_t w) {
    tether::bounded_queue<std::int64_t> q(w);
    auto body = [&](tether::task_group& tg) -> tether::task<> {
        for (std::size_t i = 0; i < w; ++i) tg.spawn(pool_worker(q));
        for (std::int64_t d : durations) co_await q.push(d);
        q.close(); // workers drain what is buffered, then see the end
    };
    co_await tether::with_task_group(body);
}

tether::task<> run_batch(const std::vector<std::int64_t>& durations, std::size_t w) {
    for (std::size_t i = 0; i < durations.size(); i += w) {
        std::vector<tether::task<>> chunk;
        chunk.reserve(w);
        for (std::size_t j = i; j < std::min(durations.size(), i + w); ++j)
            chunk.push_back(job(durations[j]));
        co_await tether::when_all(std::move(chunk));
    }
}

tether::task<> windowed_job(std::int64_t d, tether::semaphore_permit permit) {
    co_await tether::sleep_for(us(d));
    (void)permit; // released when the frame ends
}

tether::task<> run_window(const std::vector<std::int64_t>& durations, std::size_t w) {
    tether::semaphore sem(static_cast<std::ptrdiff_t>(w));
    auto body = [&](tether::task_group& tg) -> tether::task<> {
        for (std::int64_t d : durations) {
            tether::semaphore_permit permit = co_await sem.acquire();
            tg.spawn(windowed_job(d, std::move(permit)));
        }
    };
    co_await tether::with_task_group(body);
}

#endif

// --- the same pool in plain Asio (real timers only) ------------------------------------------
//
// The baseline for the pool: experimental::channel<int64_t> of capacity W, W
// co_spawn'ed workers each sleeping on its own steady_timer, a producer that
// sends every duration and then one end marker (-1) per worker (channel::close()
// drops buffered items on Asio 1.22, so it is not used). Its distance from the
// ideal is what Asio's own timers cost on this machine, beside tether's.

using asio_channel = asio::experimental::channel<void(asio::error_code, std::int64_t)>;

asio::awaitable<void> asio_pool_worker(asio_channel& ch) {
    asio::steady_timer timer(co_await asio::this_coro::executor);
    for (;;) {
        const std::int64_t d = co_await ch.async_receive(asio::use_awaitable);
        if (d < 0) break;
        timer.expires_after(us(d));
        co_await timer.async_wait(asio::use_awaitable);
    }
}

asio::awaitable<void> asio_pool_producer(asio_channel& ch, const std::vector<std::int64_t>& d,
                                         std::size_t w) {
    for (std::int64_t x : d) co_await ch.async_send(asio::error_code{}, x, asio::use_awaitable);
    for (std::size_t i = 0; i < w; ++i)
        co_await ch.async_send(asio::error_code{}, std::int64_t{-1}, asio::use_awaitable);
}

/// Runs the Asio pool on `io` to completion; rethrows the first failure.
void run_asio_pool(asio::io_context& io, const std::vector<std::int64_t>& d, std::size_t w) {
    asio_channel ch(io, w);
    std::exception_ptr error;
    std::size_t live = 0;
    auto done = [&](std::exception_ptr e) {
        --live;
        if (e && !error) error = e;
    };
    for (std::size_t i = 0; i < w; ++i, ++live) asio::co_spawn(io, asio_pool_worker(ch), done);
    ++live;
    asio::co_spawn(io, asio_pool_producer(ch, d, w), done);
    io.run();
    if (error) std::rethrow_exception(error);
    if (live != 0) throw std::runtime_error("asio pool: io_context ran out of work early");
}

// --- driver -------------------------------------------------------------------------------------

struct options {
    std::size_t n = 10000;
    double mean_us = 1000;
    std::uint64_t seed = 1;
    std::vector<std::string> distributions = all_distributions;
    std::vector<std::size_t> widths = {16, 64, 256, 512};
    std::vector<std::string> strategies = {"pool", "batch", "window"};
    std::string clock = "real";
    std::string durations_dir;
    int repeat = 1;
    bool asio_pool = true; // also run the plain-Asio pool (real clock only)
};

std::vector<std::string> split(const std::string& s) {
    std::vector<std::string> out;
    std::stringstream ss(s);
    for (std::string item; std::getline(ss, item, ',');)
        if (!item.empty()) out.push_back(item);
    return out;
}

[[noreturn]] void usage(const char* msg) {
    std::fprintf(
        stderr,
        "queue_vs_batch_bench: %s\n"
        "usage: queue_vs_batch_bench [--n N] [--mean-us M] [--seed S] [--dists a,b]\n"
        "       [--widths 1,2,...] [--strategies pool,batch,window] [--clock real|virtual]\n"
        "       [--repeat R] [--durations-dir DIR] [--no-asio-pool]\n",
        msg);
    std::exit(2);
}

options parse(int argc, char** argv) {
    options o;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc) usage(("missing value after " + a).c_str());
            return argv[++i];
        };
        if (a == "--n")
            o.n = std::stoull(value());
        else if (a == "--mean-us")
            o.mean_us = std::stod(value());
        else if (a == "--seed")
            o.seed = std::stoull(value());
        else if (a == "--dists")
            o.distributions = split(value());
        else if (a == "--widths") {
            o.widths.clear();
            for (const auto& w : split(value())) o.widths.push_back(std::stoull(w));
        } else if (a == "--strategies")
            o.strategies = split(value());
        else if (a == "--clock")
            o.clock = value();
        else if (a == "--repeat")
            o.repeat = std::stoi(value());
        else if (a == "--durations-dir")
            o.durations_dir = value();
        else if (a == "--no-asio-pool")
            o.asio_pool = false;
        else
            usage(("unknown argument " + a).c_str());
    }
    if (o.n == 0 || o.widths.empty() || (o.clock != "real" && o.clock != "virtual") || o.repeat < 1)
        usage("bad arguments");
    for (auto w : o.widths)
        if (w == 0) usage("widths must be positive");
    return o;
}

struct measurement {
    double wall_s = 0;        // real elapsed time
    double cpu_s = 0;         // CPU time of the process over the same interval (both clocks)
    double makespan_s = 0;    // tether clock elapsed (virtual time under --clock virtual)
    long long peak_bytes = 0; // heap growth at the peak, over the level at the start
};

#if defined(TETHER_BENCH_HAVE_STRATEGIES)
double process_cpu_s() {
    timespec ts{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

measurement measure(const std::string& strategy, const std::vector<std::int64_t>& d, std::size_t w,
                    bool virtual_time) {
    asio::io_context io;
    std::optional<tether::testing::virtual_clock> vclock;
    if (virtual_time) vclock.emplace(io);
    tether::task<> t;
    const bool asio_pool = strategy == "asio_pool";
    if (asio_pool && virtual_time)
        throw std::invalid_argument("the Asio pool runs on real timers only");
    if (asio_pool)
        ; // run below, without a tether task
    else if (strategy == "pool")
        t = run_pool(d, w);
    else if (strategy == "batch")
        t = run_batch(d, w);
    else if (strategy == "window")
        t = run_window(d, w);
    else
        throw std::invalid_argument("unknown strategy: " + strategy);

    const long long base = g_live;
    g_peak = g_live;
    const double c0 = process_cpu_s();
    const auto t0 = std::chrono::steady_clock::now();
    const auto v0 = vclock ? vclock->now() : t0;
    if (asio_pool)
        run_asio_pool(io, d, w);
    else
        tether::run(io, std::move(t));
    const auto t1 = std::chrono::steady_clock::now();
    measurement m;
    m.cpu_s = process_cpu_s() - c0;
    m.wall_s = std::chrono::duration<double>(t1 - t0).count();
    m.makespan_s = vclock ? std::chrono::duration<double>(vclock->now() - v0).count() : m.wall_s;
    m.peak_bytes = g_peak - base;
    return m;
}

/// Runs one measurement in a forked child process, so that its peak heap is
/// measured from a clean heap: the frame pool of an earlier, wider run would
/// otherwise serve the frames and hide them. On virtual time the child runs the
/// scenario twice, the first (cold) run for the peak and the second (warm: frame
/// pool filled, pages touched) for the CPU time. Throws what the child reports.
measurement measure_isolated(const std::string& strategy, const std::vector<std::int64_t>& d,
                             std::size_t w, bool virtual_time) {
    int fds[2];
    if (pipe(fds) != 0) throw std::runtime_error("pipe failed");
    std::fflush(stdout);
    std::fflush(stderr);
    const pid_t pid = fork();
    if (pid < 0) throw std::runtime_error("fork failed");
    if (pid == 0) {
        close(fds[0]);
        std::string reply;
        try {
            measurement m = measure(strategy, d, w, virtual_time);
            if (virtual_time) {
                const long long cold_peak = m.peak_bytes;
                m = measure(strategy, d, w, virtual_time);
                m.peak_bytes = cold_peak;
            }
            char buf[160];
            std::snprintf(buf, sizeof buf, "ok %.9f %.9f %.9f %lld", m.wall_s, m.cpu_s,
                          m.makespan_s, m.peak_bytes);
            reply = buf;
        } catch (const std::exception& e) {
            reply = std::string("error ") + e.what();
        } catch (...) {
            reply = "error unknown exception";
        }
        const char* p = reply.data();
        std::size_t left = reply.size();
        while (left > 0) {
            const ssize_t k = write(fds[1], p, left);
            if (k <= 0) break;
            p += k;
            left -= static_cast<std::size_t>(k);
        }
        close(fds[1]);
        _exit(0);
    }
    close(fds[1]);
    std::string reply;
    char buf[256];
    for (ssize_t k; (k = read(fds[0], buf, sizeof buf)) > 0;)
        reply.append(buf, static_cast<std::size_t>(k));
    close(fds[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    if (reply.rfind("ok ", 0) == 0) {
        measurement m;
        std::istringstream in(reply.substr(3));
        in >> m.wall_s >> m.cpu_s >> m.makespan_s >> m.peak_bytes;
        if (in) return m;
    }
    if (reply.rfind("error ", 0) == 0) throw std::runtime_error(reply.substr(6));
    if (WIFSIGNALED(status))
        throw std::runtime_error("the measuring process died of signal " +
                                 std::to_string(WTERMSIG(status)));
    throw std::runtime_error("the measuring process exited without a result (status " +
                             std::to_string(status) + ")");
}
#endif

} // namespace

int main(int argc, char** argv) {
    const options o = parse(argc, argv);
    const bool virtual_time = o.clock == "virtual";
    bool failures = false;

    std::printf(
        "impl,clock,dist,width,strategy,n,mean_us,seed,rep,wall_s,makespan_s,throughput_jobs_s,"
        "ideal_s,ratio_to_ideal,bound_s,ratio_to_bound,peak_bytes,cpu_ns_per_job,error\n");
    std::fflush(stdout);

    for (const std::string& dist : o.distributions) {
        const std::vector<std::int64_t> d = make_durations(dist, o.n, o.mean_us, o.seed);
        if (!o.durations_dir.empty()) {
            std::ofstream f(o.durations_dir + "/" + dist + ".txt");
            for (auto x : d) f << x << '\n';
            if (!f) {
                std::fprintf(stderr, "cannot write %s/%s.txt\n", o.durations_dir.c_str(),
                             dist.c_str());
                return 1;
            }
        }
        std::vector<std::string> strategies = o.strategies;
        const bool with_asio_pool =
            o.asio_pool && !virtual_time &&
            std::find(strategies.begin(), strategies.end(), "pool") != strategies.end();
        if (with_asio_pool) strategies.push_back("asio_pool");
        for (std::size_t w : o.widths) {
            // Repetitions are the outer loop: each round runs every strategy once,
            // so a slow spell of the machine (timer wake-ups late for a while)
            // falls on all of them rather than on one strategy's repetitions.
            // The ideals depend on the durations and W only: once per W.
            const double list_ideal_s = static_cast<double>(ideal_list_schedule(d, w)) / 1e6;
            const double chunk_ideal_s = static_cast<double>(ideal_chunks(d, w)) / 1e6;
            const double bound_s = lower_bound_us(d, w) / 1e6;
            const double n = static_cast<double>(o.n);
            for (int rep = 0; rep < o.repeat; ++rep) {
                for (const std::string& strategy : strategies) {
                    const bool is_asio = strategy == "asio_pool";
                    const char* impl = is_asio ? "asio" : "tether";
                    const char* shown = is_asio ? "pool" : strategy.c_str();
                    const double ideal_s = strategy == "batch" ? chunk_ideal_s : list_ideal_s;
                    // The zero-overhead schedule itself, for plots and ratios.
                    if (!is_asio && rep == 0)
                        std::printf(
                            "ideal,%s,%s,%zu,%s,%zu,%.0f,%llu,0,%.6f,%.6f,%.1f,%.6f,1.00000,%.6f,%."
                            "5f,0,0,\n",
                            o.clock.c_str(), dist.c_str(), w, strategy.c_str(), o.n, o.mean_us,
                            static_cast<unsigned long long>(o.seed), ideal_s, ideal_s, n / ideal_s,
                            ideal_s, bound_s, ideal_s / bound_s);
#if defined(TETHER_BENCH_HAVE_STRATEGIES)
                    measurement m;
                    try {
                        m = measure_isolated(strategy, d, w, virtual_time);
                    } catch (const std::exception& e) {
                        // Reported as a row, so that one failure does not hide the rest.
                        std::string what = e.what();
                        std::replace(what.begin(), what.end(), ',', ';');
                        std::replace(what.begin(), what.end(), '\n', ' ');
                        std::printf("%s,%s,%s,%zu,%s,%zu,%.0f,%llu,%d,,,,%.6f,,%.6f,,,,%s\n", impl,
                                    o.clock.c_str(), dist.c_str(), w, shown, o.n, o.mean_us,
                                    static_cast<unsigned long long>(o.seed), rep, ideal_s, bound_s,
                                    what.c_str());
                        std::fprintf(stderr, "queue_vs_batch_bench: %s %s W=%zu %s: %s\n",
                                     o.clock.c_str(), dist.c_str(), w, strategy.c_str(), e.what());
                        failures = true;
                        continue;
                    }
                    std::printf("%s,%s,%s,%zu,%s,%zu,%.0f,%llu,%d,%.6f,%.6f,%.1f,%.6f,%.5f,%."
                                "6f,%.5f,%lld,%.1f,\n",
                                impl, o.clock.c_str(), dist.c_str(), w, shown, o.n, o.mean_us,
                                static_cast<unsigned long long>(o.seed), rep, m.wall_s,
                                m.makespan_s, n / m.makespan_s, ideal_s, m.makespan_s / ideal_s,
                                bound_s, m.makespan_s / bound_s, m.peak_bytes, m.cpu_s * 1e9 / n);
#else
                    (void)virtual_time;
                    (void)failures;
                    (void)impl;
                    (void)shown;
#endif
                    std::fflush(stdout);
                }
            }
        }
    }
#if !defined(TETHER_BENCH_HAVE_STRATEGIES)
    std::fprintf(stderr,
                 "queue_vs_batch_bench: tether/task_group.hpp, when.hpp, bounded_queue.hpp or "
                 "semaphore.hpp has not landed yet; printed the ideal schedules only\n");
    return 3;
#else
    return failures ? 1 : 0;
#endif
}

// The crawl's durable state in SQLite: one row per URL, so that a crawl can be
// stopped (or killed) and resumed without losing or re-fetching anything.
//
// Schema (table `urls`):
//   url TEXT PRIMARY KEY, depth INTEGER, state TEXT ('pending' | 'ok' |
//   'failed' | 'skipped'), status INTEGER, bytes INTEGER, title TEXT,
//   reason TEXT, elapsed_ms REAL, attempts INTEGER, fetched_at TEXT (UTC ISO 8601)
//
// Lifecycle of a row: it is inserted 'pending' when the URL is first seen
// (`add_pending`, or as a link discovered by a stored result), and becomes
// terminal ('ok', 'failed' or 'skipped') exactly once, in `store_batch`. A
// terminal row is never overwritten (see `requeue_failed` to retry failures).
//
// Durability: the database runs in WAL mode with synchronous=NORMAL. Every
// call that writes is one transaction; once it returns, its rows survive the
// process being killed (kill -9). (A power loss may lose the last commits;
// synchronous=FULL would be needed to prevent that.)
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace scraper {

/// Any SQLite failure: the message is SQLite's, prefixed with what was being done.
class store_error : public std::runtime_error {
public:
    store_error(const std::string& message, int sqlite_code)
        : std::runtime_error(message), sqlite_code_(sqlite_code) {}
    /// The (extended) SQLite result code.
    [[nodiscard]] int sqlite_code() const noexcept {
        return sqlite_code_;
    }

private:
    int sqlite_code_;
};

enum class url_state : unsigned char { pending, ok, failed, skipped };

/// "pending", "ok", "failed" or "skipped" (the strings stored in the database).
[[nodiscard]] std::string_view to_string(url_state s) noexcept;

/// A URL waiting to be fetched.
struct pending_url {
    std::string url;
    int depth = 0;

    friend bool operator==(const pending_url&, const pending_url&) = default;
};

/// The terminal outcome of one URL, as the pipeline hands it to the writer.
struct fetch_result {
    std::string url;
    int depth = 0;
    url_state state = url_state::failed; ///< must be ok, failed or skipped
    std::optional<int> status;           ///< final HTTP status, if a response arrived
    std::optional<std::int64_t> bytes;   ///< decoded body size
    std::string title;
    std::string reason;    ///< why it failed or was skipped; empty for ok
    double elapsed_ms = 0; ///< total time, retries included
    int attempts = 0;
    /// Links found on the page, stored as pending in the same transaction, so
    /// a crash cannot record the page as done and lose its links.
    std::vector<pending_url> discovered;
};

/// A row as stored.
struct url_record {
    std::string url;
    int depth = 0;
    url_state state = url_state::pending;
    std::optional<int> status;
    std::optional<std::int64_t> bytes;
    std::string title;
    std::string reason;
    std::optional<double> elapsed_ms;
    int attempts = 0;
    std::string fetched_at; ///< empty while pending
};

struct state_counts {
    std::int64_t pending = 0;
    std::int64_t ok = 0;
    std::int64_t failed = 0;
    std::int64_t skipped = 0;

    [[nodiscard]] std::int64_t total() const noexcept {
        return pending + ok + failed + skipped;
    }
    [[nodiscard]] std::int64_t terminal() const noexcept {
        return ok + failed + skipped;
    }
    friend bool operator==(const state_counts&, const state_counts&) = default;
};

/// What one `store_batch` did.
struct batch_outcome {
    /// Results written (rows that became terminal).
    std::size_t stored = 0;
    /// Results ignored because their URL was already terminal.
    std::size_t already_terminal = 0;
    /// Discovered links that were new to the database (now pending), in order:
    /// these are the URLs to enqueue.
    std::vector<pending_url> added;
};

/// Turns off SQLite's memory statistics for the whole process: they take a
/// process-wide mutex on every allocation SQLite makes (3 % of the crawl's
/// instructions), and nothing here reads them. Call it at program start,
/// before any thread uses SQLite; false (statistics still on) if SQLite was
/// initialised already.
bool disable_sqlite_memory_statistics() noexcept;

/// The crawl database. Move-only; closing happens in the destructor.
///
/// @par Thread safety
/// None: use one object from one thread at a time (the pipeline's single
/// writer task). Several processes may open the same file; writers then wait
/// up to the busy timeout (5 s) for each other.
///
/// @par Exceptions
/// Every member except the destructor and moves may throw `store_error`
/// (and `std::bad_alloc`). A throwing write leaves the database unchanged.
class result_store {
public:
    /// Opens `file`, creating it and the schema if needed. ":memory:" opens a
    /// private in-memory database (not durable; for tests).
    explicit result_store(const std::filesystem::path& file);
    ~result_store();
    result_store(result_store&&) noexcept;
    result_store& operator=(result_store&&) noexcept;
    result_store(const result_store&) = delete;
    result_store& operator=(const result_store&) = delete;

    /// Inserts the URLs not already in the database as pending (INSERT OR
    /// IGNORE), in one transaction, and returns those that were new, in order.
    std::vector<pending_url> add_pending(std::span<const pending_url> urls);

    /// The URLs still pending, shallowest first, then in insertion order: the
    /// work left when resuming.
    [[nodiscard]] std::vector<pending_url> load_pending() const;

    /// Stores terminal results and their discovered links in ONE transaction:
    /// all of it is committed, or (on any error) none of it.
    /// Results for URLs already terminal are ignored (counted in
    /// `already_terminal`); results for unknown URLs are inserted.
    /// @throws std::invalid_argument if a result's state is pending or its URL
    ///         empty; nothing is written then.
    batch_outcome store_batch(std::span<const fetch_result> results);

    /// Every URL stored with this depth (depth 0: the seeds of all runs), in
    /// insertion order.
    [[nodiscard]] std::vector<std::string> urls_at_depth(int depth) const;

    /// Whether `url` has a terminal row (it must not be fetched again).
    [[nodiscard]] bool is_terminal(std::string_view url) const;

    /// The row of `url`, if any.
    [[nodiscard]] std::optional<url_record> find(std::string_view url) const;

    /// Number of rows per state.
    [[nodiscard]] state_counts counts() const;

    /// Number of pending rows (`counts().pending`, without grouping).
    [[nodiscard]] std::int64_t pending_count() const;

    /// Turns every 'failed' row back into 'pending' (for a "retry failures"
    /// run) and returns how many were requeued.
    std::size_t requeue_failed();

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

} // namespace scraper

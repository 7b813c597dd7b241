#include "result_store.hpp"

#include <algorithm>
#include <chrono>
#include <climits>
#include <cstdio>
#include <ctime>
#include <sqlite3.h>
#include <unordered_map>
#include <utility>

namespace scraper {

std::string_view to_string(url_state s) noexcept {
    switch (s) {
    case url_state::pending:
        return "pending";
    case url_state::ok:
        return "ok";
    case url_state::failed:
        return "failed";
    case url_state::skipped:
        return "skipped";
    }
    return "pending";
}

namespace {

constexpr int schema_version = 1;

// Written for speed of the two hot statements (a pending insert per URL, a
// terminal upsert per result):
// - the CHECK spells out its alternatives: `state IN (...)` builds an
//   ephemeral table on every row written (SQLite 3.40), which made each
//   insert several times slower;
// - no secondary index: every index is one more B-tree written by both hot
//   statements. A partial index over the pending rows (for load_pending and
//   pending_count) cost a fifth of SQLite's instructions per page and ~5 % of
//   the crawl's wall time (10,000 pages from a local nginx); the reads it
//   served run once per crawl, and a scan of the table (which urls_at_depth
//   makes at start-up anyway) takes ~10 ms per 100,000 rows, ~20 ms when
//   load_pending sorts 10,000 pending ones. Databases made before keep their
//   old CHECK (slower, same rules) and lose their old indexes.

constexpr const char* schema_sql = R"sql(
CREATE TABLE IF NOT EXISTS urls (
  url        TEXT PRIMARY KEY NOT NULL,
  depth      INTEGER NOT NULL DEFAULT 0,
  state      TEXT NOT NULL DEFAULT 'pending'
             CHECK (state = 'pending' OR state = 'ok' OR state = 'failed' OR state = 'skipped'),
  status     INTEGER,
  bytes      INTEGER,
  title      TEXT,
  reason     TEXT,
  elapsed_ms REAL,
  attempts   INTEGER NOT NULL DEFAULT 0,
  fetched_at TEXT
);
DROP INDEX IF EXISTS urls_by_state;
DROP INDEX IF EXISTS urls_pending;
)sql";

[[noreturn]] void fail(sqlite3* db, int rc, std::string_view what) {
    std::string message = "sqlite: ";
    message.append(what);
    message += ": ";
    message += db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    throw store_error(message, db != nullptr ? sqlite3_extended_errcode(db) : rc);
}

url_state parse_state(std::string_view s) {
    if (s == "ok") return url_state::ok;
    if (s == "failed") return url_state::failed;
    if (s == "skipped") return url_state::skipped;
    return url_state::pending;
}

void exec(sqlite3* db, const char* sql, std::string_view what) {
    const int rc = sqlite3_exec(db, sql, nullptr, nullptr, nullptr);
    if (rc != SQLITE_OK) fail(db, rc, what);
}

struct db_closer {
    void operator()(sqlite3* db) const noexcept {
        sqlite3_close_v2(db);
    }
};
using db_handle = std::unique_ptr<sqlite3, db_closer>;

// A prepared statement. Use it through `run()`, which resets it (and clears
// its bindings) when the run ends, also by exception.
class statement {
public:
    statement(sqlite3* db, std::string_view sql) : db_(db) {
        const int rc = sqlite3_prepare_v3(db, sql.data(), static_cast<int>(sql.size()),
                                          SQLITE_PREPARE_PERSISTENT, &stmt_, nullptr);
        if (rc != SQLITE_OK) fail(db, rc, "prepare \"" + std::string(sql.substr(0, 60)) + "...\"");
    }
    ~statement() {
        sqlite3_finalize(stmt_);
    }
    statement(const statement&) = delete;
    statement& operator=(const statement&) = delete;

    class run_guard {
    public:
        explicit run_guard(statement& s) : s_(s) {}
        ~run_guard() {
            sqlite3_reset(s_.stmt_);
            sqlite3_clear_bindings(s_.stmt_);
        }
        run_guard(const run_guard&) = delete;
        run_guard& operator=(const run_guard&) = delete;

        // Text is bound without copying (SQLITE_STATIC): it must outlive the run.
        run_guard& bind(int i, std::string_view text) {
            if (text.size() > static_cast<std::size_t>(INT_MAX))
                throw store_error("sqlite: text too long", SQLITE_TOOBIG);
            check(sqlite3_bind_text(s_.stmt_, i, text.data(), static_cast<int>(text.size()),
                                    nullptr));
            return *this;
        }
        run_guard& bind(int i, std::int64_t v) {
            check(sqlite3_bind_int64(s_.stmt_, i, v));
            return *this;
        }
        run_guard& bind(int i, double v) {
            check(sqlite3_bind_double(s_.stmt_, i, v));
            return *this;
        }
        template <class T>
        run_guard& bind(int i, const std::optional<T>& v) {
            if (v) return bind(i, static_cast<std::int64_t>(*v));
            check(sqlite3_bind_null(s_.stmt_, i));
            return *this;
        }

        /// True if a row is available, false when done.
        bool step() {
            const int rc = sqlite3_step(s_.stmt_);
            if (rc == SQLITE_ROW) return true;
            if (rc == SQLITE_DONE) return false;
            fail(s_.db_, rc, "step");
        }

        [[nodiscard]] bool is_null(int col) const {
            return sqlite3_column_type(s_.stmt_, col) == SQLITE_NULL;
        }
        [[nodiscard]] std::int64_t int64(int col) const {
            return sqlite3_column_int64(s_.stmt_, col);
        }
        [[nodiscard]] int int32(int col) const {
            return sqlite3_column_int(s_.stmt_, col);
        }
        [[nodiscard]] double real(int col) const {
            return sqlite3_column_double(s_.stmt_, col);
        }
        // Valid until the next step() or the end of the run.
        [[nodiscard]] std::string_view text_view(int col) const {
            const unsigned char* p = sqlite3_column_text(s_.stmt_, col);
            const int n = sqlite3_column_bytes(s_.stmt_, col);
            return p == nullptr ? std::string_view()
                                : std::string_view(reinterpret_cast<const char*>(p),
                                                   static_cast<std::size_t>(n));
        }
        [[nodiscard]] std::string text(int col) const {
            const unsigned char* p = sqlite3_column_text(s_.stmt_, col);
            const int n = sqlite3_column_bytes(s_.stmt_, col);
            return p == nullptr
                       ? std::string()
                       : std::string(reinterpret_cast<const char*>(p), static_cast<std::size_t>(n));
        }

    private:
        void check(int rc) {
            if (rc != SQLITE_OK) fail(s_.db_, rc, "bind");
        }
        statement& s_;
    };

    [[nodiscard]] run_guard run() {
        return run_guard(*this);
    }

private:
    sqlite3* db_;
    sqlite3_stmt* stmt_ = nullptr;
};

// BEGIN IMMEDIATE ... COMMIT; rolls back if destroyed uncommitted.
class transaction {
public:
    explicit transaction(sqlite3* db) : db_(db) {
        exec(db_, "BEGIN IMMEDIATE", "begin transaction");
    }
    ~transaction() {
        if (!committed_) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    }
    transaction(const transaction&) = delete;
    transaction& operator=(const transaction&) = delete;
    void commit() {
        exec(db_, "COMMIT", "commit");
        committed_ = true;
    }

private:
    sqlite3* db_;
    bool committed_ = false;
};

// The current UTC time as SQLite's strftime('%Y-%m-%dT%H:%M:%fZ', 'now') writes
// it (millisecond precision), formatted once per batch rather than per row.
std::string utc_timestamp() {
    const auto now = std::chrono::system_clock::now();
    const auto ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
    const std::time_t secs = static_cast<std::time_t>(ms / 1000);
    std::tm tm{};
    gmtime_r(&secs, &tm);
    char text[80]; // room for any int the format could be given
    std::snprintf(text, sizeof text, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                  tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                  static_cast<int>(ms % 1000));
    return text;
}

db_handle open_database(const std::filesystem::path& file) {
    sqlite3* raw = nullptr;
    const std::string name = file.string();
    const int rc =
        sqlite3_open_v2(name.c_str(), &raw,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
    db_handle db(raw); // closes even on failure (sqlite3_open_v2 may allocate a handle)
    if (rc != SQLITE_OK) fail(db.get(), rc, "open \"" + name + "\"");
    sqlite3_extended_result_codes(db.get(), 1);
    sqlite3_busy_timeout(db.get(), 5000);

    {
        statement wal(db.get(), "PRAGMA journal_mode=WAL");
        auto r = wal.run();
        const std::string mode = r.step() ? r.text(0) : std::string();
        if (mode != "wal" && !(name == ":memory:" && mode == "memory"))
            throw store_error("sqlite: could not enable WAL mode on \"" + name +
                                  "\" (journal_mode is \"" + mode + "\")",
                              SQLITE_ERROR);
    }
    exec(db.get(), "PRAGMA synchronous=NORMAL", "set synchronous=NORMAL");

    int version = 0;
    {
        statement v(db.get(), "PRAGMA user_version");
        auto r = v.run();
        if (r.step()) version = r.int32(0);
    }
    if (version > schema_version)
        throw store_error("sqlite: \"" + name + "\" has schema version " + std::to_string(version) +
                              ", newer than this program's " + std::to_string(schema_version),
                          SQLITE_ERROR);
    transaction tx(db.get());
    exec(db.get(), schema_sql, "create schema");
    exec(db.get(), ("PRAGMA user_version=" + std::to_string(schema_version)).c_str(),
         "set schema version");
    tx.commit();
    return db;
}

} // namespace

bool disable_sqlite_memory_statistics() noexcept {
    return sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0) == SQLITE_OK;
}

// Invariant: db outlives the statements (members are destroyed in reverse order).
struct result_store::impl {
    explicit impl(const std::filesystem::path& file) : db(open_database(file)) {}

    db_handle db;
    statement insert_pending{db.get(), "INSERT OR IGNORE INTO urls (url, depth) VALUES (?1, ?2)"};
    // A result turns its pending row terminal; a result for a URL without a row
    // (not added first) inserts one. UPDATE first: nearly every result has a
    // pending row, and a plain UPDATE costs less than an upsert.
    statement update_result{db.get(), R"sql(
UPDATE urls SET depth = ?2, state = ?3, status = ?4, bytes = ?5, title = ?6, reason = ?7,
  elapsed_ms = ?8, attempts = ?9, fetched_at = ?10
WHERE url = ?1 AND state = 'pending'
)sql"};
    statement insert_result{db.get(), R"sql(
INSERT OR IGNORE INTO urls (url, depth, state, status, bytes, title, reason, elapsed_ms, attempts,
  fetched_at)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
)sql"};
    statement select_pending{
        db.get(), "SELECT url, depth FROM urls WHERE state = 'pending' ORDER BY depth, rowid"};
    statement select_state{db.get(), "SELECT state FROM urls WHERE url = ?1"};
    statement select_depth{db.get(), "SELECT url FROM urls WHERE depth = ?1 ORDER BY rowid"};
    statement select_row{
        db.get(),
        "SELECT url, depth, state, status, bytes, title, reason, elapsed_ms, attempts, fetched_at "
        "FROM urls WHERE url = ?1"};
    statement count_states{db.get(), "SELECT state, count(*) FROM urls GROUP BY state"};
    statement count_pending{db.get(), "SELECT count(*) FROM urls WHERE state = 'pending'"};
    statement requeue{
        db.get(), "UPDATE urls SET state = 'pending', fetched_at = NULL WHERE state = 'failed'"};

    // add_pending inserts this many rows per statement: a statement costs about
    // as much again as the B-tree work of a row. Null if this SQLite has no
    // RETURNING (before 3.35): then rows go one by one.
    static constexpr std::size_t chunk_rows = 64;
    std::unique_ptr<statement> insert_chunk = prepare_insert_chunk(db.get());

    static std::unique_ptr<statement> prepare_insert_chunk(sqlite3* db) {
        std::string sql = "INSERT OR IGNORE INTO urls (url, depth) VALUES ";
        for (std::size_t k = 0; k < chunk_rows; ++k) sql += k == 0 ? "(?, ?)" : ", (?, ?)";
        sql += " RETURNING url";
        try {
            return std::make_unique<statement>(db, sql);
        } catch (const store_error&) {
            return nullptr;
        }
    }

    // Inserts one pending URL; true if it was new.
    bool add(const pending_url& u) {
        auto r = insert_pending.run();
        r.bind(1, u.url).bind(2, static_cast<std::int64_t>(u.depth));
        r.step();
        return sqlite3_changes(db.get()) > 0;
    }
};

result_store::result_store(const std::filesystem::path& file)
    : impl_(std::make_unique<impl>(file)) {}
result_store::~result_store() = default;
result_store::result_store(result_store&&) noexcept = default;
result_store& result_store::operator=(result_store&&) noexcept = default;

std::vector<pending_url> result_store::add_pending(std::span<const pending_url> urls) {
    std::vector<pending_url> added;
    transaction tx(impl_->db.get());
    std::size_t i = 0;
    if (impl_->insert_chunk) {
        // Whole chunks in one statement each. RETURNING names the new rows (in
        // no promised order): each is marked at its first place in the chunk
        // (a URL twice in a chunk is inserted once), so `added` keeps the
        // input's order.
        std::unordered_map<std::string_view, std::size_t> place; // views into `urls`
        std::vector<bool> fresh(impl::chunk_rows);
        for (; i + impl::chunk_rows <= urls.size(); i += impl::chunk_rows) {
            const std::span<const pending_url> chunk = urls.subspan(i, impl::chunk_rows);
            place.clear();
            std::fill(fresh.begin(), fresh.end(), false);
            auto r = impl_->insert_chunk->run();
            int param = 1;
            for (std::size_t k = 0; k < chunk.size(); ++k) {
                place.emplace(chunk[k].url, k);
                r.bind(param, chunk[k].url)
                    .bind(param + 1, static_cast<std::int64_t>(chunk[k].depth));
                param += 2;
            }
            while (r.step()) {
                // The text is valid until the next step: only looked up.
                const auto it = place.find(r.text_view(0));
                if (it != place.end()) fresh[it->second] = true;
            }
            for (std::size_t k = 0; k < chunk.size(); ++k)
                if (fresh[k]) added.push_back(chunk[k]);
        }
    }
    for (; i < urls.size(); ++i)
        if (impl_->add(urls[i])) added.push_back(urls[i]);
    tx.commit();
    return added;
}

std::vector<pending_url> result_store::load_pending() const {
    std::vector<pending_url> out;
    auto r = impl_->select_pending.run();
    while (r.step()) out.push_back(pending_url{r.text(0), r.int32(1)});
    return out;
}

batch_outcome result_store::store_batch(std::span<const fetch_result> results) {
    for (const fetch_result& res : results) {
        if (res.state == url_state::pending)
            throw std::invalid_argument("store_batch: result for \"" + res.url +
                                        "\" is not terminal");
        if (res.url.empty()) throw std::invalid_argument("store_batch: result with an empty URL");
    }
    batch_outcome outcome;
    const std::string fetched_at = utc_timestamp();
    transaction tx(impl_->db.get());
    for (const fetch_result& res : results) {
        // Writes `res` with `st`; true if a row changed.
        const auto write = [&](statement& st) {
            auto r = st.run();
            r.bind(1, res.url)
                .bind(2, static_cast<std::int64_t>(res.depth))
                .bind(3, to_string(res.state))
                .bind(4, res.status)
                .bind(5, res.bytes)
                .bind(6, res.title)
                .bind(7, res.reason)
                .bind(8, res.elapsed_ms)
                .bind(9, static_cast<std::int64_t>(res.attempts))
                .bind(10, fetched_at);
            r.step();
            return sqlite3_changes(impl_->db.get()) > 0;
        };
        // No pending row: either there is no row (insert it) or it is
        // terminal already (the insert is ignored).
        if (write(impl_->update_result) || write(impl_->insert_result)) {
            ++outcome.stored;
        } else {
            ++outcome.already_terminal;
        }
        for (const pending_url& link : res.discovered)
            if (impl_->add(link)) outcome.added.push_back(link);
    }
    tx.commit();
    return outcome;
}

std::vector<std::string> result_store::urls_at_depth(int depth) const {
    std::vector<std::string> out;
    auto r = impl_->select_depth.run();
    r.bind(1, static_cast<std::int64_t>(depth));
    while (r.step()) out.push_back(r.text(0));
    return out;
}

bool result_store::is_terminal(std::string_view url) const {
    auto r = impl_->select_state.run();
    r.bind(1, url);
    return r.step() && r.text(0) != "pending";
}

std::optional<url_record> result_store::find(std::string_view url) const {
    auto r = impl_->select_row.run();
    r.bind(1, url);
    if (!r.step()) return std::nullopt;
    url_record rec;
    rec.url = r.text(0);
    rec.depth = r.int32(1);
    rec.state = parse_state(r.text(2));
    if (!r.is_null(3)) rec.status = r.int32(3);
    if (!r.is_null(4)) rec.bytes = r.int64(4);
    rec.title = r.text(5);
    rec.reason = r.text(6);
    if (!r.is_null(7)) rec.elapsed_ms = r.real(7);
    rec.attempts = r.int32(8);
    rec.fetched_at = r.text(9);
    return rec;
}

state_counts result_store::counts() const {
    state_counts c;
    auto r = impl_->count_states.run();
    while (r.step()) {
        const std::int64_t n = r.int64(1);
        switch (parse_state(r.text(0))) {
        case url_state::pending:
            c.pending = n;
            break;
        case url_state::ok:
            c.ok = n;
            break;
        case url_state::failed:
            c.failed = n;
            break;
        case url_state::skipped:
            c.skipped = n;
            break;
        }
    }
    return c;
}

std::int64_t result_store::pending_count() const {
    auto r = impl_->count_pending.run();
    return r.step() ? r.int64(0) : 0;
}

std::size_t result_store::requeue_failed() {
    transaction tx(impl_->db.get());
    {
        auto r = impl_->requeue.run();
        r.step();
    }
    const auto n = static_cast<std::size_t>(sqlite3_changes(impl_->db.get()));
    tx.commit();
    return n;
}

} // namespace scraper

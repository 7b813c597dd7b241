#include "result_store.hpp"

#include <sqlite3.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "catch_shim.hpp"

#if defined(__unix__)
#include <csignal>
#include <sys/wait.h>
#include <unistd.h>
#endif

using scraper::fetch_result;
using scraper::pending_url;
using scraper::result_store;
using scraper::url_state;

namespace {

// A fresh database path, removed (with its WAL files) on destruction.
class temp_db {
public:
    temp_db() {
        static std::atomic<int> counter{0};
        path_ = std::filesystem::temp_directory_path() /
                ("scraper_store_test_" +
                 std::to_string(std::chrono::steady_clock::now().time_since_epoch().count()) + "_" +
                 std::to_string(counter++) + ".db");
        remove_files();
    }
    ~temp_db() {
        remove_files();
    }
    temp_db(const temp_db&) = delete;
    temp_db& operator=(const temp_db&) = delete;
    [[nodiscard]] const std::filesystem::path& path() const {
        return path_;
    }

private:
    void remove_files() {
        std::error_code ec;
        for (const char* suffix : {"", "-wal", "-shm", "-journal"})
            std::filesystem::remove(path_.string() + suffix, ec);
    }
    std::filesystem::path path_;
};

// Runs SQL on its own connection to `path`, outside the store.
void exec_raw(const std::filesystem::path& path, const char* sql) {
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
    char* error = nullptr;
    const int rc = sqlite3_exec(db, sql, nullptr, nullptr, &error);
    INFO((error != nullptr ? error : ""));
    sqlite3_free(error);
    sqlite3_close(db);
    REQUIRE(rc == SQLITE_OK);
}

fetch_result ok_result(std::string url, int status = 200,
                       std::vector<pending_url> discovered = {}) {
    fetch_result r;
    r.url = std::move(url);
    r.state = url_state::ok;
    r.status = status;
    r.bytes = 1234;
    r.title = "Title of " + r.url;
    r.elapsed_ms = 12.5;
    r.attempts = 1;
    r.discovered = std::move(discovered);
    return r;
}

fetch_result failed_result(std::string url, std::string reason) {
    fetch_result r;
    r.url = std::move(url);
    r.state = url_state::failed;
    r.reason = std::move(reason);
    r.attempts = 3;
    r.elapsed_ms = 3000;
    return r;
}

std::vector<pending_url> seeds(int n, int depth = 0) {
    std::vector<pending_url> out;
    for (int i = 0; i < n; ++i) out.push_back({"http://127.0.0.1/p" + std::to_string(i), depth});
    return out;
}

} // namespace

TEST_CASE("a new store has the schema and WAL mode and no rows", "[store]") {
    temp_db db;
    result_store store(db.path());
    CHECK(store.counts() == scraper::state_counts{});
    CHECK(store.load_pending().empty());
    CHECK(std::filesystem::exists(db.path()));
    CHECK(std::filesystem::exists(db.path().string() + "-wal"));
}

TEST_CASE("add_pending inserts only new URLs and reports them", "[store]") {
    result_store store(":memory:");
    const auto first = store.add_pending(seeds(3));
    CHECK(first.size() == 3);
    std::vector<pending_url> again = seeds(5);
    again[4].depth = 7;
    const auto second = store.add_pending(again);
    REQUIRE(second.size() == 2);
    CHECK(second[0].url == "http://127.0.0.1/p3");
    CHECK(second[1] == pending_url{"http://127.0.0.1/p4", 7});
    CHECK(store.counts().pending == 5);
    CHECK_FALSE(store.is_terminal("http://127.0.0.1/p0"));
    CHECK_FALSE(store.is_terminal("http://127.0.0.1/unknown"));
}

TEST_CASE("load_pending returns shallow URLs first and then in insertion order", "[store]") {
    result_store store(":memory:");
    (void)store.add_pending(std::vector<pending_url>{
        {"http://h/d2a", 2}, {"http://h/d0", 0}, {"http://h/d2b", 2}, {"http://h/d1", 1}});
    const auto pending = store.load_pending();
    const std::vector<pending_url> expected = {
        {"http://h/d0", 0}, {"http://h/d1", 1}, {"http://h/d2a", 2}, {"http://h/d2b", 2}};
    CHECK(pending == expected);
}

TEST_CASE("a database made with the earlier pending index loses it and keeps its rows",
          "[store][resume]") {
    temp_db db;
    {
        result_store store(db.path());
        (void)store.add_pending(std::vector<pending_url>{{"http://h/d1", 1}, {"http://h/d0a", 0}});
        (void)store.store_batch(std::vector<fetch_result>{ok_result("http://h/done")});
    }
    // What the schema of earlier versions also made: a partial index over the
    // pending rows, written by every insert and every result.
    exec_raw(db.path(), "CREATE INDEX urls_pending ON urls (depth) WHERE state = 'pending'");
    exec_raw(db.path(), "INSERT INTO urls (url, depth) VALUES ('http://h/d0b', 0)");

    result_store store(db.path());
    const std::vector<pending_url> expected = {
        {"http://h/d0a", 0}, {"http://h/d0b", 0}, {"http://h/d1", 1}};
    CHECK(store.load_pending() == expected);
    CHECK(store.pending_count() == 3);
    CHECK(store.counts() == scraper::state_counts{3, 1, 0, 0});

    sqlite3* raw = nullptr;
    REQUIRE(sqlite3_open(db.path().c_str(), &raw) == SQLITE_OK);
    sqlite3_stmt* indexes = nullptr;
    REQUIRE(sqlite3_prepare_v2(raw,
                               "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND sql "
                               "IS NOT NULL",
                               -1, &indexes, nullptr) == SQLITE_OK);
    REQUIRE(sqlite3_step(indexes) == SQLITE_ROW);
    CHECK(sqlite3_column_int(indexes, 0) == 0); // only the primary key's own index is left
    sqlite3_finalize(indexes);
    sqlite3_close(raw);
}

TEST_CASE("store_batch makes rows terminal and records every field", "[store]") {
    result_store store(":memory:");
    (void)store.add_pending(seeds(3));
    fetch_result skipped;
    skipped.url = "http://127.0.0.1/p2";
    skipped.state = url_state::skipped;
    skipped.reason = "robots.txt";
    const std::vector<fetch_result> batch = {
        ok_result("http://127.0.0.1/p0"), failed_result("http://127.0.0.1/p1", "timeout"), skipped};
    const auto outcome = store.store_batch(batch);
    CHECK(outcome.stored == 3);
    CHECK(outcome.already_terminal == 0);
    CHECK(store.counts() == scraper::state_counts{0, 1, 1, 1});
    CHECK(store.load_pending().empty());
    CHECK(store.is_terminal("http://127.0.0.1/p0"));

    const auto ok = store.find("http://127.0.0.1/p0");
    REQUIRE(ok.has_value());
    CHECK(ok->state == url_state::ok);
    CHECK(ok->status == 200);
    CHECK(ok->bytes == 1234);
    CHECK(ok->title == "Title of http://127.0.0.1/p0");
    CHECK(ok->elapsed_ms == 12.5);
    CHECK(ok->attempts == 1);
    CHECK(ok->fetched_at.size() == 24); // e.g. 2024-01-02T03:04:05.678Z
    CHECK(ok->fetched_at.back() == 'Z');

    const auto failed = store.find("http://127.0.0.1/p1");
    REQUIRE(failed.has_value());
    CHECK(failed->state == url_state::failed);
    CHECK_FALSE(failed->status.has_value());
    CHECK_FALSE(failed->bytes.has_value());
    CHECK(failed->reason == "timeout");
    CHECK(failed->attempts == 3);

    const auto pending = store.find("http://127.0.0.1/never");
    CHECK_FALSE(pending.has_value());
}

TEST_CASE("a terminal row is never overwritten", "[store]") {
    result_store store(":memory:");
    const std::vector<fetch_result> first = {ok_result("http://h/a", 200)};
    CHECK(store.store_batch(first).stored == 1); // unknown URLs are inserted
    const std::vector<fetch_result> second = {failed_result("http://h/a", "late duplicate")};
    const auto outcome = store.store_batch(second);
    CHECK(outcome.stored == 0);
    CHECK(outcome.already_terminal == 1);
    CHECK(store.find("http://h/a")->state == url_state::ok);
    CHECK(store.find("http://h/a")->status == 200);
}

TEST_CASE("discovered links are added as pending in the same transaction as the result",
          "[store]") {
    result_store store(":memory:");
    (void)store.add_pending(std::vector<pending_url>{{"http://h/", 0}, {"http://h/known", 1}});
    const std::vector<fetch_result> batch = {
        ok_result("http://h/", 200,
                  {{"http://h/known", 1}, {"http://h/new1", 1}, {"http://h/new2", 1}}),
        ok_result("http://h/known", 200,
                  {{"http://h/new2", 2}, {"http://h/new3", 2}, {"http://h/", 2}})};
    const auto outcome = store.store_batch(batch);
    const std::vector<pending_url> expected = {
        {"http://h/new1", 1}, {"http://h/new2", 1}, {"http://h/new3", 2}};
    CHECK(outcome.added == expected);
    CHECK(store.counts() == scraper::state_counts{3, 2, 0, 0});
    CHECK(store.load_pending() == expected);
}

TEST_CASE("store_batch is all or nothing", "[store][transaction]") {
    result_store store(":memory:");
    (void)store.add_pending(seeds(2));
    fetch_result not_terminal;
    not_terminal.url = "http://127.0.0.1/p1";
    not_terminal.state = url_state::pending;
    const std::vector<fetch_result> batch = {
        ok_result("http://127.0.0.1/p0", 200, {{"http://127.0.0.1/x", 1}}), not_terminal};
    CHECK_THROWS_AS(store.store_batch(batch), std::invalid_argument);
    CHECK(store.counts() == scraper::state_counts{2, 0, 0, 0});

    fetch_result empty_url = ok_result("");
    CHECK_THROWS_AS(store.store_batch(std::vector<fetch_result>{empty_url}), std::invalid_argument);
}

TEST_CASE("a database failure in the middle of a batch rolls the whole batch back",
          "[store][transaction]") {
    temp_db db;
    {
        result_store s(db.path());
        (void)s.add_pending(seeds(3));
    }
    // A trigger, added behind the store's back, makes the third update fail
    // inside store_batch's transaction.
    exec_raw(db.path(),
             "CREATE TRIGGER refuse_p2 BEFORE UPDATE ON urls WHEN NEW.url = 'http://127.0.0.1/p2' "
             "BEGIN SELECT RAISE(ABORT, 'refusing p2'); END;");
    result_store store(db.path());
    const std::vector<fetch_result> three = {
        ok_result("http://127.0.0.1/p0", 200, {{"http://127.0.0.1/new", 1}}),
        ok_result("http://127.0.0.1/p1"), ok_result("http://127.0.0.1/p2")};
    try {
        (void)store.store_batch(three);
        FAIL("store_batch should have thrown");
    } catch (const scraper::store_error& e) {
        CHECK(std::string(e.what()) == "sqlite: step: refusing p2");
    }
    CHECK(store.counts() == scraper::state_counts{3, 0, 0, 0});
    CHECK_FALSE(store.find("http://127.0.0.1/new").has_value());
    // The store is still usable afterwards.
    CHECK(store.store_batch(std::vector<fetch_result>{ok_result("http://127.0.0.1/p0")}).stored ==
          1);
}

TEST_CASE("a crawl resumes from the database after reopening", "[store][resume]") {
    temp_db db;
    {
        result_store store(db.path());
        (void)store.add_pending(seeds(10));
        std::vector<fetch_result> done;
        for (int i = 0; i < 4; ++i)
            done.push_back(ok_result("http://127.0.0.1/p" + std::to_string(i)));
        (void)store.store_batch(done);
    }
    result_store store(db.path());
    const auto pending = store.load_pending();
    REQUIRE(pending.size() == 6);
    CHECK(pending.front().url == "http://127.0.0.1/p4");
    CHECK(store.counts() == scraper::state_counts{6, 4, 0, 0});
    CHECK(store.is_terminal("http://127.0.0.1/p0"));
    // Re-adding the seeds on resume changes nothing.
    CHECK(store.add_pending(seeds(10)).empty());
}

TEST_CASE("requeue_failed turns failures back into pending work", "[store][resume]") {
    result_store store(":memory:");
    (void)store.store_batch(
        std::vector<fetch_result>{ok_result("http://h/a"), failed_result("http://h/b", "503")});
    CHECK(store.requeue_failed() == 1);
    CHECK(store.load_pending() == std::vector<pending_url>{{"http://h/b", 0}});
    CHECK(store.store_batch(std::vector<fetch_result>{ok_result("http://h/b")}).stored == 1);
}

TEST_CASE("opening an unusable path throws store_error with SQLite's message", "[store][errors]") {
    try {
        result_store store("/nonexistent-dir/sub/crawl.db");
        FAIL("opening should have thrown");
    } catch (const scraper::store_error& e) {
        const std::string what = e.what();
        CHECK(what.find("sqlite: open \"/nonexistent-dir/sub/crawl.db\"") == 0);
        CHECK(what.find("unable to open database file") != std::string::npos);
        CHECK(e.sqlite_code() != 0);
    }
}

TEST_CASE("a file that is not a database is refused", "[store][errors]") {
    temp_db db;
    {
        std::FILE* f = std::fopen(db.path().c_str(), "wb");
        REQUIRE(f != nullptr);
        const std::string junk(4096, 'x');
        std::fwrite(junk.data(), 1, junk.size(), f);
        std::fclose(f);
    }
    CHECK_THROWS_AS(result_store(db.path()), scraper::store_error);
}

#if defined(__unix__)
TEST_CASE("after kill -9 every committed row is there and pending rows stay pending",
          "[store][crash]") {
    temp_db db;
    const pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        // Child: commit some work, then die without closing anything.
        try {
            result_store store(db.path());
            (void)store.add_pending(seeds(100));
            for (int batch = 0; batch < 5; ++batch) {
                std::vector<fetch_result> results;
                for (int i = 0; i < 10; ++i)
                    results.push_back(
                        ok_result("http://127.0.0.1/p" + std::to_string(batch * 10 + i), 200,
                                  {{"http://127.0.0.1/found" + std::to_string(batch), 1}}));
                (void)store.store_batch(results);
            }
        } catch (...) {
            ::_exit(3);
        }
        ::raise(SIGKILL);
        ::_exit(4); // not reached
    }
    int status = 0;
    REQUIRE(::waitpid(child, &status, 0) == child);
    REQUIRE(WIFSIGNALED(status));
    REQUIRE(WTERMSIG(status) == SIGKILL);

    result_store store(db.path());
    CHECK(store.counts() == scraper::state_counts{55, 50, 0, 0});
    const auto pending = store.load_pending();
    REQUIRE(pending.size() == 55);
    CHECK(pending.front().url == "http://127.0.0.1/p50");
    CHECK(store.is_terminal("http://127.0.0.1/p49"));
    CHECK_FALSE(store.is_terminal("http://127.0.0.1/p50"));
    CHECK(store.find("http://127.0.0.1/found4").has_value());
}
#endif

TEST_CASE("result_store is move-only", "[store]") {
    static_assert(!std::is_copy_constructible_v<result_store>);
    static_assert(std::is_nothrow_move_constructible_v<result_store>);
    static_assert(std::is_nothrow_move_assignable_v<result_store>);
    result_store a(":memory:");
    (void)a.add_pending(seeds(1));
    result_store b(std::move(a));
    CHECK(b.counts().pending == 1);
}

#include "coordinator/query.h"

#include "common/clock.h"
#include "common/testing/status_matchers.h"
#include "coordinator/scheduler.h"
#include "coordinator/testing/test_jobs.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace sf::coordinator {
namespace {

using ::sf::testing::IsOk;
using ::sf::testing::StatusIs;
using ::testing::_;
using ::testing::ElementsAre;

class QueryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = Scheduler::Open(db_.path(), &clock_);
    ASSERT_THAT(s.status(), IsOk());
    scheduler_ = std::move(*s);
    v1::SubmitSweepRequest r;
    r.set_sweep_name("s");
    for (int i = 0; i < 5; ++i) *r.add_jobs() = testing::MakeJob(absl::StrCat("k", i));
    ASSERT_THAT(scheduler_->SubmitSweep(r).status(), IsOk());
  }

  absl::Status Run(const std::string& sql, std::vector<v1::QueryResponse>* out,
                   QueryLimits limits = {}) {
    return RunReadOnlyQuery(db_.path(), sql, limits, [out](v1::QueryResponse& r) {
      out->push_back(r);
      return true;
    });
  }

  testing::TempDb db_;
  FakeClock clock_;
  std::unique_ptr<Scheduler> scheduler_;
};

TEST_F(QueryTest, Select_StreamsColumnsAndRows) {
  std::vector<v1::QueryResponse> out;
  ASSERT_THAT(Run("SELECT key, sequence_length FROM jobs ORDER BY key", &out), IsOk());
  ASSERT_EQ(out.size(), 1u);
  EXPECT_THAT(out[0].columns(), ElementsAre("key", "sequence_length"));
  ASSERT_EQ(out[0].rows_size(), 5);
  EXPECT_EQ(out[0].rows(0).values(0).text_value(), "k0");
  EXPECT_EQ(out[0].rows(0).values(1).int_value(), 1024);
  EXPECT_FALSE(out[0].truncated());
}

// States and event kinds by name, from views that exist only on the query's connection.
TEST_F(QueryTest, NamedViews_GiveStatesByName_WithoutWritingTheFile) {
  std::vector<v1::QueryResponse> out;
  ASSERT_THAT(Run("SELECT state, COUNT(*) FROM job_status GROUP BY state", &out), IsOk());
  ASSERT_EQ(out.size(), 1u);
  ASSERT_EQ(out[0].rows_size(), 1);
  EXPECT_EQ(out[0].rows(0).values(0).text_value(), "queued");
  EXPECT_EQ(out[0].rows(0).values(1).int_value(), 5);
  out.clear();
  ASSERT_THAT(Run("SELECT name FROM job_states ORDER BY state", &out), IsOk());
  ASSERT_EQ(out[0].rows_size(), 5);
  EXPECT_EQ(out[0].rows(1).values(0).text_value(), "leased");
  out.clear();
  ASSERT_THAT(Run("SELECT kind FROM event_log ORDER BY seq LIMIT 1", &out), IsOk());
  EXPECT_EQ(out[0].rows(0).values(0).text_value(), "sweep_submitted");
  out.clear();
  ASSERT_THAT(Run("SELECT name FROM sweep_states WHERE state = 2", &out), IsOk());
  EXPECT_EQ(out[0].rows(0).values(0).text_value(), "finished");
  // The views are temporary: the next connection (and the database file) has none of
  // them in its schema.
  out.clear();
  ASSERT_THAT(Run("SELECT COUNT(*) FROM sqlite_schema WHERE type = 'view'", &out), IsOk());
  EXPECT_EQ(out[0].rows(0).values(0).int_value(), 0);
}

TEST_F(QueryTest, RowLimit_TruncatesAndSaysSo) {
  std::vector<v1::QueryResponse> out;
  QueryLimits limits;
  limits.max_rows = 3;
  limits.batch_rows = 2;
  ASSERT_THAT(Run("SELECT key FROM jobs", &out, limits), IsOk());
  int rows = 0;
  for (auto& r : out) rows += r.rows_size();
  EXPECT_EQ(rows, 3);
  EXPECT_TRUE(out.back().truncated());
}

TEST_F(QueryTest, Writes_Denied) {
  std::vector<v1::QueryResponse> out;
  for (const char* sql :
       {"DELETE FROM jobs", "UPDATE jobs SET state=0", "INSERT INTO sweeps(name) VALUES('x')",
        "DROP TABLE jobs", "CREATE TABLE t(x)", "CREATE TEMP TABLE t(x)",
        "ATTACH DATABASE '/tmp/sf_evil.db' AS evil", "PRAGMA journal_mode=DELETE",
        "PRAGMA writable_schema=ON", "VACUUM", "BEGIN"}) {
    absl::Status s = Run(sql, &out);
    EXPECT_FALSE(s.ok()) << sql;
    EXPECT_TRUE(s.code() == absl::StatusCode::kPermissionDenied) << sql << ": " << s;
  }
  out.clear();
  ASSERT_THAT(Run("SELECT COUNT(*) FROM jobs", &out), IsOk());
  EXPECT_EQ(out[0].rows(0).values(0).int_value(), 5);
}

TEST_F(QueryTest, TwoStatements_Refused) {
  std::vector<v1::QueryResponse> out;
  EXPECT_THAT(Run("SELECT 1; DELETE FROM jobs", &out),
              StatusIs(absl::StatusCode::kInvalidArgument, _));
  EXPECT_THAT(Run("SELECT 1;", &out), IsOk());
}

TEST_F(QueryTest, LongQuery_StoppedAtTimeLimit) {
  std::vector<v1::QueryResponse> out;
  QueryLimits limits;
  limits.timeout = absl::Milliseconds(50);
  EXPECT_THAT(Run("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c) "
                  "SELECT COUNT(*) FROM c",
                  &out, limits),
              StatusIs(absl::StatusCode::kResourceExhausted, ::testing::HasSubstr("time limit")));
}

TEST_F(QueryTest, BadSql_InvalidArgument) {
  std::vector<v1::QueryResponse> out;
  EXPECT_THAT(Run("SELEC nonsense", &out), StatusIs(absl::StatusCode::kInvalidArgument, _));
}

TEST_F(QueryTest, FunctionsOutsideTheAllowList_Denied) {
  std::vector<v1::QueryResponse> out;
  for (const char* sql : {"SELECT randomblob(1000000000)", "SELECT zeroblob(1000000000)",
                          "SELECT fts3_tokenizer('simple')", "SELECT load_extension('x')",
                          "SELECT sqlite_compileoption_get(0)"}) {
    EXPECT_THAT(Run(sql, &out),
                StatusIs(absl::StatusCode::kPermissionDenied, ::testing::HasSubstr("function")))
        << sql;
  }
  // Ordinary functions, the LIKE operator and window functions still work.
  EXPECT_THAT(Run("SELECT upper(key), length(key), round(cost, 1), coalesce(NULL, 1), "
                  "row_number() OVER (ORDER BY key) FROM jobs WHERE key LIKE 'k%'",
                  &out),
              IsOk());
}

TEST_F(QueryTest, HugeString_StoppedAtTheLengthLimitSayingSo) {
  std::vector<v1::QueryResponse> out;
  // printf with a huge width ignores SQLite's length limit: it is not on the list.
  EXPECT_THAT(Run("SELECT printf('%.*c', 2147483647, 'x')", &out),
              StatusIs(absl::StatusCode::kPermissionDenied, ::testing::HasSubstr("printf")));
  EXPECT_THAT(Run("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c LIMIT 3000000) "
                  "SELECT group_concat('0123456789abcdef0123456789abcdef') FROM c",
                  &out),
              StatusIs(absl::StatusCode::kResourceExhausted, ::testing::HasSubstr("limit")));
}

TEST_F(QueryTest, QueryOverItsMemoryBound_StoppedSayingSo) {
  std::vector<v1::QueryResponse> out;
  QueryLimits limits;
  limits.max_memory_bytes = 4 << 20;
  EXPECT_THAT(Run("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c LIMIT 400000) "
                  "SELECT group_concat(x || '-0123456789abcdef') FROM c",
                  &out, limits),
              StatusIs(absl::StatusCode::kResourceExhausted, ::testing::HasSubstr("memory")));
}

}  // namespace
}  // namespace sf::coordinator

#include "common/testing/status_matchers.h"
#include "coordinator/schema.h"
#include "coordinator/sqlite.h"
#include "coordinator/testing/test_jobs.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace sf::coordinator {
namespace {

using ::sf::testing::IsOk;
using ::sf::testing::StatusIs;
using ::testing::HasSubstr;

TEST(SchemaTest, Migrate_FreshDatabase_ReachesCurrentVersionOnce) {
  testing::TempDb path;
  for (int round = 0; round < 2; ++round) {
    auto db = Database::OpenWriter(path.path());
    ASSERT_THAT(db.status(), IsOk());
    ASSERT_THAT(Migrate(db->get()), IsOk());
    auto version = SchemaVersion(db->get());
    ASSERT_THAT(version.status(), IsOk());
    EXPECT_EQ(*version, CurrentSchemaVersion());
    auto rows = (*db)->Prepare("SELECT COUNT(*) FROM schema_version");
    ASSERT_THAT(rows.status(), IsOk());
    ASSERT_TRUE(*(*rows)->Step());
    EXPECT_EQ((*rows)->Int(0), CurrentSchemaVersion());
  }
}

TEST(SchemaTest, Migrate_NewerDatabase_FailedPrecondition) {
  testing::TempDb path;
  auto db = Database::OpenWriter(path.path());
  ASSERT_THAT(db.status(), IsOk());
  ASSERT_THAT(Migrate(db->get()), IsOk());
  ASSERT_THAT((*db)->Exec("INSERT INTO schema_version VALUES (999, 0)"), IsOk());
  EXPECT_THAT(Migrate(db->get()),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("newer")));
}

// A database written by a build that knew migrations 1-4 (per-phase seconds in results,
// no Slurm placement in workers) keeps its rows and gains migration 5's columns.
TEST(SchemaTest, Migrate_Version4Database_AddsSlurmColumnsKeepsWorkers) {
  testing::TempDb path;
  {
    auto db = Database::OpenWriter(path.path());
    ASSERT_THAT(db.status(), IsOk());
    ASSERT_THAT(Migrate(db->get()), IsOk());
    // Back to version 4's layout: migration 5 only added these two columns.
    for (const char* sql : {"ALTER TABLE workers DROP COLUMN slurm_job_id",
                            "ALTER TABLE workers DROP COLUMN slurm_node",
                            "DELETE FROM schema_version WHERE version = 5",
                            "INSERT INTO workers(worker_id, hostname, devices, max_device_memory, "
                            "device_count, registered_ms, last_seen_ms) "
                            "VALUES ('w1', 'h', x'', 1, 1, 7, 7)"}) {
      ASSERT_THAT((*db)->Exec(sql), IsOk()) << sql;
    }
    auto version = SchemaVersion(db->get());
    ASSERT_THAT(version.status(), IsOk());
    ASSERT_EQ(*version, 4);
    // Migration 4's columns are there before the upgrade.
    ASSERT_THAT((*db)->Prepare("SELECT prefill_seconds, attention_kernels FROM results").status(),
                IsOk());
  }
  auto db = Database::OpenWriter(path.path());
  ASSERT_THAT(db.status(), IsOk());
  ASSERT_THAT(Migrate(db->get()), IsOk());
  auto version = SchemaVersion(db->get());
  ASSERT_THAT(version.status(), IsOk());
  EXPECT_EQ(*version, CurrentSchemaVersion());
  auto row =
      (*db)->Prepare("SELECT worker_id, last_seen_ms, slurm_job_id, slurm_node FROM workers");
  ASSERT_THAT(row.status(), IsOk());
  ASSERT_TRUE(*(*row)->Step());
  EXPECT_EQ((*row)->Text(0), "w1");
  EXPECT_EQ((*row)->Int(1), 7);
  EXPECT_EQ((*row)->Text(2), "");
  EXPECT_EQ((*row)->Text(3), "");
}

TEST(SchemaTest, Wal_Enabled) {
  testing::TempDb path;
  auto db = Database::OpenWriter(path.path());
  ASSERT_THAT(db.status(), IsOk());
  auto st = (*db)->Prepare("PRAGMA journal_mode");
  ASSERT_THAT(st.status(), IsOk());
  ASSERT_TRUE(*(*st)->Step());
  EXPECT_EQ((*st)->Text(0), "wal");
}

TEST(TransactionTest, NotCommitted_RolledBack) {
  auto db = Database::OpenWriter(":memory:");
  ASSERT_THAT(db.status(), IsOk());
  ASSERT_THAT((*db)->Exec("CREATE TABLE t(x INTEGER)"), IsOk());
  {
    auto txn = Transaction::Begin(db->get());
    ASSERT_THAT(txn.status(), IsOk());
    ASSERT_THAT((*db)->Exec("INSERT INTO t VALUES (1)"), IsOk());
  }
  {
    auto txn = Transaction::Begin(db->get());
    ASSERT_THAT(txn.status(), IsOk());
    ASSERT_THAT((*db)->Exec("INSERT INTO t VALUES (2)"), IsOk());
    ASSERT_THAT((*txn)->Commit(), IsOk());
  }
  auto st = (*db)->Prepare("SELECT SUM(x) FROM t");
  ASSERT_THAT(st.status(), IsOk());
  ASSERT_TRUE(*(*st)->Step());
  EXPECT_EQ((*st)->Int(0), 2);
}

TEST(StatementTest, Reuse_BindStepReset) {
  auto db = Database::OpenWriter(":memory:");
  ASSERT_THAT(db.status(), IsOk());
  ASSERT_THAT((*db)->Exec("CREATE TABLE t(x INTEGER)"), IsOk());
  auto ins = (*db)->Prepare("INSERT INTO t VALUES (?)");
  ASSERT_THAT(ins.status(), IsOk());
  for (int i = 1; i <= 3; ++i) ASSERT_THAT((*ins)->Bind(1, i).Run(), IsOk());
  auto sum = (*db)->Prepare("SELECT SUM(x) FROM t WHERE x >= ?");
  ASSERT_THAT(sum.status(), IsOk());
  (*sum)->Bind(1, 2);
  ASSERT_TRUE(*(*sum)->Step());
  EXPECT_EQ((*sum)->Int(0), 5);
  (*sum)->Bind(1, 3);
  ASSERT_TRUE(*(*sum)->Step());
  EXPECT_EQ((*sum)->Int(0), 3);
}

// Group commit puts each call in a savepoint of a shared transaction: a failed call
// must undo only its own writes.
TEST(TransactionTest, Savepoint_RollbackKeepsTheEnclosingTransaction) {
  testing::TempDb path;
  auto db = Database::OpenWriter(path.path());
  ASSERT_THAT(db.status(), IsOk());
  ASSERT_THAT((*db)->Exec("CREATE TABLE t (x INTEGER)"), IsOk());
  auto outer = Transaction::Begin(db->get());
  ASSERT_THAT(outer.status(), IsOk());
  {
    auto first = Transaction::Savepoint(db->get());
    ASSERT_THAT(first.status(), IsOk());
    ASSERT_THAT((*db)->Exec("INSERT INTO t VALUES (1)"), IsOk());
    ASSERT_THAT((*first)->Commit(), IsOk());
  }
  {
    auto failed = Transaction::Savepoint(db->get());
    ASSERT_THAT(failed.status(), IsOk());
    ASSERT_THAT((*db)->Exec("INSERT INTO t VALUES (2)"), IsOk());
  }  // dropped without Commit: rolled back
  {
    auto third = Transaction::Savepoint(db->get());
    ASSERT_THAT(third.status(), IsOk());
    ASSERT_THAT((*db)->Exec("INSERT INTO t VALUES (3)"), IsOk());
    ASSERT_THAT((*third)->Commit(), IsOk());
  }
  ASSERT_THAT((*outer)->Commit(), IsOk());
  auto reader = Database::OpenReadOnly(path.path());
  ASSERT_THAT(reader.status(), IsOk());
  auto rows = (*reader)->Prepare("SELECT group_concat(x) FROM (SELECT x FROM t ORDER BY x)");
  ASSERT_THAT(rows.status(), IsOk());
  ASSERT_TRUE(*(*rows)->Step());
  EXPECT_EQ((*rows)->Text(0), "1,3");
}

}  // namespace
}  // namespace sf::coordinator

#include "worker/outbox.h"

#include <sqlite3.h>

#include <filesystem>
#include <fstream>

#include "common/testing/status_matchers.h"
#include "common/testing/temp_dir.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace sf::worker {
namespace {

using ::sf::testing::IsOk;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

v1::SampleResult Sample(int index, double score) {
  v1::SampleResult s;
  s.set_index(index);
  s.set_score(score);
  s.set_prediction("p" + std::to_string(index));
  return s;
}

std::vector<int32_t> Indices(const std::vector<v1::SampleResult>& samples) {
  std::vector<int32_t> out;
  for (const auto& s : samples) out.push_back(s.index());
  return out;
}

class OutboxTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = sf::testing::FreshTestDir();
    path_ = (dir_ / "outbox.db").string();
  }
  std::filesystem::path dir_;
  std::string path_;
};

TEST_F(OutboxTest, Add_PendingInIndexOrder_AckDeletes) {
  SF_ASSERT_OK_AND_ASSIGN(auto outbox, Outbox::Open(path_));
  ASSERT_THAT(outbox->AddLease("t1", "k1"), IsOk());
  for (int i : {3, 1, 2}) ASSERT_THAT(outbox->Add("t1", Sample(i, i)), IsOk());
  SF_ASSERT_OK_AND_ASSIGN(auto pending, outbox->Pending("t1", 10));
  EXPECT_THAT(Indices(pending), ElementsAre(1, 2, 3));
  SF_ASSERT_OK_AND_ASSIGN(auto limited, outbox->Pending("t1", 2));
  EXPECT_THAT(Indices(limited), ElementsAre(1, 2));
  ASSERT_THAT(outbox->Ack("t1", {1, 3}), IsOk());
  SF_ASSERT_OK_AND_ASSIGN(pending, outbox->Pending("t1", 10));
  EXPECT_THAT(Indices(pending), ElementsAre(2));
  EXPECT_EQ(pending[0].prediction(), "p2");
  SF_ASSERT_OK_AND_ASSIGN(int64_t count, outbox->PendingCount());
  EXPECT_EQ(count, 1);
}

TEST_F(OutboxTest, Reopen_KeepsUnacknowledgedSamplesAndLeases) {
  {
    SF_ASSERT_OK_AND_ASSIGN(auto outbox, Outbox::Open(path_));
    ASSERT_THAT(outbox->AddLease("t1", "k1"), IsOk());
    ASSERT_THAT(outbox->Add("t1", Sample(0, 1)), IsOk());
    ASSERT_THAT(outbox->Add("t1", Sample(1, 0)), IsOk());
    ASSERT_THAT(outbox->Ack("t1", {0}), IsOk());
  }  // closed as a crash would leave it: nothing flushed later
  SF_ASSERT_OK_AND_ASSIGN(auto outbox, Outbox::Open(path_));
  SF_ASSERT_OK_AND_ASSIGN(auto leases, outbox->Leases());
  ASSERT_EQ(leases.size(), 1u);
  EXPECT_EQ(leases[0].lease_token, "t1");
  EXPECT_EQ(leases[0].job_key, "k1");
  SF_ASSERT_OK_AND_ASSIGN(auto pending, outbox->Pending("t1", 10));
  EXPECT_THAT(Indices(pending), ElementsAre(1));
}

TEST_F(OutboxTest, AddSameIndexTwice_KeepsFirst) {
  SF_ASSERT_OK_AND_ASSIGN(auto outbox, Outbox::Open(path_));
  ASSERT_THAT(outbox->Add("t1", Sample(4, 1.0)), IsOk());
  ASSERT_THAT(outbox->Add("t1", Sample(4, 0.0)), IsOk());
  SF_ASSERT_OK_AND_ASSIGN(auto pending, outbox->Pending("t1", 10));
  ASSERT_EQ(pending.size(), 1u);
  EXPECT_EQ(pending[0].score(), 1.0);
}

TEST_F(OutboxTest, RemoveLease_DropsItsSamplesOnly) {
  SF_ASSERT_OK_AND_ASSIGN(auto outbox, Outbox::Open(path_));
  ASSERT_THAT(outbox->AddLease("t1", "k1"), IsOk());
  ASSERT_THAT(outbox->AddLease("t2", "k2"), IsOk());
  ASSERT_THAT(outbox->Add("t1", Sample(0, 1)), IsOk());
  ASSERT_THAT(outbox->Add("t2", Sample(0, 1)), IsOk());
  ASSERT_THAT(outbox->RemoveLease("t1"), IsOk());
  SF_ASSERT_OK_AND_ASSIGN(auto leases, outbox->Leases());
  ASSERT_EQ(leases.size(), 1u);
  EXPECT_EQ(leases[0].lease_token, "t2");
  SF_ASSERT_OK_AND_ASSIGN(auto p1, outbox->Pending("t1", 10));
  EXPECT_TRUE(p1.empty());
  SF_ASSERT_OK_AND_ASSIGN(auto p2, outbox->Pending("t2", 10));
  EXPECT_EQ(p2.size(), 1u);
}

TEST_F(OutboxTest, Open_NotADatabase_SaysSo) {
  std::ofstream(path_) << "this is not sqlite, just text that is long enough to be a header";
  auto outbox = Outbox::Open(path_);
  EXPECT_FALSE(outbox.ok());
  EXPECT_THAT(std::string(outbox.status().message()), HasSubstr(path_));
}

TEST_F(OutboxTest, Open_SqliteFileOfAnotherSchema_RefusedNamingTheFile) {
  {
    // Another program's database, with a `samples` table of its own.
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(db, "CREATE TABLE samples (id INTEGER, value REAL)", nullptr, nullptr,
                           nullptr),
              SQLITE_OK);
    sqlite3_close(db);
  }
  auto outbox = Outbox::Open(path_);
  ASSERT_FALSE(outbox.ok());
  EXPECT_THAT(std::string(outbox.status().message()), HasSubstr(path_));
  EXPECT_THAT(std::string(outbox.status().message()), HasSubstr("--outbox"));
}

}  // namespace
}  // namespace sf::worker

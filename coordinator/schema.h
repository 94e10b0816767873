// The coordinator database's schema and its migrations: each migration is applied
// once, in order, in its own transaction, and recorded in schema_version.
#ifndef SF_COORDINATOR_SCHEMA_H_
#define SF_COORDINATOR_SCHEMA_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "coordinator/sqlite.h"

namespace sf::coordinator {

// The schema version this build writes.
int CurrentSchemaVersion();

// Brings `db` to CurrentSchemaVersion(), applying the missing migrations.
// Returns FailedPrecondition if the database is newer than this build knows.
absl::Status Migrate(Database* db);

// The version recorded in `db` (0 for an empty database).
absl::StatusOr<int> SchemaVersion(Database* db);

}  // namespace sf::coordinator

#endif  // SF_COORDINATOR_SCHEMA_H_

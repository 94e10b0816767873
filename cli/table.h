// Tabular output shared by results, query, export, list and workers: an aligned text
// table for people, CSV and JSON (an array of objects) for scripts.
#ifndef SF_CLI_TABLE_H_
#define SF_CLI_TABLE_H_

#include <cstdint>
#include <iosfwd>
#include <string>
#include <variant>
#include <vector>

#include "absl/status/statusor.h"

namespace sf::cli {

enum class Format { kTable, kCsv, kJson };

// "table", "csv" or "json"; InvalidArgument otherwise.
absl::StatusOr<Format> ParseFormat(const std::string& text);

using Cell = std::variant<std::monostate, int64_t, double, std::string>;  // monostate = null

struct Table {
  std::vector<std::string> columns;
  std::vector<std::vector<Cell>> rows;
};

// Writes `table` in `format`. Text tables right-align numbers and print doubles with 4
// significant digits; CSV and JSON keep full precision (17 digits).
void PrintTable(const Table& table, Format format, std::ostream& out);

}  // namespace sf::cli

#endif  // SF_CLI_TABLE_H_

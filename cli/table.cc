#include "cli/table.h"

#include <algorithm>
#include <ostream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "nlohmann/json.hpp"

namespace sf::cli {
namespace {

std::string Text(const Cell& cell, bool full_precision) {
  if (std::holds_alternative<std::monostate>(cell)) return full_precision ? "" : "-";
  if (const auto* i = std::get_if<int64_t>(&cell)) return absl::StrCat(*i);
  if (const auto* d = std::get_if<double>(&cell)) {
    return full_precision ? absl::StrFormat("%.17g", *d) : absl::StrFormat("%.4g", *d);
  }
  return std::get<std::string>(cell);
}

std::string CsvField(const std::string& s) {
  if (s.find_first_of(",\"\n\r") == std::string::npos) return s;
  return absl::StrCat("\"", absl::StrReplaceAll(s, {{"\"", "\"\""}}), "\"");
}

}  // namespace

absl::StatusOr<Format> ParseFormat(const std::string& text) {
  if (text == "table") return Format::kTable;
  if (text == "csv") return Format::kCsv;
  if (text == "json") return Format::kJson;
  return absl::InvalidArgumentError(
      absl::StrCat("--format ", text, " is unknown: use table, csv or json"));
}

void PrintTable(const Table& table, Format format, std::ostream& out) {
  switch (format) {
    case Format::kCsv: {
      for (size_t c = 0; c < table.columns.size(); ++c) {
        out << (c ? "," : "") << CsvField(table.columns[c]);
      }
      out << "\n";
      for (const auto& row : table.rows) {
        for (size_t c = 0; c < row.size(); ++c)
          out << (c ? "," : "") << CsvField(Text(row[c], true));
        out << "\n";
      }
      return;
    }
    case Format::kJson: {
      nlohmann::ordered_json array = nlohmann::ordered_json::array();
      for (const auto& row : table.rows) {
        nlohmann::ordered_json object = nlohmann::ordered_json::object();
        for (size_t c = 0; c < row.size() && c < table.columns.size(); ++c) {
          const Cell& cell = row[c];
          nlohmann::ordered_json& v = object[table.columns[c]];
          if (const auto* i = std::get_if<int64_t>(&cell)) {
            v = *i;
          } else if (const auto* d = std::get_if<double>(&cell)) {
            v = *d;
          } else if (const auto* s = std::get_if<std::string>(&cell)) {
            v = *s;
          } else {
            v = nullptr;
          }
        }
        array.push_back(std::move(object));
      }
      out << array.dump(2) << "\n";
      return;
    }
    case Format::kTable: {
      std::vector<size_t> width(table.columns.size());
      std::vector<bool> numeric(table.columns.size(), true);
      std::vector<std::vector<std::string>> text;
      for (size_t c = 0; c < table.columns.size(); ++c) width[c] = table.columns[c].size();
      for (const auto& row : table.rows) {
        auto& t = text.emplace_back();
        for (size_t c = 0; c < row.size() && c < width.size(); ++c) {
          t.push_back(Text(row[c], false));
          width[c] = std::max(width[c], t.back().size());
          if (std::holds_alternative<std::string>(row[c])) numeric[c] = false;
        }
      }
      auto line = [&](const std::vector<std::string>& cells) {
        std::string s;
        for (size_t c = 0; c < cells.size(); ++c) {
          const size_t pad = width[c] - std::min(width[c], cells[c].size());
          if (c) s += "  ";
          if (numeric[c]) s.append(pad, ' ');
          s += cells[c];
          if (!numeric[c] && c + 1 < cells.size()) s.append(pad, ' ');
        }
        out << s << "\n";
      };
      line(table.columns);
      for (const auto& t : text) line(t);
      return;
    }
  }
}

}  // namespace sf::cli

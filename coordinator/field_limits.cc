#include "coordinator/field_limits.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "google/protobuf/descriptor.h"

namespace sf::coordinator {
namespace {

using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

size_t TextLimit(const FieldDescriptor& field) {
  const std::string& name = field.name();
  if (name == "spec_yaml") return kMaxSpecBytes;
  if (name == "prediction" || name == "target") return kMaxSampleTextBytes;
  if (name == "error") return kMaxErrorBytes;
  return kMaxTextBytes;
}

bool ListUnbounded(const FieldDescriptor& field) {
  return field.name() == "jobs" || field.name() == "samples";
}

absl::Status CheckText(const std::string& value, const FieldDescriptor& field,
                       const std::string& path) {
  const size_t limit = TextLimit(field);
  if (value.size() <= limit) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat(path, " is ", value.size(), " bytes; the limit is ", limit));
}

absl::Status CheckMessage(const Message& message, const std::string& prefix) {
  const Reflection* reflection = message.GetReflection();
  std::vector<const FieldDescriptor*> fields;
  reflection->ListFields(message, &fields);  // only the fields that are set
  std::string scratch;
  for (const FieldDescriptor* field : fields) {
    const std::string path = absl::StrCat(prefix, prefix.empty() ? "" : ".", field->name());
    const bool text = field->cpp_type() == FieldDescriptor::CPPTYPE_STRING;
    const bool nested = field->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE;
    if (!field->is_repeated()) {
      if (text) {
        const std::string& value = reflection->GetStringReference(message, field, &scratch);
        if (absl::Status s = CheckText(value, *field, path); !s.ok()) return s;
      } else if (nested) {
        if (absl::Status s = CheckMessage(reflection->GetMessage(message, field), path); !s.ok()) {
          return s;
        }
      }
      continue;
    }
    const int n = reflection->FieldSize(message, field);
    if (n > kMaxListEntries && !ListUnbounded(*field)) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, " has ", n, " entries; the limit is ", kMaxListEntries));
    }
    if (!text && !nested) continue;
    for (int i = 0; i < n; ++i) {
      const std::string item = absl::StrCat(path, "[", i, "]");
      absl::Status s =
          text ? CheckText(reflection->GetRepeatedStringReference(message, field, i, &scratch),
                           *field, item)
               : CheckMessage(reflection->GetRepeatedMessage(message, field, i), item);
      if (!s.ok()) return s;
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status CheckFieldLimits(const Message& request) { return CheckMessage(request, ""); }

}  // namespace sf::coordinator

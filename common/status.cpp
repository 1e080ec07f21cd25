#include "common/status.h"

#include "common/enum_names.h"

namespace reprise {

namespace {

// clang-format off
constexpr EnumName<Code> kCodeNames[] = {
    {Code::kOk, "ok"}, {Code::kInvalidArgument, "invalid_argument"},
    {Code::kUnauthenticated, "unauthenticated"}, {Code::kPermissionDenied, "permission_denied"},
    {Code::kNotFound, "not_found"}, {Code::kAlreadyExists, "already_exists"},
    {Code::kConflict, "conflict"}, {Code::kTooLarge, "too_large"},
    {Code::kUnsafe, "unsafe_content"}, {Code::kFailedPrecondition, "failed_precondition"},
    {Code::kCancelled, "cancelled"}, {Code::kTimeout, "timeout"},
    {Code::kUnavailable, "unavailable"}, {Code::kIo, "io_error"}, {Code::kInternal, "internal"},
};
// clang-format on

}  // namespace

std::string_view CodeName(Code code) { return NameOf(kCodeNames, code, "internal"); }

std::string Status::ToString() const {
  if (ok()) return "ok";
  return std::string(CodeName(code_)) + ": " + message_;
}

Status Status::WithContext(std::string_view prefix) const {
  if (ok()) return *this;
  return Status(code_, std::string(prefix) + ": " + message_);
}

}  // namespace reprise

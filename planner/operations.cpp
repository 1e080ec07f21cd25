#include "planner/operations.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <set>
#include <tuple>
#include <type_traits>

#include "common/enum_names.h"

namespace reprise {

using nlohmann::json;

std::string_view OperationKind(const ResolvedOperation& op) {
  return std::visit(
      [](const auto& o) -> std::string_view {
        using T = std::decay_t<decltype(o)>;
        if constexpr (std::is_same_v<T, DeployArtifactOp>) return "deploy-artifact";
        if constexpr (std::is_same_v<T, WriteFileOp>) return "write-file";
        if constexpr (std::is_same_v<T, ExecOp>) return "exec";
        if constexpr (std::is_same_v<T, EnsureDirOp>) return "ensure-dir";
        if constexpr (std::is_same_v<T, DeleteOp>) return "delete";
        if constexpr (std::is_same_v<T, HttpCheckOp>) return "http-check";
        if constexpr (std::is_same_v<T, ComposeReleaseOp>) return "compose-release";
      },
      op);
}

namespace {

std::string ModeString(uint32_t mode) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%04o", mode);
  return buf;
}

std::string ShellQuoteForDisplay(const std::string& s) {
  if (!s.empty() && s.find_first_of(" \t\"'$\\") == std::string::npos) return s;
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

// A member that an operation's JSON form carries as is. Decoding fails (with
// the JSON library's message) when a required one is absent or one has the
// wrong type; an absent optional one keeps the member's default.
template <typename Op, typename T>
struct PlainField {
  const char* name;
  T Op::*member;
  bool required;
};
// Spelled out: clang before 17 deduces no aggregate's template arguments.
template <typename Op, typename T>
PlainField(const char*, T Op::*, bool) -> PlainField<Op, T>;

// Each operation's plain fields, in decoding order. What needs more than a
// copy is handled beside them: deploy-artifact's mode (a name) and
// manifest_hash (left out when empty), exec's argv-or-command check, and
// compose-release (strict, with messages of its own).
constexpr auto PlainFields(const DeployArtifactOp&) {
  return std::tuple{PlainField{"artifact", &DeployArtifactOp::artifact, true},
                    PlainField{"sha256", &DeployArtifactOp::sha256, true},
                    PlainField{"to", &DeployArtifactOp::to, false},
                    PlainField{"keep", &DeployArtifactOp::keep, false}};
}
constexpr auto PlainFields(const WriteFileOp&) {
  return std::tuple{PlainField{"path", &WriteFileOp::path, true},
                    PlainField{"content", &WriteFileOp::content, true},
                    PlainField{"mode", &WriteFileOp::mode, false}};
}
constexpr auto PlainFields(const ExecOp&) {
  return std::tuple{PlainField{"argv", &ExecOp::argv, false},
                    PlainField{"command", &ExecOp::command, false},
                    PlainField{"timeout_seconds", &ExecOp::timeout_seconds, false},
                    PlainField{"cwd", &ExecOp::cwd, false},
                    PlainField{"env", &ExecOp::env, false},
                    PlainField{"success_codes", &ExecOp::success_codes, false}};
}
constexpr auto PlainFields(const EnsureDirOp&) {
  return std::tuple{PlainField{"path", &EnsureDirOp::path, true},
                    PlainField{"mode", &EnsureDirOp::mode, false}};
}
constexpr auto PlainFields(const DeleteOp&) {
  return std::tuple{PlainField{"path", &DeleteOp::path, true}};
}
constexpr auto PlainFields(const HttpCheckOp&) {
  return std::tuple{PlainField{"url", &HttpCheckOp::url, true},
                    PlainField{"expect_status", &HttpCheckOp::expect_status, false},
                    PlainField{"retries", &HttpCheckOp::retries, false},
                    PlainField{"delay_seconds", &HttpCheckOp::delay_seconds, false},
                    PlainField{"timeout_seconds", &HttpCheckOp::timeout_seconds, false}};
}

template <typename Op>
void PlainFieldsToJson(const Op& o, json& j) {
  std::apply([&](const auto&... field) { ((j[field.name] = o.*field.member), ...); },
             PlainFields(o));
}

// Throws json::exception (see PlainField).
template <typename Op>
Op PlainFieldsFromJson(const json& j) {
  Op o;
  auto read = [&](const auto& field) {
    auto& value = o.*field.member;
    value = field.required ? j.at(field.name).template get<std::decay_t<decltype(value)>>()
                           : j.value(field.name, value);
  };
  std::apply([&](const auto&... field) { (read(field), ...); }, PlainFields(o));
  return o;
}

// compose-release's string fields, in decoding order, and whether decoding
// requires them.
struct ComposeString {
  const char* name;
  std::string ComposeReleaseOp::*member;
  bool required;
};
constexpr ComposeString kComposeStrings[] = {
    {"to", &ComposeReleaseOp::to, false},
    {"base_release", &ComposeReleaseOp::base_release, true},
    {"base_manifest_hash", &ComposeReleaseOp::base_manifest_hash, true},
    {"source_release", &ComposeReleaseOp::source_release, false},
    {"source_artifact", &ComposeReleaseOp::source_artifact, false},
    {"source_sha256", &ComposeReleaseOp::source_sha256, false},
    {"source_manifest_hash", &ComposeReleaseOp::source_manifest_hash, false},
    // Present but possibly empty: a remote agent receives it in the frame's payload.
    {"manifest_json", &ComposeReleaseOp::manifest_json, true},
    {"name", &ComposeReleaseOp::name, true},
};

void ComposeToJson(const ComposeReleaseOp& o, json& j) {
  for (const ComposeString& field : kComposeStrings) j[field.name] = o.*field.member;
  json reverts = json::array();
  for (const RevertEntry& r : o.reverts) reverts.push_back({{"path", r.path}, {"type", r.type}});
  j["reverts"] = std::move(reverts);
  j["keep"] = o.keep;
}

bool IsLowerHex64(const std::string& s) {
  return s.size() == 64 && s.find_first_not_of("0123456789abcdef") == std::string::npos;
}

// A string field of a compose-release: required ones must be present.
Status ReadString(const json& j, const char* field, bool required, std::string* out) {
  auto it = j.find(field);
  if (it == j.end()) {
    if (!required) return Status::Ok();
    return InvalidArgument(std::string("compose-release: field '") + field + "' is missing");
  }
  if (!it->is_string()) {
    return InvalidArgument(std::string("compose-release: field '") + field + "' must be a string");
  }
  *out = it->get<std::string>();
  return Status::Ok();
}

Status ReadReverts(const json& j, std::vector<RevertEntry>* out) {
  auto it = j.find("reverts");
  if (it == j.end()) return InvalidArgument("compose-release: field 'reverts' is missing");
  if (!it->is_array()) return InvalidArgument("compose-release: field 'reverts' must be an array");
  std::set<std::string> seen;
  for (size_t i = 0; i < it->size(); ++i) {
    const json& r = (*it)[i];
    const std::string where = "compose-release: reverts[" + std::to_string(i) + "]";
    if (!r.is_object() || r.size() != 2 || !r.contains("path") || !r.contains("type") ||
        !r["path"].is_string() || !r["type"].is_string()) {
      return InvalidArgument(where + " must be {\"path\": string, \"type\": string}");
    }
    RevertEntry e{r["path"].get<std::string>(), r["type"].get<std::string>()};
    if (e.path.empty()) return InvalidArgument(where + ": the path is empty");
    if (e.type != "delete" && e.type != "override" && e.type != "restore") {
      return InvalidArgument(where + ": type '" + e.type +
                             "' is not one of delete, override, restore");
    }
    if (!seen.insert(e.path).second) {
      return InvalidArgument(where + ": path '" + e.path + "' is listed twice");
    }
    out->push_back(std::move(e));
  }
  return Status::Ok();
}

// Checks that need the whole operation: hashes well-formed, A named when a
// revert needs its version.
Status CheckCompose(const ComposeReleaseOp& o) {
  if (o.base_release.empty()) return InvalidArgument("compose-release: base_release is empty");
  if (o.name.empty()) return InvalidArgument("compose-release: name is empty");
  if (o.name == o.base_release) {
    return InvalidArgument("compose-release: name must differ from base_release");
  }
  if (!IsLowerHex64(o.base_manifest_hash)) {
    return InvalidArgument("compose-release: base_manifest_hash is not a SHA-256 in hex");
  }
  const bool has_source = !o.source_release.empty() || !o.source_sha256.empty();
  if (!o.source_sha256.empty() && !IsLowerHex64(o.source_sha256)) {
    return InvalidArgument("compose-release: source_sha256 is not a SHA-256 in hex");
  }
  if (has_source && !IsLowerHex64(o.source_manifest_hash)) {
    return InvalidArgument(
        "compose-release: source_manifest_hash must be a SHA-256 in hex when a source is named");
  }
  if (!has_source) {
    for (const RevertEntry& r : o.reverts) {
      if (r.type != "delete") {
        return InvalidArgument("compose-release: revert '" + r.path + "' (" + r.type +
                               ") needs the earlier release or artifact, and none is named");
      }
    }
  }
  if (o.keep < 1) return InvalidArgument("compose-release: keep must be at least 1");
  return Status::Ok();
}

Result<ResolvedOperation> ComposeFromJson(const json& j) {
  auto is_field = [](const std::string& key) {
    if (key == "type" || key == "reverts" || key == "keep") return true;
    return std::any_of(std::begin(kComposeStrings), std::end(kComposeStrings),
                       [&key](const ComposeString& field) { return key == field.name; });
  };
  for (const auto& [key, value] : j.items()) {
    if (!is_field(key)) return InvalidArgument("compose-release: unknown field '" + key + "'");
  }
  ComposeReleaseOp o;
  for (const ComposeString& field : kComposeStrings) {
    REPRISE_RETURN_IF_ERROR(ReadString(j, field.name, field.required, &(o.*field.member)));
  }
  REPRISE_RETURN_IF_ERROR(ReadReverts(j, &o.reverts));
  if (auto it = j.find("keep"); it != j.end()) {
    if (!it->is_number_integer()) {
      return InvalidArgument("compose-release: field 'keep' must be an integer");
    }
    o.keep = it->get<int>();
  }
  REPRISE_RETURN_IF_ERROR(CheckCompose(o));
  return ResolvedOperation(std::move(o));
}

}  // namespace

std::string DescribeOperation(const ResolvedOperation& op) {
  return std::visit(
      [](const auto& o) -> std::string {
        using T = std::decay_t<decltype(o)>;
        if constexpr (std::is_same_v<T, DeployArtifactOp>) {
          std::string s = "deploy-artifact " + o.artifact + " to " + (o.to.empty() ? "." : o.to) +
                          " (" + std::string(DeployModeName(o.mode));
          if (o.mode == DeployMode::kAtomic) s += ", keep " + std::to_string(o.keep);
          s += ", sha256 " + o.sha256.substr(0, 12) + ")";
          return s;
        }
        if constexpr (std::is_same_v<T, WriteFileOp>) {
          return "write-file " + o.path + " (" + std::to_string(o.content.size()) +
                 " bytes, mode " + ModeString(o.mode) + ")";
        }
        if constexpr (std::is_same_v<T, ExecOp>) {
          std::string s = "exec ";
          if (o.argv.empty()) {
            s += "sh -c " + ShellQuoteForDisplay(o.command);
          } else {
            for (size_t i = 0; i < o.argv.size(); ++i) {
              s += (i ? " " : "") + ShellQuoteForDisplay(o.argv[i]);
            }
          }
          std::string details;
          auto add = [&](const std::string& d) { details += (details.empty() ? "" : ", ") + d; };
          if (!o.cwd.empty()) add("cwd " + o.cwd);
          for (const auto& [k, v] : o.env) add(k + "=" + v);
          if (o.timeout_seconds > 0) add("timeout " + std::to_string(o.timeout_seconds) + "s");
          if (o.success_codes != std::vector<int>{0}) {
            std::string codes;
            for (int c : o.success_codes) codes += (codes.empty() ? "" : ",") + std::to_string(c);
            add("success codes " + codes);
          }
          if (!details.empty()) s += " (" + details + ")";
          return s;
        }
        if constexpr (std::is_same_v<T, EnsureDirOp>) {
          return "ensure-dir " + o.path + " (mode " + ModeString(o.mode) + ")";
        }
        if constexpr (std::is_same_v<T, DeleteOp>) return "delete " + o.path;
        if constexpr (std::is_same_v<T, HttpCheckOp>) {
          return "http-check " + o.url + " expects " + std::to_string(o.expect_status) + " (" +
                 std::to_string(o.retries) + " retries, " + std::to_string(o.delay_seconds) +
                 "s apart)";
        }
        if constexpr (std::is_same_v<T, ComposeReleaseOp>) {
          return "compose-release " + o.name + " from " + o.base_release + " (" +
                 std::to_string(o.reverts.size()) + " reverted from " +
                 (o.source_release.empty()
                      ? (o.source_artifact.empty() ? std::string("nothing") : o.source_artifact)
                      : o.source_release) +
                 ", keep " + std::to_string(o.keep) + ")";
        }
      },
      op);
}

ResolvedOperation MaskOperation(const ResolvedOperation& op, const Masker& m) {
  ResolvedOperation copy = op;
  std::visit(
      [&m](auto& o) {
        using T = std::decay_t<decltype(o)>;
        if constexpr (std::is_same_v<T, DeployArtifactOp>) {
          o.artifact = m.Mask(o.artifact);
          o.to = m.Mask(o.to);
        }
        if constexpr (std::is_same_v<T, WriteFileOp>) {
          o.path = m.Mask(o.path);
          o.content = m.Mask(o.content);
        }
        if constexpr (std::is_same_v<T, ExecOp>) {
          for (auto& a : o.argv) a = m.Mask(a);
          o.command = m.Mask(o.command);
          o.cwd = m.Mask(o.cwd);
          for (auto& [k, v] : o.env) v = m.Mask(v);
        }
        if constexpr (std::is_same_v<T, EnsureDirOp> || std::is_same_v<T, DeleteOp>) {
          o.path = m.Mask(o.path);
        }
        if constexpr (std::is_same_v<T, HttpCheckOp>) o.url = m.Mask(o.url);
        if constexpr (std::is_same_v<T, ComposeReleaseOp>) o.to = m.Mask(o.to);
      },
      copy);
  return copy;
}

std::string OperationToJson(const ResolvedOperation& op) {
  json j;
  j["type"] = std::string(OperationKind(op));
  std::visit(
      [&j](const auto& o) {
        using T = std::decay_t<decltype(o)>;
        if constexpr (std::is_same_v<T, ComposeReleaseOp>) {
          ComposeToJson(o, j);
        } else {
          PlainFieldsToJson(o, j);
        }
        if constexpr (std::is_same_v<T, DeployArtifactOp>) {
          if (!o.manifest_hash.empty()) j["manifest_hash"] = o.manifest_hash;
          j["mode"] = std::string(DeployModeName(o.mode));
        }
      },
      op);
  // Content may be arbitrary bytes; never throw on invalid UTF-8.
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

Result<ResolvedOperation> OperationFromJson(std::string_view text) {
  try {
    json j = json::parse(text);
    if (!j.is_object() || !j.contains("type")) {
      return InvalidArgument("an operation is a JSON object with a \"type\"");
    }
    std::string type = j.at("type").get<std::string>();
    if (type == "deploy-artifact") {
      auto o = PlainFieldsFromJson<DeployArtifactOp>(j);
      o.manifest_hash = j.value("manifest_hash", "");
      auto mode = DeployModeFromName(j.value("mode", "atomic"));
      if (!mode) return InvalidArgument("bad deploy mode in operation");
      o.mode = *mode;
      return ResolvedOperation(o);
    }
    if (type == "write-file") return ResolvedOperation(PlainFieldsFromJson<WriteFileOp>(j));
    if (type == "exec") {
      auto o = PlainFieldsFromJson<ExecOp>(j);
      if (o.argv.empty() == o.command.empty()) {
        return InvalidArgument("exec needs exactly one of argv and command");
      }
      return ResolvedOperation(o);
    }
    if (type == "ensure-dir") return ResolvedOperation(PlainFieldsFromJson<EnsureDirOp>(j));
    if (type == "delete") return ResolvedOperation(PlainFieldsFromJson<DeleteOp>(j));
    if (type == "compose-release") return ComposeFromJson(j);
    if (type == "http-check") return ResolvedOperation(PlainFieldsFromJson<HttpCheckOp>(j));
    return InvalidArgument("unknown operation type \"" + type + "\"");
  } catch (const json::exception& e) {
    return InvalidArgument(std::string("bad operation JSON: ") + e.what());
  }
}

// ---- CancelToken ----

struct CancelToken::State {
  std::atomic<bool> cancelled{false};
  std::mutex mu;
  std::condition_variable cv;
};

CancelToken::CancelToken() : state_(std::make_shared<State>()) {}

CancelToken::CancelToken(const CancelToken& parent, const Clock& clock, TimePoint deadline)
    : state_(std::make_shared<State>()), parent_(&parent), clock_(&clock), deadline_(deadline) {}

void CancelToken::Cancel() {
  {
    std::lock_guard<std::mutex> lock(state_->mu);
    state_->cancelled = true;
  }
  state_->cv.notify_all();
}

bool CancelToken::DeadlineExceeded() const {
  return deadline_ && clock_ && clock_->Now() >= *deadline_;
}

bool CancelToken::IsCancelled() const {
  return state_->cancelled.load() || DeadlineExceeded() || (parent_ && parent_->IsCancelled());
}

bool CancelToken::WaitFor(std::chrono::milliseconds duration) const {
  // Parents and deadlines do not notify this token, so wake up now and then.
  constexpr auto kSlice = std::chrono::milliseconds(20);
  auto end = std::chrono::steady_clock::now() + duration;
  std::unique_lock<std::mutex> lock(state_->mu);
  while (true) {
    if (IsCancelled()) return false;
    auto now = std::chrono::steady_clock::now();
    if (now >= end) return true;
    state_->cv.wait_for(lock, std::min<std::chrono::steady_clock::duration>(end - now, kSlice));
  }
}

// ---- StepLog ----

namespace {
// clang-format off
constexpr EnumName<LogLevel> kLogLevelNames[] = {
    {LogLevel::kInfo, "info"}, {LogLevel::kWarning, "warning"}, {LogLevel::kError, "error"},
    {LogLevel::kOutput, "output"},
};
// clang-format on
}  // namespace

std::string_view LogLevelName(LogLevel level) { return NameOf(kLogLevelNames, level, "info"); }

StepLog::StepLog(const Clock& clock, const Masker& masker, std::string step_id,
                 SourcePosition position, std::string target, LogSink sink)
    : clock_(clock),
      masker_(masker),
      step_id_(std::move(step_id)),
      position_(position),
      target_(std::move(target)),
      sink_(std::move(sink)),
      output_masker_(masker) {}

StepLog::~StepLog() { FinishOutput(); }

void StepLog::Write(LogLevel level, std::string_view text) {
  if (!sink_) return;
  sink_(LogLine{clock_.Now(), level, step_id_, position_, target_, masker_.Mask(text)});
}

void StepLog::Output(std::string_view chunk) {
  output_line_ += output_masker_.Feed(chunk);
  EmitOutputLines(false);
}

void StepLog::FinishOutput() {
  output_line_ += output_masker_.Finish();
  EmitOutputLines(true);
}

void StepLog::EmitOutputLines(bool flush_partial) {
  size_t start = 0;
  while (true) {
    size_t nl = output_line_.find('\n', start);
    if (nl == std::string::npos) break;
    std::string line = output_line_.substr(start, nl - start);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (sink_) sink_(LogLine{clock_.Now(), LogLevel::kOutput, step_id_, position_, target_, line});
    start = nl + 1;
  }
  output_line_.erase(0, start);
  if (flush_partial && !output_line_.empty()) {
    if (sink_) {
      sink_(LogLine{clock_.Now(), LogLevel::kOutput, step_id_, position_, target_, output_line_});
    }
    output_line_.clear();
  }
}

}  // namespace reprise

// The agent protocol's messages: each one encodes and decodes back to
// itself, and a malformed field is refused with the message and field named.
#include "agents/protocol/messages.h"

#include <doctest/doctest.h>

#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

namespace reprise::protocol {
namespace {

using json = nlohmann::json;

// One example of every message, every field set away from its default.
std::vector<Message> EveryMessage() {
  return {
      Hello{1, "web-1", "1.2.3", std::string(64, 'a'), "token"},
      Challenge{std::string(64, 'c')},
      Auth{"5167"},
      Welcome{"approved", true},
      Refused{Code::kUnauthenticated, "who are you", true},
      Heartbeat{},
      HeartbeatAck{},
      Run{7, "/srv/app", "1.0", "42", R"({"kind":"deploy"})", R"({"max_entries":3})"},
      Cancel{7},
      LogLines{7, "warning"},
      Progress{7, "transfer", 1, 2, 3, 4},
      OperationResult{7, "failed", "it broke", Code::kUnsafe},
      BlobGet{7, std::string(64, 'f'), 1024, 3},
      BlobData{7, 1024, 4096, true, 3},
      BlobError{7, "gone", 3},
      StateRequest{{9, "/srv/a", true}},
      ValidateRequest{{10, "/srv/b", true}},
      Reply{11, false, true, Code::kNotFound, "no such target"},
      ProbeRequest{{12, "/srv/c", true}},
      FilesGet{7, std::string(64, 'e'), true, 4},
  };
}

// Calls check(encoding, type, field) for each field but "type" of each
// message's encoding.
template <class F>
void ForEachField(F&& check) {
  for (const Message& m : EveryMessage()) {
    const json good = json::parse(Encode(m));
    const std::string type = good["type"];
    for (const auto& item : good.items()) {
      if (item.key() != "type") check(good, type, item.key());
    }
  }
}

TEST_CASE("every message type round-trips through Encode and DecodeMessage") {
  const auto messages = EveryMessage();
  std::set<size_t> kinds;
  for (const Message& m : messages) kinds.insert(m.index());
  CHECK(kinds.size() == std::variant_size_v<Message>);
  for (const Message& m : messages) {
    CAPTURE(MessageTypeName(TypeOf(m)));
    auto decoded = DecodeMessage(Encode(m));
    REQUIRE(decoded.ok());
    CHECK(TypeOf(*decoded) == TypeOf(m));
    CHECK(*decoded == m);
  }
}

TEST_CASE("a run without limits round-trips without them") {
  Message m = Run{1, "/srv", "", "", "{}", std::nullopt};
  auto decoded = DecodeMessage(Encode(m));
  REQUIRE(decoded.ok());
  CHECK(*decoded == m);
  CHECK(json::parse(Encode(m)).count("limits") == 0);
}

TEST_CASE("the type names on the wire") {
  CHECK(json::parse(Encode(Hello{}))["type"] == "hello");
  CHECK(json::parse(Encode(OperationResult{}))["type"] == "result");
  CHECK(json::parse(Encode(LogLines{}))["type"] == "log");
  CHECK(json::parse(Encode(ProbeRequest{}))["type"] == "probe_request");
}

TEST_CASE("a field of the wrong type is refused naming the message and field") {
  ForEachField([](const json& good, const std::string& type, const std::string& field) {
    json bad = good;
    bad[field] = good[field].is_string() ? json(7) : json("seven");
    CAPTURE(bad.dump());
    auto decoded = DecodeMessage(bad.dump());
    REQUIRE_FALSE(decoded.ok());
    CHECK(decoded.status().code() == Code::kInvalidArgument);
    CHECK(decoded.status().message().rfind(type + ": field '" + field + "' ", 0) == 0);
  });
  auto hello = DecodeMessage(R"({"type":"hello","protocol":1,"version":3})");
  REQUIRE_FALSE(hello.ok());
  CHECK(hello.status().message() == "hello: field 'version' must be a string");
  auto negative = DecodeMessage(R"({"type":"cancel","op":-1})");
  REQUIRE_FALSE(negative.ok());
  CHECK(negative.status().message() == "cancel: field 'op' must be a non-negative integer");
  auto null_field = DecodeMessage(R"({"type":"reply","req":1,"ok":null})");
  REQUIRE_FALSE(null_field.ok());
  CHECK(null_field.status().message() == "reply: field 'ok' must be a boolean");
}

TEST_CASE("a missing required field is refused; a missing optional one takes its default") {
  const std::set<std::pair<std::string, std::string>> required = {
      {"challenge", "nonce"},
      {"run", "op"},
      {"run", "target_path"},
      {"run", "operation"},
      {"cancel", "op"},
      {"log", "op"},
      {"progress", "op"},
      {"result", "op"},
      {"blob_get", "op"},
      {"blob_data", "op"},
      {"blob_data", "offset"},
      {"blob_error", "op"},
      {"state_request", "req"},
      {"state_request", "target_path"},
      {"validate_request", "req"},
      {"validate_request", "target_path"},
      {"probe_request", "req"},
      {"probe_request", "target_path"},
      {"reply", "req"},
      {"files_get", "op"},
      {"files_get", "sha256"},
  };
  size_t seen_required = 0;
  ForEachField([&](const json& good, const std::string& type, const std::string& field) {
    json bad = good;
    bad.erase(field);
    CAPTURE(bad.dump());
    auto decoded = DecodeMessage(bad.dump());
    if (required.count({type, field})) {
      ++seen_required;
      REQUIRE_FALSE(decoded.ok());
      CHECK(decoded.status().code() == Code::kInvalidArgument);
      CHECK(decoded.status().message() == type + ": field '" + field + "' is missing");
    } else {
      CHECK(decoded.ok());
    }
  });
  CHECK(seen_required == required.size());
  auto hello = DecodeMessage(R"({"type":"hello"})");
  REQUIRE(hello.ok());
  CHECK(std::get<Hello>(*hello) == Hello{});
}

TEST_CASE("a header that is not a message is refused clearly") {
  struct Case {
    const char* header;
    const char* error;
  };
  const Case cases[] = {
      {"", "frame header: not valid JSON"},
      {"{\"type\":", "frame header: not valid JSON"},
      {"[1,2]", "frame header: not a JSON object"},
      {"{}", "frame header: field 'type' must be a string"},
      {"{\"type\":3}", "frame header: field 'type' must be a string"},
      {"{\"type\":\"launch\"}", "frame header: unknown message type 'launch'"},
      {"{\"type\":\"unknown\"}", "frame header: unknown message type 'unknown'"},
      {"{\"type\":\"hello\",\"protocol\":1e99}", "hello: field 'protocol' must be an integer"},
      {"{\"type\":\"hello\",\"protocol\":4294967296}", "hello: field 'protocol' is out of range"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.header);
    auto decoded = DecodeMessage(c.header);
    REQUIRE_FALSE(decoded.ok());
    CHECK(decoded.status().code() == Code::kInvalidArgument);
    CHECK(decoded.status().message() == c.error);
  }
}

TEST_CASE("status codes travel by name; an unknown name reads as internal") {
  for (int c = 0; c <= static_cast<int>(Code::kInternal); ++c)
    CHECK(CodeFromName(CodeName(static_cast<Code>(c))) == static_cast<Code>(c));
  CHECK(CodeFromName("no_such_code") == Code::kInternal);
  auto reply = DecodeMessage(R"({"type":"reply","req":1,"code":"bogus"})");
  REQUIRE(reply.ok());
  CHECK(std::get<Reply>(*reply).code == Code::kInternal);
}

}  // namespace
}  // namespace reprise::protocol

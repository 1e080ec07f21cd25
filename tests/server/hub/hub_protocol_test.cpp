// Hostile and broken agents against the hub, with real reprise-agent
// processes and raw connections on loopback: operations of another agent,
// malformed, oversized and early frames, unauthenticated connection caps.
#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>
#include <random>

#include "agents/protocol/protocol.h"
#include "planner/executor.h"
#include "planner/plan.h"
#include "tests/server/hub/hub_test_support.h"
#include "tests/server/hub/raw_agent.h"

namespace reprise::testing {
namespace {

DeployArtifactOp Deploy(const std::string& sha) { return {"web", sha, "", DeployMode::kAtomic, 3}; }

TEST_CASE("an agent cannot report on or fetch for another agent's operations") {
  HubFixture f;
  std::string token = f.Token(true);
  fs::path root = f.tmp.path() / "victim";
  auto victim = f.StartAgent("victim", root, token);
  REQUIRE(f.WaitStatus("victim", "online"));
  std::string sha = f.AddArtifact({{"secret.txt", "victim's artifact"}});

  RawAgent rogue(f.hub->port());
  auto id = protocol::Identity::Generate();
  REQUIRE(id.ok());
  auto welcome = rogue.Handshake("rogue", *id, token);
  REQUIRE(welcome["type"] == "welcome");
  CHECK(welcome["status"] == "approved");

  // The victim runs a step that waits for a file.
  TargetInfo t{"v", "victim", root.string(), {}};
  ExecOp wait;
  wait.command = "while [ ! -f go ]; do sleep 0.02; done; exit 7";
  OperationOutcome result;
  LogCollector logs;
  std::thread runner([&] { result = RunOn(*f.hub, t, wait, "1", &logs); });
  REQUIRE(WaitUntil([&] { return logs.Contains("started"); }));

  // The rogue claims success for every plausible operation id and asks for
  // the victim's artifact under each.
  for (int op = 0; op < 300; ++op) {
    rogue.Send({{"type", "result"}, {"op", op}, {"kind", "succeeded"}, {"message", ""}});
    rogue.Send({{"type", "blob_get"}, {"op", op}, {"sha256", sha}, {"offset", 0}});
  }
  int errors = 0;
  for (int i = 0; i < 300; ++i) {
    auto h = rogue.Read();
    REQUIRE_FALSE(h.is_null());
    CHECK(h["type"] == "blob_error");
    errors += h["type"] == "blob_error";
  }
  CHECK(errors == 300);
  std::ofstream(root / "go") << "";
  runner.join();
  CHECK(result.kind == OperationOutcome::Kind::kFailed);
  CHECK(result.message.find("exit code 7") != std::string::npos);
}

TEST_CASE("malformed and oversized frames end the connection") {
  HubFixture f;
  SUBCASE("an oversized frame is refused before it is read") {
    RawAgent raw(f.hub->port());
    // Written by hand: EncodeFrame refuses to build it.
    raw.SendRaw(std::string("\x7f\xff\xff\xff\0\0\0\0", 8));
    CHECK(raw.Read().is_null());
  }
  SUBCASE("a header that is not JSON") {
    RawAgent raw(f.hub->port());
    raw.SendRaw(*protocol::EncodeFrame("not json", ""));
    CHECK(raw.Read().is_null());
  }
  SUBCASE("operations before the handshake") {
    RawAgent raw(f.hub->port());
    raw.Send({{"type", "result"}, {"op", 1}, {"kind", "succeeded"}});
    CHECK(raw.Read().is_null());
  }
  SUBCASE("a bad signature") {
    RawAgent raw(f.hub->port());
    auto id = protocol::Identity::Generate();
    auto other = protocol::Identity::Generate();
    raw.Send({{"type", "hello"},
              {"protocol", protocol::kProtocolVersion},
              {"name", "forger"},
              {"version", "x"},
              {"public_key", id->public_key_hex()},
              {"enroll_token", f.Token(true)}});
    auto ch = raw.Read();
    REQUIRE(ch["type"] == "challenge");
    raw.Send({{"type", "auth"},
              {"signature",
               *other->Sign(protocol::AuthMessage(ch["nonce"].get<std::string>(), "forger", ""))}});
    auto refused = raw.Read();
    REQUIRE_FALSE(refused.is_null());
    CHECK(refused["type"] == "refused");
    CHECK(raw.Read().is_null());
    CHECK(f.store->GetAgent("forger").status().code() == Code::kNotFound);
  }
  SUBCASE("another protocol version") {
    RawAgent raw(f.hub->port());
    raw.Send({{"type", "hello"}, {"protocol", 99}, {"name", "future"}, {"public_key", ""}});
    auto refused = raw.Read();
    REQUIRE_FALSE(refused.is_null());
    CHECK(refused["type"] == "refused");
    CHECK(refused["code"] == "failed_precondition");
  }
}

TEST_CASE("before the handshake only small frames are read") {
  HubFixture f;
  std::string token = f.Token(true);
  auto id = protocol::Identity::Generate();
  REQUIRE(id.ok());
  // A hello padded past the handshake limit (but within the general one) is
  // not read at all: no challenge comes back.
  nlohmann::json padded = {{"type", "hello"},
                           {"protocol", protocol::kProtocolVersion},
                           {"name", "padded"},
                           {"version", "x"},
                           {"public_key", id->public_key_hex()},
                           {"enroll_token", token},
                           {"padding", std::string(protocol::kMaxHandshakeFrameBytes, 'x')}};
  {
    RawAgent raw(f.hub->port());
    raw.SendRawBestEffort(*protocol::EncodeFrame(padded.dump(), ""));
    CHECK(raw.Read().is_null());
  }
  // A hello with a payload of that size neither.
  {
    RawAgent raw(f.hub->port());
    padded.erase("padding");
    raw.SendRawBestEffort(
        *protocol::EncodeFrame(padded.dump(), std::string(protocol::kMaxHandshakeFrameBytes, 'x')));
    CHECK(raw.Read().is_null());
  }
  CHECK(f.store->GetAgent("padded").status().code() == Code::kNotFound);
  // Once authenticated, the same frame is an ordinary one.
  RawAgent raw(f.hub->port());
  auto welcome = raw.Handshake("padded", *id, token);
  REQUIRE(welcome["type"] == "welcome");
  raw.Send(
      {{"type", "heartbeat"}, {"padding", std::string(protocol::kMaxHandshakeFrameBytes, 'x')}},
      std::string(protocol::kMaxHandshakeFrameBytes, 'y'));
  CHECK(raw.Read()["type"] == "heartbeat_ack");
}

TEST_CASE("connections that have not authenticated are capped, refusals logged once per burst") {
  std::mutex mu;
  std::vector<std::string> logged;
  HubFixture f(false, false, [&](AgentHubOptions& o) {
    o.max_unauthenticated = 2;
    o.log = [&](const std::string& line) {
      std::lock_guard<std::mutex> g(mu);
      logged.push_back(line);
    };
  });
  auto refusals = [&] {
    std::lock_guard<std::mutex> g(mu);
    return std::count_if(logged.begin(), logged.end(), [](const std::string& l) {
      return l.find("hub.refusing-connections") != std::string::npos;
    });
  };
  std::string token = f.Token(true);
  auto id = protocol::Identity::Generate();
  REQUIRE(id.ok());
  // Two connections that stop after hello hold both places.
  RawAgent a(f.hub->port()), b(f.hub->port());
  auto challenge_a = a.Hello("agent-a", *id, token);
  REQUIRE(challenge_a["type"] == "challenge");
  REQUIRE(b.Hello("agent-b", *id, token)["type"] == "challenge");
  // More are closed at once, and logged once.
  for (int i = 0; i < 3; ++i) {
    RawAgent extra(f.hub->port());
    CHECK(extra.Hello("agent-x", *id, token).is_null());
  }
  CHECK(refusals() == 1);

  // Authenticating frees a place.
  REQUIRE(a.Auth("agent-a", *id, challenge_a)["type"] == "welcome");
  RawAgent c(f.hub->port());
  auto challenge_c = c.Hello("agent-c", *id, token);
  REQUIRE(challenge_c["type"] == "challenge");
  // Full again: a new burst, logged again.
  {
    RawAgent extra(f.hub->port());
    CHECK(extra.Hello("agent-x", *id, token).is_null());
  }
  CHECK(refusals() == 2);

  // A connection that goes away frees its place too, once the hub has seen it.
  b.Close();
  std::unique_ptr<RawAgent> d;
  REQUIRE(WaitUntil([&] {
    d = std::make_unique<RawAgent>(f.hub->port());
    return d->Hello("agent-d", *id, token)["type"] == "challenge";
  }));
  CHECK(refusals() == 2);  // still the same burst
  // A real agent gets in as soon as there is room.
  c.Close();
  d.reset();
  fs::path root = f.tmp.path() / "real";
  auto agent = f.StartAgent("real", root, token);
  CHECK_MESSAGE(f.WaitStatus("real", "online"), agent->Log());
}

TEST_CASE("a message too large for a frame fails alone; the agent stays connected") {
  HubFixture f;
  fs::path root = f.tmp.path() / "big";
  TargetInfo t{"big-web", "", "", {}};
  auto agent = f.StartOnlineAgent("big", "big-web", root);
  auto address = [&] {
    for (const auto& a : f.hub->Agents()) {
      if (a.name == "big") return a.address;
    }
    return std::string();
  };
  const std::string connected_from = address();
  REQUIRE_FALSE(connected_from.empty());

  // A write-file whose content does not fit in a frame.
  std::string big(protocol::kMaxPayloadBytes + 1, 'x');
  auto w = RunOn(*f.hub, t, WriteFileOp{"big.bin", big, 0644});
  CHECK(w.kind == OperationOutcome::Kind::kFailed);
  CHECK(w.message == "write-file content of " + std::to_string(big.size()) + " bytes exceeds the " +
                         std::to_string(protocol::kMaxPayloadBytes) +
                         "-byte limit of a remote agent");
  CHECK_FALSE(fs::exists(root / "big.bin"));
  // An exec whose command does not fit in a frame header.
  ExecOp huge;
  huge.command = "true " + std::string(protocol::kMaxHeaderBytes, 'x');
  auto e = RunOn(*f.hub, t, huge);
  CHECK(e.kind == OperationOutcome::Kind::kFailed);
  CHECK(e.message.find("exec: the operation takes") != std::string::npos);
  CHECK(e.message.find("-byte limit of a remote agent") != std::string::npos);

  // Everything else still works on the same connection.
  REQUIRE(RunOn(*f.hub, t, WriteFileOp{"small.txt", "fits", 0644}).succeeded());
  CHECK(ReadFile(root / "small.txt") == "fits");

  // A manifest larger than a frame goes in parts, and so does the report,
  // which lists every one of its files as missing.
  Manifest small;
  std::string sha = f.AddArtifact({{"index.html", "deployed"}}, &small);
  REQUIRE(RunOn(*f.hub, t, Deploy(sha)).succeeded());
  Manifest manifest;
  manifest.entries.push_back({"d", EntryType::kDirectory, 0755, 0, "", ""});
  for (int i = 0; i < 60000; ++i) {
    char name[32];
    std::snprintf(name, sizeof name, "-%06d", i);
    manifest.entries.push_back(
        {"d/" + std::string(170, 'f') + name, EntryType::kFile, 0644, 1, std::string(64, 'a'), ""});
  }
  manifest.manifest_hash = ComputeManifestHash(manifest.entries);
  REQUIRE(ManifestToJson(manifest).size() > protocol::kMaxPayloadBytes);
  auto report = f.hub->Validate("big-web", manifest);
  REQUIRE_MESSAGE(report.ok(), report.status().ToString());
  CHECK(report->missing.size() == 60001);  // the files and their directory
  CHECK(report->extra == std::vector<std::string>{"index.html"});
  CHECK(ValidationReportToJson(*report).size() > protocol::kMaxPayloadBytes);

  CHECK(address() == connected_from);
  CHECK(agent->Log().find("disconnected") == std::string::npos);
}

}  // namespace
}  // namespace reprise::testing
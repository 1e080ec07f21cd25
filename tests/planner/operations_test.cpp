#include "planner/operations.h"

#include <doctest/doctest.h>

#include <string>
#include <thread>

namespace reprise {

TEST_CASE("every operation round-trips through JSON") {
  std::vector<ResolvedOperation> ops = {
      DeployArtifactOp{"web", std::string(64, 'f'), "app", DeployMode::kOverlay, 2},
      WriteFileOp{"conf/a.ini", "x=1\n\xff binary", 0600},
      ExecOp{{"./run", "a b"}, "", 30, "current", {{"K", "v"}}, {0, 2}},
      ExecOp{{}, "echo hi | wc -c", 0, "", {}, {0}},
      EnsureDirOp{"logs", 0750},
      DeleteOp{"tmp/x"},
      HttpCheckOp{"http://localhost:8080/health", 204, 5, 2, 3},
  };
  for (const auto& op : ops) {
    std::string json = OperationToJson(op);
    CAPTURE(json);
    auto back = OperationFromJson(json);
    REQUIRE_MESSAGE(back.ok(), back.status().message());
    if (std::holds_alternative<WriteFileOp>(op)) {
      // Invalid UTF-8 is replaced rather than refused.
      CHECK(std::get<WriteFileOp>(*back).path == "conf/a.ini");
    } else {
      CHECK(*back == op);
    }
  }
  CHECK(OperationToJson(DeleteOp{"x"}) == R"({"path":"x","type":"delete"})");
}

TEST_CASE("the JSON form of each operation, field by field (what agents receive)") {
  DeployArtifactOp deploy{"web", "ab12", "app", DeployMode::kOverlay, 2};
  CHECK(
      OperationToJson(deploy) ==
      R"({"artifact":"web","keep":2,"mode":"overlay","sha256":"ab12","to":"app","type":"deploy-artifact"})");
  deploy.manifest_hash = "cd34";
  CHECK(
      OperationToJson(deploy) ==
      R"({"artifact":"web","keep":2,"manifest_hash":"cd34","mode":"overlay","sha256":"ab12","to":"app","type":"deploy-artifact"})");
  CHECK(OperationToJson(WriteFileOp{"a.ini", "x=1", 0600}) ==
        R"({"content":"x=1","mode":384,"path":"a.ini","type":"write-file"})");
  CHECK(
      OperationToJson(ExecOp{{"./run"}, "", 30, "current", {{"K", "v"}}, {0, 2}}) ==
      R"({"argv":["./run"],"command":"","cwd":"current","env":{"K":"v"},"success_codes":[0,2],"timeout_seconds":30,"type":"exec"})");
  CHECK(OperationToJson(EnsureDirOp{"logs", 0750}) ==
        R"({"mode":488,"path":"logs","type":"ensure-dir"})");
  CHECK(
      OperationToJson(HttpCheckOp{"http://h/x", 204, 5, 2, 3}) ==
      R"({"delay_seconds":2,"expect_status":204,"retries":5,"timeout_seconds":3,"type":"http-check","url":"http://h/x"})");
  // Absent optional fields decode to the defaults.
  auto minimal =
      OperationFromJson(R"({"type":"deploy-artifact","artifact":"web","sha256":"ab12"})");
  REQUIRE(minimal.ok());
  CHECK(*minimal == ResolvedOperation(DeployArtifactOp{"web", "ab12", "", DeployMode::kAtomic, 3}));
  auto check = OperationFromJson(R"({"type":"http-check","url":"http://h/x"})");
  REQUIRE(check.ok());
  CHECK(*check == ResolvedOperation(HttpCheckOp{"http://h/x", 200, 0, 1, 10}));
  auto dir = OperationFromJson(R"({"type":"ensure-dir","path":"logs"})");
  REQUIRE(dir.ok());
  CHECK(*dir == ResolvedOperation(EnsureDirOp{"logs", 0755}));
  CHECK(OperationFromJson(R"({"type":"write-file","path":"a"})")
            .status()
            .message()
            .rfind("bad operation JSON: ", 0) == 0);
  CHECK(OperationFromJson(R"({"type":"exec","argv":["a"],"command":"b"})").status().message() ==
        "exec needs exactly one of argv and command");
}

TEST_CASE("bad operation JSON is refused") {
  CHECK(OperationFromJson("{\"type\": \"format-disk\"}").status().message() ==
        "unknown operation type \"format-disk\"");
  CHECK_FALSE(OperationFromJson("{\"type\": \"exec\"}").ok());
  CHECK_FALSE(OperationFromJson("{\"type\": \"delete\"}").ok());
  CHECK_FALSE(OperationFromJson("not json").ok());
  CHECK_FALSE(OperationFromJson("{\"type\": \"deploy-artifact\", \"artifact\": \"a\", "
                                "\"sha256\": \"x\", \"mode\": \"fast\"}")
                  .ok());
}

ComposeReleaseOp SampleCompose() {
  ComposeReleaseOp o;
  o.base_release = "1.0-2-aaaaaaaaaaaa";
  o.base_manifest_hash = std::string(64, 'b');
  o.source_release = "1.0-1-cccccccccccc";
  o.source_artifact = "web";
  o.source_sha256 = std::string(64, 'c');
  o.source_manifest_hash = std::string(64, 'd');
  o.reverts = {{"bin/tool", "override"}, {"new.txt", "delete"}, {"gone/a.txt", "restore"}};
  o.manifest_json = R"({"version":1,"entries":[]})";
  o.name = "1.0-2-aaaaaaaaaaaa+rr7";
  o.keep = 4;
  return o;
}

TEST_CASE("compose-release round-trips through JSON with every field") {
  ComposeReleaseOp o = SampleCompose();
  std::string json = OperationToJson(o);
  CAPTURE(json);
  CHECK(json.find(R"("type":"compose-release")") != std::string::npos);
  CHECK(json.find(R"("reverts":[{"path":"bin/tool","type":"override"},)") != std::string::npos);
  auto back = OperationFromJson(json);
  REQUIRE_MESSAGE(back.ok(), back.status().message());
  CHECK(std::get<ComposeReleaseOp>(*back) == o);
  CHECK(OperationKind(*back) == "compose-release");
  CHECK(DescribeOperation(o) ==
        "compose-release 1.0-2-aaaaaaaaaaaa+rr7 from 1.0-2-aaaaaaaaaaaa (3 reverted from "
        "1.0-1-cccccccccccc, keep 4)");

  // Without A: only deletes, source fields empty.
  ComposeReleaseOp deletes_only = o;
  deletes_only.source_release = deletes_only.source_artifact = "";
  deletes_only.source_sha256 = deletes_only.source_manifest_hash = "";
  deletes_only.reverts = {{"new.txt", "delete"}};
  auto back2 = OperationFromJson(OperationToJson(deletes_only));
  REQUIRE_MESSAGE(back2.ok(), back2.status().message());
  CHECK(std::get<ComposeReleaseOp>(*back2) == deletes_only);
}

TEST_CASE("compose-release decoding is strict and names what is wrong") {
  const std::string good = OperationToJson(SampleCompose());
  auto with = [&](const std::string& from, const std::string& to) {
    std::string s = good;
    auto at = s.find(from);
    REQUIRE_MESSAGE(at != std::string::npos, from);
    s.replace(at, from.size(), to);
    return OperationFromJson(s).status().message();
  };
  CHECK(with(R"("keep":4)", R"("keep":4,"extra":1)") == "compose-release: unknown field 'extra'");
  CHECK(with(R"("name":"1.0-2-aaaaaaaaaaaa+rr7",)", "") ==
        "compose-release: field 'name' is missing");
  CHECK(with(R"("keep":4)", R"("keep":"4")") == "compose-release: field 'keep' must be an integer");
  CHECK(with(R"("keep":4)", R"("keep":0)") == "compose-release: keep must be at least 1");
  CHECK(with(R"("base_release":"1.0-2-aaaaaaaaaaaa")", R"("base_release":7)") ==
        "compose-release: field 'base_release' must be a string");
  CHECK(with(R"("type":"override")", R"("type":"rewind")") ==
        "compose-release: reverts[0]: type 'rewind' is not one of delete, override, restore");
  CHECK(with(R"({"path":"new.txt","type":"delete"})", R"({"path":"bin/tool","type":"delete"})") ==
        "compose-release: reverts[1]: path 'bin/tool' is listed twice");
  CHECK(with(R"({"path":"new.txt","type":"delete"})", R"({"path":"new.txt"})") ==
        "compose-release: reverts[1] must be {\"path\": string, \"type\": string}");
  CHECK(with(R"({"path":"new.txt","type":"delete"})", R"({"path":"","type":"delete"})") ==
        "compose-release: reverts[1]: the path is empty");
  {
    std::string s = good;
    auto from = s.find(R"("reverts":[)");
    auto to = s.find("],", from);
    s.replace(from, to + 2 - from, R"("reverts":"all",)");
    CHECK(OperationFromJson(s).status().message() ==
          "compose-release: field 'reverts' must be an array");
  }
  CHECK(with(std::string(R"("base_manifest_hash":")") + std::string(64, 'b'),
             R"("base_manifest_hash":"xyz)" + std::string(61, 'b')) ==
        "compose-release: base_manifest_hash is not a SHA-256 in hex");
  CHECK(with(R"("source_manifest_hash":")" + std::string(64, 'd') + "\"",
             R"("source_manifest_hash":"")") ==
        "compose-release: source_manifest_hash must be a SHA-256 in hex when a source is named");
  CHECK(with(R"("name":"1.0-2-aaaaaaaaaaaa+rr7")", R"("name":"1.0-2-aaaaaaaaaaaa")") ==
        "compose-release: name must differ from base_release");

  // An override needs A's version: without a source it is refused.
  ComposeReleaseOp no_source = SampleCompose();
  no_source.source_release = no_source.source_artifact = "";
  no_source.source_sha256 = no_source.source_manifest_hash = "";
  CHECK(OperationFromJson(OperationToJson(no_source)).status().message() ==
        "compose-release: revert 'bin/tool' (override) needs the earlier release or artifact, "
        "and none is named");
}

TEST_CASE("descriptions and masking of operations") {
  ExecOp exec{{"deploy", "--password", "hunter2"}, "", 0, "current", {{"TOKEN", "hunter2"}}, {0}};
  CHECK(DescribeOperation(exec) == "exec deploy --password hunter2 (cwd current, TOKEN=hunter2)");
  Masker masker({"hunter2"});
  auto masked = std::get<ExecOp>(MaskOperation(exec, masker));
  CHECK(masked.argv[2] == "******");
  CHECK(masked.env.at("TOKEN") == "******");
  CHECK(DescribeOperation(ExecOp{{}, "echo 'a b'", 0, "", {}, {0}}) ==
        "exec sh -c 'echo '\\''a b'\\'''");
  CHECK(DescribeOperation(
            DeployArtifactOp{"web", std::string(64, 'a'), "", DeployMode::kAtomic, 3}) ==
        "deploy-artifact web to . (atomic, keep 3, sha256 aaaaaaaaaaaa)");
}

TEST_CASE("step log: timestamps from the clock, masked, output split into lines") {
  FakeClock clock(FromUnixMillis(5000));
  Masker masker({"hunter2"});
  std::vector<LogLine> lines;
  {
    StepLog log(clock, masker, "2.1", {4, 7}, "web-1",
                [&](const LogLine& line) { lines.push_back(line); });
    log.Info("password is hunter2");
    clock.Advance(std::chrono::milliseconds(10));
    log.Output("line one\nsecret: hun");
    log.Output("ter2\r\npartial");
  }  // the destructor flushes the partial line
  REQUIRE(lines.size() == 4);
  CHECK(lines[0].text == "password is ******");
  CHECK(lines[0].level == LogLevel::kInfo);
  CHECK(ToUnixMillis(lines[0].time) == 5000);
  CHECK(lines[0].step_id == "2.1");
  CHECK(lines[0].position == SourcePosition{4, 7});
  CHECK(lines[0].target == "web-1");
  CHECK(lines[1].text == "line one");
  CHECK(lines[1].level == LogLevel::kOutput);
  CHECK(ToUnixMillis(lines[1].time) == 5010);
  CHECK(lines[2].text == "secret: ******");
  CHECK(lines[3].text == "partial");
}

TEST_CASE("cancel tokens: parent, deadline, wait") {
  FakeClock clock(FromUnixMillis(0));
  CancelToken root;
  CancelToken child(root, clock, FromUnixMillis(1000));
  CHECK_FALSE(child.IsCancelled());
  clock.Advance(std::chrono::milliseconds(1000));
  CHECK(child.IsCancelled());
  CHECK(child.DeadlineExceeded());
  CHECK_FALSE(root.IsCancelled());

  CancelToken other(root, clock, TimePoint::max());
  CHECK(other.WaitFor(std::chrono::milliseconds(1)));
  std::thread canceller([&] { root.Cancel(); });
  // Returns false once the parent is cancelled (well before the 60 s).
  CHECK_FALSE(other.WaitFor(std::chrono::seconds(60)));
  canceller.join();
  CHECK(other.IsCancelled());
  CHECK_FALSE(other.DeadlineExceeded());
}

}  // namespace reprise

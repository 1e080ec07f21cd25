#include "planner/operations.h"

#include <doctest/doctest.h>

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

// files_get and blob_get as the hub answers them, spoken by a hand-written
// agent running a deploy: only the running deploy's build is served, for a
// well-formed list; a stream that failed sends nothing more, and a new
// request of the operation supersedes the one before, so that a fallback
// to the whole archive gets the archive's bytes and nothing else.
#include <doctest/doctest.h>

#include "tests/agents/agent/files_test_support.h"
#include "tests/server/hub/hub_test_support.h"
#include "tests/server/hub/raw_agent.h"

namespace reprise::testing {
namespace {

// A hub with file indexes and a raw agent `rogue` running a deploy of the
// build Start() is given, on target "r"; the tests speak for the agent.
struct RogueDeploy {
  std::unique_ptr<FileIndex> files;
  HubFixture f{false, false, [this](AgentHubOptions& o) {
                 KeepFileIndexes(o, files);
                 o.heartbeat_timeout = std::chrono::seconds(60);  // the raw agent sends none
               }};
  std::unique_ptr<RawAgent> rogue;
  OperationOutcome result;
  std::thread runner;
  uint64_t op = 0;

  ~RogueDeploy() {
    if (runner.joinable()) {
      rogue->Send({{"type", "result"}, {"op", op}, {"kind", "failed"}, {"message", "done"}});
      runner.join();
    }
    // The index's worker (deriving again after a corrupt file) reads the
    // hub's blob store: it stops first.
    rogue.reset();
    f.hub.reset();
    files.reset();
  }

  // Connects the agent and runs a deploy of `sha` on it, up to its `run`.
  void Start(const std::string& sha, const Manifest& m) {
    f.AddTarget("r", "rogue", f.tmp.path() / "r");
    rogue = std::make_unique<RawAgent>(f.hub->port());
    auto id = protocol::Identity::Generate();
    REQUIRE(id.ok());
    auto welcome = rogue->Handshake("rogue", *id, f.Token(true));
    REQUIRE(welcome["type"] == "welcome");
    CHECK(welcome["files"] == true);
    REQUIRE(f.WaitStatus("rogue", "online"));
    TargetInfo t{"r", "rogue", (f.tmp.path() / "r").string(), {}};
    runner = std::thread([this, t, sha, hash = m.manifest_hash] {
      result = RunOn(*f.hub, t, DeployArtifactOp{"web", sha, "", DeployMode::kAtomic, 3, hash});
    });
    nlohmann::json run;
    for (int i = 0; i < 20 && run.is_null(); ++i) {
      auto h = rogue->Read();
      REQUIRE_FALSE(h.is_null());
      if (h["type"] == "run") run = h;
    }
    REQUIRE_FALSE(run.is_null());
    op = run["op"];
  }

  // The next blob_data or blob_error of the operation (other frames are
  // skipped; its payload into `payload`), null when none came.
  nlohmann::json Answer(std::string* payload = nullptr) {
    for (int i = 0; i < 200; ++i) {
      auto h = rogue->Read(payload);
      if (h.is_null()) return h;
      if ((h["type"] == "blob_data" || h["type"] == "blob_error") && h["op"] == op) return h;
    }
    return nullptr;
  }

  void AskFiles(const std::string& build, const std::string& list, uint64_t stream = 0) {
    nlohmann::json h{{"type", "files_get"}, {"op", op}, {"sha256", build}, {"index", list.empty()}};
    if (stream) h["stream"] = stream;
    rogue->Send(h, list);
  }
  void AskBlob(const std::string& build, uint64_t stream = 0) {
    nlohmann::json h{{"type", "blob_get"}, {"op", op}, {"sha256", build}, {"offset", 0}};
    if (stream) h["stream"] = stream;
    rogue->Send(h);
  }
  nlohmann::json Ask(const std::string& build, const std::string& list) {
    AskFiles(build, list);
    auto h = Answer();
    REQUIRE_FALSE(h.is_null());
    return h;
  }
};

TEST_CASE("files_get serves only the running deploy's build, for a well-formed list") {
  RogueDeploy d;
  Manifest m, other;
  std::string sha = d.f.AddArtifact({{"a.txt", "A"}, {"b.txt", "B"}}, &m);
  std::string sha_other = d.f.AddArtifact({{"secret.txt", "another build's secret"}}, &other);
  REQUIRE(d.files->Derive(sha).ok());
  REQUIRE(d.files->Derive(sha_other).ok());
  d.Start(sha, m);
  const std::string a = Sha256Hex("A") + "\n";
  const std::string secret = Sha256Hex("another build's secret") + "\n";

  auto h = d.Ask(sha_other, "");  // another build's index
  CHECK(h["type"] == "blob_error");
  CHECK(h["message"] == "this artifact is not part of the agent's running operation");
  h = d.Ask(sha, secret);  // a file of another build
  CHECK(h["type"] == "blob_error");
  CHECK(h["message"] == "file " + secret.substr(0, 64) + " is not part of this build");
  for (const std::string& bad : {std::string("../../etc/passwd\n"), a.substr(0, 64), a + "x",
                                 std::string(64, 'G') + "\n", Sha256Hex("A") + "/"}) {
    h = d.Ask(sha, bad);
    CHECK(h["type"] == "blob_error");
    CHECK(h["message"] == "the list of files must be sha256s, one a line");
  }
  h = d.Ask(sha, a + a);
  CHECK(h["type"] == "blob_error");
  CHECK(h["message"] == "file " + a.substr(0, 64) + " is listed twice");
  // What the running deploy may have: its index, and its files.
  h = d.Ask(sha, "");
  CHECK(h["type"] == "blob_data");
  CHECK(h["eof"] == true);
  CHECK(h["total"] == d.files->Index(sha)->size());
  h = d.Ask(sha, a);
  CHECK(h["type"] == "blob_data");
  CHECK(h["total"] == 1);
  CHECK(h["eof"] == true);

  d.rogue->Send({{"type", "result"}, {"op", d.op}, {"kind", "failed"}, {"message", "done"}});
  d.runner.join();
  CHECK(d.result.kind == OperationOutcome::Kind::kFailed);
  // The server keeps serving: the connection was not closed over any of it.
  CHECK(d.f.StatusOf("rogue") == "online");
}

// A build of 24 files of 1 MiB: several chunks, two in flight at once.
// Their sha256s, as a files_get lists them, into `list`.
std::string AddLargeBuild(RogueDeploy& d, Manifest& m, std::string& list) {
  std::map<std::string, std::string> contents;
  for (int i = 0; i < 24; ++i) {
    contents["big-" + std::to_string(i) + ".bin"] = LargeContent(i);
    list += Sha256Hex(LargeContent(i)) + "\n";
  }
  std::string sha = d.f.AddArtifact(contents, &m);
  REQUIRE(d.files->Derive(sha).ok());
  return sha;
}

// Reads the answers to a blob_get of `build` up to its end: the archive's
// bytes, whole and in order, in frames that all carry `stream`.
void CheckWholeArchive(RogueDeploy& d, const std::string& build, uint64_t stream,
                       nlohmann::json first, std::string payload) {
  Sha256 hasher;
  uint64_t offset = 0;
  for (int i = 0; i < 400; ++i) {
    REQUIRE_FALSE(first.is_null());
    REQUIRE_MESSAGE(first["type"] == "blob_data", first.dump());
    CHECK(first.value("stream", uint64_t{0}) == stream);
    REQUIRE(first["offset"] == offset);
    hasher.Update(payload.data(), payload.size());
    offset += payload.size();
    if (first["eof"] == true) break;
    first = d.Answer(&payload);
  }
  CHECK(hasher.FinishHex() == build);
}

TEST_CASE("a files_get stream that hit a corrupt file sends nothing after its blob_error") {
  RogueDeploy d;
  Manifest m;
  std::string list;
  std::string sha = AddLargeBuild(d, m, list);
  auto stored = d.files->File(Sha256Hex(LargeContent(12)));
  REQUIRE(stored.ok());
  fs::permissions(*stored, fs::perms::owner_write, fs::perm_options::add);
  std::string wrong = LargeContent(12);
  wrong[1000] ^= 1;
  std::ofstream(*stored, std::ios::binary | std::ios::trunc) << wrong;
  d.Start(sha, m);

  d.AskFiles(sha, list, 1);
  nlohmann::json h;
  uint64_t sent = 0;
  std::string payload;
  for (int i = 0; i < 40; ++i) {
    h = d.Answer(&payload);
    REQUIRE_FALSE(h.is_null());
    CHECK(h.value("stream", uint64_t{0}) == 1);
    if (h["type"] == "blob_error") break;
    sent += payload.size();
  }
  REQUIRE(h["type"] == "blob_error");
  CHECK(h["message"] == "file " + Sha256Hex(LargeContent(12)) + " of the file index is corrupt");
  CHECK(sent < 13u << 20);  // the corrupt file's bytes were not sent whole
  // The fallback: the archive, and nothing of the failed stream before it
  // (the chunks that were in flight at the error do not make it go on).
  d.AskBlob(sha, 2);
  h = d.Answer(&payload);
  CheckWholeArchive(d, sha, 2, h, payload);
}

TEST_CASE("a new request of an operation supersedes its stream before: only the new one goes on") {
  RogueDeploy d;
  Manifest m;
  std::string list;
  std::string sha = AddLargeBuild(d, m, list);
  d.Start(sha, m);
  // Both requests before any answer is read: the files stream is at most
  // its chunks in flight ahead of the archive, and none after it.
  d.AskFiles(sha, list, 1);
  d.AskBlob(sha, 2);
  std::string payload;
  nlohmann::json h;
  for (int i = 0; i < 40; ++i) {
    h = d.Answer(&payload);
    REQUIRE_FALSE(h.is_null());
    if (h.value("stream", uint64_t{0}) != 1) break;
    CHECK(h["type"] == "blob_data");
  }
  CheckWholeArchive(d, sha, 2, h, payload);
}

}  // namespace
}  // namespace reprise::testing

// AgentRunner on temporary target roots: the atomic release switch, the
// release cache and keep-K, sync/overlay, path escapes, exec with process
// groups, validation and target state.
#include "agents/agent/runner.h"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "common/crypto.h"
#include "common/fs.h"
#include "tests/agents/agent/fake_blob_source.h"
#include "tests/support/wait.h"
#include "tests/temp_dir.h"

namespace reprise {
namespace {

namespace fs = std::filesystem;

void Write(const fs::path& p, const std::string& content) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << content;
}

using FakeSource = testing::FakeBlobSource;

struct Fixture {
  TempDir tmp;
  fs::path root = tmp.path() / "target";
  fs::path src_dir = tmp.path() / "src";
  FakeSource source{src_dir};
  AgentRunner runner{RunnerOptions{tmp.path(), false, {}, 100}};
  std::string output;
  std::vector<std::string> lines;
  CancelToken cancel;
  Fixture() {
    fs::create_directories(root);
    fs::create_directories(src_dir);
  }
  RunnerLog Log() {
    return [this](LogLevel level, std::string_view text) {
      if (level == LogLevel::kOutput) {
        output += text;
      } else {
        lines.emplace_back(text);
      }
    };
  }
  OperationOutcome Run(const ResolvedOperation& op, DeployLabel label = {}) {
    return runner.Run(root.string(), op, label, source, Log(), cancel);
  }
  OperationOutcome Deploy(const std::string& sha, const std::string& build, int keep = 3,
                          DeployMode mode = DeployMode::kAtomic, const std::string& to = "") {
    DeployArtifactOp op{"web", sha, to, mode, keep};
    return Run(op, DeployLabel{"1.0", build});
  }
  std::string Current(const std::string& rel) { return ReadFile(root / "current" / rel); }
};

TEST_CASE("the last progress report of a deploy keeps the bytes transferred and files extracted") {
  Fixture f;
  std::string b1 = f.source.Add({{"index.html", "build 1"}, {"bin/run.sh", "#!/bin/sh\n"}});
  std::vector<TransferProgress> reports;
  ProgressFn progress = [&](const TransferProgress& p) { reports.push_back(p); };
  DeployArtifactOp op{"web", b1, "", DeployMode::kAtomic, 3};
  auto out = f.runner.Run(f.root.string(), op, DeployLabel{"1.0", "1"}, f.source, f.Log(), f.cancel,
                          progress);
  REQUIRE_MESSAGE(out.succeeded(), out.message);
  REQUIRE_FALSE(reports.empty());
  const TransferProgress& last = reports.back();
  CHECK(last.phase == "done");
  CHECK(last.bytes_total > 0);
  CHECK(last.bytes_done == last.bytes_total);
  CHECK(last.files_total == 2);
  CHECK(last.files_done == 2);

  // sync mode reports the same way.
  reports.clear();
  DeployArtifactOp sync{"web", b1, "mirror", DeployMode::kSync, 3};
  REQUIRE(f.runner
              .Run(f.root.string(), sync, DeployLabel{"1.0", "1"}, f.source, f.Log(), f.cancel,
                   progress)
              .succeeded());
  REQUIRE_FALSE(reports.empty());
  CHECK(reports.back().bytes_total > 0);
  CHECK(reports.back().files_done == 2);
}

TEST_CASE("extraction reports the files extracted as it goes, not only when done") {
  Fixture f;
  std::map<std::string, std::string> files;
  for (int i = 0; i < 600; ++i) files["f/" + std::to_string(i) + ".txt"] = std::to_string(i);
  std::string sha = f.source.Add(files);
  for (DeployMode mode : {DeployMode::kAtomic, DeployMode::kSync}) {
    std::vector<TransferProgress> reports;
    ProgressFn progress = [&](const TransferProgress& p) { reports.push_back(p); };
    DeployArtifactOp op{"web", sha, mode == DeployMode::kSync ? "mirror" : "", mode, 3};
    auto out = f.runner.Run(f.root.string(), op, DeployLabel{"1.0", "1"}, f.source, f.Log(),
                            f.cancel, progress);
    REQUIRE_MESSAGE(out.succeeded(), out.message);
    std::vector<uint64_t> during;  // files_done of extract reports before the total is known
    for (const auto& p : reports)
      if (p.phase == "extract" && p.files_total == 0 && p.files_done > 0)
        during.push_back(p.files_done);
    CAPTURE(static_cast<int>(mode));
    REQUIRE(during.size() >= 2);  // every 256 entries at least
    CHECK(during.front() < 600);
    CHECK(std::is_sorted(during.begin(), during.end()));
    CHECK(reports.back().files_done == 600);
  }
}

TEST_CASE("atomic deploy extracts a release and switches current") {
  Fixture f;
  std::string b1 = f.source.Add({{"index.html", "build 1"}, {"bin/run.sh", "#!/bin/sh\n"}});
  std::string b2 = f.source.Add({{"index.html", "build 2"}});
  auto out = f.Deploy(b1, "1");
  REQUIRE_MESSAGE(out.succeeded(), out.message, out.error.ToString());
  CHECK(fs::is_symlink(f.root / "current"));
  CHECK(f.Current("index.html") == "build 1");
  std::string name1 = ReleaseDirName({"1.0", "1"}, "web", b1);
  CHECK(name1 == "1.0-1-" + b1.substr(0, 12));
  CHECK(fs::is_directory(f.root / ".reprise/releases" / name1));
  // The link is relative, so the root can move.
  CHECK(fs::read_symlink(f.root / "current").is_relative());

  REQUIRE(f.Deploy(b2, "2").succeeded());
  CHECK(f.Current("index.html") == "build 2");
  CHECK_FALSE(fs::exists(f.root / "current/bin/run.sh"));

  auto st = f.runner.State(f.root.string());
  REQUIRE(st.ok());
  CHECK(st->current_release == ReleaseDirName({"1.0", "2"}, "web", b2));
  CHECK(st->previous_release == name1);
  CHECK(st->build == "2");
  CHECK(st->release == "1.0");
  CHECK(st->artifact_sha256 == b2);
  CHECK(st->manifest_hash.size() == 64);
  // Nothing is left in the temporary area.
  CHECK(fs::is_empty(f.root / ".reprise/tmp"));
}

TEST_CASE("re-deploying a cached build is only the switch") {
  Fixture f;
  std::string b1 = f.source.Add({{"a.txt", "one"}});
  std::string b2 = f.source.Add({{"a.txt", "two"}});
  REQUIRE(f.Deploy(b1, "1").succeeded());
  REQUIRE(f.Deploy(b2, "2").succeeded());
  CHECK(f.source.fetches == 2);
  auto out = f.Deploy(b1, "1");
  REQUIRE(out.succeeded());
  CHECK(f.source.fetches == 2);  // no transfer
  CHECK(f.Current("a.txt") == "one");
  bool said_switch = false;
  for (const auto& l : f.lines) said_switch |= l.find("switching only") != std::string::npos;
  CHECK(said_switch);
  auto st = f.runner.State(f.root.string());
  CHECK(st->build == "1");
  CHECK(st->previous_release == ReleaseDirName({"1.0", "2"}, "web", b2));
}

TEST_CASE("a deploy checks the extracted tree against the build's manifest hash") {
  Fixture f;
  std::string b1 = f.source.Add({{"a.txt", "one"}, {"b/c.txt", "see"}});
  std::string b2 = f.source.Add({{"a.txt", "two"}});
  Result<Manifest> m1 = ScanArchive(f.src_dir / "a0.tar.gz");
  REQUIRE(m1.ok());
  DeployArtifactOp good{"web", b1, "", DeployMode::kAtomic, 3, m1->manifest_hash};
  auto out = f.Run(good, DeployLabel{"1.0", "1"});
  REQUIRE_MESSAGE(out.succeeded(), out.message);
  bool verified = false;
  for (const auto& l : f.lines)
    verified |= l.find("verified against the build's manifest") != std::string::npos;
  CHECK(verified);

  // Build 2's bytes under a manifest hash that is not theirs: nothing switches.
  DeployArtifactOp wrong{"web", b2, "", DeployMode::kAtomic, 3, std::string(64, '0')};
  out = f.Run(wrong, DeployLabel{"1.0", "2"});
  CHECK(out.kind == OperationOutcome::Kind::kFailed);
  CHECK(out.message.find("does not match the build's manifest") != std::string::npos);
  CHECK(f.Current("a.txt") == "one");
  CHECK_FALSE(fs::exists(f.root / ".reprise/releases" / ReleaseDirName({"1.0", "2"}, "web", b2)));
  CHECK(fs::is_empty(f.root / ".reprise/tmp"));

  // sync mode refuses the same way and writes nothing.
  DeployArtifactOp sync{"web", b2, "mirror", DeployMode::kSync, 3, std::string(64, '0')};
  out = f.Run(sync, DeployLabel{"1.0", "2"});
  CHECK(out.kind == OperationOutcome::Kind::kFailed);
  CHECK_FALSE(fs::exists(f.root / "mirror/a.txt"));
}

TEST_CASE("a cached release changed on the target is extracted again, not switched to") {
  Fixture f;
  std::string b1 = f.source.Add({{"a.txt", "one"}, {"keep.txt", "k"}});
  std::string b2 = f.source.Add({{"a.txt", "two"}});
  REQUIRE(f.Deploy(b1, "1").succeeded());
  const fs::path rel1 = f.root / ".reprise/releases" / ReleaseDirName({"1.0", "1"}, "web", b1);

  SUBCASE("an old release edited in place") {
    REQUIRE(f.Deploy(b2, "2").succeeded());
    Write(rel1 / "a.txt", "ONE");  // same size: only the inode's times tell
    f.lines.clear();
    REQUIRE(f.Deploy(b1, "1").succeeded());
    CHECK(f.source.fetches == 3);  // fetched and extracted again
    CHECK(f.Current("a.txt") == "one");
  }
  SUBCASE("a file added to the current release, then the same build re-deployed") {
    Write(f.root / "current/extra.txt", "x");
    f.lines.clear();
    REQUIRE(f.Deploy(b1, "1").succeeded());
    CHECK(f.source.fetches == 2);
    CHECK_FALSE(fs::exists(f.root / "current/extra.txt"));
    CHECK(f.Current("a.txt") == "one");
    CHECK(f.Current("keep.txt") == "k");
  }
  bool said = false;
  for (const auto& l : f.lines) said |= l.find("was changed on the target") != std::string::npos;
  CHECK(said);
  CHECK(fs::is_empty(f.root / ".reprise/tmp"));
  // Unchanged since, so the next re-deploy is only the switch again.
  f.lines.clear();
  int fetches = f.source.fetches;
  REQUIRE(f.Deploy(b1, "1").succeeded());
  CHECK(f.source.fetches == fetches);
}

TEST_CASE("the server's archive limits, when sent, are the ones the agent extracts with") {
  Fixture f;
  std::string b1 = f.source.Add({{"a.txt", "one"}, {"b.txt", "two"}, {"c.txt", "three"}});
  ArchiveLimits tight;
  tight.max_entries = 2;
  DeployLabel label{"1.0", "1", tight};
  auto out = f.Run(DeployArtifactOp{"web", b1, "", DeployMode::kAtomic, 3}, label);
  CHECK(out.kind == OperationOutcome::Kind::kFailed);
  CHECK(out.message.find("max_entries") != std::string::npos);
  CHECK_FALSE(fs::exists(f.root / "current"));
  REQUIRE(f.Run(DeployArtifactOp{"web", b1, "", DeployMode::kAtomic, 3}, DeployLabel{"1.0", "1"})
              .succeeded());

  auto round = ArchiveLimitsFromJson(ArchiveLimitsToJson(tight));
  REQUIRE(round.ok());
  CHECK(round->max_entries == 2);
  CHECK(round->max_total_bytes == tight.max_total_bytes);
  CHECK(ArchiveLimitsFromJson("[").status().code() == Code::kInvalidArgument);
}

TEST_CASE("keep K releases, never the current or the previous one") {
  Fixture f;
  std::vector<std::string> shas;
  for (int i = 0; i < 5; ++i) shas.push_back(f.source.Add({{"v", std::to_string(i)}}));
  for (int i = 0; i < 5; ++i) REQUIRE(f.Deploy(shas[i], std::to_string(i), 3).succeeded());
  auto count = [&] {
    int n = 0;
    for (const auto& e : fs::directory_iterator(f.root / ".reprise/releases")) (void)e, ++n;
    return n;
  };
  CHECK(count() == 3);
  CHECK_FALSE(
      fs::exists(f.root / ".reprise/releases" / ReleaseDirName({"1.0", "0"}, "web", shas[0])));
  CHECK(fs::exists(f.root / ".reprise/releases" / ReleaseDirName({"1.0", "2"}, "web", shas[2])));
  // Archives are not kept: the release directories are the cache.
  CHECK(fs::is_empty(f.root / ".reprise/tmp"));

  // keep 1 still keeps the previous release (a rollback candidate).
  REQUIRE(f.Deploy(shas[0], "0", 1).succeeded());
  CHECK(count() == 2);
  CHECK(f.Current("v") == "0");
  CHECK(fs::exists(f.root / ".reprise/releases" / ReleaseDirName({"1.0", "4"}, "web", shas[4])));
}

TEST_CASE("a corrupt or mismatching artifact leaves the current release alone") {
  Fixture f;
  std::string b1 = f.source.Add({{"a.txt", "one"}});
  std::string b2 = f.source.Add({{"a.txt", "two"}});
  REQUIRE(f.Deploy(b1, "1").succeeded());
  std::string link_before = fs::read_symlink(f.root / "current").string();

  SUBCASE("corrupt archive") {
    f.source.corrupt = true;
    auto out = f.Deploy(b2, "2");
    CHECK(out.kind == OperationOutcome::Kind::kFailed);
  }
  SUBCASE("unknown blob") {
    auto out = f.Deploy(std::string(64, 'a'), "2");
    CHECK(out.kind == OperationOutcome::Kind::kFailed);
  }
  SUBCASE("invalid hash") {
    auto out = f.Deploy("../../etc", "2");
    CHECK(out.kind == OperationOutcome::Kind::kFailed);
  }
  CHECK(fs::read_symlink(f.root / "current").string() == link_before);
  CHECK(f.Current("a.txt") == "one");
  CHECK_FALSE(fs::exists(f.root / ".reprise/blobs" / b2));
  auto st = f.runner.State(f.root.string());
  CHECK(st->build == "1");
}

TEST_CASE("a partial extraction left by a crash is cleaned and never current") {
  Fixture f;
  std::string b1 = f.source.Add({{"a.txt", "one"}});
  std::string b2 = f.source.Add({{"a.txt", "two"}});
  REQUIRE(f.Deploy(b1, "1").succeeded());
  // What a killed agent leaves behind.
  Write(f.root / ".reprise/tmp/1.0-2-xxxx.partial-1234/a.txt", "tw");
  Write(f.root / ".reprise/tmp/link-abc", "");
  CHECK(f.Current("a.txt") == "one");
  REQUIRE(f.Deploy(b2, "2").succeeded());
  CHECK(f.Current("a.txt") == "two");
  CHECK(fs::is_empty(f.root / ".reprise/tmp"));
}

TEST_CASE("sync mirrors the artifact, overlay never deletes") {
  Fixture f;
  std::string b1 = f.source.Add({{"a.txt", "one"}, {"d/b.txt", "b"}, {"d/old.txt", "old"}});
  std::string b2 = f.source.Add({{"a.txt", "ONE"}, {"d/b.txt", "b"}, {"new.txt", "n"}});
  SUBCASE("sync") {
    REQUIRE(f.Deploy(b1, "1", 3, DeployMode::kSync, "site").succeeded());
    Write(f.root / "site/stray.txt", "x");
    auto ino_before = fs::hard_link_count(f.root / "site/d/b.txt");
    REQUIRE(f.Deploy(b2, "2", 3, DeployMode::kSync, "site").succeeded());
    CHECK(ReadFile(f.root / "site/a.txt") == "ONE");
    CHECK(ReadFile(f.root / "site/new.txt") == "n");
    CHECK(ReadFile(f.root / "site/d/b.txt") == "b");
    CHECK(ino_before == 1);
    CHECK_FALSE(fs::exists(f.root / "site/d/old.txt"));
    CHECK_FALSE(fs::exists(f.root / "site/stray.txt"));
    bool counted = false;
    for (const auto& l : f.lines) counted |= l == "1 added, 1 changed, 2 deleted, 1 unchanged";
    CHECK(counted);
  }
  SUBCASE("overlay") {
    REQUIRE(f.Deploy(b1, "1", 3, DeployMode::kOverlay, "site").succeeded());
    Write(f.root / "site/stray.txt", "x");
    REQUIRE(f.Deploy(b2, "2", 3, DeployMode::kOverlay, "site").succeeded());
    CHECK(ReadFile(f.root / "site/a.txt") == "ONE");
    CHECK(ReadFile(f.root / "site/new.txt") == "n");
    CHECK(ReadFile(f.root / "site/d/old.txt") == "old");
    CHECK(ReadFile(f.root / "site/stray.txt") == "x");
  }
  SUBCASE("sync into the root keeps the agent's state") {
    REQUIRE(f.Deploy(b1, "1", 3, DeployMode::kAtomic).succeeded());
    REQUIRE(f.Deploy(b2, "2", 3, DeployMode::kSync).succeeded());
    CHECK(fs::is_directory(f.root / ".reprise/releases"));
    CHECK(fs::is_symlink(f.root / "current"));
    CHECK(ReadFile(f.root / "a.txt") == "ONE");
  }
}

TEST_CASE("sync and overlay never write through a symlink that leads outside the root") {
  Fixture f;
  std::string b1 = f.source.Add({{"a.txt", "one"}, {"d/b.txt", "b"}});
  fs::path outside = f.tmp.path() / "outside";
  Write(outside / "keep.txt", "not the target's");
  fs::create_symlink(outside, f.root / "out");
  fs::create_symlink(f.tmp.path() / "nowhere" / "new", f.root / "dangling");
  for (DeployMode mode : {DeployMode::kSync, DeployMode::kOverlay}) {
    for (std::string to : {"out", "out/sub", "dangling", "dangling/sub"}) {
      CAPTURE(to);
      auto out = f.Deploy(b1, "1", 3, mode, to);
      CHECK(out.kind == OperationOutcome::Kind::kFailed);
      CHECK(out.message.find("'" + to + "'") != std::string::npos);
      CHECK(out.message.find(to.find('/') == std::string::npos
                                 ? "is a symlink that leads"
                                 : "passes through the symlink") != std::string::npos);
    }
  }
  // Nothing was written, moved or deleted outside.
  std::vector<std::string> left;
  for (const auto& e : fs::recursive_directory_iterator(outside))
    left.push_back(e.path().lexically_relative(outside).string());
  CHECK(left == std::vector<std::string>{"keep.txt"});
  CHECK_FALSE(fs::exists(f.tmp.path() / "nowhere"));

  // A link that stays inside the root is followed.
  fs::create_directories(f.root / "www");
  fs::create_symlink("www", f.root / "site");
  REQUIRE(f.Deploy(b1, "1", 3, DeployMode::kSync, "site").succeeded());
  CHECK(ReadFile(f.root / "www/d/b.txt") == "b");
  CHECK(fs::is_symlink(f.root / "site"));

  // Syncing into a release the agent keeps would change its cache.
  REQUIRE(f.Deploy(b1, "1").succeeded());
  auto into_release = f.Deploy(b1, "1", 3, DeployMode::kSync, "current");
  CHECK(into_release.kind == OperationOutcome::Kind::kFailed);
  CHECK(into_release.message.find("state directory") != std::string::npos);
}

TEST_CASE("file operations act on a symlink itself, never through it") {
  Fixture f;
  fs::path outside = f.tmp.path() / "outside";
  Write(outside / "secret.conf", "outside");
  fs::create_symlink(outside / "secret.conf", f.root / "linked.conf");
  fs::create_symlink(f.tmp.path() / "nowhere" / "new", f.root / "dangling");

  // write-file replaces the link with a file of its own.
  REQUIRE(f.Run(WriteFileOp{"linked.conf", "inside", 0644}).succeeded());
  CHECK(ReadFile(outside / "secret.conf") == "outside");
  CHECK_FALSE(fs::is_symlink(f.root / "linked.conf"));
  CHECK(ReadFile(f.root / "linked.conf") == "inside");

  // A dangling link on the way leads nowhere inside the root.
  auto w = f.Run(WriteFileOp{"dangling/x.conf", "x", 0644});
  CHECK(w.kind == OperationOutcome::Kind::kFailed);
  CHECK(w.message.find("passes through the symlink 'dangling'") != std::string::npos);
  CHECK(f.Run(EnsureDirOp{"dangling/sub", 0755}).kind == OperationOutcome::Kind::kFailed);
  CHECK(f.Run(DeleteOp{"dangling/sub"}).kind == OperationOutcome::Kind::kFailed);
  CHECK_FALSE(fs::exists(f.tmp.path() / "nowhere"));
  // ensure-dir does not accept a link in place of a directory.
  fs::create_symlink(outside, f.root / "outdir");
  ::chmod(outside.c_str(), 0755);
  CHECK(f.Run(EnsureDirOp{"outdir", 0700}).kind == OperationOutcome::Kind::kFailed);
  struct stat st;
  REQUIRE(::stat(outside.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) != 0700);
}

TEST_CASE("file operations stay inside the target root") {
  Fixture f;
  fs::path outside = f.tmp.path() / "outside";
  fs::create_directories(outside);
  fs::create_symlink(outside, f.root / "escape");

  CHECK(f.Run(WriteFileOp{"conf/app.json", "{}", 0600}).succeeded());
  CHECK(ReadFile(f.root / "conf/app.json") == "{}");
  struct stat st;
  REQUIRE(::stat((f.root / "conf/app.json").c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  CHECK(f.Run(EnsureDirOp{"logs/app", 0750}).succeeded());
  CHECK(fs::is_directory(f.root / "logs/app"));
  CHECK(f.Run(DeleteOp{"logs"}).succeeded());
  CHECK_FALSE(fs::exists(f.root / "logs"));
  CHECK(f.Run(DeleteOp{"logs"}).succeeded());  // already gone

  for (std::string bad : {"../x", "/etc/passwd", "a/../../x", "escape/x", ".reprise/state.json", "",
                          "a\\..\\..\\x"}) {
    CAPTURE(bad);
    auto w = f.Run(WriteFileOp{bad, "pwned", 0644});
    CHECK(w.kind == OperationOutcome::Kind::kFailed);
    CHECK(f.Run(EnsureDirOp{bad + "/d", 0755}).kind == OperationOutcome::Kind::kFailed);
  }
  CHECK(f.Run(DeleteOp{"escape/.."}).kind == OperationOutcome::Kind::kFailed);
  CHECK(f.Run(DeleteOp{".reprise"}).kind == OperationOutcome::Kind::kFailed);
  CHECK(f.Run(DeleteOp{"../target"}).kind == OperationOutcome::Kind::kFailed);
  CHECK(fs::is_empty(outside));
  CHECK(fs::exists(f.root));
  // Deleting the symlink removes the link, not what it points at.
  fs::create_directories(outside / "keep");
  CHECK(f.Run(DeleteOp{"escape"}).succeeded());
  CHECK_FALSE(fs::exists(fs::symlink_status(f.root / "escape")));
  CHECK(fs::exists(outside / "keep"));

  // A target root outside the agent's root is refused.
  CancelToken c;
  auto out = f.runner.Run("/etc", EnsureDirOp{"x", 0755}, {}, f.source, f.Log(), c);
  CHECK(out.kind == OperationOutcome::Kind::kFailed);
  CHECK_FALSE(fs::exists("/etc/x"));
}

TEST_CASE("exec streams output and the exit code decides") {
  Fixture f;
  ExecOp ok;
  ok.command = "echo hello; echo oops >&2; pwd";
  REQUIRE(f.Run(ok).succeeded());
  CHECK(f.output.find("hello\n") != std::string::npos);
  CHECK(f.output.find("oops\n") != std::string::npos);
  CHECK(f.output.find(fs::canonical(f.root).string()) != std::string::npos);

  ExecOp bad;
  bad.argv = {"sh", "-c", "exit 3"};
  auto out = f.Run(bad);
  CHECK(out.kind == OperationOutcome::Kind::kFailed);
  CHECK(out.message.find("exit code 3") != std::string::npos);
  bad.success_codes = {0, 3};
  CHECK(f.Run(bad).succeeded());

  ExecOp env;
  env.command = "echo \"$GREETING\"";
  env.env = {{"GREETING", "hi there"}};
  REQUIRE(f.Run(env).succeeded());
  CHECK(f.output.find("hi there\n") != std::string::npos);

  ExecOp escape;
  escape.command = "true";
  escape.cwd = "../";
  CHECK(f.Run(escape).kind == OperationOutcome::Kind::kFailed);

  ExecOp missing;
  missing.argv = {"/nonexistent/program"};
  CHECK(f.Run(missing).kind == OperationOutcome::Kind::kFailed);
}

TEST_CASE("an exec step's process gets only stdin, stdout and stderr") {
  Fixture f;
  // An fd the agent's process holds without close-on-exec (as a library's
  // socket may be): the step must not inherit it.
  int leaked = ::open("/dev/null", O_RDONLY);
  REQUIRE(leaked > 2);
  ExecOp list;
  // `; true`: the shell stays the step's process, so $$ is the one exec'd.
  list.command = "ls /proc/$$/fd; true";
  auto out = f.Run(list);
  ::close(leaked);
  REQUIRE_MESSAGE(out.succeeded(), out.message);
  std::set<std::string> fds;
  std::istringstream in(f.output);
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) fds.insert(line);
  CHECK(fds == std::set<std::string>{"0", "1", "2"});
}

// Sets environment variables for one scope and restores them after.
class ScopedEnv {
 public:
  ScopedEnv(std::initializer_list<std::pair<std::string, std::string>> vars) {
    for (const auto& [name, value] : vars) {
      const char* old = std::getenv(name.c_str());
      saved_.push_back({name, old ? std::optional<std::string>(old) : std::nullopt});
      ::setenv(name.c_str(), value.c_str(), 1);
    }
  }
  ~ScopedEnv() {
    for (const auto& [name, old] : saved_) {
      if (old) {
        ::setenv(name.c_str(), old->c_str(), 1);
      } else {
        ::unsetenv(name.c_str());
      }
    }
  }

 private:
  std::vector<std::pair<std::string, std::optional<std::string>>> saved_;
};

TEST_CASE("exec children get a minimal environment, never the agent's secrets") {
  Fixture f;
  ScopedEnv env({{"REPRISE_ADMIN_TOKEN", "admin-token-must-not-leak"},
                 {"REPRISE_ENROLL_TOKEN", "rpe_enroll-token-must-not-leak"},
                 {"AWS_SECRET_ACCESS_KEY", "cloud-key-must-not-leak"},
                 {"HOME", "/home/deployer"},
                 {"LANG", "C.UTF-8"},
                 {"TZ", "Europe/Berlin"}});
  ExecOp op;
  op.argv = {"env"};
  op.env = {{"GREETING", "hello"}};
  REQUIRE(f.Run(op).succeeded());
  CAPTURE(f.output);
  CHECK(f.output.find("must-not-leak") == std::string::npos);
  CHECK(f.output.find("AWS_SECRET_ACCESS_KEY") == std::string::npos);
  CHECK(f.output.find("REPRISE_ADMIN_TOKEN") == std::string::npos);
  CHECK(f.output.find("REPRISE_ENROLL_TOKEN") == std::string::npos);
  CHECK(("\n" + f.output).find("\nPATH=") != std::string::npos);
  CHECK(f.output.find("HOME=/home/deployer\n") != std::string::npos);
  CHECK(f.output.find("LANG=C.UTF-8\n") != std::string::npos);
  CHECK(f.output.find("TZ=Europe/Berlin\n") != std::string::npos);
  CHECK(f.output.find("GREETING=hello\n") != std::string::npos);
  CHECK(f.output.find("REPRISE_TARGET_ROOT=" + fs::canonical(f.root).string() + "\n") !=
        std::string::npos);
  // Every line is one of the documented variables or the step's own.
  std::set<std::string> allowed = {"PATH",     "HOME",     "USER",     "LOGNAME",
                                   "LANG",     "LANGUAGE", "LC_ALL",   "TZ",
                                   "LC_CTYPE", "TMPDIR",   "GREETING", "REPRISE_TARGET_ROOT"};
  size_t start = 0;
  while (start < f.output.size()) {
    size_t end = f.output.find('\n', start);
    if (end == std::string::npos) end = f.output.size();
    std::string line = f.output.substr(start, end - start);
    start = end + 1;
    if (line.empty()) continue;
    CHECK_MESSAGE(allowed.count(line.substr(0, line.find('='))), line);
  }
}

bool ProcessAlive(pid_t pid) {
  if (::kill(pid, 0) != 0) return false;
  // A zombie (not reaped by a container's init) counts as dead.
  std::string stat = ReadFile("/proc/" + std::to_string(pid) + "/stat");
  auto close = stat.rfind(')');
  return !(close != std::string::npos && close + 2 < stat.size() && stat[close + 2] == 'Z');
}

pid_t WaitForPid(const fs::path& file) {
  std::string s;
  bool written = testing::WaitUntil([&] {
    s = ReadFile(file);
    return !s.empty() && s.back() == '\n';
  });
  return written ? static_cast<pid_t>(std::stol(s)) : -1;
}

TEST_CASE("exec timeout kills the whole process group, grandchildren included") {
  Fixture f;
  fs::path pidfile = f.tmp.path() / "grandchild.pid";
  ExecOp op;
  // The grandchild ignores SIGTERM, so only the group SIGKILL ends it.
  op.command = "sh -c 'trap \"\" TERM; sleep 60' & echo $! > " + pidfile.string() + "; sleep 60";
  op.timeout_seconds = 1;
  auto start = std::chrono::steady_clock::now();
  auto out = f.Run(op);
  auto took = std::chrono::steady_clock::now() - start;
  CHECK(out.kind == OperationOutcome::Kind::kFailed);
  CHECK(out.message.find("timed out") != std::string::npos);
  CHECK(took < std::chrono::seconds(30));
  pid_t gc = WaitForPid(pidfile);
  REQUIRE(gc > 0);
  CHECK(testing::WaitUntil([&] { return !ProcessAlive(gc); }));
}

TEST_CASE("cancelling exec kills the process group and reports cancellation") {
  Fixture f;
  fs::path pidfile = f.tmp.path() / "child.pid";
  ExecOp op;
  op.command = "sleep 60 & echo $! > " + pidfile.string() + "; wait";
  std::thread canceller([&] {
    WaitForPid(pidfile);
    f.cancel.Cancel();
  });
  auto out = f.Run(op);
  canceller.join();
  CHECK(out.kind == OperationOutcome::Kind::kError);
  CHECK(out.error.code() == Code::kCancelled);
  pid_t child = WaitForPid(pidfile);
  CHECK(testing::WaitUntil([&] { return !ProcessAlive(child); }));
}

TEST_CASE("validate reports missing, changed and extra files under current") {
  Fixture f;
  std::string b1 = f.source.Add({{"a.txt", "one"}, {"d/b.txt", "b"}});
  REQUIRE(f.Deploy(b1, "1").succeeded());
  // The manifest the server keeps for the build.
  auto manifest = ScanArchive(f.src_dir / "a0.tar.gz");
  REQUIRE(manifest.ok());
  auto clean = f.runner.Validate(f.root.string(), *manifest);
  REQUIRE(clean.ok());
  CHECK(clean->ok());
  CHECK(clean->files_checked == 2);
  CHECK(f.runner.State(f.root.string())->manifest_hash == manifest->manifest_hash);

  fs::path cur = fs::canonical(f.root / "current");
  Write(cur / "a.txt", "tampered");
  fs::remove(cur / "d/b.txt");
  Write(cur / "extra.txt", "x");
  auto r = f.runner.Validate(f.root.string(), *manifest);
  REQUIRE(r.ok());
  CHECK_FALSE(r->ok());
  REQUIRE(r->changed.size() == 1);
  CHECK(r->changed[0].path == "a.txt");
  CHECK(r->missing == std::vector<std::string>{"d/b.txt"});
  CHECK(r->extra == std::vector<std::string>{"extra.txt"});

  // Round trip through the protocol's JSON.
  auto back = ValidationReportFromJson(ValidationReportToJson(*r));
  REQUIRE(back.ok());
  CHECK(back->changed == r->changed);
  CHECK(back->missing == r->missing);
  CHECK(back->extra == r->extra);
}

TEST_CASE("validate and state on an empty target") {
  Fixture f;
  auto st = f.runner.State(f.root.string());
  REQUIRE(st.ok());
  CHECK(st->current_release.empty());
  CHECK(f.runner.Validate(f.root.string(), Manifest{}).status().code() == Code::kNotFound);
}

}  // namespace
}  // namespace reprise

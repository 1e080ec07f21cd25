// Artifact upload, immutability, download and verification through the API,
// the malicious corpus and the server's artifact flags, through a real server.
#include <doctest/doctest.h>

#include "tests/server/api/artifacts_api_support.h"

namespace reprise::testing {

using nlohmann::json;
using namespace artifacts_api;

TEST_CASE_FIXTURE(SeededServer,
                  "an uploaded artifact comes back byte for byte with its hash, ETag and Range") {
  std::string bytes = Archive(
      dir, {File("index.html", "<h1>hi</h1>"), Dir("bin"),
            File("bin/run.sh", "#!/bin/sh\necho run\n", 0755), Symlink("latest", "index.html")});
  auto up = admin.Put(std::string(kBuild1) + "/artifacts/web", bytes, "application/gzip");
  REQUIRE_MESSAGE(up.status == 201, up.body);
  auto j = json::parse(up.body);
  CHECK(j["sha256"] == Sha256Hex(bytes));
  CHECK(j["size"] == bytes.size());
  CHECK(j["file_count"] == 2);
  CHECK(j["created"] == true);

  auto down = admin.Get(std::string(kBuild1) + "/artifacts/web");
  REQUIRE(down.status == 200);
  CHECK(down.body == bytes);
  CHECK(down.headers["etag"] == "\"" + Sha256Hex(bytes) + "\"");
  CHECK(down.headers["x-checksum-sha256"] == Sha256Hex(bytes));

  auto part = admin.Get(std::string(kBuild1) + "/artifacts/web", {{"Range", "bytes=10-19"}});
  CHECK(part.status == 206);
  CHECK(part.body == bytes.substr(10, 10));

  auto cached = admin.Get(std::string(kBuild1) + "/artifacts/web",
                          {{"If-None-Match", "\"" + Sha256Hex(bytes) + "\""}});
  CHECK(cached.status == 304);

  auto manifest = json::parse(admin.Get(std::string(kBuild1) + "/artifacts/web/manifest").body);
  std::set<std::string> paths;
  for (const auto& e : manifest["manifest"]["entries"]) paths.insert(e["path"].get<std::string>());
  CHECK(paths == std::set<std::string>{"bin", "bin/run.sh", "index.html", "latest"});

  auto build = json::parse(admin.Get(kBuild1).body);
  REQUIRE(build["artifacts"].size() == 1);
  CHECK(build["artifacts"][0]["name"] == "web");
  CHECK(build["artifacts"][0]["sha256"] == Sha256Hex(bytes));
  CHECK(build["artifacts"][0]["file_count"] == 2);
}

TEST_CASE_FIXTURE(SeededServer,
                  "immutability: identical bytes are a no-op, other bytes are refused") {
  std::string v1 = Archive(dir, {File("a.txt", "one")});
  std::string v2 = Archive(dir, {File("a.txt", "two")});
  REQUIRE(admin.Put(std::string(kBuild1) + "/artifacts/web", v1, "application/gzip").status == 201);
  auto blobs = Blobs(server);
  auto again = admin.Put(std::string(kBuild1) + "/artifacts/web", v1, "application/gzip");
  CHECK(again.status == 200);
  CHECK(json::parse(again.body)["created"] == false);
  auto other = admin.Put(std::string(kBuild1) + "/artifacts/web", v2, "application/gzip");
  CHECK(other.status == 409);
  CHECK(json::parse(other.body)["error"]["message"].get<std::string>().find("immutable") !=
        std::string::npos);
  CHECK(Blobs(server) == blobs);  // no new blob for either
  CHECK(admin.Get(std::string(kBuild1) + "/artifacts/web").body == v1);
  CHECK(Temporaries(server) == 0);
}

TEST_CASE_FIXTURE(SeededServer, "two builds with the same bytes share one blob") {
  REQUIRE(admin.Post("/api/v1/applications/shop/releases/1.0/builds", "{}").status == 201);
  std::string bytes = Archive(dir, {File("a.txt", "same")});
  CHECK(admin.Put(std::string(kBuild1) + "/artifacts/web", bytes, "x").status == 201);
  CHECK(admin
            .Put("/api/v1/applications/shop/releases/1.0/builds/2/artifacts/web", bytes,
                 "application/gzip")
            .status == 201);
  CHECK(Blobs(server).size() == 1);
}

TEST_CASE_FIXTURE(
    SeededServer,
    "50 concurrent identical uploads make one blob and all succeed with the same hash") {
  std::string bytes =
      Archive(dir, {File("big.bin", std::string(256 << 10, 'x')), File("b.txt", RandomHex(1000))});
  std::vector<int> statuses(50);
  std::vector<std::string> hashes(50), errors(50);
  std::vector<std::thread> threads;
  for (int i = 0; i < 50; ++i)
    threads.emplace_back([&, i] {
      auto c = server.Admin();
      auto r = c.Put(std::string(kBuild1) + "/artifacts/web", bytes, "application/gzip");
      statuses[i] = r.status;
      errors[i] = r.error;
      if (r.status / 100 == 2) hashes[i] = json::parse(r.body)["sha256"].get<std::string>();
    });
  for (auto& t : threads) t.join();
  int created = 0;
  for (int i = 0; i < 50; ++i) {
    CAPTURE(i);
    CAPTURE(statuses[i]);
    CAPTURE(errors[i]);
    CHECK((statuses[i] == 201 || statuses[i] == 200));
    CHECK(hashes[i] == Sha256Hex(bytes));
    created += statuses[i] == 201;
  }
  CHECK(created == 1);
  CHECK(Blobs(server) == std::set<std::string>{Sha256Hex(bytes)});
  CHECK(Temporaries(server) == 0);
}

TEST_CASE_FIXTURE(SeededServer,
                  "unsafe or broken archives are refused naming the entry; nothing is stored") {
  struct Case {
    const char* name;
    std::string bytes;
    int status;
    const char* expect;
  };
  std::vector<Case> cases = {
      {"traversal", Archive(dir, {File("../evil.txt", "x")}), 422, "../evil.txt"},
      {"absolute", Archive(dir, {File("/etc/evil", "x")}), 422, "/etc/evil"},
      {"symlink escape", Archive(dir, {Symlink("out", "../../etc")}), 422, "out"},
      {"device", Archive(dir, {Special("dev", RawType::kCharDevice)}), 422, "dev"},
      {"setuid", Archive(dir, {File("su", "x", 04755)}), 422, "su"},
      {"not an archive", std::string("this is not an archive at all, just text"), 400, ""},
  };
  for (const auto& c : cases) {
    CAPTURE(c.name);
    auto r = admin.Put(std::string(kBuild1) + "/artifacts/web", c.bytes, "application/gzip");
    CHECK(r.status == c.status);
    CHECK(json::parse(r.body)["error"]["message"].get<std::string>().find(c.expect) !=
          std::string::npos);
  }
  CHECK(Blobs(server).empty());
  CHECK(Temporaries(server) == 0);
  CHECK(admin.Get(std::string(kBuild1) + "/artifacts/web").status == 404);
  auto missing_build = admin.Put("/api/v1/applications/shop/releases/1.0/builds/9/artifacts/web",
                                 Archive(dir, {File("a", "b")}), "application/gzip");
  CHECK(missing_build.status == 404);
  auto bad_name = admin.Put(std::string(kBuild1) + "/artifacts/..hidden",
                            Archive(dir, {File("a", "b")}), "application/gzip");
  CHECK(bad_name.status == 400);
}

TEST_CASE("uploads over the size limit get 413 and leave nothing") {
  ServerOptions o;
  o.max_artifact_bytes = 64 << 10;
  TestServer server(o);
  auto admin = server.Admin();
  SeedBuild(admin);
  TempDir dir;
  std::string bytes = Archive(dir, {File("r.bin", RandomHex(100 << 10))}, ArchiveKind::kTar);
  auto r = admin.Put(std::string(kBuild1) + "/artifacts/web", bytes, "application/x-tar");
  CHECK(r.status == 413);
  CHECK(Blobs(server).empty());
  CHECK(Temporaries(server) == 0);
}

TEST_CASE_FIXTURE(SeededServer,
                  "temporaries from killed uploads are removed on start; verify finds tampering") {
  std::string bytes = Archive(dir, {File("a.txt", "content")});
  REQUIRE(admin.Put(std::string(kBuild1) + "/artifacts/web", bytes, "x").status == 201);
  auto leftover = server.data_dir() / "artifacts" / "tmp" / "upload-killed";
  WriteBytes(leftover, "half an upload");
  std::filesystem::last_write_time(
      leftover, std::filesystem::file_time_type::clock::now() - std::chrono::hours(2));
  // Another server sharing the artifact directory is in the middle of this one.
  auto in_progress = server.data_dir() / "artifacts" / "tmp" / "upload-in-progress";
  WriteBytes(in_progress, "the first bytes");
  server.Restart();
  CHECK_FALSE(std::filesystem::exists(leftover));
  CHECK(std::filesystem::exists(in_progress));
  std::filesystem::remove(in_progress);

  auto clean = json::parse(server.Admin().Post("/api/v1/admin/verify", "{}").body);
  CHECK(clean["ok"] == true);
  CHECK(clean["blobs_checked"] == 1);

  std::string sha = Sha256Hex(bytes);
  auto blob = server.data_dir() / "artifacts" / "sha256" / sha.substr(0, 2) / sha;
  std::filesystem::permissions(blob, std::filesystem::perms::owner_write,
                               std::filesystem::perm_options::add);
  std::string tampered = bytes;
  tampered[tampered.size() / 2] ^= 0x01;
  WriteBytes(blob, tampered);
  auto report = json::parse(server.Admin().Post("/api/v1/admin/verify", "{}").body);
  CHECK(report["ok"] == false);
  REQUIRE(report["corrupt"].size() == 1);
  CHECK(report["corrupt"][0] == sha);
  CHECK(ReadBytes(blob) == tampered);  // verification changes nothing

  // The command-line check reports the same and fails.
  std::string cmd = (BinDir() / "reprise-server").string() + " --verify --data " +
                    server.data_dir().string() + " > " + (dir.path() / "verify.out").string() +
                    " 2>&1";
  int rc = std::system(cmd.c_str());
  CHECK(WEXITSTATUS(rc) == 1);
  CHECK(ReadBytes(dir.path() / "verify.out").find("CORRUPT " + sha) != std::string::npos);
}

TEST_CASE("the demo's two builds carry different real artifacts") {
  ServerOptions o;
  o.demo = true;
  TestServer server(o);
  auto admin = server.Admin();
  auto b1 = json::parse(admin.Get("/api/v1/applications/shop/releases/1.0.0/builds/1").body);
  auto b2 = json::parse(admin.Get("/api/v1/applications/shop/releases/1.0.0/builds/2").body);
  REQUIRE(b1["artifacts"].size() == 1);
  REQUIRE(b2["artifacts"].size() == 1);
  CHECK(b1["artifacts"][0]["sha256"] != b2["artifacts"][0]["sha256"]);
  auto m1 = json::parse(
      admin.Get("/api/v1/applications/shop/releases/1.0.0/builds/1/artifacts/web/manifest").body);
  auto m2 = json::parse(
      admin.Get("/api/v1/applications/shop/releases/1.0.0/builds/2/artifacts/web/manifest").body);
  auto paths = [](const json& m) {
    std::set<std::string> p;
    for (const auto& e : m["manifest"]["entries"]) p.insert(e["path"].get<std::string>());
    return p;
  };
  CHECK(paths(m1).count("config/legacy.conf") == 1);
  CHECK(paths(m2).count("config/legacy.conf") == 0);
  CHECK(paths(m2).count("api/status.json") == 1);
  server.Restart();  // idempotent: no new builds or blobs
  CHECK(json::parse(
            server.Admin().Get("/api/v1/applications/shop/releases/1.0.0/builds").body)["items"]
            .size() == 2);
}

namespace {

std::string LimitsKey(const ArchiveLimits& l) {
  return std::to_string(l.max_entries) + "/" + std::to_string(l.max_total_bytes) + "/" +
         std::to_string(l.max_entry_bytes) + "/" + std::to_string(l.max_compression_ratio) + "/" +
         std::to_string(l.ratio_check_min_bytes);
}

// Uploads every archive of the corpus through the API, one server per set of
// limits the corpus uses (configured as an operator would), and checks that
// each is refused naming the entry and leaves nothing behind. With
// `max_body` set, archives longer than that are refused for their size (413).
void UploadCorpus(uint64_t max_body) {
  TempDir dir;
  const std::vector<BadArchive> corpus = MaliciousCorpus();
  std::map<std::string, std::vector<size_t>> by_limits;
  for (size_t i = 0; i < corpus.size(); ++i) by_limits[LimitsKey(corpus[i].limits)].push_back(i);
  size_t uploaded = 0;
  for (const auto& [key, indexes] : by_limits) {
    CAPTURE(key);
    ServerOptions o;
    o.archive_limits = corpus[indexes.front()].limits;
    if (max_body > 0) o.max_artifact_bytes = max_body;
    TestServer server(o);
    auto admin = server.Admin();
    SeedBuild(admin);
    for (size_t i : indexes) {
      const BadArchive& bad = corpus[i];
      CAPTURE(bad.name);
      const auto file = dir.path() / BadArchiveFileName(i, bad);
      WriteBadArchive(bad, file);
      const std::string bytes = ReadBytes(file);
      auto r =
          admin.Put(std::string(kBuild1) + "/artifacts/web", bytes, "application/octet-stream");
      CAPTURE(r.body);
      if (max_body > 0 && bytes.size() > max_body) {
        CHECK(r.status == 413);
        CHECK(ErrorCode(r) == "too_large");
      } else if (bad.code == Code::kUnsafe) {
        CHECK(r.status == 422);
        CHECK(ErrorCode(r) == "unsafe_content");
        CHECK(ErrorMessage(r).find(bad.names) != std::string::npos);
      } else {
        // The one corrupt archive of the corpus (a tar header promising more
        // data than the archive holds reads as a truncated archive).
        CHECK(bad.code == Code::kInvalidArgument);
        CHECK(r.status == 400);
        CHECK(ErrorMessage(r).find(bad.names) != std::string::npos);
      }
      CHECK(Blobs(server).empty());
      CHECK(Temporaries(server) == 0);
      CHECK(admin.Get(std::string(kBuild1) + "/artifacts/web").status == 404);
      CHECK(json::parse(admin.Get(kBuild1).body)["artifacts"].empty());
      ++uploaded;
    }
  }
  CHECK(uploaded == corpus.size());
}

}  // namespace

TEST_CASE("every archive of the malicious corpus is refused by PUT .../artifacts with 422") {
  UploadCorpus(0);
}

TEST_CASE("with a small body limit the longer corpus archives get 413 instead; nothing stored") {
  UploadCorpus(4 << 10);
}

TEST_CASE("archive limits come from the server's options and name the limit") {
  ServerOptions o;
  o.archive_limits.max_entries = 2;
  o.archive_limits.max_total_bytes = 10000;
  TestServer server(o);
  auto admin = server.Admin();
  SeedBuild(admin);
  TempDir dir;
  auto many = admin.Put(std::string(kBuild1) + "/artifacts/web",
                        Archive(dir, {File("a", "1"), File("b", "2"), File("c", "3")}), "x");
  CHECK(many.status == 422);
  CHECK(ErrorMessage(many).find("'c'") != std::string::npos);
  CHECK(ErrorMessage(many).find("max_entries") != std::string::npos);
  auto big = admin.Put(
      std::string(kBuild1) + "/artifacts/web",
      Archive(dir, {File("a", std::string(6000, 'a')), File("b", std::string(6000, 'b'))}), "x");
  CHECK(big.status == 422);
  CHECK(ErrorMessage(big).find("'b'") != std::string::npos);
  CHECK(ErrorMessage(big).find("max_total_bytes") != std::string::npos);
  auto fine = admin.Put(std::string(kBuild1) + "/artifacts/web",
                        Archive(dir, {File("a", std::string(6000, 'a'))}), "x");
  CHECK(fine.status == 201);
}

TEST_CASE("the server's retention defaults apply to the fields a request leaves out") {
  ServerOptions o;
  o.retention.keep_builds_per_release = 1;
  o.retention.keep_days = 0;
  o.retention.keep_rollback_candidates = 0;
  TestServer server(o);
  auto admin = server.Admin();
  SeedBuild(admin);
  REQUIRE(admin.Post("/api/v1/applications/shop/releases/1.0/builds", "{}").status == 201);
  TempDir dir;
  REQUIRE(admin.Put(std::string(kBuild1) + "/artifacts/web", Archive(dir, {File("a", "1")}), "x")
              .status == 201);
  REQUIRE(admin
              .Put("/api/v1/applications/shop/releases/1.0/builds/2/artifacts/web",
                   Archive(dir, {File("a", "2")}), "x")
              .status == 201);
  auto defaults = json::parse(admin.Post("/api/v1/admin/retention", "{}").body);
  CHECK(defaults["dry_run"] == true);
  CHECK(defaults["policy"] ==
        json{{"keep_builds", 1}, {"keep_days", 0}, {"keep_rollback_candidates", 0}});
  REQUIRE(defaults["deleted"].size() == 1);
  CHECK(defaults["deleted"][0]["build"] == 1);
  auto overridden =
      json::parse(admin.Post("/api/v1/admin/retention", R"({"keep_builds": 5})").body);
  CHECK(overridden["policy"] ==
        json{{"keep_builds", 5}, {"keep_days", 0}, {"keep_rollback_candidates", 0}});
  CHECK(overridden["deleted"].empty());
}

TEST_CASE("--artifact-dir keeps blobs outside the data directory; --verify reads them there") {
  TempDir dir;
  ServerOptions options;
  options.artifact_dir = dir.path() / "shared-artifacts";
  TestServer server(options);
  auto admin = server.Admin();
  SeedBuild(admin);
  std::string bytes = Archive(dir, {File("a.txt", "shared content")});
  REQUIRE(admin.Put(std::string(kBuild1) + "/artifacts/web", bytes, "x").status == 201);
  const std::string sha = Sha256Hex(bytes);
  CHECK(std::filesystem::exists(options.artifact_dir / "sha256" / sha.substr(0, 2) / sha));
  CHECK(Blobs(server).empty());
  CHECK(admin.Get(std::string(kBuild1) + "/artifacts/web").body == bytes);
  server.Stop();

  auto r = RunBinary("reprise-server", "--verify --data " + server.data_dir().string() +
                                           " --artifact-dir " + options.artifact_dir.string());
  CHECK(r.exit_code == 0);
  CHECK(r.output.find("1 blobs") != std::string::npos);
  CHECK(r.output.find("1 artifact records, 0 missing") != std::string::npos);
}

TEST_CASE("reprise-server refuses bad artifact flags naming the flag") {
  TempDir dir;
  const std::string bin = BinDir().string();
  struct Case {
    const char* args;
    const char* expect;
  };
  for (auto c : {Case{"--artifact-max-entries 0", "--artifact-max-entries needs"},
                 Case{"--artifact-max-total-bytes 12X", "--artifact-max-total-bytes needs"},
                 Case{"--artifact-max-ratio 0.5", "--artifact-max-ratio needs"},
                 Case{"--retention-keep-candidates 5000", "--retention-keep-candidates needs"},
                 Case{"--retention-keep-days", "--retention-keep-days needs a value"}}) {
    CAPTURE(c.args);
    std::string cmd = bin + "/reprise-server --data " + (dir.path() / "data").string() + " " +
                      c.args + " > " + (dir.path() / "out").string() + " 2>&1";
    int rc = std::system(cmd.c_str());
    CHECK(WEXITSTATUS(rc) == 2);
    CHECK(ReadBytes(dir.path() / "out").find(c.expect) != std::string::npos);
  }
}

}  // namespace reprise::testing

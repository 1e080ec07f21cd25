// Uploads through a real server that arrive chunked, stop midway, race
// each other or are killed: nothing half-written is ever visible.
#include <doctest/doctest.h>

#include "tests/server/api/artifacts_api_support.h"

namespace reprise::testing {

using nlohmann::json;
using namespace artifacts_api;

TEST_CASE_FIXTURE(SeededServer,
                  "a chunked upload without a length is scanned as it arrives and stored") {
  const std::string bytes = RandomTree(dir, 3 << 20, 1);
  {
    RawConnection c(server.port());
    c.Send("PUT " + std::string(kBuild1) +
           "/artifacts/web HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " +
           std::string(kAdminToken) +
           "\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n");
    for (size_t off = 0; off < bytes.size(); off += 100000) {
      size_t n = std::min<size_t>(100000, bytes.size() - off);
      char size_line[32];
      std::snprintf(size_line, sizeof size_line, "%zx\r\n", n);
      c.Send(size_line);
      c.Send(std::string_view(bytes).substr(off, n));
      c.Send("\r\n");
    }
    c.Send("0\r\n\r\n");
    REQUIRE(
        WaitFor([&] { return admin.Get(std::string(kBuild1) + "/artifacts/web").status == 200; }));
  }
  auto down = admin.Get(std::string(kBuild1) + "/artifacts/web");
  CHECK(down.body == bytes);
  CHECK(json::parse(admin.Get(kBuild1).body)["artifacts"][0]["file_count"] == 2);
}

TEST_CASE_FIXTURE(SeededServer,
                  "an upload whose client disconnects midway leaves nothing visible") {
  const std::string bytes = RandomTree(dir, 8 << 20, 2);
  const std::string path = std::string(kBuild1) + "/artifacts/web";
  {
    RawConnection c(server.port());
    c.Send(UploadHead(path, bytes.size()));
    c.Send(std::string_view(bytes).substr(0, bytes.size() / 2));
    // The server has started storing the body.
    REQUIRE(WaitFor([&] { return Temporaries(server) == 1; }));
    c.Drop();
  }
  // Its temporary goes as soon as the server sees the connection end.
  CHECK(WaitFor([&] { return Temporaries(server) == 0; }));
  CHECK(Blobs(server).empty());
  CHECK(admin.Get(path).status == 404);
  CHECK(json::parse(admin.Get(kBuild1).body)["artifacts"].empty());
  // The same upload, complete, still works.
  CHECK(admin.Put(path, bytes, "application/gzip").status == 201);
  CHECK(Blobs(server) == std::set<std::string>{Sha256Hex(bytes)});
}

// A body with a Content-Length is read straight from the socket: what came
// with the header first, then exactly its length, so the next request on the
// connection is read as it was sent.
TEST_CASE_FIXTURE(SeededServer,
                  "an upload sent with its header and the next request in one piece is read "
                  "exactly") {
  const std::string bytes = Archive(dir, {Dir("app"), File("app/index.html", "<html></html>")});
  const std::string path = std::string(kBuild1) + "/artifacts/web";
  RawConnection c(server.port());
  c.Send(UploadHead(path, bytes.size()) + bytes + "GET " + path +
         "/manifest HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " +
         std::string(kAdminToken) + "\r\nConnection: close\r\n\r\n");
  const std::string answers = c.ReadToEnd();
  CAPTURE(answers);
  const size_t created = answers.find("HTTP/1.1 201");
  const size_t manifest = answers.find("HTTP/1.1 200");
  CHECK(created == 0);
  REQUIRE(manifest != std::string::npos);
  CHECK(manifest > created);
  CHECK(answers.find("app/index.html", manifest) != std::string::npos);
  CHECK(Blobs(server) == std::set<std::string>{Sha256Hex(bytes)});
}

// The upload's handler stops reading when the artifact is over its limit,
// with the next chunk of the body being read ahead: that read is cancelled,
// the answer is 413, nothing is left, and the server goes on serving.
TEST_CASE("an upload stopped past the artifact limit while a read is ahead leaves nothing") {
  ServerOptions o;
  o.max_artifact_bytes = 3 << 20;
  TestServer server(o);
  auto admin = server.Admin();
  SeedBuild(admin);
  TempDir dir;
  const std::string bytes = RandomTree(dir, 12 << 20, 4);
  REQUIRE(bytes.size() > (8u << 20));
  const std::string path = std::string(kBuild1) + "/artifacts/web";
  auto r = admin.Put(path, bytes, "application/gzip");
  CHECK(r.status == 413);
  CHECK(ErrorCode(r) == "too_large");
  CHECK(Blobs(server).empty());
  CHECK(Temporaries(server) == 0);
  {
    // The same over a connection that sends the body slowly: the read ahead
    // waits for bytes when the handler stops.
    RawConnection c(server.port());
    c.Send(UploadHead(path, bytes.size()));
    c.Send(std::string_view(bytes).substr(0, (3 << 20) + (512 << 10)));
    const std::string answer = c.ReadToEnd();
    CHECK(answer.rfind("HTTP/1.1 413", 0) == 0);
    CHECK(Temporaries(server) == 0);
  }
  CHECK(Blobs(server).empty());
  auto small = Archive(dir, {File("a", "b")});
  CHECK(admin.Put(path, small, "application/gzip").status == 201);
}

TEST_CASE("kill -9 of the server during an upload: nothing visible, the temporary goes on start") {
  TempDir tmp;
  const auto data = tmp.path() / "data";
  const std::string bytes = RandomTree(tmp, 8 << 20, 3);
  const std::string path = std::string(kBuild1) + "/artifacts/web";
  {
    ServerProcess server(ServerArgs(data, {"--agent-port", "0", "--agent-plain"}),
                         tmp.path() / "server1.log");
    auto admin = server.Admin();
    SeedBuild(admin);
    RawConnection c(server.port());
    c.Send(UploadHead(path, bytes.size()));
    c.Send(std::string_view(bytes).substr(0, bytes.size() / 2));
    REQUIRE(WaitFor([&] { return Temporaries(data) == 1; }));
    server.KillHard();
  }
  CHECK(Temporaries(data) == 1);  // what the killed upload left
  ServerProcess server(ServerArgs(data, {"--agent-port", "0", "--agent-plain"}),
                       tmp.path() / "server2.log");
  CHECK(Temporaries(data) == 0);
  CHECK(Blobs(data).empty());
  auto admin = server.Admin();
  CHECK(admin.Get(path).status == 404);
  CHECK(json::parse(admin.Get(kBuild1).body)["artifacts"].empty());
}

TEST_CASE_FIXTURE(SeededServer,
                  "uploads of other bytes that lose the race to record an artifact leave no blob") {
  constexpr int kUploads = 8;
  std::vector<std::string> archives;
  for (int i = 0; i < kUploads; ++i) archives.push_back(RandomTree(dir, 2 << 20, 10 + i));
  std::vector<int> statuses(kUploads);
  std::vector<std::string> bodies(kUploads);
  std::latch start(kUploads);
  std::vector<std::thread> threads;
  for (int i = 0; i < kUploads; ++i)
    threads.emplace_back([&, i] {
      auto c = server.Admin();
      start.arrive_and_wait();
      auto r = c.Put(std::string(kBuild1) + "/artifacts/web", archives[i], "application/gzip");
      statuses[i] = r.status;
      bodies[i] = r.body;
    });
  for (auto& t : threads) t.join();
  int winner = -1;
  for (int i = 0; i < kUploads; ++i) {
    CAPTURE(i);
    CAPTURE(bodies[i]);
    CHECK((statuses[i] == 201 || statuses[i] == 409));
    if (statuses[i] == 201) {
      CHECK(winner == -1);
      winner = i;
    }
  }
  REQUIRE(winner >= 0);
  CHECK(Blobs(server) == std::set<std::string>{Sha256Hex(archives[winner])});
  CHECK(Temporaries(server) == 0);
  CHECK(admin.Get(std::string(kBuild1) + "/artifacts/web").body == archives[winner]);
}

TEST_CASE_FIXTURE(
    SeededServer,
    "a lost race never removes a blob that another build records with the same bytes") {
  const std::string x = RandomTree(dir, 1 << 20, 20);
  const std::string y = RandomTree(dir, 1 << 20, 21);
  for (int round = 0; round < 6; ++round) {
    CAPTURE(round);
    // Builds 2r+2 and 2r+3: X and Y race for the first, X goes to the second too.
    REQUIRE(admin.Post("/api/v1/applications/shop/releases/1.0/builds", "{}").status == 201);
    REQUIRE(admin.Post("/api/v1/applications/shop/releases/1.0/builds", "{}").status == 201);
    const std::string contested =
        "/api/v1/applications/shop/releases/1.0/builds/" + std::to_string(2 * round + 2);
    const std::string shared =
        "/api/v1/applications/shop/releases/1.0/builds/" + std::to_string(2 * round + 3);
    std::latch start(3);
    std::vector<int> statuses(3);
    std::vector<std::thread> threads;
    auto put = [&](int slot, std::string path, const std::string& bytes) {
      threads.emplace_back([&, slot, path, &bytes = bytes] {
        auto c = server.Admin();
        start.arrive_and_wait();
        statuses[slot] = c.Put(path + "/artifacts/web", bytes, "application/gzip").status;
      });
    };
    put(0, contested, x);
    put(1, contested, y);
    put(2, shared, x);
    for (auto& t : threads) t.join();
    CHECK(statuses[0] + statuses[1] == 201 + 409);
    CHECK(statuses[2] == 201);
    // The shared build's artifact is always there, byte for byte.
    CHECK(admin.Get(shared + "/artifacts/web").body == x);
    auto verify = json::parse(admin.Post("/api/v1/admin/verify", "{}").body);
    CHECK(verify["ok"] == true);
    CHECK(verify["missing"].empty());
  }
  CHECK(Temporaries(server) == 0);
}

TEST_CASE_FIXTURE(
    SeededServer,
    "verify reports artifact records whose blob is missing and blobs that are writable") {
  REQUIRE(admin.Post("/api/v1/applications/shop/releases/1.0/builds", "{}").status == 201);
  const std::string one = Archive(dir, {File("a.txt", "one")});
  const std::string two = Archive(dir, {File("a.txt", "two")});
  REQUIRE(admin.Put(std::string(kBuild1) + "/artifacts/web", one, "x").status == 201);
  REQUIRE(
      admin.Put("/api/v1/applications/shop/releases/1.0/builds/2/artifacts/web", two, "x").status ==
      201);
  auto clean = json::parse(admin.Post("/api/v1/admin/verify", "{}").body);
  CHECK(clean["ok"] == true);
  CHECK(clean["records_checked"] == 2);

  const auto blob_path = [&](const std::string& sha) {
    return server.data_dir() / "artifacts" / "sha256" / sha.substr(0, 2) / sha;
  };
  std::filesystem::remove(blob_path(Sha256Hex(one)));
  std::filesystem::permissions(blob_path(Sha256Hex(two)), std::filesystem::perms::owner_write,
                               std::filesystem::perm_options::add);
  auto report = json::parse(admin.Post("/api/v1/admin/verify", "{}").body);
  CHECK(report["ok"] == false);
  REQUIRE(report["missing"].size() == 1);
  CHECK(report["missing"][0]["build"] == 1);
  CHECK(report["missing"][0]["name"] == "web");
  CHECK(report["missing"][0]["sha256"] == Sha256Hex(one));
  REQUIRE(report["wrong_mode"].size() == 1);
  CHECK(report["wrong_mode"][0]["sha256"] == Sha256Hex(two));
  CHECK(report["wrong_mode"][0]["mode"] == "0644");
  CHECK(report["corrupt"].empty());

  // The command line reports the same, changes nothing, and fails.
  server.Stop();
  std::string cmd = (BinDir() / "reprise-server").string() + " --verify --data " +
                    server.data_dir().string() + " > " + (dir.path() / "verify.out").string() +
                    " 2>&1";
  int rc = std::system(cmd.c_str());
  CHECK(WEXITSTATUS(rc) == 1);
  const std::string out = ReadBytes(dir.path() / "verify.out");
  CAPTURE(out);
  CHECK(out.find("MISSING shop/1.0/1/web " + Sha256Hex(one)) != std::string::npos);
  CHECK(out.find("MODE " + Sha256Hex(two) + " 0644") != std::string::npos);
  CHECK(out.find("2 artifact records, 1 missing") != std::string::npos);
  struct stat st;
  REQUIRE(::stat(blob_path(Sha256Hex(two)).c_str(), &st) == 0);
  CHECK((st.st_mode & 07777) == 0644);
}

}  // namespace reprise::testing

// Helpers shared by the artifact API tests: a seeded server, archives,
// the blob store seen from outside, raw connections that stop midway.
// Test-only; not thread-safe beyond what each helper says.
#pragma once

#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <latch>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "common/crypto.h"
#include "tests/agents/deployer/archive_corpus.h"
#include "tests/support/run_binary.h"
#include "tests/support/seed.h"
#include "tests/support/server_process.h"
#include "tests/support/test_server.h"

namespace reprise::testing::artifacts_api {

using nlohmann::json;

inline constexpr const char* kBuild1 = "/api/v1/applications/shop/releases/1.0/builds/1";

inline void SeedBuild(HttpClient& admin) {
  REQUIRE(admin.Put("/api/v1/environments/Integration", "{}").status == 200);
  PutTarget(admin, "int-web", "Integration", "a1", "/srv/int");
  PutApplicationWithRelease(
      admin, "shop",
      "pipeline:\n  - {stage: I, environment: Integration, targets: [int-web], "
      "plan: p}\nplans:\n  p: |\n    - deploy-artifact: { artifact: web }\n");
  REQUIRE(admin.Post("/api/v1/applications/shop/releases/1.0/builds", "{}").status == 201);
}

// A server seeded by SeedBuild, its admin client and a scratch directory.
struct SeededServer {
  SeededServer() { SeedBuild(admin); }
  TestServer server;
  HttpClient admin = server.Admin();
  TempDir dir;
};

inline std::string Archive(const TempDir& dir, const std::vector<RawEntry>& entries,
                           ArchiveKind kind = ArchiveKind::kTarGz) {
  auto path = dir.path() / ("a-" + RandomHex(4));
  WriteArchive(path, kind, entries);
  return ReadBytes(path);
}

inline std::set<std::string> Blobs(const std::filesystem::path& data_dir) {
  std::set<std::string> out;
  auto root = data_dir / "artifacts" / "sha256";
  if (!std::filesystem::exists(root)) return out;
  for (auto& e : std::filesystem::recursive_directory_iterator(root))
    if (e.is_regular_file()) out.insert(e.path().filename().string());
  return out;
}

inline std::set<std::string> Blobs(const TestServer& server) { return Blobs(server.data_dir()); }

inline size_t Temporaries(const std::filesystem::path& data_dir) {
  auto tmp = data_dir / "artifacts" / "tmp";
  if (!std::filesystem::exists(tmp)) return 0;
  return static_cast<size_t>(std::distance(std::filesystem::directory_iterator(tmp),
                                           std::filesystem::directory_iterator()));
}

inline size_t Temporaries(const TestServer& server) { return Temporaries(server.data_dir()); }

// A field of the response's error ("" when it carries none).
inline std::string ErrorField(const HttpResult& r, const char* field) {
  auto j = json::parse(r.body, nullptr, false);
  if (j.is_discarded() || !j.contains("error")) return "";
  return j["error"][field].get<std::string>();
}

inline std::string ErrorMessage(const HttpResult& r) { return ErrorField(r, "message"); }

inline std::string ErrorCode(const HttpResult& r) { return ErrorField(r, "code"); }

// Waits (up to a minute) for `done`; for things another thread finishes.
inline bool WaitFor(const std::function<bool()>& done) {
  return WaitUntil(done, std::chrono::seconds(60));
}

// A plain TCP connection to the server that sends raw bytes, so a test can
// stop in the middle of a request body and drop the connection.
class RawConnection {
 public:
  explicit RawConnection(int port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(fd_ >= 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  }
  ~RawConnection() { Drop(); }
  RawConnection(const RawConnection&) = delete;
  RawConnection& operator=(const RawConnection&) = delete;

  void Send(std::string_view data) {
    while (!data.empty()) {
      ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      REQUIRE(n > 0);
      data.remove_prefix(static_cast<size_t>(n));
    }
  }
  // Everything the server sends until it closes the connection (at most 30 s).
  std::string ReadToEnd() {
    timeval limit{30, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
    std::string out;
    char buf[65536];
    for (int reads = 0; reads < 100000; ++reads) {
      ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) break;
      out.append(buf, static_cast<size_t>(n));
    }
    return out;
  }
  // Closes with a reset, as a killed client's kernel would.
  void Drop() {
    if (fd_ < 0) return;
    linger hard{1, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_LINGER, &hard, sizeof hard);
    ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

inline std::string UploadHead(const std::string& path, size_t length) {
  return "PUT " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " +
         std::string(kAdminToken) +
         "\r\nContent-Type: application/gzip\r\nContent-Length: " + std::to_string(length) +
         "\r\n\r\n";
}

inline std::string RandomTree(const TempDir& dir, size_t bytes, unsigned seed) {
  std::string data;
  data.reserve(bytes);
  uint64_t x = seed * 0x9E3779B97F4A7C15ULL + 1;
  while (data.size() < bytes) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    data.push_back(static_cast<char>(x & 0xff));
  }
  auto path = dir.path() / ("tree-" + std::to_string(seed) + ".tar.gz");
  WriteArchive(path, ArchiveKind::kTarGz,
               {Dir("app"), File("app/data.bin", data), File("app/seed", std::to_string(seed))});
  return ReadBytes(path);
}

}  // namespace reprise::testing::artifacts_api

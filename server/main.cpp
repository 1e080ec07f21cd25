// reprise-server: parses the command line and wires a ServerApp. Nothing else.
#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "planner/version.h"
#include "server/app/server_app.h"
#include "server/catalog/artifact_settings.h"

namespace {

const char* kUsage =
    "usage: reprise-server [--data DIR] [--http HOST:PORT] [--agent-port PORT]\n"
    "                      [--agent-host HOST] [--agent-plain] [--local-agent]\n"
    "                      [--local-agent-root DIR] [--demo] [--verify] [--secure-cookies]\n"
    "                      [--artifact-* / --retention-* ...]\n"
    "  --data DIR         data directory (default ./var)\n"
    "  --http HOST:PORT   HTTP API and UI address (default 127.0.0.1:8080)\n"
    "  --agent-port PORT  port agents connect to (default 8081)\n"
    "  --agent-host HOST  address agents connect to (default 0.0.0.0)\n"
    "  --agent-plain      plain TCP for agents instead of TLS (loopback only)\n"
    "  --local-agent      run an agent inside the server for local targets\n"
    "  --local-agent-root DIR\n"
    "                     local targets must lie under DIR (default DATA/targets)\n"
    "  --demo             seed the demo application 'shop'\n"
    "  --secure-cookies   the UI is reached over HTTPS (TLS proxy): Secure cookies, HSTS\n"
    "  --verify           re-hash every stored artifact, report mismatches, exit\n"
    "The bootstrap admin token is REPRISE_ADMIN_TOKEN, else DIR/admin.token;\n"
    "the admin's web password REPRISE_ADMIN_PASSWORD, else DIR/admin.password.\n";

bool ParsePort(const std::string& s, int& port) {
  if (s.empty() || s.size() > 5) return false;
  port = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    port = port * 10 + (c - '0');
  }
  return port <= 65535;
}

int Fail(const std::string& message) {
  std::fprintf(stderr, "reprise-server: %s\n%s%s", message.c_str(), kUsage,
               reprise::ArtifactFlagsUsage());
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  reprise::ServerOptions options;
  bool verify = false;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto value = [&](const char* name) -> const char* {
      if (i + 1 >= argc) return nullptr;
      (void)name;
      return argv[++i];
    };
    if (arg == "--help" || arg == "-h") {
      std::fputs(kUsage, stdout);
      std::fputs(reprise::ArtifactFlagsUsage(), stdout);
      return 0;
    } else if (arg == "--version") {
      std::printf("reprise-server %s\n", reprise::Version());
      return 0;
    } else if (arg == "--data") {
      const char* v = value("--data");
      if (!v) return Fail("--data needs a directory");
      options.data_dir = v;
    } else if (arg == "--http") {
      const char* v = value("--http");
      std::string hp = v ? v : "";
      size_t colon = hp.rfind(':');
      if (colon == std::string::npos || colon == 0 ||
          !ParsePort(hp.substr(colon + 1), options.http_port))
        return Fail("--http needs HOST:PORT, got '" + hp + "'");
      options.http_host = hp.substr(0, colon);
    } else if (arg == "--agent-port") {
      const char* v = value("--agent-port");
      if (!v || !ParsePort(v, options.agent_port)) return Fail("--agent-port needs a port number");
    } else if (arg == "--agent-host") {
      const char* v = value("--agent-host");
      if (!v) return Fail("--agent-host needs an address");
      options.agent_host = v;
    } else if (arg == "--agent-plain") {
      options.agent_tls = false;
    } else if (arg == "--local-agent") {
      options.local_agent = true;
    } else if (arg == "--local-agent-root") {
      const char* v = value("--local-agent-root");
      if (!v || !*v) return Fail("--local-agent-root needs a directory");
      options.local_agent_root = v;
    } else if (arg == "--verify") {
      verify = true;
    } else if (arg == "--demo") {
      options.demo = true;
    } else if (arg == "--secure-cookies") {
      options.secure_cookies = true;
    } else if (reprise::IsArtifactFlag(arg)) {
      reprise::Status st =
          reprise::ApplyArtifactFlag(arg, value(arg.c_str()), options.archive_limits,
                                     options.max_artifact_bytes, options.retention);
      if (!st.ok()) return Fail(st.message());
    } else {
      return Fail("unknown argument '" + arg + "'");
    }
  }
  if (const char* token = std::getenv("REPRISE_ADMIN_TOKEN")) options.admin_token = token;
  if (const char* password = std::getenv("REPRISE_ADMIN_PASSWORD"))
    options.admin_password = password;

  if (verify) {
    auto report = reprise::VerifyArtifacts(options.data_dir);
    if (!report.ok()) {
      std::fprintf(stderr, "reprise-server: %s\n", report.status().ToString().c_str());
      return 1;
    }
    for (const auto& sha : report->corrupt) std::printf("CORRUPT %s\n", sha.c_str());
    for (const auto& path : report->unexpected) std::printf("UNEXPECTED %s\n", path.c_str());
    for (const auto& blob : report->wrong_mode) std::printf("MODE %s\n", blob.c_str());
    for (const auto& record : report->missing) std::printf("MISSING %s\n", record.c_str());
    std::printf("%llu blobs, %llu bytes checked, %zu corrupt; %llu artifact records, %zu missing\n",
                static_cast<unsigned long long>(report->blobs_checked),
                static_cast<unsigned long long>(report->bytes_checked), report->corrupt.size(),
                static_cast<unsigned long long>(report->records_checked), report->missing.size());
    return report->ok() ? 0 : 1;
  }

  // Block the stop signals in every thread; wait for them here.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  reprise::ServerApp app(options);
  reprise::Status st = app.Start();
  if (!st.ok()) {
    std::fprintf(stderr, "reprise-server: %s\n", st.ToString().c_str());
    return 1;
  }
  int sig = 0;
  sigwait(&stop_signals, &sig);
  std::printf("reprise-server: stopping (signal %d)\n", sig);
  app.Stop();
  return 0;
}

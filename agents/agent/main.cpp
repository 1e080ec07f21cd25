// reprise-agent: the daemon on a target machine. See docs/agents.md.
//
//   reprise-agent --server HOST:PORT --name NAME --root DIR
//                 [--enroll-token T | $REPRISE_ENROLL_TOKEN] [--state DIR]
//                 [--fingerprint SHA256 | --plain] [--heartbeat-ms N] [--no-fsync]
//   reprise-agent --version
#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>

#include "agents/agent/agent_client.h"
#include "planner/version.h"

namespace {

int Usage(const char* why) {
  std::fprintf(stderr,
               "reprise-agent: %s\n"
               "usage: reprise-agent --server HOST:PORT --name NAME --root DIR\n"
               "         [--enroll-token TOKEN] [--state DIR] [--fingerprint SHA256 | --plain]\n"
               "         [--heartbeat-ms N] [--no-fsync] [--quiet]\n"
               "       reprise-agent --version\n",
               why);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  reprise::AgentClientOptions o;
  std::string server;
  if (const char* t = std::getenv("REPRISE_ENROLL_TOKEN")) o.enroll_token = t;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&](const char* name) -> const char* {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "reprise-agent: %s needs a value\n", name);
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--version") {
      std::printf("reprise-agent %s\n", reprise::Version());
      return 0;
    } else if (a == "--server") {
      server = value("--server");
    } else if (a == "--name") {
      o.name = value("--name");
    } else if (a == "--enroll-token") {
      o.enroll_token = value("--enroll-token");
    } else if (a == "--root") {
      o.root = value("--root");
    } else if (a == "--state") {
      o.state_dir = value("--state");
    } else if (a == "--fingerprint") {
      o.fingerprint = value("--fingerprint");
    } else if (a == "--plain") {
      o.tls = false;
    } else if (a == "--heartbeat-ms") {
      o.heartbeat = std::chrono::milliseconds(std::atoll(value("--heartbeat-ms")));
      if (o.heartbeat.count() < 10) return Usage("--heartbeat-ms must be at least 10");
    } else if (a == "--no-fsync") {
      o.fsync = false;
    } else if (a == "--quiet") {
      o.verbose = false;
    } else {
      return Usage(("unknown argument " + a).c_str());
    }
  }
  auto colon = server.rfind(':');
  if (server.empty() || colon == std::string::npos) return Usage("--server HOST:PORT is required");
  o.host = server.substr(0, colon);
  if (o.host.size() > 2 && o.host.front() == '[' && o.host.back() == ']')
    o.host = o.host.substr(1, o.host.size() - 2);
  o.port = std::atoi(server.c_str() + colon + 1);
  if (o.port <= 0 || o.port > 65535) return Usage("bad port in --server");
  if (o.name.empty()) return Usage("--name is required");
  if (o.root.empty()) return Usage("--root is required");

  // SIGINT/SIGTERM stop the agent cleanly; a dedicated thread waits for them.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  ::signal(SIGPIPE, SIG_IGN);

  reprise::AgentClient client(o);
  std::thread waiter([&client, set] {
    int sig = 0;
    sigwait(&set, &sig);
    client.Stop();
  });
  waiter.detach();
  reprise::Status st = client.Run();
  if (!st.ok()) {
    std::fprintf(stderr, "reprise-agent: %s\n", st.ToString().c_str());
    return st.code() == reprise::Code::kInvalidArgument ? 2 : 3;
  }
  return 0;
}

// reprise-agent: the daemon on a target machine. See docs/agents.md.
//
//   reprise-agent --server HOST:PORT[,HOST:PORT...] --name NAME --root DIR
//                 [--enroll-token T | $REPRISE_ENROLL_TOKEN] [--state DIR]
//                 [--fingerprint SHA256 | --plain] [--heartbeat-ms N] [--no-fsync]
//                 [--no-release-watch]
//   reprise-agent --version
#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "agents/agent/agent_client.h"
#include "common/args.h"
#include "common/config_file.h"
#include "common/log.h"
#include "planner/version.h"

namespace {

void PrintUsage(FILE* to) {
  std::fputs(
      "usage: reprise-agent [--config FILE] [--print-config]\n"
      "         --server HOST:PORT[,HOST:PORT...] --name NAME --root DIR\n"
      "         [--enroll-token TOKEN] [--state DIR] [--fingerprint SHA256 | --plain]\n"
      "         [--heartbeat-ms N] [--no-fsync] [--no-release-watch] [--quiet]\n"
      "       reprise-agent --version\n",
      to);
}

int Usage(const char* why) {
  std::fprintf(stderr, "reprise-agent: %s\n", why);
  PrintUsage(stderr);
  return 2;
}

std::vector<reprise::OptionSpec> KnownOptions() {
  using Spec = reprise::OptionSpec;
  return {Spec("help").CommandLineOnly(),
          Spec("version").CommandLineOnly(),
          Spec("config", true).CommandLineOnly(),
          Spec("print-config").CommandLineOnly(),
          Spec("server", true),
          Spec("name", true),
          Spec("enroll-token", true).Secret(),
          Spec("root", true),
          Spec("state", true).Default("ROOT/.reprise/agent"),
          Spec("fingerprint", true),
          Spec("plain"),
          Spec("heartbeat-ms", true).Default("10000"),
          Spec("no-fsync"),
          Spec("no-release-watch"),
          Spec("quiet")};
}

// --server: one HOST:PORT, or several separated by commas (the agent keeps a
// connection to each). An error names the entry that is wrong.
reprise::Result<std::vector<reprise::AgentServerAddress>> ParseServers(const std::string& text) {
  std::vector<reprise::AgentServerAddress> out;
  size_t start = 0;
  for (int n = 1;; ++n) {
    size_t comma = text.find(',', start);
    std::string entry = text.substr(start, comma == std::string::npos ? comma : comma - start);
    std::string what = "--server entry " + std::to_string(n);
    if (entry.empty())
      return reprise::InvalidArgument(what + " is empty (a list is HOST:PORT,HOST:PORT)");
    REPRISE_ASSIGN_OR_RETURN(auto hp, reprise::ParseHostPort(entry, what));
    for (const auto& seen : out)
      if (seen.host == hp.host && seen.port == hp.port)
        return reprise::InvalidArgument(what + " '" + entry + "' is listed twice");
    out.push_back({hp.host, hp.port});
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

// Fills `o` from the parsed flags; an error names the flag.
reprise::Status ApplyFlags(const reprise::ParsedArgs& args, reprise::AgentClientOptions& o) {
  if (!args.positional.empty())
    return reprise::InvalidArgument("unexpected argument '" + args.positional[0] + "'");
  auto server = args.Value("server");
  if (!server) return reprise::InvalidArgument("--server HOST:PORT is required");
  if (server->find(',') == std::string::npos) {
    REPRISE_ASSIGN_OR_RETURN(auto hp, reprise::ParseHostPort(*server, "--server"));
    o.host = hp.host;
    o.port = hp.port;
  } else {
    REPRISE_ASSIGN_OR_RETURN(o.servers, ParseServers(*server));
  }
  o.name = args.Value("name").value_or("");
  if (o.name.empty()) return reprise::InvalidArgument("--name is required");
  o.root = args.Value("root").value_or("");
  if (o.root.empty()) return reprise::InvalidArgument("--root is required");
  if (auto v = args.Value("enroll-token")) o.enroll_token = *v;
  if (auto v = args.Value("state")) o.state_dir = *v;
  if (auto v = args.Value("fingerprint")) o.fingerprint = *v;
  if (auto v = args.Value("heartbeat-ms")) {
    REPRISE_ASSIGN_OR_RETURN(int64_t ms,
                             reprise::ParseInteger(*v, "--heartbeat-ms", 10, 3600 * 1000));
    o.heartbeat = std::chrono::milliseconds(ms);
  }
  if (args.Has("plain")) o.tls = false;
  if (args.Has("no-fsync")) o.fsync = false;
  if (args.Has("no-release-watch")) o.watch_releases = false;
  if (args.Has("quiet")) o.verbose = false;
  return reprise::Status::Ok();
}

}  // namespace

int main(int argc, char** argv) {
  const auto known = KnownOptions();
  auto parsed =
      reprise::ParseCommandLineAndConfig(std::vector<std::string>(argv + 1, argv + argc), known);
  if (!parsed.ok()) return Usage(parsed.status().message().c_str());
  if (parsed->Has("version")) {
    std::printf("reprise-agent %s\n", reprise::Version());
    return 0;
  }
  if (parsed->Has("help")) {
    PrintUsage(stdout);
    return 0;
  }
  reprise::AgentClientOptions o;
  if (const char* t = std::getenv("REPRISE_ENROLL_TOKEN")) o.enroll_token = t;
  if (reprise::Status st = ApplyFlags(*parsed, o); !st.ok()) return Usage(st.message().c_str());
  if (parsed->Has("print-config")) {
    std::fputs(reprise::PrintConfig(*parsed, known).c_str(), stdout);
    return 0;
  }

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
    reprise::log::Error("agent.stopped", {{"agent", o.name}, {"error", st.ToString()}});
    return st.code() == reprise::Code::kInvalidArgument ? 2 : 3;
  }
  return 0;
}

// reprise-server: parses the command line and wires a ServerApp. Nothing else.
#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "common/args.h"
#include "common/config_file.h"
#include "planner/version.h"
#include "server/app/server_app.h"
#include "server/catalog/artifact_settings.h"
#include "server/store/store.h"

namespace {

const char* kUsage =
    "usage: reprise-server [--config FILE] [--print-config]\n"
    "                      [--data DIR] [--store STORE] [--artifact-dir DIR]\n"
    "                      [--http HOST:PORT] [--agent-port PORT]\n"
    "                      [--agent-host HOST] [--agent-plain] [--local-agent]\n"
    "                      [--local-agent-root DIR] [--demo] [--verify] [--secure-cookies]\n"
    "                      [--metrics-public] [--webhook-allow-private]\n"
    "                      [--server-id ID] [--lease-ms N]\n"
    "                      [--artifact-* / --retention-* ...]\n"
    "  --config FILE      read settings from FILE (YAML, keys are these flags without\n"
    "                     '--'; flags on the command line override it)\n"
    "  --print-config     print the effective settings (secrets masked) and exit\n"
    "  --data DIR         data directory (default ./var)\n"
    "  --store STORE      postgresql://USER@HOST/DB (servers sharing one database) or\n"
    "                     sqlite:DIR (default: SQLite in DATA/reprise.db)\n"
    "  --artifact-dir DIR artifact blobs (default DATA/artifacts); servers sharing a\n"
    "                     store share it on a filesystem all of them mount\n"
    "  --http HOST:PORT   HTTP API and UI address (default 127.0.0.1:8080)\n"
    "  --agent-port PORT  port agents connect to (default 8081)\n"
    "  --agent-host HOST  address agents connect to (default 0.0.0.0)\n"
    "  --agent-plain      plain TCP for agents instead of TLS (loopback only)\n"
    "  --local-agent      run an agent inside the server for local targets\n"
    "  --local-agent-root DIR\n"
    "                     local targets must lie under DIR (default DATA/targets)\n"
    "  --demo             seed the demo application 'shop'\n"
    "  --secure-cookies   the UI is reached over HTTPS (TLS proxy): Secure cookies, HSTS\n"
    "  --metrics-public   GET /metrics answers without a token (default: a viewer's)\n"
    "  --webhook-allow-private\n"
    "                     webhooks may target loopback, private and link-local addresses\n"
    "                     (refused by default against server-side request forgery)\n"
    "  --server-id ID     this server's id among several on one store ([A-Za-z0-9._-],\n"
    "                     at most 64; default: made once, kept in DATA/server-id)\n"
    "  --lease-ms N       how long a claim on a deployment holds unrenewed; another\n"
    "                     server takes over a dead one's after it (default 15000)\n"
    "  --verify           re-hash every stored artifact, report mismatches, exit\n"
    "  --migrate-store sqlite:DIR postgresql://…\n"
    "                     copy the SQLite store of data directory DIR into an empty\n"
    "                     PostgreSQL database, then exit (no server may run on DIR)\n"
    "The bootstrap admin token is REPRISE_ADMIN_TOKEN, else DIR/admin.token;\n"
    "the admin's web password REPRISE_ADMIN_PASSWORD, else DIR/admin.password.\n";

int Fail(const std::string& message) {
  std::fprintf(stderr, "reprise-server: %s\n%s%s", message.c_str(), kUsage,
               reprise::ArtifactFlagsUsage());
  return 2;
}

std::vector<reprise::OptionSpec> KnownOptions() {
  using Spec = reprise::OptionSpec;
  std::vector<Spec> known = {
      Spec("help").CommandLineOnly(),
      Spec("version").CommandLineOnly(),
      Spec("config", true).CommandLineOnly(),
      Spec("print-config").CommandLineOnly(),
      Spec("verify").CommandLineOnly(),
      Spec("migrate-store", true).CommandLineOnly(),
      Spec("data", true).Default("./var"),
      Spec("store", true).Default("sqlite:DATA"),
      Spec("artifact-dir", true).Default("DATA/artifacts"),
      Spec("http", true).Default("127.0.0.1:8080"),
      Spec("agent-port", true).Default("8081"),
      Spec("agent-host", true).Default("0.0.0.0"),
      Spec("agent-plain"),
      Spec("local-agent"),
      Spec("local-agent-root", true).Default("DATA/targets"),
      Spec("demo"),
      Spec("secure-cookies"),
      Spec("metrics-public"),
      Spec("webhook-allow-private"),
      Spec("server-id", true),
      Spec("lease-ms", true).Default("15000"),
  };
  for (const auto& [name, default_value] : reprise::ArtifactFlagNames())
    known.push_back(Spec(name, true).Default(default_value));
  return known;
}

// Fills `options` from the parsed flags; an error names the flag.
reprise::Status ApplyFlags(const reprise::ParsedArgs& args, reprise::ServerOptions& options) {
  if (!args.positional.empty() && !args.Has("migrate-store"))
    return reprise::InvalidArgument("unexpected argument '" + args.positional[0] + "'");
  if (auto v = args.Value("store")) {
    REPRISE_RETURN_IF_ERROR(reprise::CheckStoreLocation(*v).WithContext("--store"));
    options.store = *v;
  }
  if (auto v = args.Value("data")) {
    if (v->empty()) return reprise::InvalidArgument("--data needs a directory");
    options.data_dir = *v;
  }
  if (auto v = args.Value("artifact-dir")) {
    if (v->empty()) return reprise::InvalidArgument("--artifact-dir needs a directory");
    options.artifact_dir = *v;
  }
  if (auto v = args.Value("http")) {
    REPRISE_ASSIGN_OR_RETURN(auto hp, reprise::ParseHostPort(*v, "--http", true));
    options.http_host = hp.host;
    options.http_port = hp.port;
  }
  if (auto v = args.Value("agent-port")) {
    REPRISE_ASSIGN_OR_RETURN(options.agent_port, reprise::ParsePort(*v, "--agent-port", true));
  }
  if (auto v = args.Value("agent-host")) {
    if (v->empty()) return reprise::InvalidArgument("--agent-host needs an address");
    options.agent_host = *v;
  }
  if (auto v = args.Value("local-agent-root")) {
    if (v->empty()) return reprise::InvalidArgument("--local-agent-root needs a directory");
    options.local_agent_root = *v;
  }
  options.agent_tls = !args.Has("agent-plain");
  options.local_agent = args.Has("local-agent");
  options.demo = args.Has("demo");
  options.secure_cookies = args.Has("secure-cookies");
  options.metrics_public = args.Has("metrics-public");
  options.webhook_allow_private = args.Has("webhook-allow-private");
  if (auto v = args.Value("server-id")) {
    if (!reprise::IsValidServerId(*v))
      return reprise::InvalidArgument("--server-id '" + *v +
                                      "' is invalid (1 to 64 of [A-Za-z0-9._-])");
    options.server_id = *v;
  }
  if (auto v = args.Value("lease-ms")) {
    REPRISE_ASSIGN_OR_RETURN(int64_t ms, reprise::ParseInteger(*v, "--lease-ms", 300, 3600000));
    options.lease = std::chrono::milliseconds(ms);
  }
  for (const auto& [name, default_value] : reprise::ArtifactFlagNames()) {
    auto v = args.Value(name);
    if (!v) continue;
    REPRISE_RETURN_IF_ERROR(
        reprise::ApplyArtifactFlag("--" + name, v->c_str(), options.archive_limits,
                                   options.max_artifact_bytes, options.retention));
  }
  return reprise::Status::Ok();
}

int Verify(const reprise::ServerOptions& options) {
  auto report = reprise::VerifyArtifacts(options);
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

// --migrate-store FROM TO: TO is the one argument after it.
int MigrateStore(const std::string& from, const std::vector<std::string>& positional) {
  if (positional.size() != 1)
    return Fail("--migrate-store needs sqlite:DIR and then one postgresql:// URL");
  auto done = reprise::MigrateStore(from, positional[0]);
  if (!done.ok()) {
    std::fprintf(stderr, "reprise-server: %s\n", done.status().ToString().c_str());
    return 1;
  }
  std::printf("reprise-server: %s\n", done->c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const auto known = KnownOptions();
  auto parsed =
      reprise::ParseCommandLineAndConfig(std::vector<std::string>(argv + 1, argv + argc), known);
  if (!parsed.ok()) return Fail(parsed.status().message());
  if (parsed->Has("help")) {
    std::fputs(kUsage, stdout);
    std::fputs(reprise::ArtifactFlagsUsage(), stdout);
    return 0;
  }
  if (parsed->Has("version")) {
    std::printf("reprise-server %s\n", reprise::Version());
    return 0;
  }
  reprise::ServerOptions options;
  if (reprise::Status st = ApplyFlags(*parsed, options); !st.ok()) return Fail(st.message());
  if (parsed->Has("print-config")) {
    reprise::ParsedArgs shown = *parsed;  // a store URL's password is not printed
    for (auto& v : shown.options["store"]) v = reprise::RedactStoreLocation(v);
    if (shown.options["store"].empty()) shown.options.erase("store");
    std::fputs(reprise::PrintConfig(shown, known).c_str(), stdout);
    return 0;
  }
  if (auto from = parsed->Value("migrate-store")) return MigrateStore(*from, parsed->positional);
  if (const char* token = std::getenv("REPRISE_ADMIN_TOKEN")) options.admin_token = token;
  if (const char* password = std::getenv("REPRISE_ADMIN_PASSWORD"))
    options.admin_password = password;
  if (parsed->Has("verify")) return Verify(options);

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

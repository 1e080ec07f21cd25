#include "server/app/server_app.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "agents/deployer/archive.h"
#include "common/crypto.h"
#include "common/fs.h"
#include "planner/version.h"
#include "server/api/auth.h"
#include "server/api/http_server.h"
#include "server/api/openapi.h"
#include "server/api/routes.h"
#include "server/api/routes_rollback_records.h"
#include "server/api/routes_stages.h"
#include "server/api/routes_webhooks.h"
#include "server/api/target_validate.h"
#include "server/app/demo.h"
#include "server/artifacts/blob_store.h"
#include "server/artifacts/file_index.h"
#include "server/catalog/artifact_verify.h"
#include "server/catalog/catalog.h"
#include "server/engine/engine.h"
#include "server/events/event_bus.h"
#include "server/hub/agent_hub.h"
#include "server/metrics/metrics.h"
#include "server/rollback/rollback_records.h"
#include "server/store/store.h"
#include "server/store/store_copy.h"
#include "server/web/web_ui.h"
#include "server/webhooks/webhooks.h"

namespace reprise {

using RouteInfo = ServerApp::RouteInfo;

namespace {

// An upload's temporary file is rewritten as its bytes arrive; one untouched
// this long belongs to an upload that was killed.
constexpr std::chrono::seconds kAbandonedUploadAge = std::chrono::hours(1);

// An exclusive flock on DATA/lock, held while the server runs (released when
// the process ends, however it ends): two servers on one data directory
// would run the same deployments twice and race on the same files.
class DataDirLock {
 public:
  DataDirLock() = default;
  DataDirLock(const DataDirLock&) = delete;
  DataDirLock& operator=(const DataDirLock&) = delete;
  ~DataDirLock() {
    if (fd_ >= 0) ::close(fd_);
  }

  Status Acquire(const std::filesystem::path& data_dir) {
    const std::filesystem::path path = data_dir / "lock";
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) return IoError("cannot open " + path.string() + ": " + std::strerror(errno));
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
      const int err = errno;
      char pid[32] = {0};
      ssize_t n = ::pread(fd, pid, sizeof pid - 1, 0);
      ::close(fd);
      if (err != EWOULDBLOCK)
        return IoError("cannot lock " + path.string() + ": " + std::strerror(err));
      std::string holder = n > 0 ? std::string(pid, static_cast<size_t>(n)) : "";
      while (!holder.empty() && (holder.back() == '\n' || holder.back() == ' ')) holder.pop_back();
      return FailedPrecondition("data directory " + data_dir.string() + " is in use by pid " +
                                (holder.empty() ? "unknown" : holder));
    }
    const std::string pid = std::to_string(::getpid()) + "\n";
    if (::ftruncate(fd, 0) != 0 ||
        ::pwrite(fd, pid.data(), pid.size(), 0) != static_cast<ssize_t>(pid.size())) {
      const int err = errno;
      ::close(fd);
      return IoError("cannot write " + path.string() + ": " + std::strerror(err));
    }
    fd_ = fd;
    return Status::Ok();
  }

 private:
  int fd_ = -1;
};

// The server id kept in DATA/server-id; made on first start from the host
// name (for people reading logs) and random hex (unique among servers).
Result<std::string> KeptServerId(const std::filesystem::path& data_dir) {
  const std::filesystem::path path = data_dir / "server-id";
  if (auto kept = ReadFileToString(path); kept.ok()) {
    std::string id = *kept;
    while (!id.empty() && (id.back() == '\n' || id.back() == ' ')) id.pop_back();
    if (IsValidServerId(id)) return id;
    return FailedPrecondition(path.string() + " does not hold a valid server id");
  }
  char host[256] = {0};
  std::string name = ::gethostname(host, sizeof host - 1) == 0 ? host : "server";
  for (char& c : name)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '.') c = '-';
  std::string id = name.substr(0, 40) + "-" + RandomHex(4);
  REPRISE_RETURN_IF_ERROR(WriteFileAtomic(path, id + "\n", 0600));
  return id;
}

// Names this server's uploads in a shared artifact directory: the same
// after a restart, different for every host and data directory.
std::string UploadOwner(const std::filesystem::path& data_dir) {
  char host[256] = {0};
  if (::gethostname(host, sizeof host - 1) != 0) host[0] = '\0';
  std::error_code ec;
  auto where = std::filesystem::weakly_canonical(std::filesystem::absolute(data_dir), ec);
  if (ec) where = data_dir;
  return Sha256Hex(std::string(host) + '\n' + where.string()).substr(0, 16);
}

std::string StoreLocation(const ServerOptions& o) {
  return o.store.empty() ? SqliteStoreLocation(o.data_dir) : o.store;
}

}  // namespace

bool IsValidServerId(std::string_view id) {
  if (id.empty() || id.size() > 64) return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_';
  });
}

struct ServerApp::Impl {
  DataDirLock data_lock;  // first member: released after everything else is gone
  ServerOptions options;
  std::unique_ptr<Store> store;
  // After the store (it writes deliveries there), before everything that
  // publishes: destroyed after them.
  std::unique_ptr<EventBus> events;
  std::unique_ptr<WebhookService> webhooks;
  std::unique_ptr<Metrics> metrics = std::make_unique<Metrics>();
  std::unique_ptr<BlobStore> blobs;
  std::unique_ptr<FileIndex> files;  // derived from blobs; used by the catalog and the hub
  ArchiveLimits archive_limits;
  std::unique_ptr<Catalog> catalog;
  std::unique_ptr<AgentHub> hub;
  std::unique_ptr<DeploymentEngine> engine;
  std::unique_ptr<RollbackRecords> rollback_records;
  std::atomic<DeploymentEngine*> progress_sink{nullptr};
  std::unique_ptr<WebUi> web;
  std::unique_ptr<HttpServer> http;
  ApiContext api;
  std::filesystem::path token_file;
  std::string server_id;  // --server-id, or the one kept in DATA/server-id
  std::vector<RouteInfo> route_table;

  // The steps of ServerApp::Start, in order.
  Status OpenData(std::string* password_file);
  Status StartHub();
  Status StartEngine();
  Status StartHttp();
  void PrintBanner(const std::string& password_file);
};

ServerApp::ServerApp(ServerOptions options) : impl_(std::make_unique<Impl>()) {
  impl_->options = std::move(options);
  if (impl_->options.clock == nullptr) impl_->options.clock = &SystemClock::Instance();
}

ServerApp::~ServerApp() { Stop(); }

Status ServerApp::Start() {
  Impl& im = *impl_;
  std::string password_file;
  REPRISE_RETURN_IF_ERROR(im.OpenData(&password_file));
  REPRISE_RETURN_IF_ERROR(im.StartHub());
  REPRISE_RETURN_IF_ERROR(im.StartEngine());
  REPRISE_RETURN_IF_ERROR(im.StartHttp());
  if (!im.options.quiet) im.PrintBanner(password_file);
  return Status::Ok();
}

// The data directory (locked), the store, the bootstrap admin, the blob
// store and the catalog (with the demo when asked).
Status ServerApp::Impl::OpenData(std::string* password_file) {
  auto& o = options;
  std::error_code ec;
  std::filesystem::create_directories(o.data_dir, ec);
  if (ec)
    return IoError("cannot create data directory " + o.data_dir.string() + ": " + ec.message());
  ::chmod(o.data_dir.c_str(), 0700);  // tokens and secrets live here
  REPRISE_RETURN_IF_ERROR(data_lock.Acquire(o.data_dir));
  auto id = o.server_id.empty() ? KeptServerId(o.data_dir) : Result<std::string>(o.server_id);
  if (!id.ok()) return id.status();
  server_id = *id;

  auto opened = OpenStore(StoreLocation(o));
  if (!opened.ok()) return opened.status();
  store = std::move(opened).value();
  events = std::make_unique<EventBus>(*o.clock);
  WebhookServiceOptions webhook_options;
  webhook_options.store = store.get();
  webhook_options.events = events.get();
  webhook_options.clock = o.clock;
  webhook_options.allow_private = o.webhook_allow_private;
  webhook_options.first_retry = o.webhook_first_retry;
  webhook_options.max_retry = o.webhook_max_retry;
  webhook_options.give_up_after = o.webhook_give_up_after;
  // One server of the store delivers at a time (a named lease, held well
  // past the longest attempt so it cannot lapse during one).
  webhook_options.may_deliver = [st = store.get(), clock = o.clock, id = server_id,
                                 hold = std::max<int64_t>(o.lease.count(), 60000)] {
    int64_t now = ToUnixMillis(clock->Now());
    auto mine = st->TryTakeLease("webhook-delivery", id, now, now + hold);
    return mine.ok() && *mine;
  };
  webhooks = std::make_unique<WebhookService>(webhook_options);
  webhooks->Start();  // deliveries left pending before a restart go out now

  auto boot = EnsureBootstrapAdmin(*store, *o.clock, o.data_dir, o.admin_token, o.admin_password);
  if (!boot.ok()) return boot.status().WithContext("bootstrap admin");
  token_file = boot->token_file;
  *password_file = boot->password_file.string();

  auto opened_blobs = BlobStore::Open(
      ArtifactDir(o), BlobStoreOptions{o.max_artifact_bytes, true, UploadOwner(o.data_dir)});
  if (!opened_blobs.ok()) return opened_blobs.status();
  blobs = std::move(opened_blobs).value();
  // Uploads killed midway leave temporaries: nothing visible refers to them.
  // This server's go at once; another server sharing the directory may be in
  // the middle of one of its own, so its go only when abandoned.
  auto cleaned = blobs->CleanTemporariesAtStart(kAbandonedUploadAge);
  if (!cleaned.ok()) return cleaned.status();

  archive_limits = o.archive_limits;
  auto opened_files = FileIndex::Open(*blobs, o.archive_limits);
  if (!opened_files.ok()) return opened_files.status();
  files = std::move(opened_files).value();
  catalog =
      std::make_unique<Catalog>(CatalogOptions{store.get(), blobs.get(), o.clock, files.get()});
  if (o.demo) REPRISE_RETURN_IF_ERROR(SeedDemo(*catalog, o.data_dir).WithContext("demo"));
  return Status::Ok();
}

Status ServerApp::Impl::StartHub() {
  auto& o = options;
  AgentHubOptions hub_options;
  hub_options.store = store.get();
  hub_options.blobs = blobs.get();
  hub_options.files = files.get();
  hub_options.clock = o.clock;
  hub_options.host = o.agent_host;
  hub_options.port = o.agent_port;
  hub_options.data_dir = o.data_dir;
  hub_options.tls = o.agent_tls;
  hub_options.local_agent = o.local_agent;
  // The local agent runs with the server's rights: without a root of its own
  // a target could name any directory the server can write (its database,
  // its keys).
  if (o.local_agent) {
    std::error_code ec;
    std::filesystem::path root = o.local_agent_root.empty()
                                     ? std::filesystem::absolute(o.data_dir) / "targets"
                                     : std::filesystem::absolute(o.local_agent_root);
    std::filesystem::create_directories(root, ec);
    if (ec)
      return IoError("cannot create the local agent's root " + root.string() + ": " + ec.message());
    hub_options.local_agent_root = root;
  }
  hub_options.fsync = o.fsync;
  hub_options.events = events.get();
  hub_options.archive_limits = o.archive_limits;
  Impl* self = this;
  hub_options.on_progress = [self](const std::string& target, const TransferProgress& p) {
    if (DeploymentEngine* e = self->progress_sink.load()) e->ReportProgress(target, p);
  };
  auto started = AgentHub::Start(std::move(hub_options));
  if (!started.ok()) return started.status().WithContext("agent hub");
  hub = std::move(started).value();
  return Status::Ok();
}

// The engine reaches agents through the hub (its AgentPort).
Status ServerApp::Impl::StartEngine() {
  auto& o = options;
  EngineOptions engine_options;
  engine_options.store = store.get();
  engine_options.agents = hub.get();
  engine_options.clock = o.clock;
  engine_options.workers = o.engine_workers;
  engine_options.metrics = metrics.get();
  engine_options.events = events.get();
  engine_options.server_id = server_id;
  engine_options.lease = o.lease;
  engine_options.lease_renew = o.lease / 3;
  auto started = DeploymentEngine::Start(engine_options);
  if (!started.ok()) return started.status().WithContext("deployment engine");
  engine = std::move(started).value();
  progress_sink = engine.get();
  if (o.demo && o.local_agent)
    REPRISE_RETURN_IF_ERROR(SeedDemoDeployments(*catalog, *engine).WithContext("demo"));
  return Status::Ok();
}

// The API, the web UI and the agents' routes behind one HTTP server.
Status ServerApp::Impl::StartHttp() {
  auto& o = options;
  api = ApiContext{store.get(),     catalog.get(),        blobs.get(), o.clock,
                   &archive_limits, o.max_artifact_bytes, engine.get()};
  api.retention_defaults = &o.retention;
  api.metrics = metrics.get();
  api.metrics_public = o.metrics_public;
  metrics->AddSource(StoreMetricsSource(*store));
  metrics->AddSource(AgentMetricsSource(*hub));
  metrics->AddSource(ServerInfoMetricsSource(server_id));
  HttpServerOptions http_options;
  http_options.host = o.http_host;
  http_options.port = o.http_port;
  http_options.max_json_body = o.max_json_body;
  http_options.metrics = metrics.get();
  http_options.max_upload_body =
      o.max_artifact_bytes == 0 ? (int64_t{1} << 40) : static_cast<int64_t>(o.max_artifact_bytes);
  web = std::make_unique<WebUi>(WebUiOptions{store.get(), o.clock, o.secure_cookies});
  Store* st = store.get();
  WebUi* ui = web.get();
  // API clients send a Bearer token; the browser UI sends its session cookie.
  const Clock* clock = o.clock;
  http_options.authenticate = [st, ui, clock](const HttpRequest& req) {
    if (req.Header("authorization")) return AuthenticateBearer(*st, *clock, req);
    return ui->AuthenticateSession(req);
  };
  http_options.static_files = [ui](const HttpRequest& req) { return ui->ServeStatic(req); };
  auto& routes = http_options.routes;
  routes = ApiRoutes(api);
  for (auto& route : ui->Routes()) routes.push_back(std::move(route));
  for (auto& route : hub->Routes()) routes.push_back(std::move(route));
  for (auto& route : TargetValidateRoutes(*hub, *store, *o.clock))
    routes.push_back(std::move(route));
  for (auto& route : StageRoutes(*hub, *store, *o.clock)) routes.push_back(std::move(route));
  rollback_records =
      std::make_unique<RollbackRecords>(*store, *hub, *blobs, *engine, *o.clock, events.get());
  for (auto& route : RollbackRecordRoutes(*rollback_records, *store))
    routes.push_back(std::move(route));
  for (auto& route : WebhookRoutes(*store, *webhooks, *o.clock)) routes.push_back(std::move(route));
  AddOpenApiRoute(routes, Version());  // last: it describes every route above
  route_table.clear();
  for (const auto& r : routes)
    route_table.push_back({r.method, r.pattern, static_cast<int>(r.min_role), r.public_route});
  http = std::make_unique<HttpServer>(std::move(http_options));
  return http->Start();
}

// What tests and operators read on standard output; keep the wording.
void ServerApp::Impl::PrintBanner(const std::string& password_file) {
  auto& o = options;
  std::printf("reprise-server listening on http://%s:%d\n", o.http_host.c_str(), http->port());
  if (!token_file.empty())
    std::printf("admin API token: %s\n", token_file.c_str());
  else
    std::printf("admin API token: from REPRISE_ADMIN_TOKEN\n");
  if (hub->port() > 0)
    std::printf("agents connect to port %d (certificate sha256 %s)\n", hub->port(),
                hub->cert_fingerprint().c_str());
  if (!password_file.empty()) std::printf("admin web password: %s\n", password_file.c_str());
  std::printf("server id: %s\n", engine->ServerId().c_str());
  std::fflush(stdout);
}

void ServerApp::Stop() {
  if (!impl_) return;
  // End live streams, stop taking requests, then stop deployments, then the
  // agent channel.
  if (impl_->engine) impl_->engine->BeginShutdown();
  if (impl_->http) impl_->http->Stop();
  impl_->progress_sink = nullptr;
  if (impl_->engine) impl_->engine->Stop();
  if (impl_->hub) impl_->hub->Stop();
  // What was published until now is queued as deliveries, then the worker
  // stops (pending deliveries stay in the store for the next start).
  if (impl_->events) impl_->events->Stop();
  if (impl_->webhooks) impl_->webhooks->Stop();
}

int ServerApp::agent_port() const { return impl_->hub ? impl_->hub->port() : 0; }

std::string ServerApp::agent_cert_fingerprint() const {
  return impl_->hub ? impl_->hub->cert_fingerprint() : std::string();
}

std::filesystem::path ArtifactDir(const ServerOptions& options) {
  return options.artifact_dir.empty() ? options.data_dir / "artifacts" : options.artifact_dir;
}

Result<VerifySummary> VerifyArtifacts(const ServerOptions& options) {
  const std::filesystem::path& data_dir = options.data_dir;
  auto blobs = BlobStore::Open(ArtifactDir(options));
  if (!blobs.ok()) return blobs.status();
  VerifySummary out;
  VerifyReport report;
  std::error_code ec;
  if (IsPostgresUrl(StoreLocation(options)) ||
      std::filesystem::exists(data_dir / "reprise.db", ec)) {
    auto store = OpenStore(StoreLocation(options));
    if (!store.ok()) return store.status();
    auto full = VerifyArtifactStore(**store, **blobs);
    if (!full.ok()) return full.status();
    report = std::move(full->blobs);
    out.records_checked = full->records_checked;
    for (const auto& m : full->missing) out.missing.push_back(m.Subject() + " " + m.sha256);
  } else {
    auto only_blobs = (*blobs)->VerifyAll();
    if (!only_blobs.ok()) return only_blobs.status();
    report = std::move(only_blobs).value();
  }
  out.blobs_checked = report.blobs_checked;
  out.bytes_checked = report.bytes_checked;
  out.corrupt = report.corrupt;
  out.unexpected = report.unexpected;
  for (const auto& w : report.wrong_mode) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", w.mode);
    out.wrong_mode.push_back(w.sha256 + " " + mode);
  }
  return out;
}

Result<std::string> MigrateStore(const std::string& from, const std::string& to) {
  constexpr std::string_view kSqlite = "sqlite:";
  if (from.rfind(kSqlite, 0) != 0 || from.size() == kSqlite.size())
    return InvalidArgument("--migrate-store copies from sqlite:DIR (a data directory), not '" +
                           RedactStoreLocation(from) + "'");
  if (!IsPostgresUrl(to))
    return InvalidArgument("--migrate-store copies into a postgresql:// database, not '" +
                           RedactStoreLocation(to) + "'");
  const std::filesystem::path data_dir = from.substr(kSqlite.size());
  if (!std::filesystem::is_directory(data_dir))
    return NotFound("no data directory " + data_dir.string());
  DataDirLock lock;  // no server writes the source meanwhile
  REPRISE_RETURN_IF_ERROR(lock.Acquire(data_dir));
  auto copied = CopySqliteStoreToPostgres(data_dir / "reprise.db", to);
  if (!copied.ok()) return copied.status();
  return "copied " + std::to_string(copied->rows) + " rows of " + std::to_string(copied->tables) +
         " tables from " + from + " into " + RedactStoreLocation(to);
}

std::vector<ServerApp::RouteInfo> ServerApp::Routes() const { return impl_->route_table; }

int ServerApp::http_port() const { return impl_->http ? impl_->http->port() : 0; }

std::filesystem::path ServerApp::admin_token_file() const { return impl_->token_file; }

}  // namespace reprise

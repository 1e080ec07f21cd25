// AgentHub's start and stop, the agent list, approval and enrollment tokens,
// and the hub's own log and audit lines. The rest of the hub is in the files
// listed in agent_hub_internal.h.
#include "server/hub/agent_hub.h"

#include "common/crypto.h"
#include "common/fs.h"
#include "common/log.h"
#include "planner/version.h"
#include "server/hub/agent_hub_internal.h"

namespace reprise {

using namespace hub_internal;

void AgentHub::Impl::Log(log::Level level, std::string_view event,
                         std::initializer_list<log::Field> fields) {
  if (o.log) {
    o.log(log::Format(level, event, fields));
  } else {
    log::Write(level, event, fields);
  }
}

void AgentHub::Impl::Audit(const std::string& actor, const std::string& action,
                           const std::string& subject, const std::string& summary) {
  Status st = o.store->AppendAudit(AuditOf(actor, action, subject, summary));
  if (!st.ok())
    Log(log::Level::kError, "hub.audit-failed", {{"action", action}, {"error", st.message()}});
}

AgentHub::AgentHub() : impl_(std::make_shared<Impl>()) {}

AgentHub::~AgentHub() { Stop(); }

Result<std::unique_ptr<AgentHub>> AgentHub::Start(AgentHubOptions options) {
  if (options.store == nullptr) return InvalidArgument("the agent hub needs a store");
  std::unique_ptr<AgentHub> hub(new AgentHub());
  Impl& im = *hub->impl_;
  im.o = std::move(options);
  im.clock = im.o.clock ? im.o.clock : &SystemClock::Instance();
  im.default_ops = std::make_unique<Impl::HubOps>(&im, im.DeployLabelFor("", ""));
  if (im.o.local_agent) {
    im.local_runner =
        std::make_unique<AgentRunner>(RunnerOptions{im.o.local_agent_root, im.o.fsync, {}, 2000});
  }
  if (im.o.port >= 0) {
    if (!im.o.tls && !protocol::IsLoopbackHost(im.o.host)) {
      return InvalidArgument("plain TCP for agents is only allowed on loopback; enable TLS");
    }
    if (im.o.tls) {
      if (im.o.data_dir.empty()) return InvalidArgument("TLS needs a data directory");
      REPRISE_ASSIGN_OR_RETURN(auto files,
                               protocol::LoadOrCreateServerCert(im.o.data_dir.string()));
      im.fingerprint = files.fingerprint;
      try {
        im.ssl = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_server);
        im.ssl->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_tlsv1 |
                            asio::ssl::context::no_tlsv1_1 | asio::ssl::context::no_sslv2 |
                            asio::ssl::context::no_sslv3);
        im.ssl->use_certificate_chain_file(files.cert_path);
        im.ssl->use_private_key_file(files.key_path, asio::ssl::context::pem);
      } catch (const std::exception& e) {
        return Internal(std::string("TLS setup failed: ") + e.what());
      }
    }
    try {
      tcp::endpoint ep(asio::ip::make_address(im.o.host == "localhost" ? "127.0.0.1" : im.o.host),
                       static_cast<unsigned short>(im.o.port));
      im.acceptor = std::make_unique<tcp::acceptor>(im.io);
      im.acceptor->open(ep.protocol());
      SetCloseOnExec(im.acceptor->native_handle());  // Asio opens without SOCK_CLOEXEC
      im.acceptor->set_option(tcp::acceptor::reuse_address(true));
      im.acceptor->bind(ep);
      im.acceptor->listen(asio::socket_base::max_listen_connections);
      im.port = im.acceptor->local_endpoint().port();
    } catch (const std::exception& e) {
      return Unavailable("cannot listen for agents on " + im.o.host + ":" +
                         std::to_string(im.o.port) + ": " + e.what());
    }
    im.Accept();
  }
  im.sweep = std::make_unique<asio::steady_timer>(im.io);
  im.Sweep();
  im.work.emplace(asio::make_work_guard(im.io));
  im.thread = std::thread([&im] { im.io.run(); });
  return hub;
}

int AgentHub::port() const { return impl_->port; }
std::string AgentHub::cert_fingerprint() const { return impl_->fingerprint; }

void AgentHub::Stop() {
  Impl& im = *impl_;
  if (im.stopped || !im.thread.joinable()) return;
  asio::post(im.io, [&im] {
    im.stopped = true;
    boost::system::error_code ec;
    if (im.acceptor) im.acceptor->close(ec);
    if (im.sweep) im.sweep->cancel();
    std::vector<std::shared_ptr<Conn>> all;
    {
      std::lock_guard<std::mutex> g(im.mu);
      for (auto& [id, c] : im.conns) all.push_back(c);
    }
    for (auto& c : all) c->ch->Close("server stopping", /*flush=*/false);
    im.work.reset();
  });
  im.thread.join();
  std::lock_guard<std::mutex> g(im.mu);
  for (auto& [id, op] : im.ops) {
    std::lock_guard<std::mutex> g2(op->m);
    op->lost = true;
    op->cv.notify_all();
  }
  for (auto& [id, r] : im.reqs) {
    std::lock_guard<std::mutex> g2(r->m);
    r->lost = true;
    r->cv.notify_all();
  }
  im.conns.clear();
  im.online.clear();
}

std::vector<AgentStatus> AgentHub::Agents() {
  Impl& im = *impl_;
  std::vector<AgentStatus> out;
  std::map<std::string, std::vector<std::string>> targets;
  for (int64_t off = 0;; off += 1000) {
    auto page = im.o.store->ListTargets(Page{1000, off});
    if (!page.ok()) break;
    for (const auto& t : *page) targets[t.agent].push_back(t.name);
    if (page->size() < 1000) break;
  }
  if (im.o.local_agent) {
    AgentStatus a;
    a.name = kLocalAgent;
    a.status = "online";
    a.approved = a.online = true;
    a.version = Version();
    a.last_seen = im.NowMs();
    a.targets = targets[kLocalAgent];
    out.push_back(a);
  }
  for (int64_t off = 0;; off += 1000) {
    auto page = im.o.store->ListAgents(Page{1000, off});
    if (!page.ok()) break;
    for (const auto& r : *page) {
      AgentStatus a;
      a.name = r.name;
      a.approved = r.status == "approved";
      a.version = r.version;
      a.last_seen = r.last_seen;
      a.key_fingerprint = r.key_fingerprint;
      a.targets = targets[r.name];
      {
        std::lock_guard<std::mutex> g(im.mu);
        auto it = im.online.find(r.name);
        if (it != im.online.end()) {
          a.online = true;
          a.address = it->second->address;
          a.last_seen = im.NowMs();
          a.approved = it->second->approved || a.approved;
        }
      }
      a.status = r.status == "refused" ? "refused"
                 : !a.approved         ? "pending"
                 : a.online            ? "online"
                                       : "offline";
      out.push_back(a);
    }
    if (page->size() < 1000) break;
  }
  return out;
}

Status AgentHub::Approve(const std::string& name, const std::string& actor) {
  Impl& im = *impl_;
  std::unique_lock<std::mutex> rg(im.records_mu);
  REPRISE_ASSIGN_OR_RETURN(AgentRecord rec, im.o.store->GetAgent(name));
  if (rec.status != "approved") {
    rec.status = "approved";
    Store& store = *im.o.store;
    REPRISE_RETURN_IF_ERROR(store.Atomically([&] {
      REPRISE_RETURN_IF_ERROR(store.PutAgent(rec));
      return store.AppendAudit(
          im.AuditOf(actor, "agent.approve", name,
                     "approved agent with key " + rec.key_fingerprint.substr(0, 16)));
    }));
  }
  rg.unlock();
  std::shared_ptr<Conn> c;
  {
    std::lock_guard<std::mutex> g(im.mu);
    auto it = im.online.find(name);
    if (it != im.online.end()) {
      c = it->second;
      c->approved = true;
    }
  }
  if (c) {
    Impl::SendControl(c, im.WelcomeOf(true));
    Impl* p = &im;
    asio::post(im.io, [p, c] { p->RefreshStates(c); });
  }
  return Status::Ok();
}

Result<std::string> AgentHub::CreateEnrollToken(bool pre_approved, std::chrono::seconds expires_in,
                                                const std::string& actor) {
  Impl& im = *impl_;
  if (expires_in.count() < 1 || expires_in.count() > 30LL * 24 * 3600) {
    return InvalidArgument("expires_in_seconds must be between 1 and 2592000 (30 days)");
  }
  std::string token = "rpe_" + RandomHex(24);
  EnrollTokenRecord r;
  r.token_hash = Sha256Hex(token);
  r.pre_approved = pre_approved;
  r.created_by = actor;
  r.created_at = im.NowMs();
  r.expires_at = r.created_at + expires_in.count() * 1000;
  Store& store = *im.o.store;
  REPRISE_RETURN_IF_ERROR(store.Atomically([&] {
    REPRISE_RETURN_IF_ERROR(store.CreateEnrollToken(r));
    return store.AppendAudit(
        im.AuditOf(actor, "agent.enroll_token.create", "",
                   std::string(pre_approved ? "pre-approved" : "needs approval") + ", expires " +
                       FormatRfc3339Utc(FromUnixMillis(r.expires_at))));
  }));
  return token;
}

}  // namespace reprise

#include "agents/agent/agent_client.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <condition_variable>
#include <cstdio>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <thread>
#include <vector>

#include "agents/agent/agent_session.h"
#include "agents/agent/blob_fetch.h"
#include "agents/agent/runner.h"
#include "agents/protocol/channel.h"
#include "agents/protocol/messages.h"
#include "common/crypto.h"
#include "common/enum_names.h"
#include "common/fs.h"
#include "common/log.h"
#include "planner/version.h"

namespace reprise {
namespace agent_internal {

void Session::Send(const protocol::Message& message, std::string payload) {
  (void)ch->Send(protocol::Encode(message), std::move(payload));
}

void Session::HoldReads() { ch->HoldReads(); }

void Session::ReleaseReads() { ch->ReleaseReads(); }

void Session::SendError(uint64_t req, const Status& st) {
  Send(protocol::Reply{req, false, false, st.code(), st.message()});
}

void Session::SendReply(uint64_t req, std::string_view body) {
  const auto parts = protocol::SplitPayload(body);
  for (size_t i = 0; i < parts.size(); ++i) {
    Send(protocol::Reply{req, true, i + 1 < parts.size(), Code::kOk, ""}, std::string(parts[i]));
  }
}

// One server of the agent's list: its address, its current connection and
// its own reconnect loop. Touched only on the io_context thread (and by
// Stop's handler there).
struct Link {
  Link(protocol::asio::io_context& io, std::string h, int p,
       std::chrono::milliseconds initial_backoff)
      : host(std::move(h)), port(p), reconnect_timer(io), backoff(initial_backoff) {}
  std::string host;
  int port = 0;
  std::string label() const {
    return (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" +
           std::to_string(port);
  }
  std::shared_ptr<Session> session;
  protocol::asio::steady_timer reconnect_timer;
  std::chrono::milliseconds backoff;
  std::string pinned;                      // the certificate SHA-256 this server must show
  std::filesystem::path fingerprint_file;  // where a certificate pinned on first use is kept
};

}  // namespace agent_internal

using namespace agent_internal;

namespace {

namespace fs = std::filesystem;
using protocol::Channel;
using protocol::MessageType;
using Steady = std::chrono::steady_clock;
namespace asio = protocol::asio;

// An operation's outcome as the result message names it.
constexpr EnumName<OperationOutcome::Kind> kOutcomeKindNames[] = {
    {OperationOutcome::Kind::kSucceeded, "succeeded"},
    {OperationOutcome::Kind::kFailed, "failed"},
    {OperationOutcome::Kind::kError, "error"},
};

// A server's HOST:PORT as a file name: anything but [A-Za-z0-9.-] becomes '-'.
std::string SafeFileName(std::string text) {
  for (char& c : text)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '-') c = '-';
  return text;
}

// Log lines and result messages stay far below the frame limits, so that
// sending them can never fail; the rare longer text is cut.
std::string BoundedText(std::string_view text) {
  constexpr size_t kMax = 256u << 10;
  if (text.size() <= kMax) return std::string(text);
  return std::string(text.substr(0, kMax)) + "... (" + std::to_string(text.size() - kMax) +
         " more bytes not shown)";
}

}  // namespace

struct AgentClient::Impl : std::enable_shared_from_this<AgentClient::Impl> {
  explicit Impl(AgentClientOptions opts)
      : o(std::move(opts)),
        runner(RunnerOptions{o.root, o.fsync, {}, 2000, o.watch_releases}),
        heartbeat_timer(io),
        rng(std::random_device{}()) {
    if (o.servers.empty()) o.servers.push_back({o.host, o.port});
    for (const auto& server : o.servers)
      links.push_back(std::make_unique<Link>(io, server.host, server.port, o.backoff_min));
  }

  AgentClientOptions o;
  asio::io_context io;
  std::unique_ptr<asio::ssl::context> ssl;
  // One for every server: operations from any of them share its per-root locks.
  AgentRunner runner;
  std::optional<protocol::Identity> id;
  std::vector<std::unique_ptr<Link>> links;
  asio::steady_timer heartbeat_timer;
  std::mt19937 rng;
  Status final_status;
  std::atomic<bool> stopping{false};
  struct Worker {
    std::thread thread;
    std::shared_ptr<std::atomic<bool>> done;
  };
  std::mutex threads_mu;
  std::vector<Worker> threads;

  // A connection event on stderr (common/log.h), with this agent's name;
  // none with --quiet.
  void Event(log::Level level, std::string_view event, std::optional<log::Field> a = {},
             std::optional<log::Field> b = {}) {
    if (!o.verbose) return;
    if (a && b) return log::Write(level, event, {{"agent", o.name}, *a, *b});
    if (a) return log::Write(level, event, {{"agent", o.name}, *a});
    log::Write(level, event, {{"agent", o.name}});
  }
  // The same about one server's connection (named in the line).
  void Event(log::Level level, std::string_view event, const Link& link,
             std::optional<log::Field> a = {}) {
    Event(level, event, log::Field("server", link.label()), std::move(a));
  }

  // Runs `fn` on its own thread; threads that finished are joined here, so a
  // long-running agent does not accumulate them.
  void Spawn(std::function<void()> fn) {
    std::lock_guard<std::mutex> g(threads_mu);
    for (auto it = threads.begin(); it != threads.end();) {
      if (it->done->load()) {
        it->thread.join();
        it = threads.erase(it);
      } else {
        ++it;
      }
    }
    auto done = std::make_shared<std::atomic<bool>>(false);
    threads.push_back({std::thread([fn = std::move(fn), done] {
                         fn();
                         done->store(true);
                       }),
                       done});
  }

  void ScheduleReconnect(Link& link) {
    if (stopping) return;
    std::uniform_real_distribution<double> jitter(0.5, 1.5);
    auto wait = std::chrono::milliseconds(static_cast<int64_t>(link.backoff.count() * jitter(rng)));
    link.backoff = std::min(o.backoff_max, link.backoff * 2);
    link.reconnect_timer.expires_after(wait);
    auto self = shared_from_this();
    link.reconnect_timer.async_wait([self, l = &link](const boost::system::error_code& e) {
      if (!e) self->Connect(*l);
    });
  }

  void Connect(Link& link) {
    if (stopping) return;
    auto self = shared_from_this();
    auto resolver = std::make_shared<protocol::tcp::resolver>(io);
    resolver->async_resolve(
        link.host, std::to_string(link.port),
        [self, resolver, l = &link](const boost::system::error_code& e,
                                    protocol::tcp::resolver::results_type results) {
          if (e) {
            self->Event(log::Level::kWarn, "agent.resolve-failed", *l,
                        log::Field("error", e.message()));
            return self->ScheduleReconnect(*l);
          }
          auto endpoints = std::make_shared<std::vector<protocol::tcp::endpoint>>();
          for (const auto& r : results) {
            // Plain TCP goes to loopback only, whatever the name resolved to.
            if (self->o.tls || protocol::IsLoopbackAddress(r.endpoint().address().to_string()))
              endpoints->push_back(r.endpoint());
          }
          if (endpoints->empty()) {
            self->Event(
                log::Level::kWarn, "agent.resolve-failed", *l,
                log::Field("error", "no loopback address; plain TCP is only allowed to loopback"));
            return self->ScheduleReconnect(*l);
          }
          self->ConnectTo(*l, std::move(endpoints), 0);
        });
  }

  // Tries endpoints[i..] in order. Each socket is made close-on-exec right
  // after it is opened (Asio has no SOCK_CLOEXEC), before it connects.
  void ConnectTo(Link& link, std::shared_ptr<const std::vector<protocol::tcp::endpoint>> endpoints,
                 size_t i) {
    if (stopping) return;
    if (i >= endpoints->size()) return ScheduleReconnect(link);
    const protocol::tcp::endpoint& ep = (*endpoints)[i];
    auto sock = std::make_shared<protocol::tcp::socket>(io);
    boost::system::error_code ec;
    sock->open(ep.protocol(), ec);
    if (ec) {
      Event(log::Level::kWarn, "agent.socket-failed", link, log::Field("error", ec.message()));
      return ScheduleReconnect(link);
    }
    SetCloseOnExec(sock->native_handle());
    auto self = shared_from_this();
    sock->async_connect(
        ep, [self, l = &link, sock, endpoints, i](const boost::system::error_code& e) {
          if (e) {
            self->Event(
                log::Level::kWarn, "agent.connect-failed", *l,
                log::Field("error", (*endpoints)[i].address().to_string() + ": " + e.message()));
            return self->ConnectTo(*l, endpoints, i + 1);
          }
          self->StartSession(*l, std::move(*sock));
        });
  }

  void StartSession(Link& link, protocol::tcp::socket sock) {
    auto s = std::make_shared<Session>();
    s->link = &link;
    s->ch = std::make_shared<Channel>(std::move(sock), ssl.get(), false);
    if (ssl) s->ch->set_expected_fingerprint(link.pinned);
    link.session = s;
    auto self = shared_from_this();
    s->ch->Start(
        [self, s](const Status& st) {
          if (!st.ok()) {
            self->Event(log::Level::kWarn, "agent.handshake-failed", *s->link,
                        log::Field("error", st.message()));
            return;  // the close handler reconnects
          }
          s->Send(protocol::Hello{protocol::kProtocolVersion, self->o.name, Version(),
                                  self->id->public_key_hex(), self->o.enroll_token});
        },
        [self, s](protocol::Frame f) { self->OnFrame(s, std::move(f)); },
        [self, s](const std::string& why) { self->OnClose(s, why); });
  }

  void OnClose(const std::shared_ptr<Session>& s, const std::string& why) {
    std::map<uint64_t, std::shared_ptr<RunningOp>> ops;
    std::map<uint64_t, std::shared_ptr<FetchState>> fetches;
    {
      std::lock_guard<std::mutex> g(s->mu);
      s->closed = true;
      ops.swap(s->ops);
      fetches.swap(s->fetches);
    }
    // The server treats operations of a lost connection as failed: stop them.
    for (auto& [id, op] : ops) op->cancel.Cancel();
    for (auto& [id, f] : fetches) {
      std::lock_guard<std::mutex> g(f->m);
      f->failed = true;
      f->error = "connection lost";
      f->cv.notify_all();
    }
    Link& link = *s->link;
    if (link.session == s) link.session.reset();
    if (stopping) return;
    Event(log::Level::kWarn, "agent.disconnected", link, log::Field("why", why));
    ScheduleReconnect(link);
  }

  void StartHeartbeats() {
    heartbeat_timer.expires_after(o.heartbeat);
    auto self = shared_from_this();
    heartbeat_timer.async_wait([self](const boost::system::error_code& e) {
      if (e || self->stopping) return;
      for (const auto& link : self->links) {
        auto s = link->session;
        if (!s || !s->authed) continue;
        // While a fetch holds the reads, the silence is this side's.
        if (s->ch->reads_held()) s->last_recv = Steady::now();
        if (Steady::now() - s->last_recv > 3 * self->o.heartbeat) {
          s->ch->Close("the server missed heartbeats", /*flush=*/false);
        } else {
          s->Send(protocol::Heartbeat{});
        }
      }
      self->StartHeartbeats();
    });
  }

  void OnFrame(const std::shared_ptr<Session>& s, protocol::Frame f) {
    s->last_recv = Steady::now();
    auto message = protocol::DecodeMessage(f.header);
    if (!message.ok()) return s->ch->Close("protocol violation: " + message.status().message());
    std::visit([&](auto& m) { On(s, m, f.payload); }, *message);
  }

  // One handler per message the server may send; anything else ends the
  // connection.
  template <class M>
  void On(const std::shared_ptr<Session>& s, M& m, std::string&) {
    s->ch->Close("protocol violation: unexpected " +
                 std::string(protocol::MessageTypeName(protocol::TypeOf(m))));
  }

  void On(const std::shared_ptr<Session>& s, protocol::Challenge& m, std::string&) {
    if (m.nonce.size() < 32 || m.nonce.size() > 256) return s->ch->Close("bad challenge");
    std::string fp = ssl ? s->ch->peer_fingerprint() : "";
    auto sig = id->Sign(protocol::AuthMessage(m.nonce, o.name, fp));
    if (!sig.ok()) return s->ch->Close(sig.status().message());
    s->Send(protocol::Auth{*sig});
  }

  void On(const std::shared_ptr<Session>& s, protocol::Welcome& m, std::string&) {
    bool was = s->approved;
    s->authed = true;
    s->approved = m.approved();
    {
      std::lock_guard<std::mutex> g(s->mu);
      s->files = m.files;
    }
    Link& link = *s->link;
    link.backoff = o.backoff_min;
    if (ssl && link.pinned.empty()) {
      // Trust on first use: pin what we saw from now on.
      link.pinned = s->ch->peer_fingerprint();
      Status st = WriteFileAtomic(link.fingerprint_file, link.pinned + "\n", 0600);
      if (!st.ok())
        Event(log::Level::kWarn, "agent.fingerprint-not-saved", link,
              log::Field("error", st.message()));
      Event(log::Level::kInfo, "agent.server-pinned", link, log::Field("fingerprint", link.pinned));
    }
    if (!was) {
      Event(log::Level::kInfo, "agent.connected", link,
            log::Field("approved", s->approved ? "yes" : "waiting for an administrator"));
    }
  }

  void On(const std::shared_ptr<Session>& s, protocol::Refused& m, std::string&) {
    Event(log::Level::kWarn, "agent.refused", *s->link,
          log::Field("message", std::string(m.message) + (m.permanent ? " (permanent)" : "")));
    if (!m.permanent) return;
    final_status = m.code == Code::kUnauthenticated      ? Unauthenticated(m.message)
                   : m.code == Code::kFailedPrecondition ? FailedPrecondition(m.message)
                                                         : PermissionDenied(m.message);
    stopping = true;
    s->ch->Close("refused");
    io.stop();
  }

  void On(const std::shared_ptr<Session>&, protocol::HeartbeatAck&, std::string&) {}

  void On(const std::shared_ptr<Session>& s, protocol::Run& m, std::string& payload) {
    OnRun(s, m, std::move(payload));
  }

  void On(const std::shared_ptr<Session>& s, protocol::Cancel& m, std::string&) {
    std::lock_guard<std::mutex> g(s->mu);
    auto it = s->ops.find(m.op);
    if (it != s->ops.end()) it->second->cancel.Cancel();
  }

  void On(const std::shared_ptr<Session>& s, protocol::BlobData& m, std::string& payload) {
    OnBlobData(*s, m, payload);
  }

  void On(const std::shared_ptr<Session>& s, protocol::BlobError& m, std::string&) {
    OnBlobError(*s, m);
  }

  void On(const std::shared_ptr<Session>& s, protocol::StateRequest& m, std::string& payload) {
    OnRequest(s, MessageType::kStateRequest, m, std::move(payload));
  }
  void On(const std::shared_ptr<Session>& s, protocol::ValidateRequest& m, std::string& payload) {
    OnRequest(s, MessageType::kValidateRequest, m, std::move(payload));
  }
  void On(const std::shared_ptr<Session>& s, protocol::ProbeRequest& m, std::string& payload) {
    OnRequest(s, MessageType::kProbeRequest, m, std::move(payload));
  }

  void OnRun(const std::shared_ptr<Session>& s, const protocol::Run& h, std::string payload) {
    uint64_t op_id = h.op;
    auto reply_error = [&](const Status& st) {
      s->Send(protocol::OperationResult{op_id, "error", st.message(), st.code()});
    };
    if (!s->approved) return reply_error(PermissionDenied("this agent is not approved yet"));
    auto parsed = OperationFromJson(h.operation);
    if (!parsed.ok()) return reply_error(parsed.status());
    ResolvedOperation op = std::move(parsed).value();
    if (auto* w = std::get_if<WriteFileOp>(&op)) w->content = std::move(payload);
    // The composed manifest travels in the payload (8 MiB), not the header (1 MiB).
    if (auto* c = std::get_if<ComposeReleaseOp>(&op); c && c->manifest_json.empty())
      c->manifest_json = std::move(payload);
    std::string target_path = h.target_path;
    DeployLabel label{h.release, h.build, std::nullopt};
    if (h.limits) {
      auto limits = ArchiveLimitsFromJson(*h.limits);
      if (!limits.ok()) return reply_error(limits.status());
      label.limits = *limits;
    }
    auto running = std::make_shared<RunningOp>();
    {
      std::lock_guard<std::mutex> g(s->mu);
      if (s->ops.count(op_id)) return reply_error(InvalidArgument("duplicate operation id"));
      s->ops[op_id] = running;
    }
    auto self = shared_from_this();
    Spawn([self, s, op_id, running, op = std::move(op), target_path, label] {
      auto source = MakeChannelSource(s, op_id);
      RunnerLog log = [s, op_id](LogLevel level, std::string_view text) {
        s->Send(protocol::LogLines{op_id, std::string(LogLevelName(level))}, BoundedText(text));
      };
      ProgressFn progress = [s, op_id](const TransferProgress& p) {
        s->Send(protocol::Progress{op_id, p.phase, p.bytes_done, p.bytes_total, p.files_done,
                                   p.files_total});
      };
      OperationOutcome out =
          self->runner.Run(target_path, op, label, *source, log, running->cancel, progress);
      protocol::OperationResult r{
          op_id, std::string(NameOf(kOutcomeKindNames, out.kind, "error")),
          BoundedText(out.kind == OperationOutcome::Kind::kError ? out.error.message()
                                                                 : out.message),
          out.error.code()};
      {
        std::lock_guard<std::mutex> g(s->mu);
        s->ops.erase(op_id);
      }
      s->Send(r);
    });
  }

  void OnRequest(const std::shared_ptr<Session>& s, MessageType type,
                 const protocol::TargetRequest& h, std::string payload) {
    uint64_t req = h.req;
    std::string target_path = h.target_path;
    auto refuse = [&](const Status& st) { s->SendError(req, st); };
    {
      // A manifest too large for one frame arrives in parts.
      std::lock_guard<std::mutex> g(s->mu);
      auto it = s->partial_requests.find(req);
      const bool more = h.more;
      if (it == s->partial_requests.end() && more) {
        it = s->partial_requests.emplace(req, Session::PartialRequest{}).first;
      }
      if (it != s->partial_requests.end()) {
        Session::PartialRequest& partial = it->second;
        if (!partial.refused && partial.data.size() + payload.size() > protocol::kMaxJoinedBytes) {
          // Answered once; the parts still to come are dropped.
          partial.refused = true;
          partial.data = std::string();
          refuse(TooLarge("the request is larger than " +
                          std::to_string(protocol::kMaxJoinedBytes) + " bytes"));
        }
        if (!partial.refused) partial.data.append(payload);
        if (more) return;
        const bool refused = partial.refused;
        payload = std::move(partial.data);
        s->partial_requests.erase(it);
        if (refused) return;
      }
    }
    if (!s->approved) return refuse(PermissionDenied("this agent is not approved yet"));
    auto self = shared_from_this();
    Spawn([self, s, req, type, target_path, payload = std::move(payload)] {
      Result<std::string> body = Internal("unreachable");
      if (type == MessageType::kStateRequest) {
        auto st = self->runner.State(target_path);
        body = st.ok() ? Result<std::string>(TargetStateToJson(*st))
                       : Result<std::string>(st.status());
      } else if (type == MessageType::kProbeRequest) {
        auto probe = self->runner.Probe(target_path);
        body = probe.ok() ? Result<std::string>(ProbeReportToJson(*probe))
                          : Result<std::string>(probe.status());
      } else {
        auto manifest = ManifestFromJson(payload);
        if (!manifest.ok()) {
          body = manifest.status();
        } else {
          auto r = self->runner.Validate(target_path, *manifest);
          body = r.ok() ? Result<std::string>(ValidationReportToJson(*r))
                        : Result<std::string>(r.status());
        }
      }
      if (body.ok()) {
        s->SendReply(req, *body);
      } else {
        s->SendError(req, body.status());
      }
    });
  }
};

AgentClient::AgentClient(AgentClientOptions options)
    : impl_(std::make_shared<Impl>(std::move(options))) {}

AgentClient::~AgentClient() {
  Stop();
  std::vector<Impl::Worker> threads;
  {
    std::lock_guard<std::mutex> g(impl_->threads_mu);
    threads.swap(impl_->threads);
  }
  for (auto& w : threads) w.thread.join();
}

Status AgentClient::Run() {
  Impl& im = *impl_;
  AgentClientOptions& o = im.o;
  if (!protocol::IsValidAgentName(o.name)) {
    return InvalidArgument("agent name '" + o.name + "' is invalid ([A-Za-z0-9._-], 1..64)");
  }
  for (const auto& link : im.links) {
    if (!o.tls && !protocol::IsLoopbackHost(link->host)) {
      return InvalidArgument(
          "plain TCP is only allowed to a loopback server (127.0.0.0/8, ::1 or "
          "localhost), not '" +
          link->host + "'; use TLS");
    }
  }
  if (o.root.empty()) return InvalidArgument("--root is required");
  std::error_code ec;
  fs::create_directories(o.root, ec);
  if (o.state_dir.empty()) o.state_dir = o.root / ".reprise" / "agent";
  fs::create_directories(o.state_dir, ec);
  ::chmod(o.state_dir.c_str(), 0700);
  auto id = protocol::Identity::LoadOrCreate((o.state_dir / "agent.key").string());
  if (!id.ok()) return id.status();
  im.id = std::move(id).value();
  if (o.tls) {
    im.ssl = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_client);
    im.ssl->set_options(asio::ssl::context::no_tlsv1 | asio::ssl::context::no_tlsv1_1);
    std::string given;
    if (!o.fingerprint.empty()) {
      given = protocol::NormalizeFingerprint(o.fingerprint);
      if (given.empty()) return InvalidArgument("--fingerprint must be 64 hex digits");
    }
    for (auto& link : im.links) {
      // One server keeps the file it always had; several pin one each.
      link->fingerprint_file =
          o.state_dir / (im.links.size() == 1
                             ? std::string("server.fingerprint")
                             : "server-" + SafeFileName(link->label()) + ".fingerprint");
      link->pinned = given;
      if (!given.empty()) continue;
      auto saved = ReadFileToString(link->fingerprint_file);
      if (saved.ok()) link->pinned = protocol::NormalizeFingerprint(*saved);
      if (link->pinned.empty()) {
        im.Event(log::Level::kInfo, "agent.trust-on-first-use", *link,
                 log::Field("what",
                            "no --fingerprint given: the first server certificate seen "
                            "will be pinned"));
      }
    }
  }
  for (auto& link : im.links) im.Connect(*link);
  im.StartHeartbeats();
  while (!im.stopping) {
    im.io.run();
    if (!im.stopping) im.io.restart();
  }
  return im.final_status;
}

void AgentClient::Stop() {
  impl_->stopping = true;
  // A weak reference: when Run() is not running to take the handler, it
  // stays in the Impl's own queue and must not keep the Impl alive.
  asio::post(impl_->io, [weak = std::weak_ptr<Impl>(impl_)] {
    auto impl = weak.lock();
    if (!impl) return;
    impl->heartbeat_timer.cancel();
    for (auto& link : impl->links) {
      link->reconnect_timer.cancel();
      if (auto s = link->session) {
        std::lock_guard<std::mutex> g(s->mu);
        for (auto& [id, op] : s->ops) op->cancel.Cancel();
      }
    }
    impl->io.stop();
  });
}

}  // namespace reprise

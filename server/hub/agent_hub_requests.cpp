// Questions to a target's agent and their answers: its state, validation
// against a manifest, the test-connection probe (a request waits on a caller
// thread; the reply arrives on the io thread, in parts when large), and what
// the hub knows of a target's agent without asking.
#include "planner/version.h"
#include "server/hub/agent_hub_internal.h"

namespace reprise {

using namespace hub_internal;

void AgentHub::Impl::OnReply(const std::shared_ptr<Conn>& c, const protocol::Reply& h,
                             std::string payload) {
  uint64_t id = h.req;
  std::shared_ptr<PendingReq> req;
  {
    std::lock_guard<std::mutex> g(mu);
    auto it = reqs.find(id);
    if (it == reqs.end() || it->second->conn_id != c->id) return;
    req = it->second;
  }
  // A body too large for one frame comes in parts (all but the last say
  // "more"): join them, up to a bound.
  bool too_large = false;
  {
    std::lock_guard<std::mutex> g(req->m);
    if (req->done) return;
    too_large = req->joined.size() + payload.size() > protocol::kMaxJoinedBytes;
    if (too_large) {
      req->done = true;
      req->joined = std::string();
      req->error = TooLarge("agent " + c->name + " answered with more than " +
                            std::to_string(protocol::kMaxJoinedBytes) + " bytes");
      req->cv.notify_all();
    } else if (h.more) {
      req->joined.append(payload);
      return;
    } else if (!req->joined.empty()) {
      payload = std::move(req->joined).append(payload);
    }
  }
  if (too_large) {
    if (!req->cache_target.empty()) {
      std::lock_guard<std::mutex> g(mu);
      reqs.erase(id);
    }
    return;
  }
  {
    std::lock_guard<std::mutex> g(mu);
    auto it = reqs.find(id);
    if (it == reqs.end()) return;
    if (!req->cache_target.empty()) {
      reqs.erase(it);
      if (h.ok) {
        auto st = TargetStateFromJson(payload);
        if (st.ok()) {
          st->online = true;
          last_state[req->cache_target] = *st;
        }
      }
      return;
    }
  }
  std::lock_guard<std::mutex> g(req->m);
  req->done = true;
  req->ok = h.ok;
  if (req->ok) {
    req->body = std::move(payload);
  } else {
    req->error = Status(h.code == Code::kOk ? Code::kInternal : h.code,
                        "agent " + c->name + ": " + h.message);
  }
  req->cv.notify_all();
}

Result<std::string> AgentHub::Impl::Request(const std::shared_ptr<Conn>& c, MessageType type,
                                            const std::string& path, std::string payload,
                                            std::optional<std::chrono::milliseconds> timeout) {
  auto req = std::make_shared<PendingReq>();
  req->conn_id = c->id;
  uint64_t id = next_id++;
  {
    std::lock_guard<std::mutex> g(mu);
    reqs[id] = req;
  }
  // A manifest may outgrow a frame: it goes in parts, all but the last
  // marked "more".
  const auto parts = protocol::SplitPayload(payload);
  for (size_t i = 0; i < parts.size(); ++i) {
    const protocol::TargetRequest fields{id, path, i + 1 < parts.size()};
    const protocol::Message h = type == MessageType::kStateRequest
                                    ? protocol::Message(protocol::StateRequest{fields})
                                : type == MessageType::kValidateRequest
                                    ? protocol::Message(protocol::ValidateRequest{fields})
                                    : protocol::Message(protocol::ProbeRequest{fields});
    Status sent = c->ch->Send(protocol::Encode(h), std::string(parts[i]));
    if (!sent.ok()) {
      std::lock_guard<std::mutex> g(mu);
      reqs.erase(id);
      return sent;
    }
  }
  Result<std::string> out = Internal("unreachable");
  {
    std::unique_lock<std::mutex> lk(req->m);
    bool finished = req->cv.wait_for(lk, timeout.value_or(o.request_timeout),
                                     [&] { return req->done || req->lost; });
    if (!finished) {
      out = Timeout("agent " + c->name + " did not answer in time");
    } else if (req->lost && !req->done) {
      out = Unavailable("agent " + c->name + " disconnected");
    } else if (!req->ok) {
      out = req->error;
    } else {
      out = std::move(req->body);
    }
  }
  std::lock_guard<std::mutex> g(mu);
  reqs.erase(id);
  return out;
}

Result<TargetState> AgentHub::GetTargetState(const std::string& target) {
  Impl& im = *impl_;
  REPRISE_ASSIGN_OR_RETURN(TargetRecord rec, im.o.store->GetTarget(target));
  if (rec.agent == kLocalAgent) {
    if (!im.local_runner) return Unavailable("the local agent is not enabled");
    REPRISE_RETURN_IF_ERROR(im.LocalRoot(target, rec.path).status());
    REPRISE_ASSIGN_OR_RETURN(TargetState st, im.local_runner->State(rec.path));
    st.online = true;
    return st;
  }
  Status why;
  auto c = im.OnlineConn(rec.agent, &why);
  if (c) {
    auto body = im.Request(c, MessageType::kStateRequest, rec.path, "");
    if (body.ok()) {
      REPRISE_ASSIGN_OR_RETURN(TargetState st, TargetStateFromJson(*body));
      st.online = true;
      std::lock_guard<std::mutex> g(im.mu);
      im.last_state[target] = st;
      return st;
    }
    if (body.status().code() != Code::kUnavailable && body.status().code() != Code::kTimeout)
      return body.status();
  }
  std::lock_guard<std::mutex> g(im.mu);
  auto it = im.last_state.find(target);
  TargetState st = it == im.last_state.end() ? TargetState{} : it->second;
  st.online = false;
  return st;
}

Result<ValidationReport> AgentHub::Validate(const std::string& target, const Manifest& manifest) {
  Impl& im = *impl_;
  REPRISE_ASSIGN_OR_RETURN(TargetRecord rec, im.o.store->GetTarget(target));
  if (rec.agent == kLocalAgent) {
    if (!im.local_runner) return Unavailable("the local agent is not enabled");
    REPRISE_RETURN_IF_ERROR(im.LocalRoot(target, rec.path).status());
    return im.local_runner->Validate(rec.path, manifest);
  }
  Status why;
  auto c = im.OnlineConn(rec.agent, &why);
  if (!c) return why;
  REPRISE_ASSIGN_OR_RETURN(std::string body, im.Request(c, MessageType::kValidateRequest, rec.path,
                                                        ManifestToJson(manifest)));
  return ValidationReportFromJson(body);
}

Result<TargetAgentLink> AgentHub::TargetAgent(const std::string& target) {
  Impl& im = *impl_;
  REPRISE_ASSIGN_OR_RETURN(TargetRecord rec, im.o.store->GetTarget(target));
  TargetAgentLink link{target, rec.agent, false, false, ""};
  if (rec.agent == kLocalAgent) {
    link.connected = link.approved = im.local_runner != nullptr;
    link.version = Version();
    return link;
  }
  {
    std::lock_guard<std::mutex> g(im.mu);
    auto it = im.online.find(rec.agent);
    if (it != im.online.end()) {
      link.connected = true;
      link.approved = it->second->approved;
      link.version = it->second->version;
      return link;
    }
  }
  auto known = im.o.store->GetAgent(rec.agent);
  if (known.ok()) {
    link.approved = known->status == "approved";
    link.version = known->version;
  }
  return link;
}

Result<TargetProbe> AgentHub::Probe(const std::string& target) {
  Impl& im = *impl_;
  TargetProbe probe;
  REPRISE_ASSIGN_OR_RETURN(probe.link, TargetAgent(target));
  const TargetAgentLink& link = probe.link;
  REPRISE_ASSIGN_OR_RETURN(TargetRecord rec, im.o.store->GetTarget(target));
  if (!link.connected || !link.approved) {
    probe.problem = link.agent == kLocalAgent
                        ? "the local agent of target '" + target + "' is not enabled"
                        : "agent '" + link.agent + "' of target '" + target + "' is not " +
                              (link.connected ? "approved" : "connected");
    return probe;
  }
  const auto start = std::chrono::steady_clock::now();
  Result<std::string> body = Internal("unreachable");
  if (rec.agent == kLocalAgent) {
    auto root = im.LocalRoot(target, rec.path);
    auto report = root.ok() ? im.local_runner->Probe(rec.path)
                            : Result<ProbeReport>(UnwritableRoot(root.status().message()));
    body = report.ok() ? Result<std::string>(ProbeReportToJson(*report))
                       : Result<std::string>(report.status());
  } else {
    Status why;
    auto c = im.OnlineConn(rec.agent, &why);
    body = c ? im.Request(c, MessageType::kProbeRequest, rec.path, "", im.o.probe_timeout)
             : Result<std::string>(why);
  }
  probe.latency_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                         std::chrono::steady_clock::now() - start)
                         .count();
  Result<ProbeReport> report =
      body.ok() ? ProbeReportFromJson(*body) : Result<ProbeReport>(body.status());
  if (!report.ok()) {
    probe.problem = "agent '" + link.agent + "' of target '" + target +
                    "' did not answer the probe: " + report.status().message();
    if (report.status().code() == Code::kUnavailable) probe.link.connected = false;
    return probe;
  }
  probe.answered = true;
  probe.report = std::move(report).value();
  return probe;
}

}  // namespace reprise

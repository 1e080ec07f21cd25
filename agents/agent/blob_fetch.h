// The blob fetch over a server connection: the BlobSource an operation
// from that server reads its artifact through, and the handlers of the
// chunks and errors the server sends for it. Internal to agents/agent/.
//
// Thread-safety: OnBlobData/OnBlobError run on the connection's thread, the
// source and its streams on the operation's thread; they meet in the
// FetchState (agent_session.h) under its mutex.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "agents/agent/agent_session.h"
#include "agents/agent/runner.h"
#include "agents/protocol/messages.h"

namespace reprise::agent_internal {

// Fetches the blobs operation `op` needs over `session`.
std::unique_ptr<BlobSource> MakeChannelSource(std::shared_ptr<Session> session, uint64_t op);

// A chunk of a blob being fetched: written and hashed in order, or queued
// (`payload` is moved from then).
void OnBlobData(Session& session, const protocol::BlobData& chunk, std::string& payload);
// The server could not send the blob: the fetch fails with its message.
void OnBlobError(Session& session, const protocol::BlobError& error);

}  // namespace reprise::agent_internal

// libFuzzer target for the agent protocol's decoders: any bytes must give
// frames or an error (never crash, hang or throw), any frame header a
// message or a clear error, and a decoded message must encode and decode
// back to itself.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "agents/protocol/messages.h"
#include "agents/protocol/protocol.h"

namespace {

void Check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "invariant broken: %s\n", what);
    std::abort();
  }
}

void DecodeHeader(std::string_view header) {
  auto message = reprise::protocol::DecodeMessage(header);
  if (!message.ok()) {
    Check(message.status().code() == reprise::Code::kInvalidArgument, "not kInvalidArgument");
    return;
  }
  auto again = reprise::protocol::DecodeMessage(reprise::protocol::Encode(*message));
  Check(again.ok(), "an encoded message does not decode");
  Check(*again == *message, "a message changed through encode and decode");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  // The input as one header, and as a stream of frames.
  DecodeHeader(bytes);
  reprise::protocol::FrameDecoder decoder;
  if (!decoder.Feed(bytes).ok()) return 0;
  for (int i = 0; i < 1000; ++i) {
    auto frame = decoder.Next();
    if (!frame) break;
    DecodeHeader(frame->header);
  }
  return 0;
}

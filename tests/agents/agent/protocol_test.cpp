// The agent protocol's frame codec, identity and certificate helpers.
#include "agents/protocol/protocol.h"

#include <doctest/doctest.h>
#include <sys/stat.h>

#include <cctype>
#include <vector>

#include "common/fs.h"
#include "tests/temp_dir.h"

namespace reprise::protocol {
namespace {

TEST_CASE("frames round-trip through the decoder in arbitrary pieces") {
  std::string stream;
  for (int i = 0; i < 3; ++i) {
    auto f = EncodeFrame("{\"type\":\"log\",\"n\":" + std::to_string(i) + "}",
                         std::string(static_cast<size_t>(i) * 1000, static_cast<char>('a' + i)));
    REQUIRE(f.ok());
    stream += *f;
  }
  FrameDecoder d;
  std::vector<Frame> frames;
  for (size_t i = 0; i < stream.size(); i += 7) {
    REQUIRE(d.Feed(std::string_view(stream).substr(i, 7)).ok());
    while (auto f = d.Next()) frames.push_back(*f);
  }
  REQUIRE(frames.size() == 3);
  CHECK(frames[2].header == "{\"type\":\"log\",\"n\":2}");
  CHECK(frames[2].payload == std::string(2000, 'c'));
  CHECK(frames[0].payload.empty());
}

TEST_CASE("frame limits") {
  CHECK(EncodeFrame(std::string(kMaxHeaderBytes + 1, 'x'), "").status().code() == Code::kTooLarge);
  CHECK(EncodeFrame("{}", std::string(kMaxPayloadBytes + 1, 'x')).status().code() ==
        Code::kTooLarge);
  FrameDecoder d;
  REQUIRE(d.Feed(std::string("\x00\x10\x00\x01\x00\x00\x00\x00", 8)).ok());
  CHECK_FALSE(d.Next().has_value());  // over the header limit: the stream is dead
  CHECK_FALSE(d.Feed("more").ok());
  FrameDecoder empty;
  REQUIRE(empty.Feed(std::string(8, '\0')).ok());
  CHECK_FALSE(empty.Next().has_value());
  CHECK_FALSE(empty.Feed("x").ok());
}

TEST_CASE("a frame over the limits is refused with its size, a large payload goes in parts") {
  auto big = EncodeFrame("{}", std::string(kMaxPayloadBytes + 1, 'x'));
  CHECK(big.status().message() == "a message payload of " + std::to_string(kMaxPayloadBytes + 1) +
                                      " bytes exceeds the " + std::to_string(kMaxPayloadBytes) +
                                      "-byte limit");
  CHECK(SplitPayload("") == std::vector<std::string_view>{""});
  CHECK(SplitPayload("abc") == std::vector<std::string_view>{"abc"});
  std::string payload(2 * kPartBytes + 5, 'p');
  payload[kPartBytes] = 'q';
  auto parts = SplitPayload(payload);
  REQUIRE(parts.size() == 3);
  CHECK(parts[0].size() == kPartBytes);
  CHECK(parts[1].size() == kPartBytes);
  CHECK(parts[1][0] == 'q');
  CHECK(parts[2].size() == 5);
  std::string joined;
  for (auto p : parts) {
    CHECK(EncodeFrame("{}", p).ok());
    joined.append(p);
  }
  CHECK(joined == payload);
  CHECK(SplitPayload(std::string(kPartBytes, 'x')).size() == 1);
}

TEST_CASE("message type names") {
  for (int i = 0; i < static_cast<int>(MessageType::kUnknown); ++i) {
    auto t = static_cast<MessageType>(i);
    CHECK(MessageTypeFromName(MessageTypeName(t)) == t);
  }
  CHECK(MessageTypeFromName("nonsense") == MessageType::kUnknown);
}

TEST_CASE("identity: a key file with mode 0600, signatures bound to nonce, name and channel") {
  TempDir tmp;
  std::string path = (tmp.path() / "state/agent.key").string();
  auto id = Identity::LoadOrCreate(path);
  REQUIRE(id.ok());
  struct stat st;
  REQUIRE(::stat(path.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  auto again = Identity::LoadOrCreate(path);
  REQUIRE(again.ok());
  CHECK(again->public_key_hex() == id->public_key_hex());
  CHECK(ReadFileToString(path)->find(id->public_key_hex()) == std::string::npos);

  std::string msg = AuthMessage("nonce-1", "web-01", "fp");
  auto sig = id->Sign(msg);
  REQUIRE(sig.ok());
  CHECK(VerifySignature(id->public_key_hex(), msg, *sig).ok());
  CHECK_FALSE(
      VerifySignature(id->public_key_hex(), AuthMessage("nonce-2", "web-01", "fp"), *sig).ok());
  CHECK_FALSE(
      VerifySignature(id->public_key_hex(), AuthMessage("nonce-1", "web-02", "fp"), *sig).ok());
  CHECK_FALSE(
      VerifySignature(id->public_key_hex(), AuthMessage("nonce-1", "web-01", "other"), *sig).ok());
  auto other = Identity::Generate();
  CHECK_FALSE(VerifySignature(other->public_key_hex(), msg, *sig).ok());
  CHECK_FALSE(VerifySignature("zz", msg, *sig).ok());
  CHECK_FALSE(VerifySignature(id->public_key_hex(), msg, "00").ok());

  // A key readable by others is refused.
  ::chmod(path.c_str(), 0644);
  CHECK(Identity::LoadOrCreate(path).status().code() == Code::kPermissionDenied);
}

TEST_CASE("server certificate: created once, stable fingerprint, private key 0600") {
  TempDir tmp;
  auto a = LoadOrCreateServerCert(tmp.path().string());
  REQUIRE(a.ok());
  CHECK(a->fingerprint.size() == 64);
  auto b = LoadOrCreateServerCert(tmp.path().string());
  REQUIRE(b.ok());
  CHECK(b->fingerprint == a->fingerprint);
  struct stat st;
  REQUIRE(::stat(a->key_path.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  std::string colons;
  for (size_t i = 0; i < 64; i += 2) colons += (i ? ":" : "") + a->fingerprint.substr(i, 2);
  for (auto& c : colons) c = static_cast<char>(std::toupper(c));
  CHECK(NormalizeFingerprint(colons) == a->fingerprint);
  CHECK(NormalizeFingerprint("abc").empty());
  CHECK(NormalizeFingerprint(a->fingerprint.substr(0, 62) + "zz").empty());
  CHECK(NormalizeFingerprint(a->fingerprint + "00").empty());
  CHECK(NormalizeFingerprint(":" + a->fingerprint + ":") == a->fingerprint);
}

TEST_CASE("names and hosts") {
  CHECK(IsValidAgentName("web-01.prod_2"));
  for (const std::string& bad :
       std::vector<std::string>{"", "../x", "-x", "a b", std::string(65, 'a')})
    CHECK_MESSAGE(!IsValidAgentName(bad), bad);
  CHECK(IsLoopbackHost("127.0.0.1"));
  CHECK(IsLoopbackHost("::1"));
  CHECK_FALSE(IsLoopbackHost("10.0.0.1"));
}

TEST_CASE("loopback is decided on the parsed address, never on a name's prefix") {
  CHECK(IsLoopbackHost("127.0.0.1"));
  CHECK(IsLoopbackHost("127.1.2.3"));
  CHECK(IsLoopbackHost("::1"));
  CHECK(IsLoopbackHost("::ffff:127.0.0.1"));
  CHECK(IsLoopbackHost("localhost"));  // its resolved addresses are checked too
  CHECK_FALSE(IsLoopbackHost("127.evil.example"));
  CHECK_FALSE(IsLoopbackHost("127.0.0.1.evil.example"));
  CHECK_FALSE(IsLoopbackHost("127."));
  CHECK_FALSE(IsLoopbackHost("127.1"));  // not an address inet_pton takes
  CHECK_FALSE(IsLoopbackHost("128.0.0.1"));
  CHECK_FALSE(IsLoopbackHost("::2"));
  CHECK_FALSE(IsLoopbackHost("::ffff:10.0.0.1"));
  CHECK_FALSE(IsLoopbackHost("localhost.evil.example"));
  CHECK_FALSE(IsLoopbackHost(""));
  CHECK(IsLoopbackAddress("127.0.0.1"));
  CHECK_FALSE(IsLoopbackAddress("localhost"));  // a name, not an address
}

}  // namespace
}  // namespace reprise::protocol

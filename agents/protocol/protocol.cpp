#include "agents/protocol/protocol.h"

#include "common/names.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/bio.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cstring>
#include <filesystem>
#include <memory>

#include "common/crypto.h"
#include "common/fs.h"

namespace reprise::protocol {
namespace {

constexpr std::array<std::string_view, 20> kNames = {
    "hello",         "challenge",        "auth",     "welcome",       "refused",
    "heartbeat",     "heartbeat_ack",    "run",      "cancel",        "log",
    "progress",      "result",           "blob_get", "blob_data",     "blob_error",
    "state_request", "validate_request", "reply",    "probe_request", "files_get"};

void PutU32(std::string& out, uint32_t v) {
  out.push_back(static_cast<char>((v >> 24) & 0xff));
  out.push_back(static_cast<char>((v >> 16) & 0xff));
  out.push_back(static_cast<char>((v >> 8) & 0xff));
  out.push_back(static_cast<char>(v & 0xff));
}
uint32_t GetU32(const unsigned char* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

struct PkeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct MdCtxFree {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};
struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;

Result<std::string> DerFingerprint(X509* cert) {
  int len = i2d_X509(cert, nullptr);
  if (len <= 0) return Internal("cannot encode certificate");
  std::string der(static_cast<size_t>(len), '\0');
  auto* p = reinterpret_cast<unsigned char*>(der.data());
  i2d_X509(cert, &p);
  return Sha256Hex(der);
}

std::string BioToString(BIO* bio) {
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<size_t>(n));
}

}  // namespace

std::string_view MessageTypeName(MessageType type) {
  auto i = static_cast<size_t>(type);
  return i < kNames.size() ? kNames[i] : "unknown";
}

MessageType MessageTypeFromName(std::string_view name) {
  for (size_t i = 0; i < kNames.size(); ++i) {
    if (kNames[i] == name) return static_cast<MessageType>(i);
  }
  return MessageType::kUnknown;
}

Result<std::string> EncodeFrame(std::string_view header, std::string_view payload) {
  if (header.size() > kMaxHeaderBytes) {
    return TooLarge("a message header of " + std::to_string(header.size()) + " bytes exceeds the " +
                    std::to_string(kMaxHeaderBytes) + "-byte limit");
  }
  if (payload.size() > kMaxPayloadBytes) {
    return TooLarge("a message payload of " + std::to_string(payload.size()) +
                    " bytes exceeds the " + std::to_string(kMaxPayloadBytes) + "-byte limit");
  }
  std::string out;
  out.reserve(kPrefixBytes + header.size() + payload.size());
  PutU32(out, static_cast<uint32_t>(header.size()));
  PutU32(out, static_cast<uint32_t>(payload.size()));
  out.append(header);
  out.append(payload);
  return out;
}

std::vector<std::string_view> SplitPayload(std::string_view payload) {
  std::vector<std::string_view> parts;
  size_t off = 0;
  do {
    parts.push_back(payload.substr(off, kPartBytes));
    off += kPartBytes;
  } while (off < payload.size());
  return parts;
}

Status DecodePrefix(const unsigned char* prefix, uint32_t* header_len, uint32_t* payload_len) {
  *header_len = GetU32(prefix);
  *payload_len = GetU32(prefix + 4);
  if (*header_len == 0) return InvalidArgument("frame without a header");
  if (*header_len > kMaxHeaderBytes) return TooLarge("frame header over the limit");
  if (*payload_len > kMaxPayloadBytes) return TooLarge("frame payload over the limit");
  return Status::Ok();
}

Status FrameDecoder::Feed(std::string_view bytes) {
  if (!error_.ok()) return error_;
  if (pos_ > 0 && pos_ == buffer_.size()) {
    buffer_.clear();
    pos_ = 0;
  }
  buffer_.append(bytes);
  return Status::Ok();
}

std::optional<Frame> FrameDecoder::Next() {
  if (!error_.ok() || buffer_.size() - pos_ < kPrefixBytes) return std::nullopt;
  uint32_t hl = 0, pl = 0;
  error_ = DecodePrefix(reinterpret_cast<const unsigned char*>(buffer_.data() + pos_), &hl, &pl);
  if (!error_.ok()) return std::nullopt;
  if (buffer_.size() - pos_ < kPrefixBytes + hl + pl) return std::nullopt;
  Frame f;
  f.header = buffer_.substr(pos_ + kPrefixBytes, hl);
  f.payload = buffer_.substr(pos_ + kPrefixBytes + hl, pl);
  pos_ += kPrefixBytes + hl + pl;
  return f;
}

bool IsValidAgentName(std::string_view name) { return IsValidName(name); }

Result<Identity> Identity::Generate() {
  PkeyPtr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"));
  if (!key) return Internal("Ed25519 key generation failed");
  unsigned char priv[32], pub[32];
  size_t pl = sizeof priv, ul = sizeof pub;
  if (EVP_PKEY_get_raw_private_key(key.get(), priv, &pl) != 1 ||
      EVP_PKEY_get_raw_public_key(key.get(), pub, &ul) != 1)
    return Internal("cannot read the Ed25519 key");
  Identity id;
  id.private_raw_.assign(reinterpret_cast<char*>(priv), pl);
  id.public_hex_ = HexEncode(pub, ul);
  OPENSSL_cleanse(priv, sizeof priv);
  return id;
}

Result<Identity> Identity::LoadOrCreate(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::exists(path, ec)) {
    struct stat st;
    if (::stat(path.c_str(), &st) == 0 && (st.st_mode & 077) != 0) {
      return PermissionDenied("the agent key " + path + " is readable by others (chmod 600 it)");
    }
    REPRISE_ASSIGN_OR_RETURN(std::string text, ReadFileToString(path));
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
    std::string raw;
    if (!HexDecode(text, &raw) || raw.size() != 32) {
      return InvalidArgument("the agent key " + path + " is malformed");
    }
    PkeyPtr key(EVP_PKEY_new_raw_private_key(
        EVP_PKEY_ED25519, nullptr, reinterpret_cast<const unsigned char*>(raw.data()), raw.size()));
    if (!key) return InvalidArgument("the agent key " + path + " is not an Ed25519 key");
    unsigned char pub[32];
    size_t ul = sizeof pub;
    if (EVP_PKEY_get_raw_public_key(key.get(), pub, &ul) != 1) return Internal("public key");
    Identity id;
    id.private_raw_ = raw;
    id.public_hex_ = HexEncode(pub, ul);
    return id;
  }
  fs::path parent = fs::path(path).parent_path();
  if (!parent.empty()) {
    fs::create_directories(parent, ec);
    ::chmod(parent.c_str(), 0700);
  }
  REPRISE_ASSIGN_OR_RETURN(Identity id, Generate());
  std::string hex = HexEncode(id.private_raw_.data(), id.private_raw_.size()) + "\n";
  REPRISE_RETURN_IF_ERROR(WriteFileAtomic(path, hex, 0600));
  OPENSSL_cleanse(hex.data(), hex.size());
  return id;
}

Result<std::string> Identity::Sign(std::string_view message) const {
  PkeyPtr key(EVP_PKEY_new_raw_private_key(
      EVP_PKEY_ED25519, nullptr, reinterpret_cast<const unsigned char*>(private_raw_.data()),
      private_raw_.size()));
  if (!key) return Internal("bad private key");
  std::unique_ptr<EVP_MD_CTX, MdCtxFree> ctx(EVP_MD_CTX_new());
  unsigned char sig[64];
  size_t sl = sizeof sig;
  if (EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr, key.get()) != 1 ||
      EVP_DigestSign(ctx.get(), sig, &sl, reinterpret_cast<const unsigned char*>(message.data()),
                     message.size()) != 1)
    return Internal("signing failed");
  return HexEncode(sig, sl);
}

Status VerifySignature(std::string_view public_key_hex, std::string_view message,
                       std::string_view signature_hex) {
  std::string pub, sig;
  if (!HexDecode(public_key_hex, &pub) || pub.size() != 32)
    return Unauthenticated("malformed public key");
  if (!HexDecode(signature_hex, &sig) || sig.size() != 64)
    return Unauthenticated("malformed signature");
  PkeyPtr key(EVP_PKEY_new_raw_public_key(
      EVP_PKEY_ED25519, nullptr, reinterpret_cast<const unsigned char*>(pub.data()), pub.size()));
  if (!key) return Unauthenticated("bad public key");
  std::unique_ptr<EVP_MD_CTX, MdCtxFree> ctx(EVP_MD_CTX_new());
  if (EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr, key.get()) != 1)
    return Internal("verify init failed");
  int rc =
      EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(sig.data()), sig.size(),
                       reinterpret_cast<const unsigned char*>(message.data()), message.size());
  if (rc != 1) return Unauthenticated("signature does not verify");
  return Status::Ok();
}

std::string AuthMessage(std::string_view nonce, std::string_view name,
                        std::string_view server_fingerprint) {
  std::string m = "reprise-agent-auth-v1\n";
  m.append(nonce).append("\n").append(name).append("\n").append(server_fingerprint);
  return m;
}

std::string KeyFingerprint(std::string_view public_key_hex) {
  std::string raw;
  if (!HexDecode(public_key_hex, &raw)) return "";
  return Sha256Hex(raw);
}

Result<std::string> CertFingerprintFromPem(std::string_view pem) {
  std::unique_ptr<BIO, BioFree> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  std::unique_ptr<X509, X509Free> cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  if (!cert) return InvalidArgument("not a PEM certificate");
  return DerFingerprint(cert.get());
}

Result<TlsFiles> LoadOrCreateServerCert(const std::string& dir) {
  namespace fs = std::filesystem;
  TlsFiles files;
  files.cert_path = (fs::path(dir) / "agent-tls.crt").string();
  files.key_path = (fs::path(dir) / "agent-tls.key").string();
  std::error_code ec;
  if (fs::exists(files.cert_path, ec) && fs::exists(files.key_path, ec)) {
    REPRISE_ASSIGN_OR_RETURN(std::string pem, ReadFileToString(files.cert_path));
    REPRISE_ASSIGN_OR_RETURN(files.fingerprint, CertFingerprintFromPem(pem));
    return files;
  }
  fs::create_directories(dir, ec);
  PkeyPtr key(EVP_EC_gen("P-256"));
  if (!key) return Internal("EC key generation failed");
  std::unique_ptr<X509, X509Free> cert(X509_new());
  X509_set_version(cert.get(), 2);
  std::string serial = RandomHex(8);
  ASN1_INTEGER_set_int64(X509_get_serialNumber(cert.get()),
                         static_cast<int64_t>(std::stoull(serial, nullptr, 16) >> 1));
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 10L * 365 * 24 * 3600);
  X509_set_pubkey(cert.get(), key.get());
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("reprise-agent-hub"), -1, -1,
                             0);
  X509_set_issuer_name(cert.get(), name);
  if (X509_sign(cert.get(), key.get(), EVP_sha256()) <= 0) return Internal("certificate signing");

  std::unique_ptr<BIO, BioFree> kb(BIO_new(BIO_s_mem()));
  std::unique_ptr<BIO, BioFree> cb(BIO_new(BIO_s_mem()));
  if (PEM_write_bio_PrivateKey(kb.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr) != 1 ||
      PEM_write_bio_X509(cb.get(), cert.get()) != 1)
    return Internal("PEM encoding failed");
  std::string key_pem = BioToString(kb.get());
  REPRISE_RETURN_IF_ERROR(WriteFileAtomic(files.key_path, key_pem, 0600));
  OPENSSL_cleanse(key_pem.data(), key_pem.size());
  REPRISE_RETURN_IF_ERROR(WriteFileAtomic(files.cert_path, BioToString(cb.get()), 0644));
  REPRISE_ASSIGN_OR_RETURN(files.fingerprint, DerFingerprint(cert.get()));
  return files;
}

std::string NormalizeFingerprint(std::string_view text) {
  std::string digits, raw;
  for (char c : text) {
    if (c != ':') digits.push_back(c);
  }
  if (!HexDecode(digits, &raw) || raw.size() != 32) return "";
  return HexEncode(raw.data(), raw.size());
}

bool IsLoopbackAddress(std::string_view address) {
  const std::string text(address);
  in_addr v4{};
  if (::inet_pton(AF_INET, text.c_str(), &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
  in6_addr v6{};
  if (::inet_pton(AF_INET6, text.c_str(), &v6) == 1)
    return IN6_IS_ADDR_LOOPBACK(&v6) || (IN6_IS_ADDR_V4MAPPED(&v6) && v6.s6_addr[12] == 127);
  return false;
}

bool IsLoopbackHost(std::string_view host) {
  return host == "localhost" || IsLoopbackAddress(host);
}

}  // namespace reprise::protocol

// Hashing and randomness on top of OpenSSL (the only OpenSSL user outside TLS).
//
// Sha256 is a streaming hasher; one instance is not thread-safe, separate
// instances are. The free functions are thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include "common/non_copyable.h"
#include "common/status.h"

namespace reprise {

class Sha256 : NonCopyable {
 public:
  Sha256();
  ~Sha256();

  void Update(const void* data, size_t size);
  void Update(std::string_view data) { Update(data.data(), data.size()); }
  // Lower-case hex of the digest. The hasher must not be used afterwards.
  std::string FinishHex();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

std::string Sha256Hex(std::string_view data);
Result<std::string> Sha256File(const std::filesystem::path& path);

// `bytes` cryptographically random bytes, hex encoded (2*bytes characters).
std::string RandomHex(size_t bytes);

// The one hex codec: lower-case digits out; either case in.
std::string HexEncode(const void* data, size_t size);
// False (and `out` unspecified) for an odd length or a non-hex character.
bool HexDecode(std::string_view hex, std::string* out);

// HMAC-SHA256(key, message) in lower-case hex.
std::string HmacSha256Hex(std::string_view key, std::string_view message);

// Password hashing with PBKDF2-HMAC-SHA256. The encoded form carries the
// algorithm, iteration count and salt: "pbkdf2-sha256$ITER$SALTHEX$HASHHEX".
std::string HashPassword(std::string_view password, int iterations = 210000);
bool VerifyPassword(std::string_view password, std::string_view encoded);

// Compares without leaking where the first difference is.
bool ConstantTimeEquals(std::string_view a, std::string_view b);

}  // namespace reprise

#include "common/crypto.h"

#include <doctest/doctest.h>

namespace reprise {

TEST_CASE("sha256 of known inputs") {
  CHECK(Sha256Hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(Sha256Hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  Sha256 h;
  h.Update("a");
  h.Update("bc");
  CHECK(h.FinishHex() == Sha256Hex("abc"));
}

TEST_CASE("passwords verify only with the right password") {
  std::string enc = HashPassword("correct horse", 1000);
  CHECK(enc.rfind("pbkdf2-sha256$1000$", 0) == 0);
  CHECK(VerifyPassword("correct horse", enc));
  CHECK_FALSE(VerifyPassword("wrong horse", enc));
  CHECK_FALSE(VerifyPassword("correct horse", "garbage"));
  CHECK(HashPassword("x", 1000) != HashPassword("x", 1000));  // salted
}

TEST_CASE("random hex has the asked length and differs") {
  CHECK(RandomHex(32).size() == 64);
  CHECK(RandomHex(32) != RandomHex(32));
}

TEST_CASE("hex decodes what it encodes, either case, and refuses the rest") {
  const std::string bytes("\x00\x7f\x80\xff ab", 6);
  const std::string hex = HexEncode(bytes.data(), bytes.size());
  CHECK(hex == "007f80ff2061");
  std::string back;
  REQUIRE(HexDecode(hex, &back));
  CHECK(back == bytes);
  REQUIRE(HexDecode("007F80FF2061", &back));
  CHECK(back == bytes);
  CHECK(HexDecode("", &back));
  CHECK(back.empty());
  CHECK_FALSE(HexDecode("abc", &back));  // odd length
  CHECK_FALSE(HexDecode("zz", &back));
  CHECK_FALSE(HexDecode("0g", &back));
}

}  // namespace reprise

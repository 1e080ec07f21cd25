#include "common/enum_names.h"

#include <doctest/doctest.h>

namespace reprise {
namespace {

enum class Color { kRed, kGreen, kBlue };
constexpr EnumName<Color> kColorNames[] = {{Color::kRed, "red"}, {Color::kGreen, "green"}};

TEST_CASE("NameOf gives a listed value's name and the fallback for one not listed") {
  CHECK(NameOf(kColorNames, Color::kGreen, "?") == "green");
  CHECK(NameOf(kColorNames, Color::kBlue, "?") == "?");
  static_assert(NameOf(kColorNames, Color::kRed, "?") == "red");
}

TEST_CASE("ValueOf gives a name's value, nothing for an unknown name") {
  CHECK(ValueOf(kColorNames, "red") == Color::kRed);
  CHECK_FALSE(ValueOf(kColorNames, "blue").has_value());
  CHECK_FALSE(ValueOf(kColorNames, "").has_value());
  CHECK_FALSE(ValueOf(kColorNames, "Red").has_value());
}

}  // namespace
}  // namespace reprise

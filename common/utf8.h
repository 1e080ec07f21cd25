// UTF-8 well-formedness (RFC 3629: no overlong forms, no surrogates, nothing
// above U+10FFFF), for input from outside: HTTP requests, archive entry names.
// Pure functions; thread-safe.
#pragma once

#include <cstddef>
#include <string_view>

namespace reprise {

// The length of the well-formed UTF-8 sequence at `s[at]`; 0 if there is none.
size_t Utf8SequenceLength(std::string_view s, size_t at);

bool IsValidUtf8(std::string_view text);

}  // namespace reprise

// NonCopyable: the base of a class whose objects own something that must not
// be duplicated (threads, sockets, a hash state): neither copyable nor
// movable, as if both copy operations were deleted in the class itself.
// Thread-safety: no state.
#pragma once

namespace reprise {

class NonCopyable {
 public:
  NonCopyable(const NonCopyable&) = delete;
  NonCopyable& operator=(const NonCopyable&) = delete;

 protected:
  NonCopyable() = default;
  ~NonCopyable() = default;
};

}  // namespace reprise

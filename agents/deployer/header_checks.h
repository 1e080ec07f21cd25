// Checks on archive headers that libarchive does not let its callers see:
// the zip central directory's unix file type (libarchive reads a FIFO as a
// regular file) and the values of tar pax / GNU long-name headers (libarchive
// truncates a path at its first NUL). Pure functions over bytes the caller
// reads; no libarchive here. Thread-safe (no shared state).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace reprise {

// Reads `size` bytes at `offset` into `out`; false when it cannot (short file).
using ReadAt = std::function<bool(uint64_t offset, size_t size, std::string& out)>;

// Looks for a zip end-of-central-directory record in the last 64 KiB of a
// `file_size`-byte file and, when there is one, refuses (kUnsafe, naming the
// entry) a central-directory entry whose unix mode is a FIFO. Archives without
// a central directory, or whose directory cannot be walked, pass: the zip
// reader decides about those. At most `max_entries` records are read.
Status CheckZipEntryTypes(const ReadAt& read, uint64_t file_size, uint64_t max_entries);

// Reads an uncompressed tar stream forward: Skip() drops bytes, Read()
// returns up to `size` bytes (fewer only at the end).
class TarStream {
 public:
  virtual ~TarStream() = default;
  virtual Status Skip(uint64_t count) = 0;
  virtual Result<std::string> Read(size_t size) = 0;
};

// Refuses (kUnsafe) a pax `path`, `linkpath` or `GNU.sparse.name` value, or a
// GNU long name or long link, with a NUL inside. `header_offsets` are where
// the headers of entries begin in the uncompressed stream (as libarchive
// reports them), in increasing order; the special headers in front of each
// entry are read from there.
Status CheckTarSpecialHeaders(TarStream& stream, const std::vector<int64_t>& header_offsets);

// The longest special header (pax or GNU long name) read; libarchive refuses
// longer ones itself.
inline constexpr uint64_t kMaxSpecialHeaderBytes = 8ULL << 20;

}  // namespace reprise

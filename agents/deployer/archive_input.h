// Where libarchive's bytes come from. A gzip archive is inflated here with
// ISA-L's igzip (several times zlib's speed), and libarchive reads the tar
// inside; anything else reaches libarchive unchanged. Scanning an upload,
// scanning a stored artifact and extracting on an agent all open their
// archives through this file, so they read the same bytes the same way.
// Internal to agents/deployer/ (it includes libarchive's header).
//
// Thread-safety: an ArchiveInput belongs to one reader on one thread (a
// read-ahead input runs the input it wraps on a thread of its own).
#pragma once

#include <archive.h>

#include <functional>
#include <memory>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace reprise {
namespace archive_internal {

// The next block of an archive's raw bytes, valid until the next call; an
// empty view at the end.
using RawBlocks = std::function<Result<std::string_view>()>;

// What libarchive reads: the raw bytes, or the gzip stream's inflated ones.
class ArchiveInput {
 public:
  virtual ~ArchiveInput() = default;
  // The next bytes for libarchive, valid until the next call; empty at the end.
  virtual Result<std::string_view> Next() = 0;
  // The same bytes as Next(), into `block` (replaced; empty at the end),
  // which the caller keeps: a read-ahead hands blocks over without a copy.
  virtual Status NextInto(std::vector<char>& block);
};

// True when `head` (at least the archive's first four bytes) begins a gzip
// member compressed with deflate, with no reserved flag set.
bool StartsGzip(std::string_view head);

// Inflates every gzip member of `raw` (which starts with one). Bytes after the
// last member that do not begin another one end the stream, as they do for
// libarchive's own gzip reader; a member cut short or corrupt is an
// kInvalidArgument error naming what is wrong.
std::unique_ptr<ArchiveInput> NewGzipInput(RawBlocks raw);

// Hands `raw` to libarchive unchanged.
std::unique_ptr<ArchiveInput> NewPlainInput(RawBlocks raw);

// Runs `input` on a thread of its own, a few blocks (at most 4 MiB) ahead of
// the reader, so that inflating overlaps with what the reader does with the
// inflated bytes (parsing and hashing the tar). `input` is only touched by
// that thread, from the first Next() on. Destroying the wrapper stops the
// thread once `input` returns from its current Next(): a blocking `input`
// must be woken by its own source. Next() returns what `input` returned, in
// order, its error or end last.
std::unique_ptr<ArchiveInput> NewReadAheadInput(std::unique_ptr<ArchiveInput> input);

// `first`, then the rest of `raw`: an input whose first block was read to
// look at it.
RawBlocks Prefixed(std::string_view first, RawBlocks raw);

// The blocks of a file read from its current offset (the fd stays the
// caller's), and of a buffer.
RawBlocks FdBlocks(int fd);
RawBlocks MemoryBlocks(std::string_view bytes);

// Opens `a` on `input`, which must outlive `a`'s reading. ARCHIVE_OK, or
// libarchive's status with its error text set on `a`.
int OpenInput(archive* a, ArchiveInput& input);

// Opens `a` on the file `fd` from offset 0: through NewGzipInput (kept in
// `gzip`) when it is gzip, else with libarchive's own fd reader (which seeks,
// as a zip's directory needs).
int OpenFd(archive* a, int fd, std::unique_ptr<ArchiveInput>& gzip);

// True when the file `fd` begins with a gzip member (read with pread; the
// offset does not move).
Result<bool> FdStartsGzip(int fd);

}  // namespace archive_internal
}  // namespace reprise

#include "agents/deployer/header_checks.h"

#include <sys/stat.h>

#include <algorithm>
#include <vector>

#include "agents/deployer/entry_rules.h"

namespace reprise {

namespace {

uint64_t Le(const std::string& b, size_t at, int bytes) {
  uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(b[at + i]);
  return v;
}

constexpr uint64_t kEocdBytes = 22;
constexpr uint64_t kMaxZipCommentBytes = 0xffff;
constexpr uint64_t kCentralHeaderBytes = 46;

struct CentralDirectory {
  uint64_t offset = 0;
  uint64_t size = 0;
};

// Where the central directory is, from the (zip64) end record; false when
// there is none or it makes no sense.
bool FindCentralDirectory(const ReadAt& read, uint64_t file_size, CentralDirectory& cd) {
  if (file_size < kEocdBytes) return false;
  const uint64_t tail_bytes = std::min(file_size, kEocdBytes + kMaxZipCommentBytes);
  std::string tail;
  if (!read(file_size - tail_bytes, static_cast<size_t>(tail_bytes), tail)) return false;
  size_t eocd = std::string::npos;
  for (size_t at = tail.size() - kEocdBytes + 1; at-- > 0;) {
    if (tail.compare(at, 4, "PK\x05\x06") == 0) {
      eocd = at;
      break;
    }
  }
  if (eocd == std::string::npos) return false;
  cd.size = Le(tail, eocd + 12, 4);
  cd.offset = Le(tail, eocd + 16, 4);
  const uint64_t eocd_offset = file_size - tail_bytes + eocd;
  if (cd.offset == 0xffffffff || cd.size == 0xffffffff) {
    // zip64: the locator sits right in front of the end record.
    std::string locator;
    if (eocd_offset < 20 || !read(eocd_offset - 20, 20, locator) ||
        locator.compare(0, 4, "PK\x06\x07") != 0)
      return false;
    std::string record;
    if (!read(Le(locator, 8, 8), 56, record) || record.compare(0, 4, "PK\x06\x06") != 0)
      return false;
    cd.size = Le(record, 40, 8);
    cd.offset = Le(record, 48, 8);
  }
  return cd.offset < file_size && cd.size <= file_size - cd.offset;
}

}  // namespace

Status CheckZipEntryTypes(const ReadAt& read, uint64_t file_size, uint64_t max_entries) {
  CentralDirectory cd;
  if (!FindCentralDirectory(read, file_size, cd)) return Status::Ok();
  uint64_t at = cd.offset;
  const uint64_t end = cd.offset + cd.size;
  for (uint64_t count = 0; count <= max_entries && at + kCentralHeaderBytes <= end; ++count) {
    std::string h;
    if (!read(at, kCentralHeaderBytes, h) || h.compare(0, 4, "PK\x01\x02") != 0) break;
    const uint64_t name_bytes = Le(h, 28, 2);
    const uint64_t record_bytes = kCentralHeaderBytes + name_bytes + Le(h, 30, 2) + Le(h, 32, 2);
    const uint32_t unix_mode = static_cast<uint32_t>(Le(h, 38, 4) >> 16);
    // libarchive turns a FIFO into a regular file (for Info-ZIP's `zip -FI`);
    // an artifact is refused for it as for a device.
    if ((unix_mode & S_IFMT) == S_IFIFO) {
      std::string name;
      if (!read(at + kCentralHeaderBytes, static_cast<size_t>(name_bytes), name)) name = "?";
      return Unsafe("unsafe archive entry " + QuoteEntryName(name) + ": FIFO");
    }
    at += record_bytes;
  }
  return Status::Ok();
}

namespace {

constexpr size_t kBlock = 512;

// A tar numeric field: octal, or base-256 when the high bit is set.
uint64_t TarNumber(std::string_view field) {
  uint64_t v = 0;
  if (!field.empty() && (static_cast<unsigned char>(field[0]) & 0x80) != 0) {
    v = static_cast<unsigned char>(field[0]) & 0x7f;
    for (size_t i = 1; i < field.size(); ++i) {
      if (v > (UINT64_MAX >> 8)) return UINT64_MAX;
      v = (v << 8) | static_cast<unsigned char>(field[i]);
    }
    return v;
  }
  size_t i = 0;
  while (i < field.size() && (field[i] == ' ' || field[i] == '\0')) ++i;
  for (; i < field.size() && field[i] >= '0' && field[i] <= '7'; ++i) {
    if (v > (UINT64_MAX >> 3)) return UINT64_MAX;
    v = (v << 3) | static_cast<uint64_t>(field[i] - '0');
  }
  return v;
}

Status NulInside(std::string_view value, std::string_view where) {
  return Unsafe("unsafe archive entry " + QuoteEntryName(value) + ": NUL byte in " +
                std::string(where));
}

// Checks the records ("LEN key=value\n") of a pax header's body.
Status CheckPaxRecords(std::string_view body) {
  size_t at = 0;
  while (at < body.size()) {
    size_t space = body.find(' ', at);
    if (space == std::string_view::npos) break;
    uint64_t length = 0;
    bool digits = space > at;
    for (size_t i = at; i < space && digits; ++i) {
      digits = body[i] >= '0' && body[i] <= '9' && length < kMaxSpecialHeaderBytes;
      length = length * 10 + static_cast<uint64_t>(body[i] - '0');
    }
    // A malformed record ends libarchive's reading of the header too.
    if (!digits || length <= space - at + 1 || length > body.size() - at ||
        body[at + length - 1] != '\n')
      break;
    std::string_view record = body.substr(space + 1, at + length - 1 - (space + 1));
    size_t equals = record.find('=');
    if (equals != std::string_view::npos) {
      std::string_view key = record.substr(0, equals);
      std::string_view value = record.substr(equals + 1);
      if ((key == "path" || key == "linkpath" || key == "GNU.sparse.name") &&
          value.find('\0') != std::string_view::npos)
        return NulInside(value,
                         key == "linkpath" ? "link target (pax header)" : "path (pax header)");
    }
    at += length;
  }
  return Status::Ok();
}

// Checks the special headers at the stream's position; `consumed` counts the
// bytes read.
Status CheckHeaderChain(TarStream& stream, uint64_t& consumed) {
  // pax, global pax, GNU long name, GNU long link; libarchive chains a few.
  for (int depth = 0; depth < 32; ++depth) {
    REPRISE_ASSIGN_OR_RETURN(std::string header, stream.Read(kBlock));
    consumed += header.size();
    if (header.size() < kBlock) return Status::Ok();
    const char type = header[156];
    // 'X': the old Solaris pax header, which libarchive reads like 'x'.
    if (type != 'x' && type != 'X' && type != 'g' && type != 'L' && type != 'K')
      return Status::Ok();
    const uint64_t size = TarNumber(std::string_view(header).substr(124, 12));
    if (size > kMaxSpecialHeaderBytes)
      return Unsafe("unsafe archive entry header: a pax or long-name header of " +
                    std::to_string(size) + " bytes (limit " +
                    std::to_string(kMaxSpecialHeaderBytes) + ")");
    const uint64_t padded = (size + kBlock - 1) / kBlock * kBlock;
    REPRISE_ASSIGN_OR_RETURN(std::string body, stream.Read(static_cast<size_t>(padded)));
    consumed += body.size();
    if (body.size() < size) return Status::Ok();
    body.resize(static_cast<size_t>(size));
    if (type == 'x' || type == 'X' || type == 'g') {
      REPRISE_RETURN_IF_ERROR(CheckPaxRecords(body));
    } else {
      // The name and its terminating NULs.
      size_t last = body.find_last_not_of('\0');
      std::string_view name(body.data(), last == std::string::npos ? 0 : last + 1);
      if (name.find('\0') != std::string_view::npos)
        return NulInside(name,
                         type == 'L' ? "path (GNU long name)" : "link target (GNU long link)");
    }
  }
  return Status::Ok();
}

}  // namespace

Status CheckTarSpecialHeaders(TarStream& stream, const std::vector<int64_t>& header_offsets) {
  uint64_t position = 0;
  for (int64_t offset : header_offsets) {
    if (offset < 0 || static_cast<uint64_t>(offset) < position) continue;
    REPRISE_RETURN_IF_ERROR(stream.Skip(static_cast<uint64_t>(offset) - position));
    position = static_cast<uint64_t>(offset);
    REPRISE_RETURN_IF_ERROR(CheckHeaderChain(stream, position));
  }
  return Status::Ok();
}

}  // namespace reprise

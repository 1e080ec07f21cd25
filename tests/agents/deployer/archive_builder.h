// Test-only helpers: write archives with arbitrary raw entries through
// libarchive's writer (any path, type, mode, link target, declared size), patch
// headers afterwards to produce lies, and snapshot directory trees.
// Header-only; throws std::runtime_error on failure (tests want it loud).
#pragma once

#include <archive.h>
#include <archive_entry.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "common/crypto.h"
#include "common/enum_names.h"
#include "tests/temp_dir.h"

namespace reprise::testing {

enum class RawType { kFile, kDir, kSymlink, kHardlink, kCharDevice, kBlockDevice, kFifo, kSocket };

struct RawEntry {
  std::string path;
  RawType type = RawType::kFile;
  unsigned mode = 0644;  // may include setuid/setgid/sticky
  std::string data;
  std::string link;            // symlink or hardlink target
  int64_t declared_size = -1;  // header size when >= 0, else data.size()
};

inline RawEntry File(std::string path, std::string data, unsigned mode = 0644) {
  return {std::move(path), RawType::kFile, mode, std::move(data), {}, -1};
}
inline RawEntry Dir(std::string path, unsigned mode = 0755) {
  return {std::move(path), RawType::kDir, mode, {}, {}, -1};
}
inline RawEntry Symlink(std::string path, std::string target) {
  return {std::move(path), RawType::kSymlink, 0777, {}, std::move(target), -1};
}
inline RawEntry Hardlink(std::string path, std::string target) {
  return {std::move(path), RawType::kHardlink, 0644, {}, std::move(target), -1};
}
inline RawEntry Special(std::string path, RawType type, unsigned mode = 0644) {
  return {std::move(path), type, mode, {}, {}, -1};
}

enum class ArchiveKind { kTar, kTarGz, kZip, kGnuTar };

inline constexpr EnumName<ArchiveKind> kArchiveKindNames[] = {
    {ArchiveKind::kTar, "tar"},
    {ArchiveKind::kTarGz, "tar.gz"},
    {ArchiveKind::kZip, "zip"},
    {ArchiveKind::kGnuTar, "gnutar"},
};
inline std::string KindName(ArchiveKind kind) {
  return std::string(NameOf(kArchiveKindNames, kind, "?"));
}

// libarchive's file type of each RawType (a hard link is a regular entry
// with a link target).
inline constexpr std::pair<RawType, unsigned> kRawFileTypes[] = {
    {RawType::kFile, AE_IFREG},       {RawType::kDir, AE_IFDIR},
    {RawType::kSymlink, AE_IFLNK},    {RawType::kHardlink, AE_IFREG},
    {RawType::kCharDevice, AE_IFCHR}, {RawType::kBlockDevice, AE_IFBLK},
    {RawType::kFifo, AE_IFIFO},       {RawType::kSocket, AE_IFSOCK},
};
inline unsigned FileTypeOf(RawType type) {
  for (const auto& [raw, file_type] : kRawFileTypes)
    if (raw == type) return file_type;
  return AE_IFREG;
}

inline void WriteArchive(const std::filesystem::path& out, ArchiveKind kind,
                         const std::vector<RawEntry>& entries) {
  archive* a = archive_write_new();
  auto fail = [&](const std::string& what) {
    std::string msg = what + ": " + (archive_error_string(a) ? archive_error_string(a) : "?");
    archive_write_free(a);
    throw std::runtime_error(msg);
  };
  int rc = ARCHIVE_OK;
  switch (kind) {
    case ArchiveKind::kTar:
      rc = archive_write_set_format_pax_restricted(a);
      break;
    case ArchiveKind::kGnuTar:
      rc = archive_write_set_format_gnutar(a);
      break;
    case ArchiveKind::kTarGz:
      rc = archive_write_set_format_pax_restricted(a);
      if (rc == ARCHIVE_OK) rc = archive_write_add_filter_gzip(a);
      break;
    case ArchiveKind::kZip:
      rc = archive_write_set_format_zip(a);
      break;
  }
  if (rc != ARCHIVE_OK) fail("format");
  if (archive_write_open_filename(a, out.c_str()) != ARCHIVE_OK) fail("open");
  for (const RawEntry& r : entries) {
    archive_entry* e = archive_entry_new();
    archive_entry_set_pathname(e, r.path.c_str());
    archive_entry_set_mtime(e, 1700000000, 0);
    archive_entry_set_filetype(e, FileTypeOf(r.type));
    archive_entry_set_perm(e, r.mode & 07777);
    if (r.type == RawType::kSymlink) archive_entry_set_symlink(e, r.link.c_str());
    if (r.type == RawType::kHardlink) archive_entry_set_hardlink(e, r.link.c_str());
    if (r.type == RawType::kCharDevice || r.type == RawType::kBlockDevice)
      archive_entry_set_rdev(e, makedev(1, 3));
    int64_t size = r.declared_size >= 0 ? r.declared_size : static_cast<int64_t>(r.data.size());
    if (r.type == RawType::kFile || !r.data.empty()) archive_entry_set_size(e, size);
    if (archive_write_header(a, e) < ARCHIVE_WARN) {
      archive_entry_free(e);
      fail("header " + r.path);
    }
    archive_entry_free(e);
    size_t off = 0;
    while (off < r.data.size()) {
      size_t chunk = std::min<size_t>(r.data.size() - off, 1 << 20);
      la_ssize_t n = archive_write_data(a, r.data.data() + off, chunk);
      if (n < 0) fail("data " + r.path);
      if (n == 0) break;  // libarchive truncates to the declared size
      off += static_cast<size_t>(n);
    }
  }
  if (archive_write_close(a) != ARCHIVE_OK) fail("close");
  archive_write_free(a);
}

inline std::string ReadBytes(const std::filesystem::path& p) { return ReadFile(p); }

inline void WriteBytes(const std::filesystem::path& p, const std::string& bytes) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out << bytes;
  if (!out) throw std::runtime_error("cannot write " + p.string());
}

// Rewrites the ustar size field of the header named `name` (and its checksum).
inline void PatchTarSize(const std::filesystem::path& p, const std::string& name,
                         uint64_t new_size) {
  std::string bytes = ReadBytes(p);
  for (size_t off = 0; off + 512 <= bytes.size(); off += 512) {
    if (bytes.compare(off, name.size() + 1, std::string(name) + '\0') != 0) continue;
    char field[13];
    std::snprintf(field, sizeof field, "%011llo", static_cast<unsigned long long>(new_size));
    bytes.replace(off + 124, 12, std::string(field, 11) + '\0');
    bytes.replace(off + 148, 8, "        ");
    unsigned sum = 0;
    for (size_t i = 0; i < 512; ++i) sum += static_cast<unsigned char>(bytes[off + i]);
    char chk[8];
    std::snprintf(chk, sizeof chk, "%06o", sum);
    bytes.replace(off + 148, 8, std::string(chk, 6) + '\0' + ' ');
    WriteBytes(p, bytes);
    return;
  }
  throw std::runtime_error("no tar header named " + name);
}

// Rewrites the uncompressed size of `name` in every zip local header, data
// descriptor-less central directory record.
inline void PatchZipUncompressedSize(const std::filesystem::path& p, const std::string& name,
                                     uint32_t new_size) {
  std::string bytes = ReadBytes(p);
  auto put32 = [&](size_t at, uint32_t v) {
    for (int i = 0; i < 4; ++i) bytes[at + i] = static_cast<char>((v >> (8 * i)) & 0xff);
  };
  auto get16 = [&](size_t at) {
    return static_cast<unsigned>(static_cast<unsigned char>(bytes[at])) |
           (static_cast<unsigned>(static_cast<unsigned char>(bytes[at + 1])) << 8);
  };
  int patched = 0;
  for (size_t off = 0; off + 46 < bytes.size(); ++off) {
    if (bytes.compare(off, 4, "PK\x01\x02") == 0) {  // central directory
      unsigned name_len = get16(off + 28);
      if (bytes.compare(off + 46, name_len, name) == 0 && name_len == name.size()) {
        put32(off + 24, new_size);
        ++patched;
      }
    } else if (bytes.compare(off, 4, "PK\x03\x04") == 0) {  // local header
      unsigned name_len = get16(off + 26);
      if (bytes.compare(off + 30, name_len, name) == 0 && name_len == name.size()) {
        put32(off + 22, new_size);
        ++patched;
      }
    }
  }
  if (patched == 0) throw std::runtime_error("no zip entry named " + name);
  WriteBytes(p, bytes);
}

// Rewrites the unix mode (high half of the external attributes) of `name` in
// the zip central directory, e.g. to turn a file into a socket.
inline void PatchZipUnixMode(const std::filesystem::path& p, const std::string& name,
                             uint32_t mode) {
  std::string bytes = ReadBytes(p);
  bool patched = false;
  for (size_t off = 0; off + 46 < bytes.size(); ++off) {
    if (bytes.compare(off, 4, "PK\x01\x02") != 0) continue;
    unsigned name_len = static_cast<unsigned char>(bytes[off + 28]) |
                        (static_cast<unsigned char>(bytes[off + 29]) << 8);
    if (name_len != name.size() || bytes.compare(off + 46, name_len, name) != 0) continue;
    bytes[off + 5] = 3;  // made by: unix
    uint32_t attrs = mode << 16;
    for (int i = 0; i < 4; ++i) bytes[off + 38 + i] = static_cast<char>((attrs >> (8 * i)) & 0xff);
    patched = true;
  }
  if (!patched) throw std::runtime_error("no zip entry named " + name);
  WriteBytes(p, bytes);
}

inline uint32_t Crc32(const std::string& data) {
  uint32_t crc = 0xffffffffu;
  for (unsigned char c : data) {
    crc ^= c;
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0xedb88320u & (0u - (crc & 1u)));
  }
  return ~crc;
}

// Writes a zip of stored (uncompressed) regular files whose names are the
// given bytes, as is. `utf8_flag` sets general purpose bit 11 ("the name is
// UTF-8") on every entry, as Python's zipfile and 7-Zip do for non-ASCII names.
inline void WriteRawZip(const std::filesystem::path& out,
                        const std::vector<std::pair<std::string, std::string>>& files,
                        bool utf8_flag) {
  std::string body, directory;
  auto put = [](std::string& to, uint64_t v, int bytes) {
    for (int i = 0; i < bytes; ++i) to += static_cast<char>((v >> (8 * i)) & 0xff);
  };
  const uint16_t flags = utf8_flag ? 0x0800 : 0;
  for (const auto& [name, data] : files) {
    const uint32_t crc = Crc32(data);
    const uint64_t offset = body.size();
    body += "PK\x03\x04";
    put(body, 20, 2);  // version needed
    put(body, flags, 2);
    put(body, 0, 2);  // stored
    put(body, 0, 4);  // time, date
    put(body, crc, 4);
    put(body, data.size(), 4);
    put(body, data.size(), 4);
    put(body, name.size(), 2);
    put(body, 0, 2);
    body += name + data;
    directory += "PK\x01\x02";
    put(directory, 0x0314, 2);  // made by: unix
    put(directory, 20, 2);
    put(directory, flags, 2);
    put(directory, 0, 2);
    put(directory, 0, 4);
    put(directory, crc, 4);
    put(directory, data.size(), 4);
    put(directory, data.size(), 4);
    put(directory, name.size(), 2);
    put(directory, 0, 2);  // extra
    put(directory, 0, 2);  // comment
    put(directory, 0, 2);  // disk
    put(directory, 0, 2);  // internal attributes
    put(directory, uint64_t{0100644} << 16, 4);
    put(directory, offset, 4);
    directory += name;
  }
  std::string end = "PK\x05\x06";
  put(end, 0, 4);
  put(end, files.size(), 2);
  put(end, files.size(), 2);
  put(end, directory.size(), 4);
  put(end, body.size(), 4);
  put(end, 0, 2);
  WriteBytes(out, body + directory + end);
}

// One 512-byte ustar header block.
inline std::string TarHeader(const std::string& name, char type, uint64_t size) {
  std::string h(512, '\0');
  h.replace(0, std::min<size_t>(name.size(), 100), name.substr(0, 100));
  auto octal = [&](size_t at, size_t width, uint64_t v) {
    char field[24];
    std::snprintf(field, sizeof field, "%0*llo", static_cast<int>(width - 1),
                  static_cast<unsigned long long>(v));
    h.replace(at, width - 1, field);
  };
  octal(100, 8, 0644);
  octal(108, 8, 0);
  octal(116, 8, 0);
  octal(124, 12, size);
  octal(136, 12, 1700000000);
  h[156] = type;
  h.replace(257, 6, std::string("ustar\0", 6));
  h.replace(263, 2, "00");
  h.replace(148, 8, "        ");
  unsigned sum = 0;
  for (unsigned char c : h) sum += c;
  char chk[8];
  std::snprintf(chk, sizeof chk, "%06o", sum);
  h.replace(148, 8, std::string(chk, 6) + '\0' + ' ');
  return h;
}

inline std::string TarPadded(const std::string& data) {
  return data + std::string((512 - data.size() % 512) % 512, '\0');
}

// Writes a tar of one regular file `data` whose name comes from a special
// header, byte for byte (a NUL inside too): a pax `path` record (type 'x', or
// 'X' as old Solaris tars wrote it) or a GNU long name (type 'L'). The ustar
// header's own name is "placeholder".
inline void WriteTarWithSpecialName(const std::filesystem::path& out, char type,
                                    const std::string& name, const std::string& data) {
  std::string special;
  if (type == 'x' || type == 'X') {
    std::string record = " path=" + name + "\n";
    size_t length = record.size() + 1;
    while (std::to_string(length).size() + record.size() != length) ++length;
    special = std::to_string(length) + record;
  } else {
    special = name + std::string(1, '\0');
  }
  const std::string special_name = type == 'L' ? "././@LongLink" : "PaxHeader/placeholder";
  std::string tar = TarHeader(special_name, type, special.size()) + TarPadded(special) +
                    TarHeader("placeholder", '0', data.size()) + TarPadded(data) +
                    std::string(1024, '\0');
  WriteBytes(out, tar);
}

// A recursive listing with types, modes and content hashes; symlinks are
// listed, never followed. Two equal snapshots mean an unchanged tree.
inline std::map<std::string, std::string> SnapshotTree(const std::filesystem::path& root) {
  namespace fs = std::filesystem;
  std::map<std::string, std::string> out;
  for (auto it = fs::recursive_directory_iterator(root); it != fs::recursive_directory_iterator();
       ++it) {
    const fs::path& p = it->path();
    struct stat st;
    if (::lstat(p.c_str(), &st) != 0) continue;
    std::string rel = p.lexically_relative(root).generic_string();
    char mode[16];
    std::snprintf(mode, sizeof mode, "%o", static_cast<unsigned>(st.st_mode));
    std::string desc = mode;
    if (S_ISREG(st.st_mode)) desc += " " + Sha256Hex(ReadBytes(p));
    if (S_ISLNK(st.st_mode)) desc += " -> " + fs::read_symlink(p).string();
    out[rel] = desc;
  }
  return out;
}

}  // namespace reprise::testing

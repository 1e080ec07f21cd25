// gen_artifact: writes a reproducible build tree and its tar.gz, for
// benchmarks (extraction, agent deploys, diffs between builds).
//
//   gen_artifact --out build1.tar.gz [--tree DIR] [--files 5000] [--mb 200] [--seed 1]
//   gen_artifact --out build2.tar.gz --variant-of build1.tree [--seed 2]
//                [--changed-pct 10] [--deleted-pct 2] [--added-pct 2]
//
// The same arguments give the same tree, byte for byte (mtimes are fixed).
// File sizes are mixed (log-uniform, scaled to the total); about 70% of the
// files are text from a small vocabulary (gzip ~3-4x), the rest are
// less compressible "binaries". A variant copies the tree of --variant-of,
// rewrites changed-pct % of its files, deletes deleted-pct % and adds
// added-pct % new ones. --tree defaults to the output name with ".tree"
// instead of ".tar.gz". Prints one summary line.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "agents/deployer/archive.h"
#include "bench/bench_flags.h"
#include "common/crypto.h"

namespace {

namespace fs = std::filesystem;

constexpr int64_t kFixedMtime = 1700000000;

struct Options {
  fs::path out;
  fs::path tree;
  fs::path variant_of;
  uint64_t files = 5000;
  double mb = 200;
  uint64_t seed = 1;
  double changed_pct = 10, deleted_pct = 2, added_pct = 2;
};

// splitmix64: tiny, fast, and the same everywhere.
struct Rng {
  uint64_t state;
  explicit Rng(uint64_t seed) : state(seed * 0x9E3779B97F4A7C15ULL + 1) {}
  uint64_t Next() {
    uint64_t z = (state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }
  double Uniform() { return static_cast<double>(Next() >> 11) * (1.0 / 9007199254740992.0); }
};

const std::vector<std::string>& Vocabulary() {
  static const std::vector<std::string> words = [] {
    std::vector<std::string> w;
    Rng rng(42);
    const char* letters = "etaoinshrdlcumwfgypbvkjxqz";
    for (int i = 0; i < 2048; ++i) {
      size_t len = 2 + rng.Next() % 9;
      std::string s;
      for (size_t j = 0; j < len; ++j)
        s += letters[std::min<uint64_t>(rng.Next() % 26, rng.Next() % 26)];
      w.push_back(s);
    }
    return w;
  }();
  return words;
}

std::string Content(uint64_t size, bool text, Rng& rng) {
  std::string out;
  out.reserve(size + 16);
  if (text) {
    const auto& words = Vocabulary();
    while (out.size() < size) {
      out += words[rng.Next() % words.size()];
      out += (rng.Next() % 12 == 0) ? '\n' : ' ';
    }
  } else {
    // Bytes from a skewed distribution: compresses a little, like binaries.
    while (out.size() < size) {
      uint64_t r = rng.Next();
      for (int i = 0; i < 8; ++i, r >>= 8) {
        unsigned b = static_cast<unsigned>(r & 0xff);
        out += static_cast<char>((b & 0x80) ? (b & 0x1f) : b);
      }
    }
  }
  out.resize(size);
  return out;
}

bool WriteFile(const fs::path& path, const std::string& data, unsigned mode) {
  fs::create_directories(path.parent_path());
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) return false;
  bool ok = ::write(fd, data.data(), data.size()) == static_cast<ssize_t>(data.size());
  timespec times[2] = {{kFixedMtime, 0}, {kFixedMtime, 0}};
  ok = ok && ::futimens(fd, times) == 0 && ::fchmod(fd, mode) == 0;
  return ::close(fd) == 0 && ok;
}

std::string NewFileName(uint64_t index, bool text, Rng& rng) {
  static const char* kDirs[] = {
      "bin",           "lib",    "share/doc",  "share/locale", "web/static/js", "web/static/css",
      "web/templates", "config", "migrations", "lib/plugins"};
  std::string dir = kDirs[rng.Next() % (sizeof kDirs / sizeof kDirs[0])];
  dir += "/m" + std::to_string(rng.Next() % 40);
  const char* ext = text ? ((rng.Next() % 2) ? ".js" : ".txt") : ".bin";
  return dir + "/f" + std::to_string(index) + ext;
}

// Sizes: log-uniform between 256 B and 4 MiB, scaled so they sum to `total`.
std::vector<uint64_t> Sizes(uint64_t count, uint64_t total, Rng& rng) {
  std::vector<double> raw(count);
  double sum = 0;
  for (double& r : raw) {
    r = std::exp(std::log(256.0) + rng.Uniform() * (std::log(4194304.0) - std::log(256.0)));
    sum += r;
  }
  std::vector<uint64_t> sizes(count);
  for (uint64_t i = 0; i < count; ++i)
    sizes[i] = static_cast<uint64_t>(raw[i] / sum * static_cast<double>(total));
  return sizes;
}

int Generate(const Options& o, uint64_t& files, uint64_t& bytes) {
  Rng rng(o.seed);
  const uint64_t total = static_cast<uint64_t>(o.mb * 1024 * 1024);
  std::vector<uint64_t> sizes = Sizes(o.files, total, rng);
  for (uint64_t i = 0; i < o.files; ++i) {
    bool text = rng.Next() % 10 < 7;
    std::string name = NewFileName(i, text, rng);
    unsigned mode = name.rfind("bin/", 0) == 0 ? 0755 : 0644;
    if (!WriteFile(o.tree / name, Content(sizes[i], text, rng), mode)) {
      std::perror(name.c_str());
      return 1;
    }
    ++files;
    bytes += sizes[i];
  }
  return 0;
}

int Variant(const Options& o, uint64_t& files, uint64_t& bytes) {
  std::vector<fs::path> existing;
  for (auto& e : fs::recursive_directory_iterator(o.variant_of))
    if (e.is_regular_file()) existing.push_back(e.path().lexically_relative(o.variant_of));
  std::sort(existing.begin(), existing.end());
  Rng rng(o.seed);
  uint64_t changed = 0, deleted = 0;
  for (const fs::path& rel : existing) {
    double r = rng.Uniform() * 100;
    fs::path src = o.variant_of / rel, dst = o.tree / rel;
    struct stat st;
    if (::stat(src.c_str(), &st) != 0) return 1;
    if (r < o.deleted_pct) {
      ++deleted;
      continue;
    }
    fs::create_directories(dst.parent_path());
    if (r < o.deleted_pct + o.changed_pct) {
      ++changed;
      bool text = rel.extension() != ".bin";
      if (!WriteFile(dst, Content(static_cast<uint64_t>(st.st_size), text, rng), st.st_mode & 0777))
        return 1;
    } else {
      fs::copy_file(src, dst, fs::copy_options::overwrite_existing);
      timespec times[2] = {{kFixedMtime, 0}, {kFixedMtime, 0}};
      ::utimensat(AT_FDCWD, dst.c_str(), times, 0);
    }
    ++files;
    bytes += static_cast<uint64_t>(st.st_size);
  }
  uint64_t added = static_cast<uint64_t>(static_cast<double>(existing.size()) * o.added_pct / 100);
  uint64_t mean = existing.empty() ? 4096 : bytes / std::max<uint64_t>(files, 1);
  std::vector<uint64_t> sizes = Sizes(added, mean * added, rng);
  for (uint64_t i = 0; i < added; ++i) {
    bool text = rng.Next() % 10 < 7;
    std::string name = NewFileName(1000000 * o.seed + i, text, rng);
    if (!WriteFile(o.tree / name, Content(sizes[i], text, rng), 0644)) return 1;
    ++files;
    bytes += sizes[i];
  }
  std::fprintf(stderr, "variant: %llu changed, %llu deleted, %llu added\n",
               static_cast<unsigned long long>(changed), static_cast<unsigned long long>(deleted),
               static_cast<unsigned long long>(added));
  return 0;
}

// Directories get the fixed mtime too, so the archive does not depend on when it ran.
void FixDirectoryTimes(const fs::path& root) {
  timespec times[2] = {{kFixedMtime, 0}, {kFixedMtime, 0}};
  for (auto& e : fs::recursive_directory_iterator(root))
    if (e.is_directory()) ::utimensat(AT_FDCWD, e.path().c_str(), times, AT_SYMLINK_NOFOLLOW);
}

int Usage() {
  std::fprintf(stderr,
               "usage: gen_artifact --out X.tar.gz [--tree DIR] [--files N] [--mb M] [--seed S]\n"
               "                    [--variant-of DIR [--changed-pct P] [--deleted-pct P]"
               " [--added-pct P]]\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  if (!reprise::bench::ParseFlags(argc, argv, 1,
                                  {{"--out", o.out},
                                   {"--tree", o.tree},
                                   {"--variant-of", o.variant_of},
                                   {"--files", o.files},
                                   {"--mb", o.mb},
                                   {"--seed", o.seed},
                                   {"--changed-pct", o.changed_pct},
                                   {"--deleted-pct", o.deleted_pct},
                                   {"--added-pct", o.added_pct}}))
    return Usage();
  if (o.out.empty()) return Usage();
  if (o.tree.empty()) {
    std::string base = o.out.string();
    for (const char* ext : {".tar.gz", ".tgz"})
      if (base.size() > std::strlen(ext) && base.ends_with(ext))
        base.resize(base.size() - std::strlen(ext));
    o.tree = base + ".tree";
  }
  std::error_code ec;
  fs::remove_all(o.tree, ec);
  fs::create_directories(o.tree);
  uint64_t files = 0, bytes = 0;
  int rc = o.variant_of.empty() ? Generate(o, files, bytes) : Variant(o, files, bytes);
  if (rc != 0) return rc;
  FixDirectoryTimes(o.tree);
  reprise::Status st = reprise::CreateTarGz(o.tree, o.out);
  if (!st.ok()) {
    std::fprintf(stderr, "gen_artifact: %s\n", st.ToString().c_str());
    return 1;
  }
  auto sha = reprise::Sha256File(o.out);
  std::printf("%s: %llu files, %.1f MB in %s, archive %.1f MB, sha256 %s\n", o.out.c_str(),
              static_cast<unsigned long long>(files), static_cast<double>(bytes) / 1048576.0,
              o.tree.c_str(), static_cast<double>(fs::file_size(o.out)) / 1048576.0,
              sha.ok() ? sha->c_str() : "?");
  return 0;
}

// write_archive_seeds DIR: writes every archive of the malicious corpus
// (tests/agents/deployer/archive_corpus.h) into DIR, one file each, as seeds
// for archive_fuzz (fuzz/seed_archive_fuzz.sh runs it). The same archives the
// deployer and API tests refuse, so the fuzzer starts from the rules' edges.
#include <cstdio>
#include <exception>
#include <filesystem>
#include <system_error>

#include "tests/agents/deployer/archive_corpus.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: write_archive_seeds DIR\n");
    return 2;
  }
  const std::filesystem::path dir = argv[1];
  try {
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec) {
      std::fprintf(stderr, "write_archive_seeds: cannot create %s: %s\n", dir.c_str(),
                   ec.message().c_str());
      return 1;
    }
    const auto corpus = reprise::testing::MaliciousCorpus();
    for (size_t i = 0; i < corpus.size(); ++i)
      reprise::testing::WriteBadArchive(corpus[i],
                                        dir / reprise::testing::BadArchiveFileName(i, corpus[i]));
    std::printf("wrote %zu corpus archives into %s\n", corpus.size(), dir.c_str());
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "write_archive_seeds: %s\n", e.what());
    return 1;
  }
}

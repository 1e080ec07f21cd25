#include <cstdio>
#include <cstring>

#include "planner/version.h"

int main(int argc, char** argv) {
  if (argc > 1 && std::strcmp(argv[1], "--version") == 0) {
    std::printf("reprise-agent %s\n", reprise::Version());
    return 0;
  }
  std::printf("reprise-agent %s\n", reprise::Version());
  return 0;
}

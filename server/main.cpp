#include <cstdio>

#include "planner/version.h"

int main() {
  std::printf("reprise-server %s\n", reprise::Version());
  return 0;
}

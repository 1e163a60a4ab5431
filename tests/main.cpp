// The test runner: Catch2's session, plus the Eigen version and the seed for the log.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <Eigen/Core>

#include <iostream>

int main(int argc, char* argv[]) {
  Catch::Session session;
  if (const int rc = session.applyCommandLine(argc, argv); rc != 0) return rc;
  std::cout << "Eigen " << EIGEN_WORLD_VERSION << '.' << EIGEN_MAJOR_VERSION << '.'
            << EIGEN_MINOR_VERSION << ", rng seed " << session.config().rngSeed() << '\n';
  return session.run();
}

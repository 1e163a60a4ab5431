// Batch EM on data larger than memory: a Gaussian mixture (d = 16, K = 8) fitted to 2·10^8 observations in a 25.6 GB .npy file, which this program writes, maps into
// memory, fits, and deletes. Every EM iteration is one sequential pass over the file; the
// program prints each pass's throughput next to the disk's sequential read bandwidth and the
// E-step's in-memory speed, so you can see which of the two limits the fit.
//
//   out_of_core                    the full run (needs ~26 GB of free disk, a few minutes)
//   out_of_core --n 200000         a small run (what ctest does)
//   out_of_core --dir /scratch --iterations 5 --keep
//   out_of_core --covariance full  full covariances (the default, diagonal, has an E-step
//                                  fast enough for the disk to be the limit)
//
// ctest-arguments: --n 200000
//
// The file is NumPy's format: numpy.load("out_of_core.npy", mmap_mode="r") opens the same data
// as an (N, 16) array.

#include <latent/io/mapped_npy.hpp>
#include <latent/io/npy.hpp>
#include <latent/models/gaussian_mixture.hpp>
#include <latent/solvers/em.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <string>
#include <vector>

namespace {

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

// Eight components in 16 dimensions, means spread over the first eight axes.
latent::gaussian_mixture truth(std::mt19937_64& rng) {
  const Eigen::Index d = 16, k = 8;
  latent::gaussian_mixture g(k, latent::covariance_type::full);
  latent::gaussian_mixture::params_type p;
  p.weights = Eigen::VectorXd::LinSpaced(k, 1.0, 2.0);
  p.weights /= p.weights.sum();
  p.means = Eigen::MatrixXd::Zero(d, k);
  for (Eigen::Index j = 0; j < k; ++j) p.means(j, j) = 4.0;
  std::normal_distribution<double> z;
  for (Eigen::Index j = 0; j < k; ++j) {
    Eigen::MatrixXd a(d, d);
    for (Eigen::Index i = 0; i < a.size(); ++i) a(i) = 0.25 * z(rng);
    p.covariances.push_back(a * a.transpose() + Eigen::MatrixXd::Identity(d, d));
  }
  g.set_params(p);
  return g;
}

// Sequential read of the whole file in 16 MB pieces: the disk's (or page cache's) bandwidth.
double read_bandwidth(const std::string& path, std::uint64_t& bytes) {
  std::ifstream in(path, std::ios::binary);
  std::vector<char> buffer(std::size_t{16} << 20);
  bytes = 0;
  const auto start = std::chrono::steady_clock::now();
  while (in.read(buffer.data(), static_cast<std::streamsize>(buffer.size())) || in.gcount() > 0)
    bytes += static_cast<std::uint64_t>(in.gcount());
  return static_cast<double>(bytes) / seconds_since(start) / 1e9;
}

}  // namespace

int main(int argc, char** argv) {
  long long n = 200'000'000;
  std::string dir = ".";
  std::size_t iterations = 3;
  bool keep = false;
  latent::covariance_type covariance = latent::covariance_type::diagonal;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--n" && i + 1 < argc) n = std::atoll(argv[++i]);
    else if (a == "--dir" && i + 1 < argc) dir = argv[++i];
    else if (a == "--iterations" && i + 1 < argc) iterations = static_cast<std::size_t>(std::atoll(argv[++i]));
    else if (a == "--keep") keep = true;
    else if (a == "--covariance" && i + 1 < argc && std::strcmp(argv[i + 1], "full") == 0) covariance = latent::covariance_type::full, ++i;
    else if (a == "--covariance" && i + 1 < argc && std::strcmp(argv[i + 1], "diagonal") == 0) ++i;
    else {
      std::fprintf(stderr, "usage: out_of_core [--n N] [--dir DIR] [--iterations I] [--covariance diagonal|full] [--keep]\n");
      return 2;
    }
  }
  if (n < 1000 || iterations < 1) {
    std::fprintf(stderr, "out_of_core: --n must be at least 1000 and --iterations at least 1\n");
    return 2;
  }
  const std::string path = dir + "/out_of_core.npy";
  const Eigen::Index d = 16, block = 1'000'000;
  std::mt19937_64 rng(13);
  const latent::gaussian_mixture source = truth(rng);

  // 1. Write the data block by block (never more than one block in memory).
  auto t = std::chrono::steady_clock::now();
  {
    latent::basic_npy_writer<double> writer(path, d);
    for (long long done = 0; done < n; done += block) writer.append(source.sample(std::min<long long>(block, n - done), rng));
    writer.close();
  }
  const double gb = static_cast<double>(n) * d * sizeof(double) / 1e9;
  std::printf("wrote %lld observations x %ld values (%.2f GB) to %s in %.1f s\n", n, static_cast<long>(d), gb,
              path.c_str(), seconds_since(t));

  // 2. The disk's sequential read bandwidth, on the same file.
  std::uint64_t bytes = 0;
  const double disk = read_bandwidth(path, bytes);
  std::printf("sequential read of the file: %.2f GB/s\n", disk);

  // 3. Map it, start from a subsample, and time the E-step in memory on that subsample.
  const latent::mapped_npy data(path);
  const Eigen::Index sub = std::min<Eigen::Index>(data.size(), 200'000);
  const Eigen::MatrixXd head = data.matrix().leftCols(sub);  // the file is in random order already
  latent::gaussian_mixture gmm(8, covariance);
  gmm.initialize(head, rng);
  {
    latent::gaussian_mixture probe = gmm;
    auto stats = probe.zero_stats();
    latent::e_step(probe, head, stats);  // warm up
    t = std::chrono::steady_clock::now();
    stats = probe.zero_stats();
    latent::e_step(probe, head, stats);
    const double s = seconds_since(t);
    std::printf("E-step in memory: %.2f GB/s (%.1f M observations/s)\n",
                static_cast<double>(sub) * d * sizeof(double) / s / 1e9, static_cast<double>(sub) / s / 1e6);
  }

  // 4. Batch EM over the mapped file: one pass per iteration.
  // Iteration 0 also holds the solver's check of the data (finite values: one more pass).
  struct per_pass {
    std::chrono::steady_clock::time_point last;
    double gb, n;
    double pass_seconds = 0.0;  // iterations >= 1: one M-step and one E-step pass each
    void on_iteration(const latent::iteration_info& info) {
      const double s = seconds_since(last);
      if (info.iteration > 0) pass_seconds += s;
      std::printf("  iteration %2zu: log-likelihood per observation %.6f, %.1f s%s = %.2f GB/s\n", info.iteration,
                  info.objective / n, s, info.iteration == 0 ? " (data check + E-step: 2 passes)" : "",
                  (info.iteration == 0 ? 2.0 : 1.0) * gb / s);
      last = std::chrono::steady_clock::now();
    }
  } progress{std::chrono::steady_clock::now(), gb, static_cast<double>(n)};
  std::printf("batch EM (%s covariances) on the mapped file, %zu iterations:\n",
              covariance == latent::covariance_type::full ? "full" : "diagonal", iterations);
  const auto fit = latent::em(gmm, data.observations(), {.max_iterations = iterations}, progress);
  const double rate = gb * static_cast<double>(fit.iterations) / progress.pass_seconds;
  std::printf("%s after %zu iterations, %.1f s in all; iterations 1-%zu: %.2f GB/s = %.0f%% of the read bandwidth\n",
              std::string(latent::to_string(fit.status)).c_str(), fit.iterations, fit.seconds, fit.iterations, rate,
              100.0 * rate / disk);

  if (!keep) {
    std::remove(path.c_str());
    std::printf("removed %s\n", path.c_str());
  }
  return 0;
}

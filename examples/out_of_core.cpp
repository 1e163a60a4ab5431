// Batch EM on data larger than memory: a Gaussian mixture (d = 16, K = 8) fitted to 2·10^8 observations in a 25.6 GB .npy file, which this program writes, maps into
// memory, fits, and deletes. Every EM iteration is one sequential pass over the file; the
// program prints each pass's throughput next to the disk's sequential read bandwidth and the
// E-step's in-memory speed, so you can see which of the two limits the fit. The passes run
// with a `read_ahead_executor`, whose reader thread keeps the disk reading up to 64 MB ahead
// of the threads.
// Both read-bandwidth measurements (before and after the fit) start with none of the file in
// the page cache (the program drops this file's cached pages: posix_fadvise DONTNEED).
//
//   out_of_core                    the full run (needs ~26 GB of free disk, a few minutes)
//   out_of_core --n 200000         a small run (what ctest does)
//   out_of_core --dir /scratch --iterations 5 --keep
//   out_of_core --covariance full  full covariances (the default, diagonal, has an E-step
//                                  fast enough for the disk to be the limit)
//   out_of_core --no-read-ahead    the plain thread executor (pages read when the E-step first
//                                  touches them)
//   out_of_core --keep, then --reuse   keep the file, then fit it again without rewriting it
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
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <fcntl.h>
#include <unistd.h>

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

// Writes the file's dirty pages to disk and drops its pages from the page cache, so that the
// next read of it comes from the disk (affects this file only; no privileges needed).
void drop_cached(const std::string& path) {
  ::sync();  // the written data and the file system's journal
  const int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) return;
  ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
  ::close(fd);
}

// Whether `path` is a .npy file of n observations of d doubles (a file --keep left behind).
bool same_shape(const std::string& path, long long n, Eigen::Index d) {
  try {
    const latent::mapped_npy file(path);
    return file.size() == n && file.dim() == d;
  } catch (const latent::invalid_argument&) {
    return false;  // absent or not such a file: write it
  }
}

// Sequential read of the whole file in 16 MB pieces, from the disk: its read bandwidth.
double read_bandwidth(const std::string& path, std::uint64_t& bytes) {
  drop_cached(path);
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
  bool keep = false, reuse = false, read_ahead = true;
  latent::covariance_type covariance = latent::covariance_type::diagonal;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--n" && i + 1 < argc) n = std::atoll(argv[++i]);
    else if (a == "--dir" && i + 1 < argc) dir = argv[++i];
    else if (a == "--iterations" && i + 1 < argc) iterations = static_cast<std::size_t>(std::atoll(argv[++i]));
    else if (a == "--keep") keep = true;
    else if (a == "--reuse") reuse = true;
    else if (a == "--no-read-ahead") read_ahead = false;
    else if (a == "--covariance" && i + 1 < argc && std::strcmp(argv[i + 1], "full") == 0) covariance = latent::covariance_type::full, ++i;
    else if (a == "--covariance" && i + 1 < argc && std::strcmp(argv[i + 1], "diagonal") == 0) ++i;
    else {
      std::fprintf(stderr,
                   "usage: out_of_core [--n N] [--dir DIR] [--iterations I] [--covariance diagonal|full] "
                   "[--no-read-ahead] [--keep] [--reuse]\n");
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

  // 1. Write the data block by block (never more than one block in memory), from an engine of
  // its own, so that a file kept by --keep and reused by --reuse holds the same data.
  auto t = std::chrono::steady_clock::now();
  const double gb = static_cast<double>(n) * d * sizeof(double) / 1e9;
  if (reuse && same_shape(path, n, d)) {
    std::printf("reusing %s (%lld observations x %ld values, %.2f GB)\n", path.c_str(), n, static_cast<long>(d), gb);
  } else {
    std::mt19937_64 data_rng(14);
    latent::basic_npy_writer<double> writer(path, d);
    for (long long done = 0; done < n; done += block)
      writer.append(source.sample(std::min<long long>(block, n - done), data_rng));
    writer.close();
    std::printf("wrote %lld observations x %ld values (%.2f GB) to %s in %.1f s\n", n, static_cast<long>(d), gb,
                path.c_str(), seconds_since(t));
  }

  // 2. Start from a subsample, and time the E-step in memory on that subsample.
  const Eigen::Index sub = std::min<Eigen::Index>(n, 200'000);
  const Eigen::MatrixXd head = latent::mapped_npy(path).matrix().leftCols(sub);  // the file is in random order already
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

  // 3. The disk's sequential read bandwidth, on the same file, just before the fit (the disk is
  // still busy with the written data for a while after the writing: see drop_cached), while
  // the file is not mapped (mapped pages would stay in the page cache).
  std::uint64_t bytes = 0;
  const double disk_before = read_bandwidth(path, bytes);
  std::printf("sequential read of the file (from disk): %.2f GB/s\n", disk_before);

  // 4. Batch EM over the mapped file: one pass per iteration.
  auto data = std::make_unique<const latent::mapped_npy>(path);
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
  std::printf("batch EM (%s covariances) on the mapped file, %zu iterations, %s:\n",
              covariance == latent::covariance_type::full ? "full" : "diagonal", iterations,
              read_ahead ? "a reader thread up to 64 MB ahead" : "no read-ahead");
  drop_cached(path);
  const latent::em_options options{.max_iterations = iterations};
  const latent::thread_executor threads;
  const auto fit = read_ahead ? latent::em(gmm, data->observations(), latent::read_ahead_executor(*data, threads), options, progress)
                              : latent::em(gmm, data->observations(), threads, options, progress);
  const double rate = gb * static_cast<double>(fit.iterations) / progress.pass_seconds;
  data.reset();  // unmapped: mapped pages would stay in the page cache
  const double disk_after = read_bandwidth(path, bytes);
  const double disk = 0.5 * (disk_before + disk_after);
  std::printf("sequential read of the file again (from disk): %.2f GB/s\n", disk_after);
  std::printf("%s after %zu iterations, %.1f s in all; iterations 1-%zu: %.2f GB/s = %.0f%% of the read bandwidth "
              "(mean of the two reads; %.0f%% and %.0f%% of each)\n",
              std::string(latent::to_string(fit.status)).c_str(), fit.iterations, fit.seconds, fit.iterations, rate,
              100.0 * rate / disk, 100.0 * rate / disk_before, 100.0 * rate / disk_after);

  if (!keep) {
    std::remove(path.c_str());
    std::printf("removed %s\n", path.c_str());
  }
  return 0;
}

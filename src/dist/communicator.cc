// Communicator backends: a single process, and MPI (when built with ILLADA_WITH_MPI).
#include "dist/communicator.h"

#include <algorithm>
#include <cstdlib>
#include <memory>

#include "util/check.h"

#ifdef ILLADA_WITH_MPI
#include <mpi.h>
#endif

namespace illada::dist {
namespace {

class SingleProcess final : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  std::string backend() const override { return "single"; }
  void all_reduce_sum(std::span<float>) override {}
  void all_reduce_sum(std::span<double>) override {}
  void barrier() override {}
};

// The number of processes an MPI launcher started, from its environment (0: not launched by one).
int launcher_world_size() {
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE", "MPI_LOCALNRANKS", "SLURM_NTASKS"}) {
    if (const char* s = std::getenv(v)) {
      const int n = std::atoi(s);
      if (n > 0 && (std::string(v) != "SLURM_NTASKS" || std::getenv("PMI_RANK") || std::getenv("PMIX_RANK"))) return n;
    }
  }
  return std::getenv("PMIX_RANK") || std::getenv("PMI_RANK") ? 1 : 0;
}

#ifdef ILLADA_WITH_MPI
class Mpi final : public Communicator {
 public:
  Mpi() {
    int provided = 0;
    // Only the main thread calls MPI (OpenMP regions never do).
    MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
    std::atexit([] {
      int done = 0;
      MPI_Finalized(&done);
      if (!done) MPI_Finalize();
    });
  }
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string backend() const override { return "mpi"; }
  void all_reduce_sum(std::span<float> x) override { reduce(x.data(), x.size(), MPI_FLOAT); }
  void all_reduce_sum(std::span<double> x) override { reduce(x.data(), x.size(), MPI_DOUBLE); }
  void barrier() override { MPI_Barrier(MPI_COMM_WORLD); }

 private:
  // MPI counts are int: large buffers go in pieces of at most 2^30 elements.
  void reduce(void* data, size_t n, MPI_Datatype t) {
    int bytes = 0;
    MPI_Type_size(t, &bytes);
    auto* p = static_cast<char*>(data);
    for (size_t off = 0; off < n;) {
      const int c = static_cast<int>(std::min<size_t>(n - off, size_t{1} << 30));
      const int rc = MPI_Allreduce(MPI_IN_PLACE, p + off * bytes, c, t, MPI_SUM, MPI_COMM_WORLD);
      if (rc != MPI_SUCCESS) fail("MPI_Allreduce failed (error ", rc, ")");
      off += static_cast<size_t>(c);
    }
  }
  int rank_ = 0, size_ = 1;
};
#endif

std::unique_ptr<Communicator> make_world() {
  const int launched = launcher_world_size();
#ifdef ILLADA_WITH_MPI
  if (launched > 0) return std::make_unique<Mpi>();
#else
  if (launched > 1) {
    fail("started by an MPI launcher with ", launched, " processes, but this illada was built without MPI; "
         "install libopenmpi-dev and rebuild (CMake option ILLADA_MPI=ON)");
  }
#endif
  return std::make_unique<SingleProcess>();
}

}  // namespace

Communicator& world() {
  static const std::unique_ptr<Communicator> w = make_world();
  return *w;
}

bool built_with_mpi() {
#ifdef ILLADA_WITH_MPI
  return true;
#else
  return false;
#endif
}

}  // namespace illada::dist
